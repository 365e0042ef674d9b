//! Test a plugin natively, without WebAssembly: a [`Harness`] answers the capability calls
//! ([`http`](crate::http), [`ssh`](crate::ssh), [`wol`](crate::wol), [`tcp`](crate::tcp), [`clock`](crate::clock), [`log`](mod@crate::log)) made on the
//! current thread while it [`run`](Harness::run)s, and records every one of them.
//!
//! Native only (`cfg(not(target_arch = "wasm32"))`): in the component the same functions
//! are the host's imports. The harness is thread-local, so tests running in parallel do not
//! see each other's calls. A capability the test did not simulate answers like a host that
//! does not grant it — `capability-denied`, with a message saying the harness has no answer —
//! never a panic. The clock is virtual: it starts at [`DEFAULT_NOW_MS`] (or the time given to
//! [`Harness::clock`]) and `sleep_ms` advances it without sleeping.
//!
//! HTTP is answered either by a function ([`Harness::http`], with [`respond`],
//! [`respond_json`], [`unreachable`], [`fail`]) or by a script of expected exchanges
//! ([`Harness::exchanges`], built with [`exchange`]): each request must be the next one
//! expected; one that is not is refused, and [`Harness::run`] then panics naming it.
//!
//! ```
//! use wakehub_plugin_sdk::testing::{self, Harness};
//! use wakehub_plugin_sdk::{ErrorCode, http, serde_json::json};
//!
//! let h = Harness::new().http(|req| testing::respond(200, format!("you asked for {}", req.url)));
//! let answer = h.run(|| http::send(&wakehub_plugin_sdk::request(http::Method::Get, "http://plug/state")));
//! assert_eq!(answer.unwrap().body, b"you asked for http://plug/state");
//! assert_eq!(h.sent()[0].url, "http://plug/state");
//!
//! // Not simulated: denied, as by a host that does not grant it.
//! let denied = Harness::new().run(|| wakehub_plugin_sdk::wol::wake()).unwrap_err();
//! assert_eq!(denied.code, ErrorCode::CapabilityDenied);
//! # let _ = json!({});
//! ```

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;

use serde_json::Value;

use crate::{ConnectorError, ErrorCode, Node, error, http, log, ssh};

/// Where the virtual clock starts unless [`Harness::clock`] says otherwise:
/// 2026-01-01T00:00:00Z.
pub const DEFAULT_NOW_MS: u64 = 1_767_225_600_000;

/// A node as the host passes it: `config` is the connector table (a JSON object), secrets
/// written as the host writes them, [`secret()`] (`{"secret": true}`).
pub fn node(name: &str, kind: &str, config: Value) -> Node {
    Node { name: name.into(), kind: kind.into(), config: config.to_string(), host_config: None }
}

/// `node` running on a host whose connector table is `host_config`.
pub fn on_host(node: Node, host_config: Value) -> Node {
    Node { host_config: Some(host_config.to_string()), ..node }
}

/// A secret as the plugin sees it: `{"secret": true}` (its value stays with the host).
pub fn secret() -> Value {
    serde_json::json!({ "secret": true })
}

/// An HTTP answer: `status` and `body`, no headers.
pub fn respond(status: u16, body: impl Into<Vec<u8>>) -> Result<http::Response, ConnectorError> {
    Ok(http::Response { status, headers: Vec::new(), body: body.into() })
}

/// An HTTP answer with a JSON body and `Content-Type: application/json`.
pub fn respond_json(status: u16, body: &Value) -> Result<http::Response, ConnectorError> {
    let header = http::Header { name: "Content-Type".into(), value: "application/json".into() };
    Ok(http::Response { status, headers: vec![header], body: body.to_string().into_bytes() })
}

/// A failure as the host reports it: `code`, `message`, retryable when the SDK's
/// [`error`](crate::error) says so.
pub fn fail<T>(code: ErrorCode, message: &str) -> Result<T, ConnectorError> {
    Err(error(code, message))
}

/// The peer does not answer (`unreachable`, retryable), as the host reports a refused or
/// timed-out connection.
pub fn unreachable<T>(message: &str) -> Result<T, ConnectorError> {
    fail(ErrorCode::Unreachable, message)
}

