//! Declares a configuration schema that is not a JSON Schema (`"type": 12`): a host that
//! checks every table against the declared schema cannot use it, and refuses the plugin.
use wakehub_plugin_sdk::*;

struct BadSchema;

impl Plugin for BadSchema {
    fn describe() -> PluginInfo {
        info(
            "bad-schema",
            env!("CARGO_PKG_VERSION"),
            &[kind("gadget", std::time::Duration::from_secs(10), std::time::Duration::from_secs(10))],
            r#"{"type": 12}"#,
        )
    }
    fn status(_: &Node) -> Result<PowerState, ConnectorError> {
        Ok(PowerState::Off)
    }
    fn start(_: &Node) -> Result<(), ConnectorError> {
        Ok(())
    }
    fn stop(_: &Node) -> Result<(), ConnectorError> {
        Ok(())
    }
}

export_plugin!(BadSchema);
