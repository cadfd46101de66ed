//! Waiting for an update or a rollback, with `create`'s progress display: a slot counts
//! once its task runs the service's current container spec. Ends with the update status:
//! `completed` (or `rollback_completed` for `service rollback`) is success; a pause, or a
//! rollback the update did not ask for, is an error carrying the status message. Gives up
//! when nothing moved for the converge timeout.

use std::collections::HashSet;
use std::time::Instant;

use anyhow::bail;
use swarmr_proto::{UpdateState, UpdateStatus};

use super::converge::{poll, Progress};
use super::display::Display;
use super::Control;
use crate::args::WaitArgs;
use crate::output;

const POLL: std::time::Duration = std::time::Duration::from_millis(200);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Update,
    Rollback,
}

/// What the wait makes of an update status.
#[derive(Debug, PartialEq)]
enum Outcome {
    Wait,
    Done(&'static str),
    Failed(String),
}

fn outcome(mode: Mode, name: &str, status: &UpdateStatus) -> Outcome {
    let message = &status.message;
    match (status.state(), mode) {
        (UpdateState::Completed, Mode::Update) => Outcome::Done("verify: Service converged"),
        (UpdateState::RollbackCompleted, Mode::Rollback) => {
            Outcome::Done("rollback: rollback completed")
        }
        (UpdateState::RollbackCompleted, Mode::Update) => {
            Outcome::Failed(format!("service {name} was rolled back: {message}"))
        }
        (UpdateState::Paused | UpdateState::RollbackPaused, _) => {
            Outcome::Failed(format!("service {name}: {message}"))
        }
        (UpdateState::Completed, Mode::Rollback) => {
            Outcome::Failed(format!("service {name} was updated again: {message}"))
        }
        _ => Outcome::Wait,
    }
}

pub async fn wait(
    control: &mut Control,
    service_id: &str,
    args: &WaitArgs,
    mode: Mode,
) -> anyhow::Result<()> {
    let mut display = Display::new(args.quiet);
    let mut moved_at = Instant::now();
    let mut last_seen: Option<(u64, i32)> = None;
    let mut rollback_shown = false;
    loop {
        match poll(control, service_id).await {
            Ok((view, tasks)) => {
                let service = view.service.clone().unwrap_or_default();
                let status = service.update_status.unwrap_or_default();
                let progress = Progress::counting(&view, &tasks, &HashSet::new(), true);
                display.show(&progress.lines(display.live));
                let name = progress.name.clone();
                if mode == Mode::Update
                    && status.state() == UpdateState::RollbackStarted
                    && !rollback_shown
                {
                    display.line(&format!("rollback: {}", status.message));
                    rollback_shown = true;
                }
                match outcome(mode, &name, &status) {
                    Outcome::Done(line) => {
                        display.line(line);
                        return Ok(());
                    }
                    Outcome::Failed(text) => bail!(text),
                    Outcome::Wait => {}
                }
                let seen = (progress.running, status.state);
                if last_seen != Some(seen) {
                    last_seen = Some(seen);
                    moved_at = Instant::now();
                }
                if moved_at.elapsed() >= args.converge_timeout {
                    let waited = humantime::format_duration(args.converge_timeout);
                    let mut text = format!(
                        "service {name}: the update made no progress for {waited}: {} out of {} tasks updated",
                        progress.running, progress.desired
                    );
                    for reason in progress.reasons() {
                        text.push_str("; ");
                        text.push_str(&reason);
                    }
                    bail!(text);
                }
            }
            Err(status) if status.code() == tonic::Code::NotFound => {
                bail!("{}", output::status_text(&status))
            }
            Err(_) if moved_at.elapsed() >= args.converge_timeout => {
                bail!("no answer from the manager while waiting for the update")
            }
            Err(_) => {}
        }
        tokio::time::sleep(POLL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(state: UpdateState, message: &str) -> UpdateStatus {
        UpdateStatus {
            state: state as i32,
            message: message.into(),
            ..Default::default()
        }
    }

    #[test]
    fn the_update_status_decides_the_exit() {
        let done = outcome(Mode::Update, "web", &status(UpdateState::Completed, ""));
        assert_eq!(done, Outcome::Done("verify: Service converged"));
        let paused = status(
            UpdateState::Paused,
            "update paused due to failure of task t1",
        );
        assert_eq!(
            outcome(Mode::Update, "web", &paused),
            Outcome::Failed("service web: update paused due to failure of task t1".into())
        );
        let rolled = status(UpdateState::RollbackCompleted, "rollback completed (x)");
        assert!(matches!(
            outcome(Mode::Update, "web", &rolled),
            Outcome::Failed(_)
        ));
        assert_eq!(
            outcome(Mode::Rollback, "web", &rolled),
            Outcome::Done("rollback: rollback completed")
        );
        let started = status(UpdateState::RollbackStarted, "");
        assert_eq!(outcome(Mode::Update, "web", &started), Outcome::Wait);
        assert_eq!(
            outcome(Mode::Update, "web", &status(UpdateState::Updating, "")),
            Outcome::Wait
        );
    }
}
