//! Inactivity rules through the engine on simulated nodes, with a clock the test controls:
//! how a rule is written and checked, a guest's activity keeping its host, the stop of what
//! is idle by a normal cascade, what keeps an idle node on (a node without a rule, a keep-on
//! schedule, a veto URL, a signal that cannot be measured), requests through the proxy and
//! an HTTP probe counting as activity, and what a connector reports (in use, the watts its
//! meter reads).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wakehub_core::connector::activity::{Cpu, Load};
use wakehub_core::connector::sim::SimConnector;
use wakehub_core::connector::{PowerState, Registry};
use wakehub_core::engine::{Engine, EngineConfig, IdleStatus};
use wakehub_core::model::{NodeId, Origin};
use wakehub_core::secrets::MasterKey;
use wakehub_core::store::{PowerSchedule, ScheduleAction};
use wakehub_core::topology_file::{self, ParseOptions};

const MIN: i64 = 60_000;

/// The controlled clock starts at the real time (a schedule is written at the real time).
fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

fn lab(text: &str) -> (Engine, SimConnector) {
    let store = crate::support::store(MasterKey::generate());
    store.import(&crate::support::parse(text), Origin::Operator).unwrap();
    let sim = SimConnector::new();
    let mut registry = Registry::builtin();
    registry.register("sim", sim.clone());
    (Engine::new(store, registry, EngineConfig::default()).unwrap(), sim)
}

fn id(e: &Engine, name: &str) -> NodeId {
    crate::support::id(&e.store().topology().unwrap(), name)
}

async fn settle(e: &Engine) {
    for _ in 0..200 {
        if e.running().is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("cascades never ended");
}

async fn state(e: &Engine, name: &str) -> PowerState {
    let t = e.store().topology().unwrap();
    e.observe(&t).await[&crate::support::id(&t, name)]
}

fn status<'a>(all: &'a [IdleStatus], e: &Engine, name: &str) -> &'a IdleStatus {
    let node = id(e, name);
    all.iter().find(|s| s.node == node).unwrap_or_else(|| panic!("{name} is not tracked: {all:?}"))
}

/// A host running a guest, both with rules (the guest's on its CPU), and a NAS the guest
/// needs, with no rule.
const HOMELAB: &str = r#"
[[node]]
name = "pve"
kind = "physical"
offers = ["proxmox"]
idle = { after = "10m" }
[node.connector]
type = "sim"
initially = "on"

[[node]]
name = "jellyfin"
kind = "vm"
parent = "pve"
depends_on = ["nas"]
idle = { after = "30m", cpu_percent = 5.0 }
[node.connector]
type = "sim"
initially = "on"

[[node]]
name = "nas"
kind = "physical"
[node.connector]
type = "sim"
initially = "on"
"#;

