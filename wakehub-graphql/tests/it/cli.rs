//! The `wakehub` command line, run as a real process.

use std::path::Path;
use std::process::{Command, Output};

use expect_test::expect;

fn wakehub(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wakehub"))
        .args(args)
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))
        .output()
        .expect("run wakehub")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn check_prints_the_homelab_tree() {
    let out = wakehub(&["check", "examples/homelab.toml"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    expect![[r#"
        examples/homelab.toml: 11 nodes, 3 dependency links — valid

        machine1  (physical, offers proxmox, via sim)
        ├── vm-docker  (vm, offers docker, via sim)
        │   ├── paperless  (container, via sim) [pinned]  → needs postgres
        │   ├── postgres  (container, via sim)  ← used by paperless
        │   └── sandbox  (container, via sim)  → needs lxc-jellyfin
        └── vm-ubuntu  (vm, via sim)
        machine2  (physical, offers proxmox, via sim)
        ├── lxc-cloudflared  (lxc, via sim)
        ├── lxc-jellyfin  (lxc, via sim) [pinned]  → needs nas  ← used by sandbox
        └── vm-homeassistant  (vm, via sim) [pinned]
        nas  (physical, via sim)  ← used by lxc-jellyfin
    "#]]
    .assert_eq(&text(&out.stdout));
}

#[test]
fn check_reports_every_problem_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    std::fs::write(
        &file,
        "[[node]]\nname = \"a\"\nkind = \"vm\"\n[node.connector]\ntype = \"sim\"\n\n[[node]]\nname = \"b\"\nkind = \"blade\"\n",
    )
    .unwrap();
    let out = wakehub(&["check", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("3 problem(s)"), "{err}");
    assert!(
        err.contains("node `a`, field `parent`: `a` cannot run on nothing: a vm needs a parent that offers `proxmox`"),
        "{err}"
    );
    assert!(err.contains("node `b`, field `kind`: unknown kind `blade`"), "{err}");
    assert!(err.contains("node `b`, field `connector`: missing"), "{err}");
    assert!(out.stdout.is_empty());

    let out = wakehub(&["check", "does/not/exist.toml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("cannot read does/not/exist.toml"));
}
