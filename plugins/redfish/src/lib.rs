//! Redfish: servers powered through their BMC.
//!
//! Node kinds: `bmc` (the controller; discovery lists its systems) and `server` (one
//! ComputerSystem). Keys, on the server or inherited from its `bmc` host: `bmc_url`
//! (`https://10.0.0.5`), `username`, `password` (a secret: HTTP Basic, injected by the
//! host), `tls_fingerprint` (SHA-256 of the BMC's self-signed certificate, enforced by the
//! host). On the server: `system` (its id under `/redfish/v1/Systems/`; default: the BMC's
//! only system), `graceful_timeout_secs` (default 30: how long `GracefulShutdown` may take
//! before `ForceOff`; 0 skips the graceful attempt).
//!
//! Power on is `ComputerSystem.Reset` `On`; off is `GracefulShutdown`, then `ForceOff` if
//! the system is still on when the timeout expires. Status comes from `PowerState`
//! (`On`, `Off`, `PoweringOn`, `PoweringOff`).

use std::time::Duration;

use serde_json::{Value, json};
use wakehub_plugin_sdk::*;

struct Redfish;

/// The settings of one call: the node's own keys, then its host's.
struct Endpoint {
    base: String,
    user: Option<String>,
    system: Option<String>,
    /// Where the password lives: the node's own table or its host's (both are granted).
    password_key: &'static str,
}

fn endpoint(node: &Node) -> Result<Endpoint, ConnectorError> {
    let own = config(node);
    let host = node.host_config.as_deref().map(Config::parse).unwrap_or(Config(Value::Null));
    let pick = |key: &str| own.str(key).or_else(|| host.str(key)).map(str::to_owned);
    let base = pick("bmc_url")
        .ok_or_else(|| error(ErrorCode::InvalidConfig, format!("{}: `bmc_url` is required", node.name)))?;
    Ok(Endpoint {
        base: base.trim_end_matches('/').to_owned(),
        user: pick("username"),
        system: own.str("system").map(str::to_owned),
        password_key: "password",
    })
}

fn call(
    ep: &Endpoint,
    method: http::Method,
    path: &str,
    body: Option<Value>,
) -> Result<http::Response, ConnectorError> {
    let url = if path.starts_with("http") { path.to_owned() } else { format!("{}{path}", ep.base) };
    let mut req = request(method, &url);
    req.headers.push(http::Header { name: "Accept".into(), value: "application/json".into() });
    if let Some(body) = body {
        req.headers.push(http::Header { name: "Content-Type".into(), value: "application/json".into() });
        req.body = Some(body.to_string().into_bytes());
    }
    if let Some(user) = &ep.user {
        req.auth = Some(http::Auth::Basic((user.clone(), ep.password_key.into())));
    }
    let resp = http::send(&req)?;
    if (200..300).contains(&resp.status) {
        return Ok(resp);
    }
    // Redfish errors: {"error": {"message", "@Message.ExtendedInfo": [{"Message"}]}}.
    let detail = serde_json::from_slice::<Value>(&resp.body)
        .ok()
        .and_then(|v| {
            let e = v.get("error")?;
            e.get("@Message.ExtendedInfo")
                .and_then(|i| i.get(0)?.get("Message")?.as_str().map(str::to_owned))
                .or_else(|| e.get("message")?.as_str().map(str::to_owned))
        })
        .unwrap_or_else(|| String::from_utf8_lossy(&resp.body).chars().take(200).collect());
    let mut e = error_for_status(resp.status, &format!("redfish: {path}")).unwrap_err();
    e.message = format!("{}: {detail}", e.message);
    Err(e)
}

fn json_of(resp: &http::Response) -> Result<Value, ConnectorError> {
    serde_json::from_slice(&resp.body).map_err(|e| {
        error(ErrorCode::PlatformError, format!("redfish: the BMC answered something that is not JSON: {e}"))
    })
}

/// The system's path: the configured one, or the BMC's only system.
fn system_path(ep: &Endpoint) -> Result<String, ConnectorError> {
    if let Some(id) = &ep.system {
        return Ok(format!("/redfish/v1/Systems/{id}"));
    }
    let members = members(ep)?;
    match members.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(error(ErrorCode::NotFound, "redfish: the BMC lists no system")),
        _ => Err(error(
            ErrorCode::InvalidConfig,
            format!("redfish: the BMC has {} systems; name one with `system`", members.len()),
        )),
    }
}

