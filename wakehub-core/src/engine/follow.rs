//! Several instances on one PostgreSQL database: one leads, the others follow.
//!
//! The instance holding the database's lease leads: it alone runs work — cascades, machine
//! actions, stack commands, maintenance, schedules, observation — and writes the journal, so
//! every cascade, command and run is executed by exactly one instance, power operations on
//! a node never overlap across instances, and the journal's ids are committed in order.
//! The others follow ([`Engine::follower`]): they serve reads from the shared store, and
//! their subscribers get every event the leader journals, in id order — each follower reads
//! the journal past the last event it published, woken by the leader's `NOTIFY` and, should
//! a notice be lost, every second anyway. What a follower shows as observed is what the
//! leader journaled (each node's last `status-change`, and when the leader last observed
//! them all). A follower's engine refuses to write (`NOT_LEADER`): the API forwards
//! mutations to the leader.
//!
//! **Taking over.** When the leader dies, its lease runs out and a follower claims it, then
//! [`leads`](Engine::lead): it reads the journal to its end and publishes it (its
//! subscribers miss nothing), marks the cascades its predecessor left unfinished
//! `interrupted` (as a restarted server does: a step's power operation may or may not have
//! happened, so a cascade is never continued blindly — the next observation shows each node
//! as it is, and a person runs it again), and from then on runs work like any leader.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use tokio_util::sync::CancellationToken;

use super::{Engine, EngineConfig, EngineError};
use crate::connector::Registry;
use crate::events::{Event, EventKind};
use crate::model::EventId;
use crate::store::{CHANGES_CHANNEL, Store};

/// How often a follower reads the journal when no notice woke it.
const POLL: Duration = Duration::from_secs(1);

/// Where the leader keeps its last inactivity check for its followers (JSON).
pub(super) const IDLE_KEY: &str = "leader.idle";
/// Where the leader keeps its meters' last readings for its followers (JSON).
pub(super) const METERS_KEY: &str = "leader.meters";

