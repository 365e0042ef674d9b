//! Meters: the nodes whose connector reads a power draw (a smart plug, a BMC), named by
//! another node's (or their own) `watts = { meter = "…" }`. The server's monitor calls
//! [`Engine::sample_meters_at`] every round: each meter is read once, whatever its state,
//! and its reading kept as a sample by [`worth_keeping`] (a change, or a
//! heartbeat). The energy report integrates the samples; an inactivity rule's
//! `watts_above` compares the reading now.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use futures::future::join_all;

use crate::connector::activity::Load;
use crate::model::{NodeId, Topology};
use crate::store::worth_keeping;

use super::{Engine, EngineError};

/// The longest one meter's reading may take.
const READ_TIMEOUT: Duration = Duration::from_secs(20);

/// A meter's latest reading.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MeterReading {
    /// When it was taken (ms since the epoch).
    pub at_ms: i64,
    /// What it read (watts), or why it could not.
    pub watts: Result<f64, String>,
}

/// What the engine remembers of each meter: its latest reading, and the last sample kept.
#[derive(Debug, Clone, Default)]
pub(super) struct Meters {
    latest: HashMap<NodeId, MeterReading>,
    kept: HashMap<NodeId, (i64, f64)>,
}

/// The meters the topology names, each once.
fn meters(topology: &Topology) -> Vec<NodeId> {
    let mut out: Vec<NodeId> = topology
        .nodes()
        .filter_map(|n| n.spec.power.as_ref()?.meter.as_deref())
        .filter_map(|name| topology.by_name(name).map(|m| m.id))
        .collect();
    out.sort();
    out.dedup();
    out
}

impl Engine {
    /// Reads every meter the topology names at `now` (ms since the epoch) and keeps the
    /// readings worth a sample. Returns the readings, by meter.
    pub async fn sample_meters_at(&self, now: i64) -> Result<BTreeMap<NodeId, MeterReading>, EngineError> {
        let topology = self.inner.store.run(|s| s.topology_shared()).await?;
        let meters = meters(&topology);
        let read = join_all(meters.iter().map(|m| {
            let topology = &topology;
            async move { (*m, self.read_meter(topology, *m).await) }
        }))
        .await;
        let mut out = BTreeMap::new();
        for (meter, watts) in read {
            let keep = {
                let mut st = self.state();
                st.meters.latest.insert(meter, MeterReading { at_ms: now, watts: watts.clone() });
                match watts {
                    Ok(w) if worth_keeping(st.meters.kept.get(&meter).copied(), now, w) => {
                        st.meters.kept.insert(meter, (now, w));
                        Some(w)
                    }
                    _ => None,
                }
            };
            if let Some(w) = keep
                && let Err(e) = self.inner.store.run(move |s| s.record_power_sample(meter, now, w)).await
            {
                tracing::warn!(meter = %topology.name_of(meter), "cannot keep a power sample: {e}");
            }
            out.insert(meter, MeterReading { at_ms: now, watts });
        }
        let latest: Vec<(NodeId, MeterReading)> = {
            let mut st = self.state();
            st.meters.latest.retain(|m, _| meters.contains(m));
            st.meters.kept.retain(|m, _| meters.contains(m));
            st.meters.latest.iter().map(|(m, r)| (*m, r.clone())).collect()
        };
        self.share(super::follow::METERS_KEY, &latest).await;
        Ok(out)
    }

    /// The leader's latest readings, as it shared them (an instance that follows).
    pub(super) fn followed_meters(&self, latest: Vec<(NodeId, MeterReading)>) {
        self.state().meters.latest = latest.into_iter().collect();
    }

    /// [`sample_meters_at`](Self::sample_meters_at) now.
    pub async fn sample_meters(&self) -> Result<BTreeMap<NodeId, MeterReading>, EngineError> {
        self.sample_meters_at(crate::store::now_ms()).await
    }

    /// The latest reading of every meter (taken by the monitor).
    pub fn meter_readings(&self) -> BTreeMap<NodeId, MeterReading> {
        self.state().meters.latest.iter().map(|(m, r)| (*m, r.clone())).collect()
    }

    /// The watts a meter's connector reads now.
    async fn read_meter(&self, topology: &Topology, meter: NodeId) -> Result<f64, String> {
        let target = self.target(topology, meter).ok_or_else(|| "no such node".to_owned())?;
        let connector = self
            .inner
            .connectors
            .get(&target.config.type_name)
            .ok_or_else(|| format!("no connector `{}`", target.config.type_name))?;
        let load = tokio::time::timeout(READ_TIMEOUT, connector.load(&target))
            .await
            .map_err(|_| format!("{}: no answer in {READ_TIMEOUT:?} (TIMEOUT)", target.name))?
            .map_err(|e| format!("{} ({})", e.message, e.code))?;
        match load.watts {
            Some(w) if w.is_finite() => Ok(w),
            Some(w) => Err(format!("{}: its connector reads {w} W", target.name)),
            None => Err(format!("{}: its connector reads no power", target.name)),
        }
    }

    /// The watts `node` draws now: read by its `watts.meter`, else by its own connector
    /// (`own` is its own load when already read this round).
    pub(super) async fn meter_watts(
        &self,
        topology: &Topology,
        node: NodeId,
        own: Option<&Load>,
    ) -> Result<f64, String> {
        let named = topology.node(node).and_then(|n| n.spec.power.as_ref()?.meter.clone());
        let meter = match named {
            Some(name) => topology.by_name(&name).map(|m| m.id).ok_or(format!("meter `{name}`: no such node"))?,
            None => node,
        };
        if meter == node
            && let Some(w) = own.and_then(|l| l.watts)
        {
            return Ok(w);
        }
        self.read_meter(topology, meter).await
    }
}
