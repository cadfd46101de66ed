//! Secrets and configs at rest: their data is sealed (AES-256-GCM, `ring`) under the
//! cluster's data key before it is proposed, so the Raft log, the sled state and the
//! snapshots only ever hold ciphertext, and opened only where it is needed (a config's
//! `inspect`, the dispatcher's message to a node that runs a task using it).
//!
//! The data key (DEK) is 32 random bytes made at `swarmr init` and shared by the managers:
//! a manager without it (just joined or promoted) asks another manager over the Raft
//! service, which only manager certificates may call (`fetch.rs`). On disk each manager
//! keeps it only wrapped (sealed) under a key-encryption key (KEK) read from
//! `--secrets-key-file`, a file outside the data dir (`keyfile.rs`): a copy of the data
//! dir alone reveals no secret. Workers never hold the data key.
//!
//! Sealed form: `1 || nonce (12 bytes, random) || ciphertext || tag`, with the object's
//! kind, id and revision as associated data, so a ciphertext cannot be moved to another
//! object or revision.

pub mod fetch;
pub mod keyfile;
pub mod sealed;

use std::sync::{Arc, RwLock};

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};
use thiserror::Error;

/// Bytes of the data key and of the key-encryption key.
pub const KEY_LEN: usize = 32;
const FORMAT_V1: u8 = 1;

#[derive(Debug, Error)]
pub enum SecretsError {
    #[error("this manager does not hold the cluster's data key yet (it asks the other managers for it): retry in a moment")]
    NoDataKey,
    #[error("the system random generator failed")]
    Random,
    #[error("sealed data failed authentication (wrong key, or damaged)")]
    Open,
    #[error("read the secrets key file {0}")]
    ReadKeyFile(std::path::PathBuf, #[source] std::io::Error),
    #[error("write the secrets key file {0}")]
    WriteKeyFile(std::path::PathBuf, #[source] std::io::Error),
    #[error("the secrets key file {0} does not hold 64 hex digits")]
    BadKeyFile(std::path::PathBuf),
    #[error("store the wrapped data key")]
    Store(#[source] sled::Error),
}

/// A 256-bit AEAD key.
struct Key {
    raw: [u8; KEY_LEN],
    aead: LessSafeKey,
}

impl Key {
    fn new(raw: [u8; KEY_LEN]) -> Self {
        // Only the length can make `UnboundKey::new` fail, and it is fixed.
        let unbound = UnboundKey::new(&AES_256_GCM, &raw).unwrap_or_else(|_| unreachable!());
        Key {
            raw,
            aead: LessSafeKey::new(unbound),
        }
    }

    fn seal(&self, aad: &[u8], plain: &[u8]) -> Result<Vec<u8>, SecretsError> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| SecretsError::Random)?;
        let mut body = plain.to_vec();
        self.aead
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut body,
            )
            .map_err(|_| SecretsError::Random)?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + body.len());
        out.push(FORMAT_V1);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&body);
        Ok(out)
    }

    fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, SecretsError> {
        let (&version, rest) = sealed.split_first().ok_or(SecretsError::Open)?;
        if version != FORMAT_V1 || rest.len() < NONCE_LEN {
            return Err(SecretsError::Open);
        }
        let (nonce, body) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SecretsError::Open)?;
        let mut body = body.to_vec();
        let plain = self
            .aead
            .open_in_place(nonce, Aad::from(aad), &mut body)
            .map_err(|_| SecretsError::Open)?;
        Ok(plain.to_vec())
    }
}

/// 32 fresh random bytes.
pub fn random_key() -> Result<[u8; KEY_LEN], SecretsError> {
    let mut raw = [0u8; KEY_LEN];
    SystemRandom::new()
        .fill(&mut raw)
        .map_err(|_| SecretsError::Random)?;
    Ok(raw)
}

/// The associated data binding a sealed value to its object and revision.
fn object_aad(kind: &str, id: &str, revision: u64) -> Vec<u8> {
    format!("swarmr/{kind}/{id}/{revision}").into_bytes()
}

/// This manager's data key, once it has it. Cheap to clone; every clone shares it.
#[derive(Clone, Default)]
pub struct Keyring {
    key: Arc<RwLock<Option<Arc<Key>>>>,
}

impl Keyring {
    fn current(&self) -> Result<Arc<Key>, SecretsError> {
        let guard = self.key.read().unwrap_or_else(|p| p.into_inner());
        guard.clone().ok_or(SecretsError::NoDataKey)
    }

    pub fn set(&self, raw: [u8; KEY_LEN]) {
        *self.key.write().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(Key::new(raw)));
    }

    pub fn has_key(&self) -> bool {
        self.current().is_ok()
    }

    /// The raw data key, for another manager that asks over mutual TLS.
    pub fn raw(&self) -> Result<[u8; KEY_LEN], SecretsError> {
        Ok(self.current()?.raw)
    }

    pub fn seal(
        &self,
        kind: &str,
        id: &str,
        revision: u64,
        plain: &[u8],
    ) -> Result<Vec<u8>, SecretsError> {
        self.current()?.seal(&object_aad(kind, id, revision), plain)
    }

    pub fn open(
        &self,
        kind: &str,
        id: &str,
        revision: u64,
        sealed: &[u8],
    ) -> Result<Vec<u8>, SecretsError> {
        self.current()?
            .open(&object_aad(kind, id, revision), sealed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_data_opens_only_for_its_object_and_revision() {
        let ring = Keyring::default();
        assert!(matches!(
            ring.seal("secret", "a", 1, b"x"),
            Err(SecretsError::NoDataKey)
        ));
        ring.set(random_key().unwrap());
        let sealed = ring.seal("secret", "a", 1, b"hunter2").unwrap();
        assert!(!sealed.windows(7).any(|w| w == b"hunter2"));
        assert_eq!(ring.open("secret", "a", 1, &sealed).unwrap(), b"hunter2");
        assert!(ring.open("secret", "a", 2, &sealed).is_err());
        assert!(ring.open("secret", "b", 1, &sealed).is_err());
        assert!(ring.open("config", "a", 1, &sealed).is_err());
        let other = Keyring::default();
        other.set(random_key().unwrap());
        assert!(other.open("secret", "a", 1, &sealed).is_err());
        assert!(ring.open("secret", "a", 1, &sealed[..5]).is_err());
    }
}
