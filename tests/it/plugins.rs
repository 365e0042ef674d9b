//! Connector plugins (WebAssembly components) in the wasmtime host: loading and its errors,
//! the sandbox's bounds against hostile plugins, grants, quarantine, and the two real
//! plugins against their peers (the HTTP switch against a Home Assistant-shaped API, Redfish
//! against the `sushy-tools` emulator).

use crate::support::StoreToml as _;
use std::time::{Duration, Instant};

use wakehub_core::connector::{ErrorCode, PowerState, Registry, Target};
use wakehub_core::engine::{Engine, EngineConfig};
use wakehub_core::events::CascadeStatus;
use wakehub_core::model::Action;
use wakehub_core::plugin::{PluginHost, PluginLimits};
use wakehub_core::topology_file::ParseOptions;

use crate::lab::run_to_end as run;

pub(crate) fn host(limits: PluginLimits, names: &[&str]) -> (PluginHost, tempfile::TempDir) {
    let dir = wakehub_tests::plugins::copy(names);
    let host = PluginHost::new(limits, None).unwrap();
    let (_, failed) = host.load_dir(dir.path());
    assert!(failed.is_empty(), "{failed:?}");
    (host, dir)
}

/// An engine with the built-in connectors and the host's plugins, over `text`.
pub(crate) fn engine(host: &PluginHost, text: &str) -> Engine {
    let mut registry = Registry::builtin();
    host.register(&mut registry);
    let options = ParseOptions::operator().with_plugin_kinds(host.kinds());
    let topology = wakehub_core::topology_file::parse(text, &options).unwrap();
    let problems = registry.validate(&topology);
    assert!(problems.is_empty(), "{problems:?}");
    let store = wakehub_core::store::Store::open_in_memory(wakehub_core::secrets::MasterKey::generate()).unwrap();
    store.import(&topology, wakehub_core::model::Origin::Operator).unwrap();
    Engine::new(store, registry, EngineConfig { plugin_kinds: host.kinds(), ..EngineConfig::default() }).unwrap()
}

pub(crate) fn target(e: &Engine, name: &str) -> Target {
    let t = e.store().topology().unwrap();
    e.target(&t, t.by_name(name).unwrap().id).unwrap()
}

