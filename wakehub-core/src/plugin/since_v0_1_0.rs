//! The adapter for plugins built against `wakehub:connector@0.1.0` (frozen): its bindings,
//! its capability imports served by the latest version's (each type converted), and its
//! exports' results lifted to the latest types, so the rest of the host knows one version.
//!
//! What 0.1.0 lacks gets the latest's neutral value: its kinds take the default plugin
//! timeouts and declare no typical durations; its `validate` message is one problem about
//! the whole table. Error codes 0.1.0 does not know reach it as `platform-error`.

use super::host::State;
use super::latest::wakehub::connector as new;

wasmtime::component::bindgen!({
    path: "../wit/since_v0.1.0",
    world: "connector",
    imports: { default: async },
    exports: { default: async },
});

use wakehub::connector as old;

/// The timeouts a 0.1.0 plugin's kinds get (they cannot declare any): the model's defaults
/// for a plugin kind.
fn kind(name: String) -> new::types::KindInfo {
    let t = crate::model::Kind::Plugin(String::new()).default_timeouts();
    let ms = |d: std::time::Duration| u32::try_from(d.as_millis()).unwrap_or(u32::MAX);
    new::types::KindInfo {
        name,
        start_timeout_ms: ms(t.start),
        stop_timeout_ms: ms(t.stop),
        typical_start_ms: None,
        typical_stop_ms: None,
    }
}

pub(super) fn info(i: old::types::PluginInfo) -> new::types::PluginInfo {
    new::types::PluginInfo {
        name: i.name,
        version: i.version,
        wit_version: i.wit_version,
        kinds: i.kinds.into_iter().map(kind).collect(),
        config_schema: i.config_schema,
    }
}

pub(super) fn validated(r: Result<(), String>) -> Result<(), Vec<new::types::ConfigProblem>> {
    r.map_err(|message| vec![new::types::ConfigProblem { key: None, message }])
}

pub(super) fn power(p: old::types::PowerState) -> new::types::PowerState {
    use new::types::PowerState as N;
    use old::types::PowerState as O;
    match p {
        O::On => N::On,
        O::Off => N::Off,
        O::Starting => N::Starting,
        O::Stopping => N::Stopping,
        O::Unknown => N::Unknown,
        O::Error => N::Error,
    }
}

pub(super) fn error(e: old::types::ConnectorError) -> new::types::ConnectorError {
    use new::types::ErrorCode as N;
    use old::types::ErrorCode as O;
    let code = match e.code {
        O::AuthFailed => N::AuthFailed,
        O::Unreachable => N::Unreachable,
        O::Timeout => N::Timeout,
        O::NotFound => N::NotFound,
        O::TlsPinMismatch => N::TlsPinMismatch,
        O::HostKeyMismatch => N::HostKeyMismatch,
        O::InvalidConfig => N::InvalidConfig,
        O::Unsupported => N::Unsupported,
        O::PlatformError => N::PlatformError,
        O::CapabilityDenied => N::CapabilityDenied,
    };
    new::types::ConnectorError { code, message: e.message, retryable: e.retryable }
}

/// A host error as 0.1.0 can say it.
fn old_error(e: new::types::ConnectorError) -> old::types::ConnectorError {
    use new::types::ErrorCode as N;
    use old::types::ErrorCode as O;
    let code = match e.code {
        N::AuthFailed => O::AuthFailed,
        N::Unreachable => O::Unreachable,
        N::Timeout => O::Timeout,
        N::NotFound => O::NotFound,
        N::TlsPinMismatch => O::TlsPinMismatch,
        N::HostKeyMismatch => O::HostKeyMismatch,
        N::InvalidConfig => O::InvalidConfig,
        N::Unsupported => O::Unsupported,
        N::PlatformError | N::Busy | N::RateLimited => O::PlatformError,
        N::CapabilityDenied => O::CapabilityDenied,
    };
    old::types::ConnectorError { code, message: e.message, retryable: e.retryable }
}

pub(super) fn node(n: new::types::Node) -> old::types::Node {
    old::types::Node { name: n.name, kind: n.kind, config: n.config, host_config: n.host_config }
}

pub(super) fn discovered(d: old::types::Discovered) -> new::types::Discovered {
    new::types::Discovered {
        key: d.key,
        name: d.name,
        kind: d.kind,
        config: d.config,
        status: power(d.status),
        details: d.details,
    }
}

impl old::types::Host for State {}

impl old::http::Host for State {
    async fn send(&mut self, req: old::http::Request) -> Result<old::http::Response, old::types::ConnectorError> {
        use new::http::{Auth, Method};
        let method = match req.method {
            old::http::Method::Get => Method::Get,
            old::http::Method::Head => Method::Head,
            old::http::Method::Post => Method::Post,
            old::http::Method::Put => Method::Put,
            old::http::Method::Patch => Method::Patch,
            old::http::Method::Delete => Method::Delete,
        };
        let auth = req.auth.map(|a| match a {
            old::http::Auth::Basic(b) => Auth::Basic(b),
            old::http::Auth::Bearer(k) => Auth::Bearer(k),
            old::http::Auth::Header(h) => Auth::Header(h),
        });
        let headers = req.headers.into_iter().map(|h| new::http::Header { name: h.name, value: h.value }).collect();
        let req =
            new::http::Request { method, url: req.url, headers, body: req.body, auth, timeout_ms: req.timeout_ms };
        let resp = new::http::Host::send(self, req).await.map_err(old_error)?;
        let headers = resp.headers.into_iter().map(|h| old::http::Header { name: h.name, value: h.value }).collect();
        Ok(old::http::Response { status: resp.status, headers, body: resp.body })
    }
}

impl old::ssh::Host for State {
    async fn exec(
        &mut self,
        user: String,
        password_key: String,
        command: String,
    ) -> Result<old::ssh::Output, old::types::ConnectorError> {
        let out = new::ssh::Host::exec(self, user, password_key, command).await.map_err(old_error)?;
        Ok(old::ssh::Output { exit_code: out.exit_code, output: out.output })
    }
}

impl old::wol::Host for State {
    async fn wake(&mut self) -> Result<(), old::types::ConnectorError> {
        new::wol::Host::wake(self).await.map_err(old_error)
    }
}

impl old::tcp::Host for State {
    async fn probe(&mut self, host: String, port: u16, timeout_ms: u32) -> Result<bool, old::types::ConnectorError> {
        new::tcp::Host::probe(self, host, port, timeout_ms).await.map_err(old_error)
    }
}

impl old::log::Host for State {
    async fn log(&mut self, level: old::log::Level, message: String) {
        use new::log::Level as N;
        use old::log::Level as O;
        let level = match level {
            O::Debug => N::Debug,
            O::Info => N::Info,
            O::Warn => N::Warn,
            O::Error => N::Error,
        };
        new::log::Host::log(self, level, message).await
    }
}

impl old::clock::Host for State {
    async fn now_ms(&mut self) -> u64 {
        new::clock::Host::now_ms(self).await
    }

    async fn sleep_ms(&mut self, ms: u32) {
        new::clock::Host::sleep_ms(self, ms).await
    }
}
