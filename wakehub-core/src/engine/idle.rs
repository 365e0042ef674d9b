//! Inactivity rules at work: [`Engine::check_idle_at`] measures every running node that has
//! an [`IdleRule`], and stops (a normal stop cascade, by `idle`) each one whose signals have
//! all been quiet for its idle time — unless something keeps it on. The server's monitor
//! calls it every 30 s; the proxy reports requests with [`Engine::touch`].
//!
//! **The rules.**
//! - A node's idle clock starts when WakeHub first sees it on; every signal that fires (and
//!   every request through the proxy) resets it.
//! - Activity flows down the hosting and dependency links: a node is active while anything
//!   running on it or depending on it is, so a host's idle time counts from the last activity
//!   of its guests.
//! - A node is kept on (the reason is shown) while: something running on it or depending on
//!   it has no idle rule (nobody said it may stop) or is not idle by its own rule; a signal
//!   could not be measured this time (unknown is not idle); a keep-on schedule holds it or
//!   something its stop would stop; a maintenance run, a running action or a stack command is
//!   on it; a cascade touching it is in flight; its (or a guest's) veto URL or command says so.
//! - The stop is a normal stop cascade: shared dependencies are protected and proposals
//!   made by the usual rules.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use futures::future::join_all;
use serde::{Deserialize, Serialize};

use crate::connector::activity::{Cpu, Load, http_check, shell_activity};
use crate::model::{Action, IdleRule, NodeId, PowerState, Topology};

use super::{Engine, EngineError};

/// The longest one node's measurement may take.
const MEASURE_TIMEOUT: Duration = Duration::from_secs(30);

/// One signal's latest reading.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reading {
    /// `tcp_ports`, `ssh_sessions`, `cpu_percent`, `net_kbps`, `reported`, `watts_above`,
    /// `probe`, `veto_url`, `veto_command`.
    pub signal: String,
    /// What was measured, for people ("2 connections", "3.1 %").
    pub value: String,
    /// Whether it counts as activity (or, for a veto, keeps the node on).
    pub active: bool,
    /// Why it could not be measured.
    pub error: Option<String>,
}

/// What the idle rules say about one node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IdleStatus {
    /// The node.
    pub node: NodeId,
    /// Its idle time.
    pub after: Duration,
    /// When it was last active (ms since the epoch), its own signals or what runs on it.
    pub last_activity_at: i64,
    /// What that activity was.
    pub last_activity: String,
    /// When it becomes idle if nothing happens (ms since the epoch).
    pub idle_at: i64,
    /// Why it is kept on although idle, if it is.
    pub kept: Option<String>,
    /// Its signals' latest readings.
    pub readings: Vec<Reading>,
    /// When they were taken.
    pub measured_at: Option<i64>,
    /// The stop cascade the rule requested, once idle.
    pub stop_requested: Option<crate::model::CascadeId>,
}

/// What the engine remembers of one running node with a rule.
#[derive(Debug, Clone)]
pub(super) struct Track {
    last_active: i64,
    last_reason: String,
    load: Option<(i64, Load)>,
    readings: Vec<Reading>,
    measured_at: Option<i64>,
    kept: Option<String>,
    stop_requested: Option<crate::model::CascadeId>,
}

impl Track {
    fn new(now: i64, why: &str) -> Track {
        Track {
            last_active: now,
            last_reason: why.to_owned(),
            load: None,
            readings: Vec::new(),
            measured_at: None,
            kept: None,
            stop_requested: None,
        }
    }

    fn active(&mut self, now: i64, why: &str) {
        if now >= self.last_active {
            self.last_active = now;
            // Most activity says the same as the last (a request after a request).
            if self.last_reason != why {
                self.last_reason = why.to_owned();
            }
        }
    }
}

/// The tracks of every running node with a rule.
pub(super) type Tracks = HashMap<NodeId, Track>;

fn reading(signal: &str, value: String, active: bool) -> Reading {
    Reading { signal: signal.to_owned(), value, active, error: None }
}

fn failed(signal: &str, error: String) -> Reading {
    Reading { signal: signal.to_owned(), value: String::new(), active: false, error: Some(error) }
}

/// CPU percent and network kB/s between two load samples `secs` apart.
fn rates(before: Option<&(i64, Load)>, now: i64, load: &Load) -> (Option<f64>, Option<f64>) {
    let cpu = match load.cpu {
        Some(Cpu::Percent(p)) => Some(p),
        Some(Cpu::BusySeconds(busy)) => before.and_then(|(at, b)| match b.cpu {
            Some(Cpu::BusySeconds(was)) if now > *at => {
                Some((busy - was).max(0.0) / ((now - at) as f64 / 1000.0) * 100.0)
            }
            _ => None,
        }),
        None => None,
    };
    let net = before.and_then(|(at, b)| match (b.net_bytes, load.net_bytes) {
        (Some(was), Some(is)) if now > *at => {
            Some(is.saturating_sub(was) as f64 / 1024.0 / ((now - at) as f64 / 1000.0))
        }
        _ => None,
    });
    (cpu, net)
}