#[test]
fn loading_reports_every_file_that_is_not_a_connector_of_a_known_version() {
    let dir = wakehub_tests::plugins::copy(&[
        "hostile",
        "http-switch",
        "redfish",
        "legacy",
        "classic",
        "cli-app",
        "future",
        "partial",
        "bad-schema",
    ]);
    std::fs::write(dir.path().join("garbage.wasm"), b"this is not WebAssembly at all").unwrap();
    // A core module (no component): valid WebAssembly, wrong kind.
    std::fs::write(dir.path().join("core-module.wasm"), b"\0asm\x01\0\0\0").unwrap();
    std::fs::write(dir.path().join("notes.txt"), b"ignored: not a .wasm").unwrap();
    let cache = tempfile::tempdir().unwrap();
    let host = PluginHost::new(PluginLimits::default(), Some(cache.path())).unwrap();
    let (loaded, failed) = host.load_dir(dir.path());

    let names: Vec<&str> = loaded.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["classic", "hostile", "http-switch", "legacy", "redfish"]);
    let redfish = &loaded[4];
    let kinds: Vec<&str> = redfish.kinds.iter().map(|k| k.name.as_str()).collect();
    assert_eq!((redfish.wit_version.as_str(), kinds), ("0.3.0", vec!["bmc", "server"]));
    // A 0.3.0 plugin's kinds say how long their operations take, and so do a 0.2.0 one's…
    let classic = &loaded[0];
    assert_eq!(classic.wit_version, "0.2.0");
    assert_eq!(
        (classic.kinds[0].timeouts.start, classic.kinds[0].typical_start),
        (Duration::from_secs(20), Some(Duration::from_millis(500)))
    );
    let server = &redfish.kinds[1];
    assert_eq!(
        (server.timeouts.start, server.typical_start),
        (Duration::from_secs(600), Some(Duration::from_secs(120)))
    );
    // …a 0.1.0 plugin's cannot: they get the plugin kinds' defaults.
    let legacy = &loaded[3];
    assert_eq!(legacy.wit_version, "0.1.0");
    let defaults = wakehub_core::model::Kind::Plugin(String::new()).default_timeouts();
    assert_eq!((legacy.kinds[0].name.as_str(), legacy.kinds[0].timeouts), ("legacy-switch", defaults));
    assert_eq!(legacy.kinds[0].typical_start, None);
    assert!(redfish.config_schema.contains("bmc_url"));
    // It imports only what it uses: HTTP, log and clock — no SSH, no Wake-on-LAN.
    assert!(redfish.capabilities.contains(&"http".to_owned()), "{:?}", redfish.capabilities);
    assert!(!redfish.capabilities.contains(&"ssh".to_owned()), "{:?}", redfish.capabilities);

    let by_file = |f: &str| failed.iter().find(|e| e.file.ends_with(f)).unwrap_or_else(|| panic!("{f}: {failed:?}"));
    assert_eq!(failed.len(), 6, "{failed:?}");
    for (file, code, says) in [
        ("garbage.wasm", "PLUGIN_INVALID", "not a WebAssembly component"),
        ("core-module.wasm", "PLUGIN_INVALID", "not a WebAssembly component"),
        ("cli-app.wasm", "PLUGIN_INVALID", "does not export `wakehub:connector/plugin`"),
        (
            "future.wasm",
            "PLUGIN_INCOMPATIBLE",
            "built for WIT wakehub:connector@0.9.0; this WakeHub supports 0.1.0, 0.2.0, 0.3.0",
        ),
        ("partial.wasm", "PLUGIN_INVALID", "does not match the connector world"),
        ("bad_schema.wasm", "PLUGIN_INVALID", "its configuration schema is not a valid JSON Schema"),
    ] {
        let e = by_file(file);
        assert_eq!(e.code.as_str(), code, "{e}");
        assert!(e.message.contains(says), "{file}: {e}");
    }
    // Whole, on one line: wasmtime's multi-line parts are joined, not cut.
    let garbage = by_file("garbage.wasm");
    assert!(garbage.message.contains("expected=[") && garbage.message.contains("actual="), "{garbage}");
    assert!(!garbage.message.contains('\n'), "{garbage}");

    // Compiled components are cached on disk: a second host loads them from there.
    assert!(std::fs::read_dir(cache.path()).unwrap().next().is_some(), "the cache directory is empty");
    let again = PluginHost::new(PluginLimits::default(), Some(cache.path())).unwrap();
    assert_eq!(again.load_dir(dir.path()).0.len(), 5);
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
    let modes = ["ok", "loop", "alloc", "http", "credential", "panic", "trap", "log", "sleep", "std-sleep"];
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
        ("std-sleep", Some(ErrorCode::PluginTimeout)),
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
    assert_eq!(r.error_code.map(|c| c.as_str()), Some("PLUGIN_TIMEOUT"), "{r:?}");
    let r = run(&e, "g-http", Action::Start).await;
    assert_eq!(r.error_code.map(|c| c.as_str()), Some("CAPABILITY_DENIED"), "{r:?}");
    // The denial is in the journal, as its own event (also when a plugin swallows it).
    let denied: Vec<String> = e
        .store()
        .events_after(None, None, 10_000)
        .unwrap()
        .into_iter()
        .filter_map(|ev| match ev.kind {
            wakehub_core::events::EventKind::CapabilityDenied { name, plugin, what, .. } => {
                Some(format!("{name} {plugin} {what}"))
            }
            _ => None,
        })
        .collect();
    assert!(denied.iter().any(|d| d.starts_with("g-http plugin:hostile HTTP to 127.0.0.2:9")), "{denied:?}");
    // A denial repeated by every observation is journaled once per change, counted each time.
    let journaled = |e: &Engine| {
        e.store()
            .events_after(None, None, 10_000)
            .unwrap()
            .iter()
            .filter(|ev| matches!(&ev.kind, wakehub_core::events::EventKind::CapabilityDenied { name, .. } if name == "g-http"))
            .count()
    };
    let (before, counted) = (journaled(&e), e.capability_denials());
    let topology = e.store().topology().unwrap();
    for _ in 0..3 {
        e.observe(&topology).await;
    }
    assert_eq!(journaled(&e), before, "the same denial again is not journaled again");
    assert!(e.capability_denials() >= counted + 3, "each one is counted");
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

