//! The replicated cluster state as the rest of the manager sees it: typed reads over the
//! sled tree the Raft state machine writes, a watch of applied changes, and the applied
//! index so a follower can wait until it has caught up with a write it forwarded.
//!
//! Layout: one sled tree `state`, objects as protobuf under `<kind>/<id>`, the state
//! machine's own bookkeeping under `~sm/`. One tree means one atomic batch per proposal.

pub mod apply;
pub mod cache;
pub mod conflicts;
pub mod index;
pub mod object;
pub mod references;
pub mod staged;
#[cfg(test)]
mod tests_index;

use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use prost::Message;
use swarmr_proto::store_action::{Kind, Target};
use swarmr_proto::{Cluster, Meta, ObjectHeader, StoreAction};
use tokio::sync::{broadcast, watch};

pub use apply::Refusal;
pub use cache::TaskCache;
pub use index::Index;
pub use object::Object;
pub use staged::Staged;

use crate::error::StoreError;

/// What one applied Raft entry changed.
#[derive(Debug, Clone)]
pub enum StoreEvent {
    Applied {
        index: u64,
        actions: Vec<StoreAction>,
    },
    /// The whole state was replaced (snapshot installed): watchers must re-read everything.
    Reset { index: u64 },
}

#[derive(Clone)]
pub struct Store {
    pub(crate) state: sled::Tree,
    events: broadcast::Sender<Arc<StoreEvent>>,
    applied: Arc<watch::Sender<u64>>,
    /// Held while applying an entry and while copying the state for a snapshot, so a
    /// snapshot never mixes two entries. It guards the index of what objects claim, which
    /// changes with every applied entry.
    pub(crate) write_lock: Arc<Mutex<Index>>,
    /// Written only under `write_lock`, with the entry it reflects.
    pub(crate) cache: Arc<RwLock<TaskCache>>,
}

impl Store {
    pub fn open(db: &sled::Db) -> Result<Self, StoreError> {
        let state = db.open_tree("state").map_err(StoreError::Open)?;
        let (events, _) = broadcast::channel(4096);
        let index = Index::build(&state).map_err(StoreError::Read)?;
        let cache = TaskCache::build(&state).map_err(StoreError::Read)?;
        Ok(Self {
            state,
            events,
            applied: Arc::new(watch::channel(0).0),
            write_lock: Arc::new(Mutex::new(index)),
            cache: Arc::new(RwLock::new(cache)),
        })
    }

    pub fn get<T: Object>(&self, id: &str) -> Result<Option<T>, StoreError> {
        let key = object::key_of(T::KIND, id);
        match self.state.get(key.as_bytes()).map_err(StoreError::Read)? {
            Some(bytes) => Ok(Some(T::decode(bytes.as_ref()).map_err(StoreError::Decode)?)),
            None => Ok(None),
        }
    }

    /// Whether an object is stored, without decoding it (the per-call authorization check).
    pub fn contains<T: Object>(&self, id: &str) -> Result<bool, StoreError> {
        let key = object::key_of(T::KIND, id);
        self.state
            .contains_key(key.as_bytes())
            .map_err(StoreError::Read)
    }

    /// Whether the cluster object exists, without decoding it.
    pub fn has_cluster(&self) -> bool {
        let prefix = format!("{}/", <Cluster as Object>::KIND);
        matches!(
            self.state.scan_prefix(prefix.as_bytes()).next(),
            Some(Ok(_))
        )
    }

    pub fn list<T: Object>(&self) -> Result<Vec<T>, StoreError> {
        match self.cached::<T>() {
            Some(shared) => Ok(shared.iter().map(|obj| T::clone(obj)).collect()),
            None => self.decode_all(),
        }
    }

    /// Every object of the kind, shared with the store's decoded cache where it keeps the
    /// kind: a controller pass over 10,000 tasks reads them without copying one.
    pub fn list_shared<T: Object>(&self) -> Result<Vec<Arc<T>>, StoreError> {
        match self.cached::<T>() {
            Some(shared) => Ok(shared),
            None => Ok(self.decode_all()?.into_iter().map(Arc::new).collect()),
        }
    }

    /// Taken under the lock, copied (if at all) after it, so an apply waits only for this.
    fn cached<T: Object>(&self) -> Option<Vec<Arc<T>>> {
        T::from_cache(&self.cache.read().unwrap_or_else(|p| p.into_inner()))
    }

    fn decode_all<T: Object>(&self) -> Result<Vec<T>, StoreError> {
        let prefix = format!("{}/", T::KIND);
        self.state
            .scan_prefix(prefix.as_bytes())
            .map(|item| {
                let (_, bytes) = item.map_err(StoreError::Read)?;
                T::decode(bytes.as_ref()).map_err(StoreError::Decode)
            })
            .collect()
    }

