// The shapes the dashboard reads from the API, written from wakehub-graphql/schema.graphql.
// Only the fields the dashboard selects.

export type Role = 'viewer' | 'operator' | 'admin';
export type PowerState = 'ON' | 'OFF' | 'STARTING' | 'STOPPING' | 'UNKNOWN' | 'ERROR';
export type NodeState = 'CONFIGURED' | 'DISCOVERED';
export type Action = 'START' | 'STOP';
export type CascadeStatus = 'PENDING' | 'IN_PROGRESS' | 'COMPLETED' | 'FAILED' | 'CANCELLED' | 'INTERRUPTED';
export type StepStatus = 'PENDING' | 'RUNNING' | 'DONE' | 'SKIPPED' | 'JOINED' | 'FAILED' | 'CANCELLED' | 'INTERRUPTED';
export type StepRole = 'REQUESTED' | 'REQUIRED' | 'DEPENDENT' | 'UNUSED';

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
  | { __typename: 'PowerRefused'; name: string; action: Action; actor: string; code: string };

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
