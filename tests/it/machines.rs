//! Machine state against a real Debian 12 machine (`DebianMachine`: a `mmdebstrap`
//! userland with its own sshd and a local apt repository): a refresh over SSH reads what it
//! runs and needs; an asleep machine keeps its last known state; a changed host key, a
//! wrong password and a held apt lock are each reported for what they are.

use std::process::Stdio;

use wakehub_core::engine::RefreshOptions;
use wakehub_core::store::RefreshOutcome;
use wakehub_tests::DebianMachine;

use crate::lab::engine_with_builtins as engine;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_reads_a_real_debian_machine_and_keeps_what_it_knew_while_it_sleeps() {
    let mut machine = DebianMachine::start();
    let e = engine(&machine.node("deb", ""));
    let r = e.refresh_machine("deb", RefreshOptions::default().with_hardware(true), "alice").await.unwrap();
    assert_eq!(r.refresh.outcome, RefreshOutcome::Ok, "{:?}", r.refresh);
    let snap = e.store().latest_snapshot(r.refresh.node).unwrap().unwrap().snapshot;
    let os = snap.os.as_ref().unwrap();
    assert_eq!((os.id.as_str(), os.codename.as_deref()), ("debian", Some("bookworm")));
    assert!(snap.privileged);
    let apt = snap.apt.as_ref().unwrap();
    // The lists were refreshed from the local repository (the broken source is reported).
    assert!(apt.lists_refreshed);
    assert!(apt.source_errors.iter().any(|s| s.contains("/srv/missing")), "{:?}", apt.source_errors);
    let security: Vec<&str> = apt.upgrades.iter().filter(|u| u.security).map(|u| u.name.as_str()).collect();
    assert_eq!(security, ["demo-libssl"]);
    let kept: Vec<&str> = apt.upgrades.iter().filter(|u| u.kept_back && !u.held).map(|u| u.name.as_str()).collect();
    assert_eq!(kept, ["demo-app"]);
    let held = apt.upgrades.iter().find(|u| u.held).unwrap();
    assert_eq!((held.name.as_str(), held.candidate.as_str()), ("demo-held", "1.1"));
    assert!(!snap.reboot.required);
    assert!(snap.hardware.as_ref().is_some_and(|h| h.cpu_threads >= 1));
    // The derived state, and the journal's account.
    let state = &r.state;
    assert_eq!((state.updates, state.security_updates, state.kept_back, state.held), (5, 1, 1, 1));
    assert_eq!(state.os.as_deref(), Some("Debian GNU/Linux 12 (bookworm)"));
    assert!(state.apt_problems, "the broken source");
    let messages = e.store().machine_messages(r.refresh.node, false).unwrap();
    assert!(messages.iter().any(|m| m.message.text.contains("/srv/missing")), "{messages:?}");

    // A package whose postinst asks for a reboot: the flag and its package are read.
    machine.run_ok("apt-get install -y -q demo-kernel >/dev/null 2>&1");
    let r = e.refresh_machine("deb", RefreshOptions::default(), "alice").await.unwrap();
    assert!(r.state.reboot_required, "{:?}", r.state);
    assert_eq!(r.state.reboot_reasons, ["/var/run/reboot-required: demo-kernel"]);
    assert_eq!(r.state.updates, 4);
    assert_eq!(r.state.summary(), "4 updates (1 security), reboot required");

    // Off: nothing is asked; what is known stays, "last known".
    machine.power_off();
    let r = e.refresh_machine("deb", RefreshOptions::default(), "alice").await.unwrap();
    assert_eq!(r.refresh.outcome, RefreshOutcome::Asleep);
    assert!(r.state.asleep && r.state.reboot_required && r.state.updates == 4, "{:?}", r.state);
    assert_eq!(r.state.summary(), "asleep; last known, 4 updates (1 security), reboot required");

    // Every refresh is in the journal, with its actor.
    let events = e
        .store()
        .find_events(&wakehub_core::store::EventQuery {
            kinds: vec!["machine-refreshed".into()],
            limit: 100,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(events.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_host_key_a_wrong_password_and_a_held_apt_lock_are_each_reported() {
    let machine = DebianMachine::start();
    let wrong = engine(&machine.node("deb", "").replace(wakehub_tests::ROOT_PASSWORD, "not-the-password"));
    let r = wrong.refresh_machine("deb", RefreshOptions::default(), "alice").await.unwrap();
    assert_eq!(r.refresh.outcome, RefreshOutcome::Failed);
    assert_eq!(r.refresh.error_code.as_deref(), Some("AUTH_FAILED"), "{:?}", r.refresh);
    assert!(!r.refresh.error_message.as_deref().unwrap_or_default().contains("not-the-password"));
    assert_eq!(r.state.summary().split(':').next(), Some("refresh failed"));

    let e = engine(&machine.node("deb", ""));
    let r = e.refresh_machine("deb", RefreshOptions::default(), "alice").await.unwrap();
    assert_eq!(r.refresh.outcome, RefreshOutcome::Ok, "{:?}", r.refresh);

    // Another apt holds the lists' lock (a real fcntl lock, as apt takes it): the refresh
    // answers from the lists as they are and says why they were not refreshed.
    let holder = hold_lock(&machine, "/var/lib/apt/lists/lock", 60);
    let r = e.refresh_machine("deb", RefreshOptions::default(), "alice").await.unwrap();
    assert_eq!(r.refresh.outcome, RefreshOutcome::Ok);
    let snap = e.store().latest_snapshot(r.refresh.node).unwrap().unwrap().snapshot;
    let apt = snap.apt.as_ref().unwrap();
    assert!(apt.locked && !apt.lists_refreshed, "{apt:?}");
    assert_eq!(r.state.updates, 5, "still read from the lists as they are");
    assert!(snap.messages.iter().any(|m| m.text.contains("holds the lock")), "{:?}", snap.messages);
    drop(holder);

    // The host key was learned on first contact and is pinned: a new one is refused.
    machine
        .run_ok("rm /etc/ssh/ssh_host_ed25519_key* && ssh-keygen -q -t ed25519 -N '' -f /etc/ssh/ssh_host_ed25519_key");
    let mut machine = machine;
    machine.power_off();
    machine.boot();
    let r = e.refresh_machine("deb", RefreshOptions::default(), "alice").await.unwrap();
    assert_eq!(r.refresh.error_code.as_deref(), Some("HOST_KEY_MISMATCH"), "{:?}", r.refresh);
    // What was known before stays.
    assert_eq!(r.state.updates, 5);
}

/// A process inside `machine` holding an fcntl write lock on `path` (as apt and dpkg take
/// theirs) for `secs` seconds, once it has it; killed on drop.
pub(crate) fn hold_lock(machine: &DebianMachine, path: &str, secs: u32) -> Guard {
    let script = format!(
        "use Fcntl; open(my $f, '>>', '{path}') or die; my $l = pack('s s x4 q q i x4', F_WRLCK, 0, 0, 0, 0); \
         fcntl($f, F_SETLK, $l) or die \"lock: $!\"; print \"locked\\n\"; $| = 1; sleep {secs};"
    );
    let child = machine.chrooted_command("/usr/bin/perl", &["-e", &script]).stdout(Stdio::piped()).spawn().unwrap();
    let mut holder = Guard(child);
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(holder.0.stdout.take().unwrap()), &mut line).unwrap();
    assert_eq!(line.trim(), "locked");
    holder
}

/// Kills a child on drop.
pub(crate) struct Guard(std::process::Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits until execution `id` ends.
async fn finished(e: &wakehub_core::engine::Engine, id: i64) -> wakehub_core::store::ExecutionRecord {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(180);
    loop {
        let x = e.store().execution(id).unwrap().unwrap();
        if x.status.is_final() {
            return x;
        }
        assert!(std::time::Instant::now() < until, "execution:{id} did not end: {x:?}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actions_run_one_at_a_time_with_their_log_result_and_report() {
    use wakehub_core::engine::LogLine;
    use wakehub_core::store::ExecutionStatus;
    let machine = DebianMachine::start();
    let e = engine(&machine.node("deb", "hello_command = \"echo hello from $(cat /etc/debian_version)\""));

    // Queued in order, run one at a time: the operator's command, a Docker prune on a
    // machine without Docker, then the upgrade.
    let hello = e.run_action("deb", "command:hello", "manual", "alice").await.unwrap();
    let prune = e.run_action("deb", "docker-prune", "manual", "alice").await.unwrap();
    let upgrade = e.run_action("deb", "upgrade", "manual", "alice").await.unwrap();
    assert_eq!(upgrade.status, ExecutionStatus::Queued);
    // Its log can be followed while it waits.
    let (so_far, mut rx) = e.execution_log(&upgrade).await.unwrap().expect("the upgrade is queued");
    assert!(so_far.is_empty(), "{so_far:?}");
    // Free text is no action.
    let err = e.run_action("deb", "command:rm -rf /", "manual", "alice").await.unwrap_err();
    assert!(err.to_string().contains("offers no action"), "{err}");

    let hello = finished(&e, hello.id).await;
    assert_eq!(hello.status, ExecutionStatus::Succeeded, "{hello:?}");
    let (_, log) = e.store().artifact(hello.artifact.unwrap()).unwrap().unwrap();
    assert!(String::from_utf8(log.unwrap()).unwrap().starts_with("hello from 12."));
    let prune = finished(&e, prune.id).await;
    assert_eq!(
        (prune.status, prune.error_kind.as_deref()),
        (ExecutionStatus::Failed, Some("exit_status")),
        "{prune:?}"
    );

    // The upgrade's log, followed since it was queued, streamed live while it ran.
    let mut live = Vec::new();
    let end = loop {
        match rx.recv().await {
            Ok(LogLine::Line(l)) => live.push(l),
            Ok(LogLine::End(status)) => break status,
            Ok(_) => {}
            Err(e) => panic!("log stream: {e}"),
        }
    };
    let upgrade = finished(&e, upgrade.id).await;
    assert_eq!(end, upgrade.status);
    // demo-broken's preinst refuses: the upgrade fails with dpkg_error, the rest upgraded.
    assert_eq!(
        (upgrade.status, upgrade.error_kind.as_deref()),
        (ExecutionStatus::Failed, Some("dpkg_error")),
        "{upgrade:?}"
    );
    let result = upgrade.result.as_ref().unwrap();
    assert_eq!(result["failed_packages"], serde_json::json!(["demo-broken"]));
    let changed: Vec<&str> =
        result["changed"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    for p in ["demo-libssl", "demo-app", "demo-newdep", "demo-kernel", "demo-tool"] {
        assert!(changed.contains(&p), "{p} not in {changed:?}");
    }
    assert!(!changed.contains(&"demo-held"), "held stays");
    let report = upgrade.report.as_deref().unwrap();
    assert!(report.starts_with("# upgrade on deb: failed in "), "{report}");
    assert!(
        report.contains("- demo-libssl 1.0 → 1.0+deb12u1") && report.contains("dpkg failed on demo-broken"),
        "{report}"
    );
    // The raw log is kept whole, with its size and SHA-256, retention `failed`; it is what
    // streamed.
    let (artifact, content) = e.store().artifact(upgrade.artifact.unwrap()).unwrap().unwrap();
    let content = String::from_utf8(content.unwrap()).unwrap();
    assert_eq!((artifact.bytes as usize, artifact.retention.as_str()), (content.len(), "failed"));
    assert_eq!(content, live.join("\n"));
    assert!(content.contains("@@ apt-get full-upgrade"), "{content}");
    // What dpkg said joins the machine's messages.
    let messages = e.store().machine_messages(upgrade.node, false).unwrap();
    assert!(
        messages
            .iter()
            .any(|m| m.message.text.starts_with("dpkg: error processing") && m.message.text.contains("demo-broken")),
        "{messages:?}"
    );

    // The machine was refreshed in the execution's turn, and the report says how it is:
    // demo-broken left, and dpkg stopped before configuring what it unpacked (so no reboot
    // flag from demo-kernel's postinst yet): `dpkg --audit` lists them.
    let state = e.store().machine_state(upgrade.node).unwrap().unwrap();
    assert_eq!(state.updates, 1, "{state:?}");
    assert!(report.contains("afterwards: 1 update"), "{report}");
    let snap = e.store().latest_snapshot(upgrade.node).unwrap().unwrap().snapshot;
    assert!(snap.messages.iter().any(|m| m.text.contains("run `dpkg --configure -a`")), "{:?}", snap.messages);
    assert!(snap.apt.as_ref().unwrap().unfinished.contains(&"demo-kernel".to_owned()));

    // The operator finishes dpkg's work and holds the broken package; the next upgrade
    // succeeds, and demo-kernel's postinst asked for a reboot.
    machine.run_ok("dpkg --configure -a >/dev/null 2>&1 && apt-mark hold demo-broken >/dev/null");
    let again = e.run_action("deb", "upgrade", "manual", "alice").await.unwrap();
    let again = finished(&e, again.id).await;
    assert_eq!(again.status, ExecutionStatus::Succeeded, "{again:?}");
    let state = e.store().machine_state(again.node).unwrap().unwrap();
    assert_eq!((state.updates, state.reboot_required), (0, true), "{state:?}");
    assert_eq!(again.report.as_deref().map(|r| r.contains("afterwards: up to date, reboot required")), Some(true));

    // A reboot waits until the machine is back; the flag is gone after.
    let reboot = e.run_action("deb", "reboot", "manual", "alice").await.unwrap();
    let reboot = finished(&e, reboot.id).await;
    assert_eq!(reboot.status, ExecutionStatus::Succeeded, "{reboot:?}");
    let (_, log) = e.store().artifact(reboot.artifact.unwrap()).unwrap().unwrap();
    assert!(String::from_utf8(log.unwrap()).unwrap().ends_with("@@ back"));
    let state = e.store().machine_state(reboot.node).unwrap().unwrap();
    assert!(!state.reboot_required, "{state:?}");
    // Every step is in the journal.
    let events = e
        .store()
        .find_events(&wakehub_core::store::EventQuery {
            kinds: vec!["machine-execution".into()],
            limit: 100,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(events.len(), 5 * 3, "queued, running and ended, for each of the five");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_upgrade_is_never_cut_short_by_a_stop_or_overlapped_by_a_refresh() {
    use wakehub_core::store::ExecutionStatus;
    let machine = DebianMachine::start();
    let e = engine(&machine.node("deb", ""));
    // Another dpkg holds its lock for a few seconds: the upgrade waits for it (running).
    let holder = hold_lock(&machine, "/var/lib/dpkg/lock-frontend", 4);
    let upgrade = e.run_action("deb", "upgrade", "manual", "alice").await.unwrap();
    while e.store().execution(upgrade.id).unwrap().unwrap().status == ExecutionStatus::Queued {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let stop = e.request("deb", wakehub_core::model::Action::Stop).await.unwrap_err();
    assert_eq!(stop.code().as_str(), "CONFLICT");
    assert!(stop.to_string().contains(&format!("is running upgrade (execution:{})", upgrade.id)), "{stop}");
    let refresh = e.refresh_machine("deb", RefreshOptions::default(), "bob").await.unwrap_err();
    assert_eq!(refresh.code().as_str(), "CONFLICT");
    let upgrade = finished(&e, upgrade.id).await;
    assert_eq!(upgrade.error_kind.as_deref(), Some("dpkg_error"), "it ran once the lock was free: {upgrade:?}");
    drop(holder);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_cut_mid_upgrade_is_recorded_as_lost_and_never_run_again() {
    use wakehub_core::store::ExecutionStatus;
    let mut machine = DebianMachine::start();
    let e = engine(&machine.node("deb", ""));
    // The upgrade is running (waiting for dpkg's lock) when the machine loses power.
    let _holder = hold_lock(&machine, "/var/lib/dpkg/lock-frontend", 30);
    let upgrade = e.run_action("deb", "upgrade", "manual", "alice").await.unwrap();
    let (so_far, _rx) = loop {
        let (lines, rx) = e.execution_log(&upgrade).await.unwrap().expect("the upgrade is queued or running");
        if lines.iter().any(|l| l.contains("apt-get full-upgrade")) {
            break (lines, rx);
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert!(!so_far.is_empty());
    machine.power_off();
    let upgrade = finished(&e, upgrade.id).await;
    assert_eq!(
        (upgrade.status, upgrade.error_kind.as_deref()),
        (ExecutionStatus::Failed, Some("connection_lost")),
        "{upgrade:?}"
    );
    assert!(upgrade.report.as_deref().is_some_and(|r| r.contains("connection")), "{:?}", upgrade.report);
    // Its log up to the cut is kept.
    let (_, log) = e.store().artifact(upgrade.artifact.unwrap()).unwrap().unwrap();
    assert!(String::from_utf8(log.unwrap()).unwrap().contains("@@ apt-get full-upgrade"));
    // Nothing runs it again.
    machine.boot();
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    assert_eq!(e.store().execution(upgrade.id).unwrap().unwrap().status, ExecutionStatus::Failed);
    assert_eq!(e.store().executions(None, 10).unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_machine_with_docker_reports_its_containers_and_a_prune_removes_the_stopped_ones() {
    use wakehub_core::store::ExecutionStatus;
    let docker = wakehub_tests::Dockerd::start();
    docker.create("web", &[], &["sleep", "600"]);
    docker.ok(&["start", "web"]);
    docker.create("old-job", &[], &["true"]);
    let mut machine = DebianMachine::start();
    // The machine's Docker: Debian's CLI, and the daemon's socket where the CLI looks.
    std::fs::copy("/usr/bin/docker", machine.file("/usr/bin/docker")).expect("docker.io is missing");
    // (A bind mount: the machine's root is a disk of its own, where no link reaches.)
    std::fs::write(machine.file("/run/docker.sock"), b"").unwrap();
    let out = std::process::Command::new("mount")
        .arg("--bind")
        .arg(&docker.socket)
        .arg(machine.file("/run/docker.sock"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    // Booted again, the machine sees the mount.
    machine.power_off();
    machine.boot();
    let e = engine(&machine.node("deb", ""));

    let r = e.refresh_machine("deb", RefreshOptions::default(), "alice").await.unwrap();
    assert_eq!(r.refresh.outcome, RefreshOutcome::Ok, "{:?}", r.refresh);
    let snap = e.store().latest_snapshot(r.refresh.node).unwrap().unwrap().snapshot;
    let d = snap.docker.as_ref().expect("Docker is seen");
    assert!(d.version.as_deref().is_some_and(|v| v.chars().next().is_some_and(|c| c.is_ascii_digit())), "{d:?}");
    let mut seen: Vec<(&str, &str)> = d.containers.iter().map(|c| (c.name.as_str(), c.state.as_str())).collect();
    seen.sort();
    assert_eq!(seen, [("old-job", "created"), ("web", "running")]);
    assert_eq!(d.images, 1);
    assert_eq!(r.state.docker.map(|(all, running, _)| (all, running)), Some((2, 1)), "{:?}", r.state);

    // A prune removes what is not running, never the running one.
    let prune = e.run_action("deb", "docker-prune", "manual", "alice").await.unwrap();
    let prune = finished(&e, prune.id).await;
    assert_eq!(prune.status, ExecutionStatus::Succeeded, "{prune:?}");
    assert!(prune.result.as_ref().is_some_and(|r| r["reclaimed_bytes"].is_u64()), "{:?}", prune.result);
    assert_eq!(docker.ok(&["ps", "-a", "--format", "{{.Names}}"]), "web");
    let state = e.store().machine_state(prune.node).unwrap().unwrap();
    assert_eq!(state.docker.map(|(all, running, _)| (all, running)), Some((1, 1)), "{state:?}");
}
