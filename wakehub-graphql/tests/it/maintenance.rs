//! Maintenance windows through the API and the CLI, against a real Debian machine: windows
//! saved by operators within their scope (a cron schedule read in a time zone), the plan
//! for everyone who sees every machine, a run followed to its report and its `maintenance`
//! events; callers outside the scope see none of it. `wakehub maintenance FILE` plans and
//! runs one from the command line.

use std::process::Command;
use std::time::Duration;

use serde_json::json;
use wakehub_tests::DebianMachine;

use crate::support::{Server, bin, code, token};

const SAVE: &str = "mutation($w: MaintenanceWindowInput!) { saveMaintenanceWindow(input: $w) {
    name tags schedule timezone scheduleDescription nextRunAt updatedBy } }";

/// A Debian machine `deb` (tag `lab`) whose broken package is held, and a simulated `toy`
/// (tag `media`) that is no machine.
fn lab(machine: &DebianMachine) -> String {
    machine.run_ok("apt-mark hold demo-broken >/dev/null");
    machine.node("deb", "").replacen("kind = \"physical\"\n", "kind = \"physical\"\ntags = [\"lab\"]\n", 1)
        + "[[node]]\nname = \"toy\"\nkind = \"physical\"\ntags = [\"media\"]\n[node.connector]\ntype = \"sim\"\n"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_save_and_run_windows_in_their_scope_and_everyone_follows_them() {
    let machine = DebianMachine::start();
    let s = Server::with_config(&lab(&machine), &[]);
    let operator = token(&s, "lab-op", &["--role", "operator", "--nodes", "tag:lab"]);
    let viewer = token(&s, "wall", &["--role", "viewer"]);
    let elsewhere = token(&s, "other-op", &["--role", "operator", "--nodes", "tag:media"]);

    // Saving is an operator's, within its scope; a bad schedule or zone is refused.
    let weekly =
        json!({"w": {"name": "weekly", "tags": ["lab"], "schedule": "0 3 * * SUN", "timezone": "Europe/Paris"}});
    let (_, v) = s.post_as(Some(&viewer), SAVE, weekly.clone()).await;
    assert_eq!(code(&v), "FORBIDDEN", "{v}");
    let (_, v) = s.post_as(Some(&operator), SAVE, json!({"w": {"name": "both", "tags": ["lab", "media"]}})).await;
    assert_eq!(code(&v), "FORBIDDEN", "its tags reach `toy`: {v}");
    let (_, v) =
        s.post_as(Some(&operator), SAVE, json!({"w": {"name": "x", "nodes": ["deb"], "schedule": "0 25 * * *"}})).await;
    assert_eq!(code(&v), "VALIDATION", "{v}");
    let (_, v) = s.post_as(Some(&operator), SAVE, weekly).await;
    let w = &v["data"]["saveMaintenanceWindow"];
    assert_eq!(
        (&w["name"], &w["timezone"], &w["updatedBy"]),
        (&json!("weekly"), &json!("Europe/Paris"), &json!("lab-op")),
        "{v}"
    );
    assert!(w["scheduleDescription"].as_str().unwrap().contains("03:00"), "{w}");
    assert!(w["nextRunAt"].as_str().is_some(), "{w}");
    // An admin's window over both machines: the lab operator does not see it.
    s.gql(SAVE, json!({"w": {"name": "everything", "nodes": ["deb", "toy"]}})).await;
    let list = "{ maintenanceWindows { name } }";
    let (_, v) = s.post_as(Some(&operator), list, json!({})).await;
    assert_eq!(v["data"]["maintenanceWindows"], json!([{"name": "weekly"}]), "{v}");
    let (_, v) = s.post_as(Some(&elsewhere), list, json!({})).await;
    assert_eq!(v["data"]["maintenanceWindows"], json!([]), "{v}");

    // The plan, for everyone who sees its machines: `deb` is on and was never refreshed;
    // `toy` is no machine.
    let plan = "query($w: String) { maintenancePlan(window: $w) { wake estimateSecs
        machines { name powerBefore knownAt reboot updates } skipped { name reason } } }";
    let (_, v) = s.post_as(Some(&viewer), plan, json!({"w": "everything"})).await;
    let p = &v["data"]["maintenancePlan"];
    assert_eq!(
        p["machines"],
        json!([{"name": "deb", "powerBefore": "on", "knownAt": null, "reboot": "unknown", "updates": 0}]),
        "{v}"
    );
    assert_eq!(p["skipped"][0]["name"], "toy");
    assert_eq!(p["wake"], json!([]));
    let (_, v) = s.post_as(Some(&elsewhere), plan, json!({"w": "weekly"})).await;
    assert_eq!(code(&v), "NOT_FOUND", "{v}");

    // A run on request, followed to its end.
    let run = "mutation($w: String) { runMaintenance(window: $w) { id status mode actor window } }";
    let (_, v) = s.post_as(Some(&viewer), run, json!({"w": "weekly"})).await;
    assert_eq!(code(&v), "FORBIDDEN", "{v}");
    let (_, v) = s.post_as(Some(&operator), run, json!({"w": "weekly"})).await;
    let r = &v["data"]["runMaintenance"];
    assert_eq!((&r["status"], &r["mode"], &r["actor"]), (&json!("running"), &json!("manual"), &json!("lab-op")), "{v}");
    let id = r["id"].as_str().unwrap().to_owned();
    let (_, v) = s.post_as(Some(&operator), run, json!({"w": "weekly"})).await;
    assert_eq!(code(&v), "CONFLICT", "one run at a time per machine: {v}");
    let q = "query($id: ID!) { maintenanceRun(id: $id) { status report steps { phase node status message } } }";
    let done = {
        let until = std::time::Instant::now() + Duration::from_secs(300);
        loop {
            let d = s.gql(q, json!({"id": id})).await;
            if d["maintenanceRun"]["status"] != "running" {
                break d["maintenanceRun"].clone();
            }
            assert!(std::time::Instant::now() < until, "{d}");
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    };
    assert_eq!(done["status"], "succeeded", "{done}");
    let phases: Vec<&str> = done["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["status"] == "done")
        .map(|s| s["phase"].as_str().unwrap())
        .collect();
    assert_eq!(phases, ["refresh", "upgrade", "reboot", "verify"], "{done}");
    assert!(done["report"].as_str().unwrap().contains("- deb (was on): upgraded "), "{done}");
    let (_, v) = s.post_as(Some(&elsewhere), q, json!({"id": id})).await;
    assert_eq!(code(&v), "NOT_FOUND", "{v}");
    let d = s.gql("{ maintenanceWindow(name: \"weekly\") { runs { id status } } }", json!({})).await;
    assert_eq!(d["maintenanceWindow"]["runs"], json!([{"id": id, "status": "succeeded"}]));

    // Its progress is in the journal, step by step.
    let d = s
        .gql(
            "{ events(kinds: [\"maintenance\"], first: 100) { nodes { payload {
                 ... on MaintenanceProgress { run phase status name } } } } }",
            json!({}),
        )
        .await;
    let events = d["events"]["nodes"].as_array().unwrap();
    assert!(events.iter().all(|e| e["payload"]["run"] == json!(id)), "{d}");
    assert!(
        events.iter().any(|e| e["payload"] == json!({"run": id, "phase": "reboot", "status": "done", "name": "deb"})),
        "{d}"
    );
    // None of it reaches a caller outside the machines' scope, not even the run's beginning.
    let (_, v) = s.post_as(Some(&elsewhere), "{ events(kinds: [\"maintenance\"]) { nodes { id } } }", json!({})).await;
    assert_eq!(v["data"]["events"]["nodes"], json!([]), "{v}");

    // Deleting is an operator's, for a window it sees.
    let del = "mutation { deleteMaintenanceWindow(name: \"everything\") }";
    let (_, v) = s.post_as(Some(&operator), del, json!({})).await;
    assert_eq!(code(&v), "NOT_FOUND", "{v}");
    assert_eq!(s.gql(del, json!({})).await["deleteMaintenanceWindow"], true);
}

#[test]
fn the_cli_plans_then_runs_a_maintenance_and_exits_by_its_outcome() {
    let machine = DebianMachine::start();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("lab.toml");
    std::fs::write(&file, lab(&machine)).unwrap();
    let cli = |args: &[&str]| Command::new(bin()).arg("maintenance").arg(&file).args(args).output().unwrap();
    let out = cli(&["--tags", "lab", "--nodes", "toy", "--plan"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("  deb (on, never refreshed") && text.contains("  toy: not a machine"), "{text}");
    // A plan changes nothing.
    assert_eq!(machine.run_ok("dpkg-query -W -f '${Version}' demo-libssl"), "1.0");

    let out = cli(&["--nodes", "deb"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("reboot deb: done") && text.contains("succeeded"), "{text}");
    // Nothing selected is an error, with its code.
    let out = cli(&["--tags", "nothing"]);
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("VALIDATION"));
}
