//! Connector plugins (the `plugins` feature): the `Plugin` type, the `plugins` query and
//! `resetPlugin`, over the plugin host the schema holds as [`Plugins`] data.

use std::sync::Arc;

use async_graphql::{Context, Json, Object};
use wakehub_core::model::ErrorCode;
use wakehub_core::model::Role;
use wakehub_core::plugin::{PluginHost, PluginInfo};

use super::access::RoleGuard;
use super::error::api_error;

/// The plugin host, if the server loads plugins (schema data read by `plugins` and
/// `resetPlugin`).
#[derive(Clone)]
pub struct Plugins(pub Option<Arc<PluginHost>>);

/// A loaded connector plugin.
pub struct GqlPlugin(pub PluginInfo);

#[Object(name = "Plugin")]
impl GqlPlugin {
    /// Its name: nodes use it as connector type `plugin:<name>`.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// Its version.
    async fn version(&self) -> &str {
        &self.0.version
    }
    /// The WIT version it targets.
    async fn wit_version(&self) -> &str {
        &self.0.wit_version
    }
    /// The node kinds it defines.
    async fn kinds(&self) -> &[String] {
        &self.0.kinds
    }
    /// The capabilities it imports (`http`, `ssh`, `wol`, `tcp`, `log`, `clock`).
    async fn capabilities(&self) -> &[String] {
        &self.0.capabilities
    }
    /// The JSON Schema of its configuration.
    async fn config_schema(&self) -> Json<serde_json::Value> {
        Json(serde_json::from_str(&self.0.config_schema).unwrap_or(serde_json::Value::Null))
    }
    /// `READY`, or `QUARANTINED` after repeated faults.
    async fn status(&self) -> &'static str {
        if self.0.quarantined { "QUARANTINED" } else { "READY" }
    }
    /// Faults (traps, timeouts, memory) since it was loaded.
    async fn faults(&self) -> u32 {
        self.0.faults
    }
}

/// Part of [`Query`](super::Query): `plugins`.
#[derive(Default)]
pub struct PluginsQuery;

#[Object]
impl PluginsQuery {
    /// The connector plugins loaded (empty when the server loads none).
    #[graphql(complexity = "super::LIST_FANOUT * child_complexity")]
    async fn plugins(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<GqlPlugin>> {
        let host = &ctx.data::<Plugins>()?.0;
        Ok(host.as_ref().map(|h| h.plugins().into_iter().map(GqlPlugin).collect()).unwrap_or_default())
    }
}

/// Part of [`Mutation`](super::Mutation): `resetPlugin`.
#[derive(Default)]
pub struct PluginsMutation;

#[Object]
impl PluginsMutation {
    /// Lifts a connector plugin's quarantine (it faulted too often in a row) once its cause
    /// is fixed.
    #[graphql(guard = "RoleGuard(Role::Admin)")]
    async fn reset_plugin(&self, ctx: &Context<'_>, name: String) -> async_graphql::Result<GqlPlugin> {
        let host = ctx.data::<Plugins>()?.0.as_ref();
        host.and_then(|h| h.reset(&name))
            .map(GqlPlugin)
            .ok_or_else(|| api_error(ErrorCode::NotFound, format!("plugin `{name}` not found")))
    }
}
