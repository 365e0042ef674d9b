//! The GraphQL schema, embeddable in any axum (or other) application: build it with
//! [`build`] over an [`Engine`], then serve it with `async-graphql-axum` or use
//! [`crate::server::router`], which adds authentication, limits, GraphiQL and metrics.
//!
//! The schema itself does not authenticate: that is the transport's job
//! ([`crate::server`]), so an embedder can put it behind their own auth.

mod error;
mod mutation;
mod query;
mod subscription;
mod types;

use std::sync::Arc;

use async_graphql::{Schema, SchemaBuilder};
use wakehub_core::engine::Engine;

pub use error::api_error;
pub use mutation::Mutation;
pub use query::Query;
pub use subscription::Subscription;

use crate::metrics::Metrics;
#[cfg(feature = "plugins")]
use wakehub_core::plugin::PluginHost;

/// The plugin host, if the server loads plugins (schema data read by `plugins` and
/// `resetPlugin`).
#[cfg(feature = "plugins")]
#[derive(Clone)]
pub struct Plugins(pub Option<Arc<PluginHost>>);

/// The WakeHub schema.
pub type WakehubSchema = Schema<Query, Mutation, Subscription>;

/// Bounds that keep a hostile client from making the server work without bound.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Maximum query depth.
    pub depth: usize,
    /// Maximum query complexity (each field costs 1).
    pub complexity: usize,
    /// Maximum page size (`first`).
    pub max_page: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self { depth: 12, complexity: 2000, max_page: 500 }
    }
}

/// Builds the schema over `engine`. With `metrics`, subscriptions are counted. (With the
/// `plugins` feature, the `plugins` query lists none.)
pub fn build(engine: Engine, limits: Limits, metrics: Option<Arc<Metrics>>) -> WakehubSchema {
    let builder = builder(engine, limits, metrics);
    #[cfg(feature = "plugins")]
    let builder = builder.data(Plugins(None));
    builder.finish()
}

/// [`build`], with the plugin host whose plugins the `plugins` query lists.
#[cfg(feature = "plugins")]
pub fn build_with_plugins(
    engine: Engine,
    limits: Limits,
    metrics: Option<Arc<Metrics>>,
    plugins: Option<Arc<PluginHost>>,
) -> WakehubSchema {
    builder(engine, limits, metrics).data(Plugins(plugins)).finish()
}

fn builder(
    engine: Engine,
    limits: Limits,
    metrics: Option<Arc<Metrics>>,
) -> SchemaBuilder<Query, Mutation, Subscription> {
    let mut builder = Schema::build(Query, Mutation, Subscription)
        .data(engine)
        .limit_depth(limits.depth)
        .limit_complexity(limits.complexity)
        .limit_recursive_depth(32)
        .limit_directives(8);
    if let Some(m) = metrics {
        builder = builder.data(m);
    }
    builder.data(limits)
}

/// The schema's SDL (committed as `schema.graphql`).
pub fn sdl() -> String {
    Schema::build(Query, Mutation, Subscription).finish().sdl()
}
