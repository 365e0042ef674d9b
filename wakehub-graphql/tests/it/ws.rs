//! Subscriptions over real WebSockets, in both protocols.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{EVENT_FIELDS, LEGACY, MODERN, Server, Ws, homelab_faster};

fn auth(s: &Server) -> Value {
    json!({"Authorization": format!("Bearer {}", s.token)})
}

/// Collects `events` subscription payloads until the cascade's end event.
async fn until_end(ws: &mut Ws) -> Vec<Value> {
    let mut out = Vec::new();
    loop {
        let data = ws.next_data(Duration::from_secs(30)).await.expect("stream ended early");
        let e = data["data"].as_object().unwrap().values().next().unwrap().clone();
        let end = matches!(e["kind"].as_str(), Some("cascade-complete" | "cascade-error"));
        out.push(e);
        if end {
            return out;
        }
    }
}

fn progress(events: &[Value]) -> Vec<(String, String)> {
    events
        .iter()
        .filter(|e| e["kind"] == "cascade-progress")
        .map(|e| {
            let c = &e["payload"]["current"];
            (c["name"].as_str().unwrap().to_owned(), c["stepStatus"].as_str().unwrap().to_owned())
        })
        .collect()
}

fn id_num(e: &Value) -> i64 {
    e["id"].as_str().unwrap().trim_start_matches("event:").parse().unwrap()
}

