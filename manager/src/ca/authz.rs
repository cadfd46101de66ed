//! Who may call what on a node's gRPC port, decided per request from the client
//! certificate the TLS layer verified against the cluster CA.
//!
//! | service | callers |
//! | --- | --- |
//! | `Dispatcher/Join` | anyone (the token is the credential) |
//! | `Dispatcher/*` | managers and workers of this cluster that still exist |
//! | `Raft/*` | managers that still hold the role |
//! | `Control/*` | managers that still hold the role, client certificates on record |
//! | `Logs/*` | managers (a worker's port serves it; it has no store to check) |
//!
//! "Still exists" and "still holds the role" are asked of the store on every call, so a
//! node removed with `node rm`, a demoted manager, a manager left out by
//! `--force-new-cluster` and a revoked client certificate are refused from then on, even
//! on a connection opened before the change. Only the
//! leader's store may say "removed": a follower may not have applied a fresh join yet, so
//! there an unknown node is sent to the leader instead (and is refused meanwhile).

use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use tonic::codegen::http;
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
use tonic::Status;

use super::issue::CertRole;
use super::peer::PeerIdentity;

/// What this node's store says, now, about the caller a certificate names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Standing {
    /// No store to ask (a worker's port, a manager that holds no cluster yet).
    Unknown,
    /// A node of the cluster, or a client certificate on record. `manages` when it may
    /// use manager services now: a node that holds or is being given the manager role
    /// (its certificate's role may be older than a demotion or `--force-new-cluster`),
    /// a client certificate that is not revoked.
    Member { manages: bool },
    /// Absent from the leader's store: the node was removed, or the client certificate
    /// was never recorded.
    Removed,
    /// A client certificate revoked by `ca revoke`.
    Revoked,
    /// Absent from a follower's store, which may lag behind a fresh join: ask the
    /// leader (at this address, if known).
    NotYetKnown(Option<String>),
}

/// Looks a caller up, for [`authorize`].
pub type StandingOf = Arc<dyn Fn(&PeerIdentity) -> Standing + Send + Sync>;

/// gRPC metadata key carrying the leader's address on a redirect (as the dispatcher's).
const LEADER_METADATA: &str = "x-swarmr-leader";

/// The decision for one call: `path` is the gRPC path (`/swarmr.Raft/Vote`).
pub fn authorize(
    path: &str,
    peer: Option<&PeerIdentity>,
    cluster_id: &str,
    exists: &dyn Fn(&PeerIdentity) -> Standing,
) -> Result<(), Status> {
    if path == "/swarmr.Dispatcher/Join" {
        return Ok(());
    }
    let service = path
        .strip_prefix("/swarmr.")
        .and_then(|rest| rest.split('/').next())
        .unwrap_or("");
    let Some(peer) = peer else {
        return Err(Status::unauthenticated(
            "a client certificate issued by this cluster is required (nodes get one when they join; a remote CLI needs `swarmr ca issue-client`)",
        ));
    };
    if peer.cluster_id != cluster_id {
        return Err(Status::permission_denied(
            "the certificate belongs to another cluster",
        ));
    }
    let allowed: &[CertRole] = match service {
        "Dispatcher" => &[CertRole::Manager, CertRole::Worker],
        "Raft" | "Logs" => &[CertRole::Manager],
        "Control" => &[CertRole::Manager, CertRole::Client],
        _ => &[],
    };
    if !allowed.contains(&peer.role) {
        return Err(Status::permission_denied(format!(
            "a {} certificate may not call {path}",
            peer.role.ou()
        )));
    }
    let manager_service = matches!(service, "Raft" | "Logs" | "Control");
    match exists(peer) {
        Standing::Unknown => Ok(()),
        Standing::Member { manages } if manages || !manager_service => Ok(()),
        Standing::Member { .. } => Err(Status::permission_denied(format!(
            "node {} is no longer a manager (demoted, or left out by --force-new-cluster): its manager certificate may not call {path}; the node renews a worker certificate from its session",
            peer.id
        ))),
        Standing::Removed if peer.role == CertRole::Client => Err(Status::permission_denied(format!(
            "client certificate {} is not on this cluster's record: get a new one with `swarmr ca issue-client` on a manager",
            peer.id
        ))),
        Standing::Removed => Err(Status::permission_denied(format!(
            "node {} is not part of the cluster (it was removed): run `swarmr leave --force` on it and join again",
            peer.id
        ))),
        Standing::Revoked => Err(Status::permission_denied(format!(
            "client certificate {} was revoked: get a new one with `swarmr ca issue-client` on a manager",
            peer.id
        ))),
        Standing::NotYetKnown(leader) => Err(not_yet_known(&peer.id, leader)),
    }
}

/// A follower's answer for a node it has not heard of: never "removed" (only the leader
/// says that); a redirect to the leader when it is known.
fn not_yet_known(node_id: &str, leader: Option<String>) -> Status {
    let Some(leader) = leader else {
        return Status::unavailable(format!(
            "node {node_id} is not known to this manager yet and no leader is elected; retry"
        ));
    };
    let mut status = Status::failed_precondition(format!(
        "node {node_id} is not known to this manager yet; the leader is at {leader}"
    ));
    if let Ok(value) = leader.parse() {
        status.metadata_mut().insert(LEADER_METADATA, value);
    }
    status
}

