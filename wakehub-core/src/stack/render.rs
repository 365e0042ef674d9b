//! A [`Compose`] written back as a compose file: every value in its long form, keys in a
//! fixed order, so that a version reads the same whatever short forms its file used and two
//! versions diff line by line. Reading the rendering gives the same model back
//! ([`parse_compose`](super::parse_compose) ∘ [`render`] is the identity on models).

use serde_json::{Map, Value, json};

use super::compose::{Compose, Condition, Restart};

/// `$` as compose writes a literal one.
fn lit(s: &str) -> Value {
    Value::String(s.replace('$', "$$"))
}

fn duration(d: std::time::Duration) -> Value {
    Value::String(if d.is_zero() { "0s".to_owned() } else { humantime::format_duration(d).to_string() })
}

/// The compose file of `compose`, as YAML.
pub fn render(compose: &Compose) -> String {
    let mut services = Map::new();
    for (name, s) in &compose.services {
        let mut out = Map::new();
        out.insert("image".into(), lit(&s.image));
        if let Some(c) = &s.command {
            out.insert("command".into(), Value::Array(c.iter().map(|w| lit(w)).collect()));
        }
        if let Some(e) = &s.entrypoint {
            out.insert("entrypoint".into(), Value::Array(e.iter().map(|w| lit(w)).collect()));
        }
        if !s.environment.is_empty() {
            out.insert("environment".into(), s.environment.iter().map(|(k, v)| (k.clone(), lit(v))).collect());
        }
        if !s.ports.is_empty() {
            let ports = s.ports.iter().map(|p| {
                let mut m = Map::new();
                m.insert("target".into(), json!(p.target));
                if let Some(published) = p.published {
                    m.insert("published".into(), json!(published));
                }
                if let Some(ip) = &p.host_ip {
                    m.insert("host_ip".into(), json!(ip));
                }
                m.insert("protocol".into(), json!(p.protocol));
                Value::Object(m)
            });
            out.insert("ports".into(), Value::Array(ports.collect()));
        }
        if !s.volumes.is_empty() {
            let mounts = s.volumes.iter().map(|m| {
                let mut o = Map::new();
                o.insert("type".into(), json!(m.kind));
                if let Some(source) = &m.source {
                    o.insert("source".into(), json!(source));
                }
                o.insert("target".into(), json!(m.target));
                o.insert("read_only".into(), json!(m.read_only));
                Value::Object(o)
            });
            out.insert("volumes".into(), Value::Array(mounts.collect()));
        }
        if !s.networks.is_empty() {
            out.insert("networks".into(), json!(s.networks));
        }
        if let Some(h) = &s.healthcheck {
            let check = if h.test == ["NONE"] {
                json!({"disable": true})
            } else {
                json!({
                    "test": h.test.iter().map(|w| lit(w)).collect::<Vec<_>>(),
                    "interval": duration(h.interval),
                    "timeout": duration(h.timeout),
                    "retries": h.retries,
                    "start_period": duration(h.start_period),
                })
            };
            out.insert("healthcheck".into(), check);
        }
        if !s.depends_on.is_empty() {
            let deps = s.depends_on.iter().map(|(d, c)| {
                let condition = match c {
                    Condition::ServiceStarted => "service_started",
                    Condition::ServiceHealthy => "service_healthy",
                    Condition::ServiceCompletedSuccessfully => "service_completed_successfully",
                };
                (d.clone(), json!({ "condition": condition }))
            });
            out.insert("depends_on".into(), Value::Object(deps.collect()));
        }
        let restart = match s.restart {
            Restart::No => None,
            Restart::Always => Some("always".to_owned()),
            Restart::UnlessStopped => Some("unless-stopped".to_owned()),
            Restart::OnFailure(None) => Some("on-failure".to_owned()),
            Restart::OnFailure(Some(n)) => Some(format!("on-failure:{n}")),
        };
        if let Some(r) = restart {
            out.insert("restart".into(), json!(r));
        }
        if !s.labels.is_empty() {
            out.insert("labels".into(), s.labels.iter().map(|(k, v)| (k.clone(), lit(v))).collect());
        }
        if let Some(u) = &s.user {
            out.insert("user".into(), json!(u));
        }
        if let Some(w) = &s.working_dir {
            out.insert("working_dir".into(), json!(w));
        }
        if let Some(g) = s.stop_grace_period {
            out.insert("stop_grace_period".into(), duration(g));
        }
        services.insert(name.clone(), Value::Object(out));
    }
    let mut file = Map::new();
    file.insert("services".into(), Value::Object(services));
    let optional = |pairs: [(&str, Value); 4]| -> Value {
        Value::Object(
            pairs
                .into_iter()
                .filter(|(_, v)| !v.is_null() && *v != Value::Bool(false))
                .map(|(k, v)| (k.to_owned(), v))
                .collect(),
        )
    };
    if !compose.volumes.is_empty() {
        let volumes = compose.volumes.iter().map(|(n, v)| {
            let body = optional([
                ("driver", json!(v.driver)),
                ("external", json!(v.external)),
                ("name", json!(v.name)),
                ("", Value::Null),
            ]);
            (n.clone(), body)
        });
        file.insert("volumes".into(), Value::Object(volumes.collect()));
    }
    if !compose.networks.is_empty() {
        let networks = compose.networks.iter().map(|(n, v)| {
            let body = optional([
                ("driver", json!(v.driver)),
                ("external", json!(v.external)),
                ("name", json!(v.name)),
                ("internal", json!(v.internal)),
            ]);
            (n.clone(), body)
        });
        file.insert("networks".into(), Value::Object(networks.collect()));
    }
    serde_yaml_ng::to_string(&Value::Object(file)).unwrap_or_default()
}