fn members(ep: &Endpoint) -> Result<Vec<String>, ConnectorError> {
    let list = json_of(&call(ep, http::Method::Get, "/redfish/v1/Systems", None)?)?;
    Ok(list["Members"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["@odata.id"].as_str().map(|s| s.trim_end_matches('/').to_owned()))
        .collect())
}

fn power_state(v: &Value) -> PowerState {
    match v["PowerState"].as_str() {
        Some("On") => PowerState::On,
        Some("Off") => PowerState::Off,
        Some("PoweringOn") => PowerState::Starting,
        Some("PoweringOff") => PowerState::Stopping,
        _ => PowerState::Unknown,
    }
}

fn status_of(ep: &Endpoint, path: &str) -> Result<PowerState, ConnectorError> {
    Ok(power_state(&json_of(&call(ep, http::Method::Get, path, None)?)?))
}

fn reset(ep: &Endpoint, path: &str, kind: &str) -> Result<(), ConnectorError> {
    let action = format!("{path}/Actions/ComputerSystem.Reset");
    call(ep, http::Method::Post, &action, Some(json!({ "ResetType": kind }))).map(|_| ())
}

impl Plugin for Redfish {
    fn describe() -> PluginInfo {
        info(
            "redfish",
            env!("CARGO_PKG_VERSION"),
            // A server boots through POST, firmware and its OS: minutes. Its controller is
            // always on (it has no start of its own to wait for).
            &[
                kind("bmc", Duration::from_secs(60), Duration::from_secs(60)),
                kind("server", Duration::from_secs(600), Duration::from_secs(300))
                    .typical(Duration::from_secs(120), Duration::from_secs(60)),
            ],
            r#"{"type":"object","properties":{
                "bmc_url":{"type":"string","format":"uri"},
                "username":{"type":"string"},
                "password":{"description":"secret"},
                "tls_fingerprint":{"type":"string","pattern":"^([0-9A-Fa-f]{2}:?){32}$"},
                "system":{"type":"string"},
                "graceful_timeout_secs":{"type":"integer","minimum":0}},
              "additionalProperties":false}"#,
        )
    }

    fn validate(config: &Config) -> Result<(), Vec<ConfigProblem>> {
        // Keys and types are the schema's, checked by the host; these are the rest.
        let mut problems = Vec::new();
        if config.str("bmc_url").is_some_and(|u| !u.starts_with("https://") && !u.starts_with("http://")) {
            problems.push(problem("bmc_url", "must be an http(s) URL"));
        }
        if config.get("password").is_some() && !config.is_secret("password") {
            problems.push(problem("password", "must be a secret"));
        }
        if problems.is_empty() { Ok(()) } else { Err(problems) }
    }

    fn status(node: &Node) -> Result<PowerState, ConnectorError> {
        let ep = endpoint(node)?;
        if node.kind == "bmc" {
            // The controller itself: up when it answers an authenticated request (the
            // service root `/redfish/v1` is public by the standard).
            return call(&ep, http::Method::Get, "/redfish/v1/Systems", None).map(|_| PowerState::On);
        }
        status_of(&ep, &system_path(&ep)?)
    }

    fn start(node: &Node) -> Result<(), ConnectorError> {
        let ep = endpoint(node)?;
        let path = system_path(&ep)?;
        if status_of(&ep, &path)? == PowerState::On {
            return Ok(());
        }
        reset(&ep, &path, "On")
    }

    fn stop(node: &Node) -> Result<(), ConnectorError> {
        let ep = endpoint(node)?;
        let path = system_path(&ep)?;
        if status_of(&ep, &path)? == PowerState::Off {
            return Ok(());
        }
        let graceful = config(node).int("graceful_timeout_secs").unwrap_or(30).max(0) as u64;
        if graceful > 0 {
            reset(&ep, &path, "GracefulShutdown")?;
            let until = clock::now_ms() + graceful * 1000;
            while clock::now_ms() < until {
                if status_of(&ep, &path)? == PowerState::Off {
                    return Ok(());
                }
                clock::sleep_ms(500);
            }
            log(
                log::Level::Warn,
                &format!("{}: no power-off after {graceful} s of GracefulShutdown; ForceOff", node.name),
            );
        }
        reset(&ep, &path, "ForceOff")
    }

    fn discover(node: &Node) -> Result<Vec<Discovered>, ConnectorError> {
        let ep = endpoint(node)?;
        let mut out = Vec::new();
        for path in members(&ep)? {
            let system = json_of(&call(&ep, http::Method::Get, &path, None)?)?;
            let id = system["Id"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| path.rsplit('/').next().unwrap_or("").into());
            let name = system["Name"].as_str().unwrap_or(&id).to_owned();
            let details = json!({
                "id": id,
                "name": name,
                "uuid": system["UUID"],
                "power_state": system["PowerState"],
                "manufacturer": system["Manufacturer"],
                "model": system["Model"],
                "serial": system["SerialNumber"],
                "reset_types": system["Actions"]["#ComputerSystem.Reset"]["ResetType@Redfish.AllowableValues"],
            });
            out.push(Discovered {
                key: format!("system/{id}"),
                name,
                kind: "server".into(),
                config: json!({ "system": id }).to_string(),
                status: power_state(&system),
                details: details.to_string(),
            });
        }
        Ok(out)
    }

    fn test_connection(node: &Node) -> Result<(), ConnectorError> {
        let ep = endpoint(node)?;
        call(&ep, http::Method::Get, "/redfish/v1/Systems", None).map(|_| ())
    }
}

