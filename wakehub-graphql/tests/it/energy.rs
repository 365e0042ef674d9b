//! The energy report through the API and the CLI of a real server: per node and tag from the
//! journal, within the caller's scope, in money once an admin set a price; the CLI reading
//! the same database.

use std::time::Duration;

use serde_json::json;

use crate::support::{Server, bin, code, token};

const LAB: &str = r#"
[[node]]
name = "pve"
kind = "physical"
tags = ["lab"]
watts = { on = 120.0, off = 3.0 }
[node.connector]
type = "sim"
initially = "on"
stop_delay_ms = 100

[[node]]
name = "nas"
kind = "physical"
tags = ["storage"]
watts = 40.0
[node.connector]
type = "sim"
initially = "on"
"#;

const REPORT: &str =
    "query($m: String) { energy(month: $m) { month pricePerKwh currency usedKwh alwaysOnKwh savedKwh savedMoney
    nodes { name watts { on off } onHours offHours usedKwh alwaysOnKwh savedKwh savedMoney } tags { tag savedKwh } } }";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_month_per_node_and_tag_in_scope_and_in_money() {
    let mut s = Server::with_config(LAB, &[]);
    let storage_viewer = token(&s, "wall", &["--role", "viewer", "--nodes", "tag:storage"]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    s.gql("mutation { stopNode(id: \"pve\") { id } }", json!({})).await;
    tokio::time::sleep(Duration::from_millis(600)).await;

    let d = s.gql(REPORT, json!({})).await;
    let r = &d["energy"];
    assert_eq!((&r["pricePerKwh"], &r["savedMoney"]), (&json!(null), &json!(null)), "no price yet: {r}");
    let pve = r["nodes"].as_array().unwrap().iter().find(|n| n["name"] == "pve").unwrap().clone();
    assert_eq!(pve["watts"], json!({"on": 120.0, "off": 3.0}));
    assert!(pve["onHours"].as_f64().unwrap() > 0.0 && pve["offHours"].as_f64().unwrap() > 0.0, "{pve}");
    assert!(pve["savedKwh"].as_f64().unwrap() > 0.0, "a stopped machine saves: {pve}");
    let nas = r["nodes"].as_array().unwrap().iter().find(|n| n["name"] == "nas").unwrap().clone();
    assert_eq!((nas["watts"]["off"].as_f64(), nas["savedKwh"].as_f64()), (Some(0.0), Some(0.0)), "always on: {nas}");
    assert_eq!(r["tags"].as_array().unwrap().len(), 2);

    // Within the caller's scope only.
    let (_, v) = s.post_as(Some(&storage_viewer), REPORT, json!({})).await;
    assert_eq!(v["data"]["energy"]["nodes"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["data"]["energy"]["nodes"][0]["name"], "nas");
    // A price, by an admin of every node only; then the saving in money.
    let set = "mutation { setEnergyPrice(pricePerKwh: 0.25, currency: \"eur\") }";
    let (_, f) = s.post_as(Some(&storage_viewer), set, json!({})).await;
    assert_eq!(code(&f), "FORBIDDEN", "{f}");
    s.gql(set, json!({})).await;
    let d = s.gql(REPORT, json!({})).await;
    let r = &d["energy"];
    assert_eq!((&r["pricePerKwh"], &r["currency"]), (&json!(0.25), &json!("EUR")));
    let money = r["savedMoney"].as_f64().unwrap();
    assert!((money - r["savedKwh"].as_f64().unwrap() * 0.25).abs() < 1e-9, "{r}");
    // A month that is not one.
    let (_, bad) = s.post_as(Some(&s.token), REPORT, json!({"m": "2026-13"})).await;
    assert_eq!(code(&bad), "VALIDATION", "{bad}");
    // A month before anything happened: nothing counted.
    let d = s.gql(REPORT, json!({"m": "2020-01"})).await;
    assert_eq!(d["energy"]["usedKwh"], 0.0);

    // The CLI reads the same database.
    s.terminate();
    let out = std::process::Command::new(bin()).args(["energy", "--json", "--db"]).arg(&s.db).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let cli: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(cli["currency"], "EUR");
    let names: Vec<&str> = cli["nodes"].as_array().unwrap().iter().map(|n| n["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["nas", "pve"]);
    let out = std::process::Command::new(bin()).args(["energy", "--price", "0.3", "--db"]).arg(&s.db).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Energy, ") && text.contains("tag lab") && text.contains(" EUR"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_meter_is_named_through_the_api_within_the_callers_scope_and_its_reading_shown() {
    let lab = "[[node]]\nname = \"plug\"\nkind = \"physical\"\ntags = [\"infra\"]\n[node.connector]\ntype = \"sim\"\n\
               initially = \"on\"\nmeter_on = 31.5\n\n[[node]]\nname = \"desk\"\nkind = \"physical\"\ntags = [\"desk\"]\n\
               [node.connector]\ntype = \"sim\"\n";
    let s = Server::with_config(lab, &["--monitor-every", "1s"]);
    let desk_admin = token(&s, "desk-admin", &["--role", "admin", "--nodes", "tag:desk"]);
    let create = "mutation($input: NodeInput!) { createNode(input: $input) { name watts { on off meter } } }";
    let printer = |meter: &str| {
        json!({"input": {"name": "printer", "kind": "physical", "tags": ["desk"], "watts": {"meter": meter},
               "connector": {"type": "sim"}}})
    };
    // A meter the caller does not see is refused, as is one that names no node at all.
    let (_, r) = s.post_as(Some(&desk_admin), create, printer("plug")).await;
    assert_eq!(code(&r), "VALIDATION", "{r}");
    assert!(r.to_string().contains("watts.meter: no node `plug`"), "{r}");
    let (_, r) = s.post_as(Some(&s.token), create, printer("socket")).await;
    assert_eq!(code(&r), "VALIDATION", "{r}");
    // An admin who sees it names it; the monitor reads it and the node shows the reading.
    let d = s.gql(create, printer("plug")).await;
    assert_eq!(d["createNode"]["watts"], json!({"on": 0.0, "off": 0.0, "meter": "plug"}));
    let mut now = json!(null);
    for _ in 0..100 {
        now = s.gql("{ node(id: \"printer\") { wattsNow { watts error } } }", json!({})).await["node"]["wattsNow"]
            .clone();
        if now["watts"] == 31.5 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(now, json!({"watts": 31.5, "error": null}), "{}", s.log());
}
