//! Membership changes that keep a quorum: a manager may leave the Raft voters (demote,
//! leave) only if the voters left behind still have a reachable majority. Otherwise the
//! change itself could not commit, or would commit and freeze every later write (three
//! managers, one down, demote a healthy one: {leader, down} has no majority). swarmkit
//! refuses the same ("this would result in a loss of quorum").

use std::collections::BTreeSet;

use tonic::Status;

use crate::core::Core;
use crate::raft::NodeId;

/// Whether removing `removed` from `voters` leaves a majority of the remaining voters
/// among `reachable`. `Err` says how many are reachable and how many are needed.
pub fn check_removal(
    voters: &BTreeSet<NodeId>,
    reachable: &BTreeSet<NodeId>,
    removed: NodeId,
) -> Result<(), (usize, usize)> {
    if !voters.contains(&removed) {
        return Ok(());
    }
    let remaining: BTreeSet<NodeId> = voters.iter().copied().filter(|v| *v != removed).collect();
    let needed = remaining.len() / 2 + 1;
    let up = remaining.intersection(reachable).count();
    if up >= needed {
        Ok(())
    } else {
        Err((up, needed))
    }
}

/// Refuses, with what to do, a change that takes `raft_id` out of the voters and would
/// leave no reachable majority. `action` names the command ("demoting node X").
pub async fn refuse_quorum_loss(core: &Core, raft_id: NodeId, action: &str) -> Result<(), Status> {
    let voters = core.voters();
    let reachable = core.reachable_voters().await;
    check_removal(&voters, &reachable, raft_id).map_err(|(up, needed)| {
        Status::failed_precondition(format!(
            "{action} would lose the managers' quorum: {up} of the other managers are reachable and {needed} are needed; bring the unreachable managers back (or demote them) first"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removal_needs_a_reachable_majority_of_the_rest() {
        let set = |ids: &[u64]| ids.iter().copied().collect::<BTreeSet<_>>();
        // (voters, reachable, removed, allowed)
        let table = [
            (set(&[1, 2, 3]), set(&[1, 2, 3]), 3, true),
            // One down: removing it is fine, removing a healthy one is not.
            (set(&[1, 2, 3]), set(&[1, 2]), 3, true),
            (set(&[1, 2, 3]), set(&[1, 2]), 2, false),
            (set(&[1, 2]), set(&[1, 2]), 2, true),
            (set(&[1, 2]), set(&[1]), 1, false),
            (set(&[1, 2, 3, 4, 5]), set(&[1, 2, 3]), 3, false),
            (set(&[1, 2, 3, 4, 5]), set(&[1, 2, 3]), 5, true),
            // Not a voter: nothing changes.
            (set(&[1, 2, 3]), set(&[1]), 9, true),
            // Nobody answered (no leader): refused.
            (set(&[1, 2, 3]), set(&[]), 3, false),
        ];
        for (voters, reachable, removed, allowed) in table {
            let got = check_removal(&voters, &reachable, removed);
            assert_eq!(
                got.is_ok(),
                allowed,
                "{voters:?} {reachable:?} -{removed}: {got:?}"
            );
        }
        assert_eq!(check_removal(&set(&[1, 2, 3]), &set(&[1]), 2), Err((1, 2)));
    }
}
