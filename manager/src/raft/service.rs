//! The server side of the `Raft` gRPC service: openraft's three RPCs, plus the two
//! manager-to-leader calls that ride on the same service (forwarded writes, new voters).

use openraft::raft::{AppendEntriesRequest, InstallSnapshotRequest, VoteRequest};
use swarmr_proto::raft_server::Raft as RaftRpc;
use swarmr_proto::{
    AddManagerRequest, AddManagerResponse, ForwardResponse, Proposal, RaftBytes,
    ReachabilityRequest, ReachabilityResponse, ReadIndexRequest, ReadIndexResponse,
};
use tonic::{Request, Response, Status};

use super::{decode, encode, NodeId, TypeConfig};
use crate::core::Core;

pub struct RaftService {
    core: Core,
}

impl RaftService {
    pub fn new(core: Core) -> Self {
        Self { core }
    }
}

fn decode_request<T: serde::de::DeserializeOwned>(req: Request<RaftBytes>) -> Result<T, Status> {
    decode(&req.into_inner().data)
        .map_err(|e| Status::invalid_argument(format!("undecodable Raft message: {e}")))
}

fn encode_reply<T: serde::Serialize>(value: &T) -> Result<Response<RaftBytes>, Status> {
    let data = encode(value).map_err(|e| Status::internal(format!("encode Raft reply: {e}")))?;
    Ok(Response::new(RaftBytes { data }))
}

#[tonic::async_trait]
impl RaftRpc for RaftService {
    async fn append_entries(&self, req: Request<RaftBytes>) -> Result<Response<RaftBytes>, Status> {
        let rpc: AppendEntriesRequest<TypeConfig> = decode_request(req)?;
        encode_reply(&self.core.raft().append_entries(rpc).await)
    }

    async fn vote(&self, req: Request<RaftBytes>) -> Result<Response<RaftBytes>, Status> {
        let rpc: VoteRequest<NodeId> = decode_request(req)?;
        encode_reply(&self.core.raft().vote(rpc).await)
    }

    async fn install_snapshot(
        &self,
        req: Request<RaftBytes>,
    ) -> Result<Response<RaftBytes>, Status> {
        let rpc: InstallSnapshotRequest<TypeConfig> = decode_request(req)?;
        encode_reply(&self.core.raft().install_snapshot(rpc).await)
    }

    async fn forward(&self, req: Request<Proposal>) -> Result<Response<ForwardResponse>, Status> {
        let result = self.core.write_as_leader(req.into_inner()).await?;
        Ok(Response::new(ForwardResponse {
            result: Some(result),
        }))
    }

    async fn add_manager(
        &self,
        req: Request<AddManagerRequest>,
    ) -> Result<Response<AddManagerResponse>, Status> {
        self.core.add_manager(&req.into_inner().node_id).await?;
        Ok(Response::new(AddManagerResponse {}))
    }

    async fn reachability(
        &self,
        _req: Request<ReachabilityRequest>,
    ) -> Result<Response<ReachabilityResponse>, Status> {
        if !self.core.is_leader() {
            return Err(Status::failed_precondition("not the leader"));
        }
        let reachable = self.core.reachable_voters().await;
        Ok(Response::new(ReachabilityResponse {
            reachable: reachable.into_iter().collect(),
        }))
    }

    async fn read_index(
        &self,
        _req: Request<ReadIndexRequest>,
    ) -> Result<Response<ReadIndexResponse>, Status> {
        let index = self.core.leader_read_index().await?;
        Ok(Response::new(ReadIndexResponse { index }))
    }

    async fn data_key(
        &self,
        _req: Request<swarmr_proto::DataKeyRequest>,
    ) -> Result<Response<swarmr_proto::DataKeyResponse>, Status> {
        crate::secrets::fetch::serve(&self.core)
    }
}
