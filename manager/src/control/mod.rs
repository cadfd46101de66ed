//! The Control API: what the CLI calls. Every handler validates against the store, decides,
//! and commits one proposal; a rejected request writes nothing. Reads are served from this
//! manager's replica.

mod networks;
mod nodes;
mod resolve;
mod tokens;

pub(crate) use nodes::reachable_voters;
pub(crate) use tokens::current_cluster;

use swarmr_proto::control_server::Control;
use swarmr_proto::*;
use tonic::{Request, Response, Status};

use crate::core::Core;

/// Cheap to clone: every clone shares the in-flight allocations.
#[derive(Clone)]
pub struct ControlService {
    core: Core,
    /// Networks decided here but not committed yet, so concurrent creates through this
    /// manager pick different subnets and VNIs and can commit in one batch.
    pending_networks: networks::Pending,
}

impl ControlService {
    pub fn new(core: Core) -> Self {
        Self {
            core,
            pending_networks: Default::default(),
        }
    }
}

#[tonic::async_trait]
impl Control for ControlService {
    async fn list_nodes(
        &self,
        _req: Request<ListNodesRequest>,
    ) -> Result<Response<ListNodesResponse>, Status> {
        let nodes = nodes::list(&self.core).await?;
        Ok(Response::new(ListNodesResponse { nodes }))
    }

    async fn get_node(
        &self,
        req: Request<GetNodeRequest>,
    ) -> Result<Response<GetNodeResponse>, Status> {
        let node = nodes::get(&self.core, &req.into_inner().reference).await?;
        Ok(Response::new(GetNodeResponse { node: Some(node) }))
    }

    async fn update_node(
        &self,
        req: Request<UpdateNodeRequest>,
    ) -> Result<Response<UpdateNodeResponse>, Status> {
        let node = nodes::update(&self.core, req.into_inner()).await?;
        Ok(Response::new(UpdateNodeResponse { node: Some(node) }))
    }

    async fn remove_node(
        &self,
        req: Request<RemoveNodeRequest>,
    ) -> Result<Response<RemoveNodeResponse>, Status> {
        let req = req.into_inner();
        nodes::remove(&self.core, &req.reference, req.force).await?;
        Ok(Response::new(RemoveNodeResponse {}))
    }

    async fn join_token(
        &self,
        req: Request<JoinTokenRequest>,
    ) -> Result<Response<JoinTokenResponse>, Status> {
        let req = req.into_inner();
        let token = tokens::get_or_rotate(&self.core, req.role(), req.rotate).await?;
        Ok(Response::new(JoinTokenResponse {
            token,
            manager_addr: self.core.api_addr().to_string(),
        }))
    }

    async fn create_network(
        &self,
        req: Request<CreateNetworkRequest>,
    ) -> Result<Response<CreateNetworkResponse>, Status> {
        let spec = req.into_inner().spec.unwrap_or_default();
        let network = networks::create(&self.core, &self.pending_networks, spec).await?;
        Ok(Response::new(CreateNetworkResponse {
            network: Some(network),
        }))
    }

    async fn list_networks(
        &self,
        _req: Request<ListNetworksRequest>,
    ) -> Result<Response<ListNetworksResponse>, Status> {
        let networks = networks::list(&self.core)?;
        Ok(Response::new(ListNetworksResponse { networks }))
    }

    async fn get_network(
        &self,
        req: Request<GetNetworkRequest>,
    ) -> Result<Response<GetNetworkResponse>, Status> {
        let view = networks::view(&self.core, &req.into_inner().reference)?;
        Ok(Response::new(GetNetworkResponse {
            network: Some(view),
        }))
    }

    async fn remove_network(
        &self,
        req: Request<RemoveNetworkRequest>,
    ) -> Result<Response<RemoveNetworkResponse>, Status> {
        networks::remove(&self.core, &req.into_inner().reference).await?;
        Ok(Response::new(RemoveNetworkResponse {}))
    }

    async fn prune_networks(
        &self,
        _req: Request<PruneNetworksRequest>,
    ) -> Result<Response<PruneNetworksResponse>, Status> {
        let removed = networks::prune(&self.core).await?;
        Ok(Response::new(PruneNetworksResponse { removed }))
    }

    async fn leave(&self, _req: Request<LeaveRequest>) -> Result<Response<LeaveResponse>, Status> {
        Err(Status::failed_precondition(
            "`swarmr leave` acts on the node it runs on: run it there, against its local socket",
        ))
    }
}
