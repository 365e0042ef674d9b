//! Power schedules through the API: saved by operators whose scope covers their nodes,
//! checked (a bad cron, an unknown zone, a keep-on without a duration), listed with their
//! next times in their time zone, invisible outside the caller's scope, deleted.

use serde_json::json;

use crate::support::{Server, code, token};

const SAVE: &str = "mutation($i: PowerScheduleInput!) { savePowerSchedule(input: $i) {
    name action nodes tags schedule timezone keepForSecs enabled nextRuns(count: 2) scheduleDescription updatedBy } }";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_schedule_the_nodes_of_their_scope() {
    let lab = "[[node]]\nname = \"tv\"\nkind = \"physical\"\ntags = [\"media\"]\n[node.connector]\ntype = \"sim\"\n\n\
               [[node]]\nname = \"nas\"\nkind = \"physical\"\ntags = [\"infra\"]\n[node.connector]\ntype = \"sim\"\n";
    let s = Server::with_config(lab, &[]);
    let media_op = token(&s, "media-op", &["--role", "operator", "--nodes", "tag:media"]);
    let viewer = token(&s, "wall", &["--role", "viewer"]);

    let morning = json!({"name": "morning", "action": "START", "tags": ["media"], "schedule": "0 7 * * MON-FRI",
                         "timezone": "Europe/Paris"});
    let (_, r) = s.post_as(Some(&media_op), SAVE, json!({"i": morning})).await;
    let saved = &r["data"]["savePowerSchedule"];
    assert_eq!((&saved["action"], &saved["updatedBy"]), (&json!("START"), &json!("media-op")), "{r}");
    let next = saved["nextRuns"].as_array().unwrap();
    assert_eq!(next.len(), 2);
    // 07:00 in Paris is 06:00 UTC in winter, 05:00 in summer.
    assert!(
        next.iter().all(|t| t.as_str().unwrap().contains("T05:00:00") || t.as_str().unwrap().contains("T06:00:00")),
        "{next:?}"
    );
    assert!(saved["scheduleDescription"].as_str().unwrap().contains("07:00"), "{saved}");

    // Checked: a bad cron, a zone that does not exist, a keep-on without a duration.
    for (input, needle) in [
        (json!({"name": "x", "action": "START", "nodes": ["tv"], "schedule": "0 25 * * *"}), "schedule `0 25"),
        (
            json!({"name": "x", "action": "START", "nodes": ["tv"], "schedule": "0 7 * * *", "timezone": "Mars/Olympus"}),
            "time zone",
        ),
        (json!({"name": "x", "action": "KEEP_ON", "nodes": ["tv"], "schedule": "0 20 * * FRI"}), "1 minute to 7 days"),
    ] {
        let (_, r) = s.post_as(Some(&media_op), SAVE, json!({"i": input})).await;
        assert_eq!(code(&r), "VALIDATION", "{r}");
        assert!(r["errors"][0]["message"].as_str().unwrap().contains(needle), "{r}");
    }
    // Outside its scope: a node it does not see is not found, a tag reaching one forbidden.
    let (_, r) = s
        .post_as(
            Some(&media_op),
            SAVE,
            json!({"i": {"name": "x", "action": "STOP", "nodes": ["nas"], "schedule": "0 1 * * *"}}),
        )
        .await;
    assert_eq!(code(&r), "NOT_FOUND", "{r}");
    let (_, r) = s
        .post_as(
            Some(&media_op),
            SAVE,
            json!({"i": {"name": "x", "action": "STOP", "tags": ["infra"], "schedule": "0 1 * * *"}}),
        )
        .await;
    assert_eq!(code(&r), "FORBIDDEN", "{r}");
    // A viewer reads, never writes.
    let (_, r) = s.post_as(Some(&viewer), SAVE, json!({"i": morning})).await;
    assert_eq!(code(&r), "FORBIDDEN", "{r}");

    // The admin's keep-on of the NAS: the media operator does not see it.
    let keep = json!({"name": "backup-window", "action": "KEEP_ON", "nodes": ["nas"], "schedule": "0 2 * * *", "keepForSecs": 7200});
    let d = s.gql(SAVE, json!({"i": keep})).await;
    assert_eq!(d["savePowerSchedule"]["keepForSecs"], 7200);
    let (_, r) = s.post_as(Some(&media_op), "{ powerSchedules { name } }", json!({})).await;
    assert_eq!(r["data"]["powerSchedules"], json!([{"name": "morning"}]), "{r}");
    let d = s.gql("{ powerSchedules { name action lastFiredAt activeUntil } }", json!({})).await;
    assert_eq!(
        d["powerSchedules"],
        json!([{"name": "backup-window", "action": "KEEP_ON", "lastFiredAt": null, "activeUntil": null},
               {"name": "morning", "action": "START", "lastFiredAt": null, "activeUntil": null}])
    );
    let (_, r) =
        s.post_as(Some(&media_op), "mutation { deletePowerSchedule(name: \"backup-window\") }", json!({})).await;
    assert_eq!(code(&r), "NOT_FOUND", "{r}");
    let d = s.gql("mutation { deletePowerSchedule(name: \"backup-window\") }", json!({})).await;
    assert_eq!(d["deletePowerSchedule"], true);
}
