//! Secrets and configs on the node: kept in memory as the session delivers them (only
//! those this node's tasks use), and written only to a tmpfs mounted for this node under
//! [`RUN_DIR`] (never to disk), one directory per task, each file with the reference's
//! owner and mode, then bound read-only into the task's container at its target. A task's
//! directory goes once the task has ended or left the session. Logs name ids, never data.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use swarmr_proto::{SecretData, SecretReference, Task};
use tracing::{info, warn};

/// Under this, one tmpfs per node (by node id: several test nodes share one machine).
pub const RUN_DIR: &str = "/run/swarmr/files";
/// The tmpfs's size cap: far above what a node's tasks can reference.
const TMPFS_OPTIONS: &str = "mode=0700,size=256m";

/// The node's delivered secrets and configs, and where their files go.
pub struct TaskFiles {
    base: PathBuf,
    /// Mount a tmpfs at `base` before the first file (false in unit tests).
    mount: bool,
    secrets: HashMap<String, SecretData>,
    configs: HashMap<String, SecretData>,
}

impl TaskFiles {
    pub fn for_node(node_id: &str) -> Self {
        Self {
            base: Path::new(RUN_DIR).join(node_id),
            mount: true,
            secrets: HashMap::new(),
            configs: HashMap::new(),
        }
    }

    /// Files under `base`, a directory the caller owns, with no tmpfs mounted (tests).
    pub fn in_dir(base: PathBuf) -> Self {
        Self {
            mount: false,
            ..Self::for_node("")
        }
        .with_base(base)
    }

    fn with_base(mut self, base: PathBuf) -> Self {
        self.base = base;
        self
    }

    /// Takes the data a session message carries: what the node's tasks use now.
    pub fn update(&mut self, secrets: Vec<SecretData>, configs: Vec<SecretData>) {
        keep(&mut self.secrets, secrets, "secret");
        keep(&mut self.configs, configs, "config");
    }

    /// Writes the task's files and returns the binds (`host:target:ro`) its container
    /// needs; the error is why the task fails.
    pub fn materialize(&self, task: &Task) -> Result<Vec<String>, String> {
        let Some(container) = task.container.as_ref() else {
            return Ok(Vec::new());
        };
        let refs = container
            .secrets
            .iter()
            .map(|r| ("secret", r, self.secrets.get(&r.id)))
            .chain(
                container
                    .configs
                    .iter()
                    .map(|r| ("config", r, self.configs.get(&r.id))),
            )
            .collect::<Vec<_>>();
        if refs.is_empty() {
            return Ok(Vec::new());
        }
        self.ensure_tmpfs()?;
        let dir = self.base.join(&task.id);
        make_dir(&dir)?;
        let mut binds = Vec::new();
        for (i, (kind, reference, data)) in refs.into_iter().enumerate() {
            let data = data.ok_or_else(|| {
                format!(
                    "{kind} {} was not delivered to this node (is a manager without the data key leading?)",
                    reference.name
                )
            })?;
            let path = dir.join(format!("{kind}-{i}"));
            write_file(&path, &data.data, reference)
                .map_err(|e| format!("write {kind} {} on tmpfs: {e}", reference.name))?;
            info!(task.id = %task.id, %kind, id = %reference.id, revision = data.revision, "file ready for the task");
            binds.push(format!("{}:{}:ro", path.display(), reference.target));
        }
        Ok(binds)
    }

