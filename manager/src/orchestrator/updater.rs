//! Rolling updates of replicated services: replacing the tasks made from an older task
//! template, slot by slot, as the service's `UpdateStatus` says. Pure, like the rest of
//! the orchestrator: it reads the tasks and the status, and decides changes.
//!
//! - A task is *fresh* when its container spec and networks are the service's current
//!   ones and its node (if it has one) meets the constraints; otherwise it is *stale*.
//! - Only while the state is `updating` or `rollback_started` are stale tasks replaced;
//!   the rollout's settings are the spec's `update_config` (`rollback_config` while
//!   rolling back), with Docker's defaults where unset.
//! - At most `parallelism` slots (0: all) are in flight at once: a slot is in flight
//!   from the creation of its fresh task until that task is RUNNING (which, for a task
//!   with a health check, means healthy). After a slot's task runs, the next slot waits
//!   `delay`.
//! - `stop-first`: the stale task is told to stop; its slot is refilled with the current
//!   spec once it has stopped (`replicated.rs`), so no more than `replicas` tasks run.
//!   `start-first`: the stale task keeps running beside its successor and is told to
//!   stop once the successor runs (the *handover*).
//! - A fresh task made since the rollout began that ends while wanted is a failure.
//!   More failures than `max_failure_ratio` × replicas (any, at 0) trigger the failure
//!   action: `pause` (state `paused` / `rollback_paused`), `rollback` (the spec goes
//!   back to `previous_spec`, state `rollback_started`) or `continue`.
//! - Done when no slot is stale or in flight and every replaced task has run for
//!   `monitor`: state `completed` / `rollback_completed`.

use swarmr_proto::{
    Service, Task, TaskState, UpdateConfig, UpdateFailureAction, UpdateOrder, UpdateState,
    UpdateStatus,
};

use super::slot::current;
use super::{wants_running, Ctx};
use crate::constraint::{node_matches, parse_constraints};

/// Docker's default monitor period.
pub const DEFAULT_MONITOR_MS: u64 = 5_000;

/// Docker's default update (and rollback) config.
pub fn default_config() -> UpdateConfig {
    UpdateConfig {
        parallelism: 1,
        delay_ms: 0,
        failure_action: UpdateFailureAction::Pause as i32,
        monitor_ms: Some(DEFAULT_MONITOR_MS),
        max_failure_ratio: 0.0,
        order: UpdateOrder::StopFirst as i32,
    }
}

/// A rollout in progress.
#[derive(Debug, Clone)]
pub struct Rollout {
    pub config: UpdateConfig,
    pub rolling_back: bool,
    pub started_at: i64,
    pub message: String,
}

impl Rollout {
    /// The rollout the service's update status says is under way, if any.
    pub fn of(service: &Service) -> Option<Rollout> {
        let status = service.update_status.as_ref()?;
        let spec = service.spec.as_ref()?;
        let rolling_back = match status.state() {
            UpdateState::Updating => false,
            UpdateState::RollbackStarted => true,
            _ => return None,
        };
        let config = match rolling_back {
            true => spec.rollback_config,
            false => spec.update_config,
        };
        Some(Rollout {
            config: config.unwrap_or_else(default_config),
            rolling_back,
            started_at: status.started_at,
            message: status.message.clone(),
        })
    }

    fn monitor(&self) -> i64 {
        let ms = self.config.monitor_ms.unwrap_or(DEFAULT_MONITOR_MS);
        i64::try_from(ms).unwrap_or(i64::MAX)
    }
}

/// The task runs the service's current container spec on its current networks (and
/// holds an address on the ingress network while the service publishes through it).
/// Every spec change bumps `spec_version`, so a task made from this version needs no
/// comparison of the container (as swarmkit's `IsTaskDirty`): the comparison ran for each
/// of 10,000 tasks on every pass. An older version may still hold the same container
/// (a rollback, an update that changed nothing the task runs): those compare.
pub fn same_template(service: &Service, task: &Task) -> bool {
    let Some(spec) = service.spec.as_ref() else {
        return false;
    };
    let ingress = Some(&service.ingress_network_id).filter(|id| !id.is_empty());
    let wanted = spec.networks.iter().chain(ingress).map(String::as_str);
    let networks = task.networks.iter().map(|a| a.network_id.as_str());
    let this_version = task.spec_version != 0 && task.spec_version == service.spec_version;
    (this_version || task.container == spec.container) && networks.eq(wanted)
}

