//! The node flags of the Docker Engine API a manager serves (`manager::dockerapi`).

use std::net::SocketAddr;

use clap::Args;

#[derive(Args, Clone, Default)]
pub struct DockerApiArgs {
    /// Also serve the Docker Engine API on TCP at IP:PORT with the cluster's mutual TLS
    /// (`docker --tlsverify`, client certificates from `swarmr ca issue-client`). Managers
    /// always serve it on <data-dir>/docker.sock.
    #[arg(long, value_name = "IP:PORT")]
    pub docker_api_addr: Option<SocketAddr>,
}
