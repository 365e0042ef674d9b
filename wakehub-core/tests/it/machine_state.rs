//! The machine-state cache is derived, never the truth: after any sequence of refreshes
//! (answered, asleep, failed), the cache written as they were recorded equals the state
//! rebuilt from the refreshes and snapshots alone. And messages merge across refreshes.

use crate::support::StoreToml as _;
use proptest::prelude::*;
use wakehub_core::machine::{Message, Severity, Snapshot, Upgrade};
use wakehub_core::model::{ErrorCode, NodeId};
use wakehub_core::secrets::MasterKey;
use wakehub_core::store::{RefreshOutcome, RefreshResult, Store};
use wakehub_core::topology_file::ParseOptions;

fn store() -> (Store, NodeId) {
    let store = crate::support::store(MasterKey::generate());
    store
        .import_toml(
            "[[node]]\nname = \"nas\"\nkind = \"physical\"\n[node.connector]\ntype = \"sim\"\n",
            &ParseOptions::operator(),
        )
        .unwrap();
    let id = store.topology().unwrap().by_name("nas").unwrap().id;
    (store, id)
}

#[derive(Debug, Clone)]
enum Step {
    Answered {
        updates: u8,
        security: u8,
        reboot: bool,
        full_disk: bool,
    },
    Asleep,
    Failed,
    /// An action queued, and claimed if nothing runs.
    Begin,
    /// The running action (if any) ends.
    End {
        ok: bool,
    },
    /// WakeHub restarts: what ran is reclaimed.
    Crash,
}

fn snapshot(updates: u8, security: u8, reboot: bool, full_disk: bool) -> Snapshot {
    let mut s = Snapshot::default();
    let mut apt = wakehub_core::machine::Apt::default();
    apt.lists_refreshed = true;
    for i in 0..updates {
        let mut u = Upgrade::default();
        u.name = format!("pkg{i}");
        u.installed = "1.0".into();
        u.candidate = "1.1".into();
        u.security = i < security;
        apt.upgrades.push(u);
    }
    s.apt = Some(apt);
    s.reboot.required = reboot;
    if full_disk {
        s.messages.push(
            serde_json::from_value::<Message>(serde_json::json!({
                "source": "disk", "category": "threshold", "severity": "error", "subject": "/", "text": "/ is 97% full"
            }))
            .unwrap(),
        );
    }
    s
}

fn record(store: &Store, node: NodeId, at: i64, step: &Step) {
    use wakehub_core::store::{ExecutionStatus, Finished};
    let result = match step {
        Step::Begin => {
            store
                .journal(|tx| {
                    tx.queue_execution(node, "nas", "upgrade", "manual", "test", at)?;
                    tx.claim_execution(node, "nas", at, at + 60_000)
                })
                .unwrap();
            return;
        }
        Step::End { ok } => {
            if let Some(e) = store.running_execution(node).unwrap() {
                let status = if *ok { ExecutionStatus::Succeeded } else { ExecutionStatus::Failed };
                store.journal(|tx| tx.finish_execution(e.id, "nas", at, Finished::new(status, "r".into()))).unwrap();
            }
            return;
        }
        Step::Crash => {
            store.journal(|tx| tx.reclaim_executions(i64::MAX)).unwrap();
            return;
        }
        Step::Answered { updates, security, reboot, full_disk } => {
            RefreshResult::Answered(Box::new(snapshot(*updates, *security.min(updates), *reboot, *full_disk)))
        }
        Step::Asleep => RefreshResult::Asleep,
        Step::Failed => RefreshResult::Failed(ErrorCode::Unreachable, "nas: cannot connect".into()),
    };
    store.journal(|tx| tx.record_refresh(node, "nas", at, at + 5, result, "test")).unwrap();
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (0u8..6, 0u8..6, any::<bool>(), any::<bool>())
            .prop_map(|(updates, security, reboot, full_disk)| Step::Answered { updates, security, reboot, full_disk }),
        Just(Step::Asleep),
        Just(Step::Failed),
        Just(Step::Begin),
        any::<bool>().prop_map(|ok| Step::End { ok }),
        Just(Step::Crash),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn the_cache_always_equals_the_rebuild(steps in proptest::collection::vec(step(), 1..12)) {
        let (store, node) = store();
        let mut last_answered = None;
        let mut last_outcome = None;
        let mut running = false;
        for (i, s) in steps.iter().enumerate() {
            record(&store, node, 1_000 * (i as i64 + 1), s);
            let Some(cached) = store.machine_state(node).unwrap() else {
                // Nothing recorded yet that has a state (an `End` with nothing running).
                let nothing_yet = matches!(s, Step::End { .. } | Step::Crash);
                prop_assert!(nothing_yet, "no state after {:?}", s);
                continue;
            };
            let rebuilt = store.rebuild_machine_state(node).unwrap();
            prop_assert_eq!(&cached, &rebuilt);
            match s {
                Step::Answered { updates, security, reboot, .. } => {
                    last_answered = Some((*updates as u32, (*security).min(*updates) as u32, *reboot));
                    last_outcome = Some(RefreshOutcome::Ok);
                }
                Step::Asleep => last_outcome = Some(RefreshOutcome::Asleep),
                Step::Failed => last_outcome = Some(RefreshOutcome::Failed),
                Step::Begin => running = true,
                Step::End { .. } | Step::Crash => running = false,
            }
            // What it says follows the rule: the latest attempt's outcome, the latest
            // snapshot's content, the action running.
            prop_assert_eq!(cached.last_refresh.as_ref().map(|r| r.outcome), last_outcome);
            prop_assert_eq!(cached.asleep, last_outcome == Some(RefreshOutcome::Asleep));
            prop_assert_eq!(cached.running.is_some(), running);
            match last_answered {
                Some((updates, security, reboot)) => {
                    prop_assert_eq!((cached.updates, cached.security_updates, cached.reboot_required), (updates, security, reboot));
                }
                None => prop_assert!(cached.snapshot.is_none()),
            }
        }
    }
}

