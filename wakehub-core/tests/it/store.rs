//! The SQLite store: migrations (against a committed fixture of every schema version),
//! transactional import, encrypted credentials.

use crate::support::StoreToml as _;
use std::path::{Path, PathBuf};
use wakehub_core::model::ErrorCode;

use wakehub_core::model::{ConfigValue, Kind, SecretRef};
use wakehub_core::secrets::MasterKey;
use wakehub_core::store::{SCHEMA_VERSION, Store, StoreError};
use wakehub_core::topology_file::ParseOptions;

use crate::support::spec;

/// The key the fixtures were written with (test data only).
const FIXTURE_KEY: &str = "d2FrZWh1Yi10ZXN0LWZpeHR1cmUta2V5LTMyYnl0ZXM=";
const HOMELAB: &str = include_str!("../../../examples/homelab.toml");

fn fixture(version: i64) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/store-v{version}.db"))
}

fn key() -> MasterKey {
    MasterKey::from_base64(FIXTURE_KEY, "test").unwrap()
}

fn with_secret() -> String {
    HOMELAB.replacen(
        "type = \"sim\"\ninitially = \"off\"",
        "type = \"sim\"\nssh_password = \"hunter2\"\ninitially = \"off\"",
        1,
    )
}

/// `WAKEHUB_WRITE_FIXTURE=1 cargo test` writes the fixture of the current schema version
/// (do it once per new version, then commit it and never change it).
#[test]
fn databases_of_every_released_version_open_and_migrate() {
    if std::env::var_os("WAKEHUB_WRITE_FIXTURE").is_some() {
        let path = fixture(SCHEMA_VERSION);
        let _ = std::fs::remove_file(&path);
        let store = Store::open(&path, key()).unwrap();
        store.import_toml(&with_secret(), &ParseOptions::operator()).unwrap();
        drop(store);
    }
    for version in 1..=SCHEMA_VERSION {
        let src = fixture(version);
        assert!(src.exists(), "missing fixture {} — every schema version keeps one", src.display());
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("copy.db");
        std::fs::copy(&src, &db).unwrap();
        let store = Store::open(&db, key()).unwrap();
        assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
        let t = store.topology().unwrap();
        assert_eq!(t.len(), 11, "fixture v{version}");
        assert_eq!(t.links().count(), 3);
        let m1 = t.by_name("machine1").unwrap();
        let ConfigValue::Secret(secret) = &m1.spec.connector.settings["ssh_password"] else { panic!("secret") };
        assert!(matches!(secret, SecretRef::Stored(_)));
        assert_eq!(store.resolve_secret(m1.id, "ssh_password", secret).unwrap().expose(), "hunter2");
        // A wrong key is refused at open, not at first use.
        drop(store);
        assert!(matches!(Store::open(&db, MasterKey::generate()), Err(StoreError::WrongMasterKey)));
    }
}

#[test]
fn a_database_from_a_newer_wakehub_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("new.db");
    drop(Store::open(&db, key()).unwrap());
    let conn = rusqlite_free_bump(&db);
    assert!(conn.is_ok());
    let err = Store::open(&db, key()).unwrap_err();
    assert_eq!(err.code().as_str(), "STORE_TOO_NEW");
}

/// Bumps `user_version` with the sqlite3 CLI-free path: reopen through the store's own file
/// by writing the header field (offset 60, big-endian) directly.
fn rusqlite_free_bump(db: &Path) -> std::io::Result<()> {
    use std::io::{Read, Seek, SeekFrom, Write};
    let mut f = std::fs::OpenOptions::new().read(true).write(true).open(db)?;
    let mut header = [0u8; 100];
    f.read_exact(&mut header)?;
    f.seek(SeekFrom::Start(60))?;
    f.write_all(&((SCHEMA_VERSION + 1) as u32).to_be_bytes())?;
    Ok(())
}

