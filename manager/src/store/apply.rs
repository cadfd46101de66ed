//! Applying one committed proposal: every action is checked against the current state first,
//! then its writes are staged for the one atomic sled batch of its apply call. A rejected
//! proposal writes nothing; its result carries the [`Refusal`] back to whoever proposed it.

use std::collections::HashMap;

use swarmr_proto::store_action::{Kind, Target};
use swarmr_proto::{Meta, Proposal, RefusalKind, StoreAction};

use super::object::{key_of, stamp_and_encode, view};
use super::staged::Staged;

/// Why a proposal wrote nothing: the message for the user and the kind the proposer
/// decides on (a stale read is retried by `Core::update`; a VNI or subnet another network
/// took, by network create).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub reason: String,
    pub kind: RefusalKind,
}

impl Refusal {
    pub fn invalid(reason: impl Into<String>) -> Self {
        Self::new(RefusalKind::Invalid, reason)
    }

    pub fn new(kind: RefusalKind, reason: impl Into<String>) -> Self {
        Refusal {
            reason: reason.into(),
            kind,
        }
    }
}

/// The writes a proposal makes, or why it was rejected.
pub struct Planned {
    pub writes: Staged,
    pub actions: Vec<StoreAction>,
}

/// Reads `Meta` of the object stored under `key`, if any.
pub type MetaReader<'a> = dyn Fn(&str) -> Result<Option<Meta>, sled::Error> + 'a;
/// Why the target may not be stored beside the objects already there, if so.
/// Deletes are checked too: an object others reference may not go.
pub type ConflictCheck<'a> = dyn Fn(Kind, &Target) -> Result<Option<Refusal>, sled::Error> + 'a;

pub fn plan(
    index: u64,
    proposal: Proposal,
    read_meta: &MetaReader<'_>,
    conflict: &ConflictCheck<'_>,
) -> Result<Result<Planned, Refusal>, sled::Error> {
    let mut writes = Staged::default();
    // Objects written earlier in this same proposal, so later actions see them.
    let mut pending: HashMap<String, Option<Meta>> = HashMap::new();
    let mut stamped = Vec::with_capacity(proposal.actions.len());
    for mut action in proposal.actions {
        let Some(target) = &action.target else {
            return Ok(Err(Refusal::invalid("action without a target")));
        };
        let target_view = view(target);
        let key = key_of(target_view.kind, target_view.id);
        let current = match pending.get(&key) {
            Some(meta) => *meta,
            None => read_meta(&key)?,
        };
        let what = || format!("{} {}", target_view.kind, target_view.id);
        // An unknown kind (from a newer peer) reads as a create: refused if the object exists.
        let kind = action.kind();
        if let Some(current) = &current {
            let expected = action.expected_version;
            if kind != Kind::Create && expected != 0 && current.version != expected {
                let reason = format!(
                    "{} changed while this request was being decided; try again",
                    what()
                );
                return Ok(Err(Refusal::new(RefusalKind::Stale, reason)));
            }
        }
        match (kind, current) {
            (Kind::Create, Some(_)) => {
                return Ok(Err(Refusal::invalid(format!("{} already exists", what()))))
            }
            (Kind::Update, None) => {
                return Ok(Err(Refusal::invalid(format!("{} not found", what()))))
            }
            (Kind::Delete, None) => {}
            (Kind::Delete, Some(_)) => {
                if let Some(refusal) = conflict(kind, target)? {
                    return Ok(Err(refusal));
                }
                writes.remove(key.as_bytes());
                pending.insert(key, None);
            }
            (Kind::Create | Kind::Update, current) => {
                if let Some(refusal) = conflict(kind, target)? {
                    return Ok(Err(refusal));
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
                writes.insert(key.as_bytes(), stamp_and_encode(target, meta));
                pending.insert(key, Some(meta));
            }
        }
        stamped.push(action);
    }
    Ok(Ok(Planned {
        writes,
        actions: stamped,
    }))
}

#[cfg(test)]
mod tests {
    use swarmr_proto::Node;

    use super::*;
    use crate::core::{create_action, update_action};

    fn node(id: &str) -> Node {
        Node {
            id: id.into(),
            ..Default::default()
        }
    }

    fn planned(action: StoreAction, stored: Option<u64>) -> Result<Planned, Refusal> {
        let proposal = Proposal {
            actions: vec![action],
            proposed_at: 1,
        };
        let read_meta = |_: &str| {
            Ok(stored.map(|version| Meta {
                version,
                ..Default::default()
            }))
        };
        let no_conflict = |_: Kind, _: &Target| Ok(None);
        plan(9, proposal, &read_meta, &no_conflict).expect("no store error")
    }

    #[test]
    fn only_a_stale_update_is_refused_as_stale() {
        let kind = |planned: Result<Planned, Refusal>| planned.err().map(|r| r.kind);
        let stale = planned(update_action(node("n1"), 3), Some(4));
        assert_eq!(kind(stale), Some(RefusalKind::Stale));
        let missing = planned(update_action(node("n1"), 3), None);
        assert_eq!(kind(missing), Some(RefusalKind::Invalid));
        let twice = planned(create_action(node("n1")), Some(4));
        assert_eq!(kind(twice), Some(RefusalKind::Invalid));
        assert!(planned(update_action(node("n1"), 4), Some(4)).is_ok());
    }
}
