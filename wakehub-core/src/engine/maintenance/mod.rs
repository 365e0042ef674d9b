//! Maintenance windows: for a set of machines (by name or tag), a plan, then a run that
//! wakes what is asleep (the power cascade, hosting chains first), refreshes, upgrades
//! guests before their hosts, reboots only what requires it (a host's running guests are
//! stopped cleanly first and brought back after), verifies, and puts every node it woke
//! back to sleep. Every step is recorded and journaled (`maintenance` events); the actions
//! it runs are ordinary executions in mode `maintenance`, on each machine's queue.
//!
//! Windows may carry a cron schedule (read in their time zone); [`Engine::fire_due_windows`]
//! runs those whose time came. The rule for times missed while WakeHub was down: a window
//! whose latest time is less than [`CATCH_UP`] ago runs once when WakeHub is back (however
//! many times were missed); an older miss is skipped (and said in the log), never run hours
//! after the time its owner chose.

mod plan;

use super::schedule::{CATCH_UP, next_occurrence, zone};
pub use plan::{MaintenancePlan, PlannedMachine, PlannedPackage, Selection, Skipped};

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::events::CascadeStatus;
use crate::model::{Action, NodeId, PowerState, Refusal, Topology};
use crate::store::{
    ExecutionRecord, ExecutionStatus, MaintenanceRunRecord, MaintenanceWindow, RunStatus, check_window_name,
};

use super::machines::RefreshOptions;
use super::{Engine, EngineError};

/// How long the run waits for a guest's own action before rebooting its host anyway is
/// never: it waits this long, then leaves the host unrebooted and says why.
const GUEST_WAIT: Duration = Duration::from_secs(3600);

impl Engine {
    /// Saves window `w` (written by `actor`) after checking it: its name, a selection that
    /// names only nodes that exist, a schedule cron can read, a time zone that exists.
    pub async fn save_maintenance_window(&self, w: MaintenanceWindow, actor: &str) -> Result<(), EngineError> {
        check_window_name(&w.name)?;
        if w.nodes.is_empty() && w.tags.is_empty() {
            return Err(Refusal::invalid("a window names machines, tags, or both").into());
        }
        if w.nodes.len() + w.tags.len() > 256 {
            return Err(Refusal::invalid("a window names at most 256 machines and tags").into());
        }
        let topology = self.inner.store.run(|s| s.topology_shared()).await?;
        if let Some(missing) = w.nodes.iter().find(|n| topology.by_name(n).is_none()) {
            return Err(EngineError::NotFound { what: format!("node `{missing}`") });
        }
        if let Some(cron) = &w.schedule {
            next_occurrence(cron, w.timezone.as_deref(), crate::store::now_ms())
                .map_err(|e| Refusal::invalid(format!("schedule `{cron}`: {e}")))?;
        } else if let Some(tz) = &w.timezone {
            zone(tz).map_err(Refusal::invalid)?;
        }
        let actor = actor.to_owned();
        let now = crate::store::now_ms();
        self.record(move |tx| tx.save_maintenance_window(&w, &actor, now)).await
    }

    /// Deletes window `name` (its past runs stay).
    pub async fn delete_maintenance_window(&self, name: &str) -> Result<(), EngineError> {
        let n = name.to_owned();
        if !self.record(move |tx| tx.delete_maintenance_window(&n)).await? {
            return Err(EngineError::NotFound { what: format!("maintenance window `{name}`") });
        }
        Ok(())
    }

