//! Write a WakeHub connector plugin: implement [`Plugin`], call [`export_plugin!`], build for
//! `wasm32-wasip2`. The generated WIT bindings stay behind this crate.
//!
//! # Write your first connector
//!
//! A plugin is a WebAssembly component implementing `wakehub:connector@0.1.0`
//! (`wit/since_v0.1.0/connector.wit`). It runs sandboxed: no files, no sockets, no
//! environment. It reaches the outside world only through the host's capability imports
//! ([`http`], [`ssh`], [`wol`], [`tcp`]), and only where the node's configuration grants it —
//! HTTP to the hosts its `…url` keys and `allow_hosts` name, SSH with the secrets it holds.
//! It never sees a secret: it names the configuration key, the host injects the value.
//!
//! 1. A new crate in `plugins/`, `crate-type = ["cdylib"]`, depending on
//!    `wakehub-plugin-sdk`.
//! 2. Implement [`Plugin`] on a unit struct:
//!
//! ```ignore
//! use wakehub_plugin_sdk::*;
//!
//! struct Lamp;
//!
//! impl Plugin for Lamp {
//!     fn describe() -> PluginInfo {
//!         info("lamp", env!("CARGO_PKG_VERSION"), &["lamp"], r#"{"type":"object","required":["url"]}"#)
//!     }
//!     fn status(node: &Node) -> Result<PowerState, ConnectorError> {
//!         let url = config(node).require_str("url")?.to_owned();
//!         let resp = http::send(&request(http::Method::Get, &url))?;
//!         Ok(if resp.body == b"on" { PowerState::On } else { PowerState::Off })
//!     }
//!     fn start(node: &Node) -> Result<(), ConnectorError> { /* POST …/on */ Ok(()) }
//!     fn stop(node: &Node) -> Result<(), ConnectorError> { /* POST …/off */ Ok(()) }
//! }
//!
//! export_plugin!(Lamp);
//! ```
//!
//! 3. `cargo build --release --target wasm32-wasip2 -p lamp`, copy
//!    `target/wasm32-wasip2/release/lamp.wasm` into the server's plugin directory
//!    (`wakehub serve --plugins DIR`), and give a node `type = "plugin:lamp"`. `wakehub check`
//!    validates its keys through your [`Plugin::validate`].
//!
//! `start` and `stop` may return once the platform accepted the request: WakeHub then polls
//! `status` until the node is up (or down). Return errors with a stable [`ErrorCode`];
//! messages must not contain secrets. A call that loops, allocates without bound or panics
//! fails with `PLUGIN_TIMEOUT`, `PLUGIN_MEMORY` or `PLUGIN_TRAP`; a plugin that keeps faulting
//! is quarantined.

#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit/since_v0.1.0",
        world: "connector",
        pub_export_macro: true,
        export_macro_name: "__export_connector",
        default_bindings_module: "wakehub_plugin_sdk::bindings",
    });
}

pub use bindings::wakehub::connector::types::{ConnectorError, Discovered, ErrorCode, Node, PluginInfo, PowerState};
pub use bindings::wakehub::connector::{clock, http, log, ssh, tcp, wol};

/// The WIT version this SDK builds plugins for.
pub const WIT_VERSION: &str = "0.1.0";

/// A connector. Every function is called in a fresh instance: keep no state between calls.
pub trait Plugin {
    /// Name (connector type `plugin:<name>`), version, node kinds, configuration schema.
    fn describe() -> PluginInfo;
    /// Checks a node's connector table (JSON, secrets as `{"secret": true}`).
    fn validate(_config: &Config) -> Result<(), String> {
        Ok(())
    }
    /// The node's power state.
    fn status(node: &Node) -> Result<PowerState, ConnectorError>;
    /// Powers the node on.
    fn start(node: &Node) -> Result<(), ConnectorError>;
    /// Powers the node off.
    fn stop(node: &Node) -> Result<(), ConnectorError>;
    /// The guests a host node runs.
    fn discover(node: &Node) -> Result<Vec<Discovered>, ConnectorError> {
        Err(error(ErrorCode::Unsupported, format!("{}: this plugin cannot discover guests", node.name)))
    }
    /// Whether the platform answers.
    fn test_connection(node: &Node) -> Result<(), ConnectorError> {
        Self::status(node).map(|_| ())
    }
}

