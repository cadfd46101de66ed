//! Raft for the managers: openraft's type config and the pieces it needs. The log and the
//! state machine live in one sled database (`log_store`, `state_machine`); peers talk over
//! gRPC (`network` is the client side, `service` the server side), carrying openraft's own
//! types bincode-encoded.

// openraft's error types are large and its traits fix them as our return types.
#![allow(clippy::result_large_err)]

pub(crate) mod dedup;
mod durable;
pub mod log_store;
pub mod network;
pub mod service;
mod snapshot_file;
pub mod state_machine;

use std::time::Duration;

openraft::declare_raft_types!(
    pub TypeConfig:
        D = swarmr_proto::Proposal,
        R = swarmr_proto::ProposalResult,
        // A file, so a snapshot is written, sent and received a chunk at a time.
        SnapshotData = tokio::fs::File,
);

pub type NodeId = u64;
pub type Raft = openraft::Raft<TypeConfig>;
pub type StorageError = openraft::StorageError<NodeId>;

/// Timers tuned for about one second of failover: Docker Swarm ticks once a second and
/// waits 10 ticks; we heartbeat every 100 ms and elect after 0.35-0.7 s of silence.
/// openraft makes followers refuse votes for `election_timeout_max` after the last
/// heartbeat (the leader lease), so the first candidate is usually refused and the second
/// round wins: failover takes about two election timeouts.
pub fn config(snapshot_interval: u64) -> Result<openraft::Config, openraft::ConfigError> {
    openraft::Config {
        cluster_name: "swarmr".into(),
        heartbeat_interval: 100,
        election_timeout_min: 350,
        election_timeout_max: 700,
        install_snapshot_timeout: 5_000,
        // With entries of at most `core::MAX_ENTRY_BYTES`, an AppendEntries stays under
        // `swarmr_proto::limits::MAX_RAFT_MESSAGE_BYTES`.
        max_payload_entries: MAX_PAYLOAD_ENTRIES,
        snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(snapshot_interval),
        // Entries kept after a snapshot for followers that are only a little behind.
        max_in_snapshot_log_to_keep: snapshot_interval / 2,
        ..Default::default()
    }
    .validate()
}

/// Entries per AppendEntries.
pub const MAX_PAYLOAD_ENTRIES: u64 = 64;

/// How long a write waits for a leader to exist before giving up.
pub const NO_LEADER_WAIT: Duration = Duration::from_secs(10);

/// Bincode for everything openraft hands us to persist or send.
pub(crate) fn encode<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, bincode::Error> {
    bincode::serialize(value)
}

pub(crate) fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, bincode::Error> {
    bincode::deserialize(bytes)
}
