//! Waiting for a service's tasks to run, with Docker's progress display: an overall line,
//! then a line per slot (replicated) or per node (global).
//!
//! Converged: as many tasks running as desired, for one second. Gives up after the timeout,
//! or at once when at least three new tasks failed and all with the same error while none
//! runs (an image that does not exist, say).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use anyhow::bail;
use swarmr_proto::{GetServiceRequest, ListTasksRequest, ServiceView, Task, TaskState, TaskView};

use super::display::Display;
use super::ps::{group_key, is_desired_running};
use super::Control;
use crate::args::WaitArgs;
use crate::commands::network::short_id as short;
use crate::output;

const POLL: Duration = Duration::from_millis(200);
const STABLE: Duration = Duration::from_secs(1);
/// Docker shows per-slot lines only up to this many tasks.
const MAX_SLOT_LINES: u64 = 20;
const SAME_FAILURES: usize = 3;

/// The ids of a service's tasks now (empty when it cannot be read).
pub async fn task_ids(control: &mut Control, reference: &str) -> HashSet<String> {
    let request = ListTasksRequest {
        service: reference.to_string(),
    };
    match control.list_tasks(request).await {
        Ok(reply) => reply
            .into_inner()
            .tasks
            .into_iter()
            .filter_map(|t| t.task.map(|t| t.id))
            .collect(),
        Err(_) => HashSet::new(),
    }
}

/// Polls until the service converges; `before` are task ids whose failures do not count.
pub async fn wait(
    control: &mut Control,
    service_id: &str,
    args: &WaitArgs,
    before: &HashSet<String>,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + args.converge_timeout;
    let mut display = Display::new(args.quiet);
    let mut stable_since: Option<Instant> = None;
    let mut last: Option<Progress> = None;
    let mut last_error = None;
    loop {
        match poll(control, service_id).await {
            Ok((view, tasks)) => {
                let progress = Progress::new(&view, &tasks, before);
                display.show(&progress.lines(display.live));
                if let Some(error) = progress.same_failure() {
                    bail!(
                        "service {}: {} tasks failed, all with: {error}",
                        progress.name,
                        progress.new_failures.len()
                    );
                }
                if progress.running == progress.desired {
                    if stable_since.get_or_insert_with(Instant::now).elapsed() >= STABLE {
                        display.line("verify: Service converged");
                        return Ok(());
                    }
                } else {
                    stable_since = None;
                }
                last = Some(progress);
            }
            Err(status) if status.code() == tonic::Code::NotFound => {
                bail!("{}", output::status_text(&status))
            }
            Err(status) => last_error = Some(output::status_text(&status)),
        }
        if Instant::now() >= deadline {
            bail!(timeout_message(
                args.converge_timeout,
                last.as_ref(),
                last_error
            ));
        }
        tokio::time::sleep(POLL).await;
    }
}

pub(super) async fn poll(
    control: &mut Control,
    service_id: &str,
) -> Result<(ServiceView, Vec<TaskView>), tonic::Status> {
    let reference = service_id.to_string();
    let view = control
        .get_service(GetServiceRequest { reference })
        .await?
        .into_inner()
        .service
        .unwrap_or_default();
    let service = service_id.to_string();
    let tasks = control
        .list_tasks(ListTasksRequest { service })
        .await?
        .into_inner()
        .tasks;
    Ok((view, tasks))
}

fn timeout_message(timeout: Duration, last: Option<&Progress>, error: Option<String>) -> String {
    let waited = humantime::format_duration(timeout);
    let Some(progress) = last else {
        let error = error.unwrap_or_else(|| "no answer".into());
        return format!("the service did not converge within {waited}: {error}");
    };
    let mut text = format!(
        "service {} did not converge within {waited}: {} out of {} tasks running",
        progress.name, progress.running, progress.desired
    );
    for reason in progress.reasons() {
        text.push_str("; ");
        text.push_str(&reason);
    }
    text
}

/// One poll's worth of progress.
#[derive(Debug)]
pub struct Progress {
    pub name: String,
    pub running: u64,
    pub desired: u64,
    global: bool,
    /// Current task of each slot (or node, in global mode), in slot order.
    current: Vec<Task>,
    /// Errors of the tasks that failed since the wait began.
    new_failures: Vec<String>,
}

