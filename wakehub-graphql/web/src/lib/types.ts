// The shapes the dashboard reads from the API, written from wakehub-graphql/schema.graphql.
// Only the fields the dashboard selects.

export type Role = 'viewer' | 'operator' | 'admin';
export type PowerState = 'ON' | 'OFF' | 'STARTING' | 'STOPPING' | 'UNKNOWN' | 'ERROR';
export type NodeState = 'CONFIGURED' | 'DISCOVERED';
export type Action = 'START' | 'STOP';
export type CascadeStatus = 'PENDING' | 'IN_PROGRESS' | 'COMPLETED' | 'FAILED' | 'CANCELLED' | 'INTERRUPTED';
export type StepStatus = 'PENDING' | 'RUNNING' | 'DONE' | 'SKIPPED' | 'JOINED' | 'FAILED' | 'CANCELLED' | 'INTERRUPTED';
export type StepRole = 'REQUESTED' | 'REQUIRED' | 'DEPENDENT' | 'UNUSED';

/** The server answering: on a database several servers share, whether it leads (runs the work) or follows the one that does. */
export interface Instance {
  leads: boolean;
  sharedDatabase: boolean;
}

export interface Me {
  name: string;
  role: Role;
  /** `*` or a selector such as `tag:media,jellyfin`. */
  scope: string;
}

export interface NodeRef {
  id: string;
  name: string;
}

export interface Readiness {
  kind: 'tcp' | 'http';
  target: string;
  status: number | null;
}

export interface Discovery {
  source: string;
  key: string;
  details: Record<string, unknown>;
  status: PowerState;
  firstSeen: string;
  lastSeen: string;
  goneAt: string | null;
}

export interface LabNode {
  id: string;
  name: string;
  kind: string;
  state: NodeState;
  status: PowerState;
  pinned: boolean;
  confirmAutoShutdown: boolean;
  stopWhenEmpty: boolean;
  startTimeout: string;
  stopTimeout: string;
  readiness: Readiness | null;
  offers: string[];
  connector: { type: string; settings: Record<string, unknown> } | null;
  tags: string[];
  parent: NodeRef | null;
  children: (NodeRef & { state: NodeState })[];
  dependsOn: NodeRef[];
  observedAt: string | null;
  stale: boolean;
  url: string | null;
  canPower: boolean;
  canEdit: boolean;
  /** WakeHub reaches it over SSH (its state, its actions, maintenance). */
  isMachine: boolean;
  /** Its state, once refreshed. */
  machine: MachineSummary | null;
  /** Its inactivity rule. */
  idle: IdleRule | null;
  /** While it runs under its rule: the countdown and what keeps it on. */
  idleStatus: IdleStatus | null;
  /** What it draws, for the energy report: configured, or read by a meter node. */
  watts: PowerDraw | null;
  /** What its meter (or itself, as a meter) read last. */
  wattsNow: { at: string; watts: number | null; error: string | null } | null;
  /** How WakeHub's proxy fronts it. */
  proxy: {
    hosts: string[];
    path: string | null;
    upstream: string | null;
    /** An https upstream's certificate, pinned (SHA-256). */
    tlsFingerprint?: string | null;
    tcp: { listen: string; to: string }[] | null;
  } | null;
}

export interface PowerDraw {
  on: number;
  off: number;
  /** The node whose connector measures its draw. */
  meter: string | null;
}

export interface HttpCheck {
  url: string;
  pointer: string | null;
}

export interface IdleRule {
  after: string;
  tcpPorts: number[];
  sshSessions: boolean;
  cpuPercent: number | null;
  netKbps: number | null;
  reported: boolean;
  wattsAbove: number | null;
  probe: HttpCheck | null;
  vetoUrl: HttpCheck | null;
  vetoCommand: string | null;
}

export interface IdleReading {
  signal: string;
  value: string;
  active: boolean;
  error: string | null;
}

export interface IdleStatus {
  lastActivity: string;
  lastActivityAt: string;
  idleAt: string;
  secondsLeft: number;
  kept: string | null;
  stopRequested: string | null;
  measuredAt: string | null;
  readings: IdleReading[];
}

/** What a tile shows of a machine's state. */
export interface MachineSummary {
  summary: string;
  updates: number;
  securityUpdates: number;
  rebootRequired: boolean;
  asleep: boolean;
  refreshedAt: string | null;
  lastOutcome: string | null;
}

export interface NodeDetail extends LabNode {
  dependents: NodeRef[];
  heldBy: NodeRef[];
  discovery: Discovery | null;
}

export interface Decision {
  node: string;
  nodeName: string;
  reason: string;
}

export interface Plan {
  target: string;
  targetName: string;
  action: Action;
  steps: { id: number; nodeName: string; action: Action; after: number[]; role: StepRole }[];
  skipped: Decision[];
  kept: Decision[];
  proposed: Decision[];
  estimateMs: number;
  worstCaseMs: number;
}

