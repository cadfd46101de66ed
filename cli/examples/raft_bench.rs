//! Control-plane benchmark: three real `swarmr` managers on loopback.
//!
//! - Leader failover: kill -9 the leader, time until the next write through a survivor is
//!   accepted; repeated, p50 and max.
//! - Write throughput: committed Control API writes per second with many writers in
//!   flight (openraft batches them into few log appends), leader and follower entry points.
//!
//! Run through `deploy/bench/raft.sh` (release build). Prints figures, asserts nothing.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use swarmr_proto::{
    CreateNetworkRequest, ListNodesRequest, ManagerReachability, NetworkSpec, PruneNetworksRequest,
    UpdateNodeRequest,
};

#[path = "common/mod.rs"]
mod common;
use common::{client, CERTS};

struct Manager {
    name: String,
    ip: String,
    dir: PathBuf,
    args: Vec<String>,
    child: Option<Child>,
}

impl Manager {
    fn start(&mut self, bin: &Path) {
        let log = std::fs::File::create(self.dir.with_extension("log")).expect("log");
        let child = Command::new(bin)
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start swarmr");
        self.child = Some(child);
    }
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
    fn addr(&self) -> String {
        format!("{}:2377", self.ip)
    }
}

impl Drop for Manager {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A write that always changes the node (an unchanged update commits nothing).
fn label_write(node: &str, i: u64) -> UpdateNodeRequest {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    UpdateNodeRequest {
        reference: node.to_string(),
        label_add: [(format!("bench{}", i % 4), format!("{nanos}-{i}"))]
            .into_iter()
            .collect(),
        ..Default::default()
    }
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

/// The leader a majority of the managers name: a restarted manager may briefly believe
/// in an old leader.
async fn agreed_leader(managers: &[Manager]) -> String {
    let mut found = None;
    wait_for("a leader the managers agree on", async || {
        let mut names = Vec::new();
        for m in managers {
            names.extend(leader_of(&m.addr()).await);
        }
        found = names
            .iter()
            .find(|n| names.iter().filter(|o| o == n).count() >= 2)
            .cloned();
        found.is_some()
    })
    .await;
    found.unwrap_or_default()
}

async fn all_reachable(addr: &str) -> bool {
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

async fn wait_for(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

async fn start_cluster(bin: &Path, root: &Path) -> Vec<Manager> {
    let base = 60 + std::process::id() % 150;
    let mut managers: Vec<Manager> = (1..=3)
        .map(|i| {
            let name = format!("m{i}");
            let ip = format!("127.{base}.7.{i}");
            let dir = root.join(&name);
            Manager {
                name,
                ip,
                dir,
                args: Vec::new(),
                child: None,
            }
        })
        .collect();
    let common = |m: &Manager| {
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
    };
    managers[0].args = [vec!["init".to_string()], common(&managers[0])].concat();
    managers[0].start(bin);
    let _ = CERTS.set(managers[0].dir.clone());
    let first = managers[0].addr();
    wait_for("first manager", async || client(&first).await.is_some()).await;
    let mut c = client(&first).await.expect("client");
    let token = c
        .join_token(swarmr_proto::JoinTokenRequest {
            role: 1,
            rotate: false,
        })
        .await
        .expect("token")
        .into_inner()
        .token;
    for manager in managers.iter_mut().skip(1) {
        let args = [
            vec!["join".to_string(), "--token".into(), token.clone()],
            common(manager),
            vec![first.clone()],
        ]
        .concat();
        manager.args = args;
        manager.start(bin);
    }
    wait_for("3 reachable managers", async || all_reachable(&first).await).await;
    managers
}

async fn failover(bin: &Path, managers: &mut [Manager], trials: usize) -> Vec<f64> {
    let mut times = Vec::new();
    for trial in 0..trials {
        let leader = agreed_leader(managers).await;
        let li = managers
            .iter()
            .position(|m| m.name == leader)
            .expect("leader is one of ours");
        let si = (li + 1) % managers.len();
        let survivor = managers[si].addr();
        let target = managers[si].name.clone();
        let mut c = client(&survivor).await.expect("survivor client");
        c.update_node(label_write(&target, 0))
            .await
            .expect("warm-up write");
        managers[li].kill();
        let killed = Instant::now();
        let mut i = 1;
        loop {
            let attempt = tokio::time::timeout(
                Duration::from_secs(2),
                c.update_node(label_write(&target, i)),
            )
            .await;
            if let Ok(Ok(_)) = attempt {
                break;
            }
            i += 1;
        }
        let took = killed.elapsed().as_secs_f64();
        println!(
            "  trial {:2}: leader {} killed, write accepted after {:.3} s",
            trial + 1,
            leader,
            took
        );
        times.push(took);
        managers[li].start(bin);
        let addr = survivor.clone();
        wait_for("the killed manager to rejoin", async || {
            all_reachable(&addr).await
        })
        .await;
    }
    times
}

/// Creates `writers * per_writer` networks with `writers` requests in flight; returns
/// committed writes per second. Each create is one Raft entry with its own subnet and VNI.
async fn throughput(addr: &str, writers: u64, per_writer: u64) -> f64 {
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..writers {
        let mut c = client(addr).await.expect("client");
        tasks.spawn(async move {
            for i in 0..per_writer {
                let spec = NetworkSpec {
                    name: format!("bench-{w}-{i}"),
                    ..Default::default()
                };
                if let Err(s) = c
                    .create_network(CreateNetworkRequest { spec: Some(spec) })
                    .await
                {
                    panic!("write failed: {s}");
                }
            }
            per_writer
        });
    }
    let mut total = 0;
    while let Some(done) = tasks.join_next().await {
        total += done.expect("writer");
    }
    let rate = total as f64 / start.elapsed().as_secs_f64();
    let mut c = client(addr).await.expect("client");
    c.prune_networks(PruneNetworksRequest {})
        .await
        .expect("prune");
    rate
}

#[tokio::main]
async fn main() {
    let bin = PathBuf::from(
        std::env::var("SWARMR_BIN").unwrap_or_else(|_| "target/release/swarmr".into()),
    );
    let trials: usize = std::env::var("TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let root = tempfile::Builder::new()
        .prefix("swarmr-bench-")
        .tempdir()
        .expect("tempdir");
    let mut managers = start_cluster(&bin, root.path()).await;

    println!("== leader failover (3 managers, kill -9 the leader, next write through a survivor)");
    let mut times = failover(&bin, &mut managers, trials).await;
    times.sort_by(f64::total_cmp);
    println!(
        "failover: p50 {:.3} s, max {:.3} s over {} trials (Docker Swarm here: 12.4 s median, 10-21 s)",
        percentile(&times, 0.5),
        times[times.len() - 1],
        times.len()
    );

    println!("== write throughput (3 managers, Control API network create)");
    let leader = agreed_leader(&managers).await;
    let li = managers
        .iter()
        .position(|m| m.name == leader)
        .expect("ours");
    let follower = &managers[(li + 1) % 3];
    for (label, addr) in [
        ("leader", managers[li].addr()),
        ("follower", follower.addr()),
    ] {
        for (writers, per_writer) in [(1u64, 200u64), (64, 20)] {
            let rate = throughput(&addr, writers, per_writer).await;
            println!("throughput via {label}, {writers:>2} writers: {rate:.0} writes/s");
        }
    }
}
