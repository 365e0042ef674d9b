//! Notifications: rules on events (a cascade failed, a proposal waits, a node went down
//! unexpectedly, a maintenance report, updates available) sent to ntfy, a signed webhook or
//! e-mail. [`Notifier::run`] reads the journal in order from where it stopped (its position
//! is stored, so nothing is missed across a restart), records one delivery per matching rule,
//! and delivers them apart from the engine — an unreachable target never slows a cascade —
//! retrying with backoff ([`BACKOFF`]) before giving up. Every delivery is kept with its
//! attempts, last error and outcome ([`Store::deliveries`]).
//!
//! **"Unexpectedly"**: a node seen off or in error while no cascade, maintenance run or
//! machine action of WakeHub's is working on it (read from the same journal).

mod send;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use futures::StreamExt;

use crate::engine::{Engine, EngineError, Selection};
use crate::events::{CascadeStatus, Event, EventKind};
use crate::model::{NodeId, PowerState, Refusal, Topology};
use crate::secrets::SecretString;
use crate::store::{NotificationRule, NotifyEvent, SecretChange, Store, Target, check_window_name};

pub use send::{signature, validate_target};

/// The waits between a failed attempt and the next; after the last one, the delivery is
/// given up (`failed`).
pub const BACKOFF: [Duration; 5] = [
    Duration::from_secs(5),
    Duration::from_secs(30),
    Duration::from_secs(120),
    Duration::from_secs(600),
    Duration::from_secs(1800),
];

/// The longest the delivery loop sleeps before looking for due deliveries again.
const POLL: Duration = Duration::from_secs(5);

/// Deliveries sent at once.
const PARALLEL: usize = 4;

/// What one journal event tells, for a rule: its kind, the node, a title and a text.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    /// The kind.
    pub event: NotifyEvent,
    /// The node it is about.
    pub node: Option<(NodeId, String)>,
    /// One line.
    pub title: String,
    /// The details.
    pub body: String,
}

/// What the notifier remembers of the journal it read: what WakeHub itself is taking down,
/// and the machines' last update counts.
#[derive(Debug, Default)]
pub struct Reader {
    cascades: HashMap<crate::model::CascadeId, BTreeSet<NodeId>>,
    maintenance: HashMap<i64, BTreeSet<NodeId>>,
    actions: HashMap<i64, NodeId>,
    updates: HashMap<NodeId, u32>,
    states: HashMap<NodeId, PowerState>,
}

impl Reader {
    /// What `event` tells that a rule may notify, if anything (`topology` names its nodes).
    pub fn read(&mut self, event: &Event, topology: &Topology) -> Option<Notice> {
        let notice = |event, node: Option<(NodeId, String)>, title: String, body: String| {
            Some(Notice { event, node, title, body })
        };
        match &event.kind {
            // What a cascade does to its nodes is its own news (a failed start: `cascade-failed`).
            EventKind::CascadePlanned { cascade, steps, .. } => {
                self.cascades.insert(*cascade, steps.iter().map(|s| s.node).collect());
                None
            }
            EventKind::CascadeComplete { cascade, .. } => {
                self.cascades.remove(cascade);
                None
            }
            EventKind::CascadeError { cascade, node, action, status, code, message, .. } => {
                self.cascades.remove(cascade);
                if !matches!(status, CascadeStatus::Failed | CascadeStatus::Interrupted) {
                    return None;
                }
                let name = topology.name_of(*node);
                notice(
                    NotifyEvent::CascadeFailed,
                    Some((*node, name.clone())),
                    format!("{} of {name} {}", action.as_str(), status.as_str()),
                    format!("{cascade}: {code}: {message}"),
                )
            }
            EventKind::ShutdownProposed { node, name, reason, proposal, .. } => notice(
                NotifyEvent::ProposalWaiting,
                Some((*node, name.clone())),
                format!("Shut down {name}?"),
                format!("{proposal}: {reason}. Confirm or dismiss it on the dashboard."),
            ),
            EventKind::StatusChange { node, state, .. } if !matches!(state, PowerState::Off | PowerState::Error) => {
                self.states.insert(*node, *state);
                None
            }
            EventKind::StatusChange { node, name, state, .. } => {
                // Down is news only for a node seen up before (not a first sighting).
                let was_up = self.states.insert(*node, *state) == Some(PowerState::On);
                let expected = !was_up
                    || self.cascades.values().any(|s| s.contains(node))
                    || self.maintenance.values().any(|s| s.contains(node))
                    || self.actions.values().any(|n| n == node);
                (!expected).then(|| Notice {
                    event: NotifyEvent::NodeDown,
                    node: Some((*node, name.clone())),
                    title: format!("{name} is {}", state.as_str()),
                    body: format!("{name} was seen {} while nothing of WakeHub's was taking it down.", state.as_str()),
                })
            }
            EventKind::Maintenance { run, window, phase, node, name, status, message } => {
                if phase == "done" {
                    self.maintenance.remove(run);
                    let what =
                        window.as_deref().map_or_else(|| format!("maintenance run {run}"), |w| format!("window {w}"));
                    return notice(
                        NotifyEvent::MaintenanceReport,
                        None,
                        format!("Maintenance: {what} {status}"),
                        message.clone(),
                    );
                }
                if let (Some(n), Some(_)) = (node, name) {
                    self.maintenance.entry(*run).or_default().insert(*n);
                }
                None
            }
            EventKind::MachineExecution { node, execution, status, .. } => {
                if status == "running" {
                    self.actions.insert(*execution, *node);
                } else if status != "queued" {
                    self.actions.remove(execution);
                }
                None
            }
            EventKind::MachineRefreshed { node, name, updates, security_updates, summary, .. } => {
                let before = self.updates.insert(*node, *updates);
                (before.is_some_and(|b| *updates > b) || (before.is_none() && *updates > 0)).then(|| Notice {
                    event: NotifyEvent::UpdateAvailable,
                    node: Some((*node, name.clone())),
                    title: format!("{name}: {updates} updates ({security_updates} security)"),
                    body: summary.clone(),
                })
            }
            _ => None,
        }
    }
}

