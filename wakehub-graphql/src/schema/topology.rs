//! The topology as a file: `importTopology` (all or nothing) and `exportTopology` (secrets as
//! references only).

use async_graphql::{Context, Object, SimpleObject};
use wakehub_core::engine::Engine;
use wakehub_core::model::ErrorCode;
use wakehub_core::model::Origin;
use wakehub_core::model::Role;
use wakehub_core::topology_file;

use super::access::RoleGuard;
use super::error::{ApiResultExt, api_error};
use super::nodes::parse_options;

/// What an import changed, by node name.
#[derive(SimpleObject)]
#[graphql(name = "ImportSummary")]
pub struct GqlImportSummary {
    /// Created.
    pub added: Vec<String>,
    /// Changed.
    pub updated: Vec<String>,
    /// Deleted (no longer in the file).
    pub removed: Vec<String>,
    /// Left as they were.
    pub unchanged: Vec<String>,
}

/// Part of [`Mutation`](super::Mutation): `importTopology`, `exportTopology`.
#[derive(Default)]
pub struct TopologyMutation;

#[Object]
impl TopologyMutation {
    /// Makes the configured topology exactly this TOML file (all or nothing; every problem
    /// is reported in `extensions.fields`).
    #[graphql(guard = "RoleGuard(Role::Admin)")]
    async fn import_topology(&self, ctx: &Context<'_>, toml: String) -> async_graphql::Result<GqlImportSummary> {
        let engine = ctx.data::<Engine>()?;
        let draft = topology_file::parse(&toml, &parse_options(engine)).api()?;
        let summary = engine.import(draft, Origin::Api).await.api()?;
        Ok(GqlImportSummary {
            added: summary.added,
            updated: summary.updated,
            removed: summary.removed,
            unchanged: summary.unchanged,
        })
    }

    /// The configured topology as a TOML file (secrets as references only).
    #[graphql(guard = "RoleGuard(Role::Admin)")]
    async fn export_topology(&self, ctx: &Context<'_>) -> async_graphql::Result<String> {
        let topology = ctx.data::<Engine>()?.store().run(|s| s.topology_shared()).await.api()?;
        topology_file::export(&topology).map_err(|e| api_error(ErrorCode::Internal, e.to_string()))
    }
}