/// The journal reader of a follower.
pub(super) struct Following {
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Engine {
    /// An engine that follows the instance leading `store` (a shared PostgreSQL database):
    /// it runs nothing and writes nothing until [`lead`](Self::lead), and publishes what the
    /// leader journals. Must be called within a Tokio runtime.
    pub fn follower(store: Store, connectors: Registry, config: EngineConfig) -> Result<Engine, EngineError> {
        let engine = Self::build(store, connectors, config, false)?;
        let store = engine.inner.store.clone();
        let seen = store.last_states()?;
        let round = store.observed_round()?;
        {
            let mut st = engine.state();
            let observed = Arc::make_mut(&mut st.observed);
            for (node, (state, at)) in seen {
                observed.states.insert(node, state);
                observed.at.insert(node, time(at.max(round.unwrap_or(0))));
            }
        }
        let last = store.last_event_id()?;
        let stop = CancellationToken::new();
        let task = tokio::spawn(follow(engine.clone(), last, stop.clone()));
        *engine.inner.following.lock().unwrap_or_else(|e| e.into_inner()) = Some(Following { stop, task });
        Ok(engine)
    }

    /// Whether this engine runs work (it leads, or its store is its own).
    pub fn is_leader(&self) -> bool {
        self.inner.leading.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Refuses work on an engine that follows (`NOT_LEADER`).
    pub(super) fn must_lead(&self) -> Result<(), EngineError> {
        if self.is_leader() { Ok(()) } else { Err(EngineError::NotLeader) }
    }

    /// Leads from now on (this instance claimed the lease): the journal is read and
    /// published to its end, the cascades left unfinished are marked `interrupted` (how
    /// many is returned), and the engine runs work. Nothing happens if it leads already.
    pub async fn lead(&self) -> Result<usize, EngineError> {
        let following = self.inner.following.lock().unwrap_or_else(|e| e.into_inner()).take();
        let Some(Following { stop, task }) = following else {
            return Ok(0);
        };
        stop.cancel();
        // It reads to the end before it returns.
        if let Err(e) = task.await {
            tracing::error!("the journal reader ended badly: {e}");
        }
        self.inner.leading.store(true, std::sync::atomic::Ordering::Release);
        let engine = self.clone();
        let interrupted = tokio::task::spawn_blocking(move || engine.interrupt_unfinished())
            .await
            .map_err(|e| EngineError::Store(crate::store::StoreError::Database { message: e.to_string() }))??;
        tracing::info!(interrupted, "this instance leads now");
        Ok(interrupted)
    }

    /// Stops reading the journal (a follower shutting down).
    pub(super) fn stop_following(&self) {
        if let Some(f) = self.inner.following.lock().unwrap_or_else(|e| e.into_inner()).take() {
            f.stop.cancel();
        }
    }

    /// Publishes events the leader journaled, after the last one published, updating what
    /// was observed from their status changes.
    fn publish_followed(&self, events: Vec<Event>) {
        let _order = self.inner.publish.lock().unwrap_or_else(|e| e.into_inner());
        {
            let mut st = self.state();
            let observed = Arc::make_mut(&mut st.observed);
            for e in &events {
                if let EventKind::StatusChange { node, state, .. } = &e.kind {
                    observed.states.insert(*node, *state);
                    observed.at.insert(*node, time(e.at_ms));
                }
            }
        }
        for e in events {
            let _ = self.inner.bus.send(e);
        }
    }

    /// Keeps `value` under `key` in the store for the instances that may follow this one
    /// (the leader only, once per round: a small write every 30 s, on SQLite too, where
    /// nothing reads it but the tests that check it). A failure is logged: they show the
    /// previous round meanwhile.
    pub(super) async fn share<T: serde::Serialize>(&self, key: &'static str, value: &T) {
        if !self.is_leader() {
            return;
        }
        let json = match serde_json::to_string(value) {
            Ok(j) => j,
            Err(e) => return tracing::warn!(key, "cannot share a round with the followers: {e}"),
        };
        if let Err(e) = self.inner.store.run(move |s| s.set_shared_state(key, &json)).await {
            tracing::warn!(key, "cannot share a round with the followers: {e}");
        }
    }

    /// What the leader shared of its last inactivity check and meter readings (each read
    /// again only when it changed; what cannot be read is logged and the last kept).
    fn take_shared(&self, seen: &mut [Option<String>; 2], idle: Option<String>, meters: Option<String>) {
        if idle.is_some() && idle != seen[0] {
            match serde_json::from_str(idle.as_deref().unwrap_or_default()) {
                Ok(statuses) => self.state().followed_idle = Some(statuses),
                Err(e) => tracing::warn!("cannot read the leader's last inactivity check: {e}"),
            }
            seen[0] = idle;
        }
        if meters.is_some() && meters != seen[1] {
            match serde_json::from_str(meters.as_deref().unwrap_or_default()) {
                Ok(latest) => self.followed_meters(latest),
                Err(e) => tracing::warn!("cannot read the leader's meter readings: {e}"),
            }
            seen[1] = meters;
        }
    }

    /// The cascades running now: this engine's own when it leads; on an instance that
    /// follows, those the journal says are pending or in progress (the leader's), oldest
    /// first.
    pub async fn running_now(&self) -> Result<Vec<crate::model::CascadeId>, EngineError> {
        use crate::events::CascadeStatus;
        use crate::store::CascadeFilter;
        if self.is_leader() {
            return Ok(self.running());
        }
        let ids = self
            .inner
            .store
            .run(|s| {
                let mut ids = Vec::new();
                for status in [CascadeStatus::Pending, CascadeStatus::InProgress] {
                    let filter = CascadeFilter { status: Some(status), limit: Some(1000), ..CascadeFilter::default() };
                    ids.extend(s.cascades(&filter)?.into_iter().map(|c| c.id));
                }
                ids.sort();
                Ok::<_, crate::store::StoreError>(ids)
            })
            .await?;
        Ok(ids)
    }

    /// The leader observed every node at `at_ms`.
    fn observed_round(&self, at_ms: i64) {
        let mut st = self.state();
        let observed = Arc::make_mut(&mut st.observed);
        let at = time(at_ms);
        for seen in observed.at.values_mut() {
            *seen = (*seen).max(at);
        }
    }
}

fn time(ms: i64) -> std::time::SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64)
}

