//! `swarmr join-token`: show or rotate a role's token.

use swarmr_proto::{JoinTokens, NodeRole};
use tonic::Status;
use tracing::info;

use crate::ca;
use crate::core::{update_action, Core};
use crate::store::Object;

pub async fn get_or_rotate(core: &Core, role: NodeRole, rotate: bool) -> Result<String, Status> {
    let cluster = core.cluster()?;
    let tokens = cluster.tokens.clone().unwrap_or_default();
    if !rotate {
        return Ok(pick(&tokens, role).to_string());
    }
    let digest_of = ca::parse_token(&tokens.worker)
        .map(|(digest, _)| digest.to_string())
        .ok_or_else(|| Status::internal("stored worker token is malformed"))?;
    let fresh = ca::new_token_with_digest(&digest_of);
    let mut updated = cluster.clone();
    let new_tokens = updated.tokens.get_or_insert_with(JoinTokens::default);
    match role {
        NodeRole::Worker => new_tokens.worker = fresh.clone(),
        NodeRole::Manager => new_tokens.manager = fresh.clone(),
    }
    core.propose(vec![update_action(updated, cluster.version())])
        .await?;
    info!(role = role.label(), "join token rotated");
    Ok(fresh)
}

fn pick(tokens: &JoinTokens, role: NodeRole) -> &str {
    match role {
        NodeRole::Worker => &tokens.worker,
        NodeRole::Manager => &tokens.manager,
    }
}
