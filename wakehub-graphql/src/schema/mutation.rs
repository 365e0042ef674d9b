//! Mutations: they change the topology, or enqueue work and return at once.

use async_graphql::{Context, ID, InputObject, Json, Object};
use wakehub_core::engine::Engine;
use wakehub_core::model::Action;
use wakehub_core::model::ErrorCode;
use wakehub_core::model::{CascadeId, ProposalId};
use wakehub_core::topology_file::{self, ParseOptions};

use super::error::{ApiResultExt, api_error};
#[cfg(feature = "plugins")]
use super::types::GqlPlugin;
use super::types::{GqlCascade, GqlDiscoveryReport, GqlImportSummary, GqlNode, GqlProposal, View, parse_id};

/// The mutation root.
pub struct Mutation;

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
    /// `"90s"`, `"5m"`…
    pub start_timeout: Option<String>,
    /// `"90s"`, `"5m"`…
    pub stop_timeout: Option<String>,
    /// Readiness probe.
    pub readiness: Option<ReadinessInput>,
    /// `proxmox`, `docker`.
    pub offers: Option<Vec<String>>,
    /// The connector table: `{"type": "sim", …keys}`. Secrets may be inline (stored
    /// encrypted, never returned), `env:VAR` or `file:PATH`.
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
        if let Some(t) = &self.start_timeout {
            m.insert("start_timeout".into(), t.clone().into());
        }
        if let Some(t) = &self.stop_timeout {
            m.insert("stop_timeout".into(), t.clone().into());
        }
        if let Some(o) = &self.offers {
            m.insert("offers".into(), o.iter().map(|s| Value::from(s.clone())).collect());
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

    fn draft(&self, engine: &Engine) -> async_graphql::Result<topology_file::NodeDraft> {
        topology_file::parse_node(&self.to_json(), &parse_options(engine)).api()
    }
}

/// Node kinds the loaded plugins define are accepted.
fn parse_options(engine: &Engine) -> ParseOptions {
    ParseOptions { plugin_kinds: engine.config().plugin_kinds.clone() }
}

fn validate_connector(engine: &Engine, draft: &topology_file::NodeDraft) -> async_graphql::Result<()> {
    let c = &draft.spec.connector;
    match engine.connectors().get(&c.type_name) {
        None => Err(api_error(
            ErrorCode::Validation,
            format!(
                "connector: unknown type `{}` (known: {})",
                c.type_name,
                engine.connectors().type_names().join(", ")
            ),
        )),
        Some(conn) => conn.validate(c).map_err(|e| api_error(ErrorCode::Validation, format!("connector: {e}"))),
    }
}

async fn node_after(engine: &Engine, id: wakehub_core::model::NodeId) -> async_graphql::Result<GqlNode> {
    Ok(View::load(engine).await?.node(id))
}

fn cascade_id(id: &ID) -> async_graphql::Result<CascadeId> {
    parse_id(id, "cascade")
        .map(CascadeId::new)
        .ok_or_else(|| api_error(ErrorCode::NotFound, format!("cascade `{}` not found", id.0)))
}

fn proposal_id(id: &ID) -> async_graphql::Result<ProposalId> {
    parse_id(id, "proposal")
        .map(ProposalId::new)
        .ok_or_else(|| api_error(ErrorCode::NotFound, format!("proposal `{}` not found", id.0)))
}

#[Object]
impl Mutation {
    /// Creates a node with its parent and dependencies.
    async fn create_node(&self, ctx: &Context<'_>, input: NodeInput) -> async_graphql::Result<GqlNode> {
        let engine = ctx.data::<Engine>()?;
        let draft = input.draft(engine)?;
        validate_connector(engine, &draft)?;
        let id = engine.store().run(move |s| s.create_node(draft)).await.api()?;
        node_after(engine, id).await
    }

    /// Replaces a node's configuration, parent and dependencies (its id stays).
    async fn update_node(&self, ctx: &Context<'_>, id: ID, input: NodeInput) -> async_graphql::Result<GqlNode> {
        let engine = ctx.data::<Engine>()?;
        let node = View::load(engine).await?.require(&id)?;
        let draft = input.draft(engine)?;
        validate_connector(engine, &draft)?;
        engine.store().run(move |s| s.replace_node(node, draft)).await.api()?;
        node_after(engine, node).await
    }

