//! The wake-on-request proxy of a real `wakehub serve --proxy-listen`, in front of a real
//! service (aiohttp): an API client told `503` + `Retry-After` while the node starts, or
//! answered once it is up when it asks to wait; requests, bodies and WebSockets streamed
//! through and counted as activity; the waiting page and its live feed; forward-auth for a
//! proxy in front (including nginx's 401 mode); a TCP wake holding a connection while the
//! node starts; routes through the API; unknown hosts refused.

use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wakehub_tests::{Upstream, free_port, self_signed};

use crate::support::Server;

fn lab(upstream: &Upstream, tcp_port: u16) -> String {
    format!(
        r#"
[[node]]
name = "nas"
kind = "physical"
[node.connector]
type = "sim"
start_delay_ms = 300

[[node]]
name = "jellyfin"
kind = "physical"
depends_on = ["nas"]
url = "{url}"
idle = {{ after = "30m" }}
proxy = {{ hosts = ["jellyfin.test"] }}
[node.connector]
type = "sim"
start_delay_ms = 1200
stop_delay_ms = 100

[[node]]
name = "files"
kind = "physical"
proxy = {{ tcp = [{{ listen = "127.0.0.1:{tcp_port}", to = "127.0.0.1:{port}" }}] }}
[node.connector]
type = "sim"
start_delay_ms = 800
"#,
        url = upstream.url(),
        port = upstream.port
    )
}

