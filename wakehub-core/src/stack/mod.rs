//! Stacks of containers described by compose files (pure: no I/O). [`compose`] reads the
//! accepted subset of the Compose specification into a normalized model whose digest is a
//! version's identity.

pub mod compose;
mod forms;

pub use compose::{
    Compose, ComposeError, Condition, Healthcheck, MAX_COMPOSE_BYTES, Mount, Network, Port, Restart, Service, Volume,
    parse_compose,
};
