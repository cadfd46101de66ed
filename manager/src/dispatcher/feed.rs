//! Keeps the dispatcher's index (`index.rs`) current on the leader and wakes only the
//! sessions a change concerns. One index and one feed per manager, shared by every session.
//!
//! The first session that reads the index loads it and starts the feed; the feed stops and
//! drops the index when this manager stops leading (its sessions end then too), so
//! followers hold nothing. A burst of commits is applied as one step and each concerned
//! session is woken once: a session's wake-up is a `Notify`, which keeps at most one permit.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::broadcast::{self, error::TryRecvError};
use tokio::sync::Notify;
use tracing::{debug, Instrument};

use super::index::{Affected, View};
use crate::core::Core;
use crate::error::StoreError;
use crate::store::StoreEvent;

type Events = broadcast::Receiver<Arc<StoreEvent>>;

#[derive(Clone, Default)]
pub struct Feed {
    inner: Arc<Mutex<Shared>>,
}

#[derive(Default)]
struct Shared {
    /// Present while a feed runs.
    view: Option<View>,
    /// Which feed owns `view`: a feed that ended must not clear a newer feed's view.
    generation: u64,
    /// Node id → (session id, wake-up) of its current session.
    watchers: HashMap<String, (String, Arc<Notify>)>,
}

impl Feed {
    fn lock(&self) -> MutexGuard<'_, Shared> {
        // Every change to `Shared` is a single assignment or map operation: nothing is left
        // half-done by a panic.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Registers a session's wake-up. An older session of the node is woken to see that
    /// it was replaced.
    pub fn watch(&self, node_id: &str, session_id: &str) -> Arc<Notify> {
        let wake = Arc::new(Notify::new());
        let entry = (session_id.to_string(), wake.clone());
        if let Some((_, older)) = self.lock().watchers.insert(node_id.to_string(), entry) {
            older.notify_one();
        }
        wake
    }

    pub fn unwatch(&self, node_id: &str, session_id: &str) {
        let mut shared = self.lock();
        if shared
            .watchers
            .get(node_id)
            .is_some_and(|(s, _)| s == session_id)
        {
            shared.watchers.remove(node_id);
        }
    }

    /// Runs `read` on the current view, loading it and starting the feed first if needed.
    pub fn read<R>(&self, core: &Core, read: impl FnOnce(&View) -> R) -> Result<R, StoreError> {
        let mut shared = self.lock();
        let view = match shared.view.take() {
            Some(view) => view,
            None => {
                let (events, view) = core.store().subscribe_with(View::load);
                let view = view?;
                shared.generation += 1;
                let span = tracing::debug_span!("dispatcher_index", node.id = %core.node_id());
                let feed = self.clone().follow(core.clone(), events, shared.generation);
                tokio::spawn(feed.instrument(span));
                view
            }
        };
        let result = read(&view);
        shared.view = Some(view);
        Ok(result)
    }

    async fn follow(self, core: Core, mut events: Events, generation: u64) {
        let mut server = core.raft().server_metrics();
        while core.is_leader() {
            tokio::select! {
                event = events.recv() => {
                    if matches!(event, Err(broadcast::error::RecvError::Closed)) {
                        break;
                    }
                    match self.catch_up(&core, event.ok(), &mut events, generation) {
                        Some(affected) => self.wake(affected),
                        None => break,
                    }
                }
                changed = server.changed() => {
                    if changed.is_err() {
                        break;
                    }
                }
            }
        }
        let mut shared = self.lock();
        if shared.generation == generation {
            shared.view = None;
            debug!("dispatcher index dropped: no longer leading");
        }
        // Sessions end once they see this manager no longer leads.
        shared
            .watchers
            .values()
            .for_each(|(_, wake)| wake.notify_one());
    }

    /// Applies `first` (None: the feed lagged) and every change already queued behind it,
    /// as one step. None if this feed was superseded or the state can no longer be read.
    fn catch_up(
        &self,
        core: &Core,
        first: Option<Arc<StoreEvent>>,
        events: &mut Events,
        generation: u64,
    ) -> Option<Affected> {
        let mut shared = self.lock();
        if shared.generation != generation {
            return None;
        }
        let view = shared.view.as_mut()?;
        let mut affected = Affected::Nobody;
        let mut next = first;
        loop {
            match next.as_deref() {
                Some(StoreEvent::Applied { actions, .. }) => affected.merge(view.apply(actions)),
                // A snapshot replaced the state, or events were missed: read it all again.
                Some(StoreEvent::Reset { .. }) | None => {
                    let (fresh, loaded) = core.store().subscribe_with(View::load);
                    match loaded {
                        Ok(loaded) => *view = loaded,
                        Err(e) => {
                            tracing::warn!(error = %e, "could not reload the dispatcher index");
                            return None;
                        }
                    }
                    *events = fresh;
                    affected = Affected::Everyone;
                }
            }
            next = match events.try_recv() {
                Ok(event) => Some(event),
                Err(TryRecvError::Lagged(_)) => None,
                Err(TryRecvError::Empty | TryRecvError::Closed) => return Some(affected),
            };
        }
    }

    fn wake(&self, affected: Affected) {
        let shared = self.lock();
        match affected {
            Affected::Nobody => {}
            Affected::Everyone => shared
                .watchers
                .values()
                .for_each(|(_, wake)| wake.notify_one()),
            Affected::Nodes(nodes) => nodes
                .iter()
                .filter_map(|node_id| shared.watchers.get(node_id))
                .for_each(|(_, wake)| wake.notify_one()),
        }
    }
}
