//! Home Assistant over a real Mosquitto broker: the discovery documents checked against Home
//! Assistant's published MQTT switch schema, exactly the pinned or tagged nodes the bridge's
//! identity sees; states following the journal; a command from Home Assistant starting a
//! node as that identity, one outside its scope refused and journaled; availability online,
//! then offline (the broker's last will) when the bridge is gone.

use std::collections::BTreeMap;
use std::time::Duration;

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use wakehub_core::connector::{PowerState, Registry};
use wakehub_core::engine::{Engine, EngineConfig};
use wakehub_core::homeassistant::{BrokerTls, Identity, Options, run};
use wakehub_core::model::{Origin, Role, Scope};
use wakehub_core::secrets::MasterKey;
use wakehub_core::store::{EventQuery, Store};
use wakehub_tests::{Mosquitto, repo, self_signed};

const LAB: &str = r#"
[[node]]
name = "tv"
kind = "physical"
tags = ["media"]
[node.connector]
type = "sim"
start_delay_ms = 200

[[node]]
name = "nas"
kind = "physical"
pinned = true
tags = ["media"]
[node.connector]
type = "sim"
initially = "on"

[[node]]
name = "vault"
kind = "physical"
pinned = true
tags = ["secure"]
[node.connector]
type = "sim"

[[node]]
name = "lab-pc"
kind = "physical"
tags = ["media"]
[node.connector]
type = "sim"
"#;

/// Everything published under `homeassistant/#` and `wakehub/#`, latest per topic.
async fn watch(port: u16) -> (AsyncClient, std::sync::Arc<std::sync::Mutex<BTreeMap<String, String>>>) {
    let (client, mut events) = AsyncClient::new(MqttOptions::new("ha-test", "127.0.0.1", port), 64);
    client.subscribe("homeassistant/#", QoS::AtLeastOnce).await.unwrap();
    client.subscribe("wakehub/#", QoS::AtLeastOnce).await.unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(BTreeMap::new()));
    let s = seen.clone();
    tokio::spawn(async move {
        while let Ok(e) = events.poll().await {
            if let Event::Incoming(Packet::Publish(p)) = e {
                s.lock().unwrap().insert(p.topic.clone(), String::from_utf8_lossy(&p.payload).into_owned());
            }
        }
    });
    (client, seen)
}

