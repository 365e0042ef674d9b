//! Connector plugins in the binary: the `--plugins` options of the one-shot commands
//! (`check`, `plan`, `start`, `stop`) and of `serve`, loading a
//! directory of WebAssembly components, and the registry of built-in connectors plus the
//! loaded plugins. Built without the `plugins` feature, the options do not exist and
//! [`Loaded`] is always empty: the built-in connectors only.

use std::path::Path;
#[cfg(feature = "plugins")]
use std::path::PathBuf;
#[cfg(feature = "plugins")]
use std::sync::Arc;
#[cfg(feature = "plugins")]
use std::time::Duration;

#[cfg(feature = "plugins")]
use anyhow::Context;
use wakehub_core::connector::Registry;
#[cfg(feature = "plugins")]
use wakehub_core::plugin::{PluginHost, PluginLimits};
use wakehub_core::topology_file::ParseOptions;

/// The plugin option of the one-shot commands (`check`, `plan`, `start`, `stop`).
#[derive(clap::Args)]
pub(crate) struct OneShotOptions {
    /// A directory of connector plugins (`*.wasm`) whose node kinds and keys the file uses.
    #[cfg(feature = "plugins")]
    #[arg(long)]
    plugins: Option<PathBuf>,
}

/// `wakehub serve`'s plugin options.
#[derive(clap::Args)]
pub(crate) struct ServeOptions {
    /// A directory of connector plugins (`*.wasm`, WebAssembly components) to load.
    #[cfg(feature = "plugins")]
    #[arg(long)]
    plugins: Option<PathBuf>,
    /// Where compiled plugins are cached (default: `plugin-cache` beside the database).
    #[cfg(feature = "plugins")]
    #[arg(long)]
    plugin_cache: Option<PathBuf>,
    /// The time one plugin call may take (its code and the requests it makes).
    #[cfg(feature = "plugins")]
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    plugin_call_timeout: Duration,
}

/// The connector plugins loaded (none without `--plugins`).
#[derive(Default)]
pub(crate) struct Loaded {
    #[cfg(feature = "plugins")]
    host: Option<Arc<PluginHost>>,
}

#[cfg(feature = "plugins")]
impl OneShotOptions {
    /// Loads the plugins of `--plugins` (compiled without a cache).
    pub(crate) fn load(&self) -> anyhow::Result<Loaded> {
        load(self.plugins.as_deref(), None, PluginLimits::default())
    }
}

#[cfg(feature = "plugins")]
impl ServeOptions {
    /// Loads the plugins of `--plugins`, cached in `--plugin-cache` or beside `db`.
    pub(crate) fn load(&self, db: &Path, store: &wakehub_core::store::Store) -> anyhow::Result<Loaded> {
        let cache = self.plugin_cache.clone().or_else(|| db.parent().map(|d| d.join("plugin-cache")));
        let limits = PluginLimits { call_timeout: self.plugin_call_timeout, ..PluginLimits::default() };
        // A compiled component is loaded from the cache only if it is what this host
        // compiled: the cache's checksums are kept in the database.
        const MANIFEST: &str = "plugin-cache-manifest";
        if let (Some(cache), Some(_)) = (&cache, &self.plugins) {
            let known: std::collections::BTreeMap<String, String> =
                store.app_value(MANIFEST)?.and_then(|v| serde_json::from_str(&v).ok()).unwrap_or_default();
            for path in PluginHost::verify_cache(cache, &known)? {
                tracing::warn!(file = %path.display(), "a cached compiled plugin is not what this host compiled: removed, compiled again");
            }
        }
        let loaded = load(self.plugins.as_deref(), cache.as_deref(), limits)?;
        if let (Some(cache), Some(_)) = (&cache, &self.plugins) {
            let manifest = PluginHost::cache_manifest(cache)?;
            store.set_app_value(MANIFEST, &serde_json::to_string(&manifest)?)?;
        }
        Ok(loaded)
    }
}

#[cfg(feature = "plugins")]
impl Loaded {
    /// The built-in connectors and the loaded plugins; the plugins' node kinds.
    pub(crate) fn registry(&self) -> (Registry, ParseOptions) {
        let mut registry = Registry::builtin();
        // The operator's own files: `env:`/`file:` secret references are honoured.
        let mut options = ParseOptions::operator();
        if let Some(host) = &self.host {
            host.register(&mut registry);
            options.plugin_kinds = host.kinds();
        }
        // The connectors check each table as the file is parsed: every problem at once.
        let options = options.with_connector_check(registry.table_check());
        (registry, options)
    }

    /// The plugin host, for the server's `plugins` query.
    pub(crate) fn host(&self) -> Option<Arc<PluginHost>> {
        self.host.clone()
    }
}

/// Loads the connector plugins of `dir` (compiled components cached in `cache`). A file that
/// does not load is reported and skipped; nodes that use it then fail validation.
#[cfg(feature = "plugins")]
fn load(dir: Option<&Path>, cache: Option<&Path>, limits: PluginLimits) -> anyhow::Result<Loaded> {
    let Some(dir) = dir else { return Ok(Loaded::default()) };
    if let Some(cache) = cache {
        std::fs::create_dir_all(cache).with_context(|| format!("cannot create {}", cache.display()))?;
        // Compiled native code: its owner's only.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(cache, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("cannot restrict {} to its owner", cache.display()))?;
    }
    let host = PluginHost::new(limits, cache).map_err(|e| anyhow::anyhow!(e))?;
    let (loaded, failed) = host.load_dir(dir);
    for p in &loaded {
        tracing::info!(plugin = %p.name, version = %p.version, wit = %p.wit_version, kinds = ?p.kinds, "plugin loaded");
    }
    for e in &failed {
        tracing::warn!(code = e.code.as_str(), "plugin not loaded: {e}");
        eprintln!("warning: plugin not loaded ({}): {e}", e.code);
    }
    Ok(Loaded { host: Some(Arc::new(host)) })
}

// Without the `plugins` feature: no options, nothing loaded, the built-in connectors only.

#[cfg(not(feature = "plugins"))]
impl OneShotOptions {
    /// No plugins.
    pub(crate) fn load(&self) -> anyhow::Result<Loaded> {
        Ok(Loaded::default())
    }
}

#[cfg(not(feature = "plugins"))]
impl ServeOptions {
    /// No plugins.
    pub(crate) fn load(&self, _db: &Path, _store: &wakehub_core::store::Store) -> anyhow::Result<Loaded> {
        Ok(Loaded::default())
    }
}

#[cfg(not(feature = "plugins"))]
impl Loaded {
    /// The built-in connectors.
    pub(crate) fn registry(&self) -> (Registry, ParseOptions) {
        let registry = Registry::builtin();
        let options = ParseOptions::operator().with_connector_check(registry.table_check());
        (registry, options)
    }
}
