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
        tracing::info!(plugin = %p.name, version = %p.version, wit = %p.wit_version, kinds = ?p.kinds.iter().map(|k| &k.name).collect::<Vec<_>>(), "plugin loaded");
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

// ----- `wakehub plugin check|call`: one plugin file, on the desk -----

/// `wakehub plugin`'s commands.
#[cfg(feature = "plugins")]
#[derive(clap::Subcommand)]
pub(crate) enum PluginCommand {
    /// Create a plugin crate, out of this repository: a plug switched over HTTP to change
    /// into your device, with native tests on the SDK's harness; it builds for
    /// `wasm32-wasip2` and passes its tests as created.
    New {
        /// The plugin's name (connector type `plugin:NAME`): `[a-z0-9][a-z0-9-_]*`.
        name: String,
        /// Where to create it (`DIR/NAME`; default: the current directory).
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// A local checkout's SDK (`…/plugins/sdk`) as a path dependency; without it, a git
        /// dependency on the WakeHub repository.
        #[arg(long)]
        sdk: Option<PathBuf>,
    },
    /// Describe a plugin file (name, version, WIT version, kinds, the capabilities it
    /// imports, its configuration schema) and, with `--config`, validate a configuration.
    Check {
        /// The plugin (`.wasm`).
        file: PathBuf,
        /// A connector table to validate, as TOML keys: `url = "http://plug.lan", token = "env:TOKEN"`.
        #[arg(long)]
        config: Option<String>,
        /// The node kind the configuration is for (default: the plugin's first kind).
        #[arg(long)]
        kind: Option<String>,
    },
    /// Call a plugin on a device, as WakeHub would: `status`, `start` or `stop` of one node
    /// of KIND configured with `--config` (secrets may be `env:VAR` or `file:PATH`).
    Call {
        /// The plugin (`.wasm`).
        file: PathBuf,
        /// The node kind (one the plugin defines).
        kind: String,
        /// What to call.
        #[arg(value_enum)]
        operation: Operation,
        /// The connector table, as TOML keys: `url = "http://plug.lan", token = "env:TOKEN"`.
        #[arg(long, default_value = "")]
        config: String,
    },
}

/// What `wakehub plugin call` calls.
#[cfg(feature = "plugins")]
#[derive(Clone, Copy, clap::ValueEnum)]
pub(crate) enum Operation {
    /// The node's power state.
    Status,
    /// Power it on (the platform accepted the request).
    Start,
    /// Power it off.
    Stop,
    /// What its device measures now (in use, watts, CPU, network).
    Measure,
}

/// One plugin file loaded alone (compiled without a cache).
#[cfg(feature = "plugins")]
fn load_one(file: &Path) -> anyhow::Result<(Loaded, wakehub_core::plugin::PluginInfo)> {
    let host = PluginHost::new(PluginLimits::default(), None).map_err(|e| anyhow::anyhow!(e))?;
    let info = host.load_file(file).map_err(|e| anyhow::anyhow!("{} ({})", e.message, e.code))?;
    Ok((Loaded { host: Some(Arc::new(host)) }, info))
}

/// A one-node topology file: a node named `desk` of `kind`, with the plugin's connector and
/// `keys` (TOML `key = value` pairs, comma-separated).
#[cfg(feature = "plugins")]
fn desk_node(plugin: &str, kind: &str, keys: &str) -> anyhow::Result<String> {
    let table: toml::Table = format!("c = {{ {keys} }}").parse::<toml::Table>().map_err(|e| {
        anyhow::anyhow!("--config: not TOML keys such as `url = \"http://plug.lan\", token = \"env:TOKEN\"`: {e}")
    })?;
    let mut connector = table.get("c").and_then(|c| c.as_table()).cloned().unwrap_or_default();
    connector.insert("type".into(), format!("plugin:{plugin}").into());
    let mut node = toml::Table::new();
    node.insert("name".into(), "desk".into());
    node.insert("kind".into(), kind.into());
    node.insert("connector".into(), connector.into());
    let mut file = toml::Table::new();
    file.insert("node".into(), toml::Value::Array(vec![node.into()]));
    Ok(toml::to_string(&file)?)
}

/// The plugin crate `wakehub plugin new` writes: `(path, template)`, with `{{name}}`,
/// `{{crate}}` and `{{sdk}}` filled in.
#[cfg(feature = "plugins")]
const TEMPLATE: [(&str, &str); 4] = [
    ("Cargo.toml", include_str!("template/Cargo.toml.in")),
    ("src/lib.rs", include_str!("template/lib.rs.in")),
    ("README.md", include_str!("template/README.md.in")),
    (".gitignore", include_str!("template/gitignore.in")),
];

