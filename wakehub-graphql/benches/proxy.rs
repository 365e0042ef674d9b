//! The wake-on-request proxy's cost on requests to a service that is up, measured from a
//! separate process against baselines in the same run.
//!
//! Run with `cargo bench -p wakehub-graphql --bench proxy` (Debian's nginx: `apt-get install
//! nginx-light`). Three processes: nginx as the service (a fixed 13-byte answer, or 64 KiB),
//! `wakehub serve --proxy-listen` in front of it, and this one as the client. The same
//! requests go (a) straight to nginx, (b) through WakeHub's proxy, (c) through a second nginx
//! configured as a reverse proxy — the cost of a hop in a proxy built for nothing else.
//!
//! 1. Latency: one keep-alive connection, requests one after another; p50 and p99, and the
//!    proxy's overhead per request (its p50 minus the direct p50).
//! 2. Throughput: 32 keep-alive connections for a fixed time; requests per second and the
//!    ratio to the direct figure.
//!
//! Every arm runs three times, interleaved; the median run is printed. The three processes
//! share this machine's cores, so a hop costs CPU the service and the client also want.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use wakehub_tests::{Nginx, free_port, wait_for_port};

/// A child process killed on drop.
struct Process(Child, #[allow(dead_code)] Option<tempfile::TempDir>);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// nginx on `port` with `http` (at the `http` level) and `locations` (a service answering
/// a fixed page, or a reverse proxy).
fn nginx(port: u16, http: &str, locations: &str) -> Nginx {
    Nginx::start(
        port,
        &format!("keepalive_requests 1000000;\n{http}\nserver {{\nlisten 127.0.0.1:{port};\n{locations}\n}}"),
    )
}

/// `wakehub serve` with one node, on, whose proxy routes `svc.bench` to `service`.
fn wakehub(api: u16, proxy: u16, service: u16) -> Process {
    let dir = tempfile::tempdir().unwrap();
    let lab = format!(
        "[[node]]\nname = \"svc\"\nkind = \"physical\"\nurl = \"http://127.0.0.1:{service}\"\n\
         proxy = {{ hosts = [\"svc.bench\"] }}\n[node.connector]\ntype = \"sim\"\ninitially = \"on\"\n"
    );
    std::fs::write(dir.path().join("lab.toml"), lab).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_wakehub"))
        .args(["serve", "--listen", &format!("127.0.0.1:{api}"), "--proxy-listen", &format!("127.0.0.1:{proxy}")])
        .arg("--config")
        .arg(dir.path().join("lab.toml"))
        .arg("--db")
        .arg(dir.path().join("w.db"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("wakehub serve");
    let p = Process(child, Some(dir));
    wait_for_port("wakehub's proxy", proxy, Duration::from_secs(30), String::new);
    p
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().http1_only().tcp_nodelay(true).pool_max_idle_per_host(64).build().unwrap()
}

async fn get(c: &reqwest::Client, url: &str) -> usize {
    let r = c.get(url).header("host", "svc.bench").send().await.unwrap_or_else(|e| panic!("{url}: {e}"));
    assert!(r.status().is_success(), "{url}: {}", r.status());
    r.bytes().await.unwrap().len()
}

/// p50 and p99 of `n` requests one after another on one connection (µs).
async fn latency(url: &str, n: usize) -> (f64, f64) {
    let c = client();
    for _ in 0..50 {
        get(&c, url).await;
    }
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        get(&c, url).await;
        samples.push(t.elapsed().as_secs_f64() * 1e6);
    }
    samples.sort_by(f64::total_cmp);
    (samples[n / 2], samples[n * 99 / 100])
}

/// Requests per second over `conns` connections for `time`.
async fn throughput(url: &str, conns: usize, time: Duration) -> f64 {
    let c = client();
    let until = Instant::now() + time;
    let workers: Vec<_> = (0..conns)
        .map(|_| {
            let (c, url) = (c.clone(), url.to_owned());
            tokio::spawn(async move {
                let mut n = 0u64;
                while Instant::now() < until {
                    get(&c, &url).await;
                    n += 1;
                }
                n
            })
        })
        .collect();
    let mut total = 0;
    for w in workers {
        total += w.await.unwrap();
    }
    total as f64 / time.as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    if Command::new("nginx").arg("-v").stderr(Stdio::null()).status().is_err() {
        println!("proxy bench skipped: no nginx (apt-get install nginx-light)");
        return;
    }
    let (n, time, rounds) =
        if full { (5_000, Duration::from_secs(4), 3) } else { (200, Duration::from_millis(300), 1) };
    let service_port = free_port();
    let _service = nginx(
        service_port,
        "",
        "location = / { return 200 \"hello, bench\\n\"; }\nlocation = /64k { alias /tmp/wakehub-bench-64k; }",
    );
    std::fs::write("/tmp/wakehub-bench-64k", vec![b'x'; 64 << 10]).unwrap();
    let nginx_proxy_port = free_port();
    let _nginx_proxy = nginx(
        nginx_proxy_port,
        &format!("upstream service {{ server 127.0.0.1:{service_port}; keepalive 64; }}"),
        "location / { proxy_pass http://service; proxy_http_version 1.1; proxy_set_header Connection \"\"; \
         proxy_set_header Host $host; }",
    );
    let (api, proxy) = (free_port(), free_port());
    let _wakehub = wakehub(api, proxy, service_port);
    // The node is seen on at the server's first observation.
    let c = client();
    for _ in 0..200 {
        if c.get(format!("http://127.0.0.1:{proxy}/"))
            .header("host", "svc.bench")
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    println!("wake-on-request proxy, a service that is up ({} requests, {:?} of load per arm)", n, time);
    for path in ["/", "/64k"] {
        let arms = [
            ("direct to nginx", format!("http://127.0.0.1:{service_port}{path}")),
            ("through WakeHub's proxy", format!("http://127.0.0.1:{proxy}{path}")),
            ("through nginx as a proxy", format!("http://127.0.0.1:{nginx_proxy_port}{path}")),
        ];
        let mut p50 = vec![Vec::new(); arms.len()];
        let mut p99 = vec![Vec::new(); arms.len()];
        let mut rps = vec![Vec::new(); arms.len()];
        for _ in 0..rounds {
            for (i, (_, url)) in arms.iter().enumerate() {
                let (a, b) = latency(url, n).await;
                p50[i].push(a);
                p99[i].push(b);
                rps[i].push(throughput(url, 32, time).await);
            }
        }
        let p50: Vec<f64> = p50.into_iter().map(median).collect();
        let p99: Vec<f64> = p99.into_iter().map(median).collect();
        let rps: Vec<f64> = rps.into_iter().map(median).collect();
        println!("\nGET {path} ({}):", if path == "/" { "13 bytes" } else { "64 KiB" });
        for (i, (name, _)) in arms.iter().enumerate() {
            println!(
                "  {name:<26} p50 {:>7.0} µs  p99 {:>7.0} µs  {:>8.0} req/s  (×{:.2} of direct; +{:.0} µs per request)",
                p50[i],
                p99[i],
                rps[i],
                rps[i] / rps[0],
                p50[i] - p50[0]
            );
        }
        println!(
            "  WakeHub against nginx as the proxy: throughput ×{:.2}, added latency ×{:.2}",
            rps[1] / rps[2],
            (p50[1] - p50[0]) / (p50[2] - p50[0]).max(1.0)
        );
    }
}
