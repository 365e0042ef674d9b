// The GraphQL documents the dashboard sends. Node selections depend on the server's
// features (features.ts), so they are built by functions.
import type { Features } from './features';

export const EVENT_FIELDS = `id at kind cascade node payload {
  __typename
  ... on StatusChange { name kind state }
  ... on CascadePlanned { action totalSteps }
  ... on CascadeProgress { step totalSteps current { name action state stepStatus } }
  ... on CascadeComplete { action }
  ... on CascadeError { action status failedStep code message }
  ... on ShutdownProposed { proposal name reason }
  ... on NodeKept { name reason }
  ... on ProposalResolved { proposal confirmed }
  ... on CapabilityDenied { name plugin what }
  ... on HostDiscovered { name added disappeared }
  ... on PowerRefused { name action actor code }
}`;

/** Every field of a node the dashboard, lab and forms use. */
export function nodeFields(features: Features): string {
  return `id name kind state status pinned confirmAutoShutdown stopWhenEmpty startTimeout stopTimeout
    readiness { kind target status } offers connector { type settings } tags
    parent { id name } children { id name state } dependsOn { id name }
    ${[...features.nodeFields].join(' ')}`;
}

export const nodesQuery = (f: Features) => `query Nodes($pinned: Boolean) { nodes(pinned: $pinned) { ${nodeFields(f)} } }`;

export const nodeQuery = (f: Features) => `query Node($id: ID!) {
  node(id: $id) {
    ${nodeFields(f)}
    dependents { id name } heldBy { id name }
    discovery { source key details status firstSeen lastSeen goneAt }
  }
}`;

export const CASCADE_FIELDS = `id nodeName action status currentStep totalSteps failedStep errorCode errorMessage
  rerunOf createdAt startedAt completedAt requestedBy
  steps { index nodeName action role after status reason errorCode errorMessage startedAt completedAt }`;

export const CASCADE_QUERY = `query Cascade($id: ID!) { cascade(id: $id) { ${CASCADE_FIELDS} } }`;
export const RUNNING_CASCADES_QUERY = `query Running { runningCascades { ${CASCADE_FIELDS} } }`;
export const NODE_CASCADES_QUERY = `query NodeCascades($node: ID!) {
  cascades(node: $node, first: 10) { nodes { id action status createdAt completedAt totalSteps errorCode } }
}`;
export const CASCADE_PROGRESS_SUBSCRIPTION = `subscription Progress($cascade: ID!) { cascadeProgress(cascade: $cascade) { ${EVENT_FIELDS} } }`;

export const PLAN_QUERY = `query Plan($node: ID!, $action: Action!) {
  plan(node: $node, action: $action) {
    target targetName action estimateMs worstCaseMs
    steps { id nodeName action after role }
    skipped { node nodeName reason } kept { node nodeName reason } proposed { node nodeName reason }
  }
}`;

export const START_MUTATION = `mutation Start($id: ID!) { startNode(id: $id) { id } }`;
export const STOP_MUTATION = `mutation Stop($id: ID!) { stopNode(id: $id) { id } }`;
export const CANCEL_MUTATION = `mutation Cancel($id: ID!) { cancelCascade(id: $id) { id status } }`;
export const RERUN_MUTATION = `mutation Rerun($id: ID!) { rerunCascade(id: $id) { id } }`;

export const PROPOSALS_QUERY = `query Proposals { proposals { id node nodeName cascade reason status createdAt } }`;
export const CONFIRM_PROPOSAL = `mutation Confirm($id: ID!) { confirmProposal(id: $id) { id } }`;
export const DISMISS_PROPOSAL = `mutation Dismiss($id: ID!) { dismissProposal(id: $id) { id } }`;

export const createNodeMutation = (f: Features) => `mutation Create($input: NodeInput!) { createNode(input: $input) { ${nodeFields(f)} } }`;
export const updateNodeMutation = (f: Features) => `mutation Update($id: ID!, $input: NodeInput!) { updateNode(id: $id, input: $input) { ${nodeFields(f)} } }`;
export const pinNodeMutation = (f: Features) => `mutation Pin($id: ID!, $pinned: Boolean!) { pinNode(id: $id, pinned: $pinned) { ${nodeFields(f)} } }`;
export const DELETE_NODE = `mutation Delete($id: ID!) { deleteNode(id: $id) }`;
export const ADD_DEPENDENCY = `mutation Link($from: ID!, $to: ID!) { addDependency(from: $from, to: $to) { id } }`;
export const REMOVE_DEPENDENCY = `mutation Unlink($from: ID!, $to: ID!) { removeDependency(from: $from, to: $to) { id } }`;
export const adoptMutation = (f: Features) => `mutation Adopt($id: ID!, $input: NodeInput) { adoptNode(id: $id, input: $input) { ${nodeFields(f)} } }`;
export const DISCOVER_MUTATION = `mutation Discover($host: ID!) {
  discover(host: $host) { added { key } updated { key } disappeared { name } }
}`;

/**
 * A page of the journal. The filter arguments (kinds, time range) and newest-first paging
 * exist only on newer servers, so they are declared only when the server has them.
 */
export function eventsQuery(f: Features, selection: string = EVENT_FIELDS): string {
  const args: [string, string][] = [['after', 'ID'], ['node', 'ID'], ['first', 'Int']];
  if (f.eventFilters) args.push(['kinds', '[String!]'], ['since', 'String'], ['until', 'String']);
  if (f.newestFirst) args.push(['before', 'ID'], ['newestFirst', 'Boolean']);
  const declared = args.map(([name, type]) => `$${name}: ${type}`).join(', ');
  const passed = args.map(([name]) => `${name}: $${name}`).join(', ');
  return `query Journal(${declared}) { events(${passed}) { pageInfo { hasNextPage endCursor } nodes { ${selection} } } }`;
}

/**
 * What a node's status history needs of an event. Small on purpose: the server prices a page
 * at `first` times its fields (complexity 5000 at most).
 */
export const STATUS_CHANGE_FIELDS = 'id at kind payload { __typename ... on StatusChange { name kind state } }';

/** The latest event's id, where the server can read the journal newest first. */
export const LATEST_EVENT_QUERY = `query Latest { events(newestFirst: true, first: 1) { nodes { id } } }`;

export const ME_QUERY = `query Me { me { name role scope } }`;

export const PLUGINS_QUERY = `query Plugins { plugins { name version status faults kinds capabilities } }`;
export const RESET_PLUGIN = `mutation Reset($name: String!) { resetPlugin(name: $name) { name status } }`;
export const USERS_QUERY = `query Users { users { name role scope createdAt } }`;
export const CREATE_USER = `mutation CreateUser($name: String!, $password: String!, $role: String!, $scope: String!) {
  createUser(name: $name, password: $password, role: $role, scope: $scope) { name }
}`;
export const REMOVE_USER = `mutation RemoveUser($name: String!) { removeUser(name: $name) }`;
export const TOKENS_QUERY = `query Tokens { tokens { id name role scope createdAt expiresAt revokedAt } }`;
export const CREATE_TOKEN = `mutation CreateToken($name: String!, $role: String!, $scope: String!, $expiresIn: String) {
  createToken(name: $name, role: $role, scope: $scope, expiresIn: $expiresIn) { secret token { id name } }
}`;
export const REVOKE_TOKEN = `mutation Revoke($id: ID!) { revokeToken(id: $id) { id revokedAt } }`;

