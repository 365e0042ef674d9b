//! Discovery: what a host's platform reports, stored as *discovered, not configured* nodes
//! under that host, and their adoption.
//!
//! Each discovered guest is matched on `(host, source, key)` — the source is the connector
//! that listed it (`proxmox`, `docker`), the key its identity there (`lxc/101`,
//! `container/paperless`). Running discovery again updates what is known, never
//! duplicates; a guest the user already configured by hand (same `vmid` or container on
//! the same host) is linked to, not copied. What the platform no longer lists is reported:
//! a discovered node that nothing uses is removed, a configured one is kept and marked gone.

use super::db::{OptionalExtension, Transaction};
use rusqlite::params;
use serde_json::Value;

use super::nodes::{insert_node, load, write_node};
use super::{Store, StoreError, db, now_ms};
use crate::connector::DiscoveredGuest;
use crate::model::{NodeDraft, NodeId, NodeSpec, NodeState, Origin, PowerState, Refusal, Topology, validate_name};

/// A guest one discovery run found, and the node that stands for it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct DiscoveredNode {
    /// The node (discovered, or configured and linked).
    pub node: NodeId,
    /// Its node name.
    pub name: String,
    /// Its identity on the host (`qemu/100`, `container/paperless`).
    pub key: String,
    /// Whether the node is configured (adopted or written by hand) or only discovered.
    pub state: NodeState,
    /// The power state the platform reported.
    pub status: PowerState,
}

/// A guest the platform listed before and no longer does.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Disappeared {
    /// Its node name.
    pub name: String,
    /// Its identity on the host.
    pub key: String,
    /// The node, when it stays (configured, or still used by something); `None` when the
    /// discovered node was removed.
    pub kept: Option<NodeId>,
}

/// What one discovery run of one host changed.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct DiscoveryReport {
    /// Guests seen for the first time, now discovered nodes.
    pub added: Vec<DiscoveredNode>,
    /// Guests already known (discovered or configured), their details refreshed.
    pub updated: Vec<DiscoveredNode>,
    /// Guests no longer listed.
    pub disappeared: Vec<Disappeared>,
}

/// What discovery knows about one node.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct DiscoveryRecord {
    /// The node.
    pub node: NodeId,
    /// The host it was found on.
    pub host: NodeId,
    /// The connector that listed it (`proxmox`, `docker`).
    pub source: String,
    /// Its identity on the host.
    pub key: String,
    /// What the API said (vmid or container id, type, status, image, ports, tags, labels).
    pub details: Value,
    /// The power state reported then.
    pub status: PowerState,
    /// First listed (ms since the epoch).
    pub first_seen_ms: i64,
    /// Last listed.
    pub last_seen_ms: i64,
    /// When a discovery run no longer listed it.
    pub gone_at_ms: Option<i64>,
}

/// A valid node name from what a platform calls a guest: lowercase, `[a-z0-9-_]`, starting
/// with a letter or digit, at most 50 characters (room for a suffix).
fn node_name(raw: &str, fallback: &str) -> String {
    let mut out = String::new();
    for c in raw.chars().flat_map(char::to_lowercase) {
        let c = if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' { c } else { '-' };
        if !(c == '-' && (out.is_empty() || out.ends_with('-'))) {
            out.push(c);
        }
    }
    let out: String = out.trim_start_matches(['-', '_']).chars().take(50).collect();
    let out = out.trim_end_matches('-').to_owned();
    if validate_name(&out).is_ok() { out } else { node_name(fallback, "guest") }
}

/// `base`, or `base-host`, `base-host-2`… whichever is free.
fn free_name(topology: &Topology, base: &str, host: &str) -> String {
    if topology.by_name(base).is_none() {
        return base.to_owned();
    }
    let with_host: String = format!("{base}-{host}").chars().take(58).collect();
    if topology.by_name(&with_host).is_none() {
        return with_host;
    }
    (2..).map(|i| format!("{with_host}-{i}")).find(|n| topology.by_name(n).is_none()).unwrap_or_default()
}

