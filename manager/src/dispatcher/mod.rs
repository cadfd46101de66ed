//! The dispatcher: the leader's side of every node's session.
//!
//! - `Join` admits a node by token and commits its `Node` object.
//! - `Session` streams to a node its own object, the manager list and its assignments
//!   (`assignments`), first in full and again whenever they change. Messages are built
//!   from one in-memory index per manager (`index`), kept current from the store's change
//!   feed, which wakes only the sessions a change concerns (`feed`). Only the leader
//!   serves sessions; a follower answers with where the leader is, and a session ends when
//!   its manager stops leading, so workers always follow the leader.
//! - `UpdateTaskStatus` records task states; reports arriving together are committed as
//!   one proposal (`report`).
//! - `Heartbeat` pushes the node's deadline forward; `health` marks nodes whose deadline
//!   passed Down.
//!
//! Invariant: a node is Ready only while it holds a live session with the leader.

mod assignments;
mod discovery;
mod feed;
mod files;
mod health;
mod index;
mod ingress;
mod join;
mod report;
mod session;
#[cfg(test)]
mod tests_index;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use swarmr_proto::dispatcher_server::Dispatcher;
use swarmr_proto::*;
use tonic::{Request, Response, Status};

use crate::core::Core;

pub use health::run_health;
pub use join::host_of;

/// Missed heartbeat periods after which a node is Down.
pub const GRACE_PERIODS: u32 = 3;
/// A dead node is Down 1.6-2.5 s after its last heartbeat (Swarm: 5 s periods, about 15 s).
/// At 1,000 nodes that is 1,250 unary calls a second on the leader (measured with the
/// `scheduler_scale` example's IDLE: 0.2-0.4 ms of CPU each, both ends together).
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_millis(800);

#[derive(Clone)]
pub struct DispatcherService {
    core: Core,
    sessions: Sessions,
}

/// Live sessions on this leader: node id → (session id, deadline); the index their
/// messages are built from; the queue their status reports are committed from.
#[derive(Clone, Default)]
pub struct Sessions {
    inner: Arc<Mutex<HashMap<String, (String, Instant)>>>,
    index: feed::Feed,
    reports: report::Reports,
}

