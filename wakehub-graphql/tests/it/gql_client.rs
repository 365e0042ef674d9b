//! A real third-party client: the Python `gql` library (installed into `.venv` by
//! `scripts/test.sh`) runs a query, a mutation, and a subscription over each WebSocket
//! protocol against `wakehub serve`, and a viewer's token is refused power (`FORBIDDEN`).

use crate::support::{Server, homelab_faster, repo};

#[test]
fn the_python_gql_client_speaks_to_the_server() {
    let python = repo().join(".venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/test.sh (it creates .venv and installs `gql[websockets,aiohttp]`)",
        python.display()
    );
    let s = Server::with_config(&homelab_faster(20), &[]);
    let viewer = std::process::Command::new(crate::support::bin())
        .args(["token", "create", "py-viewer", "--role", "viewer", "--db"])
        .arg(&s.db)
        .output()
        .unwrap();
    assert!(viewer.status.success(), "{}", String::from_utf8_lossy(&viewer.stderr));
    let viewer = String::from_utf8(viewer.stdout).unwrap().trim().to_owned();
    let out = std::process::Command::new(&python)
        .arg(repo().join("wakehub-graphql/tests/gql/client.py"))
        .args([&s.url, &s.token, &viewer])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}\nserver log:\n{}", String::from_utf8_lossy(&out.stderr), s.log());
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(v["nodes"], 11);
    assert_eq!(v["start_status"], "PENDING");
    let modern: Vec<String> = v["modern"].as_array().unwrap().iter().map(|e| e.to_string()).collect();
    assert_eq!(modern.len(), 8, "planned + 3 steps × (running, done) + complete: {modern:?}");
    assert_eq!(modern[0], "[\"cascade-planned\"]");
    assert_eq!(modern.last().unwrap(), "[\"cascade-complete\"]");
    assert!(modern.contains(&"[\"lxc-jellyfin\",\"DONE\",3]".to_owned()), "{modern:?}");
    let pos = |name: &str, status: &str| {
        v["modern"].as_array().unwrap().iter().position(|e| e[0] == name && e[1] == status).unwrap()
    };
    assert!(pos("lxc-jellyfin", "RUNNING") > pos("nas", "DONE"));
    assert!(pos("lxc-jellyfin", "RUNNING") > pos("machine2", "DONE"));
    let legacy = v["legacy"].as_array().unwrap();
    assert_eq!(legacy.last().unwrap(), &serde_json::json!(["cascade-complete"]));
    assert!(legacy.iter().any(|e| e[0] == "sandbox" || e[0] == "lxc-jellyfin"), "{legacy:?}");
    assert_eq!(v["no_token"], "UNAUTHENTICATED");
    assert_eq!(v["cycle"], "CYCLE");
    assert_eq!(v["viewer_nodes"], 11);
    assert_eq!(v["viewer_start"], "FORBIDDEN");
}
