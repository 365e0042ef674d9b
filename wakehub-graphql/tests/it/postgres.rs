//! Several `wakehub serve` on one PostgreSQL database (a private server the test starts):
//! every instance serves the API, one leads (runs the work) and the others follow (forward
//! mutations to it over HTTP or WebSocket, publish what it journals to their own
//! subscribers); when the leader is killed one of them takes over within the lease; a
//! cascade it was running ends interrupted (never run again by another, never left
//! running); every subscriber on every instance sees every event once, in id order; a
//! database restart mid-cascade leaves nothing stuck; and TLS to the database is verified.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{MODERN, Postgres, Server, Ws, bin, homelab_faster};

const LEASE: &str = "3s";

/// Waits until `f` holds (at most `within`).
async fn until(within: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !f() {
        assert!(Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// An event's number in its GraphQL id.
fn number(id: &Value) -> i64 {
    id.as_str().unwrap().rsplit([':', '-']).next().unwrap().parse().unwrap()
}

async fn events(s: &Server) -> Vec<(i64, String, Option<String>)> {
    let d = s.gql("{ events(first: 500) { edges { node { id kind cascade } } } }", json!({})).await;
    d["events"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let n = &e["node"];
            (number(&n["id"]), n["kind"].as_str().unwrap().to_owned(), n["cascade"].as_str().map(str::to_owned))
        })
        .collect()
}

/// A subscriber to every event after `after`, on `s`.
async fn subscriber(s: &Server, after: &Value) -> Ws {
    let mut ws = Ws::connect(&s.ws_url, MODERN, json!({"Authorization": format!("Bearer {}", s.token)})).await.unwrap();
    let query = "subscription($after: ID) { events(after: $after) { id kind } }";
    ws.subscribe("all", query, json!({"after": after})).await;
    ws
}

/// The event numbers a subscriber received until `last` (or nothing came for 10 s).
async fn received(ws: &mut Ws, last: i64) -> Vec<i64> {
    let mut got = Vec::new();
    while got.last() != Some(&last) {
        match ws.next_data(Duration::from_secs(10)).await {
            Some(d) => got.push(number(&d["data"]["events"]["id"])),
            None => break,
        }
    }
    got
}

/// Waits until `s` shows `node`'s status as `want` (a follower shows it once it read the
/// leader's journal).
async fn shows(s: &Server, node: &str, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let d = s.gql("query($n: ID!) { node(id: $n) { status } }", json!({"n": node})).await;
        if d["node"]["status"] == want {
            return;
        }
        assert!(Instant::now() < deadline, "{node} is not {want} on {}: {d}\n{}", s.url, s.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn start(s: &Server, node: &str) -> String {
    let d = s.gql("mutation($n: ID!) { startNode(id: $n) { id } }", json!({"n": node})).await;
    d["startNode"]["id"].as_str().unwrap().to_owned()
}

async fn stop(s: &Server, node: &str) -> String {
    let d = s.gql("mutation($n: ID!) { stopNode(id: $n) { id } }", json!({"n": node})).await;
    d["stopNode"]["id"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_serve_one_database_and_one_takes_over_from_a_killed_leader() {
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
    until(Duration::from_secs(20), "the first instance leads", || a.leads()).await;
    // The same configuration: a follower imports it only if it comes to lead.
    let b = Server::on_postgres(&url, Some(&lab), &["--lease", LEASE], &env, &token);
    let c = Server::on_postgres(&url, None, &["--lease", LEASE], &env, &token);
    let follows = |s: &Server| s.log().contains("another instance leads this database: following it");
    until(Duration::from_secs(20), "the other two follow", || follows(&b) && follows(&c)).await;
    assert!(!b.leads() && !c.leads(), "one instance leads at a time");
    // Each says which it is, and where the leader answers; so do their metrics.
    let role = "{ instance { leads sharedDatabase leader } }";
    assert_eq!(
        a.gql(role, json!({})).await["instance"],
        json!({"leads": true, "sharedDatabase": true, "leader": a.base})
    );
    assert_eq!(
        b.gql(role, json!({})).await["instance"],
        json!({"leads": false, "sharedDatabase": true, "leader": a.base})
    );
    for (s, leads) in [(&a, 1), (&b, 0)] {
        let metrics = reqwest::get(format!("{}/metrics", s.base)).await.unwrap().text().await.unwrap();
        assert!(metrics.contains(&format!("wakehub_leading {leads}")), "{metrics}");
    }

    // A subscriber on each instance, from the same event on.
    let from = a.gql("{ events(first: 500) { edges { node { id } } } }", json!({})).await;
    let from = from["events"]["edges"].as_array().unwrap().last().map_or(Value::Null, |e| e["node"]["id"].clone());
    let mut on_a = subscriber(&a, &from).await;
    let mut on_b = subscriber(&b, &from).await;
    let mut on_c = subscriber(&c, &from).await;

    // Cascades asked of the followers run on the leader; any instance reads them.
    let up = start(&b, "lxc-jellyfin").await;
    assert_eq!(c.wait_cascade(&up).await, "COMPLETED");
    let down = stop(&c, "lxc-jellyfin").await;
    assert_eq!(b.wait_cascade(&down).await, "COMPLETED");
    assert_eq!(a.wait_cascade(&down).await, "COMPLETED");
    // What the leader observed, the followers show.
    for s in [&a, &b, &c] {
        shows(s, "lxc-jellyfin", "OFF").await;
    }
    // A mutation over a follower's WebSocket goes to the leader too.
    let mut ws = subscriber(&b, &Value::Null).await;
    ws.subscribe("m", "mutation { stopNode(id: \"lxc-jellyfin\") { id } }", json!({})).await;
    let answer = ws.next_data(Duration::from_secs(10)).await.unwrap();
    let again = answer["data"]["stopNode"]["id"].as_str().unwrap_or_else(|| panic!("{answer}")).to_owned();
    assert_eq!(c.wait_cascade(&again).await, "COMPLETED");

    // A start asked of a follower (six steps), its leader killed mid-way (after its first).
    let id = start(&c, "sandbox").await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let d = b.gql("query($id: ID!) { cascade(id: $id) { currentStep status } }", json!({"id": id})).await;
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

    // One follower takes over within the lease; the other follows on.
    until(Duration::from_secs(15), "a follower takes over", || b.leads() || c.leads()).await;
    let took = killed.elapsed();
    assert!(took < Duration::from_secs(3 + 4), "took over after {took:?}");
    let (leader, follower) = if b.leads() { (&b, &c) } else { (&c, &b) };
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!follower.leads(), "the third follows on");

    // The killed cascade ended interrupted, by the new leader, and nothing of it ran again.
    assert_eq!(follower.wait_cascade(&id).await, "INTERRUPTED");
    let after = events(leader).await;
    assert!(after.windows(2).all(|w| w[0].0 < w[1].0), "one sequence of ids: {after:?}");
    assert_eq!(&after[..before.len()], &before[..], "the journal of the killed instance, whole");
    let later: Vec<&str> =
        after[before.len()..].iter().filter(|e| e.2.as_deref() == Some(id.as_str())).map(|e| e.1.as_str()).collect();
    assert_eq!(later, ["cascade-error"], "only its end, nothing run again");

    // A cascade asked of the follower runs on the new leader to its end.
    let again = start(follower, "lxc-jellyfin").await;
    assert_eq!(follower.wait_cascade(&again).await, "COMPLETED");
    shows(follower, "lxc-jellyfin", "ON").await;

    // Every subscriber saw the journal after `from` once, in id order: those on the
    // survivors all of it, across the takeover; the one on the killed leader a prefix.
    let journal: Vec<i64> =
        events(leader).await.iter().map(|e| e.0).filter(|n| from.is_null() || *n > number(&from)).collect();
    let last = *journal.last().unwrap();
    assert_eq!(received(&mut on_b, last).await, journal, "the subscriber on b");
    assert_eq!(received(&mut on_c, last).await, journal, "the subscriber on c");
    let on_killed = received(&mut on_a, last).await;
    assert!(!on_killed.is_empty() && journal.starts_with(&on_killed), "{on_killed:?} / {journal:?}");

    // The database restarts mid-cascade: the cascade ends (whatever its end), nothing is
    // left running, and the instances serve on.
    let down = stop(follower, "lxc-jellyfin").await;
    pg.restart();
    let end = leader.wait_cascade(&down).await;
    assert!(["COMPLETED", "FAILED", "INTERRUPTED"].contains(&end.as_str()), "{end}");
    let d = follower.gql("{ cascades(first: 10) { edges { node { status } } } }", json!({})).await;
    assert!(
        d["cascades"]["edges"].as_array().unwrap().iter().all(|e| e["node"]["status"] != "IN_PROGRESS"),
        "{d}\n{}",
        leader.log()
    );
    let last = stop(follower, "lxc-jellyfin").await;
    assert_eq!(leader.wait_cascade(&last).await, "COMPLETED", "{}", leader.log());
}

#[test]
fn the_database_is_reached_over_verified_tls_when_the_url_requires_it() {
    let pg = Postgres::start_tls();
    let url = pg.database("lab");
    let home = tempfile::tempdir().unwrap();
    let made = std::cell::Cell::new(0);
    let token = |db: &str| {
        made.set(made.get() + 1);
        let out = std::process::Command::new(bin())
            .args(["token", "create", &format!("t{}", made.get()), "--role", "viewer", "--db", db])
            .env("XDG_DATA_HOME", home.path())
            .output()
            .unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    // Plain TCP: this server refuses it.
    let (ok, said) = token(&url);
    assert!(!ok && said.contains("no encryption"), "{said}");
    // TLS, the server's certificate checked against the CA that issued it (chain and
    // address): in — with WakeHub's spelling and with libpq's.
    let ca = pg.ca().display().to_string();
    let (ok, said) = token(&format!("{url}?sslmode=require&sslrootcert={ca}"));
    assert!(ok, "{said}");
    let (ok, said) = token(&format!("{url}?sslmode=verify-full&sslrootcert={ca}"));
    assert!(ok, "{said}");
    // A certificate no trusted authority issued: refused at once, saying so.
    let other = tempfile::tempdir().unwrap();
    let other_ca = other.path().join("ca.pem");
    let made = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1"])
        .args(["-subj", "/CN=another-ca", "-keyout"])
        .arg(other.path().join("ca.key"))
        .arg("-out")
        .arg(&other_ca)
        .output()
        .unwrap();
    assert!(made.status.success());
    let started = Instant::now();
    let (ok, said) = token(&format!("{url}?sslmode=require&sslrootcert={}", other_ca.display()));
    assert!(!ok && said.contains("certificate"), "{said}");
    assert!(started.elapsed() < Duration::from_secs(10), "not retried: {:?}", started.elapsed());
    // A CA given without asking for TLS is a mistake, said as such.
    let (ok, said) = token(&format!("{url}?sslrootcert={ca}"));
    assert!(!ok && said.contains("sslmode=require"), "{said}");
}
