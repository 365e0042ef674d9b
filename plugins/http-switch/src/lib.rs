//! A generic switch: on, off and status are HTTP requests the node's configuration writes.
//!
//! Keys, for each of `on`, `off`, `status`: `<op>_url` (required), `<op>_method` (`POST`
//! for on/off, `GET` for status), `<op>_body` (a string), and `content_type` (default
//! `application/json` when a body is given); `expect_status` (default: any 2xx); the state
//! from the status answer: `state_pointer` (a JSON pointer such as `/state` or `/POWER`), or
//! `state_regex` (a regular expression searched in the body: with a capture group, the
//! group is the state; without, a match means on); `on_value` (default `on`, compared
//! case-insensitively; a boolean `true` or the number `1` also count as on). Credentials
//! (secrets, injected by the host): `token` (Bearer), `username` + `password` (Basic, or
//! HTTP Digest with `auth_scheme = "digest"`), or `header_name` + `header_value`. `tls_fingerprint` pins a self-signed certificate.
//!
//! Measurements (`measure`, for inactivity rules and the energy report), read from the
//! answer to `measure_url` (same `_method`/`_body` keys; the status request without it):
//! `watts_pointer` (a JSON pointer to the power drawn, a number or a numeric string such
//! as a Home Assistant sensor's `/state`), `in_use_pointer` (a JSON pointer to whether the
//! device is in use: `true`, a non-zero number, a non-empty array or object, or a string
//! other than empty, `0`, `false`, `off`, `idle`).
//!
//! Covers Home Assistant (`POST /api/services/switch/turn_on` with
//! `{"entity_id": "switch.x"}`, status `GET /api/states/switch.x`, `state_pointer =
//! "/state"`, a long-lived `token`), Shelly/Tasmota-style plugs and vendor APIs.

use std::time::Duration;

use serde_json::Value;
use wakehub_plugin_sdk::*;

struct HttpSwitch;

fn method(name: Option<&str>, default: http::Method) -> Result<http::Method, ConnectorError> {
    Ok(match name.map(str::to_ascii_uppercase).as_deref() {
        None => default,
        Some("GET") => http::Method::Get,
        Some("HEAD") => http::Method::Head,
        Some("POST") => http::Method::Post,
        Some("PUT") => http::Method::Put,
        Some("PATCH") => http::Method::Patch,
        Some("DELETE") => http::Method::Delete,
        Some(other) => return Err(error(ErrorCode::InvalidConfig, format!("unknown HTTP method `{other}`"))),
    })
}

fn send(node: &Node, op: &str, default: http::Method) -> Result<http::Response, ConnectorError> {
    let c = config(node);
    let url = c.require_str(&format!("{op}_url"))?.to_owned();
    let mut req = request(method(c.str(&format!("{op}_method")), default)?, &url);
    if let Some(body) = c.str(&format!("{op}_body")) {
        let ct = c.str("content_type").unwrap_or("application/json");
        req.headers.push(http::Header { name: "Content-Type".into(), value: ct.into() });
        req.body = Some(body.as_bytes().to_vec());
    }
    req.auth = if c.is_secret("token") {
        Some(http::Auth::Bearer("token".into()))
    } else if let (Some(user), true) = (c.str("username"), c.is_secret("password")) {
        let credentials = (user.into(), "password".into());
        Some(if c.str("auth_scheme") == Some("digest") {
            http::Auth::Digest(credentials)
        } else {
            http::Auth::Basic(credentials)
        })
    } else if let (Some(name), true) = (c.str("header_name"), c.is_secret("header_value")) {
        Some(http::Auth::Header((name.into(), "header_value".into())))
    } else {
        None
    };
    let resp = http::send(&req)?;
    let ok = match c.int("expect_status") {
        Some(code) => i64::from(resp.status) == code,
        None => (200..300).contains(&resp.status),
    };
    if ok {
        return Ok(resp);
    }
    // A 2xx other than `expect_status` is the platform's doing, like any other status.
    let mut e = error_for_status(resp.status, &format!("http-switch: {op}"))
        .err()
        .unwrap_or_else(|| error(ErrorCode::PlatformError, format!("http-switch: {op} answered {}", resp.status)));
    let body: String = String::from_utf8_lossy(&resp.body).chars().take(200).collect();
    e.message = format!("{}: {}", e.message, body.trim());
    Err(e)
}

