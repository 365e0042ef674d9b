//! Typed identifiers. Every id is a small integer newtype so it can never be confused with
//! another kind of id, and prints the way the CLI and the API show it.

use std::fmt;

macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
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
