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
//! 1. A new crate, `crate-type = ["cdylib"]`, depending on `wakehub-plugin-sdk`. Inside this
//!    repository, a member of `plugins/` with `wakehub-plugin-sdk.workspace = true`; from
//!    anywhere else, a path or a git dependency:
//!
//!    ```toml
//!    wakehub-plugin-sdk = { path = "../wakehub/plugins/sdk" }
//!    wakehub-plugin-sdk = { git = "https://github.com/wakehub/wakehub" }
//!    ```
//!
//!    (one of the two; cargo finds the crate by name inside the repository). The SDK
//!    re-exports [`serde_json`], which its [`Config`] is built on.
//! 2. Implement [`Plugin`] on a unit struct:
//!
//! ```
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
//!         let resp = http::send(&request(http::Method::Get, &format!("{url}/state")))?;
//!         error_for_status(resp.status, "lamp: state")?;
//!         Ok(if resp.body == b"on" { PowerState::On } else { PowerState::Off })
//!     }
//!     fn start(node: &Node) -> Result<(), ConnectorError> {
//!         let url = config(node).require_str("url")?.to_owned();
//!         let resp = http::send(&request(http::Method::Post, &format!("{url}/on")))?;
//!         error_for_status(resp.status, "lamp: on")
//!     }
//!     fn stop(node: &Node) -> Result<(), ConnectorError> {
//!         let url = config(node).require_str("url")?.to_owned();
//!         let resp = http::send(&request(http::Method::Post, &format!("{url}/off")))?;
//!         error_for_status(resp.status, "lamp: off")
//!     }
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
//! `status` until the node is up (or down). Return errors with a stable [`ErrorCode`]
//! ([`error_for_status`] maps an HTTP status to one); messages must not contain secrets. A
//! call that loops, allocates without bound or panics fails with `PLUGIN_TIMEOUT`,
//! `PLUGIN_MEMORY` or `PLUGIN_TRAP`; a plugin that keeps faulting is quarantined.
//!
//! # Test it without WebAssembly
//!
//! Natively (`cargo test`), the capability modules are answered by the [`testing`] harness of
//! the current thread instead of the host: give it the answers, call your plugin inside
//! [`Harness::run`](testing::Harness::run), then assert on what it returned and on what it
//! sent. A capability the harness was not given is denied (`capability-denied`), as by a host
//! whose configuration does not grant it. Put this in your plugin's `src/lib.rs` under
//! `#[cfg(test)] mod tests` (tests in `tests/` would need the `rlib` crate type too, which
//! makes the release component larger):
//!
//! ```
//! # use wakehub_plugin_sdk::*;
//! # struct Lamp;
//! # impl Plugin for Lamp {
//! #     fn describe() -> PluginInfo { info("lamp", "0.1.0", &["lamp"], "{}") }
//! #     fn status(node: &Node) -> Result<PowerState, ConnectorError> {
//! #         let url = config(node).require_str("url")?.to_owned();
//! #         let mut req = request(http::Method::Get, &format!("{url}/state"));
//! #         if config(node).is_secret("token") { req.auth = Some(http::Auth::Bearer("token".into())); }
//! #         let resp = http::send(&req)?;
//! #         error_for_status(resp.status, "lamp: state")?;
//! #         Ok(if resp.body == b"on" { PowerState::On } else { PowerState::Off })
//! #     }
//! #     fn start(node: &Node) -> Result<(), ConnectorError> {
//! #         let url = config(node).require_str("url")?.to_owned();
//! #         let resp = http::send(&request(http::Method::Post, &format!("{url}/on")))?;
//! #         error_for_status(resp.status, "lamp: on")
//! #     }
//! #     fn stop(_: &Node) -> Result<(), ConnectorError> { Ok(()) }
//! # }
//! use wakehub_plugin_sdk::serde_json::json;
//! use wakehub_plugin_sdk::testing::{self, Harness, exchange};
//! use wakehub_plugin_sdk::{ErrorCode, Plugin, PowerState, http};
//!
//! // A node as the host passes it; a secret is `{"secret": true}`, never its value.
//! let lamp = testing::node("desk", "lamp", json!({"url": "http://lamp.lan", "token": testing::secret()}));
//!
//! // Answer every request with a function, then look at what was sent.
//! let h = Harness::new().http(|req| match req.url.as_str() {
//!     "http://lamp.lan/state" => testing::respond(200, "on"),
//!     _ => testing::respond(404, ""),
//! });
//! assert_eq!(h.run(|| Lamp::status(&lamp)), Ok(PowerState::On));
//! let sent = h.sent();
//! assert_eq!(sent.len(), 1);
//! assert_eq!(sent[0].method, http::Method::Get);
//! assert_eq!(sent[0].auth, Some(http::Auth::Bearer("token".into())));
//!
//! // Status codes and unreachable peers become error codes.
//! let h = Harness::new().http(|_| testing::respond(401, "who are you?"));
//! assert_eq!(h.run(|| Lamp::status(&lamp)).unwrap_err().code, ErrorCode::AuthFailed);
//! let h = Harness::new().http(|_| testing::unreachable("connection refused"));
//! assert_eq!(h.run(|| Lamp::status(&lamp)).unwrap_err().code, ErrorCode::Unreachable);
//!
//! // Or a script: exactly these requests, in this order. Another request is refused and
//! // makes `run` panic naming it; a request never sent makes the harness panic when dropped.
//! let h = Harness::new().exchanges([exchange(http::Method::Post, "http://lamp.lan/on").respond(204, "")]);
//! assert_eq!(h.run(|| Lamp::start(&lamp)), Ok(()));
//!
//! // What the harness was not given is denied, never a crash.
//! let err = Harness::new().run(|| Lamp::status(&lamp)).unwrap_err();
//! assert_eq!(err.code, ErrorCode::CapabilityDenied);
//! assert!(err.message.contains("no answer for http"));
//! ```
//!
//! SSH, Wake-on-LAN and TCP probes are simulated the same way ([`Harness::ssh`](testing::Harness::ssh),
//! [`wol`](testing::Harness::wol), [`tcp`](testing::Harness::tcp)) and recorded
//! ([`ssh_commands`](testing::Harness::ssh_commands), [`wakes`](testing::Harness::wakes),
//! [`probes`](testing::Harness::probes)); log lines are recorded ([`logs`](testing::Harness::logs));
//! the clock is virtual ([`clock`](testing::Harness::clock)), and sleeping advances it at once.

