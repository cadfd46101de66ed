//! The manager's shared handle: Raft, the store, and the one way to write (`propose`), which
//! forwards to the leader when this manager is a follower and waits out elections.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use openraft::error::{ClientWriteError, RaftError};
use openraft::{BasicNode, ChangeMembers, ServerState};
use prost::Message;
use swarmr_proto::convert::now_millis;
use swarmr_proto::limits::MAX_RAFT_MESSAGE_BYTES;
use swarmr_proto::raft_client::RaftClient;
use swarmr_proto::{store_action, Node, NodeRole, Proposal, ProposalResult, StoreAction};
use tonic::Status;
use tracing::{info, warn};

use crate::ca::{NodeTls, MANAGER_NAME, NODE_NAME};
use crate::entry::{chunks, ENTRY_OVERHEAD, MAX_ENTRY_ACTIONS, MAX_ENTRY_BYTES};
use crate::error::ProposeError;
use crate::raft::network::PeerLiveness;
use crate::raft::{NodeId, Raft, NO_LEADER_WAIT};
use crate::store::{Object, Store};

mod cluster;

#[derive(Clone)]
pub struct Core {
    inner: Arc<Inner>,
    /// A follower's writes go to the leader. The controllers' handle (`leader_only`)
    /// never forwards: a deposed leader's plan, made from its old view, must not land.
    forward: bool,
}

