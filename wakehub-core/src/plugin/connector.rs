//! A loaded plugin behind the [`Connector`] trait: its calls, its errors and power states in
//! the engine's words, its configuration checked against its declared schema first.

use std::sync::Arc;
use std::time::Duration;

use super::{Op, Out, Plugin, host, mismatch, wit};
use crate::connector::activity::{Cpu, Load};
use crate::connector::{
    ConfigError, Connector, ConnectorError, DiscoveredGuest, ErrorCode, GuestReport, PowerState, Target,
};
use crate::model::{Action, ConnectorConfig, PluginKinds};

/// A loaded plugin behind the [`Connector`] trait.
pub(super) struct PluginConnector(pub(super) Arc<Plugin>);

fn from_wit_error(target: &Target, e: wit::ConnectorError) -> ConnectorError {
    use wit::ErrorCode as W;
    let code = match e.code {
        W::AuthFailed => ErrorCode::AuthFailed,
        W::Unreachable => ErrorCode::Unreachable,
        W::Timeout => ErrorCode::Timeout,
        W::NotFound => ErrorCode::NotFound,
        W::TlsPinMismatch => ErrorCode::TlsPinMismatch,
        W::HostKeyMismatch => ErrorCode::HostKeyMismatch,
        W::InvalidConfig => ErrorCode::InvalidConfig,
        W::Unsupported => ErrorCode::Unsupported,
        W::PlatformError => ErrorCode::PlatformError,
        W::CapabilityDenied => ErrorCode::CapabilityDenied,
        W::Busy => ErrorCode::Conflict,
        W::RateLimited => ErrorCode::RateLimited,
    };
    // Messages name the node once: a plugin that already starts with it (as the SDK's own
    // examples do) is not prefixed again.
    let message: String = e.message.chars().take(2000).collect();
    let message = message.strip_prefix(&format!("{}: ", target.name)).unwrap_or(&message);
    ConnectorError { code, message: format!("{}: {message}", target.name), retryable: e.retryable }
}

fn power(p: wit::PowerState) -> PowerState {
    match p {
        wit::PowerState::On => PowerState::On,
        wit::PowerState::Off => PowerState::Off,
        wit::PowerState::Starting => PowerState::Starting,
        wit::PowerState::Stopping => PowerState::Stopping,
        wit::PowerState::Unknown => PowerState::Unknown,
        wit::PowerState::Error => PowerState::Error,
    }
}

impl PluginConnector {
    async fn done(&self, target: &Target, op: fn(wit::Node) -> Op) -> Result<(), ConnectorError> {
        match self.0.run(Some(target.clone()), op(host::node_of(target))).await? {
            Out::Done(r) => r.map_err(|e| from_wit_error(target, e)),
            _ => Err(mismatch()),
        }
    }
}

#[async_trait::async_trait]
impl Connector for PluginConnector {
    async fn status(&self, target: &Target) -> Result<PowerState, ConnectorError> {
        match self.0.run(Some(target.clone()), Op::Status(host::node_of(target))).await? {
            Out::Power(r) => r.map(power).map_err(|e| from_wit_error(target, e)),
            _ => Err(mismatch()),
        }
    }

    async fn start(&self, target: &Target) -> Result<(), ConnectorError> {
        self.done(target, Op::Start).await
    }

    async fn stop(&self, target: &Target) -> Result<(), ConnectorError> {
        self.done(target, Op::Stop).await
    }

    async fn test_connection(&self, target: &Target) -> Result<(), ConnectorError> {
        self.done(target, Op::TestConnection).await
    }

    async fn load(&self, target: &Target) -> Result<Load, ConnectorError> {
        let r = match self.0.run(Some(target.clone()), Op::Measure(host::node_of(target))).await? {
            Out::Measured(r) => r.map_err(|e| from_wit_error(target, e))?,
            _ => return Err(mismatch()),
        };
        let finite = |v: Option<f64>, max: f64| v.filter(|v| v.is_finite() && (0.0..=max).contains(v));
        Ok(Load {
            cpu: finite(r.cpu_percent, 100_000.0).map(Cpu::Percent),
            net_bytes: r.net_bytes,
            in_use: r.in_use,
            watts: finite(r.watts, 1_000_000.0),
        })
    }

