//! The Raft log in [raft-log]'s chunked write-ahead log (`<data dir>/raft.wal/`): the
//! entries, the vote and the committed id as records appended to chunk files, each record
//! checksummed, a torn tail cut off on open. Its flush thread writes and `fdatasync`s every
//! request queued meanwhile in one batch and then calls their callbacks in order: an
//! append or a vote is acknowledged to openraft only once it is on disk, and many writers
//! in flight cost one sync per batch.
//!
//! The log used to be a sled tree, where each group commit flushed the whole sled database
//! (the state machine's writes too): about six log-buffer writes and a `sync_file_range`
//! each per committed write, half the cluster's CPU. The state machine stays in sled,
//! flushed by sled in the background; a crash may lose its last applies, which openraft
//! applies again from the log. So that the log still holds them, a purge first makes the
//! state durable.
//!
//! [raft-log]: https://crates.io/crates/raft-log

use std::fmt::Debug;
use std::io;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{AnyError, Entry, LogId, OptionalSend, RaftLogReader, StorageIOError, Vote};
use raft_log::api::raft_log_writer::RaftLogWriter;
use raft_log::codeq::{Decode, Encode};
use raft_log::RaftLog;
use tokio::sync::oneshot;
use tracing::warn;

use super::durable::Durable;
use super::{decode, encode, NodeId, StorageError, TypeConfig};

mod migrate;

/// Where the log lives, beside sled's directory.
pub const WAL_DIR: &str = "raft.wal";

type Wal = RaftLog<WalTypes>;

#[derive(Clone)]
pub struct LogStore {
    wal: Arc<Mutex<Wal>>,
    /// The state machine's tree, made durable before a purge.
    state: sled::Tree,
    durable: Durable,
}

/// raft-log's view of openraft's types: ids and votes bincode-encoded, payloads kept as
/// their bincode bytes until read.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct WalTypes;

impl raft_log::Types for WalTypes {
    type LogId = Bin<LogId<NodeId>>;
    type LogPayload = Vec<u8>;
    type Vote = Bin<Vote<NodeId>>;
    type Callback = Flushed;
    type UserData = ();

    fn log_index(log_id: &Self::LogId) -> u64 {
        log_id.0.index
    }

    fn payload_size(payload: &Self::LogPayload) -> u64 {
        payload.len() as u64
    }
}

/// A value stored bincode-encoded behind a length, ordered as the value is.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Bin<T>(pub T);

impl<T: serde::Serialize> Encode for Bin<T> {
    fn encode<W: io::Write>(&self, w: W) -> Result<usize, io::Error> {
        encode(&self.0).map_err(io::Error::other)?.encode(w)
    }
}

impl<T: serde::de::DeserializeOwned> Decode for Bin<T> {
    fn decode<R: io::Read>(r: R) -> Result<Self, io::Error> {
        let bytes = Vec::<u8>::decode(r)?;
        decode(&bytes)
            .map(Bin)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }
}

/// Who hears that a write reached the disk: openraft, or a caller waiting here.
pub enum Flushed {
    Raft(LogFlushed<TypeConfig>),
    Wait(oneshot::Sender<io::Result<()>>),
}

impl raft_log::Callback for Flushed {
    fn send(self, res: Result<(), io::Error>) {
        match self {
            Flushed::Raft(callback) => callback.log_io_completed(res),
            Flushed::Wait(tx) => {
                let _ = tx.send(res);
            }
        }
    }
}

fn read_err(e: impl std::error::Error + 'static) -> StorageError {
    StorageIOError::read_logs(AnyError::new(&e)).into()
}

fn write_err(e: impl std::error::Error + 'static) -> StorageError {
    StorageIOError::write_logs(AnyError::new(&e)).into()
}

fn vote_err(e: impl std::error::Error + 'static) -> StorageError {
    StorageIOError::write_vote(AnyError::new(&e)).into()
}

/// raft-log's settings. Its defaults suit a large database (1 GiB chunks, a 64 MiB read
/// buffer, a 1 GiB payload cache); ours are small entries and a small process.
fn wal_config(dir: &Path) -> raft_log::Config {
    let mut wal = raft_log::chunked_wal::Config::new(dir.to_string_lossy());
    wal.read_buffer_size = Some(1 << 20);
    wal.chunk_max_size = Some(64 << 20);
    // No wait for more writes before a sync (the default is 1 ms): openraft hands over
    // appends one at a time and waits on each round, so a wait only adds latency. Measured
    // with `raft_bench`, 64 writers: 1,771 writes/s with none, 1,308 at 100 us, 579 at 1 ms.
    wal.flush_batch_wait = Some(Duration::ZERO);
    raft_log::Config {
        wal,
        log_cache_max_items: Some(10_000),
        log_cache_capacity: Some(64 << 20),
    }
}

