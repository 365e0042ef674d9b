//! Maintenance windows: the windows (`maintenanceWindows`, `saveMaintenanceWindow`,
//! `deleteMaintenanceWindow`), the plan of a run before it runs (`maintenancePlan`), and the
//! runs (`runMaintenance`, `maintenanceRuns`, `maintenanceRun` with their steps and report).
//! Their progress streams as `maintenance` events.
//!
//! Scope: a caller sees a window, a plan or a run only when its scope covers every node the
//! selection names or tags (else the window does not exist for it), and may save or run one
//! only then, with the operator role.

use std::collections::BTreeSet;

use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use wakehub_core::engine::{Engine, MaintenancePlan, PlannedMachine, Selection, describe_schedule, next_occurrence};
use wakehub_core::model::{ErrorCode, NodeId, Role};
use wakehub_core::store::{MaintenanceRunRecord, MaintenanceStep, MaintenanceWindow};

use super::access::{RoleGuard, caller};
use super::error::{ApiResultExt, api_error};
use super::shared::{View, parse_id, time};

/// A package a plan upgrades.
#[derive(SimpleObject)]
#[graphql(name = "PlannedPackage")]
pub struct GqlPlannedPackage {
    /// Its name.
    pub name: String,
    /// Installed version.
    pub installed: String,
    /// Candidate version.
    pub candidate: String,
    /// From a security archive.
    pub security: bool,
}

/// One machine of a plan.
#[derive(SimpleObject)]
#[graphql(name = "PlannedMachine")]
pub struct GqlPlannedMachine {
    /// Its name.
    pub name: String,
    /// Its node.
    pub node: ID,
    /// `on`, `off` or `unknown`: what it is put back to at the end.
    pub power_before: String,
    /// The selected machine it runs on, if one.
    pub host: Option<String>,
    /// Its rank: guests (lower) go before their hosts.
    pub level: i32,
    /// When what follows was last known (RFC 3339); null: never refreshed (the run
    /// refreshes it first).
    pub known_at: Option<String>,
    /// Upgrades pending (held ones excluded).
    pub updates: u32,
    /// Of which security updates.
    pub security_updates: u32,
    /// The packages, security updates first.
    pub packages: Vec<GqlPlannedPackage>,
    /// Held packages (not upgraded).
    pub held: Vec<String>,
    /// `required`, `likely` (a kernel or core library is among the upgrades), `not
    /// expected` or `unknown`.
    pub reboot: String,
    /// Why.
    pub reboot_reasons: Vec<String>,
    /// Its estimated share, in seconds: waking, upgrading, rebooting.
    pub estimate_secs: u64,
    /// Where the estimate comes from (past runs, or the defaults).
    pub estimate_basis: String,
}

impl From<PlannedMachine> for GqlPlannedMachine {
    fn from(m: PlannedMachine) -> Self {
        GqlPlannedMachine {
            name: m.name,
            node: ID(NodeId::new(m.node).to_string()),
            power_before: m.power_before,
            host: m.host,
            level: m.level as i32,
            known_at: m.known_at.map(time),
            updates: m.updates,
            security_updates: m.security_updates,
            packages: m
                .packages
                .into_iter()
                .map(|p| GqlPlannedPackage {
                    name: p.name,
                    installed: p.installed,
                    candidate: p.candidate,
                    security: p.security,
                })
                .collect(),
            held: m.held,
            reboot: m.reboot,
            reboot_reasons: m.reboot_reasons,
            estimate_secs: m.estimate_secs,
            estimate_basis: m.estimate_basis,
        }
    }
}

/// A node a selection names that a run leaves alone.
#[derive(SimpleObject)]
#[graphql(name = "SkippedNode")]
pub struct GqlSkipped {
    /// Its name.
    pub name: String,
    /// Why.
    pub reason: String,
}

