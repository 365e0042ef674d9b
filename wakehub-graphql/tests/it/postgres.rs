//! Several `wakehub serve` on one PostgreSQL database (a private server the test starts):
//! one runs the engine and serves, the others stand by; when it is killed one of them takes
//! over within the lease; a cascade it was running ends interrupted (never run again by
//! another, never left running); the journal stays one sequence, readable from the new one;
//! and a database restart mid-cascade leaves nothing stuck.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::{Postgres, Server, Standby, bin, homelab_faster};

const LEASE: &str = "3s";

/// Waits until `f` holds (at most `within`).
async fn until(within: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !f() {
        assert!(Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn events(s: &Server) -> Vec<(i64, String, Option<String>)> {
    let d = s.gql("{ events(first: 500) { edges { node { id kind cascade } } } }", json!({})).await;
    d["events"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let n = &e["node"];
            (
                n["id"].as_str().unwrap().rsplit([':', '-']).next().unwrap().parse().unwrap(),
                n["kind"].as_str().unwrap().to_owned(),
                n["cascade"].as_str().map(str::to_owned),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_share_one_database_and_one_takes_over_from_a_killed_one() {
    let pg = Postgres::start();
    let url = pg.database("lab");
    // The instances share a master key: one directory for WakeHub's own files.
    let home = tempfile::tempdir().unwrap();
    let home = home.path().display().to_string();
    let env = [("XDG_DATA_HOME", home.as_str())];
    let out = std::process::Command::new(bin())
        .args(["token", "create", "tests", "--role", "admin", "--db", &url])
        .envs(env)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();

    let lab = homelab_faster(2);
    let mut a = Server::on_postgres(&url, Some(&lab), &["--lease", LEASE], &env, &token);
    let mut standbys: Vec<Standby> =
        (0..2).map(|_| Server::standby(&url, None, &["--lease", LEASE], &env, &token)).collect();
    until(Duration::from_secs(20), "the other two stand by", || {
        standbys.iter().all(|s| s.log().contains("standing by"))
    })
    .await;
    assert!(!standbys.iter_mut().any(Standby::is_active), "one instance serves at a time");

    // A start cascade on the active one, killed mid-way (after its first step).
    let id = a.gql("mutation { startNode(id: \"lxc-jellyfin\") { id } }", json!({})).await["startNode"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let d = a.gql("query($id: ID!) { cascade(id: $id) { currentStep status } }", json!({"id": id})).await;
        if d["cascade"]["currentStep"].as_i64().unwrap() >= 1 {
            assert_eq!(d["cascade"]["status"], "IN_PROGRESS", "{d}");
            break;
        }
        assert!(Instant::now() < deadline, "no step done: {d}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let before = events(&a).await;
    a.kill9();
    let killed = Instant::now();

    // One standby takes over within the lease (and some start-up); the other stays by.
    let mut active = None;
    until(Duration::from_secs(15), "a standby takes over", || {
        active = standbys.iter_mut().position(Standby::is_active);
        active.is_some()
    })
    .await;
    let took = killed.elapsed();
    let b = standbys.remove(active.unwrap()).active(Duration::from_secs(5));
    assert!(took < Duration::from_secs(3 + 4), "took over after {took:?}");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!standbys[0].is_active(), "the third still stands by");

    // The killed cascade ended interrupted, by the new instance, and nothing of it ran again.
    assert_eq!(b.wait_cascade(&id).await, "INTERRUPTED");
    let after = events(&b).await;
    assert!(after.windows(2).all(|w| w[0].0 < w[1].0), "one sequence of ids: {after:?}");
    assert_eq!(&after[..before.len()], &before[..], "the journal of the killed instance, whole");
    let later: Vec<&str> =
        after[before.len()..].iter().filter(|e| e.2.as_deref() == Some(id.as_str())).map(|e| e.1.as_str()).collect();
    assert_eq!(later, ["cascade-error"], "only its end, nothing run again");

    // The new instance runs cascades to their end.
    let again = b.gql("mutation { startNode(id: \"lxc-jellyfin\") { id } }", json!({})).await["startNode"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(b.wait_cascade(&again).await, "COMPLETED");
    assert_eq!(b.gql("{ node(id: \"lxc-jellyfin\") { status } }", json!({})).await["node"]["status"], "ON");

    // The database restarts mid-cascade: the cascade ends (whatever its end), nothing is
    // left running, and the instance serves on.
    let stop = b.gql("mutation { stopNode(id: \"lxc-jellyfin\") { id } }", json!({})).await["stopNode"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    pg.restart();
    let end = b.wait_cascade(&stop).await;
    assert!(["COMPLETED", "FAILED", "INTERRUPTED"].contains(&end.as_str()), "{end}");
    let d = b.gql("{ cascades(first: 10) { edges { node { status } } } }", json!({})).await;
    assert!(
        d["cascades"]["edges"].as_array().unwrap().iter().all(|e| e["node"]["status"] != "IN_PROGRESS"),
        "{d}\n{}",
        b.log()
    );
    let last = b.gql("mutation { stopNode(id: \"lxc-jellyfin\") { id } }", json!({})).await;
    let last = last["stopNode"]["id"].as_str().unwrap().to_owned();
    assert_eq!(b.wait_cascade(&last).await, "COMPLETED", "{}", b.log());
}
