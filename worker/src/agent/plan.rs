//! The agent's decisions, with no IO: from the session's tasks, this node's containers,
//! the operations in flight and what was reported already, the actions that converge them.
//!
//! Per task (desired state D, known state K = the later of the session's and the agent's
//! last report, container C):
//! - an operation in flight for the task: nothing, unless it is a start that should no
//!   longer happen (D past RUNNING, K terminal): cancel it, then decide as if idle;
//! - D past RUNNING: K not terminal → stop and remove C, then SHUTDOWN (at once if no C);
//!   K terminal → stop and remove C only if it still runs;
//! - K terminal: stop and remove C if it still runs (the manager has replaced the task);
//! - D RUNNING, K before RUNNING: no C (or C created but never started) → start it;
//!   C running → adopt it: RUNNING with its id and PID; C exited → its end;
//! - D RUNNING, K RUNNING: C exited → COMPLETE or FAILED with the exit code; C gone →
//!   FAILED. Never a restart: the orchestrator replaces failed tasks with new ones.
//! - Health: a container with a health check is RUNNING only once healthy; while its
//!   check is starting the task stays STARTING, and an unhealthy container (before or
//!   after RUNNING) fails its task (then is stopped as any ended task's), as Swarm does.
//!
//! Containers whose task is not in the session (deleted by the manager) or that carry no
//! task label are stopped and removed silently, but only once a session message arrived:
//! before that, the agent knows nothing and must not touch anything.

use std::collections::{BTreeMap, HashMap, HashSet};

use swarmr_proto::{Task, TaskState, TaskStatus};

use super::task::{self, container_spec, exited, failure, running, unhealthy};
use crate::executor::{ContainerSpec, ContainerState, ContainerStatus, Health};

/// The kind of an operation in flight; at most one per task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    /// Prepare, create and start a task's container.
    Start,
    /// Stop and remove a container.
    Stop,
}

/// Everything a decision reads.
#[derive(Debug, Clone, Copy)]
pub struct View<'a> {
    /// The tasks of the latest session message by id; `None` before the first one.
    pub tasks: Option<&'a BTreeMap<String, Task>>,
    /// Every container labelled with this node, as listed.
    pub containers: &'a [ContainerStatus],
    /// Operations in flight, by key (the task id, or the container id of a container
    /// without a task label).
    pub busy: &'a HashMap<String, OpKind>,
    /// The latest state the agent reported per task.
    pub reported: &'a HashMap<String, TaskState>,
    pub node_id: &'a str,
    /// For hostname templates (`{{.Node.Hostname}}`).
    pub node_hostname: &'a str,
}

/// One step towards the desired state.
// Short-lived values, one per step; boxing the spec would only cost a deref.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Report a task's status (its timestamp is set when it is sent).
    Report { task_id: String, status: TaskStatus },
    /// Prepare, create and start the task's container, reporting each step.
    Start { spec: ContainerSpec },
    /// Stop and remove a container, then report `then` if set.
    Stop {
        key: String,
        container_id: String,
        then: Option<TaskStatus>,
    },
    /// Abort the start in flight under this key.
    Cancel { key: String },
}

/// The state the agent knows a task to be in: the later of the session's and its own report.
pub fn known_state(task: &Task, reported: &HashMap<String, TaskState>) -> TaskState {
    let ours = reported.get(&task.id).copied().unwrap_or(TaskState::New);
    task.current_state().max(ours)
}

/// True when `next` (a new session message's tasks) would plan nothing new over `current`:
/// the same tasks, changed only in states no later than what this agent reported, which
/// is how its own reports come back. Such a message needs no reconcile, and so no
/// container list (about 10 ms of the engine's time with 60 containers, several per task
/// started while every report echoed).
pub fn only_echoes(
    current: Option<&BTreeMap<String, Task>>,
    next: &BTreeMap<String, Task>,
    reported: &HashMap<String, TaskState>,
) -> bool {
    let Some(current) = current else {
        return false;
    };
    let without_status = |t: &Task| Task {
        status: None,
        meta: None,
        ..t.clone()
    };
    current.len() == next.len()
        && next.iter().all(|(id, new)| {
            current.get(id).is_some_and(|old| {
                known_state(new, reported) == known_state(old, reported)
                    && without_status(new) == without_status(old)
            })
        })
}

/// True if reporting `next` moves a task that is in `known` forward.
pub fn advances(known: TaskState, next: TaskState) -> bool {
    !known.is_terminal() && next > known
}

/// The actions that converge this node's containers on the session's tasks.
pub fn plan(view: &View<'_>) -> Vec<Action> {
    let Some(tasks) = view.tasks else {
        return Vec::new();
    };
    let by_task = containers_by_task(view.containers);
    let mut actions = Vec::new();
    for task in tasks.values() {
        let container = by_task.get(task.id.as_str()).copied();
        plan_task(view, task, container, &mut actions);
    }
    plan_orphans(view, tasks, &mut actions);
    actions
}