/// The identity in a request's verified client certificate, if it sent one.
pub fn peer_of<B>(req: &http::Request<B>) -> Option<PeerIdentity> {
    let certs = req
        .extensions()
        .get::<TlsConnectInfo<TcpConnectInfo>>()?
        .peer_certs()?;
    PeerIdentity::from_der(certs.first()?).ok()
}

/// A tower layer applying [`authorize`] to every request of a tonic server.
#[derive(Clone)]
pub struct AuthzLayer {
    cluster_id: Arc<str>,
    exists: StandingOf,
}

impl AuthzLayer {
    pub fn new(cluster_id: &str, exists: StandingOf) -> Self {
        Self {
            cluster_id: cluster_id.into(),
            exists,
        }
    }
}

impl<S> tower::Layer<S> for AuthzLayer {
    type Service = Authz<S>;
    fn layer(&self, inner: S) -> Authz<S> {
        Authz {
            inner,
            layer: self.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Authz<S> {
    inner: S,
    layer: AuthzLayer,
}

impl<S, B> tower::Service<http::Request<B>> for Authz<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        let peer = peer_of(&req);
        let decision = authorize(
            req.uri().path(),
            peer.as_ref(),
            &self.layer.cluster_id,
            &*self.layer.exists,
        );
        match decision {
            Ok(()) => {
                // Handlers read the caller from here instead of parsing the certificate again.
                if let Some(peer) = peer {
                    req.extensions_mut().insert(peer);
                }
                Box::pin(self.inner.call(req))
            }
            Err(status) => {
                tracing::debug!(path = req.uri().path(), peer = ?peer.map(|p| p.id), %status, "call refused");
                Box::pin(std::future::ready(Ok(status.into_http())))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::SystemTime;

    fn peer(role: CertRole, id: &str) -> PeerIdentity {
        PeerIdentity {
            id: id.into(),
            role,
            cluster_id: "c1".into(),
            not_before: SystemTime::now(),
            not_after: SystemTime::now(),
        }
    }

    #[test]
    fn each_role_calls_only_what_its_job_needs() {
        let known = |p: &PeerIdentity| match p.id.as_str() {
            "gone" => Standing::Removed,
            "new" => Standing::NotYetKnown(Some("192.0.2.1:2377".into())),
            "demoted" | "forced-out" => Standing::Member { manages: false },
            "revoked" => Standing::Revoked,
            _ => Standing::Member { manages: true },
        };
        let check = |path: &str, p: Option<PeerIdentity>| {
            authorize(path, p.as_ref(), "c1", &known).map_err(|s| s.code())
        };
        let worker = || Some(peer(CertRole::Worker, "w"));
        let manager = || Some(peer(CertRole::Manager, "m"));
        let client = || Some(peer(CertRole::Client, "cli"));
        use tonic::Code::{PermissionDenied, Unauthenticated};
        let table = [
            ("/swarmr.Dispatcher/Join", None, Ok(())),
            ("/swarmr.Dispatcher/Session", None, Err(Unauthenticated)),
            ("/swarmr.Dispatcher/Session", worker(), Ok(())),
            ("/swarmr.Raft/Vote", worker(), Err(PermissionDenied)),
            ("/swarmr.Raft/Vote", manager(), Ok(())),
            ("/swarmr.Control/ListNodes", worker(), Err(PermissionDenied)),
            ("/swarmr.Control/ListNodes", client(), Ok(())),
            ("/swarmr.Control/ListNodes", manager(), Ok(())),
            ("/swarmr.Raft/Vote", client(), Err(PermissionDenied)),
            ("/swarmr.Logs/TaskLogs", worker(), Err(PermissionDenied)),
            ("/swarmr.Logs/TaskLogs", manager(), Ok(())),
            ("/swarmr.Other/X", manager(), Err(PermissionDenied)),
            (
                "/swarmr.Dispatcher/Session",
                Some(peer(CertRole::Worker, "gone")),
                Err(PermissionDenied),
            ),
            // A manager certificate outlives a demotion: the store's role decides.
            (
                "/swarmr.Raft/Vote",
                Some(peer(CertRole::Manager, "forced-out")),
                Err(PermissionDenied),
            ),
            (
                "/swarmr.Control/ListNodes",
                Some(peer(CertRole::Manager, "demoted")),
                Err(PermissionDenied),
            ),
            (
                "/swarmr.Dispatcher/Session",
                Some(peer(CertRole::Manager, "demoted")),
                Ok(()),
            ),
            (
                "/swarmr.Control/ListNodes",
                Some(peer(CertRole::Client, "revoked")),
                Err(PermissionDenied),
            ),
            (
                "/swarmr.Control/ListNodes",
                Some(peer(CertRole::Client, "gone")),
                Err(PermissionDenied),
            ),
        ];
        for (path, p, want) in table {
            assert_eq!(check(path, p.clone()), want, "{path} {p:?}");
        }
        // A follower that has not applied a join yet never says "removed".
        let fresh = authorize(
            "/swarmr.Dispatcher/Session",
            Some(&peer(CertRole::Worker, "new")),
            "c1",
            &known,
        )
        .expect_err("refused until the follower knows it");
        assert!(
            !fresh.message().contains("not part of the cluster"),
            "{fresh:?}"
        );
        assert_eq!(
            fresh
                .metadata()
                .get(LEADER_METADATA)
                .and_then(|v| v.to_str().ok()),
            Some("192.0.2.1:2377")
        );
        let mut foreign = peer(CertRole::Manager, "m");
        foreign.cluster_id = "other".into();
        assert!(authorize("/swarmr.Raft/Vote", Some(&foreign), "c1", &known).is_err());
    }
}
