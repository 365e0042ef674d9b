//! Shelly Gen2 devices (Plus Plug S, Plus 1, Pro 1…): one switch component of the device is a
//! node, switched through the Gen2 RPC API over HTTP
//! (<https://shelly-api-docs.shelly.cloud/gen2/>):
//!
//! - status: `GET /rpc/Switch.GetStatus?id=N` → `{"output": true, …}`;
//! - start and stop: `GET /rpc/Switch.Set?id=N&on=true` (or `false`) → `{"was_on": …}`;
//! - test connection: `GET /rpc/Shelly.GetDeviceInfo` (never protected), then a status;
//! - measure: the power the switch's meter reads (`apower`, watts, in `Switch.GetStatus`),
//!   whether the switch is on or off; a switch without a meter (Plus 1) measures nothing.
//!
//! A device with authentication enabled answers `401` with an HTTP Digest challenge (SHA-256,
//! user `admin`, realm the device id): the node's `password` secret is answered by the host
//! (`http::Auth::Digest`), the plugin never sees it.
//!
//! ```toml
//! [[node]]
//! name = "desk-plug"
//! kind = "smart-plug"
//! [node.connector]
//! type = "plugin:shelly"
//! url = "http://192.168.1.50"     # the device
//! switch_id = 0                   # optional: which switch of a multi-relay device
//! password = "env:SHELLY_PASSWORD" # optional: when the device's authentication is on
//! ```

use std::time::Duration;

use serde_json::Value;
use wakehub_plugin_sdk::*;

struct Shelly;

/// The user every Gen2 device authenticates.
const USER: &str = "admin";

/// The device's base URL (without a trailing `/`) and the switch the node is.
fn device(node: &Node) -> Result<(String, i64), ConnectorError> {
    let c = config(node);
    let url = c.require_str("url")?.trim_end_matches('/').to_owned();
    Ok((url, c.int("switch_id").unwrap_or(0)))
}

/// Calls RPC `method` with `query`; the result object, or the error the device's answer means.
fn rpc(node: &Node, method: &str, query: &str, authenticated: bool) -> Result<Value, ConnectorError> {
    let (url, _) = device(node)?;
    let mut req = request(http::Method::Get, &format!("{url}/rpc/{method}{query}"));
    if authenticated && config(node).is_secret("password") {
        req.auth = Some(http::Auth::Digest((USER.into(), "password".into())));
    }
    let resp = http::send(&req)?;
    let body: Option<Value> = serde_json::from_slice(&resp.body).ok();
    let what = format!("{}: {method}", node.name);
    if (200..300).contains(&resp.status) {
        return body.ok_or_else(|| error(ErrorCode::PlatformError, format!("{what} answered something not JSON")));
    }
    // A Gen2 error object: {"code": -105, "message": "Argument 'id', value 3 not found!"}.
    let code = body.as_ref().and_then(|b| b.get("code")).and_then(Value::as_i64);
    let said = body.as_ref().and_then(|b| b.get("message")).and_then(Value::as_str).unwrap_or_default();
    let mut e = match (resp.status, code) {
        (401, _) if !config(node).is_secret("password") => error(
            ErrorCode::AuthFailed,
            format!("{what}: the device's authentication is on and the node has no `password`"),
        ),
        (401, _) => error(ErrorCode::AuthFailed, format!("{what}: the device refused the password")),
        (_, Some(-105)) => error(ErrorCode::InvalidConfig, format!("{what}: no such switch ({said})")),
        (_, Some(404)) => error(ErrorCode::Unsupported, format!("{what}: not a Gen2 switch ({said})")),
        (status, _) => match error_for_status(status, &what) {
            Err(e) => e,
            Ok(()) => error(ErrorCode::PlatformError, format!("{what} answered {status}")),
        },
    };
    if code.is_none() {
        let text: String = String::from_utf8_lossy(&resp.body).chars().take(200).collect();
        if !text.trim().is_empty() {
            e.message = format!("{}: {}", e.message, text.trim());
        }
    }
    Err(e)
}

fn set(node: &Node, on: bool) -> Result<(), ConnectorError> {
    let (_, id) = device(node)?;
    rpc(node, "Switch.Set", &format!("?id={id}&on={on}"), true).map(|_| ())
}