impl Progress {
    pub fn new(view: &ServiceView, tasks: &[TaskView], before: &HashSet<String>) -> Self {
        Self::counting(view, tasks, before, false)
    }

    /// With `fresh_only`, a slot counts as done only once its task runs the service's
    /// current container spec (an update's progress).
    pub fn counting(
        view: &ServiceView,
        tasks: &[TaskView],
        before: &HashSet<String>,
        fresh_only: bool,
    ) -> Self {
        let service = view.service.clone().unwrap_or_default();
        let spec = service.spec.unwrap_or_default();
        let mut current: Vec<Task> = Vec::new();
        let mut tasks: Vec<Task> = tasks.iter().filter_map(|t| t.task.clone()).collect();
        super::ps::sort_tasks(&mut tasks);
        for task in &tasks {
            let same_group = current
                .last()
                .is_some_and(|c| group_key(c) == group_key(task));
            if is_desired_running(task) && !same_group {
                current.push(task.clone());
            }
        }
        let new_failures = tasks
            .iter()
            .filter(|t| !before.contains(&t.id))
            .filter(|t| matches!(t.current_state(), TaskState::Failed | TaskState::Rejected))
            .map(|t| t.status.clone().unwrap_or_default().error)
            .collect();
        // Slots above the replica count are on their way out after a scale-down: they
        // neither show nor count (they once made "3 out of 1 tasks").
        let running = match spec.global {
            true => view.running,
            false => {
                current.retain(|t| t.slot <= view.desired);
                let counts = |t: &&Task| !fresh_only || t.container == spec.container;
                let running = current
                    .iter()
                    .filter(|t| t.current_state() == TaskState::Running);
                running.filter(counts).count() as u64
            }
        };
        Progress {
            name: spec.name,
            running,
            desired: view.desired,
            global: spec.global,
            current,
            new_failures,
        }
    }

    /// The shared error when every one of at least three new tasks failed the same way
    /// and nothing runs.
    pub fn same_failure(&self) -> Option<&str> {
        let first = self.new_failures.first()?;
        let all_same = self.new_failures.iter().all(|e| e == first);
        let enough = self.new_failures.len() >= SAME_FAILURES;
        (self.running == 0 && self.desired > 0 && all_same && enough).then_some(first.as_str())
    }

    /// Why tasks are not running: scheduling errors and the errors of new failures.
    pub fn reasons(&self) -> Vec<String> {
        let mut reasons: Vec<String> = Vec::new();
        let scheduling = self.current.iter().map(|t| t.scheduling_error.clone());
        for reason in scheduling.chain(self.new_failures.iter().cloned()) {
            if !reason.is_empty() && !reasons.contains(&reason) {
                reasons.push(reason);
            }
        }
        reasons
    }

    pub fn lines(&self, bars: bool) -> Vec<String> {
        let mut lines = vec![format!(
            "overall progress: {} out of {} tasks",
            self.running, self.desired
        )];
        if self.desired > MAX_SLOT_LINES {
            return lines;
        }
        for task in &self.current {
            let prefix = match self.global {
                true => short(&task.node_id),
                false => format!("{}/{}", task.slot, self.desired),
            };
            let (text, stage) = slot_status(task);
            match bars {
                true => lines.push(format!("{prefix}: {text:<10} {}", bar(stage))),
                false => lines.push(format!("{prefix}: {text}")),
            }
        }
        lines
    }
}

/// What a slot's line says, and how far along (0..=6) its task is.
fn slot_status(task: &Task) -> (String, usize) {
    let status = task.status.clone().unwrap_or_default();
    let current = task.current_state();
    let label = super::ps::state_label(current).to_lowercase();
    if current < TaskState::Assigned && !task.scheduling_error.is_empty() {
        return (task.scheduling_error.clone(), 0);
    }
    if current > TaskState::Running && !status.error.is_empty() {
        return (format!("{label}: {}", status.error), 0);
    }
    let stage = (current as usize).min(TaskState::Running as usize);
    (label, stage)
}

