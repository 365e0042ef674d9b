//! The machine probe's parser on captured answers (`tests/fixtures/probe/*.txt`): a real
//! Debian 12 userland with a local apt repository (captured by the probe itself), and
//! answers of the shapes Ubuntu, Proxmox VE and Alpine give, including the cases other
//! tools get wrong — a package named `security-misc` that is no security update, kernel
//! package names that differ from `uname -r`, updates kept back by `upgrade`.
//!
//! Each fixture's whole snapshot is also compared with its golden JSON beside it
//! (`UPDATE_GOLDEN=1` rewrites them; review the difference).

use wakehub_core::machine::{ProbeError, Severity, Snapshot, parse};

fn fixture(name: &str) -> (String, Snapshot) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/probe");
    let text = std::fs::read_to_string(dir.join(format!("{name}.txt"))).unwrap();
    let snap = parse(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
    let golden = dir.join(format!("{name}.json"));
    let json = serde_json::to_string_pretty(&snap).unwrap() + "\n";
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&golden, &json).unwrap();
    }
    let expected = std::fs::read_to_string(&golden).unwrap_or_default();
    assert!(
        expected == json,
        "{name}: the snapshot differs from {}; run with UPDATE_GOLDEN=1 and review",
        golden.display()
    );
    (text, snap)
}

fn names<'a>(it: impl Iterator<Item = &'a wakehub_core::machine::Upgrade>) -> Vec<&'a str> {
    it.map(|u| u.name.as_str()).collect()
}

#[test]
fn a_real_debian_machine_with_a_local_repository() {
    let (_, s) = fixture("debian-bookworm-chroot");
    let os = s.os.as_ref().unwrap();
    assert_eq!(
        (os.id.as_str(), os.version_id.as_deref(), os.codename.as_deref()),
        ("debian", Some("12"), Some("bookworm"))
    );
    assert!(s.privileged);
    let apt = s.apt.as_ref().unwrap();
    // Security by the archive the candidate comes from (label Debian-Security, suite
    // bookworm-security), sorted first.
    assert_eq!(apt.upgrades[0].name, "demo-libssl");
    assert!(apt.upgrades[0].security);
    assert_eq!(names(apt.upgrades.iter().filter(|u| u.security)), ["demo-libssl"]);
    // Kept back by `upgrade` (it needs the new demo-newdep), installed by `full-upgrade`.
    assert_eq!(names(apt.upgrades.iter().filter(|u| u.kept_back && !u.held)), ["demo-app"]);
    assert_eq!(apt.new_packages, ["demo-newdep"]);
    // Held: listed with both versions, never counted as pending.
    let held = apt.upgrades.iter().find(|u| u.name == "demo-held").unwrap();
    assert_eq!((held.held, held.installed.as_str(), held.candidate.as_str()), (true, "1.0", "1.1"));
    assert_eq!(names(s.pending_upgrades()), ["demo-libssl", "demo-app", "demo-kernel", "demo-tool"]);
    // A source that cannot be read is an error the machine reports, with its URL; the
    // others were refreshed.
    assert!(apt.lists_refreshed);
    assert_eq!(apt.source_errors.len(), 1, "{:?}", apt.source_errors);
    assert!(apt.source_errors[0].contains("file:/srv/missing/./Packages"), "{:?}", apt.source_errors);
    // No kernel image in the userland (a container's view): no kernel verdict, no reboot.
    assert!(s.kernel.as_ref().unwrap().installed.is_empty());
    assert!(!s.reboot.required);
    assert_eq!(s.restarts.as_ref().map(|r| r.services.len()), Some(0));
    assert!(s.docker.is_none());
    assert!(s.unsupported.iter().any(|u| u.starts_with("docker:")), "{:?}", s.unsupported);
    let hw = s.hardware.as_ref().unwrap();
    assert!(hw.cpu_threads >= 1 && hw.interfaces.iter().all(|i| i.name != "lo"));
}

