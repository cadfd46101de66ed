//! Linearizable reads: before `ls`, `inspect` or `ps` answers from this manager's replica,
//! the replica has applied everything the leader had committed when the read arrived. The
//! leader confirms it still leads with a quorum round (openraft's read index); a follower
//! asks the leader for that index and waits until it has applied it.

use std::time::Duration;

use openraft::error::{CheckIsLeaderError, RaftError};
use swarmr_proto::ReadIndexRequest;
use tonic::Status;

use crate::core::Core;

/// How long a read waits for a leader's confirmation before it is refused.
pub const READ_WAIT: Duration = Duration::from_secs(5);
/// Between two leadership confirmations that did not reach a quorum.
const RETRY: Duration = Duration::from_millis(50);

impl Core {
    /// Waits until a read from this replica is linearizable, or says why it cannot be.
    pub async fn read_barrier(&self) -> Result<(), Status> {
        let wait = async {
            if self.is_leader() {
                return self.leader_read_index().await.map(|_| ());
            }
            let (_, addr) = self.leader().ok_or_else(no_leader)?;
            let index = self
                .raft_client(&addr)?
                .read_index(ReadIndexRequest {})
                .await
                .map_err(|status| unconfirmed(&addr, &status))?
                .into_inner()
                .index;
            if self.store().wait_applied(index, READ_WAIT).await {
                Ok(())
            } else {
                Err(Status::unavailable(format!(
                    "this manager is behind the leader (it has not applied entry {index} within {READ_WAIT:?}); retry, or ask the leader at {addr}"
                )))
            }
        };
        tokio::time::timeout(READ_WAIT, wait)
            .await
            .map_err(|_| no_leader())?
    }

    /// On the leader: confirms leadership with a quorum, waits for the state machine to
    /// apply up to the read index, and returns that index. openraft gives each round one
    /// heartbeat interval, which a loaded machine can miss: rounds are retried until
    /// [`READ_WAIT`], and only a lost leadership ends them early.
    pub async fn leader_read_index(&self) -> Result<u64, Status> {
        let deadline = tokio::time::Instant::now() + READ_WAIT;
        loop {
            let error = match self.raft().ensure_linearizable().await {
                Ok(read) => return Ok(read.map_or(0, |log_id| log_id.index)),
                Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(_))) => {
                    return Err(Status::unavailable("not the leader any more; retry"));
                }
                Err(e) => e,
            };
            if tokio::time::Instant::now() >= deadline {
                return Err(Status::unavailable(format!(
                    "the leader could not confirm its leadership with a quorum within {READ_WAIT:?} ({error})"
                )));
            }
            tokio::time::sleep(RETRY).await;
        }
    }
}

fn unconfirmed(leader: &str, status: &Status) -> Status {
    Status::unavailable(format!(
        "the leader at {leader} did not confirm this read ({}): this manager may be cut off from it; retry, or read from another manager",
        status.message()
    ))
}

fn no_leader() -> Status {
    Status::unavailable(format!(
        "no manager leader confirmed this read within {READ_WAIT:?}: the cluster may have lost quorum; make sure more than half of the managers run and reach each other, or recover with `swarmr init --force-new-cluster`"
    ))
}