fn plug(base: &str, token: &str) -> String {
    wakehub_tests::homeassistant::nas_plug(base, token, "start_timeout = \"10s\"\nstop_timeout = \"10s\"")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_http_switch_drives_a_home_assistant_switch() {
    let token = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.test-long-lived-token";
    let ha = wakehub_tests::HomeAssistant::start(token);
    let base = ha.url.clone();
    let (host, _dir) = host(PluginLimits::default(), &["http-switch"]);
    let e = engine(&host, &plug(&base, token));
    let connector = e.connectors().get("plugin:http-switch").unwrap();
    assert_eq!(connector.status(&target(&e, "nas-plug")).await.unwrap(), PowerState::Off);
    let r = run(&e, "nas-plug", Action::Start).await;
    assert_eq!(r.status, CascadeStatus::Completed, "{r:?}");
    assert_eq!(connector.status(&target(&e, "nas-plug")).await.unwrap(), PowerState::On);
    let r = run(&e, "nas-plug", Action::Stop).await;
    assert_eq!(r.status, CascadeStatus::Completed, "{r:?}");
    assert_eq!(connector.status(&target(&e, "nas-plug")).await.unwrap(), PowerState::Off);
    // The token was stored encrypted and never exported.
    assert!(!e.store().export_toml().unwrap().contains(token));

    // The same state read with a regular expression instead of a JSON pointer.
    let regex = plug(&base, token)
        .replace("nas-plug", "regex-plug")
        .replace("state_pointer = \"/state\"", "state_regex = '\"state\":\\s*\"(\\w+)\"'");
    let both = engine(&host, &(plug(&base, token) + &regex));
    let r = run(&both, "nas-plug", Action::Start).await;
    assert_eq!(r.status, CascadeStatus::Completed, "{r:?}");
    assert_eq!(connector.status(&target(&both, "regex-plug")).await.unwrap(), PowerState::On);
    let r = run(&both, "regex-plug", Action::Stop).await;
    assert_eq!(r.status, CascadeStatus::Completed, "{r:?}");
    assert_eq!(connector.status(&target(&both, "nas-plug")).await.unwrap(), PowerState::Off);

    // A wrong token is AUTH_FAILED; a missing URL key is refused by `check`.
    let wrong = engine(&host, &plug(&base, "not-the-token"));
    let err = connector.status(&target(&wrong, "nas-plug")).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::AuthFailed, "{err}");
    assert!(!err.message.contains("not-the-token"));
    let mut registry = Registry::builtin();
    host.register(&mut registry);
    let bad = plug(&base, token).replace("status_url", "statusurl");
    let topology =
        wakehub_core::topology_file::parse(&bad, &ParseOptions::operator().with_plugin_kinds(host.kinds())).unwrap();
    let problems = registry.validate(&topology);
    let said: Vec<&str> = problems.iter().map(|(_, p)| p.as_str()).collect();
    assert_eq!(
        said,
        ["plugin:http-switch: `status_url` is required", "plugin:http-switch: unknown key `statusurl`"],
        "the declared schema is enforced, every problem at once"
    );
}

