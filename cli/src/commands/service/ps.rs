//! `service ps`: each slot's current task, then its earlier ones as ` \_ web.1`.

use std::cmp::Reverse;
use std::time::Duration;

use serde_json::{json, Value};
use swarmr_proto::{HealthState, ListTasksRequest, Task, TaskState, TaskView};

use crate::args::ListArgs;
use crate::client;
use crate::commands::network::short_id;
use crate::output;

/// Docker truncates errors in `service ps` to this width.
const MAX_ERROR_WIDTH: usize = 30;

pub async fn ps(
    host: &str,
    list: &ListArgs,
    no_trunc: bool,
    services: Vec<String>,
) -> anyhow::Result<()> {
    let mut control = client::control(host).await?;
    let mut views = Vec::new();
    for service in services {
        let reply = control.list_tasks(ListTasksRequest { service }).await?;
        views.extend(reply.into_inner().tasks);
    }
    let rows = rows(views, swarmr_proto::convert::now_millis());
    if list.quiet {
        rows.iter().for_each(|r| println!("{}", r.id));
    } else if list.format == "json" {
        rows.iter().for_each(|r| println!("{}", r.json()));
    } else {
        let cells: Vec<Vec<String>> = rows.iter().map(|r| r.cells(!no_trunc)).collect();
        let headers = [
            "ID",
            "NAME",
            "IMAGE",
            "NODE",
            "DESIRED STATE",
            "CURRENT STATE",
            "ERROR",
            "PORTS",
        ];
        print!("{}", output::table(&headers, &cells));
    }
    Ok(())
}

pub fn is_desired_running(task: &Task) -> bool {
    task.desired_state() == TaskState::Running
}

/// Tasks of one slot (replicated) or one node (global, slot 0) share a key.
pub fn group_key(task: &Task) -> (&str, u64, &str) {
    let node = if task.slot == 0 {
        task.node_id.as_str()
    } else {
        ""
    };
    (task.service_name.as_str(), task.slot, node)
}

/// By service and slot, newest task first within a slot.
pub fn sort_tasks(tasks: &mut [Task]) {
    let created = |t: &Task| t.meta.map_or(0, |m| m.created_at);
    tasks.sort_by(|a, b| {
        (group_key(a), Reverse(created(a)), &a.id).cmp(&(group_key(b), Reverse(created(b)), &b.id))
    });
}

/// Docker's words for task states.
pub fn state_label(state: TaskState) -> &'static str {
    match state {
        TaskState::New => "New",
        TaskState::Pending => "Pending",
        TaskState::Assigned => "Assigned",
        TaskState::Accepted => "Accepted",
        TaskState::Preparing => "Preparing",
        TaskState::Starting => "Starting",
        TaskState::Running => "Running",
        TaskState::Complete => "Complete",
        TaskState::Shutdown => "Shutdown",
        TaskState::Failed => "Failed",
        TaskState::Rejected => "Rejected",
        TaskState::Orphaned => "Orphaned",
    }
}

/// Docker's `units.HumanDuration`: "Less than a second", "About a minute", "3 hours".
pub fn human_duration(d: Duration) -> String {
    let seconds = d.as_secs();
    let minutes = seconds / 60;
    let hours = (d.as_secs_f64() / 3600.0).round() as u64;
    match () {
        _ if seconds < 1 => "Less than a second".into(),
        _ if seconds == 1 => "1 second".into(),
        _ if seconds < 60 => format!("{seconds} seconds"),
        _ if minutes == 1 => "About a minute".into(),
        _ if minutes < 60 => format!("{minutes} minutes"),
        _ if hours == 1 => "About an hour".into(),
        _ if hours < 48 => format!("{hours} hours"),
        _ if hours < 24 * 7 * 2 => format!("{} days", hours / 24),
        _ if hours < 24 * 30 * 2 => format!("{} weeks", hours / 24 / 7),
        _ if hours < 24 * 365 * 2 => format!("{} months", hours / 24 / 30),
        _ => format!("{} years", seconds / 3600 / 24 / 365),
    }
}

/// ` (healthy)` for a task whose container has a health check.
fn health_suffix(task: &Task) -> &'static str {
    match task.status.as_ref().map(|s| s.health()) {
        Some(HealthState::Starting) => " (starting)",
        Some(HealthState::Healthy) => " (healthy)",
        Some(HealthState::Unhealthy) => " (unhealthy)",
        Some(HealthState::None) | None => "",
    }
}

