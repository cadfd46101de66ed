//! The swarmr worker: the node's side of its session with the leader's dispatcher.
//!
//! Layout:
//! - `session`: finds the leader among the known managers, keeps a session with it,
//!   heartbeats, and follows it through failovers; every message from the dispatcher is
//!   published on a watch channel for the node daemon.
//! - `agent`: the task agent, a reconcile loop from the session's tasks to this node's
//!   containers; it reports each task's state forward-only for the session to deliver.
//! - `logs`: the `Logs` gRPC service, streaming a task's container output.
//! - `network`: everything the node's kernel holds for its tasks, from the pushed state:
//!   overlay wiring, DNS and VIPs, egress and published ports. It implements the agent's
//!   `NetworkAttach`; the agent knows nothing of it.
//! - `executor`: runs tasks as Docker containers (bollard), idempotently, touching only
//!   containers labelled with this node; an in-memory stand-in for simulations.
//! - `files`: the secrets and configs the session delivers, on a tmpfs, bound into
//!   their tasks' containers.

pub mod agent;
mod command;
pub mod error;
pub mod executor;
pub mod files;
pub mod logs;
pub mod metrics;
pub mod network;
pub mod session;

pub use agent::Agent;
pub use error::{AgentError, WorkerError};
pub use logs::LogsService;
pub use session::{run_session, Connect, SessionConfig};
