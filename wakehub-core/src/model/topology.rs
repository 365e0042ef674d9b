//! The two layers: the hosting tree ("runs on") and the dependency graph ("depends on"),
//! with every rule that keeps them consistent and the queries the engine needs.
//!
//! The union of both layers is kept acyclic: a node's parent and its dependencies must all
//! be able to run before it, so any cycle through either relation would make a start order
//! impossible.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use super::error::ModelError;
use super::ids::{NodeId, NodeRef};
use super::node::{Capability, Kind, Node, NodeSpec, validate_name};

/// The hosting tree and the dependency graph over a set of nodes.
#[derive(Debug, Clone, Default)]
pub struct Topology {
    nodes: BTreeMap<NodeId, Node>,
    by_name: HashMap<String, NodeId>,
    /// `from -> {to}`: `from` depends on `to`.
    deps: BTreeMap<NodeId, BTreeSet<NodeId>>,
    /// `to -> {from}`.
    rdeps: BTreeMap<NodeId, BTreeSet<NodeId>>,
    children: BTreeMap<NodeId, BTreeSet<NodeId>>,
    next_id: i64,
    /// The planner's dense index of this version (dropped by every change).
    index: super::index::IndexCache,
}

impl Topology {
    /// An empty topology.
    pub fn new() -> Self {
        Self { next_id: 1, ..Self::default() }
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether there are no nodes.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Every node, by id.
    pub fn nodes(&self) -> impl Iterator<Item = &Node> {
        self.nodes.values()
    }

    /// A node by id.
    pub fn node(&self, id: NodeId) -> Option<&Node> {
        self.nodes.get(&id)
    }

    /// A node by id, or `NOT_FOUND`.
    pub fn get(&self, id: NodeId) -> Result<&Node, ModelError> {
        self.nodes.get(&id).ok_or_else(|| ModelError::UnknownNode { node: id.to_string() })
    }

    /// A node by name.
    pub fn by_name(&self, name: &str) -> Option<&Node> {
        self.by_name.get(name).and_then(|id| self.nodes.get(id))
    }

    /// Resolves a node by name or by `node:N` id, or `NOT_FOUND`.
    pub fn resolve(&self, name_or_id: &str) -> Result<&Node, ModelError> {
        let by_id = name_or_id
            .strip_prefix("node:")
            .and_then(|n| n.parse::<i64>().ok())
            .and_then(|n| self.nodes.get(&NodeId::new(n)));
        by_id
            .or_else(|| self.by_name(name_or_id))
            .ok_or_else(|| ModelError::UnknownNode { node: name_or_id.to_owned() })
    }

    /// Resolves a [`NodeRef`] (an id, a name or a `node:N` id as text), or `NOT_FOUND`.
    pub fn find(&self, node: &NodeRef) -> Result<&Node, ModelError> {
        match node {
            NodeRef::Id(id) => self.get(*id),
            NodeRef::Name(name) => self.resolve(name),
        }
    }

    /// The name of a node, for messages (`node:N` if unknown).
    pub fn name_of(&self, id: NodeId) -> String {
        self.nodes.get(&id).map_or_else(|| id.to_string(), |n| n.spec.name.clone())
    }

    /// The dense index of this version, built on first use.
    pub(crate) fn index(&self) -> std::sync::Arc<super::index::Index> {
        self.index.get(self)
    }

    /// Every dependency link `(from, to)`: `from` depends on `to`.
    pub fn links(&self) -> impl Iterator<Item = (NodeId, NodeId)> + '_ {
        self.deps.iter().flat_map(|(from, tos)| tos.iter().map(move |to| (*from, *to)))
    }

    // ----- mutations -----

    /// Adds a node under `parent`, checking its name and the hosting rules.
    pub fn add_node(&mut self, spec: NodeSpec, parent: Option<NodeId>) -> Result<NodeId, ModelError> {
        let id = NodeId::new(self.next_id);
        self.insert_node(id, spec, parent)?;
        Ok(id)
    }

