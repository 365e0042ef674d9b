//! The words every floor uses about power: what a node's state is ([`PowerState`]) and what
//! is asked of it ([`Action`]).

use std::fmt;

use serde::{Deserialize, Serialize};

/// What a node's connector reports (or the engine last observed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum PowerState {
    /// Running.
    On,
    /// Not running.
    Off,
    /// Coming up.
    Starting,
    /// Going down.
    Stopping,
    /// Could not be determined (unreachable platform…).
    Unknown,
    /// The platform reports a fault.
    Error,
}

impl PowerState {
    /// Every state, for listings.
    pub const ALL: [PowerState; 6] = [
        PowerState::On,
        PowerState::Off,
        PowerState::Starting,
        PowerState::Stopping,
        PowerState::Unknown,
        PowerState::Error,
    ];

    /// The lowercase name used in events and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            PowerState::On => "on",
            PowerState::Off => "off",
            PowerState::Starting => "starting",
            PowerState::Stopping => "stopping",
            PowerState::Unknown => "unknown",
            PowerState::Error => "error",
        }
    }

    /// Parses [`as_str`](Self::as_str).
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == s)
    }

    /// Whether a node in this state may be using what it depends on. Anything but `off`
    /// counts: an unknown node is assumed to be running, so nothing is stopped under it.
    pub fn may_be_running(self) -> bool {
        self != PowerState::Off
    }
}

impl fmt::Display for PowerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Start or stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Action {
    /// Power on.
    Start,
    /// Power off.
    Stop,
}

impl Action {
    /// `start` or `stop`.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Start => "start",
            Action::Stop => "stop",
        }
    }

    /// Parses `start` or `stop`.
    pub fn parse(s: &str) -> Option<Action> {
        match s {
            "start" => Some(Action::Start),
            "stop" => Some(Action::Stop),
            _ => None,
        }
    }

    /// The state the action drives a node to (`on` or `off`).
    pub fn desired(self) -> PowerState {
        match self {
            Action::Start => PowerState::On,
            Action::Stop => PowerState::Off,
        }
    }

    /// The state a node is in while the action runs (`starting` or `stopping`).
    pub fn transitional(self) -> PowerState {
        match self {
            Action::Start => PowerState::Starting,
            Action::Stop => PowerState::Stopping,
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A node's power draw, in watts: configured, or measured by a meter (a smart plug, a BMC:
/// a node whose connector reports the watts it reads, `watts = { meter = "nas-plug" }`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PowerDraw {
    /// While on (or starting, stopping); with a meter, what is assumed until it has read
    /// the node on.
    #[serde(default)]
    pub on: f64,
    /// While off (Wake-on-LAN standby, a BMC…).
    #[serde(default)]
    pub off: f64,
    /// The node whose measurements are this node's draw (itself, or the plug it is
    /// plugged into).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meter: Option<String>,
}

impl PowerDraw {
    /// Reads `45.0` (on; 0 W off), `{ on = 45.0, off = 1.5 }` or `{ meter = "nas-plug" }`,
    /// checked.
    pub fn from_value<V: Serialize>(value: &V) -> Result<PowerDraw, String> {
        let json = serde_json::to_value(value).map_err(|e| e.to_string())?;
        let draw = match json.as_f64() {
            Some(on) => PowerDraw { on, off: 0.0, meter: None },
            None => serde_json::from_value(json).map_err(|e| {
                format!("{e} (a number of watts, {{ on = 45.0, off = 1.5 }} or {{ meter = \"nas-plug\" }})")
            })?,
        };
        let ok = |w: f64| w.is_finite() && (0.0..=100_000.0).contains(&w);
        if !ok(draw.on) || !ok(draw.off) {
            return Err("watts are 0 to 100000".into());
        }
        if let Some(meter) = &draw.meter {
            super::validate_name(meter).map_err(|e| format!("meter: {e}"))?;
        }
        Ok(draw)
    }

    /// The file and JSON form.
    pub fn to_json(&self) -> serde_json::Value {
        if self.off == 0.0 && self.meter.is_none() {
            serde_json::json!(self.on)
        } else {
            serde_json::to_value(self).unwrap_or_default()
        }
    }
}
