//! The tasks, decoded, kept in memory beside the `state` tree. Every controller pass lists
//! every task; decoding 10,000 of them from sled on each pass was a quarter of the
//! leader's CPU while a large service was placed. Built when the store opens and when a
//! snapshot is installed, updated with every applied entry under the store's write lock
//! (before the entry's event is published), like the claims [`super::Index`].

use std::collections::BTreeMap;
use std::sync::Arc;

use prost::Message;
use swarmr_proto::store_action::{Kind, Target};
use swarmr_proto::{StoreAction, Task};

use super::object::Object;

#[derive(Default, Debug)]
pub struct TaskCache {
    /// By id, so a listing comes out in the tree's key order.
    tasks: BTreeMap<String, Arc<Task>>,
    /// False when a stored task did not decode: listings then read the tree, which
    /// reports the error as it always did.
    complete: bool,
}

impl TaskCache {
    pub fn build(state: &sled::Tree) -> Result<Self, sled::Error> {
        let mut tasks = BTreeMap::new();
        for item in state.scan_prefix(format!("{}/", Task::KIND).as_bytes()) {
            let (_, bytes) = item?;
            match Task::decode(bytes.as_ref()) {
                Ok(task) => tasks.insert(task.id.clone(), Arc::new(task)),
                Err(_) => return Ok(Self::default()),
            };
        }
        Ok(Self {
            tasks,
            complete: true,
        })
    }

    /// Records the actions of an applied entry (their targets are the stored objects).
    pub fn apply(&mut self, actions: &[StoreAction]) {
        for action in actions {
            let Some(Target::Task(task)) = &action.target else {
                continue;
            };
            match action.kind() {
                Kind::Delete => self.tasks.remove(&task.id),
                Kind::Create | Kind::Update => {
                    self.tasks.insert(task.id.clone(), Arc::new(task.clone()))
                }
            };
        }
    }

    /// Every task, shared; `None` when the cache could not be built.
    pub fn shared(&self) -> Option<Vec<Arc<Task>>> {
        self.complete
            .then(|| self.tasks.values().cloned().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{create_action, delete_action, update_action};

    fn task(id: &str, slot: u64) -> Task {
        Task {
            id: id.into(),
            slot,
            ..Default::default()
        }
    }

    fn ids(cache: &TaskCache) -> Vec<(String, u64)> {
        let shared = cache.shared().unwrap_or_default();
        shared.iter().map(|t| (t.id.clone(), t.slot)).collect()
    }

    #[test]
    fn applied_actions_keep_the_cache_equal_to_the_tree() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path()).unwrap();
        let state = db.open_tree("state").unwrap();
        state
            .insert("task/b", task("b", 2).encode_to_vec())
            .unwrap();
        state.insert("node/n1", vec![1, 2, 3]).unwrap();
        let mut cache = TaskCache::build(&state).unwrap();
        assert_eq!(ids(&cache), [("b".to_string(), 2)]);

        cache.apply(&[create_action(task("a", 1)), update_action(task("b", 5), 1)]);
        assert_eq!(ids(&cache), [("a".to_string(), 1), ("b".to_string(), 5)]);
        cache.apply(&[delete_action(task("a", 1))]);
        assert_eq!(ids(&cache), [("b".to_string(), 5)]);
    }

    #[test]
    fn a_task_that_does_not_decode_leaves_listings_to_the_tree() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path()).unwrap();
        let state = db.open_tree("state").unwrap();
        state.insert("task/x", vec![0xff; 8]).unwrap();
        assert!(TaskCache::build(&state).unwrap().shared().is_none());
    }
}