impl Store {
    /// Records what `source` (a connector type) listed on `host`, in one transaction.
    pub fn apply_discovery(
        &self,
        host: NodeId,
        source: &str,
        guests: &[DiscoveredGuest],
    ) -> Result<DiscoveryReport, StoreError> {
        self.change(|tx| {
            let mut topology = load(tx)?;
            let host_name = topology.get(host)?.spec.name.clone();
            let now = now_ms();
            let mut report = DiscoveryReport::default();
            let mut seen_keys = Vec::new();
            // What a platform reports never carries secrets or grants into the store.
            let guests: Vec<DiscoveredGuest> = guests.iter().cloned().map(DiscoveredGuest::sanitized).collect();
            for guest in &guests {
                seen_keys.push(guest.key.clone());
                let details = guest.details.to_string();
                let known: Option<i64> = tx
                    .query_row(
                        "SELECT node_id FROM discoveries WHERE host_id = ?1 AND source = ?2 AND key = ?3",
                        params![host.get(), source, guest.key],
                        |r| r.get(0),
                    )
                    .optional()
                    .map_err(db)?;
                // A record whose node moved to another host no longer describes it.
                let known = match known.map(NodeId::new) {
                    Some(id) if topology.parent(id) == Some(host) => Some(id),
                    Some(id) => {
                        tx.execute("DELETE FROM discoveries WHERE node_id = ?1", [id.get()]).map_err(db)?;
                        None
                    }
                    None => None,
                };
                // A guest configured by hand on this host is linked to, not duplicated.
                let linked = known.or_else(|| {
                    topology.children(host).into_iter().find(|c| {
                        topology.node(*c).is_some_and(|n| guest.matches(&n.spec.connector))
                            && !has_record(tx, *c).unwrap_or(true)
                    })
                });
                match linked {
                    Some(id) => {
                        let node = topology.get(id)?.clone();
                        if node.spec.state == NodeState::Discovered {
                            // Still waiting for adoption: follow what the platform says.
                            let mut spec = node.spec.clone();
                            spec.kind = guest.kind.clone();
                            spec.connector = guest.connector.clone();
                            topology.update_node(id, spec.clone())?;
                            write_node(tx, id, &spec)?;
                        }
                        tx.execute(
                            "INSERT INTO discoveries (node_id, host_id, source, key, details, status, first_seen,
                                                      last_seen, gone_at)
                             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, NULL)
                             ON CONFLICT (node_id) DO UPDATE SET details = ?5, status = ?6, last_seen = ?7,
                                                                  gone_at = NULL",
                            params![id.get(), host.get(), source, guest.key, details, guest.status.as_str(), now],
                        )
                        .map_err(db)?;
                        report.updated.push(DiscoveredNode {
                            node: id,
                            name: node.spec.name.clone(),
                            key: guest.key.clone(),
                            state: node.spec.state,
                            status: guest.status,
                        });
                    }
                    None => {
                        let name = free_name(&topology, &node_name(&guest.name, &guest.key), &host_name);
                        let mut spec = NodeSpec::new(name.clone(), guest.kind.clone(), guest.connector.clone());
                        spec.timeouts = guest.timeouts;
                        spec.state = NodeState::Discovered;
                        topology.add_node(spec.clone(), Some(host))?;
                        let id = insert_node(tx, &spec, Some(host))?;
                        tx.execute(
                            "INSERT INTO discoveries (node_id, host_id, source, key, details, status, first_seen,
                                                      last_seen, gone_at)
                             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, NULL)",
                            params![id.get(), host.get(), source, guest.key, details, guest.status.as_str(), now],
                        )
                        .map_err(db)?;
                        // Keep the probe topology's ids in step with the database.
                        topology = load(tx)?;
                        report.added.push(DiscoveredNode {
                            node: id,
                            name,
                            key: guest.key.clone(),
                            state: NodeState::Discovered,
                            status: guest.status,
                        });
                    }
                }
            }
            // What was listed before and is not any more.
            let previous: Vec<(i64, String, Option<i64>)> = tx
                .prepare("SELECT node_id, key, gone_at FROM discoveries WHERE host_id = ?1 AND source = ?2")
                .map_err(db)?
                .query_map(params![host.get(), source], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .map_err(db)?
                .collect::<Result<_, _>>()
                .map_err(db)?;
            for (id, key, gone_at) in previous {
                if seen_keys.contains(&key) {
                    continue;
                }
                let id = NodeId::new(id);
                let Some(node) = topology.node(id).cloned() else { continue };
                let mut probe = topology.clone();
                let removable = node.spec.state == NodeState::Discovered && probe.remove_node(id).is_ok();
                if removable {
                    tx.execute("DELETE FROM nodes WHERE id = ?1", [id.get()]).map_err(db)?;
                    topology = probe;
                    report.disappeared.push(Disappeared { name: node.spec.name, key, kept: None });
                } else {
                    if gone_at.is_none() {
                        tx.execute("UPDATE discoveries SET gone_at = ?1 WHERE node_id = ?2", params![now, id.get()])
                            .map_err(db)?;
                    }
                    report.disappeared.push(Disappeared { name: node.spec.name, key, kept: Some(id) });
                }
            }
            Ok(report)
        })
    }

    /// Turns a discovered node into a configured one: as discovered (pre-filled), or with
    /// `draft` (the form the user completed; without a parent it stays on its host).
    pub fn adopt_node(&self, id: NodeId, draft: Option<NodeDraft>, origin: Origin) -> Result<(), StoreError> {
        let parent = {
            let topology = self.topology_shared()?;
            let node = topology.get(id)?;
            if node.spec.state != NodeState::Discovered {
                return Err(StoreError::from(Refusal::conflict(format!("`{}` is already configured", node.spec.name))));
            }
            node.parent
        };
        match draft {
            Some(mut draft) => {
                draft.spec.state = NodeState::Configured;
                if draft.parent.is_none() {
                    draft.parent = parent.map(|p| p.to_string());
                }
                self.replace_node(id, draft, origin)
            }
            None => self.change(|tx| {
                let mut topology = load(tx)?;
                let mut spec = topology.get(id)?.spec.clone();
                spec.state = NodeState::Configured;
                topology.update_node(id, spec.clone())?;
                write_node(tx, id, &spec)
            }),
        }
    }

    /// What discovery knows about `node`, if it was ever discovered.
    pub fn discovery(&self, node: NodeId) -> Result<Option<DiscoveryRecord>, StoreError> {
        self.transaction(|tx| {
            tx.query_row(&format!("{SELECT} WHERE node_id = ?1"), [node.get()], record)
                .optional()
                .map_err(db)?
                .transpose()
        })
    }

    /// Everything discovery knows about the guests of `host`, by key.
    pub fn discoveries(&self, host: NodeId) -> Result<Vec<DiscoveryRecord>, StoreError> {
        self.transaction(|tx| {
            tx.prepare(&format!("{SELECT} WHERE host_id = ?1 ORDER BY source, key"))
                .map_err(db)?
                .query_map([host.get()], record)
                .map_err(db)?
                .map(|r| r.map_err(db)?)
                .collect()
        })
    }
}

