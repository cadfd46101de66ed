//! The swarmr worker: the node's side of its session with the leader's dispatcher.
//!
//! Layout:
//! - `session`: finds the leader among the known managers, keeps a session with it,
//!   heartbeats, and follows it through failovers; every message from the dispatcher is
//!   published on a watch channel for the node daemon.
//! - `agent`: the task agent, a reconcile loop from the session's tasks to this node's
//!   containers; it reports each task's state forward-only for the session to deliver.
//! - `logs`: the `Logs` gRPC service, streaming a task's container output.
//! - `overlay`: wires this node's running task containers onto their overlay networks
//!   through netdriver, from the endpoints the dispatcher pushes.
//! - `discovery`: the embedded DNS (one server per sandbox, on the gateway address) and
//!   the VIP load balancing (nftables in each task container), from the pushed directory.
//! - `mesh`: the node namespace's part of the cluster network (egress bridge, the
//!   routing mesh's interface), decided from the session message.
//! - `publish`: published ports, the mesh's return routes and egress masquerade in the
//!   node namespace (nftables).
//! - `executor`: runs tasks as Docker containers (bollard), idempotently, touching only
//!   containers labelled with this node; an in-memory stand-in for simulations.

pub mod agent;
mod command;
pub mod discovery;
pub mod error;
pub mod executor;
pub mod logs;
pub mod mesh;
pub mod overlay;
pub mod publish;
pub mod session;

pub use agent::Agent;
pub use error::{AgentError, WorkerError};
pub use logs::LogsService;
pub use session::{run_session, Connect, SessionConfig};
