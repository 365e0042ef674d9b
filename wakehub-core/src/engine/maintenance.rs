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

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::events::CascadeStatus;
use crate::model::{Action, NodeId, NodeState, PowerState, Refusal, Topology};
use crate::store::{
    ExecutionRecord, ExecutionStatus, MaintenanceRunRecord, MaintenanceWindow, RunStatus, check_window_name,
};

use super::machines::{RefreshOptions, is_machine};
use super::{Engine, EngineError};

/// How late a scheduled window may still run after WakeHub was down at its time.
pub const CATCH_UP: Duration = Duration::from_secs(3600);
/// How long the run waits for a guest's own action before rebooting its host anyway is
/// never: it waits this long, then leaves the host unrebooted and says why.
const GUEST_WAIT: Duration = Duration::from_secs(3600);

/// Which machines: those named, and those carrying one of the tags.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Selection {
    /// Node names.
    pub nodes: Vec<String>,
    /// Tags.
    pub tags: Vec<String>,
}

impl Selection {
    /// The nodes it names (by name or tag) that exist, and the names that do not.
    pub fn resolve(&self, topology: &Topology) -> (BTreeSet<NodeId>, Vec<String>) {
        let mut found = BTreeSet::new();
        let mut missing = Vec::new();
        for name in &self.nodes {
            match topology.by_name(name) {
                Some(n) => {
                    found.insert(n.id);
                }
                None => missing.push(name.clone()),
            }
        }
        found.extend(topology.nodes().filter(|n| n.spec.tags.iter().any(|t| self.tags.contains(t))).map(|n| n.id));
        (found, missing)
    }
}

/// What a run would do, before it does it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct MaintenancePlan {
    /// The machines, in the order they are upgraded: guests before their hosts.
    pub machines: Vec<PlannedMachine>,
    /// What the selection named that is not maintained, and why.
    pub skipped: Vec<Skipped>,
    /// The machines to wake (asleep now), hosting chains first.
    pub wake: Vec<String>,
    /// How long the run should take (seconds).
    pub estimate_secs: u64,
}

/// A node the selection named that the run leaves alone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skipped {
    /// Its name.
    pub name: String,
    /// Why.
    pub reason: String,
}

/// One machine of a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PlannedMachine {
    /// Its name.
    pub name: String,
    /// Its id.
    pub node: i64,
    /// `on`, `off` or `unknown`: what it is put back to at the end.
    pub power_before: String,
    /// The selected machine it runs on, if one.
    pub host: Option<String>,
    /// Its rank: 0 for a machine hosting no selected one; guests have a lower rank than
    /// their host and go first.
    pub level: usize,
    /// When what follows was last known (ms since the epoch); none: never refreshed (the
    /// run refreshes it first).
    pub known_at: Option<i64>,
    /// Upgrades pending (not held).
    pub updates: u32,
    /// Of which security updates.
    pub security_updates: u32,
    /// The packages, security updates first.
    pub packages: Vec<PlannedPackage>,
    /// Held packages (not upgraded).
    pub held: Vec<String>,
    /// `required` (a reboot is pending now), `likely` (the upgrades include a kernel),
    /// `not expected` or `unknown`.
    pub reboot: String,
    /// Why.
    pub reboot_reasons: Vec<String>,
    /// Its estimated share (seconds): waking, upgrading, rebooting.
    pub estimate_secs: u64,
    /// Where the estimate comes from (past runs, or the defaults).
    pub estimate_basis: String,
}

/// A package a plan upgrades.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedPackage {
    /// Its name.
    pub name: String,
    /// Installed version.
    pub installed: String,
    /// Candidate version.
    pub candidate: String,
    /// From a security archive.
    pub security: bool,
}

/// Seconds, from past durations (ms) when there are some, else `default`.
fn learned(past: &[i64], default: u64) -> (u64, bool) {
    if past.is_empty() {
        return (default, false);
    }
    let mut v: Vec<i64> = past.to_vec();
    v.sort_unstable();
    ((v[v.len() / 2].max(0) as u64).div_ceil(1000), true)
}

/// Whether an upgrade of these packages will likely need a reboot.
fn reboot_likely(packages: &[PlannedPackage]) -> Option<&str> {
    packages
        .iter()
        .find(|p| {
            p.name.starts_with("linux-image")
                || p.name.starts_with("pve-kernel")
                || p.name.starts_with("proxmox-kernel")
                || p.name.contains("kernel")
                || matches!(p.name.as_str(), "libc6" | "systemd" | "dbus" | "intel-microcode" | "amd64-microcode")
        })
        .map(|p| p.name.as_str())
}

/// A selected machine: its level (0 for a machine hosting no other selected one, else one
/// more than the deepest selected machine it hosts) and the nearest selected machine hosting it.
type Chosen = (NodeId, usize, Option<NodeId>);

