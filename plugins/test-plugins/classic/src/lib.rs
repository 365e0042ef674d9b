//! A Home Assistant switch, written against the frozen `wakehub:connector@0.2.0` WIT itself
//! (`wit/since_v0.2.0`, no SDK): what a plugin released before 0.3.0 looks like. Its node
//! table: `url` (Home Assistant's base URL), `entity` (`switch.nas_plug`), `token` (a
//! secret: a long-lived access token, sent as a bearer token by the host).
//!
//! It uses what 0.2.0 offers: kinds with timeouts, `validate` returning problems with their
//! keys, HTTP with bearer auth, the log and the clock; it has no `measure`.
wit_bindgen::generate!({ path: "../../../wit/since_v0.2.0", world: "connector" });

use exports::wakehub::connector::plugin::Guest;
use serde_json::Value;
use wakehub::connector::types::{
    ConfigProblem, ConnectorError, Discovered, ErrorCode, KindInfo, Node, PluginInfo, PowerState,
};
use wakehub::connector::{clock, http, log};

struct Classic;

fn fail(code: ErrorCode, message: String) -> ConnectorError {
    let retryable = matches!(code, ErrorCode::Unreachable | ErrorCode::Timeout);
    ConnectorError { code, message, retryable }
}

fn keys(node: &Node) -> Result<(String, String), ConnectorError> {
    let config: Value = serde_json::from_str(&node.config).unwrap_or(Value::Null);
    let get = |key: &str| {
        config
            .get(key)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| fail(ErrorCode::InvalidConfig, format!("{}: `{key}` (a string) is required", node.name)))
    };
    Ok((get("url")?.trim_end_matches('/').to_owned(), get("entity")?))
}

fn call(node: &Node, method: http::Method, path: &str, body: Option<String>) -> Result<Vec<u8>, ConnectorError> {
    let (url, _) = keys(node)?;
    let started = clock::now_ms();
    let headers = vec![http::Header { name: "Content-Type".into(), value: "application/json".into() }];
    let req = http::Request {
        method,
        url: format!("{url}{path}"),
        headers,
        body: body.map(String::into_bytes),
        auth: Some(http::Auth::Bearer("token".into())),
        timeout_ms: Some(10_000),
    };
    let resp = http::send(&req)?;
    log::log(log::Level::Debug, &format!("{path}: {} in {} ms", resp.status, clock::now_ms() - started));
    match resp.status {
        200..=299 => Ok(resp.body),
        401 | 403 => Err(fail(ErrorCode::AuthFailed, format!("{}: {path} answered {}", node.name, resp.status))),
        404 => Err(fail(ErrorCode::NotFound, format!("{}: {path} answered 404", node.name))),
        s => Err(fail(ErrorCode::PlatformError, format!("{}: {path} answered {s}", node.name))),
    }
}

fn service(node: &Node, name: &str) -> Result<(), ConnectorError> {
    let (_, entity) = keys(node)?;
    let body = serde_json::json!({ "entity_id": entity }).to_string();
    call(node, http::Method::Post, &format!("/api/services/switch/{name}"), Some(body)).map(|_| ())
}

impl Guest for Classic {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "classic".into(),
            version: "0.2.0".into(),
            wit_version: "0.2.0".into(),
            kinds: vec![KindInfo {
                name: "classic-switch".into(),
                start_timeout_ms: 20_000,
                stop_timeout_ms: 20_000,
                typical_start_ms: Some(500),
                typical_stop_ms: None,
            }],
            config_schema: r#"{"type":"object","required":["url","entity"],"properties":{
                "url":{"type":"string"},"entity":{"type":"string"},"token":{"description":"secret"}},
              "additionalProperties":false}"#
                .into(),
        }
    }

    fn validate(config: String) -> Result<(), Vec<ConfigProblem>> {
        let config: Value = serde_json::from_str(&config).unwrap_or(Value::Null);
        match config.get("entity").and_then(Value::as_str) {
            Some(e) if e.starts_with("switch.") => Ok(()),
            _ => Err(vec![ConfigProblem {
                key: Some("entity".into()),
                message: "must be a switch entity such as `switch.nas_plug`".into(),
            }]),
        }
    }

    fn status(node: Node) -> Result<PowerState, ConnectorError> {
        let (_, entity) = keys(&node)?;
        let body = call(&node, http::Method::Get, &format!("/api/states/{entity}"), None)?;
        let state: Value = serde_json::from_slice(&body)
            .map_err(|e| fail(ErrorCode::PlatformError, format!("{}: not JSON: {e}", node.name)))?;
        match state.get("state").and_then(Value::as_str) {
            Some("on") => Ok(PowerState::On),
            Some("off") => Ok(PowerState::Off),
            _ => Ok(PowerState::Unknown),
        }
    }

    fn start(node: Node) -> Result<(), ConnectorError> {
        service(&node, "turn_on")
    }

    fn stop(node: Node) -> Result<(), ConnectorError> {
        service(&node, "turn_off")
    }

    fn discover(node: Node) -> Result<Vec<Discovered>, ConnectorError> {
        Err(fail(ErrorCode::Unsupported, format!("{}: nothing to discover", node.name)))
    }

    fn test_connection(node: Node) -> Result<(), ConnectorError> {
        Self::status(node).map(|_| ())
    }
}

export!(Classic);