/// `Running (healthy) 5 seconds ago`.
fn current_state(task: &Task, now_ms: i64) -> String {
    let label = format!(
        "{}{}",
        state_label(task.current_state()),
        health_suffix(task)
    );
    let since = task.status.as_ref().map_or(0, |s| s.timestamp);
    if since <= 0 {
        return label.to_string();
    }
    let age = Duration::from_millis(u64::try_from(now_ms - since).unwrap_or(0));
    format!("{label} {} ago", human_duration(age).to_lowercase())
}

/// What went wrong: the container's error, else why the scheduler could not place it.
fn task_error(task: &Task) -> String {
    let error = task.status.as_ref().map_or("", |s| s.error.as_str());
    if !error.is_empty() {
        return error.to_string();
    }
    task.scheduling_error.clone()
}

/// One line of `service ps`.
#[derive(Debug)]
pub struct PsRow {
    pub id: String,
    pub name: String,
    pub history: bool,
    pub image: String,
    pub node: String,
    pub desired: &'static str,
    pub current: String,
    pub error: String,
}

/// The rows in Docker's order, earlier tasks of a slot marked as history.
pub fn rows(views: Vec<TaskView>, now_ms: i64) -> Vec<PsRow> {
    let mut hostnames = std::collections::HashMap::new();
    let mut tasks: Vec<Task> = Vec::new();
    for view in views {
        if let Some(task) = view.task {
            hostnames.insert(task.id.clone(), view.node_hostname);
            tasks.push(task);
        }
    }
    sort_tasks(&mut tasks);
    let mut rows: Vec<PsRow> = Vec::new();
    for (i, task) in tasks.iter().enumerate() {
        let history = i > 0 && group_key(&tasks[i - 1]) == group_key(task);
        let name = match task.slot {
            0 => format!("{}.{}", task.service_name, task.node_id),
            slot => format!("{}.{slot}", task.service_name),
        };
        rows.push(PsRow {
            id: task.id.clone(),
            name: name.trim_end_matches('.').to_string(),
            history,
            image: task
                .container
                .as_ref()
                .map(|c| c.image.clone())
                .unwrap_or_default(),
            node: hostnames.remove(&task.id).unwrap_or_default(),
            desired: state_label(task.desired_state()),
            current: current_state(task, now_ms),
            error: task_error(task),
        });
    }
    rows
}

impl PsRow {
    pub fn cells(&self, trunc: bool) -> Vec<String> {
        let name = match self.history {
            true => format!(" \\_ {}", self.name),
            false => self.name.clone(),
        };
        let (id, image, error) = match trunc {
            true => (
                short_id(&self.id),
                strip_digest(&self.image),
                ellipsis(&self.error),
            ),
            false => (self.id.clone(), self.image.clone(), self.error.clone()),
        };
        let error = if error.is_empty() {
            error
        } else {
            format!("\"{error}\"")
        };
        let (node, desired, current) = (
            self.node.clone(),
            self.desired.to_string(),
            self.current.clone(),
        );
        vec![
            id,
            name,
            image,
            node,
            desired,
            current,
            error,
            String::new(),
        ]
    }

    pub fn json(&self) -> Value {
        json!({
            "ID": self.id, "Name": self.name, "Image": self.image, "Node": self.node,
            "DesiredState": self.desired, "CurrentState": self.current, "Error": self.error,
        })
    }
}

fn strip_digest(image: &str) -> String {
    image.split('@').next().unwrap_or_default().to_string()
}

