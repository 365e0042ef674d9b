//! An engine that follows another on a shared store: it runs nothing, gives its subscribers
//! what the leader journals (the same events, in the same order), shows what the leader
//! observed, and leads once asked to — its subscribers carrying on without a gap; the log of
//! a command the leader runs reaches a follower's clients from the command's record. (Taking
//! over from a killed leader, mid-cascade, is tested end to end in
//! `wakehub-graphql/tests/it/postgres.rs`.)

use super::*;
use wakehub_core::engine::Line;
use wakehub_core::model::ErrorCode;
use wakehub_core::store::{StackCommandKind, StackCommandStatus};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_publishes_what_the_leader_journals_then_leads() {
    let (lab, follower) = with_follower();
    assert!(!follower.is_leader() && lab.engine.is_leader());
    let from = lab.engine.store().last_event_id().unwrap();

    // It runs no work, and writes nothing.
    let jellyfin = lab.id("lxc-jellyfin");
    let refused = follower.request(jellyfin, Action::Start).await.unwrap_err();
    assert_eq!(refused.code(), ErrorCode::NotLeader);
    assert_eq!(lab.engine.store().last_event_id().unwrap(), from, "nothing journaled");

    // The leader's cascade reaches the follower's subscriber whole, in order; while it
    // runs, the follower lists it as running (from the journal).
    let mut progress = lab.engine.subscribe(from);
    let slow = lab.engine.request(lab.id("vm-ubuntu"), Action::Start).await.unwrap();
    let mut seen_running = false;
    loop {
        // Read before the leader's own list: while the leader still runs it, the follower
        // had it.
        let listed = follower.running_now().await.unwrap();
        if !lab.engine.running().contains(&slow.id) {
            break;
        }
        assert_eq!(listed, [slow.id]);
        seen_running = true;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(seen_running, "the cascade ended before it could be listed");
    let _ = through(&mut progress, slow.id).await;
    assert_eq!(follower.running_now().await.unwrap(), []);
    let from = lab.engine.store().last_event_id().unwrap();
    let followed = follower.subscribe(from);
    let (id, events) = lab.run(Action::Start, "lxc-jellyfin").await;
    let mut followed = followed;
    let seen = through(&mut followed, id).await;
    assert_eq!(seen, events);
    // What the leader observed (journaled beside the cascade's end, maybe just after it).
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while follower.last_seen().get(&jellyfin) != Some(&PowerState::On) {
        assert!(std::time::Instant::now() < deadline, "{:?}", follower.last_seen());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(follower.last_seen().get(&jellyfin), lab.engine.last_seen().get(&jellyfin));
    assert_eq!(follower.cascade(id).await.unwrap().unwrap().status, CascadeStatus::Completed);

    // It leads: nothing was left unfinished; it runs work, and the same subscriber gets it.
    assert_eq!(follower.lead().await.unwrap(), 0);
    assert!(follower.is_leader());
    let record = follower.request(jellyfin, Action::Stop).await.unwrap();
    let after = through(&mut followed, record.id).await;
    assert!(after.first().unwrap().id > events.last().unwrap().id, "{after:?}");
    assert!(after.windows(2).all(|w| w[0].id < w[1].id));
    assert!(matches!(after.last().unwrap().kind, EventKind::CascadeComplete { .. }), "{after:?}");
    assert_eq!(lab.state("lxc-jellyfin").await, PowerState::Off);
}

/// A lab and an engine following its own on the same store.
fn with_follower() -> (Lab, Engine) {
    let lab = Lab::new(&fast(HOMELAB), 4);
    let mut registry = Registry::new();
    registry.register("sim", lab.sim.clone());
    let follower = Engine::follower(lab.engine.store().clone(), registry, EngineConfig::default()).unwrap();
    (lab, follower)
}

/// An apply of stack `sandbox` queued, as the leader's API queues it.
fn queue_apply(lab: &Lab) -> wakehub_core::store::StackCommand {
    let stack = lab.id("sandbox");
    let store = lab.engine.store();
    store.journal(|tx| tx.queue_stack_command(stack, "sandbox", StackCommandKind::Apply, Some(1), "test", 1)).unwrap().0
}

/// `sandbox`'s queued command claimed, as the leader's driver claims it (a 3 ms lease).
fn claim(lab: &Lab) {
    let stack = lab.id("sandbox");
    lab.engine.store().journal(|tx| tx.claim_stack_command(stack, "sandbox", 2, 3)).unwrap().0.expect("claimed");
}

/// The next line of a followed log (within 5 s).
async fn next_line(rx: &mut tokio::sync::broadcast::Receiver<Line<StackCommandStatus>>) -> Line<StackCommandStatus> {
    tokio::time::timeout(Duration::from_secs(5), rx.recv()).await.expect("a line within 5 s").unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_streams_the_log_of_a_stack_command_the_leader_runs() {
    let (lab, follower) = with_follower();
    // The leader's driver, through the shared store: queue, claim, say, end.
    let store = lab.engine.store();
    let queued = queue_apply(&lab);

    // Followed while it waits: nothing said yet; then each line the leader keeps, in order.
    let (so_far, mut rx) = follower.stack_log(&queued).await.unwrap().expect("a waiting command is followed");
    assert!(so_far.is_empty(), "{so_far:?}");
    claim(&lab);
    store.append_stack_log(queued.id, "pulling images").unwrap();
    store.append_stack_log(queued.id, "creating web").unwrap();
    assert_eq!(next_line(&mut rx).await, Line::Line("pulling images".into()));
    assert_eq!(next_line(&mut rx).await, Line::Line("creating web".into()));

    // Joining while it runs: what it said so far, then what follows.
    let running = store.stack_command(queued.id).unwrap().unwrap();
    let (so_far, mut late) = follower.stack_log(&running).await.unwrap().expect("a running command is followed");
    assert_eq!(so_far, ["pulling images", "creating web"]);
    store.append_stack_log(queued.id, "web healthy").unwrap();
    assert_eq!(next_line(&mut rx).await, Line::Line("web healthy".into()));
    assert_eq!(next_line(&mut late).await, Line::Line("web healthy".into()));

    // Its end reaches both (here the leader died and its lease ran out: interrupted).
    store.journal(|tx| tx.reclaim_stack_commands(i64::MAX, &|_| "sandbox".into())).unwrap();
    assert_eq!(next_line(&mut rx).await, Line::End(StackCommandStatus::Failed));
    assert_eq!(next_line(&mut late).await, Line::End(StackCommandStatus::Failed));
    // Over: read whole from its record, not followed.
    let over = store.stack_command(queued.id).unwrap().unwrap();
    assert!(follower.stack_log(&over).await.unwrap().is_none());
    assert_eq!(over.log, "pulling images\ncreating web\nweb healthy\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_log_reaches_a_slow_reader_on_a_follower_whole() {
    let (lab, follower) = with_follower();
    let store = lab.engine.store();
    let queued = queue_apply(&lab);
    let (_, mut rx) = follower.stack_log(&queued).await.unwrap().expect("followed");
    claim(&lab);
    // Three times what the channel holds, said between two polls, and the end.
    for i in 0..3000 {
        store.append_stack_log(queued.id, &format!("line {i}")).unwrap();
    }
    store.journal(|tx| tx.reclaim_stack_commands(i64::MAX, &|_| "sandbox".into())).unwrap();
    // The reader comes late: the follower has read it all meanwhile.
    tokio::time::sleep(Duration::from_millis(800)).await;
    for i in 0..3000 {
        assert_eq!(next_line(&mut rx).await, Line::Line(format!("line {i}")));
    }
    assert_eq!(next_line(&mut rx).await, Line::End(StackCommandStatus::Failed));
}
