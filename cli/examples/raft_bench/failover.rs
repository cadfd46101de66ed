//! Leader failover: kill -9 the leader, time until the next write through a survivor is
//! accepted. A trial that cannot be set up (a survivor slow to answer after the previous
//! restart) is retried, not fatal.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};
use swarmr_proto::control_client::ControlClient;
use swarmr_proto::UpdateNodeRequest;
use tonic::transport::Channel;

use super::cluster::{agreed_leader, all_reachable, wait_for, Manager};
use super::common::client;

/// How long a trial may wait for a survivor to answer, or for the restarted manager.
const SETTLE: Duration = Duration::from_secs(120);
/// How long after the kill a write may take before the trial counts as failed.
const GIVE_UP: Duration = Duration::from_secs(60);

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

/// A client of a survivor that has just committed a write, with the survivor's index.
async fn ready_survivor(
    managers: &[Manager],
    leader: usize,
) -> Option<(usize, ControlClient<Channel>)> {
    let deadline = Instant::now() + SETTLE;
    while Instant::now() < deadline {
        for step in 1..managers.len() {
            let si = (leader + step) % managers.len();
            let Some(mut c) = client(&managers[si].addr()).await else {
                continue;
            };
            let warm_up = c.update_node(label_write(&managers[si].name, 0));
            if let Ok(Ok(_)) = tokio::time::timeout(Duration::from_secs(10), warm_up).await {
                return Some((si, c));
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    None
}

/// Kills the leader and times the first write accepted through the survivor; `None` if
/// none was within [`GIVE_UP`].
async fn time_one(
    managers: &mut [Manager],
    leader: usize,
    survivor: usize,
    c: &mut ControlClient<Channel>,
) -> Option<f64> {
    let target = managers[survivor].name.clone();
    managers[leader].kill();
    let killed = Instant::now();
    let mut i = 1;
    while killed.elapsed() < GIVE_UP {
        let attempt = tokio::time::timeout(
            Duration::from_secs(2),
            c.update_node(label_write(&target, i)),
        )
        .await;
        if let Ok(Ok(_)) = attempt {
            return Some(killed.elapsed().as_secs_f64());
        }
        i += 1;
    }
    None
}

/// Runs `trials` failovers; returns the times of those that completed.
pub async fn failover(bin: &Path, managers: &mut [Manager], trials: usize) -> Result<Vec<f64>> {
    let mut times = Vec::new();
    for trial in 1..=trials {
        let leader = agreed_leader(managers).await?;
        let Some((survivor, mut c)) = ready_survivor(managers, leader).await else {
            println!("  trial {trial:2}: skipped, no survivor committed a write within {SETTLE:?}");
            continue;
        };
        let name = managers[leader].name.clone();
        match time_one(managers, leader, survivor, &mut c).await {
            Some(took) => {
                println!(
                    "  trial {trial:2}: leader {name} killed, write accepted after {took:.3} s"
                );
                times.push(took);
            }
            None => {
                println!("  trial {trial:2}: leader {name} killed, no write within {GIVE_UP:?}")
            }
        }
        managers[leader].start(bin)?;
        let addr = managers[survivor].addr();
        if let Err(e) = wait_for("the killed manager to rejoin", SETTLE, async || {
            all_reachable(&addr).await
        })
        .await
        {
            println!("  trial {trial:2}: {e}; going on");
        }
    }
    if times.is_empty() {
        return Err(anyhow!("no failover trial completed"));
    }
    Ok(times)
}