/// The `legacy` test plugin, built against the frozen WIT 0.1.0 (no SDK), driving the Home
/// Assistant switch `switch.nas_plug` at `base`.
fn legacy_plug(base: &str, token: &str, entity: &str) -> String {
    format!(
        r#"
[[node]]
name = "old-plug"
kind = "legacy-switch"
[node.connector]
type = "plugin:legacy"
url = "{base}"
entity = "{entity}"
token = "{token}"
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_built_for_wit_0_1_0_keeps_working_beside_0_3_0() {
    let token = "legacy-long-lived-token";
    let ha = wakehub_tests::HomeAssistant::start(token);
    let (host, _dir) = host(PluginLimits::default(), &["legacy", "http-switch"]);
    let versions: Vec<(String, String)> = host.plugins().into_iter().map(|p| (p.name, p.wit_version)).collect();
    assert_eq!(versions, [("http-switch".into(), "0.3.0".into()), ("legacy".into(), "0.1.0".into())]);

    // Its imports (HTTP with a bearer token, log, clock) and exports, through the adapter.
    let e = engine(&host, &legacy_plug(&ha.url, token, "switch.nas_plug"));
    let connector = e.connectors().get("plugin:legacy").unwrap();
    assert_eq!(connector.status(&target(&e, "old-plug")).await.unwrap(), PowerState::Off);
    let r = run(&e, "old-plug", Action::Start).await;
    assert_eq!(r.status, CascadeStatus::Completed, "{r:?}");
    assert_eq!(connector.status(&target(&e, "old-plug")).await.unwrap(), PowerState::On);
    let r = run(&e, "old-plug", Action::Stop).await;
    assert_eq!(r.status, CascadeStatus::Completed, "{r:?}");
    assert_eq!(connector.status(&target(&e, "old-plug")).await.unwrap(), PowerState::Off);
    // Its errors keep their codes; the node is named once.
    let wrong = engine(&host, &legacy_plug(&ha.url, "wrong", "switch.nas_plug"));
    let err = connector.status(&target(&wrong, "old-plug")).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::AuthFailed, "{err}");
    assert_eq!(err.message.matches("old-plug").count(), 1, "{err}");
    let err = connector.discover(&target(&e, "old-plug")).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::Unsupported, "{err}");
    // Its node gets the plugin kinds' default timeouts: 0.1.0 cannot declare its own.
    let topology = e.store().topology().unwrap();
    let node = topology.by_name("old-plug").unwrap();
    assert_eq!(node.spec.timeouts, wakehub_core::model::Kind::Plugin(String::new()).default_timeouts());

    // Its `validate` says one thing about the whole table; the schema's problems have keys.
    let mut registry = Registry::builtin();
    host.register(&mut registry);
    let options = ParseOptions::operator().with_plugin_kinds(host.kinds()).with_connector_check(registry.table_check());
    let bad = legacy_plug(&ha.url, token, "light.desk").replace("url = ", "uri = ");
    let err = wakehub_core::topology_file::parse(&bad, &options).unwrap_err();
    let said = err.to_string();
    assert!(said.contains("field `connector.url`: plugin:legacy: `url` is required"), "{said}");
    assert!(said.contains("field `connector.uri`: plugin:legacy: unknown key `uri`"), "{said}");
    // The schema failed, so the plugin's own check did not run; alone, it speaks.
    let bad = legacy_plug(&ha.url, token, "light.desk");
    let said = wakehub_core::topology_file::parse(&bad, &options).unwrap_err().to_string();
    assert!(said.contains("field `connector`: plugin:legacy: `entity` must be a switch entity"), "{said}");
}

