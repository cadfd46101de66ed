//! The benchmark's cluster: one manager and two workers on loopback, real `swarmr`
//! processes sharing this host's Docker, at default settings.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use swarmr_proto::control_client::ControlClient;
use swarmr_proto::{JoinTokenRequest, ListNodesRequest, NodeState};
use tonic::transport::Channel;

use crate::common::{client, CERTS};

pub type Client = ControlClient<Channel>;

pub struct Node {
    pub name: String,
    dir: PathBuf,
    child: Option<Child>,
}

impl Node {
    /// The node's resident memory now, from /proc (None once it is gone).
    pub fn rss_mb(&self) -> Option<f64> {
        let pid = self.child.as_ref()?.id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let kb: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()?;
        Some(kb / 1024.0)
    }

    /// SIGKILL, as a crashed host.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The nodes and their data; dropping it kills the nodes we spawned (by their PIDs), then
/// removes their containers and the data dirs.
pub struct Cluster {
    pub nodes: Vec<Node>,
    pub manager: String,
    root: Option<tempfile::TempDir>,
}

/// The node id the floor's containers are labelled with, so cleanup finds them.
pub fn floor_node_id() -> String {
    format!("bench-floor-{}", std::process::id())
}

impl Cluster {
    fn spawn(
        &mut self,
        bin: &Path,
        name: &str,
        ip: &str,
        head: &[&str],
        tail: &[&str],
    ) -> Result<()> {
        let dir = self.root_path().join(name);
        std::fs::create_dir_all(&dir).context("data dir")?;
        let log = std::fs::File::create(dir.with_extension("log")).context("log file")?;
        let child = Command::new(bin)
            .args(head)
            .args(["--data-dir", &dir.display().to_string()])
            .args(["--listen-addr", &format!("{ip}:2377"), "--hostname", name])
            // Loopback nodes share this (the machine's own) namespace: none may program it.
            .arg("--no-host-rules")
            .args(tail)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("start {}", bin.display()))?;
        let name = name.to_string();
        self.nodes.push(Node {
            name,
            dir,
            child: Some(child),
        });
        Ok(())
    }

    fn root_path(&self) -> PathBuf {
        self.root
            .as_ref()
            .map(|r| r.path().to_path_buf())
            .unwrap_or_default()
    }

    pub fn node(&mut self, name: &str) -> Result<&mut Node> {
        match self.nodes.iter_mut().find(|n| n.name == name) {
            Some(node) => Ok(node),
            None => bail!("no node {name}"),
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let mut node_ids = Vec::new();
        for node in &mut self.nodes {
            node.kill();
            let identity = std::fs::read_to_string(node.dir.join("node.json")).unwrap_or_default();
            if let Ok(value) = serde_json::from_str::<serde_json::Value>(&identity) {
                node_ids.extend(value["node_id"].as_str().map(String::from));
            }
        }
        node_ids.push(floor_node_id());
        for id in node_ids {
            remove_containers(&format!("label=com.swarmr.node.id={id}"));
        }
        if let Some(root) = self.root.take() {
            let _ = root.close();
        }
    }
}

/// Container ids (running or not) matching a `docker ps` filter.
pub fn docker_ps(filter: &str) -> Vec<String> {
    let Ok(out) = Command::new("docker")
        .args(["ps", "-aq", "--filter", filter])
        .output()
    else {
        return Vec::new();
    };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(String::from)
        .collect()
}

pub fn remove_containers(filter: &str) {
    let ids = docker_ps(filter);
    if !ids.is_empty() {
        let _ = Command::new("docker")
            .args(["rm", "-f"])
            .args(&ids)
            .output();
    }
}

/// Polls `check` every 20 ms for up to `limit`; Ok with the seconds it took.
pub async fn wait_for(
    what: &str,
    limit: Duration,
    mut check: impl AsyncFnMut() -> bool,
) -> Result<f64> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if check().await {
            return Ok(start.elapsed().as_secs_f64());
        }
        tokio::time::sleep(crate::POLL).await;
    }
    bail!("timed out after {limit:?} waiting for {what}")
}

/// Nodes in `state`, by hostname.
pub async fn nodes_in(c: &mut Client, state: NodeState) -> Vec<String> {
    let Ok(reply) = c.list_nodes(ListNodesRequest {}).await else {
        return Vec::new();
    };
    reply
        .into_inner()
        .nodes
        .iter()
        .filter_map(|v| v.node.as_ref())
        .filter(|n| n.status.as_ref().is_some_and(|s| s.state() == state))
        .filter_map(|n| Some(n.description.as_ref()?.hostname.clone()))
        .collect()
}

/// One manager (m1) and two workers (w1, w2), returned once all three are Ready.
pub async fn start(bin: &Path) -> Result<Cluster> {
    let root = tempfile::Builder::new()
        .prefix("swarmr-svc-bench-")
        .tempdir()
        .context("tempdir")?;
    let base = 60 + std::process::id() % 150;
    let ip = |i: u32| format!("127.{base}.9.{i}");
    let mut cluster = Cluster {
        nodes: Vec::new(),
        manager: format!("{}:2377", ip(1)),
        root: Some(root),
    };
    cluster.spawn(bin, "m1", &ip(1), &["init"], &[])?;
    let _ = CERTS.set(cluster.root_path().join("m1"));
    let manager = cluster.manager.clone();
    wait_for("the manager", Duration::from_secs(60), async || {
        client(&manager).await.is_some()
    })
    .await?;
    let mut c = client(&manager).await.context("manager client")?;
    let token = c
        .join_token(JoinTokenRequest {
            role: 0,
            rotate: false,
        })
        .await
        .context("worker token")?
        .into_inner()
        .token;
    for i in 2..=3 {
        let join = ["join", "--token", &token];
        let name = format!("w{}", i - 1);
        cluster.spawn(bin, &name, &ip(i), &join, &[manager.as_str()])?;
    }
    wait_for("3 Ready nodes", Duration::from_secs(60), async || {
        nodes_in(&mut c, NodeState::Ready).await.len() == 3
    })
    .await?;
    Ok(cluster)
}