impl Sessions {
    /// Sessions open now (the `swarmr_dispatcher_sessions` gauge).
    pub fn len(&self) -> usize {
        self.with(|map| map.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn with<R>(&self, f: impl FnOnce(&mut HashMap<String, (String, Instant)>) -> R) -> R {
        match self.inner.lock() {
            Ok(mut map) => f(&mut map),
            Err(poisoned) => f(&mut poisoned.into_inner()),
        }
    }
}

impl DispatcherService {
    pub fn new(core: Core, sessions: Sessions) -> Self {
        Self { core, sessions }
    }

    /// Refuses unless this manager leads, telling the caller where the leader is.
    fn require_leader(&self) -> Result<(), Status> {
        if self.core.is_settled_leader() {
            return Ok(());
        }
        if self.core.is_leader() {
            return Err(Status::unavailable(
                "this manager was just elected and is still applying the log; retry",
            ));
        }
        let mut status = Status::failed_precondition(match self.core.leader() {
            Some((_, addr)) => format!("not the leader; the leader is at {addr}"),
            None => "not the leader; no leader is elected yet".to_string(),
        });
        if let Some((_, addr)) = self.core.leader() {
            if let Ok(value) = addr.parse() {
                status.metadata_mut().insert(LEADER_METADATA, value);
            }
        }
        Err(status)
    }
}

/// gRPC metadata key carrying the leader's address on a redirect.
pub const LEADER_METADATA: &str = "x-swarmr-leader";

/// The heartbeat period the cluster was configured with.
pub fn heartbeat_period(core: &Core) -> Duration {
    let cluster = core.store().cluster().ok().flatten();
    period_of(cluster.map_or(0, |c| c.heartbeat_period_ms))
}

/// The heartbeat period a cluster object's `heartbeat_period_ms` sets (0: the default).
pub fn period_of(heartbeat_period_ms: u64) -> Duration {
    match heartbeat_period_ms {
        0 => DEFAULT_HEARTBEAT,
        ms => Duration::from_millis(ms),
    }
}

#[tonic::async_trait]
impl Dispatcher for DispatcherService {
    async fn join(&self, req: Request<JoinRequest>) -> Result<Response<JoinResponse>, Status> {
        Ok(Response::new(
            join::admit(&self.core, req.into_inner()).await?,
        ))
    }

    type SessionStream = session::SessionStream;

    async fn session(
        &self,
        req: Request<SessionRequest>,
    ) -> Result<Response<Self::SessionStream>, Status> {
        self.require_leader()?;
        speaks_for(&req, &req.get_ref().node_id)?;
        let stream = session::open(&self.core, &self.sessions, req.into_inner()).await?;
        Ok(Response::new(stream))
    }

    async fn heartbeat(
        &self,
        req: Request<HeartbeatRequest>,
    ) -> Result<Response<HeartbeatResponse>, Status> {
        self.require_leader()?;
        speaks_for(&req, &req.get_ref().node_id)?;
        let req = req.into_inner();
        let period = heartbeat_period(&self.core);
        let now = Instant::now();
        // An expired session stays listed until its Down commits, but is over: the node
        // must open a new one (which marks it Ready again).
        let known = self.sessions.with(|map| match map.get_mut(&req.node_id) {
            Some((session_id, deadline)) if *session_id == req.session_id && *deadline >= now => {
                *deadline = Instant::now() + period * GRACE_PERIODS;
                true
            }
            _ => false,
        });
        if !known {
            return Err(Status::not_found("no such session: open a new one"));
        }
        Ok(Response::new(HeartbeatResponse {
            period_ms: period.as_millis() as u64,
        }))
    }

    async fn update_task_status(
        &self,
        req: Request<UpdateTaskStatusRequest>,
    ) -> Result<Response<UpdateTaskStatusResponse>, Status> {
        self.require_leader()?;
        speaks_for(&req, &req.get_ref().node_id)?;
        let req = req.into_inner();
        self.sessions
            .reports
            .record(&self.core, &req.node_id, req.updates)
            .await?;
        Ok(Response::new(UpdateTaskStatusResponse {}))
    }

    async fn renew_certificate(
        &self,
        req: Request<RenewCertificateRequest>,
    ) -> Result<Response<RenewCertificateResponse>, Status> {
        let cert_pem = join::renew(&self.core, caller(&req), &req.get_ref().csr_pem)?;
        Ok(Response::new(RenewCertificateResponse { cert_pem }))
    }

    async fn leave_cluster(
        &self,
        req: Request<LeaveClusterRequest>,
    ) -> Result<Response<LeaveClusterResponse>, Status> {
        speaks_for(&req, &req.get_ref().node_id)?;
        join::leave(&self.core, &req.into_inner().node_id).await?;
        Ok(Response::new(LeaveClusterResponse {}))
    }
}

/// The certificate the caller presented (the authorization layer verified it).
fn caller<T>(req: &Request<T>) -> Option<crate::ca::PeerIdentity> {
    if let Some(peer) = req.extensions().get::<crate::ca::PeerIdentity>() {
        return Some(peer.clone());
    }
    let certs = req.peer_certs()?;
    crate::ca::PeerIdentity::from_der(certs.first()?).ok()
}

/// A worker speaks only for itself; a manager may act for any node (it forwards a
/// leaving node's request to the leader).
fn speaks_for<T>(req: &Request<T>, node_id: &str) -> Result<(), Status> {
    match caller(req) {
        Some(peer) if peer.role == crate::ca::CertRole::Worker && peer.id != node_id => Err(
            Status::permission_denied(format!("node {} may not act for node {node_id}", peer.id)),
        ),
        _ => Ok(()),
    }
}
