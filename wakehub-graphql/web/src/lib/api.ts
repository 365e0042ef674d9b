// The dashboard's only way to the server: POST /login and /logout, POST /graphql, and the
// graphql-transport-ws socket on /graphql. Every failure becomes an ApiError carrying the
// server's stable `extensions.code` (and the per-field problems of a VALIDATION error),
// so views can show the message and put field errors on their form fields.
import { createClient, type Client } from 'graphql-ws';
import type { Role } from './types';

export interface FieldError {
  /** The node the problem is about, when the server names one. */
  node?: string;
  field: string;
  message: string;
}

export class ApiError extends Error {
  readonly code: string;
  readonly fields: FieldError[];
  /** The HTTP status, when the error came from an HTTP answer. */
  readonly status?: number;

  constructor(message: string, code: string, fields: FieldError[] = [], status?: number) {
    super(message);
    this.name = 'ApiError';
    this.code = code;
    this.fields = fields;
    this.status = status;
  }

  /** The message of the problem with `field`, if the server reported one. */
  fieldMessage(field: string): string | undefined {
    return this.fields.find((f) => f.field === field)?.message;
  }
}

/** What went wrong, for an alert: the server's message and its stable code, or the error as text. */
export function errorText(e: unknown): string {
  return e instanceof ApiError ? `${e.message} (${e.code})` : String(e);
}

/**
 * A view's action: clears its alert (`say(null)`), runs `what`, then `reload`; a failure is
 * said as `errorText`. Whether it worked.
 */
export async function attempt(
  what: () => Promise<unknown>,
  reload: () => Promise<unknown>,
  say: (alert: string | null) => void,
): Promise<boolean> {
  say(null);
  try {
    await what();
    await reload();
    return true;
  } catch (e) {
    say(errorText(e));
    return false;
  }
}

interface WireError {
  message?: string;
  extensions?: { code?: string; fields?: FieldError[] };
}

/** The first error of a GraphQL or /login error body, as an ApiError. */
export function toApiError(errors: WireError[] | undefined, status?: number): ApiError {
  const first = errors?.[0];
  const code = first?.extensions?.code ?? (status === 401 ? 'UNAUTHENTICATED' : 'INTERNAL');
  const message = first?.message ?? (status ? `The server answered HTTP ${status}` : 'Unknown error');
  // Every field problem of every error: a VALIDATION answer may split them across errors.
  const fields = (errors ?? []).flatMap((e) => e.extensions?.fields ?? []);
  return new ApiError(message, code, fields, status);
}

export interface Session {
  token: string;
  /** Milliseconds since the epoch. */
  expiresAt: number;
  role: Role;
  name: string;
}

export interface ApiOptions {
  fetch: typeof fetch;
  /** The session token to send, if any. */
  token: () => string | null;
  /** Called when the server no longer accepts the token (the caller returns to login). */
  onUnauthenticated: () => void;
}

export interface Api {
  gql<T>(query: string, variables?: Record<string, unknown>): Promise<T>;
  login(name: string, password: string): Promise<Session>;
  logout(): Promise<void>;
}

async function readJson(response: Response): Promise<Record<string, unknown> | null> {
  try {
    return (await response.json()) as Record<string, unknown>;
  } catch {
    return null;
  }
}

export function createApi(options: ApiOptions): Api {
  const headers = (): Record<string, string> => {
    const token = options.token();
    return {
      'content-type': 'application/json',
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    };
  };

  async function post(path: string, body: unknown): Promise<{ response: Response; json: Record<string, unknown> | null }> {
    let response: Response;
    try {
      response = await options.fetch(path, { method: 'POST', headers: headers(), body: JSON.stringify(body) });
    } catch {
      throw new ApiError('The server cannot be reached', 'OFFLINE');
    }
    return { response, json: await readJson(response) };
  }

  return {
    async gql<T>(query: string, variables: Record<string, unknown> = {}): Promise<T> {
      const { response, json } = await post('/graphql', { query, variables });
      const errors = json?.errors as WireError[] | undefined;
      if (!response.ok || errors?.length) {
        const error = toApiError(errors, response.ok ? undefined : response.status);
        if (error.code === 'UNAUTHENTICATED') options.onUnauthenticated();
        throw error;
      }
      return json?.data as T;
    },

    async login(name: string, password: string): Promise<Session> {
      const { response, json } = await post('/login', { name, password });
      if (!response.ok) throw toApiError(json?.errors as WireError[] | undefined, response.status);
      return json as unknown as Session;
    },

    async logout(): Promise<void> {
      // The session ends here whatever the server says: a token it no longer knows is gone.
      await post('/logout', {}).catch(() => undefined);
    },
  };
}

