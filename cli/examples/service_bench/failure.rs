//! A node's memory at 10 tasks, and failure detection: a worker killed (-9) with tasks on
//! it, timed until it is Down and until its tasks run on the other worker (default
//! heartbeat settings).

use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use swarmr_proto::{ListNodesRequest, ListTasksRequest, NodeState, TaskState};

use crate::cluster::{nodes_in, wait_for, Client, Cluster};
use crate::converge::{create, remove, sleeper, until_running};

/// The resident memory of worker w1 once 10 replicas run on it, in MB.
pub async fn rss_at_ten_tasks(c: &mut Client, cluster: &mut Cluster) -> Result<f64> {
    let spec = sleeper("bench-rss", 10, |s| {
        s.constraints = vec!["node.hostname==w1".into()]
    });
    let service = create(c, spec).await?;
    until_running(c, &service.id, 10, Instant::now()).await?;
    // Let the session's first rounds of reports and rules settle.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rss = cluster.node("w1")?.rss_mb().context("w1 is not running")?;
    remove(c, &service.id).await?;
    println!("  w1 with 10 tasks: RSS {rss:.1} MB");
    Ok(rss)
}

/// Kills w1 while it runs some of 4 worker-only replicas; returns the seconds until w1 is
/// Down and until all 4 replicas run on w2. Leaves w1 dead: run it last.
pub async fn worker_killed(c: &mut Client, cluster: &mut Cluster) -> Result<(f64, f64)> {
    let replicas = 4;
    let spec = sleeper("bench-down", replicas, |s| {
        s.constraints = vec!["node.role==worker".into()]
    });
    let service = create(c, spec).await?;
    until_running(c, &service.id, replicas, Instant::now()).await?;
    let victim = node_id(c, "w1").await?;
    cluster.node("w1")?.kill();
    let killed = Instant::now();
    wait_for("w1 Down", Duration::from_secs(60), async || {
        nodes_in(c, NodeState::Down).await.iter().any(|n| n == "w1")
    })
    .await?;
    let down = killed.elapsed().as_secs_f64();
    wait_for("the replicas on w2", Duration::from_secs(60), async || {
        running_off(c, &service.id, &victim).await == replicas
    })
    .await?;
    let moved = killed.elapsed().as_secs_f64();
    println!("  w1 killed: Down after {down:.3} s, its tasks running on w2 after {moved:.3} s");
    Ok((down, moved))
}

async fn node_id(c: &mut Client, hostname: &str) -> Result<String> {
    let nodes = c
        .list_nodes(ListNodesRequest {})
        .await
        .context("list nodes")?;
    let node = nodes
        .into_inner()
        .nodes
        .into_iter()
        .filter_map(|v| v.node)
        .find(|n| {
            n.description
                .as_ref()
                .is_some_and(|d| d.hostname == hostname)
        });
    Ok(node.context("no such node")?.id)
}

/// Tasks of the service running, and wanted, on nodes other than `node`.
async fn running_off(c: &mut Client, service: &str, node: &str) -> u64 {
    let request = ListTasksRequest {
        service: service.to_string(),
    };
    let Ok(reply) = c.list_tasks(request).await else {
        return 0;
    };
    let tasks = reply.into_inner().tasks;
    let running = tasks
        .iter()
        .filter_map(|t| t.task.as_ref())
        .filter(|t| t.node_id != node && t.desired_state() == TaskState::Running)
        .filter(|t| {
            t.status
                .as_ref()
                .is_some_and(|s| s.state() == TaskState::Running)
        })
        .count();
    running as u64
}
