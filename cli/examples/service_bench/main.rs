//! Service convergence benchmark: three real `swarmr` nodes on loopback (one manager, two
//! workers) sharing this host's Docker daemon.
//!
//! For 3 and for 30 replicas of `swarmr/busybox:latest` running `sleep 600`: time from the
//! `CreateService` call until the service reports running == desired (polled every 20 ms),
//! over TRIALS (default 5) trials; between trials the service is removed and the next trial
//! waits until none of its containers remain. Prints per-trial times, medians and the ratio
//! to Docker Swarm's figures measured on this kind of machine (SWARM-FACTS.md). Each trial is
//! paired with a Docker floor measured in the same run: as many containers created and
//! started at once straight through the worker's executor (the same bollard calls), with
//! no orchestration, so the figures say how much of the time is swarmr's own.
//!
//! Then one rolling update of 30 replicas (`--force`, parallelism 3, no delay): the time
//! until every slot runs a new task and until the update completes, beside the floor.
//!
//! Run through `deploy/bench/services.sh` (release build, root and Docker). Prints figures,
//! asserts nothing. The nodes and every container labelled with their node ids are removed
//! at the end, also on a panic.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use swarmr_proto::control_client::ControlClient;
use swarmr_proto::{
    ContainerSpec, CreateServiceRequest, GetServiceRequest, JoinTokenRequest, ListNodesRequest,
    NodeState, RemoveServiceRequest, ServiceSpec,
};
use swarmr_worker::executor::{
    ContainerSpec as WorkerContainerSpec, DockerExecutor, Executor as _,
};
use tokio::task::JoinSet;
use tonic::transport::Channel;

#[path = "../common/mod.rs"]
mod common;
mod update;
use common::{client, CERTS};

const IMAGE: &str = "swarmr/busybox:latest";
/// Docker Swarm 20.10 here, `service create` until every replica runs (median).
const SWARM_3: f64 = 2.6;
const SWARM_30: f64 = 8.0;
const POLL: Duration = Duration::from_millis(20);

struct Node {
    dir: PathBuf,
    child: Child,
}

/// The nodes and their data; dropping it kills the nodes we spawned (by their PIDs), then
/// removes their containers and the data dirs.
struct Cluster {
    nodes: Vec<Node>,
    manager: String,
    root: Option<tempfile::TempDir>,
}

/// The node id the floor's containers are labelled with, so cleanup finds them.
fn floor_node_id() -> String {
    format!("bench-floor-{}", std::process::id())
}

impl Cluster {
    fn spawn(&mut self, bin: &Path, name: &str, ip: &str, head: &[&str], tail: &[&str]) {
        let dir = self.root_path().join(name);
        std::fs::create_dir_all(&dir).expect("data dir");
        let log = std::fs::File::create(dir.with_extension("log")).expect("log file");
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
            .expect("start swarmr");
        self.nodes.push(Node { dir, child });
    }

    fn root_path(&self) -> PathBuf {
        self.root
            .as_ref()
            .map(|r| r.path().to_path_buf())
            .unwrap_or_default()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let mut node_ids = Vec::new();
        for node in &mut self.nodes {
            let _ = node.child.kill();
            let _ = node.child.wait();
            let identity = std::fs::read_to_string(node.dir.join("node.json")).unwrap_or_default();
            if let Ok(value) = serde_json::from_str::<serde_json::Value>(&identity) {
                node_ids.extend(value["node_id"].as_str().map(String::from));
            }
        }
        node_ids.push(floor_node_id());
        for id in node_ids {
            let ids = docker_ps(&format!("label=com.swarmr.node.id={id}"));
            if !ids.is_empty() {
                let _ = Command::new("docker")
                    .args(["rm", "-f"])
                    .args(&ids)
                    .output();
            }
        }
        if let Some(root) = self.root.take() {
            let _ = root.close();
        }
    }
}

