//! The control socket (`<data-dir>/swarmr.sock`, mode 0600): the Control API for local
//! clients. A manager answers everything; a worker answers only `leave`.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use swarmr_manager::ca::{NodeTls, MANAGER_NAME};
use swarmr_manager::control::ControlService;
use swarmr_proto::control_server::{Control, ControlServer};
use swarmr_proto::dispatcher_client::DispatcherClient;
use swarmr_proto::*;
use tokio::sync::{mpsc, watch};
use tonic::{Request, Response, Status};
use tracing::{error, warn};

use super::run::Outcome;
use swarmr_proto::NodeRole;

const LEAVE_TIMEOUT: Duration = Duration::from_secs(15);

pub struct LocalControl {
    manager: Option<Arc<ControlService>>,
    role: NodeRole,
    session: watch::Receiver<Option<SessionMessage>>,
    known_managers: Vec<String>,
    /// This node's certificate, to tell the managers it leaves.
    tls: NodeTls,
    outcome: mpsc::Sender<Outcome>,
    /// Set once a leave starts, so the run ignores the role change the leave itself causes.
    leaving: Arc<AtomicBool>,
}

impl LocalControl {
    pub fn new(
        manager: Option<ControlService>,
        role: NodeRole,
        session: watch::Receiver<Option<SessionMessage>>,
        known_managers: Vec<String>,
        tls: NodeTls,
        outcome: mpsc::Sender<Outcome>,
        leaving: Arc<AtomicBool>,
    ) -> Self {
        Self {
            manager: manager.map(Arc::new),
            role,
            session,
            known_managers,
            tls,
            outcome,
            leaving,
        }
    }

    pub async fn serve(
        self,
        path: PathBuf,
        halt: impl std::future::Future<Output = ()> + Send + 'static,
    ) {
        // A socket file left by a crashed run would make bind fail.
        let _ = std::fs::remove_file(&path);
        let listener = match tokio::net::UnixListener::bind(&path) {
            Ok(listener) => listener,
            Err(e) => {
                error!(path = %path.display(), error = %e, "cannot open the control socket");
                return;
            }
        };
        if let Err(e) = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)) {
            warn!(path = %path.display(), error = %e, "cannot restrict the control socket to its owner");
        }
        let incoming = tokio_stream::wrappers::UnixListenerStream::new(listener);
        let result = tonic::transport::Server::builder()
            .add_service(
                ControlServer::new(self)
                    .max_decoding_message_size(swarmr_proto::limits::MAX_MESSAGE_BYTES)
                    .max_encoding_message_size(swarmr_proto::limits::MAX_MESSAGE_BYTES),
            )
            .serve_with_incoming_shutdown(incoming, halt)
            .await;
        if let Err(e) = result {
            error!(error = %e, "control socket server stopped");
        }
        let _ = std::fs::remove_file(&path);
    }

    fn manager(&self) -> Result<&ControlService, Status> {
        self.manager.as_deref().ok_or_else(|| {
            Status::failed_precondition(
                "this node is not a manager: run the command on a manager, or point --host at one (IP:2377)",
            )
        })
    }

    fn managers(&self) -> Vec<String> {
        match self.session.borrow().as_ref() {
            Some(message) if !message.managers.is_empty() => message
                .managers
                .iter()
                .map(|m| m.api_addr.clone())
                .collect(),
            _ => self.known_managers.clone(),
        }
    }

    /// Tells the cluster this node is leaving; the first manager that answers handles it.
    async fn announce_leave(&self) -> Result<(), Status> {
        let mut last = Status::unavailable("no manager address is known");
        for addr in self.managers() {
            let Ok(channel) = self.tls.channel(&addr, MANAGER_NAME) else {
                continue;
            };
            let request = LeaveClusterRequest {
                node_id: self.tls.identity().id,
            };
            let mut client = DispatcherClient::new(channel)
                .max_decoding_message_size(swarmr_proto::limits::MAX_MESSAGE_BYTES)
                .max_encoding_message_size(swarmr_proto::limits::MAX_MESSAGE_BYTES);
            match tokio::time::timeout(LEAVE_TIMEOUT, client.leave_cluster(request)).await {
                Ok(Ok(_)) => return Ok(()),
                Ok(Err(status)) if status.code() == tonic::Code::FailedPrecondition => {
                    return Err(status)
                }
                Ok(Err(status)) => last = status,
                Err(_) => {
                    last = Status::deadline_exceeded(format!("manager {addr} did not answer"))
                }
            }
        }
        Err(last)
    }
}

