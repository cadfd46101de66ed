//! Control-plane benchmark: three real `swarmr` managers on loopback.
//!
//! - Leader failover: kill -9 the leader, time until the next write through a survivor is
//!   accepted; repeated TRIALS times (default 10), p50 and max.
//! - Write throughput: committed `network create`s per second and their latency, with one
//!   writer and with 64 in flight, through the leader; again once the cluster holds
//!   OBJECTS networks (default 10,000); and 64 writers through a follower.
//!
//! Run through `deploy/bench/raft.sh` (release build). Prints figures, asserts nothing; ends
//! with one `key=value` line per figure.

use std::path::PathBuf;

use anyhow::{Context as _, Result};

mod cluster;
#[path = "../common/mod.rs"]
mod common;
mod failover;
mod writes;

use cluster::{agreed_leader, start_cluster};
use writes::{percentile, throughput, Run};

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Prints one run and records its figures under `key`.
fn report(figures: &mut Vec<(String, String)>, key: &str, label: &str, run: &Run) {
    println!(
        "{label}: {:.0} writes/s, latency p50 {:.2} ms, p99 {:.2} ms{}",
        run.rate,
        run.p50_ms,
        run.p99_ms,
        if run.failed > 0 {
            format!(", {} failed", run.failed)
        } else {
            String::new()
        }
    );
    figures.push((format!("writes_per_s_{key}"), format!("{:.0}", run.rate)));
    figures.push((format!("write_p99_ms_{key}"), format!("{:.2}", run.p99_ms)));
}

#[tokio::main]
async fn main() -> Result<()> {
    let bin = PathBuf::from(
        std::env::var("SWARMR_BIN").unwrap_or_else(|_| "target/release/swarmr".into()),
    );
    let trials: usize = env_or("TRIALS", 10);
    let objects: usize = env_or("OBJECTS", 10_000);
    let root = tempfile::Builder::new()
        .prefix("swarmr-bench-")
        .tempdir()
        .context("tempdir")?;
    let mut managers = start_cluster(&bin, root.path()).await?;
    let mut figures = Vec::new();

    if trials > 0 {
        println!(
            "== leader failover (3 managers, kill -9 the leader, next write through a survivor)"
        );
        let mut times = failover::failover(&bin, &mut managers, trials).await?;
        times.sort_by(f64::total_cmp);
        let p50 = percentile(&times, 0.5);
        let max = times.last().copied().unwrap_or(f64::NAN);
        println!(
            "failover: p50 {p50:.3} s, max {max:.3} s over {} trials (Docker Swarm here: 12.4 s median, 10-21 s)",
            times.len()
        );
        figures.push(("failover_p50_s".into(), format!("{p50:.3}")));
        figures.push(("failover_max_s".into(), format!("{max:.3}")));
    }

    println!("== write throughput (3 managers, Control API network create)");
    let li = agreed_leader(&managers).await?;
    let leader = managers[li].addr();
    let follower = managers[(li + 1) % managers.len()].addr();
    let run = throughput(&leader, "one", 1, 300).await?;
    report(&mut figures, "1", "via leader, 1 writer", &run);
    let run = throughput(&leader, "many", 64, 40).await?;
    report(&mut figures, "64", "via leader, 64 writers", &run);
    writes::fill(&leader, objects).await?;
    let at = format!("{}k", objects / 1000);
    let run = throughput(&leader, "one-at", 1, 300).await?;
    report(
        &mut figures,
        &format!("1_at_{at}"),
        &format!("via leader at {objects} networks, 1 writer"),
        &run,
    );
    let run = throughput(&leader, "many-at", 64, 40).await?;
    report(
        &mut figures,
        &format!("64_at_{at}"),
        &format!("via leader at {objects} networks, 64 writers"),
        &run,
    );
    let run = throughput(&follower, "follower", 64, 40).await?;
    report(
        &mut figures,
        "64_follower",
        "via follower, 64 writers",
        &run,
    );

    for (key, value) in figures {
        println!("{key}={value}");
    }
    Ok(())
}
