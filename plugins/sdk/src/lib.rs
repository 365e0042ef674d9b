//! Write a WakeHub connector plugin: implement [`Plugin`], call [`export_plugin!`], build for
//! `wasm32-wasip2`. The generated WIT bindings stay behind this crate.
//!
//! # Write your first connector: the walk
//!
//! A plugin is a WebAssembly component implementing `wakehub:connector@0.3.0` (this
//! crate's `wit/connector.wit`, a copy of the repository's frozen
//! `wit/since_v0.3.0/connector.wit`). The walk, from an empty folder to a lab:
//!
//! 1. **New**: `wakehub plugin new my-plug` writes a crate of its own (`crate-type =
//!    ["cdylib"]`, its own `[workspace]`, a plug switched over HTTP to change into your
//!    device, with tests). It depends on this SDK by git, or with `--sdk
//!    CHECKOUT/plugins/sdk` by path:
//!
//!    ```toml
//!    wakehub-plugin-sdk = { path = "../wakehub/plugins/sdk" }
//!    wakehub-plugin-sdk = { git = "https://github.com/wakehub/wakehub" }
//!    ```
//!
//!    (one of the two; cargo finds the crate by name inside the repository). Inside this
//!    repository, a member of `plugins/` uses `wakehub-plugin-sdk.workspace = true`. The SDK
//!    re-exports [`serde_json`], which its [`Config`] is built on.
//! 2. **Write it**: implement [`Plugin`] on a unit struct and export it (below). Two
//!    complete examples to read beside it, in this repository: `plugins/shelly` (a Shelly
//!    Gen2 plug: RPC over HTTP with digest auth, every error path tested) and
//!    `plugins/http-switch` (requests written by the node's configuration).
//! 3. **Test it natively**: `cargo test` — the capabilities are answered by the [`testing`]
//!    harness (see "Test it without WebAssembly").
//! 4. **Build**: `cargo build --release --target wasm32-wasip2` (once: `rustup target add
//!    wasm32-wasip2`) gives `target/wasm32-wasip2/release/my_plug.wasm`.
//! 5. **Try it on the device on your desk**: `wakehub plugin check my_plug.wasm --config
//!    'url = "http://plug.lan"'` says what the host sees (name, version, WIT version, kinds,
//!    imported capabilities, schema) and checks a configuration; `wakehub plugin call
//!    my_plug.wasm plug status --config …` (or `start`, `stop`) calls it on the real device
//!    through the same sandbox the server uses.
//! 6. **Use it in a lab**: copy the `.wasm` into a directory, `wakehub serve --plugins DIR`
//!    (`check`, `plan`, `start` and `stop` take `--plugins DIR` too), and give a node
//!    `type = "plugin:my-plug"` and one of its kinds.
//! 7. **Publish**: the `.wasm` file is the release (name it after the plugin and its
//!    version); a server refuses a component built for a WIT version it does not support
//!    (`PLUGIN_INCOMPATIBLE`), so say which `wakehub:connector` version it targets.
//!
//! ## The rules the host enforces
//!
//! - **Sandbox**: no files, no sockets, no environment. The world is reached only through
//!   the capability modules ([`http`], [`ssh`], [`wol`], [`tcp`], [`log`](mod@log), [`clock`]).
//! - **Hosts**: HTTP and TCP reach only what the node's table (and its host node's table)
//!   grants, by one rule: every key ending in `url` grants that URL's host and port, a
//!   `host` key grants that host on every port, and `allow_hosts = ["api.example",
//!   "10.0.0.5:8443"]` grants each entry (a name alone: every port; `host:port`: that
//!   port). Anything else is denied (`capability-denied`), journaled once per change.
//! - **Secrets**: a plugin never sees one. Its view of a table marks a secret `{"secret":
//!   true}` ([`Config::is_secret`]); it names the key (an [`http::Auth`] variant — Basic,
//!   Bearer, a header, or Digest, whose challenge the host answers — or an SSH password
//!   key) and the host injects the value.
//! - **Configuration**: the host checks every table against the JSON Schema [`PluginInfo`]
//!   declares (required keys, types, and unknown keys with `"additionalProperties":
//!   false`) before your [`Plugin::validate`] runs; every problem is reported with its key.
//! - **Kinds**: each kind a plugin defines declares its start and stop timeouts (100 ms to
//!   24 h; a node's `start_timeout`/`stop_timeout` override them) and, if it can tell, how
//!   long a start and a stop usually take ([`kind`], [`KindInfo::typical`]): a smart plug
//!   is not planned with a server's five minutes.
//! - **Errors**: return a stable [`ErrorCode`] ([`error_for_status`] maps an HTTP status);
//!   messages never carry secrets and may start with the node's name (the host names the
//!   node once). `retryable` means the same call may succeed later: the engine issues a
//!   retryable `start` or `stop` again (4 attempts in all, backoff from 50 ms to 1 s) and
//!   polls `status` through retryable errors, within the step's timeout.
//! - **Bounds**: a call that loops, allocates without bound or panics fails with
//!   `PLUGIN_TIMEOUT`, `PLUGIN_MEMORY` or `PLUGIN_TRAP`; a plugin that faults 3 times in a
//!   row is quarantined until an operator resets it.
//!
//! ## Write it
//!
//! ```
//! use std::time::Duration;
//! use wakehub_plugin_sdk::*;
//!
//! struct Lamp;
//!
//! impl Plugin for Lamp {
//!     fn describe() -> PluginInfo {
//!         // Switching takes a few milliseconds; ten seconds is plenty.
//!         let lamp = kind("lamp", Duration::from_secs(10), Duration::from_secs(10))
//!             .typical(Duration::from_millis(200), Duration::from_millis(200));
//!         info("lamp", env!("CARGO_PKG_VERSION"), &[lamp], r#"{"type":"object","required":["url"]}"#)
//!     }
//!     fn validate(config: &Config) -> Result<(), Vec<ConfigProblem>> {
//!         match config.str("url") {
//!             Some(url) if url.starts_with("http://") || url.starts_with("https://") => Ok(()),
//!             _ => Err(vec![problem("url", "must be an http:// or https:// address")]),
//!         }
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
//! `start` and `stop` may return once the platform accepted the request: WakeHub then polls
//! `status` until the node is up (or down).
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
//! #     fn describe() -> PluginInfo { info("lamp", "0.1.0", &[], "{}") }
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
        // A copy of the repository's `wit/since_v0.3.0` inside the package, so the crate
        // builds as a git or registry dependency (CI checks the copy is identical).
        path: "wit",
        world: "connector",
        pub_export_macro: true,
        export_macro_name: "__export_connector",
        default_bindings_module: "wakehub_plugin_sdk::bindings",
        additional_derives: [PartialEq],
    });
}