/// What a maintenance run would do, before it does it.
#[derive(SimpleObject)]
#[graphql(name = "MaintenancePlan")]
pub struct GqlMaintenancePlan {
    /// The machines, in the order they are upgraded (guests before their hosts).
    pub machines: Vec<GqlPlannedMachine>,
    /// What the selection names that is not maintained, and why.
    pub skipped: Vec<GqlSkipped>,
    /// The machines to wake (asleep now), hosting chains first; each is put back to sleep
    /// at the end.
    pub wake: Vec<String>,
    /// How long the run should take, in seconds.
    pub estimate_secs: u64,
    /// Reboots expected (`required` or `likely`).
    pub reboots: u32,
    /// Packages to upgrade, over every machine.
    pub packages: u32,
}

impl From<MaintenancePlan> for GqlMaintenancePlan {
    fn from(p: MaintenancePlan) -> Self {
        let reboots = p.machines.iter().filter(|m| matches!(m.reboot.as_str(), "required" | "likely")).count() as u32;
        let packages = p.machines.iter().map(|m| m.packages.len() as u32).sum();
        GqlMaintenancePlan {
            machines: p.machines.into_iter().map(Into::into).collect(),
            skipped: p.skipped.into_iter().map(|s| GqlSkipped { name: s.name, reason: s.reason }).collect(),
            wake: p.wake,
            estimate_secs: p.estimate_secs,
            reboots,
            packages,
        }
    }
}

/// A maintenance window: a set of machines (by names and tags), optionally on a schedule.
pub struct GqlMaintenanceWindow(pub MaintenanceWindow);

#[Object(name = "MaintenanceWindow")]
impl GqlMaintenanceWindow {
    /// Its name.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// The machines it names.
    async fn nodes(&self) -> &[String] {
        &self.0.nodes
    }
    /// The tags it selects machines by.
    async fn tags(&self) -> &[String] {
        &self.0.tags
    }
    /// Its schedule (cron: minute hour day-of-month month day-of-week); null: on request only.
    async fn schedule(&self) -> Option<&str> {
        self.0.schedule.as_deref()
    }
    /// The schedule in words (`At 03:00 on Sunday`).
    async fn schedule_description(&self) -> Option<String> {
        self.0.schedule.as_deref().and_then(describe_schedule)
    }
    /// The time zone the schedule is read in (IANA; null: UTC).
    async fn timezone(&self) -> Option<&str> {
        self.0.timezone.as_deref()
    }
    /// When it runs next (RFC 3339), if scheduled and enabled.
    async fn next_run_at(&self) -> Option<String> {
        let cron = self.0.schedule.as_deref().filter(|_| self.0.enabled)?;
        let now = super::shared::now_ms();
        next_occurrence(cron, self.0.timezone.as_deref(), now).ok().map(time)
    }
    /// Whether its schedule is followed.
    async fn enabled(&self) -> bool {
        self.0.enabled
    }
    /// Who saved it last, and when.
    async fn updated_by(&self) -> &str {
        &self.0.updated_by
    }
    /// When.
    async fn updated_at(&self) -> String {
        time(self.0.updated_at)
    }
    /// When its schedule last fired.
    async fn last_fired_at(&self) -> Option<String> {
        self.0.last_fired_at.map(time)
    }
    /// What a run would do now. Takes a moment: every machine's power is observed.
    async fn plan(&self, ctx: &Context<'_>) -> async_graphql::Result<GqlMaintenancePlan> {
        let selection = Selection { nodes: self.0.nodes.clone(), tags: self.0.tags.clone() };
        Ok(ctx.data::<Engine>()?.plan_maintenance(&selection).await.api()?.into())
    }
    /// Its runs, newest first.
    async fn runs(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 10)] first: i32,
    ) -> async_graphql::Result<Vec<GqlMaintenanceRun>> {
        let name = self.0.name.clone();
        let limit = first.clamp(1, 100) as usize;
        let runs = ctx.data::<Engine>()?.store().run(move |s| s.maintenance_runs(Some(&name), limit)).await.api()?;
        Ok(runs.into_iter().map(GqlMaintenanceRun).collect())
    }
}

