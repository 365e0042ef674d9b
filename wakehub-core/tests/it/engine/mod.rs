//! The engine through the `Connector` trait, with the simulated connector as the platform.

use crate::support::StoreToml as _;
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use wakehub_core::connector::sim::SimConnector;
use wakehub_core::connector::{Connector, ConnectorError, PowerState, Registry, Target};
use wakehub_core::engine::{Engine, EngineConfig};
use wakehub_core::events::{CascadeStatus, Event, EventKind, StepStatus};
use wakehub_core::model::{Action, Origin};
use wakehub_core::model::{CascadeId, NodeId, Topology};
use wakehub_core::secrets::MasterKey;
use wakehub_core::store::{ProposalStatus, Store};
use wakehub_core::topology_file::ParseOptions;

/// The simulator, counting the start/stop calls it receives per node.
#[derive(Clone, Default)]
struct Counting {
    sim: SimConnector,
    calls: Arc<Mutex<HashMap<(NodeId, &'static str), usize>>>,
}

impl Counting {
    fn count(&self, node: NodeId, op: &'static str) -> usize {
        self.calls.lock().unwrap().get(&(node, op)).copied().unwrap_or(0)
    }
    fn bump(&self, node: NodeId, op: &'static str) {
        *self.calls.lock().unwrap().entry((node, op)).or_default() += 1;
    }
}

#[async_trait::async_trait]
impl Connector for Counting {
    async fn status(&self, t: &Target) -> Result<PowerState, ConnectorError> {
        self.sim.status(t).await
    }
    async fn start(&self, t: &Target) -> Result<(), ConnectorError> {
        self.bump(t.node, "start");
        self.sim.start(t).await
    }
    async fn stop(&self, t: &Target) -> Result<(), ConnectorError> {
        self.bump(t.node, "stop");
        self.sim.stop(t).await
    }
    fn watch(&self, t: &Target) -> Option<futures::stream::BoxStream<'static, PowerState>> {
        self.sim.watch(t)
    }
}

const HOMELAB: &str = include_str!("../../../../examples/homelab.toml");

/// The homelab with every delay divided by 10 (a physical boot takes 300 ms).
fn fast(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        match line.split_once(" = ").filter(|(k, _)| k.ends_with("_delay_ms")) {
            Some((k, v)) => out.push_str(&format!("{k} = {}\n", v.parse::<u64>().unwrap() / 10)),
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out
}

fn all_on(text: &str) -> String {
    text.replace("initially = \"off\"", "initially = \"on\"")
}

struct Lab {
    engine: Engine,
    topology: Topology,
    sim: Counting,
}

impl Lab {
    fn new(text: &str, concurrency: usize) -> Lab {
        let config = EngineConfig { concurrency, ..EngineConfig::default() };
        Self::on(crate::support::store(MasterKey::generate()), text, config)
    }

    fn on(store: Store, text: &str, config: EngineConfig) -> Lab {
        store.import_toml(text, &ParseOptions::operator()).unwrap();
        let sim = Counting::default();
        let mut registry = Registry::new();
        registry.register("sim", sim.clone());
        let engine = Engine::new(store, registry, config).unwrap();
        let topology = engine.store().topology().unwrap();
        Lab { engine, topology, sim }
    }

    fn id(&self, name: &str) -> NodeId {
        self.topology.by_name(name).unwrap().id
    }

    async fn state(&self, name: &str) -> PowerState {
        let target = Target::of(&self.topology, self.id(name)).unwrap();
        self.sim.status(&target).await.unwrap()
    }

    /// Requests a cascade and collects its events until it ends.
    async fn run(&self, action: Action, name: &str) -> (CascadeId, Vec<Event>) {
        let after = self.engine.store().last_event_id().unwrap();
        let events = self.engine.subscribe(after);
        let record = self.engine.request(self.id(name), action).await.unwrap();
        assert_eq!(record.status, CascadeStatus::Pending);
        (record.id, until_end(events, record.id).await)
    }
}

async fn until_end(
    mut events: futures::stream::BoxStream<'static, Result<Event, wakehub_core::engine::EngineError>>,
    id: CascadeId,
) -> Vec<Event> {
    through(&mut events, id).await
}

/// The events of `events` until cascade `id` ends (at most 20 s); the stream can go on.
async fn through(
    events: &mut futures::stream::BoxStream<'static, Result<Event, wakehub_core::engine::EngineError>>,
    id: CascadeId,
) -> Vec<Event> {
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(e) = events.next().await {
            let e = e.unwrap();
            let end = matches!(&e.kind, EventKind::CascadeComplete { cascade, .. } | EventKind::CascadeError { cascade, .. } if *cascade == id);
            out.push(e);
            if end {
                break;
            }
        }
    })
    .await
    .expect("cascade did not end in time");
    out
}