export interface Step {
  index: number;
  nodeName: string;
  action: Action;
  role: StepRole;
  after: number[];
  status: StepStatus;
  reason: string | null;
  errorCode: string | null;
  errorMessage: string | null;
  startedAt: string | null;
  completedAt: string | null;
}

export interface Cascade {
  id: string;
  nodeName: string;
  action: Action;
  status: CascadeStatus;
  currentStep: number;
  totalSteps: number;
  failedStep: number | null;
  errorCode: string | null;
  errorMessage: string | null;
  rerunOf: string | null;
  createdAt: string;
  startedAt: string | null;
  completedAt: string | null;
  requestedBy: string | null;
  steps: Step[];
}

export interface Proposal {
  id: string;
  node: string;
  nodeName: string;
  cascade: string | null;
  reason: string;
  status: 'PENDING' | 'CONFIRMED' | 'DISMISSED';
  createdAt: string;
}

/** The union `EventPayload`, discriminated by `__typename`; fields as selected in queries.ts. */
export type EventPayload =
  | { __typename: 'StatusChange'; name: string; kind: string; state: PowerState }
  | { __typename: 'CascadePlanned'; action: Action; totalSteps: number }
  | {
      __typename: 'CascadeProgress';
      step: number;
      totalSteps: number;
      current: { name: string; action: Action; state: PowerState; stepStatus: StepStatus };
    }
  | { __typename: 'CascadeComplete'; action: Action }
  | { __typename: 'CascadeError'; action: Action; status: CascadeStatus; failedStep: number | null; code: string; message: string }
  | { __typename: 'ShutdownProposed'; proposal: string; name: string; reason: string }
  | { __typename: 'NodeKept'; name: string; reason: string }
  | { __typename: 'ProposalResolved'; proposal: string; confirmed: boolean }
  | { __typename: 'CapabilityDenied'; name: string; plugin: string; what: string }
  | { __typename: 'HostDiscovered'; name: string; added: string[]; disappeared: string[] }
  | { __typename: 'PowerRefused'; name: string; action: Action; actor: string; code: string }
  | {
      __typename: 'MachineRefreshed';
      name: string;
      outcome: string;
      updates: number;
      securityUpdates: number;
      rebootRequired: boolean;
      refreshCode: string | null;
      summary: string;
      actor: string;
    }
  | { __typename: 'MachineExecution'; name: string; execution: string; machineAction: string; executionStatus: string; errorKind: string | null; actor: string }
  | { __typename: 'MaintenanceProgress'; run: string; window: string | null; phase: string; machine: string | null; runStatus: string; message: string }
  | { __typename: 'StackCommandProgress'; stack: string; command: string; commandKind: string; version: number | null; commandStatus: string; commandCode: string | null; actor: string };

export interface WakeEvent {
  id: string;
  at: string;
  kind: string;
  cascade: string | null;
  node: string | null;
  payload: EventPayload;
}

export interface Plugin {
  name: string;
  version: string;
  status: string;
  faults: number;
  kinds: string[];
  capabilities: string[];
}

export interface User {
  name: string;
  role: Role;
  scope: string;
  createdAt: string;
}

export interface ApiToken {
  id: string;
  name: string;
  role: Role;
  scope: string;
  createdAt: string;
  expiresAt: string | null;
  revokedAt: string | null;
}

export interface PageInfo {
  hasNextPage: boolean;
  endCursor: string | null;
}

export interface PackageUpgrade {
  name: string;
  installed: string;
  candidate: string;
  security: boolean;
  keptBack?: boolean;
  held?: boolean;
}

export interface Execution {
  id: string;
  action: string;
  mode: string;
  actor: string;
  status: string;
  queuedAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  errorKind: string | null;
  errorMessage: string | null;
  report: string | null;
  log: { url: string; bytes: number; sha256: string; redacted: boolean; retention: string; expiresAt: string | null; deletedAt: string | null } | null;
}

export interface MachineDetail {
  node: string;
  actions: string[];
  state: MachineSummary & {
    lastErrorCode: string | null;
    lastError: string | null;
    os: string | null;
    kernel: string | null;
    keptBack: number;
    held: number;
    aptProblems: boolean;
    rebootReasons: string[];
    restarts: number;
    diskWarnings: number;
    fullestDiskPercent: number | null;
    memoryPercent: number | null;
    load1: number | null;
    running: string | null;
    dockerContainers: number | null;
    dockerRunning: number | null;
  };
  upgrades: PackageUpgrade[];
  executions: Execution[];
  timeline: { event: string; at: string; kind: string; severity: string; actor: string | null; summary: string }[];
  messages: { id: string; source: string; severity: string; text: string; firstSeen: string; lastSeen: string; timesSeen: number }[];
}

