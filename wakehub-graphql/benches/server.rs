//! Server benchmarks, printed as ratios measured in one run (the machine is shared and
//! noisy; a baseline in the same run is what makes a number meaningful).
//!
//! Run with `cargo bench -p wakehub-graphql --bench server`.
//!
//! 1. 1,000 concurrent WebSocket subscribers receiving a cascade's events: p50/p99 delivery
//!    latency (publication → a client has parsed it), against the same with one subscriber.
//! 2. Query throughput on a 1,000-node topology (`nodes { name status parent { name } }`
//!    over HTTP, 8 clients), against a one-node query on the same server and against a
//!    bare HTTP answer (`/healthz`). The server is a separate `wakehub serve` process on a
//!    database file (WAL), as deployed; this process only makes the load. (Not pinned to
//!    separate cores: the machine has two, and the server would get one.)
//!
//! 3. Memory: the resident set of a `wakehub serve` process, idle (on a small lab, and on the
//!    demo), holding 10,000 idle WebSocket subscribers (Node, `hold-subscribers.mjs`, a
//!    process of its own), and on a 10,000-node lab after a full listing (Linux,
//!    `/proc/PID/status`).
//!
//! `WAKEHUB_BENCH=subscribers`, `=throughput` or `=memory` runs one part only.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use wakehub_core::connector::Registry;
use wakehub_core::engine::{Engine, EngineConfig};
use wakehub_core::model::{Capability, ConnectorConfig, Kind, NodeSpec, Topology};
use wakehub_core::secrets::MasterKey;
use wakehub_core::store::Store;
use wakehub_graphql::server::{ServerConfig, router};

fn sim() -> ConnectorConfig {
    ConnectorConfig::new("sim")
}

/// `machines` physical hosts, each with one Docker VM hosting `per_vm` containers; each
/// container depends on the previous host's first container.
fn topology(machines: usize, per_vm: usize) -> Topology {
    let mut t = Topology::new();
    let mut previous = None;
    for m in 0..machines {
        let mut spec = NodeSpec::new(format!("m{m}"), Kind::Physical, sim());
        spec.offers = [Capability::Proxmox].into();
        let machine = t.add_node(spec, None).unwrap_or_else(|e| panic!("{e}"));
        let mut spec = NodeSpec::new(format!("m{m}-vm"), Kind::Vm, sim());
        spec.offers = [Capability::Docker].into();
        let vm = t.add_node(spec, Some(machine)).unwrap_or_else(|e| panic!("{e}"));
        let mut first = None;
        for c in 0..per_vm {
            let id = t
                .add_node(NodeSpec::new(format!("m{m}-c{c}"), Kind::Container, sim()), Some(vm))
                .unwrap_or_else(|e| panic!("{e}"));
            if let Some(p) = previous {
                t.add_dependency(id, p).unwrap_or_else(|e| panic!("{e}"));
            }
            first.get_or_insert(id);
        }
        previous = first;
    }
    t
}

struct Running {
    url: String,
    token: String,
    engine: Engine,
}

