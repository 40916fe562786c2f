//! A watcher: the backlog of history events after its start revision, then the live broadcast.

use std::collections::VecDeque;
use std::sync::Arc;

use tokio::sync::broadcast;

use super::cache::Event;

#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// The requested revision is older than the history window.
    #[error("too old resource version: {requested} ({oldest})")]
    Gone { requested: u64, oldest: u64 },
    /// The watcher fell too far behind the live stream; it must resume from its last revision.
    #[error("watcher fell behind the event stream")]
    Lagged,
    #[error("the store is shutting down")]
    Closed,
}

pub struct Watcher {
    prefix: String,
    backlog: VecDeque<Arc<Event>>,
    rx: broadcast::Receiver<Arc<Event>>,
    /// Live events at or below this revision were already delivered from the backlog.
    delivered: u64,
}

impl Watcher {
    pub(super) fn new(
        prefix: String,
        backlog: VecDeque<Arc<Event>>,
        rx: broadcast::Receiver<Arc<Event>>,
        start: u64,
    ) -> Self {
        let delivered = backlog.back().map(|e| e.rev).unwrap_or(start).max(start);
        Watcher { prefix, backlog, rx, delivered }
    }

    /// The next event under the watched prefix, in revision order, each exactly once.
    pub async fn next(&mut self) -> Result<Arc<Event>, WatchError> {
        if let Some(e) = self.backlog.pop_front() {
            return Ok(e);
        }
        loop {
            match self.rx.recv().await {
                Ok(e) => {
                    if e.rev <= self.delivered || !e.obj.key.starts_with(&self.prefix) {
                        continue;
                    }
                    self.delivered = e.rev;
                    return Ok(e);
                }
                Err(broadcast::error::RecvError::Lagged(_)) => return Err(WatchError::Lagged),
                Err(broadcast::error::RecvError::Closed) => return Err(WatchError::Closed),
            }
        }
    }
}

impl Watcher {
    /// True when every event committed so far has been delivered (nothing is queued), so a
    /// bookmark at the store's current revision cannot skip an event.
    pub fn is_caught_up(&self) -> bool {
        self.backlog.is_empty() && self.rx.is_empty()
    }
}
