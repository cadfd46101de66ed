//! The client side of Raft between managers: one lazily connected tonic channel per peer,
//! openraft's messages bincode-encoded in `RaftBytes`. Also remembers when each peer last
//! answered, which `node ls` turns into Reachable/Unreachable.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::BasicNode;
use swarmr_proto::raft_client::RaftClient;
use swarmr_proto::RaftBytes;
use tonic::transport::Channel;

use super::{decode, encode, NodeId, TypeConfig};
use crate::ca::{NodeTls, MANAGER_NAME};

/// When each peer last answered a Raft RPC.
#[derive(Clone, Default)]
pub struct PeerLiveness {
    last_ok: Arc<Mutex<HashMap<NodeId, Instant>>>,
}

impl PeerLiveness {
    fn record(&self, peer: NodeId) {
        if let Ok(mut map) = self.last_ok.lock() {
            map.insert(peer, Instant::now());
        }
    }

    /// True if `peer` answered within `window`.
    pub fn is_reachable(&self, peer: NodeId, window: Duration) -> bool {
        self.last_ok
            .lock()
            .ok()
            .and_then(|map| map.get(&peer).map(|t| t.elapsed() < window))
            .unwrap_or(false)
    }
}

#[derive(Clone)]
pub struct Network {
    pub liveness: PeerLiveness,
    tls: NodeTls,
}

impl Network {
    pub fn new(tls: NodeTls) -> Self {
        Self {
            liveness: PeerLiveness::default(),
            tls,
        }
    }
}

pub struct PeerClient {
    target: NodeId,
    addr: String,
    client: Option<RaftClient<Channel>>,
    network: Network,
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = PeerClient;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> PeerClient {
        PeerClient {
            target,
            addr: node.addr.clone(),
            client: None,
            network: self.clone(),
        }
    }
}

type RpcErr<E> = RPCError<NodeId, BasicNode, E>;
type RaftReply = Result<tonic::Response<RaftBytes>, tonic::Status>;
/// One of the generated client's unary calls.
type RaftMethod = fn(
    RaftClient<Channel>,
    tonic::Request<RaftBytes>,
) -> futures::future::BoxFuture<'static, RaftReply>;

impl PeerClient {
    fn client<E: std::error::Error>(&mut self) -> Result<RaftClient<Channel>, RpcErr<E>> {
        if self.client.is_none() {
            let channel = (self.network.tls)
                .channel(&self.addr, MANAGER_NAME)
                .map_err(|e| RPCError::Unreachable(Unreachable::new(&e)))?;
            self.client = Some(
                RaftClient::new(channel)
                    .max_decoding_message_size(swarmr_proto::limits::MAX_RAFT_MESSAGE_BYTES)
                    .max_encoding_message_size(swarmr_proto::limits::MAX_RAFT_MESSAGE_BYTES),
            );
        }
        self.client.clone().ok_or_else(|| {
            RPCError::Unreachable(Unreachable::new(&std::io::Error::other("no client")))
        })
    }

    /// Sends one request and decodes openraft's `Result` from the reply.
    async fn call<Req, Resp, E>(
        &mut self,
        method: RaftMethod,
        req: &Req,
        ttl: Duration,
    ) -> Result<Resp, RpcErr<E>>
    where
        Req: serde::Serialize,
        Resp: serde::de::DeserializeOwned,
        E: std::error::Error + serde::de::DeserializeOwned,
    {
        let data = encode(req).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        let mut request = tonic::Request::new(RaftBytes { data });
        request.set_timeout(ttl);
        let client = self.client()?;
        let reply = match method(client, request).await {
            Ok(reply) => reply.into_inner(),
            Err(status) => {
                // Reconnect next time: the peer may have restarted on another connection.
                self.client = None;
                return Err(RPCError::Unreachable(Unreachable::new(&status)));
            }
        };
        self.network.liveness.record(self.target);
        let result: Result<Resp, E> =
            decode(&reply.data).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        result.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

impl RaftNetwork<TypeConfig> for PeerClient {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RpcErr<RaftError<NodeId>>> {
        self.call(
            |mut c, r| Box::pin(async move { c.append_entries(r).await }),
            &rpc,
            option.hard_ttl(),
        )
        .await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<InstallSnapshotResponse<NodeId>, RpcErr<RaftError<NodeId, InstallSnapshotError>>>
    {
        self.call(
            |mut c, r| Box::pin(async move { c.install_snapshot(r).await }),
            &rpc,
            option.hard_ttl(),
        )
        .await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RpcErr<RaftError<NodeId>>> {
        self.call(
            |mut c, r| Box::pin(async move { c.vote(r).await }),
            &rpc,
            option.hard_ttl(),
        )
        .await
    }
}
