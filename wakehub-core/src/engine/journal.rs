//! The journal writer: one thread commits the engine's journal writes in groups, then
//! publishes their events.
//!
//! Every write the engine makes goes through [`Writer::submit`], in the order it was
//! submitted. The thread takes whatever is queued (up to [`MAX_GROUP`] writes), runs each in
//! a savepoint of one transaction and commits once: one sync to disk for the whole group.
//! Only then are the group's events sent on the bus, in id order, so an event is always
//! written before it is published. A write that may fail runs in a savepoint: if it fails it
//! is rolled back alone and reported to its submitter. The hot writes (a step's transitions,
//! observed states) fail only when the database does and skip the savepoint: if one fails,
//! or the commit does, every write of the group is reported failed and nothing is written.
//!
//! A submitter that does not need the result (a step's transitions, observed states) does not
//! wait: the writes of one cascade are committed in the order they were made, and the
//! cascade's final write (which its end waits for) comes after all of them.

use std::panic::AssertUnwindSafe;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use tokio::sync::broadcast;

use super::{Engine, EngineError};
use crate::events::{Event, EventKind};
use crate::model::CascadeId;
use crate::store::{JournalTx, Store, StoreError};

/// The most writes committed in one transaction.
const MAX_GROUP: usize = 512;

/// What runs after a write committed, before its events are published.
pub(super) type AfterCommit = Box<dyn FnOnce() + Send>;

/// A queued write, its result type erased.
trait Pending: Send {
    /// Whether the write may fail (a refusal after it wrote): it then runs in a savepoint.
    fn guarded(&self) -> bool;
    fn write(&mut self, tx: &mut JournalTx<'_>) -> Result<(), StoreError>;
    /// Called once the group is settled: `Ok` with the write's events when it committed.
    fn settle(self: Box<Self>, outcome: Result<Vec<Event>, EngineError>, bus: &broadcast::Sender<Event>);
}

/// The sending side of the writer thread. The thread ends once every `Writer` is dropped and
/// the queue is drained.
pub(super) struct Writer {
    queue: mpsc::Sender<Box<dyn Pending>>,
}

impl Writer {
    /// Starts the writer thread over `store`, publishing on `bus` while holding `publish`
    /// (the lock every journal write and publication of the engine takes, so the bus carries
    /// ids in order).
    pub(super) fn start(store: Store, bus: broadcast::Sender<Event>, publish: Arc<Mutex<()>>) -> std::io::Result<Self> {
        let (queue, rx) = mpsc::channel::<Box<dyn Pending>>();
        std::thread::Builder::new().name("wakehub-journal".into()).spawn(move || {
            while let Ok(first) = rx.recv() {
                let mut group = vec![first];
                while group.len() < MAX_GROUP {
                    match rx.try_recv() {
                        Ok(p) => group.push(p),
                        Err(_) => break,
                    }
                }
                // A write that panics loses its group (rolled back, its submitters see the
                // writer's error), never the writer.
                let commit = std::panic::catch_unwind(AssertUnwindSafe(|| commit_group(&store, &bus, &publish, group)));
                if commit.is_err() {
                    tracing::error!("a journal write panicked; its group was rolled back");
                }
            }
        })?;
        Ok(Writer { queue })
    }

