//! Stacks through the API and the CLI against the harness's real dockerd: a version from the
//! topology file, secrets never returned, roles and scope, a malformed file, apply followed to
//! its end with its events, a diff between versions, `kill -9` of the server during a health
//! wait (the command is marked failed, never run again, and the next apply converges), and
//! `wakehub stack apply FILE STACK` with its live output and exit codes.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use wakehub_tests::Dockerd;

use crate::support::{Server, bin, code, token};

const APP: &str = "wakehub-test/app:current";

fn compose(web_command: &str, db_check: &str) -> String {
    format!(
        "services:\n  db:\n    image: {APP}\n    command: [sh, -c, 'echo db up; touch /tmp/ready; exec sleep 600']\n    stop_grace_period: 1s\n    environment:\n      DB_PASSWORD: hunter2-secret-value\n    healthcheck: {{test: [CMD, test, -f, {db_check}], interval: 1s, timeout: 1s, retries: 1}}\n  web:\n    image: {APP}\n    command: {web_command}\n    stop_grace_period: 1s\n    depends_on: {{db: {{condition: service_healthy}}}}\n"
    )
}

fn lab(docker: &Dockerd, stack: &str) -> String {
    format!(
        "[[node]]\nname = \"lab\"\nkind = \"physical\"\noffers = [\"docker\"]\ntags = [\"lab\"]\n[node.connector]\ntype = \"sim\"\ninitially = \"on\"\ndocker_host = \"unix://{}\"\n\n[[node]]\nname = \"media\"\nkind = \"stack\"\nparent = \"lab\"\ntags = [\"lab\"]\n[node.connector]\ntype = \"stack\"\nwait_secs = 20\n{stack}",
        docker.socket.display()
    )
}

const COMMAND: &str = "mutation($s: ID!, $k: StackCommandKind!, $v: Int) {
    runStackCommand(stack: $s, kind: $k, version: $v) { id status kind version } }";

