//! The GraphQL API through real HTTP requests against a running `wakehub serve`.

use serde_json::json;

use crate::support::{Server, homelab_faster};

#[tokio::test]
async fn nodes_are_addressable_by_id_and_name_with_their_links() {
    let s = Server::demo();
    let d = s
        .gql(
            "{ nodes(state: CONFIGURED) { id name kind state status } jelly: node(id: \"lxc-jellyfin\") { id name parent { name } dependsOn { name } dependents { name } children { name } heldBy { name } connector { type settings } startTimeout pinned confirmAutoShutdown } }",
            json!({}),
        )
        .await;
    let nodes = d["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 11);
    assert_eq!(nodes[0]["name"], "machine1", "hosts come before what they host");
    assert!(nodes.iter().all(|n| n["status"] == "OFF" && n["state"] == "CONFIGURED"), "{nodes:?}");
    let j = &d["jelly"];
    assert_eq!(j["parent"]["name"], "machine2");
    assert_eq!(j["dependsOn"], json!([{"name": "nas"}]));
    assert_eq!(j["dependents"], json!([{"name": "sandbox"}]));
    assert_eq!(j["startTimeout"], "1m");
    assert_eq!(j["connector"]["type"], "sim");
    assert_eq!(j["confirmAutoShutdown"], false);
    let by_id = s.gql("query($id: ID!) { node(id: $id) { name } }", json!({"id": j["id"]})).await;
    assert_eq!(by_id["node"]["name"], "lxc-jellyfin");
    let none = s.gql("{ node(id: \"ghost\") { name } }", json!({})).await;
    assert!(none["node"].is_null());
    let filtered = s.gql("{ nodes(kind: \"container\", pinned: true) { name } }", json!({})).await;
    assert_eq!(filtered["nodes"], json!([{"name": "paperless"}]));
    let children = s.gql("{ nodes(parent: \"vm-docker\") { name } }", json!({})).await;
    assert_eq!(children["nodes"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn topology_mutations_validate_and_report_stable_codes() {
    let s = Server::demo();
    let create =
        "mutation($input: NodeInput!) { createNode(input: $input) { id name parent { name } dependsOn { name } } }";
    let d = s
        .gql(
            create,
            json!({"input": {"name": "grafana", "kind": "container", "parent": "vm-docker", "dependsOn": ["postgres"],
                   "connector": {"type": "sim", "start_delay_ms": 10}}}),
        )
        .await;
    let id = d["createNode"]["id"].as_str().unwrap().to_owned();
    assert_eq!(d["createNode"]["parent"]["name"], "vm-docker");
    assert_eq!(d["createNode"]["dependsOn"], json!([{"name": "postgres"}]));
    let n = s.gql("{ node(id: \"grafana\") { connector { type settings } } }", json!({})).await;
    assert_eq!(n["node"]["connector"], json!({"type": "sim", "settings": {"start_delay_ms": 10}}));

    // Every problem of the input, with its field.
    let e = s
        .gql_err(create, json!({"input": {"name": "Bad Name", "kind": "blade", "startTimeout": "soon", "connector": {"type": "sim"}}}))
        .await;
    assert_eq!(e["extensions"]["code"], "VALIDATION");
    let fields: Vec<String> =
        e["extensions"]["fields"].as_array().unwrap().iter().map(|f| f["field"].as_str().unwrap().to_owned()).collect();
    assert_eq!(fields, ["name", "kind", "start_timeout"]);
    let e = s
        .gql_err(
            create,
            json!({"input": {"name": "c2", "kind": "container", "parent": "nas", "connector": {"type": "sim"}}}),
        )
        .await;
    assert_eq!(e["extensions"]["code"], "VALIDATION");
    assert!(e["message"].as_str().unwrap().contains("offers `docker`"), "{e}");
    let e = s
        .gql_err(create, json!({"input": {"name": "c3", "kind": "physical", "connector": {"type": "warp-drive"}}}))
        .await;
    assert_eq!(e["extensions"]["code"], "VALIDATION");
    assert!(e["message"].as_str().unwrap().contains("unknown connector type `warp-drive`"), "{e}");
    assert_eq!(e["extensions"]["fields"][0]["field"], "connector", "{e}");
    let e = s
        .gql_err(create, json!({"input": {"name": "grafana", "kind": "physical", "connector": {"type": "sim"}}}))
        .await;
    assert_eq!(e["extensions"]["code"], "CONFLICT");

    // Links: a cycle is refused and named.
    let link = "mutation($f: ID!, $t: ID!) { addDependency(from: $f, to: $t) { name dependsOn { name } } }";
    let e = s.gql_err(link, json!({"f": "nas", "t": "sandbox"})).await;
    assert_eq!(e["extensions"]["code"], "CYCLE");
    assert_eq!(e["message"], "this would close a cycle: nas → sandbox → lxc-jellyfin → nas");
    let d = s.gql(link, json!({"f": "vm-ubuntu", "t": "nas"})).await;
    assert_eq!(d["addDependency"]["dependsOn"], json!([{"name": "nas"}]));
    let e = s.gql_err(link, json!({"f": "vm-ubuntu", "t": "ghost"})).await;
    assert_eq!(e["extensions"]["code"], "NOT_FOUND");
    s.gql("mutation { removeDependency(from: \"vm-ubuntu\", to: \"nas\") { name } }", json!({})).await;

    // Update keeps the id; delete refuses a host with guests.
    let update =
        "mutation($id: ID!, $input: NodeInput!) { updateNode(id: $id, input: $input) { id pinned parent { name } } }";
    let d = s
        .gql(update, json!({"id": id, "input": {"name": "grafana", "kind": "container", "parent": "vm-docker", "pinned": true, "connector": {"type": "sim"}}}))
        .await;
    assert_eq!((d["updateNode"]["id"].as_str(), &d["updateNode"]["pinned"]), (Some(id.as_str()), &json!(true)));
    let e = s.gql_err("mutation { deleteNode(id: \"vm-docker\") }", json!({})).await;
    assert_eq!(e["extensions"]["code"], "CONFLICT");
    assert_eq!(s.gql("mutation($id: ID!) { deleteNode(id: $id) }", json!({"id": id})).await["deleteNode"], id);

    // Import is all or nothing; export round-trips.
    let exported = s.gql("mutation { exportTopology }", json!({})).await["exportTopology"].as_str().unwrap().to_owned();
    let e = s
        .gql_err(
            "mutation($t: String!) { importTopology(toml: $t) { added } }",
            json!({"t": exported
                .replace("name = \"lxc-jellyfin\"\nkind = \"lxc\"", "name = \"lxc-jellyfin\"\nkind = \"lxd\"")
                .replace("name = \"lxc-cloudflared\"\nkind = \"lxc\"", "name = \"lxc-cloudflared\"\nkind = \"lxd\"")}),
        )
        .await;
    assert_eq!(e["extensions"]["code"], "VALIDATION");
    assert_eq!(e["extensions"]["fields"].as_array().unwrap().len(), 2, "{e}");
    let d = s
        .gql(
            "mutation($t: String!) { importTopology(toml: $t) { added updated removed unchanged } }",
            json!({"t": exported}),
        )
        .await;
    assert_eq!(d["importTopology"]["unchanged"].as_array().unwrap().len(), 11);
}

#[tokio::test]
async fn cascades_run_in_the_background_and_are_paginated() {
    let s = Server::with_config(&homelab_faster(20), &[]);
    let plan = s
        .gql(
            "{ plan(node: \"lxc-jellyfin\", action: START) { steps { nodeName after role } estimateMs worstCaseMs } }",
            json!({}),
        )
        .await;
    let steps: Vec<String> =
        plan["plan"]["steps"].as_array().unwrap().iter().map(|s| s["nodeName"].as_str().unwrap().to_owned()).collect();
    assert_eq!(steps, ["nas", "machine2", "lxc-jellyfin"]);
    assert_eq!(plan["plan"]["steps"][2]["after"], json!([0, 1]));

    let d = s.gql("mutation { startNode(id: \"lxc-jellyfin\") { id status nodeName action } }", json!({})).await;
    assert_eq!(d["startNode"]["status"], "PENDING", "returned at once");
    let first = d["startNode"]["id"].as_str().unwrap().to_owned();
    let e = s.gql_err("mutation { startNode(id: \"lxc-jellyfin\") { id } }", json!({})).await;
    assert_eq!(e["extensions"]["code"], "CASCADE_IN_PROGRESS");
    let e = s.gql_err("mutation { stopNode(id: \"machine2\") { id } }", json!({})).await;
    assert_eq!(e["extensions"]["code"], "CONFLICT");
    assert_eq!(s.wait_cascade(&first).await, "COMPLETED");
    let d = s
        .gql(
            "query($id: ID!) { cascade(id: $id) { currentStep totalSteps steps { nodeName status } } }",
            json!({"id": first}),
        )
        .await;
    assert_eq!(d["cascade"]["totalSteps"], 3);
    assert!(d["cascade"]["steps"].as_array().unwrap().iter().all(|s| s["status"] == "DONE"));
    let n = s.gql("{ node(id: \"nas\") { status heldBy { name } } }", json!({})).await;
    assert_eq!(n["node"], json!({"status": "ON", "heldBy": [{"name": "lxc-jellyfin"}]}));

    // Stop: re-evaluation proposes the NAS; confirm it.
    let d = s.gql("mutation { stopNode(id: \"lxc-jellyfin\") { id } }", json!({})).await;
    assert_eq!(s.wait_cascade(d["stopNode"]["id"].as_str().unwrap()).await, "COMPLETED");
    // (machine2, which now runs no guest, is proposed too.)
    let p = s.gql("{ proposals { id nodeName reason status } }", json!({})).await;
    let list = p["proposals"].as_array().unwrap();
    let nas = list.iter().find(|p| p["nodeName"] == "nas").unwrap_or_else(|| panic!("{p}"));
    let c = s.gql("mutation($id: ID!) { confirmProposal(id: $id) { id } }", json!({"id": nas["id"]})).await;
    assert_eq!(s.wait_cascade(c["confirmProposal"]["id"].as_str().unwrap()).await, "COMPLETED");
    assert_eq!(s.gql("{ node(id: \"nas\") { status } }", json!({})).await["node"]["status"], "OFF");
    let left = s.gql("{ proposals { nodeName reason } }", json!({})).await;
    assert_eq!(
        left["proposals"],
        json!([{"nodeName": "machine2", "reason": "no running guest and no user left; stop_when_empty is off"}])
    );

    // Three cascades, newest first, two per page.
    let q = "query($after: String) { cascades(first: 2, after: $after) { edges { cursor node { id action } } pageInfo { hasNextPage endCursor } } }";
    let p1 = s.gql(q, json!({"after": null})).await;
    assert_eq!(p1["cascades"]["edges"].as_array().unwrap().len(), 2);
    assert_eq!(p1["cascades"]["pageInfo"]["hasNextPage"], true);
    let p2 = s.gql(q, json!({"after": p1["cascades"]["pageInfo"]["endCursor"]})).await;
    assert_eq!(p2["cascades"]["edges"].as_array().unwrap().len(), 1);
    assert_eq!(p2["cascades"]["edges"][0]["node"]["id"], first);
    assert_eq!(p2["cascades"]["pageInfo"]["hasNextPage"], false);
    let f = s.gql("{ cascades(node: \"nas\") { edges { node { action } } } }", json!({})).await;
    assert_eq!(f["cascades"]["edges"], json!([{"node": {"action": "STOP"}}]));

    // The journal, paginated by event id and filterable by node.
    let ev = s
        .gql("{ events(node: \"nas\", first: 3) { edges { node { kind node } } pageInfo { hasNextPage } } }", json!({}))
        .await;
    assert_eq!(ev["events"]["edges"].as_array().unwrap().len(), 3);
    assert_eq!(ev["events"]["pageInfo"]["hasNextPage"], true);

    // Metrics count what happened.
    let m = reqwest::get(format!("{}/metrics", s.base)).await.unwrap().text().await.unwrap();
    assert!(m.contains("wakehub_cascades_total{action=\"start\",outcome=\"completed\"} 1"), "{m}");
    assert!(m.contains("wakehub_cascades_total{action=\"stop\",outcome=\"completed\"} 2"), "{m}");
    assert!(m.contains("wakehub_step_duration_seconds_count{action=\"start\"} 3"), "{m}");
}

#[tokio::test]
async fn every_operation_needs_a_valid_token() {
    let s = Server::demo();
    let (status, body) = s.post_as(None, "{ nodes { name } }", json!({})).await;
    assert_eq!(status, 401);
    assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
    let (status, _) = s.post_as(Some("whk_not-a-real-token"), "{ nodes { name } }", json!({})).await;
    assert_eq!(status, 401);
    let (status, _) = s.post_as(Some("garbage"), "mutation { startNode(id: \"nas\") { id } }", json!({})).await;
    assert_eq!(status, 401);
    // A token made with the CLI works until it is revoked.
    let out = std::process::Command::new(crate::support::bin())
        .args(["token", "create", "ci", "--role", "admin", "--db"])
        .arg(&s.db)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let token = String::from_utf8(out.stdout).unwrap();
    assert_eq!(token.lines().count(), 1, "the token alone on stdout");
    let token = token.trim();
    assert_eq!(s.post_as(Some(token), "{ nodes { name } }", json!({})).await.0, 200);
    let list =
        std::process::Command::new(crate::support::bin()).args(["token", "list", "--db"]).arg(&s.db).output().unwrap();
    let list = String::from_utf8(list.stdout).unwrap();
    assert!(list.contains("ci\tactive") && !list.contains(token), "{list}");
    let out = std::process::Command::new(crate::support::bin())
        .args(["token", "revoke", "ci", "--db"])
        .arg(&s.db)
        .output()
        .unwrap();
    assert!(out.status.success());
    // Revoked by another process: the server's cache of checked tokens trusts an answer
    // for at most AUTH_CACHE_TTL (1 s), then reads the database again.
    let revoked = std::time::Instant::now();
    while s.post_as(Some(token), "{ nodes { name } }", json!({})).await.0 != 401 {
        assert!(revoked.elapsed() < wakehub_core::store::AUTH_CACHE_TTL * 3, "still accepted after a revocation");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // The database holds only hashes.
    let bytes = std::fs::read(&s.db).unwrap();
    assert!(!bytes.windows(token.len()).any(|w| w == token.as_bytes()));
}

#[tokio::test]
async fn hostile_requests_are_bounded() {
    let s = Server::demo();
    // Depth.
    let deep = format!("{{ node(id: \"sandbox\") {{ {} name {} }} }}", "parent { ".repeat(14), "}".repeat(14));
    let e = s.gql_err(&deep, json!({})).await;
    assert!(e["message"].as_str().unwrap().contains("nested too deep"), "{e}");
    // Complexity: many aliases.
    let wide = format!("{{ {} }}", (0..2500).map(|i| format!("a{i}: nodes {{ name }}")).collect::<Vec<_>>().join(" "));
    let e = s.gql_err(&wide, json!({})).await;
    assert!(e["message"].as_str().unwrap().contains("too complex"), "{e}");
    // Complexity: nested lists fan out (each list costs ten times its items).
    let fan = "{ nodes { children { dependents { dependsOn { heldBy { name } } } } } }";
    let e = s.gql_err(fan, json!({})).await;
    assert!(e["message"].as_str().unwrap().contains("too complex"), "{e}");
    assert_eq!(e["extensions"]["code"], "VALIDATION", "the validator's refusals carry a code too");
    // Page size.
    let e = s.gql_err("{ events(first: 100000) { edges { cursor } } }", json!({})).await;
    assert_eq!(e["extensions"]["code"], "VALIDATION");
    // Body size: refused from the announced length, before the body is read.
    {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let addr = s.url.trim_start_matches("http://").trim_end_matches("/graphql").to_owned();
        let mut tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let head = format!(
            "POST /graphql HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            s.token,
            8 * 1024 * 1024
        );
        tcp.write_all(head.as_bytes()).await.unwrap();
        tcp.write_all(&[b' '; 4096]).await.unwrap();
        let mut buf = vec![0u8; 256];
        let n = tcp.read(&mut buf).await.unwrap();
        let answer = String::from_utf8_lossy(&buf[..n]);
        assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    }
    // The server still serves.
    assert_eq!(s.gql("{ nodes(state: CONFIGURED) { name } }", json!({})).await["nodes"].as_array().unwrap().len(), 11);
}

#[tokio::test]
async fn sigterm_leaves_no_cascade_in_progress() {
    let slow = homelab_faster(1).replace("start_delay_ms = 3000", "start_delay_ms = 60000");
    let mut s = Server::with_config(&slow, &["--shutdown-grace", "500ms"]);
    let d = s.gql("mutation { startNode(id: \"sandbox\") { id } }", json!({})).await;
    let id = d["startNode"]["id"].as_str().unwrap().to_owned();
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let status = s.terminate();
    assert!(status.success(), "{status:?}\n{}", s.log());
    let key_dir = s.db.parent().unwrap().to_owned();
    let key = wakehub_core::secrets::MasterKey::from_file(&key_dir.join("master.key")).unwrap();
    let store = wakehub_core::store::Store::open(&s.db, key).unwrap();
    let n: i64 = id.trim_start_matches("cascade:").parse().unwrap();
    let record = store.cascade(wakehub_core::model::CascadeId::new(n)).unwrap().unwrap();
    assert_eq!(record.status.as_str(), "interrupted");
    let filter = wakehub_core::store::CascadeFilter::default();
    assert!(store.cascades(&filter).unwrap().iter().all(|c| c.status.is_final()));
}

#[tokio::test]
async fn graphiql_and_health_are_served() {
    let s = Server::demo();
    let page = reqwest::get(&s.url).await.unwrap();
    assert_eq!(page.status().as_u16(), 200);
    let html = page.text().await.unwrap();
    assert!(html.to_lowercase().contains("graphiql"), "{html}");
    assert_eq!(reqwest::get(format!("{}/healthz", s.base)).await.unwrap().text().await.unwrap(), "ok");
    let m = reqwest::get(format!("{}/metrics", s.base)).await.unwrap().text().await.unwrap();
    assert!(m.contains("wakehub_subscribers"), "{m}");
}

#[tokio::test]
async fn secrets_never_come_back_through_the_api() {
    let lab = "[[node]]\nname = \"nas\"\nkind = \"physical\"\n[node.connector]\ntype = \"wol-ssh\"\nmac = \"52:54:00:00:00:01\"\nhost = \"127.0.0.1\"\nssh_password = \"pl41ntext-Secret\"\n";
    let s = Server::with_config(lab, &[]);
    let d = s.gql("{ node(id: \"nas\") { connector { type settings } } }", json!({})).await;
    let settings = &d["node"]["connector"]["settings"];
    assert!(settings["ssh_password"]["secret"].as_str().unwrap().starts_with("credential:"), "{settings}");
    let everything = [
        d.to_string(),
        s.gql("mutation { exportTopology }", json!({})).await.to_string(),
        s.gql("{ events(first: 500) { edges { node { kind payload { __typename } } } } }", json!({})).await.to_string(),
        s.log(),
        String::from_utf8_lossy(&std::fs::read(&s.db).unwrap()).into_owned(),
    ];
    for text in everything {
        assert!(!text.contains("pl41ntext-Secret"), "a secret leaked: {text}");
    }
    // A node created through the API with an inline secret: stored encrypted, shown as a reference.
    let create = "mutation($input: NodeInput!) { createNode(input: $input) { connector { settings } } }";
    let d = s
        .gql(create, json!({"input": {"name": "pc", "kind": "physical", "connector": {"type": "wol-ssh", "mac": "52:54:00:00:00:02", "host": "127.0.0.1", "ssh_password": "an0ther-Secret"}}}))
        .await;
    assert!(!d.to_string().contains("an0ther-Secret"), "{d}");
    assert!(
        d["createNode"]["connector"]["settings"]["ssh_password"]["secret"].as_str().unwrap().starts_with("credential:")
    );
}