/// Fresh: the current template, on a node that meets the constraints (or none yet).
pub(crate) fn is_fresh(ctx: &Ctx<'_>, service: &Service, task: &Task) -> bool {
    let Some(spec) = service.spec.as_ref() else {
        return false;
    };
    if !same_template(service, task) {
        return false;
    }
    let Some(node) = ctx.node(&task.node_id) else {
        return true;
    };
    parse_constraints(&spec.constraints).map_or(true, |c| node_matches(&c, node))
}

/// What the kept slots of one service (replicas, or nodes in global mode) look like to
/// the rollout.
#[derive(Debug, Default)]
pub struct Board<'a> {
    /// The current task of each slot whose current task is stale and alive, in slot order.
    pub stale: Vec<&'a Task>,
    pub in_flight: usize,
    /// When each fresh task that runs reported RUNNING.
    pub running_since: Vec<i64>,
}

impl<'a> Board<'a> {
    /// Files a slot the usual reconcile left alone.
    pub(crate) fn observe(&mut self, ctx: &Ctx<'_>, service: &Service, tasks: &[&'a Task]) {
        let (Some(task), _) = current(tasks) else {
            return;
        };
        let fresh = is_fresh(ctx, service, task);
        if task.current_state().is_terminal()
            || (fresh && task.current_state() < TaskState::Running)
        {
            self.in_flight += 1;
        } else if fresh {
            self.running_since.push(since(task));
        } else {
            self.stale.push(task);
        }
    }

    /// The slots it has seen, which a global service's failure ratio counts against.
    fn slots(&self) -> usize {
        self.stale.len() + self.in_flight + self.running_since.len()
    }
}

fn since(task: &Task) -> i64 {
    task.status.as_ref().map_or(0, |s| s.timestamp)
}

/// A start-first replacement under way in the slot: its one alive fresh task beside
/// alive stale ones. Stops the stale ones once the fresh one runs. Returns false (and
/// does nothing) when the slot is not in a handover.
pub(crate) fn handover<'a>(
    ctx: &mut Ctx<'_>,
    service: &Service,
    tasks: &[&'a Task],
    board: &mut Board<'a>,
) -> bool {
    if service.spec.is_none() {
        return false;
    }
    // Every slot of every service passes here on every pass: count, do not collect.
    let alive = || {
        tasks
            .iter()
            .copied()
            .filter(|t| wants_running(t) && !t.current_state().is_terminal())
    };
    let (mut fresh, mut stale) = (None, 0);
    for task in alive() {
        if is_fresh(ctx, service, task) {
            if fresh.replace(task).is_some() {
                return false;
            }
        } else {
            stale += 1;
        }
    }
    let (Some(new), true) = (fresh, stale > 0) else {
        return false;
    };
    if new.current_state() == TaskState::Running {
        let stale: Vec<&Task> = alive().filter(|t| !is_fresh(ctx, service, t)).collect();
        stale.iter().for_each(|t| ctx.shutdown(t));
        board.running_since.push(since(new));
    } else {
        board.in_flight += 1;
    }
    true
}