fn is_on(value: &Value, on: &str) -> bool {
    match value {
        Value::String(s) => s.eq_ignore_ascii_case(on),
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_i64() == Some(1),
        _ => false,
    }
}

impl Plugin for HttpSwitch {
    fn describe() -> PluginInfo {
        info(
            "http-switch",
            env!("CARGO_PKG_VERSION"),
            // A relay switches in milliseconds; the device behind it may take a while to
            // say so (a cloud API, a slow hub).
            &[kind("switch", Duration::from_secs(30), Duration::from_secs(30))
                .typical(Duration::from_secs(1), Duration::from_secs(1))],
            r#"{"type":"object","required":["on_url","off_url","status_url"],"properties":{
                "on_url":{"type":"string"},"off_url":{"type":"string"},"status_url":{"type":"string"},
                "on_method":{"type":"string"},"off_method":{"type":"string"},"status_method":{"type":"string"},
                "on_body":{"type":"string"},"off_body":{"type":"string"},"status_body":{"type":"string"},
                "content_type":{"type":"string"},"expect_status":{"type":"integer"},
                "state_pointer":{"type":"string"},"state_regex":{"type":"string"},"on_value":{"type":"string"},
                "token":{"description":"secret"},"username":{"type":"string"},"password":{"description":"secret"},
                "header_name":{"type":"string"},"header_value":{"description":"secret"},
                "auth_scheme":{"enum":["basic","digest"]},
                "tls_fingerprint":{"type":"string"},"allow_hosts":{"type":"array"},
                "measure_url":{"type":"string"},"measure_method":{"type":"string"},"measure_body":{"type":"string"},
                "watts_pointer":{"type":"string"},"in_use_pointer":{"type":"string"}},
              "additionalProperties":false}"#,
        )
    }

    fn validate(config: &Config) -> Result<(), Vec<ConfigProblem>> {
        // The host has checked the declared schema (keys, types); these are the rules a
        // schema cannot say. Every problem, each with its key.
        let mut problems = Vec::new();
        for key in ["on_url", "off_url", "status_url", "measure_url"] {
            if config.str(key).is_some_and(|u| !u.starts_with("http://") && !u.starts_with("https://")) {
                problems.push(problem(key, "must be an http(s) URL"));
            }
        }
        for key in ["token", "password", "header_value"] {
            if config.get(key).is_some() && !config.is_secret(key) {
                problems.push(problem(key, "must be a secret"));
            }
        }
        if let Some(re) = config.str("state_regex")
            && let Err(e) = regex::Regex::new(re)
        {
            problems.push(problem("state_regex", e.to_string()));
        }
        for key in ["state_pointer", "watts_pointer", "in_use_pointer"] {
            if config.str(key).is_some_and(|p| !p.is_empty() && !p.starts_with('/')) {
                problems.push(problem(key, "is a JSON pointer such as `/state`"));
            }
        }
        if config.get("measure_url").is_some()
            && config.get("watts_pointer").is_none()
            && config.get("in_use_pointer").is_none()
        {
            problems.push(problem("measure_url", "reads nothing without `watts_pointer` or `in_use_pointer`"));
        }
        for key in ["on_method", "off_method", "status_method", "measure_method"] {
            if let Err(e) = method(config.str(key), http::Method::Get) {
                problems.push(problem(key, e.message));
            }
        }
        if config.str("auth_scheme").is_some_and(|s| s != "basic" && s != "digest") {
            problems.push(problem("auth_scheme", "is `basic` (the default) or `digest`"));
        }
        if problems.is_empty() { Ok(()) } else { Err(problems) }
    }

    fn status(node: &Node) -> Result<PowerState, ConnectorError> {
        let resp = send(node, "status", http::Method::Get)?;
        let c = config(node);
        let on = c.str("on_value").unwrap_or("on");
        if let Some(re) = c.str("state_regex") {
            let re = regex::Regex::new(re)
                .map_err(|e| error(ErrorCode::InvalidConfig, format!("http-switch: `state_regex`: {e}")))?;
            let body = String::from_utf8_lossy(&resp.body);
            let on = match re.captures(&body) {
                Some(caps) => caps.get(1).is_none_or(|g| g.as_str().eq_ignore_ascii_case(on)),
                None => false,
            };
            return Ok(if on { PowerState::On } else { PowerState::Off });
        }
        let pointer = c.str("state_pointer").unwrap_or("");
        let body: Value = serde_json::from_slice(&resp.body).map_err(|e| {
            error(
                ErrorCode::PlatformError,
                format!("http-switch: the status answer is not JSON ({e}); set `state_regex`"),
            )
        })?;
        match body.pointer(pointer) {
            Some(v) => Ok(if is_on(v, on) { PowerState::On } else { PowerState::Off }),
            None => Err(error(ErrorCode::PlatformError, format!("http-switch: no `{pointer}` in the status answer"))),
        }
    }

    fn start(node: &Node) -> Result<(), ConnectorError> {
        send(node, "on", http::Method::Post).map(|_| ())
    }

    fn stop(node: &Node) -> Result<(), ConnectorError> {
        send(node, "off", http::Method::Post).map(|_| ())
    }

    fn measure(node: &Node) -> Result<Measurements, ConnectorError> {
        let c = config(node);
        let (watts, in_use) = (c.str("watts_pointer"), c.str("in_use_pointer"));
        if watts.is_none() && in_use.is_none() {
            return Err(error(
                ErrorCode::Unsupported,
                "http-switch: nothing to measure (set `watts_pointer` or `in_use_pointer`)",
            ));
        }
        let op = if c.get("measure_url").is_some() { "measure" } else { "status" };
        let resp = send(node, op, http::Method::Get)?;
        let body: Value = serde_json::from_slice(&resp.body)
            .map_err(|e| error(ErrorCode::PlatformError, format!("http-switch: the {op} answer is not JSON ({e})")))?;
        let at = |pointer: &str| {
            body.pointer(pointer).ok_or_else(|| {
                error(ErrorCode::PlatformError, format!("http-switch: no `{pointer}` in the {op} answer"))
            })
        };
        let mut m = measurements();
        if let Some(pointer) = watts {
            let v = at(pointer)?;
            let w = v.as_f64().or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()));
            m.watts = Some(w.filter(|w: &f64| w.is_finite() && *w >= 0.0).ok_or_else(|| {
                error(ErrorCode::PlatformError, format!("http-switch: `{pointer}` is not a number of watts ({v})"))
            })?);
        }
        if let Some(pointer) = in_use {
            m.in_use = Some(something(at(pointer)?));
        }
        Ok(m)
    }
}