/// An SSH command the plugin ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshCall {
    /// The user it ran as.
    pub user: String,
    /// The configuration key of the password (the host injects its value).
    pub password_key: String,
    /// The command.
    pub command: String,
}

/// A TCP probe the plugin made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    /// The host probed.
    pub host: String,
    /// Its port.
    pub port: u16,
    /// The timeout the plugin gave.
    pub timeout_ms: u32,
}

/// A line the plugin logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// Its level.
    pub level: log::Level,
    /// Its text.
    pub message: String,
}

/// One expected HTTP request and its answer, for [`Harness::exchanges`]. Built by
/// [`exchange`]; answers `200` with an empty body unless told otherwise.
#[derive(Debug, Clone)]
pub struct Exchange {
    method: http::Method,
    url: String,
    body: Option<ExpectedBody>,
    auth: Option<Option<http::Auth>>,
    answer: Result<http::Response, ConnectorError>,
}

#[derive(Debug, Clone)]
enum ExpectedBody {
    Bytes(Vec<u8>),
    Json(Value),
}

/// Expects a request with this method and exactly this URL next.
pub fn exchange(method: http::Method, url: &str) -> Exchange {
    Exchange { method, url: url.into(), body: None, auth: None, answer: respond(200, Vec::new()) }
}

impl Exchange {
    /// Also expects exactly this body.
    pub fn expect_body(self, body: impl Into<Vec<u8>>) -> Exchange {
        Exchange { body: Some(ExpectedBody::Bytes(body.into())), ..self }
    }
    /// Also expects a JSON body equal to `body` (compared as JSON, not as text).
    pub fn expect_json(self, body: Value) -> Exchange {
        Exchange { body: Some(ExpectedBody::Json(body)), ..self }
    }
    /// Also expects these credentials (`None`: none).
    pub fn expect_auth(self, auth: Option<http::Auth>) -> Exchange {
        Exchange { auth: Some(auth), ..self }
    }
    /// Answers `status` with `body`.
    pub fn respond(self, status: u16, body: impl Into<Vec<u8>>) -> Exchange {
        Exchange { answer: respond(status, body), ..self }
    }
    /// Answers `status` with a JSON `body`.
    pub fn respond_json(self, status: u16, body: &Value) -> Exchange {
        Exchange { answer: respond_json(status, body), ..self }
    }
    /// Answers with `answer`, such as [`unreachable`] or [`fail`].
    pub fn answer(self, answer: Result<http::Response, ConnectorError>) -> Exchange {
        Exchange { answer, ..self }
    }

    /// Why `req` is not this exchange, if it is not.
    fn mismatch(&self, req: &http::Request) -> Option<String> {
        if req.method != self.method || req.url != self.url {
            return Some(format!("expected {} {}", verb(self.method), self.url));
        }
        match &self.body {
            Some(ExpectedBody::Bytes(b)) if req.body.as_deref() != Some(b.as_slice()) => {
                return Some(format!("expected the body {:?}", String::from_utf8_lossy(b)));
            }
            Some(ExpectedBody::Json(v)) => {
                let sent = req.body.as_deref().and_then(|b| serde_json::from_slice::<Value>(b).ok());
                if sent.as_ref() != Some(v) {
                    return Some(format!("expected the JSON body {v}"));
                }
            }
            _ => {}
        }
        match &self.auth {
            Some(auth) if *auth != req.auth => Some(format!("expected the auth {auth:?}")),
            _ => None,
        }
    }
}

type HttpFn = Box<dyn FnMut(&http::Request) -> Result<http::Response, ConnectorError>>;
type SshFn = Box<dyn FnMut(&SshCall) -> Result<ssh::Output, ConnectorError>>;
type WolFn = Box<dyn FnMut() -> Result<(), ConnectorError>>;
type TcpFn = Box<dyn FnMut(&Probe) -> Result<bool, ConnectorError>>;

enum HttpSim {
    None,
    Fn(HttpFn),
    Script(VecDeque<Exchange>),
}

