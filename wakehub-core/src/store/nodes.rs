//! The topology repository: nodes and dependency links in SQL, converted to and from the
//! model. Every change is validated by applying it to the loaded [`Topology`] first, inside
//! the same transaction that writes it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use super::db::{OptionalExtension, Transaction};
use rusqlite::params;
use serde_json::{Value, json};

use super::payload::{from_json, to_json};
use super::{Store, StoreError, db, now_ms};
use crate::model::{
    Capability, ConfigValue, ConnectorConfig, CredentialId, Kind, NodeDraft, NodeId, NodeSpec, NodeState, Origin,
    PluginKinds, Readiness, Refusal, STANDARD_COMMANDS, SecretRef, Timeouts, Topology, endpoint_of, is_command_key,
    is_file_key,
};

/// What an import changed, by node name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ImportSummary {
    /// Nodes created.
    pub added: Vec<String>,
    /// Nodes whose configuration, parent or links changed.
    pub updated: Vec<String>,
    /// Nodes deleted because the file no longer has them.
    pub removed: Vec<String>,
    /// Nodes left as they were.
    pub unchanged: Vec<String>,
}

impl Store {
    /// The whole topology (configured and discovered nodes).
    pub fn topology(&self) -> Result<Topology, StoreError> {
        self.topology_shared().map(|t| (*t).clone())
    }

    /// The current topology if it is loaded already: no database read, so an async caller
    /// may ask it in place (else [`topology_shared`](Self::topology_shared) on the blocking
    /// pool).
    pub fn topology_cached(&self) -> Option<std::sync::Arc<Topology>> {
        self.cached_topology()
    }

    /// The whole topology, shared: served from a cache that every topology change through
    /// this store invalidates, so readers do not reload and re-validate it each time.
    pub fn topology_shared(&self) -> Result<std::sync::Arc<Topology>, StoreError> {
        if let Some(t) = self.cached_topology() {
            return Ok(t);
        }
        let generation = self.topology_generation();
        let t = std::sync::Arc::new(self.transaction(load)?);
        // The planner's index is built with the version it belongs to, not by a request.
        t.index();
        self.cache_topology(generation, t.clone());
        Ok(t)
    }