async fn serve(t: &Topology) -> Running {
    let store = Store::open_in_memory(MasterKey::generate()).unwrap_or_else(|e| panic!("{e}"));
    store.import(t, wakehub_core::model::Origin::Operator).unwrap_or_else(|e| panic!("{e}"));
    let (_, token) = store
        .create_token("bench", wakehub_core::model::Role::Admin, &wakehub_core::model::Scope::All, None)
        .unwrap_or_else(|e| panic!("{e}"));
    let engine = Engine::new(store, Registry::builtin(), EngineConfig::default()).unwrap_or_else(|e| panic!("{e}"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap_or_else(|e| panic!("{e}"));
    let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
    // 1,000 legitimate clients from one address, all at once: above the flood defaults.
    let config =
        ServerConfig { ws_burst: 1000, ws_max_pending: 2000, ws_max_per_address: 2000, ..ServerConfig::default() };
    let app = router(engine.clone(), config);
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp: &mut tokio::net::TcpStream| {
        let _ = tcp.set_nodelay(true);
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    Running { url: format!("http://{addr}/graphql"), token: token.expose().to_owned(), engine }
}

async fn post(client: &reqwest::Client, url: &str, token: &str, query: &str) -> Value {
    client
        .post(url)
        .bearer_auth(token)
        .json(&json!({ "query": query }))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .json()
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

fn now_ms() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

fn at_ms(at: &str) -> f64 {
    humantime::parse_rfc3339(at)
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

/// Opens `n` subscribers, starts `target`, and returns every (delivery latency in ms).
async fn deliver(n: usize, target: &str) -> (Vec<f64>, usize) {
    let t = topology(4, 4);
    let r = serve(&t).await;
    let ws_url = r.url.replacen("http://", "ws://", 1);
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel::<()>(n);
    let mut tasks = Vec::new();
    for _ in 0..n {
        let (ws_url, token, ready) = (ws_url.clone(), r.token.clone(), ready_tx.clone());
        tasks.push(tokio::spawn(async move {
            let mut req = ws_url.into_client_request().unwrap_or_else(|e| panic!("{e}"));
            req.headers_mut()
                .insert("Sec-WebSocket-Protocol", "graphql-transport-ws".parse().unwrap_or_else(|e| panic!("{e:?}")));
            let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap_or_else(|e| panic!("{e}"));
            let init = json!({"type": "connection_init", "payload": {"token": token}});
            ws.send(Message::Text(init.to_string().into())).await.unwrap_or_else(|e| panic!("{e}"));
            let _ack = ws.next().await;
            let sub =
                json!({"id": "1", "type": "subscribe", "payload": {"query": "subscription { events { id at kind } }"}});
            ws.send(Message::Text(sub.to_string().into())).await.unwrap_or_else(|e| panic!("{e}"));
            let _ = ready.send(()).await;
            let mut latencies = Vec::new();
            while let Ok(Some(Ok(msg))) = tokio::time::timeout(Duration::from_secs(5), ws.next()).await {
                let Message::Text(text) = msg else { continue };
                let received = now_ms();
                let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                let e = &v["payload"]["data"]["events"];
                if let Some(at) = e["at"].as_str() {
                    latencies.push(received - at_ms(at));
                    if e["kind"] == "cascade-complete" {
                        break;
                    }
                }
            }
            latencies
        }));
    }
    for _ in 0..n {
        ready_rx.recv().await;
    }
    // Let the last subscriptions reach the bus.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let client = reqwest::Client::new();
    post(&client, &r.url, &r.token, &format!("mutation {{ startNode(id: \"{target}\") {{ id }} }}")).await;
    let mut all = Vec::new();
    let mut complete = 0;
    for t in tasks {
        let l = t.await.unwrap_or_default();
        if !l.is_empty() {
            complete += 1;
        }
        all.extend(l);
    }
    drop(r.engine);
    all.sort_by(f64::total_cmp);
    (all, complete)
}

fn pct(v: &[f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v[((v.len() - 1) as f64 * p).round() as usize]
}

async fn subscribers(n: usize) {
    let (one, _) = deliver(1, "m3-c0").await;
    let (many, complete) = deliver(n, "m3-c0").await;
    println!(
        "event delivery, a cascade of {} events (latency from publication, ms; 1 ms clock resolution):",
        one.len()
    );
    println!("  1 subscriber:      p50 {:.1}  p99 {:.1}", pct(&one, 0.5), pct(&one, 0.99));
    println!(
        "  {n} subscribers:  p50 {:.1}  p99 {:.1}  ({complete}/{n} received the whole cascade; p99 {:.1}× the single subscriber's)",
        pct(&many, 0.5),
        pct(&many, 0.99),
        pct(&many, 0.99) / pct(&one, 0.99).max(1.0)
    );
}

/// A `wakehub serve` process on a database file holding topology `t`, with an admin token.
struct Process {
    child: std::process::Child,
    url: String,
    token: String,
    _dir: tempfile::TempDir,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn_server(t: &Topology) -> Process {
    spawn(Some(t), &[])
}

/// `wakehub serve` on `t`, or on the demo lab (`--demo`, which prints its own token), with
/// `extra` options.
fn spawn(t: Option<&Topology>, extra: &[&str]) -> Process {
    use std::io::BufRead as _;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let db = dir.path().join("bench.db");
    let bin = env!("CARGO_BIN_EXE_wakehub");
    let mut command = std::process::Command::new(bin);
    command.args(["serve", "--listen", "127.0.0.1:0"]).args(extra);
    let mut token = String::new();
    match t {
        Some(t) => {
            let lab = dir.path().join("lab.toml");
            let text = wakehub_core::topology_file::export(t).unwrap_or_else(|e| panic!("{e}"));
            std::fs::write(&lab, text).unwrap_or_else(|e| panic!("{e}"));
            let out = std::process::Command::new(bin)
                .args(["token", "create", "bench", "--role", "admin", "--db"])
                .arg(&db)
                .output()
                .unwrap_or_else(|e| panic!("{e}"));
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            token = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            command.arg("--config").arg(&lab).arg("--db").arg(&db);
        }
        None => {
            command.arg("--demo");
        }
    }
    let mut child = command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    let stdout = child.stdout.take().unwrap_or_else(|| panic!("no stdout"));
    let mut lines = std::io::BufReader::new(stdout).lines();
    let mut url = String::new();
    for line in lines.by_ref().map_while(Result::ok) {
        if let Some(rest) = line.strip_prefix("WakeHub listening on ") {
            url = rest.split_once(' ').map_or(rest, |(u, _)| u).to_owned();
        } else if let Some(t) = line.strip_prefix("demo token: ") {
            token = t.to_owned();
        }
        if !url.is_empty() && !token.is_empty() {
            break;
        }
    }
    assert!(!url.is_empty(), "wakehub serve did not start");
    // Drained, so the server never writes to a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    Process { child, url, token, _dir: dir }
}

/// Requests per second of `request` from 8 concurrent HTTP clients for `seconds`.
async fn rate<F, Fut>(seconds: u64, request: F) -> f64
where
    F: Fn(reqwest::Client) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let client = reqwest::Client::new();
    let began = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..8 {
        let (client, request) = (client.clone(), request.clone());
        workers.push(tokio::spawn(async move {
            let mut n = 0u32;
            while began.elapsed() < Duration::from_secs(seconds) {
                request(client.clone()).await;
                n += 1;
            }
            n
        }));
    }
    let mut total = 0;
    for w in workers {
        total += w.await.unwrap_or(0);
    }
    f64::from(total) / began.elapsed().as_secs_f64()
}

/// Queries per second of `query` (checked to answer without errors).
async fn query_rate(p: &Process, query: &'static str, seconds: u64) -> f64 {
    let (url, token) = (p.url.clone(), p.token.clone());
    rate(seconds, move |client| {
        let (url, token) = (url.clone(), token.clone());
        async move {
            let v = post(&client, &url, &token, query).await;
            assert!(v.get("errors").is_none(), "{v}");
        }
    })
    .await
}

async fn throughput(machines: usize, seconds: u64) {
    let t = topology(machines, 18);
    let p = spawn_server(&t);
    let nodes = t.len();
    let listing = "{ nodes { name status parent { name } } }";
    let first = post(&reqwest::Client::new(), &p.url, &p.token, listing).await;
    assert_eq!(first["data"]["nodes"].as_array().map_or(0, Vec::len), nodes);
    let health = p.url.replace("/graphql", "/healthz");
    let bare = rate(seconds, move |client| {
        let health = health.clone();
        async move {
            let r = client.get(&health).send().await.unwrap_or_else(|e| panic!("{e}"));
            assert!(r.status().is_success());
        }
    })
    .await;
    let one = query_rate(&p, "{ node(id: \"m0\") { name status } }", seconds).await;
    let all = query_rate(&p, listing, seconds).await;
    println!(
        "query throughput, {nodes}-node topology, a `wakehub serve` process on a database file, 8 HTTP clients in this process:"
    );
    println!("  bare HTTP (/healthz):          {bare:.0} requests/s");
    println!(
        "  one node by name:              {one:.0} queries/s ({:.2}× bare HTTP: auth and GraphQL overhead)",
        one / bare
    );
    println!(
        "  all nodes with status, parent: {all:.0} queries/s ({nodes} nodes each) — {:.2}× the one-node rate",
        all / one
    );
}

/// The resident set of process `pid`, in MiB (Linux).
fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib =
        status.lines().find_map(|l| l.strip_prefix("VmRSS:")?.trim().strip_suffix("kB")?.trim().parse::<f64>().ok());
    kib.unwrap_or(f64::NAN) / 1024.0
}

async fn memory(machines: usize, subscribers: usize) {
    let settle = Duration::from_secs(3);
    let small = topology(4, 4);
    let limit = (subscribers + 10).to_string();
    let p = spawn(Some(&small), &["--ws-per-address", &limit, "--ws-connections", &limit]);
    tokio::time::sleep(settle).await;
    let idle = rss_mib(p.child.id());
    // Idle subscribers, from a Node process of their own.
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/hold-subscribers.mjs");
    let ws_url = p.url.replacen("http://", "ws://", 1);
    let mut node = std::process::Command::new("node")
        .args(["--no-warnings", "--experimental-websocket", script, &ws_url, &p.token, &subscribers.to_string()])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("node: {e}"));
    let out = node.stdout.take().unwrap_or_else(|| panic!("no stdout"));
    let ready = std::io::BufRead::lines(std::io::BufReader::new(out)).map_while(Result::ok).any(|l| l == "ready");
    assert!(ready, "the subscribers did not all connect");
    tokio::time::sleep(settle).await;
    let held = rss_mib(p.child.id());
    let _ = node.kill();
    let _ = node.wait();
    drop(p);
    let demo = spawn(None, &[]);
    tokio::time::sleep(settle).await;
    let idle_demo = rss_mib(demo.child.id());
    drop(demo);
    let t = topology(machines, 18);
    let p = spawn_server(&t);
    let first = post(&reqwest::Client::new(), &p.url, &p.token, "{ nodes { name status parent { name } } }").await;
    assert_eq!(first["data"]["nodes"].as_array().map_or(0, Vec::len), t.len());
    tokio::time::sleep(settle).await;
    let big = rss_mib(p.child.id());
    println!("memory of a `wakehub serve` process (resident set):");
    println!("  idle, a {}-node lab:                      {idle:.1} MiB", small.len());
    println!(
        "  the same with {subscribers} idle WebSocket subscribers (another process): {held:.1} MiB ({:.1} KiB each)",
        (held - idle) * 1024.0 / subscribers as f64
    );
    println!("  idle, the demo (its users' argon2id hashes made at start): {idle_demo:.1} MiB");
    println!("  a {}-node lab, after a full listing:  {big:.1} MiB", t.len());
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap_or_else(|e| panic!("{e}"));
    let only = std::env::var("WAKEHUB_BENCH").ok();
    let run = |name: &str| only.as_deref().is_none_or(|o| o == name);
    if run("subscribers") {
        rt.block_on(subscribers(if full { 1000 } else { 20 }));
    }
    if run("throughput") {
        rt.block_on(throughput(if full { 50 } else { 3 }, if full { 3 } else { 1 }));
    }
    if run("memory") {
        rt.block_on(memory(if full { 500 } else { 3 }, if full { 10_000 } else { 20 }));
    }
}
