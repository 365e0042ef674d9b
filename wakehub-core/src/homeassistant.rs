//! Home Assistant over MQTT (feature `homeassistant`): every pinned node, and every node
//! carrying one of the chosen tags, that the bridge's identity may see appears in Home
//! Assistant as a switch through MQTT discovery; its state follows the journal; turning it
//! on or off in Home Assistant asks WakeHub for a start or stop cascade — as that identity,
//! with its role and scope (an operator within its scope; anything else refused and
//! journaled). Availability follows the bridge: `online` once connected, and the broker says
//! `offline` (the last will) when the connection is lost.
//!
//! Topics (`base` is `wakehub` by default, the discovery prefix `homeassistant`):
//! - `{prefix}/switch/wakehub_{node}/config`: the discovery document (retained);
//! - `{base}/{node}/state`: `ON`, `OFF`, or `None` while unknown (retained);
//! - `{base}/{node}/set`: the commands, `ON` or `OFF`;
//! - `{base}/status`: `online` / `offline` (retained).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use futures::StreamExt;
use rumqttc::{AsyncClient, Event as MqttEvent, EventLoop, LastWill, MqttOptions, Packet, QoS};

use crate::engine::Engine;
use crate::events::EventKind;
use crate::model::{Action, ErrorCode, NodeId, NodeState, PowerState, Role, Scope, Topology};
use crate::secrets::SecretString;

/// Where the broker is and what the bridge exposes.
#[derive(Debug, Clone)]
pub struct Options {
    /// The broker's host.
    pub host: String,
    /// Its port (1883).
    pub port: u16,
    /// The user, if the broker wants a login.
    pub username: Option<String>,
    /// Its password.
    pub password: Option<SecretString>,
    /// Home Assistant's discovery prefix (`homeassistant`).
    pub discovery_prefix: String,
    /// The bridge's own topics (`wakehub`).
    pub base: String,
    /// Nodes carrying one of these tags are exposed, beside the pinned ones.
    pub tags: Vec<String>,
    /// TLS to the broker (`mqtts`, port 8883 usually); plain MQTT without it.
    pub tls: Option<BrokerTls>,
}

/// How the broker's certificate is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BrokerTls {
    /// Against the system's certificate authorities.
    SystemRoots,
    /// Exactly the certificate whose SHA-256 is this (`AB:CD:…`): a self-signed broker.
    Pinned(String),
}

impl BrokerTls {
    /// The TLS client configuration: a bad fingerprint, or no usable system root, is an error.
    pub fn client_config(&self) -> Result<rustls::ClientConfig, String> {
        match self {
            BrokerTls::Pinned(fp) => crate::connector::pinned_tls(fp),
            BrokerTls::SystemRoots => {
                let mut roots = rustls::RootCertStore::empty();
                let found = rustls_native_certs::load_native_certs();
                let (added, _) = roots.add_parsable_certificates(found.certs);
                if added == 0 {
                    return Err(format!("no system certificate authority could be read ({:?})", found.errors));
                }
                let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
                Ok(rustls::ClientConfig::builder_with_provider(provider)
                    .with_safe_default_protocol_versions()
                    .map_err(|e| format!("TLS setup: {e}"))?
                    .with_root_certificates(roots)
                    .with_no_client_auth())
            }
        }
    }
}

impl Options {
    /// A broker at `host:port` with Home Assistant's defaults.
    pub fn new(host: impl Into<String>, port: u16) -> Options {
        Options {
            host: host.into(),
            port,
            username: None,
            password: None,
            discovery_prefix: "homeassistant".into(),
            base: "wakehub".into(),
            tags: Vec::new(),
            tls: None,
        }
    }
}

/// Who the bridge acts as: an API token's name, role and scope.
#[derive(Debug, Clone)]
pub struct Identity {
    /// Its name (`mqtt:NAME` on the cascades it asks for).
    pub name: String,
    /// Its role.
    pub role: Role,
    /// Its scope.
    pub scope: Scope,
}

/// A node's state as a switch's: `ON` while on or starting, `OFF` while off or stopping,
/// `None` (Home Assistant's "unknown") otherwise.
pub fn switch_state(state: Option<PowerState>) -> &'static str {
    match state {
        Some(PowerState::On | PowerState::Starting) => "ON",
        Some(PowerState::Off | PowerState::Stopping) => "OFF",
        _ => "None",
    }
}

