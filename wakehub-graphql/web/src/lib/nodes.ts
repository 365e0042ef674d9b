// Plain functions over nodes: the dashboard's groups, the honest status word, and the
// NodeInput that `createNode`/`updateNode`/`adoptNode` take, built from a node or a form.
import type { Cascade, IdleRule, IdleStatus, LabNode, PowerState } from './types';

export interface Group<T> {
  tag: string;
  nodes: T[];
}

export const UNTAGGED = 'Other';

/** One group per tag, sorted by name, with a node in every group it is tagged with; untagged last. */
export function groupByTag<T extends { tags: string[]; name: string }>(nodes: T[]): Group<T>[] {
  const groups = new Map<string, T[]>();
  const other: T[] = [];
  for (const node of nodes) {
    if (node.tags.length === 0) other.push(node);
    for (const tag of new Set(node.tags)) groups.set(tag, [...(groups.get(tag) ?? []), node]);
  }
  const byName = (a: T, b: T) => a.name.localeCompare(b.name);
  const out = [...groups.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([tag, list]) => ({ tag, nodes: list.sort(byName) }));
  if (other.length) out.push({ tag: UNTAGGED, nodes: other.sort(byName) });
  return out;
}

export type DisplayStatus = 'on' | 'off' | 'starting' | 'stopping' | 'error' | 'unknown' | 'stale';

/**
 * What a badge says. A node never observed is `unknown` (never `on` by assumption), and one
 * whose last observation is too old is `stale` whatever it said then.
 */
export function displayStatus(node: { status: PowerState; stale?: boolean; observedAt?: string | null }): DisplayStatus {
  if (node.status === 'UNKNOWN') return 'unknown';
  if (node.observedAt === null) return 'unknown';
  if (node.stale) return 'stale';
  return node.status.toLowerCase() as DisplayStatus;
}

/** Hosts that offer a platform discovery can list. */
export const DISCOVERY_PLATFORMS = ['proxmox', 'docker'];
export const offersDiscovery = (node: { offers: string[] }) => node.offers.some((o) => DISCOVERY_PLATFORMS.includes(o));

/** How many of a host's guests were discovered and wait to be configured. */
export const toConfigure = (node: { children: { state: string }[] }) => node.children.filter((c) => c.state === 'DISCOVERED').length;

export interface NodeInput {
  name: string;
  kind: string;
  parent: string | null;
  dependsOn: string[];
  pinned: boolean;
  confirmAutoShutdown: boolean;
  stopWhenEmpty: boolean;
  startTimeout: string;
  stopTimeout: string;
  readiness: { tcp?: string; http?: string; status?: number } | null;
  offers: string[];
  tags: string[];
  connector: Record<string, unknown>;
  url: string | null;
  idle: IdleRuleInput | null;
  watts: { on: number; off: number; meter?: string | null } | null;
  proxy: LabNode['proxy'];
}

/** An inactivity rule as `createNode`/`updateNode` take it. */
export interface IdleRuleInput {
  after: string;
  tcpPorts?: number[];
  sshSessions?: boolean;
  cpuPercent?: number;
  netKbps?: number;
  reported?: boolean;
  wattsAbove?: number;
  probe?: { url: string; pointer?: string };
  vetoUrl?: { url: string; pointer?: string };
  vetoCommand?: string;
}

/** The input of a rule as it is (null fields left out). */
export function idleInput(rule: IdleRule | null): IdleRuleInput | null {
  if (!rule) return null;
  const check = (c: IdleRule['probe']) => (c ? (c.pointer ? { url: c.url, pointer: c.pointer } : { url: c.url }) : undefined);
  const input: IdleRuleInput = { after: rule.after };
  if (rule.tcpPorts.length) input.tcpPorts = rule.tcpPorts;
  if (rule.sshSessions) input.sshSessions = true;
  if (rule.cpuPercent !== null) input.cpuPercent = rule.cpuPercent;
  if (rule.netKbps !== null) input.netKbps = rule.netKbps;
  if (rule.reported) input.reported = true;
  if (rule.wattsAbove !== null) input.wattsAbove = rule.wattsAbove;
  if (rule.probe) input.probe = check(rule.probe);
  if (rule.vetoUrl) input.vetoUrl = check(rule.vetoUrl);
  if (rule.vetoCommand !== null) input.vetoCommand = rule.vetoCommand;
  return input;
}

