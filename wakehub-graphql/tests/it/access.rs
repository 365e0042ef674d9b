//! Roles and scopes through the API: a viewer reads, an operator powers (within its scope),
//! an admin changes the lab; a scoped caller does not see other nodes at all; every refused
//! power action is journaled with its actor, every granted one is recorded as the cascade's
//! `requestedBy`; an expired token is no token.

use std::process::Command;

use serde_json::{Value, json};

use crate::support::{Server, bin, code, homelab_faster, token};

async fn as_(s: &Server, token: &str, query: &str) -> (u16, Value) {
    s.post_as(Some(token), query, json!({})).await
}

fn lab() -> String {
    // The demo tags lxc-jellyfin `media` already; the NAS here is media and storage.
    homelab_faster(10).replace("tags = [\"infra\", \"media\"]", "tags = [\"media\", \"storage\"]")
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

fn add_user(s: &Server, name: &str, password: &str, args: &[&str]) -> std::process::Output {
    use std::io::Write;
    let mut child = Command::new(bin())
        .args(["user", "add", name])
        .args(args)
        .arg("--db")
        .arg(&s.db)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
    child.wait_with_output().unwrap()
}

async fn login(s: &Server, name: &str, password: &str) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .post(format!("{}/login", s.base))
        .json(&json!({"name": name, "password": password}))
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn people_log_in_with_a_password_and_get_their_role() {
    let s = Server::with_config(&lab(), &[]);
    let out = add_user(&s, "alice", "correct horse battery", &["--role", "viewer"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let short = add_user(&s, "bob", "short", &["--role", "viewer"]);
    assert!(!short.status.success(), "a password of fewer than 10 characters is refused");

    // A session token reads as a viewer…
    let (status, d) = login(&s, "alice", "correct horse battery").await;
    assert_eq!(status, 200, "{d}");
    assert_eq!(d["role"], "viewer");
    let session = d["token"].as_str().unwrap().to_owned();
    assert!(session.starts_with("whs_"));
    let (status, q) = as_(&s, &session, "{ nodes { name } }").await;
    assert_eq!((status, q["data"]["nodes"].as_array().unwrap().len()), (200, 11));
    // …and is refused power, journaled with the person's name.
    let (_, q) = as_(&s, &session, "mutation { startNode(id: \"nas\") { id } }").await;
    assert_eq!(code(&q), "FORBIDDEN");
    let d = s
        .gql("{ events(first: 500) { edges { node { payload { ... on PowerRefused { actor } } } } } }", json!({}))
        .await;
    assert!(d.to_string().contains("\"actor\":\"alice\""), "{d}");

    // Logging out ends the session.
    let resp = reqwest::Client::new().post(format!("{}/logout", s.base)).bearer_auth(&session).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 204);
    assert_eq!(as_(&s, &session, "{ nodes { name } }").await.0, 401);

    // Wrong passwords: 401, then 429 once there were too many in a minute (per name).
    for _ in 0..5 {
        assert_eq!(login(&s, "alice", "wrong password").await.0, 401);
    }
    let (status, d) = login(&s, "alice", "correct horse battery").await;
    assert_eq!(status, 429, "{d}");
    assert_eq!(d["errors"][0]["extensions"]["code"], "RATE_LIMITED");
    // The address is limited too: another name from it is refused as well.
    let (status, d) = login(&s, "mallory", "anything at all").await;
    assert_eq!(status, 429, "{d}");
}
