//! The Raft state machine: applies committed proposals to the sled `state` tree (see
//! `store`), keeps the last applied id and membership in the same atomic batch, and builds
//! and installs snapshots of the whole tree. A restart resumes from the persisted state,
//! not by replaying the log.

use std::path::Path;

use tokio::io::AsyncWriteExt;

use openraft::storage::{RaftStateMachine, Snapshot, SnapshotMeta};
use openraft::{
    AnyError, BasicNode, Entry, EntryPayload, LogId, OptionalSend, RaftSnapshotBuilder,
    StorageIOError, StoredMembership,
};
use swarmr_proto::{ProposalResult, StoreAction};

use super::snapshot_file::{self, Snapshots};
use super::{decode, dedup, encode, NodeId, StorageError, TypeConfig};
use crate::store::{apply, Index, Staged, Store, StoreEvent, TaskCache};

const LAST_APPLIED: &str = "~sm/last_applied";
const MEMBERSHIP: &str = "~sm/membership";

type Membership = StoredMembership<NodeId, BasicNode>;

#[derive(Clone)]
pub struct StateMachine {
    store: Store,
    snapshots: Snapshots,
}

/// The result of an entry that applied.
fn applied(index: u64) -> ProposalResult {
    ProposalResult {
        index,
        ..Default::default()
    }
}

pub use super::snapshot_file::LAST_SNAPSHOT_BYTES;

fn sm_read_err(e: impl std::error::Error + 'static) -> StorageError {
    StorageIOError::read_state_machine(AnyError::new(&e)).into()
}

fn sm_write_err(e: impl std::error::Error + 'static) -> StorageError {
    StorageIOError::write_state_machine(AnyError::new(&e)).into()
}

fn snap_err(e: impl std::error::Error + 'static) -> StorageError {
    StorageIOError::write_snapshot(None, AnyError::new(&e)).into()
}

impl StateMachine {
    /// Opens the state machine on `db`, with its snapshot files under `data_dir`.
    pub fn open(db: &sled::Db, data_dir: &Path, store: Store) -> Result<Self, sled::Error> {
        let snapshots = Snapshots::open(db, data_dir).map_err(sled::Error::Io)?;
        Ok(Self { store, snapshots })
    }

    fn read_key<T: serde::de::DeserializeOwned>(
        &self,
        key: &str,
    ) -> Result<Option<T>, StorageError> {
        match self.store.state.get(key).map_err(sm_read_err)? {
            Some(bytes) => Ok(Some(decode(&bytes).map_err(sm_read_err)?)),
            None => Ok(None),
        }
    }

    /// Publishes the persisted applied index, so readers see the state they can trust.
    pub fn announce_applied(&self) -> Result<(), StorageError> {
        // Stored as `Option<LogId>` (see `apply_entries`): decoding it as a bare `LogId`
        // read the option's tag as data and announced a far-away index, so a restarted
        // manager served reads before it had applied anything.
        let applied = self
            .read_key::<Option<LogId<NodeId>>>(LAST_APPLIED)?
            .flatten();
        let index = applied.map_or(0, |id| id.index);
        self.store.publish(index, StoreEvent::Reset { index });
        Ok(())
    }

    /// Applies `entries` in order as one sled batch (see `store::staged`), then announces
    /// each. A storage error applies none of them and stops Raft.
    fn apply_entries(
        &self,
        entries: Vec<Entry<TypeConfig>>,
    ) -> Result<Vec<ProposalResult>, StorageError> {
        let Some(last) = entries.last().map(|entry| entry.log_id) else {
            return Ok(Vec::new());
        };
        let mut claims = self
            .store
            .write_lock
            .lock()
            .map_err(|_| sm_write_err(std::io::Error::other("state machine lock poisoned")))?;
        let mut staged = Staged::default();
        let mut done = Vec::with_capacity(entries.len());
        for entry in entries {
            let index = entry.log_id.index;
            let (result, actions) = self.stage(&mut claims, &mut staged, entry)?;
            // Later entries of this call check their conflicts against these claims.
            claims.apply(&actions);
            done.push((index, result, actions));
        }
        staged.insert(LAST_APPLIED, encode(&Some(last)).map_err(sm_write_err)?);
        self.store
            .state
            .apply_batch(staged.into_batch())
            .map_err(sm_write_err)?;
        {
            let mut cache = self.store.cache.write().unwrap_or_else(|p| p.into_inner());
            done.iter().for_each(|(_, _, actions)| cache.apply(actions));
        }
        Ok(done
            .into_iter()
            .map(|(index, result, actions)| {
                self.store
                    .publish(index, StoreEvent::Applied { index, actions });
                result
            })
            .collect())
    }

