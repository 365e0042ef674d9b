//! The host's capability imports, with the names and signatures of the WIT interfaces. On
//! `wasm32` every function is the generated import; natively it is answered by the
//! [`testing`](crate::testing) harness of the current thread, so a plugin's own `cargo test`
//! runs without a WebAssembly runtime.

/// Outgoing HTTP(S), only to hosts the node's configuration names (its `…url` keys and
/// `allow_hosts`). TLS uses the system roots, or the certificate pinned by the node's
/// `tls_fingerprint` (SHA-256).
pub mod http {
    pub use crate::ConnectorError;
    pub use crate::bindings::wakehub::connector::http::{Auth, Header, Method, Request, Response};

    #[cfg(target_arch = "wasm32")]
    use crate::bindings::wakehub::connector::http as imp;
    #[cfg(not(target_arch = "wasm32"))]
    use crate::testing::sim::http as imp;

    /// Sends `req`; the host adds the credentials its [`Auth`] names.
    pub fn send(req: &Request) -> Result<Response, ConnectorError> {
        imp::send(req)
    }
}

/// One command over SSH, to the node's own `host` (and `ssh_port`), with the user and secret
/// its configuration names; host keys pinned like the native connector's.
pub mod ssh {
    pub use crate::ConnectorError;
    pub use crate::bindings::wakehub::connector::ssh::Output;

    #[cfg(target_arch = "wasm32")]
    use crate::bindings::wakehub::connector::ssh as imp;
    #[cfg(not(target_arch = "wasm32"))]
    use crate::testing::sim::ssh as imp;

    /// Runs `command` as `user`, authenticated with the secret at `password_key`.
    pub fn exec(user: &str, password_key: &str, command: &str) -> Result<Output, ConnectorError> {
        imp::exec(user, password_key, command)
    }
}

/// Wake-on-LAN magic packets, to the node's own `mac` and `broadcast`.
pub mod wol {
    pub use crate::ConnectorError;

    #[cfg(target_arch = "wasm32")]
    use crate::bindings::wakehub::connector::wol as imp;
    #[cfg(not(target_arch = "wasm32"))]
    use crate::testing::sim::wol as imp;

    /// Sends a magic packet to the node.
    pub fn wake() -> Result<(), ConnectorError> {
        imp::wake()
    }
}

/// TCP connect probes, to hosts the node's configuration names.
pub mod tcp {
    pub use crate::ConnectorError;

    #[cfg(target_arch = "wasm32")]
    use crate::bindings::wakehub::connector::tcp as imp;
    #[cfg(not(target_arch = "wasm32"))]
    use crate::testing::sim::tcp as imp;

    /// Whether `host:port` accepts a connection within `timeout_ms`.
    pub fn probe(host: &str, port: u16, timeout_ms: u32) -> Result<bool, ConnectorError> {
        imp::probe(host, port, timeout_ms)
    }
}

/// Logging into WakeHub's log (volume bounded per call).
pub mod log {
    pub use crate::bindings::wakehub::connector::log::Level;

    #[cfg(target_arch = "wasm32")]
    use crate::bindings::wakehub::connector::log as imp;
    #[cfg(not(target_arch = "wasm32"))]
    use crate::testing::sim::log as imp;

    /// Writes `message` at `level`.
    pub fn log(level: Level, message: &str) {
        imp::log(level, message)
    }
}

/// Time: the host's clock, bounded by the call's deadline.
pub mod clock {
    #[cfg(target_arch = "wasm32")]
    use crate::bindings::wakehub::connector::clock as imp;
    #[cfg(not(target_arch = "wasm32"))]
    use crate::testing::sim::clock as imp;

    /// Milliseconds since the Unix epoch.
    pub fn now_ms() -> u64 {
        imp::now_ms()
    }

    /// Sleeps, at most until the call's deadline.
    pub fn sleep_ms(ms: u32) {
        imp::sleep_ms(ms)
    }
}