    /// Runs a topology change in one transaction and drops the cached topology.
    pub(super) fn change<R>(&self, f: impl FnOnce(&Transaction<'_>) -> Result<R, StoreError>) -> Result<R, StoreError> {
        let r = self.transaction(|tx| {
            let r = f(tx)?;
            super::shared::notify(tx, super::shared::CHANGES_CHANNEL, "topology")?;
            Ok(r)
        });
        self.invalidate_topology();
        r
    }

    /// Creates a node under `parent` (written by the operator's own code: see [`Origin`]).
    pub fn add_node(&self, spec: NodeSpec, parent: Option<NodeId>) -> Result<NodeId, StoreError> {
        self.change(|tx| {
            let mut topology = load(tx)?;
            topology.add_node(spec.clone(), parent)?;
            self.insert_sealed(tx, spec, parent, Origin::Operator)
        })
    }

    /// Inserts a node, then seals its inline secrets bound to its new id.
    fn insert_sealed(
        &self,
        tx: &Transaction<'_>,
        spec: NodeSpec,
        parent: Option<NodeId>,
        origin: Origin,
    ) -> Result<NodeId, StoreError> {
        let mut bare = spec.clone();
        bare.connector.settings.clear();
        let id = insert_node(tx, &bare, parent)?;
        let sealed = self.seal_settings(tx, id, spec, None, origin)?;
        write_node(tx, id, &sealed)?;
        Ok(id)
    }

    /// Creates a node with its parent and dependencies (given by name or id), in one
    /// transaction; `origin` says who wrote it ([`Origin`]).
    pub fn create_node(&self, draft: NodeDraft, origin: Origin) -> Result<NodeId, StoreError> {
        self.change(|tx| {
            let mut topology = load(tx)?;
            let parent = draft.parent.as_deref().map(|p| topology.resolve(p).map(|n| n.id)).transpose()?;
            let deps: Vec<NodeId> =
                draft.depends_on.iter().map(|d| topology.resolve(d).map(|n| n.id)).collect::<Result<_, _>>()?;
            let probe = topology.add_node(draft.spec.clone(), parent)?;
            for d in &deps {
                topology.add_dependency(probe, *d)?;
            }
            let id = self.insert_sealed(tx, draft.spec, parent, origin)?;
            for d in deps {
                tx.execute("INSERT INTO dependencies (from_id, to_id) VALUES (?1, ?2)", [id.get(), d.get()])
                    .map_err(db)?;
            }
            Ok(id)
        })
    }

    /// Replaces a node's configuration, parent and dependencies (by name or id), keeping its
    /// id, in one transaction; `origin` says who wrote it ([`Origin`]).
    pub fn replace_node(&self, id: NodeId, draft: NodeDraft, origin: Origin) -> Result<(), StoreError> {
        self.change(|tx| {
            let mut topology = load(tx)?;
            let current = topology.get(id)?.spec.clone();
            let parent = draft.parent.as_deref().map(|p| topology.resolve(p).map(|n| n.id)).transpose()?;
            let deps: BTreeSet<NodeId> =
                draft.depends_on.iter().map(|d| topology.resolve(d).map(|n| n.id)).collect::<Result<_, _>>()?;
            let spec = self.seal_settings(tx, id, draft.spec, Some(&current), origin)?;
            let old: BTreeSet<NodeId> = topology.dependencies(id).into_iter().collect();
            for gone in old.difference(&deps) {
                topology.remove_dependency(id, *gone)?;
            }
            topology.replace_node(id, spec.clone(), parent)?;
            for new in deps.difference(&old) {
                topology.add_dependency(id, *new)?;
            }
            write_node(tx, id, &spec)?;
            tx.execute("UPDATE nodes SET parent_id = ?1 WHERE id = ?2", params![parent.map(NodeId::get), id.get()])
                .map_err(db)?;
            tx.execute("DELETE FROM dependencies WHERE from_id = ?1", [id.get()]).map_err(db)?;
            for d in deps {
                tx.execute("INSERT INTO dependencies (from_id, to_id) VALUES (?1, ?2)", [id.get(), d.get()])
                    .map_err(db)?;
            }
            gc_credentials(tx, &topology)
        })
    }

    /// Pins a node to the dashboard, or unpins it; nothing else about it changes.
    pub fn set_pinned(&self, id: NodeId, pinned: bool) -> Result<(), StoreError> {
        self.change(|tx| {
            let n = tx
                .execute(
                    "UPDATE nodes SET pinned = ?1, updated_at = ?2 WHERE id = ?3",
                    params![pinned, now_ms(), id.get()],
                )
                .map_err(db)?;
            if n == 0 {
                return Err(StoreError::NotFound { what: format!("node {id}") });
            }
            Ok(())
        })
    }

    /// Replaces a node's configuration, keeping its id, parent and links; `origin` says who
    /// wrote it ([`Origin`]).
    pub fn update_node(&self, id: NodeId, spec: NodeSpec, origin: Origin) -> Result<(), StoreError> {
        self.change(|tx| {
            let mut topology = load(tx)?;
            let current = topology.get(id)?.spec.clone();
            let spec = self.seal_settings(tx, id, spec, Some(&current), origin)?;
            topology.update_node(id, spec.clone())?;
            write_node(tx, id, &spec)?;
            gc_credentials(tx, &topology)
        })
    }

    /// Moves a node under another parent (or none).
    pub fn set_parent(&self, id: NodeId, parent: Option<NodeId>) -> Result<(), StoreError> {
        self.change(|tx| {
            load(tx)?.set_parent(id, parent)?;
            tx.execute(
                "UPDATE nodes SET parent_id = ?1, updated_at = ?2 WHERE id = ?3",
                params![parent.map(NodeId::get), now_ms(), id.get()],
            )
            .map_err(db)?;
            Ok(())
        })
    }

    /// Deletes a node and its links (refused while it hosts others).
    pub fn remove_node(&self, id: NodeId) -> Result<(), StoreError> {
        self.change(|tx| {
            let mut topology = load(tx)?;
            topology.remove_node(id)?;
            tx.execute("DELETE FROM nodes WHERE id = ?1", [id.get()]).map_err(db)?;
            gc_credentials(tx, &topology)
        })
    }

    /// Adds "`from` depends on `to`" (refused if it would close a cycle).
    pub fn add_dependency(&self, from: NodeId, to: NodeId) -> Result<(), StoreError> {
        self.change(|tx| {
            load(tx)?.add_dependency(from, to)?;
            tx.execute("INSERT INTO dependencies (from_id, to_id) VALUES (?1, ?2)", [from.get(), to.get()])
                .map_err(db)?;
            Ok(())
        })
    }

    /// Removes "`from` depends on `to`".
    pub fn remove_dependency(&self, from: NodeId, to: NodeId) -> Result<(), StoreError> {
        self.change(|tx| {
            load(tx)?.remove_dependency(from, to)?;
            tx.execute("DELETE FROM dependencies WHERE from_id = ?1 AND to_id = ?2", [from.get(), to.get()])
                .map_err(db)?;
            Ok(())
        })
    }

    /// Makes the store's configured nodes exactly `desired` (matched by name), in one
    /// transaction: all of it, or nothing.
    ///
    /// - **Ids are the store's.** The ids inside `desired` are ignored; a node keeps its
    ///   id across imports when its name is the same, and a new node gets a new id.
    /// - **Absent means deleted.** A configured node whose name is not in `desired` is
    ///   deleted (with its links). Discovered nodes stay while their host does.
    /// - Inline secrets are encrypted; credentials nothing refers to any more are deleted.
    ///
    /// The store checks the model's rules, not connectors: use
    /// [`Engine::import`](crate::engine::Engine::import) to have every node's connector
    /// type and keys checked first.
    pub fn import(&self, desired: &Topology, origin: Origin) -> Result<ImportSummary, StoreError> {
        self.change(|tx| {
            let current = load(tx)?;
            let mut summary = ImportSummary::default();
            let wanted: BTreeSet<&str> = desired.nodes().map(|n| n.name()).collect();
            // Keep discovered nodes whose whole hosting chain survives.
            let survives = |id: NodeId| {
                let node = current.node(id);
                node.is_some_and(|n| wanted.contains(n.name()))
                    || node.is_some_and(|n| n.spec.state == NodeState::Discovered)
                        && current.hosting_chain(id).iter().all(|p| {
                            current
                                .node(*p)
                                .is_some_and(|pn| wanted.contains(pn.name()) || pn.spec.state == NodeState::Discovered)
                        })
            };
            tx.execute("UPDATE nodes SET parent_id = NULL", ()).map_err(db)?;
            for node in current.nodes() {
                if !survives(node.id) {
                    tx.execute("DELETE FROM nodes WHERE id = ?1", [node.id.get()]).map_err(db)?;
                    summary.removed.push(node.name().to_owned());
                }
            }
            let mut ids: HashMap<String, NodeId> = HashMap::new();
            for node in current.nodes().filter(|n| survives(n.id)) {
                ids.insert(node.name().to_owned(), node.id);
            }
            for node in desired.nodes() {
                match current.by_name(node.name()) {
                    Some(old) => {
                        let spec = self.seal_settings(tx, old.id, node.spec.clone(), Some(&old.spec), origin)?;
                        let same_parent =
                            old.parent.map(|p| current.name_of(p)) == node.parent.map(|p| desired.name_of(p));
                        let names = |t: &Topology, ids: Vec<NodeId>| -> BTreeSet<String> {
                            ids.into_iter().map(|i| t.name_of(i)).collect()
                        };
                        let same_links = names(&current, current.dependencies(old.id))
                            == names(desired, desired.dependencies(node.id));
                        if old.spec == spec && same_parent && same_links {
                            summary.unchanged.push(node.name().to_owned());
                        } else {
                            summary.updated.push(node.name().to_owned());
                        }
                        write_node(tx, old.id, &spec)?;
                    }
                    None => {
                        let id = self.insert_sealed(tx, node.spec.clone(), None, origin)?;
                        ids.insert(node.name().to_owned(), id);
                        summary.added.push(node.name().to_owned());
                    }
                }
            }
            let id_of = |name: &str| {
                ids.get(name).copied().ok_or_else(|| StoreError::Corrupt { message: format!("lost node `{name}`") })
            };
            for node in current.nodes().filter(|n| survives(n.id) && !wanted.contains(n.name())) {
                if let Some(p) = node.parent {
                    tx.execute(
                        "UPDATE nodes SET parent_id = ?1 WHERE id = ?2",
                        [id_of(&current.name_of(p))?.get(), node.id.get()],
                    )
                    .map_err(db)?;
                }
            }
            for node in desired.nodes() {
                if let Some(p) = node.parent {
                    tx.execute(
                        "UPDATE nodes SET parent_id = ?1 WHERE id = ?2",
                        [id_of(&desired.name_of(p))?.get(), id_of(node.name())?.get()],
                    )
                    .map_err(db)?;
                }
            }
            tx.execute(
                "DELETE FROM dependencies WHERE from_id IN (SELECT id FROM nodes WHERE state = 'configured')",
                (),
            )
            .map_err(db)?;
            for (from, to) in desired.links() {
                tx.execute(
                    "INSERT INTO dependencies (from_id, to_id) VALUES (?1, ?2)",
                    [id_of(&desired.name_of(from))?.get(), id_of(&desired.name_of(to))?.get()],
                )
                .map_err(db)?;
            }
            let after = load(tx)?;
            gc_credentials(tx, &after)?;
            Ok(summary)
        })
    }

    /// Checks what `origin` may write into node `id`'s connector table (replacing
    /// `current`, if it exists) and seals its inline secrets, bound to the node, the key and
    /// the table's endpoint:
    ///
    /// - a `credential:N` must be this node's, for this key, given while the table's
    ///   endpoint (hosts, URLs, ports, pins) was what it is now: changing where a secret
    ///   goes keeps it only if it is supplied again;
    /// - `env:`/`file:` references only from the operator, never naming the master key or
    ///   the database's directory;
    /// - a command key from the API only as one of [`STANDARD_COMMANDS`] or unchanged.
    fn seal_settings(
        &self,
        tx: &Transaction<'_>,
        id: NodeId,
        mut spec: NodeSpec,
        current: Option<&NodeSpec>,
        origin: Origin,
    ) -> Result<NodeSpec, StoreError> {
        // A stack's compose file is not a setting: the operator's file gives it to be written
        // as a version (see `engine::stack_sources`); the API writes versions apart.
        if spec.kind == Kind::Stack {
            if origin == Origin::Api && spec.connector.settings.contains_key("compose") {
                return Err(Refusal::invalid(format!(
                    "node `{}`: a stack's compose file is written as a version (saveStackVersion), not in its \
                     connector table",
                    spec.name
                ))
                .into());
            }
            spec.connector.settings.remove("compose");
            spec.connector.settings.remove("compose_file");
        }
        // A veto command runs on the node: like a connector's command keys, only the
        // operator's file chooses it.
        let veto = |s: Option<&NodeSpec>| s.and_then(|s| s.idle.as_ref()).and_then(|r| r.veto_command.clone());
        if origin == Origin::Api && veto(Some(&spec)).is_some() && veto(Some(&spec)) != veto(current) {
            return Err(Refusal::invalid(format!(
                "node `{}`, `idle.veto_command`: a command WakeHub runs on the node is set in the operator's \
                 topology file, not through the API",
                spec.name
            ))
            .into());
        }
        // A TCP wake binds a port on WakeHub's machine: the operator's file chooses it.
        let tcp = |s: Option<&NodeSpec>| s.and_then(|s| s.proxy.as_ref()).map(|p| p.tcp.clone()).unwrap_or_default();
        if origin == Origin::Api && !tcp(Some(&spec)).is_empty() && tcp(Some(&spec)) != tcp(current) {
            return Err(Refusal::invalid(format!(
                "node `{}`, `proxy.tcp`: a port WakeHub listens on is set in the operator's topology file, not \
                 through the API",
                spec.name
            ))
            .into());
        }
        let endpoint = endpoint_of(&spec.connector);
        let node = spec.name.clone();
        let walk = |path: &str, v: &mut ConfigValue| -> Result<(), StoreError> {
            let mut stack: Vec<(String, &mut ConfigValue)> = vec![(path.to_owned(), v)];
            while let Some((path, v)) = stack.pop() {
                match v {
                    ConfigValue::Secret(SecretRef::Inline(plain)) => {
                        let sealed = self.seal_credential(tx, plain, id, &path, &endpoint)?;
                        *v = ConfigValue::Secret(SecretRef::Stored(sealed));
                    }
                    ConfigValue::Secret(SecretRef::Stored(cred)) => {
                        check_binding(tx, *cred, id, &node, &path, Some(&endpoint))?;
                    }
                    ConfigValue::Secret(r @ (SecretRef::Env(_) | SecretRef::File(_))) => {
                        if origin == Origin::Api {
                            return Err(Refusal::invalid(format!(
                                "node `{node}`, `{path}`: `env:` and `file:` references are read only from the \
                                 operator's own topology file; through the API, give the secret itself"
                            ))
                            .into());
                        }
                        self.check_reference(r)?;
                    }
                    ConfigValue::Array(items) => {
                        stack.extend(items.iter_mut().map(|i| (path.clone(), i)));
                    }
                    ConfigValue::Table(t) => {
                        stack.extend(t.iter_mut().map(|(k, i)| (format!("{path}.{k}"), i)));
                    }
                    _ => {}
                }
            }
            Ok(())
        };
        for (key, value) in spec.connector.settings.iter_mut() {
            walk(key, value)?;
            if origin == Origin::Api && is_file_key(key) {
                let unchanged = current.and_then(|c| c.connector.settings.get(key)) == Some(&*value);
                if !unchanged {
                    return Err(Refusal::invalid(format!(
                        "node `{node}`, `{key}`: names a file on WakeHub's machine; it is set in the operator's \
                         topology file, not through the API"
                    ))
                    .into());
                }
            }
            if origin == Origin::Api && is_command_key(key) {
                let unchanged = current.and_then(|c| c.connector.settings.get(key)) == Some(&*value);
                let standard = matches!(&*value, ConfigValue::String(c) if STANDARD_COMMANDS.contains(&c.as_str()));
                if !unchanged && !standard {
                    return Err(Refusal::invalid(format!(
                        "node `{node}`, `{key}`: through the API a command is one of {}; any other command is \
                         set in the operator's topology file",
                        STANDARD_COMMANDS.iter().map(|c| format!("`{c}`")).collect::<Vec<_>>().join(", ")
                    ))
                    .into());
                }
            }
        }
        Ok(spec)
    }
}

/// Checks that credential `cred` belongs to node `id` and `key` and, when `endpoint` is
/// given, that it was given for that endpoint.
pub(super) fn check_binding(
    tx: &Transaction<'_>,
    cred: CredentialId,
    id: NodeId,
    node: &str,
    key: &str,
    endpoint: Option<&str>,
) -> Result<(), StoreError> {
    let row: Option<(Option<i64>, Option<String>, Option<String>)> = tx
        .query_row("SELECT node_id, key, endpoint FROM credentials WHERE id = ?1", [cred.get()], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .optional()
        .map_err(db)?;
    let Some((owner, bound_key, bound_endpoint)) = row else {
        return Err(StoreError::Secret(crate::secrets::SecretError::Unavailable {
            reference: cred.to_string(),
            message: "no such credential".into(),
        }));
    };
    if owner != Some(id.get()) || bound_key.as_deref() != Some(key) {
        return Err(Refusal::invalid(format!(
            "node `{node}`, `{key}`: {cred} is not this node's `{key}`; give the secret itself"
        ))
        .into());
    }
    if let Some(endpoint) = endpoint
        && bound_endpoint.as_deref() != Some(endpoint)
    {
        return Err(Refusal::invalid(format!(
            "node `{node}`, `{key}`: the secret was given for another endpoint ({}); since the node's host, URL, \
             port or pin changed, supply the secret again",
            bound_endpoint.unwrap_or_default()
        ))
        .into());
    }
    Ok(())
}

/// Binds credentials written before schema version 6 to the (first) node and key that
/// refer to them, with that node's current endpoint.
pub(super) fn bind_legacy_credentials(tx: &Transaction<'_>) -> Result<usize, StoreError> {
    let unbound: BTreeSet<i64> = tx
        .prepare("SELECT id FROM credentials WHERE node_id IS NULL")
        .map_err(db)?
        .query_map((), |r| r.get(0))
        .map_err(db)?
        .collect::<Result<_, _>>()
        .map_err(db)?;
    if unbound.is_empty() {
        return Ok(0);
    }
    let topology = load(tx)?;
    let mut bound = 0;
    for node in topology.nodes() {
        let endpoint = endpoint_of(&node.spec.connector);
        let mut stack: Vec<(String, &ConfigValue)> =
            node.spec.connector.settings.iter().map(|(k, v)| (k.clone(), v)).collect();
        while let Some((path, v)) = stack.pop() {
            match v {
                ConfigValue::Secret(SecretRef::Stored(id)) if unbound.contains(&id.get()) => {
                    bound += tx
                        .execute(
                            "UPDATE credentials SET node_id = ?1, key = ?2, endpoint = ?3
                             WHERE id = ?4 AND node_id IS NULL",
                            params![node.id.get(), path, endpoint, id.get()],
                        )
                        .map_err(db)?;
                }
                ConfigValue::Array(items) => stack.extend(items.iter().map(|i| (path.clone(), i))),
                ConfigValue::Table(t) => stack.extend(t.iter().map(|(k, i)| (format!("{path}.{k}"), i))),
                _ => {}
            }
        }
    }
    Ok(bound)
}

/// Deletes credentials no node refers to any more.
fn gc_credentials(tx: &Transaction<'_>, topology: &Topology) -> Result<(), StoreError> {
    fn walk(v: &ConfigValue, out: &mut BTreeSet<i64>) {
        match v {
            ConfigValue::Secret(SecretRef::Stored(id)) => {
                out.insert(id.get());
            }
            ConfigValue::Array(items) => items.iter().for_each(|i| walk(i, out)),
            ConfigValue::Table(t) => t.values().for_each(|i| walk(i, out)),
            _ => {}
        }
    }
    let mut used = BTreeSet::new();
    for node in topology.nodes() {
        node.spec.connector.settings.values().for_each(|v| walk(v, &mut used));
    }
    let all: Vec<i64> = tx
        .prepare("SELECT id FROM credentials")
        .map_err(db)?
        .query_map((), |r| r.get(0))
        .map_err(db)?
        .collect::<Result<_, _>>()
        .map_err(db)?;
    for id in all.into_iter().filter(|id| !used.contains(id)) {
        tx.execute("DELETE FROM credentials WHERE id = ?1", [id]).map_err(db)?;
    }
    Ok(())
}

pub(super) fn insert_node(tx: &Transaction<'_>, spec: &NodeSpec, parent: Option<NodeId>) -> Result<NodeId, StoreError> {
    let now = now_ms();
    tx.execute(
        "INSERT INTO nodes (name, kind, parent_id, confirm_auto_shutdown, start_timeout_ms, stop_timeout_ms,
                            connector_type, created_at, updated_at)
         VALUES (?1, ?2, ?3, 0, 0, 0, '', ?4, ?4)",
        params![spec.name, spec.kind.as_str(), parent.map(NodeId::get), now],
    )
    .map_err(db)?;
    let id = NodeId::new(tx.last_insert_rowid());
    write_node(tx, id, spec)?;
    Ok(id)
}

pub(super) fn write_node(tx: &Transaction<'_>, id: NodeId, spec: &NodeSpec) -> Result<(), StoreError> {
    let readiness = spec.readiness.as_ref().map(|r| {
        match r {
            Readiness::Tcp { host, port } => json!({"tcp": {"host": host, "port": port}}),
            Readiness::Http { url, status } => json!({"http": {"url": url, "status": status}}),
        }
        .to_string()
    });
    let offers = Value::from(spec.offers.iter().map(|c| c.as_str()).collect::<Vec<_>>()).to_string();
    let settings = Value::Object(spec.connector.settings.iter().map(|(k, v)| (k.clone(), to_json(v))).collect());
    let tags = Value::from(spec.tags.iter().map(String::as_str).collect::<Vec<_>>()).to_string();
    tx.execute(
        "UPDATE nodes SET name = ?1, kind = ?2, state = ?3, pinned = ?4, confirm_auto_shutdown = ?5,
                start_timeout_ms = ?6, stop_timeout_ms = ?7, readiness = ?8, offers = ?9, connector_type = ?10,
                connector_settings = ?11, updated_at = ?12, tags = ?14, stop_when_empty = ?15,
                url = ?16, idle = ?17, proxy = ?18, power = ?19
         WHERE id = ?13",
        params![
            spec.name,
            spec.kind.as_str(),
            match spec.state {
                NodeState::Configured => "configured",
                NodeState::Discovered => "discovered",
            },
            spec.pinned,
            spec.confirm_auto_shutdown,
            spec.timeouts.start.as_millis() as i64,
            spec.timeouts.stop.as_millis() as i64,
            readiness,
            offers,
            spec.connector.type_name,
            settings.to_string(),
            now_ms(),
            id.get(),
            tags,
            spec.stop_when_empty,
            spec.url,
            spec.idle.as_ref().map(|r| r.to_json().to_string()),
            spec.proxy.as_ref().map(|r| r.to_json().to_string()),
            spec.power.as_ref().map(|p| p.to_json().to_string())
        ],
    )
    .map_err(db)?;
    Ok(())
}

struct Row {
    id: NodeId,
    parent: Option<NodeId>,
    spec: NodeSpec,
}

fn corrupt(id: i64, what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt { message: format!("node {id}: {what}") }
}

/// Loads the topology, checking every rule again (a database edited by hand cannot smuggle
/// in a cycle).
pub(super) fn load(tx: &Transaction<'_>) -> Result<Topology, StoreError> {
    let mut stmt = tx
        .prepare(
            "SELECT id, name, kind, parent_id, state, pinned, confirm_auto_shutdown, start_timeout_ms, stop_timeout_ms,
                readiness, offers, connector_type, connector_settings, tags, stop_when_empty, url, idle, proxy, power
         FROM nodes ORDER BY id",
        )
        .map_err(db)?;
    let raw = stmt
        .query_map((), |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, Option<i64>>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, bool>(5)?,
                r.get::<_, bool>(6)?,
                r.get::<_, i64>(7)?,
                r.get::<_, i64>(8)?,
                r.get::<_, Option<String>>(9)?,
                r.get::<_, String>(10)?,
                r.get::<_, String>(11)?,
                r.get::<_, String>(12)?,
                r.get::<_, String>(13)?,
                r.get::<_, bool>(14)?,
                r.get::<_, Option<String>>(15)?,
                r.get::<_, Option<String>>(16)?,
                r.get::<_, Option<String>>(17)?,
                r.get::<_, Option<String>>(18)?,
            ))
        })
        .map_err(db)?;
    let mut rows = Vec::new();
    for r in raw {
        let (
            id,
            name,
            kind,
            parent,
            state,
            pinned,
            confirm,
            start_ms,
            stop_ms,
            readiness,
            offers,
            ctype,
            settings,
            tags,
            stop_when_empty,
            url,
            idle,
            proxy,
            power,
        ) = r.map_err(db)?;
        let power = power
            .map(|text| {
                let v: Value = serde_json::from_str(&text).map_err(|e| corrupt(id, e))?;
                crate::model::PowerDraw::from_value(&v).map_err(|e| corrupt(id, format!("watts: {e}")))
            })
            .transpose()?;
        let proxy = proxy
            .map(|text| {
                let v: Value = serde_json::from_str(&text).map_err(|e| corrupt(id, e))?;
                crate::model::ProxyRoute::from_value(&v).map_err(|e| corrupt(id, format!("proxy: {e}")))
            })
            .transpose()?;
        let idle = idle
            .map(|text| {
                let v: Value = serde_json::from_str(&text).map_err(|e| corrupt(id, e))?;
                crate::model::IdleRule::from_value(&v).map_err(|e| corrupt(id, format!("idle: {e}")))
            })
            .transpose()?;
        let tags: BTreeSet<String> = serde_json::from_str(&tags).map_err(|e| corrupt(id, e))?;
        let kind =
            Kind::parse(&kind, &PluginKinds::from_iter([kind.clone()])).ok_or_else(|| corrupt(id, "bad kind"))?;
        let offers: Vec<String> = serde_json::from_str(&offers).map_err(|e| corrupt(id, e))?;
        let offers = offers
            .iter()
            .map(|o| o.parse::<Capability>().map_err(|_| corrupt(id, format!("bad capability {o}"))))
            .collect::<Result<BTreeSet<_>, _>>()?;
        let readiness =
            readiness.map(|r| parse_readiness(&r).ok_or_else(|| corrupt(id, "bad readiness"))).transpose()?;
        let settings: Value = serde_json::from_str(&settings).map_err(|e| corrupt(id, e))?;
        let settings: BTreeMap<String, ConfigValue> = match settings {
            Value::Object(o) => o
                .iter()
                .map(|(k, v)| Ok((k.clone(), from_json(v).map_err(|e| corrupt(id, e))?)))
                .collect::<Result<_, StoreError>>()?,
            _ => return Err(corrupt(id, "connector settings are not an object")),
        };
        let state = match state.as_str() {
            "discovered" => NodeState::Discovered,
            _ => NodeState::Configured,
        };
        rows.push(Row {
            id: NodeId::new(id),
            parent: parent.map(NodeId::new),
            spec: NodeSpec {
                name,
                kind,
                pinned,
                confirm_auto_shutdown: confirm,
                stop_when_empty,
                timeouts: Timeouts {
                    start: Duration::from_millis(start_ms.max(0) as u64),
                    stop: Duration::from_millis(stop_ms.max(0) as u64),
                },
                readiness,
                offers,
                connector: ConnectorConfig { type_name: ctype, settings },
                state,
                tags,
                url,
                idle,
                proxy,
                power,
            },
        });
    }
    let mut topology = Topology::new();
    // Parents first: repeat passes until every row is placed.
    while !rows.is_empty() {
        let before = rows.len();
        let mut waiting = Vec::new();
        for row in rows {
            if row.parent.is_none_or(|p| topology.node(p).is_some()) {
                topology.insert_node(row.id, row.spec, row.parent).map_err(|e| corrupt(row.id.get(), e))?;
            } else {
                waiting.push(row);
            }
        }
        if waiting.len() == before {
            return Err(StoreError::Corrupt { message: "hosting cycle or dangling parent".into() });
        }
        rows = waiting;
    }
    let mut stmt = tx.prepare("SELECT from_id, to_id FROM dependencies ORDER BY from_id, to_id").map_err(db)?;
    let links: Vec<(NodeId, NodeId)> = stmt
        .query_map((), |r| Ok((NodeId::new(r.get(0)?), NodeId::new(r.get(1)?))))
        .map_err(db)?
        .collect::<Result<_, _>>()
        .map_err(db)?;
    topology.add_dependencies(&links).map_err(|e| StoreError::Corrupt { message: e.to_string() })?;
    Ok(topology)
}

fn parse_readiness(text: &str) -> Option<Readiness> {
    let v: Value = serde_json::from_str(text).ok()?;
    if let Some(t) = v.get("tcp") {
        return Some(Readiness::Tcp {
            host: t.get("host")?.as_str()?.to_owned(),
            port: u16::try_from(t.get("port")?.as_u64()?).ok()?,
        });
    }
    let h = v.get("http")?;
    Some(Readiness::Http {
        url: h.get("url")?.as_str()?.to_owned(),
        status: u16::try_from(h.get("status")?.as_u64()?).ok()?,
    })
}