impl Engine {
    /// The machines `selection` names, ordered guests first, with their power now; and what
    /// it names that is not a machine.
    fn select_machines(&self, topology: &Topology, selection: &Selection) -> (Vec<Chosen>, Vec<Skipped>) {
        let (chosen, missing) = selection.resolve(topology);
        let mut skipped: Vec<Skipped> =
            missing.into_iter().map(|name| Skipped { name, reason: "no such node".into() }).collect();
        let machines: BTreeSet<NodeId> = chosen
            .into_iter()
            .filter(|id| {
                let node = &topology.node(*id).expect("chosen from the topology");
                let reason = if node.spec.state != NodeState::Configured {
                    "discovered but not configured"
                } else if !is_machine(&node.spec.connector) {
                    "not a machine WakeHub can reach over SSH (its connector table has no `host` and SSH credential)"
                } else {
                    return true;
                };
                skipped.push(Skipped { name: node.spec.name.clone(), reason: reason.into() });
                false
            })
            .collect();
        // A machine's host: the nearest selected machine in its hosting chain.
        let host_of =
            |id: NodeId| topology.hosting_chain(id).into_iter().filter(|a| *a != id).find(|a| machines.contains(a));
        let mut level: HashMap<NodeId, usize> = HashMap::new();
        fn level_of(
            id: NodeId,
            machines: &BTreeSet<NodeId>,
            topology: &Topology,
            memo: &mut HashMap<NodeId, usize>,
        ) -> usize {
            if let Some(l) = memo.get(&id) {
                return *l;
            }
            let l = topology
                .hosted_descendants(id)
                .into_iter()
                .filter(|d| machines.contains(d))
                .map(|d| level_of(d, machines, topology, memo) + 1)
                .max()
                .unwrap_or(0);
            memo.insert(id, l);
            l
        }
        let mut out: Vec<Chosen> =
            machines.iter().map(|id| (*id, level_of(*id, &machines, topology, &mut level), host_of(*id))).collect();
        out.sort_by_key(|(id, l, _)| (*l, topology.name_of(*id)));
        (out, skipped)
    }

