//! Names derived from a task, shared by the worker (which names containers) and the
//! manager (whose DNS directory answers those names).

use crate::{Task, TaskState};

impl TaskState {
    /// COMPLETE, SHUTDOWN, FAILED, REJECTED, ORPHANED: the states a task never leaves.
    pub fn is_terminal(self) -> bool {
        self >= TaskState::Complete
    }
}

impl Task {
    /// The state the task last reported; NEW before any report.
    pub fn current_state(&self) -> TaskState {
        self.status.as_ref().map_or(TaskState::New, |s| s.state())
    }
}

/// The container name of a task: `<service>.<slot>.<task id>`, with the node id in place of
/// the slot for a global service's task (slot 0), as Docker Swarm names them.
pub fn container_name(task: &Task) -> String {
    let slot = if task.slot == 0 {
        task.node_id.clone()
    } else {
        task.slot.to_string()
    };
    format!("{}.{}.{}", task.service_name, slot, task.id)
}
