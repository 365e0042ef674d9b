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

/// A fresh store for a test: an in-memory SQLite database, or, when `WAKEHUB_TEST_POSTGRES`
/// names a PostgreSQL server (`host=… port=… user=…`; `scripts/test.sh` starts one and runs
/// the suite again against it), a new database of its own on that server.
pub fn store(key: wakehub_core::secrets::MasterKey) -> wakehub_core::store::Store {
    match std::env::var("WAKEHUB_TEST_POSTGRES").ok().filter(|s| !s.is_empty()) {
        Some(server) => wakehub_core::store::Store::open_postgres(&fresh_database(&server), key).unwrap(),
        None => wakehub_core::store::Store::open_in_memory(key).unwrap(),
    }
}

/// Creates an empty schema on PostgreSQL server `server` (with `psql`; a schema, not a
/// database: a few hundred tests leave a few hundred of them) and returns the connection
/// string that works in it.
pub fn fresh_database(server: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let name = format!("t_{}_{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
    let out = std::process::Command::new("psql")
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", &format!("{server} dbname=postgres")])
        .args(["-c", &format!("CREATE SCHEMA {name}")])
        .output()
        .expect("psql (apt-get install postgresql)");
    assert!(out.status.success(), "CREATE SCHEMA {name}: {}", String::from_utf8_lossy(&out.stderr));
    format!("{server} dbname=postgres options='-c search_path={name}'")
}
