//! # wakehub-core
//!
//! The library behind WakeHub: it powers a homelab on and off as a whole. Ask for one
//! service and it brings up what the service depends on and what it runs on, in order,
//! waiting until each is really up; stop it and it stops what cannot run without it, then
//! re-evaluates what is no longer used.
//!
//! - [`model`]: nodes, the hosting tree and the dependency graph (pure, no I/O).
//! - [`topology_file`]: the declarative TOML topology file.
//! - [`store`]: SQLite persistence (migrations, topology, encrypted credentials).
//! - [`secrets`]: the master key and AES-256-GCM sealing.
//! - [`connector`]: the `Connector` trait every platform implements, and the simulator.
//! - [`engine`]: the pure planner and the executor that runs cascades.
//! - [`events`]: the journal's events.
//!
//! ## Cargo features
//!
//! | feature | default | what it adds |
//! | --- | --- | --- |
//! | `sim` | yes | the simulated connector (`type = "sim"`) for tests and the demo |
//! | `docker` | yes | the Docker connector (`type = "docker"`, bollard) |
//! | `proxmox` | yes | the Proxmox VE connector (`type = "proxmox"`, reqwest + rustls) |

pub mod connector;
pub mod engine;
pub mod events;
pub mod model;
pub mod plan;
#[cfg(feature = "wasm")]
pub mod plugin;
pub mod secrets;
pub mod store;
pub mod topology_file;

/// The attribute connector implementations put on `impl Connector for …`.
pub use async_trait::async_trait;
/// The stream type of [`Connector::watch`](connector::Connector::watch) and
/// [`Engine::subscribe`](engine::Engine::subscribe).
pub use futures::stream::BoxStream;
