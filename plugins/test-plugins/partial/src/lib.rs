//! Claims `wakehub:connector@0.1.0` but its `plugin` export has no `discover` nor
//! `test-connection`.
wit_bindgen::generate!({ path: "wit", world: "connector" });

use exports::wakehub::connector::plugin::Guest;
use wakehub::connector::types::{ConnectorError, ErrorCode, Node, PluginInfo, PowerState};

struct Partial;

impl Guest for Partial {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "partial".into(),
            version: "0.0.1".into(),
            wit_version: "0.1.0".into(),
            kinds: vec![],
            config_schema: "{}".into(),
        }
    }
    fn validate(_: String) -> Result<(), String> {
        Ok(())
    }
    fn status(_: Node) -> Result<PowerState, ConnectorError> {
        Ok(PowerState::Off)
    }
    fn start(_: Node) -> Result<(), ConnectorError> {
        Err(ConnectorError { code: ErrorCode::Unsupported, message: "no".into(), retryable: false })
    }
    fn stop(_: Node) -> Result<(), ConnectorError> {
        Ok(())
    }
}

export!(Partial);
