//! The simulated connector (`type = "sim"`): nodes that take a configurable time to come up
//! and go down, for tests and the demo. Keys: `initially = "on" | "off"` (default off),
//! `start_delay_ms`, `stop_delay_ms` (default 0), `fail = "start" | "stop"` (optional),
//! `meter_on`, `meter_off` (the watts its simulated meter reads while on and off; none: it
//! measures no power), and
//! on a host `guests`, the guests its discovery lists (`[{ name = "vm-nextcloud", kind =
//! "vm", status = "on" }]`; each one a `sim` node that takes a second to start or stop), so
//! a simulated lab has something to discover and adopt.
//!
//! Each node's state lives in a `watch` channel, so the engine waits on real transitions
//! through [`Connector::watch`], exactly as it does with platforms that push events.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use futures::stream::BoxStream;
use tokio::sync::watch;

use super::{Action, ConfigError, Connector, ConnectorError, DiscoveredGuest, ErrorCode, PowerState, Target};
use crate::model::{ConfigValue, ConnectorConfig, Kind, NodeId};

#[derive(Debug, Clone, PartialEq)]
struct SimConfig {
    initially: PowerState,
    start_delay: Duration,
    stop_delay: Duration,
    fail_start: bool,
    fail_stop: bool,
    guests: Vec<SimGuest>,
    meter: Option<(f64, f64)>,
}

/// A guest a simulated host lists when discovered.
#[derive(Debug, Clone, PartialEq)]
struct SimGuest {
    name: String,
    kind: Kind,
    status: PowerState,
}

fn parse_guest(v: &ConfigValue) -> Result<SimGuest, String> {
    let ConfigValue::Table(t) = v else {
        return Err("sim: each of `guests` is a table { name, kind, status }".into());
    };
    if let Some(k) = t.keys().find(|k| !matches!(k.as_str(), "name" | "kind" | "status")) {
        return Err(format!("sim: guests: unknown key `{k}` (expected name, kind, status)"));
    }
    let name = match t.get("name") {
        Some(ConfigValue::String(n)) => n.clone(),
        _ => return Err("sim: guests: `name` is missing or not a string".into()),
    };
    crate::model::validate_name(&name).map_err(|e| format!("sim: guests: {e}"))?;
    let kind = match t.get("kind") {
        Some(ConfigValue::String(k)) => Kind::parse(k, &Default::default())
            .filter(|k| *k != Kind::Physical)
            .ok_or_else(|| format!("sim: guests: `{name}`: kind `{k}` is not vm, lxc or container"))?,
        _ => return Err(format!("sim: guests: `{name}`: `kind` is missing or not a string")),
    };
    let status = match t.get("status") {
        None => PowerState::Off,
        Some(ConfigValue::String(s)) if s == "on" => PowerState::On,
        Some(ConfigValue::String(s)) if s == "off" => PowerState::Off,
        Some(_) => return Err(format!("sim: guests: `{name}`: `status` must be \"on\" or \"off\"")),
    };
    Ok(SimGuest { name, kind, status })
}