    /// Adds a node with a given id (used when loading from the store).
    pub fn insert_node(&mut self, id: NodeId, spec: NodeSpec, parent: Option<NodeId>) -> Result<(), ModelError> {
        self.index.clear();
        if self.nodes.contains_key(&id) {
            return Err(ModelError::DuplicateId { id: id.to_string() });
        }
        validate_name(&spec.name).map_err(|reason| ModelError::InvalidName { name: spec.name.clone(), reason })?;
        if self.by_name.contains_key(&spec.name) {
            return Err(ModelError::DuplicateName { name: spec.name.clone() });
        }
        self.check_offers(&spec)?;
        check_tags(&spec)?;
        let parent_node = parent.map(|p| self.get(p)).transpose()?;
        check_hosting(&spec, parent_node)?;
        // A brand-new node has no inbound edges, so its parent edge cannot close a cycle.
        self.by_name.insert(spec.name.clone(), id);
        if let Some(p) = parent {
            self.children.entry(p).or_default().insert(id);
        }
        self.nodes.insert(id, Node { id, parent, spec });
        self.next_id = self.next_id.max(id.get() + 1);
        Ok(())
    }

    /// Replaces a node's spec (name, kind, offers…), keeping its id and links.
    pub fn update_node(&mut self, id: NodeId, spec: NodeSpec) -> Result<(), ModelError> {
        let parent = self.get(id)?.parent;
        self.replace_node(id, spec, parent)
    }

    /// Moves a node under another parent (or to the top with `None`).
    pub fn set_parent(&mut self, id: NodeId, parent: Option<NodeId>) -> Result<(), ModelError> {
        let spec = self.get(id)?.spec.clone();
        self.replace_node(id, spec, parent)
    }

    /// Replaces a node's spec and parent at once, keeping its id and dependency links. The
    /// hosting rules are checked for the new spec under the new parent and for its children
    /// under the new spec; a new parent that would close a cycle is refused.
    pub fn replace_node(&mut self, id: NodeId, spec: NodeSpec, parent: Option<NodeId>) -> Result<(), ModelError> {
        self.index.clear();
        let current = self.get(id)?;
        validate_name(&spec.name).map_err(|reason| ModelError::InvalidName { name: spec.name.clone(), reason })?;
        if let Some(other) = self.by_name.get(&spec.name)
            && *other != id
        {
            return Err(ModelError::DuplicateName { name: spec.name.clone() });
        }
        self.check_offers(&spec)?;
        check_tags(&spec)?;
        let old_parent = current.parent;
        let old_name = current.spec.name.clone();
        if parent == Some(id) {
            return Err(ModelError::Cycle { path: vec![old_name.clone(), old_name] });
        }
        let parent_node = parent.map(|p| self.get(p)).transpose()?;
        check_hosting(&spec, parent_node)?;
        if let Some(p) = parent
            && old_parent != parent
        {
            // The new edge is id -> p; it closes a cycle if p already reaches id.
            if let Some(path) = self.find_path(p, id) {
                return Err(self.cycle_error(id, path));
            }
        }
        let as_parent = Node { id, parent, spec: spec.clone() };
        for child in self.children(id) {
            check_hosting(&self.nodes[&child].spec, Some(&as_parent))?;
        }
        self.by_name.remove(&old_name);
        self.by_name.insert(spec.name.clone(), id);
        if old_parent != parent {
            if let Some(old) = old_parent
                && let Some(set) = self.children.get_mut(&old)
            {
                set.remove(&id);
            }
            if let Some(p) = parent {
                self.children.entry(p).or_default().insert(id);
            }
        }
        if let Some(node) = self.nodes.get_mut(&id) {
            node.spec = spec;
            node.parent = parent;
        }
        Ok(())
    }

