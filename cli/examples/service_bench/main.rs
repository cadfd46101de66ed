//! Service benchmark: three real `swarmr` nodes on loopback (one manager, two workers)
//! sharing this host's Docker daemon, at default settings.
//!
//! 1. Convergence: for 3, 30 and 100 replicas of `swarmr/busybox:latest` running
//!    `sleep 600`, the time from the `CreateService` call until the service reports
//!    running == desired (polled every 20 ms), over TRIALS (default 5; TRIALS_100,
//!    default 3, for 100) trials; between trials the service is removed and the next
//!    waits until none of its containers remain. Each trial is paired with a Docker floor
//!    measured in the same run: as many containers created and started at once straight
//!    through the worker's executor (the same bollard calls), with no orchestration, so
//!    the figures say how much of the time is swarmr's own.
//! 2. One rolling update of 30 replicas (`--force`, parallelism 3, no delay): the time
//!    until every slot runs a new task and until the update completes, beside the rolling
//!    floor (the same 30 containers started in 10 groups of 3, one group after another).
//! 3. Worker w1's RSS with 10 tasks on it.
//! 4. Worker w1 killed (-9) with tasks on it: until it is Down, and until its tasks run
//!    on w2.
//!
//! `service_bench floor N IMAGE [GROUP]` prints only the floor for N containers of IMAGE
//! with its own command (`floor_s=`), all at once or in groups of GROUP one after another
//! (the floor of a rolling update), for `deploy/bench/update.sh`.
//!
//! Run through `deploy/bench/services.sh` (release build, root and Docker). Prints figures
//! and ends with key=value lines; asserts nothing. The nodes and every container labelled
//! with their node ids are removed at the end, also on an error.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use swarmr_worker::executor::DockerExecutor;

mod cluster;
#[path = "../common/mod.rs"]
mod common;
mod converge;
mod failure;
mod update;
use common::client;
use converge::{docker_floor, median, rolling_floor, trial, Floor, SLEEPERS};

const IMAGE: &str = "swarmr/busybox:latest";
/// Docker Swarm 20.10 here, `service create` until every replica runs (median).
const SWARM: [(u64, f64); 3] = [(3, 2.6), (30, 8.0), (100, 38.6)];
const POLL: Duration = Duration::from_millis(20);

type Figures = Vec<(String, String)>;

fn env_or(key: &str, default: usize) -> usize {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn put(figures: &mut Figures, key: impl Into<String>, value: f64) {
    figures.push((key.into(), format!("{value:.3}")));
}

/// Convergence for one size: medians of swarmr and of the floor over `trials`.
async fn convergence(
    c: &mut cluster::Client,
    executor: &Arc<DockerExecutor>,
    (replicas, swarm): (u64, f64),
    trials: usize,
    figures: &mut Figures,
) -> Result<()> {
    let (mut times, mut floors) = (Vec::new(), Vec::new());
    for t in 0..trials {
        let name = format!("bench-{replicas}-{t}-{}", std::process::id());
        times.push(trial(c, &name, replicas).await?);
        floors.push(
            docker_floor(
                executor,
                &SLEEPERS,
                &format!("floor-{replicas}-{t}"),
                replicas,
            )
            .await?,
        );
    }
    let (min, max) = times
        .iter()
        .fold((f64::MAX, 0f64), |(lo, hi), &t| (lo.min(t), hi.max(t)));
    let (med, floor) = (median(&mut times), median(&mut floors));
    println!(
        "converge {replicas:3} replicas: median {med:.3} s ({min:.3}-{max:.3}) over {trials} trials; Docker Swarm {swarm} s ({:.1}x faster); Docker floor (same containers, no orchestration) {floor:.3} s, swarmr/floor {:.2}",
        swarm / med,
        med / floor
    );
    put(figures, format!("converge_{replicas}_s"), med);
    put(figures, format!("converge_{replicas}_floor_s"), floor);
    put(
        figures,
        format!("converge_{replicas}_over_floor"),
        med / floor,
    );
    Ok(())
}

async fn run(bin: &Path, executor: &Arc<DockerExecutor>) -> Result<Figures> {
    let mut cluster = cluster::start(bin).await?;
    let mut c = client(&cluster.manager).await.context("manager client")?;
    let mut figures = Vec::new();
    println!("== service convergence (1 manager + 2 workers on loopback, real Docker, {IMAGE} sleep 600)");
    for size in SWARM {
        let trials = if size.0 >= 100 {
            env_or("TRIALS_100", 3)
        } else {
            env_or("TRIALS", 5)
        };
        if trials > 0 {
            convergence(&mut c, executor, size, trials, &mut figures).await?;
        }
    }
    println!("== rolling update (--force, parallelism 3, no delay, stop-first, monitor 5 s)");
    let name = format!("bench-update-{}", std::process::id());
    let (replaced, completed) = update::trial(&mut c, &name, 30).await?;
    let floor = rolling_floor(executor, &SLEEPERS, "floor-update", 30, 3).await?;
    println!("update 30 replicas: replaced/floor {:.2}", replaced / floor);
    put(&mut figures, "update_30_replaced_s", replaced);
    put(&mut figures, "update_30_completed_s", completed);
    put(&mut figures, "update_30_over_floor", replaced / floor);
    println!("== node memory and failure detection (default heartbeat)");
    put(
        &mut figures,
        "node_rss_mb",
        failure::rss_at_ten_tasks(&mut c, &mut cluster).await?,
    );
    let (down, moved) = failure::worker_killed(&mut c, &mut cluster).await?;
    put(&mut figures, "node_down_s", down);
    put(&mut figures, "rescheduled_s", moved);
    Ok(figures)
}

#[tokio::main]
async fn main() -> Result<()> {
    let bin = PathBuf::from(
        std::env::var("SWARMR_BIN").unwrap_or_else(|_| "target/release/swarmr".into()),
    );
    let image = Command::new("docker")
        .args(["image", "inspect", IMAGE])
        .output();
    if !image.context("run docker")?.status.success() {
        bail!("{IMAGE} is missing: run deploy/images/build.sh");
    }
    let executor = Arc::new(
        DockerExecutor::connect()
            .await
            .context("connect to Docker")?,
    );
    let args: Vec<String> = std::env::args().skip(1).collect();
    match &args[..] {
        [] => {}
        [mode, n, image, group @ ..] if mode == "floor" && group.len() <= 1 => {
            let n = n.parse().context("floor N: N is a number of containers")?;
            let what = Floor {
                image,
                command: &[],
            };
            let tag = format!("floor-{n}");
            let floor = match group.first() {
                None => docker_floor(&executor, &what, &tag, n).await?,
                Some(g) => {
                    let g = g
                        .parse()
                        .context("floor N IMAGE GROUP: GROUP is a number")?;
                    rolling_floor(&executor, &what, &tag, n, g).await?
                }
            };
            println!("floor_s={floor:.3}");
            return Ok(());
        }
        _ => bail!("usage: service_bench [floor N IMAGE [GROUP]]"),
    }
    for (key, value) in run(&bin, &executor).await? {
        println!("{key}={value}");
    }
    Ok(())
}
