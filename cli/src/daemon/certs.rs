//! The node's certificate in its data dir (`ca.crt`, `node.crt`, `node.key` at 0600), and
//! keeping it fresh: renewed half-way through its life, and re-issued when the node's role
//! changes, through the `RenewCertificate` call its current certificate authenticates.

use std::path::Path;
use std::time::{Duration, SystemTime};

use anyhow::{bail, Context};
use swarmr_manager::ca::{self, CertRole, NodeTls, MANAGER_NAME};
use swarmr_proto::dispatcher_client::DispatcherClient;
use swarmr_proto::{RenewCertificateRequest, SessionMessage};
use tokio::sync::watch;
use tracing::{info, warn};

use super::keypair;
use swarmr_proto::NodeRole;

pub const CA_CERT: &str = "ca.crt";
pub const CA_KEY: &str = "ca.key";
const NODE_CERT: &str = "node.crt";
const NODE_KEY: &str = "node.key";
/// Everything here that `leave` removes.
pub const FILES: [&str; 6] = [
    CA_CERT,
    CA_KEY,
    NODE_CERT,
    NODE_KEY,
    keypair::STAGED_KEY,
    keypair::STAGED_CERT,
];

const RENEW_TIMEOUT: Duration = Duration::from_secs(5);
/// Between failed renewal rounds.
const RETRY: Duration = Duration::from_secs(2);

/// Written to a temporary file (created with `mode`), fsynced and renamed, so a crash never
/// leaves half a file and a key is never readable by others, even for a moment. The rename
/// is made durable by the caller's directory fsync ([`keypair::sync_dir`]).
pub fn write_file(path: &Path, content: &str, mode: u32) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .with_context(|| format!("write {}", tmp.display()))?;
    file.write_all(content.as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("write {}", path.display()))
}

/// Stores the CA certificate and the node's certificate and key.
pub fn save(data_dir: &Path, ca_pem: &str, cert_pem: &str, key_pem: &str) -> anyhow::Result<()> {
    write_file(&data_dir.join(CA_CERT), ca_pem, 0o644)?;
    save_node(data_dir, cert_pem, key_pem)
}

/// The key and certificate swapped in as one pair (see `keypair`).
fn save_node(data_dir: &Path, cert_pem: &str, key_pem: &str) -> anyhow::Result<()> {
    keypair::swap(data_dir, (NODE_KEY, NODE_CERT), key_pem, cert_pem)
}

/// The node's TLS identity from its data dir; refuses an expired certificate with a
/// message that says what to do.
pub fn load(data_dir: &Path) -> anyhow::Result<NodeTls> {
    keypair::recover(data_dir, (NODE_KEY, NODE_CERT))?;
    let read = |name: &str| {
        let path = data_dir.join(name);
        std::fs::read_to_string(&path).with_context(|| {
            format!(
                "read {}: this data dir holds no node certificate; remove it and join the cluster again",
                path.display()
            )
        })
    };
    let tls = NodeTls::new(&read(CA_CERT)?, &read(NODE_CERT)?, &read(NODE_KEY)?)
        .with_context(|| format!("load the node certificate in {}", data_dir.display()))?;
    let expiry = tls.identity().not_after;
    if expiry <= SystemTime::now() {
        bail!(
            "this node's certificate expired at {} (it was not renewed in time, e.g. the node was stopped too long): run `swarmr leave --force` on it, then join the cluster again",
            humantime::format_rfc3339_seconds(expiry)
        );
    }
    Ok(tls)
}

/// Asks the managers, in turn, for a new certificate; saves and uses the first one.
pub async fn renew(tls: &NodeTls, data_dir: &Path, managers: &[String]) -> anyhow::Result<()> {
    let (key_pem, csr_pem) = ca::new_key_and_csr()?;
    let mut last = anyhow::anyhow!("no manager address is known");
    for addr in managers {
        let channel = tls.channel(addr, MANAGER_NAME)?;
        let request = RenewCertificateRequest {
            csr_pem: csr_pem.clone(),
        };
        let mut client = DispatcherClient::new(channel)
            .max_decoding_message_size(swarmr_proto::limits::MAX_MESSAGE_BYTES)
            .max_encoding_message_size(swarmr_proto::limits::MAX_MESSAGE_BYTES);
        let call = client.renew_certificate(request);
        let cert_pem = match tokio::time::timeout(RENEW_TIMEOUT, call).await {
            Ok(Ok(reply)) => reply.into_inner().cert_pem,
            Ok(Err(status)) => {
                last = anyhow::anyhow!("{addr}: {}", status.message());
                continue;
            }
            Err(_) => {
                last = anyhow::anyhow!("{addr} did not answer");
                continue;
            }
        };
        tls.replace(&cert_pem, &key_pem)?;
        save_node(data_dir, &cert_pem, &key_pem)?;
        let identity = tls.identity();
        info!(
            role = identity.role.ou(),
            expires = %humantime::format_rfc3339_seconds(identity.not_after),
            "node certificate renewed"
        );
        return Ok(());
    }
    Err(last.context("renew the node certificate"))
}

fn cert_role(role: NodeRole) -> CertRole {
    match role {
        NodeRole::Manager => CertRole::Manager,
        NodeRole::Worker => CertRole::Worker,
    }
}

/// Renews the certificate when half its life is gone, or when it names another role than
/// the one this run holds (after promote or demote), until `halt`.
pub async fn keep_fresh(
    tls: NodeTls,
    data_dir: std::path::PathBuf,
    role: NodeRole,
    known_managers: Vec<String>,
    session: watch::Receiver<Option<SessionMessage>>,
    mut halt: watch::Receiver<bool>,
) {
    loop {
        let identity = tls.identity();
        let due = identity.renew_at() <= SystemTime::now() || identity.role != cert_role(role);
        let pause = if due {
            let managers = session
                .borrow()
                .as_ref()
                .map(|m| m.managers.iter().map(|p| p.api_addr.clone()).collect())
                .filter(|m: &Vec<String>| !m.is_empty())
                .unwrap_or_else(|| known_managers.clone());
            match renew(&tls, &data_dir, &managers).await {
                Ok(()) => continue,
                Err(e) => {
                    warn!(error = %format!("{e:#}"), "certificate renewal failed; retrying");
                    RETRY
                }
            }
        } else {
            let left = identity
                .renew_at()
                .duration_since(SystemTime::now())
                .unwrap_or_default();
            // Wake up now and then anyway: the clock may jump.
            left.min(Duration::from_secs(3600))
        };
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            _ = halt.wait_for(|h| *h) => return,
        }
    }
}
