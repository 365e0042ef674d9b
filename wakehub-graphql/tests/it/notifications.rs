//! Notifications through the API of a real server: rules saved by an admin of every node
//! (others refused), checked, their secret never returned; a test delivery and a failed
//! cascade both reach a webhook receiver that checks the signature; the deliveries journal.

use std::time::Duration;

use serde_json::json;
use wakehub_tests::Sinks;

use crate::support::{Server, code, token};

const SAVE: &str = "mutation($i: NotificationRuleInput!) { saveNotificationRule(input: $i) {
    name events nodes tags enabled hasSecret updatedBy target { kind url server topic host port security from to user } } }";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_route_events_to_a_signed_webhook() {
    let sinks = Sinks::start("whsec-9f2", "unused");
    let lab = "[[node]]\nname = \"tv\"\nkind = \"physical\"\ntags = [\"media\"]\n[node.connector]\ntype = \"sim\"\nfail = \"start\"\n";
    let s = Server::with_config(lab, &[]);
    let operator = token(&s, "op", &["--role", "operator"]);
    let media_admin = token(&s, "media-admin", &["--role", "admin", "--nodes", "tag:media"]);

    let rule = json!({"name": "hook", "events": ["CASCADE_FAILED", "NODE_DOWN"], "tags": ["media"],
                      "target": {"kind": "WEBHOOK", "url": format!("{}/hook", sinks.url)}, "secret": "whsec-9f2"});
    // Only an admin of every node.
    for t in [&operator, &media_admin] {
        let (_, r) = s.post_as(Some(t), SAVE, json!({"i": rule})).await;
        assert_eq!(code(&r), "FORBIDDEN", "{r}");
    }
    let d = s.gql(SAVE, json!({"i": rule})).await;
    let saved = &d["saveNotificationRule"];
    assert_eq!(saved["events"], json!(["CASCADE_FAILED", "NODE_DOWN"]));
    assert_eq!((&saved["hasSecret"], &saved["updatedBy"]), (&json!(true), &json!("tests")), "{saved}");
    assert_eq!(saved["target"]["kind"], "WEBHOOK");
    // Checked: a webhook without a secret, no event, an e-mail without a recipient.
    for (input, needle) in [
        (json!({"name": "x", "events": ["NODE_DOWN"], "target": {"kind": "WEBHOOK", "url": sinks.url}}), "secret"),
        (
            json!({"name": "x", "events": [], "target": {"kind": "NTFY", "server": "https://ntfy.sh", "topic": "t"}}),
            "at least one event",
        ),
        (
            json!({"name": "x", "events": ["NODE_DOWN"], "target": {"kind": "SMTP", "host": "mail.lan", "from": "a@b.c"}}),
            "to:",
        ),
    ] {
        let (_, r) = s.post_as(Some(&s.token), SAVE, json!({"i": input})).await;
        assert_eq!(code(&r), "VALIDATION", "{r}");
        assert!(r["errors"][0]["message"].as_str().unwrap().contains(needle), "{needle}: {r}");
    }
    // The secret is never returned, whatever is asked.
    let (_, r) = s.post_as(Some(&s.token), "{ notificationRules { name hasSecret target { url } } }", json!({})).await;
    assert!(!r.to_string().contains("whsec-9f2"), "{r}");
    assert_eq!(
        r["data"]["notificationRules"],
        json!([{"name": "hook", "hasSecret": true, "target": {"url": format!("{}/hook", sinks.url)}}])
    );

    // A test delivery, then a real event: both reach the receiver, signed.
    let id =
        s.gql("mutation { testNotificationRule(name: \"hook\") }", json!({})).await["testNotificationRule"].clone();
    s.gql("mutation { startNode(id: \"tv\") { id } }", json!({})).await;
    let mut got = Vec::new();
    for _ in 0..150 {
        got = sinks.received();
        if got.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let events: Vec<&str> = got.iter().map(|r| r["json"]["event"].as_str().unwrap_or_default()).collect();
    assert!(events.contains(&"test") && events.contains(&"cascade-failed"), "{got:?}");
    assert!(got.iter().all(|r| r["verified"] == true), "{got:?}");
    let d = s
        .gql("{ notificationDeliveries(first: 10) { id rule event node status attempts sentAt lastError } }", json!({}))
        .await;
    let deliveries = d["notificationDeliveries"].as_array().unwrap();
    let test = deliveries.iter().find(|d| d["id"] == id).unwrap();
    assert_eq!((&test["event"], &test["status"], &test["attempts"]), (&json!("test"), &json!("sent"), &json!(1)));
    let failed = deliveries.iter().find(|d| d["event"] == "cascade-failed").unwrap();
    assert_eq!((&failed["node"], &failed["status"]), (&json!("tv"), &json!("sent")));
    assert_eq!(
        s.gql("mutation { deleteNotificationRule(name: \"hook\") }", json!({})).await["deleteNotificationRule"],
        true
    );
}