export_plugin!(Redfish);

#[cfg(test)]
mod tests {
    use super::*;
    use wakehub_plugin_sdk::testing::{self, Harness, exchange};

    const SYSTEM: &str = "https://10.0.0.5/redfish/v1/Systems/1";

    /// A server on its BMC, credentials on the BMC.
    fn server(own: Value) -> Node {
        testing::on_host(
            testing::node("web1", "server", own),
            json!({"bmc_url": "https://10.0.0.5/", "username": "admin", "password": testing::secret()}),
        )
    }

    fn basic() -> Option<http::Auth> {
        Some(http::Auth::Basic(("admin".into(), "password".into())))
    }

    fn system(state: &str) -> Value {
        json!({"Id": "1", "Name": "web1", "PowerState": state})
    }

    #[test]
    fn status_finds_the_only_system_and_reads_its_power_state() {
        let h = Harness::new().exchanges([
            exchange(http::Method::Get, "https://10.0.0.5/redfish/v1/Systems")
                .expect_auth(basic())
                .respond_json(200, &json!({"Members": [{"@odata.id": "/redfish/v1/Systems/1/"}]})),
            exchange(http::Method::Get, "https://10.0.0.5/redfish/v1/Systems/1")
                .expect_auth(basic())
                .respond_json(200, &system("PoweringOn")),
        ]);
        assert_eq!(h.run(|| Redfish::status(&server(json!({})))), Ok(PowerState::Starting));
        assert!(h.sent().iter().all(|r| r.headers.iter().any(|h| h.name == "Accept")));
    }

    #[test]
    fn start_resets_on_unless_already_on() {
        let node = server(json!({"system": "1"}));
        let h = Harness::new().exchanges([
            exchange(http::Method::Get, SYSTEM).respond_json(200, &system("Off")),
            exchange(http::Method::Post, &format!("{SYSTEM}/Actions/ComputerSystem.Reset"))
                .expect_json(json!({"ResetType": "On"}))
                .expect_auth(basic())
                .respond(204, ""),
            exchange(http::Method::Get, SYSTEM).respond_json(200, &system("On")),
        ]);
        assert_eq!(h.run(|| Redfish::start(&node)), Ok(()));
        assert_eq!(h.run(|| Redfish::start(&node)), Ok(()));
    }

