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
fn check_reads_the_stacks_example_and_its_compose_file() {
    let out = wakehub(&["check", "examples/stacks.toml"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    expect![[r#"
        examples/stacks.toml: 3 nodes, 1 dependency links — valid

        docker-host  (physical, offers docker, via wol-ssh)  ready when tcp 192.168.1.20:2376 answers
        └── paperless  (stack, via stack) [pinned]  → needs nas
        nas  (physical, via wol-ssh)  ← used by paperless
    "#]]
    .assert_eq(&text(&out.stdout));
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
        nas  (physical, via sim) [pinned]  ← used by lxc-jellyfin
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

#[test]
fn plan_json_has_the_documented_shape() {
    let out = wakehub(&["plan", "examples/homelab.toml", "start", "lxc-jellyfin", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["target"], "lxc-jellyfin");
    assert_eq!(v["action"], "start");
    let steps: Vec<(String, Vec<u64>)> = v["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["node"].as_str().unwrap().to_owned(),
                s["after"].as_array().unwrap().iter().map(|a| a.as_u64().unwrap()).collect(),
            )
        })
        .collect();
    assert_eq!(
        steps,
        [("nas".to_owned(), vec![]), ("machine2".to_owned(), vec![]), ("lxc-jellyfin".to_owned(), vec![0, 1])]
    );
    for key in ["skipped", "kept", "proposed"] {
        assert!(v[key].is_array(), "{key}");
    }
    assert_eq!(v["estimate_ms"], 3800, "sim delays: max(nas 2.5 s, machine2 3 s) + lxc 0.8 s");

    let out = wakehub(&["plan", "examples/homelab.toml", "stop", "ghost"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("unknown node `ghost`"));
}

#[test]
fn start_and_stop_run_a_cascade_live() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("lab.toml");
    let lab = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/homelab.toml")).unwrap();
    let quick: String = lab
        .lines()
        .map(|l| {
            if l.contains("_delay_ms") {
                format!("{} = 20\n", l.split(" = ").next().unwrap())
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    std::fs::write(&file, &quick).unwrap();
    let out = wakehub(&["start", file.to_str().unwrap(), "sandbox"]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("Plan: start sandbox — 6 step(s)"), "{stdout}");
    assert!(stdout.lines().any(|l| l.contains("nas") && l.contains("on ✓ done")), "{stdout}");
    assert!(stdout.contains("✔ start sandbox completed"), "{stdout}");

    // A failing node fails the command.
    std::fs::write(&file, quick.replacen("type = \"sim\"\n", "type = \"sim\"\nfail = \"start\"\n", 1)).unwrap();
    let out = wakehub(&["start", file.to_str().unwrap(), "sandbox", "--concurrency", "1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stdout).contains("✘ start sandbox failed"), "{}", text(&out.stdout));
    assert!(text(&out.stdout).contains("PLATFORM_ERROR: machine1: simulated start failure"), "{}", text(&out.stdout));

    // Stopping machine1 with everything on: bottom-up, then the NAS is proposed.
    std::fs::write(&file, quick.replace("initially = \"off\"", "initially = \"on\"")).unwrap();
    let out = wakehub(&["stop", file.to_str().unwrap(), "machine1"]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.lines().any(|l| l.contains("#5  stop  machine1") && l.ends_with("after #3, #4")), "{stdout}");
    assert!(
        stdout
            .contains("nas               shutdown proposed (proposal:1): no longer used; confirm_auto_shutdown is on"),
        "{stdout}"
    );
    assert!(stdout.contains("✔ stop machine1 completed"), "{stdout}");

    // Connector keys are validated before anything runs.
    std::fs::write(&file, quick.replacen("type = \"sim\"\n", "type = \"sim\"\ncolour = \"red\"\n", 1)).unwrap();
    let out = wakehub(&["check", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("node `machine1`, field `connector`: sim: unknown key `colour`"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn one_server_per_database_and_the_database_is_its_owners() {
    let s = crate::support::Server::with_config(&crate::support::homelab_faster(10), &[]);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&s.db).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the database is readable by its owner only");
    let second = std::process::Command::new(crate::support::bin())
        .args(["serve", "--listen", "127.0.0.1:0", "--db"])
        .arg(&s.db)
        .output()
        .unwrap();
    assert!(!second.status.success());
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(err.contains("another WakeHub server is already using"), "{err}");
    // The command line still works beside it (token create writes the same database).
    let out =
        std::process::Command::new(crate::support::bin()).args(["token", "list", "--db"]).arg(&s.db).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}