    fn typical_duration(&self, target: &Target, action: Action) -> Option<Duration> {
        let kind = self.0.info.kinds.iter().find(|k| k.name == target.kind.as_str())?;
        match action {
            Action::Start => kind.typical_start,
            Action::Stop => kind.typical_stop,
        }
    }

    async fn discover(&self, host: &Target) -> Result<Vec<DiscoveredGuest>, ConnectorError> {
        let list = match self.0.run(Some(host.clone()), Op::Discover(host::node_of(host))).await? {
            Out::Guests(r) => r.map_err(|e| from_wit_error(host, e))?,
            _ => return Err(mismatch()),
        };
        let mut kinds = PluginKinds::default();
        for k in &self.0.info.kinds {
            kinds.insert(k.name.clone(), k.timeouts);
        }
        let connector_type = format!("plugin:{}", self.0.info.name);
        list.into_iter()
            .map(|d| {
                let report = GuestReport {
                    key: d.key,
                    name: d.name,
                    kind: d.kind,
                    config: d.config,
                    status: power(d.status),
                    details: d.details,
                };
                DiscoveredGuest::from_report(&connector_type, &kinds, report).map_err(|m| {
                    ConnectorError::new(ErrorCode::PluginTrap, format!("{}: plugin discovery: {m}", host.name))
                })
            })
            .collect()
    }

    fn validate(&self, config: &ConnectorConfig) -> Result<(), ConfigError> {
        // The declared schema first (every problem, with its key): the plugin's own check
        // then sees only tables of the shape it declared.
        if let Some(schema) = &self.0.schema {
            ConfigError::all(schema_problems(&self.0.info.name, schema, &host::config_for_schema(config)))?;
        }
        let json = host::config_json(config).to_string();
        // `validate` is synchronous; a plugin may take its whole time budget (see `run_sync`).
        let r = match self.0.run_sync(Op::Validate(json)) {
            Ok(Out::Validated(r)) => Ok(r),
            Ok(_) => Err(mismatch()),
            Err(e) => Err(e),
        };
        let plugin = &self.0.info.name;
        match r {
            Ok(Ok(())) => Ok(()),
            Ok(Err(problems)) if problems.is_empty() => {
                Err(ConfigError::new(format!("plugin:{plugin}: refused the table without saying why")))
            }
            Ok(Err(problems)) => ConfigError::all(
                problems
                    .into_iter()
                    .take(100)
                    .map(|p| {
                        let message: String = p.message.chars().take(1000).collect();
                        let message = format!("plugin:{plugin}: {message}");
                        match p.key {
                            Some(key) => ConfigError::key(key, message),
                            None => ConfigError::new(message),
                        }
                    })
                    .collect(),
            ),
            Err(e) => Err(ConfigError::new(e.message)),
        }
    }
}

/// The problems of a connector table against a plugin's declared schema, each with the
/// top-level key it is about.
fn schema_problems(plugin: &str, schema: &jsonschema::Validator, table: &serde_json::Value) -> Vec<ConfigError> {
    use jsonschema::error::ValidationErrorKind as Kind;
    schema
        .iter_errors(table)
        .flat_map(|e| {
            let path = e.instance_path().as_str().trim_start_matches('/').to_owned();
            let top = path.split('/').next().filter(|k| !k.is_empty()).map(str::to_owned);
            match e.kind() {
                Kind::Required { property } => {
                    let key = property.as_str().unwrap_or_default().to_owned();
                    vec![ConfigError::key(key.clone(), format!("plugin:{plugin}: `{key}` is required"))]
                }
                Kind::AdditionalProperties { unexpected } if top.is_none() => unexpected
                    .iter()
                    .map(|k| ConfigError::key(k.clone(), format!("plugin:{plugin}: unknown key `{k}`")))
                    .collect(),
                _ => {
                    let at =
                        if path.is_empty() { "the table".to_owned() } else { format!("`{}`", path.replace('/', ".")) };
                    let message = format!("plugin:{plugin}: {at}: {e}");
                    vec![match top {
                        Some(key) => ConfigError::key(key, message),
                        None => ConfigError::new(message),
                    }]
                }
            }
        })
        .collect()
}
