//! A cluster of real `swarmr` processes, on loopback addresses or on namespace hosts,
//! removed on drop: the nodes, their containers, sandboxes and secrets tmpfs.

use std::path::Path;
use std::process::Command;
use std::sync::{Mutex, MutexGuard, PoisonError};

use serde_json::Value;

use super::cli::{node_row, ok, run, wait_until};
use super::node::{fresh_ip, Node};
use crate::netns::{OneWay, Underlay};

pub struct Cluster {
    pub nodes: Vec<Node>,
    dir: tempfile::TempDir,
    /// Set for multi-host clusters: every node in its own network namespace.
    underlay: Option<Underlay>,
    /// Held by the heaviest fixture (three hosts with overlay tasks on each) so two of them
    /// never start containers at once on a 2-core machine; released after the nodes stop.
    exclusive: Option<MutexGuard<'static, ()>>,
}

/// One three-host cluster at a time (see `Cluster::exclusive`).
static THREE_HOSTS: Mutex<()> = Mutex::new(());

impl Cluster {
    /// A cluster of one manager; `extra` flags go to `init` (e.g. a short heartbeat).
    pub fn init(extra: &[&str]) -> Self {
        Self::start(None, extra)
    }

    /// Like `init`, but every node gets its own host network namespace on a shared
    /// underlay bridge (TEST-NET-1 addresses), as separate machines would.
    pub fn init_on_hosts(extra: &[&str]) -> Self {
        Self::start(Some(Underlay::new()), extra)
    }

    /// Managers m1, m2 and m3 on loopback; `extra` flags go to `init`.
    pub fn three_managers(extra: &[&str]) -> Self {
        Self::init(extra).joined(&[("m2", "manager"), ("m3", "manager")])
    }

    /// Managers m1, m2 and m3, each on its own namespace host.
    pub fn three_managers_on_hosts(extra: &[&str]) -> Self {
        Self::init_on_hosts(extra).joined(&[("m2", "manager"), ("m3", "manager")])
    }

    /// Three namespace hosts: managers m1 and h2, worker h3.
    pub fn three_hosts(extra: &[&str]) -> Self {
        let exclusive = THREE_HOSTS.lock().unwrap_or_else(PoisonError::into_inner);
        let mut cluster = Self::init_on_hosts(extra).joined(&[("h2", "manager"), ("h3", "worker")]);
        cluster.exclusive = Some(exclusive);
        cluster
    }

    /// This cluster with each `(name, role)` joined in order, each Ready before the next.
    pub fn joined(mut self, nodes: &[(&str, &str)]) -> Self {
        for (name, role) in nodes {
            self.join(name, role);
        }
        self
    }

