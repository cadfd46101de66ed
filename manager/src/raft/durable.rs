//! Flushes of sled that survive power loss. sled 0.34's `flush` writes its buffers with
//! `sync_file_range(2)` (WAIT_BEFORE | WRITE | WAIT_AFTER), which writes the pages but
//! neither the file's metadata nor the disk's volatile cache. Where the state machine must
//! be durable (before the Raft log drops entries it could be rebuilt from), we also
//! `fsync` sled's data file; fsync on any descriptor of a file makes all of its written
//! data and its metadata durable.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

/// sled's data file, opened for `fsync`.
#[derive(Clone)]
pub struct Durable {
    file: Arc<File>,
}

impl Durable {
    /// `db_dir` is the directory sled was opened on; its data lives in `db_dir/db`.
    pub fn open(db_dir: &Path) -> std::io::Result<Self> {
        Ok(Self {
            file: Arc::new(File::open(db_dir.join("db"))?),
        })
    }

    /// sled's flush of `tree`, then an fsync of the data file.
    pub async fn flush(&self, tree: &sled::Tree) -> std::io::Result<()> {
        tree.flush_async().await.map_err(std::io::Error::other)?;
        let file = self.file.clone();
        tokio::task::spawn_blocking(move || file.sync_all())
            .await
            .map_err(std::io::Error::other)?
    }
}