/// A Shelly Gen2 plug driven by the `shelly` plugin; `password` is its `password` key as
/// written, if any.
fn shelly_plug(base: &str, password: Option<&str>) -> String {
    let password = password.map(|p| format!("password = \"{p}\"\n")).unwrap_or_default();
    format!(
        r#"
[[node]]
name = "desk-plug"
kind = "smart-plug"
[node.connector]
type = "plugin:shelly"
url = "{base}"
{password}"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shelly_plugin_drives_a_gen2_plug_behind_digest_auth() {
    let password = "correct horse battery staple";
    let shelly = wakehub_tests::Shelly::start(Some(password));
    let (host, _dir) = host(PluginLimits::default(), &["shelly"]);
    let e = engine(&host, &shelly_plug(&shelly.url, Some(password)));
    let connector = e.connectors().get("plugin:shelly").unwrap();
    assert_eq!(connector.status(&target(&e, "desk-plug")).await.unwrap(), PowerState::Off);

    // The kind's own timeouts and typical durations: a plug is planned in a second, not in
    // a server's five minutes.
    let topology = e.store().topology().unwrap();
    let timeouts = topology.by_name("desk-plug").unwrap().spec.timeouts;
    assert_eq!((timeouts.start, timeouts.stop), (Duration::from_secs(10), Duration::from_secs(10)));
    let plan = e.plan("desk-plug", Action::Start).await.unwrap();
    assert_eq!((plan.estimate, plan.worst_case), (Duration::from_millis(300), Duration::from_secs(10)));

    let r = run(&e, "desk-plug", Action::Start).await;
    assert_eq!(r.status, CascadeStatus::Completed, "{r:?}");
    assert_eq!(shelly.state()["output"], true);
    let r = run(&e, "desk-plug", Action::Stop).await;
    assert_eq!(r.status, CascadeStatus::Completed, "{r:?}");
    assert_eq!(shelly.state()["output"], false);
    // The host answered the digest challenges: the device rejected nothing, and the password
    // never reached the plugin or the export.
    assert_eq!(shelly.state()["auth_failures"], 0);
    assert!(!e.store().export_toml().unwrap().contains(password));

    // A device rebooting answers 503 twice: `retryable`, so the engine tries the start again.
    shelly.fail_next(2, 503);
    let r = run(&e, "desk-plug", Action::Start).await;
    assert_eq!(r.status, CascadeStatus::Completed, "{r:?}");
    assert_eq!(shelly.state()["output"], true);

    // A wrong password, and none at all, are AUTH_FAILED with what to do.
    let wrong = engine(&host, &shelly_plug(&shelly.url, Some("Tr0ub4dor&3")));
    let err = connector.status(&target(&wrong, "desk-plug")).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::AuthFailed, "{err}");
    assert_eq!(err.message, "desk-plug: Switch.GetStatus: the device refused the password");
    assert!(shelly.state()["auth_failures"].as_u64().unwrap() >= 1);
    let none = engine(&host, &shelly_plug(&shelly.url, None));
    let err = connector.stop(&target(&none, "desk-plug")).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::AuthFailed, "{err}");
    assert!(err.message.contains("has no `password`"), "{err}");
    // `test_connection` reads the device info (never protected) and then the switch.
    connector.test_connection(&target(&e, "desk-plug")).await.unwrap();

    // The generic HTTP switch speaks digest too (`auth_scheme = "digest"`), a body included:
    // a JSON-RPC frame POSTed to `/rpc`, sent again with the answer to the challenge.
    let (generic_host, _generic_dir) = self::host(PluginLimits::default(), &["http-switch"]);
    let generic = format!(
        r#"
[[node]]
name = "generic-plug"
kind = "switch"
[node.connector]
type = "plugin:http-switch"
on_url = "{base}/rpc"
on_body = '{{"id": 1, "method": "Switch.Set", "params": {{"id": 0, "on": true}}}}'
off_url = "{base}/rpc"
off_body = '{{"id": 2, "method": "Switch.Set", "params": {{"id": 0, "on": false}}}}'
status_url = "{base}/rpc/Switch.GetStatus?id=0"
state_pointer = "/output"
username = "admin"
password = "{password}"
auth_scheme = "digest"
"#,
        base = shelly.url
    );
    let before = shelly.state()["executed"].as_array().unwrap().len();
    let g = engine(&generic_host, &generic);
    // The relay is on (above): stop it, then start it again.
    let r = run(&g, "generic-plug", Action::Stop).await;
    assert_eq!(r.status, CascadeStatus::Completed, "{r:?}");
    assert_eq!(shelly.state()["output"], false);
    let r = run(&g, "generic-plug", Action::Start).await;
    assert_eq!(r.status, CascadeStatus::Completed, "{r:?}");
    assert_eq!(shelly.state()["output"], true);
    let executed = shelly.state()["executed"].as_array().unwrap()[before..].to_vec();
    assert!(executed.contains(&"Switch.Set".into()), "{executed:?}");
    assert_eq!(shelly.state()["auth_failures"].as_u64(), Some(1), "only the wrong password above was refused");

    // A device with its authentication off needs no password.
    let open = wakehub_tests::Shelly::start(None);
    let e = engine(&host, &shelly_plug(&open.url, None));
    let r = run(&e, "desk-plug", Action::Start).await;
    assert_eq!(r.status, CascadeStatus::Completed, "{r:?}");
    assert_eq!(open.state()["output"], true);
}