/// Docker's `[=====>    ]`, 50 wide.
fn bar(stage: usize) -> String {
    let full = 50 * stage / TaskState::Running as usize;
    let head = if full == 0 { " " } else { ">" };
    let done = "=".repeat(full.saturating_sub(1));
    format!("[{done}{head}{}]", " ".repeat(50 - full.max(1)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use swarmr_proto::{Service, ServiceSpec};

    fn view(running: u64, desired: u64) -> ServiceView {
        let spec = ServiceSpec {
            name: "web".into(),
            replicas: Some(desired),
            ..Default::default()
        };
        let service = Service {
            spec: Some(spec),
            ..Default::default()
        };
        ServiceView {
            service: Some(service),
            running,
            desired,
        }
    }

    fn task(id: &str, slot: u64, created_at: i64, state: TaskState, error: &str) -> TaskView {
        let desired = match state {
            TaskState::Failed | TaskState::Rejected => TaskState::Shutdown,
            _ => TaskState::Running,
        };
        let mut task = super::super::ps::tests::web_task(id, slot, created_at, state, desired);
        if let Some(status) = task.status.as_mut() {
            status.error = error.into();
        }
        TaskView {
            task: Some(task),
            node_hostname: String::new(),
        }
    }

    #[test]
    fn lines_show_each_slots_current_task() {
        let mut pending = task("c", 3, 1, TaskState::Pending, "");
        if let Some(t) = pending.task.as_mut() {
            t.scheduling_error = "no suitable node (2 nodes fail constraint)".into();
        }
        let tasks = [
            task("a", 1, 1, TaskState::Running, ""),
            task("b0", 2, 1, TaskState::Failed, "exit 1"),
            task("b1", 2, 2, TaskState::Preparing, ""),
            pending,
        ];
        let progress = Progress::new(&view(1, 3), &tasks, &HashSet::new());
        assert_eq!(
            progress.lines(false),
            [
                "overall progress: 1 out of 3 tasks",
                "1/3: running",
                "2/3: preparing",
                "3/3: no suitable node (2 nodes fail constraint)",
            ]
        );
        assert_eq!(progress.same_failure(), None);
        assert_eq!(
            progress.reasons(),
            ["no suitable node (2 nodes fail constraint)", "exit 1"]
        );
        assert!(progress.lines(true)[1].ends_with(&format!("[{}>]", "=".repeat(49))));
    }

    #[test]
    fn three_new_failures_with_one_error_stop_the_wait() {
        let failed = |id: &str, at, error| task(id, 1, at, TaskState::Rejected, error);
        let tasks = [
            failed("a", 1, "No such image: nope"),
            failed("b", 2, "No such image: nope"),
        ];
        let progress = Progress::new(&view(0, 1), &tasks, &HashSet::new());
        assert_eq!(progress.same_failure(), None);
        let mut tasks = tasks.to_vec();
        tasks.push(failed("c", 3, "No such image: nope"));
        let progress = Progress::new(&view(0, 1), &tasks, &HashSet::new());
        assert_eq!(progress.same_failure(), Some("No such image: nope"));
        let before: HashSet<String> = ["a".to_string()].into();
        assert_eq!(
            Progress::new(&view(0, 1), &tasks, &before).same_failure(),
            None
        );
        tasks.push(failed("d", 4, "other"));
        assert_eq!(
            Progress::new(&view(0, 1), &tasks, &HashSet::new()).same_failure(),
            None
        );
    }

    #[test]
    fn timeout_names_the_reasons() {
        let tasks = [task("a", 1, 1, TaskState::Rejected, "No such image: nope")];
        let progress = Progress::new(&view(0, 2), &tasks, &HashSet::new());
        let text = timeout_message(Duration::from_secs(60), Some(&progress), None);
        assert_eq!(
            text,
            "service web did not converge within 1m: 0 out of 2 tasks running; No such image: nope"
        );
    }

    #[test]
    fn a_scale_down_counts_only_the_slots_kept() {
        let tasks = [
            task("a", 1, 1, TaskState::Running, ""),
            task("b", 2, 1, TaskState::Running, ""),
            task("c", 3, 1, TaskState::Running, ""),
        ];
        let progress = Progress::new(&view(3, 1), &tasks, &HashSet::new());
        assert_eq!(
            progress.lines(false),
            ["overall progress: 1 out of 1 tasks", "1/1: running"]
        );
    }

    #[test]
    fn many_replicas_show_only_the_overall_line() {
        assert_eq!(
            Progress::new(&view(0, 21), &[], &HashSet::new())
                .lines(true)
                .len(),
            1
        );
    }
}