impl Engine {
    /// Counts a request through WakeHub's proxy (or another activity WakeHub sees itself)
    /// as activity of `node` now.
    pub fn touch(&self, node: NodeId, what: &str) {
        self.touch_at(node, what, crate::store::now_ms());
    }

    /// [`touch`](Self::touch) at `now` (ms since the epoch).
    pub fn touch_at(&self, node: NodeId, what: &str, now: i64) {
        let mut st = self.state();
        st.idle.entry(node).or_insert_with(|| Track::new(now, what)).active(now, what);
    }

    /// The state last observed of `node` (by the monitor or a cascade), if it ever was.
    pub fn seen(&self, node: NodeId) -> Option<PowerState> {
        self.state().observed.states.get(&node).copied()
    }

    /// What the idle rules say about every tracked node (running, with a rule), as of the
    /// last check.
    pub fn idle_statuses(&self) -> Result<Vec<IdleStatus>, EngineError> {
        if let Some(shared) = self.state().followed_idle.as_ref().filter(|_| !self.is_leader()) {
            return Ok(shared.clone());
        }
        let topology = self.inner.store.topology_shared()?;
        let tracks = self.state().idle.clone();
        Ok(statuses(&topology, &tracks))
    }

    /// Measures every running node with a rule at `now` (ms since the epoch), and requests
    /// the stop of each idle one nothing keeps on. Returns every tracked node's status.
    pub async fn check_idle_at(&self, now: i64) -> Result<Vec<IdleStatus>, EngineError> {
        let statuses = self.check_idle_inner(now, true).await?;
        self.share(super::follow::IDLE_KEY, &statuses).await;
        Ok(statuses)
    }

    /// [`check_idle_at`](Self::check_idle_at) now, on the states the last observation left
    /// (the server's monitor has just observed every node: no second poll).
    pub async fn check_idle_observed(&self) -> Result<Vec<IdleStatus>, EngineError> {
        let statuses = self.check_idle_inner(crate::store::now_ms(), false).await?;
        self.share(super::follow::IDLE_KEY, &statuses).await;
        Ok(statuses)
    }

    async fn check_idle_inner(&self, now: i64, observe: bool) -> Result<Vec<IdleStatus>, EngineError> {
        let topology = self.inner.store.run(|s| s.topology_shared()).await?;
        let ruled: Vec<(NodeId, IdleRule)> =
            topology.nodes().filter_map(|n| n.spec.idle.clone().map(|r| (n.id, r))).collect();
        if ruled.is_empty() {
            self.state().idle.clear();
            return Ok(Vec::new());
        }
        let states: BTreeMap<NodeId, PowerState> = if observe {
            self.observe(&topology).await
        } else {
            self.observed().states.iter().map(|(n, s)| (*n, *s)).collect()
        };
        let on = |n: NodeId| states.get(&n) == Some(&PowerState::On);
        {
            let mut st = self.state();
            st.idle.retain(|n, _| on(*n) && ruled.iter().any(|(r, _)| r == n));
            for (n, _) in ruled.iter().filter(|(n, _)| on(*n)) {
                st.idle.entry(*n).or_insert_with(|| Track::new(now, "seen on"));
            }
        }
        let measured = join_all(ruled.iter().filter(|(n, _)| on(*n)).map(|(n, rule)| {
            let topology = &topology;
            async move {
                let previous = self.state().idle.get(n).and_then(|t| t.load);
                let measure = self.measure(topology, *n, rule, previous, now);
                let readings = tokio::time::timeout(MEASURE_TIMEOUT, measure)
                    .await
                    .unwrap_or_else(|_| (vec![failed("measure", format!("no answer in {MEASURE_TIMEOUT:?}"))], None));
                (*n, readings)
            }
        }))
        .await;
        {
            let mut st = self.state();
            for (n, (readings, load)) in measured {
                let Some(track) = st.idle.get_mut(&n) else { continue };
                if let Some(r) = readings.iter().find(|r| r.active && !r.signal.starts_with("veto")) {
                    track.active(now, &format!("{}: {}", r.signal, r.value));
                }
                if load.is_some() {
                    track.load = load.map(|l| (now, l));
                }
                track.readings = readings;
                track.measured_at = Some(now);
            }
        }
        let rules: BTreeMap<NodeId, IdleRule> = ruled.into_iter().collect();
        for (node, rule) in &rules {
            if !on(*node) {
                continue;
            }
            let kept = self.kept_by(&topology, &rules, &states, *node, now).await;
            let idle_since = effective(&topology, &self.state().idle, &states, *node).0;
            let idle = now - idle_since >= rule.after.as_millis() as i64;
            let mut request = None;
            if idle && kept.is_none() {
                let in_flight = self.state().idle.get(node).and_then(|t| t.stop_requested);
                if in_flight.is_none_or(|c| !self.state().running.contains_key(&c)) {
                    request = Some(self.request_by(*node, Action::Stop, "idle").await);
                }
            }
            let mut st = self.state();
            let Some(track) = st.idle.get_mut(node) else { continue };
            track.kept = if idle { kept } else { None };
            match request {
                Some(Ok(cascade)) => {
                    tracing::info!(node = %topology.name_of(*node), cascade = %cascade.id, "idle: stop requested");
                    track.stop_requested = Some(cascade.id);
                }
                Some(Err(e)) => track.kept = Some(format!("its stop was refused: {e}")),
                None => {}
            }
        }
        let tracks = self.state().idle.clone();
        Ok(statuses(&topology, &tracks))
    }