#[test]
fn ubuntu_with_docker_kernel_updates_and_full_disks() {
    let (_, s) = fixture("ubuntu-jammy-docker");
    let apt = s.apt.as_ref().unwrap();
    // `security-misc` comes from jammy-updates only: not a security update, whatever its
    // name. libssl3 and openssl come from jammy-security too.
    assert_eq!(names(apt.upgrades.iter().filter(|u| u.security)), ["libssl3", "openssl"]);
    assert!(!apt.upgrades.iter().find(|u| u.name == "security-misc").unwrap().security);
    assert_eq!(names(apt.upgrades.iter().filter(|u| u.kept_back)), ["linux-image-generic"]);
    assert_eq!(apt.removals, ["ubuntu-advantage-tools"]);
    assert!(apt.lists_refreshed, "warnings only: the lists were refreshed");
    assert!(apt.source_errors[0].contains("download.docker.com"), "{:?}", apt.source_errors);
    // Reboot: the flag with its packages (deduplicated), and the kernel.
    assert!(s.reboot.required);
    assert_eq!(s.reboot.packages, ["linux-base", "linux-image-5.15.0-94-generic"]);
    assert!(
        s.reboot.reasons.iter().any(|r| r == "running kernel 5.15.0-91-generic, newest installed 5.15.0-94-generic"),
        "{:?}",
        s.reboot.reasons
    );
    let r = s.restarts.as_ref().unwrap();
    assert_eq!(
        (r.services.as_slice(), r.kernel_outdated),
        (&["cron.service".to_owned(), "ssh.service".into()][..], true)
    );
    // Memory: 8 GB with 0.6 GB available is over the threshold.
    let m = s.memory.as_ref().unwrap();
    assert_eq!((m.total, m.available), (8039848 * 1024, 612340 * 1024));
    assert!(s.messages.iter().any(|m| m.source == "memory" && m.severity == Severity::Warning));
    // Disks: pseudo filesystems dropped; a mount point with a space kept whole; 96% is
    // critical.
    let mounts: Vec<&str> = s.filesystems.iter().map(|f| f.mount.as_str()).collect();
    assert_eq!(mounts, ["/", "/boot/efi", "/srv/media files"]);
    let full: Vec<_> =
        s.messages.iter().filter(|m| m.source == "disk").map(|m| (m.subject.as_deref(), m.severity)).collect();
    assert_eq!(full, [(Some("/boot/efi"), Severity::Error), (Some("/srv/media files"), Severity::Error)]);
    // Docker: containers, images, what a prune reclaims, the unhealthy one.
    let d = s.docker.as_ref().unwrap();
    assert_eq!((d.version.as_deref(), d.containers.len(), d.images), (Some("24.0.7"), 3, 12));
    assert_eq!(d.reclaimable_bytes, 3_100_000_000 + 120_500_000 + 1_500_000_000);
    assert!(s.messages.iter().any(|m| m.source == "docker" && m.subject.as_deref() == Some("broker")));
    assert!(s.messages.iter().any(|m| m.text == "full-upgrade would remove ubuntu-advantage-tools"));
}

#[test]
fn proxmox_kernel_names_make_no_false_reboot() {
    let (_, s) = fixture("proxmox-ve");
    // Running 6.8.12-4-pve, newest installed image 6.8.12-4-pve (6.8.12-5 is only a
    // pending package, `proxmox-kernel-6.8.12-5-pve-signed`): no reboot.
    let k = s.kernel.as_ref().unwrap();
    assert_eq!(k.newest.as_deref(), Some("6.8.12-4-pve"));
    assert_eq!(k.installed, ["6.5.13-6-pve", "6.8.12-2-pve", "6.8.12-4-pve"]);
    assert!(!s.reboot.required, "{:?}", s.reboot);
    let apt = s.apt.as_ref().unwrap();
    assert_eq!(apt.new_packages, ["proxmox-kernel-6.8.12-5-pve-signed"]);
    assert!(apt.upgrades.iter().all(|u| !u.security));
    // The enterprise repository without a subscription: errors (the other sources were
    // refreshed).
    assert!(apt.lists_refreshed);
    assert!(apt.source_errors.iter().any(|e| e.contains("401  Unauthorized")), "{:?}", apt.source_errors);
    // Debian's move from stable to oldstable is announced as a future major change.
    let future: Vec<_> = s.messages.iter().filter(|m| m.category == "future-major-change").collect();
    assert_eq!(future.len(), 1, "{:?}", s.messages);
    assert!(future[0].text.contains("from 'stable' to 'oldstable'"));
    // `/etc/pve` (fuse) is a filesystem of its own; nothing is over a threshold.
    assert!(s.messages.iter().all(|m| m.source != "disk"));
}

#[test]
fn a_machine_without_apt_answers_what_it_can() {
    let (_, s) = fixture("alpine-unprivileged");
    assert_eq!(s.os.as_ref().map(|o| o.id.as_str()), Some("alpine"));
    assert!(s.apt.is_none() && !s.privileged);
    assert!(s.unsupported.iter().any(|u| u == "apt: apt-get (not a Debian-based system)"), "{:?}", s.unsupported);
    // No kernel image in /boot to compare with: no verdict either way.
    assert!(!s.reboot.required);
    assert_eq!(s.memory.as_ref().map(|m| m.used_percent.round()), Some(95.0));
    assert_eq!(s.filesystems.len(), 1);
}

#[test]
fn what_is_not_a_probe_answer_is_refused_clearly() {
    assert_eq!(parse("Welcome to Ubuntu!\n"), Err(ProbeError::NotAProbe("Welcome to Ubuntu!".into())));
    assert_eq!(parse("WAKEHUB-PROBE 2\n@end\n"), Err(ProbeError::Protocol(2)));
    assert_eq!(parse("WAKEHUB-PROBE 1\n@section uptime\n|12.0 3.0\n"), Err(ProbeError::Truncated));
    assert_eq!(parse(""), Err(ProbeError::NotAProbe(String::new())));
    // Output cannot forge a frame: every content line is prefixed, and a tool's own `@end`
    // is content.
    let s = parse("WAKEHUB-PROBE 1\n@section kernel\n|@end\n|6.1.0-18-amd64\n@exit 0\n@end\n").unwrap();
    assert_eq!(s.kernel.map(|k| k.running), Some("@end".into()));
}
