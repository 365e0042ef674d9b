//! The words every floor uses about power: what a node's state is ([`PowerState`]) and what
//! is asked of it ([`Action`]).

use std::fmt;

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