#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit/since_v0.1.0",
        world: "connector",
        pub_export_macro: true,
        export_macro_name: "__export_connector",
        default_bindings_module: "wakehub_plugin_sdk::bindings",
        additional_derives: [PartialEq, Eq],
    });
}

pub use bindings::wakehub::connector::types::{ConnectorError, Discovered, ErrorCode, Node, PluginInfo, PowerState};
pub use capabilities::{clock, http, log, ssh, tcp, wol};
pub use serde_json;

mod capabilities;
#[cfg(not(target_arch = "wasm32"))]
pub mod testing;

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

/// `Ok` for a 2xx HTTP status, otherwise the error its status means, with the message
/// "`{what}` answered `{status}`" (append the platform's own words to it):
///
/// | status | code | retryable |
/// | --- | --- | --- |
/// | 401, 403 | `auth-failed` | no |
/// | 404, 410 | `not-found` | no |
/// | 408, 504 | `timeout` | yes |
/// | 429, 502, 503 | `platform-error` | yes |
/// | other 5xx | `platform-error` | no |
/// | other 4xx, 1xx, 3xx | `platform-error` | no |
///
/// Other 4xx are the platform's refusal, not the configuration's fault as far as the SDK can
/// tell: a plugin whose requests are written by its configuration may map 400 or 405 to
/// `invalid-config` itself.
///
/// ```
/// use wakehub_plugin_sdk::{ErrorCode, error_for_status};
///
/// assert!(error_for_status(204, "lamp: on").is_ok());
/// let e = error_for_status(401, "lamp: on").unwrap_err();
/// assert_eq!((e.code, e.message.as_str()), (ErrorCode::AuthFailed, "lamp: on answered 401"));
/// ```
pub fn error_for_status(status: u16, what: &str) -> Result<(), ConnectorError> {
    let code = match status {
        200..=299 => return Ok(()),
        401 | 403 => ErrorCode::AuthFailed,
        404 | 410 => ErrorCode::NotFound,
        408 | 504 => ErrorCode::Timeout,
        _ => ErrorCode::PlatformError,
    };
    let mut e = error(code, format!("{what} answered {status}"));
    e.retryable |= matches!(status, 429 | 502 | 503);
    Err(e)
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

/// Exports a [`Plugin`] implementation as the component's `wakehub:connector/plugin` (on
/// `wasm32`; natively it only checks the implementation, so the crate links for tests).
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

        // Natively (`cargo test`) there is no component to export from, and the export
        // names (`wakehub:connector/plugin@0.1.0#status`) are no valid native symbols.
        #[cfg(target_arch = "wasm32")]
        $crate::bindings::__export_connector!(__WakehubPluginExport with_types_in $crate::bindings);
    };
}
