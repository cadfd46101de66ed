//! The event stream (`swarmr events`, Control `WatchEvents`): every change this manager
//! applies, in Docker's event shape, as it commits. Fed by the store's commit feed, so a
//! follower streams the same events as the leader. The last [`KEPT`] events stay in
//! memory for `--since`; nothing is written anywhere.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};

use futures::{Stream, StreamExt};
use swarmr_proto::{
    ClusterEvent, Config, Network, Node, Secret, Service, Task, WatchEventsRequest,
};
use tokio::sync::broadcast;
use tokio::task::AbortHandle;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_stream::wrappers::BroadcastStream;
use tonic::Status;

use super::event_shape::Summaries;
use crate::store::{Object, Store, StoreEvent};

/// Events kept for `--since`.
pub const KEPT: usize = 2000;
/// Events a slow watcher may fall behind by before its stream ends.
const LIVE_BUFFER: usize = 1024;
/// Filter values one request may carry.
const MAX_FILTERS: usize = 64;

pub type EventStream = Pin<Box<dyn Stream<Item = Result<ClusterEvent, Status>> + Send>>;

/// The recorder's output: recent events and the live feed. Cheap to clone; the recorder
/// stops when the last clone goes.
#[derive(Clone)]
pub struct EventLog {
    shared: Arc<Shared>,
    _recorder: Arc<Recorder>,
}

struct Shared {
    recent: Mutex<VecDeque<ClusterEvent>>,
    live: broadcast::Sender<ClusterEvent>,
}

struct Recorder(AbortHandle);

impl Drop for Recorder {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl EventLog {
    /// Starts recording what `store` applies from now on.
    pub fn start(store: &Store) -> Self {
        let shared = Arc::new(Shared {
            recent: Mutex::new(VecDeque::with_capacity(KEPT)),
            live: broadcast::channel(LIVE_BUFFER).0,
        });
        let (feed, summaries) = store.subscribe_with(summarize);
        let task = tokio::spawn(record(store.clone(), feed, summaries, shared.clone()));
        Self {
            shared,
            _recorder: Arc::new(Recorder(task.abort_handle())),
        }
    }

    /// The events kept since `since_millis` (none for 0), then the live ones, filtered.
    pub fn watch(&self, request: WatchEventsRequest) -> Result<EventStream, Status> {
        if request.types.len() + request.names.len() > MAX_FILTERS {
            return Err(Status::invalid_argument(format!(
                "too many filters: at most {MAX_FILTERS}"
            )));
        }
        for kind in &request.types {
            if !TYPES.contains(&kind.as_str()) {
                return Err(Status::invalid_argument(format!(
                    "invalid filter 'type={kind}': use one of {}",
                    TYPES.join(", ")
                )));
            }
        }
        let (replay, live) = {
            let recent = lock(&self.shared.recent);
            let since_nano = request.since_millis.saturating_mul(1_000_000);
            let replay: Vec<ClusterEvent> = match request.since_millis {
                0 => Vec::new(),
                _ => recent
                    .iter()
                    .filter(|e| e.time_nano >= since_nano)
                    .cloned()
                    .collect(),
            };
            // Subscribed under the lock the recorder pushes under: no gap, no repeat.
            (replay, self.shared.live.subscribe())
        };
        let live = BroadcastStream::new(live).map(|item| match item {
            Ok(event) => Ok(event),
            Err(BroadcastStreamRecvError::Lagged(n)) => Err(Status::resource_exhausted(format!(
                "the event stream fell {n} events behind and was closed: read it faster, or filter it"
            ))),
        });
        let stream = futures::stream::iter(replay.into_iter().map(Ok))
            .chain(live)
            .filter(move |item| {
                let keep = match item {
                    Ok(event) => matches(&request, event),
                    Err(_) => true,
                };
                std::future::ready(keep)
            });
        Ok(Box::pin(stream))
    }
}

/// The types `--filter type=` takes.
pub const TYPES: [&str; 6] = ["service", "node", "network", "task", "secret", "config"];

fn matches(request: &WatchEventsRequest, event: &ClusterEvent) -> bool {
    let type_ok = request.types.is_empty() || request.types.contains(&event.r#type);
    let name = event.actor_attributes.get("name");
    let name_ok = request.names.is_empty()
        || request
            .names
            .iter()
            .any(|n| *n == event.actor_id || Some(n) == name);
    type_ok && name_ok
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Pushing an event cannot leave the queue half-changed.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The summary of every object in the store now.
fn summarize(store: &Store) -> Summaries {
    let mut summaries = Summaries::default();
    fn add<T: Object>(store: &Store, summaries: &mut Summaries) {
        for object in store.list::<T>().unwrap_or_default() {
            summaries.remember(&object.into_target());
        }
    }
    add::<Node>(store, &mut summaries);
    add::<Service>(store, &mut summaries);
    add::<Task>(store, &mut summaries);
    add::<Network>(store, &mut summaries);
    add::<Secret>(store, &mut summaries);
    add::<Config>(store, &mut summaries);
    summaries
}

async fn record(
    store: Store,
    mut feed: broadcast::Receiver<Arc<StoreEvent>>,
    mut summaries: Summaries,
    shared: Arc<Shared>,
) {
    loop {
        let event = match feed.recv().await {
            Ok(event) => event,
            Err(broadcast::error::RecvError::Closed) => return,
            // Missed changes: start over from what the store holds now.
            Err(broadcast::error::RecvError::Lagged(n)) => {
                tracing::warn!(
                    missed = n,
                    "event recorder fell behind the store; re-reading it"
                );
                let (rx, fresh) = store.subscribe_with(summarize);
                (feed, summaries) = (rx, fresh);
                continue;
            }
        };
        let actions = match &*event {
            StoreEvent::Applied { actions, .. } => actions,
            StoreEvent::Reset { .. } => {
                summaries = summarize(&store);
                continue;
            }
        };
        let events: Vec<ClusterEvent> = actions.iter().filter_map(|a| summaries.event(a)).collect();
        let mut recent = lock(&shared.recent);
        for event in events {
            if recent.len() == KEPT {
                recent.pop_front();
            }
            recent.push_back(event.clone());
            // No watcher is fine.
            let _ = shared.live.send(event);
        }
    }
}