/// Whether `rule` wants `notice` (its kind, and its node within the rule's selection).
pub fn wants(rule: &NotificationRule, notice: &Notice, topology: &Topology) -> bool {
    if !rule.enabled || !rule.events.contains(&notice.event) {
        return false;
    }
    if rule.nodes.is_empty() && rule.tags.is_empty() {
        return true;
    }
    let Some((node, _)) = &notice.node else { return false };
    Selection { nodes: rule.nodes.clone(), tags: rule.tags.clone() }.resolve(topology).0.contains(node)
}

/// Checks and saves a rule for `actor`: a name, at least one event, a valid target, nodes
/// that exist.
pub fn save_rule(
    store: &Store,
    rule: NotificationRule,
    secret: SecretChange,
    actor: &str,
) -> Result<NotificationRule, EngineError> {
    check_window_name(&rule.name).map_err(|r| Refusal::invalid(r.message.replace("window", "rule")))?;
    if rule.events.is_empty() {
        return Err(Refusal::invalid("a rule notifies at least one event").into());
    }
    validate_target(&rule.target).map_err(Refusal::invalid)?;
    let topology = store.topology_shared()?;
    let (_, missing) = Selection { nodes: rule.nodes.clone(), tags: rule.tags.clone() }.resolve(&topology);
    if !missing.is_empty() {
        return Err(Refusal::invalid(format!("unknown node(s): {}", missing.join(", "))).into());
    }
    if let Target::Webhook { .. } = rule.target
        && matches!(secret, SecretChange::Clear)
    {
        return Err(Refusal::invalid("a webhook is signed: give it a secret").into());
    }
    let saved = store.save_notification_rule(&rule, &secret, actor, crate::store::now_ms())?;
    if matches!(saved.target, Target::Webhook { .. }) && !saved.has_secret {
        store.delete_notification_rule(&saved.name)?;
        return Err(Refusal::invalid("a webhook is signed: give it a secret").into());
    }
    Ok(saved)
}

/// The notifier of an engine.
#[derive(Clone)]
pub struct Notifier {
    engine: Engine,
    wake: std::sync::Arc<tokio::sync::Notify>,
}

impl Notifier {
    /// A notifier for `engine`'s journal.
    pub fn new(engine: Engine) -> Notifier {
        Notifier { engine, wake: Default::default() }
    }

    /// Reads the journal and delivers until the engine shuts down.
    pub async fn run(self) {
        tokio::select! {
            _ = self.clone().read_journal() => {}
            _ = self.deliver_loop() => {}
        }
    }

    /// Records a test notification of rule `name` (delivered like the others); its id.
    pub fn test(&self, name: &str) -> Result<i64, EngineError> {
        let store = self.engine.store();
        if store.notification_rule(name)?.is_none() {
            return Err(EngineError::NotFound { what: format!("notification rule `{name}`") });
        }
        let id = store.enqueue_delivery(
            name,
            None,
            "test",
            None,
            "WakeHub test notification",
            &format!("Rule `{name}` reaches you."),
            crate::store::now_ms(),
        )?;
        self.wake.notify_one();
        Ok(id)
    }

    async fn read_journal(self) {
        let store = self.engine.store().clone();
        let after = match store.notifier_position() {
            Ok(Some(p)) => Some(crate::model::EventId::new(p)),
            _ => store.last_event_id().ok().flatten(),
        };
        let mut reader = Reader::default();
        let mut events = self.engine.subscribe(after);
        while let Some(event) = events.next().await {
            let Ok(event) = event else { continue };
            let Ok(topology) = store.topology_shared() else { continue };
            if let Some(notice) = reader.read(&event, &topology) {
                self.enqueue(&event, &notice);
            }
            if let Err(e) = store.set_notifier_position(event.id.get()) {
                tracing::error!("notifier: cannot record its position: {e}");
            }
        }
    }

