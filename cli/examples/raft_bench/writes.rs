//! Write throughput: `network create` through the Control API with many writers in
//! flight; each create is one Raft entry with its own subnet and VNI, checked against
//! every existing network when applied.

use std::time::{Duration, Instant};

use anyhow::{anyhow, Context as _, Result};
use swarmr_proto::{CreateNetworkRequest, ListNetworksRequest, NetworkSpec};

use super::common::client;

/// One timed run.
pub struct Run {
    pub rate: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub failed: usize,
}

/// A write that takes longer than this counts as failed.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

/// Creates `writers * per_writer` networks named `<prefix>-<writer>-<i>`, with `writers`
/// requests in flight.
pub async fn throughput(addr: &str, prefix: &str, writers: u64, per_writer: u64) -> Result<Run> {
    let mut clients = Vec::new();
    for _ in 0..writers {
        clients.push(
            client(addr)
                .await
                .ok_or_else(|| anyhow!("the manager at {addr} does not answer"))?,
        );
    }
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for (w, mut c) in clients.into_iter().enumerate() {
        let prefix = prefix.to_string();
        tasks.spawn(async move {
            let mut latencies = Vec::new();
            let mut failed = Vec::new();
            for i in 0..per_writer {
                let spec = NetworkSpec {
                    name: format!("{prefix}-{w}-{i}"),
                    ..Default::default()
                };
                let began = Instant::now();
                let write = c.create_network(CreateNetworkRequest { spec: Some(spec) });
                match tokio::time::timeout(WRITE_TIMEOUT, write).await {
                    Ok(Ok(_)) => latencies.push(began.elapsed().as_secs_f64() * 1000.0),
                    Ok(Err(status)) => failed.push(status.message().to_string()),
                    Err(_) => failed.push(format!("no answer within {WRITE_TIMEOUT:?}")),
                }
            }
            (latencies, failed)
        });
    }
    let mut latencies = Vec::new();
    let mut failed = Vec::new();
    while let Some(done) = tasks.join_next().await {
        let (ok, bad) = done.context("a writer task")?;
        latencies.extend(ok);
        failed.extend(bad);
    }
    let elapsed = start.elapsed().as_secs_f64();
    if let Some(first) = failed.first() {
        println!("  {} writes failed, the first: {first}", failed.len());
    }
    latencies.sort_by(f64::total_cmp);
    Ok(Run {
        rate: latencies.len() as f64 / elapsed,
        p50_ms: percentile(&latencies, 0.5),
        p99_ms: percentile(&latencies, 0.99),
        failed: failed.len(),
    })
}

/// How many networks the cluster holds.
pub async fn count(addr: &str) -> Result<usize> {
    let mut c = client(addr)
        .await
        .ok_or_else(|| anyhow!("the manager at {addr} does not answer"))?;
    let reply = c
        .list_networks(ListNetworksRequest {})
        .await
        .context("list networks")?;
    Ok(reply.into_inner().networks.len())
}

/// Creates networks until the cluster holds at least `total`.
pub async fn fill(addr: &str, total: usize) -> Result<()> {
    const WRITERS: u64 = 64;
    let have = count(addr).await?;
    let missing = total.saturating_sub(have) as u64;
    if missing == 0 {
        return Ok(());
    }
    let run = throughput(addr, "fill", WRITERS, missing.div_ceil(WRITERS)).await?;
    println!(
        "  filled {have} -> {} networks at {:.0} writes/s",
        count(addr).await?,
        run.rate
    );
    Ok(())
}