/// Moves the rollout on: counts failures, applies the failure action, replaces the next
/// stale slots (start-first: creates their successors, a global task's on its node;
/// stop-first: stops them) or declares the rollout done. Returns the stale tasks whose
/// successors it created.
pub(crate) fn advance<'a>(
    ctx: &mut Ctx<'_>,
    service: &Service,
    rollout: &Rollout,
    board: &Board<'a>,
    tasks: &[&Task],
) -> Vec<&'a Task> {
    let Some(spec) = service.spec.as_ref() else {
        return Vec::new();
    };
    let failed: Vec<&Task> = tasks
        .iter()
        .copied()
        .filter(|t| same_template(service, t) && is_failure(t, rollout.started_at))
        .collect();
    let slots = spec.replicas.unwrap_or(board.slots() as u64).max(1) as f64;
    let ratio = f64::from(rollout.config.max_failure_ratio);
    if !failed.is_empty() && failed.len() as f64 > ratio * slots {
        let action = rollout.config.failure_action();
        if action != UpdateFailureAction::Continue {
            on_failure(ctx, service, rollout, action, failed[failed.len() - 1]);
            return Vec::new();
        }
    }
    if board.stale.is_empty() && board.in_flight == 0 {
        finish(ctx, service, rollout, board);
        return Vec::new();
    }
    let parallelism = usize::try_from(rollout.config.parallelism).unwrap_or(usize::MAX);
    let budget = match parallelism {
        0 => usize::MAX,
        n => n.saturating_sub(board.in_flight),
    };
    let delay = i64::try_from(rollout.config.delay_ms).unwrap_or(i64::MAX);
    let last = board
        .running_since
        .iter()
        .copied()
        .filter(|&t| t >= rollout.started_at)
        .max();
    if let Some(last) = last.filter(|_| delay > 0 && budget > 0) {
        if ctx.now < last.saturating_add(delay) {
            ctx.wake_at(last.saturating_add(delay));
            return Vec::new();
        }
    }
    let start_first = rollout.config.order() == UpdateOrder::StartFirst;
    let mut created = Vec::new();
    for &task in board.stale.iter().take(budget) {
        if start_first {
            let node = if spec.global {
                task.node_id.as_str()
            } else {
                ""
            };
            ctx.create(service, task.slot, node, 0);
            created.push(task);
        } else {
            ctx.shutdown(task);
        }
    }
    created
}

/// Made since the rollout began, and ended while it was wanted.
fn is_failure(task: &Task, started_at: i64) -> bool {
    let created = task.meta.as_ref().map_or(0, |m| m.created_at);
    created >= started_at
        && task.current_state().is_terminal()
        && task.current_state() != TaskState::Shutdown
}

fn on_failure(
    ctx: &mut Ctx<'_>,
    service: &Service,
    rollout: &Rollout,
    action: UpdateFailureAction,
    task: &Task,
) {
    let error = task.status.as_ref().map_or("", |s| s.error.as_str());
    let why = match error {
        "" => format!("failure or early termination of task {}", task.id),
        error => format!("failure of task {}: {error}", task.id),
    };
    let now = ctx.now;
    let status = |state: UpdateState, message: String| UpdateStatus {
        state: state as i32,
        started_at: rollout.started_at,
        completed_at: 0,
        message,
    };
    if action == UpdateFailureAction::Rollback && !rollout.rolling_back {
        let mut status = status(
            UpdateState::RollbackStarted,
            format!("update rolled back due to {why}"),
        );
        status.started_at = now;
        ctx.rollback(service, status);
        return;
    }
    let (state, what) = match rollout.rolling_back {
        true => (UpdateState::RollbackPaused, "rollback"),
        false => (UpdateState::Paused, "update"),
    };
    ctx.set_update_status(
        service,
        status(state, format!("{what} paused due to {why}")),
    );
}

/// No slot left to replace: done once every replaced task has run for `monitor`.
fn finish(ctx: &mut Ctx<'_>, service: &Service, rollout: &Rollout, board: &Board<'_>) {
    let watched_until = board
        .running_since
        .iter()
        .filter(|&&t| t >= rollout.started_at)
        .map(|&t| t.saturating_add(rollout.monitor()))
        .max();
    if let Some(until) = watched_until.filter(|&u| u > ctx.now) {
        ctx.wake_at(until);
        return;
    }
    let (state, message) = match rollout.rolling_back {
        false => (UpdateState::Completed, "update completed".to_string()),
        true if rollout.message.is_empty() => {
            (UpdateState::RollbackCompleted, "rollback completed".into())
        }
        true => (
            UpdateState::RollbackCompleted,
            format!("rollback completed ({})", rollout.message),
        ),
    };
    let status = UpdateStatus {
        state: state as i32,
        started_at: rollout.started_at,
        completed_at: ctx.now,
        message,
    };
    ctx.set_update_status(service, status);
}