/// A step a run took.
#[derive(SimpleObject)]
#[graphql(name = "MaintenanceRunStep")]
pub struct GqlRunStep {
    /// Its rank in the run.
    pub seq: i64,
    /// When (RFC 3339).
    pub at: String,
    /// `wake`, `refresh`, `upgrade`, `stop-guests`, `reboot`, `start-guests`, `verify`,
    /// `restore`.
    pub phase: String,
    /// The machine (or node) it is about.
    pub node: Option<String>,
    /// `running`, `done`, `skipped`, `failed`.
    pub status: String,
    /// What happened.
    pub message: String,
}

impl From<MaintenanceStep> for GqlRunStep {
    fn from(s: MaintenanceStep) -> Self {
        GqlRunStep { seq: s.seq, at: time(s.at), phase: s.phase, node: s.node, status: s.status, message: s.message }
    }
}

/// A maintenance run: the plan it followed, its steps, its report.
pub struct GqlMaintenanceRun(pub MaintenanceRunRecord);

#[Object(name = "MaintenanceRun")]
impl GqlMaintenanceRun {
    /// `maintenance-run:N`.
    async fn id(&self) -> ID {
        ID(format!("maintenance-run:{}", self.0.id))
    }
    /// Its window (null: an ad-hoc selection).
    async fn window(&self) -> Option<&str> {
        self.0.window.as_deref()
    }
    /// `manual` or `scheduled`.
    async fn mode(&self) -> &str {
        &self.0.mode
    }
    /// Who began it (`schedule` for a scheduled one). Its cascades and actions are by
    /// `maintenance-run:N`.
    async fn actor(&self) -> &str {
        &self.0.actor
    }
    /// `running`, `succeeded`, `attention` (it ended and something needs a person) or
    /// `interrupted` (WakeHub stopped while it ran; never run again).
    async fn status(&self) -> &'static str {
        self.0.status.as_str()
    }
    /// When it began (RFC 3339).
    async fn started_at(&self) -> String {
        time(self.0.started_at)
    }
    /// When it ended.
    async fn finished_at(&self) -> Option<String> {
        self.0.finished_at.map(time)
    }
    /// The plan it followed, as it was when it began.
    async fn plan(&self) -> Option<GqlMaintenancePlan> {
        serde_json::from_value::<MaintenancePlan>(self.0.plan.clone()).ok().map(Into::into)
    }
    /// Its report (Markdown): what it did on each machine, what needs attention.
    async fn report(&self) -> Option<&str> {
        self.0.report.as_deref()
    }
    /// Its steps, in order.
    async fn steps(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<GqlRunStep>> {
        let id = self.0.id;
        let steps = ctx.data::<Engine>()?.store().run(move |s| s.maintenance_steps(id)).await.api()?;
        Ok(steps.into_iter().map(Into::into).collect())
    }
}

/// A window to save.
#[derive(InputObject)]
pub struct MaintenanceWindowInput {
    /// Its name (letters, digits, `-`, `_`, `.`; replaces the window of that name).
    pub name: String,
    /// Machines by name.
    #[graphql(default)]
    pub nodes: Vec<String>,
    /// Machines by tag.
    #[graphql(default)]
    pub tags: Vec<String>,
    /// A cron schedule (`0 3 * * SUN`); null: run on request only.
    pub schedule: Option<String>,
    /// The time zone the schedule is read in (IANA, `Europe/Paris`); null: UTC.
    pub timezone: Option<String>,
    /// Whether the schedule is followed.
    #[graphql(default = true)]
    pub enabled: bool,
}

/// The nodes a selection resolves to, if the caller sees each of them (`NOT_FOUND` for a
/// name it does not see, `FORBIDDEN` for a tagged node outside its scope).
pub(crate) fn check_scope(view: &View, selection: &Selection) -> async_graphql::Result<BTreeSet<NodeId>> {
    for name in &selection.nodes {
        view.require(name)?;
    }
    let (nodes, _) = selection.resolve(&view.topology);
    if nodes.iter().any(|n| !view.visible(*n)) {
        return Err(api_error(
            ErrorCode::Forbidden,
            "the selection's tags reach nodes outside the caller's scope".to_owned(),
        ));
    }
    Ok(nodes)
}

