//! The reconcile loop every leader-only controller runs in: wake on store changes (a burst
//! of commits is handled once), on the controller's own requeue, or periodically against
//! missed events; reconcile only while this manager leads. Errors are never dropped: each
//! kind gets its own retry and log level ([`error_policy`]).

use std::future::Future;
use std::time::Duration;

use swarmr_proto::store_action::{Kind, Target};
use swarmr_proto::TaskState;
use tokio::sync::broadcast::error::RecvError;
use tokio::time::Instant;
use tracing::{debug, info, warn, Instrument};

use crate::core::Core;
use crate::error::ProposeError;
use crate::store::StoreEvent;

/// What a reconcile pass asks for next.
pub enum Action {
    /// Run again after this long even if nothing changes (e.g. a restart delay ends).
    Requeue(Duration),
    /// Run again on the next store change (or the periodic resync).
    AwaitChange,
}

const DEBOUNCE: Duration = Duration::from_millis(10);
const RESYNC: Duration = Duration::from_secs(2);
const RETRY: Duration = Duration::from_millis(500);

/// When to run again after a failed pass, logging the failure at the level it deserves:
/// a conflict is another writer that got there first (run again at once, from the new
/// state); a lost leadership is the new leader's job now; the rest are worth a warning.
pub fn error_policy(controller: &str, err: &ProposeError) -> Duration {
    match err {
        ProposeError::Conflict(reason) => {
            debug!(controller, %reason, "reconcile raced another write; again");
            DEBOUNCE
        }
        ProposeError::Deposed | ProposeError::NoLeader(_) | ProposeError::Stopped(_) => {
            info!(controller, error = %err, "reconcile stopped: leadership moved");
            RESYNC
        }
        _ => {
            warn!(controller, error = %err, "reconcile failed; retrying");
            RETRY
        }
    }
}

/// The orchestrator sleeps through the allocator's and the scheduler's steps: its
/// decisions do not depend on a live task being PENDING or ASSIGNED. (The workers' own
/// steps up to RUNNING wake it: its updater waits for RUNNING.)
pub const PLACING: &[TaskState] = &[TaskState::Pending, TaskState::Assigned];
/// The allocator sleeps through every step after its own up to RUNNING: a live task
/// keeps its addresses whatever its step.
pub const AFTER_ALLOCATION: &[TaskState] = &[
    TaskState::Pending,
    TaskState::Assigned,
    TaskState::Accepted,
    TaskState::Preparing,
    TaskState::Starting,
    TaskState::Running,
];
/// The scheduler sleeps through every step after its own up to RUNNING: a placed live
/// task counts on its node, and uses its resources there, whatever its step. It must
/// see the allocator's step, which it places.
pub const AFTER_PLACEMENT: &[TaskState] = &[
    TaskState::Assigned,
    TaskState::Accepted,
    TaskState::Preparing,
    TaskState::Starting,
    TaskState::Running,
];

/// Whether `event` can change a controller's decisions: not when all it holds is tasks
/// moved into one of the `ignored` states, still desired RUNNING (the pipeline's own
/// steps, see [`run`]). Everything else counts, a lost or reset feed included.
pub fn concerns(event: &StoreEvent, ignored: &[TaskState]) -> bool {
    let StoreEvent::Applied { actions, .. } = event else {
        return true;
    };
    actions.iter().any(|action| match &action.target {
        Some(Target::Task(task)) => {
            action.kind() != Kind::Update
                || task.desired_state() > TaskState::Running
                || !ignored.contains(&task.current_state())
        }
        _ => true,
    })
}

