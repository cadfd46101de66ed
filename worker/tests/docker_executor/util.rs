//! A per-test node id, its executor, and cleanup by node label.

use std::future::Future;
use std::panic::{resume_unwind, AssertUnwindSafe};
use std::time::Duration;

use bollard::Docker;
use futures::FutureExt;
use swarmr_worker::executor::{ContainerSpec, DockerExecutor, Executor};

pub const IMAGE: &str = "swarmr/busybox:latest";
/// Upper bound for anything a test waits for.
pub const WAIT: Duration = Duration::from_secs(30);

/// One test's view: an executor, a node id nobody else uses, and a raw client for checks.
pub struct TestNode {
    pub exec: DockerExecutor,
    pub node_id: String,
    /// A second node id sharing the daemon, also cleaned up.
    pub other_node_id: String,
    pub docker: Docker,
}

impl TestNode {
    /// A spec for a task of this node (or of `node_id`) running `command`.
    pub fn spec_on(&self, node_id: &str, task: &str, command: &[&str]) -> ContainerSpec {
        let task_id = format!("{task}-{}", self.node_id);
        ContainerSpec {
            name: format!("svc.1.{task_id}"),
            image: IMAGE.to_string(),
            command: command.iter().map(|s| s.to_string()).collect(),
            env: vec!["SWARMR_TEST=1".to_string()],
            labels: [("test".to_string(), "executor".to_string())].into(),
            node_id: node_id.to_string(),
            service_id: "svc".to_string(),
            task_id,
            hostname: Some(task.to_string()),
            dns: Vec::new(),
            healthcheck: None,
            stop_signal: None,
            options: Default::default(),
        }
    }

    pub fn spec(&self, task: &str, command: &[&str]) -> ContainerSpec {
        self.spec_on(&self.node_id, task, command)
    }
}

/// Runs `body` with a fresh test node, then removes every container of its node ids,
/// whether the body passed or panicked.
pub async fn with_node<F, Fut>(body: F)
where
    F: FnOnce(TestNode) -> Fut,
    Fut: Future<Output = ()>,
{
    let node_id = format!("test-{:016x}", rand::random::<u64>());
    let exec = DockerExecutor::connect().await.expect("connect to Docker");
    let docker = Docker::connect_with_local_defaults()
        .expect("docker client")
        .negotiate_version()
        .await
        .expect("negotiate");
    let node = TestNode {
        exec: exec.clone(),
        other_node_id: format!("{node_id}-other"),
        node_id: node_id.clone(),
        docker,
    };
    let ids = [node.node_id.clone(), node.other_node_id.clone()];
    let outcome = AssertUnwindSafe(body(node)).catch_unwind().await;
    for id in ids {
        cleanup(&exec, &id).await;
    }
    if let Err(panic) = outcome {
        resume_unwind(panic);
    }
}

/// Removes every container labelled with `node_id`.
pub async fn cleanup(exec: &DockerExecutor, node_id: &str) {
    let Ok(containers) = exec.list(node_id).await else {
        eprintln!("cleanup: cannot list containers of {node_id}");
        return;
    };
    for c in containers {
        if let Err(err) = exec.remove(&c.container_id).await {
            eprintln!("cleanup: {}", err.report());
        }
    }
}

/// Creates and starts a container for `spec`, returning its id.
pub async fn run(exec: &DockerExecutor, spec: &ContainerSpec) -> String {
    exec.prepare(spec).await.expect("prepare");
    let id = exec.create(spec).await.expect("create");
    exec.start(&id).await.expect("start");
    id
}
