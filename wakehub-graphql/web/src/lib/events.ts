// Following the journal live without losing or repeating an event. The server numbers
// events (`event:N`, monotonic, never reused) and `events(after:)` replays everything after
// an id before going live, so the client only has to remember the last id it applied and
// resubscribe after it. A reconnect can replay events the old subscription already
// delivered, so anything at or before the last applied id is dropped.
import type { Client } from 'graphql-ws';
import type { WakeEvent } from './types';
import { EVENT_FIELDS } from './queries';

/** The number in `event:N`; NaN when the id is not one. */
export function eventNumber(id: string): number {
  const match = /^event:(\d+)$/.exec(id);
  return match ? Number(match[1]) : Number.NaN;
}

export interface Cursor {
  /** The id of the last event applied, null before the first. */
  lastId: string | null;
}

/**
 * Whether `event` comes after the cursor (and so must be applied), and the cursor once it is.
 * Events at or before the cursor are duplicates of a replay; ids that are not `event:N` are
 * refused rather than trusted.
 */
export function advance(cursor: Cursor, event: Pick<WakeEvent, 'id'>): { apply: boolean; cursor: Cursor } {
  const n = eventNumber(event.id);
  if (Number.isNaN(n)) return { apply: false, cursor };
  if (cursor.lastId !== null && n <= eventNumber(cursor.lastId)) return { apply: false, cursor };
  return { apply: true, cursor: { lastId: event.id } };
}

/**
 * Applies a batch that may hold duplicates and arrive out of order (a replay racing the live
 * feed): sorted by id, each applied once, never one at or before the cursor.
 */
export function applyBatch(cursor: Cursor, events: WakeEvent[]): { applied: WakeEvent[]; cursor: Cursor } {
  const sorted = [...events].sort((a, b) => eventNumber(a.id) - eventNumber(b.id));
  const applied: WakeEvent[] = [];
  let current = cursor;
  for (const event of sorted) {
    const step = advance(current, event);
    if (step.apply) applied.push(event);
    current = step.cursor;
  }
  return { applied, cursor: current };
}

/** The variables of the `events` subscription for a cursor: resume after it, or live only. */
export function resumeVariables(cursor: Cursor): { after?: string } {
  return cursor.lastId === null ? {} : { after: cursor.lastId };
}

export const EVENTS_SUBSCRIPTION = `subscription Events($after: ID) { events(after: $after) { ${EVENT_FIELDS} } }`;

export interface FollowOptions {
  /**
   * Where to resume from: the latest event when the page loaded, so a disconnection before
   * the first live event loses nothing either. Without it the feed starts live.
   */
  from?: Cursor;
  onEvent: (event: WakeEvent) => void;
  /**
   * The journal no longer holds the events after our cursor (retention pruned them), or the
   * subscription ended: what the page shows may have missed changes and should be reloaded.
   */
  onResync: () => void;
}

/**
 * Subscribes to every event, applying each once and in order. When the socket reconnects,
 * graphql-ws sends the same subscribe payload again; its `variables` are read at that moment
 * (a getter), so the new subscription resumes after the last event applied.
 */
export function followEvents(client: Client, options: FollowOptions): () => void {
  let cursor: Cursor = options.from ?? { lastId: null };
  let stopped = false;
  let unsubscribe = () => {};

  const subscribe = () => {
    const payload = {
      query: EVENTS_SUBSCRIPTION,
      get variables() {
        return resumeVariables(cursor);
      },
    };
    unsubscribe = client.subscribe<{ events: WakeEvent }>(payload, {
      next: (result) => {
        const event = result.data?.events;
        if (!event) return;
        const step = advance(cursor, event);
        cursor = step.cursor;
        if (step.apply) options.onEvent(event);
      },
      error: (error) => {
        if (stopped) return;
        // JOURNAL_PRUNED: our cursor is older than what the journal keeps. Start again from
        // now and let the page reload its state instead.
        const pruned = Array.isArray(error) && error.some((e) => e?.extensions?.code === 'JOURNAL_PRUNED');
        if (pruned) cursor = { lastId: null };
        options.onResync();
        setTimeout(() => !stopped && subscribe(), 1000);
      },
      complete: () => {
        // The server ended a subscription that is meant to run for ever (it is shutting down):
        // resume after the last event once it is back.
        if (stopped) return;
        setTimeout(() => !stopped && subscribe(), 1000);
      },
    });
  };

  subscribe();
  return () => {
    stopped = true;
    unsubscribe();
  };
}
