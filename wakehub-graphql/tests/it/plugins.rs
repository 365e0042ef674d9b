//! Connector plugins in the server: `serve --plugins DIR`, the `plugins` query, a plugin
//! node driven through the API, and `check --plugins`.

use std::process::Command;

use serde_json::json;

use crate::support::{Server, bin};
use wakehub_tests::{HomeAssistant, plugins};

fn lab(base: &str) -> String {
    wakehub_tests::homeassistant::nas_plug(base, "env:WAKEHUB_TEST_HA_TOKEN", "")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_loads_plugins_lists_them_and_drives_their_nodes() {
    let token = "ha-token-for-the-api-test";
    let ha = HomeAssistant::start(token);
    let dir = plugins::copy(&["http-switch"]);
    std::fs::write(dir.path().join("broken.wasm"), b"garbage").unwrap();
    // The token reaches the server through its environment (an `env:` secret).
    let plugins = dir.path().display().to_string();
    let server = Server::with_config_env(&lab(&ha.url), &["--plugins", &plugins], &[("WAKEHUB_TEST_HA_TOKEN", token)]);
    assert!(server.log().contains("plugin not loaded"), "the garbage file is reported:\n{}", server.log());

    let d = server
        .gql(
            "{ plugins { name version witVersion kinds kindDetails { name startTimeoutMs typicalStartMs } capabilities
                         status faults configSchema } }",
            json!({}),
        )
        .await;
    let p = &d["plugins"][0];
    assert_eq!(d["plugins"].as_array().unwrap().len(), 1, "{d}");
    assert_eq!(
        (p["name"].as_str(), p["witVersion"].as_str(), p["status"].as_str()),
        (Some("http-switch"), Some("0.3.0"), Some("READY"))
    );
    assert_eq!(p["kinds"], json!(["switch"]));
    assert_eq!(p["kindDetails"], json!([{"name": "switch", "startTimeoutMs": 30000, "typicalStartMs": 1000}]));
    assert!(p["capabilities"].as_array().unwrap().contains(&json!("http")), "{p}");
    assert_eq!(p["configSchema"]["required"], json!(["on_url", "off_url", "status_url"]));

    let d = server.gql("mutation { startNode(id: \"nas-plug\") { id } }", json!({})).await;
    let id = d["startNode"]["id"].as_str().unwrap().to_owned();
    assert_eq!(server.wait_cascade(&id).await, "COMPLETED", "{}", server.log());
    let d = server.gql("{ node(id: \"nas-plug\") { kind status connector { type settings } } }", json!({})).await;
    assert_eq!(d["node"]["kind"], "switch");
    assert_eq!(d["node"]["status"], "ON");
    assert_eq!(d["node"]["connector"]["settings"]["token"], json!({"secret": "env:WAKEHUB_TEST_HA_TOKEN"}));
    // A plugin kind is accepted by the API's node creation too.
    let d = server
        .gql(
            "mutation($i: NodeInput!) { createNode(input: $i) { kind } }",
            json!({"i": {"name": "other-plug", "kind": "switch", "connector": {"type": "plugin:http-switch",
                "on_url": format!("{}/on", ha.url), "off_url": format!("{}/off", ha.url), "status_url": format!("{}/s", ha.url)}}}),
        )
        .await;
    assert_eq!(d["createNode"]["kind"], "switch");
    assert!(!server.log().contains(token), "the token never reaches the log");
}