/// Whether a value says "in use": `true`, a non-zero number, a non-empty array or object, a
/// string other than empty, `0`, `false`, `off` or `idle`.
fn something(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|n| n != 0.0),
        Value::String(s) => !["", "0", "false", "off", "idle"].contains(&s.trim().to_ascii_lowercase().as_str()),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

export_plugin!(HttpSwitch);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use wakehub_plugin_sdk::testing::{self, Harness, exchange};

    /// A Home Assistant switch.
    fn switch() -> Node {
        testing::node(
            "desk",
            "switch",
            json!({
                "on_url": "http://ha.lan/api/services/switch/turn_on",
                "on_body": r#"{"entity_id": "switch.desk"}"#,
                "off_url": "http://ha.lan/api/services/switch/turn_off",
                "off_body": r#"{"entity_id": "switch.desk"}"#,
                "status_url": "http://ha.lan/api/states/switch.desk",
                "state_pointer": "/state",
                "token": testing::secret(),
            }),
        )
    }

    #[test]
    fn status_reads_the_state_at_the_pointer_with_the_bearer_token() {
        let h = Harness::new().exchanges([exchange(http::Method::Get, "http://ha.lan/api/states/switch.desk")
            .expect_auth(Some(http::Auth::Bearer("token".into())))
            .respond_json(200, &json!({"state": "on", "entity_id": "switch.desk"}))]);
        assert_eq!(h.run(|| HttpSwitch::status(&switch())), Ok(PowerState::On));
        assert_eq!(h.sent()[0].body, None);

        let h = Harness::new().http(|_| testing::respond_json(200, &json!({"state": "off"})));
        assert_eq!(h.run(|| HttpSwitch::status(&switch())), Ok(PowerState::Off));
    }

    #[test]
    fn start_and_stop_post_the_configured_body() {
        let h = Harness::new().exchanges([
            exchange(http::Method::Post, "http://ha.lan/api/services/switch/turn_on")
                .expect_json(json!({"entity_id": "switch.desk"}))
                .expect_auth(Some(http::Auth::Bearer("token".into())))
                .respond(200, "[]"),
            exchange(http::Method::Post, "http://ha.lan/api/services/switch/turn_off")
                .expect_json(json!({"entity_id": "switch.desk"}))
                .respond(200, "[]"),
        ]);
        assert_eq!(h.run(|| HttpSwitch::start(&switch())), Ok(()));
        assert_eq!(h.run(|| HttpSwitch::stop(&switch())), Ok(()));
        let content_type = &h.sent()[0].headers[0];
        assert_eq!((content_type.name.as_str(), content_type.value.as_str()), ("Content-Type", "application/json"));
    }

    #[test]
    fn a_regex_a_method_and_basic_auth_as_configured() {
        let plug = testing::node(
            "plug",
            "switch",
            json!({
                "on_url": "http://plug.lan/cm?cmnd=Power%20On", "on_method": "get",
                "off_url": "http://plug.lan/cm?cmnd=Power%20Off", "off_method": "GET",
                "status_url": "http://plug.lan/cm?cmnd=Power", "state_regex": r#""POWER":"(\w+)""#,
                "username": "admin", "password": testing::secret(),
            }),
        );
        let h = Harness::new().http(|_| testing::respond(200, r#"{"POWER":"ON"}"#));
        assert_eq!(h.run(|| HttpSwitch::status(&plug)), Ok(PowerState::On));
        assert_eq!(h.run(|| HttpSwitch::start(&plug)), Ok(()));
        let sent = h.sent();
        assert_eq!(sent[1].method, http::Method::Get);
        assert_eq!(sent[1].url, "http://plug.lan/cm?cmnd=Power%20On");
        assert_eq!(sent[1].auth, Some(http::Auth::Basic(("admin".into(), "password".into()))));
    }

    #[test]
    fn failures_keep_their_codes() {
        let code = |answer: fn(&http::Request) -> Result<http::Response, ConnectorError>| {
            let h = Harness::new().http(answer);
            h.run(|| HttpSwitch::start(&switch())).map_err(|e| (e.code, e.message))
        };
        assert_eq!(
            code(|_| testing::respond(401, "401: Unauthorized")),
            Err((ErrorCode::AuthFailed, "http-switch: on answered 401: 401: Unauthorized".into()))
        );
        assert_eq!(code(|_| testing::respond(404, "")).unwrap_err().0, ErrorCode::NotFound);
        assert_eq!(code(|_| testing::respond(504, "")).unwrap_err().0, ErrorCode::Timeout);
        assert_eq!(code(|_| testing::respond(500, "boom")).unwrap_err().0, ErrorCode::PlatformError);
        assert_eq!(code(|_| testing::unreachable("connection refused")).unwrap_err().0, ErrorCode::Unreachable);

        let h = Harness::new().http(|_| testing::respond(200, "<html>"));
        let e = h.run(|| HttpSwitch::status(&switch())).unwrap_err();
        assert_eq!(e.code, ErrorCode::PlatformError);
        assert!(e.message.contains("not JSON"), "{}", e.message);
    }

    #[test]
    fn a_2xx_other_than_expect_status_fails() {
        let mut config: Value = serde_json::from_str(&switch().config).unwrap();
        config["expect_status"] = json!(201);
        let node = testing::node("desk", "switch", config);
        let h = Harness::new().http(|_| testing::respond(200, ""));
        let e = h.run(|| HttpSwitch::start(&node)).unwrap_err();
        assert_eq!((e.code, e.message.as_str()), (ErrorCode::PlatformError, "http-switch: on answered 200: "));
    }

    #[test]
    fn validate_names_the_problem() {
        assert_eq!(HttpSwitch::validate(&Config(serde_json::from_str(&switch().config).unwrap())), Ok(()));
        let plain_token =
            Config(json!({"on_url": "http://a", "off_url": "http://a", "status_url": "http://a", "token": "x"}));
        assert_eq!(HttpSwitch::validate(&plain_token), Err(vec![problem("token", "must be a secret")]));
        // Every problem at once, each with its key.
        let bad = Config(json!({"on_url": "ftp://a", "off_url": "http://a", "status_url": "http://a",
                                "state_pointer": "state", "auth_scheme": "ntlm"}));
        let keys: Vec<_> = HttpSwitch::validate(&bad).unwrap_err().into_iter().map(|p| p.key.unwrap()).collect();
        assert_eq!(keys, ["on_url", "state_pointer", "auth_scheme"]);
    }

    #[test]
    fn measure_reads_the_power_and_whether_it_is_in_use() {
        // A Home Assistant power sensor (a numeric string) and a media player's sessions.
        let node = testing::node(
            "desk",
            "switch",
            json!({
                "on_url": "http://ha.lan/on", "off_url": "http://ha.lan/off",
                "status_url": "http://ha.lan/api/states/switch.desk", "state_pointer": "/state",
                "measure_url": "http://ha.lan/api/states/sensor.desk", "watts_pointer": "/state",
                "in_use_pointer": "/attributes/sessions",
            }),
        );
        let h = Harness::new().exchanges([exchange(http::Method::Get, "http://ha.lan/api/states/sensor.desk")
            .respond(200, r#"{"state": "41.5", "attributes": {"sessions": [{"user": "ann"}]}}"#)]);
        let m = h.run(|| HttpSwitch::measure(&node)).unwrap();
        assert_eq!((m.watts, m.in_use), (Some(41.5), Some(true)));
        let h = Harness::new().http(|_| testing::respond(200, r#"{"state": 3, "attributes": {"sessions": []}}"#));
        let m = h.run(|| HttpSwitch::measure(&node)).unwrap();
        assert_eq!((m.watts, m.in_use), (Some(3.0), Some(false)));
        // Garbage is an error with its code, never a made-up figure.
        let h = Harness::new().http(|_| testing::respond(200, r#"{"state": "unavailable", "attributes": {}}"#));
        let e = h.run(|| HttpSwitch::measure(&node)).unwrap_err();
        assert_eq!(e.code, ErrorCode::PlatformError);
        assert!(e.message.contains("not a number of watts"), "{}", e.message);
        // Nothing configured to read: unsupported, without a request.
        let e = Harness::new().run(|| HttpSwitch::measure(&switch())).unwrap_err();
        assert_eq!(e.code, ErrorCode::Unsupported);
        assert!(something(&json!("playing")) && !something(&json!("idle")) && !something(&json!(0)));
    }
}
