//! Stacks as nodes of the lab, driven through the engine's durable command queue against
//! the real Docker Engine the harness starts: versions (deduplicated, immutable, secrets
//! sealed), apply and re-apply, a moved tag and a rollback that restores the image ids a
//! version ran with (its volume kept), a failing health check that leaves the stack on its
//! version, the queue's order and cancel, drift, and Docker events.

use std::path::Path;
use std::time::Duration;

use futures::StreamExt;
use wakehub_core::connector::Registry;
use wakehub_core::connector::compose::VERSION_LABEL;
use wakehub_core::engine::{Engine, EngineConfig, StackLogLine};
use wakehub_core::model::{Action, Origin};
use wakehub_core::secrets::MasterKey;
use wakehub_core::store::{StackCommand, StackCommandKind, StackCommandStatus, Store};
use wakehub_tests::Dockerd;

const APP: &str = "wakehub-test/app:current";

fn topology(docker: &Dockerd) -> String {
    format!(
        r#"
[[node]]
name = "lab"
kind = "physical"
offers = ["docker"]
[node.connector]
type = "sim"
initially = "on"
docker_host = "unix://{}"

[[node]]
name = "media"
kind = "stack"
parent = "lab"
[node.connector]
type = "stack"
wait_secs = 20

[[node]]
name = "tools"
kind = "stack"
parent = "lab"
[node.connector]
type = "stack"
"#,
        docker.socket.display()
    )
}

/// An engine over a file store at `db` holding the lab.
fn engine(db: &Path, docker: &Dockerd, key: &MasterKey) -> Engine {
    let store = Store::open(db, key.clone()).unwrap();
    let topology = crate::support::parse(&topology(docker));
    assert!(Registry::builtin().validate(&topology).is_empty());
    store.import(&topology, Origin::Operator).unwrap();
    Engine::new(store, Registry::builtin(), EngineConfig::default()).unwrap()
}

/// The stack: an init filling a volume, a health-checked db with a secret, a web after it.
fn compose(web_command: &str, db_check: &str) -> String {
    format!(
        "services:\n  init:\n    image: {APP}\n    command: [sh, -c, 'touch /data/initialized']\n    volumes: ['data:/data']\n  db:\n    image: {APP}\n    command: [sh, -c, 'echo db up; touch /tmp/ready; exec sleep 600']\n    stop_grace_period: 1s\n    environment:\n      DB_PASSWORD: s3cr3t-value-42\n      MODE: plain\n    healthcheck: {{test: [CMD, test, -f, {db_check}], interval: 1s, timeout: 1s, retries: 1}}\n    depends_on: {{init: {{condition: service_completed_successfully}}}}\n  web:\n    image: {APP}\n    command: {web_command}\n    stop_grace_period: 1s\n    volumes: ['data:/data']\n    depends_on: {{db: {{condition: service_healthy}}}}\nvolumes:\n  data: {{}}\n"
    )
}

