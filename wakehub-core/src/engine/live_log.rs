//! The live logs of long commands (a machine's actions, a stack's commands): the lines said
//! so far and a channel for the next ones, kept while the command runs.
//!
//! A client may follow a command from the moment it is queued, before its queue's driver
//! claims it: following a waiting command opens its log, the driver writes into the log it
//! finds, and whoever ends the command (its driver, a cancel) closes it. A command that ended
//! between the client's read and its follow is seen ended, never followed forever.
//!
//! On an instance that follows another on a shared database, the leader runs the command:
//! its log is read from the command's record, polled ([`POLL`]), until the record says it
//! ended — a stack command's lines as the leader writes them, an action's kept log when it
//! ends (an action's lines are kept only then).

use std::collections::HashMap;

use tokio::sync::broadcast;

use super::{Engine, EngineError, State};
use crate::model::NodeId;
use crate::store::{Store, StoreError};

/// The most lines a slow follower may lag behind before it is told lines were skipped.
const CHANNEL: usize = 1024;

/// How often an instance that does not lead reads a running command's record.
pub(super) const POLL: std::time::Duration = std::time::Duration::from_millis(250);

/// A command's record as a follower reads it: its log kept so far, and its status once it
/// ended (`None` while it waits or runs); `None` when it is gone.
pub(super) type Kept<S> = Option<(String, Option<S>)>;

/// A line of a command's log as it is streamed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Line<S> {
    /// One line of output.
    Line(String),
    /// The command ended, with its status.
    End(S),
}

/// Where a command is, as its record says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// Queued, waiting for its driver.
    Waiting,
    /// Running.
    Running,
    /// Ended (or gone).
    Over,
}

/// One command's log: its lines so far, its followers' channel, the node whose queue runs it.
struct Live<S> {
    lines: Vec<String>,
    tx: broadcast::Sender<Line<S>>,
    owner: NodeId,
}

/// The open logs of one kind of command, by command id.
pub(super) struct Logs<S>(HashMap<i64, Live<S>>);

impl<S> Default for Logs<S> {
    fn default() -> Self {
        Self(HashMap::new())
    }
}

/// What following a log gives: the lines said so far and the next ones.
pub type Following<S> = (Vec<String>, broadcast::Receiver<Line<S>>);

impl<S: Clone> Logs<S> {
    /// Opens the log of command `id`, which `owner`'s driver is about to run (a follower
    /// may have opened it already).
    pub(super) fn open(&mut self, id: i64, owner: NodeId) {
        self.0.entry(id).or_insert_with(|| Live { lines: Vec::new(), tx: broadcast::channel(CHANNEL).0, owner });
    }

    /// Says `line` in the log of command `id`, if it is open.
    pub(super) fn say(&mut self, id: i64, line: String) {
        if let Some(live) = self.0.get_mut(&id) {
            live.lines.push(line.clone());
            let _ = live.tx.send(Line::Line(line));
        }
    }

    /// Closes the log of command `id`, telling its followers how it ended.
    pub(super) fn end(&mut self, id: i64, status: S) {
        if let Some(live) = self.0.remove(&id) {
            let _ = live.tx.send(Line::End(status));
        }
    }

    /// The log of command `id` so far, whole.
    pub(super) fn text(&self, id: i64) -> String {
        self.0.get(&id).map(|l| l.lines.join("\n")).unwrap_or_default()
    }

    /// The commands of `owner`'s queue whose logs are open.
    fn of(&self, owner: NodeId) -> Vec<i64> {
        self.0.iter().filter(|(_, live)| live.owner == owner).map(|(id, _)| *id).collect()
    }

    fn follow(&mut self, id: i64, owner: NodeId, phase: Phase) -> Option<Following<S>> {
        if let Some(live) = self.0.get(&id) {
            return Some((live.lines.clone(), live.tx.subscribe()));
        }
        if phase != Phase::Waiting {
            return None;
        }
        let (tx, rx) = broadcast::channel(CHANNEL);
        self.0.insert(id, Live { lines: Vec::new(), tx, owner });
        Some((Vec::new(), rx))
    }
}