async fn until_final(s: &Server, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let d = s
            .gql(
                "query($id: ID!) { stackCommand(id: $id) { status errorCode errorMessage log startedAt result } }",
                json!({"id": id}),
            )
            .await;
        let c = d["stackCommand"].clone();
        if !["pending", "running"].contains(&c["status"].as_str().unwrap_or_default()) {
            return c;
        }
        assert!(Instant::now() < deadline, "{id} never ended: {c}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stacks_through_the_api_survive_a_kill_during_a_health_wait() {
    let docker = Dockerd::start();
    docker.import_image(APP, None);
    let inline = format!("compose = '''\n{}'''\n", compose("[sleep, '600']", "/tmp/ready"));
    let mut s = Server::with_config(&lab(&docker, &inline), &[]);
    let viewer = token(&s, "wall", &["--role", "viewer"]);
    let elsewhere = token(&s, "other", &["--role", "operator", "--nodes", "tag:media"]);

    // The file's compose file is version 1; its secret is never returned.
    let d = s
        .gql(
            "{ stack(node: \"media\") { name project currentVersion latestVersion drift
                 versions { number compose secrets createdBy note } } }",
            json!({}),
        )
        .await;
    let st = &d["stack"];
    assert_eq!(
        (&st["project"], &st["currentVersion"], &st["latestVersion"]),
        (&json!("media"), &Value::Null, &json!(1))
    );
    let v1 = &st["versions"][0];
    assert_eq!((&v1["secrets"], &v1["createdBy"]), (&json!(["db.DB_PASSWORD"]), &json!("operator")), "{v1}");
    assert!(v1["compose"].as_str().unwrap().contains("DB_PASSWORD: '********'"), "{v1}");
    assert!(!d.to_string().contains("hunter2"), "{d}");

    // Roles and scope: a viewer reads but does not write; another scope does not see it.
    let save =
        "mutation($s: ID!, $c: String!) { saveStackVersion(stack: $s, compose: $c) { created version { number } } }";
    let (_, r) =
        s.post_as(Some(&viewer), save, json!({"s": "media", "c": compose("[sleep, '601']", "/tmp/ready")})).await;
    assert_eq!(code(&r), "FORBIDDEN", "{r}");
    let (_, r) = s.post_as(Some(&elsewhere), COMMAND, json!({"s": "media", "k": "APPLY"})).await;
    assert_eq!(code(&r), "NOT_FOUND", "{r}");
    // A malformed compose file: its stable code, the key and its line; nothing written.
    let (_, r) = s
        .post_as(Some(&s.token), save, json!({"s": "media", "c": "services:\n  a:\n    image: x\n    build: .\n"}))
        .await;
    assert_eq!(code(&r), "COMPOSE_INVALID", "{r}");
    assert!(r["errors"][0]["message"].as_str().unwrap().contains("line 4"), "{r}");

    // Apply, followed to its end; its events were journaled.
    let c = s.gql(COMMAND, json!({"s": "media", "k": "APPLY"})).await;
    assert_eq!(c["runStackCommand"]["status"], "pending");
    let id = c["runStackCommand"]["id"].as_str().unwrap().to_owned();
    let done = until_final(&s, &id).await;
    assert_eq!(done["status"], "done", "{done}");
    assert!(done["log"].as_str().unwrap().contains("db: healthy"), "{done}");
    let ev = s
        .gql(
            "{ events(kinds: [\"stack-command\"]) { edges { node { payload { ... on StackCommandProgress { status kind } } } } } }",
            json!({}),
        )
        .await;
    let statuses: Vec<&str> = ev["events"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["payload"]["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["pending", "running", "done"]);
    let d =
        s.gql("{ stack(node: \"media\") { currentVersion services { service state health } drift } }", json!({})).await;
    assert_eq!(d["stack"]["currentVersion"], 1);
    assert_eq!(
        d["stack"]["services"],
        json!([{"service": "db", "state": "running", "health": "healthy"}, {"service": "web", "state": "running", "health": null}])
    );

    // Version 2 and its diff.
    let r = s.gql(save, json!({"s": "media", "c": compose("[sleep, '601']", "/tmp/ready")})).await;
    assert_eq!(r["saveStackVersion"], json!({"created": true, "version": {"number": 2}}));
    let diff = s.gql("{ stackDiff(stack: \"media\", from: 1, to: 2) }", json!({})).await;
    let diff = diff["stackDiff"].as_str().unwrap();
    assert!(diff.contains("-    - '600'") && diff.contains("+    - '601'"), "{diff}");

    // Version 3 never turns healthy: kill -9 the server while the apply waits for it.
    s.gql(save, json!({"s": "media", "c": compose("[sleep, '600']", "/tmp/never")})).await;
    let c = s.gql(COMMAND, json!({"s": "media", "k": "APPLY", "v": 3})).await;
    let id = c["runStackCommand"]["id"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let d = s.gql("query($id: ID!) { stackCommand(id: $id) { status log } }", json!({"id": id})).await;
        if d["stackCommand"]["log"].as_str().unwrap().contains("web: waiting for db") {
            break;
        }
        assert!(Instant::now() < deadline, "{d}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    s.kill9();
    let s = s.restart(&[]);
    let after =
        s.gql("query($id: ID!) { stackCommand(id: $id) { status errorCode startedAt log } }", json!({"id": id})).await;
    let after = &after["stackCommand"];
    assert_eq!((&after["status"], &after["errorCode"]), (&json!("failed"), &json!("INTERRUPTED")), "{after}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let later = s.gql("query($id: ID!) { stackCommand(id: $id) { status startedAt log } }", json!({"id": id})).await;
    assert_eq!(later["stackCommand"]["startedAt"], after["startedAt"], "never run again");
    assert_eq!(later["stackCommand"]["log"], after["log"]);
    let d = s.gql("{ stack(node: \"media\") { currentVersion drift } }", json!({})).await;
    assert_eq!(d["stack"]["currentVersion"], 1, "{d}");

    // The next apply converges (to version 2).
    let c = s.gql(COMMAND, json!({"s": "media", "k": "APPLY", "v": 2})).await;
    let done = until_final(&s, c["runStackCommand"]["id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "done", "{done}");
    let d = s.gql("{ stack(node: \"media\") { currentVersion drift } }", json!({})).await;
    assert_eq!(d["stack"], json!({"currentVersion": 2, "drift": []}));
}

#[test]
fn the_cli_applies_a_stack_with_live_output_and_exits_by_outcome() {
    let docker = Dockerd::start();
    docker.import_image(APP, None);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("media.yml"), compose("[sleep, '600']", "/tmp/ready")).unwrap();
    let file = dir.path().join("lab.toml");
    std::fs::write(&file, lab(&docker, "compose_file = \"media.yml\"\n")).unwrap();

    let out = Command::new(bin()).args(["stack", "apply"]).arg(&file).arg("media").output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("start cascade") && stdout.contains("db: healthy"), "{stdout}");
    assert!(stdout.contains("media: version 1 applied"), "{stdout}");
    assert!(docker.running("media-web"));

    // A compose file that never turns healthy: exit 1, the code on stderr.
    let bad = dir.path().join("bad.yml");
    std::fs::write(&bad, compose("[sleep, '600']", "/tmp/never")).unwrap();
    let out = Command::new(bin())
        .args(["stack", "apply"])
        .arg(&file)
        .arg("media")
        .arg("--compose")
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stdout));
    assert!(String::from_utf8_lossy(&out.stderr).contains("(UNHEALTHY)"), "{}", String::from_utf8_lossy(&out.stderr));

    // A compose file outside the subset: refused before anything runs, with its line.
    std::fs::write(dir.path().join("media.yml"), "services:\n  a:\n    image: x\n    privileged: true\n").unwrap();
    let out = Command::new(bin()).args(["stack", "apply"]).arg(&file).arg("media").output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("privileged") && stderr.contains("line 4"), "{stderr}");
    let out = Command::new(bin()).arg("check").arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
}