/// One container per task label, a running one first if there are several.
fn containers_by_task(containers: &[ContainerStatus]) -> HashMap<&str, &ContainerStatus> {
    let mut by_task: HashMap<&str, &ContainerStatus> = HashMap::new();
    for container in containers.iter().filter(|c| !c.task_id.is_empty()) {
        let slot = by_task
            .entry(container.task_id.as_str())
            .or_insert(container);
        if container.state.is_running() && !slot.state.is_running() {
            *slot = container;
        }
    }
    by_task
}

fn plan_task(
    view: &View<'_>,
    task: &Task,
    container: Option<&ContainerStatus>,
    out: &mut Vec<Action>,
) {
    let known = known_state(task, view.reported);
    let desired = task.desired_state();
    let should_start = desired == TaskState::Running && !known.is_terminal();
    match view.busy.get(&task.id) {
        Some(OpKind::Stop) => return,
        Some(OpKind::Start) if should_start => return,
        Some(OpKind::Start) => out.push(Action::Cancel {
            key: task.id.clone(),
        }),
        None => {}
    }
    let live = container.filter(|c| c.state.is_running());
    if desired > TaskState::Running && !known.is_terminal() {
        let shutdown = task::status(TaskState::Shutdown, "shutdown");
        out.push(match container {
            Some(c) => stop(&task.id, c, Some(shutdown)),
            None => report(task, shutdown),
        });
    } else if known.is_terminal() {
        if let Some(c) = live {
            out.push(stop(&task.id, c, None));
        }
    } else if desired == TaskState::Running {
        if let Some(action) = plan_runnable(view, task, known, container) {
            out.push(action);
        }
    }
}

/// A task that should run and has not ended: start it, adopt it, or report its end.
fn plan_runnable(
    view: &View<'_>,
    task: &Task,
    known: TaskState,
    container: Option<&ContainerStatus>,
) -> Option<Action> {
    let before_running = known < TaskState::Running;
    let Some(c) = container else {
        if !before_running {
            let gone = failure(TaskState::Failed, "failed", "task: container is gone");
            return Some(report(task, gone));
        }
        return Some(start(view, task));
    };
    match (&c.state, c.health) {
        // Reported first, so the task leaves discovery; its container is stopped next,
        // as that of any ended task.
        (state, Some(Health::Unhealthy)) if state.is_running() => Some(report(task, unhealthy(c))),
        (state, Some(Health::Starting)) if state.is_running() => None,
        (state, _) if state.is_running() => before_running.then(|| report(task, running(c))),
        _ => plan_ended(view, task, c, before_running),
    }
}

/// A task whose container is not running.
fn plan_ended(
    view: &View<'_>,
    task: &Task,
    c: &ContainerStatus,
    before_running: bool,
) -> Option<Action> {
    match &c.state {
        ContainerState::Exited { exit_code } => Some(report(task, exited(c, *exit_code))),
        ContainerState::Created if before_running => Some(start(view, task)),
        ContainerState::Created | ContainerState::Dead => {
            let mut status = failure(
                TaskState::Failed,
                "failed",
                "task: container is not running",
            );
            status.container_id = c.container_id.clone();
            Some(report(task, status))
        }
        _ => None,
    }
}

/// Containers of tasks the session does not hold, and starts in flight for such tasks.
fn plan_orphans(view: &View<'_>, tasks: &BTreeMap<String, Task>, out: &mut Vec<Action>) {
    let mut seen = HashSet::new();
    for c in view.containers {
        if !c.task_id.is_empty() && tasks.contains_key(&c.task_id) {
            continue;
        }
        let key = if c.task_id.is_empty() {
            c.container_id.clone()
        } else {
            c.task_id.clone()
        };
        if !seen.insert(key.clone()) {
            continue;
        }
        match view.busy.get(&key) {
            Some(OpKind::Stop) => continue,
            Some(OpKind::Start) => out.push(Action::Cancel { key: key.clone() }),
            None => {}
        }
        out.push(Action::Stop {
            key,
            container_id: c.container_id.clone(),
            then: None,
        });
    }
    let mut stale: Vec<&String> = view
        .busy
        .iter()
        .filter(|(key, kind)| {
            **kind == OpKind::Start && !tasks.contains_key(*key) && !seen.contains(*key)
        })
        .map(|(key, _)| key)
        .collect();
    stale.sort();
    for key in stale {
        out.push(Action::Cancel { key: key.clone() });
    }
}

fn report(task: &Task, status: TaskStatus) -> Action {
    Action::Report {
        task_id: task.id.clone(),
        status,
    }
}

fn stop(key: &str, container: &ContainerStatus, then: Option<TaskStatus>) -> Action {
    Action::Stop {
        key: key.to_string(),
        container_id: container.container_id.clone(),
        then,
    }
}

fn start(view: &View<'_>, task: &Task) -> Action {
    match container_spec(task, view.node_id, view.node_hostname) {
        Some(spec) => Action::Start { spec },
        None => report(
            task,
            failure(TaskState::Rejected, "rejected", "task: no container spec"),
        ),
    }
}
