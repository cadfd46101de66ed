//! The data plane's counters, bumped by [`crate::Driver::reconcile`]: passes, their
//! duration, kernel changes made and failed, and the entries each sandbox should hold.
//! Process-wide statics; the node registers them on its monitoring port. The only label
//! is the network's VNI (one per overlay network on this node).

use std::sync::LazyLock;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};

use crate::types::HostDesired;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VniLabel {
    vni: u32,
}

struct Metrics {
    reconciles: Counter,
    reconcile_seconds: Histogram,
    kernel_changes: Counter,
    kernel_failures: Counter,
    sandboxes: Gauge,
    local_endpoints: Family<VniLabel, Gauge>,
    remote_endpoints: Family<VniLabel, Gauge>,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| Metrics {
    reconciles: Counter::default(),
    // 1 ms to about 8 s.
    reconcile_seconds: Histogram::new(exponential_buckets(0.001, 2.0, 14)),
    kernel_changes: Counter::default(),
    kernel_failures: Counter::default(),
    sandboxes: Gauge::default(),
    local_endpoints: Family::default(),
    remote_endpoints: Family::default(),
});

/// One reconcile: how long it took, what it changed and failed, what it aimed at.
pub(crate) fn reconciled(desired: &HostDesired, took: Duration, changes: usize, failures: usize) {
    let m = &*METRICS;
    m.reconciles.inc();
    m.reconcile_seconds.observe(took.as_secs_f64());
    m.kernel_changes.inc_by(changes as u64);
    m.kernel_failures.inc_by(failures as u64);
    m.sandboxes.set(desired.networks.len() as i64);
    // Networks gone from this node leave no stale series.
    m.local_endpoints.clear();
    m.remote_endpoints.clear();
    for network in &desired.networks {
        let label = VniLabel { vni: network.vni };
        let local = network.local_endpoints.len() as i64;
        m.local_endpoints.get_or_create(&label).set(local);
        let remote = network.remote_endpoints.len() as i64;
        m.remote_endpoints.get_or_create(&label).set(remote);
    }
}

pub fn register(registry: &mut Registry) {
    let m = &*METRICS;
    registry.register(
        "swarmr_netdriver_reconciles",
        "Overlay reconcile passes on this node",
        m.reconciles.clone(),
    );
    registry.register_with_unit(
        "swarmr_netdriver_reconcile_duration",
        "Time one overlay reconcile took (observe, plan, apply)",
        Unit::Seconds,
        m.reconcile_seconds.clone(),
    );
    registry.register(
        "swarmr_netdriver_kernel_operations",
        "Kernel changes the overlay reconcile made (links, addresses, FDB, neighbours, routes)",
        m.kernel_changes.clone(),
    );
    registry.register(
        "swarmr_netdriver_kernel_failures",
        "Kernel reads or changes that failed during a reconcile",
        m.kernel_failures.clone(),
    );
    registry.register(
        "swarmr_netdriver_sandboxes",
        "Overlay sandboxes this node should hold (networks with a local task)",
        m.sandboxes.clone(),
    );
    registry.register(
        "swarmr_netdriver_local_endpoints",
        "Containers wired into each sandbox",
        m.local_endpoints.clone(),
    );
    registry.register(
        "swarmr_netdriver_remote_endpoints",
        "Remote endpoints in each sandbox (one FDB and one neighbour entry each)",
        m.remote_endpoints.clone(),
    );
}
