//! Who may do what: a [`Role`] (viewer, operator, admin) and a [`Scope`] (every node, or
//! the nodes matching some tags or names). Tokens (and, later, users) carry both; the API
//! checks every operation against them.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use super::node::{Node, validate_name};

/// What a caller may do, each role including the one before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Role {
    /// Reads: queries and subscriptions.
    Viewer,
    /// Also powers things: start, stop, cancel, re-run, confirm and dismiss proposals.
    Operator,
    /// Also changes the lab: the topology, discovery and adoption, plugins, tokens.
    Admin,
}

impl Role {
    /// Every role, least first.
    pub const ALL: [Role; 3] = [Role::Viewer, Role::Operator, Role::Admin];

    /// `viewer`, `operator` or `admin`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    /// Whether this role may do what `needed` may.
    pub fn allows(self, needed: Role) -> bool {
        self >= needed
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Role, String> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("unknown role `{s}` (expected viewer, operator or admin)"))
    }
}

/// Which nodes a caller may see and act on.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Scope {
    /// Every node.
    #[default]
    All,
    /// The nodes that carry one of `tags` or are named in `nodes`.
    Only {
        /// Tags (`tag:media`).
        tags: BTreeSet<String>,
        /// Node names.
        nodes: BTreeSet<String>,
    },
}

impl Scope {
    /// Whether `node` is in the scope.
    pub fn allows(&self, node: &Node) -> bool {
        match self {
            Scope::All => true,
            Scope::Only { tags, nodes } => {
                nodes.contains(&node.spec.name) || node.spec.tags.iter().any(|t| tags.contains(t))
            }
        }
    }

    /// Whether this scope is every node.
    pub fn is_all(&self) -> bool {
        matches!(self, Scope::All)
    }
}

impl fmt::Display for Scope {
    /// `*`, or the selector it was parsed from (`tag:media,jellyfin`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::All => f.write_str("*"),
            Scope::Only { tags, nodes } => {
                let parts: Vec<String> = tags.iter().map(|t| format!("tag:{t}")).chain(nodes.iter().cloned()).collect();
                f.write_str(&parts.join(","))
            }
        }
    }
}

impl FromStr for Scope {
    type Err = String;
    /// `*` (every node), or a comma-separated list of `tag:TAG` and node names.
    fn from_str(s: &str) -> Result<Scope, String> {
        let s = s.trim();
        if s == "*" || s.is_empty() {
            return Ok(Scope::All);
        }
        let (mut tags, mut nodes) = (BTreeSet::new(), BTreeSet::new());
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part.strip_prefix("tag:") {
                Some(tag) => {
                    validate_tag(tag)?;
                    tags.insert(tag.to_owned());
                }
                None => {
                    validate_name(part)?;
                    nodes.insert(part.to_owned());
                }
            }
        }
        Ok(Scope::Only { tags, nodes })
    }
}

/// Checks a tag: the same characters as a node name (`[a-z0-9][a-z0-9-_]*`, ≤ 63).
pub fn validate_tag(tag: &str) -> Result<(), String> {
    validate_name(tag).map_err(|e| e.replacen('`', "tag `", 1))
}
