//! The entry point: [`Driver::reconcile`] observes, plans, applies.

use tracing::Instrument;

use crate::apply::apply;
use crate::change::{Scope, Step};
use crate::error::{error_chain, Error};
use crate::fastpath::{FastPath, FastPathDifference};
use crate::netlink::Netlink;
use crate::observe::observe;
use crate::plan::plan;
use crate::types::{names, HostDesired};

/// The outcome of one reconcile.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReconcileReport {
    /// Kernel changes made, as text (empty when nothing had to change).
    pub changes: Vec<String>,
    /// `(endpoint_id, reason)` for every local endpoint left unwired:
    /// the worker marks these tasks FAILED.
    pub failed_endpoints: Vec<(String, String)>,
    /// `(network_id, reason)` for networks whose sandbox could not be set up.
    pub failed_networks: Vec<(String, String)>,
    /// Stale sandboxes that could not be removed.
    pub failed_cleanups: Vec<String>,
}

impl ReconcileReport {
    /// True when nothing failed.
    pub fn is_ok(&self) -> bool {
        self.failed_endpoints.is_empty()
            && self.failed_networks.is_empty()
            && self.failed_cleanups.is_empty()
    }
}

/// The overlay driver of one node. All kernel state goes through `reconcile`.
pub struct Driver<N: Netlink> {
    nl: N,
    /// Never two reconciles at once; the fast path, when there is one, is theirs.
    lock: tokio::sync::Mutex<Option<FastPath>>,
    /// How sandboxes forward frames, for `network check` and logs.
    forwarding: String,
}

impl<N: Netlink> Driver<N> {
    /// A driver whose sandboxes forward through their bridge only.
    pub fn new(nl: N) -> Self {
        Self::with_fast_path(nl, Err("no fast path".into()))
    }

    /// A driver that also keeps each sandbox's BPF fast path (see [`crate::fastpath`]),
    /// or, given why there is none, forwards through the bridges only.
    pub fn with_fast_path(nl: N, fast: Result<FastPath, String>) -> Self {
        let forwarding = match &fast {
            Ok(_) => "bpf (tc ingress redirect past each sandbox's bridge)".to_string(),
            Err(why) => format!("bridge ({why})"),
        };
        Self {
            nl,
            lock: tokio::sync::Mutex::new(fast.ok()),
            forwarding,
        }
    }

    /// How sandboxes forward frames: `bpf (...)` or `bridge (why)`.
    pub fn forwarding(&self) -> &str {
        &self.forwarding
    }

    /// The netlink implementation (e.g. to inspect a fake in tests).
    pub fn netlink(&self) -> &N {
        &self.nl
    }

    /// Makes the kernel match `desired`, idempotently; removes sandboxes of
    /// this node whose network is gone. Fails only if the node namespace
    /// cannot be read (e.g. no link holds the underlay address); everything
    /// else is reported per endpoint, network or stale sandbox.
    pub async fn reconcile(&self, desired: &HostDesired) -> Result<ReconcileReport, Error> {
        let mut fast = self.lock.lock().await;
        let span = tracing::info_span!("netdriver.reconcile", node.id = %desired.node_short_id);
        let started = std::time::Instant::now();
        let result = self
            .reconcile_locked(desired, fast.as_mut())
            .instrument(span)
            .await;
        if let Ok(report) = &result {
            let failures = report.failed_endpoints.len()
                + report.failed_networks.len()
                + report.failed_cleanups.len();
            crate::metrics::reconciled(desired, started.elapsed(), report.changes.len(), failures);
        }
        self.nl.release_namespaces();
        result
    }

    /// What `reconcile` would change now, without changing anything: each step is a
    /// difference between the kernel and `desired` (`swarmr network check`).
    pub async fn check(&self, desired: &HostDesired) -> Result<Vec<Step>, Error> {
        let _guard = self.lock.lock().await;
        let result = observe(&self.nl, desired).await;
        self.nl.release_namespaces();
        let (actual, _) = result?;
        Ok(plan(desired, &actual))
    }

    /// What the fast path's sync would change now (nothing without a fast path).
    pub async fn check_fast_path(&self, desired: &HostDesired) -> Vec<FastPathDifference> {
        let mut fast = self.lock.lock().await;
        match fast.as_mut() {
            Some(fast) => fast.check(desired).await,
            None => Vec::new(),
        }
    }

    async fn reconcile_locked(
        &self,
        desired: &HostDesired,
        fast: Option<&mut FastPath>,
    ) -> Result<ReconcileReport, Error> {
        let (actual, observe_failures) = observe(&self.nl, desired).await?;
        let steps = plan(desired, &actual);
        let applied = apply(&self.nl, &steps).await;
        let mut report = ReconcileReport {
            changes: applied.done,
            ..ReconcileReport::default()
        };
        if let Some(fast) = fast {
            let (done, failed) = fast.sync(desired).await;
            report.changes.extend(done);
            for (network_id, error) in failed {
                tracing::warn!(
                    network.id = %network_id,
                    error = %error_chain(&error),
                    "overlay fast path not in place: the network's frames take its sandbox bridge"
                );
            }
        }
        for (scope, reason) in observe_failures.into_iter().chain(applied.failed) {
            record_failure(desired, &mut report, scope, reason);
        }
        if !report.changes.is_empty() || !report.is_ok() {
            tracing::info!(
                changes = report.changes.len(),
                failed_endpoints = report.failed_endpoints.len(),
                "overlay reconciled"
            );
        }
        Ok(report)
    }

    /// Removes every sandbox of `node_short_id` (for `swarmr leave`); the
    /// veths and VXLAN devices inside go with them. Returns the names removed.
    pub async fn teardown(&self, node_short_id: &str) -> Result<Vec<String>, Error> {
        let _guard = self.lock.lock().await;
        let result = self.teardown_locked(node_short_id).await;
        self.nl.release_namespaces();
        result
    }

    async fn teardown_locked(&self, node_short_id: &str) -> Result<Vec<String>, Error> {
        let prefix = names::sandbox_prefix(node_short_id);
        let mut removed = Vec::new();
        let mut failures = Vec::new();
        for name in self.nl.list_sandboxes(&prefix).await? {
            if names::sandbox_vni(node_short_id, &name).is_none() {
                continue;
            }
            match self.nl.delete_sandbox(&name).await {
                Ok(()) => removed.push(name),
                Err(err) => failures.push(error_chain(&err)),
            }
        }
        if failures.is_empty() {
            Ok(removed)
        } else {
            Err(Error::Teardown { failures })
        }
    }
}

/// Files a failure under its scope; a network failure fails all its endpoints.
fn record_failure(
    desired: &HostDesired,
    report: &mut ReconcileReport,
    scope: Scope,
    reason: String,
) {
    match scope {
        Scope::Node => report.failed_cleanups.push(reason),
        Scope::Endpoint {
            network_id,
            endpoint_id,
            ..
        } => report
            .failed_endpoints
            .push((endpoint_id, format!("network {network_id}: {reason}"))),
        Scope::Network { network_id, vni } => {
            let eps = desired
                .networks
                .iter()
                .filter(|n| n.vni == vni)
                .flat_map(|n| n.local_endpoints.iter());
            for ep in eps {
                let why = format!("network {network_id}: {reason}");
                report.failed_endpoints.push((ep.endpoint_id.clone(), why));
            }
            report.failed_networks.push((network_id, reason));
        }
    }
}
