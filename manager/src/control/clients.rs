//! Client certificates for remote CLI access: issued on a manager, kept on record in the
//! cluster object, listed and revoked there. A client certificate is accepted only while
//! its record exists and is not revoked (see [`crate::standing`]).

use swarmr_proto::convert::now_millis;
use swarmr_proto::{ClientCertificate, Cluster};
use tonic::Status;

use crate::ca::{CertRole, PeerIdentity};
use crate::core::Core;

/// Records kept at most; expired ones are dropped first. Each issue is one small record.
pub const MAX_CLIENT_CERTIFICATES: usize = 1000;

/// Signs `csr_pem` as a client certificate and records it, in one Raft entry. Only an
/// operator of a manager (its local socket) or a node may ask: a client certificate
/// cannot mint more.
pub async fn issue(
    core: &Core,
    caller: Option<&PeerIdentity>,
    csr_pem: &str,
) -> Result<(String, String), Status> {
    if caller.is_some_and(|p| p.role == CertRole::Client) {
        return Err(Status::permission_denied(
            "a client certificate may not issue client certificates: run `swarmr ca issue-client` on a manager",
        ));
    }
    let cluster = core.cluster()?;
    let id = format!("client-{}", crate::ca::new_id());
    let cert_pem = crate::ca::issue_for_cluster(&cluster, csr_pem, &id, CertRole::Client)
        .map_err(|e| Status::invalid_argument(format!("issue a client certificate: {e}")))?;
    let now = now_millis();
    let record = ClientCertificate {
        id: id.clone(),
        issued_at: now,
        not_after: now.saturating_add(lifetime_millis(&cluster)),
        revoked_at: 0,
    };
    let mut full = false;
    core.update::<Cluster>(&cluster.id, |c| {
        c.client_certificates.retain(|r| r.not_after > now);
        full = c.client_certificates.len() >= MAX_CLIENT_CERTIFICATES;
        if full {
            return false;
        }
        c.client_certificates.push(record.clone());
        true
    })
    .await?;
    if full {
        return Err(Status::resource_exhausted(format!(
            "{MAX_CLIENT_CERTIFICATES} client certificates are valid already: revoke unused ones (`swarmr ca ls`, `swarmr ca revoke ID`) first"
        )));
    }
    tracing::info!(client.id = %id, "client certificate issued");
    Ok((cert_pem, cluster.ca_cert_pem))
}

fn lifetime_millis(cluster: &Cluster) -> i64 {
    i64::try_from(crate::ca::cert_lifetime(cluster).as_millis()).unwrap_or(i64::MAX)
}

/// The client certificates on record that have not expired.
pub fn list(core: &Core) -> Result<Vec<ClientCertificate>, Status> {
    let now = now_millis();
    let mut records = core.cluster()?.client_certificates;
    records.retain(|r| r.not_after > now);
    Ok(records)
}

/// Marks a client certificate revoked: every call with it is refused from the moment
/// this entry applies, on every manager.
pub async fn revoke(core: &Core, id: &str) -> Result<(), Status> {
    let cluster = core.cluster()?;
    if !cluster.client_certificates.iter().any(|r| r.id == id) {
        return Err(Status::not_found(format!(
            "no client certificate {id}: `swarmr ca ls` lists them"
        )));
    }
    let now = now_millis();
    core.update::<Cluster>(&cluster.id, |c| {
        let Some(record) = c.client_certificates.iter_mut().find(|r| r.id == id) else {
            return false;
        };
        if record.revoked_at != 0 {
            return false;
        }
        record.revoked_at = now;
        true
    })
    .await?;
    tracing::info!(client.id = %id, "client certificate revoked");
    Ok(())
}
