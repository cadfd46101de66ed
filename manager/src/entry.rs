//! What one Raft entry may hold, and cutting a large write into entries that fit.

use swarmr_proto::StoreAction;

/// The most one Raft entry carries, encoded: every AppendEntries (at most
/// `raft::MAX_PAYLOAD_ENTRIES` of them) stays under the Raft message limit.
pub const MAX_ENTRY_BYTES: usize = 1024 * 1024;
/// The most actions in one entry, so applying one stays short.
pub const MAX_ENTRY_ACTIONS: usize = 1000;
/// Room for the proposal's own fields around its actions.
pub const ENTRY_OVERHEAD: usize = 64;
/// Cuts `actions` into runs of at most `max_bytes` (encoded) and `max_actions` each, in
/// order. An action larger than `max_bytes` gets a run of its own (and is refused).
pub fn chunks(
    actions: Vec<StoreAction>,
    max_bytes: usize,
    max_actions: usize,
) -> Vec<Vec<StoreAction>> {
    let mut out: Vec<Vec<StoreAction>> = Vec::new();
    let mut bytes = 0;
    for action in actions {
        // As a repeated field: tag, length prefix, body.
        let size = prost::encoding::message::encoded_len(1, &action);
        let fits = out
            .last()
            .is_some_and(|run| run.len() < max_actions && bytes + size <= max_bytes);
        if !fits {
            out.push(Vec::new());
            bytes = 0;
        }
        bytes += size;
        if let Some(run) = out.last_mut() {
            run.push(action);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::create_action;
    use prost::Message;
    use swarmr_proto::Proposal;
    use swarmr_proto::Task;

    fn task_action(bytes: usize) -> StoreAction {
        create_action(Task {
            id: "t".repeat(bytes),
            ..Default::default()
        })
    }

    #[test]
    fn large_writes_are_cut_into_bounded_entries_in_order() {
        let actions: Vec<StoreAction> = (0..50).map(|_| task_action(100_000)).collect();
        let runs = chunks(actions.clone(), MAX_ENTRY_BYTES - ENTRY_OVERHEAD, 1000);
        assert!(runs.len() > 1);
        for run in &runs {
            let proposal = Proposal {
                actions: run.clone(),
                proposed_at: i64::MAX,
            };
            assert!(proposal.encoded_len() <= MAX_ENTRY_BYTES);
        }
        assert_eq!(runs.concat(), actions, "nothing lost or reordered");
        let small: Vec<StoreAction> = (0..2500).map(|_| task_action(10)).collect();
        let counts: Vec<usize> = chunks(small, MAX_ENTRY_BYTES, 1000)
            .iter()
            .map(Vec::len)
            .collect();
        assert_eq!(counts, [1000, 1000, 500]);
        assert!(chunks(Vec::new(), 10, 10).is_empty());
        assert_eq!(chunks(vec![task_action(100)], 10, 10).len(), 1);
    }
}
