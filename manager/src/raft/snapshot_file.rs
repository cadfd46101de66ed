//! Snapshot files. A snapshot is the `state` tree written as bincode gives a
//! `Vec<(Vec<u8>, Vec<u8>)>` (a u64 count, then each key and value with its u64 length),
//! a pair at a time, into a file of its own in `<data dir>/snapshots`; sled keeps only
//! which file is current and its metadata. openraft sends and receives the file in
//! chunks, so no whole copy of the state sits in memory or in sled's log.

use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Seek, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use openraft::storage::SnapshotMeta;
use openraft::BasicNode;
use serde::{Deserialize, Serialize};

use super::{decode, encode, NodeId};

type Meta = SnapshotMeta<NodeId, BasicNode>;

/// Where sled kept the whole snapshot before files (migrated by `open`).
const OLD_KEY: &str = "current";
const CURRENT_KEY: &str = "current-file";
const DIR: &str = "snapshots";

/// Bytes of the current snapshot (0: none yet), for the monitoring port.
pub static LAST_SNAPSHOT_BYTES: AtomicU64 = AtomicU64::new(0);

#[derive(Serialize, Deserialize)]
struct Current {
    meta: Meta,
    file: String,
}

/// The snapshot sled used to hold whole.
#[derive(Deserialize)]
struct OldSnapshot {
    meta: Meta,
    data: Vec<u8>,
}

/// The snapshots of one state machine; clones share the current one.
#[derive(Clone)]
pub struct Snapshots {
    dir: PathBuf,
    tree: sled::Tree,
    /// Held while the current file is opened or switched, so a reader never opens a file
    /// that a newer snapshot just removed.
    current: Arc<Mutex<Option<Current>>>,
    /// The file `begin_receiving` handed out, which `install` can take without a copy.
    receiving: Arc<Mutex<Option<PathBuf>>>,
}

fn invalid(e: bincode::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

fn poisoned() -> io::Error {
    io::Error::other("snapshot lock poisoned")
}

impl Snapshots {
    pub fn open(db: &sled::Db, data_dir: &Path) -> io::Result<Self> {
        let dir = data_dir.join(DIR);
        fs::create_dir_all(&dir)?;
        let tree = db.open_tree("raft_snapshots").map_err(io::Error::other)?;
        let current = match tree.get(CURRENT_KEY).map_err(io::Error::other)? {
            Some(bytes) => Some(decode::<Current>(&bytes).map_err(invalid)?),
            None => None,
        };
        let snapshots = Self {
            dir,
            tree,
            current: Arc::new(Mutex::new(current)),
            receiving: Arc::new(Mutex::new(None)),
        };
        snapshots.migrate()?;
        snapshots.remove_strays()?;
        Ok(snapshots)
    }

    /// Moves a snapshot sled held whole into a file.
    fn migrate(&self) -> io::Result<()> {
        let Some(bytes) = self.tree.get(OLD_KEY).map_err(io::Error::other)? else {
            return Ok(());
        };
        let old: OldSnapshot = decode(&bytes).map_err(invalid)?;
        let (path, mut file) = self.stage()?;
        file.write_all(&old.data)?;
        file.sync_all()?;
        self.commit(&old.meta, &path)?;
        self.tree.remove(OLD_KEY).map_err(io::Error::other)?;
        Ok(())
    }

    /// Drops files no record names: staged by a build or a transfer that did not finish.
    fn remove_strays(&self) -> io::Result<()> {
        let guard = self.current.lock().map_err(|_| poisoned())?;
        let keep = guard.as_ref().map(|c| c.file.clone());
        if let Some(current) = &keep {
            LAST_SNAPSHOT_BYTES.store(
                fs::metadata(self.dir.join(current))?.len(),
                Ordering::Relaxed,
            );
        }
        for entry in fs::read_dir(&self.dir)? {
            let entry = entry?;
            if Some(entry.file_name().to_string_lossy().as_ref()) != keep.as_deref() {
                fs::remove_file(entry.path())?;
            }
        }
        Ok(())
    }

    /// A new file of its own, for a snapshot being written or received.
    fn stage(&self) -> io::Result<(PathBuf, File)> {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let seq = SEQ.fetch_add(1, Ordering::Relaxed);
        let path = self.dir.join(format!("{nanos}-{seq}.snap"));
        let file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)?;
        Ok((path, file))
    }

    /// Writes `pairs` to a staged file and syncs it; returns its path, its size and the
    /// file opened at its start for reading.
    pub fn write<K, V>(&self, pairs: &[(K, V)]) -> io::Result<(PathBuf, u64, File)>
    where
        K: AsRef<[u8]>,
        V: AsRef<[u8]>,
    {
        let (path, file) = self.stage()?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        bincode::serialize_into(&mut out, &(pairs.len() as u64)).map_err(invalid)?;
        for (key, value) in pairs {
            bincode::serialize_into(&mut out, &(key.as_ref(), value.as_ref())).map_err(invalid)?;
        }
        let file = out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        let size = file.metadata()?.len();
        Ok((path.clone(), size, File::open(path)?))
    }

    /// A file to receive a snapshot into.
    pub fn begin_receiving(&self) -> io::Result<File> {
        let (path, file) = self.stage()?;
        let mut receiving = self.receiving.lock().map_err(|_| poisoned())?;
        if let Some(previous) = receiving.replace(path) {
            // An earlier transfer that never finished.
            let _ = fs::remove_file(previous);
        }
        Ok(file)
    }

    /// Makes `received` a staged file of ours, synced: the file `begin_receiving` gave out
    /// as it is, any other (openraft may hand over another snapshot's data) by a copy.
    pub fn take_received(&self, received: &mut File) -> io::Result<PathBuf> {
        let ours = self.receiving.lock().map_err(|_| poisoned())?.take();
        let inode = received.metadata()?.ino();
        if let Some(path) = ours {
            if fs::metadata(&path).map(|m| m.ino()).ok() == Some(inode) {
                received.sync_all()?;
                return Ok(path);
            }
            let _ = fs::remove_file(path);
        }
        let (path, mut copy) = self.stage()?;
        received.rewind()?;
        io::copy(received, &mut copy)?;
        copy.sync_all()?;
        Ok(path)
    }

    /// Makes the staged file at `path` the current snapshot, unless the current one is
    /// newer (a build and an install can finish in either order); returns whether it did.
    pub fn commit(&self, meta: &Meta, path: &Path) -> io::Result<bool> {
        let mut current = self.current.lock().map_err(|_| poisoned())?;
        if current
            .as_ref()
            .is_some_and(|c| c.meta.last_log_id > meta.last_log_id)
        {
            fs::remove_file(path)?;
            return Ok(false);
        }
        let file = path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .ok_or_else(|| io::Error::other("snapshot path has no file name"))?;
        // The file's directory entry must be durable before the record points at it.
        File::open(&self.dir)?.sync_all()?;
        let record = Current {
            meta: meta.clone(),
            file,
        };
        self.tree
            .insert(CURRENT_KEY, encode(&record).map_err(invalid)?)
            .map_err(io::Error::other)?;
        self.tree.flush().map_err(io::Error::other)?;
        LAST_SNAPSHOT_BYTES.store(fs::metadata(path)?.len(), Ordering::Relaxed);
        if let Some(old) = current.replace(record) {
            if old.file != current.as_ref().map_or("", |c| c.file.as_str()) {
                // Readers that opened it keep their handle.
                let _ = fs::remove_file(self.dir.join(old.file));
            }
        }
        Ok(true)
    }

    /// The current snapshot's metadata and its file, opened at the start.
    pub fn open_current(&self) -> io::Result<Option<(Meta, File)>> {
        let current = self.current.lock().map_err(|_| poisoned())?;
        let Some(current) = current.as_ref() else {
            return Ok(None);
        };
        Ok(Some((
            current.meta.clone(),
            File::open(self.dir.join(&current.file))?,
        )))
    }
}

