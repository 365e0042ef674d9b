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

/// A plan as a person reads it.
pub fn plan(topology: &Topology, plan: &wakehub_core::plan::Plan) -> String {
    let mut out = String::new();
    let name = |id: NodeId| topology.name_of(id);
    let _ = writeln!(
        out,
        "Plan: {} {} — {} step(s), about {} (at most {})",
        plan.action,
        name(plan.target),
        plan.steps.len(),
        short(plan.estimate),
        short(plan.worst_case)
    );
    let width = plan.steps.iter().map(|s| name(s.node).len()).max().unwrap_or(0);
    for s in &plan.steps {
        let mut line = format!("  #{:<2} {:5} {:width$}", s.id, s.action.as_str(), name(s.node));
        if !s.after.is_empty() {
            let after: Vec<String> = s.after.iter().map(|a| format!("#{a}")).collect();
            let _ = write!(line, "  after {}", after.join(", "));
        }
        if s.role == wakehub_core::plan::Role::Unused {
            line.push_str("  (no longer used)");
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
    for (title, list) in [
        ("Skipped", &plan.skipped),
        ("Kept on", &plan.kept),
        ("Shutdown proposed (needs confirmation)", &plan.proposed),
    ] {
        if !list.is_empty() {
            let _ = writeln!(out, "{title}:");
            for d in list {
                let _ = writeln!(out, "  - {}: {}", name(d.node), d.reason);
            }
        }
    }
    out
}

/// A duration the way a person says it: `850ms`, `3.2s`, `4m10s`.
pub fn short(d: std::time::Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.1}s", d.as_secs_f64())
    } else {
        let s = d.as_secs();
        if s.is_multiple_of(60) { format!("{}m", s / 60) } else { format!("{}m{}s", s / 60, s % 60) }
    }
}

/// The `wakehub plan --json` shape (a stable contract for scripts).
pub fn plan_json(topology: &Topology, plan: &wakehub_core::plan::Plan) -> serde_json::Value {
    use serde_json::json;
    let name = |id: NodeId| topology.name_of(id);
    let decisions = |list: &[wakehub_core::plan::Decision]| -> Vec<serde_json::Value> {
        list.iter().map(|d| json!({"node": name(d.node), "reason": d.reason})).collect()
    };
    json!({
        "target": name(plan.target),
        "action": plan.action.as_str(),
        "steps": plan.steps.iter().map(|s| json!({
            "id": s.id,
            "node": name(s.node),
            "action": s.action.as_str(),
            "after": s.after,
            "role": s.role.as_str(),
        })).collect::<Vec<_>>(),
        "skipped": decisions(&plan.skipped),
        "kept": decisions(&plan.kept),
        "proposed": decisions(&plan.proposed),
        "estimate_ms": plan.estimate.as_millis() as u64,
        "worst_case_ms": plan.worst_case.as_millis() as u64,
    })
}

/// A machine's refresh, for people: its state line, then what the snapshot holds that
/// needs attention — upgrades (security first), reboot reasons, services to restart,
/// filesystems, Docker, messages.
pub fn machine(
    name: &str,
    state: &wakehub_core::store::MachineState,
    snapshot: Option<&wakehub_core::machine::Snapshot>,
) -> String {
    use std::fmt::Write as _;
    let mut out = format!("{name}: {}\n", state.summary());
    let Some(s) = snapshot else { return out };
    let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
    if let Some(os) = &s.os {
        let _ = writeln!(out, "  os       {} ({})", os.pretty_name, os.arch.as_deref().unwrap_or("?"));
    }
    if let Some(k) = &s.kernel {
        let _ = writeln!(out, "  kernel   {}", k.running);
    }
    if let (Some(l), Some(m)) = (&s.load, &s.memory) {
        let _ = writeln!(
            out,
            "  load     {:.2} {:.2} {:.2}; memory {:.0}% of {:.1} GiB in use",
            l.one,
            l.five,
            l.fifteen,
            m.used_percent,
            gib(m.total)
        );
    }
    for f in &s.filesystems {
        let _ = writeln!(out, "  disk     {:<20} {:>3.0}% of {:.1} GiB", f.mount, f.used_percent, gib(f.size));
    }
    if let Some(apt) = &s.apt {
        let width = apt.upgrades.iter().map(|u| u.name.len()).max().unwrap_or(0);
        for u in &apt.upgrades {
            let mut tags = Vec::new();
            if u.security {
                tags.push("security");
            }
            if u.kept_back {
                tags.push("kept back by upgrade");
            }
            if u.held {
                tags.push("held");
            }
            let tags = if tags.is_empty() { String::new() } else { format!("  [{}]", tags.join(", ")) };
            let _ = writeln!(out, "  upgrade  {:width$}  {} → {}{tags}", u.name, u.installed, u.candidate);
        }
        for p in &apt.new_packages {
            let _ = writeln!(out, "  new      {p} (full-upgrade installs it)");
        }
        if !apt.lists_refreshed {
            let _ = writeln!(out, "  apt      the package lists were not refreshed");
        }
    }
    for r in &s.reboot.reasons {
        let _ = writeln!(out, "  reboot   {r}");
    }
    if let Some(r) = &s.restarts
        && !r.services.is_empty()
    {
        let _ = writeln!(out, "  restart  {}", r.services.join(", "));
    }
    if let Some(d) = &s.docker {
        let running = d.containers.iter().filter(|c| c.state == "running").count();
        let _ = writeln!(
            out,
            "  docker   {} ({} containers, {running} running; {:.1} GiB reclaimable)",
            d.version.as_deref().unwrap_or("daemon not answering"),
            d.containers.len(),
            gib(d.reclaimable_bytes)
        );
    }
    for m in &s.messages {
        let _ = writeln!(out, "  {:<8} {}: {}", m.severity.as_str(), m.source, m.text);
    }
    for u in &s.unsupported {
        let _ = writeln!(out, "  n/a      {u}");
    }
    out
}

/// A maintenance plan, for a terminal: the machines in the order they are upgraded, what
/// each would upgrade (security first) and whether it reboots, what is woken, what is left
/// alone, and the estimate.
pub fn maintenance_plan(plan: &wakehub_core::engine::MaintenancePlan) -> String {
    let mut out = String::new();
    let packages: usize = plan.machines.iter().map(|m| m.packages.len()).sum();
    let _ = writeln!(
        out,
        "Maintenance plan: {} machine(s), {packages} package(s) to upgrade, about {}",
        plan.machines.len(),
        short(std::time::Duration::from_secs(plan.estimate_secs))
    );
    if !plan.wake.is_empty() {
        let _ = writeln!(out, "Wakes, then puts back to sleep: {}", plan.wake.join(", "));
    }
    for m in &plan.machines {
        let host = m.host.as_deref().map(|h| format!(", on {h}")).unwrap_or_default();
        let known = if m.known_at.is_some() { "" } else { ", never refreshed: refreshed first" };
        let _ = writeln!(out, "  {} ({}{host}{known}): reboot {}", m.name, m.power_before, m.reboot);
        for p in &m.packages {
            let security = if p.security { " [security]" } else { "" };
            let _ = writeln!(out, "    {} {} → {}{security}", p.name, p.installed, p.candidate);
        }
        if !m.held.is_empty() {
            let _ = writeln!(out, "    held, left as they are: {}", m.held.join(", "));
        }
        for r in &m.reboot_reasons {
            let _ = writeln!(out, "    reboot: {r}");
        }
        let _ = writeln!(out, "    estimate: {}", m.estimate_basis);
    }
    for s in &plan.skipped {
        let _ = writeln!(out, "  {}: {}", s.name, s.reason);
    }
    out
}
