//! The store's word on a caller, asked by [`crate::ca::authz`] on every call: is the node
//! still in the cluster and does it still manage; is the client certificate on record.

use swarmr_proto::{Node, NodeRole};

use crate::ca::authz::Standing;
use crate::ca::{CertRole, PeerIdentity};
use crate::core::Core;

/// What this manager's replica says about `peer`. Only the leader's store may say
/// "removed": a follower may not have applied a fresh join or issue yet.
pub fn standing_of(core: &Core, peer: &PeerIdentity) -> Standing {
    let store = core.store();
    if !store.has_cluster() {
        return Standing::Unknown;
    }
    let known = match peer.role {
        CertRole::Client => client_standing(core, &peer.id),
        CertRole::Manager | CertRole::Worker => node_standing(core, &peer.id),
    };
    match known {
        Ok(Some(standing)) => standing,
        Ok(None) if core.is_leader() => Standing::Removed,
        Ok(None) => Standing::NotYetKnown(core.leader().map(|(_, addr)| addr)),
        Err(_) => Standing::Unknown,
    }
}

fn node_standing(core: &Core, id: &str) -> Result<Option<Standing>, crate::error::StoreError> {
    let Some(node) = core.store().get::<Node>(id)? else {
        return Ok(None);
    };
    // A joining or promoted manager holds the role once Raft took it in; until then its
    // desired role lets it ask to be added.
    let desired = node.spec.as_ref().map(|s| s.desired_role());
    let manages = node.role() == NodeRole::Manager || desired == Some(NodeRole::Manager);
    Ok(Some(Standing::Member { manages }))
}

fn client_standing(core: &Core, id: &str) -> Result<Option<Standing>, crate::error::StoreError> {
    let Some(cluster) = core.store().cluster()? else {
        return Ok(None);
    };
    Ok(cluster
        .client_certificates
        .iter()
        .find(|r| r.id == id)
        .map(|r| match r.revoked_at {
            0 => Standing::Member { manages: true },
            _ => Standing::Revoked,
        }))
}