/// A [`PluginInfo`] for this SDK's WIT version.
pub fn info(name: &str, version: &str, kinds: &[&str], config_schema: &str) -> PluginInfo {
    PluginInfo {
        name: name.into(),
        version: version.into(),
        wit_version: WIT_VERSION.into(),
        kinds: kinds.iter().map(|k| (*k).into()).collect(),
        config_schema: config_schema.into(),
    }
}

/// An error; retryable when unreachable or timed out.
pub fn error(code: ErrorCode, message: impl Into<String>) -> ConnectorError {
    let retryable = matches!(code, ErrorCode::Unreachable | ErrorCode::Timeout);
    ConnectorError { code, message: message.into(), retryable }
}

/// A connector table, as JSON.
#[derive(Debug, Clone)]
pub struct Config(pub serde_json::Value);

impl Config {
    /// Parses a table the host passed.
    pub fn parse(json: &str) -> Config {
        Config(serde_json::from_str(json).unwrap_or(serde_json::Value::Null))
    }
    /// A string key.
    pub fn str(&self, key: &str) -> Option<&str> {
        self.0.get(key)?.as_str()
    }
    /// An integer key.
    pub fn int(&self, key: &str) -> Option<i64> {
        self.0.get(key)?.as_i64()
    }
    /// A boolean key.
    pub fn bool(&self, key: &str) -> Option<bool> {
        self.0.get(key)?.as_bool()
    }
    /// Any key.
    pub fn get(&self, key: &str) -> Option<&serde_json::Value> {
        self.0.get(key)
    }
    /// Whether `key` holds a secret (its value stays with the host).
    pub fn is_secret(&self, key: &str) -> bool {
        self.0.get(key).and_then(|v| v.get("secret")).and_then(|s| s.as_bool()) == Some(true)
    }
    /// A required string key, or an `invalid-config` error.
    pub fn require_str(&self, key: &str) -> Result<&str, ConnectorError> {
        self.str(key).ok_or_else(|| error(ErrorCode::InvalidConfig, format!("`{key}` (a string) is required")))
    }
}

/// The node's own connector table.
pub fn config(node: &Node) -> Config {
    Config::parse(&node.config)
}

/// A request with no headers, body or auth.
pub fn request(method: http::Method, url: &str) -> http::Request {
    http::Request { method, url: url.into(), headers: Vec::new(), body: None, auth: None, timeout_ms: None }
}

/// Writes to WakeHub's log.
pub fn log(level: log::Level, message: &str) {
    log::log(level, message)
}

/// Exports a [`Plugin`] implementation as the component's `wakehub:connector/plugin`.
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty) => {
        #[doc(hidden)]
        pub struct __WakehubPluginExport;

        impl $crate::bindings::exports::wakehub::connector::plugin::Guest for __WakehubPluginExport {
            fn describe() -> $crate::PluginInfo {
                <$plugin as $crate::Plugin>::describe()
            }
            fn validate(config: ::std::string::String) -> ::std::result::Result<(), ::std::string::String> {
                <$plugin as $crate::Plugin>::validate(&$crate::Config::parse(&config))
            }
            fn status(node: $crate::Node) -> ::std::result::Result<$crate::PowerState, $crate::ConnectorError> {
                <$plugin as $crate::Plugin>::status(&node)
            }
            fn start(node: $crate::Node) -> ::std::result::Result<(), $crate::ConnectorError> {
                <$plugin as $crate::Plugin>::start(&node)
            }
            fn stop(node: $crate::Node) -> ::std::result::Result<(), $crate::ConnectorError> {
                <$plugin as $crate::Plugin>::stop(&node)
            }
            fn discover(
                node: $crate::Node,
            ) -> ::std::result::Result<::std::vec::Vec<$crate::Discovered>, $crate::ConnectorError> {
                <$plugin as $crate::Plugin>::discover(&node)
            }
            fn test_connection(node: $crate::Node) -> ::std::result::Result<(), $crate::ConnectorError> {
                <$plugin as $crate::Plugin>::test_connection(&node)
            }
        }

        $crate::bindings::__export_connector!(__WakehubPluginExport with_types_in $crate::bindings);
    };
}
