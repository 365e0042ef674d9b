import { describe, expect, it } from 'vitest';
import { readSession, SESSION_KEY, writeSession } from './session';

function memory() {
  const map = new Map<string, string>();
  return {
    getItem: (k: string) => map.get(k) ?? null,
    setItem: (k: string, v: string) => void map.set(k, v),
    removeItem: (k: string) => void map.delete(k),
    map,
  };
}

describe('session storage', () => {
  const session = { token: 'whs_a', expiresAt: 2000, role: 'operator' as const, name: 'ana' };

  it('round-trips under wakehub.session', () => {
    const storage = memory();
    writeSession(storage, session);
    expect(storage.map.has(SESSION_KEY)).toBe(true);
    expect(readSession(storage, 1000)).toEqual(session);
    writeSession(storage, null);
    expect(readSession(storage, 1000)).toBeNull();
  });

  it('forgets an expired or malformed session', () => {
    const storage = memory();
    writeSession(storage, session);
    expect(readSession(storage, 2000)).toBeNull();
    storage.setItem(SESSION_KEY, '{not json');
    expect(readSession(storage, 0)).toBeNull();
    storage.setItem(SESSION_KEY, JSON.stringify({ ...session, role: 'root' }));
    expect(readSession(storage, 0)).toBeNull();
  });
});
