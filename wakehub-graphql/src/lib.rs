//! # wakehub-graphql
//!
//! The `wakehub` reference binary and, as the GraphQL issue lands, the GraphQL schema that
//! embeds into any axum application. Today it holds the command-line presentation helpers.

pub mod render;
