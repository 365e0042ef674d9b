// How journal events read in a list: one line each, naming the node.
import { eventNumber } from './events';
import type { WakeEvent } from './types';

export const EVENT_KINDS = [
  'status-change', 'cascade-progress', 'cascade-complete', 'cascade-error', 'shutdown-proposed',
  'node-kept', 'proposal-resolved', 'capability-denied', 'host-discovered', 'power-refused',
  'machine-refreshed', 'machine-execution', 'maintenance',
] as const;

export function describeEvent(event: WakeEvent): string {
  const p = event.payload;
  switch (p.__typename) {
    case 'StatusChange':
      return `${p.name} is ${p.state.toLowerCase()}`;
    case 'CascadePlanned':
      return `${p.action.toLowerCase()} planned: ${p.totalSteps} step${p.totalSteps === 1 ? '' : 's'}`;
    case 'CascadeProgress':
      return `${p.current.action.toLowerCase()} ${p.current.name}: ${p.current.stepStatus.toLowerCase()} (${p.step}/${p.totalSteps})`;
    case 'CascadeComplete':
      return `${p.action.toLowerCase()} completed`;
    case 'CascadeError':
      return `${p.action.toLowerCase()} ${p.status.toLowerCase()}: ${p.code} — ${p.message}`;
    case 'ShutdownProposed':
      return `shutdown of ${p.name} proposed: ${p.reason}`;
    case 'NodeKept':
      return `${p.name} kept on: ${p.reason}`;
    case 'ProposalResolved':
      return `proposal ${p.confirmed ? 'confirmed' : 'dismissed'}`;
    case 'CapabilityDenied':
      return `${p.plugin} on ${p.name} was denied ${p.what}`;
    case 'HostDiscovered':
      return `${p.name}: ${p.added.length} new guest(s)${p.added.length ? ` (${p.added.join(', ')})` : ''}, ${p.disappeared.length} gone`;
    case 'PowerRefused':
      return `${p.actor} may not ${p.action.toLowerCase()} ${p.name} (${p.code})`;
    case 'MachineRefreshed':
      return p.outcome === 'failed' ? `${p.name}: refresh failed (${p.refreshCode ?? 'error'})` : `${p.name} refreshed: ${p.summary}`;
    case 'MachineExecution':
      return `${p.machineAction} on ${p.name}: ${p.executionStatus}${p.errorKind ? ` (${p.errorKind})` : ''}`;
    case 'MaintenanceProgress':
      return `${p.run}: ${p.phase}${p.machine ? ` ${p.machine}` : ''} ${p.runStatus} — ${p.message}`;
    case 'StackCommandProgress':
      return `${p.commandKind}${p.version !== null ? ` to version ${p.version}` : ''} on ${p.stack}: ${p.commandStatus}${p.commandCode ? ` (${p.commandCode})` : ''}`;
  }
}

export interface JournalFilter {
  node: string;
  kinds: string[];
  /** `datetime-local` values (local time), empty for no bound. */
  since: string;
  until: string;
}

/** Whether a live event passes the filter the journal shows (the server filters the pages). */
export function matches(event: WakeEvent, filter: JournalFilter, nodeId: string | null): boolean {
  if (filter.node && event.node !== nodeId) return false;
  if (filter.kinds.length && !filter.kinds.includes(event.kind)) return false;
  const at = Date.parse(event.at);
  if (filter.since && at < Date.parse(filter.since)) return false;
  if (filter.until && at > Date.parse(filter.until)) return false;
  return true;
}

/** A `datetime-local` value as RFC 3339 for the server, or undefined when empty. */
export function toRfc3339(local: string): string | undefined {
  if (!local) return undefined;
  const date = new Date(local);
  return Number.isNaN(date.getTime()) ? undefined : date.toISOString();
}

/**
 * Adds events to the list shown, each once (a live event may also arrive in a page being
 * loaded), keeping the list's order: newest first or oldest first.
 */
export function mergeEvents(shown: WakeEvent[], incoming: WakeEvent[], newestFirst: boolean): WakeEvent[] {
  const byId = new Map(shown.map((e) => [e.id, e]));
  for (const event of incoming) byId.set(event.id, event);
  const sign = newestFirst ? -1 : 1;
  return [...byId.values()].sort((a, b) => sign * (eventNumber(a.id) - eventNumber(b.id)));
}