#[derive(Default)]
struct Record {
    sent: Vec<http::Request>,
    ssh: Vec<SshCall>,
    wakes: usize,
    probes: Vec<Probe>,
    logs: Vec<LogLine>,
    sleeps: Vec<u32>,
    /// Requests the script did not expect, reported by `run`.
    unexpected: Vec<String>,
}

struct State {
    http: RefCell<HttpSim>,
    ssh: RefCell<Option<SshFn>>,
    wol: RefCell<Option<WolFn>>,
    tcp: RefCell<Option<TcpFn>>,
    now_ms: Cell<u64>,
    record: RefCell<Record>,
}

thread_local! {
    static CURRENT: RefCell<Option<Rc<State>>> = const { RefCell::new(None) };
}

/// Simulated capabilities for the calls made on this thread inside [`Harness::run`], and a
/// record of them. Build it with the answers the test needs; what it is not given is denied.
///
/// Dropping a harness whose [`exchanges`](Harness::exchanges) were not all sent panics (unless
/// the test is already panicking), like a mock whose expectations were not met.
pub struct Harness {
    state: Rc<State>,
}

impl Default for Harness {
    fn default() -> Harness {
        Harness::new()
    }
}

impl Harness {
    /// A harness that simulates nothing yet: every capability is denied, the clock stands at
    /// [`DEFAULT_NOW_MS`], logging is recorded.
    pub fn new() -> Harness {
        Harness {
            state: Rc::new(State {
                http: RefCell::new(HttpSim::None),
                ssh: RefCell::new(None),
                wol: RefCell::new(None),
                tcp: RefCell::new(None),
                now_ms: Cell::new(DEFAULT_NOW_MS),
                record: RefCell::new(Record::default()),
            }),
        }
    }

    /// Answers every HTTP request with `answer` (replaces [`exchanges`](Harness::exchanges)).
    pub fn http(self, answer: impl FnMut(&http::Request) -> Result<http::Response, ConnectorError> + 'static) -> Self {
        *self.state.http.borrow_mut() = HttpSim::Fn(Box::new(answer));
        self
    }

    /// Expects exactly these HTTP requests, in this order, and gives their answers (replaces
    /// [`http`](Harness::http)). A request that is not the next expected one is refused
    /// (`capability-denied`) and makes [`run`](Harness::run) panic naming it.
    pub fn exchanges(self, script: impl IntoIterator<Item = Exchange>) -> Self {
        *self.state.http.borrow_mut() = HttpSim::Script(script.into_iter().collect());
        self
    }

    /// Answers every SSH command with `answer`.
    pub fn ssh(self, answer: impl FnMut(&SshCall) -> Result<ssh::Output, ConnectorError> + 'static) -> Self {
        *self.state.ssh.borrow_mut() = Some(Box::new(answer));
        self
    }

    /// Answers every Wake-on-LAN request with `answer`.
    pub fn wol(self, answer: impl FnMut() -> Result<(), ConnectorError> + 'static) -> Self {
        *self.state.wol.borrow_mut() = Some(Box::new(answer));
        self
    }

    /// Answers every TCP probe with `answer`.
    pub fn tcp(self, answer: impl FnMut(&Probe) -> Result<bool, ConnectorError> + 'static) -> Self {
        *self.state.tcp.borrow_mut() = Some(Box::new(answer));
        self
    }

    /// Sets the virtual clock to `now_ms` (milliseconds since the Unix epoch). It moves only
    /// when the plugin sleeps.
    pub fn clock(self, now_ms: u64) -> Self {
        self.state.now_ms.set(now_ms);
        self
    }

    /// Runs `f` (a call into the plugin) with this harness answering the capability calls
    /// of the current thread, and returns what it returned.
    ///
    /// # Panics
    /// When the plugin sent an HTTP request the [`exchanges`](Harness::exchanges) did not
    /// expect (after `f` returned, naming every such request), or when `f` panics.
    pub fn run<T>(&self, f: impl FnOnce() -> T) -> T {
        struct Restore(Option<Rc<State>>);
        impl Drop for Restore {
            fn drop(&mut self) {
                let previous = self.0.take();
                CURRENT.with(|c| *c.borrow_mut() = previous);
            }
        }
        let previous = CURRENT.with(|c| c.borrow_mut().replace(Rc::clone(&self.state)));
        let restore = Restore(previous);
        let out = f();
        drop(restore);
        let unexpected = std::mem::take(&mut self.state.record.borrow_mut().unexpected);
        if !unexpected.is_empty() {
            panic!("testing::Harness: the plugin sent unexpected HTTP requests:\n  {}", unexpected.join("\n  "));
        }
        out
    }