/// The Control service: a manager answers everything, a worker only `leave`. The macro
/// writes the whole impl because `async_trait` must see every method.
macro_rules! local_control {
    ($($method:ident($request:ty) -> $response:ty;)*) => {
        #[tonic::async_trait]
        impl Control for LocalControl {
            type ServiceLogsStream = <ControlService as Control>::ServiceLogsStream;
            type WatchEventsStream = <ControlService as Control>::WatchEventsStream;

            $(
                async fn $method(&self, req: Request<$request>) -> Result<Response<$response>, Status> {
                    self.manager()?.$method(req).await
                }
            )*

            async fn leave(&self, req: Request<LeaveRequest>) -> Result<Response<LeaveResponse>, Status> {
                self.leave_cluster(req.into_inner().force).await?;
                Ok(Response::new(LeaveResponse {}))
            }
        }
    };
}

local_control! {
    list_nodes(ListNodesRequest) -> ListNodesResponse;
    get_node(GetNodeRequest) -> GetNodeResponse;
    update_node(UpdateNodeRequest) -> UpdateNodeResponse;
    remove_node(RemoveNodeRequest) -> RemoveNodeResponse;
    join_token(JoinTokenRequest) -> JoinTokenResponse;
    create_network(CreateNetworkRequest) -> CreateNetworkResponse;
    list_networks(ListNetworksRequest) -> ListNetworksResponse;
    get_network(GetNetworkRequest) -> GetNetworkResponse;
    remove_network(RemoveNetworkRequest) -> RemoveNetworkResponse;
    prune_networks(PruneNetworksRequest) -> PruneNetworksResponse;
    check_networks(CheckNetworksRequest) -> CheckNetworksResponse;
    create_service(CreateServiceRequest) -> CreateServiceResponse;
    list_services(ListServicesRequest) -> ListServicesResponse;
    get_service(GetServiceRequest) -> GetServiceResponse;
    scale_service(ScaleServiceRequest) -> ScaleServiceResponse;
    remove_service(RemoveServiceRequest) -> RemoveServiceResponse;
    update_service(UpdateServiceRequest) -> UpdateServiceResponse;
    rollback_service(RollbackServiceRequest) -> RollbackServiceResponse;
    list_tasks(ListTasksRequest) -> ListTasksResponse;
    service_logs(ServiceLogsRequest) -> Self::ServiceLogsStream;
    issue_client_certificate(IssueClientCertificateRequest) -> IssueClientCertificateResponse;
    list_client_certificates(ListClientCertificatesRequest) -> ListClientCertificatesResponse;
    revoke_client_certificate(RevokeClientCertificateRequest) -> RevokeClientCertificateResponse;
    create_secret(CreateSecretRequest) -> SecretReply;
    list_secrets(ListSecretsRequest) -> ListSecretsReply;
    get_secret(SecretRequest) -> SecretReply;
    remove_secret(SecretRequest) -> RemoveSecretReply;
    update_secret(UpdateSecretRequest) -> SecretReply;
    create_config(CreateSecretRequest) -> ConfigReply;
    list_configs(ListSecretsRequest) -> ListConfigsReply;
    get_config(SecretRequest) -> ConfigReply;
    remove_config(SecretRequest) -> RemoveSecretReply;
    update_config(UpdateSecretRequest) -> ConfigReply;
    watch_events(WatchEventsRequest) -> Self::WatchEventsStream;
    info(InfoRequest) -> InfoResponse;
}

impl LocalControl {
    async fn leave_cluster(&self, force: bool) -> Result<(), Status> {
        if self.role == NodeRole::Manager && !force {
            return Err(Status::failed_precondition(
                "this node is a manager: leaving may cost the cluster its quorum. Demote it first (`swarmr node demote <node>`), or use `swarmr leave --force`",
            ));
        }
        self.leaving.store(true, Ordering::SeqCst);
        if let Err(status) = self.announce_leave().await {
            // A manager's refusal (e.g. the managers would lose their quorum) stands even
            // with --force, which only skips telling managers that cannot be reached.
            if status.code() == tonic::Code::FailedPrecondition {
                self.leaving.store(false, Ordering::SeqCst);
                return Err(status);
            }
            if !force {
                self.leaving.store(false, Ordering::SeqCst);
                return Err(Status::unavailable(format!(
                    "could not tell the managers that this node leaves ({}); use --force to leave anyway",
                    status.message()
                )));
            }
            warn!(error = %status.message(), "leaving without telling the managers (--force)");
        }
        self.outcome
            .send(Outcome::Leave)
            .await
            .map_err(|_| Status::unavailable("the node is already stopping"))?;
        Ok(())
    }
}
