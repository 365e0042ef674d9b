//! The store's own JSON (the API has its own types): event payloads in the journal, encoded
//! when an event is appended and decoded when it is read back, and connector settings.

use serde_json::{Value, json};

use crate::events::{CascadeStatus, CurrentNode, EventKind, PlannedStep, StepStatus};
use crate::model::{Action, CascadeId, ConfigValue, ErrorCode, NodeId, PowerState, ProposalId, SecretRef};

pub(super) fn encode(kind: &EventKind) -> Value {
    match kind {
        EventKind::StatusChange { node, name, kind, state } => {
            json!({"node": node.get(), "name": name, "kind": kind, "state": state.as_str()})
        }
        EventKind::CascadeProgress { cascade, node, step, total_steps, current } => json!({
            "cascade": cascade.get(), "node": node.get(), "step": step, "total_steps": total_steps,
            "current": {"node": current.node.get(), "name": current.name, "action": current.action.as_str(),
                        "state": current.state.as_str(), "step_status": current.step_status.as_str()}
        }),
        EventKind::CascadePlanned { cascade, node, action, steps } => json!({
            "cascade": cascade.get(), "node": node.get(), "action": action.as_str(),
            "steps": steps.iter().map(|s| json!({"node": s.node.get(), "name": s.name, "action": s.action.as_str(),
                                                  "after": s.after})).collect::<Vec<_>>()
        }),
        EventKind::CascadeComplete { cascade, node, action } => {
            json!({"cascade": cascade.get(), "node": node.get(), "action": action.as_str()})
        }
        EventKind::CascadeError { cascade, node, action, status, failed_step, code, message } => json!({
            "cascade": cascade.get(), "node": node.get(), "action": action.as_str(), "status": status.as_str(),
            "failed_step": failed_step, "code": code.as_str(), "message": message
        }),
        EventKind::ShutdownProposed { proposal, cascade, node, name, reason } => json!({
            "proposal": proposal.get(), "cascade": cascade.get(), "node": node.get(), "name": name, "reason": reason
        }),
        EventKind::NodeKept { cascade, node, name, reason } => {
            json!({"cascade": cascade.get(), "node": node.get(), "name": name, "reason": reason})
        }
        EventKind::ProposalResolved { proposal, node, confirmed } => {
            json!({"proposal": proposal.get(), "node": node.get(), "confirmed": confirmed})
        }
        EventKind::CapabilityDenied { node, name, plugin, what } => {
            json!({"node": node.get(), "name": name, "plugin": plugin, "what": what})
        }
        EventKind::PowerRefused { node, name, action, actor, code } => json!({
            "node": node.get(), "name": name, "action": action.as_str(), "actor": actor, "code": code.as_str()
        }),
        EventKind::HostDiscovered { node, name, added, disappeared } => {
            json!({"node": node.get(), "name": name, "added": added, "disappeared": disappeared})
        }
        EventKind::MachineRefreshed {
            node,
            name,
            outcome,
            updates,
            security_updates,
            reboot_required,
            code,
            summary,
            actor,
        } => json!({
            "node": node.get(), "name": name, "outcome": outcome, "updates": updates,
            "security_updates": security_updates, "reboot_required": reboot_required,
            "code": code.map(|c| c.as_str()), "summary": summary, "actor": actor
        }),
        EventKind::MachineExecution { node, name, execution, action, status, error_kind, actor } => json!({
            "node": node.get(), "name": name, "execution": execution, "action": action, "status": status,
            "error_kind": error_kind, "actor": actor
        }),
        EventKind::Maintenance { run, window, phase, node, name, status, message } => json!({
            "run": run, "window": window, "phase": phase, "node": node.map(|n| n.get()), "name": name,
            "status": status, "message": message
        }),
        EventKind::StackCommand { node, name, command, kind, version, status, code, actor } => json!({
            "node": node.get(), "name": name, "command": command, "kind": kind, "version": version,
            "status": status, "code": code, "actor": actor
        }),
    }
}

