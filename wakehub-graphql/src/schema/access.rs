//! Who is calling, and what they may do: the [`Caller`] (a token's name, its [`Role`] and
//! [`Scope`]) that the transport puts in each request's data, the role guard every
//! mutation carries, and the power check that also journals refusals.
//!
//! The schema trusts what it is given: [`crate::server`] authenticates and inserts the
//! caller; an application embedding the schema without a caller gets full access (its own
//! authentication is then in charge).

use async_graphql::{Context, Guard};
use wakehub_core::engine::Engine;
use wakehub_core::model::{Action, ErrorCode, NodeId, Role, Scope};

use super::error::api_error;

/// The authenticated caller of one request or WebSocket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The token's (or user's) name, journaled with what it does.
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// Which nodes it may see and act on.
    pub scope: Scope,
}

impl Caller {
    /// The caller of a schema embedded without authentication: everything is allowed.
    pub fn embedder() -> Caller {
        Caller { name: "embedder".into(), role: Role::Admin, scope: Scope::All }
    }
}

/// The caller of this request.
pub(crate) fn caller(ctx: &Context<'_>) -> Caller {
    ctx.data_opt::<Caller>().cloned().unwrap_or_else(Caller::embedder)
}

fn forbidden(caller: &Caller, needed: Role) -> async_graphql::Error {
    api_error(
        ErrorCode::Forbidden,
        format!("`{}` is a {} and this needs the {} role", caller.name, caller.role, needed),
    )
}

/// Refuses callers below a role (`FORBIDDEN`).
pub(crate) struct RoleGuard(pub Role);

impl Guard for RoleGuard {
    async fn check(&self, ctx: &Context<'_>) -> async_graphql::Result<()> {
        let caller = caller(ctx);
        if caller.role.allows(self.0) { Ok(()) } else { Err(forbidden(&caller, self.0)) }
    }
}

/// Checks that the caller may power `node` (operator role, node in scope); a refusal is
/// journaled (`power-refused`, with the caller's name) and answered `FORBIDDEN`.
pub(crate) async fn authorize_power(ctx: &Context<'_>, node: NodeId, action: Action) -> async_graphql::Result<Caller> {
    let caller = caller(ctx);
    let engine = ctx.data::<Engine>()?;
    let topology = engine.store().run(|s| s.topology_shared()).await.map_err(|e| api_error(e.code(), e.to_string()))?;
    let in_scope = topology.node(node).is_some_and(|n| caller.scope.allows(n));
    let refusal = if !caller.role.allows(Role::Operator) {
        Some(forbidden(&caller, Role::Operator))
    } else if !in_scope {
        Some(api_error(
            ErrorCode::Forbidden,
            format!("`{}` may not act on `{}` (its scope is {})", caller.name, topology.name_of(node), caller.scope),
        ))
    } else {
        None
    };
    match refusal {
        None => Ok(caller),
        Some(error) => {
            if let Err(e) = engine.journal_refusal(node, action, &caller.name, ErrorCode::Forbidden).await {
                tracing::error!("cannot journal a refused power action: {e}");
            }
            Err(error)
        }
    }
}
