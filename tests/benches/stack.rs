//! Applying a stack: WakeHub's convergence against Debian's `docker-compose` on the same file
//! and the same Docker Engine, in the same run.
//!
//! Run with `cargo bench -p wakehub-tests --bench stack` (as root: it starts a private
//! dockerd; `apt-get install docker-compose` for the baseline, which is skipped, and said so,
//! without it).
//!
//! 1. Wall time until every service is healthy, for a 10-service stack with health
//!    dependencies (one root, three services after it is healthy, six after those are):
//!    `converge` against `docker-compose up -d` and polling until all report healthy. Both
//!    wait on the same health checks (1 s interval), so the ratio says what each adds.
//! 2. The engine's own overhead per container: converging 10 services with no health check
//!    and no dependency, against the bare Docker API calls that make the same containers
//!    (create and start, side by side as WakeHub does, through the same client); and a
//!    re-apply that changes nothing.

use std::collections::HashMap;
use std::fmt::Display;
use std::process::Command;
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::models::{ContainerCreateBody, HostConfig, NetworkCreateRequest};
use bollard::query_parameters::{CreateContainerOptionsBuilder, RemoveContainerOptionsBuilder};
use wakehub_core::connector::compose::{connect, converge};
use wakehub_core::connector::stack::remove_all;
use wakehub_core::model::ConnectorConfig;
use wakehub_core::stack::parse_compose;
use wakehub_tests::{Dockerd, IMAGE};

fn ok<T, E: Display>(r: Result<T, E>) -> T {
    r.unwrap_or_else(|e| panic!("{e}"))
}

