//! The Control API: what the CLI calls. Every handler validates against the store, decides,
//! and commits one proposal; a rejected request writes nothing. Reads are served from this
//! manager's replica once it has applied what the leader had committed (`read_barrier`),
//! so `ls`, `inspect` and `ps` never show an older state than a write already answered.

mod check;
mod clients;
mod files;
mod networks;
mod nodes;
mod ports;
mod resolve;
mod secrets;
mod services;
mod tokens;
mod updates;
pub mod workload;

pub use secrets::MAX_DATA as MAX_SECRET_DATA;

use swarmr_proto::control_server::Control;
use swarmr_proto::*;
use tonic::{Request, Response, Status};

use crate::core::Core;

/// Cheap to clone: every clone shares the in-flight allocations.
#[derive(Clone)]
pub struct ControlService {
    core: Core,
    /// What `WatchEvents` streams (`crate::observe::events`).
    events: crate::observe::events::EventLog,
    /// Networks decided here but not committed yet, so concurrent creates through this
    /// manager pick different subnets and VNIs and can commit in one batch.
    pending_networks: networks::Pending,
}

impl ControlService {
    pub fn new(core: Core, events: crate::observe::events::EventLog) -> Self {
        Self {
            core,
            events,
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
        self.core.read_barrier().await?;
        let nodes = nodes::list(&self.core).await?;
        Ok(Response::new(ListNodesResponse { nodes }))
    }

    async fn get_node(
        &self,
        req: Request<GetNodeRequest>,
    ) -> Result<Response<GetNodeResponse>, Status> {
        self.core.read_barrier().await?;
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
        self.core.read_barrier().await?;
        let networks = networks::list(&self.core)?;
        Ok(Response::new(ListNetworksResponse { networks }))
    }

    async fn get_network(
        &self,
        req: Request<GetNetworkRequest>,
    ) -> Result<Response<GetNetworkResponse>, Status> {
        self.core.read_barrier().await?;
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

    async fn check_networks(
        &self,
        _req: Request<CheckNetworksRequest>,
    ) -> Result<Response<CheckNetworksResponse>, Status> {
        let nodes = check::check(&self.core).await?;
        Ok(Response::new(CheckNetworksResponse { nodes }))
    }

    async fn create_service(
        &self,
        req: Request<CreateServiceRequest>,
    ) -> Result<Response<CreateServiceResponse>, Status> {
        let spec = req.into_inner().spec.unwrap_or_default();
        let service = services::create(&self.core, &self.pending_networks, spec).await?;
        Ok(Response::new(CreateServiceResponse {
            service: Some(service),
        }))
    }

    async fn list_services(
        &self,
        _req: Request<ListServicesRequest>,
    ) -> Result<Response<ListServicesResponse>, Status> {
        self.core.read_barrier().await?;
        let services = services::list(&self.core)?;
        Ok(Response::new(ListServicesResponse { services }))
    }

    async fn get_service(
        &self,
        req: Request<GetServiceRequest>,
    ) -> Result<Response<GetServiceResponse>, Status> {
        self.core.read_barrier().await?;
        let service = services::get(&self.core, &req.into_inner().reference)?;
        Ok(Response::new(GetServiceResponse {
            service: Some(service),
        }))
    }

    async fn scale_service(
        &self,
        req: Request<ScaleServiceRequest>,
    ) -> Result<Response<ScaleServiceResponse>, Status> {
        let req = req.into_inner();
        let service = services::scale(&self.core, &req.reference, req.replicas).await?;
        Ok(Response::new(ScaleServiceResponse {
            service: Some(service),
        }))
    }

    async fn update_service(
        &self,
        req: Request<UpdateServiceRequest>,
    ) -> Result<Response<UpdateServiceResponse>, Status> {
        let req = req.into_inner();
        let spec = req.spec.unwrap_or_default();
        let service = updates::update(
            &self.core,
            &self.pending_networks,
            &req.reference,
            spec,
            req.version,
        )
        .await?;
        Ok(Response::new(UpdateServiceResponse {
            service: Some(service),
        }))
    }

    async fn rollback_service(
        &self,
        req: Request<RollbackServiceRequest>,
    ) -> Result<Response<RollbackServiceResponse>, Status> {
        let service = updates::rollback(
            &self.core,
            &self.pending_networks,
            &req.into_inner().reference,
        )
        .await?;
        Ok(Response::new(RollbackServiceResponse {
            service: Some(service),
        }))
    }

    async fn remove_service(
        &self,
        req: Request<RemoveServiceRequest>,
    ) -> Result<Response<RemoveServiceResponse>, Status> {
        services::remove(&self.core, &req.into_inner().reference).await?;
        Ok(Response::new(RemoveServiceResponse {}))
    }

    async fn list_tasks(
        &self,
        req: Request<ListTasksRequest>,
    ) -> Result<Response<ListTasksResponse>, Status> {
        self.core.read_barrier().await?;
        let tasks = services::tasks(&self.core, &req.into_inner().service)?;
        Ok(Response::new(ListTasksResponse { tasks }))
    }

    type ServiceLogsStream = tokio_stream::wrappers::ReceiverStream<Result<LogLine, Status>>;

    async fn service_logs(
        &self,
        req: Request<ServiceLogsRequest>,
    ) -> Result<Response<Self::ServiceLogsStream>, Status> {
        let req = req.into_inner();
        let lines = services::logs(&self.core, &req.service, req.follow, req.tail)?;
        Ok(Response::new(tokio_stream::wrappers::ReceiverStream::new(
            lines,
        )))
    }

    async fn issue_client_certificate(
        &self,
        req: Request<IssueClientCertificateRequest>,
    ) -> Result<Response<IssueClientCertificateResponse>, Status> {
        let caller = req.extensions().get::<crate::ca::PeerIdentity>().cloned();
        let (cert_pem, ca_cert_pem) =
            clients::issue(&self.core, caller.as_ref(), &req.get_ref().csr_pem).await?;
        Ok(Response::new(IssueClientCertificateResponse {
            cert_pem,
            ca_cert_pem,
        }))
    }

    async fn list_client_certificates(
        &self,
        _req: Request<ListClientCertificatesRequest>,
    ) -> Result<Response<ListClientCertificatesResponse>, Status> {
        Ok(Response::new(ListClientCertificatesResponse {
            certificates: clients::list(&self.core)?,
        }))
    }

    async fn revoke_client_certificate(
        &self,
        req: Request<RevokeClientCertificateRequest>,
    ) -> Result<Response<RevokeClientCertificateResponse>, Status> {
        clients::revoke(&self.core, &req.get_ref().id).await?;
        Ok(Response::new(RevokeClientCertificateResponse {}))
    }

    async fn create_secret(
        &self,
        req: Request<CreateSecretRequest>,
    ) -> Result<Response<SecretReply>, Status> {
        let req = req.into_inner();
        let secret = secrets::create::<Secret>(&self.core, req.spec, &req.data).await?;
        Ok(Response::new(secret_reply(secret, Vec::new())))
    }

    async fn list_secrets(
        &self,
        _req: Request<ListSecretsRequest>,
    ) -> Result<Response<ListSecretsReply>, Status> {
        let secrets = secrets::list(&self.core)?;
        Ok(Response::new(ListSecretsReply { secrets }))
    }

    async fn get_secret(
        &self,
        req: Request<SecretRequest>,
    ) -> Result<Response<SecretReply>, Status> {
        let secret = secrets::get(&self.core, &req.into_inner().reference)?;
        Ok(Response::new(secret_reply(secret, Vec::new())))
    }

    async fn remove_secret(
        &self,
        req: Request<SecretRequest>,
    ) -> Result<Response<RemoveSecretReply>, Status> {
        secrets::remove::<Secret>(&self.core, &req.into_inner().reference).await?;
        Ok(Response::new(RemoveSecretReply {}))
    }

    async fn update_secret(
        &self,
        req: Request<UpdateSecretRequest>,
    ) -> Result<Response<SecretReply>, Status> {
        let req = req.into_inner();
        let (secret, services) =
            secrets::update::<Secret>(&self.core, &req.reference, &req.data).await?;
        Ok(Response::new(secret_reply(secret, services)))
    }

    async fn create_config(
        &self,
        req: Request<CreateSecretRequest>,
    ) -> Result<Response<ConfigReply>, Status> {
        let req = req.into_inner();
        let config = secrets::create::<Config>(&self.core, req.spec, &req.data).await?;
        Ok(Response::new(config_reply(config, req.data, Vec::new())))
    }

    async fn list_configs(
        &self,
        _req: Request<ListSecretsRequest>,
    ) -> Result<Response<ListConfigsReply>, Status> {
        let configs = secrets::list(&self.core)?;
        Ok(Response::new(ListConfigsReply { configs }))
    }

    async fn get_config(
        &self,
        req: Request<SecretRequest>,
    ) -> Result<Response<ConfigReply>, Status> {
        let (config, data) = secrets::open::<Config>(&self.core, &req.into_inner().reference)?;
        Ok(Response::new(config_reply(config, data, Vec::new())))
    }

    async fn remove_config(
        &self,
        req: Request<SecretRequest>,
    ) -> Result<Response<RemoveSecretReply>, Status> {
        secrets::remove::<Config>(&self.core, &req.into_inner().reference).await?;
        Ok(Response::new(RemoveSecretReply {}))
    }

    async fn update_config(
        &self,
        req: Request<UpdateSecretRequest>,
    ) -> Result<Response<ConfigReply>, Status> {
        let req = req.into_inner();
        let (config, services) =
            secrets::update::<Config>(&self.core, &req.reference, &req.data).await?;
        Ok(Response::new(config_reply(config, req.data, services)))
    }

    async fn leave(&self, _req: Request<LeaveRequest>) -> Result<Response<LeaveResponse>, Status> {
        Err(Status::failed_precondition(
            "`swarmr leave` acts on the node it runs on: run it there, against its local socket",
        ))
    }

    type WatchEventsStream = crate::observe::events::EventStream;

    async fn watch_events(
        &self,
        req: Request<WatchEventsRequest>,
    ) -> Result<Response<Self::WatchEventsStream>, Status> {
        Ok(Response::new(self.events.watch(req.into_inner())?))
    }

    async fn info(&self, _req: Request<InfoRequest>) -> Result<Response<InfoResponse>, Status> {
        Ok(Response::new(crate::observe::info::info(&self.core).await?))
    }
}

fn secret_reply(secret: Secret, services: Vec<String>) -> SecretReply {
    SecretReply {
        secret: Some(secret),
        services,
    }
}

fn config_reply(config: Config, data: Vec<u8>, services: Vec<String>) -> ConfigReply {
    ConfigReply {
        config: Some(config),
        data,
        services,
    }
}
