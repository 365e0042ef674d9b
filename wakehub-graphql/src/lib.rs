//! # wakehub-graphql
//!
//! The GraphQL API of WakeHub and the `wakehub` reference binary.
//!
//! - [`schema`]: the schema (queries, mutations, subscriptions), embeddable in any axum app.
//! - [`server`]: the reference HTTP server: auth, limits, GraphiQL, WebSockets, metrics.
//! - [`metrics`]: Prometheus metrics fed from the engine's events.
//! - [`render`]: terminal renderings for the command line.

pub mod metrics;
pub mod render;
pub mod schema;
pub mod server;
