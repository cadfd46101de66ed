//! What a node remembers about itself between runs: `<data-dir>/node.json`.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};
use swarmr_proto::NodeRole;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Identity {
    pub node_id: String,
    pub raft_id: u64,
    pub cluster_id: String,
    /// The role this node runs as (managers run Raft).
    #[serde(with = "role_name")]
    pub role: NodeRole,
    /// Manager addresses last heard of, to find the cluster again after a restart.
    pub managers: Vec<String>,
}

const FILE: &str = "node.json";

fn path(data_dir: &Path) -> PathBuf {
    data_dir.join(FILE)
}

impl Identity {
    pub fn load(data_dir: &Path) -> anyhow::Result<Option<Self>> {
        let path = path(data_dir);
        match std::fs::read(&path) {
            Ok(bytes) => Ok(Some(serde_json::from_slice(&bytes).with_context(|| {
                format!(
                    "{} is corrupt: remove the data dir to start afresh",
                    path.display()
                )
            })?)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("read {}", path.display())),
        }
    }

    /// Written to a temporary file and renamed, so a crash never leaves half a file.
    pub fn save(&self, data_dir: &Path) -> anyhow::Result<()> {
        let path = path(data_dir);
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(self)?)
            .with_context(|| format!("write {}", tmp.display()))?;
        std::fs::rename(&tmp, &path).with_context(|| format!("write {}", path.display()))
    }
}

/// Everything a node keeps in its data dir, removed when it leaves the cluster.
pub fn wipe(data_dir: &Path) -> anyhow::Result<()> {
    let files = [FILE, super::SOCKET].into_iter().chain(super::certs::FILES);
    for name in files {
        match std::fs::remove_file(data_dir.join(name)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(e).with_context(|| format!("remove {name} from {}", data_dir.display()))
            }
            _ => {}
        }
    }
    remove_raft_state(data_dir)
}

/// Removes the manager's Raft state (its sled database and its Raft log).
pub fn remove_raft_state(data_dir: &Path) -> anyhow::Result<()> {
    swarmr_manager::remove_state(data_dir)
        .with_context(|| format!("remove the Raft state from {}", data_dir.display()))
}

/// The role as the file has always spelled it: "manager" or "worker".
mod role_name {
    use serde::{Deserialize, Deserializer, Serializer};
    use swarmr_proto::NodeRole;

    pub fn serialize<S: Serializer>(role: &NodeRole, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(role.label())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<NodeRole, D::Error> {
        match String::deserialize(d)?.as_str() {
            "manager" => Ok(NodeRole::Manager),
            "worker" => Ok(NodeRole::Worker),
            other => Err(serde::de::Error::custom(format!(
                "unknown role {other:?} (manager or worker)"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaving_removes_the_raft_log_with_the_database() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["raft.db", "raft.wal"] {
            std::fs::create_dir_all(dir.path().join(name).join("inner")).unwrap();
        }
        remove_raft_state(dir.path()).unwrap();
        assert!(!dir.path().join("raft.db").exists());
        assert!(
            !dir.path().join("raft.wal").exists(),
            "a stale log would come back with a later manager role"
        );
        // Nothing to remove is fine.
        remove_raft_state(dir.path()).unwrap();
    }
}
