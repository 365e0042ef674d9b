// The state every view shares: who is signed in, the live event feed and its connection state, cascades in flight, pending proposals and announcements.
// Views read it and subscribe to events to re-query what changed; nothing here is state the
// server does not also know.
import type { Client } from 'graphql-ws';
import { createApi, createSocket, socketUrl, untilAnswered, type Session, type SocketState } from './api';
import { followEvents, type Cursor } from './events';
import { readSession, writeSession } from './session';
import { CASCADE_QUERY, LATEST_EVENT_QUERY, ME_QUERY, PROPOSALS_QUERY, RUNNING_CASCADES_QUERY } from './queries';
import type { Cascade, Instance, Me, WakeEvent } from './types';

export interface Toast {
  id: number;
  text: string;
  href?: string;
}

type Listener = (event: WakeEvent) => void;

class AppState {
  session = $state<Session | null>(readSession(localStorage, Date.now()));
  me = $state<Me | null>(null);
  /** This server's part on a shared database (`null` until known). */
  instance = $state<Instance | null>(null);
  connection = $state<SocketState>('connecting');
  /** Cascades seen running (or that ended since the page loaded), by id. */
  cascades = $state<Record<string, Cascade>>({});
  pendingProposals = $state(0);
  toasts = $state<Toast[]>([]);
  /** Bumped when the feed may have missed events: views reload everything. */
  resyncs = $state(0);

  readonly api = createApi({
    fetch: (input, init) => fetch(input, init),
    token: () => this.session?.token ?? null,
    onUnauthenticated: () => this.signOut(),
  });

  #listeners = new Set<Listener>();
  #socket: Client | null = null;
  #stopFeed: () => void = () => {};
  #nextToast = 1;

  /** Every live event, once and in order, until the returned function is called. */
  onEvent(listener: Listener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  constructor() {
    // The browser knows before the socket does when the network is gone.
    addEventListener('offline', () => (this.connection = 'offline'));
    // And when it is back: an attempt begun while offline may hang half-open, so it is
    // dropped and the client connects again at once.
    addEventListener('online', () => {
      if (this.connection === 'offline') this.connection = 'reconnecting';
      if (this.connection !== 'connected') this.#socket?.terminate();
    });
  }

  /**
   * Opens the feed and loads what the header and tiles need. Called once signed in.
   *
   * The views appear (`me` set) only once the feed knows where the journal stands: every
   * event after what a view then loads reaches it, even across a disconnection before the
   * first live event. Without that cursor a feed could only start "from now" and would lose
   * what happened while the socket was away, so it is asked for until the server answers.
   */
  async start(): Promise<void> {
    const session = this.session;
    if (!session || this.#socket) return;
    const socket = createSocket({
      url: socketUrl(location),
      token: session.token,
      onState: (state) => (this.connection = state),
      onUnauthenticated: () => this.signOut(),
    });
    this.#socket = socket;
    const answer = await untilAnswered(
      () =>
        Promise.all([
          this.api.gql<{ me: Me; instance: Instance }>(ME_QUERY),
          this.api.gql<{ events: { nodes: { id: string }[] } }>(LATEST_EVENT_QUERY),
        ]),
      { stopped: () => this.#socket !== socket },
    );
    // Signed out meanwhile (or refused: onUnauthenticated signed out).
    if (!answer || this.#socket !== socket) return;
    const [{ me, instance }, { events }] = answer;
    const from: Cursor = { lastId: events.nodes[0]?.id ?? null };
    this.#stopFeed = followEvents(socket, {
      from,
      onEvent: (event) => this.#dispatch(event),
      onResync: () => {
        this.resyncs++;
        void this.#loadShared();
      },
    });
    this.me = me;
    this.instance = instance;
    await this.#loadShared();
  }

  signIn(session: Session): void {
    writeSession(localStorage, session);
    this.session = session;
    void this.start();
  }

  async signOut(callServer = false): Promise<void> {
    if (callServer && this.session) await this.api.logout();
    writeSession(localStorage, null);
    this.session = null;
    this.me = null;
    this.#stopFeed();
    this.#stopFeed = () => {};
    void this.#socket?.dispose();
    this.#socket = null;
    this.cascades = {};
    this.pendingProposals = 0;
    if (location.hash !== '#/login') location.hash = '#/login';
  }

  announce(text: string, href?: string): void {
    const toast = { id: this.#nextToast++, text, href };
    this.toasts = [...this.toasts, toast];
    setTimeout(() => this.dismissToast(toast.id), 8000);
  }

  dismissToast(id: number): void {
    this.toasts = this.toasts.filter((t) => t.id !== id);
  }

  /** Re-reads one cascade (after an event about it, or when a view opens it). */
  async refreshCascade(id: string): Promise<Cascade | null> {
    const { cascade } = await this.api.gql<{ cascade: Cascade | null }>(CASCADE_QUERY, { id });
    if (cascade) this.cascades = { ...this.cascades, [id]: cascade };
    return cascade;
  }

  subscribe<T>(query: string, variables: Record<string, unknown>, next: (data: T) => void): () => void {
    if (!this.#socket) return () => {};
    return this.#socket.subscribe<T>({ query, variables }, { next: (r) => r.data && next(r.data as T), error: () => {}, complete: () => {} });
  }

  async #loadShared(): Promise<void> {
    try {
      const [{ runningCascades }, { proposals }] = await Promise.all([
        this.api.gql<{ runningCascades: Cascade[] }>(RUNNING_CASCADES_QUERY),
        this.api.gql<{ proposals: unknown[] }>(PROPOSALS_QUERY),
      ]);
      this.cascades = { ...this.cascades, ...Object.fromEntries(runningCascades.map((c) => [c.id, c])) };
      this.pendingProposals = proposals.length;
    } catch {
      // Shown by the views that need it; the header can do without.
    }
  }

  #dispatch(event: WakeEvent): void {
    if (event.cascade && event.kind.startsWith('cascade-')) void this.refreshCascade(event.cascade).catch(() => {});
    if (event.payload.__typename === 'ShutdownProposed') {
      this.pendingProposals++;
      this.announce(`Shutdown of ${event.payload.name} proposed: ${event.payload.reason}`, '#/proposals');
    }
    if (event.payload.__typename === 'ProposalResolved') this.pendingProposals = Math.max(0, this.pendingProposals - 1);
    if (event.payload.__typename === 'HostDiscovered' && event.payload.added.length) {
      this.announce(`${event.payload.name}: ${event.payload.added.length} new guest(s) discovered`, '#/discovery');
    }
    for (const listener of this.#listeners) listener(event);
  }
}

export const app = new AppState();
