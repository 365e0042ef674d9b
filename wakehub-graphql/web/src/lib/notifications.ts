// Notification rules for people: the events a rule may notify, and where it sends them.
import type { NotificationTarget, NotifyEvent } from './types';

export const NOTIFY_EVENTS: { value: NotifyEvent; label: string }[] = [
  { value: 'CASCADE_FAILED', label: 'a cascade failed' },
  { value: 'PROPOSAL_WAITING', label: 'a shutdown proposal waits' },
  { value: 'NODE_DOWN', label: 'a node went down unexpectedly' },
  { value: 'MAINTENANCE_REPORT', label: 'a maintenance report' },
  { value: 'UPDATE_AVAILABLE', label: 'updates available' },
];

/** Where a target sends, in a few words: `ntfy.sh/lab`, `https://hooks.lan/x`, `ada@lab.example via mail.lan:587`. */
export function targetLine(t: NotificationTarget): string {
  if (t.kind === 'NTFY') return `${(t.server ?? '').replace(/^https?:\/\//, '').replace(/\/$/, '')}/${t.topic}`;
  if (t.kind === 'WEBHOOK') return t.url ?? '';
  return `${(t.to ?? []).join(', ')} via ${t.host}:${t.port}`;
}
