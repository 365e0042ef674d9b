//! What a connector plugin costs, printed as ratios against native code in the same run.
//!
//! Run with `cargo bench -p wakehub-tests --bench plugin`.
//!
//! 1. Loading: compiling a component from scratch against loading it from the on-disk cache.
//! 2. A call with no I/O: the `hostile` test plugin's `status` in its well-behaved mode (a
//!    fresh store, instantiation from the template, the call) against the native simulator's
//!    `status`.
//! 3. A call doing HTTP: the HTTP switch plugin's `status` against a local HTTP server
//!    (grant check, request, JSON pointer) against the same GET and JSON pointer in native
//!    code with a reused client.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wakehub_core::connector::{PowerState, Registry};
use wakehub_core::engine::{Engine, EngineConfig};
use wakehub_core::plugin::{PluginHost, PluginLimits};
use wakehub_core::secrets::MasterKey;
use wakehub_core::store::Store;
use wakehub_core::topology_file::ParseOptions;

fn plugins() -> PathBuf {
    wakehub_tests::plugins::dir().to_owned()
}

fn time<R>(n: usize, mut f: impl FnMut() -> R) -> Duration {
    let began = Instant::now();
    for _ in 0..n {
        std::hint::black_box(f());
    }
    began.elapsed() / n.max(1) as u32
}

/// The median over 5 batches of the mean time of `n / 5` awaited calls (the machine is
/// shared: the median shrugs off a batch another process slowed down).
async fn time_async<F: std::future::Future>(n: usize, mut f: impl FnMut() -> F) -> Duration {
    let per_batch = (n / 5).max(1);
    let mut batches = Vec::new();
    for _ in 0..5 {
        let began = Instant::now();
        for _ in 0..per_batch {
            std::hint::black_box(f().await);
        }
        batches.push(began.elapsed() / per_batch as u32);
    }
    batches.sort();
    batches[2]
}

fn ratio(what: &str, subject: Duration, baseline: Duration, base_name: &str) {
    println!(
        "{what}: {:>10.1} µs vs {base_name} {:>8.1} µs  → ×{:.1}",
        subject.as_secs_f64() * 1e6,
        baseline.as_secs_f64() * 1e6,
        subject.as_secs_f64() / baseline.as_secs_f64().max(1e-12)
    );
}

