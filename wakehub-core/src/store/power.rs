//! What meters read: a meter node's samples (watts at a time), kept when the reading
//! changes and as a heartbeat, for the energy report (see `crate::energy`).

use std::time::Duration;

use rusqlite::params;

use super::{Store, StoreError, db};
use crate::model::NodeId;

/// How long a meter's sample holds when no newer one follows (the meter stopped answering).
pub const SAMPLE_VALID: Duration = Duration::from_secs(10 * 60);
/// How often a sample is kept although the reading did not change.
pub const SAMPLE_HEARTBEAT: Duration = Duration::from_secs(5 * 60);
/// How long samples are kept.
pub const SAMPLE_RETENTION: Duration = Duration::from_secs(400 * 86_400);

/// Whether a reading is worth a sample after `last` (time, watts) was kept.
pub fn worth_keeping(last: Option<(i64, f64)>, now: i64, watts: f64) -> bool {
    match last {
        None => true,
        Some((at, w)) => {
            let change = (watts - w).abs();
            now - at >= SAMPLE_HEARTBEAT.as_millis() as i64 || (change > 1.0 && change > 0.05 * w.abs().max(1.0))
        }
    }
}

impl Store {
    /// Keeps a meter's reading (and drops its samples past [`SAMPLE_RETENTION`]).
    pub fn record_power_sample(&self, meter: NodeId, at_ms: i64, watts: f64) -> Result<(), StoreError> {
        self.transaction(|tx| {
            tx.execute(
                "INSERT INTO power_samples (node_id, at_ms, watts) VALUES (?1, ?2, ?3)
                 ON CONFLICT (node_id, at_ms) DO UPDATE SET watts = ?3",
                params![meter.get(), at_ms, watts],
            )
            .map_err(db)?;
            let horizon = at_ms - SAMPLE_RETENTION.as_millis() as i64;
            tx.execute("DELETE FROM power_samples WHERE node_id = ?1 AND at_ms < ?2", params![meter.get(), horizon])
                .map_err(db)?;
            Ok(())
        })
    }

    /// A meter's samples within `[from, to)`, with the last one before `from`, in order.
    pub fn power_samples(&self, meter: NodeId, from: i64, to: i64) -> Result<Vec<(i64, f64)>, StoreError> {
        self.transaction(|tx| {
            let mut stmt = tx
                .prepare_cached(
                    "SELECT at_ms, watts FROM (SELECT at_ms, watts FROM power_samples
                         WHERE node_id = ?1 AND at_ms < ?2 ORDER BY at_ms DESC LIMIT 1) AS before
                     UNION ALL
                     SELECT at_ms, watts FROM power_samples WHERE node_id = ?1 AND at_ms >= ?2 AND at_ms < ?3
                     ORDER BY at_ms",
                )
                .map_err(db)?;
            let rows = stmt.query_map(params![meter.get(), from, to], |r| Ok((r.get(0)?, r.get(1)?))).map_err(db)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(db)
        })
    }
}
