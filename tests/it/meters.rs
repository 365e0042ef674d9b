//! What plugins measure (WIT 0.3.0 `measure`), at work: a Shelly plug's meter (the `shelly`
//! plugin against the Gen2 stand-in) metering the machine plugged into it, for the energy
//! report and an inactivity rule's `watts_above`; a media player's state in Home Assistant
//! (the `http-switch` plugin against the REST API stand-in) reporting a node in use; a
//! plugin built for 0.2.0 measuring nothing, said so. The clock of the idle rules is the
//! test's; the meters' samples are taken at real times, so the energy figures are exact.

use std::time::Duration;

use wakehub_core::connector::ErrorCode;
use wakehub_core::energy::energy;
use wakehub_core::engine::Engine;
use wakehub_core::events::{CascadeStatus, EventKind};
use wakehub_core::model::{Action, PowerState};
use wakehub_core::plugin::PluginLimits;
use wakehub_core::store::EventQuery;

use crate::idle::{MIN, now, status, value as reading};
use crate::lab::run_to_end as run;
use crate::plugins::{engine, host, target};

/// When the journal saw `name` turn `state`.
fn seen_at(e: &Engine, name: &str, state: PowerState) -> i64 {
    let node = e.store().topology().unwrap().by_name(name).unwrap().id;
    let events = e
        .store()
        .find_events(&EventQuery {
            node: Some(node),
            kinds: vec!["status-change".into()],
            limit: 100,
            ..Default::default()
        })
        .unwrap();
    events
        .iter()
        .find(|ev| matches!(ev.kind, EventKind::StatusChange { state: s, .. } if s == state))
        .unwrap_or_else(|| panic!("{name} never seen {state}: {events:?}"))
        .at_ms
}