fn parse(config: &ConnectorConfig) -> Result<SimConfig, String> {
    let mut c = SimConfig {
        initially: PowerState::Off,
        start_delay: Duration::ZERO,
        stop_delay: Duration::ZERO,
        fail_start: false,
        fail_stop: false,
        guests: Vec::new(),
        meter: None,
    };
    for (key, value) in &config.settings {
        match (key.as_str(), value) {
            ("initially", ConfigValue::String(s)) if s == "on" || s == "off" => {
                c.initially = if s == "on" { PowerState::On } else { PowerState::Off };
            }
            ("initially", _) => return Err("sim: `initially` must be \"on\" or \"off\"".into()),
            ("start_delay_ms" | "stop_delay_ms", ConfigValue::Integer(ms)) if (0..=3_600_000).contains(ms) => {
                let d = Duration::from_millis(*ms as u64);
                if key == "start_delay_ms" {
                    c.start_delay = d;
                } else {
                    c.stop_delay = d;
                }
            }
            ("start_delay_ms" | "stop_delay_ms", _) => {
                return Err(format!("sim: `{key}` must be a number of milliseconds (0 to 3600000)"));
            }
            ("fail", ConfigValue::String(s)) if s == "start" => c.fail_start = true,
            ("fail", ConfigValue::String(s)) if s == "stop" => c.fail_stop = true,
            ("fail", _) => return Err("sim: `fail` must be \"start\" or \"stop\"".into()),
            ("guests", ConfigValue::Array(items)) => {
                c.guests = items.iter().map(parse_guest).collect::<Result<_, _>>()?;
            }
            ("guests", _) => return Err("sim: `guests` must be a list of { name, kind, status } tables".into()),
            ("meter_on" | "meter_off", v) => {
                let w = match v {
                    ConfigValue::Float(f) => *f,
                    ConfigValue::Integer(i) => *i as f64,
                    _ => f64::NAN,
                };
                if !(w.is_finite() && (0.0..=100_000.0).contains(&w)) {
                    return Err(format!("sim: `{key}` must be a number of watts (0 to 100000)"));
                }
                let (on, off) = c.meter.unwrap_or((0.0, 0.0));
                c.meter = Some(if key == "meter_on" { (w, off) } else { (on, w) });
            }
            // Keys of an endpoint the node offers to its guests (`docker_host`, `proxmox_…`)
            // belong to that capability's connector, which validates them.
            (other, _) if other.starts_with("docker_") || other.starts_with("proxmox_") => {}
            // A simulated machine may still be reached over SSH (its state, its actions).
            (other, _) if let Some(checked) = crate::connector::check_ssh_access_key(config, other) => {
                checked.map_err(|e| format!("sim: {e}"))?;
            }
            (other, _) => {
                return Err(format!(
                    "sim: unknown key `{other}` (expected initially, start_delay_ms, stop_delay_ms, fail, guests, meter_on, meter_off, or \
                     the keys that reach a machine over SSH: {})",
                    crate::connector::SSH_ACCESS_KEYS.join(", ")
                ));
            }
        }
    }
    Ok(c)
}

struct SimNode {
    state: watch::Sender<PowerState>,
    /// Bumped by every start/stop so a superseded transition does not land.
    generation: u64,
}

/// The simulated connector. One instance simulates every `sim` node it is asked about;
/// a node's state starts at its `initially` and then follows start/stop calls.
#[derive(Clone, Default)]
pub struct SimConnector {
    nodes: Arc<Mutex<HashMap<NodeId, SimNode>>>,
    loads: Arc<Mutex<HashMap<NodeId, super::activity::Load>>>,
}

impl SimConnector {
    /// A simulator with no node state yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets what [`Connector::load`] reports for `node` from now on (by default, no CPU
    /// time and no traffic ever: an idle node).
    pub fn set_load(&self, node: NodeId, load: super::activity::Load) {
        self.loads.lock().unwrap_or_else(|e| e.into_inner()).insert(node, load);
    }

    fn config(target: &Target) -> Result<SimConfig, ConnectorError> {
        parse(&target.config)
            .map_err(|e| ConnectorError::new(ErrorCode::InvalidConfig, format!("{}: {e}", target.name)))
    }

    fn with_node<R>(&self, target: &Target, cfg: &SimConfig, f: impl FnOnce(&mut SimNode) -> R) -> R {
        let mut nodes = self.nodes.lock().unwrap_or_else(|e| e.into_inner());
        let node = nodes
            .entry(target.node)
            .or_insert_with(|| SimNode { state: watch::Sender::new(cfg.initially), generation: 0 });
        f(node)
    }

    /// Forces a node's state, as if it changed outside WakeHub (tests: a node that crashes or
    /// that someone powers on by hand).
    pub fn set(&self, target: &Target, state: PowerState) -> Result<(), ConnectorError> {
        let cfg = Self::config(target)?;
        self.with_node(target, &cfg, |n| {
            n.generation += 1;
            n.state.send_replace(state);
        });
        Ok(())
    }

    /// Starts or stops a node: fails if configured to, else begins the transition.
    fn power(&self, target: &Target, action: Action) -> Result<(), ConnectorError> {
        let cfg = Self::config(target)?;
        let (fail, via, to, delay) = match action {
            Action::Stop => (cfg.fail_stop, PowerState::Stopping, PowerState::Off, cfg.stop_delay),
            _ => (cfg.fail_start, PowerState::Starting, PowerState::On, cfg.start_delay),
        };
        if fail {
            return Err(ConnectorError::new(
                ErrorCode::PlatformError,
                format!("{}: simulated {action} failure (sim `fail = \"{action}\"`)", target.name),
            ));
        }
        self.transition(target, via, to, delay);
        Ok(())
    }