    /// Every HTTP request the plugin made, in order (answered or not).
    pub fn sent(&self) -> Vec<http::Request> {
        self.state.record.borrow().sent.clone()
    }

    /// Every SSH command the plugin ran, in order.
    pub fn ssh_commands(&self) -> Vec<SshCall> {
        self.state.record.borrow().ssh.clone()
    }

    /// How many Wake-on-LAN packets the plugin asked for.
    pub fn wakes(&self) -> usize {
        self.state.record.borrow().wakes
    }

    /// Every TCP probe the plugin made, in order.
    pub fn probes(&self) -> Vec<Probe> {
        self.state.record.borrow().probes.clone()
    }

    /// Every line the plugin logged, in order.
    pub fn logs(&self) -> Vec<LogLine> {
        self.state.record.borrow().logs.clone()
    }

    /// Every `clock::sleep_ms` the plugin made, in order.
    pub fn sleeps(&self) -> Vec<u32> {
        self.state.record.borrow().sleeps.clone()
    }

    /// The virtual clock.
    pub fn now_ms(&self) -> u64 {
        self.state.now_ms.get()
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if std::thread::panicking() || Rc::strong_count(&self.state) > 1 {
            return;
        }
        if let HttpSim::Script(left) = &*self.state.http.borrow()
            && !left.is_empty()
        {
            let left: Vec<String> = left.iter().map(|e| format!("{} {}", verb(e.method), e.url)).collect();
            panic!("testing::Harness: the plugin never sent the expected HTTP requests:\n  {}", left.join("\n  "));
        }
    }
}

/// An HTTP method as written on the wire (`GET`).
fn verb(method: http::Method) -> &'static str {
    match method {
        http::Method::Get => "GET",
        http::Method::Head => "HEAD",
        http::Method::Post => "POST",
        http::Method::Put => "PUT",
        http::Method::Patch => "PATCH",
        http::Method::Delete => "DELETE",
    }
}

/// The denial of a capability the harness does not simulate.
fn denied(capability: &str, call: &str, how: &str) -> ConnectorError {
    let message = CURRENT.with(|c| match c.borrow().is_some() {
        true => format!("testing::Harness has no answer for {capability} ({call}); give it one with {how}"),
        false => format!(
            "no testing::Harness is running on this thread ({capability}: {call}); call the plugin inside Harness::run"
        ),
    });
    ConnectorError { code: ErrorCode::CapabilityDenied, message, retryable: false }
}

fn current() -> Option<Rc<State>> {
    CURRENT.with(|c| c.borrow().clone())
}

/// The native side of the capability modules: what [`crate::http`] and the others call off
/// `wasm32`.
pub(crate) mod sim {
    pub(crate) mod http {
        use crate::ConnectorError;
        use crate::ErrorCode;
        use crate::http::{Request, Response};
        use crate::testing::{HttpSim, current, denied, verb};

        pub(crate) fn send(req: &Request) -> Result<Response, ConnectorError> {
            let call = format!("{} {}", verb(req.method), req.url);
            let Some(state) = current() else { return Err(denied("http", &call, "Harness::http")) };
            state.record.borrow_mut().sent.push(req.clone());
            let number = state.record.borrow().sent.len();
            let mut sim = state.http.borrow_mut();
            let script = match &mut *sim {
                HttpSim::None => return Err(denied("http", &call, "Harness::http or Harness::exchanges")),
                HttpSim::Fn(answer) => return answer(req),
                HttpSim::Script(script) => script,
            };
            let why = match script.front() {
                None => "expected no more requests".to_owned(),
                Some(next) => match next.mismatch(req) {
                    None => return script.pop_front().map_or_else(|| unreachable!(), |e| e.answer),
                    Some(why) => why,
                },
            };
            let body = req.body.as_deref().map(String::from_utf8_lossy).unwrap_or_default();
            let line = format!("request #{number}: {call} (body {body:?}, auth {:?}): {why}", req.auth);
            state.record.borrow_mut().unexpected.push(line.clone());
            Err(ConnectorError {
                code: ErrorCode::CapabilityDenied,
                message: format!("testing::Harness: unexpected {line}"),
                retryable: false,
            })
        }
    }

