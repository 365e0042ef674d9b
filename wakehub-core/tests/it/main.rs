//! Integration tests of wakehub-core, compiled as one binary.

mod docker;
mod e2e;
mod engine;
mod layers;
mod model;
mod model_props;
mod planner;
mod planner_props;
#[cfg(feature = "wasm")]
mod plugins;
mod proxmox;
mod store;
mod support;
mod topology_file;
mod wol_ssh;