    /// Queues `write`. Once it is settled: when it committed, `after_commit` runs, its
    /// events are published, then `reply` gets its result; when it failed, `reply` gets the
    /// error. A write lost with a panicking group never calls `reply` (it is dropped).
    ///
    /// A write that is not `guarded` must fail only when the database does (it saves the
    /// savepoint's cost; its failure fails its whole group).
    pub(super) fn submit<R, F>(&self, write: F, guarded: bool, after_commit: Option<AfterCommit>, reply: Reply<R>)
    where
        R: Send + 'static,
        F: FnOnce(&mut JournalTx<'_>) -> Result<R, StoreError> + Send + 'static,
    {
        let request = Request { write: Some(write), guarded, result: None, after_commit, reply };
        // The thread only ends when the queue's senders are gone, so this cannot fail while
        // the engine lives; if it did, the request (and its reply) would be dropped.
        let _ = self.queue.send(Box::new(request));
    }
}

/// Where a write's result goes.
pub(super) type Reply<R> = Box<dyn FnOnce(Result<R, EngineError>) + Send>;

/// The error a submitter sees when its write was lost with the writer's group.
pub(super) fn lost() -> EngineError {
    EngineError::Store(StoreError::Database { message: "the journal write was lost (see WakeHub's log)".into() })
}

fn commit_group(store: &Store, bus: &broadcast::Sender<Event>, publish: &Mutex<()>, mut group: Vec<Box<dyn Pending>>) {
    let _order = publish.lock().unwrap_or_else(|e| e.into_inner());
    match store.journal_each(&mut group, |p| p.guarded(), |p, tx| p.write(tx)) {
        Ok(outcomes) => {
            for (p, outcome) in group.into_iter().zip(outcomes) {
                p.settle(outcome.map_err(EngineError::from), bus);
            }
        }
        Err(e) => {
            tracing::error!("a group of journal writes could not be committed: {e}");
            for p in group {
                p.settle(Err(StoreError::Database { message: e.to_string() }.into()), bus);
            }
        }
    }
}

struct Request<R, F> {
    write: Option<F>,
    guarded: bool,
    result: Option<R>,
    after_commit: Option<AfterCommit>,
    reply: Reply<R>,
}

impl<R, F> Pending for Request<R, F>
where
    R: Send + 'static,
    F: FnOnce(&mut JournalTx<'_>) -> Result<R, StoreError> + Send + 'static,
{
    fn guarded(&self) -> bool {
        self.guarded
    }

    fn write(&mut self, tx: &mut JournalTx<'_>) -> Result<(), StoreError> {
        if let Some(write) = self.write.take() {
            self.result = Some(write(tx)?);
        }
        Ok(())
    }

    fn settle(self: Box<Self>, outcome: Result<Vec<Event>, EngineError>, bus: &broadcast::Sender<Event>) {
        let Request { result, after_commit, reply, .. } = *self;
        match outcome.and_then(|events| result.map(|r| (r, events)).ok_or_else(lost)) {
            Ok((r, events)) => {
                if let Some(after) = after_commit {
                    after();
                }
                for e in events {
                    // No subscriber is not an error: the journal has it.
                    let _ = bus.send(e);
                }
                reply(Ok(r));
            }
            Err(e) => reply(Err(e)),
        }
    }
}

/// How the engine writes: through the writer, waiting or not.
impl Engine {
    /// Writes in one transaction and publishes the resulting events, in id order (through
    /// the journal writer: committed with the writes queued beside it).
    pub(super) async fn record<R, F>(&self, f: F) -> Result<R, EngineError>
    where
        R: Send + 'static,
        F: FnOnce(&mut JournalTx<'_>) -> Result<R, StoreError> + Send + 'static,
    {
        self.record_then(f, None).await
    }

    pub(super) async fn record_then<R, F>(&self, f: F, after_commit: Option<AfterCommit>) -> Result<R, EngineError>
    where
        R: Send + 'static,
        F: FnOnce(&mut JournalTx<'_>) -> Result<R, StoreError> + Send + 'static,
    {
        if !self.is_leader() {
            return Err(EngineError::NotLeader);
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.inner.journal.submit(
            f,
            true,
            after_commit,
            Box::new(move |r| {
                let _ = tx.send(r);
            }),
        );
        rx.await.unwrap_or_else(|_| Err(lost()))
    }

    /// Queues a write without waiting for it: it is committed after every write queued
    /// before it, and its events published then. `failed` gets its error, if any. A write
    /// that is not `guarded` must fail only when the database does (see the module docs).
    pub(super) fn record_detached<F>(&self, guarded: bool, f: F, failed: impl FnOnce(EngineError) + Send + 'static)
    where
        F: FnOnce(&mut JournalTx<'_>) -> Result<(), StoreError> + Send + 'static,
    {
        if !self.is_leader() {
            return failed(EngineError::NotLeader);
        }
        self.inner.journal.submit(
            f,
            guarded,
            None,
            Box::new(move |r| {
                if let Err(e) = r {
                    failed(e);
                }
            }),
        );
    }

    /// Journals `events` alone (no other write).
    pub(super) async fn emit(&self, events: Vec<EventKind>) -> Result<(), EngineError> {
        self.record(move |tx| {
            events.into_iter().for_each(|e| tx.emit(e));
            Ok(())
        })
        .await
    }

    /// Journals `events` alone, without waiting (a failure is logged as `what`).
    pub(super) fn emit_detached(&self, events: Vec<EventKind>, what: &'static str) {
        self.record_detached(
            false,
            move |tx| {
                events.into_iter().for_each(|e| tx.emit(e));
                Ok(())
            },
            move |e| tracing::error!("cannot journal {what}: {e}"),
        );
    }

    /// Writes directly, bypassing the writer (only before anything is queued: at start-up).
    pub(super) fn record_blocking<R>(
        &self,
        f: impl FnOnce(&mut JournalTx<'_>) -> Result<R, StoreError>,
    ) -> Result<R, EngineError> {
        if !self.is_leader() {
            return Err(EngineError::NotLeader);
        }
        let _order = self.inner.publish.lock().unwrap_or_else(|e| e.into_inner());
        let (r, events) = self.inner.store.journal(f)?;
        for e in events {
            let _ = self.inner.bus.send(e);
        }
        Ok(r)
    }

    /// Writes the final record of cascade `id`, unregisters it, *then* publishes: a client
    /// that sees the cascade end can immediately request another one on the same node.
    pub(super) async fn record_end<F>(&self, id: CascadeId, f: F) -> Result<(), EngineError>
    where
        F: FnOnce(&mut JournalTx<'_>) -> Result<(), StoreError> + Send + 'static,
    {
        let engine = self.clone();
        self.record_then(f, Some(Box::new(move || engine.unregister(id)))).await
    }

    /// Forgets a cascade that ended and wakes its waiters.
    pub(super) fn unregister(&self, id: CascadeId) {
        let removed = self.state().running.remove(&id).is_some();
        if removed {
            self.inner.finished.send_modify(|n| *n += 1);
        }
    }
}
