//! The topology model: nodes, kinds, the hosting tree and the dependency graph, with their
//! validation. Pure data and functions: no I/O, no clock, no async.

mod access;
mod code;
mod error;
mod idle;
mod ids;
pub(crate) mod index;
mod node;
mod power;
mod proxy;
mod topology;

pub use access::{Role, Scope, validate_tag};
pub use code::ErrorCode;
pub use error::{ModelError, Refusal};
pub use idle::{HttpCheck, IdleRule, MAX_IDLE, MIN_IDLE, reports_something};
pub use ids::{CascadeId, CredentialId, EventId, NodeId, NodeRef, ProposalId};
pub use node::{
    Capability, ConfigValue, ConnectorConfig, Kind, Node, NodeDraft, NodeSpec, NodeState, Origin, PluginKinds,
    Readiness, STANDARD_COMMANDS, SecretRef, Timeouts, endpoint_of, is_command_key, is_endpoint_key, is_file_key,
    is_secret_key, validate_name, validate_url,
};
pub use power::{Action, PowerDraw, PowerState};
pub use proxy::{ProxyRoute, TcpWake};
pub use topology::Topology;