    fn enqueue(&self, event: &Event, notice: &Notice) {
        let store = self.engine.store();
        let (Ok(rules), Ok(topology)) = (store.notification_rules(), store.topology_shared()) else { return };
        for rule in rules.iter().filter(|r| wants(r, notice, &topology)) {
            let node = notice.node.as_ref().map(|(_, n)| n.as_str());
            let made = store.enqueue_delivery(
                &rule.name,
                Some(event.id.get()),
                notice.event.as_str(),
                node,
                &notice.title,
                &notice.body,
                crate::store::now_ms(),
            );
            if let Err(e) = made {
                tracing::error!(rule = %rule.name, "notifier: cannot record a delivery: {e}");
            }
        }
        self.wake.notify_one();
    }

    async fn deliver_loop(self) {
        let store = self.engine.store().clone();
        loop {
            let now = crate::store::now_ms();
            let due = store.due_deliveries(now, 64).unwrap_or_default();
            let rules: BTreeMap<String, NotificationRule> =
                store.notification_rules().unwrap_or_default().into_iter().map(|r| (r.name.clone(), r)).collect();
            futures::stream::iter(due)
                .for_each_concurrent(PARALLEL, |d| {
                    let (store, rule) = (store.clone(), rules.get(&d.rule).cloned());
                    async move {
                        let outcome = match &rule {
                            None => Err("its rule was deleted".to_owned()),
                            Some(rule) => {
                                let secret: Option<SecretString> = store.notification_secret(&rule.name).ok().flatten();
                                send::deliver(&rule.target, secret.as_ref(), &d).await
                            }
                        };
                        let now = crate::store::now_ms();
                        let recorded = match &outcome {
                            Ok(()) => store.delivery_attempted(d.id, Ok(()), now),
                            Err(e) => {
                                let retry = BACKOFF.get(d.attempts as usize).filter(|_| rule.is_some());
                                tracing::warn!(rule = %d.rule, delivery = d.id, "notification not delivered: {e}");
                                store.delivery_attempted(d.id, Err((e, retry.map(|b| now + b.as_millis() as i64))), now)
                            }
                        };
                        if let Err(e) = recorded {
                            tracing::error!("notifier: cannot record a delivery: {e}");
                        }
                    }
                })
                .await;
            let next = store.next_delivery_at().ok().flatten();
            // Woken by its own journal reader; a delivery recorded elsewhere (a test from the
            // API) is found within POLL.
            let wait = next.map_or(POLL, |at| {
                Duration::from_millis((at - crate::store::now_ms()).clamp(0, POLL.as_millis() as i64) as u64)
            });
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::EventId;

    fn ev(id: i64, kind: EventKind) -> Event {
        Event { id: EventId::new(id), at_ms: 0, kind }
    }

    fn status(node: i64, state: PowerState) -> EventKind {
        EventKind::StatusChange { node: NodeId::new(node), name: format!("n{node}"), kind: "physical".into(), state }
    }

    fn refreshed(node: i64, updates: u32) -> EventKind {
        EventKind::MachineRefreshed {
            node: NodeId::new(node),
            name: format!("n{node}"),
            outcome: "ok".into(),
            updates,
            security_updates: 0,
            reboot_required: false,
            code: None,
            summary: format!("{updates} updates"),
            actor: "monitor".into(),
        }
    }

    fn maintenance(run: i64, phase: &str, node: Option<i64>) -> EventKind {
        EventKind::Maintenance {
            run,
            window: Some("sunday".into()),
            phase: phase.into(),
            node: node.map(NodeId::new),
            name: node.map(|n| format!("n{n}")),
            status: if phase == "done" { "completed".into() } else { "running".into() },
            message: "2 machines patched".into(),
        }
    }

    #[test]
    fn what_the_journal_tells() {
        let t = Topology::new();
        let mut r = Reader::default();
        let kinds = |r: &mut Reader, e: EventKind| r.read(&ev(1, e), &t).map(|n| (n.event, n.title));
        // A first sighting off is no news; down after up is.
        assert_eq!(kinds(&mut r, status(1, PowerState::Off)), None);
        assert_eq!(kinds(&mut r, status(1, PowerState::On)), None);
        assert_eq!(kinds(&mut r, status(1, PowerState::Off)), Some((NotifyEvent::NodeDown, "n1 is off".into())));
        // During a maintenance run that works on it, a reboot is expected; the report is news.
        assert_eq!(kinds(&mut r, status(1, PowerState::On)), None);
        assert_eq!(kinds(&mut r, maintenance(7, "reboot", Some(1))), None);
        assert_eq!(kinds(&mut r, status(1, PowerState::Off)), None);
        assert_eq!(
            kinds(&mut r, maintenance(7, "done", None)),
            Some((NotifyEvent::MaintenanceReport, "Maintenance: window sunday completed".into()))
        );
        // Updates: news when there are more than the last refresh said.
        assert_eq!(kinds(&mut r, refreshed(2, 3)).map(|k| k.0), Some(NotifyEvent::UpdateAvailable));
        assert_eq!(kinds(&mut r, refreshed(2, 3)), None);
        assert_eq!(kinds(&mut r, refreshed(2, 1)), None);
        assert_eq!(kinds(&mut r, refreshed(2, 2)).map(|k| k.0), Some(NotifyEvent::UpdateAvailable));
    }
}
