//! The node kinds a plugin declares, checked at load.

use std::time::Duration;

use super::{KIND_TIMEOUTS, PluginKind, wit};
use crate::model::{Kind, PluginKinds, Timeouts};

/// The kinds a plugin described, checked: names a topology file can write that are not
/// built-in kinds, each once, timeouts within [`KIND_TIMEOUTS`], typical durations within
/// them.
pub(super) fn plugin_kinds(kinds: Vec<wit::KindInfo>) -> Result<Vec<PluginKind>, String> {
    let mut out: Vec<PluginKind> = Vec::new();
    let (min, max) = KIND_TIMEOUTS;
    for k in kinds {
        let name = k.name;
        if crate::model::validate_name(&name).is_err() {
            return Err(format!("kind `{name}` is not a valid kind name"));
        }
        if Kind::parse(&name, &PluginKinds::default()).is_some() {
            return Err(format!("kind `{name}` is a built-in kind"));
        }
        if out.iter().any(|o| o.name == name) {
            return Err(format!("kind `{name}` is declared twice"));
        }
        let ms = |v: u32| Duration::from_millis(v.into());
        let (start, stop) = (ms(k.start_timeout_ms), ms(k.stop_timeout_ms));
        for (what, t) in [("start", start), ("stop", stop)] {
            if t < min || t > max {
                return Err(format!("kind `{name}`: its {what} timeout {t:?} is not between {min:?} and {max:?}"));
            }
        }
        let typical_start = k.typical_start_ms.map(ms);
        let typical_stop = k.typical_stop_ms.map(ms);
        for (what, typical, t) in [("start", typical_start, start), ("stop", typical_stop, stop)] {
            if typical.is_some_and(|d| d > t) {
                return Err(format!("kind `{name}`: its typical {what} is longer than its {what} timeout"));
            }
        }
        out.push(PluginKind { name, timeouts: Timeouts { start, stop }, typical_start, typical_stop });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(name: &str, start: u32, stop: u32, typical: Option<u32>) -> wit::KindInfo {
        wit::KindInfo {
            name: name.into(),
            start_timeout_ms: start,
            stop_timeout_ms: stop,
            typical_start_ms: typical,
            typical_stop_ms: None,
        }
    }

    #[test]
    fn declared_kinds_are_checked_at_load() {
        let ok = plugin_kinds(vec![kind("smart-plug", 10_000, 5_000, Some(300))]).unwrap();
        assert_eq!(ok[0].timeouts, Timeouts { start: Duration::from_secs(10), stop: Duration::from_secs(5) });
        assert_eq!((ok[0].typical_start, ok[0].typical_stop), (Some(Duration::from_millis(300)), None));
        for (kinds, says) in [
            (vec![kind("Smart Plug", 10_000, 10_000, None)], "not a valid kind name"),
            (vec![kind("vm", 10_000, 10_000, None)], "is a built-in kind"),
            (vec![kind("plug", 10_000, 10_000, None), kind("plug", 1_000, 1_000, None)], "declared twice"),
            (vec![kind("plug", 50, 10_000, None)], "start timeout 50ms is not between 100ms and 86400s"),
            (vec![kind("plug", 10_000, 90_000_000, None)], "stop timeout"),
            (vec![kind("plug", 1_000, 1_000, Some(2_000))], "typical start is longer than its start timeout"),
        ] {
            let e = plugin_kinds(kinds).unwrap_err();
            assert!(e.contains(says), "{e}");
        }
    }
}
