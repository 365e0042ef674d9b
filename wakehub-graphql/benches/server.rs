//! Server benchmarks, printed as ratios measured in one run (the machine is shared and
//! noisy; a baseline in the same run is what makes a number meaningful).
//!
//! Run with `cargo bench -p wakehub-graphql --bench server`.
//!
//! 1. 1,000 concurrent WebSocket subscribers receiving a cascade's events: p50/p99 delivery
//!    latency (publication → a client has parsed it), measured from a separate Node process
//!    with npm `graphql-ws` (`subscribers.mjs`), against a minimal broadcast server (npm
//!    `ws`) sending the same frames to as many plain WebSockets of the same client process.
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

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use wakehub_core::model::{Capability, ConnectorConfig, Kind, NodeSpec, Topology};

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

/// `n` subscribers (npm `graphql-ws`, a Node process of its own, `subscribers.mjs`) receive
/// a cascade's events from a `wakehub serve` process; then the same frames from a minimal
/// broadcast server (npm `ws`) to `n` plain WebSockets of the same client process. With two
/// CPUs or more, the servers get CPU 0 and the clients CPU 1.
async fn subscribers(n: usize) {
    let t = topology(4, 4);
    let limit = (n + 10).to_string();
    let pinned = std::thread::available_parallelism().is_ok_and(|c| c.get() >= 2);
    let p = spawn_on(Some(&t), &["--ws-per-address", &limit, "--ws-connections", &limit], pinned.then_some("0"));
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/subscribers.mjs");
    let mut command = std::process::Command::new(if pinned { "taskset" } else { "node" });
    if pinned {
        command.args(["-c", "1", "node"]);
    }
    command.args(["--no-warnings", "--experimental-websocket", script, &p.url, &p.token, &n.to_string(), "m3-c0"]);
    if pinned {
        command.arg("0");
    }
    let out = command.stderr(std::process::Stdio::inherit()).output().unwrap_or_else(|e| panic!("node: {e}"));
    assert!(out.status.success(), "subscribers.mjs failed");
    let r: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    let (w, b) = (&r["wakehub"], &r["baseline"]);
    assert_eq!(w["complete"].as_u64(), Some(n as u64), "not every subscriber received the whole cascade: {r}");
    assert_eq!(b["complete"].as_u64(), Some(n as u64), "not every baseline client received every frame: {r}");
    let ms = |v: &Value, k: &str| v[k].as_f64().unwrap_or(f64::NAN);
    println!(
        "event delivery to {n} subscribers in a separate Node process{}, a cascade of {} events (ms from publication, 1 ms clock resolution):",
        if pinned { " (clients on CPU 1, servers on CPU 0)" } else { "" },
        r["events"]
    );
    println!("  WakeHub (graphql-ws):      p50 {:.1}  p99 {:.1}", ms(w, "p50"), ms(w, "p99"));
    println!(
        "  bare `ws` broadcast:       p50 {:.1}  p99 {:.1}  (the same frames, spaced alike)",
        ms(b, "p50"),
        ms(b, "p99")
    );
    println!(
        "  ratio:                     p50 ×{:.2}  p99 ×{:.2}",
        ms(w, "p50") / ms(b, "p50").max(1.0),
        ms(w, "p99") / ms(b, "p99").max(1.0)
    );
}

/// A `wakehub serve` process on a database file holding topology `t`, with an admin token.
struct Process {
    child: std::process::Child,
    url: String,
    token: String,
    /// The demo's administrator: name and password (`--demo` only).
    login: Option<(String, String)>,
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
    spawn_on(t, extra, None)
}

/// [`spawn`], pinned to `cpu` (`taskset`) when given.
fn spawn_on(t: Option<&Topology>, extra: &[&str], cpu: Option<&str>) -> Process {
    use std::io::BufRead as _;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let db = dir.path().join("bench.db");
    let bin = env!("CARGO_BIN_EXE_wakehub");
    let mut command = std::process::Command::new(cpu.map_or(bin, |_| "taskset"));
    if let Some(cpu) = cpu {
        command.args(["-c", cpu, bin]);
    }
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
    let mut login = None;
    for line in lines.by_ref().map_while(Result::ok) {
        if let Some((name, password)) = line.strip_prefix("demo login: ").and_then(|l| l.split_once(" / ")) {
            login = Some((name.to_owned(), password.to_owned()));
        }
        if let Some(rest) = line.strip_prefix("WakeHub listening on ") {
            url = rest.split_once(' ').map_or(rest, |(u, _)| u).to_owned();
        } else if let Some(t) = line.strip_prefix("demo token: ") {
            token = t.to_owned();
        }
        if !url.is_empty() && !token.is_empty() && (t.is_some() || login.is_some()) {
            break;
        }
    }
    assert!(!url.is_empty(), "wakehub serve did not start");
    // Drained, so the server never writes to a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    Process { child, url, token, login, _dir: dir }
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
    // Four logins at once (each an argon2id check, 19 MiB while it runs), then idle again.
    let (name, password) = demo.login.clone().unwrap_or_else(|| panic!("the demo printed no login"));
    let login = demo.url.replace("/graphql", "/login");
    let client = reqwest::Client::new();
    let logins = (0..4).map(|_| {
        let request = client.post(&login).json(&json!({ "name": name, "password": password })).send();
        async move { request.await.is_ok_and(|r| r.status().is_success()) }
    });
    assert!(futures::future::join_all(logins).await.into_iter().all(|ok| ok), "a demo login failed");
    tokio::time::sleep(settle).await;
    let logged_in = rss_mib(demo.child.id());
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
    println!("  the same after 4 concurrent logins (19 MiB of argon2id each): {logged_in:.1} MiB");
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
