import { describe, expect, it, vi } from 'vitest';
import { ApiError, attempt, createApi, errorText, retryDelay, socketUrl, toApiError, untilAnswered } from './api';

const answer = (status: number, body: unknown) =>
  vi.fn(async () => new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } }));

describe('gql', () => {
  it('sends the session token and returns data', async () => {
    const fetch = answer(200, { data: { nodes: [] } });
    const api = createApi({ fetch, token: () => 'whs_x', onUnauthenticated: () => {} });
    expect(await api.gql('{ nodes { id } }')).toEqual({ nodes: [] });
    const [path, init] = fetch.mock.calls[0] as unknown as [string, RequestInit];
    expect(path).toBe('/graphql');
    expect((init.headers as Record<string, string>).authorization).toBe('Bearer whs_x');
  });

  it('turns a VALIDATION answer into field errors', async () => {
    const fetch = answer(200, {
      data: null,
      errors: [
        {
          message: 'invalid node',
          extensions: {
            code: 'VALIDATION',
            fields: [
              { node: 'nas', field: 'name', message: 'must match [a-z0-9][a-z0-9-_]*' },
              { node: 'nas', field: 'startTimeout', message: 'not a duration' },
            ],
          },
        },
      ],
    });
    const api = createApi({ fetch, token: () => null, onUnauthenticated: () => {} });
    const error = (await api.gql('mutation { x }').catch((e: unknown) => e)) as ApiError;
    expect(error).toBeInstanceOf(ApiError);
    expect(error.code).toBe('VALIDATION');
    expect(error.fieldMessage('startTimeout')).toBe('not a duration');
    expect(error.fieldMessage('kind')).toBeUndefined();
  });

  it('reports an HTTP 401 as UNAUTHENTICATED and says so once', async () => {
    const onUnauthenticated = vi.fn();
    const fetch = answer(401, { errors: [{ message: 'no token', extensions: { code: 'UNAUTHENTICATED' } }] });
    const api = createApi({ fetch, token: () => 'gone', onUnauthenticated });
    await expect(api.gql('{ nodes { id } }')).rejects.toMatchObject({ code: 'UNAUTHENTICATED', status: 401 });
    expect(onUnauthenticated).toHaveBeenCalledOnce();
  });

  it('names an unreachable server', async () => {
    const fetch = vi.fn(async () => {
      throw new TypeError('Failed to fetch');
    });
    const api = createApi({ fetch, token: () => null, onUnauthenticated: () => {} });
    await expect(api.gql('{ nodes { id } }')).rejects.toMatchObject({ code: 'OFFLINE' });
  });
});

describe('login', () => {
  it('returns the session', async () => {
    const session = { token: 'whs_a', expiresAt: 1, role: 'admin', name: 'demo' };
    const api = createApi({ fetch: answer(200, session), token: () => null, onUnauthenticated: () => {} });
    expect(await api.login('demo', 'pw')).toEqual(session);
  });

  it('keeps the code of a refusal (429 RATE_LIMITED)', async () => {
    const fetch = answer(429, { errors: [{ message: 'too many attempts', extensions: { code: 'RATE_LIMITED' } }] });
    const api = createApi({ fetch, token: () => null, onUnauthenticated: () => {} });
    await expect(api.login('demo', 'x')).rejects.toMatchObject({ code: 'RATE_LIMITED', message: 'too many attempts' });
  });
});

describe('errorText', () => {
  it('says the message with its code, or the error as text', () => {
    expect(errorText(new ApiError('nope', 'FORBIDDEN'))).toBe('nope (FORBIDDEN)');
    expect(errorText(new Error('offline'))).toBe('Error: offline');
  });
});

describe('attempt', () => {
  it('clears the alert, acts, reloads, and says a failure with its code', async () => {
    const said: (string | null)[] = [];
    const reload = vi.fn(async () => {});
    expect(await attempt(async () => {}, reload, (a) => said.push(a))).toBe(true);
    expect(reload).toHaveBeenCalledTimes(1);
    expect(said).toEqual([null]);
    const failing = async () => {
      throw new ApiError('no such node', 'NOT_FOUND');
    };
    expect(await attempt(failing, reload, (a) => said.push(a))).toBe(false);
    expect(reload).toHaveBeenCalledTimes(1);
    expect(said).toEqual([null, null, 'no such node (NOT_FOUND)']);
  });
});

describe('helpers', () => {
  it('defaults the code from the status when the body has none', () => {
    expect(toApiError(undefined, 401).code).toBe('UNAUTHENTICATED');
    expect(toApiError(undefined, 502)).toMatchObject({ code: 'INTERNAL', message: 'The server answered HTTP 502' });
  });

  it('builds the socket URL on the same origin', () => {
    expect(socketUrl({ protocol: 'https:', host: 'lab.example:8443' })).toBe('wss://lab.example:8443/graphql');
    expect(socketUrl({ protocol: 'http:', host: '127.0.0.1:5173' })).toBe('ws://127.0.0.1:5173/graphql');
  });
});

describe('retryDelay', () => {
  it('doubles from a second up to ten, with jitter', () => {
    expect([0, 1, 2, 3, 4, 10].map((n) => retryDelay(n, 0))).toEqual([1000, 2000, 4000, 8000, 10_000, 10_000]);
    expect(retryDelay(0, 0.999)).toBe(1999);
  });
});

describe('untilAnswered', () => {
  const waits: number[] = [];
  const wait = async (ms: number) => void waits.push(ms);

  it('tries again after a failure, waiting longer each time, until the server answers', async () => {
    waits.length = 0;
    let calls = 0;
    const answer = await untilAnswered(
      async () => {
        if (++calls < 4) throw new ApiError('The server cannot be reached', 'OFFLINE');
        return 'latest';
      },
      { stopped: () => false, wait },
    );
    expect(answer).toBe('latest');
    expect(waits).toEqual([500, 1000, 2000]);
  });

  it('gives up when the session is refused or the caller stopped waiting', async () => {
    const refused = await untilAnswered(async () => Promise.reject(new ApiError('no', 'UNAUTHENTICATED')), { stopped: () => false, wait });
    expect(refused).toBeNull();
    let stop = false;
    const stopped = await untilAnswered(
      async () => {
        stop = true;
        return 'too late';
      },
      { stopped: () => stop, wait },
    );
    expect(stopped).toBeNull();
  });
});
