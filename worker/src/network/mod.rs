//! The node's networking for its tasks, all fed by the session's pushed state (a watch
//! channel of `SessionMessage`), each part a reconcile loop of its own:
//! - `overlay`: wires running task containers onto their overlay networks, the ingress
//!   network's node end and the egress bridge, through netdriver; implements the agent's
//!   [`NetworkAttach`](crate::agent::NetworkAttach), so a task reports RUNNING only once
//!   wired. It tells `discovery` when a sandbox appeared.
//! - `discovery`: the embedded DNS (one server per sandbox, on the gateway address) and
//!   the VIP rules (nftables in each task container).
//! - `mesh`: pure decisions about the node namespace's part (egress addresses, the
//!   routing mesh's interface and peers), shared by `overlay` and `publish`.
//! - `publish`: published ports, the mesh's return routes and egress masquerade in the
//!   node namespace (nftables).
//! - `check`: `network check` on this node: what the reconciles would change now.
//! - `pid_check`: whether a reported PID still is the task's container.
//!
//! Data flows one way: session message → {overlay, discovery, publish}; overlay →
//! discovery (a sandbox changed, and a new container's VIP table); `mesh` is read by both.

pub mod check;
pub mod discovery;
pub mod mesh;
pub mod overlay;
mod pid_check;
pub mod publish;