/// The nodes exposed: configured, pinned or tagged as asked, within the identity's scope.
pub fn exposed(topology: &Topology, options: &Options, who: &Identity) -> BTreeMap<String, NodeId> {
    topology
        .nodes()
        .filter(|n| n.spec.state == NodeState::Configured && who.scope.allows(n))
        .filter(|n| n.spec.pinned || n.spec.tags.iter().any(|t| options.tags.contains(t)))
        .map(|n| (n.spec.name.clone(), n.id))
        .collect()
}

/// Node `name`'s discovery document: a switch, per Home Assistant's MQTT switch schema.
pub fn discovery(options: &Options, name: &str, kind: &str) -> serde_json::Value {
    let id = format!("wakehub_{}", name.replace('-', "_"));
    serde_json::json!({
        "name": null,
        "unique_id": id,
        "object_id": id,
        "command_topic": format!("{}/{name}/set", options.base),
        "state_topic": format!("{}/{name}/state", options.base),
        "availability_topic": format!("{}/status", options.base),
        "payload_available": "online",
        "payload_not_available": "offline",
        "payload_on": "ON",
        "payload_off": "OFF",
        "state_on": "ON",
        "state_off": "OFF",
        "optimistic": false,
        "retain": false,
        "icon": if kind == "physical" { "mdi:server" } else { "mdi:application" },
        "device": {
            "identifiers": [id],
            "name": name,
            "manufacturer": "WakeHub",
            "model": kind,
        },
        "origin": { "name": "WakeHub", "sw_version": env!("CARGO_PKG_VERSION") },
    })
}

fn config_topic(options: &Options, name: &str) -> String {
    format!("{}/switch/wakehub_{}/config", options.discovery_prefix, name.replace('-', "_"))
}

/// Runs the bridge until the engine shuts down, reconnecting to the broker as needed. A TLS
/// configuration that cannot be built (a bad fingerprint) ends it at once, logged.
pub async fn run(engine: Engine, options: Options, who: Identity) {
    let mut mqtt = MqttOptions::new(format!("wakehub-{}", who.name), options.host.clone(), options.port);
    if let Some(tls) = &options.tls {
        match tls.client_config() {
            Ok(config) => {
                let tls = rumqttc::TlsConfiguration::Rustls(std::sync::Arc::new(config));
                mqtt.set_transport(rumqttc::Transport::tls_with_config(tls));
            }
            Err(e) => return tracing::error!("home assistant: TLS to the broker: {e}"),
        }
    }
    mqtt.set_keep_alive(Duration::from_secs(15));
    mqtt.set_last_will(LastWill::new(format!("{}/status", options.base), "offline", QoS::AtLeastOnce, true));
    if let Some(user) = &options.username {
        mqtt.set_credentials(user, options.password.as_ref().map_or("", |p| p.expose()));
    }
    let (client, events) = AsyncClient::new(mqtt, 64);
    let bridge = Bridge { engine, options, who, client, published: Default::default() };
    tokio::join!(bridge.clone().broker_loop(events), bridge.journal_loop());
}

#[derive(Clone)]
struct Bridge {
    engine: Engine,
    options: Options,
    who: Identity,
    client: AsyncClient,
    published: std::sync::Arc<tokio::sync::Mutex<BTreeSet<String>>>,
}

impl Bridge {
    /// Publishes the discovery documents (removing those no longer exposed), every state and
    /// `online`.
    async fn publish_all(&self) {
        let Ok(topology) = self.engine.store().topology_shared() else { return };
        let nodes = exposed(&topology, &self.options, &self.who);
        let seen = self.engine.last_seen();
        let mut published = self.published.lock().await;
        for gone in published.iter().filter(|n| !nodes.contains_key(*n)) {
            let _ = self.client.publish(config_topic(&self.options, gone), QoS::AtLeastOnce, true, Vec::new()).await;
        }
        for (name, id) in &nodes {
            let kind = topology.node(*id).map(|n| n.spec.kind.to_string()).unwrap_or_default();
            let doc = discovery(&self.options, name, &kind).to_string();
            let _ = self.client.publish(config_topic(&self.options, name), QoS::AtLeastOnce, true, doc).await;
            let state = switch_state(seen.get(id).copied());
            let _ =
                self.client.publish(format!("{}/{name}/state", self.options.base), QoS::AtLeastOnce, true, state).await;
        }
        *published = nodes.keys().cloned().collect();
        let _ = self.client.publish(format!("{}/status", self.options.base), QoS::AtLeastOnce, true, "online").await;
    }