const SELECT: &str =
    "SELECT node_id, host_id, source, key, details, status, first_seen, last_seen, gone_at FROM discoveries";

#[allow(clippy::type_complexity)]
fn record(r: &super::db::Row<'_>) -> super::db::Result<Result<DiscoveryRecord, StoreError>> {
    let details: String = r.get(4)?;
    let status: String = r.get(5)?;
    let node: i64 = r.get(0)?;
    Ok(match serde_json::from_str(&details) {
        Ok(details) => Ok(DiscoveryRecord {
            node: NodeId::new(node),
            host: NodeId::new(r.get(1)?),
            source: r.get(2)?,
            key: r.get(3)?,
            details,
            status: PowerState::parse(&status).unwrap_or(PowerState::Unknown),
            first_seen_ms: r.get(6)?,
            last_seen_ms: r.get(7)?,
            gone_at_ms: r.get(8)?,
        }),
        Err(e) => Err(StoreError::Corrupt { message: format!("discovery of node {node}: {e}") }),
    })
}

fn has_record(tx: &Transaction<'_>, node: NodeId) -> Result<bool, StoreError> {
    Ok(tx
        .query_row("SELECT 1 FROM discoveries WHERE node_id = ?1", [node.get()], |_| Ok(()))
        .optional()
        .map_err(db)?
        .is_some())
}

#[cfg(test)]
mod tests {
    use super::node_name;

    #[test]
    fn platform_names_become_valid_node_names() {
        assert_eq!(node_name("Jellyfin", "lxc/101"), "jellyfin");
        assert_eq!(node_name("my app.example.com", "x"), "my-app-example-com");
        assert_eq!(node_name("--Weird__Name--", "x"), "weird__name");
        assert_eq!(node_name("", "qemu/100"), "qemu-100");
        assert_eq!(node_name("ÉTÉ", "lxc/7"), "t");
        assert_eq!(node_name("ÉÉ", "lxc/7"), "lxc-7");
        assert_eq!(node_name(&"a".repeat(80), "x").len(), 50);
    }
}
