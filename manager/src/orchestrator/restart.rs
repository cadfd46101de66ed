//! The restart policy: whether, and when, a slot whose task ended gets a new task.
//!
//! - condition `any` restarts after any end; `on-failure` only after FAILED, REJECTED
//!   or ORPHANED, or a non-zero exit code; `none` never.
//! - `max_attempts` (0 = unlimited) caps the restarts of a slot: the task made by the
//!   n-th restart carries `restart_attempt = n`, and a task whose `restart_attempt`
//!   reached the cap is not restarted.
//! - `delay_ms` counts from the end (`status.timestamp`): before `end + delay` the
//!   answer is [`Restart::At`], so the caller can requeue.
//!
//! A service without a policy gets Docker's defaults: `any`, 5 s, unlimited. A policy
//! that is present is taken as given, so a delay of 0 restarts at once.

use swarmr_proto::{RestartCondition, RestartPolicy, Task, TaskState};

/// Docker's default restart delay.
pub const DEFAULT_DELAY_MS: u64 = 5_000;

/// What the policy says about an ended task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restart {
    /// Replace it now.
    Now,
    /// Replace it at this time (unix ms); nothing to do before.
    At(i64),
    /// Leave the slot as it is.
    Never,
}

/// Docker's defaults for a service that names no policy.
pub fn default_policy() -> RestartPolicy {
    RestartPolicy {
        condition: RestartCondition::Any as i32,
        delay_ms: DEFAULT_DELAY_MS,
        max_attempts: 0,
    }
}

/// Decides for a task that ended while it should have been running.
pub fn decide(task: &Task, policy: Option<&RestartPolicy>, now: i64) -> Restart {
    let default = default_policy();
    let policy = policy.unwrap_or(&default);
    if !condition_allows(policy.condition(), task) {
        return Restart::Never;
    }
    if policy.max_attempts > 0 && task.restart_attempt >= policy.max_attempts {
        return Restart::Never;
    }
    let ended = task.status.as_ref().map(|s| s.timestamp).unwrap_or(0);
    let delay = i64::try_from(policy.delay_ms).unwrap_or(i64::MAX);
    let at = ended.saturating_add(delay);
    if now >= at {
        Restart::Now
    } else {
        Restart::At(at)
    }
}

fn condition_allows(condition: RestartCondition, task: &Task) -> bool {
    match condition {
        RestartCondition::Any => true,
        RestartCondition::OnFailure => failed(task),
        RestartCondition::None => false,
    }
}

/// FAILED, REJECTED, ORPHANED, or any end with a non-zero exit code.
fn failed(task: &Task) -> bool {
    let exit_code = task.status.as_ref().map(|s| s.exit_code).unwrap_or(0);
    matches!(
        task.current_state(),
        TaskState::Failed | TaskState::Rejected | TaskState::Orphaned
    ) || exit_code != 0
}