    /// Begins a maintenance run over `selection` (of `window`, if it is one's) in `mode`
    /// (`manual`, `scheduled`) for `actor`, and returns it at once; it runs in the
    /// background, each step journaled. Refused when the selection holds no machine, or a
    /// machine already in a running maintenance.
    pub async fn run_maintenance(
        &self,
        selection: Selection,
        window: Option<String>,
        mode: &str,
        actor: &str,
    ) -> Result<MaintenanceRunRecord, EngineError> {
        if !matches!(mode, "manual" | "scheduled") {
            return Err(Refusal::invalid(format!("mode `{mode}` is manual or scheduled")).into());
        }
        if self.state().shutting_down {
            return Err(EngineError::ShuttingDown);
        }
        if !self.is_leader() {
            return Err(EngineError::NotLeader);
        }
        let plan = self.plan_maintenance(&selection).await?;
        if plan.machines.is_empty() {
            return Err(Refusal::invalid("the selection holds no machine WakeHub can maintain").into());
        }
        let ids: Vec<NodeId> = plan.machines.iter().map(|m| NodeId::new(m.node)).collect();
        {
            let mut st = self.state();
            if let Some((id, run)) = ids.iter().find_map(|id| st.maintenance.get(id).map(|r| (*id, *r))) {
                let topology = self.inner.store.topology_shared()?;
                return Err(Refusal::conflict(format!(
                    "`{}` is in maintenance run {run} already",
                    topology.name_of(id)
                ))
                .into());
            }
            // Reserved now; the run's id replaces 0 below.
            for id in &ids {
                st.maintenance.insert(*id, 0);
            }
        }
        let plan_json = serde_json::to_value(&plan).unwrap_or_default();
        let (w, m, a, now) = (window.clone(), mode.to_owned(), actor.to_owned(), crate::store::now_ms());
        let run = match self.record(move |tx| tx.begin_maintenance_run(w.as_deref(), &m, &a, &plan_json, now)).await {
            Ok(run) => run,
            Err(e) => {
                let mut st = self.state();
                ids.iter().for_each(|id| {
                    st.maintenance.remove(id);
                });
                return Err(e);
            }
        };
        {
            let mut st = self.state();
            ids.iter().for_each(|id| {
                st.maintenance.insert(*id, run.id);
            });
        }
        let engine = self.clone();
        let run_id = run.id;
        // What the run does is done by it: its cascades and executions name it.
        let by = format!("maintenance-run:{run_id}");
        tokio::spawn(async move {
            let (status, report) = engine.maintain(run_id, plan, &by).await;
            let now = crate::store::now_ms();
            if let Err(e) = engine.record(move |tx| tx.finish_maintenance_run(run_id, status, &report, now)).await {
                tracing::error!(run = run_id, "cannot record the end of a maintenance run: {e}");
            }
            let mut st = engine.state();
            ids.iter().for_each(|id| {
                st.maintenance.remove(id);
            });
        });
        Ok(run)
    }

    /// The machines in a running maintenance, with its run.
    pub fn in_maintenance(&self) -> BTreeMap<NodeId, i64> {
        self.state().maintenance.iter().map(|(k, v)| (*k, *v)).collect()
    }

    /// Runs the windows whose schedule came (see the module's rule for missed times).
    /// The server calls it every few seconds.
    pub async fn fire_due_windows(&self) -> Result<Vec<MaintenanceRunRecord>, EngineError> {
        let now = crate::store::now_ms();
        let mut started = Vec::new();
        for w in self.inner.store.maintenance_windows()? {
            let Some(cron) = w.schedule.as_deref().filter(|_| w.enabled) else { continue };
            let since = w.last_fired_at.unwrap_or(w.updated_at);
            let Ok(due) = next_occurrence(cron, w.timezone.as_deref(), since) else { continue };
            if due > now {
                continue;
            }
            let name = w.name.clone();
            self.record(move |tx| tx.window_fired(&name, now)).await?;
            // Its latest time that came, if within the catch-up delay: one run for every
            // time missed, never a run long after the time its owner chose.
            let catch_up = now - CATCH_UP.as_millis() as i64;
            if next_occurrence(cron, w.timezone.as_deref(), catch_up.max(since)).is_ok_and(|t| t > now) {
                tracing::warn!(window = %w.name, "maintenance window skipped: its time passed while WakeHub was down");
                continue;
            }
            let selection = Selection { nodes: w.nodes.clone(), tags: w.tags.clone() };
            match self.run_maintenance(selection, Some(w.name.clone()), "scheduled", "schedule").await {
                Ok(run) => started.push(run),
                Err(e) => tracing::warn!(window = %w.name, "scheduled maintenance not run: {e}"),
            }
        }
        Ok(started)
    }