async fn until_final(engine: &Engine, id: i64) -> StackCommand {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let c = engine.store().stack_command(id).unwrap().unwrap();
        if c.status.is_final() {
            return c;
        }
        assert!(tokio::time::Instant::now() < deadline, "command {id} never ended: {c:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn run(engine: &Engine, kind: StackCommandKind, version: Option<i64>) -> StackCommand {
    let c = engine.stack_command("media", kind, version, "tester").await.unwrap();
    assert_eq!(c.status, StackCommandStatus::Pending, "persisted pending before it is acknowledged");
    until_final(engine, c.id).await
}

fn inspect(docker: &Dockerd, name: &str, format: &str) -> String {
    docker.ok(&["inspect", "--format", format, name])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_apply_roll_back_to_the_images_they_ran_with_and_a_failed_apply_goes_back() {
    let docker = Dockerd::start();
    let image_one = docker.import_image(APP, Some("one"));
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("wakehub.db");
    let key = MasterKey::generate();
    let engine = engine(&db, &docker, &key);

    // Versions: written once; the same meaning again is not a new one.
    let v1_text = compose("[sleep, '600']", "/tmp/ready");
    let (v1, new) = engine.save_stack_version("media", &v1_text, "tester", Some("first")).await.unwrap();
    assert!(new && v1.number == 1);
    let (same, new) =
        engine.save_stack_version("media", &format!("# a comment\n{v1_text}"), "tester", None).await.unwrap();
    assert!(!new && same.number == 1 && same.digest == v1.digest);
    // Its secret is sealed: a placeholder in the model, never in the database's files.
    assert_eq!(v1.compose.services["db"].environment["DB_PASSWORD"], "********");
    assert_eq!(v1.secrets, ["db.DB_PASSWORD"]);
    for file in ["wakehub.db", "wakehub.db-wal"] {
        let bytes = std::fs::read(dir.path().join(file)).unwrap_or_default();
        assert!(!bytes.windows(15).any(|w| w == b"s3cr3t-value-42"), "{file} holds the secret in plaintext");
    }
    // A malformed file is refused with its stable code and nothing is written.
    let err = engine.save_stack_version("media", "services:\n  a:\n    image: x\n    bogus: 1\n", "tester", None).await;
    let err = err.unwrap_err();
    assert_eq!(err.code().as_str(), "COMPOSE_INVALID", "{err}");
    assert!(err.to_string().contains("bogus"), "{err}");
    assert_eq!(engine.stack_versions("media").await.unwrap().len(), 1);

    // The first apply: a start cascade (the host is on), then the version, healthy.
    let c = run(&engine, StackCommandKind::Apply, None).await;
    assert_eq!(c.status, StackCommandStatus::Done, "{c:?}");
    assert!(c.log.contains("db: healthy"), "{}", c.log);
    assert_eq!(engine.store().stack_current(v1.stack).unwrap().unwrap().0, 1);
    let v1 = engine.store().stack_version(v1.stack, 1).unwrap().unwrap();
    let images = v1.images.clone().expect("the image ids it ran with");
    assert!(images.values().all(|i| *i == image_one), "{images:?}");
    assert_eq!(inspect(&docker, "media-db", "{{.State.Health.Status}}"), "healthy");
    // Its containers say what made them: this command.
    let made_by = inspect(&docker, "media-db", "{{index .Config.Labels \"io.wakehub.command\"}}");
    assert_eq!(made_by, format!("stack-command:{}", c.id));
    // The secret reaches the container, and only it.
    assert!(inspect(&docker, "media-db", "{{.Config.Env}}").contains("DB_PASSWORD=s3cr3t-value-42"));
    let ids_v1 = c.result.as_ref().unwrap()["containers"].clone();

    // Re-applying changes nothing.
    let again = run(&engine, StackCommandKind::Apply, Some(1)).await;
    assert_eq!(again.status, StackCommandStatus::Done, "{again:?}");
    assert_eq!(again.result.as_ref().unwrap()["created"], serde_json::json!([]));
    assert_eq!(again.result.as_ref().unwrap()["containers"], ids_v1);

    // The tag moves to another image; version 2 (web changed) runs what it names now.
    docker.ok(&["exec", "media-web", "touch", "/data/keep-me"]);
    let image_two = docker.import_image(APP, Some("two"));
    assert_ne!(image_one, image_two);
    engine.save_stack_version("media", &compose("[sleep, '601']", "/tmp/ready"), "tester", None).await.unwrap();
    let c2 = run(&engine, StackCommandKind::Apply, None).await;
    assert_eq!(c2.status, StackCommandStatus::Done, "{c2:?}");
    assert_eq!(inspect(&docker, "media-web", "{{.Image}}"), image_two);
    assert_eq!(engine.store().stack_current(v1.stack).unwrap().unwrap().0, 2);

    // Rollback to version 1: exactly the images it ran with, the volume's data kept.
    let rb = run(&engine, StackCommandKind::Rollback, Some(1)).await;
    assert_eq!(rb.status, StackCommandStatus::Done, "{rb:?}");
    for service in ["media-db", "media-web"] {
        assert_eq!(inspect(&docker, service, "{{.Image}}"), image_one, "{service}");
    }
    assert!(docker.cli(&["exec", "media-web", "test", "-f", "/data/keep-me"]).status.success(), "volume kept");
    assert_eq!(engine.store().stack_current(v1.stack).unwrap().unwrap().0, 1);
    // A rollback to where it is already is refused.
    let err = engine.stack_command("media", StackCommandKind::Rollback, Some(1), "tester").await.unwrap_err();
    assert_eq!(err.code().as_str(), "CONFLICT", "{err}");

    // Version 3's health check fails: the command fails with its code and the log tail,
    // and the stack goes back to version 1, healthy.
    engine.save_stack_version("media", &compose("[sleep, '600']", "/nonexistent"), "tester", None).await.unwrap();
    let c3 = run(&engine, StackCommandKind::Apply, Some(3)).await;
    assert_eq!(c3.status, StackCommandStatus::Failed, "{c3:?}");
    assert_eq!(c3.error_code.as_deref(), Some("UNHEALTHY"), "{c3:?}");
    assert!(c3.error_message.as_deref().unwrap_or_default().contains("db up"), "log tail: {c3:?}");
    assert!(c3.log.contains("going back to version 1") && c3.log.contains("back on version 1"), "{}", c3.log);
    assert_eq!(engine.store().stack_current(v1.stack).unwrap().unwrap().0, 1);
    assert_eq!(inspect(&docker, "media-db", &format!("{{{{index .Config.Labels \"{VERSION_LABEL}\"}}}}")), "1");
    assert_eq!(inspect(&docker, "media-db", "{{.State.Health.Status}}"), "healthy");
    assert!(engine.store().stack_version(v1.stack, 3).unwrap().unwrap().images.is_none(), "v3 never ran");

    // A version never changes, even by hand in the database.
    drop(engine);
    let conn = rusqlite::Connection::open(&db).unwrap();
    let err = conn.execute("UPDATE stack_versions SET model = '{}' WHERE number = 1", []).unwrap_err();
    assert!(err.to_string().contains("a stack version never changes"), "{err}");
    let err = conn.execute("UPDATE stack_versions SET images = '{}' WHERE number = 1", []).unwrap_err();
    assert!(err.to_string().contains("records its images once"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_queue_runs_one_command_at_a_time_in_order_and_drift_and_events_are_seen() {
    let docker = Dockerd::start();
    docker.import_image(APP, None);
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(&dir.path().join("wakehub.db"), &docker, &MasterKey::generate());
    engine.save_stack_version("media", &compose("[sleep, '600']", "/tmp/ready"), "tester", None).await.unwrap();
    let stack = engine.store().topology().unwrap().by_name("media").unwrap().id;

    // Three commands at once: they run in order, one at a time; a pending one can be
    // cancelled, a running one cannot.
    let apply = engine.stack_command("media", StackCommandKind::Apply, None, "tester").await.unwrap();
    let refresh = engine.stack_command("media", StackCommandKind::Refresh, None, "tester").await.unwrap();
    let stop = engine.stack_command("media", StackCommandKind::Stop, None, "tester").await.unwrap();
    // A stack on the same machine waits its turn, and says for what.
    let tools_text =
        format!("services:\n  t:\n    image: {APP}\n    command: [sleep, '600']\n    stop_grace_period: 1s\n");
    engine.save_stack_version("tools", &tools_text, "tester", None).await.unwrap();
    let tools = engine.stack_command("tools", StackCommandKind::Apply, None, "tester").await.unwrap();
    // Their logs can be followed while they wait: the stop's comes whole once it runs, the
    // cancelled refresh's ends with its cancel.
    let (before, mut stop_log) = engine.stack_log(&stop).await.unwrap().expect("the stop is waiting");
    let (_, mut refresh_log) = engine.stack_log(&refresh).await.unwrap().expect("the refresh is waiting");
    assert!(before.is_empty(), "{before:?}");
    let cancelled = engine.cancel_stack_command(refresh.id).await.unwrap();
    assert_eq!(cancelled.status, StackCommandStatus::Cancelled);
    assert_eq!(refresh_log.recv().await.unwrap(), StackLogLine::End(StackCommandStatus::Cancelled));
    while engine.store().stack_command(apply.id).unwrap().unwrap().status == StackCommandStatus::Pending {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let err = engine.cancel_stack_command(apply.id).await.unwrap_err();
    assert_eq!(err.code().as_str(), "COMMAND_RUNNING", "{err}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let t = engine.store().stack_command(tools.id).unwrap().unwrap();
        if t.reason.as_deref() == Some("waiting for a command of stack `media` on `lab`") {
            assert_eq!(t.status, StackCommandStatus::Pending);
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{t:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // While it runs, a stop of its host waits for it: refused with the reason.
    let err = engine.request("lab", Action::Stop).await.unwrap_err();
    assert!(err.to_string().contains("a command of stack `media` is running"), "{err}");
    let (apply, stop) = (until_final(&engine, apply.id).await, until_final(&engine, stop.id).await);
    assert_eq!((apply.status, stop.status), (StackCommandStatus::Done, StackCommandStatus::Done), "{apply:?} {stop:?}");
    assert!(apply.finished_at.unwrap() <= stop.started_at.unwrap(), "one at a time, in order");
    let tools = until_final(&engine, tools.id).await;
    assert_eq!(tools.status, StackCommandStatus::Done, "{tools:?}");
    assert!(apply.finished_at.unwrap() <= tools.started_at.unwrap(), "after the machine's other stack");
    let refresh = engine.store().stack_command(refresh.id).unwrap().unwrap();
    assert_eq!((refresh.status, refresh.started_at), (StackCommandStatus::Cancelled, None));
    assert!(!docker.running("media-web") && !docker.running("media-db"), "stopped");
    assert!(stop.log.contains("stop cascade"), "{}", stop.log);
    let mut followed = Vec::new();
    let end = loop {
        match stop_log.recv().await.unwrap() {
            StackLogLine::Line(l) => followed.push(l),
            StackLogLine::End(status) => break status,
            _ => unreachable!(),
        }
    };
    assert_eq!((end, followed.join("\n")), (StackCommandStatus::Done, stop.log.trim_end().to_owned()));

    // Starting the stack node (a cascade) applies the version it is on.
    let start = crate::lab::run_to_end(&engine, "media", Action::Start).await;
    assert_eq!(start.status.as_str(), "completed", "{start:?}");
    assert!(docker.running("media-web"));
    let view = engine.stack_view("media").await.unwrap();
    assert!(view.state.as_ref().unwrap().drift.is_empty(), "{view:?}");
    // A service's output: its last lines; a service with no container is NOT_FOUND.
    assert!(engine.stack_service_log("media", "db", 5).await.unwrap().contains("db up"));
    let err = engine.stack_service_log("media", "nope", 5).await.unwrap_err();
    assert_eq!(err.code().as_str(), "NOT_FOUND", "{err}");

    // Events: a container stopped by hand is seen live, and as drift; the next apply fixes it.
    let mut events = engine.stack_events("media").await.unwrap();
    docker.ok(&["stop", "-t", "1", "media-web"]);
    docker.ok(&["rm", "-f", "media-db"]);
    // A container labeled for the stack that no service of its version names: an orphan.
    docker.create(
        "media-ghost",
        &["--label", "io.wakehub.stack=media", "--label", "io.wakehub.service=ghost"],
        &["sleep", "600"],
    );
    let mut seen = Vec::new();
    while let Ok(Some(Ok(e))) = tokio::time::timeout(Duration::from_secs(10), events.next()).await {
        seen.push(format!("{} {}", e.service, e.action));
        if seen.iter().any(|s| s == "db destroy") {
            break;
        }
    }
    assert!(seen.iter().any(|s| s == "web die") && seen.iter().any(|s| s == "db destroy"), "{seen:?}");
    let view = engine.stack_view("media").await.unwrap();
    let drift = view.state.unwrap().drift;
    assert!(drift.iter().any(|d| d.contains("`db` has no container")), "{drift:?}");
    assert!(drift.iter().any(|d| d.contains("`web` is exited")), "{drift:?}");
    assert!(drift.iter().any(|d| d.contains("`ghost` is not a service of this version")), "{drift:?}");
    let refresh =
        until_final(&engine, engine.stack_command("media", StackCommandKind::Refresh, None, "t").await.unwrap().id)
            .await;
    assert!(refresh.log.contains("drift: `db` has no container"), "{}", refresh.log);
    let fix =
        until_final(&engine, engine.stack_command("media", StackCommandKind::Apply, None, "t").await.unwrap().id).await;
    assert_eq!(fix.status, StackCommandStatus::Done, "{fix:?}");
    assert!(engine.stack_view("media").await.unwrap().state.unwrap().drift.is_empty());
    assert!(fix.log.contains("ghost: removed (not in version 1)"), "the orphan went: {}", fix.log);
    assert!(docker.cli(&["inspect", "media-ghost"]).status.code() != Some(0));

    // Remove: containers and networks go, the volume stays; the stack is on no version.
    let removed =
        until_final(&engine, engine.stack_command("media", StackCommandKind::Remove, None, "t").await.unwrap().id)
            .await;
    assert_eq!(removed.status, StackCommandStatus::Done, "{removed:?}");
    assert!(docker.cli(&["inspect", "media-web"]).status.code() != Some(0));
    assert!(docker.cli(&["network", "inspect", "media_default"]).status.code() != Some(0));
    assert!(docker.cli(&["volume", "inspect", "media_data"]).status.success());
    assert_eq!(engine.store().stack_current(stack).unwrap(), None);
}
