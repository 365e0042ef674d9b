//! # wakehub-core
//!
//! The library behind WakeHub: it powers a homelab on and off as a whole. Ask for one
//! service and it brings up what the service depends on and what it runs on, in order,
//! waiting until each is really up; stop it and it stops what cannot run without it, then
//! re-evaluates what is no longer used.
//!
//! - [`model`]: the vocabulary (nodes, kinds, [`PowerState`](model::PowerState),
//!   [`Action`](model::Action), [`ErrorCode`](model::ErrorCode)), the hosting tree and the
//!   dependency graph (pure, no I/O).
//! - [`plan`]: the pure planner: topology + observed states + request → a plan.
//! - [`topology_file`]: the declarative TOML topology file.
//! - [`store`]: SQLite persistence (migrations, topology, encrypted credentials, journal).
//! - [`secrets`]: the master key and AES-256-GCM sealing.
//! - [`connector`]: the `Connector` trait every platform implements, its `NodeContext`
//!   delegate, readiness probes, and the built-in connectors.
//! - `plugin` (feature `wasm`): the host for connectors written as WebAssembly components.
//! - [`engine`]: the executor that runs cascades, journals and publishes every step.
//! - [`events`]: the journal's events.
//! - [`energy`]: the energy report (time on and off from the journal, a node's draw).
//! - `homeassistant` (feature `homeassistant`): nodes as Home Assistant switches over MQTT.
//! - `notify` (feature `notify`): notification rules read from the journal, delivered to
//!   ntfy, signed webhooks and e-mail.
//!
//! ## A first lab
//!
//! A topology built in code (a NAS, a Proxmox host and an LXC on it that needs the NAS) in
//! a database file, an engine over it with the built-in connectors, a subscription to the
//! journal, and one start by name. The `sim` connector stands in for real machines; swap
//! in `wol-ssh`, `proxmox`, `docker` or your own [`Connector`](connector::Connector).
//!
//! ```
//! use futures::StreamExt;
//! use wakehub_core::connector::Registry;
//! use wakehub_core::engine::{Engine, EngineConfig};
//! use wakehub_core::events::CascadeStatus;
//! use wakehub_core::model::{Capability, ConnectorConfig, Kind, NodeSpec};
//! use wakehub_core::secrets::MasterKey;
//! use wakehub_core::store::Store;
//!
//! # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! let store = Store::open(&dir.path().join("lab.db"), MasterKey::generate())?;
//! let sim = ConnectorConfig::new("sim").with("initially", "off").with("start_delay_ms", 20);
//! let nas = store.add_node(NodeSpec::new("nas", Kind::Physical, sim.clone()), None)?;
//! let pve = NodeSpec::new("pve", Kind::Physical, sim.clone()).with_offer(Capability::Proxmox);
//! let pve = store.add_node(pve, None)?;
//! let jellyfin = store.add_node(NodeSpec::new("jellyfin", Kind::Lxc, sim), Some(pve))?;
//! store.add_dependency(jellyfin, nas)?;
//!
//! let engine = Engine::new(store, Registry::builtin(), EngineConfig::default())?;
//! let events = engine.subscribe(None);
//! let cascade = engine.start("jellyfin").await?; // accepted at once, `pending`
//! let done = engine.wait(cascade.id).await?;
//! assert_eq!(done.status, CascadeStatus::Completed);
//! assert_eq!(done.total_steps, 3); // nas and pve (in parallel), then jellyfin
//!
//! engine.shutdown().await; // the subscription ends once the engine is shut down
//! let kinds: Vec<&str> = events.map(|e| e.map(|e| e.kind.name())).collect::<Vec<_>>().await
//!     .into_iter().collect::<Result<_, _>>()?;
//! assert_eq!(kinds.last(), Some(&"cascade-complete"));
//! # Ok(())
//! # }
//! ```
//!
//! ## Cargo features
//!
//! | feature | default | what it adds |
//! | --- | --- | --- |
//! | `sim` | yes | the simulated connector (`type = "sim"`) for tests and the demo |
//! | `docker` | yes | the Docker connector (`type = "docker"`, bollard) |
//! | `proxmox` | yes | the Proxmox VE connector (`type = "proxmox"`, reqwest + rustls, pinned TLS) |
//! | `wol-ssh` | yes | the physical-machine connector (`type = "wol-ssh"`: Wake-on-LAN on, SSH off with russh; `shutdown_via = "proxmox"` also needs `proxmox`) |
//! | `homeassistant` | yes | Home Assistant over MQTT (rumqttc): MQTT discovery, states, commands |
//! | `notify` | yes | notifications: ntfy, HMAC-signed webhooks, SMTP (lettre) |
//! | `wasm` | no | the `plugin` host: third-party connectors as WebAssembly components (wasmtime), `type = "plugin:<name>"`; brings the shared transports (pinned TLS, SSH, Wake-on-LAN), not the connectors |
//!
//! ## Floors
//!
//! Each module imports only the ones below it (checked by a test, see `ARCHITECTURE.md`):
//! [`secrets`] → [`model`] → [`plan`], [`events`], [`topology_file`] → [`connector`] →
//! [`store`] → `plugin` → [`engine`].

pub mod connector;
pub mod energy;
pub mod engine;
pub mod events;
#[cfg(feature = "homeassistant")]
pub mod homeassistant;
pub mod machine;
pub mod model;
#[cfg(feature = "notify")]
pub mod notify;
pub mod plan;
#[cfg(feature = "wasm")]
pub mod plugin;
pub mod secrets;
pub mod stack;
pub mod store;
pub mod topology_file;

/// The attribute connector implementations put on `impl Connector for …`.
pub use async_trait::async_trait;
/// The stream type of [`Connector::watch`](connector::Connector::watch) and
/// [`Engine::subscribe`](engine::Engine::subscribe).
pub use futures::stream::BoxStream;
