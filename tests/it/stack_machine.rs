//! A stack on a machine that sleeps, in the network-namespace lab: `box` is a machine that
//! really wakes (a network namespace whose listener boots it on a magic packet for its MAC)
//! and whose Docker Engine runs only while it is on (a `dockerd` in its namespace, stopped
//! with its containers when it powers off). Applying the stack while the machine sleeps
//! wakes it by Wake-on-LAN, waits for its engine, then applies; stopping the machine stops
//! the stack first; asleep, the stack says its engine cannot be read; starting the stack
//! wakes the machine again and brings its services back.

use std::process::Command;
use std::time::Duration;

use wakehub_core::connector::PowerState;
use wakehub_core::events::CascadeStatus;
use wakehub_core::model::Action;
use wakehub_core::store::{StackCommandKind, StackCommandStatus};
use wakehub_tests::{Machine, ensure_test_user, import_busybox};

use crate::lab::{engine_with_builtins as engine, run_to_end as run};

const APP: &str = "wakehub-test/app:asleep";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stack_on_a_machine_that_sleeps_wakes_it_first_and_stops_with_it() {
    assert!(
        Command::new("id").arg("-u").output().unwrap().stdout.starts_with(b"0"),
        "this test creates network namespaces: run it as root (CI does)"
    );
    ensure_test_user();
    let machine = Machine::with_docker(43, "52:54:00:00:43:03");
    // Its engine holds the image (installed once, as on a real machine); then it sleeps.
    machine.wake();
    let deadline = std::time::Instant::now() + Duration::from_secs(40);
    while !machine.docker(&["version"]).status.success() {
        assert!(
            std::time::Instant::now() < deadline,
            "its dockerd did not start: {:?}\n{}",
            machine.events(),
            machine.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    import_busybox(&machine.docker_socket(), APP, None);
    machine.shut_down();
    assert!(!machine.docker(&["version"]).status.success(), "asleep, its engine is gone");

    let addr = machine.addr();
    let e = engine(&format!(
        "[[node]]\nname = \"box\"\nkind = \"physical\"\noffers = [\"docker\"]\nreadiness = {{ tcp = \"{addr}:2375\" }}\n[node.connector]\n{}docker_host = \"tcp://{addr}:2375\"\n\n[[node]]\nname = \"app\"\nkind = \"stack\"\nparent = \"box\"\n[node.connector]\ntype = \"stack\"\nwait_secs = 30\n",
        machine.connector()
    ));
    let compose = format!(
        "services:\n  db:\n    image: {APP}\n    command: [sh, -c, 'touch /tmp/ready; exec sleep 600']\n    stop_grace_period: 1s\n    healthcheck: {{test: [CMD, test, -f, /tmp/ready], interval: 1s, timeout: 1s, retries: 2}}\n  web:\n    image: {APP}\n    command: [sleep, '600']\n    stop_grace_period: 1s\n    depends_on: {{db: {{condition: service_healthy}}}}\n"
    );
    e.save_stack_version("app", &compose, "tester", None).await.unwrap();

    // Asleep: the stack's engine cannot be read, and says so.
    let view = e.stack_view("app").await.unwrap();
    assert_eq!(view.state.as_ref().unwrap_err().code.as_str(), "UNREACHABLE", "{view:?}");

    // Apply while it sleeps: a real magic packet wakes it, its engine is waited for, then
    // the version runs.
    let c = e.stack_command("app", StackCommandKind::Apply, None, "tester").await.unwrap();
    let c = until_final(&e, c.id).await;
    assert_eq!(c.status, StackCommandStatus::Done, "{c:?}");
    assert!(machine.events().contains(&"booted".to_owned()) && machine.is_up(), "{:?}", machine.events());
    assert!(c.log.contains("start cascade") && c.log.contains("db: healthy"), "{}", c.log);
    let running = |name: &str| {
        String::from_utf8_lossy(&machine.docker(&["inspect", "--format", "{{.State.Running}}", name]).stdout).trim()
            == "true"
    };
    assert!(running("app-web") && running("app-db"));

    // Stopping the machine stops the stack first, then powers it off over SSH.
    let r = run(&e, "box", Action::Stop).await;
    assert_eq!(r.status, CascadeStatus::Completed, "{r:?}");
    assert!(!machine.is_up(), "powered off");
    let t = e.store().topology().unwrap();
    let seen = e.observe(&t).await;
    assert_ne!(seen[&t.by_name("app").unwrap().id], PowerState::On, "{seen:?}");
    assert_eq!(seen[&t.by_name("box").unwrap().id], PowerState::Off);
    let refresh = e.stack_command("app", StackCommandKind::Refresh, None, "tester").await.unwrap();
    let refresh = until_final(&e, refresh.id).await;
    assert_eq!(
        (refresh.status, refresh.error_code.as_deref()),
        (StackCommandStatus::Failed, Some("UNREACHABLE")),
        "{refresh:?}"
    );

    // Starting the stack wakes the machine again and brings its services back, healthy.
    let r = run(&e, "app", Action::Start).await;
    assert_eq!(r.status, CascadeStatus::Completed, "{r:?}");
    assert!(machine.is_up() && running("app-web") && running("app-db"));
    let view = e.stack_view("app").await.unwrap();
    let state = view.state.unwrap();
    assert!(state.drift.is_empty(), "{state:?}");
    assert!(state.services.iter().any(|s| s.service == "db" && s.health.as_deref() == Some("healthy")), "{state:?}");
    machine.shut_down();
}

async fn until_final(e: &wakehub_core::engine::Engine, id: i64) -> wakehub_core::store::StackCommand {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let c = e.store().stack_command(id).unwrap().unwrap();
        if c.status.is_final() {
            return c;
        }
        assert!(tokio::time::Instant::now() < deadline, "command {id} never ended: {c:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