/// Docker's `Ellipsis`: at most 30 characters, the last one `…` when cut.
fn ellipsis(text: &str) -> String {
    if text.chars().count() <= MAX_ERROR_WIDTH {
        return text.to_string();
    }
    let kept: String = text.chars().take(MAX_ERROR_WIDTH - 1).collect();
    format!("{kept}…")
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use swarmr_proto::{Meta, TaskStatus};

    /// Task `id` of service `web` in `slot`, created at `created_at`, in `state`.
    pub(in crate::commands::service) fn web_task(
        id: &str,
        slot: u64,
        created_at: i64,
        state: TaskState,
        desired: TaskState,
    ) -> Task {
        let status = TaskStatus {
            state: state as i32,
            ..Default::default()
        };
        Task {
            id: id.into(),
            meta: Some(Meta {
                created_at,
                ..Default::default()
            }),
            service_name: "web".into(),
            slot,
            status: Some(status),
            desired_state: desired as i32,
            ..Default::default()
        }
    }

    /// `web_task` on `node1` (host-1), its status stamped at 100 s.
    fn task(
        id: &str,
        slot: u64,
        created_at: i64,
        state: TaskState,
        desired: TaskState,
    ) -> TaskView {
        let mut task = web_task(id, slot, created_at, state, desired);
        task.node_id = "node1".into();
        if let Some(status) = task.status.as_mut() {
            status.timestamp = 100_000;
        }
        TaskView {
            task: Some(task),
            node_hostname: "host-1".into(),
        }
    }

    #[test]
    fn human_durations_match_docker() {
        let cases = [
            (0, "Less than a second"),
            (1, "1 second"),
            (59, "59 seconds"),
            (60, "About a minute"),
            (119, "About a minute"),
            (120, "2 minutes"),
            (3599, "59 minutes"),
            (3600, "About an hour"),
            (5399, "About an hour"),
            (5400, "2 hours"),
            (47 * 3600, "47 hours"),
            (48 * 3600, "2 days"),
            (14 * 86400, "2 weeks"),
            (60 * 86400, "2 months"),
            (800 * 86400, "2 years"),
        ];
        for (seconds, text) in cases {
            assert_eq!(
                human_duration(Duration::from_secs(seconds)),
                text,
                "{seconds}s"
            );
        }
        assert_eq!(
            human_duration(Duration::from_millis(999)),
            "Less than a second"
        );
    }

    #[test]
    fn rows_put_newest_task_of_each_slot_first_and_history_after() {
        use TaskState::{Failed, Running, Shutdown};
        let views = vec![
            task("old1", 1, 10, Failed, Shutdown),
            task("new2", 2, 30, Running, Running),
            task("new1", 1, 20, Running, Running),
            task("older1", 1, 5, Failed, Shutdown),
        ];
        let rows = rows(views, 105_000);
        let order: Vec<(&str, bool)> = rows.iter().map(|r| (r.id.as_str(), r.history)).collect();
        assert_eq!(
            order,
            [
                ("new1", false),
                ("old1", true),
                ("older1", true),
                ("new2", false)
            ]
        );
        let cells = rows[1].cells(true);
        assert_eq!(cells[1], " \\_ web.1");
        assert_eq!(cells[3], "host-1");
        assert_eq!(cells[4], "Shutdown");
        assert_eq!(cells[5], "Failed 5 seconds ago");
        assert_eq!(rows[0].cells(true)[1], "web.1");
    }

    #[test]
    fn a_task_with_a_health_check_shows_its_health() {
        let mut view = task("t1", 1, 1, TaskState::Running, TaskState::Running);
        if let Some(status) = view.task.as_mut().and_then(|t| t.status.as_mut()) {
            status.set_health(HealthState::Healthy);
        }
        let rows = rows(vec![view], 105_000);
        assert_eq!(rows[0].cells(true)[5], "Running (healthy) 5 seconds ago");
    }

    #[test]
    fn errors_are_quoted_and_truncated_unless_asked() {
        let mut view = task(
            "0123456789abcdefghijklmno",
            0,
            1,
            TaskState::Pending,
            TaskState::Running,
        );
        if let Some(t) = view.task.as_mut() {
            t.scheduling_error =
                "no suitable node (2 nodes fail constraint; 1 node not available)".into();
            t.container = Some(swarmr_proto::ContainerSpec {
                image: "nginx:1.25@sha256:abc".into(),
                ..Default::default()
            });
        }
        let rows = rows(vec![view], 100_500);
        let short = rows[0].cells(true);
        assert_eq!(short[0], "0123456789ab");
        assert_eq!(short[1], "web.node1");
        assert_eq!(short[2], "nginx:1.25");
        assert_eq!(short[5], "Pending less than a second ago");
        assert_eq!(short[6], "\"no suitable node (2 nodes fai…\"");
        let long = rows[0].cells(false);
        assert_eq!(long[0], "0123456789abcdefghijklmno");
        assert!(long[6].ends_with("not available)\""));
        let json = rows[0].json();
        assert_eq!(json["Name"], "web.node1");
        assert_eq!(json["DesiredState"], "Running");
        assert!(json["Error"]
            .as_str()
            .is_some_and(|e| e.starts_with("no suitable node")));
    }
}
