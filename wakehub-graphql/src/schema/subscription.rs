//! Subscriptions: journal events, replayed from a given event id, then live. A client that
//! reconnects with the last id it saw misses nothing.

use async_graphql::{Context, ID, Subscription};
use futures::{Stream, StreamExt};
use wakehub_core::engine::{Engine, Line};
use wakehub_core::events::EventKind;
use wakehub_core::model::ErrorCode;
use wakehub_core::model::{CascadeId, EventId};

use super::error::{ApiResultExt, api_error};
use super::events::GqlEvent;
use super::shared::{View, parse_id};
use crate::metrics::Metrics;

/// The subscription root.
pub struct Subscription;

fn event_id(id: &ID) -> async_graphql::Result<EventId> {
    parse_id(id, "event")
        .map(EventId::new)
        .ok_or_else(|| api_error(ErrorCode::Validation, format!("bad event id `{}`", id.0)))
}

/// A command's log followed: the lines said so far, then each one as it comes, until the
/// command ends.
fn follow<S: Clone + Send + 'static>(
    so_far: Vec<String>,
    rx: tokio::sync::broadcast::Receiver<Line<S>>,
    gauge: Gauge,
) -> impl Stream<Item = String> {
    use tokio::sync::broadcast::error::RecvError;
    let live = futures::stream::unfold((Some(rx), gauge), |(rx, gauge)| async move {
        let mut rx = rx?;
        match rx.recv().await {
            Ok(Line::Line(l)) => Some((l, (Some(rx), gauge))),
            Ok(_) | Err(RecvError::Closed) => None,
            Err(RecvError::Lagged(n)) => {
                Some((format!("@@ {n} lines skipped (the client read too slowly)"), (Some(rx), gauge)))
            }
        }
    });
    futures::stream::iter(so_far).chain(live)
}

/// Counts the subscription while its stream lives.
struct Gauge(Option<std::sync::Arc<Metrics>>);

impl Gauge {
    fn new(ctx: &Context<'_>) -> Gauge {
        let m = ctx.data_opt::<std::sync::Arc<Metrics>>().cloned();
        if let Some(m) = &m {
            m.subscribers.inc();
        }
        Gauge(m)
    }
}

impl Drop for Gauge {
    fn drop(&mut self) {
        if let Some(m) = &self.0 {
            m.subscribers.dec();
        }
    }
}

/// The engine's event stream from `after` (or from now), as GraphQL items. A store failure
/// ends the stream with an error item.
async fn stream(
    engine: &Engine,
    after: Option<EventId>,
) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<wakehub_core::events::Event>> + use<>> {
    let from = match after {
        Some(a) => Some(a),
        None => engine.store().run(|s| s.last_event_id()).await.api()?,
    };
    Ok(engine.subscribe(from).map(|r| r.api()))
}

