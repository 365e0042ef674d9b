//! The adapter for plugins built against `wakehub:connector@0.2.0` (frozen): its bindings,
//! and its capability imports served by the latest version's. Its shared types (`types`:
//! nodes, errors, power states, kinds…) are the latest's, unchanged since 0.2.0, so its
//! exports' results need no lifting; only the capability interfaces' own records are
//! converted.
//!
//! What 0.2.0 lacks: `measure`, which the host answers `unsupported` for it.

use super::host::State;
use super::latest::wakehub::connector as new;

wasmtime::component::bindgen!({
    path: "../wit/since_v0.2.0",
    world: "connector",
    imports: { default: async },
    exports: { default: async },
    // The same records and enums as the latest: checked structurally when a plugin is linked.
    with: { "wakehub:connector/types@0.2.0": super::latest::wakehub::connector::types },
});

use wakehub::connector as old;

impl old::http::Host for State {
    async fn send(&mut self, req: old::http::Request) -> Result<old::http::Response, new::types::ConnectorError> {
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
            old::http::Auth::Digest(d) => Auth::Digest(d),
        });
        let headers = req.headers.into_iter().map(|h| new::http::Header { name: h.name, value: h.value }).collect();
        let req =
            new::http::Request { method, url: req.url, headers, body: req.body, auth, timeout_ms: req.timeout_ms };
        let resp = new::http::Host::send(self, req).await?;
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
    ) -> Result<old::ssh::Output, new::types::ConnectorError> {
        let out = new::ssh::Host::exec(self, user, password_key, command).await?;
        Ok(old::ssh::Output { exit_code: out.exit_code, output: out.output })
    }
}

impl old::wol::Host for State {
    async fn wake(&mut self) -> Result<(), new::types::ConnectorError> {
        new::wol::Host::wake(self).await
    }
}

impl old::tcp::Host for State {
    async fn probe(&mut self, host: String, port: u16, timeout_ms: u32) -> Result<bool, new::types::ConnectorError> {
        new::tcp::Host::probe(self, host, port, timeout_ms).await
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
