//! Small helpers shared by the tests.

use std::collections::BTreeSet;

use wakehub_core::model::{Capability, ConnectorConfig, Kind, NodeId, NodeSpec, Topology};
use wakehub_core::store::ImportSummary;
use wakehub_core::topology_file::{self, ParseOptions};

/// A node spec with a `sim` connector.
pub fn spec(name: &str, kind: Kind, offers: &[Capability]) -> NodeSpec {
    let mut s = NodeSpec::new(name, kind, ConnectorConfig::new("sim"));
    s.offers = offers.iter().copied().collect::<BTreeSet<_>>();
    s
}

/// Parses a topology file, panicking with every error on failure.
pub fn parse(text: &str) -> Topology {
    topology_file::parse(text, &ParseOptions::operator()).unwrap_or_else(|e| panic!("{e}"))
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

/// Why a topology file could not be imported: the file, or the store.
#[derive(Debug)]
pub enum TomlImportError {
    /// The file has problems.
    Parse(topology_file::ParseError),
    /// The store refused it.
    Store(wakehub_core::store::StoreError),
}

impl TomlImportError {
    /// The stable code.
    pub fn code(&self) -> wakehub_core::model::ErrorCode {
        match self {
            TomlImportError::Parse(e) => {
                use wakehub_core::model::ErrorCode;
                e.errors.iter().map(|f| f.code).find(|c| *c != ErrorCode::Validation).unwrap_or(ErrorCode::Validation)
            }
            TomlImportError::Store(e) => e.code(),
        }
    }
}

/// A topology file in and out of a store (the file format is not the store's business).
pub trait StoreToml {
    /// Parses `text` and makes the store's configured nodes exactly that.
    fn import_toml(&self, text: &str, options: &ParseOptions) -> Result<ImportSummary, TomlImportError>;
    /// The configured topology as a file.
    fn export_toml(&self) -> Result<String, topology_file::ExportError>;
}

impl StoreToml for wakehub_core::store::Store {
    fn import_toml(&self, text: &str, options: &ParseOptions) -> Result<ImportSummary, TomlImportError> {
        let desired = topology_file::parse(text, options).map_err(TomlImportError::Parse)?;
        self.import(&desired, options.origin).map_err(TomlImportError::Store)
    }

    fn export_toml(&self) -> Result<String, topology_file::ExportError> {
        let topology = self.topology_shared().expect("the store loads its topology");
        topology_file::export(&topology)
    }
}
