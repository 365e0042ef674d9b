//! Integration tests of the `wakehub` binary and the GraphQL server, as one test binary.

mod access;
mod api;
mod cli;
mod dashboard;
mod discovery;
mod energy;
mod exploits;
mod front;
mod gql_client;
mod homeassistant;
mod idle;
mod machines;
mod maintenance;
mod notifications;
mod plugins;
mod postgres;
mod proxy;
mod schedules;
mod schema;
mod stacks;
mod support;
mod ws;
