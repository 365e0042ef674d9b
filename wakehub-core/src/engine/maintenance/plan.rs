//! A maintenance run's plan: the machines a selection reaches, in the order they are
//! upgraded, with what each would do and how long it should take.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use crate::model::{NodeId, NodeState, PowerState, Topology};

use super::super::machines::is_machine;
pub use super::super::schedule::Selection;
use super::super::{Engine, EngineError};

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
        for m in &planned {
            let e = by_level.entry(m.level).or_default();
            *e = (*e).max(m.estimate_secs);
        }
        // Two refreshes per machine, side by side.
        let estimate_secs = by_level.values().sum::<u64>() + if planned.is_empty() { 0 } else { 20 };
        Ok(MaintenancePlan { machines: planned, skipped, wake, estimate_secs })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimates_are_the_median_of_past_runs_or_the_default() {
        assert_eq!(learned(&[], 30), (30, false));
        assert_eq!(learned(&[10_000, 50_000, 20_000], 30), (20, true));
        assert_eq!(learned(&[1], 30), (1, true));
    }
}
