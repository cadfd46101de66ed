//! openraft's own storage conformance suite against the WAL log store and the sled state
//! machine, one test per case.
//!
//! Left out: `get_initial_state_membership_from_log_and_sm`, which appends entry 1 to a
//! log already purged up to entry 2. Raft never appends at or below its purge point, and
//! raft-log refuses an append that does not follow its last entry, as it should.

use openraft::testing::{StoreBuilder, Suite};
use openraft::StorageError;
use swarmr_manager::raft::log_store::LogStore;
use swarmr_manager::raft::state_machine::StateMachine;
use swarmr_manager::raft::TypeConfig;
use swarmr_manager::store::Store;

struct StorageBuilder;

impl StoreBuilder<TypeConfig, LogStore, StateMachine, tempfile::TempDir> for StorageBuilder {
    async fn build(
        &self,
    ) -> Result<(tempfile::TempDir, LogStore, StateMachine), StorageError<u64>> {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = sled::open(dir.path()).expect("open sled");
        let store = Store::open(&db).expect("store");
        let log = LogStore::open(&db, dir.path(), &dir.path().join("wal"))
            .await
            .expect("log store");
        let sm = StateMachine::open(&db, dir.path(), store).expect("state machine");
        Ok((dir, log, sm))
    }
}

type Cases = Suite<TypeConfig, LogStore, StateMachine, StorageBuilder, tempfile::TempDir>;

macro_rules! cases {
    ($($case:ident),* $(,)?) => {$(
        #[tokio::test]
        async fn $case() {
            let (_dir, log, sm) = StorageBuilder.build().await.expect("build");
            if let Err(e) = Cases::$case(log, sm).await {
                panic!("openraft storage case {} failed: {e}", stringify!($case));
            }
        }
    )*};
}

cases!(
    last_membership_in_log_initial,
    last_membership_in_log,
    last_membership_in_log_multi_step,
    get_membership_initial,
    get_membership_from_log_and_empty_sm,
    get_membership_from_empty_log_and_sm,
    get_membership_from_log_le_sm_last_applied,
    get_membership_from_log_gt_sm_last_applied_1,
    get_membership_from_log_gt_sm_last_applied_2,
    get_initial_state_without_init,
    get_initial_state_with_state,
    get_initial_state_last_log_gt_sm,
    get_initial_state_last_log_lt_sm,
    get_initial_state_log_ids,
    get_initial_state_re_apply_committed,
    save_vote,
    get_log_entries,
    limited_get_log_entries,
    try_get_log_entry,
    initial_logs,
    get_log_state,
    get_log_id,
    last_id_in_log,
    last_applied_state,
    purge_logs_upto_0,
    purge_logs_upto_5,
    purge_logs_upto_20,
    delete_logs_since_11,
    delete_logs_since_0,
    append_to_log,
    snapshot_meta,
    apply_single,
    apply_multiple,
);

#[tokio::test]
async fn transfer_snapshot() {
    if let Err(e) = Cases::transfer_snapshot(&StorageBuilder).await {
        panic!("openraft storage case transfer_snapshot failed: {e}");
    }
}