/// `n` services: s0 health-checked; s1..=s3 after s0 is healthy, each health-checked; the
/// rest after s1..=s3 are healthy. With `health` false: no check, no dependency.
fn compose(n: usize, health: bool) -> String {
    let mut out = String::from("services:\n");
    for i in 0..n {
        out.push_str(&format!(
            "  s{i}:\n    image: {IMAGE}\n    command: [sh, -c, 'touch /tmp/ready; exec sleep 600']\n    stop_grace_period: 1s\n"
        ));
        if !health {
            continue;
        }
        out.push_str("    healthcheck: {test: [CMD, test, -f, /tmp/ready], interval: 1s, timeout: 1s, retries: 3}\n");
        let deps: Vec<usize> = match i {
            0 => vec![],
            1..=3 => vec![0],
            _ => (1..=3.min(n - 1)).collect(),
        };
        if !deps.is_empty() {
            out.push_str("    depends_on:\n");
            for d in deps {
                out.push_str(&format!("      s{d}: {{condition: service_healthy}}\n"));
            }
        }
    }
    out
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn line(what: &str, subject: Duration, baseline: Duration, base_name: &str) {
    println!(
        "{what}: {:>8.1} ms vs {base_name} {:>8.1} ms  → ×{:.2}",
        subject.as_secs_f64() * 1e3,
        baseline.as_secs_f64() * 1e3,
        subject.as_secs_f64() / baseline.as_secs_f64().max(1e-9)
    );
}

/// `docker-compose up -d` of `file` as project `project`, then polling until `n` containers
/// report healthy; the wall time. `None` without docker-compose.
fn compose_up(docker: &Dockerd, file: &std::path::Path, project: &str, n: usize) -> Option<Duration> {
    let host = format!("unix://{}", docker.socket.display());
    let run = |args: &[&str]| {
        Command::new("docker-compose")
            .env("DOCKER_HOST", &host)
            .arg("-p")
            .arg(project)
            .arg("-f")
            .arg(file)
            .args(args)
            .output()
    };
    let began = Instant::now();
    let out = run(&["up", "-d"]).ok()?;
    assert!(out.status.success(), "docker-compose up: {}", String::from_utf8_lossy(&out.stderr));
    let filter = format!("label=com.docker.compose.project={project}");
    loop {
        let ps = docker.ok(&["ps", "--filter", &filter, "--format", "{{.Status}}"]);
        if ps.lines().filter(|l| l.contains("(healthy)")).count() == n {
            break;
        }
        assert!(began.elapsed() < Duration::from_secs(120), "docker-compose's stack never got healthy: {ps}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let took = began.elapsed();
    let out = ok(run(&["down", "-t", "1"]));
    assert!(out.status.success(), "docker-compose down: {}", String::from_utf8_lossy(&out.stderr));
    Some(took)
}

/// The bare API calls that make `n` plain containers on a network of their own.
async fn bare(client: &Docker, project: &str, n: usize) -> Duration {
    let began = Instant::now();
    let network = format!("{project}_default");
    ok(client.create_network(NetworkCreateRequest { name: network.clone(), ..Default::default() }).await);
    // Side by side, as WakeHub makes the services of one level.
    futures::future::join_all((0..n).map(|i| {
        let name = format!("{project}-s{i}");
        let body = ContainerCreateBody {
            image: Some(IMAGE.to_owned()),
            cmd: Some(vec!["sh".into(), "-c".into(), "touch /tmp/ready; exec sleep 600".into()]),
            labels: Some(HashMap::from([("bench".to_owned(), project.to_owned())])),
            stop_timeout: Some(1),
            host_config: Some(HostConfig { network_mode: Some(network.clone()), ..Default::default() }),
            ..Default::default()
        };
        async move {
            let options = CreateContainerOptionsBuilder::default().name(&name).build();
            let created = ok(client.create_container(Some(options), body).await);
            ok(client.start_container(&created.id, None).await);
        }
    }))
    .await;
    let took = began.elapsed();
    for i in 0..n {
        let options = RemoveContainerOptionsBuilder::default().force(true).build();
        ok(client.remove_container(&format!("{project}-s{i}"), Some(options)).await);
    }
    ok(client.remove_network(&network).await);
    took
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let (n, runs) = if full { (10, 5) } else { (4, 1) };
    let docker = Dockerd::start();
    let rt = ok(tokio::runtime::Builder::new_multi_thread().enable_all().build());
    let host = ConnectorConfig::new("sim").with("docker_host", format!("unix://{}", docker.socket.display()));
    let client = rt.block_on(async { ok(connect(&host, "bench").await) });
    let wait = Duration::from_secs(60);
    let mut quiet = |_: String| {};

    // 1. Until healthy.
    let text = compose(n, true);
    let healthy = parse_compose(&text).unwrap_or_else(|e| panic!("{e}"));
    let mut ours = Vec::new();
    for _ in 0..runs {
        rt.block_on(async {
            let began = Instant::now();
            ok(converge(&client, "benchw", 1, None, &healthy, wait, &mut quiet).await);
            ours.push(began.elapsed());
            ok(remove_all(&client, "benchw", &mut quiet).await);
        });
    }
    let dir = ok(tempfile::tempdir());
    let file = dir.path().join("compose.yml");
    ok(std::fs::write(&file, &text));
    let theirs: Option<Vec<Duration>> = (0..runs).map(|_| compose_up(&docker, &file, "benchc", n)).collect();
    println!("{n} services with health dependencies, until all healthy (median of {runs}):");
    match theirs {
        Some(t) => line("  WakeHub converge", median(ours), median(t), "docker-compose up -d + wait"),
        None => println!(
            "  WakeHub converge: {:.1} ms; docker-compose is not installed: no baseline",
            median(ours).as_secs_f64() * 1e3
        ),
    }

    // 2. Overhead per container.
    let plain = parse_compose(&compose(n, false)).unwrap_or_else(|e| panic!("{e}"));
    let (mut apply, mut again, mut base) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        rt.block_on(async {
            let began = Instant::now();
            ok(converge(&client, "benchp", 1, None, &plain, wait, &mut quiet).await);
            apply.push(began.elapsed());
            let began = Instant::now();
            let kept = ok(converge(&client, "benchp", 1, None, &plain, wait, &mut quiet).await);
            again.push(began.elapsed());
            assert_eq!(kept.kept.len(), n, "a re-apply keeps every container");
            ok(remove_all(&client, "benchp", &mut quiet).await);
            base.push(bare(&client, "benchb", n).await);
        });
    }
    let (apply, again, base) = (median(apply), median(again), median(base));
    println!("{n} plain services (median of {runs}):");
    line("  WakeHub converge", apply, base, "the bare create+start calls");
    println!(
        "  WakeHub's own overhead per container: {:+.1} ms (its time less the bare calls', per container; \
         the machine's noise is of the same order); a re-apply that changes nothing: {:.1} ms per container",
        (apply.as_secs_f64() - base.as_secs_f64()) * 1e3 / n as f64,
        again.as_secs_f64() * 1e3 / n as f64
    );
}
