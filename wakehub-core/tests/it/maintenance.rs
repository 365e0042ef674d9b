//! Maintenance windows through the engine, on simulated machines whose SSH never answers:
//! what a window may be, when a schedule fires (and when a missed time is skipped), a run
//! that cannot reach its machines and says so while still putting back what it woke, and
//! a run a crash left behind.

use std::time::Duration;

use wakehub_core::connector::{PowerState, Registry};
use wakehub_core::engine::{Engine, EngineConfig, Selection};
use wakehub_core::model::Origin;
use wakehub_core::secrets::MasterKey;
use wakehub_core::store::{MaintenanceRunRecord, MaintenanceWindow, RunStatus};

/// Two simulated machines (`a` on, `b` off) reachable, in name, over SSH on a port nothing
/// listens on, and a NAS that is no machine.
fn lab() -> Engine {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let machine = |name: &str, initially: &str| {
        format!(
            "[[node]]\nname = \"{name}\"\nkind = \"physical\"\ntags = [\"patch\"]\n[node.connector]\ntype = \"sim\"\n\
             initially = \"{initially}\"\nhost = \"127.0.0.1\"\nssh_port = {closed}\nssh_password = \"x\"\n"
        )
    };
    let text = format!(
        "{}{}[[node]]\nname = \"nas\"\nkind = \"physical\"\ntags = [\"patch\"]\n[node.connector]\ntype = \"sim\"\n",
        machine("a", "on"),
        machine("b", "off")
    );
    let store = crate::support::store(MasterKey::generate());
    store.import(&crate::support::parse(&text), Origin::Operator).unwrap();
    Engine::new(store, Registry::builtin(), EngineConfig::default()).unwrap()
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

async fn ends(e: &Engine, id: i64) -> MaintenanceRunRecord {
    for _ in 0..600 {
        let r = e.store().maintenance_run(id).unwrap().unwrap();
        if r.status != RunStatus::Running {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("run {id} did not end: {:?}", e.store().maintenance_steps(id));
}

#[tokio::test]
async fn a_window_is_checked_before_it_is_kept() {
    let e = lab();
    let err = |w: MaintenanceWindow| {
        let e = e.clone();
        async move { e.save_maintenance_window(w, "alice").await.unwrap_err() }
    };
    let none = err(MaintenanceWindow::new("w", vec![], vec![])).await;
    assert_eq!(none.code().as_str(), "VALIDATION", "{none}");
    let ghost = err(MaintenanceWindow::new("w", vec!["ghost".into()], vec![])).await;
    assert_eq!(ghost.code().as_str(), "NOT_FOUND", "{ghost}");
    let cron =
        err(MaintenanceWindow::new("w", vec!["a".into()], vec![]).with_schedule(Some("61 * * * *".into()), None));
    assert!(cron.await.to_string().contains("schedule `61 * * * *`"));
    let tz = MaintenanceWindow::new("w", vec!["a".into()], vec![])
        .with_schedule(Some("0 3 * * SUN".into()), Some("Mars/Olympus".into()));
    assert!(err(tz).await.to_string().contains("unknown time zone `Mars/Olympus`"));
    let name = err(MaintenanceWindow::new("../etc", vec!["a".into()], vec![])).await;
    assert_eq!(name.code().as_str(), "VALIDATION", "{name}");
    assert!(e.store().maintenance_windows().unwrap().is_empty(), "nothing kept");

    let ok = MaintenanceWindow::new("sunday", vec!["a".into()], vec!["patch".into()])
        .with_schedule(Some("0 3 * * SUN".into()), Some("Europe/Paris".into()));
    e.save_maintenance_window(ok, "alice").await.unwrap();
    let kept = e.store().maintenance_window("sunday").unwrap().unwrap();
    assert_eq!((kept.timezone.as_deref(), kept.updated_by.as_str()), (Some("Europe/Paris"), "alice"));
    e.delete_maintenance_window("sunday").await.unwrap();
    assert_eq!(e.delete_maintenance_window("sunday").await.unwrap_err().code().as_str(), "NOT_FOUND");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_due_window_runs_once_and_puts_back_what_it_woke_even_when_it_cannot_patch() {
    let e = lab();
    let w = MaintenanceWindow::new("often", vec![], vec!["patch".into()]).with_schedule(Some("* * * * *".into()), None);
    e.save_maintenance_window(w, "alice").await.unwrap();
    // Its last time was 90 s ago: due.
    let past = now_ms() - 90_000;
    e.store().journal(|tx| tx.window_fired("often", past)).unwrap();
    let started = e.fire_due_windows().await.unwrap();
    assert_eq!(started.len(), 1);
    let run = &started[0];
    assert_eq!(
        (run.mode.as_str(), run.actor.as_str(), run.window.as_deref()),
        ("scheduled", "schedule", Some("often"))
    );
    // Not twice for the same time.
    assert!(e.fire_due_windows().await.unwrap().is_empty());

    let plan: wakehub_core::engine::MaintenancePlan = serde_json::from_value(run.plan.clone()).unwrap();
    assert_eq!(plan.wake, ["b"]);
    assert_eq!(plan.skipped.len(), 1);
    assert!(plan.skipped[0].reason.contains("not a machine WakeHub can reach over SSH"), "{:?}", plan.skipped);
    let run = ends(&e, run.id).await;
    // Neither machine answers over SSH: the run needs attention and says why; `b`, woken
    // for it, is off again; `a` stays on.
    assert_eq!(run.status, RunStatus::Attention);
    let report = run.report.unwrap();
    assert!(report.contains("- a: refresh: ") && report.contains("- b: refresh: "), "{report}");
    assert!(report.contains("Put back to sleep: b."), "{report}");
    assert!(report.contains("- nas: not a machine"), "{report}");
    let t = e.store().topology().unwrap();
    let power = e.observe(&t).await;
    assert_eq!(power[&t.by_name("a").unwrap().id], PowerState::On);
    assert_eq!(power[&t.by_name("b").unwrap().id], PowerState::Off);
    let phases: Vec<(String, String)> =
        e.store().maintenance_steps(run.id).unwrap().into_iter().map(|s| (s.phase, s.status)).collect();
    assert!(phases.contains(&("wake".into(), "done".into())) && phases.contains(&("restore".into(), "done".into())));
    // Every step is journaled as a `maintenance` event.
    let events = e
        .store()
        .find_events(&wakehub_core::store::EventQuery {
            kinds: vec!["maintenance".into()],
            limit: 1000,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(events.len(), phases.len() + 2, "begin, each step, end");
    // Refreshes that all failed teach nothing: the next plan still does not know `a`.
    let plan = e.plan_maintenance(&Selection { nodes: vec!["a".into()], tags: vec![] }).await.unwrap();
    let a = &plan.machines[0];
    assert_eq!((a.known_at, a.reboot.as_str()), (None, "unknown"), "{a:?}");
    assert!(a.estimate_basis.contains("upgrade"), "{a:?}");
}

#[tokio::test]
async fn a_time_missed_long_ago_is_skipped_not_run_late() {
    let e = lab();
    // Daily, three hours ago (UTC); last fired two days ago.
    let now = now_ms();
    let hour = ((now / 3_600_000) % 24 + 21) % 24;
    let w = MaintenanceWindow::new("nightly", vec!["a".into()], vec![])
        .with_schedule(Some(format!("0 {hour} * * *")), None);
    e.save_maintenance_window(w, "alice").await.unwrap();
    e.store().journal(|tx| tx.window_fired("nightly", now - 2 * 86_400_000)).unwrap();
    assert!(e.fire_due_windows().await.unwrap().is_empty());
    assert!(e.store().maintenance_runs(None, 10).unwrap().is_empty());
    // It is now considered fired: the next time is tomorrow's.
    let w = e.store().maintenance_window("nightly").unwrap().unwrap();
    assert!(w.last_fired_at.unwrap() >= now);
}

#[tokio::test]
async fn a_run_a_crash_left_running_is_marked_interrupted_and_never_run_again() {
    let e = lab();
    let plan = e.plan_maintenance(&Selection { nodes: vec!["b".into()], tags: vec![] }).await.unwrap();
    let plan = serde_json::to_value(&plan).unwrap();
    let (run, _) = e.store().journal(|tx| tx.begin_maintenance_run(None, "manual", "alice", &plan, 1)).unwrap();
    // The next WakeHub starts.
    e.resume_executions().await.unwrap();
    let run = e.store().maintenance_run(run.id).unwrap().unwrap();
    assert_eq!(run.status, RunStatus::Interrupted);
    let report = run.report.unwrap();
    assert!(report.contains("was not run again") && report.contains("may have been left on: `b`"), "{report}");
    assert!(e.in_maintenance().is_empty());
}