impl Plugin for Shelly {
    fn describe() -> PluginInfo {
        // A relay switches in milliseconds; a device on Wi-Fi answers within a second.
        let plug = kind("smart-plug", Duration::from_secs(10), Duration::from_secs(10))
            .typical(Duration::from_millis(300), Duration::from_millis(300));
        info(
            "shelly",
            env!("CARGO_PKG_VERSION"),
            &[plug],
            r#"{"type":"object","required":["url"],"properties":{
                "url":{"type":"string"},
                "switch_id":{"type":"integer","minimum":0,"maximum":15},
                "password":{"description":"secret: the device's admin password"}},
              "additionalProperties":false}"#,
        )
    }

    fn validate(config: &Config) -> Result<(), Vec<ConfigProblem>> {
        let mut problems = Vec::new();
        if config.str("url").is_some_and(|u| !u.starts_with("http://") && !u.starts_with("https://")) {
            problems.push(problem("url", "must be the device's http:// address"));
        }
        if config.get("password").is_some() && !config.is_secret("password") {
            problems.push(problem("password", "must be a secret (`env:VAR`, `file:PATH` or stored through the API)"));
        }
        if problems.is_empty() { Ok(()) } else { Err(problems) }
    }

    fn status(node: &Node) -> Result<PowerState, ConnectorError> {
        let (_, id) = device(node)?;
        let status = rpc(node, "Switch.GetStatus", &format!("?id={id}"), true)?;
        match status.get("output").and_then(Value::as_bool) {
            Some(true) => Ok(PowerState::On),
            Some(false) => Ok(PowerState::Off),
            None => {
                Err(error(ErrorCode::PlatformError, format!("{}: Switch.GetStatus has no boolean `output`", node.name)))
            }
        }
    }

    fn start(node: &Node) -> Result<(), ConnectorError> {
        set(node, true)
    }

    fn stop(node: &Node) -> Result<(), ConnectorError> {
        set(node, false)
    }

    fn measure(node: &Node) -> Result<Measurements, ConnectorError> {
        let (_, id) = device(node)?;
        let status = rpc(node, "Switch.GetStatus", &format!("?id={id}"), true)?;
        match status.get("apower").and_then(Value::as_f64) {
            Some(w) if w.is_finite() && w >= 0.0 => Ok(Measurements { watts: Some(w), ..measurements() }),
            Some(w) => Err(error(ErrorCode::PlatformError, format!("{}: the meter reads {w} W", node.name))),
            None => Err(error(ErrorCode::Unsupported, format!("{}: this switch has no power meter", node.name))),
        }
    }

    fn test_connection(node: &Node) -> Result<(), ConnectorError> {
        let info = rpc(node, "Shelly.GetDeviceInfo", "", false)?;
        if info.get("gen").and_then(Value::as_i64).is_some_and(|g| g < 2) {
            return Err(error(
                ErrorCode::Unsupported,
                format!("{}: a Gen1 device (this plugin speaks Gen2 RPC)", node.name),
            ));
        }
        Self::status(node).map(|_| ())
    }
}

