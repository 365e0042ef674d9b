//! Inactivity rules through the API: a node's rule written with the node (checked; a veto
//! command refused from the API) and read back, and its live countdown from the server's
//! monitor — a running node tracked, measured, then idle and stopped by a cascade `idle`.

use std::time::Duration;

use serde_json::json;

use crate::support::{Server, code};

const LAB: &str = r#"
[[node]]
name = "tv"
kind = "physical"
idle = { after = "1m", cpu_percent = 20.0 }
[node.connector]
type = "sim"
initially = "on"

[[node]]
name = "nas"
kind = "physical"
[node.connector]
type = "sim"
initially = "on"
"#;

const NODE: &str = "query($id: ID!) { node(id: $id) { status
    idle { after tcpPorts sshSessions cpuPercent netKbps probe { url pointer } vetoUrl { url } vetoCommand }
    idleStatus { lastActivity secondsLeft kept stopRequested readings { signal value active error } } } }";

const UPDATE: &str = "mutation($id: ID!, $i: NodeInput!) { updateNode(id: $id, input: $i) {
    idle { after tcpPorts probe { url pointer } } } }";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_are_written_read_and_counted_down() {
    let s = Server::with_config(LAB, &[]);
    // The monitor's first round tracks the running node with a rule, then measures it (a
    // query between the two sees it tracked with no reading yet).
    let mut tv = json!(null);
    for _ in 0..100 {
        tv = s.gql(NODE, json!({"id": "tv"})).await["node"].clone();
        if tv["idleStatus"]["readings"].as_array().is_some_and(|r| !r.is_empty()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        tv["idle"],
        json!({"after": "1m", "tcpPorts": [], "sshSessions": false, "cpuPercent": 20.0, "netKbps": null,
               "probe": null, "vetoUrl": null, "vetoCommand": null})
    );
    let status = &tv["idleStatus"];
    assert_eq!(status["lastActivity"], "seen on", "{tv}");
    assert!((50..=60).contains(&status["secondsLeft"].as_i64().unwrap()), "{tv}");
    assert_eq!(
        status["readings"],
        json!([{"signal": "cpu_percent", "value": "first sample", "active": false, "error": null}])
    );
    let nas = s.gql(NODE, json!({"id": "nas"})).await;
    assert_eq!((&nas["node"]["idle"], &nas["node"]["idleStatus"]), (&json!(null), &json!(null)));

    // Written with the node, checked like the file's table.
    let base = json!({"name": "nas", "kind": "physical", "connector": {"type": "sim", "initially": "on"}});
    let mut input = base.clone();
    input["idle"] =
        json!({"after": "2h", "tcpPorts": [445, 2049], "probe": {"url": "http://nas.lan/sessions", "pointer": "/n"}});
    let d = s.gql(UPDATE, json!({"id": "nas", "i": input})).await;
    assert_eq!(
        d["updateNode"]["idle"],
        json!({"after": "2h", "tcpPorts": [445, 2049], "probe": {"url": "http://nas.lan/sessions", "pointer": "/n"}})
    );
    input["idle"] = json!({"after": "10s", "cpuPercent": -3.0});
    let (_, r) = s.post_as(Some(&s.token), UPDATE, json!({"id": "nas", "i": input})).await;
    assert_eq!(code(&r), "VALIDATION", "{r}");
    let message = r["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("after: must be between 1m and 30days") && message.contains("cpu_percent"), "{r}");
    // A command WakeHub would run on the node never comes from the API.
    input["idle"] = json!({"after": "1h", "vetoCommand": "touch /tmp/owned"});
    let (_, r) = s.post_as(Some(&s.token), UPDATE, json!({"id": "nas", "i": input})).await;
    assert_eq!(code(&r), "VALIDATION", "{r}");
    assert!(r["errors"][0]["message"].as_str().unwrap().contains("idle.veto_command"), "{r}");
    let d = s.gql(NODE, json!({"id": "nas"})).await;
    assert_eq!(d["node"]["idle"]["tcpPorts"], json!([445, 2049]), "the refused writes changed nothing");
}
