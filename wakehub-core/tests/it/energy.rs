//! The energy report from a real journal: a simulated machine seen on, stopped by a cascade,
//! then off; its time on and off read from the status changes (before its first sighting:
//! not counted), its energy from its draw, the saving against always on.

use std::time::Duration;

use wakehub_core::connector::Registry;
use wakehub_core::energy::{by_tag, energy};
use wakehub_core::engine::{Engine, EngineConfig};
use wakehub_core::model::{Action, Origin};
use wakehub_core::secrets::MasterKey;

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

#[tokio::test]
async fn time_on_and_off_come_from_the_journal() {
    let text = "[[node]]\nname = \"pve\"\nkind = \"physical\"\ntags = [\"lab\"]\nwatts = { on = 100.0, off = 10.0 }\n\
                [node.connector]\ntype = \"sim\"\ninitially = \"on\"\n\n\
                [[node]]\nname = \"switch\"\nkind = \"physical\"\n[node.connector]\ntype = \"sim\"\ninitially = \"on\"\n";
    let store = crate::support::store(MasterKey::generate());
    store.import(&crate::support::parse(text), Origin::Operator).unwrap();
    let e = Engine::new(store, Registry::builtin(), EngineConfig::default()).unwrap();
    let t0 = now();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let t = e.store().topology().unwrap();
    e.observe(&t).await;
    let seen_on = now();
    tokio::time::sleep(Duration::from_millis(400)).await;
    let pve = t.by_name("pve").unwrap().id;
    let stop = e.request(pve, Action::Stop).await.unwrap();
    e.wait(stop.id).await.unwrap();
    let stopped = now();
    tokio::time::sleep(Duration::from_millis(400)).await;
    let until = now();

    let report = energy(e.store(), t0, until + 60_000).unwrap();
    assert_eq!(report.len(), 1, "only the node with a draw: {report:?}");
    let r = &report[0];
    // Before its first sighting: not counted; then on until the stop, then off until now.
    let t = r.tally;
    assert!((150..=seen_on - t0 + 50).contains(&t.unknown_ms), "{t:?}");
    assert!((350..=stopped - seen_on + 50).contains(&t.on_ms), "{t:?}");
    assert!((350..=now() - stopped + 50).contains(&t.off_ms), "{t:?}");
    let hours = |ms: i64| ms as f64 / 3.6e6;
    assert!((r.used_kwh - (hours(t.on_ms) * 100.0 + hours(t.off_ms) * 10.0) / 1000.0).abs() < 1e-12);
    assert!((r.always_on_kwh - hours(t.on_ms + t.off_ms) * 100.0 / 1000.0).abs() < 1e-12);
    assert!(r.saved_kwh() > 0.0 && r.saved_kwh() < r.always_on_kwh);
    let tags = by_tag(&report);
    assert_eq!(tags["lab"], (r.used_kwh, r.always_on_kwh));
    // A period before anything was seen: nothing counted, nothing saved.
    let early = energy(e.store(), t0 - 10_000, t0).unwrap();
    assert_eq!((early[0].tally.on_ms, early[0].tally.off_ms, early[0].saved_kwh()), (0, 0, 0.0));
}