/// `(node name, reason)` of the shutdowns cascade `id` proposed.
fn proposed_by(events: &[Event], id: CascadeId) -> Vec<(String, String)> {
    events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::ShutdownProposed { name, reason, cascade, .. } if *cascade == id => {
                Some((name.clone(), reason.clone()))
            }
            _ => None,
        })
        .collect()
}

/// `(node name, step status)` of the cascade's progress events, in order.
fn progress(events: &[Event], id: CascadeId) -> Vec<(String, StepStatus)> {
    events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::CascadeProgress { cascade, current, .. } if *cascade == id => {
                Some((current.name.clone(), current.step_status))
            }
            _ => None,
        })
        .collect()
}

fn position(p: &[(String, StepStatus)], name: &str, status: StepStatus) -> usize {
    p.iter().position(|(n, s)| n == name && *s == status).unwrap_or_else(|| panic!("no {status:?} for {name} in {p:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_jellyfin_brings_up_the_chain_in_order_and_journals_it() {
    let lab = Lab::new(&fast(HOMELAB), 4);
    let (id, events) = lab.run(Action::Start, "lxc-jellyfin").await;
    let p = progress(&events, id);
    // nas and machine2 are independent: both begin before either is done; jellyfin after both.
    assert!(position(&p, "lxc-jellyfin", StepStatus::Running) > position(&p, "nas", StepStatus::Done));
    assert!(position(&p, "lxc-jellyfin", StepStatus::Running) > position(&p, "machine2", StepStatus::Done));
    assert!(position(&p, "machine2", StepStatus::Running) < position(&p, "nas", StepStatus::Done));
    assert!(matches!(events.last().unwrap().kind, EventKind::CascadeComplete { .. }));
    // Event ids strictly increase; the store has exactly what was published.
    assert!(events.windows(2).all(|w| w[0].id < w[1].id));
    let stored = lab
        .engine
        .store()
        .events_after(Some(wakehub_core::model::EventId::new(events[0].id.get() - 1)), None, 1000)
        .unwrap();
    assert_eq!(stored, events);
    // Every status change of the chain was journaled.
    let on: BTreeSet<String> = events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::StatusChange { name, state: PowerState::On, .. } => Some(name.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(on, BTreeSet::from(["lxc-jellyfin".into(), "machine2".into(), "nas".into()]));
    let record = lab.engine.store().cascade(id).unwrap().unwrap();
    assert_eq!((record.status, record.current_step, record.total_steps), (CascadeStatus::Completed, 3, 3));
    assert!(record.completed_at_ms.is_some());
    let steps = lab.engine.store().steps(id).unwrap();
    assert!(steps.iter().all(|s| s.status == StepStatus::Done));
    for name in ["nas", "machine2", "lxc-jellyfin"] {
        assert_eq!(lab.state(name).await, PowerState::On, "{name}");
    }
    assert_eq!(lab.state("machine1").await, PowerState::Off, "nothing outside the closure started");
    // Starting it again plans nothing and completes at once.
    let (id2, _) = lab.run(Action::Start, "lxc-jellyfin").await;
    assert_eq!(lab.engine.store().cascade(id2).unwrap().unwrap().total_steps, 0);
    assert_eq!(lab.sim.count(lab.id("nas"), "start"), 1);
}

/// The most steps of `id` running at the same time, from its progress events.
fn max_overlap(events: &[Event], id: CascadeId) -> usize {
    let (mut now, mut max) = (0usize, 0usize);
    for (_, s) in progress(events, id) {
        if s == StepStatus::Running {
            now += 1;
            max = max.max(now);
        } else {
            now -= 1;
        }
    }
    max
}

fn fan_in() -> String {
    let mut t = String::new();
    for i in 0..4 {
        t.push_str(&format!(
            "[[node]]\nname = \"dep{i}\"\nkind = \"physical\"\n[node.connector]\ntype = \"sim\"\nstart_delay_ms = 150\n\n"
        ));
    }
    t + "[[node]]\nname = \"app\"\nkind = \"physical\"\ndepends_on = [\"dep0\", \"dep1\", \"dep2\", \"dep3\"]\n[node.connector]\ntype = \"sim\"\n"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_concurrency_limit_bounds_parallel_steps() {
    let lab = Lab::new(&fan_in(), 1);
    let (id, events) = lab.run(Action::Start, "app").await;
    assert_eq!(max_overlap(&events, id), 1, "limit 1 is the seeds' strictly sequential behaviour");
    let lab = Lab::new(&fan_in(), 4);
    let (id, events) = lab.run(Action::Start, "app").await;
    assert_eq!(max_overlap(&events, id), 4, "independent branches run together");
    let lab = Lab::new(&fan_in(), 2);
    let (id, events) = lab.run(Action::Start, "app").await;
    assert_eq!(max_overlap(&events, id), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_step_fails_the_cascade_without_rollback() {
    let text = fast(HOMELAB).replacen(
        "name = \"machine2\"\nkind = \"physical\"\noffers = [\"proxmox\"]\ntags = [\"infra\"]\nwatts = { on = 45.0, off = 1.5 }\n[node.connector]\ntype = \"sim\"\n",
        "name = \"machine2\"\nkind = \"physical\"\noffers = [\"proxmox\"]\ntags = [\"infra\"]\nwatts = { on = 45.0, off = 1.5 }\n[node.connector]\ntype = \"sim\"\nfail = \"start\"\n",
        1,
    );
    let lab = Lab::new(&text, 4);
    let (id, events) = lab.run(Action::Start, "lxc-jellyfin").await;
    let record = lab.engine.store().cascade(id).unwrap().unwrap();
    assert_eq!(record.status, CascadeStatus::Failed);
    assert_eq!(record.failed_step, Some(1));
    assert_eq!(record.error_code.map(|c| c.as_str()), Some("PLATFORM_ERROR"));
    assert!(record.error_message.unwrap().contains("machine2"));
    let steps = lab.engine.store().steps(id).unwrap();
    let status: Vec<(&str, StepStatus)> = steps.iter().map(|s| (s.node_name.as_str(), s.status)).collect();
    // nas was in flight when machine2 failed: it finishes, and stays on (no rollback).
    assert_eq!(
        status,
        [("nas", StepStatus::Done), ("machine2", StepStatus::Failed), ("lxc-jellyfin", StepStatus::Cancelled)]
    );
    assert_eq!(lab.state("nas").await, PowerState::On);
    match &events.last().unwrap().kind {
        EventKind::CascadeError { status, failed_step, code, .. } => {
            assert_eq!((*status, *failed_step, code.as_str()), (CascadeStatus::Failed, Some(1), "PLATFORM_ERROR"));
        }
        other => panic!("last event {other:?}"),
    }
    // A failed cascade can be re-run (it fails the same way here).
    let again = lab.engine.rerun(id).await.unwrap();
    assert_eq!(again.rerun_of, Some(id));
    assert_eq!(lab.engine.wait(again.id).await.unwrap().status, CascadeStatus::Failed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_that_takes_too_long_times_out() {
    let text = "[[node]]\nname = \"slow\"\nkind = \"physical\"\nstart_timeout = \"300ms\"\n[node.connector]\ntype = \"sim\"\nstart_delay_ms = 5000\n";
    let lab = Lab::new(text, 4);
    let (id, _) = lab.run(Action::Start, "slow").await;
    let record = lab.engine.store().cascade(id).unwrap().unwrap();
    assert_eq!(record.error_code.map(|c| c.as_str()), Some("TIMEOUT"));
    assert_eq!(record.error_message.as_deref(), Some("`slow` did not come up within 300ms (last seen starting)"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_gates_the_step() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let text = format!(
        "[[node]]\nname = \"web\"\nkind = \"physical\"\nreadiness = {{ tcp = \"127.0.0.1:{port}\" }}\nstart_timeout = \"10s\"\n[node.connector]\ntype = \"sim\"\n\n\
         [[node]]\nname = \"client\"\nkind = \"physical\"\ndepends_on = [\"web\"]\n[node.connector]\ntype = \"sim\"\n"
    );
    let lab = Lab::new(&text, 4);
    let after = lab.engine.store().last_event_id().unwrap();
    let events = lab.engine.subscribe(after);
    let record = lab.engine.start(lab.id("client")).await.unwrap();
    // The connector says `on` at once; the step must still wait for the port.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(lab.state("web").await, PowerState::On);
    assert_eq!(lab.sim.count(lab.id("client"), "start"), 0, "client must not start before web is ready");
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    let events = until_end(events, record.id).await;
    assert!(matches!(events.last().unwrap().kind, EventKind::CascadeComplete { .. }));
    drop(listener);

    // A probe that never passes times out, naming the probe.
    let text = text.replace("start_timeout = \"10s\"", "start_timeout = \"400ms\"");
    let lab = Lab::new(&text, 4);
    let (id, _) = lab.run(Action::Start, "web").await;
    let record = lab.engine.store().cascade(id).unwrap().unwrap();
    assert_eq!(record.error_code.map(|c| c.as_str()), Some("TIMEOUT"));
    assert!(
        record.error_message.as_deref().unwrap().contains(&format!("readiness: tcp 127.0.0.1:{port}")),
        "{record:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_cascade_can_be_cancelled() {
    let lab = Lab::new(&fast(HOMELAB), 1);
    let after = lab.engine.store().last_event_id().unwrap();
    let mut events = lab.engine.subscribe(after);
    let record = lab.engine.start(lab.id("sandbox")).await.unwrap();
    // Cancel as soon as the first step is running.
    while let Some(e) = events.next().await {
        if matches!(e.unwrap().kind, EventKind::CascadeProgress { current, .. } if current.step_status == StepStatus::Running)
        {
            break;
        }
    }
    lab.engine.cancel(record.id).unwrap();
    let done = lab.engine.wait(record.id).await.unwrap();
    assert_eq!(done.status, CascadeStatus::Cancelled);
    assert_eq!(done.error_code.map(|c| c.as_str()), Some("CANCELLED"));
    let steps = lab.engine.store().steps(record.id).unwrap();
    assert_eq!(steps[0].status, StepStatus::Done, "the step in flight finished");
    assert!(steps[1..].iter().all(|s| s.status == StepStatus::Cancelled), "{steps:?}");
    assert_eq!(lab.engine.cancel(record.id).unwrap_err().code().as_str(), "VALIDATION");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlapping_cascades_share_one_start_per_node() {
    let lab = Lab::new(&fast(HOMELAB), 4);
    let after = lab.engine.store().last_event_id().unwrap();
    let a = lab.engine.start(lab.id("lxc-jellyfin")).await.unwrap();
    let b = lab.engine.start(lab.id("sandbox")).await.unwrap();
    let (ra, rb) = (lab.engine.wait(a.id).await.unwrap(), lab.engine.wait(b.id).await.unwrap());
    assert_eq!((ra.status, rb.status), (CascadeStatus::Completed, CascadeStatus::Completed));
    for name in ["nas", "machine2", "lxc-jellyfin"] {
        assert_eq!(lab.sim.count(lab.id(name), "start"), 1, "{name} started once");
    }
    // Whichever cascade came second joined the operation in flight and waited for it.
    let mut steps = lab.engine.store().steps(a.id).unwrap();
    steps.extend(lab.engine.store().steps(b.id).unwrap());
    for name in ["nas", "machine2", "lxc-jellyfin"] {
        let mut statuses: Vec<StepStatus> = steps.iter().filter(|s| s.node_name == name).map(|s| s.status).collect();
        statuses.sort_by_key(|s| s.as_str());
        assert!(
            statuses == [StepStatus::Done, StepStatus::Joined] || statuses == [StepStatus::Done, StepStatus::Skipped],
            "{name}: {statuses:?}"
        );
    }
    assert!(steps.iter().any(|s| s.status == StepStatus::Joined), "{steps:?}");
    // sandbox started only after lxc-jellyfin was up, whichever cascade started it.
    let events = lab.engine.store().events_after(after, None, 1000).unwrap();
    let up = |name: &str| {
        events
            .iter()
            .position(
                |e| matches!(&e.kind, EventKind::StatusChange { name: n, state: PowerState::On, .. } if n == name),
            )
            .unwrap()
    };
    let sandbox_began = events
        .iter()
        .position(|e| matches!(&e.kind, EventKind::CascadeProgress { current, .. } if current.name == "sandbox" && current.step_status == StepStatus::Running))
        .unwrap();
    assert!(up("lxc-jellyfin") < sandbox_began);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_cannot_take_what_a_running_start_needs() {
    let lab = Lab::new(&fast(HOMELAB), 4);
    let start = lab.engine.start(lab.id("sandbox")).await.unwrap();
    let err = lab.engine.stop(lab.id("machine2")).await.unwrap_err();
    assert_eq!(err.code().as_str(), "CONFLICT");
    assert!(err.to_string().contains("needed by"), "{err}");
    assert_eq!(lab.engine.start(lab.id("sandbox")).await.unwrap_err().code().as_str(), "CASCADE_IN_PROGRESS");
    assert_eq!(lab.engine.wait(start.id).await.unwrap().status, CascadeStatus::Completed);
    // Once the start is over, the stop is accepted.
    let (id, _) = lab.run(Action::Stop, "machine2").await;
    assert_eq!(lab.engine.store().cascade(id).unwrap().unwrap().status, CascadeStatus::Completed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_accepted_during_a_stop_wins() {
    let text = all_on(&fast(HOMELAB)).replace(
        "[node.connector]\ntype = \"sim\"\ninitially = \"on\"\nstart_delay_ms = 80\nstop_delay_ms = 50\n\n[[node]]\nname = \"lxc-cloudflared\"",
        "[node.connector]\ntype = \"sim\"\ninitially = \"on\"\nstart_delay_ms = 80\nstop_delay_ms = 600\n\n[[node]]\nname = \"lxc-cloudflared\"",
    );
    assert!(text.contains("stop_delay_ms = 600"));
    let lab = Lab::new(&text, 4);
    let mut events = lab.engine.subscribe(lab.engine.store().last_event_id().unwrap());
    let stop = lab.engine.stop(lab.id("machine2")).await.unwrap();
    // Wait until lxc-jellyfin's stop is issued (the platform reports it stopping), then ask
    // for it.
    while let Some(e) = events.next().await {
        let stopping = |e: &Event| matches!(&e.kind, EventKind::StatusChange { name, state: PowerState::Stopping, .. } if name == "lxc-jellyfin");
        if stopping(&e.unwrap()) {
            break;
        }
    }
    let start = lab.engine.start(lab.id("lxc-jellyfin")).await.unwrap();
    let stop = lab.engine.wait(stop.id).await.unwrap();
    let start = lab.engine.wait(start.id).await.unwrap();
    assert_eq!(start.status, CascadeStatus::Completed);
    assert_eq!(stop.status, CascadeStatus::Failed);
    assert_eq!(stop.error_code.map(|c| c.as_str()), Some("CONFLICT"));
    assert!(stop.error_message.as_deref().unwrap().contains("`machine2` is now needed by start"), "{stop:?}");
    // The stop in flight finished, then the start brought lxc-jellyfin back; machine2 was
    // never stopped under it.
    assert_eq!(lab.sim.count(lab.id("lxc-jellyfin"), "stop"), 1);
    assert_eq!(lab.sim.count(lab.id("lxc-jellyfin"), "start"), 1);
    assert_eq!(lab.sim.count(lab.id("machine2"), "stop"), 0);
    assert_eq!(lab.state("lxc-jellyfin").await, PowerState::On);
    assert_eq!(lab.state("machine2").await, PowerState::On);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_that_finishes_first_still_protects_its_nodes_from_the_stop() {
    // Everything is on: the start has nothing to do and ends at once, yet the stop cascade
    // that was running when it was accepted must not tear its nodes down afterwards.
    let text = all_on(&HOMELAB.replace("stop_delay_ms = 1000", "stop_delay_ms = 400"));
    let lab = Lab::new(&text, 4);
    let stop = lab.engine.stop(lab.id("machine2")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let start = lab.engine.start(lab.id("lxc-cloudflared")).await;
    let start = match start {
        Ok(s) => lab.engine.wait(s.id).await.unwrap(),
        Err(e) => panic!("{e}"),
    };
    assert_eq!(start.status, CascadeStatus::Completed);
    let stop = lab.engine.wait(stop.id).await.unwrap();
    assert_eq!(stop.error_code.map(|c| c.as_str()), Some("CONFLICT"), "{stop:?}");
    assert_eq!(lab.state("machine2").await, PowerState::On);
    assert_eq!(lab.sim.count(lab.id("machine2"), "stop"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reevaluation_proposes_and_a_proposal_can_be_confirmed_or_dismissed() {
    let lab = Lab::new(&all_on(&fast(HOMELAB)), 4);
    let (id, events) = lab.run(Action::Stop, "lxc-jellyfin").await;
    let proposed = proposed_by(&events, id);
    assert_eq!(proposed, [("nas".to_owned(), "no longer used; confirm_auto_shutdown is on".to_owned())]);
    assert_eq!(lab.state("sandbox").await, PowerState::Off, "its dependent stopped first");
    assert_eq!(lab.state("nas").await, PowerState::On, "a proposal stops nothing by itself");
    let proposals = lab.engine.store().proposals(false).unwrap();
    assert_eq!(proposals.len(), 1);

    // Needed again: the start that needs the NAS dismisses the stale proposal, and
    // confirming it afterwards is refused.
    let (_, events) = lab.run(Action::Start, "lxc-jellyfin").await;
    assert!(
        events.iter().any(|e| matches!(&e.kind, EventKind::ProposalResolved { proposal, confirmed: false, .. } if *proposal == proposals[0].id)),
        "{events:?}"
    );
    assert_eq!(lab.engine.store().proposal(proposals[0].id).unwrap().unwrap().status, ProposalStatus::Dismissed);
    let err = lab.engine.confirm_proposal(proposals[0].id).await.unwrap_err();
    assert_eq!(err.code().as_str(), "VALIDATION");

    // Unused again: confirming stops the NAS.
    let (_, _) = lab.run(Action::Stop, "lxc-jellyfin").await;
    let pending = lab.engine.store().proposals(false).unwrap();
    assert_eq!(pending.len(), 1, "one pending proposal per node");
    let cascade = lab.engine.confirm_proposal(pending[0].id).await.unwrap();
    assert_eq!(lab.engine.wait(cascade.id).await.unwrap().status, CascadeStatus::Completed);
    assert_eq!(lab.state("nas").await, PowerState::Off);
    assert_eq!(lab.engine.store().proposal(pending[0].id).unwrap().unwrap().status, ProposalStatus::Confirmed);
    assert_eq!(lab.engine.confirm_proposal(pending[0].id).await.unwrap_err().code().as_str(), "VALIDATION");

    // Dismissing keeps it on.
    let (_, _) = lab.run(Action::Start, "lxc-jellyfin").await;
    let (_, _) = lab.run(Action::Stop, "lxc-jellyfin").await;
    let p = lab.engine.store().proposals(false).unwrap().remove(0);
    let dismissed = lab.engine.dismiss_proposal(p.id).await.unwrap();
    assert_eq!(dismissed.status, ProposalStatus::Dismissed);
    assert_eq!(lab.state("nas").await, PowerState::On);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_dependency_still_used_is_kept_with_the_reason() {
    let text = all_on(&fast(HOMELAB)).replace(
        "name = \"paperless\"\nkind = \"container\"\nparent = \"vm-docker\"\ndepends_on = [\"postgres\"]",
        "name = \"paperless\"\nkind = \"container\"\nparent = \"vm-docker\"\ndepends_on = [\"postgres\", \"nas\"]",
    );
    let lab = Lab::new(&text, 4);
    let (id, events) = lab.run(Action::Stop, "lxc-jellyfin").await;
    let kept: Vec<(String, String)> = events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::NodeKept { name, reason, cascade, .. } if *cascade == id => Some((name.clone(), reason.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(kept, [("nas".to_owned(), "used by paperless".to_owned())]);
    assert_eq!(lab.state("nas").await, PowerState::On);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_replay_from_any_event_even_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("w.db");
    let key = MasterKey::generate();
    let all = {
        let lab = Lab::on(Store::open(&db, key.clone()).unwrap(), &fast(HOMELAB), EngineConfig::default());
        lab.run(Action::Start, "lxc-jellyfin").await;
        lab.run(Action::Start, "paperless").await;
        lab.engine.store().events_after(None, None, 10_000).unwrap()
    };
    let middle = all[all.len() / 2].id;
    let store = Store::open(&db, key).unwrap();
    let engine = Engine::new(store, Registry::builtin(), EngineConfig::default()).unwrap();
    let replayed: Vec<Event> =
        engine.subscribe(Some(middle)).take(all.len() - all.len() / 2 - 1).map(Result::unwrap).collect().await;
    assert_eq!(replayed, all[all.len() / 2 + 1..]);
    // Per-node history through the store.
    let nas = engine.store().topology().unwrap().by_name("nas").unwrap().id;
    let nas_events = engine.store().events_after(None, Some(nas), 100).unwrap();
    assert!(!nas_events.is_empty() && nas_events.iter().all(|e| e.kind.node() == Some(nas)));
}

#[test]
fn a_crash_leaves_no_cascade_in_progress_forever() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("w.db");
    let key = MasterKey::generate();
    let slow = HOMELAB.replace("start_delay_ms = 3000", "start_delay_ms = 60000");
    let id = {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let id = rt.block_on(async {
            let lab = Lab::on(Store::open(&db, key.clone()).unwrap(), &slow, EngineConfig::default());
            let mut events = lab.engine.subscribe(None);
            let record = lab.engine.start(lab.id("lxc-jellyfin")).await.unwrap();
            while let Some(e) = events.next().await {
                if matches!(e.unwrap().kind, EventKind::CascadeProgress { .. }) {
                    break;
                }
            }
            record.id
        });
        // The process dies: no cleanup runs.
        rt.shutdown_background();
        id
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = Store::open(&db, key).unwrap();
        assert_eq!(store.cascade(id).unwrap().unwrap().status, CascadeStatus::InProgress);
        let config = EngineConfig { shutdown_grace: Duration::from_millis(100), ..EngineConfig::default() };
        let engine = Engine::new(store, Registry::builtin(), config).unwrap();
        let record = engine.store().cascade(id).unwrap().unwrap();
        assert_eq!(record.status, CascadeStatus::Interrupted);
        assert_eq!(record.error_code.map(|c| c.as_str()), Some("INTERRUPTED"));
        let steps = engine.store().steps(id).unwrap();
        assert!(steps.iter().all(|s| matches!(s.status, StepStatus::Interrupted | StepStatus::Cancelled)), "{steps:?}");
        let last = engine.store().events_after(None, None, 10_000).unwrap().pop().unwrap();
        assert!(matches!(last.kind, EventKind::CascadeError { status: CascadeStatus::Interrupted, cascade, .. } if cascade == id));
        let rerun = engine.rerun(id).await.unwrap();
        assert_eq!(rerun.rerun_of, Some(id));
        assert_eq!(rerun.status, CascadeStatus::Pending);
        engine.shutdown().await;
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_leaves_nothing_in_progress() {
    let config = EngineConfig { shutdown_grace: Duration::from_millis(300), ..EngineConfig::default() };
    let store = crate::support::store(MasterKey::generate());
    let lab = Lab::on(store, &HOMELAB.replace("start_delay_ms = 3000", "start_delay_ms = 60000"), config);
    let record = lab.engine.start(lab.id("sandbox")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    // The in-flight machine starts take 60 s: the grace period runs out and what is left
    // is marked interrupted.
    tokio::time::timeout(Duration::from_secs(10), lab.engine.shutdown()).await.expect("shutdown is bounded");
    let r = lab.engine.store().cascade(record.id).unwrap().unwrap();
    assert_eq!(r.status, CascadeStatus::Interrupted, "{r:?}");
    assert_eq!(lab.engine.start(lab.id("nas")).await.unwrap_err().code().as_str(), "SHUTTING_DOWN");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_writes_nothing_and_nodes_are_addressable_by_name() {
    let lab = Lab::new(&fast(HOMELAB), 4);
    let before = lab.engine.store().last_event_id().unwrap();
    // Every node is off in the file but its first observation is a change: a dry run that
    // journaled what it saw would append status-change events.
    let plan = lab.engine.plan("lxc-jellyfin", Action::Start).await.unwrap();
    assert_eq!(plan.target, lab.id("lxc-jellyfin"));
    assert!(!plan.steps.is_empty());
    assert_eq!(lab.engine.store().last_event_id().unwrap(), before, "the dry run journaled something");
    assert_eq!(lab.engine.store().cascades(&Default::default()).unwrap().len(), 0);

    // Requests take a name, a `node:N` id as text, or a NodeId.
    let by_name = lab.engine.start("nas").await.unwrap();
    assert_eq!(by_name.node, lab.id("nas"));
    lab.engine.wait(by_name.id).await.unwrap();
    let by_text = lab.engine.stop(lab.id("nas").to_string()).await.unwrap();
    assert_eq!(by_text.node, lab.id("nas"));
    lab.engine.wait(by_text.id).await.unwrap();
    let unknown = lab.engine.start("no-such-node").await.unwrap_err();
    assert_eq!(unknown.code().as_str(), "NOT_FOUND");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unregistered_connector_type_is_refused_when_it_enters() {
    let topology = crate::support::parse(&fast(HOMELAB));
    // At Engine::new: the store names `sim`, the registry has no such connector.
    let store = crate::support::store(MasterKey::generate());
    store.import(&topology, Origin::Operator).unwrap();
    let err = Engine::new(store, Registry::new(), EngineConfig::default()).unwrap_err();
    assert_eq!(err.code().as_str(), "VALIDATION");
    assert!(err.to_string().contains("type `sim`"), "{err}");

    // At import through the engine: nothing is written.
    let lab = Lab::new(&fast(HOMELAB), 4);
    let mut with_plug = topology.clone();
    let plug = wakehub_core::model::NodeSpec::new(
        "plug",
        wakehub_core::model::Kind::Physical,
        wakehub_core::model::ConnectorConfig::new("plug"),
    );
    with_plug.add_node(plug.clone(), None).unwrap();
    let err = lab.engine.import(with_plug, Origin::Operator).await.unwrap_err();
    assert_eq!(err.code().as_str(), "VALIDATION");
    assert!(lab.engine.store().topology().unwrap().by_name("plug").is_none());

    // At a request: a node added behind the engine's back is refused at once, not by a
    // failing step.
    let id = lab.engine.store().add_node(plug, None).unwrap();
    let err = lab.engine.start(id).await.unwrap_err();
    assert_eq!(err.code().as_str(), "VALIDATION");
    assert!(err.to_string().contains("`plug`: no connector of type `plug`"), "{err}");
    assert_eq!(lab.engine.store().cascades(&Default::default()).unwrap().len(), 0);

    // A plugin left out of this run is not fatal: the engine starts, the node is unserved,
    // and powering it (or what needs it) says which option loads it.
    let store = crate::support::store(MasterKey::generate());
    let mut with_plugin = topology.clone();
    let plugin = wakehub_core::model::NodeSpec::new(
        "desk-plug",
        wakehub_core::model::Kind::Physical,
        wakehub_core::model::ConnectorConfig::new("plugin:shelly"),
    );
    with_plugin.add_node(plugin, None).unwrap();
    store.import(&with_plugin, Origin::Operator).unwrap();
    let engine = Engine::new(store, Registry::builtin(), EngineConfig::default()).unwrap();
    let unserved = engine.unserved_nodes(&engine.store().topology().unwrap());
    assert_eq!(unserved, [("desk-plug".to_owned(), "plugin:shelly".to_owned())]);
    let err = engine.start("desk-plug").await.unwrap_err();
    assert_eq!(err.code().as_str(), "PLUGIN_NOT_LOADED");
    assert!(err.to_string().contains("--plugins"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_ends_after_shutdown_with_the_last_events() {
    let lab = Lab::new(&fast(HOMELAB), 4);
    let events = lab.engine.subscribe(None);
    let record = lab.engine.start("nas").await.unwrap();
    lab.engine.wait(record.id).await.unwrap();
    lab.engine.shutdown().await;
    let all: Vec<Event> = tokio::time::timeout(Duration::from_secs(10), events.map(|e| e.unwrap()).collect::<Vec<_>>())
        .await
        .expect("the subscription ends after shutdown");
    assert!(matches!(all.last().map(|e| &e.kind), Some(EventKind::CascadeComplete { .. })), "{all:?}");
}

mod follow;
mod promises;

/// The simulator, refusing the first `failures` starts of every node with `code`.
#[derive(Clone)]
struct Flaky {
    sim: Counting,
    failures: usize,
    code: wakehub_core::model::ErrorCode,
}

#[async_trait::async_trait]
impl Connector for Flaky {
    async fn status(&self, t: &Target) -> Result<PowerState, ConnectorError> {
        self.sim.status(t).await
    }
    async fn start(&self, t: &Target) -> Result<(), ConnectorError> {
        self.sim.bump(t.node, "attempt");
        if self.sim.count(t.node, "attempt") <= self.failures {
            return Err(ConnectorError::new(self.code, format!("{}: refused", t.name)));
        }
        self.sim.start(t).await
    }
    async fn stop(&self, t: &Target) -> Result<(), ConnectorError> {
        self.sim.stop(t).await
    }
    fn watch(&self, t: &Target) -> Option<futures::stream::BoxStream<'static, PowerState>> {
        self.sim.watch(t)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retryable_refusal_is_tried_again_a_bounded_number_of_times() {
    use wakehub_core::connector::POWER_ATTEMPTS;
    use wakehub_core::model::ErrorCode;
    let cases = [
        // Unreachable twice, then accepted: the step succeeds on the third attempt.
        (2, ErrorCode::Unreachable, CascadeStatus::Completed, 3),
        // Unreachable every time: it gives up after POWER_ATTEMPTS.
        (100, ErrorCode::Unreachable, CascadeStatus::Failed, POWER_ATTEMPTS as usize),
        // Not retryable: one attempt only.
        (100, ErrorCode::AuthFailed, CascadeStatus::Failed, 1),
    ];
    for (failures, code, expected, attempts) in cases {
        let store = crate::support::store(MasterKey::generate());
        store.import_toml(&fast(HOMELAB), &ParseOptions::operator()).unwrap();
        let flaky = Flaky { sim: Counting::default(), failures, code };
        let mut registry = Registry::new();
        registry.register("sim", flaky.clone());
        let engine = Engine::new(store, registry, EngineConfig::default()).unwrap();
        let nas = engine.store().topology().unwrap().by_name("nas").unwrap().id;
        let record = engine.start(nas).await.unwrap();
        engine.wait(record.id).await.unwrap();
        let record = engine.store().cascade(record.id).unwrap().unwrap();
        assert_eq!(record.status, expected, "{code:?} ×{failures}: {record:?}");
        assert_eq!(flaky.sim.count(nas, "attempt"), attempts, "{code:?} ×{failures}");
        if expected == CascadeStatus::Failed {
            assert_eq!(record.error_code, Some(code));
        }
    }
}
