//! What the web dashboard needs from the server, on a real `wakehub serve`: the caller
//! (`me`), accounts managed through the API, node fields (observation time, staleness,
//! URL, what the caller may do), journal filters, the demo's simulated discovery, and the
//! embedded dashboard files themselves (encodings, cache headers, the security policy).

use serde_json::{Value, json};

use crate::support::{Server, homelab_faster, homelab_with_guests};

fn code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"].as_str().unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_manage_users_and_tokens_and_everyone_knows_who_they_are() {
    let s = Server::with_config(&homelab_faster(10), &[]);
    let d = s.gql("{ me { name role scope } }", json!({})).await;
    assert_eq!(d["me"], json!({"name": "tests", "role": "admin", "scope": "*"}));

    // A user created through the API logs in with its role.
    let d = s
        .gql(
            "mutation { createUser(name: \"carol\", password: \"a long passphrase\", role: \"operator\", \
               scope: \"tag:media\") { name role scope createdAt } }",
            json!({}),
        )
        .await;
    assert_eq!(d["createUser"]["scope"], "tag:media");
    let resp = reqwest::Client::new()
        .post(format!("{}/login", s.base))
        .json(&json!({"name": "carol", "password": "a long passphrase"}))
        .send()
        .await
        .unwrap();
    let session: Value = resp.json().await.unwrap();
    let session = session["token"].as_str().unwrap().to_owned();
    let (_, me) = s.post_as(Some(&session), "{ me { name role scope } }", json!({})).await;
    assert_eq!(me["data"]["me"], json!({"name": "carol", "role": "operator", "scope": "tag:media"}));
    // An operator manages no account, and sees only the nodes of its scope, which it may power.
    let (_, e) = s.post_as(Some(&session), "{ users { name } }", json!({})).await;
    assert_eq!(code(&e), "FORBIDDEN", "{e}");
    let (_, e) =
        s.post_as(Some(&session), "mutation { createToken(name: \"x\", role: \"admin\") { secret } }", json!({})).await;
    assert_eq!(code(&e), "FORBIDDEN", "{e}");
    let (_, q) = s.post_as(Some(&session), "{ nodes { name canPower canEdit } }", json!({})).await;
    assert_eq!(
        q["data"]["nodes"],
        json!([{"name": "lxc-jellyfin", "canPower": true, "canEdit": false},
               {"name": "nas", "canPower": true, "canEdit": false}])
    );

    // Bad input is refused with the field it is about; nothing is created.
    let e = s
        .gql_err("mutation { createUser(name: \"dave\", password: \"short\", role: \"viewer\") { name } }", json!({}))
        .await;
    assert_eq!(e["extensions"]["code"], "VALIDATION", "{e}");
    assert_eq!(e["extensions"]["fields"][0]["field"], "password", "{e}");
    let e = s
        .gql_err(
            "mutation { createUser(name: \"dave\", password: \"long enough!\", role: \"root\") { name } }",
            json!({}),
        )
        .await;
    assert!(e["message"].as_str().unwrap().contains("role"), "{e}");
    let e = s
        .gql_err("mutation { createToken(name: \"ci\", role: \"viewer\", expiresIn: \"soon\") { secret } }", json!({}))
        .await;
    assert_eq!(e["extensions"]["code"], "VALIDATION", "{e}");
    assert_eq!(e["extensions"]["fields"][0]["field"], "expiresIn", "{e}");
    let d = s.gql("{ users { name } }", json!({})).await;
    assert_eq!(d["users"], json!([{"name": "carol"}]));

    // A token: its secret once, then it works, is listed without it, and revocation ends it.
    let d = s
        .gql(
            "mutation { createToken(name: \"ci\", role: \"viewer\", expiresIn: \"30days\") \
               { secret token { id name role scope expiresAt revokedAt } } }",
            json!({}),
        )
        .await;
    let secret = d["createToken"]["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whk_"));
    assert!(d["createToken"]["token"]["expiresAt"].is_string());
    let (status, me) = s.post_as(Some(&secret), "{ me { name role } }", json!({})).await;
    assert_eq!((status, &me["data"]["me"]), (200, &json!({"name": "ci", "role": "viewer"})));
    let listed = s.gql("{ tokens { name role revokedAt } }", json!({})).await;
    assert!(!listed.to_string().contains(&secret), "a listing never holds a secret");
    let id = d["createToken"]["token"]["id"].as_str().unwrap().to_owned();
    let d = s.gql("mutation($id: ID!) { revokeToken(id: $id) { revokedAt } }", json!({"id": id})).await;
    assert!(d["revokeToken"]["revokedAt"].is_string());
    assert_eq!(s.post_as(Some(&secret), "{ me { name } }", json!({})).await.0, 401);

    // Removing a user ends its sessions.
    s.gql("mutation { removeUser(name: \"carol\") }", json!({})).await;
    assert_eq!(s.post_as(Some(&session), "{ me { name } }", json!({})).await.0, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_say_when_they_were_seen_and_where_to_open_them() {
    let s = Server::with_config(&homelab_faster(10), &[]);
    // The monitor observes every node at start-up.
    let mut observed = Value::Null;
    for _ in 0..100 {
        observed = s.gql("{ node(id: \"lxc-jellyfin\") { status observedAt stale url } }", json!({})).await;
        if observed["node"]["observedAt"].is_string() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let node = &observed["node"];
    assert_eq!(node["status"], "OFF", "{node}");
    assert_eq!(node["stale"], false, "{node}");
    assert_eq!(node["url"], "http://jellyfin.lab.home:8096");

    // Pinning changes that and nothing else.
    let before =
        s.gql("{ node(id: \"nas\") { pinned tags connector { settings } dependents { name } } }", json!({})).await;
    let d = s.gql("mutation { pinNode(id: \"nas\", pinned: false) { pinned } }", json!({})).await;
    assert_eq!(d["pinNode"]["pinned"], false);
    let after =
        s.gql("{ node(id: \"nas\") { pinned tags connector { settings } dependents { name } } }", json!({})).await;
    let mut expected = before.clone();
    expected["node"]["pinned"] = json!(false);
    assert_eq!(after, expected);

    // A URL is checked where it is written: no script, no credentials.
    let e = s
        .gql_err(
            "mutation { createNode(input: {name: \"x\", kind: \"physical\", url: \"javascript:alert(1)\", \
               connector: {type: \"sim\"}}) { name } }",
            json!({}),
        )
        .await;
    assert_eq!(e["extensions"]["code"], "VALIDATION", "{e}");
    assert_eq!(e["extensions"]["fields"][0]["field"], "url", "{e}");
    // A hosting rule names its field too: a container needs a host that offers docker.
    let e = s
        .gql_err(
            "mutation { createNode(input: {name: \"c\", kind: \"container\", connector: {type: \"sim\"}}) { name } }",
            json!({}),
        )
        .await;
    assert_eq!(e["extensions"]["code"], "VALIDATION", "{e}");
    assert_eq!(e["extensions"]["fields"][0], json!({"node": "c", "field": "parent", "message": e["message"]}), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_journal_filters_by_kind_time_and_node_newest_first() {
    let s = Server::with_config(&homelab_faster(20), &[]);
    let d = s.gql("mutation { startNode(id: \"lxc-jellyfin\") { id } }", json!({})).await;
    let id = d["startNode"]["id"].as_str().unwrap().to_owned();
    assert_eq!(s.wait_cascade(&id).await, "COMPLETED");

    let all = s.gql("{ events(first: 500) { edges { node { id kind } } } }", json!({})).await;
    let all = all["events"]["edges"].as_array().unwrap().clone();
    assert!(all.len() > 5);
    let kinds = s
        .gql(
            "{ events(kinds: [\"cascade-complete\", \"cascade-planned\"], first: 500) { edges { node { kind } } } }",
            json!({}),
        )
        .await;
    let kinds: Vec<&str> =
        kinds["events"]["edges"].as_array().unwrap().iter().map(|e| e["node"]["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["cascade-planned", "cascade-complete"]);

    // Newest first, paged back with `before`.
    let page = s
        .gql("{ events(newestFirst: true, first: 2) { edges { node { id } } pageInfo { hasNextPage } } }", json!({}))
        .await;
    let ids: Vec<&str> =
        page["events"]["edges"].as_array().unwrap().iter().map(|e| e["node"]["id"].as_str().unwrap()).collect();
    let last = all.last().unwrap()["node"]["id"].as_str().unwrap();
    assert_eq!(ids[0], last, "the newest event comes first");
    assert_eq!(page["events"]["pageInfo"]["hasNextPage"], true);
    let before = s
        .gql(
            "query($b: ID!) { events(newestFirst: true, before: $b, first: 1) { edges { node { id } } } }",
            json!({"b": ids[1]}),
        )
        .await;
    let older = all[all.len() - 3]["node"]["id"].as_str().unwrap();
    assert_eq!(before["events"]["edges"][0]["node"]["id"], older);

    // A time window: nothing before the epoch's first second, everything since.
    let none = s.gql("{ events(until: \"1970-01-01T00:00:01Z\") { edges { node { id } } } }", json!({})).await;
    assert_eq!(none["events"]["edges"], json!([]));
    let since =
        s.gql("{ events(since: \"2000-01-01T00:00:00Z\", first: 500) { edges { node { id } } } }", json!({})).await;
    assert_eq!(since["events"]["edges"].as_array().unwrap().len(), all.len());

    // Refused filters name the problem.
    let e = s.gql_err("{ events(kinds: [\"nonsense\"]) { edges { node { id } } } }", json!({})).await;
    assert_eq!(e["extensions"]["code"], "VALIDATION");
    assert!(e["message"].as_str().unwrap().contains("status-change"), "{e}");
    let e = s.gql_err("{ events(since: \"yesterday\") { edges { node { id } } } }", json!({})).await;
    assert_eq!(e["extensions"]["code"], "VALIDATION");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_lab_has_guests_to_discover_and_adopt() {
    let s = Server::with_config(&homelab_with_guests(10), &["--discover-every", "0s"]);
    let d =
        s.gql("mutation { discover(host: \"machine1\") { added { key state node { name kind } } } }", json!({})).await;
    assert_eq!(
        d["discover"]["added"],
        json!([{"key": "sim/vm-nextcloud", "state": "DISCOVERED", "node": {"name": "vm-nextcloud", "kind": "vm"}}])
    );
    let again = s.gql("mutation { discover(host: \"machine1\") { added { key } updated { key } } }", json!({})).await;
    assert_eq!(again["discover"], json!({"added": [], "updated": [{"key": "sim/vm-nextcloud"}]}));
    let d = s.gql("mutation { adoptNode(id: \"vm-nextcloud\") { name state parent { name } } }", json!({})).await;
    assert_eq!(d["adoptNode"], json!({"name": "vm-nextcloud", "state": "CONFIGURED", "parent": {"name": "machine1"}}));
    let d = s.gql("mutation { startNode(id: \"vm-nextcloud\") { id } }", json!({})).await;
    let id = d["startNode"]["id"].as_str().unwrap().to_owned();
    assert_eq!(s.wait_cascade(&id).await, "COMPLETED");
}

async fn get(s: &Server, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let mut req = client.get(format!("{}{path}", s.base));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_is_served_from_the_binary_compressed_and_locked_to_this_origin() {
    let s = Server::demo();
    let page = get(&s, "/", &[]).await;
    assert_eq!(page.status().as_u16(), 200);
    let h = page.headers().clone();
    assert_eq!(h["content-type"], "text/html; charset=utf-8");
    assert_eq!(h["cache-control"], "no-cache");
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'none'") && csp.contains("connect-src 'self'"), "{csp}");
    let html = page.text().await.unwrap();
    assert!(html.contains("<html"), "{html}");

    // Every script and style the page names is served, cached for a year, brotli or gzip
    // as the client takes; a revalidation with the ETag is a 304.
    let assets: Vec<&str> = html.split('"').filter(|p| p.starts_with("/assets/")).collect();
    assert!(!assets.is_empty(), "the page loads its bundle from /assets: {html}");
    for asset in assets {
        let plain = get(&s, asset, &[]).await;
        assert_eq!(plain.status().as_u16(), 200, "{asset}");
        assert!(plain.headers().get("content-encoding").is_none());
        assert_eq!(plain.headers()["cache-control"], "public, max-age=31536000, immutable");
        let size = plain.bytes().await.unwrap().len();
        let br = get(&s, asset, &[("accept-encoding", "gzip, br")]).await;
        assert_eq!(br.headers()["content-encoding"], "br", "{asset}");
        let etag = br.headers()["etag"].to_str().unwrap().to_owned();
        assert!(br.bytes().await.unwrap().len() < size, "{asset}: brotli is smaller");
        let gz = get(&s, asset, &[("accept-encoding", "gzip")]).await;
        assert_eq!(gz.headers()["content-encoding"], "gzip");
        let again = get(&s, asset, &[("accept-encoding", "br"), ("if-none-match", &etag)]).await;
        assert_eq!(again.status().as_u16(), 304);
    }
    // The IDE, the manifest; the compressed twins are not addressable; the old GraphiQL
    // address leads to the new one; nothing else exists.
    let ide = get(&s, "/graphiql", &[]).await;
    assert_eq!(ide.status().as_u16(), 200);
    assert!(ide.text().await.unwrap().contains("/assets/"));
    let manifest = get(&s, "/manifest.webmanifest", &[]).await;
    assert_eq!(manifest.headers()["content-type"], "application/manifest+json");
    let manifest: Value = manifest.json().await.unwrap();
    assert_eq!(manifest["start_url"], "/");
    assert_eq!(get(&s, "/index.html.gz", &[]).await.status().as_u16(), 404);
    assert_eq!(get(&s, "/../Cargo.toml", &[]).await.status().as_u16(), 404);
    assert_eq!(get(&s, "/nothing-here", &[]).await.status().as_u16(), 404);
    let old = get(&s, "/graphql", &[]).await;
    assert_eq!((old.status().as_u16(), old.headers()["location"].to_str().unwrap()), (307, "/graphiql"));
    let post = reqwest::Client::new().post(format!("{}/", s.base)).send().await.unwrap();
    assert_eq!(post.status().as_u16(), 405);
}
