//! Moving a log kept by an older version in sled (tree `raft_log`, entries by big-endian
//! index; tree `raft_meta`, the vote, the committed id and the last purged id) into the
//! WAL, once. The trees are dropped only after the WAL holds their content on disk; a crash
//! in between leaves a WAL that already has a log, which wins next time.

use std::io;

use openraft::{Entry, LogId, Vote};
use raft_log::api::raft_log_writer::RaftLogWriter;

use super::{Bin, Wal};
use crate::raft::{decode, encode, NodeId, TypeConfig};

pub(super) const OLD_LOG: &str = "raft_log";
pub(super) const OLD_META: &str = "raft_meta";

fn invalid(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("the old raft log in sled: {e}"),
    )
}

fn meta<T: serde::de::DeserializeOwned>(tree: &sled::Tree, key: &str) -> io::Result<Option<T>> {
    match tree.get(key).map_err(io::Error::other)? {
        Some(bytes) => decode(&bytes).map(Some).map_err(invalid),
        None => Ok(None),
    }
}

pub(super) async fn from_sled(db: &sled::Db, wal: &mut Wal) -> io::Result<()> {
    // `open_tree` would create the trees: look first, so a new data dir never has them.
    let names = db.tree_names();
    if ![OLD_LOG, OLD_META]
        .iter()
        .any(|old| names.iter().any(|name| name == old.as_bytes()))
    {
        return Ok(());
    }
    let log = db.open_tree(OLD_LOG).map_err(io::Error::other)?;
    let old_meta = db.open_tree(OLD_META).map_err(io::Error::other)?;
    let state = wal.log_state();
    let wal_is_new = state.vote().is_none() && state.last().is_none() && state.purged().is_none();
    if wal_is_new {
        copy(&log, &old_meta, wal).await?;
    }
    for tree in [OLD_LOG, OLD_META] {
        db.drop_tree(tree).map_err(io::Error::other)?;
    }
    Ok(())
}

async fn copy(log: &sled::Tree, old_meta: &sled::Tree, wal: &mut Wal) -> io::Result<()> {
    if let Some(vote) = meta::<Vote<NodeId>>(old_meta, "vote")? {
        wal.save_vote(Bin(vote))?;
    }
    let purged = meta::<LogId<NodeId>>(old_meta, "last_purged")?;
    if let Some(purged) = purged {
        wal.purge(Bin(purged))?;
    }
    let mut entries = Vec::new();
    for item in log.iter() {
        let (_, bytes) = item.map_err(io::Error::other)?;
        let entry: Entry<TypeConfig> = decode(&bytes).map_err(invalid)?;
        // A purge cut short left entries at or below its mark, which the log no longer has.
        if purged.is_some_and(|p| entry.log_id.index <= p.index) {
            continue;
        }
        entries.push((Bin(entry.log_id), encode(&entry.payload).map_err(invalid)?));
    }
    wal.append(entries)?;
    if let Some(Some(committed)) = meta::<Option<LogId<NodeId>>>(old_meta, "committed")? {
        // Only a hint (see `save_committed`).
        let _ = wal.commit(Bin(committed));
    }
    super::sync(wal)?.await
}

#[cfg(test)]
mod tests {
    use openraft::{CommittedLeaderId, EntryPayload};
    use swarmr_proto::Proposal;

    use super::*;
    use crate::raft::log_store::LogStore;

    fn entry(index: u64) -> Entry<TypeConfig> {
        Entry {
            log_id: LogId::new(CommittedLeaderId::new(3, 1), index),
            payload: EntryPayload::Normal(Proposal {
                actions: Vec::new(),
                proposed_at: index as i64,
            }),
        }
    }

    #[tokio::test]
    async fn a_log_kept_in_sled_is_moved_into_the_wal_once() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path().join("db")).unwrap();
        let log = db.open_tree(OLD_LOG).unwrap();
        let old_meta = db.open_tree(OLD_META).unwrap();
        let vote = Vote::new_committed(3, 1);
        let purged = entry(4).log_id;
        old_meta.insert("vote", encode(&vote).unwrap()).unwrap();
        old_meta
            .insert("last_purged", encode(&purged).unwrap())
            .unwrap();
        // Index 4 is what an interrupted purge leaves behind.
        for index in 4u64..=9 {
            log.insert(index.to_be_bytes(), encode(&entry(index)).unwrap())
                .unwrap();
        }
        let wal_dir = dir.path().join("wal");
        let mut store = LogStore::open(&db, &dir.path().join("db"), &wal_dir)
            .await
            .unwrap();
        use openraft::storage::RaftLogStorage;
        use openraft::RaftLogReader;
        let state = store.get_log_state().await.unwrap();
        assert_eq!(state.last_purged_log_id, Some(purged));
        assert_eq!(state.last_log_id, Some(entry(9).log_id));
        assert_eq!(store.read_vote().await.unwrap(), Some(vote));
        let entries = store.try_get_log_entries(5..10).await.unwrap();
        let indexes: Vec<u64> = entries.iter().map(|e| e.log_id.index).collect();
        assert_eq!(indexes, vec![5, 6, 7, 8, 9]);
        assert!(!db
            .tree_names()
            .iter()
            .any(|name| name == OLD_LOG.as_bytes()));
        drop(store);
        // Reopened, the WAL still holds the log and nothing is copied again.
        let mut store = LogStore::open(&db, &dir.path().join("db"), &wal_dir)
            .await
            .unwrap();
        let state = store.get_log_state().await.unwrap();
        assert_eq!(state.last_log_id, Some(entry(9).log_id));
    }

    #[tokio::test]
    async fn a_new_data_dir_gets_no_old_trees() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path().join("db")).unwrap();
        LogStore::open(&db, &dir.path().join("db"), &dir.path().join("wal"))
            .await
            .unwrap();
        let names = db.tree_names();
        for old in [OLD_LOG, OLD_META] {
            assert!(!names.iter().any(|name| name == old.as_bytes()), "{old}");
        }
    }
}