export_plugin!(Shelly);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use wakehub_plugin_sdk::testing::{self, Harness, exchange};

    fn plug(config: Value) -> Node {
        testing::node("desk-plug", "smart-plug", config)
    }

    fn protected() -> Node {
        plug(json!({"url": "http://shelly.lan/", "switch_id": 1, "password": testing::secret()}))
    }

    #[test]
    fn status_reads_the_switch_output_with_digest_auth() {
        let h = Harness::new().exchanges([exchange(http::Method::Get, "http://shelly.lan/rpc/Switch.GetStatus?id=1")
            .expect_auth(Some(http::Auth::Digest(("admin".into(), "password".into()))))
            .respond(200, r#"{"id":1,"source":"init","output":true,"apower":4.2}"#)]);
        assert_eq!(h.run(|| Shelly::status(&protected())), Ok(PowerState::On));
    }

    #[test]
    fn measure_reads_the_meter() {
        let h = Harness::new().exchanges([exchange(http::Method::Get, "http://shelly.lan/rpc/Switch.GetStatus?id=1")
            .expect_auth(Some(http::Auth::Digest(("admin".into(), "password".into()))))
            .respond(200, r#"{"id":1,"output":true,"apower":38.4,"aenergy":{"total":1234.5}}"#)]);
        let m = h.run(|| Shelly::measure(&protected())).unwrap();
        assert_eq!((m.watts, m.in_use), (Some(38.4), None));
        // A Plus 1 has no meter: nothing measured, said so.
        let h = Harness::new().http(|_| testing::respond(200, r#"{"id":1,"output":true}"#));
        assert_eq!(h.run(|| Shelly::measure(&protected())).unwrap_err().code, ErrorCode::Unsupported);
    }

    #[test]
    fn start_and_stop_set_the_switch() {
        let h = Harness::new().exchanges([
            exchange(http::Method::Get, "http://shelly.lan/rpc/Switch.Set?id=1&on=true")
                .respond(200, r#"{"was_on":false}"#),
            exchange(http::Method::Get, "http://shelly.lan/rpc/Switch.Set?id=1&on=false")
                .respond(200, r#"{"was_on":true}"#),
        ]);
        assert_eq!(h.run(|| Shelly::start(&protected())), Ok(()));
        assert_eq!(h.run(|| Shelly::stop(&protected())), Ok(()));
    }

    #[test]
    fn a_device_without_authentication_gets_no_credentials() {
        let open = plug(json!({"url": "http://shelly.lan"}));
        let h = Harness::new().exchanges([exchange(http::Method::Get, "http://shelly.lan/rpc/Switch.GetStatus?id=0")
            .expect_auth(None)
            .respond(200, r#"{"id":0,"output":false}"#)]);
        assert_eq!(h.run(|| Shelly::status(&open)), Ok(PowerState::Off));
        // The same device with its authentication turned on since: the node needs a password.
        let h = Harness::new().http(|_| testing::respond(401, ""));
        let e = h.run(|| Shelly::start(&open)).unwrap_err();
        assert_eq!(e.code, ErrorCode::AuthFailed);
        assert!(e.message.contains("has no `password`"), "{}", e.message);
    }

    #[test]
    fn the_device_errors_have_their_codes() {
        let answer = |status, body: &'static str| Harness::new().http(move |_| testing::respond(status, body));
        let e = answer(401, "").run(|| Shelly::status(&protected())).unwrap_err();
        assert_eq!((e.code, e.retryable), (ErrorCode::AuthFailed, false));
        let e = answer(404, r#"{"code":-105,"message":"Argument 'id', value 1 not found!"}"#)
            .run(|| Shelly::start(&protected()))
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidConfig);
        assert!(e.message.contains("no such switch (Argument 'id', value 1 not found!)"), "{}", e.message);
        let e = answer(404, r#"{"code":404,"message":"No handler for Switch.Set"}"#)
            .run(|| Shelly::start(&protected()))
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::Unsupported);
        // Overloaded or rebooting: the engine tries a start again.
        let e = answer(503, "Service Unavailable").run(|| Shelly::start(&protected())).unwrap_err();
        assert_eq!((e.code, e.retryable), (ErrorCode::PlatformError, true));
        assert!(e.message.ends_with("answered 503: Service Unavailable"), "{}", e.message);
        let e = answer(200, "<html>").run(|| Shelly::status(&protected())).unwrap_err();
        assert_eq!(e.code, ErrorCode::PlatformError);
        let e = Harness::new().http(|_| testing::unreachable("no route to host")).run(|| Shelly::status(&protected()));
        assert_eq!(e.unwrap_err().code, ErrorCode::Unreachable);
    }

    #[test]
    fn test_connection_asks_the_device_what_it_is_first() {
        let h = Harness::new().exchanges([
            exchange(http::Method::Get, "http://shelly.lan/rpc/Shelly.GetDeviceInfo")
                .expect_auth(None)
                .respond(200, r#"{"id":"shellyplusplugs-a8032ab12345","gen":2,"auth_en":true}"#),
            exchange(http::Method::Get, "http://shelly.lan/rpc/Switch.GetStatus?id=1")
                .respond(200, r#"{"output":false}"#),
        ]);
        assert_eq!(h.run(|| Shelly::test_connection(&protected())), Ok(()));
        let h = Harness::new().http(|_| testing::respond(200, r#"{"id":"shelly1-1234","gen":1}"#));
        assert_eq!(h.run(|| Shelly::test_connection(&protected())).unwrap_err().code, ErrorCode::Unsupported);
    }

    #[test]
    fn validate_names_every_problem_with_its_key() {
        assert_eq!(
            Shelly::validate(&Config(json!({"url": "http://shelly.lan", "password": testing::secret()}))),
            Ok(())
        );
        let problems = Shelly::validate(&Config(json!({"url": "shelly.lan", "password": "plain"}))).unwrap_err();
        let keys: Vec<_> = problems.iter().filter_map(|p| p.key.as_deref()).collect();
        assert_eq!(keys, ["url", "password"]);
    }

    #[test]
    fn its_kind_switches_in_seconds_not_minutes() {
        let info = Shelly::describe();
        let plug = &info.kinds[0];
        assert_eq!(
            (plug.name.as_str(), plug.start_timeout_ms, plug.typical_start_ms),
            ("smart-plug", 10_000, Some(300))
        );
    }
}