#[test]
fn credentials_are_encrypted_at_rest_and_never_exported() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("w.db");
    let store = Store::open(&db, key()).unwrap();
    store.import_toml(&with_secret(), &ParseOptions::operator()).unwrap();
    let exported = store.export_toml().unwrap();
    assert!(!exported.contains("hunter2"));
    assert!(exported.contains("ssh_password = \"credential:"), "{exported}");
    // Re-importing the export keeps the same credential.
    let summary = store.import_toml(&exported, &ParseOptions::operator()).unwrap();
    assert_eq!(summary.unchanged.len(), 11, "{summary:?}");
    let m1 = store.topology().unwrap().by_name("machine1").unwrap().clone();
    let ConfigValue::Secret(secret) = &m1.spec.connector.settings["ssh_password"] else { panic!() };
    assert_eq!(store.resolve_secret(m1.id, "ssh_password", secret).unwrap().expose(), "hunter2");
    drop(store);
    for file in std::fs::read_dir(dir.path()).unwrap() {
        let bytes = std::fs::read(file.unwrap().path()).unwrap();
        assert!(!bytes.windows(7).any(|w| w == b"hunter2"), "plaintext secret on disk");
    }
    // A reference to a credential that does not exist is refused.
    let store = Store::open(&db, key()).unwrap();
    let bad = exported.replacen("credential:", "credential:999", 1);
    assert_eq!(store.import_toml(&bad, &ParseOptions::operator()).unwrap_err().code(), ErrorCode::SecretUnavailable);
}

#[test]
fn import_is_all_or_nothing_and_keeps_ids() {
    let store = crate::support::store(key());
    let summary = store.import_toml(HOMELAB, &ParseOptions::operator()).unwrap();
    assert_eq!(summary.added.len(), 11);
    let before = store.topology().unwrap();
    let jelly = before.by_name("lxc-jellyfin").unwrap().id;

    // A file with an error changes nothing.
    let broken =
        format!("{HOMELAB}\n[[node]]\nname = \"nas\"\nkind = \"physical\"\n[node.connector]\ntype = \"sim\"\n");
    let err = store.import_toml(&broken, &ParseOptions::operator()).unwrap_err();
    assert_eq!(err.code(), ErrorCode::Validation);
    assert_eq!(store.export_toml().unwrap(), wakehub_core::topology_file::export(&before).unwrap());

    // Removing a node and changing another keeps the others' ids.
    let changed = HOMELAB
        .replace(
            "name = \"lxc-cloudflared\"\nkind = \"lxc\"",
            "name = \"lxc-cloudflared\"\nkind = \"lxc\"\npinned = true",
        )
        .replace("depends_on = [\"lxc-jellyfin\"]\n", "");
    let summary = store.import_toml(&changed, &ParseOptions::operator()).unwrap();
    assert_eq!(summary.updated, ["sandbox", "lxc-cloudflared"]);
    assert!(summary.added.is_empty() && summary.removed.is_empty());
    let after = store.topology().unwrap();
    assert_eq!(after.by_name("lxc-jellyfin").unwrap().id, jelly);
    assert_eq!(after.links().count(), 2);

    let without_ubuntu = changed.replace(
        "[[node]]\nname = \"vm-ubuntu\"\nkind = \"vm\"\nparent = \"machine1\"\n[node.connector]\ntype = \"sim\"\ninitially = \"off\"\nstart_delay_ms = 1500\nstop_delay_ms = 1000\n",
        "",
    );
    assert_ne!(without_ubuntu, changed);
    let summary = store.import_toml(&without_ubuntu, &ParseOptions::operator()).unwrap();
    assert_eq!(summary.removed, ["vm-ubuntu"]);
}

