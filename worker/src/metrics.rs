//! The node's own counters for its monitoring port: the embedded DNS (queries by answer,
//! latency) and nftables rule loads (VIP tables, published ports), plus the overlay's
//! (`swarmr_netdriver::metrics`). Process-wide statics bumped by one-line hooks; labels are
//! fixed words.

use std::sync::LazyLock;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AnswerLabel {
    answer: &'static str,
    /// The query's record type: the common ones by name, the rest as `other`, so the
    /// label stays bounded whatever a container asks.
    qtype: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LoadLabels {
    table: &'static str,
    outcome: &'static str,
}

struct Metrics {
    dns_queries: Family<AnswerLabel, Counter>,
    dns_seconds: Histogram,
    rule_loads: Family<LoadLabels, Counter>,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| Metrics {
    dns_queries: Family::default(),
    // 10 µs to about 5 s (forwarded names wait for the upstream).
    dns_seconds: Histogram::new(exponential_buckets(0.00001, 2.0, 19)),
    rule_loads: Family::default(),
});

/// How a DNS query was answered.
#[derive(Clone, Copy)]
pub enum DnsAnswer {
    /// A cluster name (service, `tasks.` name, container name).
    Cluster,
    /// A cluster-shaped name that does not exist.
    NxDomain,
    /// Relayed to an upstream resolver, which answered.
    Forwarded,
    /// No upstream answered, or the query was malformed.
    Failed,
}

/// The `qtype` label of a query of record type `code` (RFC 1035 numbering).
pub fn dns_type_label(code: u16) -> &'static str {
    match code {
        1 => "A",
        28 => "AAAA",
        12 => "PTR",
        33 => "SRV",
        _ => "other",
    }
}

pub fn dns_answered(answer: DnsAnswer, record_type: &'static str, took: Duration) {
    let answer = match answer {
        DnsAnswer::Cluster => "cluster",
        DnsAnswer::NxDomain => "nxdomain",
        DnsAnswer::Forwarded => "forwarded",
        DnsAnswer::Failed => "failed",
    };
    METRICS
        .dns_queries
        .get_or_create(&AnswerLabel {
            answer,
            qtype: record_type,
        })
        .inc();
    METRICS.dns_seconds.observe(took.as_secs_f64());
}

/// One `nft -f` load of `table` (`vip` or `publish`).
pub fn rules_loaded(table: &'static str, ok: bool) {
    let outcome = if ok { "ok" } else { "failed" };
    METRICS
        .rule_loads
        .get_or_create(&LoadLabels { table, outcome })
        .inc();
}

/// Adds the node's counters (DNS, rule loads, the overlay's) to a run's registry.
pub fn register(registry: &mut Registry) {
    let m = &*METRICS;
    registry.register(
        "swarmr_dns_queries",
        "Queries the embedded DNS answered, by how and by record type",
        m.dns_queries.clone(),
    );
    registry.register_with_unit(
        "swarmr_dns_query_duration",
        "Time from a query's arrival to its answer",
        Unit::Seconds,
        m.dns_seconds.clone(),
    );
    registry.register(
        "swarmr_nft_rule_loads",
        "nftables table loads (VIP balancing in sandboxes, published ports on the node)",
        m.rule_loads.clone(),
    );
    swarmr_netdriver::metrics::register(registry);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_types_outside_the_common_ones_share_one_label() {
        assert_eq!(dns_type_label(1), "A");
        assert_eq!(dns_type_label(33), "SRV");
        assert_eq!(dns_type_label(255), "other");
        assert_eq!(dns_type_label(65535), "other");
    }
}