    /// Removes the directories of tasks not in `keep`.
    pub fn prune(&self, keep: &HashSet<&str>) {
        let Ok(entries) = std::fs::read_dir(&self.base) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            if keep.contains(name.to_string_lossy().as_ref()) {
                continue;
            }
            if let Err(e) = std::fs::remove_dir_all(entry.path()) {
                warn!(error = %e, task.id = %name.to_string_lossy(), "could not remove a task's files");
            }
        }
    }

    /// Unmounts the node's tmpfs (leaving the cluster): its files vanish with it.
    pub fn teardown(&self) {
        if self.mount && is_tmpfs(&self.base) {
            let _ = nix::mount::umount2(&self.base, nix::mount::MntFlags::MNT_DETACH);
        }
        let _ = std::fs::remove_dir_all(&self.base);
    }

    fn ensure_tmpfs(&self) -> Result<(), String> {
        make_dir(&self.base)?;
        if !self.mount || is_tmpfs(&self.base) {
            return Ok(());
        }
        use nix::mount::MsFlags;
        let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
        nix::mount::mount(
            Some("tmpfs"),
            &self.base,
            Some("tmpfs"),
            flags,
            Some(TMPFS_OPTIONS),
        )
        .map_err(|e| {
            format!(
                "secrets and configs live on a tmpfs, and mounting one at {} failed ({e}): run the node as root",
                self.base.display()
            )
        })
    }
}

/// Replaces `held` with `delivered`, logging (by id) what is new.
fn keep(held: &mut HashMap<String, SecretData>, delivered: Vec<SecretData>, kind: &str) {
    let fresh: HashMap<String, SecretData> =
        delivered.into_iter().map(|d| (d.id.clone(), d)).collect();
    for (id, data) in &fresh {
        if held.get(id).map(|d| d.revision) != Some(data.revision) {
            info!(%kind, %id, revision = data.revision, "received from the dispatcher");
        }
    }
    *held = fresh;
}

fn make_dir(dir: &Path) -> Result<(), String> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| format!("create {}: {e}", dir.display()))
}

fn write_file(path: &Path, data: &[u8], reference: &SecretReference) -> std::io::Result<()> {
    let _ = std::fs::remove_file(path);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(data)?;
    std::os::unix::fs::chown(path, Some(reference.uid), Some(reference.gid))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(reference.mode))
}

/// Whether `path` is a tmpfs mount point (from this process's mount table).
fn is_tmpfs(path: &Path) -> bool {
    let Ok(table) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let want = path.to_string_lossy();
    table.lines().any(|line| {
        let fields: Vec<&str> = line.split(' ').collect();
        let fstype = line.split(" - ").nth(1).and_then(|r| r.split(' ').next());
        fields.get(4) == Some(&want.as_ref()) && fstype == Some("tmpfs")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use swarmr_proto::ContainerSpec;

    fn task(secrets: Vec<SecretReference>) -> Task {
        Task {
            id: "t1".into(),
            container: Some(ContainerSpec {
                secrets,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn reference(id: &str, mode: u32) -> SecretReference {
        use std::os::unix::fs::MetadataExt;
        let me = std::fs::metadata(std::env::temp_dir()).unwrap();
        let (uid, gid) = (me.uid(), me.gid());
        SecretReference {
            id: id.into(),
            name: format!("n-{id}"),
            target: format!("/run/secrets/{id}"),
            uid,
            gid,
            mode,
            revision: 1,
        }
    }

    #[test]
    fn files_get_their_data_and_mode_and_go_with_their_task() {
        let dir = tempfile::tempdir().unwrap();
        let mut files = TaskFiles::in_dir(dir.path().join("node"));
        let data = |id: &str| SecretData {
            id: id.into(),
            revision: 1,
            data: b"s3cret".to_vec(),
        };
        files.update(vec![data("a")], Vec::new());
        let binds = files
            .materialize(&task(vec![reference("a", 0o440)]))
            .unwrap();
        let host = dir.path().join("node/t1/secret-0");
        assert_eq!(binds, [format!("{}:/run/secrets/a:ro", host.display())]);
        assert_eq!(std::fs::read(&host).unwrap(), b"s3cret");
        let mode = std::fs::metadata(&host).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o440);
        // One that was not delivered fails the task, naming it.
        let err = files
            .materialize(&task(vec![reference("b", 0o444)]))
            .unwrap_err();
        assert!(err.contains("n-b was not delivered"), "{err}");
        files.prune(&HashSet::from(["t1"]));
        assert!(host.exists());
        files.prune(&HashSet::new());
        assert!(!dir.path().join("node/t1").exists());
    }
}
