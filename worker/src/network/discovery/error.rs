//! Errors of service discovery, named for the step that failed.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum DiscoveryError {
    /// Port 53 could not be bound inside a sandbox namespace.
    #[error("bind the DNS server in {netns}")]
    BindDns {
        netns: String,
        #[source]
        source: std::io::Error,
    },
    /// `nft` refused or could not load a container's VIP table.
    #[error("load the VIP rules into the namespace of pid {pid}: {detail}")]
    LoadVipRules { pid: u32, detail: String },
    /// The BPF socket load balancer's maps could not be read or written.
    #[error("VIP maps")]
    VipMaps {
        #[source]
        source: swarmr_netdriver::socklb::SockLbError,
    },
}
