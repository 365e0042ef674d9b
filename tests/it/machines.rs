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
    let holder = machine
        .chrooted_command(
            "/usr/bin/perl",
            &[
                "-e",
                "use Fcntl; open(my $f, '>>', '/var/lib/apt/lists/lock') or die; \
                 my $l = pack('s s x4 q q i x4', F_WRLCK, 0, 0, 0, 0); fcntl($f, F_SETLK, $l) or die \"lock: $!\"; \
                 print \"locked\\n\"; $| = 1; sleep 60;",
            ],
        )
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut holder = scopeguard(holder);
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(holder.0.stdout.take().unwrap()), &mut line).unwrap();
    assert_eq!(line.trim(), "locked");
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

/// Kills a child on drop.
struct Guard(std::process::Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn scopeguard(child: std::process::Child) -> Guard {
    Guard(child)
}