#[test]
fn single_changes_are_validated_in_the_store() {
    let store = crate::support::store(key());
    store.import_toml(HOMELAB, &ParseOptions::operator()).unwrap();
    let t = store.topology().unwrap();
    let n = |name: &str| t.by_name(name).unwrap().id;
    let err = store.add_dependency(n("nas"), n("sandbox")).unwrap_err();
    assert_eq!(err.code().as_str(), "CYCLE");
    assert_eq!(err.to_string(), "this would close a cycle: nas → sandbox → lxc-jellyfin → nas");
    store.add_dependency(n("vm-ubuntu"), n("nas")).unwrap();
    assert_eq!(store.add_dependency(n("vm-ubuntu"), n("nas")).unwrap_err().code().as_str(), "CONFLICT");
    store.remove_dependency(n("vm-ubuntu"), n("nas")).unwrap();
    assert_eq!(store.remove_node(n("machine1")).unwrap_err().code().as_str(), "CONFLICT");
    let id = store.add_node(spec("pi", Kind::Physical, &[wakehub_core::model::Capability::Docker]), None).unwrap();
    let c = store.add_node(spec("grafana", Kind::Container, &[]), Some(id)).unwrap();
    assert_eq!(
        store.add_node(spec("bad", Kind::Container, &[]), Some(n("nas"))).unwrap_err().code().as_str(),
        "VALIDATION"
    );
    store.set_parent(c, Some(n("vm-docker"))).unwrap();
    store.remove_node(id).unwrap();
    let t = store.topology().unwrap();
    assert_eq!(t.parent(c), Some(n("vm-docker")));
    // A removed node's id is never reused.
    let again = store.add_node(spec("pi2", Kind::Physical, &[]), None).unwrap();
    assert!(again.get() > id.get());
}

#[tokio::test]
async fn usable_from_async_code() {
    let store = crate::support::store(key());
    let summary = store.run(|s| s.import_toml(HOMELAB, &ParseOptions::operator())).await.unwrap();
    assert_eq!(summary.added.len(), 11);
    let len = store.run(|s| s.topology().map(|t| t.len())).await.unwrap();
    assert_eq!(len, 11);
}

#[test]
fn a_cycle_planted_in_the_database_by_hand_is_refused_at_load() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("w.db");
    let store = Store::open(&db, key()).unwrap();
    store.import_toml(HOMELAB, &ParseOptions::operator()).unwrap();
    let t = store.topology().unwrap();
    let (nas, sandbox) = (t.by_name("nas").unwrap().id, t.by_name("sandbox").unwrap().id);
    drop(store);
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute("INSERT INTO dependencies (from_id, to_id) VALUES (?1, ?2)", [nas.get(), sandbox.get()]).unwrap();
    drop(conn);
    let store = Store::open(&db, key()).unwrap();
    let err = store.topology().unwrap_err();
    assert_eq!(err.code().as_str(), "INTERNAL");
    assert!(err.to_string().contains("cycle"), "{err}");
    assert!(err.to_string().contains("nas") && err.to_string().contains("sandbox"), "{err}");
}

/// Group commit: writes share one transaction; a guarded write that fails is rolled back
/// alone, an unguarded one that fails takes its whole group with it.
#[test]
fn journal_groups_commit_together_and_a_failed_write_is_rolled_back() {
    use wakehub_core::events::EventKind;
    use wakehub_core::model::{NodeId, PowerState, Refusal};
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("j.db"), MasterKey::generate()).unwrap();
    let seen = |name: &str| EventKind::StatusChange {
        node: NodeId::new(1),
        name: name.into(),
        kind: "physical".into(),
        state: PowerState::On,
    };
    // (name, guarded, fails after emitting)
    let mut group = vec![("a", true, false), ("b", true, true), ("c", false, false), ("d", true, false)];
    let results = store
        .journal_each(
            &mut group,
            |(_, guarded, _)| *guarded,
            |(name, _, fails), tx| {
                tx.emit(seen(name));
                if *fails { Err(Refusal::invalid("refused after writing").into()) } else { Ok(()) }
            },
        )
        .unwrap();
    let names = |events: &[wakehub_core::events::Event]| -> Vec<String> {
        events
            .iter()
            .map(|e| match &e.kind {
                EventKind::StatusChange { name, .. } => name.clone(),
                other => panic!("unexpected {other:?}"),
            })
            .collect()
    };
    assert_eq!(results.len(), 4);
    assert!(matches!(&results[1], Err(StoreError::Refused(r)) if r.code == ErrorCode::Validation));
    let committed: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).flatten().cloned().collect();
    assert_eq!(names(&committed), ["a", "c", "d"]);
    let stored = store.events_after(None, None, 100).unwrap();
    assert_eq!(names(&stored), ["a", "c", "d"], "the refused write left nothing behind");
    assert_eq!(stored.iter().map(|e| e.id).collect::<Vec<_>>(), committed.iter().map(|e| e.id).collect::<Vec<_>>());
    assert!(stored.windows(2).all(|w| w[0].id < w[1].id));

    // An unguarded write that fails: nothing of its group is written.
    let mut group = vec![("e", true, false), ("f", false, true)];
    let failed = store.journal_each(
        &mut group,
        |(_, guarded, _)| *guarded,
        |(name, _, fails), tx| {
            tx.emit(seen(name));
            if *fails { Err(Refusal::invalid("the database failed").into()) } else { Ok(()) }
        },
    );
    assert!(failed.is_err());
    assert_eq!(names(&store.events_after(None, None, 100).unwrap()), ["a", "c", "d"]);
}