    /// The plan of a maintenance run over `selection`: the machines and their power now,
    /// what each would upgrade (from its last refresh), the reboots expected, the machines
    /// to wake, and an estimate learned from past runs.
    pub async fn plan_maintenance(&self, selection: &Selection) -> Result<MaintenancePlan, EngineError> {
        let topology = self.inner.store.run(|s| s.topology_shared()).await?;
        let (machines, skipped) = self.select_machines(&topology, selection);
        let power = self.observe(&topology).await;
        let store = &self.inner.store;
        let mut planned = Vec::new();
        for (id, level, host) in &machines {
            let node = topology.get(*id)?;
            let power_before = match power.get(id) {
                Some(PowerState::On) => "on",
                Some(PowerState::Off) => "off",
                _ => "unknown",
            };
            // What is known of it: a state with a snapshot (a machine whose refreshes all
            // failed is as unknown as one never refreshed).
            let state = store.machine_state(*id)?.filter(|s| s.snapshot.is_some());
            let snapshot = store.latest_snapshot(*id)?;
            let mut packages: Vec<PlannedPackage> = snapshot
                .as_ref()
                .and_then(|s| s.snapshot.apt.as_ref())
                .map(|apt| {
                    apt.upgrades
                        .iter()
                        .filter(|u| !u.held)
                        .map(|u| PlannedPackage {
                            name: u.name.clone(),
                            installed: u.installed.clone(),
                            candidate: u.candidate.clone(),
                            security: u.security,
                        })
                        .collect()
                })
                .unwrap_or_default();
            packages.sort_by(|a, b| b.security.cmp(&a.security).then_with(|| a.name.cmp(&b.name)));
            let held = snapshot
                .as_ref()
                .and_then(|s| s.snapshot.apt.as_ref())
                .map(|apt| apt.upgrades.iter().filter(|u| u.held).map(|u| u.name.clone()).collect())
                .unwrap_or_default();
            let (reboot, reboot_reasons) = match &state {
                None => ("unknown".to_owned(), Vec::new()),
                Some(s) if s.reboot_required => ("required".to_owned(), s.reboot_reasons.clone()),
                Some(_) => match reboot_likely(&packages) {
                    Some(p) => ("likely".to_owned(), vec![format!("{p} is among the upgrades")]),
                    None => ("not expected".to_owned(), Vec::new()),
                },
            };
            let (wake, wake_learned) =
                if power_before == "on" { (0, true) } else { learned(&store.start_durations(*id, 10)?, 60) };
            let (upgrade, upgrade_learned) = if packages.is_empty() && state.is_some() {
                (0, true)
            } else {
                learned(&store.action_durations(*id, "upgrade", 10)?, 30 + 3 * packages.len() as u64)
            };
            let (reboot_secs, reboot_learned) = if reboot == "not expected" {
                (0, true)
            } else {
                learned(&store.action_durations(*id, "reboot", 10)?, 60)
            };
            let mut basis = Vec::new();
            for (what, was_learned, secs) in [
                ("wake", wake_learned, wake),
                ("upgrade", upgrade_learned, upgrade),
                ("reboot", reboot_learned, reboot_secs),
            ] {
                if secs > 0 {
                    basis.push(format!("{what} {secs}s ({})", if was_learned { "past runs" } else { "default" }));
                }
            }
            planned.push(PlannedMachine {
                name: node.spec.name.clone(),
                node: id.get(),
                power_before: power_before.to_owned(),
                host: host.map(|h| topology.name_of(h)),
                level: *level,
                known_at: state.as_ref().and_then(|s| s.snapshot.map(|(_, at)| at)),
                updates: state.as_ref().map_or(packages.len() as u32, |s| s.updates),
                security_updates: state.as_ref().map_or(0, |s| s.security_updates),
                packages,
                held,
                reboot,
                reboot_reasons,
                estimate_secs: wake + upgrade + reboot_secs,
                estimate_basis: if basis.is_empty() { "nothing to do".into() } else { basis.join(", ") },
            });
        }
        // Waking goes hosting chains first (hosts have the higher level); upgrades go by level,
        // machines of one level side by side.
        let mut wake: Vec<&PlannedMachine> = planned.iter().filter(|m| m.power_before == "off").collect();
        wake.sort_by_key(|m| std::cmp::Reverse(m.level));
        let wake = wake.into_iter().map(|m| m.name.clone()).collect();
        let mut by_level: BTreeMap<usize, u64> = BTreeMap::new();
        let mut wake_secs = 0;
        for m in &planned {
            let e = by_level.entry(m.level).or_default();
            *e = (*e).max(m.estimate_secs);
            wake_secs = wake_secs.max(if m.power_before == "off" { 1 } else { 0 });
        }
        // Two refreshes per machine, side by side.
        let estimate_secs = by_level.values().sum::<u64>() + if planned.is_empty() { 0 } else { 20 };
        let _ = wake_secs;
        Ok(MaintenancePlan { machines: planned, skipped, wake, estimate_secs })
    }

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

/// Time zone `name` (IANA), or why not.
fn zone(name: &str) -> Result<jiff::tz::TimeZone, String> {
    jiff::tz::TimeZone::get(name).map_err(|_| format!("unknown time zone `{name}`"))
}

/// The first time `cron` (read in `timezone`, default UTC) fires after `after_ms`, in ms
/// since the epoch.
pub fn next_occurrence(cron: &str, timezone: Option<&str>, after_ms: i64) -> Result<i64, String> {
    if cron.len() > 200 {
        return Err("a schedule is at most 200 characters".into());
    }
    let parsed: croner::Cron = cron.parse().map_err(|e: croner::errors::CronError| e.to_string())?;
    let tz = match timezone {
        Some(name) => zone(name)?,
        None => jiff::tz::TimeZone::UTC,
    };
    let at = jiff::Timestamp::from_millisecond(after_ms).map_err(|e| e.to_string())?.to_zoned(tz);
    let next = parsed.find_next_occurrence(&at, false).map_err(|e| e.to_string())?;
    Ok(next.timestamp().as_millisecond())
}

/// What `cron` means, in English (`At 03:00 on Sunday`).
pub fn describe_schedule(cron: &str) -> Option<String> {
    cron.parse::<croner::Cron>().ok().map(|c| c.describe())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_are_read_in_their_time_zone_and_bad_ones_are_refused() {
        // 2026-12-01T00:00:00Z.
        let t0 = 1_796_083_200_000;
        let utc = next_occurrence("0 3 * * *", None, t0).unwrap();
        assert_eq!(utc - t0, 3 * 3600 * 1000);
        // 03:00 in Paris (UTC+1 in winter) is 02:00 UTC.
        let paris = next_occurrence("0 3 * * *", Some("Europe/Paris"), t0).unwrap();
        assert_eq!(paris - t0, 2 * 3600 * 1000);
        assert!(next_occurrence("61 * * * *", None, t0).is_err());
        assert!(next_occurrence("0 3 * * *", Some("Mars/Olympus"), t0).unwrap_err().contains("time zone"));
        assert!(next_occurrence("", None, t0).is_err());
        assert!(
            describe_schedule("0 3 * * SUN").is_some_and(|d| d.contains("03:00")),
            "{:?}",
            describe_schedule("0 3 * * SUN")
        );
    }

    #[test]
    fn estimates_are_the_median_of_past_runs_or_the_default() {
        assert_eq!(learned(&[], 30), (30, false));
        assert_eq!(learned(&[10_000, 50_000, 20_000], 30), (20, true));
        assert_eq!(learned(&[1], 30), (1, true));
    }
}
