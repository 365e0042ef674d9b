//! Dependency links between nodes: `addDependency` and `removeDependency` (a link that would
//! close a cycle is refused with `CYCLE`).

use async_graphql::{Context, ID, Object};
use wakehub_core::engine::Engine;
use wakehub_core::model::Role;

use super::access::RoleGuard;
use super::error::ApiResultExt;
use super::nodes::{GqlNode, node_after};
use super::shared::View;

/// Part of [`Mutation`](super::Mutation): `addDependency`, `removeDependency`.
#[derive(Default)]
pub struct LinksMutation;

#[Object]
impl LinksMutation {
    /// Makes `from` depend on `to` (refused with `CYCLE` if it would close a cycle).
    #[graphql(guard = "RoleGuard(Role::Admin)")]
    async fn add_dependency(&self, ctx: &Context<'_>, from: ID, to: ID) -> async_graphql::Result<GqlNode> {
        let engine = ctx.data::<Engine>()?;
        let view = View::load(ctx).await?;
        let (f, t) = (view.require(&from)?, view.require(&to)?);
        engine.store().run(move |s| s.add_dependency(f, t)).await.api()?;
        node_after(ctx, f).await
    }

    /// Removes "`from` depends on `to`".
    #[graphql(guard = "RoleGuard(Role::Admin)")]
    async fn remove_dependency(&self, ctx: &Context<'_>, from: ID, to: ID) -> async_graphql::Result<GqlNode> {
        let engine = ctx.data::<Engine>()?;
        let view = View::load(ctx).await?;
        let (f, t) = (view.require(&from)?, view.require(&to)?);
        engine.store().run(move |s| s.remove_dependency(f, t)).await.api()?;
        node_after(ctx, f).await
    }
}
