//! Nodes: the `Node` type (with its connector settings, secrets as references only), the
//! `node` and `nodes` queries, and `createNode`, `updateNode`, `deleteNode` with their
//! `NodeInput`.

use async_graphql::{Context, ID, InputObject, Json, Object, SimpleObject};
use wakehub_core::engine::Engine;
use wakehub_core::model::{ConfigValue, NodeId, NodeState, Origin, Readiness};
use wakehub_core::model::{ErrorCode, Role};
use wakehub_core::topology_file::{self, ParseOptions};

use super::access::RoleGuard;
use super::discovery::GqlDiscovery;
use super::enums::{GqlNodeState, GqlPowerState};
use super::error::{ApiResultExt, api_error};
use super::shared::View;

/// A readiness probe.
#[derive(SimpleObject)]
pub struct GqlReadiness {
    /// `tcp` or `http`.
    pub kind: String,
    /// `host:port` or the URL.
    pub target: String,
    /// The expected HTTP status (http probes).
    pub status: Option<i32>,
}

/// A node's connector: its type and its keys. Secrets appear only as references
/// (`{"secret": "env:VAR"}`, `{"secret": "credential:3"}`), never as values.
#[derive(SimpleObject)]
pub struct GqlConnector {
    /// The connector type (`sim`, `proxmox`…).
    #[graphql(name = "type")]
    pub type_name: String,
    /// Its keys.
    pub settings: Json<serde_json::Value>,
}

fn settings_json(v: &ConfigValue) -> serde_json::Value {
    match v {
        ConfigValue::String(s) => s.clone().into(),
        ConfigValue::Integer(i) => (*i).into(),
        ConfigValue::Float(f) => (*f).into(),
        ConfigValue::Bool(b) => (*b).into(),
        ConfigValue::Array(a) => a.iter().map(settings_json).collect(),
        ConfigValue::Table(t) => t.iter().map(|(k, v)| (k.clone(), settings_json(v))).collect(),
        ConfigValue::Secret(s) => {
            serde_json::json!({ "secret": s.to_reference().unwrap_or_else(|| "<inline>".into()) })
        }
        _ => serde_json::Value::Null,
    }
}

/// A node: a machine, VM, LXC, container, or a plugin-defined thing.
pub struct GqlNode {
    view: View,
    id: NodeId,
}

impl GqlNode {
    /// The node `id` as seen in `view`.
    pub(crate) fn new(view: View, id: NodeId) -> Self {
        GqlNode { view, id }
    }

    /// The nodes among `ids` the caller may see.
    fn visible(&self, ids: impl IntoIterator<Item = NodeId>) -> Vec<GqlNode> {
        ids.into_iter().filter(|c| self.view.visible(*c)).map(|c| self.view.node(c)).collect()
    }
}