/// Container ids (running or not) matching a `docker ps` filter.
pub(crate) fn docker_ps(filter: &str) -> Vec<String> {
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

pub(crate) async fn wait_for(what: &str, limit: Duration, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

async fn ready_nodes(c: &mut ControlClient<Channel>) -> usize {
    let Ok(reply) = c.list_nodes(ListNodesRequest {}).await else {
        return 0;
    };
    reply
        .into_inner()
        .nodes
        .iter()
        .filter_map(|v| v.node.as_ref()?.status.as_ref())
        .filter(|s| s.state() == NodeState::Ready)
        .count()
}

async fn start_cluster(bin: &Path) -> Cluster {
    let root = tempfile::Builder::new()
        .prefix("swarmr-svc-bench-")
        .tempdir()
        .expect("tempdir");
    let base = 60 + std::process::id() % 150;
    let ip = |i: u32| format!("127.{base}.9.{i}");
    let mut cluster = Cluster {
        nodes: Vec::new(),
        manager: format!("{}:2377", ip(1)),
        root: Some(root),
    };
    let init = ["init", "--dispatcher-heartbeat", "500ms"];
    cluster.spawn(bin, "m1", &ip(1), &init, &[]);
    let _ = CERTS.set(cluster.root_path().join("m1"));
    let manager = cluster.manager.clone();
    wait_for("the manager", Duration::from_secs(60), async || {
        client(&manager).await.is_some()
    })
    .await;
    let mut c = client(&manager).await.expect("manager client");
    let token = c
        .join_token(JoinTokenRequest {
            role: 0,
            rotate: false,
        })
        .await
        .expect("worker token")
        .into_inner()
        .token;
    for i in 2..=3 {
        let join = ["join", "--token", &token];
        cluster.spawn(
            bin,
            &format!("w{}", i - 1),
            &ip(i),
            &join,
            &[manager.as_str()],
        );
    }
    wait_for("3 Ready nodes", Duration::from_secs(60), async || {
        ready_nodes(&mut c).await == 3
    })
    .await;
    cluster
}

/// One trial: create, wait until every replica runs, remove, wait until no container is
/// left. Returns the convergence time in seconds.
async fn trial(c: &mut ControlClient<Channel>, name: &str, replicas: u64) -> f64 {
    let spec = ServiceSpec {
        name: name.to_string(),
        container: Some(ContainerSpec {
            image: IMAGE.into(),
            command: vec!["sleep".into(), "600".into()],
            ..Default::default()
        }),
        replicas: Some(replicas),
        ..Default::default()
    };
    let start = Instant::now();
    let service = c
        .create_service(CreateServiceRequest { spec: Some(spec) })
        .await
        .expect("create service")
        .into_inner()
        .service
        .expect("created service");
    let deadline = start + Duration::from_secs(120);
    let took = loop {
        let view = c
            .get_service(GetServiceRequest {
                reference: service.id.clone(),
            })
            .await
            .expect("get service")
            .into_inner()
            .service
            .expect("service view");
        if view.running == view.desired && view.desired == replicas {
            break start.elapsed().as_secs_f64();
        }
        assert!(
            Instant::now() < deadline,
            "{name} did not converge in 120 s"
        );
        tokio::time::sleep(POLL).await;
    };
    c.remove_service(RemoveServiceRequest {
        reference: service.id.clone(),
    })
    .await
    .expect("remove service");
    let removed = Instant::now();
    let filter = format!("label=com.swarmr.service.id={}", service.id);
    wait_for(
        "the containers to go",
        Duration::from_secs(120),
        async || docker_ps(&filter).is_empty(),
    )
    .await;
    println!(
        "  {name}: {replicas:2} replicas running after {took:.3} s (containers gone {:.1} s after rm)",
        removed.elapsed().as_secs_f64()
    );
    took
}

/// The Docker floor: `replicas` containers created and started at once through the worker's
/// executor, timed until all run, then removed.
async fn docker_floor(executor: &Arc<DockerExecutor>, tag: &str, replicas: u64) -> f64 {
    let node_id = floor_node_id();
    let start = Instant::now();
    let mut starts = JoinSet::new();
    for slot in 0..replicas {
        let executor = executor.clone();
        let spec = WorkerContainerSpec {
            name: format!("{tag}.{slot}"),
            image: IMAGE.into(),
            command: vec!["sleep".into(), "600".into()],
            node_id: node_id.clone(),
            task_id: format!("{tag}-{slot}"),
            ..Default::default()
        };
        starts.spawn(async move {
            let id = executor.create(&spec).await?;
            executor.start(&id).await
        });
    }
    while let Some(started) = starts.join_next().await {
        started
            .expect("floor start task")
            .expect("floor container start");
    }
    let took = start.elapsed().as_secs_f64();
    let ids = docker_ps(&format!("label=com.swarmr.node.id={node_id}"));
    let _ = Command::new("docker")
        .args(["rm", "-f"])
        .args(&ids)
        .output();
    println!("  {tag}: {replicas:2} containers straight through Docker after {took:.3} s");
    took
}

fn median(times: &mut [f64]) -> f64 {
    times.sort_by(f64::total_cmp);
    let n = times.len();
    if n % 2 == 1 {
        times[n / 2]
    } else {
        (times[n / 2 - 1] + times[n / 2]) / 2.0
    }
}

#[tokio::main]
async fn main() {
    let bin = PathBuf::from(
        std::env::var("SWARMR_BIN").unwrap_or_else(|_| "target/release/swarmr".into()),
    );
    let trials: usize = std::env::var("TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let image = Command::new("docker")
        .args(["image", "inspect", IMAGE])
        .output()
        .expect("docker");
    assert!(
        image.status.success(),
        "{IMAGE} is missing: run deploy/images/build.sh"
    );
    let cluster = start_cluster(&bin).await;
    let mut c = client(&cluster.manager).await.expect("manager client");
    println!("== service convergence (1 manager + 2 workers on loopback, real Docker, {IMAGE} sleep 600)");
    let executor = Arc::new(DockerExecutor::connect().await.expect("Docker"));
    let mut summary = Vec::new();
    for (replicas, swarm) in [(3u64, SWARM_3), (30, SWARM_30)] {
        let mut times = Vec::new();
        let mut floors = Vec::new();
        for t in 0..trials {
            let name = format!("bench-{replicas}-{t}-{}", std::process::id());
            times.push(trial(&mut c, &name, replicas).await);
            floors.push(docker_floor(&executor, &format!("floor-{replicas}-{t}"), replicas).await);
        }
        let (min, max) = times
            .iter()
            .fold((f64::MAX, 0f64), |(lo, hi), &t| (lo.min(t), hi.max(t)));
        let med = median(&mut times);
        let floor = median(&mut floors);
        summary.push(format!(
            "converge {replicas:2} replicas: median {med:.3} s ({min:.3}-{max:.3}) over {trials} trials; Docker Swarm {swarm} s, ratio {:.2} ({:.1}x faster); Docker floor (same containers, no orchestration) {floor:.3} s, swarmr/floor {:.2}",
            med / swarm,
            swarm / med,
            med / floor
        ));
    }
    println!("== rolling update (--force, parallelism 3, no delay, stop-first, monitor 5 s)");
    let name = format!("bench-update-{}", std::process::id());
    let (replaced, completed) = update::trial(&mut c, &name, 30).await;
    let floor = docker_floor(&executor, "floor-update", 30).await;
    summary.push(format!(
        "update 30 replicas: every task replaced after {replaced:.3} s, completed after {completed:.3} s (5 s monitor included); Docker floor (30 containers at once) {floor:.3} s, replaced/floor {:.2}",
        replaced / floor
    ));
    for line in summary {
        println!("{line}");
    }
    drop(cluster);
}
