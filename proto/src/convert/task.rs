//! Names derived from a task, shared by the worker (which names containers) and the
//! manager (whose DNS directory answers those names).

use crate::Task;

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