#[tokio::test]
async fn rules_are_read_checked_and_written_back() {
    let t = crate::support::parse(HOMELAB);
    let rule = t.by_name("jellyfin").unwrap().spec.idle.clone().unwrap();
    assert_eq!((rule.after, rule.cpu_percent), (Duration::from_secs(1800), Some(5.0)));
    let exported = topology_file::export(&t).unwrap();
    assert!(exported.contains("[node.idle]\nafter = \"30m\"\ncpu_percent = 5.0"), "{exported}");
    assert_eq!(crate::support::parse(&exported).by_name("jellyfin").unwrap().spec.idle, Some(rule));

    let bad = HOMELAB.replace(r#"idle = { after = "10m" }"#, r#"idle = { after = "5s", tcp_ports = [0], cpus = 2 }"#);
    let err = topology_file::parse(&bad, &ParseOptions::operator()).unwrap_err().to_string();
    assert!(err.contains("pve") && err.contains("idle") && err.contains("unknown field `cpus`"), "{err}");
    let bad = HOMELAB.replace(r#"idle = { after = "10m" }"#, r#"idle = { after = "5s", tcp_ports = [0] }"#);
    let err = topology_file::parse(&bad, &ParseOptions::operator()).unwrap_err().to_string();
    assert!(err.contains("after: must be between 1m and 30days") && err.contains("tcp_ports"), "{err}");

    // Through the API, a veto command (run on the node) is refused; the file may set it.
    let (e, _) = lab(HOMELAB);
    let with_veto =
        HOMELAB.replace(r#"idle = { after = "10m" }"#, r#"idle = { after = "10m", veto_command = "pgrep rsync" }"#);
    let err = e.import(crate::support::parse(&with_veto), Origin::Api).await.unwrap_err();
    assert!(err.to_string().contains("idle.veto_command"), "{err}");
    e.import(crate::support::parse(&with_veto), Origin::Operator).await.unwrap();
    let stored = e.store().topology().unwrap();
    assert_eq!(stored.by_name("pve").unwrap().spec.idle.as_ref().unwrap().veto_command.as_deref(), Some("pgrep rsync"));
}

#[tokio::test]
async fn a_busy_guest_keeps_its_host_then_both_stop_when_idle() {
    let (e, sim) = lab(HOMELAB);
    let jellyfin = id(&e, "jellyfin");
    let t0 = now();
    let all = e.check_idle_at(t0).await.unwrap();
    assert_eq!(all.len(), 2, "the two running nodes with a rule are tracked: {all:?}");
    assert_eq!(status(&all, &e, "jellyfin").readings[0].value, "first sample");

    // The guest is busy for five minutes (half a core), then quiet.
    sim.set_load(jellyfin, Load { cpu: Some(Cpu::BusySeconds(150.0)), net_bytes: Some(0), ..Default::default() });
    let all = e.check_idle_at(t0 + 5 * MIN).await.unwrap();
    let j = status(&all, &e, "jellyfin");
    assert_eq!(j.readings[0].value, "50.0 %");
    assert!(j.readings[0].active);
    assert_eq!((j.last_activity_at, j.idle_at), (t0 + 5 * MIN, t0 + 35 * MIN));
    // The host's idle time counts from its guest's activity.
    let p = status(&all, &e, "pve");
    assert_eq!(p.last_activity_at, t0 + 5 * MIN);
    assert!(p.last_activity.contains("`jellyfin`: cpu_percent: 50.0 %"), "{}", p.last_activity);

    // Twenty minutes on: the host is past its 10 minutes but its guest is not idle yet.
    let all = e.check_idle_at(t0 + 20 * MIN).await.unwrap();
    assert_eq!(status(&all, &e, "pve").kept.as_deref(), Some("`jellyfin` is not idle yet"));
    assert_eq!(status(&all, &e, "jellyfin").readings[0].value, "0.0 %");
    assert_eq!(state(&e, "pve").await, PowerState::On);

    // Past the guest's 30 minutes: the host's stop is requested (a normal stop cascade that
    // stops the guest first); the NAS, with no rule, stays on.
    let all = e.check_idle_at(t0 + 36 * MIN).await.unwrap();
    assert!(status(&all, &e, "pve").stop_requested.is_some(), "{all:?}");
    assert_eq!(status(&all, &e, "jellyfin").kept.as_deref(), Some("a stop of `pve` is in progress"));
    settle(&e).await;
    assert_eq!(state(&e, "pve").await, PowerState::Off);
    assert_eq!(state(&e, "jellyfin").await, PowerState::Off);
    assert_eq!(state(&e, "nas").await, PowerState::On);
    let cascades = e.store().cascades(&Default::default()).unwrap();
    assert_eq!(cascades[0].requested_by.as_deref(), Some("idle"));
    // Stopped nodes are no longer tracked.
    assert!(e.check_idle_at(t0 + 37 * MIN).await.unwrap().is_empty());
}

#[tokio::test]
async fn what_keeps_an_idle_node_on() {
    let (e, _) = lab(HOMELAB);
    let t0 = now();
    e.check_idle_at(t0).await.unwrap();
    // Requests through the proxy reset the guest's clock.
    e.touch_at(id(&e, "jellyfin"), "request through the proxy", t0 + 25 * MIN);
    let all = e.check_idle_at(t0 + 40 * MIN).await.unwrap();
    assert_eq!(status(&all, &e, "jellyfin").last_activity, "request through the proxy");
    assert_eq!(status(&all, &e, "pve").kept.as_deref(), Some("`jellyfin` is not idle yet"));

    // A keep-on schedule on the guest holds it, and so its host.
    e.save_power_schedule(
        PowerSchedule::new("evening", ScheduleAction::KeepOn, "0 20 * * *", vec!["jellyfin".into()], vec![])
            .keeping_for(Some(4 * 3600)),
        "ada",
    )
    .await
    .unwrap();
    // Its next time at least 3 h on, whatever the time now: the guest idle by then.
    let at = Engine::next_runs(&e.store().power_schedule("evening").unwrap().unwrap(), t0 + 180 * MIN, 1)[0];
    e.fire_due_power_schedules_at(at).await.unwrap();
    // (The schedule's start of what is already on runs to its end first.)
    settle(&e).await;
    let all = e.check_idle_at(at + MIN).await.unwrap();
    let kept = status(&all, &e, "jellyfin").kept.clone().unwrap();
    assert!(kept.starts_with("schedule `evening` keeps `jellyfin` on for 3h 59m"), "{kept}");
    assert!(status(&all, &e, "pve").kept.as_deref().unwrap().starts_with("schedule `evening`"));
    e.delete_power_schedule("evening").await.unwrap();

    // A node on the host with no rule keeps the host on: nobody said it may stop.
    let with_guest = format!(
        "{HOMELAB}\n[[node]]\nname = \"ha\"\nkind = \"vm\"\nparent = \"pve\"\n[node.connector]\ntype = \"sim\"\ninitially = \"on\"\n"
    );
    e.import(crate::support::parse(&with_guest), Origin::Operator).await.unwrap();
    let all = e.check_idle_at(at + 2 * MIN).await.unwrap();
    assert_eq!(status(&all, &e, "pve").kept.as_deref(), Some("`ha` runs on it or needs it and has no idle rule"));
    assert!(status(&all, &e, "jellyfin").stop_requested.is_some(), "the guest alone may stop: {all:?}");
    settle(&e).await;
    assert_eq!(state(&e, "jellyfin").await, PowerState::Off);
    assert_eq!(state(&e, "pve").await, PowerState::On);
}

/// An HTTP server answering every request with the current body (a media server's session
/// list, a backup's status): a stand-in for the services whose answer a probe reads.
async fn answering(body: Arc<Mutex<String>>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/sessions", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let body = body.lock().unwrap().clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = conn.read(&mut buf).await;
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = conn.write_all(answer.as_bytes()).await;
            });
        }
    });
    url
}

