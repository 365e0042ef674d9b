// What the dashboard says about machines: the badges a tile carries, updates in the order a
// person reads them (security first), actions in words, and a maintenance window's
// selection from what a form holds.
import type { MachineSummary, PackageUpgrade } from './types';

export type Tone = 'info' | 'warn' | 'danger' | 'muted';

export interface Badge {
  text: string;
  tone: Tone;
  /** The long form, for screen readers and titles. */
  label: string;
}

/** The badges of a machine's state: updates, security updates, reboot, asleep, a failed refresh. */
export function machineBadges(m: MachineSummary | null): Badge[] {
  if (!m) return [];
  const badges: Badge[] = [];
  if (m.lastOutcome === 'failed') badges.push({ text: 'refresh failed', tone: 'danger', label: 'Its last refresh failed' });
  if (m.securityUpdates > 0) {
    badges.push({ text: `${m.securityUpdates} security`, tone: 'danger', label: `${m.securityUpdates} security update${m.securityUpdates === 1 ? '' : 's'}` });
  }
  if (m.updates > 0) badges.push({ text: `${m.updates} updates`, tone: 'warn', label: `${m.updates} update${m.updates === 1 ? '' : 's'} pending` });
  if (m.rebootRequired) badges.push({ text: 'reboot', tone: 'warn', label: 'Reboot required' });
  if (m.asleep && m.refreshedAt) badges.push({ text: 'last known', tone: 'muted', label: 'Asleep: this is what was last known' });
  return badges;
}

/** Updates security first, then by name; held ones last. */
export function sortUpgrades<T extends PackageUpgrade>(upgrades: T[]): T[] {
  const rank = (u: T) => (u.held ? 2 : u.security ? 0 : 1);
  return [...upgrades].sort((a, b) => rank(a) - rank(b) || a.name.localeCompare(b.name));
}

/** `upgrade` → `Upgrade`, `docker-prune` → `Docker prune`, `command:backup` → `Run backup`. */
export function actionLabel(action: string): string {
  if (action.startsWith('command:')) return `Run ${action.slice('command:'.length)}`;
  if (action === 'docker-prune') return 'Docker prune';
  return action.charAt(0).toUpperCase() + action.slice(1);
}

/** Whether an action changes the machine enough to ask first (everything but an operator's command is). */
export const needsConfirmation = (action: string) => !action.startsWith('command:');

/** `a, b c` → `['a', 'b', 'c']`: names or tags as a person types them. */
export function splitList(text: string): string[] {
  return [...new Set(text.split(/[\s,]+/).map((s) => s.trim()).filter(Boolean))];
}

/** The statuses of executions and runs that are over. */
export const isOver = (status: string) => !['queued', 'running'].includes(status);
