//! Subscriptions: the journal replayed from any event id, then live, ending after shutdown.

use futures::StreamExt;
use futures::stream::BoxStream;
use tokio::sync::broadcast;

use crate::events::{Event, EventKind};
use crate::model::{Action, ErrorCode, EventId, NodeId};

use super::{Engine, EngineError};

impl Engine {
    /// Journals that `actor` was refused `action` on `node` (a `power-refused` event).
    pub async fn journal_refusal(
        &self,
        node: NodeId,
        action: Action,
        actor: &str,
        code: ErrorCode,
    ) -> Result<(), EngineError> {
        let topology = self.inner.store.run(|s| s.topology_shared()).await?;
        let name = topology.name_of(node);
        self.emit(vec![EventKind::PowerRefused { node, name, action, actor: actor.to_owned(), code }]).await
    }

    /// Every event after `after` (from the journal), then live events, with no gap and no
    /// duplicate — also when the subscriber falls behind the live bus. The stream ends once
    /// [`shutdown`](Self::shutdown) is over, after the last events it journaled.
    pub fn subscribe(&self, after: Option<EventId>) -> BoxStream<'static, Result<Event, EngineError>> {
        let rx = self.inner.bus.subscribe();
        let store = self.inner.store.clone();
        let closed = self.inner.closed.clone();
        enum Phase {
            Replay,
            Live,
            /// The engine shut down: what the journal still holds, then the end.
            Last,
        }
        let init = (rx, after, Phase::Replay, std::collections::VecDeque::<Event>::new());
        futures::stream::unfold(Some(init), move |state| {
            let store = store.clone();
            let closed = closed.clone();
            async move {
                let (mut rx, mut last, mut phase, mut buffer) = state?;
                loop {
                    if let Some(e) = buffer.pop_front() {
                        last = Some(e.id);
                        return Some((Ok(e), Some((rx, last, phase, buffer))));
                    }
                    match phase {
                        Phase::Replay => {
                            // Resuming after an event the retention pruned would miss some.
                            if let Err(e) = store.run(move |s| s.check_replay(last)).await {
                                return Some((Err(EngineError::Store(e)), None));
                            }
                            const PAGE: usize = 512;
                            let page = store.run(move |s| s.events_after(last, None, PAGE)).await;
                            match page {
                                Ok(events) => {
                                    if events.len() < PAGE {
                                        phase = Phase::Live;
                                    }
                                    buffer.extend(events);
                                }
                                Err(e) => return Some((Err(EngineError::Store(e)), None)),
                            }
                        }
                        Phase::Live => {
                            let received = tokio::select! {
                                r = rx.recv() => r,
                                () = closed.cancelled() => {
                                    phase = Phase::Last;
                                    continue;
                                }
                            };
                            match received {
                                Ok(e) if last.is_none_or(|l| e.id > l) => buffer.push_back(e),
                                Ok(_) => {}
                                Err(broadcast::error::RecvError::Lagged(_)) => phase = Phase::Replay,
                                Err(broadcast::error::RecvError::Closed) => return None,
                            }
                        }
                        Phase::Last => {
                            let page = store.run(move |s| s.events_after(last, None, 512)).await;
                            match page {
                                Ok(events) if events.is_empty() => return None,
                                Ok(events) => buffer.extend(events),
                                Err(e) => return Some((Err(EngineError::Store(e)), None)),
                            }
                        }
                    }
                }
            }
        })
        .boxed()
    }
}
