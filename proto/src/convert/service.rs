//! Service and task enums as Docker's Engine API spells them (`on-failure`,
//! `start-first`, `rollback_started`, `running`).

use crate::{RestartCondition, TaskState, UpdateFailureAction, UpdateOrder, UpdateState};

impl RestartCondition {
    pub fn label(self) -> &'static str {
        match self {
            RestartCondition::Any => "any",
            RestartCondition::OnFailure => "on-failure",
            RestartCondition::None => "none",
        }
    }
}

impl UpdateFailureAction {
    pub fn label(self) -> &'static str {
        match self {
            UpdateFailureAction::Pause => "pause",
            UpdateFailureAction::Continue => "continue",
            UpdateFailureAction::Rollback => "rollback",
        }
    }
}

impl UpdateOrder {
    pub fn label(self) -> &'static str {
        match self {
            UpdateOrder::StopFirst => "stop-first",
            UpdateOrder::StartFirst => "start-first",
        }
    }
}

impl UpdateState {
    /// Empty for `Unknown`, which Docker never shows.
    pub fn label(self) -> &'static str {
        match self {
            UpdateState::Unknown => "",
            UpdateState::Updating => "updating",
            UpdateState::Paused => "paused",
            UpdateState::Completed => "completed",
            UpdateState::RollbackStarted => "rollback_started",
            UpdateState::RollbackPaused => "rollback_paused",
            UpdateState::RollbackCompleted => "rollback_completed",
        }
    }
}

impl TaskState {
    /// The Engine API's lower-case word (`docker service ps` capitalises it).
    pub fn label(self) -> &'static str {
        match self {
            TaskState::New => "new",
            TaskState::Pending => "pending",
            TaskState::Assigned => "assigned",
            TaskState::Accepted => "accepted",
            TaskState::Preparing => "preparing",
            TaskState::Starting => "starting",
            TaskState::Running => "running",
            TaskState::Complete => "complete",
            TaskState::Shutdown => "shutdown",
            TaskState::Failed => "failed",
            TaskState::Rejected => "rejected",
            TaskState::Orphaned => "orphaned",
        }
    }
}
