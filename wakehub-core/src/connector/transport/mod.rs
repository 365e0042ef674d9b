//! Transports shared by the native connectors and the plugin host's capabilities: TLS with
//! a pinned certificate, SSH command execution with pinned host keys, Wake-on-LAN magic
//! packets. Each is compiled when a connector or the plugin host needs it, so the plugin
//! host does not bring in the connectors themselves.

#[cfg(any(feature = "wol-ssh", feature = "wasm"))]
pub(crate) mod ssh;
#[cfg(any(feature = "proxmox", feature = "wasm", feature = "homeassistant"))]
pub(crate) mod tls;
#[cfg(any(feature = "wol-ssh", feature = "wasm"))]
pub(crate) mod wol;

/// An error and its causes, `outer: inner: …` — the useful part of a transport error
/// (refused, certificate, pin) is usually deep inside.
pub(crate) fn cause_chain(e: &dyn std::error::Error) -> String {
    let mut chain = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        chain.push_str(": ");
        chain.push_str(&s.to_string());
        source = s.source();
    }
    chain
}

/// A port setting (1-65535), `default` when absent.
#[cfg(any(feature = "wol-ssh", feature = "wasm"))]
pub(crate) fn config_port(config: &crate::model::ConnectorConfig, key: &str, default: u16) -> Result<u16, String> {
    match config.settings.get(key) {
        None => Ok(default),
        Some(crate::model::ConfigValue::Integer(p)) if (1..=65535).contains(p) => Ok(*p as u16),
        Some(_) => Err(format!("wol-ssh: `{key}` must be a port (1-65535)")),
    }
}