    /// Stages one entry's writes; returns its result and the actions it applied. A
    /// proposal applied before (see `dedup`) writes nothing and gets its first result.
    fn stage(
        &self,
        claims: &mut Index,
        staged: &mut Staged,
        entry: Entry<TypeConfig>,
    ) -> Result<(ProposalResult, Vec<StoreAction>), StorageError> {
        let index = entry.log_id.index;
        let proposal = match entry.payload {
            EntryPayload::Normal(proposal) => proposal,
            EntryPayload::Membership(membership) => {
                let stored = Membership::new(Some(entry.log_id), membership);
                staged.insert(MEMBERSHIP, encode(&stored).map_err(sm_write_err)?);
                return Ok((applied(index), Vec::new()));
            }
            EntryPayload::Blank => return Ok((applied(index), Vec::new())),
        };
        let state = &self.store.state;
        let digest = dedup::digest(&proposal);
        if let Some(first) = dedup::seen(staged, state, &digest).map_err(sm_read_err)? {
            return Ok((first, Vec::new()));
        }
        let planned = {
            let read_meta = |key: &str| self.store.read_meta(staged, key);
            let conflict =
                |kind, target: &_| self.store.find_conflict(staged, claims, kind, target);
            apply::plan(index, proposal, &read_meta, &conflict).map_err(sm_read_err)?
        };
        let (result, actions) = match planned {
            Ok(planned) => {
                staged.extend(planned.writes);
                (applied(index), planned.actions)
            }
            Err(refusal) => {
                let result = ProposalResult {
                    error: refusal.reason,
                    index,
                    refusal: refusal.kind.into(),
                };
                (result, Vec::new())
            }
        };
        dedup::record(state, staged, &digest, &result, index).map_err(sm_write_err)?;
        Ok((result, actions))
    }

    /// The whole state tree at one point of the apply order. Taken under the write lock,
    /// but it copies no value: sled hands out its values, immutable, by reference count
    /// (keys of up to 22 bytes are copied inline), so applies wait only for the walk.
    fn view(&self) -> Result<Vec<(sled::IVec, sled::IVec)>, StorageError> {
        let _guard = self
            .store
            .write_lock
            .lock()
            .map_err(|_| sm_read_err(std::io::Error::other("state machine lock poisoned")))?;
        self.store
            .state
            .iter()
            .collect::<Result<_, _>>()
            .map_err(sm_read_err)
    }
}

/// Runs blocking file work off the async workers, which the apply loop needs.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> Result<T, StorageError> {
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result.map_err(snap_err),
        Err(joined) => Err(snap_err(std::io::Error::other(joined))),
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let pairs = self.view()?;
        let find = |key: &str| pairs.iter().find(|(k, _)| k == key.as_bytes());
        let last_log_id: Option<LogId<NodeId>> = match find(LAST_APPLIED) {
            Some((_, v)) => decode(v).map_err(snap_err)?,
            None => None,
        };
        let last_membership: Membership = match find(MEMBERSHIP) {
            Some((_, v)) => decode(v).map_err(snap_err)?,
            None => Membership::default(),
        };
        let snapshots = self.snapshots.clone();
        let (path, size, file) = blocking(move || snapshots.write(&pairs)).await?;
        let snapshot_id = match last_log_id {
            Some(id) => format!("{}-{}-{size}", id.leader_id, id.index),
            None => format!("empty-{size}"),
        };
        let meta = SnapshotMeta {
            last_log_id,
            last_membership,
            snapshot_id,
        };
        let (snapshots, committed) = (self.snapshots.clone(), meta.clone());
        blocking(move || snapshots.commit(&committed, &path)).await?;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(tokio::fs::File::from_std(file)),
        })
    }
}