    pub(crate) mod ssh {
        use crate::ConnectorError;
        use crate::ssh::Output;
        use crate::testing::{SshCall, current, denied};

        pub(crate) fn exec(user: &str, password_key: &str, command: &str) -> Result<Output, ConnectorError> {
            let call = SshCall { user: user.into(), password_key: password_key.into(), command: command.into() };
            let what = format!("{user}: {command}");
            let Some(state) = current() else { return Err(denied("ssh", &what, "Harness::ssh")) };
            state.record.borrow_mut().ssh.push(call.clone());
            let mut answer = state.ssh.borrow_mut();
            match answer.as_mut() {
                Some(answer) => answer(&call),
                None => Err(denied("ssh", &what, "Harness::ssh")),
            }
        }
    }

    pub(crate) mod wol {
        use crate::ConnectorError;
        use crate::testing::{current, denied};

        pub(crate) fn wake() -> Result<(), ConnectorError> {
            let Some(state) = current() else { return Err(denied("wol", "wake", "Harness::wol")) };
            state.record.borrow_mut().wakes += 1;
            let mut answer = state.wol.borrow_mut();
            match answer.as_mut() {
                Some(answer) => answer(),
                None => Err(denied("wol", "wake", "Harness::wol")),
            }
        }
    }

    pub(crate) mod tcp {
        use crate::ConnectorError;
        use crate::testing::{Probe, current, denied};

        pub(crate) fn probe(host: &str, port: u16, timeout_ms: u32) -> Result<bool, ConnectorError> {
            let probe = Probe { host: host.into(), port, timeout_ms };
            let what = format!("{host}:{port}");
            let Some(state) = current() else { return Err(denied("tcp", &what, "Harness::tcp")) };
            state.record.borrow_mut().probes.push(probe.clone());
            let mut answer = state.tcp.borrow_mut();
            match answer.as_mut() {
                Some(answer) => answer(&probe),
                None => Err(denied("tcp", &what, "Harness::tcp")),
            }
        }
    }

    pub(crate) mod log {
        use crate::log::Level;
        use crate::testing::{LogLine, current};

        /// Recorded by the harness; outside one, written to stderr.
        pub(crate) fn log(level: Level, message: &str) {
            match current() {
                Some(state) => state.record.borrow_mut().logs.push(LogLine { level, message: message.into() }),
                None => eprintln!("[{level:?}] {message}"),
            }
        }
    }

    pub(crate) mod clock {
        use crate::testing::current;

        /// The virtual clock; outside a harness, the system's.
        pub(crate) fn now_ms() -> u64 {
            match current() {
                Some(state) => state.now_ms.get(),
                None => std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as u64),
            }
        }

