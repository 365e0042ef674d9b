//! Discovery: a host's platforms list their guests, stored as discovered nodes.

use crate::connector::{ConnectorError, ErrorCode};
use crate::events::EventKind;
use crate::model::{NodeId, PowerState, Refusal};
use crate::store::DiscoveryReport;

use super::{DISCOVERY_TIMEOUT, Engine, EngineError};

impl Engine {
    /// Lists the guests `host` runs on each platform it offers (`proxmox`, `docker`) and
    /// records them as discovered nodes under it (see [`Store::apply_discovery`](crate::store::Store::apply_discovery)): new ones
    /// added, known ones refreshed, vanished ones reported. Their reported power states are
    /// noted like any observation.
    pub async fn discover(&self, host: NodeId) -> Result<DiscoveryReport, EngineError> {
        let topology = self.inner.store.run(|s| s.topology_shared()).await?;
        let node = topology.get(host)?;
        // The platforms it offers its guests, and a plugin connector of its own (a BMC
        // lists its systems). A simulated host that describes guests stands for its
        // platforms: it alone lists them.
        let mut sources: Vec<String> = node.spec.offers.iter().map(|c| c.as_str().to_owned()).collect();
        let own = &node.spec.connector;
        if own.type_name == "sim" && own.settings.contains_key("guests") {
            sources = vec![own.type_name.clone()];
        } else if own.type_name.starts_with("plugin:") {
            sources.push(own.type_name.clone());
        }
        if sources.is_empty() {
            return Err(EngineError::from(Refusal::invalid(format!(
                "`{}` offers no platform to discover (give it `offers = [\"proxmox\"]` or `[\"docker\"]`)",
                node.spec.name
            ))));
        }
        let target = self.target(&topology, host).ok_or_else(|| EngineError::NotFound { what: host.to_string() })?;
        let mut report = DiscoveryReport::default();
        for source in sources {
            let source = source.as_str();
            let connector = self.inner.connectors.get(source).ok_or_else(|| {
                EngineError::from(Refusal::invalid(format!(
                    "no `{source}` connector in this build to discover `{}`",
                    node.spec.name
                )))
            })?;
            let guests = match tokio::time::timeout(DISCOVERY_TIMEOUT, connector.discover(&target)).await {
                Ok(result) => result?,
                Err(_) => {
                    return Err(ConnectorError::new(
                        ErrorCode::Timeout,
                        format!("{}: {source}: discovery did not finish in {DISCOVERY_TIMEOUT:?}", node.spec.name),
                    )
                    .into());
                }
            };
            // A platform lists its own guests: anything naming another connector is dropped,
            // and every listed table is checked by its connector before it is stored.
            let guests: Vec<_> = guests
                .into_iter()
                .map(crate::connector::DiscoveredGuest::sanitized)
                .filter(|g| {
                    let ok =
                        g.connector.type_name == source && self.inner.connectors.validate_config(&g.connector).is_ok();
                    if !ok {
                        tracing::warn!(host = %node.spec.name, source, key = %g.key, "a listed guest is dropped: \
                                       its connector table is not one `{source}` accepts");
                    }
                    ok
                })
                .collect();
            let source = source.to_owned();
            let part = self.inner.store.run(move |s| s.apply_discovery(host, &source, &guests)).await?;
            report.added.extend(part.added);
            report.updated.extend(part.updated);
            report.disappeared.extend(part.disappeared);
        }
        if !report.added.is_empty() || !report.disappeared.is_empty() {
            let event = EventKind::HostDiscovered {
                node: host,
                name: node.spec.name.clone(),
                added: report.added.iter().map(|g| g.name.clone()).collect(),
                disappeared: report.disappeared.iter().map(|g| g.name.clone()).collect(),
            };
            self.emit(vec![event]).await?;
        }
        let topology = self.inner.store.run(|s| s.topology_shared()).await?;
        let seen: Vec<(NodeId, PowerState)> =
            report.added.iter().chain(&report.updated).map(|g| (g.node, g.status)).collect();
        self.note_states(&topology, &seen).await;
        Ok(report)
    }
}
