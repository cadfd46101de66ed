//! A cluster of real `swarmr` processes on loopback addresses, removed on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

pub use crate::netns::Underlay;

pub const BIN: &str = env!("CARGO_BIN_EXE_swarmr");

/// A loopback IP no other node of this test run uses: 127.<pid>.<n>.<n>.
fn fresh_ip() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(1);
    let n = NEXT.fetch_add(1, Ordering::SeqCst);
    let pid = std::process::id();
    format!(
        "127.{}.{}.{}",
        10 + pid % 240,
        (pid / 240) % 250 + 1,
        n % 250 + 1
    )
}

pub struct Node {
    /// The host network namespace the node runs in (multi-host tests), if any.
    pub netns: Option<String>,
    pub name: String,
    pub ip: String,
    pub data_dir: PathBuf,
    child: Option<Child>,
    args: Vec<String>,
}

impl Node {
    pub fn addr(&self) -> String {
        format!("{}:2377", self.ip)
    }

    /// `--host` value for this node's control socket.
    pub fn host(&self) -> String {
        format!("unix://{}", self.data_dir.join("swarmr.sock").display())
    }

    pub fn log_path(&self) -> PathBuf {
        self.data_dir.with_extension("log")
    }

    /// The node's `--secrets-key-file`.
    pub fn key_path(&self) -> PathBuf {
        self.data_dir.with_extension("key")
    }

    fn spawn(&mut self) {
        std::fs::create_dir_all(&self.data_dir).expect("data dir");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("log file");
        // nsenter execs swarmr, so the child's PID is the node's own.
        let mut command = match &self.netns {
            Some(ns) => {
                let mut c = Command::new("nsenter");
                c.arg(format!("--net=/run/netns/{ns}")).arg(BIN);
                c
            }
            None => Command::new(BIN),
        };
        let child = command
            .args(&self.args)
            .env("SWARMR_LOG", "info")
            // Beside the data dir, never in it; removed with the cluster's directory.
            .env("SWARMR_SECRETS_KEY_FILE", self.key_path())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start swarmr");
        self.child = Some(child);
    }

    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM and wait: a clean stop.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").arg(child.id().to_string()).status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the same command again without waiting for it to come up (it may exit).
    pub fn respawn(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Starts the same command again (init or join resume from the data dir).
    pub fn restart(&mut self) {
        self.respawn();
        let socket = self.data_dir.join("swarmr.sock");
        wait_until(&format!("{} socket", self.name), || socket.exists());
    }

    /// Starts the node's command again with `extra` flags for this run only.
    pub fn restart_with(&mut self, extra: &[&str]) {
        let saved = self.args.clone();
        self.args.extend(extra.iter().map(|s| s.to_string()));
        self.restart();
        self.args = saved;
    }

    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

pub struct Cluster {
    pub nodes: Vec<Node>,
    dir: tempfile::TempDir,
    /// Set for multi-host clusters: every node in its own network namespace.
    underlay: Option<Underlay>,
}

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

    fn start(underlay: Option<Underlay>, extra: &[&str]) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("swarmr-test-")
            .tempdir()
            .expect("tempdir");
        let mut cluster = Cluster {
            nodes: Vec::new(),
            dir,
            underlay,
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

/// `swarmr join` arguments for a throwaway node on loopback (any free port).
pub fn join_args<'a>(dir: &'a str, token: &'a str, remote: &'a str) -> Vec<&'a str> {
    vec![
        "join",
        "--token",
        token,
        "--data-dir",
        dir,
        "--listen-addr",
        "127.0.0.1:0",
        "--advertise-addr",
        "127.0.0.1",
        "--no-host-rules",
        remote,
    ]
}

/// The PID of a container's process, per Docker (empty if it has none).
pub fn pid_of(container: &str) -> String {
    let out = Command::new("docker")
        .args(["inspect", "-f", "{{.State.Pid}}", container])
        .output()
        .expect("docker inspect");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Containers of a service, per Docker itself.
pub fn containers(service_id: &str) -> Vec<String> {
    let out = Command::new("docker")
        .args([
            "ps",
            "-q",
            "--filter",
            &format!("label=com.swarmr.service.id={service_id}"),
        ])
        .output()
        .expect("docker ps");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(String::from)
        .collect()
}

pub fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        // A service that cannot converge fails sooner than the 60 s a user waits.
        .env("SWARMR_CONVERGE_TIMEOUT", "20s")
        .stdin(Stdio::null())
        .output()
        .expect("run swarmr")
}

/// `service create --name NAME FLAGS... swarmr/busybox:latest sleep 600` on `host`, which
/// must succeed (without `-d` in FLAGS it returns once every replica runs).
pub fn create_sleeper(host: &str, name: &str, flags: &[&str]) -> String {
    let mut args = vec!["-H", host, "service", "create", "--name", name];
    args.extend_from_slice(flags);
    args.extend_from_slice(&["swarmr/busybox:latest", "sleep", "600"]);
    ok(&args)
}

/// Runs a client command that must succeed; returns its stdout.
pub fn ok(args: &[&str]) -> String {
    let out = run(args);
    assert!(
        out.status.success(),
        "swarmr {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs a client command that must fail; returns its stderr.
pub fn fails(args: &[&str]) -> String {
    let out = run(args);
    assert!(
        !out.status.success(),
        "swarmr {args:?} should have failed but printed: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn node_rows(host: &str) -> Vec<Value> {
    let out = run(&["-H", host, "node", "ls", "--format", "json"]);
    if !out.status.success() {
        return Vec::new();
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

pub fn node_row(host: &str, hostname: &str) -> Option<Value> {
    node_rows(host)
        .into_iter()
        .find(|r| r["Hostname"] == hostname)
}

pub fn inspect(host: &str, node: &str) -> Value {
    let out = ok(&["-H", host, "node", "inspect", node]);
    let array: Value = serde_json::from_str(&out).expect("inspect prints JSON");
    array[0].clone()
}

/// Polls `check` until it holds; panics after 60 s. Waits, never timing assertions.
pub fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if check() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out waiting for: {what}");
}