async fn sleep_ms(ms: u64) {
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_smart_plug_meters_the_machine_behind_it_for_energy_and_idleness() {
    let shelly = wakehub_tests::Shelly::start(None);
    let (host, _dir) = host(PluginLimits::default(), &["shelly"]);
    let e = engine(
        &host,
        &format!(
            r#"
[[node]]
name = "nas-plug"
kind = "smart-plug"
[node.connector]
type = "plugin:shelly"
url = "{url}"

[[node]]
name = "nas"
kind = "physical"
depends_on = ["nas-plug"]
watts = {{ meter = "nas-plug" }}
[node.idle]
after = "10m"
watts_above = 20.0
[node.connector]
type = "sim"
initially = "on"
"#,
            url = shelly.url
        ),
    );
    let plug = e.store().topology().unwrap().by_name("nas-plug").unwrap().id;
    assert_eq!(run(&e, "nas-plug", Action::Start).await.status, CascadeStatus::Completed);
    let topology = e.store().topology().unwrap();
    e.observe(&topology).await;

    // Busy: the meter reads 42.7 W, above the rule's 20 W.
    let t1 = now();
    let read = e.sample_meters_at(t1).await.unwrap();
    assert_eq!(read[&plug].watts, Ok(42.7));
    let all = e.check_idle_at(t1).await.unwrap();
    assert_eq!(reading(status(&all, &e, "nas"), "watts_above"), ("42.7 W".into(), true));

    // Its disks spin down: 8 W is not activity; ten minutes later it is stopped.
    shelly.set_load(8.0);
    sleep_ms(300).await;
    let t2 = now();
    assert_eq!(e.sample_meters_at(t2).await.unwrap()[&plug].watts, Ok(8.0));
    let all = e.check_idle_at(t1 + 5 * MIN).await.unwrap();
    let s = status(&all, &e, "nas");
    assert_eq!(reading(s, "watts_above"), ("8.0 W".into(), false));
    assert_eq!((s.last_activity_at, s.stop_requested), (t1, None));
    let all = e.check_idle_at(t1 + 11 * MIN).await.unwrap();
    let stop = status(&all, &e, "nas").stop_requested.expect("idle for 11 minutes: stop requested");
    let r = tokio::time::timeout(Duration::from_secs(60), e.wait(stop)).await.unwrap().unwrap();
    assert_eq!(r.status, CascadeStatus::Completed, "{r:?}");
    let t_off = seen_at(&e, "nas", PowerState::Off);
    // The plug stays on (nothing asked it off): the machine's standby on the meter.
    assert_eq!(shelly.state()["output"], true);
    shelly.set_load(1.5);
    sleep_ms(300).await;
    let t3 = now();
    e.sample_meters_at(t3).await.unwrap();
    // A reading within noise is not kept; the report integrates what was.
    e.sample_meters_at(t3 + 100).await.unwrap();
    sleep_ms(300).await;
    let t4 = now();

    let report = energy(e.store(), t1, t4).unwrap();
    let names: Vec<&str> = report.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["nas"], "only nodes with a draw are reported");
    let nas = &report[0];
    assert!(nas.measured);
    let wh = |w: f64, ms: i64| w * ms as f64 / 3_600_000.0;
    let used = wh(42.7, t2 - t1) + wh(8.0, t3 - t2) + wh(1.5, t4 - t3);
    assert!((nas.used_kwh * 1000.0 - used).abs() < 1e-9, "{nas:?} against {used} Wh");
    assert_eq!((nas.tally.on_ms, nas.tally.off_ms, nas.tally.unknown_ms), (t_off - t1, t4 - t_off, 0));
    let on_watts = (wh(42.7, t2 - t1) + wh(8.0, t_off - t2)) / ((t_off - t1) as f64 / 3_600_000.0);
    assert!((nas.on_watts.unwrap() - on_watts).abs() < 1e-6, "{nas:?} against {on_watts} W");
    assert!((nas.always_on_kwh - on_watts * (t4 - t1) as f64 / 3_600_000_000.0).abs() < 1e-12, "{nas:?}");
    assert!(nas.saved_kwh() > 0.0, "{nas:?}");
    // Samples: each change once (42.7, 8, 1.5), not the reading within noise.
    assert_eq!(e.store().power_samples(plug, 0, i64::MAX).unwrap().len(), 3);

    // The meter gone: its reading says why, and the report does not count the gap.
    drop(shelly);
    let read = e.sample_meters_at(now()).await.unwrap();
    let why = read[&plug].watts.clone().unwrap_err();
    assert!(why.starts_with("nas-plug: ") && why.ends_with("(UNREACHABLE)"), "{why}");
    assert_eq!(e.meter_readings()[&plug].watts, Err(why));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_reports_a_node_in_use_and_an_older_plugin_measures_nothing() {
    let token = "measure-token";
    let ha = wakehub_tests::HomeAssistant::start(token);
    let (host, _dir) = host(PluginLimits::default(), &["http-switch", "classic"]);
    let tv = wakehub_tests::homeassistant::nas_plug(&ha.url, token, "[node.idle]\nafter = \"10m\"\nreported = true\n")
        .replace("name = \"nas-plug\"", "name = \"tv\"")
        .replace(
            "token = ",
            &format!("measure_url = \"{}/api/states/media_player.tv\"\nin_use_pointer = \"/state\"\ntoken = ", ha.url),
        );
    let classic = format!(
        "[[node]]\nname = \"old-plug\"\nkind = \"classic-switch\"\n[node.connector]\ntype = \"plugin:classic\"\nurl = \"{}\"\nentity = \"switch.nas_plug\"\ntoken = \"{token}\"\n",
        ha.url
    );
    let e = engine(&host, &format!("{tv}\n{classic}"));
    let client = reqwest::Client::new();
    let player = |state: &'static str| {
        client
            .post(format!("{}/api/states/media_player.tv", ha.url))
            .bearer_auth(token)
            .json(&serde_json::json!({"state": state, "attributes": {"friendly_name": "TV"}}))
            .send()
    };
    assert!(player("playing").await.unwrap().status().is_success());
    assert_eq!(run(&e, "tv", Action::Start).await.status, CascadeStatus::Completed);
    e.observe(&e.store().topology().unwrap()).await;

    let t0 = now();
    let all = e.check_idle_at(t0).await.unwrap();
    assert_eq!(reading(status(&all, &e, "tv"), "reported"), ("in use".into(), true));
    assert!(player("idle").await.unwrap().status().is_success());
    let all = e.check_idle_at(t0 + 5 * MIN).await.unwrap();
    let s = status(&all, &e, "tv");
    assert_eq!(reading(s, "reported"), ("not in use".into(), false));
    assert_eq!(s.last_activity_at, t0);
    let all = e.check_idle_at(t0 + 11 * MIN).await.unwrap();
    let stop = status(&all, &e, "tv").stop_requested.expect("not in use for 11 minutes: stop requested");
    let r = tokio::time::timeout(Duration::from_secs(60), e.wait(stop)).await.unwrap().unwrap();
    assert_eq!(r.status, CascadeStatus::Completed, "{r:?}");
    let state: serde_json::Value = client
        .get(format!("{}/api/states/switch.nas_plug", ha.url))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(state["state"], "off", "the switch was turned off through Home Assistant");

    // Garbage where the watts should be: an error with its code, not a figure.
    let sensor = e.connectors().get("plugin:http-switch").unwrap();
    assert!(player("on").await.unwrap().status().is_success());
    let mut t = target(&e, "tv");
    t.config.settings.insert("watts_pointer".into(), wakehub_core::model::ConfigValue::String("/state".into()));
    let err = sensor.load(&t).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::PlatformError, "{err}");
    assert!(err.message.contains("not a number of watts"), "{err}");

    // A plugin built for 0.2.0 keeps switching, and measures nothing: said so.
    let old = e.connectors().get("plugin:classic").unwrap();
    assert_eq!(old.status(&target(&e, "old-plug")).await.unwrap(), PowerState::Off);
    let err = old.load(&target(&e, "old-plug")).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::Unsupported, "{err}");
    assert!(err.message.contains("built for WIT 0.2.0"), "{err}");
}