/// Whether the caller sees every node `selection` reaches.
pub(crate) fn sees_all(view: &View, selection: &Selection) -> bool {
    selection.nodes.iter().all(|n| view.resolve(n).is_some())
        && selection.resolve(&view.topology).0.iter().all(|n| view.visible(*n))
}

/// Whether the caller sees every machine run `r` planned.
fn sees_run(view: &View, r: &MaintenanceRunRecord) -> bool {
    if view.scope.is_all() {
        return true;
    }
    let names = |key: &str| -> Vec<String> {
        r.plan[key].as_array().into_iter().flatten().filter_map(|m| m["name"].as_str().map(str::to_owned)).collect()
    };
    names("machines").iter().chain(names("skipped").iter()).all(|n| view.resolve(n).is_some())
}

fn run_id(id: &str) -> async_graphql::Result<i64> {
    parse_id(id, "maintenance-run")
        .ok_or_else(|| api_error(ErrorCode::NotFound, format!("maintenance run `{id}` not found")))
}

async fn window(ctx: &Context<'_>, view: &View, name: &str) -> async_graphql::Result<MaintenanceWindow> {
    let n = name.to_owned();
    let w = ctx.data::<Engine>()?.store().run(move |s| s.maintenance_window(&n)).await.api()?;
    w.filter(|w| sees_all(view, &Selection { nodes: w.nodes.clone(), tags: w.tags.clone() }))
        .ok_or_else(|| api_error(ErrorCode::NotFound, format!("maintenance window `{name}` not found")))
}

/// Part of [`Query`](super::Query): `maintenanceWindows`, `maintenanceWindow`,
/// `maintenancePlan`, `maintenanceRuns`, `maintenanceRun`.
#[derive(Default)]
pub struct MaintenanceQuery;