#[test]
fn messages_merge_across_refreshes_and_are_acknowledged_by_a_person() {
    let (store, node) = store();
    let full = Step::Answered { updates: 1, security: 0, reboot: false, full_disk: true };
    record(&store, node, 1_000, &full);
    record(&store, node, 2_000, &full);
    let messages = store.machine_messages(node, false).unwrap();
    assert_eq!(messages.len(), 1, "the same message twice is one message");
    let m = &messages[0];
    assert_eq!((m.first_seen, m.last_seen, m.times_seen), (1_005, 2_005, 2));
    assert_eq!((m.message.severity, m.message.subject.as_deref()), (Severity::Error, Some("/")));
    assert!(store.acknowledge_message(node, m.id, "alice").unwrap());
    assert!(!store.acknowledge_message(node, m.id, "bob").unwrap(), "once");
    assert!(store.machine_messages(node, false).unwrap().is_empty());
    // Seen again: still acknowledged (by alice), its last sighting updated.
    record(&store, node, 3_000, &full);
    let all = store.machine_messages(node, true).unwrap();
    assert_eq!(all[0].acknowledged.as_ref().map(|(_, by)| by.as_str()), Some("alice"));
    assert_eq!(all[0].last_seen, 3_005);
    // The journal tells the story: one `machine-refreshed` event per refresh.
    let state = store.machine_state(node).unwrap().unwrap();
    assert_eq!(state.summary(), "1 update, 1 disk warning");
}

#[test]
fn action_logs_are_kept_by_their_retention_policy_and_swept_after() {
    use wakehub_core::store::{ExecutionStatus, Finished};
    let (store, node) = store();
    let day = 86_400_000;
    let mut ids = Vec::new();
    for ok in [true, false, true] {
        let e = store
            .journal(|tx| {
                tx.queue_execution(node, "nas", "upgrade", "manual", "test", 0)?;
                tx.claim_execution(node, "nas", 0, 60_000)
            })
            .unwrap()
            .0
            .unwrap();
        let mut f = Finished::new(if ok { ExecutionStatus::Succeeded } else { ExecutionStatus::Failed }, "r".into());
        f.log = b"Unpacking demo (1.1) over (1.0) ...".to_vec();
        let e = store.journal(|tx| tx.finish_execution(e.id, "nas", 0, f)).unwrap().0;
        ids.push(e.artifact.unwrap());
    }
    assert!(store.set_artifact_retention(ids[2], "pinned").unwrap());
    assert!(store.set_artifact_retention(ids[2], "forever").is_err(), "an unknown policy is refused");
    let (a, content) = store.artifact(ids[0]).unwrap().unwrap();
    assert_eq!((a.bytes, a.retention.as_str(), a.expires_at), (35, "default", Some(30 * day)));
    assert_eq!(a.sha256.len(), 64);
    assert!(content.is_some());
    // A month later: the default one is swept; the failed one (90 days) and the pinned one stay.
    assert_eq!(store.sweep_artifacts(31 * day).unwrap(), 1);
    let (a, content) = store.artifact(ids[0]).unwrap().unwrap();
    assert_eq!((content, a.deleted.map(|(_, why)| why)), (None, Some("expired (default)".to_owned())));
    assert!(store.artifact(ids[1]).unwrap().unwrap().1.is_some());
    assert_eq!(store.sweep_artifacts(365 * day).unwrap(), 1);
    assert!(store.artifact(ids[2]).unwrap().unwrap().1.is_some(), "pinned stays");
}