    /// Deletes a node and its links (refused while it hosts others). Returns its id.
    async fn delete_node(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<ID> {
        let engine = ctx.data::<Engine>()?;
        let node = View::load(engine).await?.require(&id)?;
        engine.store().run(move |s| s.remove_node(node)).await.api()?;
        Ok(ID(node.to_string()))
    }

    /// Lists the guests a host runs (its Proxmox VMs and LXCs, its Docker containers) and
    /// stores the new ones as discovered nodes under it. Running it again refreshes what is
    /// known, never duplicates, and reports what disappeared.
    async fn discover(&self, ctx: &Context<'_>, host: ID) -> async_graphql::Result<GqlDiscoveryReport> {
        let engine = ctx.data::<Engine>()?;
        let host = View::load(engine).await?.require(&host)?;
        let report = engine.discover(host).await.api()?;
        Ok(GqlDiscoveryReport::new(&View::load(engine).await?, report))
    }

    /// Turns a discovered node into a configured one: as discovered (its connector table is
    /// pre-filled), or completed with `input` (without a `parent` it stays on its host).
    async fn adopt_node(&self, ctx: &Context<'_>, id: ID, input: Option<NodeInput>) -> async_graphql::Result<GqlNode> {
        let engine = ctx.data::<Engine>()?;
        let node = View::load(engine).await?.require(&id)?;
        let draft = match input {
            Some(input) => {
                let draft = input.draft(engine)?;
                validate_connector(engine, &draft)?;
                Some(draft)
            }
            None => None,
        };
        engine.store().run(move |s| s.adopt_node(node, draft)).await.api()?;
        node_after(engine, node).await
    }

    /// Makes `from` depend on `to` (refused with `CYCLE` if it would close a cycle).
    async fn add_dependency(&self, ctx: &Context<'_>, from: ID, to: ID) -> async_graphql::Result<GqlNode> {
        let engine = ctx.data::<Engine>()?;
        let view = View::load(engine).await?;
        let (f, t) = (view.require(&from)?, view.require(&to)?);
        engine.store().run(move |s| s.add_dependency(f, t)).await.api()?;
        node_after(engine, f).await
    }

    /// Removes "`from` depends on `to`".
    async fn remove_dependency(&self, ctx: &Context<'_>, from: ID, to: ID) -> async_graphql::Result<GqlNode> {
        let engine = ctx.data::<Engine>()?;
        let view = View::load(engine).await?;
        let (f, t) = (view.require(&from)?, view.require(&to)?);
        engine.store().run(move |s| s.remove_dependency(f, t)).await.api()?;
        node_after(engine, f).await
    }

    /// Starts a node and everything it needs. Returns the cascade at once (`PENDING`); follow
    /// it with the `cascadeProgress` subscription.
    async fn start_node(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<GqlCascade> {
        let engine = ctx.data::<Engine>()?;
        let node = View::load(engine).await?.require(&id)?;
        Ok(GqlCascade(engine.request(node, Action::Start).await.api()?))
    }

    /// Stops a node and everything that cannot run without it, then re-evaluates its
    /// dependencies. Returns the cascade at once (`PENDING`).
    async fn stop_node(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<GqlCascade> {
        let engine = ctx.data::<Engine>()?;
        let node = View::load(engine).await?.require(&id)?;
        Ok(GqlCascade(engine.request(node, Action::Stop).await.api()?))
    }

    /// Cancels a running cascade: no new step begins; steps in flight finish.
    async fn cancel_cascade(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<GqlCascade> {
        let engine = ctx.data::<Engine>()?;
        let cascade = cascade_id(&id)?;
        engine.cancel(cascade).api()?;
        let record = engine.cascade(cascade).await.api()?;
        record.map(GqlCascade).ok_or_else(|| api_error(ErrorCode::NotFound, format!("cascade `{}` not found", id.0)))
    }

    /// Runs an ended cascade (interrupted, failed, cancelled…) again, as a new cascade.
    async fn rerun_cascade(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<GqlCascade> {
        let engine = ctx.data::<Engine>()?;
        Ok(GqlCascade(engine.rerun(cascade_id(&id)?).await.api()?))
    }

    /// Confirms a shutdown proposal: checks the node is still unused, then stops it.
    async fn confirm_proposal(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<GqlCascade> {
        let engine = ctx.data::<Engine>()?;
        Ok(GqlCascade(engine.confirm_proposal(proposal_id(&id)?).await.api()?))
    }

    /// Dismisses a shutdown proposal: the node stays on.
    async fn dismiss_proposal(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<GqlProposal> {
        let engine = ctx.data::<Engine>()?;
        Ok(GqlProposal(engine.dismiss_proposal(proposal_id(&id)?).await.api()?))
    }

    /// Lifts a connector plugin's quarantine (it faulted too often in a row) once its cause
    /// is fixed.
    #[cfg(feature = "plugins")]
    async fn reset_plugin(&self, ctx: &Context<'_>, name: String) -> async_graphql::Result<GqlPlugin> {
        let host = ctx.data::<super::Plugins>()?.0.as_ref();
        host.and_then(|h| h.reset(&name))
            .map(GqlPlugin)
            .ok_or_else(|| api_error(ErrorCode::NotFound, format!("plugin `{name}` not found")))
    }

    /// Makes the configured topology exactly this TOML file (all or nothing; every problem
    /// is reported in `extensions.fields`).
    async fn import_topology(&self, ctx: &Context<'_>, toml: String) -> async_graphql::Result<GqlImportSummary> {
        let engine = ctx.data::<Engine>()?;
        let draft = topology_file::parse(&toml, &parse_options(engine)).api()?;
        let summary = engine.import(draft).await.api()?;
        Ok(GqlImportSummary {
            added: summary.added,
            updated: summary.updated,
            removed: summary.removed,
            unchanged: summary.unchanged,
        })
    }

    /// The configured topology as a TOML file (secrets as references only).
    async fn export_topology(&self, ctx: &Context<'_>) -> async_graphql::Result<String> {
        let topology = ctx.data::<Engine>()?.store().run(|s| s.topology_shared()).await.api()?;
        topology_file::export(&topology).map_err(|e| api_error(ErrorCode::Internal, e.to_string()))
    }
}
