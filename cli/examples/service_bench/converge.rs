//! Convergence trials: `service create` until every replica runs, beside the Docker floor.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use swarmr_proto::{
    ContainerSpec, CreateServiceRequest, GetServiceRequest, RemoveServiceRequest, Service,
    ServiceSpec, ServiceView,
};
use swarmr_worker::executor::{
    ContainerSpec as WorkerContainerSpec, DockerExecutor, Executor as _,
};
use tokio::task::JoinSet;

use crate::cluster::{docker_ps, floor_node_id, remove_containers, wait_for, Client};
use crate::IMAGE;

/// A `sleep 600` service of `replicas`, with the spec's other fields from `tune`.
pub fn sleeper(name: &str, replicas: u64, tune: impl FnOnce(&mut ServiceSpec)) -> ServiceSpec {
    let mut spec = ServiceSpec {
        name: name.to_string(),
        container: Some(ContainerSpec {
            image: IMAGE.into(),
            command: vec!["sleep".into(), "600".into()],
            ..Default::default()
        }),
        replicas: Some(replicas),
        ..Default::default()
    };
    tune(&mut spec);
    spec
}

pub async fn create(c: &mut Client, spec: ServiceSpec) -> Result<Service> {
    let created = c
        .create_service(CreateServiceRequest { spec: Some(spec) })
        .await
        .context("create service")?;
    created
        .into_inner()
        .service
        .context("no service in the reply")
}

/// The service as the manager shows it now.
pub async fn view(c: &mut Client, id: &str) -> Result<ServiceView> {
    let request = GetServiceRequest {
        reference: id.to_string(),
    };
    let reply = c.get_service(request).await.context("get service")?;
    reply.into_inner().service.context("no service view")
}

/// Running and desired replicas of a service.
pub async fn counts(c: &mut Client, id: &str) -> Result<(u64, u64)> {
    let view = view(c, id).await?;
    Ok((view.running, view.desired))
}

/// Waits until `replicas` of the service run; the seconds from `start`.
pub async fn until_running(c: &mut Client, id: &str, replicas: u64, start: Instant) -> Result<f64> {
    let deadline = start + Duration::from_secs(300);
    loop {
        let (running, desired) = counts(c, id).await?;
        if running == replicas && desired == replicas {
            return Ok(start.elapsed().as_secs_f64());
        }
        if Instant::now() > deadline {
            bail!("{id}: {running} of {replicas} replicas running after 300 s");
        }
        tokio::time::sleep(crate::POLL).await;
    }
}

/// Removes the service and waits until its containers are gone.
pub async fn remove(c: &mut Client, id: &str) -> Result<f64> {
    let request = RemoveServiceRequest {
        reference: id.to_string(),
    };
    c.remove_service(request).await.context("remove service")?;
    let filter = format!("label=com.swarmr.service.id={id}");
    wait_for(
        "the containers to go",
        Duration::from_secs(120),
        async || docker_ps(&filter).is_empty(),
    )
    .await
}

/// One trial: create, wait until every replica runs, remove, wait until no container is
/// left. Returns the convergence time in seconds.
pub async fn trial(c: &mut Client, name: &str, replicas: u64) -> Result<f64> {
    let start = Instant::now();
    let service = create(c, sleeper(name, replicas, |_| {})).await?;
    let took = until_running(c, &service.id, replicas, start).await?;
    let gone = remove(c, &service.id).await?;
    println!("  {name}: {replicas:3} replicas running after {took:.3} s (containers gone {gone:.1} s after rm)");
    Ok(took)
}

/// The containers a floor starts: the image and its command (empty: the image's own).
pub struct Floor<'a> {
    pub image: &'a str,
    pub command: &'a [&'a str],
}

/// How long a floor may take: 100 containers start in ~10 s here.
const FLOOR_LIMIT: Duration = Duration::from_secs(180);

/// The benchmark's own services' containers.
pub const SLEEPERS: Floor<'static> = Floor {
    image: IMAGE,
    command: &["sleep", "600"],
};

/// The Docker floor: `replicas` containers created and started at once through the worker's
/// executor (the same bollard calls, no orchestration), timed until all run, then removed.
pub async fn docker_floor(
    executor: &Arc<DockerExecutor>,
    what: &Floor<'_>,
    tag: &str,
    replicas: u64,
) -> Result<f64> {
    let node_id = floor_node_id();
    let start = Instant::now();
    let mut starts = JoinSet::new();
    for slot in 0..replicas {
        let executor = executor.clone();
        let spec = WorkerContainerSpec {
            name: format!("{tag}.{slot}"),
            image: what.image.into(),
            command: what.command.iter().map(|s| s.to_string()).collect(),
            node_id: node_id.clone(),
            task_id: format!("{tag}-{slot}"),
            ..Default::default()
        };
        starts.spawn(async move {
            let id = executor.create(&spec).await?;
            executor.start(&id).await
        });
    }
    let mut failed = None;
    let all_started = async {
        while let Some(started) = starts.join_next().await {
            match started {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => failed = Some(anyhow::Error::from(e)),
                Err(e) => failed = Some(e.into()),
            }
        }
    };
    // Docker 20.10's libnetwork can deadlock under concurrent creates and removals (seen
    // here once: every create then waits forever): fail the run rather than hang it.
    let timed_out = tokio::time::timeout(FLOOR_LIMIT, all_started)
        .await
        .is_err();
    let took = start.elapsed().as_secs_f64();
    if timed_out {
        bail!(
            "Docker did not start {replicas} containers in {} s: its daemon may be deadlocked \
             (`kill -USR1` on dockerd writes its goroutines to /var/run/docker); restart it",
            FLOOR_LIMIT.as_secs()
        );
    }
    remove_containers(&format!("label=com.swarmr.node.id={node_id}"));
    if let Some(e) = failed {
        return Err(e.context("a floor container did not start"));
    }
    println!("  {tag}: {replicas:3} containers straight through Docker after {took:.3} s");
    Ok(took)
}

/// The Docker floor of a rolling replacement: `replicas` containers in groups of `group`,
/// each group created and started at once once the previous one runs (as an update with
/// that parallelism does, without its health wait). The sum of the groups' times.
pub async fn rolling_floor(
    executor: &Arc<DockerExecutor>,
    what: &Floor<'_>,
    tag: &str,
    replicas: u64,
    group: u64,
) -> Result<f64> {
    let group = group.max(1);
    let mut total = 0.0;
    let mut done = 0;
    while done < replicas {
        let size = group.min(replicas - done);
        total += docker_floor(executor, what, &format!("{tag}-{done}"), size).await?;
        done += size;
    }
    println!(
        "  {tag}: {replicas:3} containers in groups of {group} through Docker after {total:.3} s"
    );
    Ok(total)
}

pub fn median(times: &mut [f64]) -> f64 {
    times.sort_by(f64::total_cmp);
    let n = times.len();
    match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => times[n / 2],
        _ => (times[n / 2 - 1] + times[n / 2]) / 2.0,
    }
}
