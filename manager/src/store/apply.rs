//! Applying one committed proposal: every action is checked against the current state first,
//! then all writes go to sled in one atomic batch. A rejected proposal writes nothing; its
//! result carries the reason back to whoever proposed it.

use std::collections::HashMap;

use swarmr_proto::store_action::{Kind, Target};
use swarmr_proto::{Meta, Proposal, StoreAction};

use super::object::{key_of, stamp_and_encode, view};

/// Part of the rejection for a stale read-modify-write; `Core::update` retries on it.
pub const CONFLICT: &str = "changed while this request was being decided";

/// The writes a proposal makes, or why it was rejected.
pub struct Planned {
    pub batch: sled::Batch,
    pub actions: Vec<StoreAction>,
}

/// Reads `Meta` of the object stored under `key`, if any.
pub type MetaReader<'a> = dyn Fn(&str) -> Result<Option<Meta>, sled::Error> + 'a;
/// Why the target may not be stored beside the objects already there, if so.
/// Deletes are checked too: an object others reference may not go.
pub type ConflictCheck<'a> = dyn Fn(Kind, &Target) -> Result<Option<String>, sled::Error> + 'a;

pub fn plan(
    index: u64,
    proposal: &Proposal,
    read_meta: &MetaReader<'_>,
    conflict: &ConflictCheck<'_>,
) -> Result<Result<Planned, String>, sled::Error> {
    let mut batch = sled::Batch::default();
    // Objects written earlier in this same proposal, so later actions see them.
    let mut pending: HashMap<String, Option<Meta>> = HashMap::new();
    let mut stamped = Vec::with_capacity(proposal.actions.len());
    for action in &proposal.actions {
        let Some(target) = &action.target else {
            return Ok(Err("action without a target".into()));
        };
        let target_view = view(target);
        let key = key_of(target_view.kind, target_view.id);
        let current = match pending.get(&key) {
            Some(meta) => *meta,
            None => read_meta(&key)?,
        };
        let what = format!("{} {}", target_view.kind, target_view.id);
        let kind = Kind::try_from(action.kind).unwrap_or(Kind::Create);
        if let Some(current) = &current {
            let expected = action.expected_version;
            if kind != Kind::Create && expected != 0 && current.version != expected {
                return Ok(Err(format!("{what} {CONFLICT}; try again")));
            }
        }
        let mut action = action.clone();
        match (kind, current) {
            (Kind::Create, Some(_)) => return Ok(Err(format!("{what} already exists"))),
            (Kind::Update, None) => return Ok(Err(format!("{what} not found"))),
            (Kind::Delete, None) => {}
            (Kind::Delete, Some(_)) => {
                if let Some(reason) = conflict(kind, target)? {
                    return Ok(Err(reason));
                }
                batch.remove(key.as_bytes());
                pending.insert(key, None);
            }
            (Kind::Create | Kind::Update, current) => {
                if let Some(reason) = conflict(kind, target)? {
                    return Ok(Err(reason));
                }
                let created_at = current
                    .map(|m| m.created_at)
                    .unwrap_or(proposal.proposed_at);
                let meta = Meta {
                    version: index,
                    created_at,
                    updated_at: proposal.proposed_at,
                };
                let target = action
                    .target
                    .as_mut()
                    .ok_or(sled::Error::Unsupported("action target vanished".into()))?;
                batch.insert(key.as_bytes(), stamp_and_encode(target, meta));
                pending.insert(key, Some(meta));
            }
        }
        stamped.push(action);
    }
    Ok(Ok(Planned {
        batch,
        actions: stamped,
    }))
}
