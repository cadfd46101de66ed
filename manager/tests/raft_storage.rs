//! openraft's own storage conformance suite against the sled log store and state machine.

use openraft::testing::{StoreBuilder, Suite};
use openraft::StorageError;
use swarmr_manager::raft::log_store::LogStore;
use swarmr_manager::raft::state_machine::StateMachine;
use swarmr_manager::raft::TypeConfig;
use swarmr_manager::store::Store;

struct SledBuilder;

impl StoreBuilder<TypeConfig, LogStore, StateMachine, tempfile::TempDir> for SledBuilder {
    async fn build(
        &self,
    ) -> Result<(tempfile::TempDir, LogStore, StateMachine), StorageError<u64>> {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = sled::open(dir.path()).expect("open sled");
        let store = Store::open(&db).expect("store");
        let log = LogStore::open(&db, dir.path()).expect("log store");
        let sm = StateMachine::open(&db, dir.path(), store).expect("state machine");
        Ok((dir, log, sm))
    }
}

#[test]
fn sled_storage_passes_openraft_suite() {
    if let Err(e) = Suite::test_all(SledBuilder) {
        panic!("openraft storage suite failed: {e}");
    }
}