impl Engine {
    /// Follows the log of command `id`, run by `owner`'s queue: what it said so far and its
    /// next lines while it is waiting or running; `None` once it is over (its kept log is
    /// then whole in its record, read after this returns).
    pub(super) async fn follow_log<S: Clone + Send + 'static>(
        &self,
        id: i64,
        owner: NodeId,
        logs: fn(&mut State) -> &mut Logs<S>,
        phase: fn(&Store, i64) -> Result<Phase, StoreError>,
        kept: fn(&Store, i64) -> Result<Kept<S>, StoreError>,
    ) -> Result<Option<Following<S>>, EngineError> {
        if !self.is_leader() {
            return self.poll_log(id, kept).await;
        }
        let now = self.inner.store.run(move |s| phase(s, id)).await?;
        let Some(following) = logs(&mut self.state()).follow(id, owner, now) else {
            return Ok(None);
        };
        if now == Phase::Waiting && self.inner.store.run(move |s| phase(s, id)).await? == Phase::Over {
            // It ended between the two reads (cancelled, or claimed, run and ended): whoever
            // ended it found no log of ours to close.
            logs(&mut self.state()).0.remove(&id);
            return Ok(None);
        }
        Ok(Some(following))
    }

    /// [`follow_log`](Self::follow_log) on an instance that does not lead: what the record
    /// kept so far, then its next lines and its end, read every [`POLL`] by a task that
    /// stops when the command ends, is gone, or nobody follows any more.
    async fn poll_log<S: Clone + Send + 'static>(
        &self,
        id: i64,
        kept: fn(&Store, i64) -> Result<Kept<S>, StoreError>,
    ) -> Result<Option<Following<S>>, EngineError> {
        let Some((log, None)) = self.inner.store.run(move |s| kept(s, id)).await? else {
            return Ok(None);
        };
        let so_far: Vec<String> = log.lines().map(str::to_owned).collect();
        let (tx, rx) = broadcast::channel(CHANNEL);
        let store = self.inner.store.clone();
        let mut said = so_far.len();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(POLL).await;
                if tx.receiver_count() == 0 {
                    return;
                }
                let (log, end) = match store.run(move |s| kept(s, id)).await {
                    Ok(Some(now)) => now,
                    // Gone (its node was removed): the followers' stream ends.
                    Ok(None) => return,
                    Err(e) => {
                        tracing::warn!(command = id, "cannot read a command's log: {e}");
                        continue;
                    }
                };
                // Paced by the reader: an action's log comes whole at its end, often more
                // lines than the channel holds, and a lagging reader would be told lines
                // were skipped.
                for line in log.lines().skip(said) {
                    while tx.len() >= CHANNEL / 2 {
                        if tx.receiver_count() == 0 {
                            return;
                        }
                        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                    }
                    let _ = tx.send(Line::Line(line.to_owned()));
                    said += 1;
                }
                if let Some(status) = end {
                    let _ = tx.send(Line::End(status));
                    return;
                }
            }
        });
        Ok(Some((so_far, rx)))
    }

    /// Closes the logs followers opened on `owner`'s queue for commands that ended without
    /// being run (cancelled with their maintenance run, removed with their node). Its driver
    /// calls this when the queue has nothing more to run.
    pub(super) async fn close_stale_logs<S: Clone + Send + 'static>(
        &self,
        owner: NodeId,
        logs: fn(&mut State) -> &mut Logs<S>,
        phase: fn(&Store, i64) -> Result<Phase, StoreError>,
    ) {
        let open = logs(&mut self.state()).of(owner);
        for id in open {
            if matches!(self.inner.store.run(move |s| phase(s, id)).await, Ok(Phase::Over)) {
                logs(&mut self.state()).0.remove(&id);
            }
        }
    }
}
