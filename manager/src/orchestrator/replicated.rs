//! Replicated mode: one task per slot 1..=replicas.
//!
//! A slot is occupied while one of its tasks is desired RUNNING, whether it runs,
//! waits for a restart delay, or ended for good under its restart policy. Scaling up
//! fills the lowest free slot numbers (reusing their history); scaling down stops the
//! highest occupied slots. Tasks with slot 0 (a global task in a replicated service)
//! are stopped. During a stop-first rollout a slot whose old task is still stopping
//! stays taken (and in flight) until that task has stopped.

use std::collections::{BTreeMap, BTreeSet};

use swarmr_proto::{NodeAvailability, NodeState, Service, Task, TaskState, UpdateOrder};

use super::slot::{current, restart_ended, trim_history};
use super::updater::{self, Board, Rollout};
use super::{wants_running, Ctx};

/// Reconciles one replicated service's tasks.
pub fn reconcile(ctx: &mut Ctx<'_>, service: &Service, replicas: u64, tasks: &[&Task]) {
    let mut slots: BTreeMap<u64, Vec<&Task>> = BTreeMap::new();
    for task in tasks {
        slots.entry(task.slot).or_default().push(task);
    }
    let occupied: Vec<u64> = slots
        .iter()
        .filter(|(&slot, tasks)| slot > 0 && tasks.iter().any(|t| wants_running(t)))
        .map(|(&slot, _)| slot)
        .collect();
    let kept = occupied
        .len()
        .min(usize::try_from(replicas).unwrap_or(usize::MAX));
    let rollout = Rollout::of(service);
    let draining = match &rollout {
        Some(r) if r.config.order() == UpdateOrder::StopFirst => draining(ctx, &slots),
        _ => BTreeSet::new(),
    };
    let mut created: BTreeMap<u64, usize> = BTreeMap::new();
    let mut board = Board {
        in_flight: draining.len(),
        ..Default::default()
    };
    for (i, &slot) in occupied.iter().enumerate() {
        let tasks = slots.get(&slot).map(Vec::as_slice).unwrap_or_default();
        if i >= kept {
            tasks.iter().for_each(|t| ctx.shutdown(t));
        } else if !updater::handover(ctx, service, tasks, &mut board) {
            let made = reconcile_slot(ctx, service, tasks);
            match made {
                0 => board.observe(ctx, service, tasks),
                _ => board.in_flight += 1,
            }
            created.insert(slot, made);
        }
    }
    if let Some(stray) = slots.get(&0) {
        stray.iter().for_each(|t| ctx.shutdown(t));
    }
    let taken: BTreeSet<u64> = occupied.iter().chain(&draining).copied().collect();
    let missing = replicas.saturating_sub((kept + draining.len()) as u64);
    for slot in (1..).filter(|s| !taken.contains(s)).take(missing as usize) {
        ctx.create(service, slot, "", 0);
        created.insert(slot, 1);
        board.in_flight += 1;
    }
    if let Some(rollout) = rollout {
        for replaced in updater::advance(ctx, service, &rollout, &board, tasks) {
            *created.entry(replaced.slot).or_default() += 1;
        }
    }
    for (slot, tasks) in &slots {
        trim_history(ctx, tasks, created.get(slot).copied().unwrap_or(0));
    }
}

/// One kept slot: stop duplicates, replace a task whose node is lost at once, and a
/// task that ended per the restart policy. Returns how many tasks were created.
fn reconcile_slot(ctx: &mut Ctx<'_>, service: &Service, tasks: &[&Task]) -> usize {
    let (current, duplicates) = current(tasks);
    duplicates.iter().for_each(|t| ctx.shutdown(t));
    let Some(task) = current else {
        return 0;
    };
    if task.current_state().is_terminal() {
        return restart_ended(ctx, service, task, "", true);
    }
    if node_lost(ctx, task) {
        ctx.shutdown(task);
        ctx.create(service, task.slot, "", task.restart_attempt);
        return 1;
    }
    0
}

/// Slots a stop-first rollout emptied whose old task is still stopping on a live node:
/// they are refilled (with the current spec) only once it has stopped.
fn draining(ctx: &Ctx<'_>, slots: &BTreeMap<u64, Vec<&Task>>) -> BTreeSet<u64> {
    let stopping = |t: &&Task| {
        !wants_running(t)
            && !t.current_state().is_terminal()
            && t.current_state() >= TaskState::Assigned
            && !node_lost(ctx, t)
    };
    slots
        .iter()
        .filter(|(&slot, tasks)| {
            slot > 0 && !tasks.iter().any(|t| wants_running(t)) && tasks.iter().any(stopping)
        })
        .map(|(&slot, _)| slot)
        .collect()
}

/// The task's node is gone, Down or Drain: the task must run elsewhere.
fn node_lost(ctx: &Ctx<'_>, task: &Task) -> bool {
    if task.node_id.is_empty() {
        return false;
    }
    match ctx.node(&task.node_id) {
        None => true,
        Some(node) => {
            node.state() == NodeState::Down || node.availability() == NodeAvailability::Drain
        }
    }
}
