import { describe, expect, it } from 'vitest';
import { parse } from 'graphql';
import { BASELINE } from './features';
import { eventsQuery, nodeQuery, nodesQuery } from './queries';

describe('queries', () => {
  const newer = { ...BASELINE, nodeFields: new Set(['url', 'canPower']), eventFilters: true, newestFirst: true };

  it('declares the journal arguments the server has, and only those', () => {
    expect(eventsQuery(BASELINE)).not.toMatch(/kinds|newestFirst/);
    const q = eventsQuery(newer);
    for (const arg of ['kinds: $kinds', 'since: $since', 'until: $until', 'before: $before', 'newestFirst: $newestFirst']) expect(q).toContain(arg);
  });

  it('selects the optional node fields the server has', () => {
    expect(nodesQuery(BASELINE)).not.toContain('canPower');
    expect(nodesQuery(newer)).toContain('url canPower');
  });

  it('are valid GraphQL documents', () => {
    for (const doc of [eventsQuery(BASELINE), eventsQuery(newer), nodesQuery(newer), nodeQuery(newer)]) expect(() => parse(doc)).not.toThrow();
  });
});
