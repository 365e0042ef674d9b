//! Engine benchmarks, printed as ratios measured in one run (this machine is shared and
//! noisy, so absolute numbers mean little; ratios against a baseline in the same run do).
//!
//! Run with `cargo bench -p wakehub-core --bench cascade`.
//!
//! 1. The planner on a generated 10,000-node topology (start of a node whose closure spans
//!    most of it, stop of a root with re-evaluation), against the baseline of merely walking
//!    the upstream closure.
//! 2. Engine overhead per step with zero-delay simulated nodes: a 200-step chain, per step,
//!    against the raw connector calls for the same nodes.
//! 3. Parallel vs sequential: a fan-in of 16 dependencies taking 50 ms each, concurrency 16
//!    against concurrency 1.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use wakehub_core::connector::sim::SimConnector;
use wakehub_core::connector::{Connector, PowerState, Registry, Target};
use wakehub_core::engine::{Engine, EngineConfig};
use wakehub_core::model::Action;
use wakehub_core::model::{Capability, ConfigValue, ConnectorConfig, Kind, NodeId, NodeSpec, Topology};
use wakehub_core::plan::{Observations, plan};
use wakehub_core::secrets::MasterKey;
use wakehub_core::store::Store;

fn sim(delay_ms: i64) -> ConnectorConfig {
    let mut c = ConnectorConfig::new("sim");
    c.settings.insert("start_delay_ms".into(), ConfigValue::Integer(delay_ms));
    c
}

/// 100 machines × (10 VMs × 9 containers + …) ≈ 10,000 nodes, each container depending on
/// a container of the previous machine, so closures are deep and wide.
fn big_topology(machines: usize) -> (Topology, NodeId) {
    let mut t = Topology::new();
    let mut previous: Vec<NodeId> = Vec::new();
    let mut deepest = None;
    for m in 0..machines {
        let mut spec = NodeSpec::new(format!("m{m}"), Kind::Physical, sim(0));
        spec.offers = [Capability::Proxmox].into();
        let machine = t.add_node(spec, None).unwrap_or_else(|e| panic!("{e}"));
        let mut containers = Vec::new();
        for v in 0..10 {
            let mut spec = NodeSpec::new(format!("m{m}-vm{v}"), Kind::Vm, sim(0));
            spec.offers = [Capability::Docker].into();
            let vm = t.add_node(spec, Some(machine)).unwrap_or_else(|e| panic!("{e}"));
            for c in 0..9 {
                let id = t
                    .add_node(NodeSpec::new(format!("m{m}-vm{v}-c{c}"), Kind::Container, sim(0)), Some(vm))
                    .unwrap_or_else(|e| panic!("{e}"));
                containers.push(id);
            }
        }
        if !previous.is_empty() {
            for (i, c) in containers.iter().enumerate() {
                for p in [previous[i], previous[(i + 1) % previous.len()]] {
                    t.add_dependency(*c, p).unwrap_or_else(|e| panic!("{e}"));
                }
            }
        }
        deepest = containers.first().copied();
        previous = containers;
    }
    (t, deepest.unwrap_or(NodeId::new(1)))
}

/// The median of `runs` timed runs (the machine is shared: the median shrugs off the runs
/// another process slowed down).
fn time<R>(runs: u32, mut f: impl FnMut() -> R) -> Duration {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let began = Instant::now();
            std::hint::black_box(f());
            began.elapsed()
        })
        .collect();
    times.sort();
    times[times.len() / 2]
}

