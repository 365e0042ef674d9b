//! Stacks of containers described by compose files (pure: no I/O). [`compose`] reads the
//! accepted subset of the Compose specification into a normalized model whose digest is a
//! version's identity; [`render`] writes a model back as a compose file in one canonical
//! form (what the API shows and diffs).

pub mod compose;
mod forms;
mod render;

pub use compose::{
    Compose, ComposeError, Condition, Healthcheck, MAX_COMPOSE_BYTES, Mount, Network, Port, Restart, Service, Volume,
    parse_compose,
};
pub use render::render;
