//! The Docker connector against a real Docker Engine (Debian's `dockerd`, started by the
//! test with flags that leave the host's network untouched, and a locally imported busybox
//! image — nothing is pulled).

use std::path::PathBuf;
use std::time::Duration;

use wakehub_core::connector::PowerState;
use wakehub_core::engine::Engine;
use wakehub_core::events::{CascadeStatus, EventKind};
use wakehub_core::model::Action;

fn lab(d: &Dockerd, extra: &str) -> String {
    format!(
        r#"
[[node]]
name = "dock"
kind = "physical"
offers = ["docker"]
[node.connector]
type = "sim"
initially = "on"
docker_host = "unix://{sock}"

[[node]]
name = "plain"
kind = "container"
parent = "dock"
[node.connector]
type = "docker"
container = "plain"

[[node]]
name = "healthy"
kind = "container"
parent = "dock"
[node.connector]
type = "docker"
container = "healthy"
stop_grace_secs = 1

[[node]]
name = "sick"
kind = "container"
parent = "dock"
[node.connector]
type = "docker"
container = "sick"

[[node]]
name = "ghost"
kind = "container"
parent = "dock"
[node.connector]
type = "docker"
container = "no-such-container"
{extra}"#,
        sock = d.socket.display()
    )
}

use crate::lab::engine_with_builtins as engine;
use wakehub_tests::{Dockerd, IMAGE};

async fn run(engine: &Engine, name: &str, action: Action) -> (wakehub_core::store::CascadeRecord, Vec<EventKind>) {
    let id = engine.store().topology().unwrap().by_name(name).unwrap().id;
    let after = engine.store().last_event_id().unwrap();
    let record = engine.request(id, action).await.unwrap();
    let record =
        tokio::time::timeout(Duration::from_secs(60), engine.wait(record.id)).await.expect("cascade ends").unwrap();
    let events = engine.store().events_after(after, None, 10_000).unwrap().into_iter().map(|e| e.kind).collect();
    (record, events)
}

