//! Connector plugins (WebAssembly components) in the wasmtime host: loading and its errors,
//! the sandbox's bounds against hostile plugins, grants, quarantine, and the two real
//! plugins against their peers (the HTTP switch against a Home Assistant-shaped API, Redfish
//! against the `sushy-tools` emulator).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use wakehub_core::connector::{ErrorCode, PowerState, Registry, Target};
use wakehub_core::engine::{Action, Engine, EngineConfig};
use wakehub_core::events::CascadeStatus;
use wakehub_core::plugin::{PluginHost, PluginLimits};
use wakehub_core::topology_file::ParseOptions;

use crate::support::run_to_end as run;

/// Builds `plugins/` for wasm32-wasip2 once per test process; returns the output directory.
pub(crate) fn built_plugins() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins");
        let out = Command::new(env!("CARGO"))
            .args(["build", "--release", "--target", "wasm32-wasip2", "-j", "2", "--manifest-path"])
            .arg(root.join("Cargo.toml"))
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_TARGET_DIR")
            .output()
            .expect("run cargo for the plugins");
        assert!(
            out.status.success(),
            "building the plugins failed (is the wasm32-wasip2 target installed? scripts/test.sh adds it):\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        root.join("target/wasm32-wasip2/release")
    })
}

/// A directory holding copies of the named plugins.
fn plugin_dir(names: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for name in names {
        // Libraries are named with `_`, binaries keep their `-`.
        let file = [name.replace('-', "_"), name.to_string()]
            .map(|n| format!("{n}.wasm"))
            .into_iter()
            .find(|f| built_plugins().join(f).exists())
            .unwrap_or_else(|| panic!("no {name}.wasm in {}", built_plugins().display()));
        std::fs::copy(built_plugins().join(&file), dir.path().join(&file)).unwrap();
    }
    dir
}

fn host(limits: PluginLimits, names: &[&str]) -> (PluginHost, tempfile::TempDir) {
    let dir = plugin_dir(names);
    let host = PluginHost::new(limits, None).unwrap();
    let (_, failed) = host.load_dir(dir.path());
    assert!(failed.is_empty(), "{failed:?}");
    (host, dir)
}

/// An engine with the built-in connectors and the host's plugins, over `text`.
fn engine(host: &PluginHost, text: &str) -> Engine {
    let mut registry = Registry::builtin();
    host.register(&mut registry);
    let options = ParseOptions { plugin_kinds: host.kinds() };
    let topology = wakehub_core::topology_file::parse(text, &options).unwrap();
    let problems = registry.validate(&topology);
    assert!(problems.is_empty(), "{problems:?}");
    let store = wakehub_core::store::Store::open_in_memory(wakehub_core::secrets::MasterKey::generate()).unwrap();
    store.import(&topology).unwrap();
    Engine::new(store, registry, EngineConfig { plugin_kinds: host.kinds(), ..EngineConfig::default() }).unwrap()
}

fn target(e: &Engine, name: &str) -> Target {
    let t = e.store().topology().unwrap();
    Target::of(&t, t.by_name(name).unwrap().id).unwrap().with_secrets(Arc::new(e.store().clone()))
}

#[test]
fn loading_reports_every_file_that_is_not_a_connector_of_a_known_version() {
    let dir = plugin_dir(&["hostile", "http-switch", "redfish", "cli-app", "future", "partial"]);
    std::fs::write(dir.path().join("garbage.wasm"), b"this is not WebAssembly at all").unwrap();
    // A core module (no component): valid WebAssembly, wrong kind.
    std::fs::write(dir.path().join("core-module.wasm"), b"\0asm\x01\0\0\0").unwrap();
    std::fs::write(dir.path().join("notes.txt"), b"ignored: not a .wasm").unwrap();
    let cache = tempfile::tempdir().unwrap();
    let host = PluginHost::new(PluginLimits::default(), Some(cache.path())).unwrap();
    let (loaded, failed) = host.load_dir(dir.path());

    let names: Vec<&str> = loaded.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["hostile", "http-switch", "redfish"]);
    let redfish = &loaded[2];
    assert_eq!((redfish.wit_version.as_str(), redfish.kinds.clone()), ("0.1.0", vec!["bmc".into(), "server".into()]));
    assert!(redfish.config_schema.contains("bmc_url"));
    // It imports only what it uses: HTTP, log and clock — no SSH, no Wake-on-LAN.
    assert!(redfish.capabilities.contains(&"http".to_owned()), "{:?}", redfish.capabilities);
    assert!(!redfish.capabilities.contains(&"ssh".to_owned()), "{:?}", redfish.capabilities);

    let by_file = |f: &str| failed.iter().find(|e| e.file.ends_with(f)).unwrap_or_else(|| panic!("{f}: {failed:?}"));
    assert_eq!(failed.len(), 5, "{failed:?}");
    for (file, code, says) in [
        ("garbage.wasm", "PLUGIN_INVALID", "not a WebAssembly component"),
        ("core-module.wasm", "PLUGIN_INVALID", "not a WebAssembly component"),
        ("cli-app.wasm", "PLUGIN_INVALID", "does not export `wakehub:connector/plugin`"),
        ("future.wasm", "PLUGIN_INCOMPATIBLE", "built for WIT wakehub:connector@0.2.0"),
        ("partial.wasm", "PLUGIN_INVALID", "does not match the connector world"),
    ] {
        let e = by_file(file);
        assert_eq!(e.code, code, "{e}");
        assert!(e.message.contains(says), "{file}: {e}");
    }

    // Compiled components are cached on disk: a second host loads them from there.
    assert!(std::fs::read_dir(cache.path()).unwrap().next().is_some(), "the cache directory is empty");
    let again = PluginHost::new(PluginLimits::default(), Some(cache.path())).unwrap();
    assert_eq!(again.load_dir(dir.path()).0.len(), 3);
    // A name already loaded is refused.
    let dup = again.load_file(&dir.path().join("redfish.wasm")).unwrap_err();
    assert!(dup.message.contains("already loaded"), "{dup}");
}