fn planner(machines: usize) {
    let (t, target) = big_topology(machines);
    let states: BTreeMap<NodeId, PowerState> = t.nodes().map(|n| (n.id, PowerState::Off)).collect();
    let on: BTreeMap<NodeId, PowerState> = t.nodes().map(|n| (n.id, PowerState::On)).collect();
    let (held, durations) = (BTreeMap::new(), BTreeMap::new());
    let walk = time(51, || t.upstream_closure(target).len());
    let start = time(51, || {
        plan(&t, Observations::new(&states, &held, &durations), target, Action::Start).map(|p| p.steps.len())
    });
    let steps = plan(&t, Observations::new(&states, &held, &durations), target, Action::Start)
        .map(|p| p.steps.len())
        .unwrap_or(0);
    let root = t.by_name("m0").map(|n| n.id).unwrap_or(target);
    let stop =
        time(51, || plan(&t, Observations::new(&on, &held, &durations), root, Action::Stop).map(|p| p.steps.len()));
    let stop_steps =
        plan(&t, Observations::new(&on, &held, &durations), root, Action::Stop).map(|p| p.steps.len()).unwrap_or(0);
    println!("planner, {} nodes:", t.len());
    println!("  start plan ({steps} steps): {start:?}  — {:.1}× a bare closure walk ({walk:?})", ratio(start, walk));
    println!("  stop plan of a root ({stop_steps} steps, with re-evaluation): {stop:?}");
    // The first plan after a change also builds the topology's dense index (once per
    // version): a changed copy planned, against the same copy and change alone.
    let spec = t.node(target).map(|n| n.spec.clone()).unwrap_or_else(|| panic!("no target"));
    let changed = || {
        let mut copy = t.clone();
        copy.update_node(target, spec.clone()).unwrap_or_else(|e| panic!("{e}"));
        copy
    };
    let copy_only = time(11, || changed().len());
    let first = time(11, || {
        let copy = changed();
        plan(&copy, Observations::new(&states, &held, &durations), target, Action::Start).map(|p| p.steps.len())
    });
    println!(
        "  first start plan after a change (builds the index): {:?} (the copy and change themselves, {copy_only:?}, taken out)",
        first.saturating_sub(copy_only)
    );
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64().max(1e-9)
}

fn chain(n: usize, delay_ms: i64) -> Topology {
    let mut t = Topology::new();
    let mut prev = None;
    for i in 0..n {
        let id = t
            .add_node(NodeSpec::new(format!("n{i}"), Kind::Physical, sim(delay_ms)), None)
            .unwrap_or_else(|e| panic!("{e}"));
        if let Some(p) = prev {
            t.add_dependency(id, p).unwrap_or_else(|e| panic!("{e}"));
        }
        prev = Some(id);
    }
    t
}

/// Where the journal goes: a SQLite file (WAL, synchronous FULL: as deployed), or a
/// PostgreSQL server (`host=… port=… user=…`; a fresh schema per engine).
#[derive(Clone)]
enum Db {
    File,
    Postgres(String),
}

impl Db {
    fn label(&self) -> &'static str {
        match self {
            Db::File => "a SQLite file, WAL, synchronous FULL",
            Db::Postgres(_) => "PostgreSQL on loopback, fsync on",
        }
    }
}

/// A private PostgreSQL server for the bench (`tests/peers/postgres.sh`), stopped on drop.
struct Postgres(tempfile::TempDir, u16);

impl Postgres {
    fn start() -> Postgres {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map_or(55439, |a| a.port());
        let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/peers/postgres.sh");
        let ok = std::process::Command::new(&script)
            .args(["start", &dir.path().join("pg").display().to_string(), &port.to_string(), "durable"])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "PostgreSQL did not start (apt-get install postgresql)");
        Postgres(dir, port)
    }

    fn db(&self) -> Db {
        Db::Postgres(format!("host=127.0.0.1 port={} user=wakehub", self.1))
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/peers/postgres.sh");
        let _ =
            std::process::Command::new(script).args(["stop", &self.0.path().join("pg").display().to_string()]).status();
    }
}

/// An engine on a fresh database, with the directory holding it.
fn engine(t: &Topology, concurrency: usize) -> (Engine, tempfile::TempDir) {
    engine_on(t, concurrency, &Db::File)
}

fn engine_on(t: &Topology, concurrency: usize, db: &Db) -> (Engine, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let store = match db {
        Db::File => Store::open(&dir.path().join("bench.db"), MasterKey::generate()),
        Db::Postgres(server) => {
            static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
            let name = format!("b{}", NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
            let ok = std::process::Command::new("psql")
                .args(["-X", "-q", "-d", &format!("{server} dbname=postgres"), "-c", &format!("CREATE SCHEMA {name}")])
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "CREATE SCHEMA {name}");
            Store::open_postgres(
                &format!("{server} dbname=postgres options='-c search_path={name}'"),
                MasterKey::generate(),
            )
        }
    }
    .unwrap_or_else(|e| panic!("{e}"));
    store.import(t, wakehub_core::model::Origin::Operator).unwrap_or_else(|e| panic!("{e}"));
    let engine = Engine::new(store, Registry::builtin(), EngineConfig { concurrency, ..EngineConfig::default() })
        .unwrap_or_else(|e| panic!("{e}"));
    (engine, dir)
}

