//! Scheduler at scale: one service of 10,000 replicas onto 1,000 simulated nodes.
//!
//! One real manager runs in-process (sled store, single-member Raft, the leader's
//! controllers, Control and Dispatcher gRPC on a loopback port). The nodes are simulated:
//! - Their `Node` objects are committed directly (100 per proposal; Ready, Active, worker).
//! - SESSIONS of them (default: all) run the real worker side in-process: a Dispatcher
//!   session over gRPC (`swarmr_worker::run_session`: heartbeats, session messages, status
//!   reports via `UpdateTaskStatus`) and a task agent (`swarmr_worker::Agent`) over
//!   `MemoryExecutor`, which "starts" a container at once in memory.
//! - The rest open no session: one reporter reads their ASSIGNED tasks from the store and
//!   reports them RUNNING over gRPC, one `UpdateTaskStatus` per node per pass. That skips
//!   the session push (the leader building each node's message) and the agent.
//!
//! Measured from the `CreateService` call (Control gRPC), counted from the store's change
//! feed: when all tasks exist, are PENDING (allocated), ASSIGNED (placed) and RUNNING
//! (acknowledged by their workers); the peak RSS (VmHWM); and the controllers' passes and
//! the session messages pushed meanwhile. Aims from the issue: ASSIGNED
//! under 3 s, peak RSS under 500 MB. Prints figures, asserts nothing.
//!
//! Run: `cargo run --release -p swarmr-manager --example scheduler_scale`. Env: NODES (1000),
//! TASKS (10000), SESSIONS (= NODES), HEARTBEAT (ms, 5000), TIMEOUT (s, 600), IDLE (s, 0:
//! afterwards, the CPU the process spends over that long with nothing but heartbeats and
//! the periodic passes, both ends of every session included).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use swarmr_manager::core::create_action;
use swarmr_manager::store::StoreEvent;
use swarmr_manager::{ca, ClusterParams, Manager, ManagerConfig};
use swarmr_proto::control_client::ControlClient;
use swarmr_proto::control_server::ControlServer;
use swarmr_proto::dispatcher_server::DispatcherServer;
use swarmr_proto::store_action::Target;
use swarmr_proto::*;
use swarmr_worker::executor::MemoryExecutor;
use swarmr_worker::{Agent, SessionConfig};
use tokio::sync::{broadcast, mpsc, watch};

mod sim;

// The allocator the `swarmr` daemon runs on.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A field of /proc/self/status in MB (VmHWM, VmRSS).
fn proc_mb(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// User + system CPU seconds of this process so far.
fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of stat: 11 and 12 after "pid (comm)".
    (ticks(11) + ticks(12)) / 100.0
}

/// The leader's controller passes and session pushes so far (process-wide counters).
struct Work {
    passes: [u64; 3],
    pushed: u64,
}

impl Work {
    fn now() -> Work {
        let metrics = &*swarmr_manager::observe::METRICS;
        Work {
            passes: ["orchestrator", "allocator", "scheduler"].map(|c| metrics.passes(c)),
            pushed: metrics.assignments_pushed(),
        }
    }

    fn since(&self, before: &Work) -> Work {
        Work {
            passes: std::array::from_fn(|i| self.passes[i].saturating_sub(before.passes[i])),
            pushed: self.pushed.saturating_sub(before.pushed),
        }
    }
}

/// Milestones of the service's tasks, from the store's change feed.
#[derive(Default)]
struct Progress {
    states: HashMap<String, TaskState>,
    /// Tasks at or past each milestone.
    counts: [usize; 4],
    reached: [Option<f64>; 4],
}

const MILESTONES: [(&str, TaskState); 4] = [
    ("created (NEW)", TaskState::New),
    ("allocated (PENDING)", TaskState::Pending),
    ("placed (ASSIGNED)", TaskState::Assigned),
    ("acknowledged (RUNNING)", TaskState::Running),
];

