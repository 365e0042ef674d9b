// The GraphQL documents the dashboard sends, every one checked against the committed SDL
// (../schema.graphql) by queries.test.ts: the binary that serves the dashboard is the one
// whose API it was built with.

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
  ... on MachineRefreshed { name outcome updates securityUpdates rebootRequired refreshCode: code summary actor }
  ... on MachineExecution { name execution machineAction: action executionStatus: status errorKind actor }
  ... on MaintenanceProgress { run window phase machine: name runStatus: status message }
  ... on StackCommandProgress { stack: name command commandKind: kind version commandStatus: status commandCode: code actor }
}`;

/** Every field of a node the dashboard, lab and forms use. */
export const NODE_FIELDS = `id name kind state status observedAt stale url canPower canEdit pinned
  confirmAutoShutdown stopWhenEmpty startTimeout stopTimeout
  readiness { kind target status } offers connector { type settings } tags
  parent { id name } children { id name state } dependsOn { id name }
  isMachine machine { summary updates securityUpdates rebootRequired asleep refreshedAt lastOutcome }
  idle { after tcpPorts sshSessions cpuPercent netKbps reported wattsAbove probe { url pointer } vetoUrl { url pointer } vetoCommand }
  watts { on off meter } wattsNow { at watts error } proxy { hosts path upstream tlsFingerprint tcp { listen to } }
  idleStatus { lastActivity lastActivityAt idleAt secondsLeft kept stopRequested measuredAt readings { signal value active error } }`;

export const NODES_QUERY = `query Nodes($pinned: Boolean) { nodes(pinned: $pinned) { ${NODE_FIELDS} } }`;

export const NODE_QUERY = `query Node($id: ID!) {
  node(id: $id) {
    ${NODE_FIELDS}
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

export const CREATE_NODE = `mutation Create($input: NodeInput!) { createNode(input: $input) { ${NODE_FIELDS} } }`;
export const UPDATE_NODE = `mutation Update($id: ID!, $input: NodeInput!) { updateNode(id: $id, input: $input) { ${NODE_FIELDS} } }`;
export const PIN_NODE = `mutation Pin($id: ID!, $pinned: Boolean!) { pinNode(id: $id, pinned: $pinned) { id pinned } }`;
export const DELETE_NODE = `mutation Delete($id: ID!) { deleteNode(id: $id) }`;
export const ADD_DEPENDENCY = `mutation Link($from: ID!, $to: ID!) { addDependency(from: $from, to: $to) { id } }`;
export const REMOVE_DEPENDENCY = `mutation Unlink($from: ID!, $to: ID!) { removeDependency(from: $from, to: $to) { id } }`;
export const ADOPT_NODE = `mutation Adopt($id: ID!, $input: NodeInput) { adoptNode(id: $id, input: $input) { ${NODE_FIELDS} } }`;
export const DISCOVER_MUTATION = `mutation Discover($host: ID!) {
  discover(host: $host) { added { key } updated { key } disappeared { name } }
}`;

/**
 * A page of the journal, newest first (page back with `before`), filtered by node, kinds and
 * time range.
 */
const journalQuery = (selection: string) => `query Journal($node: ID, $first: Int, $before: ID, $kinds: [String!], $since: String, $until: String) {
  events(node: $node, first: $first, before: $before, kinds: $kinds, since: $since, until: $until, newestFirst: true) {
    pageInfo { hasNextPage endCursor } nodes { ${selection} }
  }
}`;

export const JOURNAL_QUERY = journalQuery(EVENT_FIELDS);

/**
 * What a node's status history needs of an event. Small on purpose: the server prices a page
 * at `first` times its fields (complexity 5000 at most).
 */
export const STATUS_HISTORY_QUERY = journalQuery('id at kind payload { __typename ... on StatusChange { name kind state } }');

/** The latest event's id. */
export const LATEST_EVENT_QUERY = `query Latest { events(newestFirst: true, first: 1) { nodes { id } } }`;

export const ME_QUERY = `query Me { me { name role scope } instance { leads sharedDatabase } }`;

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


/** A machine's page: its state, updates (security first), actions, executions, timeline, messages. */
export const MACHINE_QUERY = `query Machine($node: ID!) {
  machine(node: $node) {
    node actions
    state { refreshedAt lastOutcome lastErrorCode lastError asleep summary os kernel updates securityUpdates keptBack held
            aptProblems rebootRequired rebootReasons restarts diskWarnings fullestDiskPercent memoryPercent load1 running
            dockerContainers dockerRunning }
    upgrades { name installed candidate security keptBack held }
    executions(first: 10) { id action mode actor status queuedAt startedAt finishedAt errorKind errorMessage report
                            log { url bytes sha256 redacted retention expiresAt deletedAt } }
    timeline(first: 30) { event at kind severity actor summary }
    messages { id source severity text firstSeen lastSeen timesSeen }
  }
}`;
export const REFRESH_MACHINE = `mutation Refresh($node: ID!) { refreshMachine(node: $node) { refresh { outcome errorCode errorMessage } } }`;
export const RUN_ACTION = `mutation RunAction($node: ID!, $action: String!) { runAction(node: $node, action: $action) { id status } }`;
export const ACKNOWLEDGE_MESSAGE = `mutation Ack($node: ID!, $message: ID!) { acknowledgeMachineMessage(node: $node, message: $message) }`;
export const EXECUTION_LOG_SUBSCRIPTION = `subscription Log($execution: ID!) { executionLog(execution: $execution) }`;

export const PLAN_FIELDS = `wake estimateSecs reboots packages skipped { name reason }
  machines { name powerBefore host level knownAt updates securityUpdates reboot rebootReasons estimateSecs estimateBasis held
             packages { name installed candidate security } }`;
export const MAINTENANCE_QUERY = `query Maintenance {
  maintenanceWindows { name nodes tags schedule scheduleDescription timezone nextRunAt enabled updatedBy updatedAt lastFiredAt }
  maintenanceRuns(first: 20) { id window mode actor status startedAt finishedAt report steps { seq at phase node status message } }
}`;
export const MAINTENANCE_PLAN_QUERY = `query MaintenancePlan($window: String, $nodes: [String!]! = [], $tags: [String!]! = []) {
  maintenancePlan(window: $window, nodes: $nodes, tags: $tags) { ${PLAN_FIELDS} }
}`;
export const SAVE_WINDOW = `mutation SaveWindow($input: MaintenanceWindowInput!) { saveMaintenanceWindow(input: $input) { name } }`;
export const DELETE_WINDOW = `mutation DeleteWindow($name: String!) { deleteMaintenanceWindow(name: $name) }`;
export const RUN_MAINTENANCE = `mutation RunMaintenance($window: String, $nodes: [String!]! = [], $tags: [String!]! = []) {
  runMaintenance(window: $window, nodes: $nodes, tags: $tags) { id status }
}`;

export const STACK_COMMAND_FIELDS = `id kind version status actor reason queuedAt startedAt finishedAt errorCode errorMessage result`;
export const STACKS_QUERY = `query Stacks {
  stacks { node name project currentVersion latestVersion drift engineError { code message }
           services { service state health } }
}`;
export const STACK_QUERY = `query Stack($node: ID!) {
  stack(node: $node) {
    node name project currentVersion appliedAt latestVersion drift engineError { code message }
    services { service container state health startedAt restarts exitCode image version }
    versions { number digest compose services secrets images { service id } createdBy createdAt note }
    commands(first: 30) { ${STACK_COMMAND_FIELDS} log }
  }
}`;
export const STACK_SERVICE_LOG_QUERY = `query StackServiceLog($node: ID!, $service: String!) {
  stack(node: $node) { serviceLog(service: $service, lines: 200) }
}`;
export const STACK_DIFF_QUERY = `query StackDiff($stack: ID!, $from: Int!, $to: Int!) { stackDiff(stack: $stack, from: $from, to: $to) }`;
export const SAVE_STACK_VERSION = `mutation SaveStackVersion($stack: ID!, $compose: String!, $note: String) {
  saveStackVersion(stack: $stack, compose: $compose, note: $note) { created version { number } }
}`;
export const RUN_STACK_COMMAND = `mutation RunStackCommand($stack: ID!, $kind: StackCommandKind!, $version: Int) {
  runStackCommand(stack: $stack, kind: $kind, version: $version) { id status }
}`;
export const CANCEL_STACK_COMMAND = `mutation CancelStackCommand($id: ID!) { cancelStackCommand(id: $id) { id status } }`;
export const STACK_LOG_SUBSCRIPTION = `subscription StackLog($command: ID!) { stackCommandLog(command: $command) }`;
export const STACK_EVENTS_SUBSCRIPTION = `subscription StackEvents($stack: ID!) {
  stackContainerEvents(stack: $stack) { service container action exitCode at }
}`;

export const POWER_SCHEDULE_FIELDS = `name action nodes tags schedule scheduleDescription timezone keepForSecs enabled
  nextRuns(count: 3) lastFiredAt lastOutcome activeUntil updatedBy updatedAt`;
export const POWER_SCHEDULES_QUERY = `query PowerSchedules { powerSchedules { ${POWER_SCHEDULE_FIELDS} } }`;
export const SAVE_POWER_SCHEDULE = `mutation SavePowerSchedule($input: PowerScheduleInput!) { savePowerSchedule(input: $input) { name } }`;
export const DELETE_POWER_SCHEDULE = `mutation DeletePowerSchedule($name: String!) { deletePowerSchedule(name: $name) }`;

export const NOTIFICATIONS_QUERY = `query Notifications {
  notificationRules { name events nodes tags enabled hasSecret target { kind server topic url host port security from to user } }
  notificationDeliveries(first: 20) { id rule event node title status attempts nextAt lastError createdAt sentAt }
}`;
export const SAVE_NOTIFICATION_RULE = `mutation SaveNotificationRule($input: NotificationRuleInput!) { saveNotificationRule(input: $input) { name } }`;
export const DELETE_NOTIFICATION_RULE = `mutation DeleteNotificationRule($name: String!) { deleteNotificationRule(name: $name) }`;
export const TEST_NOTIFICATION_RULE = `mutation TestNotificationRule($name: String!) { testNotificationRule(name: $name) }`;

export const ENERGY_QUERY = `query Energy($month: String) {
  energy(month: $month) {
    month from to pricePerKwh currency usedKwh alwaysOnKwh savedKwh savedMoney
    nodes { name tags watts { on off meter } measured onWatts onHours offHours unknownHours usedKwh alwaysOnKwh savedKwh savedMoney }
    tags { tag usedKwh alwaysOnKwh savedKwh savedMoney }
  }
}`;
export const SET_ENERGY_PRICE = `mutation SetEnergyPrice($price: Float, $currency: String!) { setEnergyPrice(pricePerKwh: $price, currency: $currency) }`;