fn states_of(events: &[EventKind], node: &str) -> Vec<PowerState> {
    events
        .iter()
        .filter_map(|e| match e {
            EventKind::StatusChange { name, state, .. } if name == node => Some(*state),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_containers_start_stop_and_gate_on_their_healthcheck() {
    let d = Dockerd::start();
    d.create("plain", &[], &["sleep", "3600"]);
    d.create(
        "healthy",
        &["--health-cmd", "test -f /tmp/ok", "--health-interval", "300ms", "--health-retries", "50"],
        &["sh", "-c", "sleep 1; touch /tmp/ok; exec sleep 3600"],
    );
    d.create(
        "sick",
        &["--health-cmd", "false", "--health-interval", "200ms", "--health-retries", "2"],
        &["sleep", "3600"],
    );
    let e = engine(&lab(&d, ""));

    let (r, events) = run(&e, "plain", Action::Start).await;
    assert_eq!(r.status, CascadeStatus::Completed, "{r:?}");
    assert!(d.running("plain"));
    assert_eq!(states_of(&events, "plain").last(), Some(&PowerState::On));

    // Up only once healthy: Docker reports `starting` first, and the step waits for it.
    let (r, events) = run(&e, "healthy", Action::Start).await;
    assert_eq!(r.status, CascadeStatus::Completed, "{r:?}");
    let states = states_of(&events, "healthy");
    assert!(states.contains(&PowerState::Starting) && states.last() == Some(&PowerState::On), "{states:?}");
    assert_eq!(d.ok(&["inspect", "--format", "{{.State.Health.Status}}", "healthy"]), "healthy");

    let (r, _) = run(&e, "healthy", Action::Stop).await;
    assert_eq!(r.status, CascadeStatus::Completed, "{r:?}");
    assert!(!d.running("healthy"));

    // An unhealthy container fails its start.
    let (r, _) = run(&e, "sick", Action::Start).await;
    assert_eq!(r.status, CascadeStatus::Failed);
    assert_eq!(r.error_code.map(|c| c.as_str()), Some("PLATFORM_ERROR"), "{r:?}");

    // An unknown container.
    let (r, _) = run(&e, "ghost", Action::Start).await;
    assert_eq!(r.error_code.map(|c| c.as_str()), Some("NOT_FOUND"), "{r:?}");
    assert!(r.error_message.as_deref().unwrap().contains("ghost: docker"), "{r:?}");

    // Stop of everything on the host, bottom-up, through the engine.
    let (r, _) = run(&e, "plain", Action::Stop).await;
    assert_eq!(r.status, CascadeStatus::Completed);
    assert!(!d.running("plain"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_engines_and_slow_health_are_reported() {
    let d = Dockerd::start();
    d.create("slow", &["--health-cmd", "test -f /tmp/never", "--health-interval", "30s"], &["sleep", "3600"]);
    let extra = r#"
[[node]]
name = "slow"
kind = "container"
parent = "dock"
start_timeout = "1500ms"
[node.connector]
type = "docker"
container = "slow"

[[node]]
name = "elsewhere"
kind = "container"
parent = "dock"
[node.connector]
type = "docker"
container = "x"
docker_host = "unix:///tmp/wakehub-no-such-docker.sock"
"#;
    let e = engine(&lab(&d, extra));
    let (r, _) = run(&e, "slow", Action::Start).await;
    assert_eq!(r.error_code.map(|c| c.as_str()), Some("TIMEOUT"), "{r:?}");
    assert!(r.error_message.as_deref().unwrap().contains("last seen starting"), "{r:?}");
    let (r, _) = run(&e, "elsewhere", Action::Start).await;
    assert_eq!(r.error_code.map(|c| c.as_str()), Some("UNREACHABLE"), "{r:?}");
}

/// Forwards a loopback TCP port to the engine's unix socket, byte for byte: the engine's own
/// API over plain TCP (`tcp://`, as `dockerd -H tcp://…` without TLS serves it).
async fn tcp_forwarder(socket: PathBuf) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let socket = socket.clone();
            tokio::spawn(async move {
                if let Ok(mut unix) = tokio::net::UnixStream::connect(&socket).await {
                    let _ = tokio::io::copy_bidirectional(&mut tcp, &mut unix).await;
                }
            });
        }
    });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_and_mutual_tls_endpoints_and_discovery() {
    use wakehub_core::model::NodeState;
    let d = Dockerd::start_with_tls();
    let tls = d.tls.as_ref().unwrap();
    d.create("web", &["--label", "com.example.role=frontend"], &["sleep", "3600"]);
    d.create("scratch", &[], &["sleep", "3600"]);
    d.ok(&["start", "web"]);
    let tcp = tcp_forwarder(d.socket.clone()).await;
    let lab = format!(
        r#"
[[node]]
name = "dock-tls"
kind = "physical"
offers = ["docker"]
[node.connector]
type = "sim"
initially = "on"
docker_host = "tcp://127.0.0.1:{port}"
docker_tls_ca = "{ca}"
docker_tls_cert = "{cert}"
docker_tls_key = "{key}"

[[node]]
name = "web"
kind = "container"
parent = "dock-tls"
[node.connector]
type = "docker"
container = "web"

[[node]]
name = "dock-tcp"
kind = "physical"
offers = ["docker"]
[node.connector]
type = "sim"
initially = "on"
docker_host = "tcp://127.0.0.1:{tcp}"

[[node]]
name = "scratch-tcp"
kind = "container"
parent = "dock-tcp"
[node.connector]
type = "docker"
container = "scratch"

[[node]]
name = "untrusted"
kind = "physical"
offers = ["docker"]
[node.connector]
type = "sim"
initially = "on"
docker_host = "https://127.0.0.1:{port}"
docker_tls_ca = "{other}"
docker_tls_cert = "{cert}"
docker_tls_key = "{key}"
"#,
        port = tls.port,
        ca = tls.ca.display(),
        cert = tls.cert.display(),
        key = tls.key.display(),
        other = tls.ca.with_file_name("other-ca.pem").display(),
    );
    let e = engine(&lab);
    let id = |name: &str| e.store().topology().unwrap().by_name(name).unwrap().id;

    // Plain TCP: start and stop through the forwarded API.
    let (r, _) = run(&e, "scratch-tcp", Action::Start).await;
    assert_eq!(r.status, CascadeStatus::Completed, "{r:?}");
    assert!(d.running("scratch"));
    let (r, _) = run(&e, "scratch-tcp", Action::Stop).await;
    assert_eq!(r.status, CascadeStatus::Completed, "{r:?}");
    assert!(!d.running("scratch"));

    // Mutual TLS: discovery lists every container with what Docker knows.
    let report = e.discover(id("dock-tls")).await.unwrap();
    let keys = |v: &[wakehub_core::store::DiscoveredNode]| v.iter().map(|g| g.key.clone()).collect::<Vec<_>>();
    assert_eq!(keys(&report.updated), ["container/web"], "the configured `web` is linked: {report:?}");
    assert_eq!(keys(&report.added), ["container/scratch"], "{report:?}");
    assert_eq!(report.updated[0].status, PowerState::On);
    let scratch = report.added[0].node;
    let t = e.store().topology().unwrap();
    // `scratch` is taken by no node, so the container's own name is used.
    assert_eq!(t.name_of(scratch), "scratch");
    assert_eq!(t.node(scratch).unwrap().spec.state, NodeState::Discovered);
    let web = e.store().discovery(id("web")).unwrap().unwrap();
    assert_eq!(web.details["image"], IMAGE);
    assert_eq!(web.details["labels"]["com.example.role"], "frontend");
    assert_eq!(web.details["id"].as_str().unwrap().len(), 64);

    // Removed from the engine: a discovered node that nothing uses goes away, reported.
    d.ok(&["rm", "-f", "scratch"]);
    let report = e.discover(id("dock-tls")).await.unwrap();
    assert_eq!(report.disappeared.len(), 1, "{report:?}");
    assert_eq!((report.disappeared[0].name.as_str(), report.disappeared[0].kept), ("scratch", None));
    assert!(e.store().topology().unwrap().by_name("scratch").is_none());

    // A server certificate from another CA is refused (no blanket trust).
    let err = e.discover(id("untrusted")).await.unwrap_err();
    assert_eq!(err.code().as_str(), "UNREACHABLE", "{err}");
    assert!(err.to_string().contains("not trusted"), "{err}");
}