/// `wakehub plugin new`: the crate, refusing to overwrite anything.
#[cfg(feature = "plugins")]
fn new_plugin(name: &str, dir: &Path, sdk: Option<&Path>) -> anyhow::Result<PathBuf> {
    wakehub_core::model::validate_name(name).map_err(|e| anyhow::anyhow!("plugin name: {e}"))?;
    let root = dir.join(name);
    if root.exists() {
        anyhow::bail!("{} already exists: choose another name or --dir", root.display());
    }
    let sdk = match sdk {
        Some(path) => {
            let path = std::fs::canonicalize(path).with_context(|| format!("--sdk {}", path.display()))?;
            anyhow::ensure!(
                path.join("Cargo.toml").exists(),
                "--sdk {}: no Cargo.toml there (give the checkout's plugins/sdk)",
                path.display()
            );
            format!("wakehub-plugin-sdk = {{ path = {:?} }}", path.display().to_string())
        }
        None => "wakehub-plugin-sdk = { git = \"https://github.com/wakehub/wakehub\" }".to_owned(),
    };
    for (file, template) in TEMPLATE {
        let text =
            template.replace("{{name}}", name).replace("{{crate}}", &name.replace('-', "_")).replace("{{sdk}}", &sdk);
        let path = root.join(file);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(root)
}

/// Runs `wakehub plugin …`.
#[cfg(feature = "plugins")]
pub(crate) async fn command(command: PluginCommand) -> anyhow::Result<std::process::ExitCode> {
    use std::process::ExitCode;
    match command {
        PluginCommand::New { name, dir, sdk } => {
            let root = new_plugin(&name, &dir, sdk.as_deref())?;
            println!(
                "created {}: `cargo test` there, then `cargo build --release --target wasm32-wasip2`",
                root.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        PluginCommand::Check { file, config, kind } => {
            let (loaded, info) = load_one(&file)?;
            println!("{} {} — wakehub:connector@{} ({})", info.name, info.version, info.wit_version, file.display());
            if info.kinds.is_empty() {
                println!("kinds: none");
            }
            for k in &info.kinds {
                let typical =
                    |d: Option<std::time::Duration>| d.map(|d| format!(", typically {d:?}")).unwrap_or_default();
                println!(
                    "kind {}: start within {:?}{}, stop within {:?}{}",
                    k.name,
                    k.timeouts.start,
                    typical(k.typical_start),
                    k.timeouts.stop,
                    typical(k.typical_stop)
                );
            }
            println!("capabilities: {}", info.capabilities.join(", "));
            let schema: serde_json::Value = serde_json::from_str(&info.config_schema)?;
            println!("configuration schema:\n{}", serde_json::to_string_pretty(&schema)?);
            let Some(keys) = config else { return Ok(ExitCode::SUCCESS) };
            let kind = kind.or_else(|| info.kinds.first().map(|k| k.name.clone())).unwrap_or_default();
            let (_, options) = loaded.registry();
            match wakehub_core::topology_file::parse(&desk_node(&info.name, &kind, &keys)?, &options) {
                Ok(_) => {
                    println!("configuration: valid");
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    for problem in &e.errors {
                        let field = problem.field.as_deref().unwrap_or("connector");
                        eprintln!("configuration: {field}: {}", problem.message);
                    }
                    Ok(ExitCode::from(1))
                }
            }
        }
        PluginCommand::Call { file, kind, operation, config } => {
            let (loaded, info) = load_one(&file)?;
            let (registry, options) = loaded.registry();
            let topology = match wakehub_core::topology_file::parse(&desk_node(&info.name, &kind, &config)?, &options) {
                Ok(t) => t,
                Err(e) => {
                    eprintln!("error: {e}");
                    return Ok(ExitCode::from(1));
                }
            };
            let store = wakehub_core::store::Store::open_in_memory(wakehub_core::secrets::MasterKey::generate())?;
            store.import(&topology, wakehub_core::model::Origin::Operator)?;
            let engine = wakehub_core::engine::Engine::new(
                store,
                registry,
                wakehub_core::engine::EngineConfig { plugin_kinds: options.plugin_kinds, ..Default::default() },
            )?;
            let topology = engine.store().topology()?;
            let node = topology.by_name("desk").context("the node vanished")?;
            let target = engine.target(&topology, node.id).context("no target for the node")?;
            let connector =
                engine.connectors().get(&format!("plugin:{}", info.name)).context("the plugin is not registered")?;
            let result = match operation {
                Operation::Status => connector.status(&target).await.map(|s| format!("status: {s}")),
                Operation::Start => connector.start(&target).await.map(|()| "start: accepted".to_owned()),
                Operation::Stop => connector.stop(&target).await.map(|()| "stop: accepted".to_owned()),
                Operation::Measure => connector.load(&target).await.map(|l| {
                    let mut said = Vec::new();
                    if let Some(u) = l.in_use {
                        said.push(if u { "in use".to_owned() } else { "not in use".to_owned() });
                    }
                    if let Some(w) = l.watts {
                        said.push(format!("{w} W"));
                    }
                    if let Some(wakehub_core::connector::activity::Cpu::Percent(p)) = l.cpu {
                        said.push(format!("CPU {p} %"));
                    }
                    if let Some(b) = l.net_bytes {
                        said.push(format!("{b} bytes in and out so far"));
                    }
                    format!("measure: {}", if said.is_empty() { "nothing".to_owned() } else { said.join(", ") })
                }),
            };
            match result {
                Ok(line) => {
                    println!("{line}");
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    let retry = if e.retryable { " (retryable)" } else { "" };
                    eprintln!("error: {}{retry}: {}", e.code, e.message);
                    Ok(ExitCode::from(1))
                }
            }
        }
    }
}