    /// Removes a node and its dependency links. Refused while it hosts other nodes.
    pub fn remove_node(&mut self, id: NodeId) -> Result<Node, ModelError> {
        self.index.clear();
        self.get(id)?;
        let children = self.children(id);
        if !children.is_empty() {
            return Err(ModelError::HostsNodes {
                node: self.name_of(id),
                children: children.iter().map(|c| self.name_of(*c)).collect(),
            });
        }
        for to in self.deps.remove(&id).unwrap_or_default() {
            if let Some(set) = self.rdeps.get_mut(&to) {
                set.remove(&id);
            }
        }
        for from in self.rdeps.remove(&id).unwrap_or_default() {
            if let Some(set) = self.deps.get_mut(&from) {
                set.remove(&id);
            }
        }
        self.children.remove(&id);
        let node = self.nodes.remove(&id).ok_or_else(|| ModelError::UnknownNode { node: id.to_string() })?;
        if let Some(p) = node.parent
            && let Some(set) = self.children.get_mut(&p)
        {
            set.remove(&id);
        }
        self.by_name.remove(&node.spec.name);
        Ok(node)
    }

    /// Adds "`from` depends on `to`". Refuses self-links, duplicates, and any link that
    /// would close a cycle in the union of both layers (the error names the cycle).
    pub fn add_dependency(&mut self, from: NodeId, to: NodeId) -> Result<(), ModelError> {
        self.index.clear();
        self.get(from)?;
        self.get(to)?;
        if from == to {
            return Err(ModelError::SelfDependency { node: self.name_of(from) });
        }
        if self.deps.get(&from).is_some_and(|s| s.contains(&to)) {
            return Err(ModelError::DuplicateDependency { from: self.name_of(from), to: self.name_of(to) });
        }
        if let Some(path) = self.find_path(to, from) {
            return Err(self.cycle_error(from, path));
        }
        self.deps.entry(from).or_default().insert(to);
        self.rdeps.entry(to).or_default().insert(from);
        Ok(())
    }

    /// Adds many links at once (loading a stored topology): each is checked for self-links
    /// and unknown nodes, and the union of both layers is checked for a cycle once, in
    /// linear time, instead of once per link. On error nothing is added.
    pub fn add_dependencies(&mut self, links: &[(NodeId, NodeId)]) -> Result<(), ModelError> {
        self.index.clear();
        for (from, to) in links {
            self.get(*from)?;
            self.get(*to)?;
            if from == to {
                return Err(ModelError::SelfDependency { node: self.name_of(*from) });
            }
        }
        let mut next = self.clone();
        for (from, to) in links {
            next.deps.entry(*from).or_default().insert(*to);
            next.rdeps.entry(*to).or_default().insert(*from);
        }
        if let Some(path) = next.find_cycle() {
            return Err(ModelError::Cycle { path: path.into_iter().map(|n| next.name_of(n)).collect() });
        }
        *self = next;
        Ok(())
    }

    /// A cycle in the union of both layers, if any (first node repeated at the end).
    fn find_cycle(&self) -> Option<Vec<NodeId>> {
        // Kahn's algorithm: whatever cannot be ordered lies on or behind a cycle.
        let mut pending: HashMap<NodeId, usize> = self.nodes.keys().map(|n| (*n, self.upstream(*n).len())).collect();
        let mut ready: Vec<NodeId> = pending.iter().filter(|(_, c)| **c == 0).map(|(n, _)| *n).collect();
        while let Some(n) = ready.pop() {
            pending.remove(&n);
            for m in self.downstream(n) {
                if let Some(c) = pending.get_mut(&m) {
                    *c -= 1;
                    if *c == 0 {
                        ready.push(m);
                    }
                }
            }
        }
        let start = *pending.keys().min()?;
        // Walk upstream inside the unordered set until a node repeats.
        let mut path = vec![start];
        let mut seen = BTreeSet::from([start]);
        let mut cur = start;
        loop {
            let next = self.upstream(cur).into_iter().find(|m| pending.contains_key(m))?;
            if seen.contains(&next) {
                let from = path.iter().position(|n| *n == next).unwrap_or(0);
                let mut cycle = path[from..].to_vec();
                cycle.push(next);
                return Some(cycle);
            }
            seen.insert(next);
            path.push(next);
            cur = next;
        }
    }

