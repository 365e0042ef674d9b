//! Power schedules through the engine on simulated nodes, with a clock the test controls:
//! what a schedule may be, a start and a stop that fire at their time (read in their time
//! zone), a missed time fired once when recent and skipped when old, and a keep-on window.

use std::time::Duration;

use wakehub_core::connector::{PowerState, Registry};
use wakehub_core::engine::{Engine, EngineConfig};
use wakehub_core::model::Origin;
use wakehub_core::secrets::MasterKey;
use wakehub_core::store::{PowerSchedule, ScheduleAction};

const HOUR: i64 = 3_600_000;

fn lab() -> Engine {
    let node = |name: &str, tags: &str| {
        format!("[[node]]\nname = \"{name}\"\nkind = \"physical\"\ntags = [{tags}]\n[node.connector]\ntype = \"sim\"\n")
    };
    let text = format!("{}{}{}", node("tv", "\"media\""), node("jellyfin", "\"media\""), node("nas", ""));
    let store = crate::support::store(MasterKey::generate());
    store.import(&crate::support::parse(&text), Origin::Operator).unwrap();
    Engine::new(store, Registry::builtin(), EngineConfig::default()).unwrap()
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

async fn states(e: &Engine) -> Vec<(String, PowerState)> {
    let t = e.store().topology().unwrap();
    let seen = e.observe(&t).await;
    let mut out: Vec<(String, PowerState)> = seen.iter().map(|(id, s)| (t.name_of(*id), *s)).collect();
    out.sort();
    out
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

#[tokio::test]
async fn schedules_are_checked_when_written() {
    let e = lab();
    let bad = |s: PowerSchedule, needle: &'static str| {
        let e = e.clone();
        async move {
            let err = e.save_power_schedule(s, "ada").await.unwrap_err();
            assert_eq!(err.code().as_str(), "VALIDATION", "{err}");
            assert!(err.to_string().contains(needle), "{err}");
        }
    };
    let start = |nodes: &[&str], tags: &[&str]| {
        PowerSchedule::new(
            "s",
            ScheduleAction::Start,
            "0 7 * * *",
            nodes.iter().map(|n| n.to_string()).collect(),
            tags.iter().map(|n| n.to_string()).collect(),
        )
    };
    bad(start(&[], &[]), "names nodes or tags").await;
    bad(start(&["ghost"], &[]), "unknown node(s): ghost").await;
    bad(start(&[], &["nothing"]), "no node carries").await;
    bad(PowerSchedule::new("s", ScheduleAction::Start, "61 * * * *", vec!["tv".into()], vec![]), "schedule `61").await;
    bad(start(&["tv"], &[]).in_zone(Some("Mars/Olympus".into())), "time zone").await;
    bad(PowerSchedule::new("s", ScheduleAction::KeepOn, "0 20 * * *", vec!["tv".into()], vec![]), "1 minute to 7 days")
        .await;
    bad(start(&["tv"], &[]).keeping_for(Some(3600)), "only a keep-on").await;
    bad(
        PowerSchedule::new("bad name!", ScheduleAction::Start, "0 7 * * *", vec!["tv".into()], vec![]),
        "schedule's name",
    )
    .await;
    assert!(e.store().power_schedules().unwrap().is_empty(), "nothing was written");
}

#[tokio::test]
async fn schedules_fire_at_their_time_once_and_skip_an_old_miss() {
    let e = lab();
    let t0 = now_ms();
    // Every day at 07:00 in Paris; every day at 23:00 UTC.
    let morning = PowerSchedule::new("morning", ScheduleAction::Start, "0 7 * * *", vec![], vec!["media".into()])
        .in_zone(Some("Europe/Paris".into()));
    let morning = e.save_power_schedule(morning, "ada").await.unwrap();
    let night = PowerSchedule::new("night", ScheduleAction::Stop, "0 23 * * *", vec![], vec!["media".into()]);
    e.save_power_schedule(night, "ada").await.unwrap();
    assert_eq!(morning.updated_by, "ada");

    // Its next times, visible: 07:00 Paris is 06:00 or 05:00 UTC.
    let next = Engine::next_runs(&morning, t0, 3);
    assert_eq!(next.len(), 3);
    assert!(next.windows(2).all(|w| w[1] - w[0] == 24 * HOUR || (w[1] - w[0] - 24 * HOUR).abs() == HOUR));
    let utc_hour = (next[0] / HOUR) % 24;
    assert!([5, 6].contains(&utc_hour), "07:00 in Paris is {utc_hour}:00 UTC");

    // Nothing is due before its time. (The night's 23:00 UTC may come first, depending on
    // when the test runs: only the morning is looked at here.)
    let fired_by = |fired: Vec<(String, String)>, name: &str| fired.into_iter().filter(|(n, _)| n == name).count();
    assert_eq!(fired_by(e.fire_due_power_schedules_at(next[0] - 1).await.unwrap(), "morning"), 0);
    // At its time (a minute late): the media nodes start, by `schedule:morning`; once.
    let fired = e.fire_due_power_schedules_at(next[0] + 60_000).await.unwrap();
    assert!(fired.contains(&("morning".to_owned(), "start requested for 2 nodes".to_owned())), "{fired:?}");
    settle(&e).await;
    let on = states(&e).await;
    assert!(on.contains(&("tv".into(), PowerState::On)) && on.contains(&("jellyfin".into(), PowerState::On)), "{on:?}");
    assert!(on.contains(&("nas".into(), PowerState::Off)), "{on:?}");
    let cascades = e.store().cascades(&wakehub_core::store::CascadeFilter::default()).unwrap();
    let starts = cascades.iter().filter(|c| c.action == wakehub_core::model::Action::Start);
    assert!(
        starts.clone().count() == 2 && starts.clone().all(|c| c.requested_by.as_deref() == Some("schedule:morning"))
    );
    assert_eq!(
        fired_by(e.fire_due_power_schedules_at(next[0] + 120_000).await.unwrap(), "morning"),
        0,
        "once per time"
    );

    // The night stop, read in UTC.
    let night = e.store().power_schedule("night").unwrap().unwrap();
    let at = Engine::next_runs(&night, next[0], 1)[0];
    assert_eq!((at / HOUR) % 24, 23);
    let fired = e.fire_due_power_schedules_at(at + 1000).await.unwrap();
    assert_eq!(fired, [("night".to_owned(), "stop requested for 2 nodes".to_owned())]);
    settle(&e).await;
    assert!(states(&e).await.iter().all(|(_, s)| *s == PowerState::Off));

    // WakeHub was down for days: the morning's latest time is 3 hours old — skipped, said,
    // and nothing starts; the night's, 30 minutes old, fires once (not once per missed day).
    let later = Engine::next_runs(&morning, at + 3 * 24 * HOUR, 1)[0] + 3 * HOUR;
    let night_time = Engine::next_runs(&night, later - 24 * HOUR, 1)[0];
    let fired = e.fire_due_power_schedules_at(night_time + HOUR / 2).await.unwrap();
    let morning_outcome = fired.iter().find(|(n, _)| n == "morning").map(|(_, o)| o.clone());
    assert_eq!(morning_outcome.as_deref(), Some("skipped: its time passed while WakeHub was down"), "{fired:?}");
    let night_outcome = fired.iter().find(|(n, _)| n == "night").map(|(_, o)| o.clone());
    assert_eq!(night_outcome.as_deref(), Some("stop requested for 2 nodes"), "{fired:?}");
    settle(&e).await;
    assert!(states(&e).await.iter().all(|(_, s)| *s == PowerState::Off));
    let m = e.store().power_schedule("morning").unwrap().unwrap();
    assert!(m.last_fired.as_ref().unwrap().1.starts_with("skipped"));

    // A disabled schedule does not fire.
    let off = m.clone().enabled(false);
    e.save_power_schedule(off, "ada").await.unwrap();
    assert!(e.fire_due_power_schedules_at(later + 30 * 24 * HOUR).await.unwrap().iter().all(|(n, _)| n != "morning"));
}

#[tokio::test]
async fn a_keep_on_schedule_starts_its_nodes_and_holds_them_for_its_window() {
    let e = lab();
    let movie = PowerSchedule::new("movie-night", ScheduleAction::KeepOn, "0 20 * * FRI", vec!["tv".into()], vec![])
        .keeping_for(Some(3 * 3600));
    let movie = e.save_power_schedule(movie, "ada").await.unwrap();
    let friday = Engine::next_runs(&movie, now_ms(), 1)[0];
    let tv = e.store().topology().unwrap().by_name("tv").unwrap().id;
    assert_eq!(e.kept_on(tv, friday).unwrap(), None);
    let fired = e.fire_due_power_schedules_at(friday + 5 * 60_000).await.unwrap();
    assert_eq!(fired, [("movie-night".to_owned(), "start requested for 1 node".to_owned())]);
    settle(&e).await;
    assert!(states(&e).await.contains(&("tv".into(), PowerState::On)));
    // Held from its time for three hours, whenever it fired.
    assert_eq!(e.kept_on(tv, friday + HOUR).unwrap(), Some(("movie-night".to_owned(), friday + 3 * HOUR)));
    assert_eq!(e.kept_on(tv, friday + 3 * HOUR + 1).unwrap(), None);
    let nas = e.store().topology().unwrap().by_name("nas").unwrap().id;
    assert_eq!(e.kept_on(nas, friday + HOUR).unwrap(), None, "only what it names");
}
