//! Implements `wakehub:connector@0.9.0`, newer than any host of this version knows.
wit_bindgen::generate!({ path: "wit", world: "connector" });

use exports::wakehub::connector::plugin::Guest;
use wakehub::connector::types::{ConnectorError, Discovered, ErrorCode, Node, PluginInfo, PowerState};

struct Future;

fn unsupported() -> ConnectorError {
    ConnectorError { code: ErrorCode::Unsupported, message: "from the future".into(), retryable: false }
}

impl Guest for Future {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "future".into(),
            version: "9.9.9".into(),
            wit_version: "0.9.0".into(),
            kinds: vec![],
            config_schema: "{}".into(),
        }
    }
    fn validate(_: String) -> Result<(), String> {
        Ok(())
    }
    fn status(_: Node) -> Result<PowerState, ConnectorError> {
        Err(unsupported())
    }
    fn start(_: Node) -> Result<(), ConnectorError> {
        Err(unsupported())
    }
    fn stop(_: Node) -> Result<(), ConnectorError> {
        Err(unsupported())
    }
    fn discover(_: Node) -> Result<Vec<Discovered>, ConnectorError> {
        Err(unsupported())
    }
    fn test_connection(_: Node) -> Result<(), ConnectorError> {
        Err(unsupported())
    }
}

export!(Future);