        /// Advances the virtual clock and records the sleep; never blocks.
        pub(crate) fn sleep_ms(ms: u32) {
            if let Some(state) = current() {
                state.now_ms.set(state.now_ms.get() + u64::from(ms));
                state.record.borrow_mut().sleeps.push(ms);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{clock, request, tcp, wol};

    #[test]
    fn every_capability_is_recorded_and_answered_or_denied() {
        let h = Harness::new()
            .ssh(|c| Ok(ssh::Output { exit_code: Some(0), output: format!("ran {}", c.command) }))
            .tcp(|p| Ok(p.port == 22))
            .clock(1_000);
        let (out, probe, woke) = h.run(|| {
            crate::log(log::Level::Info, "hello");
            clock::sleep_ms(500);
            (ssh::exec("root", "ssh_password", "uptime"), tcp::probe("10.0.0.9", 22, 300), wol::wake())
        });
        assert_eq!(out.unwrap().output, "ran uptime");
        assert_eq!(probe, Ok(true));
        let woke = woke.unwrap_err();
        assert_eq!(woke.code, ErrorCode::CapabilityDenied);
        assert!(woke.message.contains("no answer for wol"), "{}", woke.message);
        assert_eq!(
            h.ssh_commands(),
            [SshCall { user: "root".into(), password_key: "ssh_password".into(), command: "uptime".into() }]
        );
        assert_eq!(h.probes(), [Probe { host: "10.0.0.9".into(), port: 22, timeout_ms: 300 }]);
        assert_eq!(h.wakes(), 1);
        assert_eq!(h.logs(), [LogLine { level: log::Level::Info, message: "hello".into() }]);
        assert_eq!((h.sleeps(), h.now_ms()), (vec![500], 1_500));
    }

    #[test]
    fn outside_run_capabilities_are_denied() {
        let _h = Harness::new().http(|_| respond(200, ""));
        let e = http::send(&request(http::Method::Get, "http://x/")).unwrap_err();
        assert_eq!(e.code, ErrorCode::CapabilityDenied);
        assert!(e.message.contains("no testing::Harness is running"), "{}", e.message);
    }

    #[test]
    fn harnesses_on_other_threads_do_not_interfere() {
        let h = Harness::new().http(|_| respond(200, "here"));
        h.run(|| {
            let other = std::thread::spawn(|| http::send(&request(http::Method::Get, "http://x/")).is_err());
            assert!(other.join().unwrap(), "another thread must not see this harness");
            assert!(http::send(&request(http::Method::Get, "http://x/")).is_ok());
        });
        assert_eq!(h.sent().len(), 1);
    }

    #[test]
    fn a_script_answers_in_order_and_refuses_the_unexpected() {
        let h = Harness::new().exchanges([
            exchange(http::Method::Get, "http://x/a").respond(200, "a"),
            exchange(http::Method::Post, "http://x/b").expect_json(serde_json::json!({"k": 1})).respond(201, "b"),
        ]);
        let unexpected = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            h.run(|| {
                let a = http::send(&request(http::Method::Get, "http://x/a")).unwrap();
                assert_eq!(a.body, b"a");
                let mut b = request(http::Method::Post, "http://x/b");
                b.body = Some(br#"{"k": 2}"#.to_vec());
                let e = http::send(&b).unwrap_err();
                assert_eq!(e.code, ErrorCode::CapabilityDenied);
                b.body = Some(br#"{ "k": 1 }"#.to_vec());
                assert_eq!(http::send(&b).unwrap().status, 201);
            })
        }));
        let message = *unexpected.unwrap_err().downcast::<String>().unwrap();
        assert!(message.contains(r#"request #2: POST http://x/b (body "{\"k\": 2}""#), "{message}");
        assert!(message.contains(r#"expected the JSON body {"k":1}"#), "{message}");
        assert_eq!(h.sent().len(), 3);
    }

    #[test]
    fn a_script_not_sent_in_full_fails_the_test() {
        let left = std::panic::catch_unwind(|| {
            let _h = Harness::new().exchanges([exchange(http::Method::Get, "http://x/never")]);
        });
        let message = *left.unwrap_err().downcast::<String>().unwrap();
        assert!(message.contains("never sent the expected HTTP requests:\n  GET http://x/never"), "{message}");
    }

    #[test]
    fn http_statuses_map_to_error_codes() {
        use crate::error_for_status;
        let code = |s| error_for_status(s, "x").map_err(|e| (e.code, e.retryable));
        assert_eq!(code(200), Ok(()));
        assert_eq!(code(403), Err((ErrorCode::AuthFailed, false)));
        assert_eq!(code(410), Err((ErrorCode::NotFound, false)));
        assert_eq!(code(504), Err((ErrorCode::Timeout, true)));
        assert_eq!(code(503), Err((ErrorCode::PlatformError, true)));
        assert_eq!(code(409), Err((ErrorCode::Busy, true)));
        assert_eq!(code(423), Err((ErrorCode::Busy, true)));
        assert_eq!(code(429), Err((ErrorCode::RateLimited, true)));
        assert_eq!(code(500), Err((ErrorCode::PlatformError, false)));
        assert_eq!(code(400), Err((ErrorCode::PlatformError, false)));
        assert_eq!(code(302), Err((ErrorCode::PlatformError, false)));
    }
}
