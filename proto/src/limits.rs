//! Message size bounds that every swarmr gRPC server and client sets explicitly (tonic's
//! default decoding limit is 4 MiB, and a reply over it drops the call).
//!
//! The specs are capped (`swarmr_manager::control::limits`) and large controller writes are
//! cut into Raft entries of at most 1 MiB, so real messages stay far below these.

/// Control, Dispatcher and Logs messages, both ways.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// Raft messages between managers: an AppendEntries carries at most 64 entries of at most
/// 1 MiB (plus framing), a snapshot chunk 3 MiB.
pub const MAX_RAFT_MESSAGE_BYTES: usize = 128 * 1024 * 1024;
