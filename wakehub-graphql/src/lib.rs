//! # wakehub-graphql
//!
//! The GraphQL API of WakeHub, embeddable in any axum application. The `wakehub` reference
//! binary (`src/bin/wakehub/`: the command line, `serve`, terminal renderings) is built on
//! this library's public API only.
//!
//! - [`schema`]: the schema (queries, mutations, subscriptions), embeddable in any axum app.
//! - [`server`]: the reference HTTP server: auth, limits, GraphiQL, WebSockets, metrics.
//! - [`metrics`]: Prometheus metrics fed from the engine's events.

pub mod metrics;
pub mod schema;
pub mod server;
