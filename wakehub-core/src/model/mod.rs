//! The topology model: nodes, kinds, the hosting tree and the dependency graph, with their
//! validation. Pure data and functions: no I/O, no clock, no async.

mod error;
mod ids;
mod node;
mod topology;

pub use error::ModelError;
pub use ids::{CascadeId, CredentialId, EventId, NodeId, ProposalId};
pub use node::{
    Capability, ConfigValue, ConnectorConfig, Kind, Node, NodeSpec, NodeState, Readiness, SecretRef, Timeouts,
    is_secret_key, validate_name,
};
pub use topology::Topology;
