//! `wakehub serve --mqtt` with a real Mosquitto and its own clients (`mosquitto_sub`,
//! `mosquitto_pub`), the server reaching it over TLS with its self-signed certificate pinned
//! (`--mqtt-tls-fingerprint`): the pinned node is discovered as a switch, a command from the broker
//! starts it as the token `--mqtt-as` names; a token that does not exist stops the server at
//! start with the reason.

use std::process::Command;
use std::time::Duration;

use serde_json::json;
use wakehub_tests::{Mosquitto, self_signed};

use crate::support::{Server, bin};

const LAB: &str = "[[node]]\nname = \"tv\"\nkind = \"physical\"\npinned = true\n[node.connector]\ntype = \"sim\"\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_bridges_home_assistant_as_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, fp) = self_signed(dir.path(), "broker.test");
    let broker = Mosquitto::start_tls(&cert, &key);
    // The clients of this test on the plain listener; the server over TLS.
    let port = broker.port.to_string();
    let tls = format!("127.0.0.1:{}", broker.tls_port.unwrap());
    let s = Server::with_config(LAB, &["--mqtt", &tls, "--mqtt-as", "tests", "--mqtt-tls-fingerprint", &fp]);
    let out = Command::new("mosquitto_sub")
        .args(["-h", "127.0.0.1", "-p", &port, "-t", "homeassistant/switch/wakehub_tv/config", "-C", "1", "-W", "15"])
        .output()
        .expect("mosquitto_sub (apt-get install mosquitto-clients)");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{out:?}\n{}", s.log()));
    assert_eq!(doc["command_topic"], "wakehub/tv/set");
    let out = Command::new("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-p", &port, "-t", "wakehub/tv/set", "-m", "ON"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let mut status = json!(null);
    for _ in 0..100 {
        status = s.gql("{ node(id: \"tv\") { status } }", json!({})).await["node"]["status"].clone();
        if status == "ON" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, "ON", "{}", s.log());
    let d = s.gql("{ cascades(first: 1) { nodes { requestedBy } } }", json!({})).await;
    assert_eq!(d["cascades"]["nodes"][0]["requestedBy"], "mqtt:tests");

    // An identity that does not exist: the server says so and does not start.
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(bin())
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--mqtt",
            &format!("127.0.0.1:{port}"),
            "--mqtt-as",
            "nobody",
            "--db",
        ])
        .arg(dir.path().join("w.db"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--mqtt-as nobody: no active API token"), "{out:?}");
}
