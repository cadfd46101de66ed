//! The rolling update trial: 30 replicas running, then `service update --force` with
//! parallelism 3, no delay, stop-first; timed until every slot runs a new task and until
//! the update status is `completed` (which adds the 5 s monitor of the last group).

use std::time::{Duration, Instant};

use swarmr_proto::control_client::ControlClient;
use swarmr_proto::{
    ContainerSpec, CreateServiceRequest, GetServiceRequest, ListTasksRequest, RemoveServiceRequest,
    Service, ServiceSpec, TaskState, UpdateConfig, UpdateServiceRequest, UpdateState,
};
use tonic::transport::Channel;

use crate::{docker_ps, wait_for, IMAGE, POLL};

type Client = ControlClient<Channel>;

/// Returns the seconds until every task was replaced, and until the update completed.
pub async fn trial(c: &mut Client, name: &str, replicas: u64) -> (f64, f64) {
    let service = create_running(c, name, replicas).await;
    let mut spec = service.spec.clone().expect("spec");
    if let Some(container) = spec.container.as_mut() {
        container.force_update += 1;
    }
    let template = spec.container.clone();
    let request = UpdateServiceRequest {
        reference: service.id.clone(),
        spec: Some(spec),
        version: service.meta.map_or(0, |m| m.version),
    };
    let start = Instant::now();
    c.update_service(request).await.expect("update");
    let mut replaced = None;
    let completed = loop {
        let fresh = fresh_running(c, &service.id, &template).await;
        if fresh == replicas && replaced.is_none() {
            replaced = Some(start.elapsed().as_secs_f64());
        }
        if update_state(c, &service.id).await == Some(UpdateState::Completed) {
            break start.elapsed().as_secs_f64();
        }
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "{name}: update never completed"
        );
        tokio::time::sleep(POLL).await;
    };
    remove(c, &service.id).await;
    let replaced = replaced.unwrap_or(completed);
    println!("  {name}: {replicas} replicas replaced after {replaced:.3} s, update completed after {completed:.3} s");
    (replaced, completed)
}

/// The service, created and waited for until every replica runs.
async fn create_running(c: &mut Client, name: &str, replicas: u64) -> Service {
    let config = UpdateConfig {
        parallelism: 3,
        monitor_ms: Some(5_000),
        ..Default::default()
    };
    let spec = ServiceSpec {
        name: name.to_string(),
        container: Some(ContainerSpec {
            image: IMAGE.into(),
            command: vec!["sleep".into(), "600".into()],
            // Stopped old tasks leave at once instead of after the 10 s grace (sleep as
            // PID 1 ignores SIGTERM).
            stop_grace_period_ms: Some(0),
            ..Default::default()
        }),
        replicas: Some(replicas),
        update_config: Some(config),
        ..Default::default()
    };
    let request = CreateServiceRequest { spec: Some(spec) };
    let created = c
        .create_service(request)
        .await
        .expect("create")
        .into_inner();
    let id = created.service.expect("created service").id;
    let get = GetServiceRequest { reference: id };
    wait_for(
        "the replicas to run",
        Duration::from_secs(120),
        async || {
            let view = c
                .get_service(get.clone())
                .await
                .expect("get")
                .into_inner()
                .service;
            view.is_some_and(|v| v.running == replicas)
        },
    )
    .await;
    let view = c.get_service(get).await.expect("get").into_inner().service;
    view.and_then(|v| v.service).expect("service")
}

/// Tasks running the given container spec and wanted.
async fn fresh_running(c: &mut Client, id: &str, template: &Option<ContainerSpec>) -> u64 {
    let request = ListTasksRequest {
        service: id.to_string(),
    };
    let tasks = c
        .list_tasks(request)
        .await
        .expect("tasks")
        .into_inner()
        .tasks;
    tasks
        .iter()
        .filter_map(|t| t.task.as_ref())
        .filter(|t| &t.container == template && t.desired_state() == TaskState::Running)
        .filter(|t| {
            t.status
                .as_ref()
                .is_some_and(|s| s.state() == TaskState::Running)
        })
        .count() as u64
}

async fn update_state(c: &mut Client, id: &str) -> Option<UpdateState> {
    let request = GetServiceRequest {
        reference: id.to_string(),
    };
    let view = c.get_service(request).await.expect("get").into_inner();
    let service = view.service.and_then(|v| v.service)?;
    service.update_status.map(|s| s.state())
}

async fn remove(c: &mut Client, id: &str) {
    let request = RemoveServiceRequest {
        reference: id.to_string(),
    };
    c.remove_service(request).await.expect("remove service");
    let filter = format!("label=com.swarmr.service.id={id}");
    wait_for(
        "the containers to go",
        Duration::from_secs(120),
        async || docker_ps(&filter).is_empty(),
    )
    .await;
}
