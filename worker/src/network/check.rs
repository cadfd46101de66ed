//! `swarmr network check` on this node: what the overlay's and the published ports'
//! reconciles would change now, read without changing anything. Nothing found means the
//! kernel holds exactly what the cluster state says.

use std::sync::Arc;

use futures::future::BoxFuture;
use swarmr_proto::{NetworkDifference, SessionMessage};
use tokio::sync::watch;

use super::mesh::HostNet;
use super::overlay::Overlay;
use super::publish;

/// Answers a network check; the error says why the node could not be checked.
pub trait NetworkCheck: Send + Sync + 'static {
    fn check(&self) -> BoxFuture<'_, Result<Vec<NetworkDifference>, String>>;
}

/// This node's check: the overlay (sandboxes, devices, entries, endpoints, the egress
/// bridge) and the node namespace's published-port rules and return routes.
pub struct Checker {
    pub overlay: Arc<Overlay>,
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
            let message = self.sessions.borrow().clone();
            if let Some(message) = message {
                differences.extend(publish::check(&message, &self.host).await);
            }
            Ok(differences)
        })
    }
}