/// A follower's journal reader: until `stop`, then once more to the end.
async fn follow(engine: Engine, mut last: Option<EventId>, stop: CancellationToken) {
    let store = engine.inner.store.clone();
    let mut listener = match store.run(|s| s.listen()).await {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!("cannot listen to the database's notices (reading the journal every second): {e}");
            None
        }
    };
    let mut round = None;
    // Whether the notices may have been missed (the listening connection broke).
    let mut deaf = false;
    // What the leader last shared, as read (parsed again only when it changes).
    let mut shared: [Option<String>; 2] = [None, None];
    loop {
        // Everything journaled since the last event published, in pages.
        loop {
            const PAGE: usize = 512;
            match store.run(move |s| s.events_after(last, None, PAGE)).await {
                Ok(events) => {
                    let n = events.len();
                    if let Some(e) = events.last() {
                        last = Some(e.id);
                    }
                    engine.publish_followed(events);
                    if n < PAGE {
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!("cannot read the journal (trying again): {e}");
                    break;
                }
            }
        }
        match store
            .run(|s| Ok::<_, crate::store::StoreError>((s.shared_state(IDLE_KEY)?, s.shared_state(METERS_KEY)?)))
            .await
        {
            Ok((idle, meters)) => engine.take_shared(&mut shared, idle, meters),
            Err(e) => tracing::debug!("cannot read what the leader shared: {e}"),
        }
        match store.run(|s| s.observed_round()).await {
            Ok(r) if r != round => {
                round = r;
                if let Some(at) = r {
                    engine.observed_round(at);
                }
            }
            Ok(_) => {}
            Err(e) => tracing::debug!("cannot read when the leader last observed: {e}"),
        }
        if stop.is_cancelled() {
            return;
        }
        enum Woken {
            Notice(Option<(String, String)>),
            Tick,
            Stop,
        }
        let woken = {
            let notice = async {
                match listener.as_mut() {
                    Some(l) => l.next().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                n = notice => Woken::Notice(n),
                () = tokio::time::sleep(POLL) => Woken::Tick,
                () = stop.cancelled() => Woken::Stop,
            }
        };
        match woken {
            Woken::Notice(Some((channel, what))) if channel == CHANGES_CHANNEL => store.changed_elsewhere(&what),
            Woken::Notice(Some(_)) | Woken::Stop => {}
            // The connection's thread is gone: poll from now on.
            Woken::Notice(None) => listener = None,
            Woken::Tick => {
                // A connection that broke is opened again, and listens again; the caches
                // are dropped once it does, for a notice may have been missed meanwhile.
                if let Some(l) = listener.take() {
                    match tokio::task::spawn_blocking(move || {
                        let r = l.renew();
                        (l, r)
                    })
                    .await
                    {
                        Ok((l, r)) => {
                            match r {
                                Ok(()) if deaf => {
                                    deaf = false;
                                    store.changed_elsewhere("topology");
                                    store.changed_elsewhere("auth");
                                }
                                Ok(()) => {}
                                Err(e) => {
                                    deaf = true;
                                    tracing::warn!("cannot listen to the database's notices (trying again): {e}");
                                }
                            }
                            listener = Some(l);
                        }
                        Err(e) => tracing::error!("cannot listen to the database's notices: {e}"),
                    }
                }
            }
        }
    }
}