    fn start(underlay: Option<Underlay>, extra: &[&str]) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("swarmr-test-")
            .tempdir()
            .expect("tempdir");
        let mut cluster = Cluster {
            nodes: Vec::new(),
            dir,
            underlay,
            exclusive: None,
        };
        let mut args = vec!["init".to_string()];
        args.extend(cluster.node_args("m1"));
        args.extend(extra.iter().map(|s| s.to_string()));
        cluster.add_node("m1", args);
        let host = cluster.nodes[0].host();
        wait_until("first manager ready", || {
            run(&["-H", &host, "node", "ls", "-q"]).status.success()
        });
        cluster
    }

    fn node_args(&mut self, name: &str) -> Vec<String> {
        let ip = match self.underlay.as_mut() {
            Some(underlay) => underlay.add_host(name),
            None => fresh_ip(),
        };
        let mut args = vec![
            "--data-dir".into(),
            self.dir.path().join(name).display().to_string(),
            "--listen-addr".into(),
            format!("{ip}:2377"),
            "--hostname".into(),
            name.into(),
        ];
        // Loopback nodes share this namespace: none of them may program it.
        if self.underlay.is_none() {
            args.push("--no-host-rules".into());
        }
        args
    }

    fn add_node(&mut self, name: &str, args: Vec<String>) -> &mut Node {
        let ip = args[args
            .iter()
            .position(|a| a == "--listen-addr")
            .expect("listen")
            + 1]
        .trim_end_matches(":2377")
        .to_string();
        let netns = self.underlay.as_ref().map(|u| u.host_ns(name));
        let mut node = Node {
            netns,
            name: name.into(),
            ip,
            data_dir: self.dir.path().join(name),
            child: None,
            args,
        };
        node.spawn();
        self.nodes.push(node);
        self.nodes.last_mut().expect("just pushed")
    }

    pub fn token(&self, role: &str) -> String {
        let out = ok(&["-H", &self.nodes[0].host(), "join-token", "-q", role]);
        out.trim().to_string()
    }

    /// Joins a node with `role`'s token and waits until the cluster lists it Ready.
    pub fn join(&mut self, name: &str, role: &str) -> usize {
        self.join_with(name, role, &[])
    }

    /// Like `join`, with `extra` node flags (e.g. a fake resource report).
    pub fn join_with(&mut self, name: &str, role: &str, extra: &[&str]) -> usize {
        let token = self.token(role);
        let manager = self.nodes[0].addr();
        let mut args = vec!["join".to_string(), "--token".into(), token];
        args.extend(self.node_args(name));
        args.extend(extra.iter().map(|s| s.to_string()));
        args.push(manager);
        self.add_node(name, args);
        let host = self.nodes[0].host();
        wait_until(&format!("{name} Ready"), || {
            node_row(&host, name).is_some_and(|row| {
                row["Status"] == "Ready" && (role == "worker" || row["ManagerStatus"] != "")
            })
        });
        self.nodes.len() - 1
    }

    /// A host on the cluster's underlay that runs no node (a client or an outside
    /// server), at `192.0.2.<last>`; its namespace name. Multi-host clusters only.
    pub fn outside_host(&mut self, name: &str, last: u8) -> String {
        let underlay = self
            .underlay
            .as_mut()
            .expect("outside hosts need init_on_hosts");
        underlay.add_host_at(name, &format!("192.0.2.{last}"));
        underlay.host_ns(name)
    }

    /// Cuts host `name` off the underlay, or wires it back. Multi-host clusters only.
    pub fn cut(&self, name: &str) {
        self.underlay
            .as_ref()
            .expect("cuts need init_on_hosts")
            .cut(name);
    }

    /// Drops one direction of host `name`'s traffic. Multi-host clusters only.
    pub fn cut_one_way(&self, name: &str, way: OneWay) {
        self.underlay
            .as_ref()
            .expect("cuts need init_on_hosts")
            .cut_one_way(name, way);
    }

    /// Undoes `cut` or `cut_one_way`.
    pub fn heal(&self, name: &str) {
        self.underlay
            .as_ref()
            .expect("heals need init_on_hosts")
            .heal(name);
    }

    pub fn node(&mut self, name: &str) -> &mut Node {
        self.nodes
            .iter_mut()
            .find(|n| n.name == name)
            .expect("no such node")
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Cluster {
    /// Stops every node first (so none recreates a container), then removes the
    /// containers of this cluster's nodes from the shared Docker daemon.
    fn drop(&mut self) {
        let mut node_ids = Vec::new();
        for node in self.nodes.iter_mut() {
            node.kill();
            if std::thread::panicking() {
                print_log_tail(node);
            }
            let identity =
                std::fs::read_to_string(node.data_dir.join("node.json")).unwrap_or_default();
            if let Ok(value) = serde_json::from_str::<Value>(&identity) {
                node_ids.extend(value["node_id"].as_str().map(String::from));
            }
        }
        for node_id in &node_ids {
            // Sandboxes of killed nodes stay behind by design (they outlive the process).
            let prefix = format!("swr-{}-", &node_id[..node_id.len().min(12)]);
            for ns in netns_list()
                .into_iter()
                .filter(|ns| ns.starts_with(&prefix))
            {
                let _ = Command::new("ip").args(["netns", "del", &ns]).output();
            }
        }
        for node_id in &node_ids {
            let filter = format!("label=com.swarmr.node.id={node_id}");
            let Ok(out) = Command::new("docker")
                .args(["ps", "-aq", "--filter", &filter])
                .output()
            else {
                continue;
            };
            let ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(String::from)
                .collect();
            if !ids.is_empty() {
                let _ = Command::new("docker")
                    .arg("rm")
                    .arg("-f")
                    .args(&ids)
                    .output();
            }
        }
        // A killed node cannot unmount the tmpfs that holds its tasks' secrets and configs.
        for node_id in &node_ids {
            let dir = format!("/run/swarmr/files/{node_id}");
            let _ = Command::new("umount").arg(&dir).output();
            let _ = std::fs::remove_dir(&dir);
        }
    }
}

/// The end of a node's log, for a failed test's output (CI keeps nothing else), without
/// openraft's own lines: a lost peer fills a log with its retries.
fn print_log_tail(node: &Node) {
    const LINES: usize = 400;
    let log = node.log();
    let lines: Vec<&str> = log.lines().filter(|l| !l.contains("openraft")).collect();
    eprintln!("--- last {LINES} lines of {}'s log ---", node.name);
    for line in &lines[lines.len().saturating_sub(LINES)..] {
        eprintln!("{line}");
    }
}

fn netns_list() -> Vec<String> {
    let out = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .map(|o| o.stdout)
        .unwrap_or_default();
    String::from_utf8_lossy(&out)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(String::from))
        .collect()
}
