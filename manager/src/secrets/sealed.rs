//! What secrets and configs have in common as stored objects: sealed data and a revision.
//! Read by `control` (which also builds them) and the dispatcher (which opens them for
//! the nodes that need them).

use swarmr_proto::Secret;
use swarmr_proto::{Config, SecretSpec};

use crate::store::references::FileKind;
use crate::store::Object;

pub trait SealedObject: Object {
    const FILE: FileKind;
    fn build(id: String, spec: SecretSpec, sealed: Vec<u8>, revision: u64) -> Self;
    fn sealed(&self) -> &[u8];
    fn revision(&self) -> u64;
    fn set_sealed(&mut self, sealed: Vec<u8>, revision: u64);
}

macro_rules! sealed_object {
    ($ty:ident, $file:expr) => {
        impl SealedObject for $ty {
            const FILE: FileKind = $file;
            fn build(id: String, spec: SecretSpec, sealed: Vec<u8>, revision: u64) -> Self {
                $ty {
                    id,
                    meta: None,
                    spec: Some(spec),
                    sealed,
                    revision,
                }
            }
            fn sealed(&self) -> &[u8] {
                &self.sealed
            }
            fn revision(&self) -> u64 {
                self.revision
            }
            fn set_sealed(&mut self, sealed: Vec<u8>, revision: u64) {
                self.sealed = sealed;
                self.revision = revision;
            }
        }
    };
}

sealed_object!(Secret, FileKind::Secret);
sealed_object!(Config, FileKind::Config);
