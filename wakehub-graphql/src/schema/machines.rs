//! Machines: what a machine reachable over SSH runs and needs (`machine`, `Node.machine`),
//! refreshing it (`refreshMachine`), and acknowledging what it reported
//! (`acknowledgeMachineMessage`).

use async_graphql::{Context, ID, Json, Object, SimpleObject};
use wakehub_core::engine::{Engine, RefreshOptions, is_machine};
use wakehub_core::machine::Upgrade;
use wakehub_core::model::{ErrorCode, NodeId, Role};
use wakehub_core::store::{ArtifactRecord, ExecutionRecord, MachineState, MessageRecord, RefreshRecord};

use super::access::{RoleGuard, caller};
use super::error::{ApiResultExt, api_error};
use super::shared::{View, parse_id, time};

/// A machine's state now: derived from its latest refresh and latest snapshot.
pub struct GqlMachineState(pub MachineState);

#[Object(name = "MachineState")]
impl GqlMachineState {
    /// When it was last refreshed successfully (RFC 3339); null if never.
    async fn refreshed_at(&self) -> Option<String> {
        self.0.snapshot.map(|(_, at)| time(at))
    }
    /// How the latest refresh ended: `ok`, `asleep` (the machine is off: what follows is
    /// last known), `failed`; null if never refreshed.
    async fn last_outcome(&self) -> Option<&'static str> {
        self.0.last_refresh.as_ref().map(|r| r.outcome.as_str())
    }
    /// Why the latest refresh failed (`UNREACHABLE`, `AUTH_FAILED`, `HOST_KEY_MISMATCH`…).
    async fn last_error_code(&self) -> Option<&str> {
        self.0.last_refresh.as_ref().and_then(|r| r.error_code.as_deref())
    }
    /// What failed, for people.
    async fn last_error(&self) -> Option<&str> {
        self.0.last_refresh.as_ref().and_then(|r| r.error_message.as_deref())
    }
    /// The machine was off at the latest refresh.
    async fn asleep(&self) -> bool {
        self.0.asleep
    }
    /// One line: `4 updates (1 security), reboot required`.
    async fn summary(&self) -> String {
        self.0.summary()
    }
    /// The OS (`PRETTY_NAME`).
    async fn os(&self) -> Option<&str> {
        self.0.os.as_deref()
    }
    /// The running kernel.
    async fn kernel(&self) -> Option<&str> {
        self.0.kernel.as_deref()
    }
    /// Upgrades an upgrade would install (held ones excluded).
    async fn updates(&self) -> u32 {
        self.0.updates
    }
    /// Of which from a security archive.
    async fn security_updates(&self) -> u32 {
        self.0.security_updates
    }
    /// Of which kept back by `apt-get upgrade` (`full-upgrade` installs them).
    async fn kept_back(&self) -> u32 {
        self.0.kept_back
    }
    /// Held packages with a newer version.
    async fn held(&self) -> u32 {
        self.0.held
    }
    /// apt's lists could not all be refreshed (a source failed, another apt held the lock).
    async fn apt_problems(&self) -> bool {
        self.0.apt_problems
    }
    /// A reboot is required.
    async fn reboot_required(&self) -> bool {
        self.0.reboot_required
    }
    /// Why.
    async fn reboot_reasons(&self) -> &[String] {
        &self.0.reboot_reasons
    }
    /// Services running outdated code (needrestart).
    async fn restarts(&self) -> u32 {
        self.0.restarts
    }
    /// Filesystems over the warning threshold (90%).
    async fn disk_warnings(&self) -> u32 {
        self.0.disk_warnings
    }
    /// The fullest filesystem's use, percent.
    async fn fullest_disk_percent(&self) -> Option<f64> {
        self.0.fullest_disk_percent
    }
    /// Memory in use, percent.
    async fn memory_percent(&self) -> Option<f64> {
        self.0.memory_percent
    }
    /// Load average over 1 minute.
    async fn load1(&self) -> Option<f64> {
        self.0.load1
    }
    /// The action running on it now (`upgrade`…), if one is.
    async fn running(&self) -> Option<&str> {
        self.0.running.as_ref().map(|(_, a)| a.as_str())
    }
    /// The latest action that ended: `ACTION STATUS` (`upgrade failed`), with its error
    /// kind when it failed (`upgrade failed (dpkg_error)`).
    async fn last_action(&self) -> Option<String> {
        self.0.last_action.as_ref().map(|(_, a, status, kind)| match kind {
            Some(k) => format!("{a} {status} ({k})"),
            None => format!("{a} {status}"),
        })
    }
    /// Docker containers (null when Docker is not installed).
    async fn docker_containers(&self) -> Option<u32> {
        self.0.docker.map(|d| d.0)
    }
    /// Of which running.
    async fn docker_running(&self) -> Option<u32> {
        self.0.docker.map(|d| d.1)
    }
    /// Bytes a Docker prune could reclaim.
    async fn docker_reclaimable_bytes(&self) -> Option<f64> {
        self.0.docker.map(|d| d.2 as f64)
    }
}