#[tokio::test]
async fn starting_jellyfin_in_the_demo_streams_every_step_in_order_and_a_reconnect_misses_nothing() {
    let s = Server::demo();
    let mut ws = Ws::connect(&s.ws_url, MODERN, auth(&s)).await.unwrap();
    ws.subscribe("1", &format!("subscription {{ events {{ {EVENT_FIELDS} }} }}"), json!({})).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let d = s.gql("mutation { startNode(id: \"lxc-jellyfin\") { id status } }", json!({})).await;
    assert_eq!(d["startNode"]["status"], "PENDING");
    let events = until_end(&mut ws).await;
    assert!(events.windows(2).all(|w| id_num(&w[0]) < id_num(&w[1])), "ids increase");
    assert_eq!(events.last().unwrap()["kind"], "cascade-complete");
    let p = progress(&events);
    let at = |name: &str, st: &str| {
        p.iter().position(|(n, s)| n == name && s == st).unwrap_or_else(|| panic!("{name} {st}: {p:?}"))
    };
    assert!(at("lxc-jellyfin", "RUNNING") > at("nas", "DONE"));
    assert!(at("lxc-jellyfin", "RUNNING") > at("machine2", "DONE"));
    assert_eq!(p.len(), 6, "a start and an end for each of the 3 steps: {p:?}");
    let steps: Vec<i64> = events
        .iter()
        .filter(|e| e["kind"] == "cascade-progress")
        .map(|e| e["payload"]["step"].as_i64().unwrap())
        .collect();
    assert_eq!(*steps.last().unwrap(), 3);
    assert!(steps.windows(2).all(|w| w[0] <= w[1]), "{steps:?}");
    let on: Vec<&str> = events
        .iter()
        .filter(|e| e["kind"] == "status-change" && e["payload"]["state"] == "ON")
        .map(|e| e["payload"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(on.len(), 3, "{on:?}");
    drop(ws);

    // Reconnect "after" the third event: everything after it is replayed, in order.
    let mut again = Ws::connect(&s.ws_url, MODERN, auth(&s)).await.unwrap();
    again
        .subscribe(
            "r",
            "subscription($after: ID) { events(after: $after) { id kind } }",
            json!({"after": events[2]["id"]}),
        )
        .await;
    let mut replayed = Vec::new();
    while replayed.len() < events.len() - 3 {
        let d = again.next_data(Duration::from_secs(10)).await.expect("replay");
        replayed.push(d["data"]["events"]["id"].clone());
    }
    let expected: Vec<Value> = events[3..].iter().map(|e| e["id"].clone()).collect();
    assert_eq!(replayed, expected);
}

#[tokio::test]
async fn the_legacy_protocol_and_the_filtered_streams_work() {
    let s = Server::with_config(&homelab_faster(20), &[]);
    let d = s.gql("mutation { startNode(id: \"paperless\") { id } }", json!({})).await;
    let cascade = d["startNode"]["id"].as_str().unwrap().to_owned();
    assert_eq!(s.wait_cascade(&cascade).await, "COMPLETED");
    // cascadeProgress replays a finished cascade from its first event, then completes.
    let mut ws = Ws::connect(&s.ws_url, LEGACY, auth(&s)).await.unwrap();
    ws.subscribe(
        "1",
        &format!("subscription($c: ID!) {{ cascadeProgress(cascade: $c) {{ {EVENT_FIELDS} }} }}"),
        json!({"c": cascade}),
    )
    .await;
    let mut kinds = Vec::new();
    while let Some(d) = ws.next_data(Duration::from_secs(10)).await {
        let e = &d["data"]["cascadeProgress"];
        assert_eq!(e["cascade"], cascade.as_str());
        kinds.push(e["kind"].as_str().unwrap().to_owned());
    }
    assert_eq!(kinds.last().map(String::as_str), Some("cascade-complete"));
    assert_eq!(kinds.iter().filter(|k| *k == "cascade-progress").count(), 8, "4 steps: {kinds:?}");

    // nodeStatus: only that node's status changes.
    ws.subscribe(
        "2",
        "subscription { nodeStatus(node: \"postgres\") { kind payload { ... on StatusChange { name state } } } }",
        json!({}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let d = s.gql("mutation { stopNode(id: \"vm-docker\") { id } }", json!({})).await;
    s.wait_cascade(d["stopNode"]["id"].as_str().unwrap()).await;
    let mut states = Vec::new();
    while states.len() < 2 {
        let d = ws.next_data(Duration::from_secs(10)).await.expect("postgres status");
        let p = &d["data"]["nodeStatus"]["payload"];
        assert_eq!(p["name"], "postgres");
        states.push(p["state"].as_str().unwrap().to_owned());
    }
    assert_eq!(states, ["STOPPING", "OFF"]);
}

#[tokio::test]
async fn websockets_need_a_token_too() {
    let s = Server::demo();
    assert!(Ws::connect(&s.ws_url, MODERN, json!({})).await.is_err());
    assert!(Ws::connect(&s.ws_url, LEGACY, json!({"token": "whk_wrong"})).await.is_err());
    assert!(Ws::connect(&s.ws_url, MODERN, json!({"token": s.token})).await.is_ok());
    assert!(
        Ws::connect(&s.ws_url, LEGACY, json!({"headers": {"Authorization": format!("Bearer {}", s.token)}}))
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn a_flooding_client_is_disconnected_and_the_server_carries_on() {
    let s = Server::demo();
    let mut ws = Ws::connect(&s.ws_url, MODERN, auth(&s)).await.unwrap();
    for _ in 0..300 {
        ws.send(json!({"type": "ping"})).await;
    }
    let frame = ws.close_frame(Duration::from_secs(10)).await;
    assert_eq!(frame, Some((1008, "message rate exceeded".to_owned())), "the flooding connection is closed");
    // Too many subscriptions on one connection.
    let mut ws = Ws::connect(&s.ws_url, MODERN, auth(&s)).await.unwrap();
    for i in 0..101 {
        ws.subscribe(&i.to_string(), "subscription { events { id } }", json!({})).await;
        if i % 40 == 39 {
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }
    let frame = ws.close_frame(Duration::from_secs(10)).await;
    assert_eq!(frame, Some((1008, "too many subscriptions".to_owned())), "closed after too many subscriptions");
    assert_eq!(s.gql("{ nodes(state: CONFIGURED) { name } }", json!({})).await["nodes"].as_array().unwrap().len(), 11);
}

#[tokio::test]
async fn revoking_a_token_closes_its_open_websockets() {
    let mut s = Server::with_config(&homelab_faster(20), &["--token-recheck", "200ms"]);
    let out = std::process::Command::new(crate::support::bin())
        .args(["token", "create", "phone", "--role", "viewer", "--db"])
        .arg(&s.db)
        .output()
        .unwrap();
    let phone = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let mut ws = Ws::connect(&s.ws_url, MODERN, json!({"token": phone})).await.unwrap();
    ws.subscribe("1", "subscription { events { id } }", json!({})).await;
    let mut other = Ws::connect(&s.ws_url, MODERN, auth(&s)).await.unwrap();
    other.subscribe("1", "subscription { events { id } }", json!({})).await;
    let out = std::process::Command::new(crate::support::bin())
        .args(["token", "revoke", "phone", "--db"])
        .arg(&s.db)
        .output()
        .unwrap();
    assert!(out.status.success());
    let frame = ws.close_frame(Duration::from_secs(5)).await;
    assert_eq!(frame, Some((4403, "API token revoked".to_owned())), "the revoked token's socket is closed");
    // The other client is unaffected and still receives events.
    s.gql("mutation { startNode(id: \"nas\") { id } }", json!({})).await;
    assert!(other.next_data(Duration::from_secs(5)).await.is_some());
    assert!(s.terminate().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_must_authenticate_in_time_and_one_address_holds_few() {
    let s = Server::with_config(&homelab_faster(10), &["--ws-auth-deadline", "1s", "--ws-per-address", "2"]);
    // Silent: closed with 4408 once the deadline passes.
    let mut silent = Ws::open(&s.ws_url, MODERN).await.unwrap();
    let frame = silent.close_frame(Duration::from_secs(5)).await;
    assert_eq!(frame.map(|f| f.0), Some(4408));
    drop(silent);
    // (The server waits up to 3 s for the closing handshake the dropped client never sends.)
    tokio::time::sleep(Duration::from_millis(3500)).await;
    // Two pending sockets from one address; a third is refused at the upgrade.
    let _a = Ws::open(&s.ws_url, MODERN).await.unwrap();
    let _b = Ws::open(&s.ws_url, MODERN).await.unwrap();
    let third = Ws::open(&s.ws_url, MODERN).await.err().expect("a third socket from one address is refused");
    assert!(third.contains("429"), "{third}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_are_counted_by_id() {
    let s = Server::with_config(&homelab_faster(10), &["--ws-max-subscriptions", "3"]);
    let mut ws = Ws::connect(&s.ws_url, MODERN, auth(&s)).await.unwrap();
    let sub = |id: &str| json!({"id": id, "type": "subscribe", "payload": {"query": "subscription { events { id } }"}});
    for id in ["s1", "s2", "s3"] {
        ws.send(sub(id)).await;
    }
    // Completing ids that are not open frees nothing…
    for id in ["nope-1", "nope-2"] {
        ws.send(json!({"id": id, "type": "complete"})).await;
    }
    // …so a fourth subscription is one too many.
    ws.send(sub("s4")).await;
    let frame = ws.close_frame(Duration::from_secs(5)).await;
    assert_eq!(frame, Some((1008, "too many subscriptions".to_owned())));
}