    /// Records a step of run `run`.
    async fn step(&self, run: i64, phase: &str, node: Option<(NodeId, String)>, status: &str, message: String) {
        let phase = phase.to_owned();
        let status = status.to_owned();
        let now = crate::store::now_ms();
        let r = self
            .record(move |tx| {
                tx.maintenance_step(run, &phase, node.as_ref().map(|(i, n)| (*i, n.as_str())), &status, &message, now)
            })
            .await;
        if let Err(e) = r {
            tracing::warn!(run, "cannot record a maintenance step: {e}");
        }
    }

    /// Runs a cascade to its end; its error, if it failed.
    async fn cascade_to_end(&self, node: NodeId, action: Action, actor: &str) -> Result<(), String> {
        let record = self.request_by(node, action, actor).await.map_err(|e| e.to_string())?;
        let record = self.wait(record.id).await.map_err(|e| e.to_string())?;
        match record.status {
            CascadeStatus::Completed => Ok(()),
            s => Err(format!(
                "{} cascade {} {}: {}",
                action.as_str(),
                record.id,
                s.as_str(),
                record.error_message.unwrap_or_default()
            )),
        }
    }

    /// Runs `action` on machine `node` as a maintenance execution and waits for its end.
    async fn action_to_end(&self, node: NodeId, action: &str, actor: &str) -> Result<ExecutionRecord, String> {
        let e = self.run_action(node, action, "maintenance", actor).await.map_err(|e| e.to_string())?;
        loop {
            tokio::time::sleep(Duration::from_millis(300)).await;
            match self.inner.store.execution(e.id) {
                Ok(Some(r)) if r.status.is_final() => return Ok(r),
                Ok(_) => {}
                Err(err) => return Err(err.to_string()),
            }
        }
    }

