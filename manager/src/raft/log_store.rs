//! The Raft log in sled: tree `raft_log` keyed by big-endian index, tree `raft_meta` for the
//! vote, the committed id and the last purged id. Every append and vote is flushed and
//! fsynced ([`Durable`]) before it is acknowledged, so a write the CLI saw committed
//! survives a crash and a power loss.
//!
//! Group commit: `append` writes the entries and hands its completion callback to a flusher
//! task, which runs one `flush` for every append queued meanwhile and then acknowledges them
//! in order. Many writers in flight cost one fsync per round, not one each.

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{AnyError, Entry, LogId, OptionalSend, RaftLogReader, StorageIOError, Vote};

use tokio::sync::mpsc;

use super::durable::Durable;
use super::{decode, encode, NodeId, StorageError, TypeConfig};

const VOTE: &str = "vote";
const COMMITTED: &str = "committed";
const LAST_PURGED: &str = "last_purged";

#[derive(Clone)]
pub struct LogStore {
    log: sled::Tree,
    meta: sled::Tree,
    durable: Durable,
    flusher: mpsc::UnboundedSender<LogFlushed<TypeConfig>>,
}

fn index_key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

fn read_err(e: impl std::error::Error + 'static) -> StorageError {
    StorageIOError::read_logs(AnyError::new(&e)).into()
}

fn write_err(e: impl std::error::Error + 'static) -> StorageError {
    StorageIOError::write_logs(AnyError::new(&e)).into()
}

impl LogStore {
    /// Must be called inside a tokio runtime: it starts the flusher task, which ends when
    /// the last clone of the store is dropped.
    /// `db_dir` is the directory `db` was opened on.
    pub fn open(db: &sled::Db, db_dir: &std::path::Path) -> Result<Self, sled::Error> {
        let log = db.open_tree("raft_log")?;
        let durable = Durable::open(db_dir)?;
        let (flusher, pending) = mpsc::unbounded_channel();
        tokio::spawn(flush_appends(log.clone(), durable.clone(), pending));
        Ok(Self {
            log,
            meta: db.open_tree("raft_meta")?,
            durable,
            flusher,
        })
    }

    fn get_meta<T: serde::de::DeserializeOwned>(
        &self,
        key: &str,
    ) -> Result<Option<T>, StorageError> {
        match self.meta.get(key).map_err(read_err)? {
            Some(bytes) => Ok(Some(decode(&bytes).map_err(read_err)?)),
            None => Ok(None),
        }
    }

    async fn put_meta<T: serde::Serialize>(
        &self,
        key: &str,
        value: &T,
    ) -> Result<(), StorageError> {
        let bytes = encode(value).map_err(write_err)?;
        self.meta.insert(key, bytes).map_err(write_err)?;
        self.durable.flush(&self.meta).await.map_err(write_err)?;
        Ok(())
    }

    fn last_entry_id(&self) -> Result<Option<LogId<NodeId>>, StorageError> {
        match self.log.last().map_err(read_err)? {
            Some((_, bytes)) => {
                let entry: Entry<TypeConfig> = decode(&bytes).map_err(read_err)?;
                Ok(Some(entry.log_id))
            }
            None => Ok(None),
        }
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<TypeConfig>>, StorageError> {
        let start = match range.start_bound() {
            Bound::Included(&i) => i,
            Bound::Excluded(&i) => i.saturating_add(1),
            Bound::Unbounded => 0,
        };
        let iter = match range.end_bound() {
            Bound::Included(&i) => self.log.range(index_key(start)..=index_key(i)),
            Bound::Excluded(&i) => self.log.range(index_key(start)..index_key(i)),
            Bound::Unbounded => self.log.range(index_key(start)..),
        };
        iter.map(|item| {
            let (_, bytes) = item.map_err(read_err)?;
            decode(&bytes).map_err(read_err)
        })
        .collect()
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let last_purged_log_id: Option<LogId<NodeId>> = self.get_meta(LAST_PURGED)?;
        let last_log_id = self.last_entry_id()?.or(last_purged_log_id);
        Ok(LogState {
            last_purged_log_id,
            last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError> {
        self.put_meta(VOTE, vote).await
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError> {
        self.get_meta(VOTE)
    }

    /// Not flushed: the committed id is only a hint for a restart (openraft re-learns it
    /// from the leader), and every vote or append flush makes it durable too. Flushing it
    /// here cost one fsync per commit inside openraft's core loop, which stalled every
    /// other write for that long. sled recovers a prefix of its writes, so a durable
    /// committed id never points past entries lost in a crash.
    async fn save_committed(
        &mut self,
        committed: Option<LogId<NodeId>>,
    ) -> Result<(), StorageError> {
        let bytes = encode(&committed).map_err(write_err)?;
        self.meta.insert(COMMITTED, bytes).map_err(write_err)?;
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<NodeId>>, StorageError> {
        Ok(self.get_meta::<Option<LogId<NodeId>>>(COMMITTED)?.flatten())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut batch = sled::Batch::default();
        for entry in entries {
            batch.insert(
                &index_key(entry.log_id.index),
                encode(&entry).map_err(write_err)?,
            );
        }
        self.log.apply_batch(batch).map_err(write_err)?;
        if let Err(mpsc::error::SendError(callback)) = self.flusher.send(callback) {
            // The flusher is gone (shutting down): flush here rather than never acknowledge.
            callback.log_io_completed(self.durable.flush(&self.log).await);
        }
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError> {
        let mut batch = sled::Batch::default();
        for item in self.log.range(index_key(log_id.index)..) {
            let (key, _) = item.map_err(read_err)?;
            batch.remove(key);
        }
        self.log.apply_batch(batch).map_err(write_err)?;
        self.durable.flush(&self.log).await.map_err(write_err)?;
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError> {
        // Record the purge point first: a crash mid-purge then leaves no hole before it.
        self.put_meta(LAST_PURGED, &log_id).await?;
        let mut batch = sled::Batch::default();
        for item in self.log.range(..=index_key(log_id.index)) {
            let (key, _) = item.map_err(read_err)?;
            batch.remove(key);
        }
        self.log.apply_batch(batch).map_err(write_err)?;
        Ok(())
    }
}

/// One fsync for every append queued since the last one, then their acknowledgements in
/// the order the appends came.
async fn flush_appends(
    log: sled::Tree,
    durable: Durable,
    mut pending: mpsc::UnboundedReceiver<LogFlushed<TypeConfig>>,
) {
    while let Some(first) = pending.recv().await {
        let mut batch = vec![first];
        while let Ok(next) = pending.try_recv() {
            batch.push(next);
        }
        let flushed = durable.flush(&log).await;
        for callback in batch {
            let result = flushed
                .as_ref()
                .map(|_| ())
                .map_err(|e| std::io::Error::new(e.kind(), e.to_string()));
            callback.log_io_completed(result);
        }
    }
}
