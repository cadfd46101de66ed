//! Three real managers on loopback: start, kill, restart, and who leads.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context as _, Result};
use swarmr_proto::{ListNodesRequest, ManagerReachability};

use super::common::{client, CERTS};

pub struct Manager {
    pub name: String,
    ip: String,
    dir: PathBuf,
    args: Vec<String>,
    child: Option<Child>,
}

impl Manager {
    pub fn start(&mut self, bin: &Path) -> Result<()> {
        let log = std::fs::File::create(self.dir.with_extension("log")).context("manager log")?;
        let child = Command::new(bin)
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("start {}", bin.display()))?;
        self.child = Some(child);
        Ok(())
    }

    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn addr(&self) -> String {
        format!("{}:2377", self.ip)
    }
}

impl Drop for Manager {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Polls `check` every 100 ms for up to `limit`.
pub async fn wait_for(
    what: &str,
    limit: Duration,
    mut check: impl AsyncFnMut() -> bool,
) -> Result<()> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if check().await {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(anyhow!("timed out after {limit:?} waiting for {what}"))
}

/// The hostname of the current leader, as one manager sees it.
async fn leader_of(addr: &str) -> Option<String> {
    let mut c = client(addr).await?;
    let nodes = c
        .list_nodes(ListNodesRequest {})
        .await
        .ok()?
        .into_inner()
        .nodes;
    nodes
        .into_iter()
        .find(|v| v.manager_status() == ManagerReachability::Leader)
        .and_then(|v| v.node?.description.map(|d| d.hostname))
}

/// The index of the leader a majority of the managers name: a restarted manager may
/// briefly believe in an old leader.
pub async fn agreed_leader(managers: &[Manager]) -> Result<usize> {
    let mut found = None;
    wait_for(
        "a leader the managers agree on",
        Duration::from_secs(60),
        async || {
            let mut names = Vec::new();
            for m in managers {
                names.extend(leader_of(&m.addr()).await);
            }
            found = names
                .iter()
                .find(|n| names.iter().filter(|o| o == n).count() >= 2)
                .and_then(|name| managers.iter().position(|m| &m.name == name));
            found.is_some()
        },
    )
    .await?;
    found.ok_or_else(|| anyhow!("no agreed leader"))
}

/// Whether the manager at `addr` sees all three managers reachable.
pub async fn all_reachable(addr: &str) -> bool {
    let Some(mut c) = client(addr).await else {
        return false;
    };
    let Ok(reply) = c.list_nodes(ListNodesRequest {}).await else {
        return false;
    };
    let nodes = reply.into_inner().nodes;
    nodes.len() == 3
        && nodes.iter().all(|v| {
            matches!(
                v.manager_status(),
                ManagerReachability::Leader | ManagerReachability::Reachable
            )
        })
}

fn manager(root: &Path, base: u32, i: u32) -> Manager {
    let name = format!("m{i}");
    Manager {
        ip: format!("127.{base}.7.{i}"),
        dir: root.join(&name),
        name,
        args: Vec::new(),
        child: None,
    }
}

fn common_args(m: &Manager) -> Vec<String> {
    vec![
        "--data-dir".to_string(),
        m.dir.display().to_string(),
        "--listen-addr".into(),
        m.addr(),
        "--hostname".into(),
        m.name.clone(),
        // Loopback nodes share the machine's own namespace: none may program it.
        "--no-host-rules".into(),
    ]
}

/// `init` on the first manager, `join` as managers on the other two; returns once all
/// three are reachable.
pub async fn start_cluster(bin: &Path, root: &Path) -> Result<Vec<Manager>> {
    let base = 60 + std::process::id() % 150;
    let mut managers: Vec<Manager> = (1..=3).map(|i| manager(root, base, i)).collect();
    let first = managers[0].addr();
    managers[0].args = [vec!["init".to_string()], common_args(&managers[0])].concat();
    managers[0].start(bin)?;
    let _ = CERTS.set(root.join("m1"));
    let limit = Duration::from_secs(60);
    wait_for("the first manager", limit, async || {
        client(&first).await.is_some()
    })
    .await?;
    let mut c = client(&first)
        .await
        .ok_or_else(|| anyhow!("the first manager stopped answering"))?;
    let token = c
        .join_token(swarmr_proto::JoinTokenRequest {
            role: 1,
            rotate: false,
        })
        .await
        .context("manager join token")?
        .into_inner()
        .token;
    for m in managers.iter_mut().skip(1) {
        let join = vec!["join".to_string(), "--token".into(), token.clone()];
        m.args = [join, common_args(m), vec![first.clone()]].concat();
        m.start(bin)?;
    }
    wait_for("3 reachable managers", limit, async || {
        all_reachable(&first).await
    })
    .await?;
    Ok(managers)
}