fn bmc(s: &wakehub_tests::Sushy, name: &str, password: &str, fingerprint: &str) -> String {
    format!(
        r#"
[[node]]
name = "{name}"
kind = "bmc"
[node.connector]
type = "plugin:redfish"
bmc_url = "{url}"
username = "root"
password = "{password}"
tls_fingerprint = "{fingerprint}"
"#,
        url = s.url
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redfish_discovers_and_powers_servers_of_the_sushy_emulator() {
    let s = wakehub_tests::Sushy::start();
    let (host, _dir) = host(PluginLimits::default(), &["redfish"]);
    let wrong_pin = vec!["00"; 32].join(":");
    let lab = bmc(&s, "bmc", "calvin", &s.fingerprint)
        + &bmc(&s, "bmc-wrong-password", "tiger", &s.fingerprint)
        + &bmc(&s, "bmc-wrong-pin", "calvin", &wrong_pin)
        + "[[node]]\nname = \"ghost\"\nkind = \"server\"\nparent = \"bmc\"\n[node.connector]\ntype = \"plugin:redfish\"\nsystem = \"nope\"\n";
    let e = engine(&host, &lab);
    let id = |name: &str| e.store().topology().unwrap().by_name(name).unwrap().id;

    // Discovery lists the BMC's systems as servers under it.
    let report = e.discover(id("bmc")).await.unwrap();
    let found: Vec<(String, PowerState)> = report.added.iter().map(|g| (g.name.clone(), g.status)).collect();
    assert_eq!(found, [("node-a".to_owned(), PowerState::Off), ("node-b".to_owned(), PowerState::On)], "{report:?}");
    let a = e.store().discovery(id("node-a")).unwrap().unwrap();
    assert_eq!(a.key, "system/27946b59-9e44-4fa7-8e91-f3527a1ef094");
    assert!(a.details["reset_types"].as_array().unwrap().contains(&"GracefulShutdown".into()), "{a:?}");
    // A discovered server gets its kind's timeouts, as the plugin declares them.
    let timeouts = e.store().topology().unwrap().by_name("node-a").unwrap().spec.timeouts;
    assert_eq!((timeouts.start, timeouts.stop), (Duration::from_secs(600), Duration::from_secs(300)));
    e.store().adopt_node(id("node-a"), None, wakehub_core::model::Origin::Api).unwrap();
    e.store().adopt_node(id("node-b"), None, wakehub_core::model::Origin::Api).unwrap();

    // Power on and graceful shutdown land after the emulator's delay: the steps wait.
    let r = run(&e, "node-a", Action::Start).await;
    assert_eq!(r.status, CascadeStatus::Completed, "{r:?}");
    let connector = e.connectors().get("plugin:redfish").unwrap();
    assert_eq!(connector.status(&target(&e, "node-a")).await.unwrap(), PowerState::On);
    let r = run(&e, "node-b", Action::Stop).await;
    assert_eq!(r.status, CascadeStatus::Completed, "{r:?}");
    assert_eq!(connector.status(&target(&e, "node-b")).await.unwrap(), PowerState::Off);

    // Without a graceful attempt (`graceful_timeout_secs = 0`) it is a hard ForceOff.
    let a = id("node-a");
    let mut spec = e.store().topology().unwrap().node(a).unwrap().spec.clone();
    spec.connector.settings.insert("graceful_timeout_secs".into(), wakehub_core::model::ConfigValue::Integer(0));
    e.store().update_node(a, spec, wakehub_core::model::Origin::Api).unwrap();
    let r = run(&e, "node-a", Action::Stop).await;
    assert_eq!(r.status, CascadeStatus::Completed, "{r:?}");
    assert_eq!(connector.status(&target(&e, "node-a")).await.unwrap(), PowerState::Off);

    // Its errors: wrong password, a certificate that is not the pinned one, an unknown system.
    let err = connector.status(&target(&e, "bmc-wrong-password")).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::AuthFailed, "{err}");
    assert!(!err.message.contains("tiger"));
    let err = connector.status(&target(&e, "bmc-wrong-pin")).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::TlsPinMismatch, "{err}");
    let err = connector.status(&target(&e, "ghost")).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::NotFound, "{err}");
    // A plugin that names the node itself (as redfish does) is not prefixed a second time.
    let mut no_url = target(&e, "bmc");
    no_url.config.settings.remove("bmc_url");
    let err = connector.status(&no_url).await.unwrap_err();
    assert_eq!((err.code, err.message.as_str()), (ErrorCode::InvalidConfig, "bmc: `bmc_url` is required"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssh_wake_on_lan_and_tcp_capabilities_follow_the_grant() {
    use wakehub_tests::{PASSWORD, Sshd, USER};
    let sshd = Sshd::start();
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let wol_port = udp.local_addr().unwrap().port();
    let node = |mode: &str| {
        format!(
            "[[node]]\nname = \"g-{mode}\"\nkind = \"gremlin\"\n[node.connector]\ntype = \"plugin:hostile\"\nmode = \"{mode}\"\n\
             host = \"127.0.0.1\"\nssh_port = {ssh}\nssh_user = \"{USER}\"\nssh_password = \"{PASSWORD}\"\nprobe_port = {ssh}\n\
             mac = \"52:54:00:ab:cd:ef\"\nbroadcast = \"127.0.0.1\"\nwol_port = {wol_port}\nrepeats = 1\n\n",
            ssh = sshd.port
        )
    };
    let lab: String = ["ssh", "ssh-other-key", "wake", "probe", "probe-elsewhere"].map(node).concat();
    let (host, _dir) = host(PluginLimits::default(), &["hostile"]);
    let e = engine(&host, &lab);
    let c = e.connectors().get("plugin:hostile").unwrap();

    // SSH with the node's own credentials: the command runs (the wrapper acknowledges it),
    // the host key is learned and pinned as for the native connector.
    assert_eq!(c.status(&target(&e, "g-ssh")).await.unwrap(), PowerState::Off);
    assert!(sshd.out("shutdown-requested").exists());
    assert_eq!(std::fs::read_to_string(sshd.out("commands.log")).unwrap().trim(), "shutdown -h now");
    let err = c.status(&target(&e, "g-ssh-other-key")).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::CapabilityDenied, "{err}");
    assert!(err.message.contains("root_password"), "{err}");

    // A magic packet to the node's own MAC, byte for byte.
    assert_eq!(c.status(&target(&e, "g-wake")).await.unwrap(), PowerState::Starting);
    let mut buf = [0u8; 200];
    let (n, _) = udp.recv_from(&mut buf).unwrap();
    assert_eq!(n, 102);
    assert!(buf[..6] == [0xff; 6] && buf[6..102].chunks(6).all(|m| m == [0x52, 0x54, 0x00, 0xab, 0xcd, 0xef]));

    // TCP probes: its own host answers; another is not granted.
    assert_eq!(c.status(&target(&e, "g-probe")).await.unwrap(), PowerState::On);
    let err = c.status(&target(&e, "g-probe-elsewhere")).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::CapabilityDenied, "{err}");
}

