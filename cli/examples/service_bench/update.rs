//! The rolling update trial: 30 replicas running, then `service update --force` with
//! parallelism 3, no delay, stop-first; timed until every slot runs a new task and until
//! the update status is `completed` (which adds the 5 s monitor of the last group).

use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use swarmr_proto::{
    ContainerSpec, ListTasksRequest, TaskState, UpdateConfig, UpdateServiceRequest, UpdateState,
};

use crate::cluster::Client;
use crate::converge::{create, remove, sleeper, until_running, view};

/// Returns the seconds until every task was replaced, and until the update completed.
pub async fn trial(c: &mut Client, name: &str, replicas: u64) -> Result<(f64, f64)> {
    let spec = sleeper(name, replicas, |spec| {
        spec.update_config = Some(UpdateConfig {
            parallelism: 3,
            monitor_ms: Some(5_000),
            ..Default::default()
        });
        if let Some(container) = spec.container.as_mut() {
            // Stopped old tasks leave at once instead of after the 10 s grace (sleep as
            // PID 1 ignores SIGTERM).
            container.stop_grace_period_ms = Some(0);
        }
    });
    let service = create(c, spec).await?;
    until_running(c, &service.id, replicas, Instant::now()).await?;
    let version = service.meta.as_ref().map_or(0, |m| m.version);
    let mut spec = service.spec.clone().context("service without a spec")?;
    if let Some(container) = spec.container.as_mut() {
        container.force_update += 1;
    }
    let template = spec.container.clone();
    let request = UpdateServiceRequest {
        reference: service.id.clone(),
        spec: Some(spec),
        version,
    };
    let start = Instant::now();
    c.update_service(request).await.context("update")?;
    let mut replaced = None;
    let completed = loop {
        let fresh = fresh_running(c, &service.id, &template).await?;
        if fresh == replicas && replaced.is_none() {
            replaced = Some(start.elapsed().as_secs_f64());
        }
        if update_state(c, &service.id).await? == Some(UpdateState::Completed) {
            break start.elapsed().as_secs_f64();
        }
        if start.elapsed() > Duration::from_secs(300) {
            bail!("{name}: the update did not complete in 300 s");
        }
        tokio::time::sleep(crate::POLL).await;
    };
    remove(c, &service.id).await?;
    let replaced = replaced.unwrap_or(completed);
    println!("  {name}: {replicas} replicas replaced after {replaced:.3} s, update completed after {completed:.3} s");
    Ok((replaced, completed))
}

/// Tasks running the given container spec and wanted.
async fn fresh_running(c: &mut Client, id: &str, template: &Option<ContainerSpec>) -> Result<u64> {
    let request = ListTasksRequest {
        service: id.to_string(),
    };
    let tasks = c
        .list_tasks(request)
        .await
        .context("list tasks")?
        .into_inner()
        .tasks;
    let fresh = tasks
        .iter()
        .filter_map(|t| t.task.as_ref())
        .filter(|t| &t.container == template && t.desired_state() == TaskState::Running)
        .filter(|t| {
            t.status
                .as_ref()
                .is_some_and(|s| s.state() == TaskState::Running)
        })
        .count();
    Ok(fresh as u64)
}

async fn update_state(c: &mut Client, id: &str) -> Result<Option<UpdateState>> {
    let service = view(c, id).await?.service;
    Ok(service.and_then(|s| s.update_status).map(|s| s.state()))
}