    /// Removes "`from` depends on `to`".
    pub fn remove_dependency(&mut self, from: NodeId, to: NodeId) -> Result<(), ModelError> {
        self.index.clear();
        self.get(from)?;
        self.get(to)?;
        let removed = self.deps.get_mut(&from).is_some_and(|s| s.remove(&to));
        if !removed {
            return Err(ModelError::UnknownDependency { from: self.name_of(from), to: self.name_of(to) });
        }
        if let Some(set) = self.rdeps.get_mut(&to) {
            set.remove(&from);
        }
        Ok(())
    }

    // ----- queries -----

    /// The node's parent.
    pub fn parent(&self, id: NodeId) -> Option<NodeId> {
        self.nodes.get(&id).and_then(|n| n.parent)
    }

    /// Nodes hosted directly on `id`.
    pub fn children(&self, id: NodeId) -> Vec<NodeId> {
        self.children.get(&id).map(|s| s.iter().copied().collect()).unwrap_or_default()
    }

    /// What `id` depends on directly.
    pub fn dependencies(&self, id: NodeId) -> Vec<NodeId> {
        self.deps.get(&id).map(|s| s.iter().copied().collect()).unwrap_or_default()
    }

    /// Who depends on `id` directly.
    pub fn dependents(&self, id: NodeId) -> Vec<NodeId> {
        self.rdeps.get(&id).map(|s| s.iter().copied().collect()).unwrap_or_default()
    }

    /// The hosting chain above `id`, root first (machine, VM, … — `id` excluded).
    pub fn hosting_chain(&self, id: NodeId) -> Vec<NodeId> {
        let mut chain = Vec::new();
        let mut cur = self.parent(id);
        while let Some(p) = cur {
            chain.push(p);
            cur = self.parent(p);
        }
        chain.reverse();
        chain
    }

    /// Everything hosted below `id`, recursively, parents before children.
    pub fn hosted_descendants(&self, id: NodeId) -> Vec<NodeId> {
        let mut out = Vec::new();
        let mut stack: Vec<NodeId> = self.children(id).into_iter().rev().collect();
        while let Some(n) = stack.pop() {
            out.push(n);
            stack.extend(self.children(n).into_iter().rev());
        }
        out
    }

    /// Everyone who depends on `id`, directly or through other dependencies (dependency
    /// layer only), sorted by id.
    pub fn transitive_dependents(&self, id: NodeId) -> Vec<NodeId> {
        self.closure(id, |n| self.dependents(n)).into_iter().collect()
    }

    /// Every node `id` needs to run: its dependencies and its hosting chain, recursively
    /// through both layers (`id` excluded).
    pub fn upstream_closure(&self, id: NodeId) -> BTreeSet<NodeId> {
        self.closure(id, |n| self.upstream(n))
    }

    /// Every node that cannot run without `id`: its hosted descendants and its dependents,
    /// recursively through both layers (`id` excluded).
    pub fn downstream_closure(&self, id: NodeId) -> BTreeSet<NodeId> {
        self.closure(id, |n| self.downstream(n))
    }

    /// What `id` needs directly: its dependencies and its parent.
    pub fn upstream(&self, id: NodeId) -> Vec<NodeId> {
        let mut v = self.dependencies(id);
        v.extend(self.parent(id));
        v
    }

    /// What needs `id` directly: its dependents and its children.
    pub fn downstream(&self, id: NodeId) -> Vec<NodeId> {
        let mut v = self.dependents(id);
        v.extend(self.children(id));
        v
    }

    /// Who still uses `id`: the running nodes that depend on it or run on it. A hypervisor
    /// hosting a running VM is in use just as a NAS serving a running Jellyfin is.
    pub fn users(&self, id: NodeId, is_running: impl Fn(NodeId) -> bool) -> Vec<NodeId> {
        let mut users: Vec<NodeId> = self.downstream(id).into_iter().filter(|n| is_running(*n)).collect();
        users.sort();
        users.dedup();
        users
    }