#[Subscription]
impl Subscription {
    /// Every journal event: first those after `after` (an event id), then live ones. Without
    /// `after`, only what happens from now on.
    async fn events(
        &self,
        ctx: &Context<'_>,
        after: Option<ID>,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<GqlEvent>> + use<>> {
        let engine = ctx.data::<Engine>()?;
        let after = after.as_ref().map(event_id).transpose()?;
        let view = View::load(ctx).await?;
        let gauge = Gauge::new(ctx);
        let s = stream(engine, after).await?;
        Ok(s.filter(move |e| futures::future::ready(e.as_ref().map_or(true, |e| view.sees(e)))).map(move |e| {
            let _keep = &gauge;
            e.map(GqlEvent)
        }))
    }

    /// The log of one action on a machine, line by line: what it printed so far, then each
    /// line as it comes, until it ends (an action already ended gives its kept log whole).
    async fn execution_log(
        &self,
        ctx: &Context<'_>,
        execution: ID,
    ) -> async_graphql::Result<impl Stream<Item = String> + use<>> {
        let engine = ctx.data::<Engine>()?.clone();
        let e = super::machines::visible_execution(ctx, &execution).await?;
        let gauge = Gauge::new(ctx);
        if let Some((so_far, rx)) = engine.execution_log(&e).await.api()? {
            return Ok(follow(so_far, rx, gauge).left_stream());
        }
        // Over: its kept log, read now that it is whole.
        let id = e.id;
        let artifact = engine.store().run(move |s| s.execution(id)).await.api()?.and_then(|e| e.artifact);
        let kept = match artifact {
            Some(a) => engine
                .store()
                .run(move |s| s.artifact(a))
                .await
                .api()?
                .and_then(|(_, content)| content)
                .map(|c| String::from_utf8_lossy(&c).lines().map(str::to_owned).collect())
                .unwrap_or_default(),
            None => Vec::new(),
        };
        Ok(futures::stream::iter(kept).right_stream())
    }

    /// The log of one stack command, line by line: what it said so far, then each line as
    /// it comes, until it ends (a command already ended gives its log whole).
    async fn stack_command_log(
        &self,
        ctx: &Context<'_>,
        command: ID,
    ) -> async_graphql::Result<impl Stream<Item = String> + use<>> {
        let engine = ctx.data::<Engine>()?.clone();
        let c = super::stacks::visible_stack_command(ctx, &command).await?;
        let gauge = Gauge::new(ctx);
        if let Some((so_far, rx)) = engine.stack_log(&c).await.api()? {
            return Ok(follow(so_far, rx, gauge).left_stream());
        }
        // Over: its log, read now that it is whole.
        let id = c.id;
        let log = engine.store().run(move |s| s.stack_command(id)).await.api()?.map(|c| c.log).unwrap_or_default();
        Ok(futures::stream::iter(log.lines().map(str::to_owned).collect::<Vec<_>>()).right_stream())
    }

    /// What happens to a stack's containers, as its Docker Engine reports it, from now on
    /// (`start`, `die`, `stop`, `destroy`, `healthy`, `unhealthy`…). Ends when the engine's
    /// stream does (its machine went to sleep); an engine that cannot be reached is an error.
    async fn stack_container_events(
        &self,
        ctx: &Context<'_>,
        stack: ID,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<super::stacks::StackContainerEvent>> + use<>>
    {
        let engine = ctx.data::<Engine>()?.clone();
        let node = View::load(ctx).await?.require(&stack)?;
        let gauge = Gauge::new(ctx);
        let events = engine.stack_events(node).await.api()?;
        Ok(events.map(move |e| {
            let _keep = &gauge;
            e.map(super::stacks::StackContainerEvent::from).map_err(|e| api_error(e.code, e.message))
        }))
    }

    /// The events of one cascade, from its first one (replayed) until it ends.
    async fn cascade_progress(
        &self,
        ctx: &Context<'_>,
        cascade: ID,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<GqlEvent>> + use<>> {
        let engine = ctx.data::<Engine>()?;
        let id = parse_id(&cascade, "cascade")
            .map(CascadeId::new)
            .ok_or_else(|| api_error(ErrorCode::NotFound, format!("cascade `{}` not found", cascade.0)))?;
        let view = View::load(ctx).await?;
        if !engine.cascade(id).await.api()?.is_some_and(|c| view.visible(c.node)) {
            return Err(api_error(ErrorCode::NotFound, format!("cascade `{}` not found", cascade.0)));
        }
        let first = engine.store().run(move |s| s.first_event_of_cascade(id)).await.api()?;
        let from = match first {
            Some(f) => Some(EventId::new(f.get() - 1)),
            None => engine.store().run(|s| s.last_event_id()).await.api()?,
        };
        let gauge = Gauge::new(ctx);
        let events = engine.subscribe(from).map(|r| r.api()).filter(move |e| {
            futures::future::ready(e.as_ref().map_or(true, |e| e.kind.cascade() == Some(id) && view.sees(e)))
        });
        // Ends right after the cascade's last event (not at the next unrelated one).
        let s = futures::stream::unfold((events.boxed(), false, gauge), |(mut events, ended, gauge)| async move {
            if ended {
                return None;
            }
            let e = events.next().await?;
            let last = match &e {
                Ok(e) => matches!(e.kind, EventKind::CascadeComplete { .. } | EventKind::CascadeError { .. }),
                Err(_) => true,
            };
            Some((e.map(GqlEvent), (events, last, gauge)))
        });
        Ok(s)
    }

    /// Status changes of one node (id or name), from `after` (replayed) or from now.
    async fn node_status(
        &self,
        ctx: &Context<'_>,
        node: ID,
        after: Option<ID>,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<GqlEvent>> + use<>> {
        let engine = ctx.data::<Engine>()?;
        let id = View::load(ctx).await?.require(&node)?;
        let after = after.as_ref().map(event_id).transpose()?;
        let gauge = Gauge::new(ctx);
        let s = stream(engine, after).await?;
        Ok(s.filter(move |e| {
            let _keep = &gauge;
            let keep = match e {
                Ok(e) => matches!(&e.kind, EventKind::StatusChange { node, .. } if *node == id),
                Err(_) => true,
            };
            futures::future::ready(keep)
        })
        .map(|e| e.map(GqlEvent)))
    }
}
