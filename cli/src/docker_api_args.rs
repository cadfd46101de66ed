//! The node flags of the Docker Engine API a manager serves (`manager::dockerapi`), and
//! the node's resource flags beside them (kept out of `args.rs`, which is at its size
//! limit).

use std::net::SocketAddr;

use clap::Args;

#[derive(Args, Clone)]
pub struct NodeExtraArgs {
    #[command(flatten)]
    pub resources: crate::workload_args::NodeResourceFlags,
    /// Also serve the Docker Engine API on TCP at IP:PORT with the cluster's mutual TLS
    /// (`docker --tlsverify`, client certificates from `swarmr ca issue-client`). Managers
    /// always serve it on <data-dir>/docker.sock.
    #[arg(long, value_name = "IP:PORT")]
    pub docker_api_addr: Option<SocketAddr>,
}