/// One entry of a machine's timeline.
#[derive(SimpleObject)]
#[graphql(name = "TimelineEntry")]
pub struct GqlTimelineEntry {
    /// The journal event it comes from.
    pub event: ID,
    /// When (RFC 3339).
    pub at: String,
    /// `refresh`, `action` or `power`.
    pub kind: String,
    /// `info`, `warning` or `error`.
    pub severity: String,
    /// Who caused it, when someone did.
    pub actor: Option<String>,
    /// One line for people.
    pub summary: String,
}

/// A package with a newer version.
#[derive(SimpleObject)]
pub struct PackageUpgrade {
    /// Its name.
    pub name: String,
    /// The installed version.
    pub installed: String,
    /// The candidate version.
    pub candidate: String,
    /// Where the candidate comes from (`Label:Suite`).
    pub archives: Vec<String>,
    /// From a security archive (its suite or label, never a word in a line).
    pub security: bool,
    /// Kept back by `apt-get upgrade`; `full-upgrade` installs it.
    pub kept_back: bool,
    /// On hold: no upgrade installs it.
    pub held: bool,
}

impl From<&Upgrade> for PackageUpgrade {
    fn from(u: &Upgrade) -> Self {
        PackageUpgrade {
            name: u.name.clone(),
            installed: u.installed.clone(),
            candidate: u.candidate.clone(),
            archives: u.archives.clone(),
            security: u.security,
            kept_back: u.kept_back,
            held: u.held,
        }
    }
}

/// One refresh attempt.
pub struct GqlRefresh(pub RefreshRecord);

#[Object(name = "MachineRefresh")]
impl GqlRefresh {
    /// `refresh:N`.
    async fn id(&self) -> ID {
        ID(format!("refresh:{}", self.0.id))
    }
    /// When it began.
    async fn started_at(&self) -> String {
        time(self.0.started_at)
    }
    /// When it ended.
    async fn finished_at(&self) -> String {
        time(self.0.finished_at)
    }
    /// `ok`, `asleep` or `failed`.
    async fn outcome(&self) -> &'static str {
        self.0.outcome.as_str()
    }
    /// Why it failed.
    async fn error_code(&self) -> Option<&str> {
        self.0.error_code.as_deref()
    }
    /// What failed.
    async fn error_message(&self) -> Option<&str> {
        self.0.error_message.as_deref()
    }
    /// Who asked.
    async fn actor(&self) -> &str {
        &self.0.actor
    }
}

/// Something a machine reported that a person should read, merged across refreshes.
pub struct GqlMachineMessage(pub MessageRecord);