async fn cascade(engine: &Engine, name: &str) -> Duration {
    let t = engine.store().topology().unwrap_or_else(|e| panic!("{e}"));
    let id = t.by_name(name).map(|n| n.id).unwrap_or(NodeId::new(1));
    let began = Instant::now();
    let c = engine.start(id).await.unwrap_or_else(|e| panic!("{e}"));
    let r = engine.wait(c.id).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.status.as_str(), "completed");
    began.elapsed()
}

/// The whole time of a start cascade along a fresh `n`-step chain (median of three).
async fn chain_cascade(n: usize, db: &Db) -> Duration {
    let t = chain(n, 0);
    let mut runs = Vec::new();
    for _ in 0..3 {
        let (e, _dir) = engine_on(&t, 4, db);
        runs.push(cascade(&e, &format!("n{}", n - 1)).await);
    }
    runs.sort();
    runs[1]
}

async fn overhead(n: usize, db: &Db) {
    let (short, long) = (chain_cascade(n, db).await, chain_cascade(5 * n, db).await);
    // What one more step costs, and what a cascade costs whatever its size (its record, its
    // plan, its end: each a commit that the next part waits for).
    let per_step = long.saturating_sub(short) / (4 * n) as u32;
    let fixed = short.saturating_sub(per_step * n as u32);
    // Baseline: the same connector calls (status, start, status) with no engine around them.
    let t = chain(n, 0);
    let (e, _dir) = engine(&t, 4);
    let sim = SimConnector::new();
    let stored = e.store().topology().unwrap_or_else(|err| panic!("{err}"));
    let targets: Vec<Target> = stored.nodes().filter_map(|n| Target::of(&stored, n.id)).collect();
    let began = Instant::now();
    for target in &targets {
        let _ = sim.status(target).await;
        let _ = sim.start(target).await;
        while sim.status(target).await.ok() != Some(PowerState::On) {
            tokio::task::yield_now().await;
        }
    }
    let raw = began.elapsed() / n as u32;
    println!("engine overhead, chains of zero-delay sim nodes (journaled in {}):", db.label());
    println!(
        "  {per_step:?} per step ({n} steps in {short:?}, {} in {long:?}) + {fixed:?} per cascade; raw connector calls {raw:?} per node",
        5 * n
    );
}

async fn parallel(delay_ms: i64) {
    let mut t = Topology::new();
    let mut deps = Vec::new();
    for i in 0..16 {
        deps.push(
            t.add_node(NodeSpec::new(format!("dep{i}"), Kind::Physical, sim(delay_ms)), None)
                .unwrap_or_else(|e| panic!("{e}")),
        );
    }
    let app = t.add_node(NodeSpec::new("app", Kind::Physical, sim(delay_ms)), None).unwrap_or_else(|e| panic!("{e}"));
    for d in deps {
        t.add_dependency(app, d).unwrap_or_else(|e| panic!("{e}"));
    }
    let (one, _dir) = engine(&t, 1);
    let sequential = cascade(&one, "app").await;
    let (sixteen, _dir) = engine(&t, 16);
    let parallel = cascade(&sixteen, "app").await;
    println!("fan-in of 16 dependencies × {delay_ms} ms, then the app ({delay_ms} ms):");
    println!(
        "  sequential (concurrency 1) {sequential:?}; parallel (concurrency 16) {parallel:?} — {:.1}× faster",
        ratio(sequential, parallel)
    );
}

fn main() {
    // `cargo bench` passes `--bench`; under `cargo test` the same code runs as a quick smoke
    // test on small sizes. `WAKEHUB_BENCH=overhead` runs one part only (for a profiler).
    let full = std::env::args().any(|a| a == "--bench");
    let only = std::env::var("WAKEHUB_BENCH").ok();
    let run = |name: &str| only.as_deref().is_none_or(|o| o == name);
    if run("planner") {
        planner(if full { 100 } else { 3 });
    }
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap_or_else(|e| panic!("{e}"));
    if run("overhead") {
        rt.block_on(overhead(if full { 200 } else { 10 }, &Db::File));
        let pg = Postgres::start();
        rt.block_on(overhead(if full { 200 } else { 10 }, &pg.db()));
    }
    if run("parallel") {
        rt.block_on(parallel(if full { 50 } else { 5 }));
    }
}
