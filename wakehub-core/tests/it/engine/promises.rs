//! The engine's promises under concurrency and failure: panics, cancels, shutdowns, races
//! between starts, stops and proposals, run-time keeps, emptied hosts, retention.

use super::*;

/// A connector that panics: in `status` for nodes named `bomb-status`, in `start` for nodes
/// named `bomb-start` (which otherwise report `off`); other nodes are the simulator's.
#[derive(Clone, Default)]
struct Bomb(SimConnector);

#[async_trait::async_trait]
impl Connector for Bomb {
    async fn status(&self, t: &Target) -> Result<PowerState, ConnectorError> {
        match t.name.as_str() {
            "bomb-status" => panic!("status exploded"),
            "bomb-start" => Ok(PowerState::Off),
            _ => self.0.status(t).await,
        }
    }
    async fn start(&self, t: &Target) -> Result<(), ConnectorError> {
        if t.name == "bomb-start" {
            panic!("start exploded");
        }
        self.0.start(t).await
    }
    async fn stop(&self, t: &Target) -> Result<(), ConnectorError> {
        self.0.stop(t).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_connector_fails_only_what_needs_it() {
    let text = "[[node]]\nname = \"a\"\nkind = \"physical\"\n[node.connector]\ntype = \"boom\"\ninitially = \"off\"\nstart_delay_ms = 10\n\n\
                [[node]]\nname = \"bomb-status\"\nkind = \"physical\"\n[node.connector]\ntype = \"boom\"\n\n\
                [[node]]\nname = \"bomb-start\"\nkind = \"physical\"\n[node.connector]\ntype = \"boom\"\n";
    let store = crate::support::store(MasterKey::generate());
    store.import_toml(text, &ParseOptions::operator()).unwrap();
    let mut registry = Registry::new();
    registry.register("boom", Bomb::default());
    let engine = Engine::new(store, registry, EngineConfig::default()).unwrap();

    // Observing everything, and the dry run, survive a panicking status.
    let t = engine.store().topology().unwrap();
    let states = engine.observe(&t).await;
    assert_eq!(states[&t.by_name("bomb-status").unwrap().id], PowerState::Unknown);
    assert_eq!(states[&t.by_name("a").unwrap().id], PowerState::Off);
    engine.plan("a", Action::Start).await.unwrap();

    // A start whose connector panics fails with INTERNAL, and the node is free again.
    for _ in 0..2 {
        let r = engine.start("bomb-start").await.expect("not stuck in CASCADE_IN_PROGRESS");
        let done = tokio::time::timeout(Duration::from_secs(10), engine.wait(r.id)).await.unwrap().unwrap();
        assert_eq!(done.status, CascadeStatus::Failed, "{done:?}");
        assert_eq!(done.error_code.map(|c| c.as_str()), Some("INTERNAL"), "{done:?}");
        assert!(engine.running().is_empty());
    }
    // Everything else still works.
    let r = engine.start("a").await.unwrap();
    assert_eq!(engine.wait(r.id).await.unwrap().status, CascadeStatus::Completed);
}

/// The simulator behind a gate: `status` waits until the gate opens.
#[derive(Clone)]
struct Gated {
    inner: Counting,
    open: tokio::sync::watch::Receiver<bool>,
}

#[async_trait::async_trait]
impl Connector for Gated {
    async fn status(&self, t: &Target) -> Result<PowerState, ConnectorError> {
        let mut open = self.open.clone();
        let _ = open.wait_for(|o| *o).await;
        self.inner.status(t).await
    }
    async fn start(&self, t: &Target) -> Result<(), ConnectorError> {
        self.inner.start(t).await
    }
    async fn stop(&self, t: &Target) -> Result<(), ConnectorError> {
        self.inner.stop(t).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_cascade_that_has_not_begun_launches_nothing() {
    let (gate, open) = tokio::sync::watch::channel(false);
    let store = crate::support::store(MasterKey::generate());
    store.import_toml(&fast(HOMELAB), &ParseOptions::operator()).unwrap();
    let counting = Counting::default();
    let mut registry = Registry::new();
    registry.register("sim", Gated { inner: counting.clone(), open });
    let engine = Engine::new(store, registry, EngineConfig::default()).unwrap();
    let nas = engine.store().topology().unwrap().by_name("nas").unwrap().id;
    // The cascade is accepted, then blocks observing the nodes; cancel it there.
    let record = engine.start("nas").await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    engine.cancel(record.id).unwrap();
    gate.send_replace(true);
    let done = tokio::time::timeout(Duration::from_secs(10), engine.wait(record.id)).await.unwrap().unwrap();
    assert_eq!(done.status, CascadeStatus::Cancelled, "{done:?}");
    assert_eq!(counting.count(nas, "start"), 0, "a cancelled cascade launched a power operation");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_never_gives_a_cascade_two_ends() {
    let config = EngineConfig { shutdown_grace: Duration::from_millis(100), ..EngineConfig::default() };
    let store = crate::support::store(MasterKey::generate());
    // nas boots in 600 ms: longer than the grace, shorter than the test.
    let lab = Lab::on(store, &HOMELAB.replace("start_delay_ms = 2500", "start_delay_ms = 600"), config);
    let events = lab.engine.subscribe(lab.engine.store().last_event_id().unwrap());
    let record = lab.engine.start(lab.id("nas")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    lab.engine.shutdown().await;
    assert_eq!(lab.engine.store().cascade(record.id).unwrap().unwrap().status, CascadeStatus::Interrupted);
    // The step in flight ends after the grace; the cascade's own end must not follow.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(lab.engine.store().cascade(record.id).unwrap().unwrap().status, CascadeStatus::Interrupted);
    let all: Vec<Event> = lab.engine.store().events_after(None, None, 10_000).unwrap();
    let ends = all
        .iter()
        .filter(|e| matches!(&e.kind, EventKind::CascadeComplete { cascade, .. } | EventKind::CascadeError { cascade, .. } if *cascade == record.id))
        .count();
    assert_eq!(ends, 1, "{all:?}");
    drop(events);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_supersedes_the_running_stop_of_the_same_node() {
    let lab = Lab::new(&all_on(&HOMELAB.replace("stop_delay_ms = 2000", "stop_delay_ms = 400")), 4);
    let stop = lab.engine.stop(lab.id("nas")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let start = lab.engine.start(lab.id("nas")).await.expect("a start supersedes the stop, it is not refused");
    let start = tokio::time::timeout(Duration::from_secs(10), lab.engine.wait(start.id)).await.unwrap().unwrap();
    assert_eq!(start.status, CascadeStatus::Completed, "{start:?}");
    lab.engine.wait(stop.id).await.unwrap();
    assert_eq!(lab.state("nas").await, PowerState::On, "the most recent intent wins");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_proposal_is_confirmed_or_dismissed_never_both() {
    for _ in 0..5 {
        let lab = Lab::new(&all_on(&fast(HOMELAB)), 4);
        let (_, _) = lab.run(Action::Stop, "lxc-jellyfin").await;
        let p = lab.engine.store().proposals(false).unwrap().remove(0);
        let (confirm, dismiss) = tokio::join!(lab.engine.confirm_proposal(p.id), lab.engine.dismiss_proposal(p.id));
        assert!(confirm.is_ok() != dismiss.is_ok(), "exactly one decision wins: {confirm:?} / {dismiss:?}");
        let status = lab.engine.store().proposal(p.id).unwrap().unwrap().status;
        assert_eq!(status, if confirm.is_ok() { ProposalStatus::Confirmed } else { ProposalStatus::Dismissed });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_already_on_is_up_only_once_its_probe_passes() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    // `web` is already on (its connector says so) but does not serve yet.
    let text = format!(
        "[[node]]\nname = \"web\"\nkind = \"physical\"\nreadiness = {{ tcp = \"127.0.0.1:{port}\" }}\nstart_timeout = \"10s\"\n[node.connector]\ntype = \"sim\"\ninitially = \"on\"\n\n\
         [[node]]\nname = \"client\"\nkind = \"physical\"\ndepends_on = [\"web\"]\n[node.connector]\ntype = \"sim\"\n"
    );
    let lab = Lab::new(&text, 4);
    let plan = lab.engine.plan("client", Action::Start).await.unwrap();
    assert!(plan.steps.iter().any(|s| s.node == lab.id("web")), "web gets a step to wait for its probe: {plan:?}");
    let record = lab.engine.start("client").await.unwrap();
    // A second cascade needing web, while the first waits on web's probe, waits too.
    let second = lab.engine.start("web").await.unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(lab.sim.count(lab.id("client"), "start"), 0, "client started before web was ready");
    assert_eq!(lab.sim.count(lab.id("web"), "start"), 0, "web is on: it is probed, not started again");
    assert!(lab.engine.store().cascade(second.id).unwrap().unwrap().status == CascadeStatus::InProgress);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    let done = tokio::time::timeout(Duration::from_secs(10), lab.engine.wait(record.id)).await.unwrap().unwrap();
    assert_eq!(done.status, CascadeStatus::Completed, "{done:?}");
    assert_eq!(lab.engine.wait(second.id).await.unwrap().status, CascadeStatus::Completed);
    drop(listener);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_kept_at_run_time_keeps_what_it_depends_on_and_every_end_says_its_action() {
    let node = |name: &str, deps: &str, initially: &str, stop_ms: u64| {
        format!(
            "[[node]]\nname = \"{name}\"\nkind = \"physical\"\nconfirm_auto_shutdown = false\ndepends_on = [{deps}]\n\
             [node.connector]\ntype = \"sim\"\ninitially = \"{initially}\"\nstop_delay_ms = {stop_ms}\nstart_delay_ms = 0\n\n"
        )
    };
    let text = node("m", "", "on", 10)
        + &node("n", "\"m\"", "on", 10)
        + &node("x", "\"n\"", "on", 600)
        + &node("w", "\"n\"", "off", 10);
    let lab = Lab::new(&text, 4);
    let after = lab.engine.store().last_event_id().unwrap();
    let events = lab.engine.subscribe(after);
    let record = lab.engine.stop(lab.id("x")).await.unwrap();
    // While x stops, w is turned on outside WakeHub, and the engine sees it.
    tokio::time::sleep(Duration::from_millis(150)).await;
    let w = Target::of(&lab.topology, lab.id("w")).unwrap();
    lab.sim.sim.start(&w).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    lab.engine.observe(&lab.topology).await;
    let events = until_end(events, record.id).await;

    assert_eq!(lab.state("x").await, PowerState::Off);
    assert_eq!(lab.state("n").await, PowerState::On, "n is used by w now");
    assert_eq!(lab.state("m").await, PowerState::On, "m is used by n, which was kept");
    let kinds: Vec<&str> =
        events.iter().filter(|e| e.kind.cascade() == Some(record.id)).map(|e| e.kind.name()).collect();
    assert_eq!(kinds.first(), Some(&"cascade-planned"), "{kinds:?}");
    match &events.iter().find(|e| e.kind.name() == "cascade-planned").unwrap().kind {
        EventKind::CascadePlanned { action, steps, .. } => {
            assert_eq!(*action, Action::Stop);
            let names: Vec<&str> = steps.iter().map(|s| s.name.as_str()).collect();
            assert_eq!(names, ["x", "n", "m"], "{steps:?}");
        }
        other => panic!("{other:?}"),
    }
    let kept: Vec<(String, String)> = events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::NodeKept { name, reason, cascade, .. } if *cascade == record.id => {
                Some((name.clone(), reason.clone()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        kept,
        [("n".to_owned(), "kept: now used by w".to_owned()), ("m".to_owned(), "kept: now used by n".to_owned())]
    );
    assert!(
        matches!(events.last().unwrap().kind, EventKind::CascadeComplete { action: Action::Stop, .. }),
        "{:?}",
        events.last()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_a_stop_leaves_empty_is_proposed_or_stopped_when_it_opts_in() {
    // machine2 runs lxc-jellyfin, lxc-cloudflared and vm-homeassistant; only jellyfin is on.
    let text = fast(HOMELAB).replace("initially = \"off\"", "initially = \"on\"");
    let only_jellyfin = |text: &str| {
        let mut t = text.to_owned();
        for guest in ["lxc-cloudflared", "vm-homeassistant"] {
            let at = t.find(&format!("name = \"{guest}\"")).unwrap();
            let on = t[at..].find("initially = \"on\"").unwrap() + at;
            t.replace_range(on..on + "initially = \"on\"".len(), "initially = \"off\"");
        }
        t
    };
    let lab = Lab::new(&only_jellyfin(&text), 4);
    let (id, events) = lab.run(Action::Stop, "lxc-jellyfin").await;
    let proposed = proposed_by(&events, id);
    assert!(
        proposed
            .contains(&("machine2".to_owned(), "no running guest and no user left; stop_when_empty is off".to_owned())),
        "{proposed:?}"
    );
    assert_eq!(lab.state("machine2").await, PowerState::On, "a proposal stops nothing by itself");

    // Opted in: the emptied machine is stopped by the same cascade.
    let opted = only_jellyfin(&text).replace(
        "name = \"machine2\"\nkind = \"physical\"\n",
        "name = \"machine2\"\nkind = \"physical\"\nstop_when_empty = true\n",
    );
    assert!(opted.contains("stop_when_empty = true"));
    let lab = Lab::new(&opted, 4);
    let (id, events) = lab.run(Action::Stop, "lxc-jellyfin").await;
    assert!(matches!(events.last().unwrap().kind, EventKind::CascadeComplete { .. }));
    assert_eq!(lab.state("machine2").await, PowerState::Off, "an emptied host that opts in is stopped");
    let steps = lab.engine.store().steps(id).unwrap();
    assert!(steps.iter().any(|s| s.node_name == "machine2" && s.status == StepStatus::Done), "{steps:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_concurrent_stops_of_the_last_users_of_a_dependency_do_not_keep_it_for_ever() {
    let node = |name: &str, deps: &str, confirm: bool| {
        format!(
            "[[node]]\nname = \"{name}\"\nkind = \"physical\"\nconfirm_auto_shutdown = {confirm}\ndepends_on = [{deps}]\n\
             [node.connector]\ntype = \"sim\"\ninitially = \"on\"\nstop_delay_ms = 300\n\n"
        )
    };
    for confirm in [false, true] {
        let text = node("n", "", confirm) + &node("a", "\"n\"", false) + &node("b", "\"n\"", false);
        let lab = Lab::new(&text, 4);
        let (a, b) = tokio::join!(lab.engine.stop(lab.id("a")), lab.engine.stop(lab.id("b")));
        let (a, b) = (a.unwrap(), b.unwrap());
        lab.engine.wait(a.id).await.unwrap();
        lab.engine.wait(b.id).await.unwrap();
        if confirm {
            // Asks for confirmation: proposed, not kept for ever.
            let p = lab.engine.store().proposals(false).unwrap();
            assert_eq!(p.iter().map(|p| p.node_name.as_str()).collect::<Vec<_>>(), ["n"], "{p:?}");
        } else {
            // Stopped by a follow-up cascade once both users are down.
            let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
            while lab.state("n").await != PowerState::Off {
                assert!(tokio::time::Instant::now() < deadline, "n is kept on for ever");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_from_before_the_retention_gets_a_clear_code() {
    let lab = Lab::new(&fast(HOMELAB), 4);
    let r = lab.engine.start("nas").await.unwrap();
    lab.engine.wait(r.id).await.unwrap();
    let store = lab.engine.store();
    let last = store.last_event_id().unwrap().unwrap();
    let far_future = i64::MAX;
    assert!(store.prune_events(far_future).unwrap() > 0);
    assert_eq!(store.events_pruned_through().unwrap(), Some(last));
    // Resuming from before the horizon would miss events: refused with its code.
    let mut early = lab.engine.subscribe(Some(wakehub_core::model::EventId::new(last.get() - 1)));
    let err = early.next().await.unwrap().unwrap_err();
    assert_eq!(err.code().as_str(), "JOURNAL_PRUNED", "{err}");
    assert!(early.next().await.is_none(), "the stream ends after the error");
    // Resuming from the horizon misses nothing: it follows new events.
    let mut ok = lab.engine.subscribe(Some(last));
    let r = lab.engine.stop("nas").await.unwrap();
    let first = tokio::time::timeout(Duration::from_secs(10), ok.next()).await.unwrap().unwrap().unwrap();
    assert!(first.id > last);
    lab.engine.wait(r.id).await.unwrap();
    // Ids are never reused after a prune.
    assert!(store.last_event_id().unwrap().unwrap() > last);
}

/// Steps do not wait for their journal writes (the writer commits them in groups), yet
/// every event a subscriber receives is already in the journal, events arrive in id order,
/// and each cascade's progress counts its finished steps one by one up to its end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_published_event_is_already_journaled() {
    let mut text = String::new();
    for c in 0..3 {
        for i in 0..40 {
            text += &format!("[[node]]\nname = \"c{c}-n{i}\"\nkind = \"physical\"\n");
            if i > 0 {
                text += &format!("depends_on = [\"c{c}-n{}\"]\n", i - 1);
            }
            text += "[node.connector]\ntype = \"sim\"\ninitially = \"off\"\n\n";
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("lab.db"), MasterKey::generate()).unwrap();
    store.import_toml(&text, &ParseOptions::operator()).unwrap();
    let engine = Engine::new(store, Registry::builtin(), EngineConfig::default()).unwrap();
    let after = engine.store().last_event_id().unwrap();
    let mut live = engine.subscribe(after);
    let ids: Vec<CascadeId> = futures::future::join_all((0..3).map(|c| engine.start(format!("c{c}-n39"))))
        .await
        .into_iter()
        .map(|r| r.unwrap().id)
        .collect();
    let (mut last, mut ended, mut counts) = (after, 0, HashMap::<CascadeId, usize>::new());
    while ended < 3 {
        let event = tokio::time::timeout(Duration::from_secs(20), live.next()).await.unwrap().unwrap().unwrap();
        assert!(Some(event.id) > last, "{:?} after {last:?}", event.id);
        last = Some(event.id);
        let stored =
            engine.store().events_after(Some(wakehub_core::model::EventId::new(event.id.get() - 1)), None, 1).unwrap();
        assert_eq!(stored.first(), Some(&event), "published before it was written");
        match &event.kind {
            EventKind::CascadeProgress { cascade, step, current, .. } => {
                let count = counts.entry(*cascade).or_default();
                let finished =
                    matches!(current.step_status, StepStatus::Done | StepStatus::Skipped | StepStatus::Joined);
                assert_eq!(*step, *count + usize::from(finished), "{event:?}");
                *count = *step;
            }
            EventKind::CascadeComplete { cascade, .. } => {
                assert_eq!(counts.get(cascade), Some(&40), "the end comes after every step");
                ended += 1;
            }
            _ => {}
        }
    }
    for id in ids {
        let record = engine.store().cascade(id).unwrap().unwrap();
        assert_eq!((record.status, record.current_step, record.total_steps), (CascadeStatus::Completed, 40, 40));
    }
}
