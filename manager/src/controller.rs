//! The reconcile loop every leader-only controller runs in: wake on store changes (a burst
//! of commits is handled once), on the controller's own requeue, or periodically against
//! missed events; reconcile only while this manager leads. Errors are never dropped: each
//! kind gets its own retry and log level ([`error_policy`]).

use std::future::Future;
use std::time::Duration;

use tokio::sync::broadcast::error::RecvError;
use tracing::{debug, info, warn, Instrument};

use crate::core::Core;
use crate::error::ProposeError;

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

pub async fn run<F, Fut>(
    name: &'static str,
    core: Core,
    mut reconcile: F,
    shutdown: impl Future<Output = ()>,
) where
    F: FnMut(Core) -> Fut,
    Fut: Future<Output = Result<Action, ProposeError>>,
{
    tokio::pin!(shutdown);
    let mut events = core.store().subscribe();
    let mut wait = Duration::ZERO;
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            event = events.recv() => {
                if matches!(event, Err(RecvError::Closed)) {
                    return;
                }
                // Let a burst of commits land, then act once for all of them.
                tokio::time::sleep(DEBOUNCE).await;
                while events.try_recv().is_ok() {}
            }
            _ = tokio::time::sleep(wait) => {}
        }
        if !core.is_settled_leader() {
            wait = RESYNC;
            continue;
        }
        let span = tracing::debug_span!("reconcile", controller = name);
        let started = std::time::Instant::now();
        let outcome = reconcile(core.clone()).instrument(span).await;
        crate::observe::METRICS.reconciled(name, started.elapsed(), outcome.is_err());
        wait = match outcome {
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
}
