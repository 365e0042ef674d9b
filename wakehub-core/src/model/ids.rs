//! Typed identifiers. Every id is a small integer newtype so it can never be confused with
//! another kind of id, and prints the way the CLI and the API show it.

use std::fmt;

macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(i64);

        impl $name {
            /// Wraps a raw value (as stored in the database).
            pub const fn new(raw: i64) -> Self {
                Self(raw)
            }
            /// The raw value (as stored in the database).
            pub const fn get(self) -> i64 {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($prefix, "{}"), self.0)
            }
        }
    };
}

typed_id!(
    /// Identifies a node (a machine, VM, LXC, container or plugin-defined thing).
    NodeId,
    "node:"
);
typed_id!(
    /// Identifies an encrypted credential in the store.
    CredentialId,
    "credential:"
);
typed_id!(
    /// Identifies a cascade (one start or stop request and its steps).
    CascadeId,
    "cascade:"
);
typed_id!(
    /// Identifies a journal event; monotonic, so "everything after id N" is well defined.
    EventId,
    "event:"
);
typed_id!(
    /// Identifies a shutdown proposal awaiting confirmation.
    ProposalId,
    "proposal:"
);

/// A node named the way a caller has it: by id, or by name (or a `node:N` id written as
/// text). [`Topology::find`](super::Topology::find) resolves it; the engine's requests
/// take anything that converts into one, so `engine.start("jellyfin")` and
/// `engine.start(id)` both work.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NodeRef {
    /// By id.
    Id(NodeId),
    /// By name, or by id written as `node:N`.
    Name(String),
}

impl From<NodeId> for NodeRef {
    fn from(id: NodeId) -> Self {
        NodeRef::Id(id)
    }
}

impl From<&str> for NodeRef {
    fn from(name: &str) -> Self {
        NodeRef::Name(name.to_owned())
    }
}

impl From<String> for NodeRef {
    fn from(name: String) -> Self {
        NodeRef::Name(name)
    }
}

impl From<&String> for NodeRef {
    fn from(name: &String) -> Self {
        NodeRef::Name(name.clone())
    }
}

impl fmt::Display for NodeRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NodeRef::Id(id) => id.fmt(f),
            NodeRef::Name(name) => f.write_str(name),
        }
    }
}