#[Object(name = "MachineMessage")]
impl GqlMachineMessage {
    /// `message:N`.
    async fn id(&self) -> ID {
        ID(format!("message:{}", self.0.id))
    }
    /// `apt`, `docker`, `disk`, `memory`.
    async fn source(&self) -> &str {
        &self.0.message.source
    }
    /// `error`, `warning`, `future-major-change`, `threshold`.
    async fn category(&self) -> &str {
        &self.0.message.category
    }
    /// `info`, `warning` or `error`.
    async fn severity(&self) -> &'static str {
        self.0.message.severity.as_str()
    }
    /// The package, filesystem or container it is about.
    async fn subject(&self) -> Option<&str> {
        self.0.message.subject.as_deref()
    }
    /// The text.
    async fn text(&self) -> &str {
        &self.0.message.text
    }
    /// First seen (RFC 3339).
    async fn first_seen(&self) -> String {
        time(self.0.first_seen)
    }
    /// Last seen.
    async fn last_seen(&self) -> String {
        time(self.0.last_seen)
    }
    /// In how many refreshes.
    async fn times_seen(&self) -> i64 {
        self.0.times_seen
    }
    /// When it was acknowledged, if it was.
    async fn acknowledged_at(&self) -> Option<String> {
        self.0.acknowledged.as_ref().map(|(at, _)| time(*at))
    }
    /// By whom.
    async fn acknowledged_by(&self) -> Option<&str> {
        self.0.acknowledged.as_ref().map(|(_, by)| by.as_str())
    }
}

/// A machine: a node WakeHub reaches over SSH with its own table.
pub struct GqlMachine {
    node: NodeId,
    state: MachineState,
}

#[Object(name = "Machine")]
impl GqlMachine {
    /// Its node.
    async fn node(&self) -> ID {
        ID(self.node.to_string())
    }
    /// Its state now.
    async fn state(&self) -> GqlMachineState {
        GqlMachineState(self.state.clone())
    }
    /// Its pending package upgrades, security ones first (held ones included, marked), as
    /// of the latest snapshot.
    #[graphql(complexity = "super::LIST_FANOUT * child_complexity")]
    async fn upgrades(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<PackageUpgrade>> {
        let node = self.node;
        let snap = ctx.data::<Engine>()?.store().run(move |s| s.latest_snapshot(node)).await.api()?;
        Ok(snap
            .and_then(|s| s.snapshot.apt)
            .map(|a| a.upgrades.iter().map(PackageUpgrade::from).collect())
            .unwrap_or_default())
    }
    /// The latest snapshot whole, as stored (JSON: os, kernel, load, memory, filesystems,
    /// apt, reboot, restarts, docker, hardware, messages, unsupported).
    async fn snapshot(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Json<serde_json::Value>>> {
        let node = self.node;
        let snap = ctx.data::<Engine>()?.store().run(move |s| s.latest_snapshot(node)).await.api()?;
        Ok(snap.map(|s| Json(serde_json::to_value(&s.snapshot).unwrap_or_default())))
    }
    /// Actions run (or queued) on it, newest first.
    #[graphql(complexity = "super::LIST_FANOUT * child_complexity")]
    async fn executions(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20)] first: i32,
    ) -> async_graphql::Result<Vec<GqlExecution>> {
        let node = self.node;
        let first = usize::try_from(first).unwrap_or(0).min(200);
        let rows = ctx.data::<Engine>()?.store().run(move |s| s.executions(Some(node), first)).await.api()?;
        Ok(rows.into_iter().map(GqlExecution).collect())
    }
    /// The actions it offers: `upgrade`, `reboot`, `docker-prune`, and `command:NAME` for
    /// each command the operator named in its table.
    async fn actions(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<String>> {
        let view = View::load(ctx).await?;
        let spec = &view.topology.get(self.node).api()?.spec;
        let mut out = vec!["upgrade".to_owned(), "reboot".into(), "docker-prune".into()];
        out.extend(
            wakehub_core::machine::actions::operator_commands(spec.connector.settings.keys())
                .into_iter()
                .map(|c| format!("command:{c}")),
        );
        Ok(out)
    }
    /// Its timeline, newest first: refreshes, actions, power changes and refused power
    /// requests, with severity and actor (from the journal).
    #[graphql(complexity = "super::LIST_FANOUT * child_complexity")]
    async fn timeline(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 50)] first: i32,
    ) -> async_graphql::Result<Vec<GqlTimelineEntry>> {
        let node = self.node;
        let first = usize::try_from(first).unwrap_or(0).min(500);
        let rows = ctx.data::<Engine>()?.store().run(move |s| s.machine_timeline(node, first)).await.api()?;
        Ok(rows
            .into_iter()
            .map(|t| GqlTimelineEntry {
                event: ID(t.event.to_string()),
                at: time(t.at_ms),
                kind: t.kind.to_owned(),
                severity: t.severity.as_str().to_owned(),
                actor: t.actor,
                summary: t.summary,
            })
            .collect())
    }
    /// Its refresh attempts, newest first.
    #[graphql(complexity = "super::LIST_FANOUT * child_complexity")]
    async fn refreshes(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20)] first: i32,
    ) -> async_graphql::Result<Vec<GqlRefresh>> {
        let node = self.node;
        let first = usize::try_from(first).unwrap_or(0).min(200);
        let rows = ctx.data::<Engine>()?.store().run(move |s| s.refreshes(node, first)).await.api()?;
        Ok(rows.into_iter().map(GqlRefresh).collect())
    }
    /// What it reported that a person should read: unacknowledged first, worst first.
    #[graphql(complexity = "super::LIST_FANOUT * child_complexity")]
    async fn messages(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = false)] include_acknowledged: bool,
    ) -> async_graphql::Result<Vec<GqlMachineMessage>> {
        let node = self.node;
        let rows =
            ctx.data::<Engine>()?.store().run(move |s| s.machine_messages(node, include_acknowledged)).await.api()?;
        Ok(rows.into_iter().map(GqlMachineMessage).collect())
    }
}