fn gremlins(modes: &[&str]) -> String {
    modes
        .iter()
        .map(|m| {
            format!(
                "[[node]]\nname = \"g-{m}\"\nkind = \"gremlin\"\nstart_timeout = \"10s\"\n[node.connector]\ntype = \"plugin:hostile\"\nmode = \"{m}\"\napi_url = \"http://127.0.0.1:9/\"\nelsewhere = \"http://127.0.0.2:9/\"\n\n"
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_plugins_end_with_their_code_within_bounds_and_the_host_carries_on() {
    let limits = PluginLimits {
        memory_bytes: 32 << 20,
        call_timeout: Duration::from_secs(2),
        quarantine_after: 100,
        ..PluginLimits::default()
    };
    let (host, _dir) = host(limits, &["hostile"]);
    let modes = ["ok", "loop", "alloc", "http", "credential", "panic", "trap", "log", "sleep"];
    let e = engine(&host, &gremlins(&modes));
    let connector = e.connectors().get("plugin:hostile").unwrap();
    for (mode, expected) in [
        ("loop", Some(ErrorCode::PluginTimeout)),
        ("alloc", Some(ErrorCode::PluginMemory)),
        ("http", Some(ErrorCode::CapabilityDenied)),
        ("credential", Some(ErrorCode::CapabilityDenied)),
        ("panic", Some(ErrorCode::PluginTrap)),
        ("trap", Some(ErrorCode::PluginTrap)),
        ("log", None),
        ("sleep", None),
        ("ok", None),
    ] {
        let began = Instant::now();
        let result = connector.status(&target(&e, &format!("g-{mode}"))).await;
        let took = began.elapsed();
        assert!(took < Duration::from_secs(6), "{mode} took {took:?}");
        match expected {
            Some(code) => {
                let err = result.unwrap_err();
                assert_eq!(err.code, code, "{mode}: {err}");
                assert!(err.message.starts_with(&format!("g-{mode}:")), "{mode}: {err}");
            }
            // A flood of logs is cut by the quota; a long sleep by the deadline.
            None if mode == "sleep" => assert!(took < Duration::from_secs(4), "{took:?}"),
            None => assert_eq!(result.unwrap(), PowerState::On, "{mode}"),
        }
    }
    let denied = connector.status(&target(&e, "g-http")).await.unwrap_err();
    assert!(denied.message.contains("127.0.0.2:9") && denied.message.contains("does not name"), "{denied}");
    let denied = connector.status(&target(&e, "g-credential")).await.unwrap_err();
    assert!(denied.message.contains("admin_token"), "{denied}");

    // Through the engine, a hostile start fails its step with the code, journaled.
    let r = run(&e, "g-loop", Action::Start).await;
    assert_eq!(r.status, CascadeStatus::Failed);
    assert_eq!(r.error_code.as_deref(), Some("PLUGIN_TIMEOUT"), "{r:?}");
    let r = run(&e, "g-http", Action::Start).await;
    assert_eq!(r.error_code.as_deref(), Some("CAPABILITY_DENIED"), "{r:?}");
    // …and the host carries on.
    assert_eq!(connector.status(&target(&e, "g-ok")).await.unwrap(), PowerState::On);
    let info = &host.plugins()[0];
    assert!(info.faults >= 5 && !info.quarantined, "{info:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_that_keeps_faulting_is_quarantined() {
    let limits = PluginLimits { quarantine_after: 3, ..PluginLimits::default() };
    let (host, _dir) = host(limits, &["hostile"]);
    let e = engine(&host, &gremlins(&["ok", "panic"]));
    let connector = e.connectors().get("plugin:hostile").unwrap();
    // A success in between resets the count.
    for _ in 0..2 {
        assert_eq!(connector.status(&target(&e, "g-panic")).await.unwrap_err().code, ErrorCode::PluginTrap);
    }
    assert_eq!(connector.status(&target(&e, "g-ok")).await.unwrap(), PowerState::On);
    for _ in 0..3 {
        assert_eq!(connector.status(&target(&e, "g-panic")).await.unwrap_err().code, ErrorCode::PluginTrap);
    }
    let err = connector.status(&target(&e, "g-ok")).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::PluginQuarantined, "{err}");
    let info = &host.plugins()[0];
    assert!(info.quarantined && info.faults == 5, "{info:?}");
}