    /// [`check_idle_at`](Self::check_idle_at) now.
    pub async fn check_idle(&self) -> Result<Vec<IdleStatus>, EngineError> {
        self.check_idle_at(crate::store::now_ms()).await
    }

    /// Takes one node's readings; its load sample too, to compare with the next one.
    async fn measure(
        &self,
        topology: &Topology,
        node: NodeId,
        rule: &IdleRule,
        previous: Option<(i64, Load)>,
        now: i64,
    ) -> (Vec<Reading>, Option<Load>) {
        let mut out = Vec::new();
        let mut sample = None;
        let Some(target) = self.target(topology, node) else { return (out, None) };
        if rule.needs_shell() {
            match shell_activity(&target, &rule.tcp_ports, rule.ssh_sessions, rule.veto_command.as_deref()).await {
                Ok(found) => {
                    if let Some(n) = found.tcp_connections {
                        let ports = rule.tcp_ports.iter().map(u16::to_string).collect::<Vec<_>>().join(", ");
                        out.push(reading("tcp_ports", format!("{n} connection(s) on {ports}"), n > 0));
                    }
                    if let Some(n) = found.ssh_sessions {
                        out.push(reading("ssh_sessions", format!("{n} session(s)"), n > 0));
                    }
                    if let Some(v) = found.veto {
                        out.push(reading("veto_command", if v { "exit 0" } else { "exit ≠ 0" }.into(), v));
                    }
                }
                Err(e) => out.push(failed("shell", e.to_string())),
            }
        }
        if rule.needs_load() {
            let connector = self.inner.connectors.get(&target.config.type_name);
            match connector {
                Some(c) => match c.load(&target).await {
                    Ok(load) => {
                        let (cpu, net) = rates(previous.as_ref(), now, &load);
                        if let Some(limit) = rule.cpu_percent {
                            out.push(match cpu {
                                Some(p) => reading("cpu_percent", format!("{p:.1} %"), p > limit),
                                None if load.cpu.is_none() => failed("cpu_percent", "not reported".into()),
                                None => reading("cpu_percent", "first sample".into(), false),
                            });
                        }
                        if let Some(limit) = rule.net_kbps {
                            out.push(match net {
                                Some(k) => reading("net_kbps", format!("{k:.1} kB/s"), k > limit),
                                None if load.net_bytes.is_none() => failed("net_kbps", "not reported".into()),
                                None => reading("net_kbps", "first sample".into(), false),
                            });
                        }
                        if rule.reported {
                            out.push(match load.in_use {
                                Some(true) => reading("reported", "in use".into(), true),
                                Some(false) => reading("reported", "not in use".into(), false),
                                None => failed("reported", "its connector does not say".into()),
                            });
                        }
                        sample = Some(load);
                    }
                    Err(e) => out.push(failed("load", e.to_string())),
                },
                None => out.push(failed("load", format!("no connector `{}`", target.config.type_name))),
            }
        }
        if let Some(limit) = rule.watts_above {
            out.push(match self.meter_watts(topology, node, sample.as_ref()).await {
                Ok(w) => reading("watts_above", format!("{w:.1} W"), w > limit),
                Err(e) => failed("watts_above", e),
            });
        }
        for (signal, check) in [("probe", &rule.probe), ("veto_url", &rule.veto_url)] {
            let Some(check) = check else { continue };
            out.push(match http_check(check, Duration::from_secs(10)).await {
                Ok(true) => reading(signal, "reports something".into(), true),
                Ok(false) => reading(signal, "reports nothing".into(), false),
                Err(e) => failed(signal, e.to_string()),
            });
        }
        (out, sample)
    }