    fn transition(&self, target: &Target, via: PowerState, to: PowerState, delay: Duration) {
        let cfg = match Self::config(target) {
            Ok(c) => c,
            Err(_) => return,
        };
        let (generation, tx) = self.with_node(target, &cfg, |n| {
            n.generation += 1;
            if *n.state.borrow() != to {
                n.state.send_replace(via);
            }
            (n.generation, n.state.clone())
        });
        if *tx.borrow() == to {
            return;
        }
        if delay.is_zero() {
            tx.send_replace(to);
            return;
        }
        let nodes = self.nodes.clone();
        let node = target.node;
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let nodes = nodes.lock().unwrap_or_else(|e| e.into_inner());
            if nodes.get(&node).is_some_and(|n| n.generation == generation) {
                tx.send_replace(to);
            }
        });
    }
}

#[async_trait::async_trait]
impl Connector for SimConnector {
    async fn status(&self, target: &Target) -> Result<PowerState, ConnectorError> {
        let cfg = Self::config(target)?;
        Ok(self.with_node(target, &cfg, |n| *n.state.borrow()))
    }

    async fn start(&self, target: &Target) -> Result<(), ConnectorError> {
        self.power(target, Action::Start)
    }

    async fn stop(&self, target: &Target) -> Result<(), ConnectorError> {
        self.power(target, Action::Stop)
    }

    async fn load(&self, target: &Target) -> Result<super::activity::Load, ConnectorError> {
        let idle = super::activity::Load {
            cpu: Some(super::activity::Cpu::BusySeconds(0.0)),
            net_bytes: Some(0),
            ..Default::default()
        };
        let mut load = self.loads.lock().unwrap_or_else(|e| e.into_inner()).get(&target.node).copied().unwrap_or(idle);
        // Its simulated meter, by its state (what `set_load` says wins).
        if load.watts.is_none()
            && let Ok(cfg) = Self::config(target)
            && let Some((on, off)) = cfg.meter
        {
            let state = self.with_node(target, &cfg, |n| *n.state.borrow());
            load.watts = Some(if state == PowerState::Off { off } else { on });
        }
        Ok(load)
    }

    fn watch(&self, target: &Target) -> Option<BoxStream<'static, PowerState>> {
        let cfg = Self::config(target).ok()?;
        let rx = self.with_node(target, &cfg, |n| n.state.subscribe());
        Some(tokio_stream_from_watch(rx))
    }

    fn typical_duration(&self, target: &Target, action: Action) -> Option<Duration> {
        let cfg = Self::config(target).ok()?;
        Some(match action {
            Action::Start => cfg.start_delay,
            Action::Stop => cfg.stop_delay,
        })
    }

    fn validate(&self, config: &ConnectorConfig) -> Result<(), ConfigError> {
        parse(config).map(|_| ()).map_err(ConfigError::new)
    }

    /// The guests the host's `guests` key describes, each a `sim` node (`sim/<name>`).
    async fn discover(&self, host: &Target) -> Result<Vec<DiscoveredGuest>, ConnectorError> {
        let cfg = Self::config(host)?;
        Ok(cfg
            .guests
            .into_iter()
            .map(|g| {
                let initially = if g.status == PowerState::On { "on" } else { "off" };
                let settings = [
                    ("initially".to_owned(), ConfigValue::String(initially.into())),
                    ("start_delay_ms".to_owned(), ConfigValue::Integer(1000)),
                    ("stop_delay_ms".to_owned(), ConfigValue::Integer(700)),
                ];
                DiscoveredGuest {
                    key: format!("sim/{}", g.name),
                    details: serde_json::json!({"name": g.name, "kind": g.kind.as_str(), "status": initially}),
                    name: g.name,
                    timeouts: g.kind.default_timeouts(),
                    kind: g.kind,
                    connector: ConnectorConfig { type_name: "sim".into(), settings: settings.into_iter().collect() },
                    status: g.status,
                }
            })
            .collect())
    }
}

/// Every value of a watch channel, the current one first.
fn tokio_stream_from_watch(rx: watch::Receiver<PowerState>) -> BoxStream<'static, PowerState> {
    futures::stream::unfold((rx, true), |(mut rx, first)| async move {
        if !first && rx.changed().await.is_err() {
            return None;
        }
        let v = *rx.borrow_and_update();
        Some((v, (rx, false)))
    })
    .boxed()
}
