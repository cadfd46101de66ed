//! What the benchmark examples share: a Control client to their own cluster.

use std::path::PathBuf;
use std::time::Duration;

use swarmr_manager::ca;
use swarmr_proto::control_client::ControlClient;
use tonic::transport::Channel;

/// The first manager's data dir: its node certificate (OU swarm-manager) opens the
/// Control API of every manager, which only speaks mutual TLS.
pub static CERTS: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

/// A Control client once the manager at `addr` answers.
pub async fn client(addr: &str) -> Option<ControlClient<Channel>> {
    let dir = CERTS.get()?;
    let file = |name: &str| dir.join(name);
    let config = ca::load_client(&file("ca.crt"), &file("node.crt"), &file("node.key")).ok()?;
    let mut c = ControlClient::new(ca::channel_with(config, addr, ca::MANAGER_NAME).ok()?);
    let probe = c.list_nodes(swarmr_proto::ListNodesRequest {});
    tokio::time::timeout(Duration::from_secs(15), probe)
        .await
        .ok()?
        .ok()?;
    Some(c)
}
