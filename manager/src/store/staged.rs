//! Writes decided but not yet in sled, and reads that see them. The state machine applies
//! every entry of one apply call into one [`Staged`] and writes it as one sled batch: sled
//! 0.34 writes and syncs its log buffer twice for every batch (`pin_log` rolls it before
//! and after the batch), which cost five disk writes per committed write across three
//! managers when each entry was its own batch. The entries' plans read through it, so an
//! entry sees what the entries before it in the same call wrote.

use std::collections::BTreeMap;

use sled::IVec;

#[derive(Default)]
pub struct Staged {
    /// `None` is a removal.
    writes: BTreeMap<IVec, Option<IVec>>,
}

impl Staged {
    pub fn insert(&mut self, key: impl AsRef<[u8]>, value: impl Into<IVec>) {
        self.writes
            .insert(IVec::from(key.as_ref()), Some(value.into()));
    }

    pub fn remove(&mut self, key: impl AsRef<[u8]>) {
        self.writes.insert(IVec::from(key.as_ref()), None);
    }

    /// `key` as it will be once these writes land on `state`.
    pub fn get(
        &self,
        state: &sled::Tree,
        key: impl AsRef<[u8]>,
    ) -> Result<Option<IVec>, sled::Error> {
        match self.writes.get(key.as_ref()) {
            Some(staged) => Ok(staged.clone()),
            None => state.get(key),
        }
    }

    pub fn contains_key(
        &self,
        state: &sled::Tree,
        key: impl AsRef<[u8]>,
    ) -> Result<bool, sled::Error> {
        Ok(self.get(state, key)?.is_some())
    }

    /// Whether a removal of `key` is staged already.
    pub fn removes(&self, key: impl AsRef<[u8]>) -> bool {
        matches!(self.writes.get(key.as_ref()), Some(None))
    }

    /// Adds `later`, written after these.
    pub fn extend(&mut self, later: Staged) {
        self.writes.extend(later.writes);
    }

    pub fn into_batch(self) -> sled::Batch {
        let mut batch = sled::Batch::default();
        for (key, value) in self.writes {
            match value {
                Some(value) => batch.insert(key, value),
                None => batch.remove(key),
            }
        }
        batch
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_see_staged_writes_over_the_tree_and_the_batch_applies_them() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let state = db.open_tree("state").unwrap();
        state.insert("kept", "old").unwrap();
        state.insert("gone", "old").unwrap();
        let mut staged = Staged::default();
        staged.insert("new", "v1");
        staged.remove("gone");
        let mut later = Staged::default();
        later.insert("new", "v2");
        staged.extend(later);
        assert_eq!(staged.get(&state, "new").unwrap(), Some(IVec::from("v2")));
        assert!(!staged.contains_key(&state, "gone").unwrap());
        assert!(staged.removes("gone"));
        assert_eq!(staged.get(&state, "kept").unwrap(), Some(IVec::from("old")));
        // Nothing reached the tree yet.
        assert!(state.get("new").unwrap().is_none());
        state.apply_batch(staged.into_batch()).unwrap();
        assert_eq!(state.get("new").unwrap(), Some(IVec::from("v2")));
        assert!(state.get("gone").unwrap().is_none());
    }
}
