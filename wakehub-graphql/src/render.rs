//! Text renderings a person reads in a terminal: the hosting tree with dependency links.

use std::fmt::Write as _;

use wakehub_core::model::{Node, NodeId, Readiness, Topology};

/// The hosting tree, one line per node, with what each node depends on (`→`) and who
/// depends on it (`←`).
pub fn tree(topology: &Topology) -> String {
    let mut out = String::new();
    let mut roots: Vec<&Node> = topology.nodes().filter(|n| n.parent.is_none()).collect();
    roots.sort_by(|a, b| a.name().cmp(b.name()));
    for root in roots {
        line(topology, root.id, "", "", &mut out);
    }
    out
}

fn line(topology: &Topology, id: NodeId, lead: &str, child_lead: &str, out: &mut String) {
    let Some(node) = topology.node(id) else { return };
    let spec = &node.spec;
    let mut desc = vec![spec.kind.to_string()];
    if !spec.offers.is_empty() {
        desc.push(format!("offers {}", spec.offers.iter().map(|c| c.as_str()).collect::<Vec<_>>().join("+")));
    }
    desc.push(format!("via {}", spec.connector.type_name));
    let _ = write!(out, "{lead}{}  ({})", spec.name, desc.join(", "));
    if spec.pinned {
        out.push_str(" [pinned]");
    }
    let deps: Vec<String> = topology.dependencies(id).iter().map(|d| topology.name_of(*d)).collect();
    if !deps.is_empty() {
        let _ = write!(out, "  → needs {}", deps.join(", "));
    }
    let users: Vec<String> = topology.dependents(id).iter().map(|d| topology.name_of(*d)).collect();
    if !users.is_empty() {
        let _ = write!(out, "  ← used by {}", users.join(", "));
    }
    if let Some(r) = &spec.readiness {
        match r {
            Readiness::Tcp { host, port } => {
                let _ = write!(out, "  ready when tcp {host}:{port} answers");
            }
            Readiness::Http { url, status } => {
                let _ = write!(out, "  ready when {url} answers {status}");
            }
            _ => {}
        }
    }
    out.push('\n');
    let mut children = topology.children(id);
    children.sort_by_key(|c| topology.name_of(*c));
    let n = children.len();
    for (i, c) in children.into_iter().enumerate() {
        let last = i + 1 == n;
        let (branch, next) = if last { ("└── ", "    ") } else { ("├── ", "│   ") };
        line(topology, c, &format!("{child_lead}{branch}"), &format!("{child_lead}{next}"), out);
    }
}
