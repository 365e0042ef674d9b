//! Energy: what each node drew over a period, read from the journal's status changes and
//! its configured power draw (`watts = { on = 45.0, off = 1.5 }` in its table), against what
//! it would have drawn always on — the saving WakeHub's stops made, per node, tag and month.
//!
//! **Counting.** A node draws its `on` watts while on, starting or stopping, its `off` watts
//! while off; time before its first observation, or while its state is unknown or in error,
//! is counted in neither (the saving is never guessed). Months are calendar months in UTC;
//! the current one ends now.
//!
//! **Measured.** A node whose `watts` names a `meter` (itself, or the smart plug it is
//! plugged into) is counted at what the meter read instead: the server's monitor asks the
//! meter's connector every round ([`Connector::load`](crate::connector::Connector::load)),
//! and keeps a sample when the reading changes by more than 1 W and 5 %, and at least every
//! [`SAMPLE_HEARTBEAT`](crate::store::SAMPLE_HEARTBEAT). A sample holds until the next one,
//! for at most [`SAMPLE_VALID`]:
//! time not covered by a sample (the meter unreachable, the server down) is not counted.
//! What it would have drawn always on is its average measured draw while on, over the
//! measured time; until the meter has read it on, its configured `on` watts (none: no
//! saving is claimed).

use std::collections::{BTreeMap, BTreeSet};

use crate::events::EventKind;
use crate::model::{NodeId, PowerDraw, PowerState};
use crate::store::{EventQuery, SAMPLE_VALID, Store, StoreError};

/// Milliseconds on, off and unknown within a period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Tally {
    /// Drawing its `on` watts.
    pub on_ms: i64,
    /// Drawing its `off` watts.
    pub off_ms: i64,
    /// Not counted.
    pub unknown_ms: i64,
}

fn drawing(state: Option<PowerState>) -> Option<bool> {
    match state? {
        PowerState::On | PowerState::Starting | PowerState::Stopping => Some(true),
        PowerState::Off => Some(false),
        _ => None,
    }
}

/// Splits `[from, to)` by state: `before` is the state at `from`, `changes` the changes
/// (time, new state) in order.
pub fn tally(before: Option<PowerState>, changes: &[(i64, PowerState)], from: i64, to: i64) -> Tally {
    let mut t = Tally::default();
    let (mut at, mut state) = (from, before);
    let mut add = |state: Option<PowerState>, ms: i64| match drawing(state) {
        Some(true) => t.on_ms += ms,
        Some(false) => t.off_ms += ms,
        None => t.unknown_ms += ms,
    };
    for (when, next) in changes.iter().filter(|(w, _)| *w >= from && *w < to) {
        add(state, when - at);
        (at, state) = (*when, Some(*next));
    }
    if to > at {
        add(state, to - at);
    }
    t
}

/// One node's energy over a period.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeEnergy {
    /// The node.
    pub node: NodeId,
    /// Its name.
    pub name: String,
    /// Its tags.
    pub tags: BTreeSet<String>,
    /// Its draw.
    pub draw: PowerDraw,
    /// Its time on, off and unknown.
    pub tally: Tally,
    /// What it drew (kWh).
    pub used_kwh: f64,
    /// What it would have drawn always on over the same known time (kWh).
    pub always_on_kwh: f64,
    /// Whether the figures are its meter's readings (not its configured draw).
    pub measured: bool,
    /// Its average draw while on: measured, or configured (watts).
    pub on_watts: Option<f64>,
}

impl NodeEnergy {
    /// What its stops saved (kWh).
    pub fn saved_kwh(&self) -> f64 {
        self.always_on_kwh - self.used_kwh
    }
}

const MS_PER_HOUR: f64 = 3_600_000.0;