#[Object(name = "Node")]
impl GqlNode {
    /// Stable id (`node:N`).
    async fn id(&self) -> ID {
        ID(self.id.to_string())
    }
    /// Unique name.
    async fn name(&self) -> String {
        self.view.topology.name_of(self.id)
    }
    /// `physical`, `vm`, `lxc`, `container`, or a plugin kind.
    async fn kind(&self) -> String {
        self.view.topology.node(self.id).map(|n| n.spec.kind.to_string()).unwrap_or_default()
    }
    /// Configured or discovered.
    async fn state(&self) -> GqlNodeState {
        match self.view.topology.node(self.id).map(|n| n.spec.state) {
            Some(NodeState::Discovered) => GqlNodeState::Discovered,
            _ => GqlNodeState::Configured,
        }
    }
    /// The power state last observed (`UNKNOWN` before the first observation).
    async fn status(&self) -> GqlPowerState {
        self.view.state(self.id).into()
    }
    /// When the server last observed it (RFC 3339; null if it never has).
    async fn observed_at(&self) -> Option<String> {
        let (at, _) = self.view.observed_at(self.id)?;
        Some(humantime::format_rfc3339_millis(at).to_string())
    }
    /// Whether `status` is too old to trust: never observed, or not for longer than the
    /// engine's `stale_after` (90 s by default; the server observes every 30 s).
    async fn stale(&self) -> bool {
        self.view.observed_at(self.id).is_none_or(|(_, stale)| stale)
    }
    /// The service's web address, opened from the dashboard.
    async fn url(&self) -> Option<String> {
        self.view.topology.node(self.id)?.spec.url.clone()
    }
    /// Its inactivity rule: when it counts as idle and is stopped.
    async fn idle(&self) -> Option<super::idle::GqlIdleRule> {
        self.view.topology.node(self.id)?.spec.idle.as_ref().map(Into::into)
    }
    /// What it draws on and off, for the energy report.
    async fn watts(&self) -> Option<super::energy::GqlPowerDraw> {
        self.view.topology.node(self.id)?.spec.power.as_ref().map(Into::into)
    }
    /// What its meter (its `watts.meter`, or itself when another node's meter) read last,
    /// as of the server's last round (every 30 s).
    async fn watts_now(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<super::energy::GqlMeterReading>> {
        let n = self.view.topology.node(self.id);
        let meter = n.and_then(|n| n.spec.power.as_ref()?.meter.as_deref()).and_then(|m| self.view.topology.by_name(m));
        let meter = meter.map_or(self.id, |m| m.id);
        let readings = ctx.data::<Engine>()?.meter_readings();
        Ok(readings.get(&meter).map(Into::into))
    }
    /// How WakeHub's proxy fronts it (host names, path, upstream, TCP wakes).
    async fn proxy(&self) -> Option<super::idle::GqlProxyRoute> {
        self.view.topology.node(self.id)?.spec.proxy.as_ref().map(Into::into)
    }
    /// While it runs under an inactivity rule: its countdown, what it last did and what
    /// keeps it on (as of the server's last check, every 30 s).
    async fn idle_status(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<super::idle::GqlIdleStatus>> {
        let all = ctx.data::<Engine>()?.idle_statuses().api()?;
        let now = super::shared::now_ms();
        Ok(all.iter().find(|s| s.node == self.id).map(|s| super::idle::GqlIdleStatus::new(s, now)))
    }
    /// Whether the caller may start and stop it (an operator or admin whose scope holds it).
    async fn can_power(&self) -> bool {
        self.view.role.allows(Role::Operator) && self.view.visible(self.id)
    }
    /// Whether the caller may change its configuration, links and pin (an admin).
    async fn can_edit(&self) -> bool {
        self.view.role.allows(Role::Admin)
    }
    /// Whether WakeHub can reach it over SSH to know its state (a `host` and an SSH
    /// credential in its table).
    async fn is_machine(&self) -> bool {
        self.view.topology.node(self.id).is_some_and(|n| wakehub_core::engine::is_machine(&n.spec.connector))
    }
    /// Its machine state (updates, reboot, disks…), if it is a machine that was refreshed.
    async fn machine(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<super::machines::GqlMachineState>> {
        let Some(n) = self.view.topology.node(self.id) else { return Ok(None) };
        if !wakehub_core::engine::is_machine(&n.spec.connector) {
            return Ok(None);
        }
        let id = self.id;
        let state = ctx.data::<Engine>()?.store().run(move |s| s.machine_state(id)).await.api()?;
        Ok(state.map(super::machines::GqlMachineState))
    }
    /// Shown on the dashboard.
    async fn pinned(&self) -> bool {
        self.view.topology.node(self.id).is_some_and(|n| n.spec.pinned)
    }
    /// Re-evaluation proposes its shutdown instead of doing it.
    async fn confirm_auto_shutdown(&self) -> bool {
        self.view.topology.node(self.id).is_some_and(|n| n.spec.confirm_auto_shutdown)
    }
    /// Stopped (rather than proposed for shutdown) when a stop leaves it with no running
    /// guest and no user.
    async fn stop_when_empty(&self) -> bool {
        self.view.topology.node(self.id).is_some_and(|n| n.spec.stop_when_empty)
    }
    /// Start timeout (`"5m"`).
    async fn start_timeout(&self) -> String {
        self.view
            .topology
            .node(self.id)
            .map(|n| humantime::format_duration(n.spec.timeouts.start).to_string())
            .unwrap_or_default()
    }
    /// Stop timeout.
    async fn stop_timeout(&self) -> String {
        self.view
            .topology
            .node(self.id)
            .map(|n| humantime::format_duration(n.spec.timeouts.stop).to_string())
            .unwrap_or_default()
    }
    /// The readiness probe, if any.
    async fn readiness(&self) -> Option<GqlReadiness> {
        match self.view.topology.node(self.id)?.spec.readiness.as_ref()? {
            Readiness::Tcp { host, port } => {
                Some(GqlReadiness { kind: "tcp".into(), target: format!("{host}:{port}"), status: None })
            }
            Readiness::Http { url, status } => {
                Some(GqlReadiness { kind: "http".into(), target: url.clone(), status: Some(i32::from(*status)) })
            }
            _ => None,
        }
    }
    /// Capabilities offered to hosted nodes.
    async fn offers(&self) -> Vec<String> {
        self.view
            .topology
            .node(self.id)
            .map(|n| n.spec.offers.iter().map(|c| c.to_string()).collect())
            .unwrap_or_default()
    }
    /// Its connector (secrets as references only).
    async fn connector(&self) -> Option<GqlConnector> {
        let c = &self.view.topology.node(self.id)?.spec.connector;
        let settings = c.settings.iter().map(|(k, v)| (k.clone(), settings_json(v))).collect();
        Some(GqlConnector { type_name: c.type_name.clone(), settings: Json(settings) })
    }
    /// Its tags.
    async fn tags(&self) -> Vec<String> {
        self.view.topology.node(self.id).map(|n| n.spec.tags.iter().cloned().collect()).unwrap_or_default()
    }
    /// The host it runs on (null also when the caller's scope does not hold it).
    async fn parent(&self) -> Option<GqlNode> {
        self.view.topology.parent(self.id).filter(|p| self.view.visible(*p)).map(|p| self.view.node(p))
    }
    /// What runs on it.
    #[graphql(complexity = "super::LIST_FANOUT * child_complexity")]
    async fn children(&self) -> Vec<GqlNode> {
        self.visible(self.view.topology.children(self.id))
    }
    /// What it depends on.
    #[graphql(complexity = "super::LIST_FANOUT * child_complexity")]
    async fn depends_on(&self) -> Vec<GqlNode> {
        self.visible(self.view.topology.dependencies(self.id))
    }
    /// Who depends on it.
    #[graphql(complexity = "super::LIST_FANOUT * child_complexity")]
    async fn dependents(&self) -> Vec<GqlNode> {
        self.visible(self.view.topology.dependents(self.id))
    }
    /// What discovery knows about it (null if it was never listed by its host's platform).
    async fn discovery(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<GqlDiscovery>> {
        let id = self.id;
        let record = ctx.data::<Engine>()?.store().run(move |s| s.discovery(id)).await.api()?;
        Ok(record.map(GqlDiscovery))
    }
    /// Who currently holds it up: nodes that depend on it or run on it and may be running.
    #[graphql(complexity = "super::LIST_FANOUT * child_complexity")]
    async fn held_by(&self) -> Vec<GqlNode> {
        let seen = &self.view.observed.states;
        self.view
            .topology
            .users(self.id, |u| seen.get(&u).is_none_or(|s| s.may_be_running()))
            .into_iter()
            .filter(|c| self.view.visible(*c))
            .map(|c| self.view.node(c))
            .collect()
    }
}

/// A readiness probe: either `tcp` (`host:port`) or `http` (a URL, with the expected
/// `status`, 200 by default).
#[derive(InputObject)]
pub struct ReadinessInput {
    /// `host:port`.
    pub tcp: Option<String>,
    /// A URL.
    pub http: Option<String>,
    /// Expected HTTP status.
    pub status: Option<i32>,
}

/// A node, with the fields of a `[[node]]` table in the topology file.
#[derive(InputObject)]
pub struct NodeInput {
    /// Unique name, `[a-z0-9][a-z0-9-_]*`.
    pub name: String,
    /// `physical`, `vm`, `lxc`, `container`, or a plugin kind.
    pub kind: String,
    /// The host it runs on (id or name).
    pub parent: Option<ID>,
    /// What it depends on (ids or names).
    pub depends_on: Option<Vec<ID>>,
    /// Shown on the dashboard.
    pub pinned: Option<bool>,
    /// Propose its shutdown instead of doing it on re-evaluation.
    pub confirm_auto_shutdown: Option<bool>,
    /// Stop it (rather than propose its shutdown) when a stop leaves it empty.
    pub stop_when_empty: Option<bool>,
    /// `"90s"`, `"5m"`…
    pub start_timeout: Option<String>,
    /// `"90s"`, `"5m"`…
    pub stop_timeout: Option<String>,
    /// Readiness probe.
    pub readiness: Option<ReadinessInput>,
    /// `proxmox`, `docker`.
    pub offers: Option<Vec<String>>,
    /// Free labels (`media`, `lab`): dashboard groups and what access scopes select.
    pub tags: Option<Vec<String>>,
    /// The service's web address (`http` or `https`), opened from the dashboard.
    pub url: Option<String>,
    /// Its inactivity rule: when it counts as idle and is stopped.
    pub idle: Option<super::idle::IdleRuleInput>,
    /// How WakeHub's proxy fronts it.
    pub proxy: Option<super::idle::GqlProxyRoute>,
    /// What it draws, for the energy report.
    pub watts: Option<super::energy::GqlPowerDraw>,
    /// The connector table: `{"type": "sim", …keys}`. Secrets are values (stored
    /// encrypted, never returned) or this node's own `credential:N`; `env:`/`file:`
    /// references are read only from the operator's topology file.
    pub connector: Json<serde_json::Value>,
}

impl NodeInput {
    fn to_json(&self) -> serde_json::Value {
        use serde_json::{Value, json};
        let mut v = json!({ "name": self.name, "kind": self.kind, "connector": self.connector.0 });
        let m = v.as_object_mut().expect("an object literal");
        if let Some(p) = &self.parent {
            m.insert("parent".into(), p.0.clone().into());
        }
        if let Some(d) = &self.depends_on {
            m.insert("depends_on".into(), d.iter().map(|i| Value::from(i.0.clone())).collect());
        }
        if let Some(p) = self.pinned {
            m.insert("pinned".into(), p.into());
        }
        if let Some(c) = self.confirm_auto_shutdown {
            m.insert("confirm_auto_shutdown".into(), c.into());
        }
        if let Some(e) = self.stop_when_empty {
            m.insert("stop_when_empty".into(), e.into());
        }
        if let Some(t) = &self.start_timeout {
            m.insert("start_timeout".into(), t.clone().into());
        }
        if let Some(t) = &self.stop_timeout {
            m.insert("stop_timeout".into(), t.clone().into());
        }
        if let Some(o) = &self.offers {
            m.insert("offers".into(), o.iter().map(|s| Value::from(s.clone())).collect());
        }
        if let Some(t) = &self.tags {
            m.insert("tags".into(), t.iter().map(|s| Value::from(s.clone())).collect());
        }
        if let Some(u) = &self.url {
            m.insert("url".into(), u.clone().into());
        }
        if let Some(i) = &self.idle {
            m.insert("idle".into(), i.to_json());
        }
        if let Some(p) = &self.proxy {
            m.insert("proxy".into(), p.to_json());
        }
        if let Some(w) = &self.watts {
            m.insert("watts".into(), w.to_json());
        }
        if let Some(r) = &self.readiness {
            let mut rm = serde_json::Map::new();
            if let Some(t) = &r.tcp {
                rm.insert("tcp".into(), t.clone().into());
            }
            if let Some(h) = &r.http {
                rm.insert("http".into(), h.clone().into());
            }
            if let Some(s) = r.status {
                rm.insert("status".into(), s.into());
            }
            m.insert("readiness".into(), Value::Object(rm));
        }
        v
    }

    /// Parses the input as the topology file's `[[node]]` table.
    pub(crate) fn draft(&self, engine: &Engine) -> async_graphql::Result<topology_file::NodeDraft> {
        topology_file::parse_node(&self.to_json(), &parse_options(engine)).api()
    }

    /// Its meter, if any, is itself or a node the caller sees (whose readings become this
    /// node's figures): `VALIDATION` otherwise.
    fn check_meter(&self, view: &View) -> async_graphql::Result<()> {
        let Some(meter) = self.watts.as_ref().and_then(|w| w.meter.as_deref()) else { return Ok(()) };
        if meter == self.name || view.resolve(meter).is_some() {
            return Ok(());
        }
        Err(api_error(ErrorCode::Validation, format!("watts.meter: no node `{meter}` (among the nodes you see)")))
    }
}

/// Node kinds the loaded plugins define are accepted.
pub(crate) fn parse_options(engine: &Engine) -> ParseOptions {
    // Through the API: secrets are values, never `env:`/`file:` references.
    // Each connector table is checked by its connector as it is parsed (unknown type, keys,
    // a plugin's schema): every problem comes back with its field.
    ParseOptions { plugin_kinds: engine.config().plugin_kinds.clone(), origin: Origin::Api, connector_check: None }
        .with_connector_check(engine.connectors().table_check())
}

/// The node `id` as it is now (after a change).
pub(crate) async fn node_after(ctx: &Context<'_>, id: NodeId) -> async_graphql::Result<GqlNode> {
    Ok(View::load(ctx).await?.node(id))
}

/// Part of [`Query`](super::Query): `node`, `nodes`.
#[derive(Default)]
pub struct NodesQuery;

#[Object]
impl NodesQuery {
    /// A node by id (`node:N`) or by name.
    async fn node(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<GqlNode>> {
        let view = View::load(ctx).await?;
        Ok(view.resolve(&id).map(|n| view.node(n)))
    }

    /// Nodes, configured and discovered, optionally filtered. Hosts come before what they host.
    #[graphql(complexity = "super::LIST_FANOUT * child_complexity")]
    async fn nodes(
        &self,
        ctx: &Context<'_>,
        kind: Option<String>,
        parent: Option<ID>,
        pinned: Option<bool>,
        state: Option<GqlNodeState>,
        status: Option<GqlPowerState>,
    ) -> async_graphql::Result<Vec<GqlNode>> {
        let view = View::load(ctx).await?;
        let parent = parent.map(|p| view.require(&p)).transpose()?;
        let mut roots: Vec<_> = view.topology.nodes().filter(|n| n.parent.is_none()).map(|n| n.id).collect();
        roots.sort_by_key(|r| view.topology.name_of(*r));
        let order = roots.into_iter().flat_map(|r| std::iter::once(r).chain(view.topology.hosted_descendants(r)));
        let mut out = Vec::new();
        for id in order.filter(|id| view.visible(*id)) {
            let Some(n) = view.topology.node(id) else { continue };
            let node_state = match n.spec.state {
                NodeState::Discovered => GqlNodeState::Discovered,
                _ => GqlNodeState::Configured,
            };
            let node_status: GqlPowerState = view.state(id).into();
            if kind.as_ref().is_some_and(|k| *k != n.spec.kind.as_str())
                || parent.is_some_and(|p| n.parent != Some(p))
                || pinned.is_some_and(|p| p != n.spec.pinned)
                || state.is_some_and(|s| s != node_state)
                || status.is_some_and(|s| s != node_status)
            {
                continue;
            }
            out.push(view.node(id));
        }
        Ok(out)
    }
}

/// Part of [`Mutation`](super::Mutation): `createNode`, `updateNode`, `deleteNode`.
#[derive(Default)]
pub struct NodesMutation;

#[Object]
impl NodesMutation {
    /// Creates a node with its parent and dependencies.
    #[graphql(guard = "RoleGuard(Role::Admin)")]
    async fn create_node(&self, ctx: &Context<'_>, input: NodeInput) -> async_graphql::Result<GqlNode> {
        let engine = ctx.data::<Engine>()?;
        input.check_meter(&View::load(ctx).await?)?;
        let draft = input.draft(engine)?;
        let id = engine.store().run(move |s| s.create_node(draft, Origin::Api)).await.api()?;
        node_after(ctx, id).await
    }

    /// Replaces a node's configuration, parent and dependencies (its id stays).
    #[graphql(guard = "RoleGuard(Role::Admin)")]
    async fn update_node(&self, ctx: &Context<'_>, id: ID, input: NodeInput) -> async_graphql::Result<GqlNode> {
        let engine = ctx.data::<Engine>()?;
        let view = View::load(ctx).await?;
        let node = view.require(&id)?;
        input.check_meter(&view)?;
        let draft = input.draft(engine)?;
        engine.store().run(move |s| s.replace_node(node, draft, Origin::Api)).await.api()?;
        node_after(ctx, node).await
    }

    /// Pins a node to the dashboard (or unpins it), changing nothing else.
    #[graphql(guard = "RoleGuard(Role::Admin)")]
    async fn pin_node(&self, ctx: &Context<'_>, id: ID, pinned: bool) -> async_graphql::Result<GqlNode> {
        let engine = ctx.data::<Engine>()?;
        let node = View::load(ctx).await?.require(&id)?;
        engine.store().run(move |s| s.set_pinned(node, pinned)).await.api()?;
        node_after(ctx, node).await
    }

    /// Deletes a node and its links (refused while it hosts others). Returns its id.
    #[graphql(guard = "RoleGuard(Role::Admin)")]
    async fn delete_node(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<ID> {
        let engine = ctx.data::<Engine>()?;
        let node = View::load(ctx).await?.require(&id)?;
        engine.store().run(move |s| s.remove_node(node)).await.api()?;
        Ok(ID(node.to_string()))
    }
}
