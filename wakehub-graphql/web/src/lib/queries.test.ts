import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { buildSchema, parse, validate } from 'graphql';
import * as queries from './queries';
import { EVENTS_SUBSCRIPTION } from './events';

// The SDL the server snapshots (wakehub-graphql/schema.graphql): the API of the very binary
// that serves the dashboard.
const schema = buildSchema(readFileSync(resolve(import.meta.dirname, '../../../schema.graphql'), 'utf8'));

const documents = Object.entries({ ...queries, EVENTS_SUBSCRIPTION }).filter(
  ([, value]) => typeof value === 'string' && /^(query|mutation|subscription)\b/.test(value),
) as [string, string][];

describe('queries', () => {
  it('are found', () => {
    expect(documents.map(([name]) => name)).toEqual(expect.arrayContaining(['NODES_QUERY', 'JOURNAL_QUERY', 'PIN_NODE', 'ME_QUERY', 'EVENTS_SUBSCRIPTION']));
  });

  it.each(documents)('%s is valid against the committed SDL', (_, document) => {
    expect(validate(schema, parse(document)).map((e) => e.message)).toEqual([]);
  });

  it('select the fields the dashboard relies on without asking the schema', () => {
    for (const field of ['observedAt', 'stale', 'url', 'canPower', 'canEdit']) expect(queries.NODE_FIELDS).toContain(field);
    for (const arg of ['kinds: $kinds', 'since: $since', 'until: $until', 'before: $before', 'newestFirst: true']) expect(queries.JOURNAL_QUERY).toContain(arg);
  });
});
