//! # wakehub-graphql
//!
//! The GraphQL API of WakeHub, embeddable in any axum application. The `wakehub` reference
//! binary (`src/bin/wakehub/`: the command line, `serve`, terminal renderings) is built on
//! this library's public API only.
//!
//! - [`schema`]: the schema (queries, mutations, subscriptions), embeddable in any axum app.
//! - [`server`]: the reference HTTP server: auth, limits, WebSockets, metrics, and the web
//!   dashboard and GraphiQL (`web`, the npm build in `web/dist` embedded in the binary).
//! - [`metrics`]: Prometheus metrics fed from the engine's events.
//!
//! ## Features
//!
//! | feature | default | what it adds |
//! | --- | --- | --- |
//! | `plugins` | on | connector plugins (WebAssembly components, wasmtime): the `plugins` query and `resetPlugin` mutation, `schema::build_with_plugins`, `server::ServerConfig::plugins`, the binary's `--plugins` options |
//!
//! Without `plugins`, wasmtime is not compiled and the schema has no `plugins` or
//! `resetPlugin` field.

mod leader;
pub mod metrics;
pub mod proxy;
pub mod schema;
pub mod server;
mod web;