impl StateMachine {
    /// Replaces the state tree with the pairs of the snapshot file at `path`. openraft
    /// runs installs and applies one at a time, so the tree does not change while the
    /// batch is made; the write lock is held only to apply it. The batch is the one copy
    /// of the state in memory.
    fn install_file(&self, path: &Path) -> Result<(), StorageError> {
        let mut batch = sled::Batch::default();
        for key in self.store.state.iter().keys() {
            batch.remove(key.map_err(snap_err)?);
        }
        let file = std::fs::File::open(path).map_err(snap_err)?;
        for pair in snapshot_file::read_pairs(file).map_err(snap_err)? {
            let (key, value) = pair.map_err(snap_err)?;
            batch.insert(key, value);
        }
        let mut guard = self
            .store
            .write_lock
            .lock()
            .map_err(|_| snap_err(std::io::Error::other("state machine lock poisoned")))?;
        self.store.state.apply_batch(batch).map_err(snap_err)?;
        *guard = Index::build(&self.store.state).map_err(snap_err)?;
        let cache = TaskCache::build(&self.store.state).map_err(snap_err)?;
        *self.store.cache.write().unwrap_or_else(|p| p.into_inner()) = cache;
        Ok(())
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = Self;

    async fn applied_state(&mut self) -> Result<(Option<LogId<NodeId>>, Membership), StorageError> {
        let applied = self
            .read_key::<Option<LogId<NodeId>>>(LAST_APPLIED)?
            .flatten();
        let membership = self.read_key(MEMBERSHIP)?.unwrap_or_default();
        Ok((applied, membership))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<ProposalResult>, StorageError>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        self.apply_entries(entries.into_iter().collect())
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<tokio::fs::File>, StorageError> {
        let snapshots = self.snapshots.clone();
        let file = blocking(move || snapshots.begin_receiving()).await?;
        Ok(Box::new(tokio::fs::File::from_std(file)))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, BasicNode>,
        mut snapshot: Box<tokio::fs::File>,
    ) -> Result<(), StorageError> {
        // Chunks were written through tokio's buffer: wait for the last one to land.
        snapshot.flush().await.map_err(snap_err)?;
        let mut received = snapshot.into_std().await;
        let snapshots = self.snapshots.clone();
        let path = blocking(move || snapshots.take_received(&mut received)).await?;
        let (sm, staged) = (self.clone(), path.clone());
        match tokio::task::spawn_blocking(move || sm.install_file(&staged)).await {
            Ok(installed) => installed?,
            Err(joined) => return Err(snap_err(std::io::Error::other(joined))),
        }
        let (snapshots, committed) = (self.snapshots.clone(), meta.clone());
        blocking(move || snapshots.commit(&committed, &path)).await?;
        let index = meta.last_log_id.map_or(0, |id| id.index);
        self.store.publish(index, StoreEvent::Reset { index });
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        let snapshots = self.snapshots.clone();
        Ok(blocking(move || snapshots.open_current())
            .await?
            .map(|(meta, file)| Snapshot {
                meta,
                snapshot: Box::new(tokio::fs::File::from_std(file)),
            }))
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use openraft::{CommittedLeaderId, EntryPayload};
    use swarmr_proto::{Network, NetworkSpec, Proposal};

    /// A state machine on a temporary sled database, with its snapshot dir.
    pub(super) fn open() -> (tempfile::TempDir, sled::Db, Store, StateMachine) {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::Config::new().temporary(true).open().unwrap();
        let store = Store::open(&db).unwrap();
        let sm = StateMachine::open(&db, dir.path(), store.clone()).unwrap();
        (dir, db, store, sm)
    }

    /// A network named "web".
    fn web_network(id: &str, vni: u32) -> Network {
        Network {
            id: id.into(),
            spec: Some(NetworkSpec {
                name: "web".into(),
                ..Default::default()
            }),
            vni,
            ..Default::default()
        }
    }

    fn apply_one(
        sm: &StateMachine,
        entry: &Entry<TypeConfig>,
    ) -> Result<ProposalResult, StorageError> {
        let mut results = sm.apply_entries(vec![entry.clone()])?;
        Ok(results.remove(0))
    }

    fn entry(index: u64, proposal: &Proposal) -> Entry<TypeConfig> {
        Entry {
            log_id: LogId::new(CommittedLeaderId::new(1, 1), index),
            payload: EntryPayload::Normal(proposal.clone()),
        }
    }

    #[test]
    fn a_write_committed_twice_is_applied_once_and_reported_as_applied() {
        let (_dir, _db, store, sm) = open();
        let proposal = Proposal {
            actions: vec![crate::core::create_action(web_network("n1", 0))],
            proposed_at: 1,
        };
        let first = apply_one(&sm, &entry(5, &proposal)).unwrap();
        assert_eq!((first.error.as_str(), first.index), ("", 5));
        // The follower lost the answer and proposed the same write again.
        let again = apply_one(&sm, &entry(6, &proposal)).unwrap();
        assert_eq!(
            again, first,
            "the retry gets the first result, not 'already exists'"
        );
        let stored: Network = store.get("n1").unwrap().unwrap();
        assert_eq!(stored.meta.map(|m| m.version), Some(5), "written once");
        // A different request (another time) is applied on its own.
        let other = Proposal {
            proposed_at: 2,
            ..proposal
        };
        let rejected = apply_one(&sm, &entry(7, &other)).unwrap();
        assert!(rejected.error.contains("already exists"), "{rejected:?}");
    }

    #[test]
    fn entries_applied_in_one_call_see_each_others_writes() {
        let (_dir, _db, store, sm) = open();
        let propose = |action, at| Proposal {
            actions: vec![action],
            proposed_at: at,
        };
        let create = propose(crate::core::create_action(web_network("n1", 4097)), 1);
        let renamed = web_network("n1", 4098);
        let entries = [
            entry(5, &create),
            // The same write committed twice, both in this call.
            entry(6, &create),
            entry(7, &propose(crate::core::update_action(renamed, 5), 2)),
            entry(
                8,
                &propose(crate::core::create_action(web_network("n2", 4097)), 3),
            ),
        ];
        let results = sm.apply_entries(entries.to_vec()).unwrap();
        let errors: Vec<&str> = results.iter().map(|r| r.error.as_str()).collect();
        assert_eq!(&errors[..3], ["", "", ""], "{results:?}");
        assert_eq!(results[1], results[0], "the retry gets the first result");
        assert!(
            errors[3].contains("already"),
            "same name as n1: {results:?}"
        );
        let stored: Network = store.get("n1").unwrap().unwrap();
        assert_eq!(
            (stored.vni, stored.meta.map(|m| m.version)),
            (4098, Some(7))
        );
        assert!(store.get::<Network>("n2").unwrap().is_none());
        assert_eq!(store.applied_now(), 8);
    }

    #[test]
    fn a_reopened_state_machine_announces_the_index_it_applied() {
        let (dir, db, _store, sm) = open();
        let proposal = Proposal {
            actions: Vec::new(),
            proposed_at: 1,
        };
        apply_one(&sm, &entry(42, &proposal)).unwrap();
        let reopened = Store::open(&db).unwrap();
        StateMachine::open(&db, dir.path(), reopened.clone())
            .unwrap()
            .announce_applied()
            .unwrap();
        assert_eq!(
            reopened.applied_now(),
            42,
            "what the replica applied, no more"
        );
    }

    #[test]
    fn proposal_records_are_pruned_past_the_window() {
        let (_dir, _db, store, sm) = open();
        let empty = |at| Proposal {
            actions: Vec::new(),
            proposed_at: at,
        };
        let total = dedup::WINDOW + 10;
        for i in 1..=total {
            apply_one(&sm, &entry(i, &empty(i as i64))).unwrap();
        }
        let records = store.state.scan_prefix("~dedup/").count() as u64;
        assert!(records <= dedup::WINDOW + 1, "{records} records kept");
        // The oldest is forgotten, a recent one remembered.
        let oldest = dedup::digest(&empty(1));
        let recent = dedup::digest(&empty(total as i64));
        assert!(dedup::seen(&Staged::default(), &store.state, &oldest)
            .unwrap()
            .is_none());
        assert!(dedup::seen(&Staged::default(), &store.state, &recent)
            .unwrap()
            .is_some());
        dedup::forget_all(&store.state).unwrap();
        assert_eq!(store.state.scan_prefix("~dedup").count(), 0);
    }
}

#[cfg(test)]
mod snapshot_tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use openraft::{CommittedLeaderId, EntryPayload};
    use swarmr_proto::Proposal;

    use super::*;

    const OBJECTS: usize = 20_000;
    const VALUE_BYTES: usize = 2048;

    /// Runs `work` while another thread takes the write lock in a loop, as readers and
    /// subscriptions do; returns the longest wait for it.
    async fn longest_lock_wait<T>(
        store: &Store,
        work: impl std::future::Future<Output = T>,
    ) -> (T, Duration) {
        let stop = Arc::new(AtomicBool::new(false));
        let waiter = {
            let (store, stop) = (store.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut longest = Duration::ZERO;
                while !stop.load(Ordering::Relaxed) {
                    let started = Instant::now();
                    store.with_index(|_| ());
                    longest = longest.max(started.elapsed());
                    std::thread::sleep(Duration::from_micros(200));
                }
                longest
            })
        };
        let out = work.await;
        stop.store(true, Ordering::Relaxed);
        (out, waiter.join().unwrap())
    }

    /// Prints what a snapshot of 40 MiB costs the state machine (run with `--nocapture`);
    /// asserts only that the follower ends with the leader's state.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_snapshot_of_a_large_state_installs_the_same_state() {
        let (_dir, _db, store, mut sm) = super::tests::open();
        for i in 0..OBJECTS {
            let value = vec![(i % 251) as u8; VALUE_BYTES];
            store.state.insert(format!("task/{i:06}"), value).unwrap();
        }
        let proposal = Proposal {
            actions: Vec::new(),
            proposed_at: 1,
        };
        let entry = Entry {
            log_id: LogId::new(CommittedLeaderId::new(1, 1), 7),
            payload: EntryPayload::Normal(proposal),
        };
        sm.apply_entries(vec![entry.clone()]).unwrap();
        let started = Instant::now();
        let mut builder = sm.get_snapshot_builder().await;
        let (snapshot, build_wait) = longest_lock_wait(&store, builder.build_snapshot()).await;
        let snapshot = snapshot.unwrap();
        let build = started.elapsed();

        let (_dir_f, _db_f, follower_store, mut follower) = super::tests::open();
        let current = sm.get_current_snapshot().await.unwrap().unwrap();
        let mut received = follower.begin_receiving_snapshot().await.unwrap();
        *received = *current.snapshot;
        let started = Instant::now();
        let (installed, install_wait) = longest_lock_wait(
            &follower_store,
            follower.install_snapshot(&snapshot.meta, received),
        )
        .await;
        installed.unwrap();
        let install = started.elapsed();
        eprintln!(
            "snapshot of {OBJECTS} objects of {VALUE_BYTES} bytes ({} MiB stored): build {build:?} \
             (longest wait for the write lock {build_wait:?}), install {install:?} (longest wait \
             {install_wait:?})",
            LAST_SNAPSHOT_BYTES.load(Ordering::Relaxed) >> 20
        );
        let pairs = |s: &Store| -> Vec<(sled::IVec, sled::IVec)> {
            s.state.iter().map(|item| item.unwrap()).collect()
        };
        assert_eq!(
            pairs(&follower_store),
            pairs(&store),
            "the follower holds the leader's state"
        );
        assert_eq!(
            follower.applied_state().await.unwrap().0,
            Some(entry.log_id)
        );
    }
}