/// The energy of every node with a power draw over `[from, to)` (ms since the epoch; `to`
/// is capped at now).
pub fn energy(store: &Store, from: i64, to: i64) -> Result<Vec<NodeEnergy>, StoreError> {
    let to = to.min(crate::store::now_ms()).max(from);
    let topology = store.topology_shared()?;
    let mut out = Vec::new();
    for n in topology.nodes() {
        let Some(draw) = &n.spec.power else { continue };
        let kinds = vec!["status-change".to_owned()];
        let state_of = |e: &crate::events::Event| match e.kind {
            EventKind::StatusChange { state, .. } => Some((e.at_ms, state)),
            _ => None,
        };
        let last = store.find_events(&EventQuery {
            node: Some(n.id),
            kinds: kinds.clone(),
            until_ms: Some(from),
            newest_first: true,
            limit: 1,
            ..Default::default()
        })?;
        let before = last.iter().find_map(state_of).map(|(_, s)| s);
        let changes: Vec<(i64, PowerState)> = store
            .find_events(&EventQuery {
                node: Some(n.id),
                kinds,
                since_ms: Some(from),
                until_ms: Some(to),
                limit: 1_000_000,
                ..Default::default()
            })?
            .iter()
            .filter_map(state_of)
            .collect();
        let hours = |ms: i64| ms as f64 / MS_PER_HOUR;
        let meter = draw.meter.as_deref().and_then(|m| topology.by_name(m)).map(|m| m.id);
        if let Some(meter) = meter {
            let samples = store.power_samples(meter, from, to)?;
            let m = measured(before, &changes, &samples, from, to);
            let on_watts = (m.on_measured_ms > 0).then(|| m.on_wh / hours(m.on_measured_ms)).or(Some(draw.on));
            let used_kwh = m.used_wh / 1000.0;
            let always_on_kwh = match on_watts.filter(|w| *w > 0.0) {
                Some(w) => w * hours(m.measured_ms) / 1000.0,
                None => used_kwh,
            };
            out.push(NodeEnergy {
                node: n.id,
                name: n.spec.name.clone(),
                tags: n.spec.tags.clone(),
                draw: draw.clone(),
                tally: m.tally,
                used_kwh,
                always_on_kwh: always_on_kwh.max(used_kwh),
                measured: true,
                on_watts,
            });
            continue;
        }
        let t = tally(before, &changes, from, to);
        out.push(NodeEnergy {
            node: n.id,
            name: n.spec.name.clone(),
            tags: n.spec.tags.clone(),
            draw: draw.clone(),
            tally: t,
            used_kwh: (hours(t.on_ms) * draw.on + hours(t.off_ms) * draw.off) / 1000.0,
            always_on_kwh: hours(t.on_ms + t.off_ms) * draw.on / 1000.0,
            measured: false,
            on_watts: Some(draw.on),
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// A metered node's figures over a period.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Measured {
    /// Its time on, off and unknown (unknown: its state, or no sample).
    pub tally: Tally,
    /// Energy read over the period (Wh), whatever its state.
    pub used_wh: f64,
    /// Time covered by a sample (ms).
    pub measured_ms: i64,
    /// Energy read while it was on (Wh), and for how long.
    pub on_wh: f64,
    /// Time on and covered by a sample (ms).
    pub on_measured_ms: i64,
}

/// Integrates a meter's `samples` (time, watts; in order, the last one before `from`
/// included) over `[from, to)`, split by the node's state (`before`, then `changes`).
pub fn measured(
    before: Option<PowerState>,
    changes: &[(i64, PowerState)],
    samples: &[(i64, f64)],
    from: i64,
    to: i64,
) -> Measured {
    let valid = SAMPLE_VALID.as_millis() as i64;
    let mut cuts: Vec<i64> = vec![from, to];
    cuts.extend(changes.iter().map(|(t, _)| *t));
    cuts.extend(samples.iter().flat_map(|(t, _)| [*t, t + valid]));
    cuts.retain(|t| (from..=to).contains(t));
    cuts.sort_unstable();
    cuts.dedup();
    let state_at = |t: i64| changes.iter().rev().find(|(at, _)| *at <= t).map(|(_, s)| *s).or(before);
    let watts_at = |t: i64| {
        let i = samples.partition_point(|(at, _)| *at <= t);
        let (at, w) = *samples.get(i.checked_sub(1)?)?;
        (t - at < valid).then_some(w)
    };
    let mut m = Measured::default();
    for pair in cuts.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        let ms = b - a;
        let Some(w) = watts_at(a) else {
            m.tally.unknown_ms += ms;
            continue;
        };
        let wh = w * ms as f64 / MS_PER_HOUR;
        m.used_wh += wh;
        m.measured_ms += ms;
        match drawing(state_at(a)) {
            Some(true) => {
                m.tally.on_ms += ms;
                m.on_wh += wh;
                m.on_measured_ms += ms;
            }
            Some(false) => m.tally.off_ms += ms,
            None => m.tally.unknown_ms += ms,
        }
    }
    m
}

/// Sums per tag: (used, always on) kWh of the nodes carrying each tag.
pub fn by_tag(nodes: &[NodeEnergy]) -> BTreeMap<String, (f64, f64)> {
    let mut out: BTreeMap<String, (f64, f64)> = BTreeMap::new();
    for n in nodes {
        for tag in &n.tags {
            let e = out.entry(tag.clone()).or_default();
            e.0 += n.used_kwh;
            e.1 += n.always_on_kwh;
        }
    }
    out
}

/// The first and last millisecond (exclusive) of calendar month `YYYY-MM` in UTC.
pub fn month(text: &str) -> Result<(i64, i64), String> {
    let bad = || format!("`{text}` is not a month such as 2026-12");
    let (y, m) = text.split_once('-').ok_or_else(bad)?;
    let (y, m): (i16, i8) = (y.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    let start = jiff::civil::Date::new(y, m, 1).map_err(|_| bad())?;
    let end = start.checked_add(jiff::Span::new().months(1)).map_err(|_| bad())?;
    let ms = |d: jiff::civil::Date| {
        d.to_zoned(jiff::tz::TimeZone::UTC).map(|z| z.timestamp().as_millisecond()).map_err(|_| bad())
    };
    Ok((ms(start)?, ms(end)?))
}

/// What a kWh costs, and in which currency: the saving in money.
#[derive(Debug, Clone, PartialEq)]
pub struct Price {
    /// Per kWh.
    pub per_kwh: f64,
    /// `EUR`, `USD`…
    pub currency: String,
}

impl Price {
    /// A price, checked (0 to 100 per kWh; a currency of 1 to 8 letters).
    pub fn new(per_kwh: f64, currency: &str) -> Result<Price, String> {
        if !(per_kwh.is_finite() && (0.0..=100.0).contains(&per_kwh)) {
            return Err("a price per kWh is 0 to 100".into());
        }
        if currency.is_empty() || currency.len() > 8 || !currency.chars().all(|c| c.is_ascii_alphabetic()) {
            return Err(format!("`{currency}` is not a currency such as EUR"));
        }
        Ok(Price { per_kwh, currency: currency.to_ascii_uppercase() })
    }
}

impl Store {
    /// The price set for the energy report, if any.
    pub fn energy_price(&self) -> Result<Option<Price>, StoreError> {
        let text: Option<String> = self.transaction(|tx| {
            use crate::store::db::OptionalExtension;
            tx.query_row("SELECT value FROM meta WHERE key = 'energy_price'", (), |r| r.get(0))
                .optional()
                .map_err(crate::store::db)
        })?;
        Ok(text.and_then(|t| {
            let (p, c) = t.split_once(' ')?;
            Price::new(p.parse().ok()?, c).ok()
        }))
    }

    /// Sets (or, with none, removes) the price for the energy report.
    pub fn set_energy_price(&self, price: Option<&Price>) -> Result<(), StoreError> {
        self.transaction(|tx| {
            match price {
                Some(p) => tx.execute(
                    "INSERT INTO meta (key, value) VALUES ('energy_price', ?1) ON CONFLICT (key) DO UPDATE SET value = ?1",
                    [format!("{} {}", p.per_kwh, p.currency)],
                ),
                None => tx.execute("DELETE FROM meta WHERE key = 'energy_price'", ()),
            }
            .map_err(crate::store::db)?;
            Ok(())
        })
    }
}

/// The current month in UTC, `YYYY-MM`.
pub fn this_month() -> String {
    let now = jiff::Timestamp::now().to_zoned(jiff::tz::TimeZone::UTC);
    format!("{:04}-{:02}", now.year(), now.month())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_meter_is_integrated_by_state_and_its_gaps_are_not_counted() {
        use PowerState::*;
        let min = 60_000;
        // On from before 0 reading 40 W (a heartbeat every 9 minutes), off at 30 min reading
        // 2 W; the meter goes silent after 40 min (its last sample holds 10 more minutes),
        // back at 80 min reading 2 W.
        let samples = [
            (-5 * min, 40.0),
            (4 * min, 40.0),
            (13 * min, 40.0),
            (22 * min, 40.0),
            (30 * min, 2.0),
            (40 * min, 2.0),
            (80 * min, 2.0),
        ];
        let m = measured(Some(On), &[(30 * min, Off)], &samples, 0, 90 * min);
        assert_eq!(m.tally, Tally { on_ms: 30 * min, off_ms: 30 * min, unknown_ms: 30 * min });
        assert_eq!((m.measured_ms, m.on_measured_ms), (60 * min, 30 * min));
        assert!((m.used_wh - (20.0 + 1.0)).abs() < 1e-9, "{m:?}");
        assert!((m.on_wh - 20.0).abs() < 1e-9, "{m:?}");
        // A sample older than its validity says nothing about the period.
        let m = measured(Some(On), &[], &[(-20 * min, 40.0)], 0, 30 * min);
        assert_eq!((m.measured_ms, m.tally.unknown_ms), (0, 30 * min));
        // What is kept: the first reading, a real change, a heartbeat; not noise.
        use crate::store::worth_keeping;
        assert!(worth_keeping(None, 0, 3.0));
        assert!(!worth_keeping(Some((0, 40.0)), min, 40.8));
        assert!(worth_keeping(Some((0, 40.0)), min, 45.0));
        assert!(worth_keeping(Some((0, 40.0)), 5 * min, 40.0));
    }

    #[test]
    fn time_is_split_by_state_and_the_unknown_is_not_counted() {
        use PowerState::*;
        // Unknown until the first sighting at 10, on until 40, off until 90, then on.
        let t = tally(None, &[(10, On), (40, Off), (90, Starting)], 0, 100);
        assert_eq!(t, Tally { on_ms: 40, off_ms: 50, unknown_ms: 10 });
        // Known from before the period; a change after it is ignored.
        assert_eq!(tally(Some(Off), &[(150, On)], 0, 100), Tally { on_ms: 0, off_ms: 100, unknown_ms: 0 });
        assert_eq!(tally(Some(On), &[(20, Unknown), (30, On)], 0, 100), Tally { on_ms: 90, off_ms: 0, unknown_ms: 10 });
    }

    #[test]
    fn draws_and_months_are_read() {
        assert_eq!(
            PowerDraw::from_value(&serde_json::json!(45.0)).unwrap(),
            PowerDraw { on: 45.0, off: 0.0, meter: None }
        );
        let metered = PowerDraw::from_value(&serde_json::json!({"meter": "nas-plug"})).unwrap();
        assert_eq!(PowerDraw::from_value(&metered.to_json()).unwrap(), metered);
        assert!(PowerDraw::from_value(&serde_json::json!({"meter": "Bad Name"})).unwrap_err().contains("meter"));
        let d = PowerDraw::from_value(&serde_json::json!({"on": 60, "off": 1.5})).unwrap();
        assert_eq!(PowerDraw::from_value(&d.to_json()).unwrap(), d);
        assert!(PowerDraw::from_value(&serde_json::json!(-3)).is_err());
        assert!(PowerDraw::from_value(&serde_json::json!({"on": 3, "idle": 1})).unwrap_err().contains("idle"));
        let (a, b) = month("2026-02").unwrap();
        assert_eq!((b - a) / 86_400_000, 28);
        assert_eq!(month("2026-12").unwrap().1, month("2027-01").unwrap().0);
        assert!(month("2026-13").is_err() && month("december").is_err());
    }
}
