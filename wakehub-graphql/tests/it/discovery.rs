//! Discovery through the API: `discover(host)`, `nodes(state: DISCOVERED)`, `adoptNode`,
//! against `fakepve` (the Proxmox VE API emulator the core's connector tests use).

use serde_json::json;

use crate::support::Server;
use wakehub_tests::FakePve;

const REPORT: &str = "added { key state status node { id name state } } updated { key state node { name } } \
                      disappeared { name key kept { name } }";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discover_lists_guests_and_adopt_configures_them() {
    let pve = FakePve::start();
    let lab = format!(
        r#"{host}
[[node]]
name = "jellyfin"
kind = "lxc"
parent = "pve"
[node.connector]
type = "proxmox"
vmid = 101
"#,
        host = pve.host_node(&pve.token_auth(&pve.token_secret, Some(&pve.fingerprint))),
    );
    // Only on request here (the periodic discovery is tested below).
    let server = Server::with_config(&lab, &["--discover-every", "0s"]);

    let d = server.gql(&format!("mutation {{ discover(host: \"pve\") {{ {REPORT} }} }}"), json!({})).await;
    let report = &d["discover"];
    let added: Vec<&str> = report["added"].as_array().unwrap().iter().map(|g| g["key"].as_str().unwrap()).collect();
    assert_eq!(added, ["lxc/104", "qemu/100", "qemu/102"], "{report}");
    assert_eq!(report["updated"], json!([{"key": "lxc/101", "state": "CONFIGURED", "node": {"name": "jellyfin"}}]));
    assert!(report["added"].as_array().unwrap().iter().all(|g| g["state"] == "DISCOVERED" && g["status"] == "OFF"));

    // What waits to be configured, with everything the API said and the form pre-filled.
    let d = server
        .gql(
            "{ nodes(state: DISCOVERED) { name kind state status parent { name } connector { type settings } \
               discovery { source key details status goneAt } } }",
            json!({}),
        )
        .await;
    let waiting = d["nodes"].as_array().unwrap();
    assert_eq!(waiting.len(), 3, "{waiting:?}");
    let media = waiting.iter().find(|n| n["name"] == "media-server").expect("media-server");
    assert_eq!(media["kind"], "lxc");
    assert_eq!(media["status"], "OFF");
    assert_eq!(media["parent"]["name"], "pve");
    assert_eq!(media["connector"], json!({"type": "proxmox", "settings": {"vmid": 104}}));
    assert_eq!(media["discovery"]["source"], "proxmox");
    assert_eq!(media["discovery"]["details"]["tags"], json!(["media", "nas"]));
    assert!(media["discovery"]["goneAt"].is_null());
    let configured = server.gql("{ nodes(state: CONFIGURED) { name } }", json!({})).await;
    assert_eq!(configured["nodes"], json!([{"name": "pve"}, {"name": "jellyfin"}]));

    // A discovered node is not started before it is adopted.
    let e = server.gql_err("mutation { startNode(id: \"media-server\") { id } }", json!({})).await;
    assert_eq!(e["extensions"]["code"], "VALIDATION", "{e}");

    // Adopt one as discovered, one with a completed form (renamed, a shorter timeout).
    let d = server.gql("mutation { adoptNode(id: \"vm-docker\") { name state } }", json!({})).await;
    assert_eq!(d["adoptNode"], json!({"name": "vm-docker", "state": "CONFIGURED"}));
    let d = server
        .gql(
            "mutation($input: NodeInput!) { adoptNode(id: \"media-server\", input: $input) \
               { name state startTimeout parent { name } connector { settings } discovery { key } } }",
            json!({"input": {"name": "media", "kind": "lxc", "startTimeout": "45s",
                             "connector": {"type": "proxmox", "vmid": 104}}}),
        )
        .await;
    assert_eq!(
        d["adoptNode"],
        json!({"name": "media", "state": "CONFIGURED", "startTimeout": "45s", "parent": {"name": "pve"},
               "connector": {"settings": {"vmid": 104}}, "discovery": {"key": "lxc/104"}})
    );
    let e = server.gql_err("mutation { adoptNode(id: \"media\") { name } }", json!({})).await;
    assert_eq!(e["extensions"]["code"], "CONFLICT", "adopting twice: {e}");
    let e = server
        .gql_err(
            "mutation($input: NodeInput!) { adoptNode(id: \"broken\", input: $input) { name } }",
            json!({"input": {"name": "broken", "kind": "vm", "connector": {"type": "proxmox"}}}),
        )
        .await;
    assert_eq!(e["extensions"]["code"], "VALIDATION", "a form without vmid: {e}");

    // Again: nothing added, the adopted ones refreshed under their new names.
    let d = server.gql(&format!("mutation {{ discover(host: \"pve\") {{ {REPORT} }} }}"), json!({})).await;
    assert_eq!(d["discover"]["added"], json!([]));
    let updated: Vec<&str> =
        d["discover"]["updated"].as_array().unwrap().iter().map(|g| g["node"]["name"].as_str().unwrap()).collect();
    assert_eq!(updated, ["jellyfin", "media", "vm-docker", "broken"]);
    let count = server.gql("{ nodes { name } }", json!({})).await;
    assert_eq!(count["nodes"].as_array().unwrap().len(), 5);

    // The run that added guests is in the journal, as its own event.
    let d = server
        .gql(
            "{ events(first: 500) { edges { node { kind payload { ... on HostDiscovered { name added disappeared } } } } } }",
            json!({}),
        )
        .await;
    let found: Vec<&serde_json::Value> = d["events"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["node"]["kind"] == "host-discovered")
        .map(|e| &e["node"]["payload"])
        .collect();
    assert_eq!(found.len(), 1, "only the first run changed something: {found:?}");
    assert_eq!(found[0]["name"], "pve");
    assert_eq!(found[0]["added"], json!(["media-server", "vm-docker", "broken"]));

    // Errors: a host offering nothing, an unknown node.
    let e = server.gql_err("mutation { discover(host: \"jellyfin\") { added { key } } }", json!({})).await;
    assert_eq!(e["extensions"]["code"], "VALIDATION", "{e}");
    let e = server.gql_err("mutation { discover(host: \"nope\") { added { key } } }", json!({})).await;
    assert_eq!(e["extensions"]["code"], "NOT_FOUND", "{e}");
    // The token secret never comes back.
    assert!(!server.log().contains(&pve.token_secret));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_discovers_hosts_periodically() {
    let pve = FakePve::start();
    let lab = format!(
        "{}\n[[node]]\nname = \"nas\"\nkind = \"physical\"\noffers = [\"docker\"]\n[node.connector]\ntype = \"sim\"\n",
        pve.host_node(&pve.token_auth(&pve.token_secret, Some(&pve.fingerprint)))
    );
    let server = Server::with_config(&lab, &["--discover-every", "1s"]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let d = server.gql("{ nodes(state: DISCOVERED) { name } }", json!({})).await;
        if d["nodes"].as_array().unwrap().len() == 4 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "not discovered: {d}\n{}", server.log());
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    // `nas` offers Docker but names no endpoint: skipped quietly, not an error in the log.
    assert!(!server.log().contains("discovery failed"), "{}", server.log());
}