#[tokio::test]
async fn probes_vetoes_and_what_cannot_be_measured() {
    let sessions = Arc::new(Mutex::new("[]".to_owned()));
    let backup = Arc::new(Mutex::new(r#"{"running": true}"#.to_owned()));
    let (sessions_url, backup_url) = (answering(sessions.clone()).await, answering(backup.clone()).await);
    let text = format!(
        r#"
[[node]]
name = "plex"
kind = "physical"
idle = {{ after = "15m", probe = {{ url = "{sessions_url}" }}, veto_url = {{ url = "{backup_url}", pointer = "/running" }} }}
[node.connector]
type = "sim"
initially = "on"

[[node]]
name = "files"
kind = "physical"
idle = {{ after = "15m", tcp_ports = [445] }}
[node.connector]
type = "sim"
initially = "on"
"#
    );
    let (e, _) = lab(&text);
    let t0 = now();
    e.check_idle_at(t0).await.unwrap();
    *sessions.lock().unwrap() = r#"[{"user": "ada"}]"#.into();
    let all = e.check_idle_at(t0 + 10 * MIN).await.unwrap();
    let plex = status(&all, &e, "plex");
    assert_eq!(plex.last_activity, "probe: reports something");
    assert_eq!(plex.idle_at, t0 + 25 * MIN);

    // Idle, but the backup's status says it runs: kept.
    *sessions.lock().unwrap() = "[]".into();
    let all = e.check_idle_at(t0 + 30 * MIN).await.unwrap();
    assert_eq!(status(&all, &e, "plex").kept.as_deref(), Some("`plex`: its veto url says keep on"));
    // A node whose signal cannot be measured (no SSH access here) is never taken for idle.
    let files = status(&all, &e, "files");
    let kept = files.kept.clone().unwrap();
    assert!(kept.starts_with("`files`: shell cannot be measured:") && kept.contains("`host` is required"), "{kept}");
    assert!(files.readings[0].error.is_some());

    // The backup is over: stopped.
    *backup.lock().unwrap() = r#"{"running": false}"#.into();
    let all = e.check_idle_at(t0 + 31 * MIN).await.unwrap();
    assert!(status(&all, &e, "plex").stop_requested.is_some(), "{all:?}");
    settle(&e).await;
    assert_eq!(state(&e, "plex").await, PowerState::Off);
    assert_eq!(state(&e, "files").await, PowerState::On);
}

/// A 3D printer plugged into a metered plug: in use while its connector says so, or while
/// it draws more than 50 W.
const PRINTER: &str = r#"
[[node]]
name = "plug"
kind = "physical"
[node.connector]
type = "sim"
initially = "on"

[[node]]
name = "printer"
kind = "physical"
watts = { meter = "plug", on = 90.0 }
idle = { after = "10m", reported = true, watts_above = 50.0 }
[node.connector]
type = "sim"
initially = "on"
"#;

#[tokio::test]
async fn what_a_connector_reports_and_what_a_meter_reads_count() {
    let (e, sim) = lab(PRINTER);
    let (plug, printer) = (id(&e, "plug"), id(&e, "printer"));
    let reading = |s: &IdleStatus, signal: &str| {
        let r = s.readings.iter().find(|r| r.signal == signal).unwrap_or_else(|| panic!("no {signal}: {s:?}"));
        (r.value.clone(), r.active, r.error.clone())
    };
    // A connector that says nothing: unknown is not idle, and said so.
    let t0 = now();
    let all = e.check_idle_at(t0).await.unwrap();
    let p = status(&all, &e, "printer");
    assert_eq!(reading(p, "reported").2.as_deref(), Some("its connector does not say"));
    assert!(reading(p, "watts_above").2.unwrap().contains("plug: its connector reads no power"), "{p:?}");

    // Printing: in use, and the plug reads 120 W.
    sim.set_load(printer, Load { in_use: Some(true), ..Default::default() });
    sim.set_load(plug, Load { watts: Some(120.0), ..Default::default() });
    let all = e.check_idle_at(t0 + MIN).await.unwrap();
    let p = status(&all, &e, "printer");
    assert_eq!(reading(p, "reported"), ("in use".into(), true, None));
    assert_eq!(reading(p, "watts_above"), ("120.0 W".into(), true, None));
    assert_eq!(p.last_activity_at, t0 + MIN);
    // The job ends, the heater stays warm a while: still active by its draw alone.
    sim.set_load(printer, Load { in_use: Some(false), ..Default::default() });
    let all = e.check_idle_at(t0 + 5 * MIN).await.unwrap();
    let p = status(&all, &e, "printer");
    assert_eq!((reading(p, "reported").1, reading(p, "watts_above").1), (false, true));
    assert_eq!(p.last_activity, "watts_above: 120.0 W");
    // Cold: nothing fires; ten minutes later it is stopped.
    sim.set_load(plug, Load { watts: Some(4.0), ..Default::default() });
    e.check_idle_at(t0 + 6 * MIN).await.unwrap();
    let all = e.check_idle_at(t0 + 16 * MIN).await.unwrap();
    assert!(status(&all, &e, "printer").stop_requested.is_some(), "{all:?}");
    settle(&e).await;
    assert_eq!(state(&e, "printer").await, PowerState::Off);

    // The meter's samples: kept on a change and as a heartbeat, not for noise.
    for (at, watts) in [(0, 4.0), (MIN, 4.3), (2 * MIN, 60.0), (3 * MIN, 60.0), (8 * MIN, 60.0)] {
        sim.set_load(plug, Load { watts: Some(watts), ..Default::default() });
        let read = e.sample_meters_at(t0 + at).await.unwrap();
        assert_eq!(read[&plug].watts, Ok(watts));
    }
    let kept = e.store().power_samples(plug, 0, i64::MAX).unwrap();
    assert_eq!(kept, [(t0, 4.0), (t0 + 2 * MIN, 60.0), (t0 + 8 * MIN, 60.0)]);
    assert_eq!(e.meter_readings()[&plug].at_ms, t0 + 8 * MIN);
    // Only what a node names as its meter is read.
    assert!(!e.meter_readings().contains_key(&printer));

    // A meter that names no node is refused in a file, with its field.
    let bad = PRINTER.replace(r#"meter = "plug""#, r#"meter = "socket""#);
    let err = topology_file::parse(&bad, &ParseOptions::operator()).unwrap_err().to_string();
    assert!(err.contains("printer") && err.contains("watts") && err.contains("meter: unknown node `socket`"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_shows_the_leaders_last_inactivity_check_and_meter_readings() {
    let (leader, sim) = lab(PRINTER);
    let mut registry = Registry::builtin();
    registry.register("sim", sim.clone());
    let follower = Engine::follower(leader.store().clone(), registry, EngineConfig::default()).unwrap();
    let (plug, printer) = (id(&leader, "plug"), id(&leader, "printer"));
    assert!(follower.idle_statuses().unwrap().is_empty() && follower.meter_readings().is_empty());
    sim.set_load(printer, Load { in_use: Some(true), ..Default::default() });
    sim.set_load(plug, Load { watts: Some(120.0), ..Default::default() });
    let t0 = now();
    let checked = leader.check_idle_at(t0).await.unwrap();
    leader.sample_meters_at(t0).await.unwrap();
    assert_eq!(status(&checked, &leader, "printer").last_activity_at, t0);
    // The follower reads what the leader kept (within its 1 s poll); it measures nothing.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while follower.idle_statuses().unwrap() != checked || follower.meter_readings() != leader.meter_readings() {
        assert!(std::time::Instant::now() < deadline, "{:?}", follower.idle_statuses());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(follower.meter_readings()[&plug].watts, Ok(120.0));
    // The next round replaces it.
    sim.set_load(printer, Load { in_use: Some(false), ..Default::default() });
    sim.set_load(plug, Load { watts: Some(4.0), ..Default::default() });
    let later = leader.check_idle_at(t0 + MIN).await.unwrap();
    leader.sample_meters_at(t0 + MIN).await.unwrap();
    while follower.idle_statuses().unwrap() != later || follower.meter_readings()[&plug].watts != Ok(4.0) {
        assert!(std::time::Instant::now() < deadline + Duration::from_secs(5), "{:?}", follower.idle_statuses());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status(&follower.idle_statuses().unwrap(), &leader, "printer").last_activity_at, t0);
    follower.shutdown().await;
}