    fn closure(&self, start: NodeId, next: impl Fn(NodeId) -> Vec<NodeId>) -> BTreeSet<NodeId> {
        let mut seen = BTreeSet::new();
        let mut queue: VecDeque<NodeId> = next(start).into();
        while let Some(n) = queue.pop_front() {
            if n != start && seen.insert(n) {
                queue.extend(next(n));
            }
        }
        seen
    }

    /// A path `from -> … -> to` along upstream edges (dependencies and parents), if any.
    fn find_path(&self, from: NodeId, to: NodeId) -> Option<Vec<NodeId>> {
        let mut prev: HashMap<NodeId, NodeId> = HashMap::new();
        let mut queue = VecDeque::from([from]);
        let mut seen = BTreeSet::from([from]);
        while let Some(n) = queue.pop_front() {
            if n == to {
                let mut path = vec![to];
                let mut cur = to;
                while let Some(p) = prev.get(&cur) {
                    path.push(*p);
                    cur = *p;
                }
                path.reverse();
                return Some(path);
            }
            for m in self.upstream(n) {
                if seen.insert(m) {
                    prev.insert(m, n);
                    queue.push_back(m);
                }
            }
        }
        None
    }

    /// The cycle `start -> path[0] -> … -> start` as names.
    fn cycle_error(&self, start: NodeId, path: Vec<NodeId>) -> ModelError {
        let mut names = vec![self.name_of(start)];
        names.extend(path.into_iter().map(|n| self.name_of(n)));
        ModelError::Cycle { path: names }
    }

    fn check_offers(&self, spec: &NodeSpec) -> Result<(), ModelError> {
        for cap in &spec.offers {
            if !spec.kind.may_offer(*cap) {
                return Err(ModelError::CannotOffer {
                    node: spec.name.clone(),
                    kind: spec.kind.to_string(),
                    capability: cap.to_string(),
                });
            }
        }
        Ok(())
    }
}

/// The hosting rules of the seed: a physical machine has no parent; a VM or LXC runs on a
/// host that offers `proxmox`; a container runs on a host that offers `docker`; a container
/// hosts nothing.
fn check_hosting(child: &NodeSpec, parent: Option<&Node>) -> Result<(), ModelError> {
    let err = |reason: String| ModelError::InvalidParent {
        node: child.name.clone(),
        parent: parent.map(|p| p.spec.name.clone()),
        reason,
    };
    let needs = match &child.kind {
        Kind::Physical => {
            return match parent {
                Some(_) => Err(err("a physical machine has no parent".into())),
                None => Ok(()),
            };
        }
        Kind::Vm | Kind::Lxc => Some(Capability::Proxmox),
        Kind::Container | Kind::Stack => Some(Capability::Docker),
        Kind::Plugin(_) => None,
    };
    match (parent, needs) {
        (None, Some(cap)) => Err(err(format!("a {} needs a parent that offers `{cap}`", child.kind))),
        (Some(p), _) if matches!(p.spec.kind, Kind::Container | Kind::Stack) => {
            Err(err(format!("`{}` is a {}, and a {} hosts nothing", p.spec.name, p.spec.kind, p.spec.kind)))
        }
        (Some(p), Some(cap)) if !p.offers(cap) => {
            Err(err(format!("a {} runs on a host that offers `{cap}`, and `{}` does not", child.kind, p.spec.name)))
        }
        _ => Ok(()),
    }
}

/// Tags are names (`[a-z0-9][a-z0-9-_]*`), at most 32 per node.
fn check_tags(spec: &NodeSpec) -> Result<(), ModelError> {
    let invalid =
        |tag: &str, reason: String| ModelError::InvalidTag { node: spec.name.clone(), tag: tag.to_owned(), reason };
    if spec.tags.len() > 32 {
        return Err(invalid("", "at most 32 tags per node".into()));
    }
    for tag in &spec.tags {
        super::validate_tag(tag).map_err(|reason| invalid(tag, reason))?;
    }
    Ok(())
}
