//! Task status reports from workers, committed in groups: while one proposal is in flight,
//! reports queue up, and the next proposal carries all of them. A thousand workers
//! reporting at once then make a handful of Raft entries instead of a thousand, each of
//! which would also wake sessions. A report is answered once the proposal carrying it is
//! committed. Only forward moves of the reporting node's own tasks are recorded.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use swarmr_proto::{Task, TaskStatus, TaskStatusUpdate};
use tokio::sync::oneshot;
use tonic::Status;
use tracing::debug;

use crate::core::{update_action, Core};
use crate::error::ProposeError;
use crate::store::Object;

/// How often a group is re-read and proposed again when a task changed under it.
const ATTEMPTS: usize = 5;

#[derive(Clone, Default)]
pub struct Reports {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    queue: Mutex<Vec<Report>>,
    /// Held while a group is being committed; whoever gets it next takes the whole queue.
    turn: tokio::sync::Mutex<()>,
}

struct Report {
    node_id: String,
    updates: Vec<TaskStatusUpdate>,
    done: oneshot::Sender<Result<(), Status>>,
}

impl Reports {
    fn queue(&self) -> MutexGuard<'_, Vec<Report>> {
        // A push or a take: nothing is left half-done by a panic.
        self.inner
            .queue
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Records what a worker reports, together with whatever else is queued.
    pub async fn record(
        &self,
        core: &Core,
        node_id: &str,
        updates: Vec<TaskStatusUpdate>,
    ) -> Result<(), Status> {
        let (done, result) = oneshot::channel();
        self.queue().push(Report {
            node_id: node_id.to_string(),
            updates,
            done,
        });
        {
            let _turn = self.inner.turn.lock().await;
            let group = std::mem::take(&mut *self.queue());
            if !group.is_empty() {
                // Spawned, so a caller that goes away mid-proposal does not cancel the
                // others' reports.
                let _ = tokio::spawn(commit(core.clone(), group)).await;
            }
        }
        result
            .await
            .unwrap_or_else(|_| Err(Status::aborted("status report lost; report again")))
    }
}

async fn commit(core: Core, group: Vec<Report>) {
    let result = propose(&core, &group).await;
    debug!(
        reports = group.len(),
        ok = result.is_ok(),
        "task status reports committed"
    );
    for report in group {
        let _ = report.done.send(result.clone());
    }
}

/// One proposal for the whole group, re-read and retried if a task changed (or vanished)
/// between reading and committing.
async fn propose(core: &Core, group: &[Report]) -> Result<(), Status> {
    for _ in 0..ATTEMPTS {
        let actions = forward_moves(group, |id| Ok(core.store().get::<Task>(id)?))?
            .into_iter()
            .map(|task| {
                let version = task.version();
                update_action(task, version)
            })
            .collect::<Vec<_>>();
        if actions.is_empty() {
            return Ok(());
        }
        match core.propose_chunked(actions).await {
            // The retry reads the store again, which skips tasks that moved on or went.
            Err(ProposeError::Rejected(reason) | ProposeError::Conflict(reason)) => {
                debug!(%reason, "status group rejected; retrying")
            }
            other => return other.map(|_| ()).map_err(Status::from),
        }
    }
    Err(Status::aborted("task status kept changing; report again"))
}

/// The reported tasks, as `read` gives them now, with each one's furthest reported status
/// applied; only where that moves the task forward and the reporting node runs it.
fn forward_moves(
    group: &[Report],
    read: impl Fn(&str) -> Result<Option<Task>, Status>,
) -> Result<Vec<Task>, Status> {
    // One action per task: two would conflict with each other within the proposal.
    let mut furthest: BTreeMap<&str, (&str, &TaskStatus)> = BTreeMap::new();
    for report in group {
        for update in &report.updates {
            let Some(status) = &update.status else {
                continue;
            };
            let entry = furthest
                .entry(update.task_id.as_str())
                .or_insert((report.node_id.as_str(), status));
            if status.state() > entry.1.state() {
                *entry = (report.node_id.as_str(), status);
            }
        }
    }
    let mut moved = Vec::new();
    for (task_id, (node_id, status)) in furthest {
        let Some(mut task) = read(task_id)? else {
            continue;
        };
        let current = task.current_state();
        if task.node_id != node_id || status.state() <= current || current.is_terminal() {
            debug!(task.id = %task.id, node.id = %node_id, from = ?current, to = ?status.state(), "ignored task status report");
            continue;
        }
        task.status = Some(status.clone());
        moved.push(task);
    }
    Ok(moved)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use swarmr_proto::TaskState;

    use super::*;

    fn task(id: &str, node_id: &str, state: TaskState) -> Task {
        Task {
            id: id.into(),
            node_id: node_id.into(),
            status: Some(TaskStatus {
                state: state as i32,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn report(node_id: &str, updates: &[(&str, TaskState)]) -> Report {
        Report {
            node_id: node_id.into(),
            updates: updates
                .iter()
                .map(|(id, state)| TaskStatusUpdate {
                    task_id: id.to_string(),
                    status: Some(TaskStatus {
                        state: *state as i32,
                        ..Default::default()
                    }),
                })
                .collect(),
            done: oneshot::channel().0,
        }
    }

    fn moves(stored: &[Task], group: &[Report]) -> Vec<(String, TaskState)> {
        let by_id: HashMap<&str, &Task> = stored.iter().map(|t| (t.id.as_str(), t)).collect();
        let read = |id: &str| Ok(by_id.get(id).map(|t| (*t).clone()));
        let moved = forward_moves(group, read).expect("no read error");
        moved
            .iter()
            .map(|t| (t.id.clone(), t.current_state()))
            .collect()
    }

    #[test]
    fn a_group_moves_each_task_once_to_its_furthest_reported_state() {
        use TaskState::*;
        let stored = [task("a", "n1", Assigned), task("b", "n2", Assigned)];
        let group = [
            report("n1", &[("a", Starting)]),
            report("n2", &[("b", Running)]),
            report("n1", &[("a", Running)]),
            report("n1", &[("a", Preparing)]),
        ];
        let expected = vec![("a".to_string(), Running), ("b".to_string(), Running)];
        assert_eq!(moves(&stored, &group), expected);
    }

    #[test]
    fn backward_foreign_unknown_and_finished_reports_are_ignored() {
        use TaskState::*;
        let stored = [
            task("running", "n1", Running),
            task("theirs", "n2", Assigned),
            task("done", "n1", Complete),
        ];
        let group = [report(
            "n1",
            &[
                ("running", Starting),
                ("theirs", Running),
                ("gone", Running),
                ("done", Failed),
            ],
        )];
        assert_eq!(moves(&stored, &group), vec![]);
    }
}
