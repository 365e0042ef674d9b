import { describe, expect, it } from 'vitest';
import { NOTIFY_EVENTS, targetLine } from './notifications';

describe('notification rules', () => {
  it('say where they send in a few words', () => {
    const base = { server: null, topic: null, url: null, host: null, port: null, security: null, from: null, to: null, user: null };
    expect(targetLine({ ...base, kind: 'NTFY', server: 'https://ntfy.sh/', topic: 'lab' })).toBe('ntfy.sh/lab');
    expect(targetLine({ ...base, kind: 'WEBHOOK', url: 'https://hooks.lan/x' })).toBe('https://hooks.lan/x');
    expect(targetLine({ ...base, kind: 'SMTP', host: 'mail.lan', port: 587, to: ['ada@lab.example', 'bo@lab.example'] }))
      .toBe('ada@lab.example, bo@lab.example via mail.lan:587');
  });

  it('offer every event the API knows, once', () => {
    expect(new Set(NOTIFY_EVENTS.map((e) => e.value)).size).toBe(5);
  });
});
