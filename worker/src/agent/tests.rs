//! The agent's decisions (pure, table-like) and its loop over the in-memory executor.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use swarmr_proto::{
    ContainerSpec as TaskContainer, SessionMessage, Task, TaskState, TaskStatus, TaskStatusUpdate,
};
use tokio::sync::{mpsc, watch};

use super::plan::{advances, only_echoes, plan, Action, OpKind, View};
use super::task::container_name;
use super::Agent;
use crate::executor::{ContainerSpec, ContainerState, ContainerStatus, Executor, MemoryExecutor};

const NODE: &str = "n1";

fn task(id: &str, desired: TaskState, state: TaskState) -> Task {
    Task {
        id: id.to_string(),
        service_id: "s1".into(),
        service_name: "web".into(),
        slot: 1,
        node_id: NODE.into(),
        desired_state: desired as i32,
        status: Some(TaskStatus {
            state: state as i32,
            ..Default::default()
        }),
        container: Some(TaskContainer {
            image: "swarmr/busybox:latest".into(),
            command: vec!["sleep".into(), "600".into()],
            env: vec!["A=1".into()],
            labels: [("team".to_string(), "blue".to_string())].into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn container(task_id: &str, state: ContainerState) -> ContainerStatus {
    let running = state.is_running();
    ContainerStatus {
        container_id: format!("c-{task_id}"),
        name: format!("web.1.{task_id}"),
        task_id: task_id.to_string(),
        service_id: "s1".into(),
        state,
        pid: running.then_some(4242),
        started_at: None,
        finished_at: None,
        oom_killed: false,
        error: None,
        health: None,
    }
}

/// One decision's inputs; `outcome` applies a plan's effect on them, as the loop does.
#[derive(Default)]
struct Case {
    tasks: Option<BTreeMap<String, Task>>,
    containers: Vec<ContainerStatus>,
    busy: HashMap<String, OpKind>,
    reported: HashMap<String, TaskState>,
}

impl Case {
    fn with_tasks(tasks: Vec<Task>) -> Self {
        Case {
            tasks: Some(tasks.into_iter().map(|t| (t.id.clone(), t)).collect()),
            ..Default::default()
        }
    }

    fn containers(mut self, containers: Vec<ContainerStatus>) -> Self {
        self.containers = containers;
        self
    }

    fn plan(&self) -> Vec<Action> {
        plan(&View {
            tasks: self.tasks.as_ref(),
            containers: &self.containers,
            busy: &self.busy,
            reported: &self.reported,
            node_id: NODE,
            node_hostname: "host-1",
        })
    }

    /// Records what applying `actions` leaves behind: reports sent, operations in flight.
    fn record(&mut self, actions: &[Action]) {
        for action in actions {
            match action {
                Action::Report { task_id, status } => {
                    self.reported.insert(task_id.clone(), status.state());
                }
                Action::Start { spec } => {
                    self.busy.insert(spec.task_id.clone(), OpKind::Start);
                }
                Action::Stop { key, .. } => {
                    self.busy.insert(key.clone(), OpKind::Stop);
                }
                Action::Cancel { key } => {
                    self.busy.remove(key);
                }
            }
        }
    }

    /// Plans, records, and checks that the same input again asks for nothing.
    fn plan_once(&mut self) -> Vec<Action> {
        let actions = self.plan();
        self.record(&actions);
        assert_eq!(self.plan(), [], "same input twice gives no actions");
        actions
    }
}

fn reported(actions: &[Action]) -> Vec<(String, TaskStatus)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Report { task_id, status } => Some((task_id.clone(), status.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn an_assigned_task_is_started_with_its_spec() {
    let mut case = Case::with_tasks(vec![task("t1", TaskState::Running, TaskState::Assigned)]);
    let actions = case.plan_once();
    let expected = ContainerSpec {
        name: "web.1.t1".into(),
        image: "swarmr/busybox:latest".into(),
        command: vec!["sleep".into(), "600".into()],
        env: vec!["A=1".into()],
        labels: [("team".to_string(), "blue".to_string())].into(),
        node_id: NODE.into(),
        service_id: "s1".into(),
        task_id: "t1".into(),
        hostname: None,
        dns: Vec::new(),
        healthcheck: None,
        stop_signal: None,
        binds: Vec::new(),
        options: Default::default(),
    };
    assert_eq!(actions, [Action::Start { spec: expected }]);
}

#[test]
fn hostname_templates_expand_on_the_node_and_options_follow_the_spec() {
    let mut t = task("t1", TaskState::Running, TaskState::Assigned);
    if let Some(c) = t.container.as_mut() {
        c.hostname = "{{.Service.Name}}-{{.Task.Slot}}.{{.Node.Hostname}}".into();
        c.hosts = vec!["10.0.0.5 db cache".into()];
        c.init = Some(true);
        c.resources = Some(swarmr_proto::ResourceRequirements {
            limits: Some(swarmr_proto::Resources {
                nano_cpus: 500_000_000,
                memory_bytes: 64 << 20,
            }),
            reservations: Some(swarmr_proto::Resources {
                nano_cpus: 0,
                memory_bytes: 32 << 20,
            }),
        });
    }
    let mut case = Case::with_tasks(vec![t]);
    let actions = case.plan_once();
    let [Action::Start { spec }] = actions.as_slice() else {
        panic!("not one start: {actions:?}");
    };
    assert_eq!(spec.hostname.as_deref(), Some("web-1.host-1"));
    assert_eq!(spec.options.extra_hosts, ["db:10.0.0.5", "cache:10.0.0.5"]);
    assert!(spec.options.init);
    assert_eq!(spec.options.limits.memory_bytes, 64 << 20);
    assert_eq!(spec.options.memory_reservation, 32 << 20);
}

#[test]
fn a_global_task_is_named_after_its_node() {
    let mut t = task("t1", TaskState::Running, TaskState::Assigned);
    t.slot = 0;
    assert_eq!(container_name(&t), "web.n1.t1");
}

#[test]
fn a_task_without_a_container_spec_is_rejected() {
    let mut t = task("t1", TaskState::Running, TaskState::Assigned);
    t.container = None;
    let mut case = Case::with_tasks(vec![t]);
    let reports = reported(&case.plan_once());
    assert_eq!(reports[0].1.state(), TaskState::Rejected);
    assert_eq!(reports[0].1.error, "task: no container spec");
}

#[test]
fn exit_zero_is_complete() {
    let mut case =
        Case::with_tasks(vec![task("t1", TaskState::Running, TaskState::Running)]).containers(
            vec![container("t1", ContainerState::Exited { exit_code: 0 })],
        );
    let reports = reported(&case.plan_once());
    let status = &reports[0].1;
    assert_eq!((status.state(), status.exit_code), (TaskState::Complete, 0));
    assert_eq!(status.container_id, "c-t1");
}

#[test]
fn exit_137_is_failed_with_the_code_and_not_restarted() {
    let mut case =
        Case::with_tasks(vec![task("t1", TaskState::Running, TaskState::Running)]).containers(
            vec![container("t1", ContainerState::Exited { exit_code: 137 })],
        );
    let actions = case.plan_once();
    assert_eq!(actions.len(), 1, "a report only, no start: {actions:?}");
    let status = &reported(&actions)[0].1;
    assert_eq!(status.state(), TaskState::Failed);
    assert_eq!(status.error, "task: non-zero exit (137)");
    assert_eq!(status.exit_code, 137);
}

#[test]
fn an_oom_kill_says_out_of_memory() {
    let mut oom = container("t1", ContainerState::Exited { exit_code: 137 });
    oom.oom_killed = true;
    let mut case = Case::with_tasks(vec![task("t1", TaskState::Running, TaskState::Running)])
        .containers(vec![oom]);
    let status = &reported(&case.plan_once())[0].1;
    assert_eq!(
        (status.state(), status.error.as_str()),
        (TaskState::Failed, "out of memory")
    );
}

#[test]
fn a_running_task_whose_container_vanished_failed() {
    let mut case = Case::with_tasks(vec![task("t1", TaskState::Running, TaskState::Running)]);
    let status = &reported(&case.plan_once())[0].1;
    assert_eq!(status.state(), TaskState::Failed);
    assert_eq!(status.error, "task: container is gone");
}

#[test]
fn desired_shutdown_stops_removes_then_reports_shutdown() {
    let mut case = Case::with_tasks(vec![task("t1", TaskState::Shutdown, TaskState::Running)])
        .containers(vec![container("t1", ContainerState::Running)]);
    let actions = case.plan_once();
    let [Action::Stop {
        key,
        container_id,
        then: Some(then),
    }] = actions.as_slice()
    else {
        panic!("expected one stop: {actions:?}");
    };
    assert_eq!((key.as_str(), container_id.as_str()), ("t1", "c-t1"));
    assert_eq!(then.state(), TaskState::Shutdown);
}

#[test]
fn desired_shutdown_without_a_container_reports_shutdown_at_once() {
    let mut case = Case::with_tasks(vec![task("t1", TaskState::Shutdown, TaskState::Assigned)]);
    let reports = reported(&case.plan_once());
    assert_eq!(reports[0].1.state(), TaskState::Shutdown);
}

#[test]
fn desired_shutdown_cancels_a_start_in_flight() {
    let mut case = Case::with_tasks(vec![task("t1", TaskState::Shutdown, TaskState::Preparing)]);
    case.busy.insert("t1".into(), OpKind::Start);
    let actions = case.plan_once();
    assert_eq!(actions[0], Action::Cancel { key: "t1".into() });
    assert_eq!(reported(&actions)[0].1.state(), TaskState::Shutdown);
}

#[test]
fn a_terminal_task_with_a_live_container_is_stopped_silently() {
    let mut case = Case::with_tasks(vec![task("t1", TaskState::Running, TaskState::Failed)])
        .containers(vec![container("t1", ContainerState::Running)]);
    let actions = case.plan_once();
    assert!(
        matches!(actions.as_slice(), [Action::Stop { then: None, .. }]),
        "{actions:?}"
    );
}

#[test]
fn an_exited_container_of_a_finished_task_is_kept_for_its_logs() {
    let mut case =
        Case::with_tasks(vec![task("t1", TaskState::Shutdown, TaskState::Failed)]).containers(
            vec![container("t1", ContainerState::Exited { exit_code: 1 })],
        );
    assert_eq!(case.plan_once(), []);
}

#[test]
fn orphans_are_removed_only_after_the_first_message() {
    let orphans = vec![
        container("gone", ContainerState::Running),
        container("", ContainerState::Created),
    ];
    let before = Case::default().containers(orphans.clone());
    assert_eq!(before.plan(), [], "no session message yet: touch nothing");

    let mut after = Case::with_tasks(vec![]).containers(orphans);
    let actions = after.plan_once();
    let stopped: Vec<(&str, &str, bool)> = actions
        .iter()
        .map(|a| match a {
            Action::Stop {
                key,
                container_id,
                then,
            } => (key.as_str(), container_id.as_str(), then.is_some()),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(stopped, [("gone", "c-gone", false), ("c-", "c-", false)]);
}

#[test]
fn a_start_in_flight_for_a_deleted_task_is_cancelled() {
    let mut case = Case::with_tasks(vec![]);
    case.busy.insert("t1".into(), OpKind::Start);
    assert_eq!(case.plan_once(), [Action::Cancel { key: "t1".into() }]);
}

#[test]
fn an_adopted_running_container_is_reported_running_not_recreated() {
    let mut case = Case::with_tasks(vec![task("t1", TaskState::Running, TaskState::Starting)])
        .containers(vec![container("t1", ContainerState::Running)]);
    let actions = case.plan_once();
    assert_eq!(actions.len(), 1, "{actions:?}");
    let status = &reported(&actions)[0].1;
    assert_eq!(status.state(), TaskState::Running);
    assert_eq!((status.container_id.as_str(), status.pid), ("c-t1", 4242));
}

#[test]
fn an_adopted_container_the_manager_knows_is_left_alone() {
    let mut case = Case::with_tasks(vec![task("t1", TaskState::Running, TaskState::Running)])
        .containers(vec![container("t1", ContainerState::Running)]);
    assert_eq!(case.plan_once(), []);
}

#[test]
fn a_created_but_never_started_container_is_started() {
    let mut case = Case::with_tasks(vec![task("t1", TaskState::Running, TaskState::Starting)])
        .containers(vec![container("t1", ContainerState::Created)]);
    assert!(matches!(
        case.plan_once().as_slice(),
        [Action::Start { .. }]
    ));
}

#[test]
fn a_task_in_flight_is_left_to_its_operation() {
    let mut case = Case::with_tasks(vec![task("t1", TaskState::Running, TaskState::Assigned)])
        .containers(vec![container("t1", ContainerState::Created)]);
    case.busy.insert("t1".into(), OpKind::Start);
    assert_eq!(case.plan_once(), []);
}

#[test]
fn reports_never_go_backwards() {
    // The agent reported COMPLETE; a lagging session still says RUNNING.
    let mut case =
        Case::with_tasks(vec![task("t1", TaskState::Running, TaskState::Running)]).containers(
            vec![container("t1", ContainerState::Exited { exit_code: 0 })],
        );
    case.reported.insert("t1".into(), TaskState::Complete);
    assert_eq!(case.plan(), []);
    let table = [
        (TaskState::Assigned, TaskState::Accepted, true),
        (TaskState::Running, TaskState::Complete, true),
        (TaskState::Running, TaskState::Starting, false),
        (TaskState::Running, TaskState::Running, false),
        (TaskState::Complete, TaskState::Failed, false),
        (TaskState::Rejected, TaskState::Running, false),
    ];
    for (known, next, expected) in table {
        assert_eq!(advances(known, next), expected, "{known:?} -> {next:?}");
    }
}

// The loop, over the in-memory executor.

struct Harness {
    exec: Arc<MemoryExecutor>,
    sessions: watch::Sender<Option<SessionMessage>>,
    reports: mpsc::Receiver<TaskStatusUpdate>,
    _shutdown: watch::Sender<bool>,
}

#[test]
fn a_message_that_only_echoes_our_reports_needs_no_reconcile() {
    let by_id = |tasks: Vec<Task>| -> BTreeMap<String, Task> {
        tasks.into_iter().map(|t| (t.id.clone(), t)).collect()
    };
    let running = TaskState::Running;
    let current = by_id(vec![task("t1", running, TaskState::Assigned)]);
    let reported = HashMap::from([("t1".to_string(), TaskState::Running)]);
    let echo = by_id(vec![task("t1", running, TaskState::Running)]);
    assert!(
        only_echoes(Some(&current), &echo, &reported),
        "our RUNNING came back"
    );
    let starting = by_id(vec![task("t1", running, TaskState::Starting)]);
    assert!(
        only_echoes(Some(&current), &starting, &reported),
        "an older report came back"
    );

    let failed_by_manager = by_id(vec![task("t1", running, TaskState::Failed)]);
    assert!(!only_echoes(Some(&current), &failed_by_manager, &reported));
    let shut_down = by_id(vec![task("t1", TaskState::Shutdown, TaskState::Running)]);
    assert!(!only_echoes(Some(&current), &shut_down, &reported));
    let mut more = echo.clone();
    more.insert("t2".into(), task("t2", running, TaskState::Assigned));
    assert!(!only_echoes(Some(&current), &more, &reported));
    assert!(
        !only_echoes(None, &echo, &reported),
        "the first message always counts"
    );
}

fn harness(exec: Arc<MemoryExecutor>) -> Harness {
    let (sessions, sessions_rx) = watch::channel(None);
    let (reports_tx, reports) = mpsc::channel(64);
    let (shutdown, shutdown_rx) = watch::channel(false);
    let agent = Agent::new(exec.clone(), NODE).with_rescan_period(Duration::from_millis(50));
    tokio::spawn(agent.run(sessions_rx, reports_tx, shutdown_rx));
    Harness {
        exec,
        sessions,
        reports,
        _shutdown: shutdown,
    }
}

impl Harness {
    fn send(&self, tasks: Vec<Task>) {
        self.sessions.send_replace(Some(SessionMessage {
            tasks,
            ..Default::default()
        }));
    }

    async fn next_status(&mut self) -> TaskStatus {
        let update = tokio::time::timeout(Duration::from_secs(5), self.reports.recv())
            .await
            .expect("a report in time")
            .expect("reports open");
        update.status.expect("a status")
    }

    async fn wait_for_containers(&self, count: usize) -> Vec<ContainerStatus> {
        for _ in 0..100 {
            let listed = self.exec.list(NODE).await.unwrap();
            if listed.len() == count {
                return listed;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("never {count} containers");
    }
}

#[tokio::test]
async fn a_new_task_runs_then_completes_when_its_container_exits() {
    let mut h = harness(Arc::new(MemoryExecutor::new()));
    h.send(vec![task("t1", TaskState::Running, TaskState::Assigned)]);
    let mut states = Vec::new();
    for _ in 0..4 {
        states.push(h.next_status().await);
    }
    let names: Vec<TaskState> = states.iter().map(|s| s.state()).collect();
    use TaskState::*;
    assert_eq!(names, [Accepted, Preparing, Starting, Running]);
    let running = &states[3];
    assert_eq!(running.pid, 10_000);
    assert!(running.timestamp > 0);
    let listed = h.wait_for_containers(1).await;
    assert_eq!(listed[0].container_id, running.container_id);
    assert_eq!(listed[0].name, "web.1.t1");

    h.exec
        .stop(&running.container_id, Duration::ZERO)
        .await
        .unwrap();
    let done = h.next_status().await;
    assert_eq!((done.state(), done.exit_code), (Complete, 0));
    assert_eq!(h.exec.list(NODE).await.unwrap().len(), 1, "not restarted");
}

#[tokio::test]
async fn desired_shutdown_removes_the_container_and_reports_shutdown() {
    let mut h = harness(Arc::new(MemoryExecutor::new()));
    h.send(vec![task("t1", TaskState::Running, TaskState::Running)]);
    h.wait_for_containers(0).await;
    // RUNNING in the session but no container: FAILED, and never a new container.
    assert_eq!(h.next_status().await.state(), TaskState::Failed);

    h.send(vec![task("t2", TaskState::Running, TaskState::Assigned)]);
    while h.next_status().await.state() != TaskState::Running {}
    h.send(vec![task("t2", TaskState::Shutdown, TaskState::Running)]);
    assert_eq!(h.next_status().await.state(), TaskState::Shutdown);
    h.wait_for_containers(0).await;
}

#[tokio::test]
async fn a_restarted_agent_adopts_and_cleans_up_only_after_the_first_message() {
    let exec = Arc::new(MemoryExecutor::new());
    let mut ids = Vec::new();
    for task_id in ["t1", "old"] {
        let spec = ContainerSpec {
            name: format!("web.1.{task_id}"),
            node_id: NODE.into(),
            task_id: task_id.into(),
            ..Default::default()
        };
        let id = exec.create(&spec).await.unwrap();
        exec.start(&id).await.unwrap();
        ids.push(id);
    }
    let mut h = harness(exec);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(h.exec.list(NODE).await.unwrap().len(), 2, "no message yet");

    h.send(vec![task("t1", TaskState::Running, TaskState::Starting)]);
    let adopted = h.next_status().await;
    assert_eq!(adopted.state(), TaskState::Running);
    assert_eq!(adopted.container_id, ids[0]);
    let left = h.wait_for_containers(1).await;
    assert_eq!(left[0].container_id, ids[0], "the orphan went, t1 stayed");
}

#[test]
fn the_agent_and_the_session_can_be_spawned() {
    fn is_send<T: Send>(_: &T) {}
    let (_, sessions) = watch::channel(None);
    let (reports_tx, reports_rx) = mpsc::channel(1);
    let (_, shutdown) = watch::channel(false);
    let agent = Agent::new(Arc::new(MemoryExecutor::new()), NODE);
    is_send(&agent.run(sessions, reports_tx, shutdown.clone()));
    let config = crate::SessionConfig {
        node_id: NODE.into(),
        api_addr: "127.0.0.1:1".into(),
        description: Default::default(),
        managers: vec![],
        connect: Arc::new(|_: &str| Err(tonic::Status::unavailable("no manager in this test"))),
    };
    let (updates, _) = watch::channel(None);
    is_send(&crate::run_session(config, updates, reports_rx, shutdown));
}

#[test]
fn a_container_with_a_health_check_runs_only_once_healthy_and_fails_when_unhealthy() {
    use crate::executor::Health;
    use swarmr_proto::HealthState;
    let mut starting = container("t1", ContainerState::Running);
    starting.health = Some(Health::Starting);
    let case = |c: &ContainerStatus, known| {
        Case::with_tasks(vec![task("t1", TaskState::Running, known)]).containers(vec![c.clone()])
    };
    assert_eq!(case(&starting, TaskState::Starting).plan_once(), []);
    let healthy = ContainerStatus {
        health: Some(Health::Healthy),
        ..starting.clone()
    };
    let running = reported(&case(&healthy, TaskState::Starting).plan_once());
    assert_eq!(running.len(), 1);
    assert_eq!(running[0].1.state(), TaskState::Running);
    assert_eq!(running[0].1.health(), HealthState::Healthy);
    let sick = ContainerStatus {
        health: Some(Health::Unhealthy),
        ..starting
    };
    for known in [TaskState::Starting, TaskState::Running] {
        let failed = reported(&case(&sick, known).plan());
        assert_eq!(failed.len(), 1, "{known:?}");
        assert_eq!(failed[0].1.state(), TaskState::Failed);
        assert_eq!(failed[0].1.error, "task: container unhealthy");
    }
}
