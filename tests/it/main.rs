//! WakeHub against real peers, compiled as one binary: each connector against its peer,
//! the plugin host against hostile and real plugins, and the end-to-end story on machines
//! that really wake. Every peer comes from the `wakehub_tests` harness.

mod docker;
mod e2e;
mod homeassistant;
mod idle;
mod lab;
mod machines;
mod maintenance;
mod meters;
mod notify;
mod plugins;
mod proxmox;
mod stack_commands;
mod stack_machine;
mod stacks;
/// The lab helpers the core's own tests use (one file, shared).
#[path = "../../wakehub-core/tests/it/support.rs"]
#[allow(dead_code)] // shared with the core's tests, which use the rest
mod support;
mod wol_ssh;