#[test]
fn a_cached_component_is_loaded_only_if_this_host_compiled_it() {
    let dir = wakehub_tests::plugins::copy(&["http-switch"]);
    let load = |cache: &std::path::Path| {
        let host = PluginHost::new(PluginLimits::default(), Some(cache)).unwrap();
        let (loaded, failed) = host.load_dir(dir.path());
        assert!(failed.is_empty(), "{failed:?}");
        assert_eq!(loaded.len(), 1);
    };
    let first = tempfile::tempdir().unwrap();
    load(first.path());
    let manifest = PluginHost::cache_manifest(first.path()).unwrap();
    assert_eq!(manifest.len(), 1, "the compiled component, and only it, is listed: {manifest:?}");
    assert!(PluginHost::verify_cache(first.path(), &manifest).unwrap().is_empty(), "what it compiled is kept");

    // What follows works on a copy of the cache, out of reach of the first host's background
    // worker (which keeps writing its usage statistics and cleaning up for a while).
    let cache = tempfile::tempdir().unwrap();
    let (rel, sum) = manifest.iter().next().unwrap();
    let tampered = cache.path().join(rel);
    std::fs::create_dir_all(tampered.parent().unwrap()).unwrap();
    std::fs::copy(first.path().join(rel), &tampered).unwrap();
    assert_eq!(PluginHost::cache_manifest(cache.path()).unwrap(), manifest);

    // The compiled component changed behind the host's back is removed, and the plugin
    // compiled again.
    let mut bytes = std::fs::read(&tampered).unwrap();
    bytes.extend_from_slice(b"not what the host compiled");
    std::fs::write(&tampered, bytes).unwrap();
    // So is a file the host never wrote.
    let planted = cache.path().join("planted.bin");
    std::fs::write(&planted, b"native code from elsewhere").unwrap();
    let mut removed = PluginHost::verify_cache(cache.path(), &manifest).unwrap();
    removed.sort();
    let mut expected = vec![tampered.clone(), planted];
    expected.sort();
    assert_eq!(removed, expected);
    load(cache.path());
    assert_eq!(PluginHost::cache_manifest(cache.path()).unwrap().get(rel), Some(sum), "compiled again, the same");
}
