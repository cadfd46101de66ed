//! The data key on a manager's disk: only wrapped, under a key-encryption key from a file
//! outside the data dir (`--secrets-key-file`, default `/etc/swarmr/secrets.key`, made
//! with mode 0600 when a node first needs it). The wrapped key sits in the manager's sled
//! database, in a tree of its own that Raft never replicates nor snapshots.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::{random_key, Key, SecretsError, KEY_LEN};

/// The default `--secrets-key-file`.
pub const DEFAULT_KEY_FILE: &str = "/etc/swarmr/secrets.key";
const TREE: &str = "secrets_keys";
const WRAPPED: &str = "data_key";
const WRAP_AAD: &[u8] = b"swarmr/data-key/v1";

pub struct KeyStore {
    tree: sled::Tree,
    kek_path: PathBuf,
}

impl KeyStore {
    pub fn open(db: &sled::Db, kek_path: PathBuf) -> Result<Self, sled::Error> {
        Ok(Self {
            tree: db.open_tree(TREE)?,
            kek_path,
        })
    }

    pub fn kek_path(&self) -> &Path {
        &self.kek_path
    }

    /// The data key, if this manager stored one; an error if the key file cannot open it.
    pub fn load(&self) -> Result<Option<[u8; KEY_LEN]>, SecretsError> {
        let Some(wrapped) = self.tree.get(WRAPPED).map_err(SecretsError::Store)? else {
            return Ok(None);
        };
        let kek = read_kek(&self.kek_path)?;
        let raw = Key::new(kek).open(WRAP_AAD, &wrapped)?;
        let raw: [u8; KEY_LEN] = raw.try_into().map_err(|_| SecretsError::Open)?;
        Ok(Some(raw))
    }

    /// Wraps the data key under the key file (made now if missing) and stores it.
    pub fn save(&self, raw: &[u8; KEY_LEN]) -> Result<(), SecretsError> {
        let kek = read_or_create_kek(&self.kek_path)?;
        let wrapped = Key::new(kek).seal(WRAP_AAD, raw)?;
        self.tree
            .insert(WRAPPED, wrapped)
            .map_err(SecretsError::Store)?;
        self.tree.flush().map_err(SecretsError::Store)?;
        Ok(())
    }
}

fn read_kek(path: &Path) -> Result<[u8; KEY_LEN], SecretsError> {
    let text =
        std::fs::read_to_string(path).map_err(|e| SecretsError::ReadKeyFile(path.into(), e))?;
    parse_hex(text.trim()).ok_or_else(|| SecretsError::BadKeyFile(path.into()))
}

fn read_or_create_kek(path: &Path) -> Result<[u8; KEY_LEN], SecretsError> {
    if path.exists() {
        return read_kek(path);
    }
    let write_err = |e| SecretsError::WriteKeyFile(path.into(), e);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(write_err)?;
    }
    let kek = random_key()?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(write_err)?;
    writeln!(file, "{}", to_hex(&kek)).map_err(write_err)?;
    file.sync_all().map_err(write_err)?;
    Ok(kek)
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn parse_hex(text: &str) -> Option<[u8; KEY_LEN]> {
    if text.len() != KEY_LEN * 2 || !text.is_ascii() {
        return None;
    }
    let mut out = [0u8; KEY_LEN];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_data_key_is_stored_wrapped_and_opens_only_with_its_key_file() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::Config::new().temporary(true).open().unwrap();
        let kek = dir.path().join("keys/secrets.key");
        let store = KeyStore::open(&db, kek.clone()).unwrap();
        assert!(store.load().unwrap().is_none());
        let raw = random_key().unwrap();
        store.save(&raw).unwrap();
        assert_eq!(store.load().unwrap(), Some(raw));
        let wrapped = db.open_tree(TREE).unwrap().get(WRAPPED).unwrap().unwrap();
        assert!(!wrapped.windows(8).any(|w| w == &raw[..8]));
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&kek).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        // Another key file (or none) cannot open it.
        std::fs::remove_file(&kek).unwrap();
        assert!(matches!(store.load(), Err(SecretsError::ReadKeyFile(..))));
        std::fs::write(&kek, to_hex(&random_key().unwrap())).unwrap();
        assert!(matches!(store.load(), Err(SecretsError::Open)));
    }
}
