//! `swarmr network check` on this node: what the overlay's and the published ports'
//! reconciles would change now, read without changing anything. Nothing found means the
//! kernel holds exactly what the cluster state says.

use std::sync::Arc;

use futures::future::BoxFuture;
use swarmr_proto::{NetworkDifference, SessionMessage};
use tokio::sync::watch;

use super::discovery::VipBalancer;
use super::mesh::HostNet;
use super::overlay::Overlay;
use super::publish;

/// Answers a network check; the error says why the node could not be checked.
pub trait NetworkCheck: Send + Sync + 'static {
    fn check(&self) -> BoxFuture<'_, Result<Vec<NetworkDifference>, String>>;
    /// How VIPs are balanced here (`bpf (...)` or `nftables (...)`).
    fn vip_balancer(&self) -> String;
    /// How the overlay's sandboxes forward frames (`bpf (...)` or `bridge (...)`).
    fn overlay_forwarding(&self) -> String;
}

/// This node's check: the overlay (sandboxes, devices, entries, endpoints, the egress
/// bridge), the fast path's attachments and map, the VIP maps (BPF) and the node
/// namespace's published-port rules and return routes.
pub struct Checker {
    pub overlay: Arc<Overlay>,
    pub vips: Arc<VipBalancer>,
    pub host: HostNet,
    pub sessions: watch::Receiver<Option<SessionMessage>>,
}

impl NetworkCheck for Checker {
    fn check(&self) -> BoxFuture<'_, Result<Vec<NetworkDifference>, String>> {
        Box::pin(async move {
            let steps = self
                .overlay
                .check()
                .await
                .map_err(|e| crate::error::chain(&e))?
                .ok_or_else(|| {
                    "no session state yet: the node has not heard from the leader".to_string()
                })?;
            let mut differences: Vec<NetworkDifference> = steps
                .iter()
                .map(|step| NetworkDifference {
                    network_id: step.scope.network_id().unwrap_or_default().to_string(),
                    kind: step.change.difference().to_string(),
                    detail: step.to_string(),
                })
                .collect();
            let fast = self.overlay.check_fast_path().await;
            differences.extend(fast.into_iter().map(|(network_id, kind, detail)| {
                NetworkDifference {
                    network_id,
                    kind: kind.to_string(),
                    detail,
                }
            }));
            let message = self.sessions.borrow().clone();
            if let Some(message) = message {
                let vips = self.vips.check(&message).await;
                let vips = vips.map_err(|e| crate::error::chain(&e))?;
                differences.extend(vips.into_iter().map(|(network_id, change)| {
                    NetworkDifference {
                        network_id,
                        kind: change.difference().to_string(),
                        detail: change.to_string(),
                    }
                }));
                differences.extend(publish::check(&message, &self.host).await);
            }
            Ok(differences)
        })
    }

    fn vip_balancer(&self) -> String {
        self.vips.describe().to_string()
    }

    fn overlay_forwarding(&self) -> String {
        self.overlay.forwarding().to_string()
    }
}
