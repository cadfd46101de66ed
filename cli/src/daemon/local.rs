//! The control socket (`<data-dir>/swarmr.sock`, mode 0600): the Control API for local
//! clients. A manager answers everything; a worker answers only `leave`.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use swarmr_manager::control::ControlService;
use swarmr_proto::control_server::{Control, ControlServer};
use swarmr_proto::dispatcher_client::DispatcherClient;
use swarmr_proto::*;
use tokio::sync::{mpsc, watch};
use tonic::{Request, Response, Status};
use tracing::{error, warn};

use super::identity::Role;
use super::run::Outcome;

const LEAVE_TIMEOUT: Duration = Duration::from_secs(15);

pub struct LocalControl {
    manager: Option<Arc<ControlService>>,
    role: Role,
    session: watch::Receiver<Option<SessionMessage>>,
    known_managers: Vec<String>,
    node_id: String,
    outcome: mpsc::Sender<Outcome>,
    /// Set once a leave starts, so the run ignores the role change the leave itself causes.
    leaving: Arc<AtomicBool>,
}

impl LocalControl {
    pub fn new(
        manager: Option<ControlService>,
        role: Role,
        session: watch::Receiver<Option<SessionMessage>>,
        known_managers: Vec<String>,
        node_id: String,
        outcome: mpsc::Sender<Outcome>,
        leaving: Arc<AtomicBool>,
    ) -> Self {
        Self {
            manager: manager.map(Arc::new),
            role,
            session,
            known_managers,
            node_id,
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
            .add_service(ControlServer::new(self))
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
            let Ok(channel) = swarmr_manager::peer_channel(&addr) else {
                continue;
            };
            let request = LeaveClusterRequest {
                node_id: self.node_id.clone(),
            };
            let mut client = DispatcherClient::new(channel);
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

#[tonic::async_trait]
impl Control for LocalControl {
    async fn list_nodes(
        &self,
        req: Request<ListNodesRequest>,
    ) -> Result<Response<ListNodesResponse>, Status> {
        self.manager()?.list_nodes(req).await
    }

    async fn get_node(
        &self,
        req: Request<GetNodeRequest>,
    ) -> Result<Response<GetNodeResponse>, Status> {
        self.manager()?.get_node(req).await
    }

    async fn update_node(
        &self,
        req: Request<UpdateNodeRequest>,
    ) -> Result<Response<UpdateNodeResponse>, Status> {
        self.manager()?.update_node(req).await
    }

    async fn remove_node(
        &self,
        req: Request<RemoveNodeRequest>,
    ) -> Result<Response<RemoveNodeResponse>, Status> {
        self.manager()?.remove_node(req).await
    }

    async fn join_token(
        &self,
        req: Request<JoinTokenRequest>,
    ) -> Result<Response<JoinTokenResponse>, Status> {
        self.manager()?.join_token(req).await
    }

    async fn leave(&self, req: Request<LeaveRequest>) -> Result<Response<LeaveResponse>, Status> {
        let force = req.into_inner().force;
        if self.role == Role::Manager && !force {
            return Err(Status::failed_precondition(
                "this node is a manager: leaving may cost the cluster its quorum. Demote it first (`swarmr node demote <node>`), or use `swarmr leave --force`",
            ));
        }
        self.leaving.store(true, Ordering::SeqCst);
        if let Err(status) = self.announce_leave().await {
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
        Ok(Response::new(LeaveResponse {}))
    }
}
