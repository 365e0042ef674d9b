//! The GraphQL schema, embeddable in any axum (or other) application: build it with
//! [`build`] over an [`Engine`], then serve it with `async-graphql-axum` or use
//! [`crate::server::router`], which adds authentication, limits, GraphiQL and metrics.
//!
//! The schema itself does not authenticate: that is the transport's job
//! ([`crate::server`]), so an embedder can put it behind their own auth.
//!
//! One module per resource, each with its types, its queries and its mutations: `nodes`,
//! `links`, `discovery`, `cascades`, `events`, `plan`, `proposals`, `machines`, `maintenance`, `schedules`, `stacks`, `plugins` (the
//! `plugins` feature), `topology` and `accounts` (the caller, users, API tokens). [`Query`] and [`Mutation`] merge the per-resource
//! objects; `subscription` holds the subscriptions. Shared by all: `enums` (power states,
//! actions, statuses), `shared` (the per-request view, id parsing, times, page sizes) and
//! `error` (the stable `extensions.code` list).

mod access;
mod accounts;
mod cascades;
mod discovery;
mod energy;
mod enums;
mod error;
mod events;
mod idle;
mod links;
mod machines;
mod maintenance;
mod nodes;
mod notifications;
mod plan;
#[cfg(feature = "plugins")]
mod plugins;
mod proposals;
mod schedules;
mod shared;
mod stacks;
mod subscription;
mod topology;

use std::sync::Arc;

use async_graphql::{MergedObject, Schema, SchemaBuilder};
use wakehub_core::engine::Engine;

pub use access::Caller;
pub use error::api_error;
#[cfg(feature = "plugins")]
pub use plugins::Plugins;
pub use subscription::Subscription;

use crate::metrics::Metrics;
#[cfg(feature = "plugins")]
use wakehub_core::plugin::PluginHost;

// `Query` and `Mutation` carry their rustdoc under `cfg(doc)` only: async-graphql publishes a
// merged object's doc comment as its SDL description, and the committed SDL has none.
#[derive(MergedObject, Default)]
#[cfg_attr(
    doc,
    doc = "The query root: the per-resource queries, merged. The merge order is the field order \
           of `Query` in the SDL (`schema.graphql`): node, nodes, cascade, cascades, events, plan, \
           proposals, machine, maintenance (windows, plan, runs), powerSchedules, notifications (rules, deliveries), energy, stacks (stack, stacks, stackCommand, stackDiff), plugins, runningCascades, me, instance, users, tokens."
)]
#[cfg_attr(not(doc), allow(missing_docs))]
pub struct Query(
    nodes::NodesQuery,
    cascades::CascadesQuery,
    events::EventsQuery,
    plan::PlanQuery,
    proposals::ProposalsQuery,
    machines::MachinesQuery,
    maintenance::MaintenanceQuery,
    schedules::SchedulesQuery,
    notifications::NotificationsQuery,
    energy::EnergyQuery,
    stacks::StacksQuery,
    #[cfg(feature = "plugins")] plugins::PluginsQuery,
    cascades::RunningQuery,
    accounts::AccountsQuery,
);

#[derive(MergedObject, Default)]
#[cfg_attr(
    doc,
    doc = "The mutation root: the per-resource mutations, merged. The merge order is the field \
           order of `Mutation` in the SDL: nodes (create, update, delete), discovery (discover, \
           adopt), links, cascades (start, stop, cancel, rerun), proposals, machines (refresh, \
           actions, acknowledge), maintenance (save, delete, run), power schedules (save, delete), \
           notifications (save, delete, test), the energy price, stacks (save a version, run and cancel commands), plugins, topology (import, export), accounts (users, tokens)."
)]
#[cfg_attr(not(doc), allow(missing_docs))]
pub struct Mutation(
    nodes::NodesMutation,
    discovery::DiscoveryMutation,
    links::LinksMutation,
    cascades::CascadesMutation,
    proposals::ProposalsMutation,
    machines::MachinesMutation,
    maintenance::MaintenanceMutation,
    schedules::SchedulesMutation,
    notifications::NotificationsMutation,
    energy::EnergyMutation,
    stacks::StacksMutation,
    #[cfg(feature = "plugins")] plugins::PluginsMutation,
    topology::TopologyMutation,
    accounts::AccountsMutation,
);

/// The WakeHub schema.
pub type WakehubSchema = Schema<Query, Mutation, Subscription>;

/// What a list field costs in query complexity: as many times its items' cost (lists are
/// unbounded; pages cost `first` times theirs), so nesting lists cannot fan out unseen.
pub(crate) const LIST_FANOUT: usize = 10;

/// Bounds that keep a hostile client from making the server work without bound.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Maximum query depth.
    pub depth: usize,
    /// Maximum query complexity: each field costs 1, a list [`LIST_FANOUT`] times its
    /// items, a page `first` times its items.
    pub complexity: usize,
    /// Maximum page size (`first`).
    pub max_page: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self { depth: 12, complexity: 5000, max_page: 500 }
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

/// The schema over `engine`, with its limits and data, but no plugin host.
fn builder(
    engine: Engine,
    limits: Limits,
    metrics: Option<Arc<Metrics>>,
) -> SchemaBuilder<Query, Mutation, Subscription> {
    let mut builder = Schema::build(Query::default(), Mutation::default(), Subscription)
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
    Schema::build(Query::default(), Mutation::default(), Subscription).finish().sdl()
}
