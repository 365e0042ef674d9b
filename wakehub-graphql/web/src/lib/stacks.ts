// Stacks as the dashboard shows them: one line per stack, the health of its services, what a
// command is waiting for, and a unified diff split into lines a person can scan.
import type { StackCommand, StackService, StackSummary } from './types';

/** Whether a command has ended. */
export const commandOver = (status: string) => !['pending', 'running'].includes(status);

/** `3/4 running, 1 unhealthy`: the services of a stack at a glance. */
export function servicesSummary(services: StackService[]): string {
  if (!services.length) return 'no containers';
  const running = services.filter((s) => s.state === 'running').length;
  const unhealthy = services.filter((s) => s.health === 'unhealthy').length;
  const missing = services.filter((s) => s.state === 'missing').length;
  const parts = [`${running}/${services.length} running`];
  if (unhealthy) parts.push(`${unhealthy} unhealthy`);
  if (missing) parts.push(`${missing} missing`);
  return parts.join(', ');
}

/** The word for a stack's state: `asleep or unreachable`, `drift`, `healthy`, `degraded`, `down`, `not applied`. */
export function stackState(s: StackSummary): 'unreachable' | 'not applied' | 'drift' | 'down' | 'degraded' | 'healthy' {
  if (s.engineError) return 'unreachable';
  if (s.currentVersion === null) return 'not applied';
  if (s.drift.length) return 'drift';
  const running = s.services.filter((x) => x.state === 'running');
  if (!running.length) return 'down';
  if (s.services.some((x) => x.health === 'unhealthy' || x.health === 'starting')) return 'degraded';
  return 'healthy';
}

/** How long a service has run, from its start. */
export function uptime(startedAt: string | null | undefined, now: number): string | null {
  if (!startedAt) return null;
  const secs = Math.max(0, Math.round((now - Date.parse(startedAt)) / 1000));
  if (secs < 60) return `${secs} s`;
  if (secs < 3600) return `${Math.floor(secs / 60)} min`;
  if (secs < 86400) return `${Math.floor(secs / 3600)} h ${Math.floor((secs % 3600) / 60)} min`;
  return `${Math.floor(secs / 86400)} d ${Math.floor((secs % 86400) / 3600)} h`;
}

export interface DiffLine {
  kind: 'add' | 'remove' | 'hunk' | 'header' | 'same';
  text: string;
}

/** A unified diff's lines, each with its kind (for colour and for screen readers). */
export function diffLines(diff: string): DiffLine[] {
  return diff
    .split('\n')
    .filter((l, i, all) => !(l === '' && i === all.length - 1))
    .map((text) => {
      if (text.startsWith('+++') || text.startsWith('---')) return { kind: 'header', text };
      if (text.startsWith('@@')) return { kind: 'hunk', text };
      if (text.startsWith('+')) return { kind: 'add', text };
      if (text.startsWith('-')) return { kind: 'remove', text };
      return { kind: 'same', text };
    });
}

/** One line saying what a command is or did. */
export function describeCommand(c: StackCommand): string {
  const what = `${c.kind}${c.version !== null ? ` to version ${c.version}` : ''}`;
  switch (c.status) {
    case 'pending':
      return `${what}: pending${c.reason && c.reason !== 'queued' ? ` — ${c.reason}` : ''}`;
    case 'failed':
      return `${what}: failed${c.errorCode ? ` (${c.errorCode})` : ''}`;
    default:
      return `${what}: ${c.status}`;
  }
}