#[test]
fn check_validates_plugin_kinds_and_keys() {
    let dir = plugins::copy(&["http-switch"]);
    let file = dir.path().join("lab.toml");
    std::fs::write(&file, lab("http://127.0.0.1:1")).unwrap();
    let plugins = dir.path().display().to_string();
    let out = Command::new(bin()).args(["check", "--plugins", &plugins]).arg(&file).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("nas-plug"));
    // Without the plugin, its kind is unknown.
    let out = Command::new(bin()).arg("check").arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("switch"), "{}", String::from_utf8_lossy(&out.stderr));
    // The plugin's own validation: an unknown key.
    std::fs::write(&file, lab("http://127.0.0.1:1").replace("state_pointer", "state_ponter")).unwrap();
    let out = Command::new(bin()).args(["check", "--plugins", &plugins]).arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("unknown key `state_ponter`"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The plugin's declared schema is enforced by the host (a required key, a type, an
    // unknown key), and reported in the same run as the file's structural problems.
    let broken = lab("http://127.0.0.1:1")
        .replace("status_url = ", "# status_url = ")
        .replace("state_pointer", "state_ponter")
        .replace("[node.connector]", "[node.connector]\nexpect_status = \"200\"")
        + "\n[[node]]\nname = \"c1\"\nkind = \"contianer\"\n[node.connector]\ntype = \"sim\"\n";
    std::fs::write(&file, broken).unwrap();
    let out = Command::new(bin()).args(["check", "--plugins", &plugins]).arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for expected in [
        "node `c1`, field `kind`: unknown kind `contianer`",
        "node `nas-plug`, field `connector.status_url`: plugin:http-switch: `status_url` is required",
        "node `nas-plug`, field `connector.expect_status`: plugin:http-switch: `expect_status`:",
        "node `nas-plug`, field `connector.state_ponter`: plugin:http-switch: unknown key `state_ponter`",
    ] {
        assert!(stderr.contains(expected), "missing {expected:?} in:\n{stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_plugins_fail_their_cascades_and_the_server_keeps_serving() {
    let dir = plugins::copy(&["hostile"]);
    let lab: String = ["loop", "alloc", "panic", "ok", "http"]
        .iter()
        .map(|m| format!("[[node]]\nname = \"g-{m}\"\nkind = \"gremlin\"\n[node.connector]\ntype = \"plugin:hostile\"\nmode = \"{m}\"\nwhen = \"start\"\nelsewhere = \"http://127.0.0.2:9/\"\n\n"))
        .collect();
    let plugins = dir.path().display().to_string();
    let server = Server::with_config(&lab, &["--plugins", &plugins, "--plugin-call-timeout", "2s"]);
    // Before each start the engine observes the node (a successful plugin call), so these
    // faults are never 3 in a row: no quarantine.
    for (node, code) in [
        ("g-loop", "PLUGIN_TIMEOUT"),
        ("g-alloc", "PLUGIN_MEMORY"),
        ("g-ok", ""),
        ("g-panic", "PLUGIN_TRAP"),
        ("g-http", "CAPABILITY_DENIED"),
    ] {
        let d = server.gql(&format!("mutation {{ startNode(id: \"{node}\") {{ id }} }}"), json!({})).await;
        let id = d["startNode"]["id"].as_str().unwrap().to_owned();
        let status = server.wait_cascade(&id).await;
        let d = server.gql("query($id: ID!) { cascade(id: $id) { errorCode errorMessage } }", json!({"id": id})).await;
        if code.is_empty() {
            assert_eq!(status, "COMPLETED", "{d}");
            continue;
        }
        assert_eq!(status, "FAILED");
        assert_eq!(d["cascade"]["errorCode"], code, "{node}: {d}");
    }
    // Still serving, and the denial is counted in the metrics.
    let d = server.gql("{ nodes { name } }", json!({})).await;
    assert_eq!(d["nodes"].as_array().unwrap().len(), 5);
    let metrics = reqwest::get(format!("{}/metrics", server.base)).await.unwrap().text().await.unwrap();
    let denials: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("wakehub_capability_denials_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no denial counter in:\n{metrics}"));
    assert!(denials >= 1, "{metrics}");
    // A plugin whose validation loops holds up that request only: it fails when its time
    // is up, while the server answers others meanwhile.
    let create = server.gql_err(
        "mutation($i: NodeInput!) { createNode(input: $i) { name } }",
        json!({"i": {"name": "g-stuck", "kind": "gremlin", "connector": {"type": "plugin:hostile", "mode": "validate-loop"}}}),
    );
    let other = async {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let began = std::time::Instant::now();
        server.gql("{ plugins { name } }", json!({})).await;
        began.elapsed()
    };
    let (e, took) = tokio::join!(create, other);
    assert_eq!(e["extensions"]["code"], "VALIDATION", "{e}");
    assert!(e["message"].as_str().unwrap().contains("did not finish"), "{e}");
    assert!(took < std::time::Duration::from_secs(1), "another request waited {took:?}");
    let d = server.gql("{ plugins { name status faults } }", json!({})).await;
    assert_eq!(
        (d["plugins"][0]["name"].as_str(), d["plugins"][0]["status"].as_str()),
        (Some("hostile"), Some("READY"))
    );
    assert!(d["plugins"][0]["faults"].as_u64().unwrap() >= 3, "{d}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quarantined_plugin_is_listed_and_can_be_reset() {
    let dir = plugins::copy(&["hostile"]);
    // Three nodes whose status panics: the monitor's first observation faults three times.
    let lab: String = (1..=3)
        .map(|i| format!("[[node]]\nname = \"g{i}\"\nkind = \"gremlin\"\n[node.connector]\ntype = \"plugin:hostile\"\nmode = \"panic\"\n\n"))
        .collect();
    let plugins = dir.path().display().to_string();
    let server = Server::with_config(&lab, &["--plugins", &plugins]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let d = server.gql("{ plugins { status faults } }", json!({})).await;
        if d["plugins"][0]["status"] == "QUARANTINED" {
            assert_eq!(d["plugins"][0]["faults"], 3, "{d}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never quarantined: {d}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // Its nodes fail at once while it is quarantined.
    let d = server.gql("mutation { startNode(id: \"g1\") { id } }", json!({})).await;
    let id = d["startNode"]["id"].as_str().unwrap().to_owned();
    assert_eq!(server.wait_cascade(&id).await, "FAILED");
    let d = server.gql("query($id: ID!) { cascade(id: $id) { errorCode } }", json!({"id": id})).await;
    assert_eq!(d["cascade"]["errorCode"], "PLUGIN_QUARANTINED");

    let d = server.gql("mutation { resetPlugin(name: \"hostile\") { name status faults } }", json!({})).await;
    assert_eq!(d["resetPlugin"], json!({"name": "hostile", "status": "READY", "faults": 3}));
    let e = server.gql_err("mutation { resetPlugin(name: \"nope\") { name } }", json!({})).await;
    assert_eq!(e["extensions"]["code"], "NOT_FOUND");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_one_shot_commands_load_plugins_and_a_server_without_them_says_so() {
    let token = "ha-token-for-the-cli-test";
    let ha = HomeAssistant::start(token);
    let dir = plugins::copy(&["http-switch"]);
    let file = dir.path().join("lab.toml");
    std::fs::write(&file, lab(&ha.url)).unwrap();
    let plugins = dir.path().display().to_string();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();

    // `plan`, `start` and `stop` take `--plugins` like `check`, and drive the real switch.
    let out = Command::new(bin())
        .args(["plan", "--plugins", &plugins])
        .arg(&file)
        .args(["start", "nas-plug", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan["steps"][0]["node"], "nas-plug", "{plan}");
    let out = Command::new(bin())
        .args(["start", "--plugins", &plugins])
        .arg(&file)
        .arg("nas-plug")
        .env("WAKEHUB_TEST_HA_TOKEN", token)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}{}", text(&out.stdout), text(&out.stderr));
    assert!(text(&out.stdout).contains("completed"), "{}", text(&out.stdout));
    let state: serde_json::Value = reqwest::Client::new()
        .get(format!("{}/api/states/switch.nas_plug", ha.url))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(state["state"], "on", "{state}");
    // Without the plugin, its kind is unknown and the command says so.
    let out = Command::new(bin()).arg("plan").arg(&file).args(["start", "nas-plug"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("switch"), "{}", text(&out.stderr));

    // A server restarted without `--plugins` on a database holding plugin nodes warns at
    // start, and a start answers PLUGIN_NOT_LOADED naming the option.
    let server = Server::with_config_env(&lab(&ha.url), &["--plugins", &plugins], &[("WAKEHUB_TEST_HA_TOKEN", token)]);
    let server = server.restart(&[]);
    assert!(server.log().contains("node `nas-plug` cannot be observed or powered"), "{}", server.log());
    assert!(server.log().contains("--plugins"), "{}", server.log());
    let e = server.gql_err("mutation { startNode(id: \"nas-plug\") { id } }", json!({})).await;
    assert_eq!(e["extensions"]["code"], "PLUGIN_NOT_LOADED", "{e}");
    assert!(e["message"].as_str().unwrap().contains("--plugins"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_check_describes_a_file_and_plugin_call_drives_a_device() {
    let token = "ha-token-for-plugin-call";
    let ha = HomeAssistant::start(token);
    let wasm = plugins::file("http-switch");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let plugin = |args: &[&str]| {
        Command::new(bin()).arg("plugin").args(args).env("WAKEHUB_TEST_HA_TOKEN", token).output().unwrap()
    };

    let out = plugin(&["check", wasm.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("http-switch 0.1.0 — wakehub:connector@0.3.0"), "{stdout}");
    assert!(stdout.contains("kind switch: start within 30s, typically 1s, stop within 30s, typically 1s"), "{stdout}");
    assert!(stdout.contains("\"status_url\""), "{stdout}");
    assert!(stdout.lines().any(|l| l.starts_with("capabilities:") && l.contains("http")), "{stdout}");
    // A sample configuration: every problem, with its key.
    let out = plugin(&["check", wasm.to_str().unwrap(), "--config", "on_url = \"http://x/on\", stat_url = 1"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    for key in ["connector.off_url", "connector.status_url", "connector.stat_url"] {
        assert!(stderr.contains(key), "{key} in {stderr}");
    }

    // On the desk: the Home Assistant switch, through the plugin, with an `env:` secret.
    let keys = format!(
        "on_url = \"{b}/api/services/switch/turn_on\", on_body = '{{\"entity_id\": \"switch.nas_plug\"}}', \
         off_url = \"{b}/api/services/switch/turn_off\", status_url = \"{b}/api/states/switch.nas_plug\", \
         state_pointer = \"/state\", token = \"env:WAKEHUB_TEST_HA_TOKEN\"",
        b = ha.url
    );
    let call = |op: &str| plugin(&["call", wasm.to_str().unwrap(), "switch", op, "--config", &keys]);
    let out = call("status");
    assert_eq!((out.status.code(), text(&out.stdout).trim()), (Some(0), "status: off"), "{}", text(&out.stderr));
    let out = call("start");
    assert_eq!(text(&out.stdout).trim(), "start: accepted", "{}", text(&out.stderr));
    assert_eq!(text(&call("status").stdout).trim(), "status: on");
    // What it measures: nothing until the table says where to read it.
    let out = call("measure");
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).starts_with("error: UNSUPPORTED"), "{}", text(&out.stderr));
    let measuring = format!("{keys}, in_use_pointer = \"/state\"");
    let out = plugin(&["call", wasm.to_str().unwrap(), "switch", "measure", "--config", &measuring]);
    assert_eq!(text(&out.stdout).trim(), "measure: in use", "{}", text(&out.stderr));
    // A wrong token: the plugin's error code, the token nowhere.
    let wrong = keys.replace("env:WAKEHUB_TEST_HA_TOKEN", "not-the-token");
    let out = plugin(&["call", wasm.to_str().unwrap(), "switch", "status", "--config", &wrong]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).starts_with("error: AUTH_FAILED"), "{}", text(&out.stderr));
    assert!(!text(&out.stderr).contains("not-the-token"));
}

#[test]
fn a_new_plugin_passes_its_tests_builds_and_loads_as_created() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = crate::support::repo();
    let sdk = repo.join("plugins/sdk");
    let new = |name: &str| {
        Command::new(bin())
            .args(["plugin", "new", name, "--dir"])
            .arg(tmp.path())
            .arg("--sdk")
            .arg(&sdk)
            .output()
            .unwrap()
    };
    let out = new("desk-plug");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let root = tmp.path().join("desk-plug");
    // Built where the repository's plugins are, so their dependencies are compiled once.
    let target = std::env::var_os("WAKEHUB_PLUGINS_TARGET_DIR").map_or_else(|| repo.join("plugins/target"), Into::into);
    let cargo = |args: &[&str]| {
        let out = Command::new(env!("CARGO"))
            .args(args)
            .args(["--offline", "-j", "2"])
            .current_dir(&root)
            .env("CARGO_TARGET_DIR", &target)
            .output()
            .unwrap();
        let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "cargo {args:?}:\n{all}");
        all
    };
    let tested = cargo(&["test"]);
    assert!(tested.contains("test result: ok. 5 passed"), "{tested}");
    cargo(&["build", "--release", "--target", "wasm32-wasip2"]);
    let wasm = target.join("wasm32-wasip2/release/desk_plug.wasm");
    let out = Command::new(bin()).args(["plugin", "check"]).arg(&wasm).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let described = String::from_utf8_lossy(&out.stdout);
    assert!(described.starts_with("desk-plug 0.1.0 — wakehub:connector@0.3.0"), "{described}");
    assert!(described.contains("kind plug: start within 10s, typically 300ms"), "{described}");

    // Nothing is overwritten; a name must be a node name.
    let again = new("desk-plug");
    assert!(!again.status.success() && String::from_utf8_lossy(&again.stderr).contains("already exists"));
    assert!(!new("Desk Plug").status.success());
}
