//! Small helpers shared by the tests.

use std::collections::BTreeSet;

use wakehub_core::model::{Capability, ConnectorConfig, Kind, NodeId, NodeSpec, Topology};
use wakehub_core::topology_file::{self, ParseOptions};

/// A node spec with a `sim` connector.
pub fn spec(name: &str, kind: Kind, offers: &[Capability]) -> NodeSpec {
    let mut s = NodeSpec::new(name, kind, ConnectorConfig::new("sim"));
    s.offers = offers.iter().copied().collect::<BTreeSet<_>>();
    s
}

/// Parses a topology file, panicking with every error on failure.
pub fn parse(text: &str) -> Topology {
    topology_file::parse(text, &ParseOptions::default()).unwrap_or_else(|e| panic!("{e}"))
}

/// The id of a node by name.
pub fn id(t: &Topology, name: &str) -> NodeId {
    t.by_name(name).unwrap_or_else(|| panic!("no node {name}")).id
}

/// Names of ids, sorted.
pub fn names(t: &Topology, ids: impl IntoIterator<Item = NodeId>) -> Vec<String> {
    let mut v: Vec<String> = ids.into_iter().map(|i| t.name_of(i)).collect();
    v.sort();
    v
}

/// The reference homelab shipped in `examples/`.
pub fn homelab() -> Topology {
    parse(include_str!("../../../examples/homelab.toml"))
}