export interface PlannedMachine {
  name: string;
  powerBefore: string;
  host: string | null;
  level: number;
  knownAt: string | null;
  updates: number;
  securityUpdates: number;
  reboot: string;
  rebootReasons: string[];
  estimateSecs: number;
  estimateBasis: string;
  held: string[];
  packages: PackageUpgrade[];
}

export interface MaintenancePlan {
  wake: string[];
  estimateSecs: number;
  reboots: number;
  packages: number;
  skipped: { name: string; reason: string }[];
  machines: PlannedMachine[];
}

export interface MaintenanceWindow {
  name: string;
  nodes: string[];
  tags: string[];
  schedule: string | null;
  scheduleDescription: string | null;
  timezone: string | null;
  nextRunAt: string | null;
  enabled: boolean;
  updatedBy: string;
  updatedAt: string;
  lastFiredAt: string | null;
}

export interface MaintenanceRun {
  id: string;
  window: string | null;
  mode: string;
  actor: string;
  status: string;
  startedAt: string;
  finishedAt: string | null;
  report: string | null;
  steps: { seq: number; at: string; phase: string; node: string | null; status: string; message: string }[];
}

export interface StackService {
  service: string;
  container?: string | null;
  state: string;
  health: string | null;
  startedAt?: string | null;
  restarts?: number;
  exitCode?: number | null;
  image?: string | null;
  version?: number | null;
}

export interface StackVersion {
  number: number;
  digest: string;
  compose: string;
  services: string[];
  secrets: string[];
  images: { service: string; id: string }[];
  createdBy: string;
  createdAt: string;
  note: string | null;
}

export interface StackCommand {
  id: string;
  kind: string;
  version: number | null;
  status: string;
  actor: string;
  reason: string | null;
  queuedAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  errorCode: string | null;
  errorMessage: string | null;
  result: unknown;
  log?: string;
}

export interface StackSummary {
  node: string;
  name: string;
  project: string;
  currentVersion: number | null;
  latestVersion: number | null;
  drift: string[];
  engineError: { code: string; message: string } | null;
  services: StackService[];
}

export interface StackDetail extends StackSummary {
  appliedAt: string | null;
  versions: StackVersion[];
  commands: StackCommand[];
}

export interface StackContainerEvent {
  service: string;
  container: string;
  action: string;
  exitCode: string | null;
  at: string;
}

export type ScheduleAction = 'START' | 'STOP' | 'KEEP_ON';

export interface PowerSchedule {
  name: string;
  action: ScheduleAction;
  nodes: string[];
  tags: string[];
  schedule: string;
  scheduleDescription: string | null;
  timezone: string | null;
  keepForSecs: number | null;
  enabled: boolean;
  nextRuns: string[];
  lastFiredAt: string | null;
  lastOutcome: string | null;
  activeUntil: string | null;
  updatedBy: string;
  updatedAt: string;
}

export type NotifyEvent = 'CASCADE_FAILED' | 'PROPOSAL_WAITING' | 'NODE_DOWN' | 'MAINTENANCE_REPORT' | 'UPDATE_AVAILABLE';
export type TargetKind = 'NTFY' | 'WEBHOOK' | 'SMTP';

export interface NotificationTarget {
  kind: TargetKind;
  server: string | null;
  topic: string | null;
  url: string | null;
  host: string | null;
  port: number | null;
  security: 'NONE' | 'STARTTLS' | 'TLS' | null;
  from: string | null;
  to: string[] | null;
  user: string | null;
}

export interface NotificationRule {
  name: string;
  events: NotifyEvent[];
  nodes: string[];
  tags: string[];
  target: NotificationTarget;
  enabled: boolean;
  hasSecret: boolean;
}

export interface NotificationDelivery {
  id: number;
  rule: string;
  event: string;
  node: string | null;
  title: string;
  status: 'pending' | 'sent' | 'failed';
  attempts: number;
  nextAt: string | null;
  lastError: string | null;
  createdAt: string;
  sentAt: string | null;
}

export interface NodeEnergy {
  name: string;
  tags: string[];
  watts: PowerDraw;
  /** Its meter's readings, not its configured draw. */
  measured: boolean;
  /** Its average draw while on (measured or configured). */
  onWatts: number | null;
  onHours: number;
  offHours: number;
  unknownHours: number;
  usedKwh: number;
  alwaysOnKwh: number;
  savedKwh: number;
  savedMoney: number | null;
}

export interface EnergyReport {
  month: string;
  from: string;
  to: string;
  pricePerKwh: number | null;
  currency: string | null;
  nodes: NodeEnergy[];
  tags: { tag: string; usedKwh: number; alwaysOnKwh: number; savedKwh: number; savedMoney: number | null }[];
  usedKwh: number;
  alwaysOnKwh: number;
  savedKwh: number;
  savedMoney: number | null;
}
