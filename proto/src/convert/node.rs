//! Node enums as Docker spells them (`Ready`, `Active`, `manager`).

use crate::{ManagerReachability, Node, NodeAvailability, NodeRole, NodeState};

impl Node {
    /// `Unknown` when the node has no status yet.
    pub fn state(&self) -> NodeState {
        self.status.as_ref().map(|s| s.state()).unwrap_or_default()
    }

    /// `Active` when the node has no spec.
    pub fn availability(&self) -> NodeAvailability {
        self.spec
            .as_ref()
            .map(|s| s.availability())
            .unwrap_or_default()
    }
}

impl NodeRole {
    pub fn label(self) -> &'static str {
        match self {
            NodeRole::Worker => "worker",
            NodeRole::Manager => "manager",
        }
    }
}

impl NodeAvailability {
    pub fn label(self) -> &'static str {
        match self {
            NodeAvailability::Active => "Active",
            NodeAvailability::Pause => "Pause",
            NodeAvailability::Drain => "Drain",
        }
    }
}

impl NodeState {
    pub fn label(self) -> &'static str {
        match self {
            NodeState::Unknown => "Unknown",
            NodeState::Down => "Down",
            NodeState::Ready => "Ready",
        }
    }
}

impl ManagerReachability {
    /// Empty for workers, as in `docker node ls`.
    pub fn label(self) -> &'static str {
        match self {
            ManagerReachability::None => "",
            ManagerReachability::Leader => "Leader",
            ManagerReachability::Reachable => "Reachable",
            ManagerReachability::Unreachable => "Unreachable",
        }
    }
}

/// Parses `active|pause|drain`, case-insensitively.
pub fn parse_availability(text: &str) -> Result<NodeAvailability, String> {
    match text.to_ascii_lowercase().as_str() {
        "active" => Ok(NodeAvailability::Active),
        "pause" => Ok(NodeAvailability::Pause),
        "drain" => Ok(NodeAvailability::Drain),
        _ => Err(format!(
            "invalid availability {text:?}: use active, pause or drain"
        )),
    }
}

/// Parses `worker|manager`, case-insensitively.
pub fn parse_role(text: &str) -> Result<NodeRole, String> {
    match text.to_ascii_lowercase().as_str() {
        "worker" => Ok(NodeRole::Worker),
        "manager" => Ok(NodeRole::Manager),
        _ => Err(format!("invalid role {text:?}: use worker or manager")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_docker_spellings() {
        assert_eq!(parse_availability("Drain"), Ok(NodeAvailability::Drain));
        assert_eq!(parse_role("MANAGER"), Ok(NodeRole::Manager));
        assert!(parse_availability("off")
            .unwrap_err()
            .contains("active, pause or drain"));
    }
}
