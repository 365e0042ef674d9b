//! Applying stack versions to the real Docker Engine the harness starts (`Dockerd`, with a
//! busybox image imported offline): a first apply in `depends_on` order (a one-shot init, a
//! health-checked service, its user), an unchanged re-apply that keeps every container, a
//! changed service recreated alone, a dropped one removed, a failing health check reported
//! with the container's log, containers WakeHub did not make left alone, a dependency whose
//! last health status is stale waited for afresh, and a check slower than the wait.

use std::time::Duration;

use wakehub_core::connector::compose::{SERVICE_LABEL, STACK_LABEL, VERSION_LABEL, connect, converge};
use wakehub_core::model::ConnectorConfig;
use wakehub_core::stack::parse_compose;
use wakehub_tests::{Dockerd, IMAGE};

fn compose(web_command: &str, with_web: bool) -> String {
    let web = if with_web {
        format!(
            "  web:\n    image: {IMAGE}\n    command: {web_command}\n    stop_grace_period: 1s\n    volumes: ['data:/data:ro']\n    depends_on:\n      db: {{condition: service_healthy}}\n    labels: {{role: front}}\n"
        )
    } else {
        String::new()
    };
    format!(
        "services:\n  init:\n    image: {IMAGE}\n    command: [sh, -c, 'echo seeding; touch /data/initialized']\n    volumes: ['data:/data']\n  db:\n    image: {IMAGE}\n    command: [sh, -c, 'touch /tmp/ready; exec sleep 600']\n    healthcheck:\n      test: [CMD, test, -f, /tmp/ready]\n      interval: 1s\n      timeout: 1s\n      retries: 2\n    depends_on:\n      init: {{condition: service_completed_successfully}}\n{web}volumes:\n  data: {{}}\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_converge_in_order_and_only_what_changed_is_recreated() {
    let docker = Dockerd::start();
    // A container WakeHub did not make.
    docker.create("bystander", &[], &["sleep", "600"]);
    let host = ConnectorConfig::new("sim").with("docker_host", format!("unix://{}", docker.socket.display()));
    let client = connect(&host, "lab").await.unwrap();
    let wait = Duration::from_secs(30);
    let mut lines = Vec::new();
    let mut log = |l: String| lines.push(l);

    // v1: init runs to completion, then db until healthy, then web.
    let v1 = parse_compose(&compose("[sleep, '600']", true)).unwrap();
    let applied = converge(&client, "media", 1, None, &v1, wait, &mut log).await.unwrap();
    assert_eq!(applied.created, ["init", "db", "web"]);
    let inspect = |name: &str, format: &str| docker.ok(&["inspect", "--format", format, name]);
    assert_eq!(inspect("media-init", "{{.State.Status}} {{.State.ExitCode}}"), "exited 0");
    assert_eq!(inspect("media-db", "{{.State.Health.Status}}"), "healthy");
    assert_eq!(inspect("media-web", "{{.State.Running}}"), "true");
    assert_eq!(
        inspect(
            "media-web",
            &format!(
                "{{{{index .Config.Labels \"{STACK_LABEL}\"}}}} {{{{index .Config.Labels \"{SERVICE_LABEL}\"}}}} {{{{index .Config.Labels \"{VERSION_LABEL}\"}}}} {{{{index .Config.Labels \"role\"}}}}"
            )
        ),
        "media web 1 front"
    );
    // The volume the init filled is the one web reads.
    assert!(docker.cli(&["exec", "media-web", "test", "-f", "/data/initialized"]).status.success());
    assert!(lines.iter().any(|l| l == "volume media_data created"), "{lines:?}");

    // The same version again: nothing is recreated, the ids stay.
    let again = converge(&client, "media", 1, None, &v1, wait, &mut |_| {}).await.unwrap();
    assert!(again.created.is_empty(), "{again:?}");
    assert_eq!(again.kept, ["init", "db", "web"]);
    assert_eq!(again.containers, applied.containers);

    // v2 changes web only: web is recreated, db and init keep their containers.
    let v2 = parse_compose(&compose("[sleep, '601']", true)).unwrap();
    let applied2 = converge(&client, "media", 2, None, &v2, wait, &mut |_| {}).await.unwrap();
    assert_eq!(
        (applied2.created.clone(), applied2.kept.clone()),
        (vec!["web".to_owned()], vec!["init".to_owned(), "db".to_owned()])
    );
    assert_ne!(applied2.containers["web"], applied.containers["web"]);
    assert_eq!(applied2.containers["db"], applied.containers["db"]);
    assert_eq!(inspect("media-web", &format!("{{{{index .Config.Labels \"{VERSION_LABEL}\"}}}}")), "2");

    // v3 drops web: its container goes; the bystander is never touched.
    let v3 = parse_compose(&compose("", false)).unwrap();
    let applied3 = converge(&client, "media", 3, None, &v3, wait, &mut |_| {}).await.unwrap();
    assert_eq!(applied3.removed, ["web"]);
    assert!(docker.cli(&["inspect", "media-web"]).status.code() != Some(0));
    let names = docker.ok(&["ps", "-a", "--format", "{{.Names}}"]);
    assert!(names.contains("bystander"), "{names}");

    // A container of the stack's name that WakeHub did not make is refused, not replaced.
    docker.create("media-web", &[], &["sleep", "600"]);
    let err = converge(&client, "media", 2, None, &v2, wait, &mut |_| {}).await.unwrap_err();
    assert_eq!(err.code.as_str(), "CONFLICT", "{err}");
    assert!(err.to_string().contains("`media-web` exists that this stack did not create"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_health_check_fails_the_apply_with_the_container_log_and_nothing_after_it_starts() {
    let docker = Dockerd::start();
    let host = ConnectorConfig::new("sim").with("docker_host", format!("unix://{}", docker.socket.display()));
    let client = connect(&host, "lab").await.unwrap();
    let text = format!(
        "services:\n  db:\n    image: {IMAGE}\n    command: [sh, -c, 'echo db is broken; exec sleep 600']\n    healthcheck: {{test: [CMD, 'false'], interval: 1s, timeout: 1s, retries: 1}}\n  web:\n    image: {IMAGE}\n    command: [sleep, '600']\n    depends_on: {{db: {{condition: service_healthy}}}}\n"
    );
    let c = parse_compose(&text).unwrap();
    let err = converge(&client, "shop", 1, None, &c, Duration::from_secs(30), &mut |_| {}).await.unwrap_err();
    assert_eq!(err.code.as_str(), "UNHEALTHY", "{err}");
    assert!(err.to_string().contains("service `db` is unhealthy") && err.to_string().contains("db is broken"), "{err}");
    assert!(docker.cli(&["inspect", "shop-web"]).status.code() != Some(0), "web was never created");

    // A one-shot that fails: its exit status and log.
    let text = format!(
        "services:\n  init:\n    image: {IMAGE}\n    command: [sh, -c, 'echo migration failed; exit 3']\n  app:\n    image: {IMAGE}\n    command: [sleep, '600']\n    depends_on: {{init: {{condition: service_completed_successfully}}}}\n"
    );
    let err = converge(&client, "shop2", 1, None, &parse_compose(&text).unwrap(), Duration::from_secs(30), &mut |_| {})
        .await
        .unwrap_err();
    assert_eq!(err.code.as_str(), "ONE_SHOT_FAILED", "{err}");
    assert!(
        err.to_string().contains("one-shot service `init` exited with 3")
            && err.to_string().contains("migration failed"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_engine_is_said_so() {
    let dir = tempfile::tempdir().unwrap();
    let host = ConnectorConfig::new("sim").with("docker_host", format!("unix://{}/none.sock", dir.path().display()));
    let err = connect(&host, "lab").await.unwrap_err();
    assert_eq!(err.code.as_str(), "UNREACHABLE", "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dependency_that_was_unhealthy_and_restarted_is_waited_for_afresh_and_a_slow_check_times_out() {
    let docker = Dockerd::start();
    let host = ConnectorConfig::new("sim").with("docker_host", format!("unix://{}", docker.socket.display()));
    let client = connect(&host, "lab").await.unwrap();
    let wait = Duration::from_secs(30);
    let text = format!(
        "services:\n  db:\n    image: {IMAGE}\n    command: [sh, -c, 'touch /tmp/ready; exec sleep 600']\n    stop_grace_period: 1s\n    healthcheck: {{test: [CMD, test, -f, /tmp/ready], interval: 1s, timeout: 1s, retries: 1}}\n  web:\n    image: {IMAGE}\n    command: [sleep, '600']\n    stop_grace_period: 1s\n    depends_on: {{db: {{condition: service_healthy}}}}\n"
    );
    let c = parse_compose(&text).unwrap();
    converge(&client, "shop", 1, None, &c, wait, &mut |_| {}).await.unwrap();
    // db turns unhealthy, then is stopped: its last status is a stale "unhealthy".
    docker.ok(&["exec", "shop-db", "busybox", "rm", "/tmp/ready"]);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while docker.ok(&["inspect", "--format", "{{.State.Health.Status}}", "shop-db"]) != "unhealthy" {
        assert!(std::time::Instant::now() < deadline, "db never turned unhealthy");
        std::thread::sleep(Duration::from_millis(200));
    }
    docker.ok(&["stop", "-t", "1", "shop-db"]);
    docker.ok(&["stop", "-t", "1", "shop-web"]);
    // The same version again: db is started, and web waits for a health result newer than
    // this apply (the stale one is neither a pass nor a failure).
    let mut lines = Vec::new();
    let again = converge(&client, "shop", 1, None, &c, wait, &mut |l| lines.push(l)).await.unwrap();
    assert_eq!(again.kept, ["db", "web"], "{again:?}");
    assert!(lines.iter().any(|l| l == "db: started") && lines.iter().any(|l| l == "web: started"), "{lines:?}");
    assert_eq!(docker.ok(&["inspect", "--format", "{{.State.Health.Status}}", "shop-db"]), "healthy");

    // A check slower than the wait: it times out, with its code and the log.
    let slow = format!(
        "services:\n  db:\n    image: {IMAGE}\n    command: [sh, -c, 'echo warming up; exec sleep 600']\n    stop_grace_period: 1s\n    healthcheck: {{test: [CMD, 'true'], interval: 30s, timeout: 1s, retries: 1}}\n"
    );
    let err = converge(&client, "slow", 1, None, &parse_compose(&slow).unwrap(), Duration::from_secs(2), &mut |_| {})
        .await
        .unwrap_err();
    assert_eq!(err.code.as_str(), "UNHEALTHY", "{err}");
    assert!(
        err.to_string().contains("did not become healthy within 2s") && err.to_string().contains("warming up"),
        "{err}"
    );
}