async fn status(s: &Server, node: &str) -> String {
    s.gql("query($id: ID!) { node(id: $id) { status } }", json!({"id": node})).await["node"]["status"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn until_status(s: &Server, node: &str, want: &str) {
    for _ in 0..200 {
        if status(s, node).await == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{node} never {want}: {}", s.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_wake_the_service_then_stream_through() {
    let upstream = Upstream::start();
    let (proxy_port, tcp_port) = (free_port(), free_port());
    let s = Server::with_config(
        &lab(&upstream, tcp_port),
        &["--proxy-listen", &format!("127.0.0.1:{proxy_port}"), "--monitor-every", "1s"],
    );
    let proxy = format!("http://127.0.0.1:{proxy_port}");
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let get = |path: &str| http.get(format!("{proxy}{path}")).header("host", "jellyfin.test");

    // Unknown host: refused, nothing started.
    let r = http.get(format!("{proxy}/")).header("host", "other.test").send().await.unwrap();
    assert_eq!(r.status(), 404);

    // Off: an API client is told to come back, and the node starts.
    let r = get("/").send().await.unwrap();
    assert_eq!(r.status(), 503);
    let retry: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=600).contains(&retry), "{retry}");
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!((&body["status"], &body["node"]), (&json!("starting"), &json!("jellyfin")), "{body}");
    let cascade = body["cascade"].as_str().unwrap().to_owned();

    // A client that waits gets its answer once the node (and the NAS it needs) is up.
    let started = Instant::now();
    let r = get("/").header("x-wakehub-wait", "30").send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "hello from the service");
    assert!(started.elapsed() >= Duration::from_millis(500), "it waited for the start");
    assert_eq!(status(&s, "nas").await, "ON");
    let c = s.gql("query($id: ID!) { cascade(id: $id) { status requestedBy } }", json!({"id": cascade})).await;
    assert_eq!(c["cascade"], json!({"status": "COMPLETED", "requestedBy": "proxy"}));

    // On: bodies stream both ways, the forwarding headers are added, hop-by-hop ones dropped.
    let payload = vec![b'w'; 3 << 20];
    let r = http
        .post(format!("{proxy}/echo"))
        .header("host", "jellyfin.test")
        .header("x-trace", "42")
        .header("connection", "keep-alive, x-drop-me")
        .header("x-drop-me", "1")
        .body(payload.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-seen-x-trace"], "42");
    assert_eq!(r.headers()["x-seen-x-forwarded-host"], "jellyfin.test");
    assert_eq!(r.headers()["x-seen-x-forwarded-for"], "127.0.0.1");
    assert!(!r.headers().contains_key("x-seen-x-drop-me"));
    assert_eq!(r.bytes().await.unwrap().len(), payload.len());
    let r = get("/big?mb=8").send().await.unwrap();
    assert_eq!(r.bytes().await.unwrap().len(), 8 << 20);

    // A WebSocket upgrade goes through and echoes.
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", proxy_port)).await.unwrap();
    let request = tokio_tungstenite::tungstenite::handshake::client::Request::builder()
        .uri(format!("ws://jellyfin.test:{proxy_port}/ws"))
        .header("host", "jellyfin.test")
        .header("connection", "Upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", tokio_tungstenite::tungstenite::handshake::client::generate_key())
        .body(())
        .unwrap();
    let (mut ws, _) = tokio_tungstenite::client_async(request, tcp).await.unwrap();
    ws.send(tokio_tungstenite::tungstenite::Message::text("ping through the proxy")).await.unwrap();
    let echoed = ws.next().await.unwrap().unwrap();
    assert_eq!(echoed.into_text().unwrap().as_str(), "ping through the proxy");
    ws.close(None).await.unwrap();

    // Requests count as the node's activity.
    let mut last = String::new();
    for _ in 0..60 {
        let d = s.gql("{ node(id: \"jellyfin\") { idleStatus { lastActivity } } }", json!({})).await;
        last = d["node"]["idleStatus"]["lastActivity"].as_str().unwrap_or_default().to_owned();
        if last.ends_with("through the proxy") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // (The WebSocket counted last: "an open WebSocket through the proxy".)
    assert!(last.ends_with("through the proxy"), "{last}");

    // Forward-auth for a proxy in front: 200 while up.
    let auth = |mode: &str| {
        http.get(format!("{proxy}/.wakehub/auth{mode}"))
            .header("x-forwarded-host", "jellyfin.test:443")
            .header("x-forwarded-uri", "/web/index.html?x=1")
            .header("accept", "text/html")
    };
    assert_eq!(auth("").send().await.unwrap().status(), 200);
    s.gql("mutation { stopNode(id: \"jellyfin\") { id } }", json!({})).await;
    until_status(&s, "jellyfin", "OFF").await;
    // Down: nginx's mode says 401 (its error_page asks again), the others get the page.
    assert_eq!(auth("?mode=nginx").send().await.unwrap().status(), 401);
    let r = auth("").send().await.unwrap();
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));
    let page = r.text().await.unwrap();
    assert!(page.contains("<title>Starting jellyfin…</title>"), "{page}");
    // Its live feed follows that cascade to its end.
    let ticket = page.split("/.wakehub/wait/").nth(1).unwrap().split('\'').next().unwrap().to_owned();
    let feed = http.get(format!("{proxy}/.wakehub/wait/{ticket}")).send().await.unwrap();
    assert_eq!(feed.headers()["content-type"], "text/event-stream");
    let mut frames = feed.bytes_stream();
    let mut seen = String::new();
    while !seen.contains("\"status\":\"completed\"") {
        let chunk = tokio::time::timeout(Duration::from_secs(20), frames.next()).await.unwrap().unwrap().unwrap();
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(seen.contains("\"node\":\"jellyfin\",\"action\":\"start\",\"status\":\"done\""), "{seen}");
    let r = http.get(format!("{proxy}/.wakehub/wait/not-a-ticket")).send().await.unwrap();
    assert_eq!(r.status(), 404);

    // A TCP wake: the connection is held while `files` starts, then reaches the service.
    assert_eq!(status(&s, "files").await, "OFF");
    let started = Instant::now();
    let mut conn = tokio::net::TcpStream::connect(("127.0.0.1", tcp_port)).await.unwrap();
    conn.write_all(b"GET / HTTP/1.1\r\nhost: files\r\nconnection: close\r\n\r\n").await.unwrap();
    let mut answer = String::new();
    conn.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200") && answer.ends_with("hello from the service"), "{answer}");
    assert!(started.elapsed() >= Duration::from_millis(700), "held while it started");
    assert_eq!(status(&s, "files").await, "ON");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_are_written_through_the_api_and_tcp_wakes_only_in_the_file() {
    let upstream = Upstream::start();
    let proxy_port = free_port();
    let s = Server::with_config(&lab(&upstream, free_port()), &["--proxy-listen", &format!("127.0.0.1:{proxy_port}")]);
    let update = "mutation($i: NodeInput!) { updateNode(id: \"nas\", input: $i) { proxy { hosts path upstream tcp { listen to } } } }";
    let input = |proxy: serde_json::Value| json!({"i": {"name": "nas", "kind": "physical", "connector": {"type": "sim", "initially": "on"}, "proxy": proxy}});
    let d = s.gql(update, input(json!({"hosts": ["nas.test"], "path": "/files", "upstream": upstream.url()}))).await;
    assert_eq!(
        d["updateNode"]["proxy"],
        json!({"hosts": ["nas.test"], "path": "/files", "upstream": upstream.url(), "tcp": []})
    );
    // A route without anywhere to go, a bad host: refused with their field.
    let (_, r) = s.post_as(Some(&s.token), update, input(json!({"hosts": ["nas.test"]}))).await;
    assert!(r["errors"][0]["message"].as_str().unwrap().contains("give `upstream`"), "{r}");
    let (_, r) =
        s.post_as(Some(&s.token), update, input(json!({"hosts": ["NAS test"], "upstream": upstream.url()}))).await;
    assert!(r["errors"][0]["message"].as_str().unwrap().contains("hosts:"), "{r}");
    // A port WakeHub would listen on is the operator's to choose.
    let (_, r) = s
        .post_as(
            Some(&s.token),
            update,
            input(json!({"hosts": ["nas.test"], "upstream": upstream.url(), "tcp": [{"listen": "0.0.0.0:2222", "to": "10.0.0.5:22"}]})),
        )
        .await;
    assert!(r["errors"][0]["message"].as_str().unwrap().contains("proxy.tcp"), "{r}");

    // The new route serves at once: outside its prefix nothing is routed; inside, the path
    // goes through unchanged (the service has no /files: its own 404 comes back).
    s.gql("mutation { startNode(id: \"nas\") { id } }", json!({})).await;
    until_status(&s, "nas", "ON").await;
    let get = |path: &str| {
        reqwest::Client::new().get(format!("http://127.0.0.1:{proxy_port}{path}")).header("host", "nas.test").send()
    };
    let r = get("/filesystem").await.unwrap();
    assert_eq!(r.status(), 404);
    assert!(r.text().await.unwrap().starts_with("WakeHub routes nothing for nas.test/filesystem"));
    let r = get("/files/a").await.unwrap();
    assert_eq!(r.status(), 404);
    assert!(r.text().await.unwrap().contains("Not Found"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_service_is_reached_only_through_its_pinned_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, fp) = self_signed(dir.path(), "nas.test");
    let upstream = Upstream::start_tls(&cert, &key);
    let port = free_port();
    let node = |name: &str, pin: &str| {
        format!(
            "[[node]]\nname = \"{name}\"\nkind = \"physical\"\n[node.proxy]\nhosts = [\"{name}.test\"]\n\
             upstream = \"https://127.0.0.1:{}\"\n{pin}\n[node.connector]\ntype = \"sim\"\ninitially = \"on\"\n",
            upstream.port
        )
    };
    let lab = [
        node("pinned", &format!("tls_fingerprint = \"{fp}\"")),
        node("unpinned", ""),
        node("wrong", &format!("tls_fingerprint = \"{}\"", ["00"; 32].join(":"))),
    ]
    .concat();
    let s = Server::with_config(&lab, &["--proxy-listen", &format!("127.0.0.1:{port}")]);
    let http = reqwest::Client::new();
    let get = |host: &str| http.get(format!("http://127.0.0.1:{port}/headers")).header("host", host).send();
    let mut status = None;
    for _ in 0..100 {
        match get("pinned.test").await {
            Ok(r) if r.status() == 200 => {
                let seen: serde_json::Value = r.json().await.unwrap();
                assert_eq!(seen["Host"], "pinned.test", "{seen}");
                status = Some(200);
                break;
            }
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    assert_eq!(status, Some(200), "the pinned service never answered: {}", s.log());
    // Its self-signed certificate is not trusted without the pin, nor with another one.
    for host in ["unpinned.test", "wrong.test"] {
        let r = get(host).await.unwrap();
        assert_eq!(r.status(), 502, "{host}");
        assert!(r.text().await.unwrap().contains("does not answer"), "{host}");
    }
    // A pin that is not a fingerprint is refused with its field.
    let bad = node("bad", "tls_fingerprint = \"AB:CD\"");
    let err = wakehub_core::topology_file::parse(&bad, &wakehub_core::topology_file::ParseOptions::operator())
        .unwrap_err()
        .to_string();
    assert!(err.contains("tls_fingerprint: a SHA-256 fingerprint"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxy_serves_https_with_the_operators_certificate() {
    let upstream = Upstream::start();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, _) = self_signed(dir.path(), "jellyfin.test");
    let port = free_port();
    let lab = format!(
        "[[node]]\nname = \"jellyfin\"\nkind = \"physical\"\nurl = \"{}\"\nproxy = {{ hosts = [\"jellyfin.test\"] }}\n\
         [node.connector]\ntype = \"sim\"\ninitially = \"on\"\n",
        upstream.url()
    );
    let (c, k) = (cert.display().to_string(), key.display().to_string());
    let s = Server::with_config(
        &lab,
        &["--proxy-listen", &format!("127.0.0.1:{port}"), "--proxy-tls-cert", &c, "--proxy-tls-key", &k],
    );
    let pem = std::fs::read(&cert).unwrap();
    let https = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .resolve("jellyfin.test", std::net::SocketAddr::from(([127, 0, 0, 1], port)))
        .build()
        .unwrap();
    let mut answer = None;
    for _ in 0..100 {
        let r = https.get(format!("https://jellyfin.test:{port}/headers")).send().await.unwrap();
        if r.status() == 200 {
            answer = Some(r.json::<serde_json::Value>().await.unwrap());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let seen = answer.unwrap_or_else(|| panic!("never up: {}", s.log()));
    assert_eq!(seen["X-Forwarded-Proto"], "https", "{seen}");
    // A client that does not trust the certificate gets no answer at all.
    let err = reqwest::Client::builder()
        .resolve("jellyfin.test", std::net::SocketAddr::from(([127, 0, 0, 1], port)))
        .build()
        .unwrap()
        .get(format!("https://jellyfin.test:{port}/"))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_connect(), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_that_does_not_answer_is_a_502_and_one_start_not_one_per_request() {
    let (proxy_port, dead) = (free_port(), free_port());
    let lab = format!(
        "[[node]]\nname = \"ghost\"\nkind = \"physical\"\nurl = \"http://127.0.0.1:{dead}\"\nproxy = {{ hosts = [\"ghost.test\"] }}\n\
         [node.connector]\ntype = \"sim\"\ninitially = \"on\"\n"
    );
    let s = Server::with_config(&lab, &["--proxy-listen", &format!("127.0.0.1:{proxy_port}")]);
    let http = reqwest::Client::new();
    let mut statuses = Vec::new();
    for _ in 0..40 {
        let r = http.get(format!("http://127.0.0.1:{proxy_port}/")).header("host", "ghost.test").send().await.unwrap();
        statuses.push(r.status().as_u16());
        if statuses.iter().filter(|s| **s == 502).count() >= 5 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(statuses.iter().filter(|s| **s == 502).count() >= 5, "{statuses:?}");
    let d = s.gql("{ cascades(first: 50) { nodes { requestedBy } } }", json!({})).await;
    let by_proxy = d["cascades"]["nodes"].as_array().unwrap().iter().filter(|c| c["requestedBy"] == "proxy").count();
    assert!(by_proxy <= 2, "one start (perhaps one while it was first seen), not one per request: {d}");
}
