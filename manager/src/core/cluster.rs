//! Cluster-wide facts that every layer reads: the cluster object and which voters the
//! leader hears from. Here, not in `control`, because the dispatcher, the Raft service
//! and quorum checks need them too.

use std::collections::BTreeSet;
use std::time::Duration;

use swarmr_proto::{Cluster, ReachabilityRequest};
use tonic::Status;

use super::Core;
use crate::raft::NodeId;

/// A voter counts as reachable if the leader heard from it this recently.
const REACHABLE_WINDOW: Duration = Duration::from_secs(2);

impl Core {
    /// The cluster object, which exists once the first manager's bootstrap applied.
    pub fn cluster(&self) -> Result<Cluster, Status> {
        self.store()
            .cluster()?
            .ok_or_else(|| Status::unavailable("the cluster is still being initialised; retry"))
    }

    /// The voters the leader heard from lately, asked of the leader when we are not it.
    pub async fn reachable_voters(&self) -> BTreeSet<NodeId> {
        if self.is_leader() {
            return self
                .voters()
                .into_iter()
                .filter(|id| {
                    *id == self.raft_id() || self.liveness().is_reachable(*id, REACHABLE_WINDOW)
                })
                .collect();
        }
        let Some((_, addr)) = self.leader() else {
            return BTreeSet::new();
        };
        let ask = async {
            let mut client = self.raft_client(&addr).ok()?;
            let reply = client.reachability(ReachabilityRequest {}).await.ok()?;
            Some(reply.into_inner().reachable)
        };
        match tokio::time::timeout(Duration::from_millis(800), ask).await {
            Ok(Some(ids)) => ids.into_iter().collect(),
            _ => BTreeSet::new(),
        }
    }
}
