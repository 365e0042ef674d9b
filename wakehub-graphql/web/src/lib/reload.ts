// Views re-query when events say their data changed. A cascade emits a burst of events, so
// reloads are coalesced: one at the end of a burst rather than one per event.
import type { WakeEvent } from './types';

export function coalesce(run: () => void, waitMs: number): { trigger: () => void; cancel: () => void } {
  let timer: ReturnType<typeof setTimeout> | null = null;
  return {
    trigger: () => {
      if (timer) clearTimeout(timer);
      timer = setTimeout(() => {
        timer = null;
        run();
      }, waitMs);
    },
    cancel: () => {
      if (timer) clearTimeout(timer);
      timer = null;
    },
  };
}

/** Events after which the lab's nodes (status, configuration, guests) may differ. */
export const NODE_EVENT_KINDS = new Set(['status-change', 'cascade-complete', 'cascade-error', 'host-discovered', 'machine-refreshed', 'machine-execution']);

export const changesNodes = (event: WakeEvent) => NODE_EVENT_KINDS.has(event.kind);