async fn until(what: &str, seen: &std::sync::Arc<std::sync::Mutex<BTreeMap<String, String>>>, topic: &str, want: &str) {
    for _ in 0..200 {
        if seen.lock().unwrap().get(topic).map(String::as_str) == Some(want) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what}: {topic} never `{want}`: {:?}", seen.lock().unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_appear_as_switches_and_obey_within_the_identitys_scope() {
    let broker = Mosquitto::start();
    let store = Store::open_in_memory(MasterKey::generate()).unwrap();
    store.import(&crate::support::parse(LAB), Origin::Operator).unwrap();
    let e = Engine::new(store, Registry::builtin(), EngineConfig::default()).unwrap();
    e.observe(&e.store().topology().unwrap()).await;
    let (client, seen) = watch(broker.port).await;

    // Exposed: pinned or tagged `media`, within scope `tag:media` (vault is pinned but not in it).
    let mut options = Options::new("127.0.0.1", broker.port);
    options.tags = vec!["media".into()];
    let who = Identity { name: "ha".into(), role: Role::Operator, scope: "tag:media".parse::<Scope>().unwrap() };
    let bridge = tokio::spawn(run(e.clone(), options, who));
    until("availability", &seen, "wakehub/status", "online").await;
    until("state", &seen, "wakehub/nas/state", "ON").await;
    until("state", &seen, "wakehub/tv/state", "OFF").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let configs: BTreeMap<String, serde_json::Value> = seen
        .lock()
        .unwrap()
        .iter()
        .filter(|(t, _)| t.starts_with("homeassistant/"))
        .map(|(t, p)| (t.clone(), serde_json::from_str(p).unwrap()))
        .collect();
    assert_eq!(
        configs.keys().collect::<Vec<_>>(),
        [
            "homeassistant/switch/wakehub_lab_pc/config",
            "homeassistant/switch/wakehub_nas/config",
            "homeassistant/switch/wakehub_tv/config"
        ]
    );
    // Each document as Home Assistant's MQTT switch schema says.
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(repo().join("tests/peers/ha-mqtt-switch.schema.json")).unwrap())
            .unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    for (topic, doc) in &configs {
        let errors: Vec<String> = validator.iter_errors(doc).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{topic}: {errors:?}");
    }
    assert_eq!(configs["homeassistant/switch/wakehub_tv/config"]["command_topic"], "wakehub/tv/set");
    // The schema refuses what Home Assistant would (a document without its command topic).
    let mut broken = configs["homeassistant/switch/wakehub_tv/config"].clone();
    broken.as_object_mut().unwrap().remove("command_topic");
    assert!(!validator.is_valid(&broken));

    // Home Assistant turns tv on: a start cascade by `mqtt:ha`, and the state follows.
    client.publish("wakehub/tv/set", QoS::AtLeastOnce, false, "ON").await.unwrap();
    until("the start", &seen, "wakehub/tv/state", "ON").await;
    let t = e.store().topology().unwrap();
    for _ in 0..100 {
        if e.observe(&t).await[&t.by_name("tv").unwrap().id] == PowerState::On {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let cascades = e.store().cascades(&Default::default()).unwrap();
    assert_eq!(cascades[0].requested_by.as_deref(), Some("mqtt:ha"));
    // vault is outside the identity's scope: refused, journaled, still off.
    client.publish("wakehub/vault/set", QoS::AtLeastOnce, false, "ON").await.unwrap();
    let vault = t.by_name("vault").unwrap().id;
    let mut refused = Vec::new();
    for _ in 0..100 {
        refused = e
            .store()
            .find_events(&EventQuery {
                kinds: vec!["power-refused".into()],
                node: Some(vault),
                limit: 10,
                ..Default::default()
            })
            .unwrap();
        if !refused.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(refused.len(), 1, "the refusal is journaled");
    assert_eq!(e.observe(&t).await[&vault], PowerState::Off);
    assert!(!seen.lock().unwrap().contains_key("wakehub/vault/state"));

    // The bridge is gone: the broker tells Home Assistant (its last will).
    bridge.abort();
    until("the last will", &seen, "wakehub/status", "offline").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bridge_reaches_a_tls_broker_only_through_its_pinned_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, fp) = self_signed(dir.path(), "broker.test");
    let broker = Mosquitto::start_tls(&cert, &key);
    let store = Store::open_in_memory(MasterKey::generate()).unwrap();
    store.import(&crate::support::parse(LAB), Origin::Operator).unwrap();
    let e = Engine::new(store, Registry::builtin(), EngineConfig::default()).unwrap();
    e.observe(&e.store().topology().unwrap()).await;
    // The test's own client watches on the plain listener.
    let (_client, seen) = watch(broker.port).await;
    let who = || Identity { name: "ha".into(), role: Role::Operator, scope: "*".parse::<Scope>().unwrap() };
    let options = |tls: Option<BrokerTls>| {
        let mut o = Options::new("127.0.0.1", broker.tls_port.unwrap());
        o.tls = tls;
        o
    };

    // Another certificate's pin, or the system's authorities: no connection, nothing published.
    for tls in [BrokerTls::Pinned(["00"; 32].join(":")), BrokerTls::SystemRoots] {
        let bridge = tokio::spawn(run(e.clone(), options(Some(tls.clone())), who()));
        tokio::time::sleep(Duration::from_secs(2)).await;
        bridge.abort();
        assert!(seen.lock().unwrap().is_empty(), "{tls:?}: {:?}", seen.lock().unwrap());
    }
    // A pin that is no fingerprint: the bridge ends at once, said in the log.
    let bad = tokio::spawn(run(e.clone(), options(Some(BrokerTls::Pinned("AB:CD".into()))), who()));
    tokio::time::timeout(Duration::from_secs(5), bad).await.expect("ends at once").unwrap();

    // Its own certificate pinned: connected over TLS, the switches published.
    let bridge = tokio::spawn(run(e.clone(), options(Some(BrokerTls::Pinned(fp))), who()));
    until("availability over TLS", &seen, "wakehub/status", "online").await;
    until("state over TLS", &seen, "wakehub/nas/state", "ON").await;
    bridge.abort();
}