/// Runs `reconcile` on the store changes it [`concerns`]: 10,000 tasks allocated and then
/// placed woke every controller for each commit, and each pass read all of them. A pass
/// that an ignored change would have changed (a node lost at the moment its task was
/// placed) runs at the next resync instead.
pub async fn run<F, Fut>(
    name: &'static str,
    ignored: &'static [TaskState],
    core: Core,
    mut reconcile: F,
    shutdown: impl Future<Output = ()>,
) where
    F: FnMut(Core) -> Fut,
    Fut: Future<Output = Result<Action, ProposeError>>,
{
    tokio::pin!(shutdown);
    let mut events = core.store().subscribe();
    // A deadline, not a delay: ignored changes must not push a requeue back.
    let mut due = Instant::now();
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            event = events.recv() => {
                match event {
                    Err(RecvError::Closed) => return,
                    Ok(event) if !concerns(&event, ignored) => continue,
                    _ => {}
                }
                // Let a burst of commits land, then act once for all of them.
                tokio::time::sleep(DEBOUNCE).await;
                while events.try_recv().is_ok() {}
            }
            _ = tokio::time::sleep_until(due) => {}
        }
        if !core.is_settled_leader() {
            due = Instant::now() + RESYNC;
            continue;
        }
        let span = tracing::debug_span!("reconcile", controller = name);
        let started = std::time::Instant::now();
        let outcome = reconcile(core.clone()).instrument(span).await;
        crate::observe::METRICS.reconciled(name, started.elapsed(), outcome.is_err());
        due = Instant::now()
            + match outcome {
                Ok(Action::Requeue(after)) => after.min(RESYNC),
                Ok(Action::AwaitChange) => RESYNC,
                Err(e) => error_policy(name, &e),
            };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_retry_delay_depends_on_why_the_pass_failed() {
        let conflict = ProposeError::Conflict("task t1 changed".into());
        assert_eq!(error_policy("orchestrator", &conflict), DEBOUNCE);
        assert_eq!(error_policy("orchestrator", &ProposeError::Deposed), RESYNC);
        let refused = ProposeError::Rejected("network n1 not found".into());
        assert_eq!(error_policy("allocator", &refused), RETRY);
    }

    fn task(state: TaskState, desired: TaskState) -> swarmr_proto::Task {
        let mut task = swarmr_proto::Task::default();
        task.status
            .get_or_insert_with(Default::default)
            .set_state(state);
        task.set_desired_state(desired);
        task
    }

    fn applied(actions: Vec<swarmr_proto::StoreAction>) -> StoreEvent {
        StoreEvent::Applied { index: 1, actions }
    }

    #[test]
    fn only_the_pipelines_own_steps_leave_a_controller_asleep() {
        use crate::core::{create_action, update_action};
        use TaskState::{Assigned, Failed, Pending, Running, Shutdown, Starting};
        let placed = applied(vec![
            update_action(task(Pending, Running), 1),
            update_action(task(Assigned, Running), 1),
        ]);
        assert!(!concerns(&placed, PLACING));
        assert!(!concerns(&placed, AFTER_ALLOCATION));
        assert!(
            concerns(&placed, AFTER_PLACEMENT),
            "the scheduler places PENDING tasks"
        );
        let assigned = applied(vec![update_action(task(Assigned, Running), 1)]);
        assert!(!concerns(&assigned, AFTER_PLACEMENT));
        // The workers' reports up to RUNNING: only the orchestrator's updater waits on them.
        for state in [Starting, Running] {
            let reported = applied(vec![update_action(task(state, Running), 1)]);
            assert!(concerns(&reported, PLACING), "{state:?}");
            assert!(!concerns(&reported, AFTER_ALLOCATION), "{state:?}");
            assert!(!concerns(&reported, AFTER_PLACEMENT), "{state:?}");
        }

        let failed = applied(vec![
            update_action(task(Assigned, Running), 1),
            update_action(task(Failed, Running), 1),
        ]);
        assert!(concerns(&failed, PLACING));
        assert!(
            concerns(&failed, AFTER_PLACEMENT),
            "a failed task frees its node"
        );
        let stopping = applied(vec![update_action(task(Assigned, Shutdown), 1)]);
        assert!(concerns(&stopping, PLACING));
        let created = applied(vec![create_action(task(Pending, Running))]);
        assert!(concerns(&created, PLACING));
        let node = applied(vec![update_action(swarmr_proto::Node::default(), 1)]);
        assert!(concerns(&node, PLACING));
        assert!(concerns(&StoreEvent::Reset { index: 1 }, PLACING));
    }
}