#[test]
fn a_lab_is_copied_whole_into_an_empty_store_and_only_an_empty_one() {
    use wakehub_core::model::{Role, Scope};
    let dir = tempfile::tempdir().unwrap();
    let source = Store::open(&dir.path().join("lab.db"), key()).unwrap();
    source.import_toml(&with_secret(), &ParseOptions::operator()).unwrap();
    let (_, token) = source.create_token("ci", Role::Operator, &Scope::All, None).unwrap();
    source.create_user("alice", "correct horse battery", Role::Admin, &Scope::All).unwrap();
    source.set_app_value("colour", "green").unwrap();

    // Into SQLite, or PostgreSQL when the suite runs there.
    let target = crate::support::store(key());
    let copied = source.copy_into(&target).unwrap();
    // 11 nodes, 3 links, 1 credential, 1 token, 1 user, 1 application value (the key
    // check is the target's own).
    assert_eq!(copied, 18);
    assert_eq!(target.export_toml().unwrap(), source.export_toml().unwrap());
    assert_eq!(
        target.topology().unwrap().by_name("machine1").map(|n| n.id),
        source.topology().unwrap().by_name("machine1").map(|n| n.id)
    );
    let m1 = target.topology().unwrap().by_name("machine1").unwrap().clone();
    let ConfigValue::Secret(secret) = &m1.spec.connector.settings["ssh_password"] else { panic!("secret") };
    assert_eq!(target.resolve_secret(m1.id, "ssh_password", secret).unwrap().expose(), "hunter2");
    assert!(target.authenticate(token.expose()).unwrap().is_some(), "the token works on the copy");
    assert_eq!(target.users().unwrap().iter().map(|u| u.name.as_str()).collect::<Vec<_>>(), ["alice"]);
    assert_eq!(target.app_value("colour").unwrap().as_deref(), Some("green"));
    // New rows get ids past the copied ones.
    let max = target.topology().unwrap().nodes().map(|n| n.id.get()).max().unwrap();
    let added = target.add_node(crate::support::spec("late", Kind::Physical, &[]), None).unwrap();
    assert!(added.get() > max, "{added:?} after {max}");
    // Never over a lab.
    assert_eq!(source.copy_into(&target).unwrap_err().code(), ErrorCode::Conflict);
}

#[test]
fn one_instance_holds_the_lease_until_it_runs_out_or_is_given_up() {
    let store = crate::support::store(key());
    assert_eq!(store.claim_lease("a", 60_000).unwrap(), Ok(()));
    let (who, until) = store.claim_lease("b", 60_000).unwrap().unwrap_err();
    assert_eq!(who, "a");
    assert!(until > wakehub_core::store::AUTH_CACHE_TTL.as_millis() as i64);
    assert_eq!(store.claim_lease("a", 60_000).unwrap(), Ok(()), "renewed by its holder");
    store.release_lease("b").unwrap();
    assert!(store.claim_lease("b", 60_000).unwrap().is_err(), "only its holder gives it up");
    store.release_lease("a").unwrap();
    assert_eq!(store.claim_lease("b", -1).unwrap(), Ok(()));
    assert_eq!(store.claim_lease("a", 60_000).unwrap(), Ok(()), "a lease that ran out is free");
}