pub use bindings::wakehub::connector::types::{
    ConfigProblem, ConnectorError, Discovered, ErrorCode, KindInfo, Measurements, Node, PluginInfo, PowerState,
};
pub use capabilities::{clock, http, log, ssh, tcp, wol};
pub use serde_json;

use std::time::Duration;

mod capabilities;
#[cfg(not(target_arch = "wasm32"))]
pub mod testing;

/// The WIT version this SDK builds plugins for.
pub const WIT_VERSION: &str = "0.3.0";

/// A connector. Every function is called in a fresh instance: keep no state between calls.
pub trait Plugin {
    /// Name (connector type `plugin:<name>`), version, node kinds, configuration schema.
    fn describe() -> PluginInfo;
    /// Checks a node's connector table (JSON, secrets as `{"secret": true}`) beyond its
    /// schema, which the host has already checked: every problem, each with its key
    /// ([`problem`]).
    fn validate(_config: &Config) -> Result<(), Vec<ConfigProblem>> {
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
    /// What the node's device measures now: whether it is in use, the power it draws, its
    /// CPU and network ([`measurements`] has every figure left out; fill in what the
    /// platform reports). Asked by the server's monitor whatever the node's state, for the
    /// inactivity rules (`reported`, `watts_above`, `cpu_percent`, `net_kbps`) and the
    /// energy report (a node whose `watts` names this one as its `meter`).
    fn measure(node: &Node) -> Result<Measurements, ConnectorError> {
        Err(error(ErrorCode::Unsupported, format!("{}: this plugin measures nothing", node.name)))
    }
}

/// Measurements with every figure left out.
///
/// ```
/// let m = wakehub_plugin_sdk::Measurements { watts: Some(41.5), ..wakehub_plugin_sdk::measurements() };
/// assert_eq!((m.watts, m.in_use), (Some(41.5), None));
/// ```
pub fn measurements() -> Measurements {
    Measurements { in_use: None, watts: None, cpu_percent: None, net_bytes: None }
}

/// A [`PluginInfo`] for this SDK's WIT version.
pub fn info(name: &str, version: &str, kinds: &[KindInfo], config_schema: &str) -> PluginInfo {
    PluginInfo {
        name: name.into(),
        version: version.into(),
        wit_version: WIT_VERSION.into(),
        kinds: kinds.to_vec(),
        config_schema: config_schema.into(),
    }
}

fn millis(d: Duration) -> u32 {
    u32::try_from(d.as_millis()).unwrap_or(u32::MAX)
}

/// A node kind with its nodes' start and stop timeouts (100 ms to 24 h), and no typical
/// durations.
pub fn kind(name: &str, start_timeout: Duration, stop_timeout: Duration) -> KindInfo {
    KindInfo {
        name: name.into(),
        start_timeout_ms: millis(start_timeout),
        stop_timeout_ms: millis(stop_timeout),
        typical_start_ms: None,
        typical_stop_ms: None,
    }
}

impl KindInfo {
    /// The same kind, saying how long a start and a stop usually take (at most their
    /// timeouts): what plans estimate until WakeHub has observed the node's own durations.
    pub fn typical(mut self, start: Duration, stop: Duration) -> KindInfo {
        self.typical_start_ms = Some(millis(start));
        self.typical_stop_ms = Some(millis(stop));
        self
    }
}

/// A problem with the configuration key `key`.
pub fn problem(key: &str, message: impl Into<String>) -> ConfigProblem {
    ConfigProblem { key: Some(key.into()), message: message.into() }
}

/// A problem with the table as a whole (keys that conflict, a missing choice).
pub fn table_problem(message: impl Into<String>) -> ConfigProblem {
    ConfigProblem { key: None, message: message.into() }
}

/// An error; retryable when the same call may succeed later: unreachable, timed out, the
/// device busy or rate-limiting.
pub fn error(code: ErrorCode, message: impl Into<String>) -> ConnectorError {
    let retryable =
        matches!(code, ErrorCode::Unreachable | ErrorCode::Timeout | ErrorCode::Busy | ErrorCode::RateLimited);
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
/// | 409, 423 | `busy` | yes |
/// | 429 | `rate-limited` | yes |
/// | 502, 503 | `platform-error` | yes |
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
        409 | 423 => ErrorCode::Busy,
        429 => ErrorCode::RateLimited,
        _ => ErrorCode::PlatformError,
    };
    let mut e = error(code, format!("{what} answered {status}"));
    e.retryable |= matches!(status, 502 | 503);
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
            fn validate(
                config: ::std::string::String,
            ) -> ::std::result::Result<(), ::std::vec::Vec<$crate::ConfigProblem>> {
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
            fn measure(node: $crate::Node) -> ::std::result::Result<$crate::Measurements, $crate::ConnectorError> {
                <$plugin as $crate::Plugin>::measure(&node)
            }
        }

        // Natively (`cargo test`) there is no component to export from, and the export
        // names (`wakehub:connector/plugin@0.3.0#status`) are no valid native symbols.
        #[cfg(target_arch = "wasm32")]
        $crate::bindings::__export_connector!(__WakehubPluginExport with_types_in $crate::bindings);
    };
}