    /// The run itself: its final status and report.
    async fn maintain(&self, run: i64, plan: MaintenancePlan, actor: &str) -> (RunStatus, String) {
        let topology = match self.inner.store.run(|s| s.topology_shared()).await {
            Ok(t) => t,
            Err(e) => return (RunStatus::Attention, format!("# Maintenance run {run}\n\nCould not begin: {e}\n")),
        };
        let named = |id: NodeId| Some((id, topology.name_of(id)));
        let mut attention: Vec<String> = Vec::new();
        let mut done: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let before = self.observe(&topology).await;

        // Wake: hosting chains first (a cascade wakes what a machine needs anyway).
        let mut failed: BTreeSet<NodeId> = BTreeSet::new();
        for name in &plan.wake {
            let Some(node) = topology.by_name(name) else { continue };
            self.step(run, "wake", named(node.id), "running", format!("waking {name}")).await;
            match self.cascade_to_end(node.id, Action::Start, actor).await {
                Ok(()) => {
                    self.step(run, "wake", named(node.id), "done", format!("{name} is up")).await;
                    done.entry(name.clone()).or_default().push("woken".into());
                }
                Err(e) => {
                    self.step(run, "wake", named(node.id), "failed", format!("{name} could not be woken: {e}")).await;
                    attention.push(format!("{name} could not be woken: {e}"));
                    failed.insert(node.id);
                }
            }
        }
        let after_wake = self.observe(&topology).await;
        let woken: BTreeSet<NodeId> = after_wake
            .iter()
            .filter(|(id, p)| **p == PowerState::On && before.get(id) == Some(&PowerState::Off))
            .map(|(id, _)| *id)
            .collect();

        // Upgrade and reboot, level by level (guests first), machines of a level side by side.
        let mut levels: BTreeMap<usize, Vec<&PlannedMachine>> = BTreeMap::new();
        for m in &plan.machines {
            levels.entry(m.level).or_default().push(m);
        }
        for machines in levels.values() {
            let work = machines.iter().filter(|m| !failed.contains(&NodeId::new(m.node))).map(|m| {
                let topology = &topology;
                async move {
                    let id = NodeId::new(m.node);
                    let outcome = self.maintain_machine(run, topology, id, &m.name, actor).await;
                    (m.name.clone(), outcome)
                }
            });
            for (name, (steps, problems)) in futures::future::join_all(work).await {
                done.entry(name.clone()).or_default().extend(steps);
                attention.extend(problems.into_iter().map(|p| format!("{name}: {p}")));
            }
        }

        // Verify: each machine refreshed once more.
        for m in &plan.machines {
            let id = NodeId::new(m.node);
            if failed.contains(&id) {
                continue;
            }
            match self.refresh_now(&topology, id, RefreshOptions::default(), actor).await {
                Ok(r) if r.refresh.outcome == crate::store::RefreshOutcome::Ok => {
                    let s = &r.state;
                    let ok = s.updates == 0 && !s.reboot_required;
                    let status = if ok { "done" } else { "failed" };
                    self.step(run, "verify", named(id), status, format!("{}: {}", m.name, s.summary())).await;
                    if !ok {
                        attention.push(format!("{}: {}", m.name, s.summary()));
                    }
                }
                Ok(r) => {
                    let msg = format!("{}: {}", m.name, r.state.summary());
                    self.step(run, "verify", named(id), "failed", msg.clone()).await;
                    attention.push(msg);
                }
                Err(e) => {
                    self.step(run, "verify", named(id), "failed", format!("{}: {e}", m.name)).await;
                    attention.push(format!("{}: verify: {e}", m.name));
                }
            }
        }

        // Restore: what this run woke goes back to sleep, users first, never from under a
        // node that something else now uses.
        let mut restored = Vec::new();
        let mut left: BTreeSet<NodeId> = woken.clone();
        loop {
            let power = self.observe(&topology).await;
            let running = |n: NodeId| power.get(&n).is_some_and(|p| p.may_be_running());
            let next = left.iter().copied().find(|id| topology.users(*id, running).is_empty());
            let Some(id) = next else { break };
            left.remove(&id);
            if !running(id) {
                continue;
            }
            let name = topology.name_of(id);
            self.step(run, "restore", named(id), "running", format!("putting {name} back to sleep")).await;
            match self.cascade_to_end(id, Action::Stop, actor).await {
                Ok(()) => {
                    self.step(run, "restore", named(id), "done", format!("{name} is off again")).await;
                    restored.push(name);
                }
                Err(e) => {
                    self.step(run, "restore", named(id), "failed", format!("{name} stays on: {e}")).await;
                    attention.push(format!("{name} was off before and stays on: {e}"));
                }
            }
        }
        if !left.is_empty() {
            let power = self.observe(&topology).await;
            let running = |n: NodeId| power.get(&n).is_some_and(|p| p.may_be_running());
            for id in left.into_iter().filter(|id| running(*id)) {
                let users: Vec<String> = topology.users(id, running).into_iter().map(|u| topology.name_of(u)).collect();
                let name = topology.name_of(id);
                let msg = format!("{name} stays on: used by {}", users.join(", "));
                self.step(run, "restore", named(id), "skipped", msg.clone()).await;
                attention.push(format!("{name} was off before; {msg}"));
            }
        }
        // Machines that were on and are not (a reboot that did not come back…).
        let end = self.observe(&topology).await;
        for m in &plan.machines {
            let id = NodeId::new(m.node);
            if m.power_before == "on" && end.get(&id) != Some(&PowerState::On) {
                attention.push(format!(
                    "{} was on before and is {} now",
                    m.name,
                    end.get(&id).map_or("unknown", |p| p.as_str())
                ));
            }
        }

        let status = if attention.is_empty() { RunStatus::Succeeded } else { RunStatus::Attention };
        let mut report = format!("# Maintenance run {run}: {}\n\n", status.as_str());
        if attention.is_empty() {
            report.push_str("Every machine is up to date, none needs a reboot, and each is back as it was.\n");
        } else {
            report.push_str("Needs attention:\n");
            for a in &attention {
                report.push_str(&format!("- {a}\n"));
            }
        }
        report.push_str("\nMachines:\n");
        for m in &plan.machines {
            let steps = done.get(&m.name).map(|s| s.join("; ")).unwrap_or_else(|| "nothing to do".into());
            report.push_str(&format!("- {} (was {}): {steps}\n", m.name, m.power_before));
        }
        if !restored.is_empty() {
            report.push_str(&format!("\nPut back to sleep: {}.\n", restored.join(", ")));
        }
        if !plan.skipped.is_empty() {
            report.push_str("\nNot maintained:\n");
            for s in &plan.skipped {
                report.push_str(&format!("- {}: {}\n", s.name, s.reason));
            }
        }
        (status, report)
    }