#[Object]
impl MaintenanceQuery {
    /// The maintenance windows the caller sees, by name.
    async fn maintenance_windows(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<GqlMaintenanceWindow>> {
        let view = View::load(ctx).await?;
        let all = ctx.data::<Engine>()?.store().run(|s| s.maintenance_windows()).await.api()?;
        Ok(all
            .into_iter()
            .filter(|w| sees_all(&view, &Selection { nodes: w.nodes.clone(), tags: w.tags.clone() }))
            .map(GqlMaintenanceWindow)
            .collect())
    }

    /// A maintenance window by name.
    async fn maintenance_window(&self, ctx: &Context<'_>, name: String) -> async_graphql::Result<GqlMaintenanceWindow> {
        let view = View::load(ctx).await?;
        Ok(GqlMaintenanceWindow(window(ctx, &view, &name).await?))
    }

    /// What a run over `window`, or over the machines `nodes` and `tags` name, would do now:
    /// the machines to wake, the packages to upgrade (security first), the reboots expected
    /// and an estimate learned from past runs. Takes a moment: power is observed.
    async fn maintenance_plan(
        &self,
        ctx: &Context<'_>,
        window: Option<String>,
        #[graphql(default)] nodes: Vec<String>,
        #[graphql(default)] tags: Vec<String>,
    ) -> async_graphql::Result<GqlMaintenancePlan> {
        let view = View::load(ctx).await?;
        let selection = match window {
            Some(name) => {
                let w = self::window(ctx, &view, &name).await?;
                Selection { nodes: w.nodes, tags: w.tags }
            }
            None => Selection { nodes, tags },
        };
        check_scope(&view, &selection)?;
        Ok(ctx.data::<Engine>()?.plan_maintenance(&selection).await.api()?.into())
    }

    /// Maintenance runs, newest first (of `window`, if given).
    async fn maintenance_runs(
        &self,
        ctx: &Context<'_>,
        window: Option<String>,
        #[graphql(default = 20)] first: i32,
    ) -> async_graphql::Result<Vec<GqlMaintenanceRun>> {
        let view = View::load(ctx).await?;
        let limit = first.clamp(1, 200) as usize;
        let runs =
            ctx.data::<Engine>()?.store().run(move |s| s.maintenance_runs(window.as_deref(), limit)).await.api()?;
        Ok(runs.into_iter().filter(|r| sees_run(&view, r)).map(GqlMaintenanceRun).collect())
    }

    /// A maintenance run by id.
    async fn maintenance_run(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<GqlMaintenanceRun> {
        let view = View::load(ctx).await?;
        let n = run_id(&id)?;
        let r = ctx.data::<Engine>()?.store().run(move |s| s.maintenance_run(n)).await.api()?;
        r.filter(|r| sees_run(&view, r))
            .map(GqlMaintenanceRun)
            .ok_or_else(|| api_error(ErrorCode::NotFound, format!("maintenance run `{}` not found", id.0)))
    }
}

/// Part of [`Mutation`](super::Mutation): `saveMaintenanceWindow`, `deleteMaintenanceWindow`,
/// `runMaintenance`.
#[derive(Default)]
pub struct MaintenanceMutation;

#[Object]
impl MaintenanceMutation {
    /// Saves a maintenance window (replacing the one of that name): its machines by names
    /// and tags, and optionally a cron schedule read in a time zone. A scheduled time missed
    /// while WakeHub was down runs when it is back if less than an hour late, else is
    /// skipped.
    #[graphql(guard = "RoleGuard(Role::Operator)")]
    async fn save_maintenance_window(
        &self,
        ctx: &Context<'_>,
        input: MaintenanceWindowInput,
    ) -> async_graphql::Result<GqlMaintenanceWindow> {
        let view = View::load(ctx).await?;
        let selection = Selection { nodes: input.nodes.clone(), tags: input.tags.clone() };
        check_scope(&view, &selection)?;
        let engine = ctx.data::<Engine>()?;
        // A window the caller could not see is not replaced by it.
        let name = input.name.clone();
        if let Some(old) = engine.store().run(move |s| s.maintenance_window(&name)).await.api()?
            && !sees_all(&view, &Selection { nodes: old.nodes, tags: old.tags })
        {
            return Err(api_error(
                ErrorCode::Forbidden,
                format!("maintenance window `{}` is not the caller's to change", input.name),
            ));
        }
        let mut w = MaintenanceWindow::new(input.name.clone(), input.nodes, input.tags)
            .with_schedule(input.schedule, input.timezone);
        w.enabled = input.enabled;
        engine.save_maintenance_window(w, &caller(ctx).name).await.api()?;
        Ok(GqlMaintenanceWindow(window(ctx, &view, &input.name).await?))
    }

    /// Deletes a maintenance window (its runs stay).
    #[graphql(guard = "RoleGuard(Role::Operator)")]
    async fn delete_maintenance_window(&self, ctx: &Context<'_>, name: String) -> async_graphql::Result<bool> {
        let view = View::load(ctx).await?;
        window(ctx, &view, &name).await?;
        ctx.data::<Engine>()?.delete_maintenance_window(&name).await.api()?;
        Ok(true)
    }

    /// Begins a maintenance run over `window`, or over the machines `nodes` and `tags`
    /// name, and returns it at once: it wakes what is asleep, refreshes, upgrades guests
    /// before their hosts, reboots only what requires it (a host's guests stopped cleanly
    /// and brought back), verifies, and puts every machine back to the power it had. Follow
    /// it with the `maintenance` events or `maintenanceRun`. `CONFLICT` while one of its
    /// machines is in another run.
    #[graphql(guard = "RoleGuard(Role::Operator)")]
    async fn run_maintenance(
        &self,
        ctx: &Context<'_>,
        window: Option<String>,
        #[graphql(default)] nodes: Vec<String>,
        #[graphql(default)] tags: Vec<String>,
    ) -> async_graphql::Result<GqlMaintenanceRun> {
        let view = View::load(ctx).await?;
        let (selection, name) = match window {
            Some(name) => {
                let w = self::window(ctx, &view, &name).await?;
                (Selection { nodes: w.nodes, tags: w.tags }, Some(name))
            }
            None => (Selection { nodes, tags }, None),
        };
        check_scope(&view, &selection)?;
        let who = caller(ctx).name;
        Ok(GqlMaintenanceRun(ctx.data::<Engine>()?.run_maintenance(selection, name, "manual", &who).await.api()?))
    }
}
