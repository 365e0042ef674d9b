//! Connector plugins (the `plugins` feature): the `Plugin` type, the `plugins` query and
//! `resetPlugin`, over the plugin host the schema holds as [`Plugins`] data.

use std::sync::Arc;

use async_graphql::{Context, Json, Object};
use wakehub_core::model::ErrorCode;
use wakehub_core::model::Role;
use wakehub_core::plugin::{PluginHost, PluginInfo, PluginKind};

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
    /// The names of the node kinds it defines.
    async fn kinds(&self) -> Vec<&str> {
        self.0.kinds.iter().map(|k| k.name.as_str()).collect()
    }
    /// The node kinds it defines, with their default timeouts and typical durations.
    async fn kind_details(&self) -> Vec<GqlPluginKind<'_>> {
        self.0.kinds.iter().map(GqlPluginKind).collect()
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

/// A node kind a plugin defines.
pub struct GqlPluginKind<'a>(&'a PluginKind);

fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[Object(name = "PluginKind")]
impl GqlPluginKind<'_> {
    /// Its name, as a topology file writes it.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// The start timeout of its nodes, in milliseconds (a node's `start_timeout` overrides it).
    async fn start_timeout_ms(&self) -> u64 {
        millis(self.0.timeouts.start)
    }
    /// The stop timeout of its nodes, in milliseconds.
    async fn stop_timeout_ms(&self) -> u64 {
        millis(self.0.timeouts.stop)
    }
    /// How long a start usually takes, in milliseconds, if the plugin says.
    async fn typical_start_ms(&self) -> Option<u64> {
        self.0.typical_start.map(millis)
    }
    /// How long a stop usually takes, in milliseconds, if the plugin says.
    async fn typical_stop_ms(&self) -> Option<u64> {
        self.0.typical_stop.map(millis)
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