/// A local HTTP server answering every request with the same JSON, keeping connections
/// open (HTTP/1.1), as a device's or Home Assistant's API does.
async fn http_server() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap_or_else(|e| panic!("{e}"));
    let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let _ = s.set_nodelay(true);
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let mut read = 0;
                loop {
                    let Some(end) = buf[..read].windows(4).position(|w| w == b"\r\n\r\n") else {
                        match s.read(&mut buf[read..]).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => read += n,
                        }
                        continue;
                    };
                    // Requests here have no body: the next one starts after the blank line.
                    buf.copy_within(end + 4..read, 0);
                    read -= end + 4;
                    let body = r#"{"entity_id":"switch.x","state":"on"}"#;
                    let resp = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    if s.write_all(resp.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    format!("http://{addr}")
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let n = if full { 2000 } else { 20 };
    let dir = plugins();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap_or_else(|e| panic!("{e}"));

    // 1. Loading (`WAKEHUB_BENCH=calls` skips it, for a profiler).
    let file = dir.join("http_switch.wasm");
    let loads = if std::env::var("WAKEHUB_BENCH").is_ok_and(|b| b == "calls") {
        0
    } else if full {
        5
    } else {
        1
    };
    let cold = time(loads, || {
        let host = PluginHost::new(PluginLimits::default(), None).unwrap_or_else(|e| panic!("{e}"));
        host.load_file(&file).unwrap_or_else(|e| panic!("{e}"))
    });
    let cache = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let warm_up = PluginHost::new(PluginLimits::default(), Some(cache.path())).unwrap_or_else(|e| panic!("{e}"));
    warm_up.load_file(&file).unwrap_or_else(|e| panic!("{e}"));
    let cached = time(loads, || {
        let host = PluginHost::new(PluginLimits::default(), Some(cache.path())).unwrap_or_else(|e| panic!("{e}"));
        host.load_file(&file).unwrap_or_else(|e| panic!("{e}"))
    });
    if loads > 0 {
        ratio("load a plugin, compiling", cold, cached, "from the cache");
    }

    // 2 and 3: calls.
    let host = PluginHost::new(PluginLimits::default(), None).unwrap_or_else(|e| panic!("{e}"));
    for name in ["hostile.wasm", "http_switch.wasm"] {
        host.load_file(&dir.join(name)).unwrap_or_else(|e| panic!("{e}"));
    }
    let base = rt.block_on(http_server());
    let lab = format!(
        "[[node]]\nname = \"g\"\nkind = \"gremlin\"\n[node.connector]\ntype = \"plugin:hostile\"\nmode = \"ok\"\n\n\
         [[node]]\nname = \"s\"\nkind = \"physical\"\n[node.connector]\ntype = \"sim\"\ninitially = \"on\"\n\n\
         [[node]]\nname = \"plug\"\nkind = \"switch\"\n[node.connector]\ntype = \"plugin:http-switch\"\n\
         on_url = \"{base}/on\"\noff_url = \"{base}/off\"\nstatus_url = \"{base}/api/states/switch.x\"\nstate_pointer = \"/state\"\n"
    );
    let mut registry = Registry::builtin();
    host.register(&mut registry);
    let topology = wakehub_core::topology_file::parse(&lab, &ParseOptions::operator().with_plugin_kinds(host.kinds()))
        .unwrap_or_else(|e| panic!("{e}"));
    let store = Store::open_in_memory(MasterKey::generate()).unwrap_or_else(|e| panic!("{e}"));
    store.import(&topology, wakehub_core::model::Origin::Operator).unwrap_or_else(|e| panic!("{e}"));
    let engine = Engine::new(store, registry, EngineConfig::default()).unwrap_or_else(|e| panic!("{e}"));
    let t = engine.store().topology().unwrap_or_else(|e| panic!("{e}"));
    let target = |name: &str| {
        let id = t.by_name(name).unwrap_or_else(|| panic!("{name}")).id;
        engine.target(&t, id).unwrap_or_else(|| panic!("{name}"))
    };
    let (g, s, plug) = (target("g"), target("s"), target("plug"));
    let hostile = engine.connectors().get("plugin:hostile").unwrap_or_else(|| panic!("hostile"));
    let sim = engine.connectors().get("sim").unwrap_or_else(|| panic!("sim"));
    let switch = engine.connectors().get("plugin:http-switch").unwrap_or_else(|| panic!("switch"));
    // Timed in a task on the runtime's workers, where the engine calls connectors (not on
    // the thread blocked on the runtime, which every wakeup would have to cross to).
    let timed = async move {
        assert_eq!(hostile.status(&g).await.unwrap_or_else(|e| panic!("{e}")), PowerState::On);
        let plugin = time_async(n, || hostile.status(&g)).await;
        let native = time_async(n, || sim.status(&s)).await;
        ratio("a plugin call, no I/O", plugin, native, "native (sim)");

        assert_eq!(switch.status(&plug).await.unwrap_or_else(|e| panic!("{e}")), PowerState::On);
        let client = reqwest::Client::new();
        let url = format!("{base}/api/states/switch.x");
        let native_http = || {
            let (client, url) = (client.clone(), url.clone());
            async move {
                let v: serde_json::Value = client
                    .get(&url)
                    .send()
                    .await
                    .unwrap_or_else(|e| panic!("{e}"))
                    .json()
                    .await
                    .unwrap_or_else(|e| panic!("{e}"));
                v.pointer("/state").and_then(|s| s.as_str()) == Some("on")
            }
        };
        let http_n = n / 4 + 1;
        let plugin = time_async(http_n, || switch.status(&plug)).await;
        let native = time_async(http_n, native_http).await;
        ratio("a plugin call doing HTTP", plugin, native, "native reqwest");
    };
    rt.block_on(async move { tokio::spawn(timed).await }).unwrap_or_else(|e| panic!("{e}"));
}