    #[test]
    fn stop_shuts_down_gracefully_then_forces_off_when_the_timeout_expires() {
        let node = server(json!({"system": "1", "graceful_timeout_secs": 2}));
        let h = Harness::new().http(|req| match req.method {
            http::Method::Get => testing::respond_json(200, &system("On")),
            _ => testing::respond(204, ""),
        });
        assert_eq!(h.run(|| Redfish::stop(&node)), Ok(()));
        let resets: Vec<String> = h
            .sent()
            .iter()
            .filter(|r| r.method == http::Method::Post)
            .map(|r| String::from_utf8(r.body.clone().unwrap()).unwrap())
            .collect();
        assert_eq!(resets, [r#"{"ResetType":"GracefulShutdown"}"#, r#"{"ResetType":"ForceOff"}"#]);
        assert_eq!(h.sleeps(), [500; 4]);
        assert_eq!(h.now_ms(), testing::DEFAULT_NOW_MS + 2_000);
        assert_eq!(h.logs()[0].level, log::Level::Warn);
        assert!(h.logs()[0].message.contains("ForceOff"), "{:?}", h.logs());
    }

    #[test]
    fn stop_returns_once_the_system_is_off() {
        let node = server(json!({"system": "1"}));
        let h = Harness::new().exchanges([
            exchange(http::Method::Get, SYSTEM).respond_json(200, &system("On")),
            exchange(http::Method::Post, &format!("{SYSTEM}/Actions/ComputerSystem.Reset"))
                .expect_json(json!({"ResetType": "GracefulShutdown"})),
            exchange(http::Method::Get, SYSTEM).respond_json(200, &system("PoweringOff")),
            exchange(http::Method::Get, SYSTEM).respond_json(200, &system("Off")),
        ]);
        assert_eq!(h.run(|| Redfish::stop(&node)), Ok(()));
        assert_eq!(h.sleeps(), [500]);
    }

    #[test]
    fn failures_keep_their_codes_and_the_bmc_message() {
        let node = server(json!({"system": "1"}));
        let h = Harness::new().http(|_| {
            testing::respond_json(
                401,
                &json!({"error": {"message": "General", "@Message.ExtendedInfo": [{"Message": "Bad credentials."}]}}),
            )
        });
        let e = h.run(|| Redfish::status(&node)).unwrap_err();
        assert_eq!(
            (e.code, e.message.as_str()),
            (ErrorCode::AuthFailed, "redfish: /redfish/v1/Systems/1 answered 401: Bad credentials.")
        );
        let h = Harness::new().http(|_| testing::unreachable("connection refused"));
        let e = h.run(|| Redfish::status(&node)).unwrap_err();
        assert_eq!((e.code, e.retryable), (ErrorCode::Unreachable, true));
        let h = Harness::new().http(|_| testing::respond(404, ""));
        assert_eq!(h.run(|| Redfish::status(&node)).unwrap_err().code, ErrorCode::NotFound);
    }

    #[test]
    fn several_systems_need_a_name_and_no_url_is_invalid() {
        let h = Harness::new().http(|_| {
            testing::respond_json(
                200,
                &json!({"Members": [{"@odata.id": "/redfish/v1/Systems/1"}, {"@odata.id": "/redfish/v1/Systems/2"}]}),
            )
        });
        assert_eq!(h.run(|| Redfish::status(&server(json!({})))).unwrap_err().code, ErrorCode::InvalidConfig);
        let bare = testing::node("web1", "server", json!({}));
        let h = Harness::new();
        assert_eq!(h.run(|| Redfish::status(&bare)).unwrap_err().code, ErrorCode::InvalidConfig);
        assert!(h.sent().is_empty());
    }

    #[test]
    fn discover_lists_the_systems() {
        let h = Harness::new().http(|req| match req.url.as_str() {
            "https://10.0.0.5/redfish/v1/Systems" => {
                testing::respond_json(200, &json!({"Members": [{"@odata.id": "/redfish/v1/Systems/1"}]}))
            }
            _ => testing::respond_json(200, &system("On")),
        });
        let bmc = testing::node(
            "bmc",
            "bmc",
            json!({"bmc_url": "https://10.0.0.5", "username": "admin", "password": testing::secret()}),
        );
        let found = h.run(|| Redfish::discover(&bmc)).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!((found[0].key.as_str(), found[0].status), ("system/1", PowerState::On));
        assert_eq!(found[0].config, r#"{"system":"1"}"#);
    }
}
