//! Discovery: what a host's platform lists (`Discovery`, `DiscoveryReport` and its guests),
//! the `discover` mutation, and `adoptNode`, which turns a discovered node into a configured
//! one.

use async_graphql::{Context, ID, Json, Object, SimpleObject};
use wakehub_core::engine::Engine;
use wakehub_core::model::NodeState;
use wakehub_core::model::Origin;
use wakehub_core::model::Role;
use wakehub_core::store::{Disappeared, DiscoveredNode, DiscoveryRecord, DiscoveryReport};

use super::access::RoleGuard;
use super::enums::{GqlNodeState, GqlPowerState};
use super::error::ApiResultExt;
use super::nodes::{GqlNode, NodeInput, node_after};
use super::shared::{View, time};

/// What a host's platform reported about a guest.
pub struct GqlDiscovery(pub DiscoveryRecord);

#[Object(name = "Discovery")]
impl GqlDiscovery {
    /// The connector that listed it (`proxmox`, `docker`).
    async fn source(&self) -> &str {
        &self.0.source
    }
    /// Its identity on the host (`qemu/100`, `lxc/101`, `container/paperless`).
    async fn key(&self) -> &str {
        &self.0.key
    }
    /// Everything the API said: vmid or container id, type, status, image, ports, tags or
    /// labels.
    async fn details(&self) -> Json<serde_json::Value> {
        Json(self.0.details.clone())
    }
    /// The power state the platform reported then.
    async fn status(&self) -> GqlPowerState {
        self.0.status.into()
    }
    /// First listed.
    async fn first_seen(&self) -> String {
        time(self.0.first_seen_ms)
    }
    /// Last listed.
    async fn last_seen(&self) -> String {
        time(self.0.last_seen_ms)
    }
    /// When the platform stopped listing it (null while it is listed).
    async fn gone_at(&self) -> Option<String> {
        self.0.gone_at_ms.map(time)
    }
}

/// A guest one discovery run found.
pub struct GqlDiscoveredGuest {
    view: View,
    guest: DiscoveredNode,
}

#[Object(name = "DiscoveredGuest")]
impl GqlDiscoveredGuest {
    /// The node that stands for it (discovered, or configured and linked).
    async fn node(&self) -> Option<GqlNode> {
        self.view.topology.node(self.guest.node).is_some().then(|| self.view.node(self.guest.node))
    }
    /// Its identity on the host.
    async fn key(&self) -> &str {
        &self.guest.key
    }
    /// Configured (adopted or written by hand) or only discovered.
    async fn state(&self) -> GqlNodeState {
        match self.guest.state {
            NodeState::Discovered => GqlNodeState::Discovered,
            _ => GqlNodeState::Configured,
        }
    }
    /// The power state the platform reported.
    async fn status(&self) -> GqlPowerState {
        self.guest.status.into()
    }
}

/// A guest the platform listed before and no longer does.
pub struct GqlDisappeared {
    view: View,
    gone: Disappeared,
}

#[Object(name = "DisappearedGuest")]
impl GqlDisappeared {
    /// Its node name.
    async fn name(&self) -> &str {
        &self.gone.name
    }
    /// Its identity on the host.
    async fn key(&self) -> &str {
        &self.gone.key
    }
    /// The node, when it stays (configured, or still used); null when the discovered node
    /// was removed.
    async fn kept(&self) -> Option<GqlNode> {
        self.gone.kept.filter(|k| self.view.topology.node(*k).is_some()).map(|k| self.view.node(k))
    }
}

/// What one discovery run changed.
#[derive(SimpleObject)]
#[graphql(name = "DiscoveryReport")]
pub struct GqlDiscoveryReport {
    /// Guests seen for the first time, now discovered nodes (adopt them with `adoptNode`).
    pub added: Vec<GqlDiscoveredGuest>,
    /// Guests already known, refreshed.
    pub updated: Vec<GqlDiscoveredGuest>,
    /// Guests no longer listed.
    pub disappeared: Vec<GqlDisappeared>,
}

impl GqlDiscoveryReport {
    /// The report of one run, its guests resolved in `view`.
    pub(crate) fn new(view: &View, report: DiscoveryReport) -> Self {
        let guests = |v: Vec<DiscoveredNode>| {
            v.into_iter().map(|guest| GqlDiscoveredGuest { view: view.clone(), guest }).collect()
        };
        GqlDiscoveryReport {
            added: guests(report.added),
            updated: guests(report.updated),
            disappeared: report
                .disappeared
                .into_iter()
                .map(|gone| GqlDisappeared { view: view.clone(), gone })
                .collect(),
        }
    }
}

/// Part of [`Mutation`](super::Mutation): `discover`, `adoptNode`.
#[derive(Default)]
pub struct DiscoveryMutation;

#[Object]
impl DiscoveryMutation {
    /// Lists the guests a host runs (its Proxmox VMs and LXCs, its Docker containers) and
    /// stores the new ones as discovered nodes under it. Running it again refreshes what is
    /// known, never duplicates, and reports what disappeared.
    #[graphql(guard = "RoleGuard(Role::Admin)")]
    async fn discover(&self, ctx: &Context<'_>, host: ID) -> async_graphql::Result<GqlDiscoveryReport> {
        let engine = ctx.data::<Engine>()?;
        let host = View::load(ctx).await?.require(&host)?;
        let report = engine.discover(host).await.api()?;
        Ok(GqlDiscoveryReport::new(&View::load(ctx).await?, report))
    }

    /// Turns a discovered node into a configured one: as discovered (its connector table is
    /// pre-filled), or completed with `input` (without a `parent` it stays on its host).
    #[graphql(guard = "RoleGuard(Role::Admin)")]
    async fn adopt_node(&self, ctx: &Context<'_>, id: ID, input: Option<NodeInput>) -> async_graphql::Result<GqlNode> {
        let engine = ctx.data::<Engine>()?;
        let node = View::load(ctx).await?.require(&id)?;
        let draft = match input {
            Some(input) => Some(input.draft(engine)?),
            None => None,
        };
        engine.store().run(move |s| s.adopt_node(node, draft, Origin::Api)).await.api()?;
        node_after(ctx, node).await
    }
}