/// The machine `id` names, if the caller may see it and it is a machine.
async fn machine_node(ctx: &Context<'_>, id: &str) -> async_graphql::Result<(View, NodeId)> {
    let view = View::load(ctx).await?;
    let node = view.require(id)?;
    let spec = &view.topology.get(node).api()?.spec;
    if !is_machine(&spec.connector) {
        return Err(api_error(
            ErrorCode::Validation,
            format!(
                "`{}` is not a machine WakeHub can reach over SSH (its connector table needs `host` and \
                 `ssh_password` or `ssh_private_key`)",
                spec.name
            ),
        ));
    }
    Ok((view, node))
}

pub(crate) async fn load_machine(ctx: &Context<'_>, node: NodeId) -> async_graphql::Result<GqlMachine> {
    let state = ctx.data::<Engine>()?.store().run(move |s| s.machine_state(node)).await.api()?;
    Ok(GqlMachine { node, state: state.unwrap_or_default() })
}

/// Part of [`Query`](super::Query): `machine`.
#[derive(Default)]
pub struct MachinesQuery;

#[Object]
impl MachinesQuery {
    /// A machine's state, latest snapshot, refreshes and messages (`VALIDATION` for a node
    /// WakeHub cannot reach over SSH).
    async fn machine(&self, ctx: &Context<'_>, node: ID) -> async_graphql::Result<GqlMachine> {
        let (_, node) = machine_node(ctx, &node).await?;
        load_machine(ctx, node).await
    }

    /// An action run on a machine (`NOT_FOUND` if the caller does not see the machine).
    async fn execution(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<GqlExecution> {
        visible_execution(ctx, &id).await.map(GqlExecution)
    }
}

/// What a refresh did.
pub struct GqlRefreshResult {
    refresh: RefreshRecord,
    machine: GqlMachine,
    new_messages: usize,
}

#[Object(name = "MachineRefreshResult")]
impl GqlRefreshResult {
    /// The attempt: `ok`, `asleep` or `failed` with its code.
    async fn refresh(&self) -> GqlRefresh {
        GqlRefresh(self.refresh.clone())
    }
    /// The machine now.
    async fn machine(&self) -> &GqlMachine {
        &self.machine
    }
    /// Messages seen for the first time.
    async fn new_messages(&self) -> usize {
        self.new_messages
    }
}

/// Part of [`Mutation`](super::Mutation): `refreshMachine`, `acknowledgeMachineMessage`.
#[derive(Default)]
pub struct MachinesMutation;

#[Object]
impl MachinesMutation {
    /// Refreshes what a machine runs and needs over one SSH session (its own credentials,
    /// its host key pinned); with `hardware`, its CPU, disks, interfaces and GPUs too. A
    /// machine that is off is recorded `asleep` without being asked; an unreachable one,
    /// refused credentials or a changed host key are recorded `failed` with their code.
    /// Takes seconds (it refreshes apt's lists); its `machine-refreshed` event follows.
    #[graphql(guard = "RoleGuard(Role::Operator)")]
    async fn refresh_machine(
        &self,
        ctx: &Context<'_>,
        node: ID,
        #[graphql(default = false)] hardware: bool,
    ) -> async_graphql::Result<GqlRefreshResult> {
        let (_, node) = machine_node(ctx, &node).await?;
        let engine = ctx.data::<Engine>()?;
        let who = caller(ctx).name;
        let r = engine.refresh_machine(node, RefreshOptions::default().with_hardware(hardware), &who).await.api()?;
        Ok(GqlRefreshResult {
            refresh: r.refresh,
            machine: GqlMachine { node, state: r.state },
            new_messages: r.new_messages,
        })
    }