impl Progress {
    fn see(&mut self, task: &Task) {
        let now = task.current_state();
        let before = self.states.get(&task.id).copied();
        if before.is_some_and(|b| b >= now) {
            return;
        }
        self.states.insert(task.id.clone(), now);
        for (i, (_, milestone)) in MILESTONES.iter().enumerate() {
            if now >= *milestone && before.is_none_or(|b| b < *milestone) {
                self.counts[i] += 1;
            }
        }
    }
    fn mark(&mut self, total: usize, elapsed: f64) {
        for i in 0..MILESTONES.len() {
            if self.reached[i].is_none() && self.counts[i] >= total {
                self.reached[i] = Some(elapsed);
            }
        }
    }
    fn done(&self) -> bool {
        self.reached.iter().all(Option::is_some)
    }
}

/// Follows the store until every task is RUNNING or the time is up.
async fn watch_progress(
    manager: &Manager,
    mut events: broadcast::Receiver<Arc<StoreEvent>>,
    start: Instant,
    total: usize,
    limit: Duration,
) -> Progress {
    let mut progress = Progress::default();
    let mut last_print = Instant::now();
    let deadline = start + limit;
    while !progress.done() && Instant::now() < deadline {
        let event = tokio::time::timeout(Duration::from_secs(1), events.recv()).await;
        match event {
            Ok(Ok(event)) => {
                if let StoreEvent::Applied { actions, .. } = event.as_ref() {
                    for action in actions {
                        if let Some(Target::Task(task)) = &action.target {
                            progress.see(task);
                        }
                    }
                }
            }
            Ok(Err(broadcast::error::RecvError::Closed)) => break,
            // Lagged, a reset or a quiet second: read everything.
            Ok(Err(_)) | Err(_) => {
                if let Ok(tasks) = manager.core().store().list::<Task>() {
                    tasks.iter().for_each(|t| progress.see(t));
                }
            }
        }
        let elapsed = start.elapsed().as_secs_f64();
        progress.mark(total, elapsed);
        if last_print.elapsed() >= Duration::from_secs(5) {
            last_print = Instant::now();
            let [all, pending, assigned, running] = progress.counts;
            println!(
                "  t={elapsed:6.1} s: {all} tasks, {pending} pending+, {assigned} assigned+, {running} running; RSS {:.0} MB, CPU {:.1} s",
                proc_mb("VmRSS"),
                cpu_secs()
            );
        }
    }
    progress
}

/// The manager under test, serving Control and Dispatcher on a loopback port.
struct Bench {
    manager: Arc<Manager>,
    tls: ca::NodeTls,
    addr: String,
    stop_tx: watch::Sender<bool>,
    stop_rx: watch::Receiver<bool>,
    background: tokio::task::JoinSet<()>,
    _dir: tempfile::TempDir,
}

async fn start_manager(heartbeat: Duration) -> anyhow::Result<Bench> {
    let dir = tempfile::Builder::new()
        .prefix("swarmr-sched-bench-")
        .tempdir()?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?.to_string();
    let (cluster_id, node_id) = (ca::new_id(), ca::new_id());
    let root = ca::RootCa::generate(&cluster_id)?;
    let subject = ca::Subject {
        common_name: &node_id,
        role: ca::CertRole::Manager,
        cluster_id: &cluster_id,
    };
    let (cert, key) = root.issue_with_new_key(&subject, ca::DEFAULT_CERT_EXPIRY)?;
    // The simulated workers present the manager's certificate: this server has no
    // authorization layer, only the TLS every node speaks.
    let tls = ca::NodeTls::new(&root.cert_pem, &cert, &key)?;
    let config = ManagerConfig {
        data_dir: dir.path().to_path_buf(),
        node_id,
        raft_id: 1,
        api_addr: addr.clone(),
        snapshot_interval: 10_000,
        tls: tls.clone(),
        // A simulation: the key file may sit in the throwaway data dir.
        secrets_key_file: dir.path().join("secrets.key"),
    };
    let manager = Arc::new(Manager::open(&config).await?);
    let (stop_tx, stop_rx) = watch::channel(false);
    let router = tonic::transport::Server::builder()
        .add_service(ControlServer::new(manager.control_service()))
        .add_service(DispatcherServer::new(manager.dispatcher_service()));
    let mut background = tokio::task::JoinSet::new();
    let (mut halt, incoming) = (stop_rx.clone(), tls.incoming(listener));
    background.spawn(async move {
        let shutdown = async move {
            let _ = halt.wait_for(|s| *s).await;
        };
        let _ = router
            .serve_with_incoming_shutdown(incoming, shutdown)
            .await;
    });
    let (controllers, halt) = (manager.clone(), stop_rx.clone());
    background.spawn(async move { controllers.run_controllers(halt).await });
    let params = ClusterParams {
        cluster_id,
        hostname: "bench-manager".into(),
        engine_version: "none".into(),
        heartbeat_period: heartbeat,
        default_addr_pool: vec!["10.0.0.0/8".into()],
        subnet_size: 24,
        root,
        cert_expiry: ca::DEFAULT_CERT_EXPIRY,
    };
    manager.bootstrap(&params).await?;
    Ok(Bench {
        manager,
        tls,
        addr,
        stop_tx,
        stop_rx,
        background,
        _dir: dir,
    })
}

