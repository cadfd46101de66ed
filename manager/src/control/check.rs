//! `swarmr network check`: asks every node that is not Down, at once, to compare its
//! kernel with the cluster state (`Logs/CheckNetwork`, over the nodes' mutual TLS). A node
//! that cannot answer in time is reported with the reason, not skipped.

use std::time::Duration;

use futures::future::join_all;
use swarmr_proto::logs_client::LogsClient;
use swarmr_proto::{CheckNetworkReply, CheckNetworkRequest, Node, NodeState};
use tonic::Status;

use crate::core::Core;

/// How long one node may take to answer.
const NODE_DEADLINE: Duration = Duration::from_secs(10);

async fn ask(core: &Core, node: &Node) -> CheckNetworkReply {
    let hostname = node
        .description
        .as_ref()
        .map(|d| d.hostname.clone())
        .unwrap_or_default();
    let failed = |error: String| CheckNetworkReply {
        node_id: node.id.clone(),
        hostname: hostname.clone(),
        error,
        ..Default::default()
    };
    let channel = match core.node_channel(&node.api_addr) {
        Ok(channel) => channel,
        Err(status) => return failed(status.message().to_string()),
    };
    let mut client = LogsClient::new(channel);
    let call = client.check_network(CheckNetworkRequest {});
    match tokio::time::timeout(NODE_DEADLINE, call).await {
        Ok(Ok(reply)) => reply.into_inner(),
        Ok(Err(status)) => failed(format!("node did not answer: {}", status.message())),
        Err(_) => failed(format!(
            "node did not answer within {}s",
            NODE_DEADLINE.as_secs()
        )),
    }
}

pub async fn check(core: &Core) -> Result<Vec<CheckNetworkReply>, Status> {
    let mut nodes: Vec<Node> = core.store().list()?;
    nodes.retain(|n| {
        n.status
            .as_ref()
            .is_none_or(|s| s.state() != NodeState::Down)
    });
    nodes.sort_by_key(|n| n.description.as_ref().map(|d| d.hostname.clone()));
    Ok(join_all(nodes.iter().map(|n| ask(core, n))).await)
}
