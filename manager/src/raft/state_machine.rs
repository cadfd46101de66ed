//! The Raft state machine: applies committed proposals to the sled `state` tree (see
//! `store`), keeps the last applied id and membership in the same atomic batch, and builds
//! and installs snapshots of the whole tree. A restart resumes from the persisted state,
//! not by replaying the log.

use std::io::Cursor;
use std::sync::atomic::{AtomicU64, Ordering};

use openraft::storage::{RaftStateMachine, Snapshot, SnapshotMeta};
use openraft::{
    AnyError, BasicNode, Entry, EntryPayload, LogId, OptionalSend, RaftSnapshotBuilder,
    StorageIOError, StoredMembership,
};
use serde::{Deserialize, Serialize};
use swarmr_proto::ProposalResult;

use super::{decode, dedup, encode, NodeId, StorageError, TypeConfig};
use crate::store::{apply, Index, Store, StoreEvent};

const LAST_APPLIED: &str = "~sm/last_applied";
const MEMBERSHIP: &str = "~sm/membership";
const CURRENT_SNAPSHOT: &str = "current";

type Membership = StoredMembership<NodeId, BasicNode>;
/// The whole `state` tree as key/value pairs: the snapshot's payload.
type StatePairs = Vec<(Vec<u8>, Vec<u8>)>;

#[derive(Clone)]
pub struct StateMachine {
    store: Store,
    snapshots: sled::Tree,
}

#[derive(Serialize, Deserialize)]
struct StoredSnapshot {
    meta: SnapshotMeta<NodeId, BasicNode>,
    data: Vec<u8>,
}

/// The result of an entry that applied.
fn applied(index: u64) -> ProposalResult {
    ProposalResult {
        index,
        ..Default::default()
    }
}

