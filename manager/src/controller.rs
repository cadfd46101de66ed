//! The reconcile loop every leader-only controller runs in: wake on store changes (a burst
//! of commits is handled once), on the controller's own requeue, or periodically against
//! missed events; reconcile only while this manager leads. Errors are never dropped: they
//! are logged and the pass is retried after a short delay.

use std::future::Future;
use std::time::Duration;

use tokio::sync::broadcast::error::RecvError;
use tracing::{warn, Instrument};

use crate::core::Core;

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

pub async fn run<F, Fut, E>(
    name: &'static str,
    core: Core,
    mut reconcile: F,
    shutdown: impl Future<Output = ()>,
) where
    F: FnMut(Core) -> Fut,
    Fut: Future<Output = Result<Action, E>>,
    E: std::fmt::Display,
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
            Err(e) => {
                warn!(controller = name, error = %e, "reconcile failed; retrying");
                RETRY
            }
        };
    }
}