/// Asks the flush thread to sync everything written to `wal` so far; the future resolves
/// once it is on disk. The future holds no borrow of `wal`, so a lock on it can be dropped
/// before waiting.
fn sync(wal: &mut Wal) -> io::Result<impl std::future::Future<Output = io::Result<()>>> {
    let (tx, rx) = oneshot::channel();
    wal.flush(true, Some(Flushed::Wait(tx)))?;
    Ok(async move {
        rx.await
            .map_err(|_| io::Error::other("raft log flush thread stopped"))?
    })
}

impl LogStore {
    /// Opens the log under `wal_dir`, moving in a log an older version kept in `db`'s
    /// trees. `db_dir` is the directory `db` was opened on.
    pub async fn open(db: &sled::Db, db_dir: &Path, wal_dir: &Path) -> io::Result<Self> {
        std::fs::create_dir_all(wal_dir)?;
        let mut wal = Wal::open(Arc::new(wal_config(wal_dir)))?;
        migrate::from_sled(db, &mut wal).await?;
        Ok(Self {
            wal: Arc::new(Mutex::new(wal)),
            state: db.open_tree("state").map_err(io::Error::other)?,
            durable: Durable::open(db_dir)?,
        })
    }

    fn lock(&self) -> Result<MutexGuard<'_, Wal>, io::Error> {
        self.wal
            .lock()
            .map_err(|_| io::Error::other("raft log lock poisoned"))
    }

    /// Runs `write` on the log, then waits until it is on disk.
    async fn write_synced(&self, write: impl FnOnce(&mut Wal) -> io::Result<()>) -> io::Result<()> {
        let synced = {
            let mut wal = self.lock()?;
            write(&mut wal)?;
            sync(&mut wal)?
        };
        synced.await
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
        let end = match range.end_bound() {
            Bound::Included(&i) => i.saturating_add(1),
            Bound::Excluded(&i) => i,
            Bound::Unbounded => u64::MAX,
        };
        let records: Vec<_> = {
            let wal = self.lock().map_err(read_err)?;
            wal.read(start, end).collect()
        };
        records
            .into_iter()
            .map(|record| {
                let (Bin(log_id), payload) = record.map_err(read_err)?;
                Ok(Entry {
                    log_id,
                    payload: decode(&payload).map_err(read_err)?,
                })
            })
            .collect()
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let wal = self.lock().map_err(read_err)?;
        let state = wal.log_state();
        Ok(LogState {
            last_purged_log_id: state.purged().map(|id| id.0),
            last_log_id: state.last().map(|id| id.0),
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError> {
        let vote = Bin(*vote);
        self.write_synced(|wal| wal.save_vote(vote).map(drop))
            .await
            .map_err(vote_err)
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError> {
        let wal = self.lock().map_err(read_err)?;
        Ok(wal.log_state().vote().map(|vote| vote.0))
    }

    /// Not synced: the committed id is only a hint for a restart (openraft re-learns it
    /// from the leader); it reaches the disk with the next append or vote.
    async fn save_committed(
        &mut self,
        committed: Option<LogId<NodeId>>,
    ) -> Result<(), StorageError> {
        let Some(committed) = committed else {
            return Ok(());
        };
        let mut wal = self.lock().map_err(write_err)?;
        // A hint that does not fit (raft-log refuses a committed id past its last entry)
        // is dropped rather than stopping Raft.
        if let Err(e) = wal.commit(Bin(committed)) {
            warn!(%committed, error = %e, "raft log did not record the committed id");
        }
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<NodeId>>, StorageError> {
        let wal = self.lock().map_err(read_err)?;
        Ok(wal.log_state().committed().map(|id| id.0))
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
        let records = entries
            .into_iter()
            .map(|entry| {
                Ok((
                    Bin(entry.log_id),
                    encode(&entry.payload).map_err(write_err)?,
                ))
            })
            .collect::<Result<Vec<_>, StorageError>>()?;
        let mut wal = self.lock().map_err(write_err)?;
        wal.append(records).map_err(write_err)?;
        wal.flush(true, Some(Flushed::Raft(callback)))
            .map_err(write_err)
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError> {
        self.write_synced(|wal| wal.truncate(log_id.index).map(drop))
            .await
            .map_err(write_err)
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError> {
        // The state machine has applied past `log_id` (a snapshot covers it); once its
        // state is durable, no crash can need the purged entries again.
        self.durable.flush(&self.state).await.map_err(write_err)?;
        let mut wal = self.lock().map_err(write_err)?;
        wal.purge(Bin(log_id)).map_err(write_err)?;
        wal.flush(true, None).map_err(write_err)
    }
}