pub(super) fn decode(kind: &str, payload: &str) -> Option<EventKind> {
    let v: Value = serde_json::from_str(payload).ok()?;
    let int = |v: &Value, k: &str| v.get(k).and_then(Value::as_i64);
    let text = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
    let node = || int(&v, "node").map(NodeId::new);
    let cascade = || int(&v, "cascade").map(CascadeId::new);
    Some(match kind {
        "status-change" => EventKind::StatusChange {
            node: node()?,
            name: text(&v, "name")?,
            kind: text(&v, "kind")?,
            state: PowerState::parse(&text(&v, "state")?)?,
        },
        "cascade-progress" => {
            let c = v.get("current")?;
            EventKind::CascadeProgress {
                cascade: cascade()?,
                node: node()?,
                step: int(&v, "step")? as usize,
                total_steps: int(&v, "total_steps")? as usize,
                current: CurrentNode {
                    node: NodeId::new(int(c, "node")?),
                    name: text(c, "name")?,
                    action: Action::parse(&text(c, "action")?)?,
                    state: PowerState::parse(&text(c, "state")?)?,
                    step_status: StepStatus::parse(&text(c, "step_status")?)?,
                },
            }
        }
        "cascade-planned" => EventKind::CascadePlanned {
            cascade: cascade()?,
            node: node()?,
            action: Action::parse(&text(&v, "action")?)?,
            steps: v
                .get("steps")?
                .as_array()?
                .iter()
                .map(|s| {
                    Some(PlannedStep::new(
                        NodeId::new(int(s, "node")?),
                        text(s, "name")?,
                        Action::parse(&text(s, "action")?)?,
                        s.get("after")?
                            .as_array()?
                            .iter()
                            .map(|a| a.as_u64().map(|a| a as usize))
                            .collect::<Option<_>>()?,
                    ))
                })
                .collect::<Option<_>>()?,
        },
        "cascade-complete" => EventKind::CascadeComplete {
            cascade: cascade()?,
            node: node()?,
            action: Action::parse(&text(&v, "action")?)?,
        },
        "cascade-error" => EventKind::CascadeError {
            cascade: cascade()?,
            node: node()?,
            action: Action::parse(&text(&v, "action")?)?,
            status: CascadeStatus::parse(&text(&v, "status")?)?,
            failed_step: int(&v, "failed_step").map(|s| s as usize),
            code: ErrorCode::parse(&text(&v, "code")?).unwrap_or(ErrorCode::Internal),
            message: text(&v, "message")?,
        },
        "shutdown-proposed" => EventKind::ShutdownProposed {
            proposal: ProposalId::new(int(&v, "proposal")?),
            cascade: cascade()?,
            node: node()?,
            name: text(&v, "name")?,
            reason: text(&v, "reason")?,
        },
        "node-kept" => EventKind::NodeKept {
            cascade: cascade()?,
            node: node()?,
            name: text(&v, "name")?,
            reason: text(&v, "reason")?,
        },
        "proposal-resolved" => EventKind::ProposalResolved {
            proposal: ProposalId::new(int(&v, "proposal")?),
            node: node()?,
            confirmed: v.get("confirmed")?.as_bool()?,
        },
        "host-discovered" => {
            let names = |k: &str| -> Option<Vec<String>> {
                v.get(k)?.as_array()?.iter().map(|n| n.as_str().map(str::to_owned)).collect()
            };
            EventKind::HostDiscovered {
                node: node()?,
                name: text(&v, "name")?,
                added: names("added")?,
                disappeared: names("disappeared")?,
            }
        }
        "power-refused" => EventKind::PowerRefused {
            node: node()?,
            name: text(&v, "name")?,
            action: Action::parse(&text(&v, "action")?)?,
            actor: text(&v, "actor")?,
            code: ErrorCode::parse(&text(&v, "code")?).unwrap_or(ErrorCode::Forbidden),
        },
        "capability-denied" => EventKind::CapabilityDenied {
            node: node()?,
            name: text(&v, "name")?,
            plugin: text(&v, "plugin")?,
            what: text(&v, "what")?,
        },
        "machine-refreshed" => EventKind::MachineRefreshed {
            node: node()?,
            name: text(&v, "name")?,
            outcome: text(&v, "outcome")?,
            updates: v.get("updates")?.as_u64().and_then(|n| u32::try_from(n).ok())?,
            security_updates: v.get("security_updates")?.as_u64().and_then(|n| u32::try_from(n).ok())?,
            reboot_required: v.get("reboot_required")?.as_bool()?,
            code: v.get("code").and_then(|c| c.as_str()).and_then(ErrorCode::parse),
            summary: text(&v, "summary")?,
            actor: text(&v, "actor")?,
        },
        "machine-execution" => EventKind::MachineExecution {
            node: node()?,
            name: text(&v, "name")?,
            execution: v.get("execution")?.as_i64()?,
            action: text(&v, "action")?,
            status: text(&v, "status")?,
            error_kind: v.get("error_kind").and_then(|c| c.as_str()).map(str::to_owned),
            actor: text(&v, "actor")?,
        },
        "maintenance" => EventKind::Maintenance {
            run: int(&v, "run")?,
            window: text(&v, "window"),
            phase: text(&v, "phase")?,
            node: node(),
            name: text(&v, "name"),
            status: text(&v, "status")?,
            message: text(&v, "message")?,
        },
        "stack-command" => EventKind::StackCommand {
            node: node()?,
            name: text(&v, "name")?,
            command: int(&v, "command")?,
            kind: text(&v, "kind")?,
            version: int(&v, "version"),
            status: text(&v, "status")?,
            code: text(&v, "code"),
            actor: text(&v, "actor")?,
        },
        _ => return None,
    })
}

/// A connector setting as the store keeps it (a secret as its reference only).
pub(super) fn to_json(v: &ConfigValue) -> Value {
    match v {
        ConfigValue::String(s) => Value::from(s.as_str()),
        ConfigValue::Integer(i) => Value::from(*i),
        ConfigValue::Float(f) => Value::from(*f),
        ConfigValue::Bool(b) => Value::from(*b),
        ConfigValue::Array(a) => Value::Array(a.iter().map(to_json).collect()),
        ConfigValue::Table(t) => Value::Object(t.iter().map(|(k, v)| (k.clone(), to_json(v))).collect()),
        // Inline secrets are sealed before any write; this arm keeps a reference only.
        ConfigValue::Secret(s) => json!({ "$secret": s.to_reference().unwrap_or_default() }),
    }
}

/// A connector setting read back.
pub(super) fn from_json(v: &Value) -> Result<ConfigValue, String> {
    Ok(match v {
        Value::String(s) => ConfigValue::String(s.clone()),
        Value::Bool(b) => ConfigValue::Bool(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => ConfigValue::Integer(i),
            None => ConfigValue::Float(n.as_f64().ok_or("bad number")?),
        },
        Value::Array(a) => ConfigValue::Array(a.iter().map(from_json).collect::<Result<_, _>>()?),
        Value::Object(o) => match o.get("$secret") {
            Some(Value::String(r)) if o.len() == 1 => ConfigValue::Secret(SecretRef::parse(r)?),
            _ => ConfigValue::Table(
                o.iter().map(|(k, v)| Ok((k.clone(), from_json(v)?))).collect::<Result<_, String>>()?,
            ),
        },
        Value::Null => return Err("null in connector settings".into()),
    })
}
