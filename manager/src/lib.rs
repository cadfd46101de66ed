//! The swarmr manager.
//!
//! Layout:
//! - `raft`: openraft's type config, the sled log store and state machine, the gRPC
//!   network between managers.
//! - `store`: typed reads of the replicated state, its change watch, and the apply step.
//! - `core`: the shared handle, the single write path (`propose`) and the cluster-wide
//!   facts every layer reads (the cluster object, reachable voters).
//! - `constraint`, `limits`: placement constraints and input bounds, shared by `control`,
//!   the orchestrator, the scheduler and the dispatcher.
//! - `control`: the user-facing API (validate, then one proposal per action).
//! - `dispatcher`: joins and worker sessions, heartbeats, node health.
//! - `roles`: demotions leave Raft.
//! - `ca`: the root CA, ids and join tokens.
//! - `secrets`: sealing secret and config data at rest, and the data key's keeping.
//! - `dockerapi`: Docker's Engine API for swarm objects, mapped onto `control`.
//! - `observe`: metrics, health, the dashboard, events and info (read-only).
//! - `manager`: wiring all of the above into a running manager.

pub mod allocator;
pub mod ca;
pub mod constraint;
pub mod control;
pub mod controller;
pub mod core;
pub mod dispatcher;
pub mod dockerapi;
pub mod entry;
pub mod error;
pub mod limits;
mod manager;
pub mod observe;
pub mod orchestrator;
pub mod quorum;
pub mod raft;
mod read;
pub mod roles;
pub mod scheduler;
pub mod secrets;
pub mod standing;
pub mod store;

pub use manager::remove_state;
pub use manager::{ClusterParams, Manager, ManagerConfig};
