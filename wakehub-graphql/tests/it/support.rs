//! A real `wakehub serve` process per test, and small HTTP/WebSocket clients.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// Creates API token `name` in the server's database with `args` (`--role`, `--nodes`…).
pub fn token(s: &Server, name: &str, args: &[&str]) -> String {
    let out = Command::new(bin()).args(["token", "create", name]).args(args).arg("--db").arg(&s.db).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// The stable code of a GraphQL answer's first error (empty if none).
pub fn code(v: &Value) -> &str {
    v["errors"][0]["extensions"]["code"].as_str().unwrap_or_default()
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_wakehub")
}

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The demo homelab with every delay divided by `by`, without the guests its machines
/// describe for discovery: its 11 configured nodes only.
pub fn homelab_faster(by: u64) -> String {
    homelab_with_guests(by).lines().filter(|l| !l.starts_with("guests = ")).map(|l| format!("{l}\n")).collect()
}

/// The demo homelab with every delay divided by `by`, as `serve --demo` has it: the
/// machines list guests when discovered.
pub fn homelab_with_guests(by: u64) -> String {
    std::fs::read_to_string(repo().join("examples/homelab.toml"))
        .unwrap()
        .lines()
        .map(|l| match l.split_once(" = ").filter(|(k, _)| k.ends_with("_delay_ms")) {
            Some((k, v)) => format!("{k} = {}\n", v.parse::<u64>().unwrap() / by),
            None => format!("{l}\n"),
        })
        .collect()
}

/// A running `wakehub serve`, killed on drop.
pub struct Server {
    child: Child,
    pub url: String,
    pub ws_url: String,
    pub base: String,
    pub token: String,
    pub db: PathBuf,
    stderr: PathBuf,
    _dir: tempfile::TempDir,
}

impl Server {
    /// `serve --demo`.
    pub fn demo() -> Server {
        Self::start(&["--demo"], None, &[])
    }

    /// `serve --config FILE --db DB` with a token created by `wakehub token create`.
    pub fn with_config(toml: &str, extra: &[&str]) -> Server {
        Self::start(extra, Some(toml), &[])
    }

    /// [`with_config`](Self::with_config), with environment variables for the server.
    pub fn with_config_env(toml: &str, extra: &[&str], env: &[(&str, &str)]) -> Server {
        Self::start(extra, Some(toml), env)
    }

    fn start(extra: &[&str], toml: Option<&str>, env: &[(&str, &str)]) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("w.db");
        let stderr = dir.path().join("stderr.log");
        let mut args: Vec<String> = vec!["serve".into(), "--listen".into(), "127.0.0.1:0".into()];
        let mut token = None;
        if let Some(text) = toml {
            let file = dir.path().join("lab.toml");
            std::fs::write(&file, text).unwrap();
            let out = Command::new(bin())
                .args(["token", "create", "tests", "--role", "admin", "--db"])
                .arg(&db)
                .output()
                .unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            token = Some(String::from_utf8(out.stdout).unwrap().trim().to_owned());
            args.extend(["--config".into(), file.display().to_string(), "--db".into(), db.display().to_string()]);
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        let (child, url, db, token) = Self::launch(&args, env, &stderr, token);
        Self::running(child, url, db, token, stderr, dir)
    }

    /// A server started, from what it said: its API's URL, its database, the token to use.
    fn running(
        child: Child,
        url: String,
        db: PathBuf,
        token: String,
        stderr: PathBuf,
        dir: tempfile::TempDir,
    ) -> Server {
        let base = url.trim_end_matches("/graphql").to_owned();
        Server { child, ws_url: url.replacen("http://", "ws://", 1), url, base, token, db, stderr, _dir: dir }
    }

    /// Stops this server and starts another on its database with `extra` options only (no
    /// `--config`): what an operator does who restarts with other options. The token stays.
    pub fn restart(mut self, extra: &[&str]) -> Server {
        self.terminate();
        let mut args: Vec<String> = vec!["serve".into(), "--listen".into(), "127.0.0.1:0".into(), "--db".into()];
        args.push(self.db.display().to_string());
        args.extend(extra.iter().map(|s| s.to_string()));
        let (child, url, db, token) = Self::launch(&args, &[], &self.stderr, Some(self.token.clone()));
        let dir = std::mem::replace(&mut self._dir, tempfile::tempdir().unwrap());
        Self::running(child, url, db, token, self.stderr.clone(), dir)
    }

    /// Runs `wakehub ARGS` until it prints its address (and, for a demo, its token).
    fn launch(
        args: &[String],
        env: &[(&str, &str)],
        stderr: &Path,
        token: Option<String>,
    ) -> (Child, String, PathBuf, String) {
        let (child, lines) = Self::spawn(args, env, stderr);
        Self::listening(child, &lines, stderr, token, Duration::from_secs(30))
    }

    /// Starts `wakehub ARGS`; its stdout's lines come through the receiver.
    fn spawn(args: &[String], env: &[(&str, &str)], stderr: &Path) -> (Child, std::sync::mpsc::Receiver<String>) {
        let mut child = Command::new(bin())
            .args(args)
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(stderr).unwrap())
            .spawn()
            .expect("start wakehub serve");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            // Drained to the end: a server writing to a closed pipe would be told so.
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        (child, rx)
    }

    /// Waits (at most `within`) until the server says where it listens (and, for a demo, its token).
    fn listening(
        mut child: Child,
        lines: &std::sync::mpsc::Receiver<String>,
        stderr: &Path,
        mut token: Option<String>,
        within: Duration,
    ) -> (Child, String, PathBuf, String) {
        let deadline = Instant::now() + within;
        let mut url = None;
        let mut db_seen = None;
        while url.is_none() || token.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines.recv_timeout(left) {
                Ok(line) => {
                    if let Some(rest) = line.strip_prefix("WakeHub listening on ") {
                        let (u, d) = rest.split_once(" (database ").unwrap();
                        url = Some(u.to_owned());
                        db_seen = Some(PathBuf::from(d.trim_end_matches(')')));
                    } else if let Some(t) = line.strip_prefix("demo token: ") {
                        token = Some(t.to_owned());
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    panic!("wakehub serve did not start: {}", std::fs::read_to_string(stderr).unwrap_or_default());
                }
            }
        }
        (child, url.unwrap(), db_seen.unwrap(), token.unwrap())
    }

    /// `serve --db URL` on a PostgreSQL database, with `--config` when given, `extra`
    /// options and environment `env` (its master key); `token` is the API token to use.
    /// Returns once it serves, leading the database or following the instance that does.
    pub fn on_postgres(url: &str, toml: Option<&str>, extra: &[&str], env: &[(&str, &str)], token: &str) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let stderr = dir.path().join("stderr.log");
        let mut args: Vec<String> =
            vec!["serve".into(), "--listen".into(), "127.0.0.1:0".into(), "--db".into(), url.into()];
        if let Some(text) = toml {
            let file = dir.path().join("lab.toml");
            std::fs::write(&file, text).unwrap();
            args.extend(["--config".into(), file.display().to_string()]);
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        let (child, url, db, token) = Self::launch(&args, env, &stderr, Some(token.to_owned()));
        Self::running(child, url, db, token, stderr, dir)
    }

    /// Whether it leads its shared database (it said it holds the lease).
    pub fn leads(&self) -> bool {
        self.log().contains("this instance holds the database's lease")
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// POSTs a GraphQL request with `token` (or none); returns the status and the body.
    pub async fn post_as(&self, token: Option<&str>, query: &str, variables: Value) -> (u16, Value) {
        let mut req = reqwest::Client::new().post(&self.url).json(&json!({"query": query, "variables": variables}));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// A query that must succeed; returns `data`.
    pub async fn gql(&self, query: &str, variables: Value) -> Value {
        let (status, body) = self.post_as(Some(&self.token), query, variables).await;
        assert_eq!(status, 200, "{body}");
        assert!(body.get("errors").is_none(), "{body}\nserver log:\n{}", self.log());
        body["data"].clone()
    }

    /// A query that must fail; returns the first error.
    pub async fn gql_err(&self, query: &str, variables: Value) -> Value {
        let (_, body) = self.post_as(Some(&self.token), query, variables).await;
        body["errors"][0].clone()
    }

    /// Kills the server outright (SIGKILL), as a crash or a power loss would.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM and waits for the exit (bounded).
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "server did not exit after SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until a cascade has ended; returns its `status`.
    pub async fn wait_cascade(&self, id: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let d = self.gql("query($id: ID!) { cascade(id: $id) { status } }", json!({"id": id})).await;
            let status = d["cascade"]["status"].as_str().unwrap().to_owned();
            if !["PENDING", "IN_PROGRESS"].contains(&status.as_str()) {
                return status;
            }
            assert!(Instant::now() < deadline, "cascade {id} did not end");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A private PostgreSQL server (`tests/peers/postgres.sh`), stopped on drop.
pub struct Postgres {
    dir: tempfile::TempDir,
    pub port: u16,
}

impl Postgres {
    pub fn start() -> Postgres {
        Self::start_with(&[])
    }

    /// A server that refuses plain TCP: clients must use TLS; its certificate is issued for
    /// 127.0.0.1 by the CA in [`ca`](Self::ca).
    pub fn start_tls() -> Postgres {
        Self::start_with(&["tls"])
    }

    /// The CA that issued a TLS server's certificate (PEM).
    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("pg/ca.pem")
    }

    fn start_with(mode: &[&str]) -> Postgres {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let status = Command::new(repo().join("tests/peers/postgres.sh"))
            .args(["start", &dir.path().join("pg").display().to_string(), &port.to_string()])
            .args(mode)
            .status()
            .expect("tests/peers/postgres.sh");
        assert!(status.success(), "PostgreSQL did not start (apt-get install postgresql)");
        Postgres { dir, port }
    }

    /// A new empty database: its URL.
    pub fn database(&self, name: &str) -> String {
        let out = Command::new("psql")
            .args(["-X", "-q", "-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", "wakehub", "-d", "postgres"])
            .args(["-c", &format!("CREATE DATABASE {name}")])
            .output()
            .expect("psql");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        format!("postgres://wakehub@127.0.0.1:{}/{name}", self.port)
    }

    /// Stops the server outright and starts it again on the same data (a database restart).
    pub fn restart(&self) {
        let status = Command::new(repo().join("tests/peers/postgres.sh"))
            .args(["restart", &self.dir.path().join("pg").display().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "PostgreSQL did not restart");
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = Command::new(repo().join("tests/peers/postgres.sh"))
            .args(["stop", &self.dir.path().join("pg").display().to_string()])
            .status();
    }
}

type WsStream = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A GraphQL-over-WebSocket client speaking either protocol.
pub struct Ws {
    pub stream: WsStream,
    pub modern: bool,
}

pub const MODERN: &str = "graphql-transport-ws";
pub const LEGACY: &str = "graphql-ws";

impl Ws {
    /// Connects and sends `connection_init` with `payload`; `Err` with the reason if the
    /// server does not acknowledge.
    /// The socket open, nothing sent.
    pub async fn open(url: &str, protocol: &str) -> Result<Ws, String> {
        let mut req = url.into_client_request().unwrap();
        req.headers_mut().insert("Sec-WebSocket-Protocol", protocol.parse().unwrap());
        let (stream, _) = tokio_tungstenite::connect_async(req).await.map_err(|e| e.to_string())?;
        Ok(Ws { stream, modern: protocol == MODERN })
    }

    pub async fn connect(url: &str, protocol: &str, payload: Value) -> Result<Ws, String> {
        let mut ws = Ws::open(url, protocol).await?;
        ws.send(json!({"type": "connection_init", "payload": payload})).await;
        match ws.next_message(Duration::from_secs(5)).await {
            Some(m) if m["type"] == "connection_ack" => Ok(ws),
            other => Err(format!("no ack: {other:?}")),
        }
    }

    pub async fn send(&mut self, v: Value) {
        let _ = self.stream.send(Message::Text(v.to_string().into())).await;
    }

    /// Starts a subscription with id `id`.
    pub async fn subscribe(&mut self, id: &str, query: &str, variables: Value) {
        let kind = if self.modern { "subscribe" } else { "start" };
        self.send(json!({"id": id, "type": kind, "payload": {"query": query, "variables": variables}})).await;
    }

    /// The next protocol message (answering pings, skipping keep-alives); `None` if the
    /// connection closed or nothing came in time.
    pub async fn next_message(&mut self, timeout: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let msg = tokio::time::timeout_at(deadline, self.stream.next()).await.ok()??;
            match msg.ok()? {
                Message::Text(t) => {
                    let v: Value = serde_json::from_str(&t).ok()?;
                    match v["type"].as_str() {
                        Some("ping") => self.send(json!({"type": "pong"})).await,
                        Some("ka") => {}
                        _ => return Some(v),
                    }
                }
                Message::Close(_) => return None,
                _ => {}
            }
        }
    }

    /// Reads until the server closes the connection; its close frame's code and reason.
    pub async fn close_frame(&mut self, timeout: Duration) -> Option<(u16, String)> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match tokio::time::timeout_at(deadline, self.stream.next()).await.ok()?? {
                Ok(Message::Close(frame)) => return frame.map(|f| (u16::from(f.code), f.reason.to_string())),
                Ok(Message::Text(t)) if t.contains("\"ping\"") => self.send(json!({"type": "pong"})).await,
                Ok(_) => {}
                Err(_) => return None,
            }
        }
    }

    /// The next `data` payload of a subscription (`next` or legacy `data`).
    pub async fn next_data(&mut self, timeout: Duration) -> Option<Value> {
        loop {
            let m = self.next_message(timeout).await?;
            match m["type"].as_str() {
                Some("next" | "data") => return Some(m["payload"].clone()),
                Some("error") => panic!("subscription error: {m}"),
                Some("complete") => return None,
                _ => {}
            }
        }
    }
}

/// The GraphQL selection used for events in these tests.
pub const EVENT_FIELDS: &str = "id kind cascade node payload {
    __typename
    ... on CascadeProgress { step totalSteps current { name action state stepStatus } }
    ... on StatusChange { name state }
    ... on CascadeError { code message status }
    ... on ShutdownProposed { proposal name reason }
    ... on NodeKept { name reason }
}";
