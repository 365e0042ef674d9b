//! Embedding the WakeHub engine in your own program, with a connector of your own.
//!
//! A "smart plug" connector that keeps its state in memory stands in for your platform's
//! API; the engine plans, orders, waits, journals and streams — you only say how to switch
//! one thing on and off. Run with `cargo run -p wakehub-examples --example embed`.

use std::collections::HashMap;
use std::sync::Mutex;

use futures::StreamExt;
use wakehub_core::connector::{Connector, ConnectorError, ErrorCode, PowerState, Registry, Target};
use wakehub_core::engine::{Engine, EngineConfig};
use wakehub_core::events::EventKind;
use wakehub_core::model::Origin;
use wakehub_core::secrets::MasterKey;
use wakehub_core::store::Store;
use wakehub_core::topology_file::{self, ParseOptions};

/// Your platform: here, plugs identified by the `outlet` key of each node's connector table.
#[derive(Default)]
struct SmartPlugs {
    outlets: Mutex<HashMap<i64, bool>>,
}

impl SmartPlugs {
    fn outlet(target: &Target) -> Result<i64, ConnectorError> {
        target.config.int("outlet").ok_or_else(|| {
            ConnectorError::new(ErrorCode::InvalidConfig, format!("{}: `outlet` (a number) is required", target.name))
        })
    }
}

#[async_trait::async_trait]
impl Connector for SmartPlugs {
    async fn status(&self, target: &Target) -> Result<PowerState, ConnectorError> {
        let on = self
            .outlets
            .lock()
            .map_err(|_| ConnectorError::new(ErrorCode::PlatformError, "poisoned"))?
            .get(&Self::outlet(target)?)
            .copied()
            .unwrap_or(false);
        Ok(if on { PowerState::On } else { PowerState::Off })
    }
    async fn start(&self, target: &Target) -> Result<(), ConnectorError> {
        let outlet = Self::outlet(target)?;
        self.outlets
            .lock()
            .map_err(|_| ConnectorError::new(ErrorCode::PlatformError, "poisoned"))?
            .insert(outlet, true);
        Ok(())
    }
    async fn stop(&self, target: &Target) -> Result<(), ConnectorError> {
        let outlet = Self::outlet(target)?;
        self.outlets
            .lock()
            .map_err(|_| ConnectorError::new(ErrorCode::PlatformError, "poisoned"))?
            .insert(outlet, false);
        Ok(())
    }
}

const LAB: &str = r#"
[[node]]
name = "switch"
kind = "physical"
[node.connector]
type = "plug"
outlet = 1

[[node]]
name = "printer"
kind = "physical"
depends_on = ["switch"]
[node.connector]
type = "plug"
outlet = 2
"#;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let store = Store::open_in_memory(MasterKey::generate())?;
    store.import(&topology_file::parse(LAB, &ParseOptions::operator())?, Origin::Operator)?;
    let mut connectors = Registry::builtin();
    connectors.register("plug", SmartPlugs::default());
    let engine = Engine::new(store, connectors, EngineConfig::default())?;
    let printer =
        engine.store().topology()?.by_name("printer").map(|n| n.id).ok_or_else(|| anyhow::anyhow!("no printer"))?;

    let mut events = engine.subscribe(engine.store().last_event_id()?);
    let cascade = engine.start(printer).await?;
    while let Some(event) = events.next().await {
        match event?.kind {
            EventKind::CascadeProgress { current, step, total_steps, .. } => {
                println!("[{step}/{total_steps}] {} {} ({})", current.action, current.name, current.state);
            }
            EventKind::CascadeComplete { .. } => break,
            EventKind::CascadeError { message, .. } => anyhow::bail!(message),
            _ => {}
        }
    }
    let record = engine.wait(cascade.id).await?;
    println!("{} → {}", record.node_name, record.status.as_str());
    Ok(())
}