    /// One machine's turn: refresh, upgrade when something is pending, reboot when
    /// required (its running guests stopped first and brought back). What it did, and what
    /// needs a person.
    async fn maintain_machine(
        &self,
        run: i64,
        topology: &Topology,
        id: NodeId,
        name: &str,
        actor: &str,
    ) -> (Vec<String>, Vec<String>) {
        let named = Some((id, name.to_owned()));
        let (mut did, mut problems) = (Vec::new(), Vec::new());
        self.step(run, "refresh", named.clone(), "running", format!("refreshing {name}")).await;
        let state = match self.refresh_now(topology, id, RefreshOptions::default(), actor).await {
            Ok(r) if r.refresh.outcome == crate::store::RefreshOutcome::Ok => {
                self.step(run, "refresh", named.clone(), "done", format!("{name}: {}", r.state.summary())).await;
                r.state
            }
            Ok(r) => {
                let msg = r.state.summary();
                self.step(run, "refresh", named.clone(), "failed", format!("{name}: {msg}")).await;
                problems.push(format!("refresh: {msg}"));
                return (did, problems);
            }
            Err(e) => {
                self.step(run, "refresh", named.clone(), "failed", format!("{name}: {e}")).await;
                problems.push(format!("refresh: {e}"));
                return (did, problems);
            }
        };
        let mut reboot_required = state.reboot_required;
        if state.updates > 0 {
            self.step(
                run,
                "upgrade",
                named.clone(),
                "running",
                format!("upgrading {} package(s) on {name}", state.updates),
            )
            .await;
            match self.action_to_end(id, "upgrade", actor).await {
                Ok(e) if e.status == ExecutionStatus::Succeeded => {
                    let msg = format!("{name} upgraded (execution:{})", e.id);
                    self.step(run, "upgrade", named.clone(), "done", msg).await;
                    let changed: Vec<String> = e
                        .result
                        .as_ref()
                        .and_then(|r| r["changed"].as_array().cloned())
                        .unwrap_or_default()
                        .iter()
                        .filter_map(|c| {
                            let name = c["name"].as_str()?;
                            Some(c["to"].as_str().map_or(format!("{name} removed"), |to| format!("{name} {to}")))
                        })
                        .collect();
                    did.push(if changed.is_empty() {
                        format!("upgraded (execution:{})", e.id)
                    } else {
                        format!("upgraded {} (execution:{})", changed.join(", "), e.id)
                    });
                    reboot_required =
                        self.inner.store.machine_state(id).ok().flatten().is_some_and(|s| s.reboot_required);
                }
                Ok(e) => {
                    let why = e.error_message.clone().unwrap_or_else(|| e.status.as_str().to_owned());
                    let msg = format!("{name}: upgrade {} (execution:{}): {why}", e.status.as_str(), e.id);
                    self.step(run, "upgrade", named.clone(), "failed", msg.clone()).await;
                    problems.push(format!("upgrade {} (execution:{}): {why}", e.status.as_str(), e.id));
                    // Not rebooted after a failed upgrade: a person looks first.
                    return (did, problems);
                }
                Err(e) => {
                    self.step(run, "upgrade", named.clone(), "failed", format!("{name}: {e}")).await;
                    problems.push(format!("upgrade: {e}"));
                    return (did, problems);
                }
            }
        }
        if !reboot_required {
            return (did, problems);
        }
        // Its guests: never rebooted from under one mid-upgrade; the running ones are
        // stopped cleanly and brought back.
        let guests: Vec<NodeId> = topology.children(id);
        let waited = tokio::time::timeout(GUEST_WAIT, async {
            while guests.iter().any(|g| self.executing(*g)) {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        })
        .await;
        if waited.is_err() {
            problems.push("not rebooted: a guest's action did not end".into());
            return (did, problems);
        }
        let power = self.observe(topology).await;
        let running: Vec<NodeId> = guests.iter().copied().filter(|g| power.get(g) == Some(&PowerState::On)).collect();
        let mut stopped = Vec::new();
        for g in &running {
            let gname = topology.name_of(*g);
            self.step(
                run,
                "stop-guests",
                Some((*g, gname.clone())),
                "running",
                format!("stopping {gname} before {name} reboots"),
            )
            .await;
            match self.cascade_to_end(*g, Action::Stop, actor).await {
                Ok(()) => {
                    self.step(run, "stop-guests", Some((*g, gname.clone())), "done", format!("{gname} stopped")).await;
                    stopped.push(*g);
                }
                Err(e) => {
                    self.step(run, "stop-guests", Some((*g, gname.clone())), "failed", format!("{gname}: {e}")).await;
                    problems.push(format!("not rebooted: its guest {gname} could not be stopped: {e}"));
                    self.start_back(run, topology, &stopped, name, actor, &mut problems).await;
                    return (did, problems);
                }
            }
        }
        self.step(run, "reboot", named.clone(), "running", format!("rebooting {name}")).await;
        match self.action_to_end(id, "reboot", actor).await {
            Ok(e) if e.status == ExecutionStatus::Succeeded => {
                self.step(
                    run,
                    "reboot",
                    named.clone(),
                    "done",
                    format!("{name} rebooted and back (execution:{})", e.id),
                )
                .await;
                did.push(format!("rebooted (execution:{})", e.id));
            }
            Ok(e) => {
                let why = e.error_message.clone().unwrap_or_else(|| e.status.as_str().to_owned());
                self.step(run, "reboot", named.clone(), "failed", format!("{name}: reboot: {why}")).await;
                problems.push(format!("reboot {} (execution:{}): {why}", e.status.as_str(), e.id));
            }
            Err(e) => {
                self.step(run, "reboot", named.clone(), "failed", format!("{name}: reboot: {e}")).await;
                problems.push(format!("reboot: {e}"));
            }
        }
        if !stopped.is_empty() {
            did.push(format!(
                "{} {} stopped for the reboot and started again",
                if stopped.len() == 1 { "its guest" } else { "its guests" },
                stopped.iter().map(|g| topology.name_of(*g)).collect::<Vec<_>>().join(", ")
            ));
        }
        self.start_back(run, topology, &stopped, name, actor, &mut problems).await;
        (did, problems)
    }

    /// Starts again the guests stopped for a host's reboot.
    async fn start_back(
        &self,
        run: i64,
        topology: &Topology,
        guests: &[NodeId],
        host: &str,
        actor: &str,
        problems: &mut Vec<String>,
    ) {
        for g in guests {
            let gname = topology.name_of(*g);
            let named = Some((*g, gname.clone()));
            self.step(run, "start-guests", named.clone(), "running", format!("starting {gname} again on {host}")).await;
            match self.cascade_to_end(*g, Action::Start, actor).await {
                Ok(()) => self.step(run, "start-guests", named, "done", format!("{gname} is up again")).await,
                Err(e) => {
                    self.step(run, "start-guests", named, "failed", format!("{gname}: {e}")).await;
                    problems.push(format!("its guest {gname} did not come back: {e}"));
                }
            }
        }
    }
}