    /// Why `node` must stay on although idle, if anything says so.
    async fn kept_by(
        &self,
        topology: &Topology,
        rules: &BTreeMap<NodeId, IdleRule>,
        states: &BTreeMap<NodeId, PowerState>,
        node: NodeId,
        now: i64,
    ) -> Option<String> {
        let running = |n: NodeId| states.get(&n).is_some_and(|s| s.may_be_running());
        let scope: BTreeSet<NodeId> =
            topology.downstream_closure(node).into_iter().filter(|n| running(*n)).chain([node]).collect();
        let tracks = self.state().idle.clone();
        for n in &scope {
            let name = topology.name_of(*n);
            let Some(rule) = rules.get(n) else {
                return Some(format!("`{name}` runs on it or needs it and has no idle rule"));
            };
            let Some(track) = tracks.get(n) else {
                return Some(format!("`{name}` is not measured yet"));
            };
            if let Some(r) = track.readings.iter().find(|r| r.error.is_some()) {
                return Some(format!(
                    "`{name}`: {} cannot be measured: {}",
                    r.signal,
                    r.error.clone().unwrap_or_default()
                ));
            }
            if let Some(r) = track.readings.iter().find(|r| r.active && r.signal.starts_with("veto")) {
                return Some(format!("`{name}`: its {} says keep on", r.signal.replace('_', " ")));
            }
            if *n != node && now - effective(topology, &tracks, states, *n).0 < rule.after.as_millis() as i64 {
                return Some(format!("`{name}` is not idle yet"));
            }
            if let Ok(Some((schedule, until))) = self.kept_on(*n, now) {
                let left = Duration::from_secs(((until - now).max(0) / 1000) as u64);
                return Some(format!(
                    "schedule `{schedule}` keeps `{name}` on for {}",
                    humantime::format_duration(left)
                ));
            }
        }
        #[cfg(feature = "wol-ssh")]
        {
            let maintenance = self.in_maintenance();
            if let Some((n, run)) = scope.iter().find_map(|n| maintenance.get(n).map(|r| (*n, *r))) {
                return Some(format!("`{}` is in maintenance run {run}", topology.name_of(n)));
            }
            if let Some(n) = self.state().executing.intersection(&scope).next() {
                return Some(format!("`{}` is running an action", topology.name_of(*n)));
            }
        }
        #[cfg(feature = "docker")]
        if let Err(e) = self.refuse_stop_during_stack_command(&scope, topology, &topology.name_of(node)) {
            return Some(e.to_string().replace("cannot stop", "kept").replace("; stop it once that is done", ""));
        }
        let st = self.state();
        let busy = st.running.values().find(|r| r.target == node || r.needs.contains(&node) || r.stops.contains(&node));
        busy.map(|r| format!("a {} of `{}` is in progress", r.action.as_str(), topology.name_of(r.target)))
    }
}

/// When `node` was last active, counting what runs on it or depends on it, and what that was.
fn effective(
    topology: &Topology,
    tracks: &Tracks,
    states: &BTreeMap<NodeId, PowerState>,
    node: NodeId,
) -> (i64, String) {
    let own = tracks.get(&node).map_or((0, String::new()), |t| (t.last_active, t.last_reason.clone()));
    topology
        .downstream_closure(node)
        .into_iter()
        .filter(|n| states.get(n).is_some_and(|s| s.may_be_running()))
        .filter_map(|n| {
            tracks.get(&n).map(|t| (t.last_active, format!("`{}`: {}", topology.name_of(n), t.last_reason)))
        })
        .fold(own, |best, other| if other.0 > best.0 { other } else { best })
}

fn statuses(topology: &Topology, tracks: &Tracks) -> Vec<IdleStatus> {
    let states: BTreeMap<NodeId, PowerState> = tracks.keys().map(|n| (*n, PowerState::On)).collect();
    let mut out: Vec<IdleStatus> = tracks
        .iter()
        .filter_map(|(n, t)| {
            let rule = topology.node(*n)?.spec.idle.clone()?;
            let (at, what) = effective(topology, tracks, &states, *n);
            Some(IdleStatus {
                node: *n,
                after: rule.after,
                last_activity_at: at,
                last_activity: what,
                idle_at: at + rule.after.as_millis() as i64,
                kept: t.kept.clone(),
                readings: t.readings.clone(),
                measured_at: t.measured_at,
                stop_requested: t.stop_requested,
            })
        })
        .collect();
    out.sort_by_key(|s| s.node);
    out
}