/** What a rule watches, for people: `CPU > 5 %, TCP 445, a probe`. */
export function idleSignals(rule: IdleRule): string {
  const parts: string[] = [];
  if (rule.cpuPercent !== null) parts.push(`CPU > ${rule.cpuPercent} %`);
  if (rule.netKbps !== null) parts.push(`traffic > ${rule.netKbps} kB/s`);
  if (rule.wattsAbove !== null) parts.push(`power > ${rule.wattsAbove} W`);
  if (rule.reported) parts.push('in use, as its connector reports');
  if (rule.tcpPorts.length) parts.push(`TCP ${rule.tcpPorts.join(', ')}`);
  if (rule.sshSessions) parts.push('SSH sessions');
  if (rule.probe) parts.push('a probe');
  parts.push('requests through the proxy');
  return parts.join(', ');
}

/**
 * The line a node under an inactivity rule shows: its stop under way, why it is kept, or
 * how long until it is idle (counted from `idleAt`, not from when the page loaded).
 */
export function idleLine(status: IdleStatus, now: number): string {
  if (status.stopRequested) return 'Idle: stopping';
  const left = Math.round((Date.parse(status.idleAt) - now) / 1000);
  if (status.kept && left <= 0) return `Idle, kept on: ${status.kept}`;
  if (left <= 0) return 'Idle: stops at the next check';
  if (left < 60) return `Idle in ${left} s`;
  if (left < 3600) return `Idle in ${Math.round(left / 60)} min`;
  const hours = Math.floor(left / 3600);
  return `Idle in ${hours} h ${Math.round((left - hours * 3600) / 60)} min`;
}

/**
 * The input that leaves a node as it is (`updateNode` replaces the whole configuration, so
 * the edit form starts from everything the node has). Parent and dependencies by name.
 */
export function nodeToInput(node: LabNode): NodeInput {
  return {
    name: node.name,
    kind: node.kind,
    parent: node.parent?.name ?? null,
    dependsOn: node.dependsOn.map((d) => d.name),
    pinned: node.pinned,
    confirmAutoShutdown: node.confirmAutoShutdown,
    stopWhenEmpty: node.stopWhenEmpty,
    startTimeout: node.startTimeout,
    stopTimeout: node.stopTimeout,
    readiness: readinessInput(node.readiness),
    offers: node.offers,
    tags: node.tags,
    connector: { ...(node.connector?.settings ?? {}), type: node.connector?.type ?? '' },
    url: node.url,
    idle: idleInput(node.idle),
    watts: node.watts ? (node.watts.meter ? { ...node.watts } : { on: node.watts.on, off: node.watts.off }) : null,
    proxy: node.proxy,
  };
}

function readinessInput(readiness: LabNode['readiness']): NodeInput['readiness'] {
  if (!readiness) return null;
  if (readiness.kind === 'tcp') return { tcp: readiness.target };
  return readiness.status === null ? { http: readiness.target } : { http: readiness.target, status: readiness.status };
}

/** `media, lab ,` → `['media', 'lab']`. */
export function parseList(text: string): string[] {
  return [...new Set(text.split(',').map((s) => s.trim()).filter(Boolean))];
}

/** The cascade a tile shows for `node`: one touching it that runs, else its latest failure. */
export function cascadeFor(cascades: Record<string, Cascade>, node: string): Cascade | null {
  const touching = Object.values(cascades).filter((c) => c.nodeName === node || c.steps.some((s) => s.nodeName === node));
  const running = touching.find((c) => c.status === 'PENDING' || c.status === 'IN_PROGRESS');
  if (running) return running;
  const failed = touching.filter((c) => c.status === 'FAILED').sort((a, b) => b.createdAt.localeCompare(a.createdAt));
  return failed[0] ?? null;
}

/** The node form's fields, named as in NodeInput. */
export const FORM_FIELDS = [
  'name', 'kind', 'parent', 'dependsOn', 'tags', 'offers', 'pinned', 'confirmAutoShutdown', 'stopWhenEmpty',
  'startTimeout', 'stopTimeout', 'readiness', 'url', 'idle', 'watts', 'connector',
] as const;
export type FormField = (typeof FORM_FIELDS)[number];

const squash = (s: string) => s.toLowerCase().replace(/[^a-z]/g, '');

/**
 * The form field a VALIDATION problem belongs to. The server names fields as in the
 * topology file (`start_timeout`, `readiness.tcp`, `connector.host`); null when the form has
 * no such field (the problem is then shown with the form's other errors).
 */
export function formField(serverField: string): FormField | null {
  const head = squash(serverField.split('.')[0]);
  return FORM_FIELDS.find((f) => squash(f) === head) ?? null;
}

/** A new node's form before anything is typed. */
export const EMPTY_INPUT: NodeInput = {
  name: '', kind: 'container', parent: null, dependsOn: [], pinned: false, confirmAutoShutdown: false, stopWhenEmpty: false,
  startTimeout: '5m', stopTimeout: '2m', readiness: null, offers: [], tags: [], connector: { type: 'sim' }, url: null, idle: null, watts: null, proxy: null,
};