/// Bytes of the stored snapshot (0: none yet), for the monitoring port.
pub static LAST_SNAPSHOT_BYTES: AtomicU64 = AtomicU64::new(0);

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
    pub fn open(db: &sled::Db, store: Store) -> Result<Self, sled::Error> {
        let snapshots = db.open_tree("raft_snapshots")?;
        if let Some(stored) = snapshots.get(CURRENT_SNAPSHOT)? {
            LAST_SNAPSHOT_BYTES.store(stored.len() as u64, Ordering::Relaxed);
        }
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
        // Stored as `Option<LogId>` (see `apply_entry`): decoding it as a bare `LogId`
        // read the option's tag as data and announced a far-away index, so a restarted
        // manager served reads before it had applied anything.
        let applied = self
            .read_key::<Option<LogId<NodeId>>>(LAST_APPLIED)?
            .flatten();
        let index = applied.map_or(0, |id| id.index);
        self.store.publish(index, StoreEvent::Reset { index });
        Ok(())
    }

    fn apply_entry(&self, entry: &Entry<TypeConfig>) -> Result<ProposalResult, StorageError> {
        let index = entry.log_id.index;
        let mut claims = self
            .store
            .write_lock
            .lock()
            .map_err(|_| sm_write_err(std::io::Error::other("state machine lock poisoned")))?;
        let (mut batch, result, actions) = match &entry.payload {
            EntryPayload::Normal(proposal) => {
                let digest = dedup::digest(proposal);
                if let Some(first) = dedup::seen(&self.store.state, &digest).map_err(sm_read_err)? {
                    return self.apply_again(entry.log_id, first);
                }
                let read_meta = |key: &str| self.store.read_meta(key);
                let conflict = |kind, target: &_| self.store.find_conflict(&claims, kind, target);
                let (mut batch, result, actions) =
                    match apply::plan(index, proposal, &read_meta, &conflict)
                        .map_err(sm_read_err)?
                    {
                        Ok(planned) => (planned.batch, applied(index), planned.actions),
                        Err(refusal) => {
                            let result = ProposalResult {
                                error: refusal.reason,
                                index,
                                refusal: refusal.kind.into(),
                            };
                            (sled::Batch::default(), result, Vec::new())
                        }
                    };
                dedup::record(&self.store.state, &mut batch, &digest, &result, index)
                    .map_err(sm_write_err)?;
                (batch, result, actions)
            }
            EntryPayload::Membership(membership) => {
                let stored = Membership::new(Some(entry.log_id), membership.clone());
                let mut batch = sled::Batch::default();
                batch.insert(MEMBERSHIP, encode(&stored).map_err(sm_write_err)?);
                (batch, applied(index), Vec::new())
            }
            EntryPayload::Blank => (sled::Batch::default(), applied(index), Vec::new()),
        };
        batch.insert(
            LAST_APPLIED,
            encode(&Some(entry.log_id)).map_err(sm_write_err)?,
        );
        self.store.state.apply_batch(batch).map_err(sm_write_err)?;
        claims.apply(&actions);
        self.store
            .publish(index, StoreEvent::Applied { index, actions });
        Ok(result)
    }

    /// A proposal applied before (see `dedup`): only the applied index moves; the caller
    /// gets the first result. Runs under the write lock `apply_entry` holds.
    fn apply_again(
        &self,
        log_id: LogId<NodeId>,
        first: ProposalResult,
    ) -> Result<ProposalResult, StorageError> {
        let mut batch = sled::Batch::default();
        batch.insert(LAST_APPLIED, encode(&Some(log_id)).map_err(sm_write_err)?);
        self.store.state.apply_batch(batch).map_err(sm_write_err)?;
        self.store.publish(
            log_id.index,
            StoreEvent::Applied {
                index: log_id.index,
                actions: Vec::new(),
            },
        );
        Ok(first)
    }

    /// Copies the whole state tree under the write lock: a consistent cut.
    fn dump_state(&self) -> Result<StatePairs, StorageError> {
        let _guard = self
            .store
            .write_lock
            .lock()
            .map_err(|_| sm_read_err(std::io::Error::other("state machine lock poisoned")))?;
        self.store
            .state
            .iter()
            .map(|item| {
                let (k, v) = item.map_err(sm_read_err)?;
                Ok((k.to_vec(), v.to_vec()))
            })
            .collect()
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let pairs = self.dump_state()?;
        let find = |key: &str| pairs.iter().find(|(k, _)| k.as_slice() == key.as_bytes());
        let last_log_id: Option<LogId<NodeId>> = match find(LAST_APPLIED) {
            Some((_, v)) => decode(v).map_err(snap_err)?,
            None => None,
        };
        let last_membership: Membership = match find(MEMBERSHIP) {
            Some((_, v)) => decode(v).map_err(snap_err)?,
            None => Membership::default(),
        };
        let data = encode(&pairs).map_err(snap_err)?;
        let snapshot_id = match last_log_id {
            Some(id) => format!("{}-{}-{}", id.leader_id, id.index, data.len()),
            None => format!("empty-{}", data.len()),
        };
        let meta = SnapshotMeta {
            last_log_id,
            last_membership,
            snapshot_id,
        };
        self.save_snapshot(&meta, &data).await?;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

impl StateMachine {
    async fn save_snapshot(
        &self,
        meta: &SnapshotMeta<NodeId, BasicNode>,
        data: &[u8],
    ) -> Result<(), StorageError> {
        let stored = StoredSnapshot {
            meta: meta.clone(),
            data: data.to_vec(),
        };
        let bytes = encode(&stored).map_err(snap_err)?;
        let size = bytes.len() as u64;
        self.snapshots
            .insert(CURRENT_SNAPSHOT, bytes)
            .map_err(snap_err)?;
        self.snapshots.flush_async().await.map_err(snap_err)?;
        LAST_SNAPSHOT_BYTES.store(size, Ordering::Relaxed);
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
        entries
            .into_iter()
            .map(|entry| self.apply_entry(&entry))
            .collect()
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let data = snapshot.into_inner();
        let pairs: StatePairs = decode(&data).map_err(snap_err)?;
        {
            let mut guard = self
                .store
                .write_lock
                .lock()
                .map_err(|_| snap_err(std::io::Error::other("state machine lock poisoned")))?;
            let mut batch = sled::Batch::default();
            for item in self.store.state.iter() {
                let (key, _) = item.map_err(snap_err)?;
                batch.remove(key);
            }
            for (key, value) in pairs {
                batch.insert(key, value);
            }
            self.store.state.apply_batch(batch).map_err(snap_err)?;
            *guard = Index::build(&self.store.state).map_err(snap_err)?;
        }
        self.save_snapshot(meta, &data).await?;
        let index = meta.last_log_id.map_or(0, |id| id.index);
        self.store.publish(index, StoreEvent::Reset { index });
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        let Some(bytes) = self.snapshots.get(CURRENT_SNAPSHOT).map_err(snap_err)? else {
            return Ok(None);
        };
        let stored: StoredSnapshot = decode(&bytes).map_err(snap_err)?;
        Ok(Some(Snapshot {
            meta: stored.meta,
            snapshot: Box::new(Cursor::new(stored.data)),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::{CommittedLeaderId, EntryPayload};
    use swarmr_proto::{Network, NetworkSpec, Proposal};

    fn entry(index: u64, proposal: &Proposal) -> Entry<TypeConfig> {
        Entry {
            log_id: LogId::new(CommittedLeaderId::new(1, 1), index),
            payload: EntryPayload::Normal(proposal.clone()),
        }
    }

    #[test]
    fn a_write_committed_twice_is_applied_once_and_reported_as_applied() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let store = Store::open(&db).unwrap();
        let sm = StateMachine::open(&db, store.clone()).unwrap();
        let network = Network {
            id: "n1".into(),
            spec: Some(NetworkSpec {
                name: "web".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let proposal = Proposal {
            actions: vec![crate::core::create_action(network)],
            proposed_at: 1,
        };
        let first = sm.apply_entry(&entry(5, &proposal)).unwrap();
        assert_eq!((first.error.as_str(), first.index), ("", 5));
        // The follower lost the answer and proposed the same write again.
        let again = sm.apply_entry(&entry(6, &proposal)).unwrap();
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
        let rejected = sm.apply_entry(&entry(7, &other)).unwrap();
        assert!(rejected.error.contains("already exists"), "{rejected:?}");
    }

    #[test]
    fn a_reopened_state_machine_announces_the_index_it_applied() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let store = Store::open(&db).unwrap();
        let sm = StateMachine::open(&db, store.clone()).unwrap();
        let proposal = Proposal {
            actions: Vec::new(),
            proposed_at: 1,
        };
        sm.apply_entry(&entry(42, &proposal)).unwrap();
        let reopened = Store::open(&db).unwrap();
        StateMachine::open(&db, reopened.clone())
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
        let db = sled::Config::new().temporary(true).open().unwrap();
        let store = Store::open(&db).unwrap();
        let sm = StateMachine::open(&db, store.clone()).unwrap();
        let empty = |at| Proposal {
            actions: Vec::new(),
            proposed_at: at,
        };
        let total = dedup::WINDOW + 10;
        for i in 1..=total {
            sm.apply_entry(&entry(i, &empty(i as i64))).unwrap();
        }
        let records = store.state.scan_prefix("~dedup/").count() as u64;
        assert!(records <= dedup::WINDOW + 1, "{records} records kept");
        // The oldest is forgotten, a recent one remembered.
        let oldest = dedup::digest(&empty(1));
        let recent = dedup::digest(&empty(total as i64));
        assert!(dedup::seen(&store.state, &oldest).unwrap().is_none());
        assert!(dedup::seen(&store.state, &recent).unwrap().is_some());
        dedup::forget_all(&store.state).unwrap();
        assert_eq!(store.state.scan_prefix("~dedup").count(), 0);
    }
}
