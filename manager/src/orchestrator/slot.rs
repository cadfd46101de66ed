//! One slot's tasks: which one is current, restarting it, and trimming its history.
//! A slot is a replica number in replicated mode and a node in global mode.

use std::cmp::Reverse;

use swarmr_proto::{Service, Task};

use super::restart::{decide, Restart};
use super::{wants_running, Ctx};

/// Tasks kept per slot, as Docker's default task history retention limit.
pub const TASK_HISTORY_LIMIT: usize = 5;

/// The slot's current task (the one still desired RUNNING) and any other tasks
/// desired RUNNING, which are duplicates to stop. Prefers a task that has not ended,
/// then the higher restart attempt, then the later creation, then the larger id.
pub fn current<'a>(tasks: &[&'a Task]) -> (Option<&'a Task>, Vec<&'a Task>) {
    let mut wanted: Vec<&'a Task> = tasks.iter().copied().filter(|t| wants_running(t)).collect();
    wanted.sort_by_key(|t| {
        let created = t.meta.as_ref().map_or(0, |m| m.created_at);
        Reverse((
            !t.current_state().is_terminal(),
            t.restart_attempt,
            created,
            t.id.as_str(),
        ))
    });
    let mut wanted = wanted.into_iter();
    (wanted.next(), wanted.collect())
}

/// The slot's current task ended while desired RUNNING: per the restart policy,
/// stop it and create its successor on `node_id` (empty: the scheduler picks), wait,
/// or leave the slot as it is. `can_create` false holds back a due restart (a global
/// task's node is Paused). Returns how many tasks were created.
pub fn restart_ended(
    ctx: &mut Ctx<'_>,
    service: &Service,
    ended: &Task,
    node_id: &str,
    can_create: bool,
) -> usize {
    let policy = service.spec.as_ref().and_then(|s| s.restart.as_ref());
    match decide(ended, policy, ctx.now) {
        Restart::Now if can_create => {
            ctx.shutdown(ended);
            let attempt = ended.restart_attempt.saturating_add(1);
            ctx.create(service, ended.slot, node_id, attempt);
            1
        }
        Restart::At(at) => {
            ctx.wake_at(at);
            0
        }
        Restart::Now | Restart::Never => 0,
    }
}

/// Deletes the oldest finished tasks of the slot (asked to stop and gone, see
/// [`Ctx::is_gone`]) until at most [`TASK_HISTORY_LIMIT`] remain, counting the
/// `created` tasks this pass adds. Tasks still desired RUNNING are never deleted.
pub fn trim_history(ctx: &mut Ctx<'_>, tasks: &[&Task], created: usize) {
    let total = tasks.len() + created;
    if total <= TASK_HISTORY_LIMIT {
        return;
    }
    let mut finished: Vec<&Task> = tasks
        .iter()
        .copied()
        .filter(|t| !wants_running(t) && ctx.is_gone(t))
        .collect();
    finished.sort_by_key(|t| (t.meta.as_ref().map_or(0, |m| m.created_at), t.id.as_str()));
    for task in finished.into_iter().take(total - TASK_HISTORY_LIMIT) {
        ctx.delete(task);
    }
}
