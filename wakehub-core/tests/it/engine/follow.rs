//! An engine that follows another on a shared store: it runs nothing, gives its subscribers
//! what the leader journals (the same events, in the same order), shows what the leader
//! observed, and leads once asked to — its subscribers carrying on without a gap. (Taking
//! over from a killed leader, mid-cascade, is tested end to end in
//! `wakehub-graphql/tests/it/postgres.rs`.)

use super::*;
use wakehub_core::model::ErrorCode;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_publishes_what_the_leader_journals_then_leads() {
    let lab = Lab::new(&fast(HOMELAB), 4);
    let mut registry = Registry::new();
    registry.register("sim", lab.sim.clone());
    let follower = Engine::follower(lab.engine.store().clone(), registry, EngineConfig::default()).unwrap();
    assert!(!follower.is_leader() && lab.engine.is_leader());
    let from = lab.engine.store().last_event_id().unwrap();
    let followed = follower.subscribe(from);

    // It runs no work, and writes nothing.
    let jellyfin = lab.id("lxc-jellyfin");
    let refused = follower.request(jellyfin, Action::Start).await.unwrap_err();
    assert_eq!(refused.code(), ErrorCode::NotLeader);
    assert_eq!(lab.engine.store().last_event_id().unwrap(), from, "nothing journaled");

    // The leader's cascade reaches the follower's subscriber whole, in order.
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
