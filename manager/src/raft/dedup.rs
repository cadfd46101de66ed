//! Applying a proposal once, however often it is committed. A follower that forwards a
//! write and loses the answer (the leader died after committing it) proposes the very same
//! `Proposal` again: same actions, same `proposed_at`. Without this, the second copy would
//! fail ("already exists") although the write was applied. The state machine records the
//! SHA-256 of each applied proposal with its result, in the same batch as the writes, for
//! the last [`WINDOW`] entries; a proposal seen before gets the first result back and
//! writes nothing.
//!
//! Two different requests never encode the same: creates carry fresh ids, and updates
//! carry the version they read, so a second identical update could only have conflicted.
//! The records live in the `state` tree, so snapshots carry them and every replica decides
//! alike.

use prost::Message;
use sha2::{Digest, Sha256};
use swarmr_proto::{Proposal, ProposalResult};

use crate::store::Staged;

const RESULT_PREFIX: &str = "~dedup/";
const ORDER_PREFIX: &str = "~dedup-at/";
/// Entries a proposal is remembered for: far more than the retries of one write span.
pub const WINDOW: u64 = 5_000;

/// Drops every record: a forced new cluster starts its log at index 1 again, so records
/// indexed by the old log would never be pruned.
pub fn forget_all(state: &sled::Tree) -> Result<(), sled::Error> {
    let mut batch = sled::Batch::default();
    for prefix in [RESULT_PREFIX, ORDER_PREFIX] {
        for item in state.scan_prefix(prefix.as_bytes()) {
            let (key, _) = item?;
            batch.remove(key);
        }
    }
    state.apply_batch(batch)
}

/// The proposal's identity: its encoding's SHA-256, hex.
pub fn digest(proposal: &Proposal) -> String {
    let hash = Sha256::digest(proposal.encode_to_vec());
    hash.iter().map(|b| format!("{b:02x}")).collect()
}

/// The result the proposal got when it was first applied, if it was.
pub fn seen(
    staged: &Staged,
    state: &sled::Tree,
    digest: &str,
) -> Result<Option<ProposalResult>, sled::Error> {
    let Some(bytes) = staged.get(state, format!("{RESULT_PREFIX}{digest}"))? else {
        return Ok(None);
    };
    ProposalResult::decode(bytes.as_ref())
        .map(Some)
        .map_err(|e| sled::Error::Unsupported(format!("decode a proposal record: {e}")))
}

fn order_key(index: u64) -> String {
    format!("{ORDER_PREFIX}{index:020}")
}

/// Stages the record of the proposal applied at `index`, and drops the records
/// that fell out of the window.
pub fn record(
    state: &sled::Tree,
    staged: &mut Staged,
    digest: &str,
    result: &ProposalResult,
    index: u64,
) -> Result<(), sled::Error> {
    staged.insert(
        format!("{RESULT_PREFIX}{digest}").as_bytes(),
        result.encode_to_vec(),
    );
    staged.insert(order_key(index).as_bytes(), digest.as_bytes());
    let Some(oldest_kept) = index.checked_sub(WINDOW) else {
        return Ok(());
    };
    for item in state.range(order_key(0)..order_key(oldest_kept)) {
        let (key, old_digest) = item?;
        // An earlier entry of the same apply call pruned it already.
        if staged.removes(&key) {
            continue;
        }
        staged.remove(&key);
        let old = String::from_utf8_lossy(&old_digest);
        staged.remove(format!("{RESULT_PREFIX}{old}").as_bytes());
    }
    Ok(())
}
