// The session lives in localStorage (key `wakehub.session`) so a reload, a second tab and
// the GraphiQL page all use it. It is a bearer token, never a cookie.
import type { Session } from './api';
import { isRole } from './access';

export const SESSION_KEY = 'wakehub.session';

export function readSession(storage: Pick<Storage, 'getItem'>, now: number): Session | null {
  try {
    const value = JSON.parse(storage.getItem(SESSION_KEY) ?? 'null') as Partial<Session> | null;
    if (!value || typeof value.token !== 'string' || typeof value.name !== 'string') return null;
    if (typeof value.role !== 'string' || !isRole(value.role)) return null;
    if (typeof value.expiresAt === 'number' && value.expiresAt <= now) return null;
    return value as Session;
  } catch {
    return null;
  }
}

export function writeSession(storage: Pick<Storage, 'setItem' | 'removeItem'>, session: Session | null): void {
  if (session) storage.setItem(SESSION_KEY, JSON.stringify(session));
  else storage.removeItem(SESSION_KEY);
}