    /// The cluster object, once `init` has committed it.
    pub fn cluster(&self) -> Result<Option<Cluster>, StoreError> {
        Ok(self.list::<Cluster>()?.into_iter().next())
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<StoreEvent>> {
        self.events.subscribe()
    }

    /// Subscribes and runs `read` at one point of the commit order: the receiver gets every
    /// change applied after what `read` saw, and none before. Entries are applied and
    /// published under the write lock, so holding it makes the two one step.
    pub fn subscribe_with<R>(
        &self,
        read: impl FnOnce(&Store) -> R,
    ) -> (broadcast::Receiver<Arc<StoreEvent>>, R) {
        let _guard = match self.write_lock.lock() {
            Ok(guard) => guard,
            // A panic mid-apply left nothing half-written (one sled batch per entry).
            Err(poisoned) => poisoned.into_inner(),
        };
        (self.events.subscribe(), read(self))
    }

    pub fn applied_index(&self) -> u64 {
        *self.applied.borrow()
    }

    pub fn applied_now(&self) -> u64 {
        *self.applied.borrow()
    }

    /// Waits until this replica has applied `index`; false on timeout.
    pub async fn wait_applied(&self, index: u64, timeout: Duration) -> bool {
        let mut rx = self.applied.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|applied| *applied >= index))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// The stored object's `Meta`, as it is with `staged` applied.
    pub(crate) fn read_meta(
        &self,
        staged: &Staged,
        key: &str,
    ) -> Result<Option<Meta>, sled::Error> {
        Ok(staged
            .get(&self.state, key.as_bytes())?
            .and_then(|bytes| ObjectHeader::decode(bytes.as_ref()).ok())
            .and_then(|header| header.meta.or(Some(Meta::default()))))
    }

    /// Why the target may not be stored (or, for a delete, removed), if so: the first
    /// object of its kind, in key order, that claims what it claims. `index` is the
    /// index of the current state, held under the write lock; `staged`, the writes of the
    /// entries before this one in the same apply call.
    pub(crate) fn find_conflict(
        &self,
        staged: &Staged,
        index: &Index,
        kind: Kind,
        target: &Target,
    ) -> Result<Option<Refusal>, sled::Error> {
        fn check<T: Object>(
            state: &Staged,
            tree: &sled::Tree,
            index: &Index,
            obj: &T,
            target: &Target,
        ) -> Result<Option<Refusal>, sled::Error> {
            for id in index.candidates(target) {
                if id == obj.id() {
                    continue;
                }
                let Some(bytes) = state.get(tree, object::key_of(T::KIND, &id))? else {
                    continue;
                };
                let Ok(other) = T::decode(bytes.as_ref()) else {
                    continue;
                };
                if let Some(refusal) = obj.conflict_with(&other) {
                    return Ok(Some(refusal));
                }
            }
            Ok(None)
        }
        use references::FileKind;
        let name = |spec: &Option<swarmr_proto::SecretSpec>| {
            spec.as_ref().map(|s| s.name.clone()).unwrap_or_default()
        };
        match (kind, target) {
            (Kind::Delete, Target::Secret(s)) => references::in_use(
                staged,
                &self.state,
                index,
                FileKind::Secret,
                &s.id,
                &name(&s.spec),
            ),
            (Kind::Delete, Target::Config(c)) => references::in_use(
                staged,
                &self.state,
                index,
                FileKind::Config,
                &c.id,
                &name(&c.spec),
            ),
            (Kind::Delete, _) => Ok(None),
            (_, Target::Network(n)) => check(staged, &self.state, index, n, target),
            (_, Target::Service(s)) => match check(staged, &self.state, index, s, target)? {
                Some(refusal) => Ok(Some(refusal)),
                None => references::missing(staged, &self.state, s),
            },
            (_, Target::Secret(s)) => check(staged, &self.state, index, s, target),
            (_, Target::Config(c)) => check(staged, &self.state, index, c, target),
            (_, Target::Node(_) | Target::Cluster(_) | Target::Task(_)) => Ok(None),
        }
    }

    /// Runs `read` on the index of the current state.
    pub fn with_index<R>(&self, read: impl FnOnce(&Index) -> R) -> R {
        let guard = match self.write_lock.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        read(&guard)
    }

    pub(crate) fn publish(&self, index: u64, event: StoreEvent) {
        self.applied.send_replace(index);
        // No receivers is fine: nobody is watching yet.
        let _ = self.events.send(Arc::new(event));
    }
}
