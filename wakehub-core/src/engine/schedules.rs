//! Power schedules: at cron times read in a time zone, start, stop, or keep on the nodes a
//! schedule names or tags. [`Engine::fire_due_power_schedules_at`] fires what is due; the
//! server's monitor calls it every 30 s.
//!
//! **The rule for times missed while WakeHub was down**: a schedule fires for its latest
//! time only (never once per missed time), and only if that time is less than [`CATCH_UP`]
//! old; an older miss is recorded as skipped and said in the log. A `keep-on` schedule's
//! window runs from its time for its duration: fired late, it ends when it would have.

use std::time::Duration;

use crate::model::{Action, NodeId, Refusal};
use crate::store::{PowerSchedule, ScheduleAction, check_window_name};

use super::schedule::{CATCH_UP, Selection, next_occurrence, zone};
use super::{Engine, EngineError};

/// The longest a `keep-on` schedule keeps its nodes on after each time.
const MAX_KEEP: Duration = Duration::from_secs(7 * 86_400);

/// The latest time `s` fires at or before `now` after `since`, if any (bounded search).
fn latest_due(s: &PowerSchedule, since: i64, now: i64) -> Option<i64> {
    let mut at = since;
    let mut latest = None;
    for _ in 0..10_000 {
        match next_occurrence(&s.schedule, s.timezone.as_deref(), at) {
            Ok(t) if t <= now => {
                latest = Some(t);
                at = t;
            }
            _ => break,
        }
    }
    latest
}

impl Engine {
    /// Saves schedule `s` for `actor` after checking it: a name, a selection that names
    /// existing nodes (or tags some), a valid cron in a known time zone, a duration for
    /// `keep-on` only (1 minute to 7 days).
    pub async fn save_power_schedule(&self, s: PowerSchedule, actor: &str) -> Result<PowerSchedule, EngineError> {
        check_window_name(&s.name).map_err(|r| Refusal::invalid(r.message.replace("window", "schedule")))?;
        if s.nodes.is_empty() && s.tags.is_empty() {
            return Err(Refusal::invalid("a schedule names nodes or tags").into());
        }
        let topology = self.inner.store.run(|st| st.topology_shared()).await?;
        let selection = Selection { nodes: s.nodes.clone(), tags: s.tags.clone() };
        let (found, missing) = selection.resolve(&topology);
        if !missing.is_empty() {
            return Err(Refusal::invalid(format!("unknown node(s): {}", missing.join(", "))).into());
        }
        if found.is_empty() {
            return Err(Refusal::invalid("no node carries these tags").into());
        }
        if let Some(tz) = &s.timezone {
            zone(tz).map_err(Refusal::invalid)?;
        }
        next_occurrence(&s.schedule, s.timezone.as_deref(), crate::store::now_ms())
            .map_err(|e| Refusal::invalid(format!("schedule `{}`: {e}", s.schedule)))?;
        match (s.action, s.keep_for_secs) {
            (ScheduleAction::KeepOn, Some(k)) if (60..=MAX_KEEP.as_secs() as i64).contains(&k) => {}
            (ScheduleAction::KeepOn, _) => {
                return Err(Refusal::invalid("a keep-on schedule keeps its nodes on 1 minute to 7 days").into());
            }
            (_, Some(_)) => return Err(Refusal::invalid("only a keep-on schedule has a duration").into()),
            (_, None) => {}
        }
        let (actor, now) = (actor.to_owned(), crate::store::now_ms());
        Ok(self.inner.store.run(move |st| st.save_power_schedule(&s, &actor, now)).await?)
    }

    /// Deletes schedule `name`; whether it existed.
    pub async fn delete_power_schedule(&self, name: &str) -> Result<bool, EngineError> {
        let name = name.to_owned();
        Ok(self.inner.store.run(move |st| st.delete_power_schedule(&name)).await?)
    }

