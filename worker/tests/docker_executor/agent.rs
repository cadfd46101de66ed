//! The task agent on the Docker executor: its own node id per test, removed at the end
//! (also when it fails) by `util::cleanup`.

use std::future::Future;
use std::panic::{resume_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Duration;

use bollard::query_parameters::KillContainerOptions;
use futures::FutureExt;
use swarmr_proto::{ContainerSpec, SessionMessage, Task, TaskState, TaskStatus, TaskStatusUpdate};
use swarmr_worker::executor::{ContainerState, DockerExecutor, Executor};
use swarmr_worker::Agent;
use tokio::sync::{mpsc, watch};

use crate::util::{cleanup, IMAGE};

/// Upper bound for anything a test waits for (an agent's report takes longer than a
/// direct executor call).
const WAIT: Duration = Duration::from_secs(45);

struct TestAgent {
    exec: Arc<DockerExecutor>,
    node_id: String,
    sessions: watch::Sender<Option<SessionMessage>>,
    reports: mpsc::Receiver<TaskStatusUpdate>,
}

impl TestAgent {
    fn task(&self, id: &str, image: &str, desired: TaskState) -> Task {
        Task {
            id: format!("{id}-{}", self.node_id),
            service_id: "svc".into(),
            service_name: "agenttest".into(),
            slot: 1,
            node_id: self.node_id.clone(),
            desired_state: desired as i32,
            status: Some(TaskStatus {
                state: TaskState::Assigned as i32,
                ..Default::default()
            }),
            container: Some(ContainerSpec {
                image: image.into(),
                command: vec!["sleep".into(), "600".into()],
                env: vec!["SWARMR_TEST=1".into()],
                labels: [("test".to_string(), "agent".to_string())].into(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn send(&self, tasks: Vec<Task>) {
        self.sessions.send_replace(Some(SessionMessage {
            tasks,
            ..Default::default()
        }));
    }

    /// Reports until one in `state`; panics on a terminal state first, or after `WAIT`.
    async fn wait_for(&mut self, state: TaskState) -> TaskStatus {
        let wait = async {
            loop {
                let update = self.reports.recv().await.expect("reports open");
                let status = update.status.expect("a status");
                if status.state() == state {
                    return status;
                }
                assert!(
                    status.state() < TaskState::Complete,
                    "ended in {:?} ({}) waiting for {state:?}",
                    status.state(),
                    status.error
                );
            }
        };
        tokio::time::timeout(WAIT, wait)
            .await
            .unwrap_or_else(|_| panic!("no {state:?} report in time"))
    }
}

/// Runs an agent for a fresh node id around `body`, then shuts it down and removes every
/// container of that node, whether the body passed or panicked.
async fn with_agent<F, Fut>(body: F)
where
    F: FnOnce(TestAgent) -> Fut,
    Fut: Future<Output = ()>,
{
    let node_id = format!("agent-{:016x}", rand::random::<u64>());
    let exec = DockerExecutor::connect().await.expect("connect to Docker");
    let exec = Arc::new(exec.with_pull_timeout(Duration::from_secs(20)));
    let (sessions, sessions_rx) = watch::channel(None);
    let (reports_tx, reports) = mpsc::channel(64);
    let (shutdown, shutdown_rx) = watch::channel(false);
    let agent = Agent::new(exec.clone(), node_id.clone())
        // Longer than any test: what happens must come from session messages and events.
        .with_rescan_period(Duration::from_secs(300))
        .with_stop_grace(Duration::from_secs(1));
    let running = tokio::spawn(agent.run(sessions_rx, reports_tx, shutdown_rx));
    let test = TestAgent {
        exec: exec.clone(),
        node_id: node_id.clone(),
        sessions,
        reports,
    };
    let outcome = AssertUnwindSafe(body(test)).catch_unwind().await;
    shutdown.send_replace(true);
    let _ = running.await;
    cleanup(&exec, &node_id).await;
    if let Err(panic) = outcome {
        resume_unwind(panic);
    }
}

#[tokio::test]
#[ignore = "needs Docker and swarmr/busybox:latest"]
async fn a_task_runs_in_a_container_then_shuts_down() {
    with_agent(|mut t| async move {
        let task = t.task("web", IMAGE, TaskState::Running);
        t.send(vec![task.clone()]);
        let running = t.wait_for(TaskState::Running).await;
        assert!(running.pid > 0);
        let listed = t.exec.list(&t.node_id).await.unwrap();
        assert_eq!(listed.len(), 1);
        let container = &listed[0];
        assert_eq!(container.container_id, running.container_id);
        assert_eq!(container.state, ContainerState::Running);
        assert_eq!(container.name, format!("agenttest.1.{}", task.id));
        assert_eq!(container.pid, Some(running.pid));

        let mut stopping = task.clone();
        stopping.desired_state = TaskState::Shutdown as i32;
        stopping.status = Some(running);
        t.send(vec![stopping]);
        t.wait_for(TaskState::Shutdown).await;
        assert!(t.exec.list(&t.node_id).await.unwrap().is_empty());
    })
    .await;
}

#[tokio::test]
#[ignore = "needs Docker (no registry is reachable)"]
async fn a_task_with_a_missing_image_is_rejected() {
    with_agent(|mut t| async move {
        let task = t.task("nope", "swarmr/does-not-exist:1", TaskState::Running);
        t.send(vec![task]);
        let rejected = t.wait_for(TaskState::Rejected).await;
        assert!(
            rejected.error.contains("swarmr/does-not-exist:1")
                && rejected.error.contains("not found locally"),
            "{}",
            rejected.error
        );
        assert!(t.exec.list(&t.node_id).await.unwrap().is_empty());
    })
    .await;
}

#[tokio::test]
#[ignore = "needs Docker and swarmr/busybox:latest"]
async fn a_killed_container_fails_its_task_and_is_not_restarted() {
    with_agent(|mut t| async move {
        t.send(vec![t.task("web", IMAGE, TaskState::Running)]);
        let running = t.wait_for(TaskState::Running).await;
        let docker = bollard::Docker::connect_with_local_defaults().unwrap();
        let kill = KillContainerOptions {
            signal: "SIGKILL".to_string(),
        };
        docker
            .kill_container(&running.container_id, Some(kill))
            .await
            .unwrap();
        let failed = t.wait_for(TaskState::Failed).await;
        assert_eq!(failed.exit_code, 137);
        assert_eq!(failed.error, "task: non-zero exit (137)");
        tokio::time::sleep(Duration::from_millis(500)).await;
        let listed = t.exec.list(&t.node_id).await.unwrap();
        assert_eq!(listed.len(), 1, "no second container");
        assert!(!listed[0].state.is_running(), "not restarted");
    })
    .await;
}

#[tokio::test]
#[ignore = "needs Docker and swarmr/busybox:latest"]
async fn a_restarted_agent_adopts_the_running_container() {
    with_agent(|mut t| async move {
        let task = t.task("web", IMAGE, TaskState::Running);
        t.send(vec![task.clone()]);
        let first = t.wait_for(TaskState::Running).await;

        // A second agent of the same node, as after a restart; the manager has not yet
        // seen the first one's reports.
        let (sessions, sessions_rx) = watch::channel(None);
        let (reports_tx, reports) = mpsc::channel(64);
        let (shutdown, shutdown_rx) = watch::channel(false);
        let agent = Agent::new(t.exec.clone(), t.node_id.clone());
        let running = tokio::spawn(agent.run(sessions_rx, reports_tx, shutdown_rx));
        let mut again = TestAgent {
            exec: t.exec.clone(),
            node_id: t.node_id.clone(),
            sessions,
            reports,
        };
        again.send(vec![task]);
        let adopted = again.wait_for(TaskState::Running).await;
        shutdown.send_replace(true);
        let _ = running.await;
        assert_eq!(adopted.container_id, first.container_id);
        assert_eq!(adopted.pid, first.pid);
        assert_eq!(
            t.exec.list(&t.node_id).await.unwrap().len(),
            1,
            "no duplicate"
        );
    })
    .await;
}
