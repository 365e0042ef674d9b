//! Machines through the API and the CLI, against a real Debian machine (`DebianMachine`):
//! `refreshMachine` for operators within their scope, `machine` and `Node.machine` for
//! everyone who sees the node, messages acknowledged by a person, the refresh journaled;
//! `wakehub refresh FILE NODE` prints the same and exits by outcome.

use std::process::Command;

use serde_json::{Value, json};
use wakehub_tests::DebianMachine;

use crate::support::{Server, bin, code, token};

const REFRESH: &str = "mutation($n: ID!) { refreshMachine(node: $n) {
    refresh { outcome errorCode actor }
    machine { state { summary updates securityUpdates keptBack held rebootRequired aptProblems os }
              upgrades { name installed candidate security keptBack held } } } }";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_refresh_machines_everyone_in_scope_reads_them() {
    let machine = DebianMachine::start();
    let lab = machine.node("deb", "").replacen("kind = \"physical\"\n", "kind = \"physical\"\ntags = [\"lab\"]\n", 1)
        + "[[node]]\nname = \"toy\"\nkind = \"physical\"\n[node.connector]\ntype = \"sim\"\n";
    let s = Server::with_config(&lab, &[]);
    let operator = token(&s, "lab-op", &["--role", "operator", "--nodes", "tag:lab"]);
    let viewer = token(&s, "wall", &["--role", "viewer"]);
    let elsewhere = token(&s, "other-op", &["--role", "operator", "--nodes", "tag:media"]);

    // Before any refresh: a machine with no state yet.
    let d = s.gql("{ node(id: \"deb\") { isMachine machine { summary } } }", json!({})).await;
    assert_eq!(d["node"], json!({"isMachine": true, "machine": null}));

    let (_, r) = s.post_as(Some(&operator), REFRESH, json!({"n": "deb"})).await;
    let m = &r["data"]["refreshMachine"];
    assert_eq!(m["refresh"], json!({"outcome": "ok", "errorCode": null, "actor": "lab-op"}), "{r}");
    let state = &m["machine"]["state"];
    assert_eq!(
        (&state["updates"], &state["securityUpdates"], &state["keptBack"], &state["held"]),
        (&json!(5), &json!(1), &json!(1), &json!(1)),
        "{state}"
    );
    assert_eq!(state["os"], "Debian GNU/Linux 12 (bookworm)");
    assert_eq!(state["aptProblems"], true);
    let upgrades = m["machine"]["upgrades"].as_array().unwrap();
    assert_eq!(upgrades[0]["name"], "demo-libssl", "security first");
    assert_eq!(upgrades[0]["security"], true);

    // Everyone who sees the node reads its state and messages; acknowledging is an
    // operator's.
    let q = "{ node(id: \"deb\") { machine { summary updates } }
              machine(node: \"deb\") { messages { id source severity text } refreshes { outcome actor } } }";
    let (_, v) = s.post_as(Some(&viewer), q, json!({})).await;
    assert_eq!(v["data"]["node"]["machine"]["updates"], 5, "{v}");
    let messages = v["data"]["machine"]["messages"].as_array().unwrap().clone();
    let apt = messages.iter().find(|m| m["source"] == "apt").unwrap();
    assert!(apt["text"].as_str().unwrap().contains("/srv/missing"), "{apt}");
    let ack = "mutation($n: ID!, $m: ID!) { acknowledgeMachineMessage(node: $n, message: $m) }";
    let (_, v) = s.post_as(Some(&viewer), ack, json!({"n": "deb", "m": apt["id"]})).await;
    assert_eq!(code(&v), "FORBIDDEN", "{v}");
    let (_, v) = s.post_as(Some(&operator), ack, json!({"n": "deb", "m": apt["id"]})).await;
    assert_eq!(v["data"]["acknowledgeMachineMessage"], true, "{v}");
    let d = s
        .gql("{ machine(node: \"deb\") { messages(includeAcknowledged: true) { id acknowledgedBy } } }", json!({}))
        .await;
    let acked = d["machine"]["messages"].as_array().unwrap().iter().find(|m| m["id"] == apt["id"]).unwrap().clone();
    assert_eq!(acked["acknowledgedBy"], "lab-op");

    // A viewer may not refresh; an operator of other nodes does not see this one; a node
    // WakeHub cannot reach over SSH is not a machine.
    let (_, v) = s.post_as(Some(&viewer), REFRESH, json!({"n": "deb"})).await;
    assert_eq!(code(&v), "FORBIDDEN", "{v}");
    let (_, v) = s.post_as(Some(&elsewhere), REFRESH, json!({"n": "deb"})).await;
    assert_eq!(code(&v), "NOT_FOUND", "{v}");
    let v = s.gql_err("{ machine(node: \"toy\") { state { summary } } }", json!({})).await;
    assert_eq!(v["extensions"]["code"], "VALIDATION", "{v}");

    // The refresh is in the journal, with its actor and summary.
    let d = s
        .gql(
            "{ events(kinds: [\"machine-refreshed\"]) { nodes { payload {
                 ... on MachineRefreshed { outcome actor summary updates } } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        d["events"]["nodes"][0]["payload"],
        json!({"outcome": "ok", "actor": "lab-op", "summary": "5 updates (1 security)", "updates": 5})
    );
}

