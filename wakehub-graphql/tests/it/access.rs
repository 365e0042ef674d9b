//! Roles and scopes through the API: a viewer reads, an operator powers (within its scope),
//! an admin changes the lab; a scoped caller does not see other nodes at all; every refused
//! power action is journaled with its actor, every granted one is recorded as the cascade's
//! `requestedBy`; an expired token is no token.

use std::process::Command;

use serde_json::{Value, json};

use crate::support::{Server, bin, homelab_faster};

fn token(s: &Server, name: &str, args: &[&str]) -> String {
    let out = Command::new(bin()).args(["token", "create", name]).args(args).arg("--db").arg(&s.db).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

async fn as_(s: &Server, token: &str, query: &str) -> (u16, Value) {
    s.post_as(Some(token), query, json!({})).await
}

fn code(v: &Value) -> &str {
    v["errors"][0]["extensions"]["code"].as_str().unwrap_or_default()
}

fn lab() -> String {
    homelab_faster(10)
        .replace("name = \"lxc-jellyfin\"\n", "name = \"lxc-jellyfin\"\ntags = [\"media\"]\n")
        .replace("name = \"nas\"\n", "name = \"nas\"\ntags = [\"media\", \"storage\"]\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_role_does_what_it_may_and_refusals_are_journaled() {
    let s = Server::with_config(&lab(), &[]);
    let viewer = token(&s, "wall-display", &["--role", "viewer"]);
    let operator = token(&s, "media-op", &["--role", "operator", "--nodes", "tag:media"]);

    // A viewer reads everything…
    let (status, d) = as_(&s, &viewer, "{ nodes { name tags } }").await;
    assert_eq!(status, 200);
    assert_eq!(d["data"]["nodes"].as_array().unwrap().len(), 11, "{d}");
    // …powers nothing (refused, and journaled with its name)…
    let (_, d) = as_(&s, &viewer, "mutation { startNode(id: \"nas\") { id } }").await;
    assert_eq!(code(&d), "FORBIDDEN", "{d}");
    // …and changes nothing.
    let (_, d) = as_(&s, &viewer, "mutation { exportTopology }").await;
    assert_eq!(code(&d), "FORBIDDEN", "{d}");
    let (_, d) = as_(&s, &viewer, "mutation { deleteNode(id: \"sandbox\") }").await;
    assert_eq!(code(&d), "FORBIDDEN", "{d}");

    // A scoped operator sees only its nodes…
    let (_, d) = as_(&s, &operator, "{ nodes { name } jelly: node(id: \"lxc-jellyfin\") { parent { name } dependsOn { name } } hidden: node(id: \"vm-docker\") { name } }").await;
    let names: Vec<&str> = d["data"]["nodes"].as_array().unwrap().iter().map(|n| n["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["lxc-jellyfin", "nas"], "{d}");
    assert!(d["data"]["jelly"]["parent"].is_null(), "machine2 is outside its scope: {d}");
    assert_eq!(d["data"]["jelly"]["dependsOn"], json!([{"name": "nas"}]));
    assert!(d["data"]["hidden"].is_null(), "{d}");
    // …powers them (recorded as requested by it)…
    let (_, d) = as_(&s, &operator, "mutation { startNode(id: \"lxc-jellyfin\") { id requestedBy } }").await;
    assert_eq!(d["data"]["startNode"]["requestedBy"], "media-op", "{d}");
    let id = d["data"]["startNode"]["id"].as_str().unwrap().to_owned();
    assert_eq!(s.wait_cascade(&id).await, "COMPLETED");
    // …and nothing else, nor the lab itself.
    let (_, d) = as_(&s, &operator, "mutation { stopNode(id: \"vm-docker\") { id } }").await;
    assert_eq!(code(&d), "FORBIDDEN", "{d}");
    let (_, d) = as_(&s, &operator, "mutation { importTopology(toml: \"\") { added } }").await;
    assert_eq!(code(&d), "FORBIDDEN", "{d}");
    // Its events are those of its nodes only.
    let (_, d) = as_(&s, &operator, "{ events(first: 500) { edges { node { node payload { __typename } } } } }").await;
    let edges = d["data"]["events"]["edges"].as_array().unwrap();
    assert!(!edges.is_empty());
    let visible = s.gql("{ a: node(id: \"lxc-jellyfin\") { id } b: node(id: \"nas\") { id } }", json!({})).await;
    let ids = [visible["a"]["id"].clone(), visible["b"]["id"].clone()];
    assert!(edges.iter().all(|e| ids.contains(&e["node"]["node"])), "{d}");

    // The admin sees both refusals, with who was refused.
    let d = s
        .gql(
            "{ events(first: 500) { edges { node { payload { ... on PowerRefused { name action actor code } } } } } }",
            json!({}),
        )
        .await;
    let refused: Vec<Value> = d["events"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["payload"].clone())
        .filter(|p| p.get("actor").is_some())
        .collect();
    assert_eq!(
        refused,
        [
            json!({"name": "nas", "action": "START", "actor": "wall-display", "code": "FORBIDDEN"}),
            json!({"name": "vm-docker", "action": "STOP", "actor": "media-op", "code": "FORBIDDEN"}),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_token_is_no_token() {
    let s = Server::with_config(&lab(), &[]);
    let short = token(&s, "short", &["--role", "admin", "--expires", "1s"]);
    let (status, _) = as_(&s, &short, "{ nodes { name } }").await;
    assert_eq!(status, 200);
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let (status, d) = as_(&s, &short, "{ nodes { name } }").await;
    assert_eq!(status, 401, "{d}");
    // A bad role or selector is refused by the command line.
    let out = Command::new(bin()).args(["token", "create", "x", "--role", "root", "--db"]).arg(&s.db).output().unwrap();
    assert!(!out.status.success());
    let out = Command::new(bin())
        .args(["token", "create", "x", "--role", "viewer", "--nodes", "tag:Bad Tag", "--db"])
        .arg(&s.db)
        .output()
        .unwrap();
    assert!(!out.status.success());
}
