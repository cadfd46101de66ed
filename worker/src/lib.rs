//! The swarmr worker: the node's side of its session with the leader's dispatcher.
//!
//! Layout:
//! - `session`: finds the leader among the known managers, keeps a session with it,
//!   heartbeats, and follows it through failovers; every message from the dispatcher is
//!   published on a watch channel for the node daemon.
//! - `executor`: runs tasks as Docker containers (bollard), idempotently, touching only
//!   containers labelled with this node; an in-memory stand-in for simulations.

pub mod error;
pub mod executor;
pub mod session;

pub use error::WorkerError;
pub use session::{run_session, SessionConfig};