/// The pairs of a snapshot file, read one at a time.
pub fn read_pairs(file: File) -> io::Result<impl Iterator<Item = io::Result<(Vec<u8>, Vec<u8>)>>> {
    let mut input = BufReader::with_capacity(1 << 20, file);
    let count: u64 = bincode::deserialize_from(&mut input).map_err(invalid)?;
    Ok((0..count).map(move |_| {
        bincode::deserialize_from::<_, (Vec<u8>, Vec<u8>)>(&mut input).map_err(invalid)
    }))
}

#[cfg(test)]
mod tests {
    use openraft::{CommittedLeaderId, LogId};

    use super::*;

    fn meta(index: u64) -> Meta {
        Meta {
            last_log_id: Some(LogId::new(CommittedLeaderId::new(1, 1), index)),
            snapshot_id: format!("s{index}"),
            ..Default::default()
        }
    }

    fn pairs_of(file: File) -> Vec<(Vec<u8>, Vec<u8>)> {
        read_pairs(file).unwrap().map(Result::unwrap).collect()
    }

    #[test]
    fn an_older_snapshot_never_replaces_a_newer_and_a_reopen_keeps_the_current_one() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::Config::new().temporary(true).open().unwrap();
        let snapshots = Snapshots::open(&db, dir.path()).unwrap();
        let newer = [(b"k".to_vec(), b"new".to_vec())];
        let (path, _, _) = snapshots.write(&newer).unwrap();
        assert!(snapshots.commit(&meta(9), &path).unwrap());
        let (path, _, _) = snapshots.write(&[(b"k", b"old")]).unwrap();
        assert!(
            !snapshots.commit(&meta(5), &path).unwrap(),
            "a late, older build"
        );
        // A transfer that never finished leaves a file behind.
        snapshots.begin_receiving().unwrap();

        let reopened = Snapshots::open(&db, dir.path()).unwrap();
        let (current, file) = reopened.open_current().unwrap().unwrap();
        assert_eq!(current, meta(9));
        assert_eq!(pairs_of(file), newer.to_vec());
        let files = fs::read_dir(dir.path().join(DIR)).unwrap().count();
        assert_eq!(files, 1, "only the current snapshot's file is kept");
    }

    #[test]
    fn a_snapshot_sled_held_whole_moves_to_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::Config::new().temporary(true).open().unwrap();
        let pairs = vec![
            (b"a".to_vec(), b"1".to_vec()),
            (b"b".to_vec(), vec![7; 100]),
        ];
        #[derive(Serialize)]
        struct Old<'a> {
            meta: Meta,
            data: &'a [u8],
        }
        let data = encode(&pairs).unwrap();
        let old = encode(&Old {
            meta: meta(3),
            data: &data,
        })
        .unwrap();
        db.open_tree("raft_snapshots")
            .unwrap()
            .insert(OLD_KEY, old)
            .unwrap();
        let snapshots = Snapshots::open(&db, dir.path()).unwrap();
        let (current, file) = snapshots.open_current().unwrap().unwrap();
        assert_eq!((current, pairs_of(file)), (meta(3), pairs));
        assert!(snapshots.tree.get(OLD_KEY).unwrap().is_none());
    }
}
