//! A manager without the data key (just joined, promoted, or its key file replaced) asks
//! the other managers for it over the Raft service (mutual TLS; only manager certificates
//! of nodes still in the cluster may call it), then keeps it wrapped under its own key file.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use swarmr_proto::DataKeyRequest;
use tonic::{Response, Status};
use tracing::{info, warn};

use super::keyfile::KeyStore;
use super::KEY_LEN;
use crate::core::Core;

const RETRY: Duration = Duration::from_secs(1);

/// Until this manager holds the data key, asks the leader (then every other manager)
/// once a second. Returns at once when the key is already here.
pub async fn keep_data_key(core: Core, keys: Arc<KeyStore>, shutdown: impl Future<Output = ()>) {
    tokio::pin!(shutdown);
    let mut attempts: u64 = 0;
    while !core.keyring().has_key() {
        match fetch_once(&core).await {
            Ok((raw, from)) => {
                if let Err(e) = keys.save(&raw) {
                    warn!(error = %e, key_file = %keys.kek_path().display(), "could not store the data key; it is kept in memory only");
                }
                core.keyring().set(raw);
                info!(manager = %from, "received the cluster's data key");
                return;
            }
            Err(reason) => {
                if attempts.is_multiple_of(30) {
                    warn!(%reason, "no data key yet: this manager cannot create or deliver secrets and configs until another manager hands it over");
                }
                attempts += 1;
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(RETRY) => {}
            _ = &mut shutdown => return,
        }
    }
}

async fn fetch_once(core: &Core) -> Result<([u8; KEY_LEN], String), String> {
    let mut last = "no other manager is known yet".to_string();
    for addr in peer_addrs(core) {
        let reply = match core.raft_client(&addr) {
            Ok(mut client) => client.data_key(DataKeyRequest {}).await,
            Err(status) => Err(status),
        };
        match reply {
            Ok(reply) => match <[u8; KEY_LEN]>::try_from(reply.into_inner().key.as_slice()) {
                Ok(raw) => return Ok((raw, addr)),
                Err(_) => last = format!("{addr} sent a data key of the wrong size"),
            },
            Err(status) => last = format!("{addr}: {}", status.message()),
        }
    }
    Err(last)
}

/// The leader first, then every other member of the Raft membership.
fn peer_addrs(core: &Core) -> Vec<String> {
    let metrics = core.raft().metrics();
    let m = metrics.borrow();
    let mut addrs: Vec<String> = Vec::new();
    let own = core.raft_id();
    let membership = m.membership_config.membership();
    if let Some(node) = m
        .current_leader
        .filter(|id| *id != own)
        .and_then(|id| membership.get_node(&id))
    {
        addrs.push(node.addr.clone());
    }
    for (id, node) in membership.nodes() {
        if *id != own && !addrs.contains(&node.addr) {
            addrs.push(node.addr.clone());
        }
    }
    addrs
}

/// The Raft service's answer to [`keep_data_key`] of another manager.
pub fn serve(core: &Core) -> Result<Response<swarmr_proto::DataKeyResponse>, Status> {
    let raw = core
        .keyring()
        .raw()
        .map_err(|e| Status::unavailable(e.to_string()))?;
    Ok(Response::new(swarmr_proto::DataKeyResponse {
        key: raw.to_vec(),
    }))
}