    /// Queues an action on a machine: `upgrade`, `reboot`, `docker-prune`, or
    /// `command:NAME` for a command the operator named in its table (never free text), in
    /// mode `manual` (default) or `scheduled` (`maintenance` is a maintenance run's). It
    /// runs when the machine has nothing else running; follow it with `executionLog` and
    /// the `machine-execution` events.
    #[graphql(guard = "RoleGuard(Role::Operator)")]
    async fn run_action(
        &self,
        ctx: &Context<'_>,
        node: ID,
        action: String,
        #[graphql(default_with = "\"manual\".to_owned()")] mode: String,
    ) -> async_graphql::Result<GqlExecution> {
        // `maintenance` is what a maintenance run's own actions say they are.
        if !matches!(mode.as_str(), "manual" | "scheduled") {
            return Err(api_error(ErrorCode::Validation, format!("mode `{mode}` is manual or scheduled")));
        }
        let (_, node) = machine_node(ctx, &node).await?;
        let who = caller(ctx).name;
        Ok(GqlExecution(ctx.data::<Engine>()?.run_action(node, &action, &mode, &who).await.api()?))
    }

    /// Cancels a queued action (`CONFLICT` once it began: it is on the machine).
    #[graphql(guard = "RoleGuard(Role::Operator)")]
    async fn cancel_execution(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<GqlExecution> {
        let e = visible_execution(ctx, &id).await?;
        Ok(GqlExecution(ctx.data::<Engine>()?.cancel_execution(e.id).await.api()?))
    }

    /// Sets how long an action's log is kept: `default` (30 days), `failed` (90 days),
    /// `short` (7 days) or `pinned` (until changed).
    #[graphql(guard = "RoleGuard(Role::Operator)")]
    async fn set_log_retention(
        &self,
        ctx: &Context<'_>,
        execution: ID,
        retention: String,
    ) -> async_graphql::Result<bool> {
        let e = visible_execution(ctx, &execution).await?;
        let Some(artifact) = e.artifact else { return Ok(false) };
        ctx.data::<Engine>()?.store().run(move |s| s.set_artifact_retention(artifact, &retention)).await.api()
    }

    /// Acknowledges a message a machine reported (it stays listed, acknowledged, in
    /// `messages(includeAcknowledged: true)`). `false` if it was already acknowledged.
    #[graphql(guard = "RoleGuard(Role::Operator)")]
    async fn acknowledge_machine_message(
        &self,
        ctx: &Context<'_>,
        node: ID,
        message: ID,
    ) -> async_graphql::Result<bool> {
        let (_, node) = machine_node(ctx, &node).await?;
        let id = parse_id(&message, "message")
            .ok_or_else(|| api_error(ErrorCode::Validation, format!("`{}` is not a message id", message.0)))?;
        let who = caller(ctx).name;
        ctx.data::<Engine>()?.store().run(move |s| s.acknowledge_message(node, id, &who)).await.api()
    }
}

/// An action run on a machine.
pub struct GqlExecution(pub ExecutionRecord);

#[Object(name = "Execution")]
impl GqlExecution {
    /// `execution:N`.
    async fn id(&self) -> ID {
        ID(format!("execution:{}", self.0.id))
    }
    /// The machine.
    async fn node(&self) -> ID {
        ID(self.0.node.to_string())
    }
    /// `upgrade`, `reboot`, `docker-prune`, `command:NAME`.
    async fn action(&self) -> &str {
        &self.0.action
    }
    /// `manual`, `scheduled` or `maintenance`.
    async fn mode(&self) -> &str {
        &self.0.mode
    }
    /// Who asked.
    async fn actor(&self) -> &str {
        &self.0.actor
    }
    /// `queued`, `running`, `succeeded`, `failed`, `interrupted` (WakeHub stopped while it
    /// ran; never run again) or `cancelled`.
    async fn status(&self) -> &'static str {
        self.0.status.as_str()
    }
    /// When it was queued, began, ended (RFC 3339).
    async fn queued_at(&self) -> String {
        time(self.0.queued_at)
    }
    /// When it began.
    async fn started_at(&self) -> Option<String> {
        self.0.started_at.map(time)
    }
    /// When it ended.
    async fn finished_at(&self) -> Option<String> {
        self.0.finished_at.map(time)
    }
    /// Its script's exit status.
    async fn exit_code(&self) -> Option<i64> {
        self.0.exit_code
    }
    /// Why it failed: `apt_locked`, `dpkg_error`, `sudo_refused`, `exit_status`,
    /// `connection_lost`, `timeout`, `reboot_timeout`, `asleep`, `interrupted`, `unreachable`,
    /// `auth_failed`, `host_key_mismatch`.
    async fn error_kind(&self) -> Option<&str> {
        self.0.error_kind.as_deref()
    }
    /// What failed, for people.
    async fn error_message(&self) -> Option<&str> {
        self.0.error_message.as_deref()
    }
    /// The structured result (JSON: `changed` packages with `from`/`to`, `failed_packages`,
    /// `source_errors`, `reclaimed_bytes`).
    async fn result(&self) -> Option<Json<serde_json::Value>> {
        self.0.result.clone().map(Json)
    }
    /// The report a person reads (Markdown): what changed, what needs attention.
    async fn report(&self) -> Option<&str> {
        self.0.report.as_deref()
    }
    /// Its raw log (redacted), while kept: download it from `url` with the same token.
    async fn log(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<GqlArtifact>> {
        let Some(id) = self.0.artifact else { return Ok(None) };
        let found = ctx.data::<Engine>()?.store().run(move |s| s.artifact(id)).await.api()?;
        Ok(found.map(|(record, _)| GqlArtifact(record)))
    }
}

/// A kept raw log.
pub struct GqlArtifact(pub ArtifactRecord);

#[Object(name = "Artifact")]
impl GqlArtifact {
    /// `artifact:N`.
    async fn id(&self) -> ID {
        ID(format!("artifact:{}", self.0.id))
    }
    /// Where to download it (`GET`, the same bearer token; `text/plain`).
    async fn url(&self) -> String {
        format!("/artifacts/{}", self.0.id)
    }
    /// Its size in bytes.
    async fn bytes(&self) -> i64 {
        self.0.bytes
    }
    /// Its SHA-256 (hex).
    async fn sha256(&self) -> &str {
        &self.0.sha256
    }
    /// Secrets (the node's sudo and SSH passwords) were removed from it.
    async fn redacted(&self) -> bool {
        self.0.redacted
    }
    /// `default` (30 days), `failed` (90 days), `short` (7 days) or `pinned` (kept).
    async fn retention(&self) -> &str {
        &self.0.retention
    }
    /// When the sweep deletes it (null: pinned).
    async fn expires_at(&self) -> Option<String> {
        self.0.expires_at.map(time)
    }
    /// When it was deleted (and why), if it was.
    async fn deleted_at(&self) -> Option<String> {
        self.0.deleted.as_ref().map(|(at, _)| time(*at))
    }
}

fn execution_id(id: &str) -> async_graphql::Result<i64> {
    parse_id(id, "execution").ok_or_else(|| api_error(ErrorCode::NotFound, format!("execution `{id}` not found")))
}

/// The execution `id`, if the caller sees its machine (else `NOT_FOUND`).
pub(crate) async fn visible_execution(ctx: &Context<'_>, id: &str) -> async_graphql::Result<ExecutionRecord> {
    let n = execution_id(id)?;
    let view = View::load(ctx).await?;
    let e = ctx.data::<Engine>()?.store().run(move |s| s.execution(n)).await.api()?;
    e.filter(|e| view.visible(e.node))
        .ok_or_else(|| api_error(ErrorCode::NotFound, format!("execution `{id}` not found")))
}
