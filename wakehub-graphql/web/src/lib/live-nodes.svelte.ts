// The lab's nodes as the pages that list them keep them: loaded when the page opens, again
// when the feed may have missed events (a resync), and once after every burst of events that
// change nodes (see reload.ts).
import { ApiError } from './api';
import { NODES_QUERY } from './queries';
import { changesNodes, coalesce } from './reload';
import type { LabNode, WakeEvent } from './types';

/** What a list needs from the app (`app` from app.svelte.ts; a fake in the tests). */
export interface NodeSource {
  readonly api: { gql<T>(query: string, variables?: Record<string, unknown>): Promise<T> };
  readonly resyncs: number;
  onEvent(listener: (event: WakeEvent) => void): () => unknown;
}

export interface NodeListOptions {
  /** How long a burst of events is waited out before reloading. */
  waitMs?: number;
  /** More to read after the nodes, in the same load (its failure is the load's error). */
  then?: (nodes: LabNode[]) => Promise<void>;
}

export class NodeList {
  nodes = $state<LabNode[] | null>(null);
  error = $state<string | null>(null);
  readonly #source: NodeSource;
  readonly #options: NodeListOptions;

  constructor(source: NodeSource, options: NodeListOptions = {}) {
    this.#source = source;
    this.#options = options;
  }

  /** Reads the nodes; a failure keeps the last ones and sets `error`. */
  load = async (): Promise<void> => {
    try {
      const nodes = (await this.#source.api.gql<{ nodes: LabNode[] }>(NODES_QUERY)).nodes;
      this.nodes = nodes;
      await this.#options.then?.(nodes);
      this.error = null;
    } catch (e) {
      this.error = e instanceof ApiError ? e.message : String(e);
    }
  };

  /** Reloads once at the end of every burst of events that change nodes, until the returned function is called. */
  follow(): () => void {
    const reload = coalesce(this.load, this.#options.waitMs ?? 250);
    const off = this.#source.onEvent((event) => changesNodes(event) && reload.trigger());
    return () => {
      off();
      reload.cancel();
    };
  }
}

/** For a page's script: its nodes, loaded now, on every resync and after node events. */
export function liveNodes(source: NodeSource, options: NodeListOptions = {}): NodeList {
  const list = new NodeList(source, options);
  $effect(() => {
    void source.resyncs;
    void list.load();
  });
  $effect(() => list.follow());
  return list;
}