struct Inner {
    /// One membership change at a time: openraft refuses overlapping ones.
    membership: tokio::sync::Mutex<()>,
    /// Channels by (address, server name the peer must present).
    channels: std::sync::Mutex<
        std::collections::HashMap<(String, &'static str), tonic::transport::Channel>,
    >,
    tls: NodeTls,
    node_id: String,
    raft_id: NodeId,
    api_addr: String,
    raft: Raft,
    store: Store,
    liveness: PeerLiveness,
    /// The data key secrets and configs are sealed under, once this manager has it.
    keyring: crate::secrets::Keyring,
}

/// How long a follower waits to see its own forwarded write applied locally.
const READ_YOUR_WRITE_WAIT: Duration = Duration::from_secs(3);

/// How long a membership change (add a learner, add or remove a voter) may take before
/// the caller is told; openraft may still finish it.
pub const MEMBERSHIP_WAIT: Duration = Duration::from_secs(10);

impl Core {
    pub fn new(
        node_id: String,
        raft_id: NodeId,
        api_addr: String,
        raft: Raft,
        store: Store,
        liveness: PeerLiveness,
        tls: NodeTls,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                membership: Default::default(),
                channels: Default::default(),
                node_id,
                raft_id,
                api_addr,
                raft,
                store,
                liveness,
                tls,
                keyring: Default::default(),
            }),
            forward: true,
        }
    }

    /// The same handle for a leader-only loop: its writes fail on a follower instead of
    /// being forwarded to the new leader.
    pub fn leader_only(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            forward: false,
        }
    }

    pub fn node_id(&self) -> &str {
        &self.inner.node_id
    }
    pub fn raft_id(&self) -> NodeId {
        self.inner.raft_id
    }
    pub fn api_addr(&self) -> &str {
        &self.inner.api_addr
    }
    pub fn store(&self) -> &Store {
        &self.inner.store
    }
    pub fn raft(&self) -> &Raft {
        &self.inner.raft
    }
    pub fn liveness(&self) -> &PeerLiveness {
        &self.inner.liveness
    }

    pub fn keyring(&self) -> &crate::secrets::Keyring {
        &self.inner.keyring
    }

    pub fn tls(&self) -> &NodeTls {
        &self.inner.tls
    }

    /// A cached channel to another manager.
    pub fn channel(&self, addr: &str) -> Result<tonic::transport::Channel, Status> {
        self.cached_channel(addr, MANAGER_NAME)
    }

    /// A cached channel to any node (a worker's Logs).
    pub fn node_channel(&self, addr: &str) -> Result<tonic::transport::Channel, Status> {
        self.cached_channel(addr, NODE_NAME)
    }

    fn cached_channel(
        &self,
        addr: &str,
        name: &'static str,
    ) -> Result<tonic::transport::Channel, Status> {
        let mut channels = self
            .inner
            .channels
            .lock()
            .map_err(|_| Status::internal("channel cache poisoned"))?;
        let key = (addr.to_string(), name);
        if let Some(channel) = channels.get(&key) {
            return Ok(channel.clone());
        }
        let channel = (self.inner.tls)
            .channel(addr, name)
            .map_err(|e| Status::unavailable(format!("bad node address {addr}: {e}")))?;
        channels.insert(key, channel.clone());
        Ok(channel)
    }

    /// Read-modify-write of one object, retried when it changed under us. `change` returns
    /// false when there is nothing to write.
    pub async fn update<T: Object>(
        &self,
        id: &str,
        mut change: impl FnMut(&mut T) -> bool,
    ) -> Result<(), ProposeError> {
        let mut attempts = 0;
        loop {
            let current: T = self
                .inner
                .store
                .get(id)?
                .ok_or_else(|| ProposeError::Rejected(format!("{} {id} not found", T::KIND)))?;
            let mut updated = current.clone();
            if !change(&mut updated) {
                return Ok(());
            }
            match self
                .propose(vec![update_action(updated, current.version())])
                .await
            {
                Err(ProposeError::Conflict(_)) if attempts < 5 => attempts += 1,
                other => return other.map(|_| ()),
            }
        }
    }

    pub fn is_leader(&self) -> bool {
        let metrics = self.inner.raft.metrics();
        let m = metrics.borrow();
        m.state == ServerState::Leader
    }

    /// Leads and has applied an entry of its own term (the blank entry openraft appends
    /// on election), so its store holds everything earlier leaders committed. Controllers
    /// and sessions act only then: a fresh leader's store may lag its log.
    pub fn is_settled_leader(&self) -> bool {
        let metrics = self.inner.raft.metrics();
        let m = metrics.borrow();
        m.state == ServerState::Leader
            && m.last_applied
                .is_some_and(|applied| applied.leader_id.term == m.current_term)
    }

    /// The leader's Raft id and gRPC address, if one is known.
    pub fn leader(&self) -> Option<(NodeId, String)> {
        let metrics = self.inner.raft.metrics();
        let m = metrics.borrow();
        let id = m.current_leader?;
        let node = m.membership_config.membership().get_node(&id)?;
        Some((id, node.addr.clone()))
    }

    /// Commits `actions` as one Raft entry, from any manager. Returns the entry's index once
    /// this replica has applied it, so the caller reads its own write. A proposal larger
    /// than [`MAX_ENTRY_BYTES`] is refused: no Raft entry is huge.
    pub async fn propose(&self, actions: Vec<StoreAction>) -> Result<u64, ProposeError> {
        let write = self.propose_unmetered(actions);
        crate::observe::METRICS.proposal(write).await
    }

    async fn propose_unmetered(&self, actions: Vec<StoreAction>) -> Result<u64, ProposeError> {
        let proposal = Proposal {
            actions,
            proposed_at: now_millis(),
        };
        let size = proposal.encoded_len();
        if size > MAX_ENTRY_BYTES {
            return Err(ProposeError::TooLarge {
                size,
                max: MAX_ENTRY_BYTES,
            });
        }
        let deadline = Instant::now() + NO_LEADER_WAIT;
        loop {
            // Without a quorum the leader never commits: bound the wait and say why.
            let remaining = deadline.saturating_duration_since(Instant::now());
            let write = self.inner.raft.client_write(proposal.clone());
            let Ok(written) = tokio::time::timeout(remaining, write).await else {
                return Err(ProposeError::NoLeader(NO_LEADER_WAIT));
            };
            match written {
                Ok(resp) => return finish(resp.data),
                Err(RaftError::APIError(ClientWriteError::ForwardToLeader(_))) if !self.forward => {
                    return Err(ProposeError::Deposed);
                }
                Err(RaftError::APIError(ClientWriteError::ForwardToLeader(fwd))) => {
                    if let Some(leader) = fwd.leader_node {
                        if let Some(done) =
                            self.forward_until(&leader.addr, &proposal, deadline).await
                        {
                            return done;
                        }
                    }
                }
                Err(RaftError::APIError(e)) => return Err(ProposeError::Membership(e.to_string())),
                Err(RaftError::Fatal(e)) => return Err(ProposeError::Stopped(e.to_string())),
            }
            if Instant::now() >= deadline {
                return Err(ProposeError::NoLeader(NO_LEADER_WAIT));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Commits `actions` in as many entries as their size needs (each at most
    /// [`MAX_ENTRY_BYTES`] and [`MAX_ENTRY_ACTIONS`]), queued in order and in flight
    /// together (one after another, 10,000 new tasks took a commit round per 1,000). For
    /// controller writes whose actions stand alone: a pass that commits only some of its
    /// chunks is finished by the next pass. Returns the last entry's index, or a failure.
    pub async fn propose_chunked(&self, actions: Vec<StoreAction>) -> Result<u64, ProposeError> {
        let chunks = chunks(actions, MAX_ENTRY_BYTES - ENTRY_OVERHEAD, MAX_ENTRY_ACTIONS);
        // join_all polls its futures in order, and each hands its entry to Raft on its
        // first poll, so the entries keep the order of the chunks.
        let written =
            futures::future::join_all(chunks.into_iter().map(|chunk| self.propose(chunk))).await;
        written
            .into_iter()
            .try_fold(0, |last, index| index.map(|index| last.max(index)))
    }

    /// Forwards to the leader until `deadline`; `None` means "try again" (the leader
    /// refused before committing, or could not be reached).
    async fn forward_until(
        &self,
        addr: &str,
        proposal: &Proposal,
        deadline: Instant,
    ) -> Option<Result<u64, ProposeError>> {
        // At least a second: a forward that never had the time to arrive is not "unknown".
        let remaining = deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_secs(1));
        let forwarded = tokio::time::timeout(remaining, self.forward(addr, proposal.clone()));
        let result = match forwarded.await {
            Ok(Ok(result)) => result,
            Ok(Err(status)) => {
                warn!(leader = %addr, %status, "forwarding a write to the leader failed; retrying");
                return None;
            }
            Err(_) => return Some(Err(ProposeError::OutcomeUnknown(NO_LEADER_WAIT))),
        };
        let done = finish(result);
        if let Ok(index) = done {
            self.inner
                .store
                .wait_applied(index, READ_YOUR_WRITE_WAIT)
                .await;
        }
        Some(done)
    }

    async fn forward(&self, addr: &str, proposal: Proposal) -> Result<ProposalResult, Status> {
        let reply = self.raft_client(addr)?.forward(proposal).await?;
        reply
            .into_inner()
            .result
            .ok_or_else(|| Status::internal("leader sent no result"))
    }

    /// A Raft client to another manager, with the Raft message size bounds.
    pub fn raft_client(&self, addr: &str) -> Result<RaftClient<tonic::transport::Channel>, Status> {
        Ok(RaftClient::new(self.channel(addr)?)
            .max_decoding_message_size(MAX_RAFT_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_RAFT_MESSAGE_BYTES))
    }

    /// Serves a write forwarded by a follower: only the leader commits it.
    pub async fn write_as_leader(&self, proposal: Proposal) -> Result<ProposalResult, Status> {
        match self.inner.raft.client_write(proposal).await {
            Ok(resp) => Ok(resp.data),
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(_))) => {
                Err(Status::unavailable("not the leader any more"))
            }
            Err(e) => Err(Status::unavailable(e.to_string())),
        }
    }

    /// Makes a node that holds the manager role a Raft voter: learner first (it catches
    /// up, by snapshot if the log was purged), then voter. Idempotent.
    pub async fn add_manager(&self, node_id: &str) -> Result<(), Status> {
        if !self.is_leader() {
            let (_, addr) = self
                .leader()
                .ok_or_else(|| Status::unavailable("no leader elected yet; retry"))?;
            let mut client = self.raft_client(&addr)?;
            client
                .add_manager(swarmr_proto::AddManagerRequest {
                    node_id: node_id.to_string(),
                })
                .await?;
            return Ok(());
        }
        let node: Node = self
            .inner
            .store
            .get(node_id)?
            .ok_or_else(|| Status::not_found(format!("node {node_id} not found")))?;
        if node.spec.as_ref().map(|s| s.desired_role()) != Some(NodeRole::Manager) {
            return Err(Status::permission_denied(format!(
                "node {node_id} does not hold the manager role"
            )));
        }
        let member = BasicNode {
            addr: node.api_addr.clone(),
        };
        info!(
            node.id = node_id,
            raft.id = node.raft_id,
            "adding manager to Raft"
        );
        let learner = self.inner.raft.add_learner(node.raft_id, member, true);
        tokio::time::timeout(MEMBERSHIP_WAIT, learner)
            .await
            .map_err(|_| membership_timeout("add learner"))?
            .map_err(|e| Status::unavailable(format!("add learner: {e}")))?;
        let voters = BTreeSet::from([node.raft_id]);
        let change = self
            .inner
            .raft
            .change_membership(ChangeMembers::AddVoterIds(voters), false);
        tokio::time::timeout(MEMBERSHIP_WAIT, change)
            .await
            .map_err(|_| membership_timeout("add voter"))?
            .map_err(|e| Status::unavailable(format!("add voter: {e}")))?;
        let mut updated = node.clone();
        updated.role = NodeRole::Manager as i32;
        self.propose(vec![update_action(updated, node.version())])
            .await?;
        Ok(())
    }

    /// Takes a manager out of the Raft membership entirely. Idempotent.
    pub async fn remove_voter(&self, raft_id: NodeId) -> Result<(), ProposeError> {
        let members = BTreeSet::from([raft_id]);
        let _one_at_a_time = self.inner.membership.lock().await;
        let change = self
            .inner
            .raft
            .change_membership(ChangeMembers::RemoveVoters(members), false);
        match tokio::time::timeout(MEMBERSHIP_WAIT, change).await {
            Err(_) => Err(ProposeError::Membership(format!(
                "removing the voter took longer than {MEMBERSHIP_WAIT:?} (no quorum?); it may still complete"
            ))),
            Ok(Ok(_)) => Ok(()),
            Ok(Err(RaftError::APIError(e))) => Err(ProposeError::Membership(e.to_string())),
            Ok(Err(RaftError::Fatal(e))) => Err(ProposeError::Stopped(e.to_string())),
        }
    }

    /// Raft ids of the current voters.
    pub fn voters(&self) -> BTreeSet<NodeId> {
        let metrics = self.inner.raft.metrics();
        let m = metrics.borrow();
        m.membership_config.membership().voter_ids().collect()
    }
}

fn membership_timeout(step: &str) -> Status {
    Status::unavailable(format!(
        "{step}: no answer within {MEMBERSHIP_WAIT:?}; the managers may have lost quorum (check `swarmr node ls`); the change may still complete"
    ))
}

fn finish(result: ProposalResult) -> Result<u64, ProposeError> {
    if result.error.is_empty() {
        return Ok(result.index);
    }
    // An unknown kind (a newer manager's) reads as invalid: nothing retries it.
    Err(ProposeError::refused(result.refusal(), result.error))
}

pub fn create_action<T: Object>(obj: T) -> StoreAction {
    StoreAction {
        kind: store_action::Kind::Create as i32,
        expected_version: 0,
        target: Some(obj.into_target()),
    }
}

pub fn update_action<T: Object>(obj: T, expected_version: u64) -> StoreAction {
    StoreAction {
        kind: store_action::Kind::Update as i32,
        expected_version,
        target: Some(obj.into_target()),
    }
}

pub fn delete_action<T: Object>(obj: T) -> StoreAction {
    let version = obj.version();
    StoreAction {
        kind: store_action::Kind::Delete as i32,
        expected_version: version,
        target: Some(obj.into_target()),
    }
}
