//! Prometheus metrics on `/metrics`: cascades by outcome, step durations, connector errors
//! by code, live subscribers. A collector task follows the engine's event bus.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicI64;

use futures::StreamExt;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use wakehub_core::engine::Engine;
use wakehub_core::events::{EventKind, StepStatus};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CascadeLabels {
    action: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ActionLabels {
    action: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodeLabels {
    code: String,
}

type HistogramFamily = Family<ActionLabels, Histogram, fn() -> Histogram>;

/// The server's metrics.
pub struct Metrics {
    registry: Registry,
    cascades: Family<CascadeLabels, Counter>,
    steps: HistogramFamily,
    errors: Family<CodeLabels, Counter>,
    /// Live GraphQL subscriptions.
    pub subscribers: Gauge<i64, AtomicI64>,
    /// Capability denials (the engine journals only the first of a repeated one).
    denials: Counter,
    denials_seen: std::sync::atomic::AtomicU64,
    /// 1 while this instance leads its database (runs the work), 0 while it follows another.
    leading: Gauge<i64, AtomicI64>,
    engine: std::sync::OnceLock<Engine>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

fn step_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 2.0, 18))
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let cascades = Family::<CascadeLabels, Counter>::default();
        registry.register("wakehub_cascades", "Cascades that ended, by action and outcome", cascades.clone());
        let steps: HistogramFamily = Family::new_with_constructor(step_histogram);
        registry.register("wakehub_step_duration_seconds", "Duration of steps that reached their state", steps.clone());
        let errors = Family::<CodeLabels, Counter>::default();
        registry.register("wakehub_step_errors", "Failed steps, by error code", errors.clone());
        let subscribers = Gauge::<i64, AtomicI64>::default();
        registry.register("wakehub_subscribers", "Live GraphQL subscriptions", subscribers.clone());
        let denials = Counter::default();
        registry.register(
            "wakehub_capability_denials",
            "What connector plugins asked for and their node does not grant",
            denials.clone(),
        );
        let leading = Gauge::<i64, AtomicI64>::default();
        registry.register(
            "wakehub_leading",
            "1 while this instance runs the database's work, 0 while it follows another instance",
            leading.clone(),
        );
        Metrics {
            registry,
            cascades,
            steps,
            errors,
            subscribers,
            denials,
            leading,
            denials_seen: Default::default(),
            engine: Default::default(),
        }
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        if let Some(engine) = self.engine.get() {
            let total = engine.capability_denials();
            let before = self.denials_seen.swap(total, std::sync::atomic::Ordering::Relaxed);
            self.denials.inc_by(total.saturating_sub(before));
            self.leading.set(i64::from(engine.is_leader()));
        }
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            tracing::error!("cannot encode metrics");
        }
        out
    }

    /// Follows the engine's live events and updates the counters, until the bus closes.
    pub fn spawn_collector(self: &Arc<Self>, engine: &Engine) -> tokio::task::JoinHandle<()> {
        let metrics = self.clone();
        let engine = engine.clone();
        let _ = metrics.engine.set(engine.clone());
        tokio::spawn(async move {
            let from = engine.store().run(|s| s.last_event_id()).await.ok().flatten();
            let mut events = engine.subscribe(from);
            let mut began: HashMap<(i64, i64), i64> = HashMap::new();
            let mut actions: HashMap<i64, String> = HashMap::new();
            while let Some(Ok(e)) = events.next().await {
                match e.kind {
                    EventKind::CascadeProgress { cascade, current, .. } => {
                        let key = (cascade.get(), current.node.get());
                        let action = current.action.as_str().to_owned();
                        actions.insert(cascade.get(), action.clone());
                        if current.step_status == StepStatus::Running {
                            began.insert(key, e.at_ms);
                        } else if let Some(start) = began.remove(&key)
                            && current.step_status == StepStatus::Done
                        {
                            let secs = (e.at_ms - start).max(0) as f64 / 1000.0;
                            metrics.steps.get_or_create(&ActionLabels { action }).observe(secs);
                        }
                    }
                    EventKind::CascadeComplete { cascade, .. } => {
                        let action = action_of(&engine, &mut actions, cascade).await;
                        metrics.cascades.get_or_create(&CascadeLabels { action, outcome: "completed".into() }).inc();
                    }
                    EventKind::CascadeError { cascade, status, failed_step, code, .. } => {
                        let action = action_of(&engine, &mut actions, cascade).await;
                        let outcome = status.as_str().to_owned();
                        metrics.cascades.get_or_create(&CascadeLabels { action, outcome }).inc();
                        if failed_step.is_some() {
                            metrics.errors.get_or_create(&CodeLabels { code: code.as_str().to_owned() }).inc();
                        }
                        began.retain(|(c, _), _| *c != cascade.get());
                    }
                    _ => {}
                }
            }
        })
    }
}

/// The action of a cascade: seen in its progress events, else read from the store.
async fn action_of(
    engine: &Engine,
    seen: &mut HashMap<i64, String>,
    cascade: wakehub_core::model::CascadeId,
) -> String {
    match seen.remove(&cascade.get()) {
        Some(a) => a,
        None => engine
            .cascade(cascade)
            .await
            .ok()
            .flatten()
            .map_or_else(|| "unknown".to_owned(), |r| r.action.as_str().to_owned()),
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
