import { describe, expect, it, vi } from 'vitest';
import type { Client } from 'graphql-ws';
import { advance, applyBatch, eventNumber, followEvents, resumeVariables } from './events';
import type { WakeEvent } from './types';

const ev = (n: number): WakeEvent => ({
  id: `event:${n}`,
  at: '2026-01-01T00:00:00Z',
  kind: 'status-change',
  cascade: null,
  node: 'node:1',
  payload: { __typename: 'StatusChange', name: 'nas', kind: 'physical', state: 'ON' },
});

describe('cursor', () => {
  it('reads event numbers numerically, not as text', () => {
    expect(eventNumber('event:10')).toBe(10);
    expect(eventNumber('event:9') < eventNumber('event:10')).toBe(true);
    expect(eventNumber('cascade:1')).toBeNaN();
  });

  it('applies the first event and everything after the cursor, drops the rest', () => {
    let step = advance({ lastId: null }, ev(5));
    expect(step).toEqual({ apply: true, cursor: { lastId: 'event:5' } });
    step = advance(step.cursor, ev(5));
    expect(step.apply).toBe(false);
    step = advance(step.cursor, ev(3));
    expect(step).toEqual({ apply: false, cursor: { lastId: 'event:5' } });
    step = advance(step.cursor, ev(10));
    expect(step).toEqual({ apply: true, cursor: { lastId: 'event:10' } });
  });

  it('refuses ids that are not event ids', () => {
    expect(advance({ lastId: 'event:2' }, { id: 'oops' })).toEqual({ apply: false, cursor: { lastId: 'event:2' } });
  });

  it('applies a replay overlapping what was seen once each, in order', () => {
    const { applied, cursor } = applyBatch({ lastId: 'event:4' }, [ev(6), ev(3), ev(5), ev(6), ev(4), ev(7)]);
    expect(applied.map((e) => e.id)).toEqual(['event:5', 'event:6', 'event:7']);
    expect(cursor).toEqual({ lastId: 'event:7' });
  });

  it('resumes after the last event, or subscribes live when there is none', () => {
    expect(resumeVariables({ lastId: null })).toEqual({});
    expect(resumeVariables({ lastId: 'event:42' })).toEqual({ after: 'event:42' });
  });
});

// A stand-in for graphql-ws's client that behaves as it does on a reconnect: the same
// payload object is serialized again for the new socket.
function fakeClient() {
  const sent: string[] = [];
  let sink: { next: (v: unknown) => void; error: (e: unknown) => void; complete: () => void } | null = null;
  let payload: unknown = null;
  const client = {
    subscribe: vi.fn((p: unknown, s: typeof sink) => {
      payload = p;
      sink = s;
      sent.push(JSON.stringify(p));
      return () => {};
    }),
  } as unknown as Client;
  return {
    client,
    sent,
    deliver: (n: number) => sink!.next({ data: { events: ev(n) } }),
    reconnect: () => sent.push(JSON.stringify(payload)),
    fail: (errors: unknown) => sink!.error(errors),
  };
}

describe('followEvents', () => {
  it('resubscribes after the last event applied when the socket reconnects', () => {
    const fake = fakeClient();
    const seen: string[] = [];
    followEvents(fake.client, { onEvent: (e) => seen.push(e.id), onResync: () => {} });
    expect(JSON.parse(fake.sent[0]).variables).toEqual({});
    fake.deliver(1);
    fake.deliver(2);
    fake.reconnect();
    expect(JSON.parse(fake.sent[1]).variables).toEqual({ after: 'event:2' });
    // The server replays from after event:2, but a late duplicate must not be applied twice.
    fake.deliver(2);
    fake.deliver(3);
    expect(seen).toEqual(['event:1', 'event:2', 'event:3']);
  });

  it('resumes from a given cursor even before any live event', () => {
    const fake = fakeClient();
    followEvents(fake.client, { from: { lastId: 'event:40' }, onEvent: () => {}, onResync: () => {} });
    fake.reconnect();
    expect(fake.sent.map((s) => JSON.parse(s).variables)).toEqual([{ after: 'event:40' }, { after: 'event:40' }]);
  });

  it('starts from now and asks for a reload when the journal pruned the cursor', () => {
    vi.useFakeTimers();
    const fake = fakeClient();
    const resync = vi.fn();
    const stop = followEvents(fake.client, { onEvent: () => {}, onResync: resync });
    fake.deliver(7);
    fake.fail([{ message: 'pruned', extensions: { code: 'JOURNAL_PRUNED' } }]);
    expect(resync).toHaveBeenCalledOnce();
    vi.advanceTimersByTime(1000);
    expect(JSON.parse(fake.sent.at(-1)!).variables).toEqual({});
    stop();
    vi.useRealTimers();
  });
});