#[test]
fn the_cli_refreshes_a_machine_from_a_topology_file() {
    let machine = DebianMachine::start();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("lab.toml");
    std::fs::write(&file, machine.node("deb", "")).unwrap();
    let out = Command::new(bin()).arg("refresh").arg(&file).arg("deb").output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.starts_with("deb: 5 updates (1 security)\n"), "{stdout}");
    assert!(stdout.contains("upgrade  demo-libssl  1.0 → 1.0+deb12u1  [security]"), "{stdout}");
    assert!(stdout.contains("demo-app     1.0 → 2.0  [kept back by upgrade]"), "{stdout}");
    assert!(stdout.contains("new      demo-newdep (full-upgrade installs it)"), "{stdout}");

    let out = Command::new(bin()).args(["refresh", "--json"]).arg(&file).arg("deb").output().unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["outcome"], "ok");
    assert_eq!(v["snapshot"]["os"]["codename"], "bookworm");

    // An action one-shot: its output live, then its report; exit by its outcome.
    let with_cmd = machine.node("deb", "hello_command = \"echo hello; echo bye\"");
    std::fs::write(&file, &with_cmd).unwrap();
    let out = Command::new(bin()).arg("action").arg(&file).args(["deb", "command:hello"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.starts_with("hello\nbye\n\n# command:hello on deb: succeeded in "), "{stdout}");
    let out = Command::new(bin()).arg("action").arg(&file).args(["deb", "docker-prune"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("docker-prune failed (exit_status)"));
    let out = Command::new(bin()).arg("action").arg(&file).args(["deb", "command:nope"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("offers no action `command:nope`"));

    // Refused credentials: exit 1, the code on stderr.
    std::fs::write(&file, machine.node("deb", "").replace(wakehub_tests::ROOT_PASSWORD, "wrong")).unwrap();
    let out = Command::new(bin()).arg("refresh").arg(&file).arg("deb").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("(AUTH_FAILED)"), "{}", String::from_utf8_lossy(&out.stderr));
}

async fn execution_status(s: &Server, id: &Value) -> Value {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let d = s
            .gql(
                "query($id: ID!) { execution(id: $id) { status errorKind report log { url sha256 bytes retention } } }",
                json!({"id": id}),
            )
            .await;
        let e = d["execution"].clone();
        if !["queued", "running"].contains(&e["status"].as_str().unwrap_or_default()) {
            return e;
        }
        assert!(std::time::Instant::now() < until, "{e}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actions_through_the_api_their_log_route_and_a_crash_that_interrupts_without_rerunning() {
    use crate::support::{MODERN, Ws};
    let machine = DebianMachine::start();
    let lab = machine.node("deb", "hello_command = \"echo hello from the machine\"").replacen(
        "kind = \"physical\"\n",
        "kind = \"physical\"\ntags = [\"lab\"]\n",
        1,
    );
    let s = Server::with_config(&lab, &[]);
    let operator = token(&s, "lab-op", &["--role", "operator", "--nodes", "tag:lab"]);
    let outsider = token(&s, "other", &["--role", "admin", "--nodes", "tag:media"]);

    let d = s.gql("{ machine(node: \"deb\") { actions } }", json!({})).await;
    assert_eq!(d["machine"]["actions"], json!(["upgrade", "reboot", "docker-prune", "command:hello"]));
    let run = "mutation($a: String!) { runAction(node: \"deb\", action: $a) { id status actor } }";
    let (_, v) = s.post_as(Some(&operator), run, json!({"a": "command:hello"})).await;
    let hello = v["data"]["runAction"].clone();
    assert_eq!((&hello["status"], &hello["actor"]), (&json!("queued"), &json!("lab-op")), "{v}");
    let (_, v) = s.post_as(Some(&operator), run, json!({"a": "command:echo pwned"})).await;
    assert_eq!(code(&v), "VALIDATION", "no free text: {v}");
    let posing = "mutation { runAction(node: \"deb\", action: \"upgrade\", mode: \"maintenance\") { id } }";
    let (_, v) = s.post_as(Some(&operator), posing, json!({})).await;
    assert_eq!(code(&v), "VALIDATION", "only a maintenance run's actions are in mode maintenance: {v}");

    let done = execution_status(&s, &hello["id"]).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert!(done["report"].as_str().unwrap().starts_with("# command:hello on deb: succeeded"), "{done}");
    // The log: downloaded with a token that sees the machine, its SHA-256 in a header.
    let url = format!("{}{}", s.base, done["log"]["url"].as_str().unwrap());
    let get = |token: Option<String>| {
        let url = url.clone();
        async move {
            let mut req = reqwest::Client::new().get(&url);
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            req.send().await.unwrap()
        }
    };
    let resp = get(Some(operator.clone())).await;
    assert_eq!(resp.status(), 200);
    let sha = resp.headers()["x-content-sha256"].to_str().unwrap().to_owned();
    assert_eq!(sha, done["log"]["sha256"].as_str().unwrap());
    assert_eq!(resp.text().await.unwrap(), "hello from the machine");
    assert_eq!(get(Some(outsider.clone())).await.status(), 404, "out of scope is not found");
    assert_eq!(get(None).await.status(), 401);
    // The log again, as a subscription: an ended action gives its kept log.
    let mut ws = Ws::connect(&s.ws_url, MODERN, json!({"Authorization": format!("Bearer {}", s.token)})).await.unwrap();
    ws.subscribe("1", "subscription($e: ID!) { executionLog(execution: $e) }", json!({"e": hello["id"]})).await;
    let line = ws.next_data(std::time::Duration::from_secs(10)).await.unwrap();
    assert_eq!(line["data"]["executionLog"], "hello from the machine", "{line}");
    // Pinned, it is kept until changed.
    let d = s
        .gql("mutation($e: ID!) { setLogRetention(execution: $e, retention: \"pinned\") }", json!({"e": hello["id"]}))
        .await;
    assert_eq!(d["setLogRetention"], true);

    // An upgrade waiting for another dpkg's lock is running when WakeHub is killed: after
    // the restart it is `interrupted`, and it is not run again.
    let mut holder = machine
        .chrooted_command(
            "/usr/bin/perl",
            &[
                "-e",
                "use Fcntl; open(my $f, '>>', '/var/lib/dpkg/lock-frontend') or die; \
                 my $l = pack('s s x4 q q i x4', F_WRLCK, 0, 0, 0, 0); fcntl($f, F_SETLK, $l) or die; \
                 print \"locked\\n\"; $| = 1; sleep 60;",
            ],
        )
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(holder.stdout.take().unwrap()), &mut line).unwrap();
    let (_, v) = s.post_as(Some(&operator), run, json!({"a": "upgrade"})).await;
    let upgrade = v["data"]["runAction"]["id"].clone();
    loop {
        let d = s.gql("query($id: ID!) { execution(id: $id) { status } }", json!({"id": upgrade})).await;
        if d["execution"]["status"] == "running" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let mut s = s;
    s.kill9();
    let _ = holder.kill();
    let _ = holder.wait();
    let s = s.restart(&[]);
    let d = s.gql("query($id: ID!) { execution(id: $id) { status errorKind } }", json!({"id": upgrade})).await;
    assert_eq!(d["execution"], json!({"status": "interrupted", "errorKind": "interrupted"}));
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let d = s.gql("{ machine(node: \"deb\") { executions { action status } state { running } } }", json!({})).await;
    assert_eq!(
        d["machine"]["executions"],
        json!([{"action": "upgrade", "status": "interrupted"}, {"action": "command:hello", "status": "succeeded"}]),
        "nothing runs twice"
    );
    // The timeline tells it, newest first, with severities and actors.
    let d = s.gql("{ machine(node: \"deb\") { timeline { kind severity actor summary } } }", json!({})).await;
    let timeline = d["machine"]["timeline"].as_array().unwrap().clone();
    let interrupted =
        timeline.iter().find(|t| t["summary"].as_str().unwrap().starts_with("upgrade interrupted")).unwrap();
    assert_eq!((&interrupted["kind"], &interrupted["severity"]), (&json!("action"), &json!("error")), "{timeline:?}");
    assert!(
        timeline
            .iter()
            .any(|t| t["summary"].as_str().unwrap().starts_with("command:hello succeeded") && t["actor"] == "lab-op"),
        "{timeline:?}"
    );
    assert!(timeline.iter().any(|t| t["kind"] == "refresh" && t["actor"] == "wakehub"), "{timeline:?}");
}