    /// The next `count` times schedule `s` fires after `after` (ms since the epoch).
    pub fn next_runs(s: &PowerSchedule, after: i64, count: usize) -> Vec<i64> {
        let mut out = Vec::new();
        let mut at = after;
        while out.len() < count {
            match next_occurrence(&s.schedule, s.timezone.as_deref(), at) {
                Ok(t) => {
                    out.push(t);
                    at = t;
                }
                Err(_) => break,
            }
        }
        out
    }

    /// Until when a `keep-on` schedule keeps `node` on at `now`, and which: the one whose
    /// window ends last.
    pub fn kept_on(&self, node: NodeId, now: i64) -> Result<Option<(String, i64)>, EngineError> {
        let topology = self.inner.store.topology_shared()?;
        let mut best: Option<(String, i64)> = None;
        for s in self.inner.store.power_schedules()? {
            if s.action != ScheduleAction::KeepOn || !s.enabled {
                continue;
            }
            let Some(((at, outcome), keep)) = s.last_fired.as_ref().zip(s.keep_for_secs) else { continue };
            let until = at + keep * 1000;
            let selected = Selection { nodes: s.nodes.clone(), tags: s.tags.clone() }.resolve(&topology).0;
            if until > now
                && !outcome.starts_with("skipped")
                && selected.contains(&node)
                && best.as_ref().is_none_or(|(_, u)| *u < until)
            {
                best = Some((s.name.clone(), until));
            }
        }
        Ok(best)
    }

    /// Fires every enabled schedule due at `now` (ms since the epoch): its nodes' start or
    /// stop cascades are requested (by `schedule:NAME`), not awaited. Returns each fired or
    /// skipped schedule with what came of it.
    pub async fn fire_due_power_schedules_at(&self, now: i64) -> Result<Vec<(String, String)>, EngineError> {
        let mut fired = Vec::new();
        for s in self.inner.store.power_schedules()? {
            if !s.enabled {
                continue;
            }
            let since = s.last_fired.as_ref().map_or(s.updated_at, |(at, _)| *at);
            let Some(due) = latest_due(&s, since, now) else { continue };
            let outcome = if now - due > CATCH_UP.as_millis() as i64 {
                tracing::warn!(schedule = %s.name, "power schedule skipped: its time passed while WakeHub was down");
                "skipped: its time passed while WakeHub was down".to_owned()
            } else {
                self.fire_power_schedule(&s).await
            };
            let (name, said) = (s.name.clone(), outcome.clone());
            self.inner.store.run(move |st| st.power_schedule_fired(&name, due, &said)).await?;
            fired.push((s.name, outcome));
        }
        Ok(fired)
    }

    /// [`fire_due_power_schedules_at`](Self::fire_due_power_schedules_at) now.
    pub async fn fire_due_power_schedules(&self) -> Result<Vec<(String, String)>, EngineError> {
        self.fire_due_power_schedules_at(crate::store::now_ms()).await
    }

    /// Requests schedule `s`'s cascades: what came of it, for people.
    async fn fire_power_schedule(&self, s: &PowerSchedule) -> String {
        let topology = match self.inner.store.run(|st| st.topology_shared()).await {
            Ok(t) => t,
            Err(e) => return format!("failed: {e}"),
        };
        let action = if s.action == ScheduleAction::Stop { Action::Stop } else { Action::Start };
        let actor = format!("schedule:{}", s.name);
        let (nodes, missing) = Selection { nodes: s.nodes.clone(), tags: s.tags.clone() }.resolve(&topology);
        let mut said = Vec::new();
        let mut requested = 0;
        for node in nodes {
            match self.request_by(node, action, &actor).await {
                Ok(_) => requested += 1,
                Err(e) => said.push(format!("{} of `{}` not requested: {e}", action.as_str(), topology.name_of(node))),
            }
        }
        if !missing.is_empty() {
            said.push(format!("no longer in the lab: {}", missing.join(", ")));
        }
        let head =
            format!("{} requested for {requested} node{}", action.as_str(), if requested == 1 { "" } else { "s" });
        if said.is_empty() { head } else { format!("{head}; {}", said.join("; ")) }
    }
}