/// Commits the simulated nodes, 100 per proposal.
async fn register_nodes(bench: &Bench, ids: &[String]) -> anyhow::Result<()> {
    for (batch, chunk) in ids.chunks(100).enumerate() {
        let actions = chunk
            .iter()
            .enumerate()
            .map(|(j, id)| create_action(sim::sim_node((batch * 100 + j) as u64, id)))
            .collect();
        bench.manager.core().propose(actions).await?;
    }
    Ok(())
}

/// A real session and agent for each of the first `sessions` nodes, the reporter for the
/// rest; returns once every session got its first message.
async fn open_sessions(
    bench: &mut Bench,
    ids: &[String],
    sessions: usize,
    limit: Duration,
) -> anyhow::Result<()> {
    let connect: swarmr_worker::Connect = {
        let tls = bench.tls.clone();
        Arc::new(move |addr: &str| {
            tls.channel(addr, ca::MANAGER_NAME)
                .map_err(|e| tonic::Status::unavailable(e.to_string()))
        })
    };
    let mut first_messages = Vec::new();
    for (i, id) in ids.iter().enumerate().take(sessions) {
        let (updates_tx, updates_rx) = watch::channel::<Option<SessionMessage>>(None);
        let (reports_tx, reports_rx) = mpsc::channel(1024);
        let session = SessionConfig {
            node_id: id.clone(),
            api_addr: format!("127.0.0.1:{}", 20000 + i),
            description: sim::description(i as u64),
            managers: vec![bench.addr.clone()],
            connect: connect.clone(),
        };
        let agent = Agent::new(Arc::new(MemoryExecutor::new()), id.clone());
        let halt = bench.stop_rx.clone();
        bench
            .background
            .spawn(agent.run(updates_rx.clone(), reports_tx, halt.clone()));
        bench.background.spawn(async move {
            let _ = swarmr_worker::run_session(session, updates_tx, reports_rx, halt).await;
        });
        first_messages.push(updates_rx);
    }
    let sessionless: HashSet<String> = ids.iter().skip(sessions).cloned().collect();
    if !sessionless.is_empty() {
        let store = bench.manager.core().store().clone();
        let channel = bench.tls.channel(&bench.addr, ca::MANAGER_NAME)?;
        let reporter =
            sim::sessionless_reporter(channel, store, sessionless, bench.stop_rx.clone());
        bench.background.spawn(reporter);
    }
    let opened = Instant::now();
    while first_messages.iter().any(|rx| rx.borrow().is_none()) {
        anyhow::ensure!(
            opened.elapsed() < limit,
            "sessions did not open in {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!(
        "{sessions} real sessions + agents established in {:.2} s ({} nodes simulated without a session); RSS {:.0} MB",
        opened.elapsed().as_secs_f64(),
        ids.len() - sessions,
        proc_mb("VmRSS")
    );
    Ok(())
}

/// Creates the service and follows it to RUNNING; prints the figures.
async fn measure(
    bench: &Bench,
    total: u64,
    nodes: u64,
    sessions: u64,
    limit: Duration,
) -> anyhow::Result<()> {
    let channel = bench.tls.channel(&bench.addr, ca::MANAGER_NAME)?;
    let mut control = ControlClient::new(channel);
    let spec = ServiceSpec {
        name: "scale".into(),
        container: Some(ContainerSpec {
            image: "swarmr/busybox:latest".into(),
            command: vec!["sleep".into(), "600".into()],
            ..Default::default()
        }),
        replicas: Some(total),
        ..Default::default()
    };
    let events = bench.manager.core().store().subscribe();
    let cpu_before = cpu_secs();
    let work_before = Work::now();
    let start = Instant::now();
    control
        .create_service(CreateServiceRequest { spec: Some(spec) })
        .await?;
    let created = start.elapsed().as_secs_f64();
    let progress = watch_progress(&bench.manager, events, start, total as usize, limit).await;
    println!("== scheduler at scale: {total} tasks, {nodes} nodes ({sessions} real sessions)");
    println!("CreateService returned after {created:.3} s");
    for (i, (what, _)) in MILESTONES.iter().enumerate() {
        match progress.reached[i] {
            Some(t) => println!("all {total} {what}: {t:.3} s"),
            None => println!("all {total} {what}: not reached in {} s", limit.as_secs()),
        }
    }
    let (cpu, wall) = (cpu_secs() - cpu_before, start.elapsed().as_secs_f64());
    println!("CPU used meanwhile: {cpu:.1} s in {wall:.1} s of wall time");
    // Counts, steadier than the times on 2 busy cores for telling two builds apart.
    let work = Work::now().since(&work_before);
    println!(
        "passes meanwhile: orchestrator {}, allocator {}, scheduler {}; session messages pushed {}",
        work.passes[0], work.passes[1], work.passes[2], work.pushed
    );
    println!("peak RSS (VmHWM): {:.0} MB", proc_mb("VmHWM"));
    // key=value figures for deploy/bench/all.sh; n/a where a milestone was not reached.
    let figure = |i: usize| progress.reached[i].map_or("n/a".into(), |t| format!("{t:.3}"));
    println!("scale_tasks={total}\nscale_nodes={nodes}");
    println!("placed_10k_s={}\nrunning_10k_s={}", figure(2), figure(3));
    println!("scale_peak_rss_mb={:.0}", proc_mb("VmHWM"));
    let verdict = |met: bool| if met { "met" } else { "missed" };
    println!(
        "aims: ASSIGNED under 3 s {}; peak RSS under 500 MB {}",
        verdict(progress.reached[2].is_some_and(|t| t < 3.0)),
        verdict(proc_mb("VmHWM") < 500.0)
    );
    Ok(())
}

/// With IDLE seconds, the CPU the heartbeats of `sessions` cost meanwhile.
async fn measure_idle(idle: u64, sessions: u64, heartbeat: Duration) {
    if idle == 0 {
        return;
    }
    let before = cpu_secs();
    tokio::time::sleep(Duration::from_secs(idle)).await;
    let used = cpu_secs() - before;
    println!(
        "idle {idle} s, {sessions} sessions heartbeating every {} ms: {used:.2} s of CPU ({:.1} % of one core)",
        heartbeat.as_millis(),
        100.0 * used / idle as f64
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let nodes = env_or("NODES", 1000);
    let total = env_or("TASKS", 10_000);
    let sessions = env_or("SESSIONS", nodes).min(nodes);
    let heartbeat = Duration::from_millis(env_or("HEARTBEAT", 5000));
    let limit = Duration::from_secs(env_or("TIMEOUT", 600));
    let mut bench = start_manager(heartbeat).await?;
    let ids: Vec<String> = (0..nodes).map(|_| ca::new_id()).collect();
    register_nodes(&bench, &ids).await?;
    open_sessions(&mut bench, &ids, sessions as usize, limit).await?;
    let result = measure(&bench, total, nodes, sessions, limit).await;
    measure_idle(env_or("IDLE", 0), sessions, heartbeat).await;
    let _ = bench.stop_tx.send(true);
    let drain = async { while bench.background.join_next().await.is_some() {} };
    let _ = tokio::time::timeout(Duration::from_secs(10), drain).await;
    bench.manager.shutdown().await;
    result
}