    async fn broker_loop(self, mut events: EventLoop) {
        loop {
            match events.poll().await {
                Ok(MqttEvent::Incoming(Packet::ConnAck(_))) => {
                    let topic = format!("{}/+/set", self.options.base);
                    if let Err(e) = self.client.subscribe(topic, QoS::AtLeastOnce).await {
                        tracing::warn!("home assistant: cannot subscribe: {e}");
                    }
                    let me = self.clone();
                    tokio::spawn(async move { me.publish_all().await });
                }
                Ok(MqttEvent::Incoming(Packet::Publish(p))) => {
                    let me = self.clone();
                    tokio::spawn(async move { me.command(&p.topic, &p.payload).await });
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!("home assistant: the broker: {e}; again in 2 s");
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
            }
        }
    }

    /// A command from Home Assistant, checked against the identity's role and scope.
    async fn command(&self, topic: &str, payload: &[u8]) {
        let Some(name) = topic.strip_prefix(&format!("{}/", self.options.base)).and_then(|t| t.strip_suffix("/set"))
        else {
            return;
        };
        let action = match payload {
            b"ON" => Action::Start,
            b"OFF" => Action::Stop,
            other => {
                return tracing::warn!(node = %name, "home assistant: `{}` is not ON or OFF", String::from_utf8_lossy(other));
            }
        };
        let Ok(topology) = self.engine.store().topology_shared() else { return };
        let Some(node) = topology.by_name(name) else { return };
        let actor = format!("mqtt:{}", self.who.name);
        let allowed = self.who.role.allows(Role::Operator) && self.who.scope.allows(node);
        let exposed = exposed(&topology, &self.options, &self.who).contains_key(name);
        if !allowed || !exposed {
            tracing::warn!(node = %name, "home assistant: {actor} may not {} it", action.as_str());
            let _ = self.engine.journal_refusal(node.id, action, &actor, ErrorCode::Forbidden).await;
            return;
        }
        if let Err(e) = self.engine.request_by(node.id, action, &actor).await {
            tracing::warn!(node = %name, "home assistant: {} refused: {e}", action.as_str());
        }
    }

    /// Follows the journal: a status change of an exposed node is published; a change of
    /// the topology republishes the discovery documents.
    async fn journal_loop(self) {
        let after = self.engine.store().last_event_id().ok().flatten();
        let mut events = self.engine.subscribe(after);
        let mut generation = self.engine.store().topology_shared().ok();
        while let Some(Ok(e)) = events.next().await {
            if let EventKind::StatusChange { name, state, .. } = &e.kind
                && self.published.lock().await.contains(name)
            {
                let topic = format!("{}/{name}/state", self.options.base);
                let _ = self.client.publish(topic, QoS::AtLeastOnce, true, switch_state(Some(*state))).await;
            }
            let now = self.engine.store().topology_shared().ok();
            if now.as_ref().map(std::sync::Arc::as_ptr) != generation.as_ref().map(std::sync::Arc::as_ptr) {
                generation = now;
                self.publish_all().await;
            }
        }
        let _ = self.client.publish(format!("{}/status", self.options.base), QoS::AtLeastOnce, true, "offline").await;
        let _ = self.client.disconnect().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_and_documents() {
        assert_eq!(switch_state(Some(PowerState::Starting)), "ON");
        assert_eq!(switch_state(Some(PowerState::Stopping)), "OFF");
        assert_eq!(switch_state(Some(PowerState::Error)), "None");
        let d = discovery(&Options::new("broker", 1883), "lxc-jellyfin", "lxc");
        assert_eq!(d["unique_id"], "wakehub_lxc_jellyfin");
        assert_eq!(d["command_topic"], "wakehub/lxc-jellyfin/set");
        assert_eq!(
            config_topic(&Options::new("b", 1), "lxc-jellyfin"),
            "homeassistant/switch/wakehub_lxc_jellyfin/config"
        );
    }
}