export type SocketState = 'connecting' | 'connected' | 'reconnecting' | 'offline';

export interface SocketOptions {
  url: string;
  token: string;
  onState: (state: SocketState) => void;
  /** The server closed the socket because the token is no longer valid. */
  onUnauthenticated: () => void;
}

/** Close codes after which retrying with the same token is pointless. */
const AUTH_CLOSE_CODES = new Set([4401, 4403]);

/** A ping every KEEP_ALIVE_MS; a socket whose pong takes longer than PONG_TIMEOUT_MS is dead. */
const KEEP_ALIVE_MS = 10_000;
const PONG_TIMEOUT_MS = 5_000;

/**
 * How long to wait before reconnection attempt `retries` (0 first): doubling from 1 s, at
 * most 10 s so a page comes back soon after the network does, plus up to 1 s of jitter
 * (`random` in [0, 1)) so many pages do not all reconnect at once after a server restart.
 */
export function retryDelay(retries: number, random: number): number {
  return Math.min(1000 * 2 ** retries, 10_000) + Math.floor(random * 1000);
}

/** The /graphql URL for WebSockets on the page's own origin. */
export function socketUrl(location: { protocol: string; host: string }): string {
  return `${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}/graphql`;
}

/**
 * One socket for every subscription of the page. It retries forever (the server may be
 * restarted under us) except when the server refuses the token.
 */
export function createSocket(options: SocketOptions): Client {
  let everConnected = false;
  let pongTimer: ReturnType<typeof setTimeout> | undefined;
  const client: Client = createClient({
    url: options.url,
    connectionParams: { token: options.token },
    lazy: false,
    keepAlive: KEEP_ALIVE_MS,
    retryAttempts: Number.POSITIVE_INFINITY,
    retryWait: (retries) => new Promise((resolve) => setTimeout(resolve, retryDelay(retries, Math.random()))),
    shouldRetry: (event) => !(isCloseEvent(event) && AUTH_CLOSE_CODES.has(event.code)),
    on: {
      // A network that vanished closes nothing, and a polite close would wait for a peer that
      // is gone: without a pong the socket is dropped at once (graphql-ws's `terminate`),
      // which shows "reconnecting" and starts the retries (and the replay after them).
      ping: (received) => {
        if (received) return;
        pongTimer = setTimeout(() => client.terminate(), PONG_TIMEOUT_MS);
      },
      pong: (received) => {
        if (received) clearTimeout(pongTimer);
      },
      connecting: () => options.onState(everConnected ? 'reconnecting' : 'connecting'),
      connected: () => {
        everConnected = true;
        options.onState('connected');
      },
      closed: (event) => {
        clearTimeout(pongTimer);
        if (isCloseEvent(event) && AUTH_CLOSE_CODES.has(event.code)) {
          options.onUnauthenticated();
          return;
        }
        const offline = typeof navigator !== 'undefined' && navigator.onLine === false;
        options.onState(offline ? 'offline' : 'reconnecting');
      },
    },
  });
  return client;
}

function isCloseEvent(value: unknown): value is { code: number } {
  return typeof value === 'object' && value !== null && 'code' in value && typeof (value as { code: unknown }).code === 'number';
}

/**
 * Calls `attempt` until it succeeds: after a failure it waits (doubling from 500 ms, at most
 * 5 s) and tries again, unless the server refused the session (UNAUTHENTICATED) or `stopped()`
 * says the caller no longer wants the answer; null then.
 */
export async function untilAnswered<T>(
  attempt: () => Promise<T>,
  options: { stopped: () => boolean; wait?: (ms: number) => Promise<void> },
): Promise<T | null> {
  const wait = options.wait ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  for (let failures = 0; ; failures++) {
    if (options.stopped()) return null;
    try {
      const answer = await attempt();
      return options.stopped() ? null : answer;
    } catch (error) {
      if (error instanceof ApiError && error.code === 'UNAUTHENTICATED') return null;
    }
    await wait(Math.min(500 * 2 ** failures, 5000));
  }
}
