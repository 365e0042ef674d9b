//! Errors of the topology model.

use super::ErrorCode;

/// A change the topology refuses. Each variant has a stable [`code`](ModelError::code).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    /// No node has this name or id.
    #[error("unknown node `{node}`")]
    UnknownNode {
        /// The name or id asked for.
        node: String,
    },
    /// The name is not a valid node name.
    #[error("invalid name: {reason}")]
    InvalidName {
        /// The name given.
        name: String,
        /// Why it is refused.
        reason: String,
    },
    /// A tag is not valid.
    #[error("`{node}`: tag `{tag}`: {reason}")]
    InvalidTag {
        /// The node.
        node: String,
        /// The tag.
        tag: String,
        /// Why.
        reason: String,
    },
    /// Another node already has this name.
    #[error("a node named `{name}` already exists")]
    DuplicateName {
        /// The name.
        name: String,
    },
    /// Another node already has this id (store corruption or a bad load).
    #[error("duplicate node id {id}")]
    DuplicateId {
        /// The id.
        id: String,
    },
    /// The parent breaks a hosting rule.
    #[error("`{node}` cannot run on {}: {reason}", parent.as_deref().map_or("nothing".to_owned(), |p| format!("`{p}`")))]
    InvalidParent {
        /// The node.
        node: String,
        /// Its (proposed) parent, if any.
        parent: Option<String>,
        /// The rule broken.
        reason: String,
    },
    /// The node's kind cannot offer this capability.
    #[error("`{node}` is a {kind} and cannot offer `{capability}`")]
    CannotOffer {
        /// The node.
        node: String,
        /// Its kind.
        kind: String,
        /// The capability.
        capability: String,
    },
    /// The node still hosts others.
    #[error("`{node}` still hosts {}; remove or move them first", children.join(", "))]
    HostsNodes {
        /// The node.
        node: String,
        /// What it hosts.
        children: Vec<String>,
    },
    /// A node cannot depend on itself.
    #[error("`{node}` cannot depend on itself")]
    SelfDependency {
        /// The node.
        node: String,
    },
    /// The dependency already exists.
    #[error("`{from}` already depends on `{to}`")]
    DuplicateDependency {
        /// Dependent.
        from: String,
        /// Dependency.
        to: String,
    },
    /// The dependency does not exist.
    #[error("`{from}` does not depend on `{to}`")]
    UnknownDependency {
        /// Dependent.
        from: String,
        /// Dependency.
        to: String,
    },
    /// The change would close a cycle through dependencies and hosting.
    #[error("this would close a cycle: {}", path.join(" → "))]
    Cycle {
        /// The cycle, first node repeated at the end.
        path: Vec<String>,
    },
}

impl ModelError {
    /// The stable machine-readable code (`NOT_FOUND`, `CYCLE`, `VALIDATION`, `CONFLICT`).
    pub fn code(&self) -> ErrorCode {
        match self {
            ModelError::UnknownNode { .. } | ModelError::UnknownDependency { .. } => ErrorCode::NotFound,
            ModelError::Cycle { .. } => ErrorCode::Cycle,
            ModelError::DuplicateName { .. }
            | ModelError::DuplicateId { .. }
            | ModelError::DuplicateDependency { .. }
            | ModelError::HostsNodes { .. } => ErrorCode::Conflict,
            ModelError::InvalidName { .. }
            | ModelError::InvalidTag { .. }
            | ModelError::InvalidParent { .. }
            | ModelError::CannotOffer { .. }
            | ModelError::SelfDependency { .. } => ErrorCode::Validation,
        }
    }

    /// The node it is about, when one is named.
    pub fn node(&self) -> Option<&str> {
        match self {
            ModelError::InvalidName { name: node, .. }
            | ModelError::InvalidTag { node, .. }
            | ModelError::DuplicateName { name: node }
            | ModelError::InvalidParent { node, .. }
            | ModelError::CannotOffer { node, .. }
            | ModelError::HostsNodes { node, .. }
            | ModelError::SelfDependency { node }
            | ModelError::DuplicateDependency { from: node, .. } => Some(node),
            _ => None,
        }
    }

    /// The field of a node's configuration it is about (as the topology file names it:
    /// `name`, `parent`, `depends_on`, `offers`, `tags`), so a form can show it there.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            ModelError::InvalidName { .. } | ModelError::DuplicateName { .. } => Some("name"),
            ModelError::InvalidParent { .. } => Some("parent"),
            ModelError::CannotOffer { .. } => Some("offers"),
            ModelError::InvalidTag { .. } => Some("tags"),
            ModelError::SelfDependency { .. } | ModelError::DuplicateDependency { .. } | ModelError::Cycle { .. } => {
                Some("depends_on")
            }
            _ => None,
        }
    }
}

/// A request refused by a rule, with its code — `CONFLICT` (it clashes with what exists or
/// with work in flight) or `VALIDATION` (it is not valid) — and why. The store and the
/// engine both refuse with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
#[non_exhaustive]
pub struct Refusal {
    /// `CONFLICT` or `VALIDATION`.
    pub code: ErrorCode,
    /// Why, for a person.
    pub message: String,
}

impl Refusal {
    /// A refusal with its code.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Refusal { code, message: message.into() }
    }

    /// A conflict with what exists or with work in flight (`CONFLICT`).
    pub fn conflict(message: impl Into<String>) -> Self {
        Refusal { code: ErrorCode::Conflict, message: message.into() }
    }

    /// A request that is not valid (`VALIDATION`).
    pub fn invalid(message: impl Into<String>) -> Self {
        Refusal { code: ErrorCode::Validation, message: message.into() }
    }
}
