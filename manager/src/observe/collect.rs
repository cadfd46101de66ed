//! Gauges read at scrape time from this manager's replica and from Raft's own metrics:
//! objects by kind, tasks by service and state, nodes by status, dispatcher sessions.
//! Read-only; a follower reports what it has applied (Raft's figures are its own).
//! Labels stay bounded: fixed words, and service names (one per service).

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use openraft::ServerState;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use swarmr_proto::{Cluster, Config, Network, Node, Secret, Service, Task, TaskState};

use crate::core::Core;
use crate::dispatcher::Sessions;
use crate::error::StoreError;
use crate::store::{Object, Store};

/// The store and Raft, as gauges.
#[derive(Clone)]
pub struct ClusterCollector {
    core: Core,
    sessions: Sessions,
}

impl std::fmt::Debug for ClusterCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClusterCollector")
    }
}

impl ClusterCollector {
    pub fn new(core: Core, sessions: Sessions) -> Self {
        Self { core, sessions }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
struct KindLabel {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
struct TaskLabels {
    service: String,
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
struct ServiceLabel {
    service: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
struct NodeLabels {
    status: String,
    availability: String,
    role: &'static str,
}

fn gauge(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: i64,
) -> Result<(), std::fmt::Error> {
    let metric = ConstGauge::new(value);
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

fn family<L>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    values: impl IntoIterator<Item = (L, i64)>,
) -> Result<(), std::fmt::Error>
where
    L: EncodeLabelSet + Clone + std::hash::Hash + Eq + std::fmt::Debug + Send + Sync + 'static,
{
    let metric = Family::<L, Gauge>::default();
    for (labels, value) in values {
        metric.get_or_create(&labels).set(value);
    }
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

impl Collector for ClusterCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        self.encode_raft(&mut encoder)?;
        gauge(
            &mut encoder,
            "swarmr_dispatcher_sessions",
            "Worker sessions open on this manager (only the leader serves them)",
            self.sessions.len() as i64,
        )?;
        match read(self.core.store()) {
            Ok(objects) => self.encode_store(&mut encoder, &objects),
            // A store that cannot be read now shows no store gauges; Raft's stay.
            Err(e) => {
                tracing::warn!(error = %e, "metrics: the store could not be read");
                Ok(())
            }
        }
    }
}

impl ClusterCollector {
    fn encode_raft(&self, encoder: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let metrics = self.core.raft().metrics();
        let m = metrics.borrow().clone();
        let last_log = m.last_log_index.unwrap_or(0);
        let applied = m.last_applied.map_or(0, |l| l.index);
        let voters = m.membership_config.membership().voter_ids().count();
        let figures = [
            ("swarmr_raft_term", "Current Raft term", m.current_term),
            (
                "swarmr_raft_is_leader",
                "1 while this manager is the Raft leader",
                u64::from(m.state == ServerState::Leader),
            ),
            (
                "swarmr_raft_has_leader",
                "1 while this manager knows a leader",
                u64::from(m.current_leader.is_some()),
            ),
            (
                "swarmr_raft_last_log_index",
                "Last index in this manager's log",
                last_log,
            ),
            (
                "swarmr_raft_applied_index",
                "Last index applied to the store",
                applied,
            ),
            (
                "swarmr_raft_apply_lag",
                "Entries in the log not yet applied",
                last_log.saturating_sub(applied),
            ),
            (
                "swarmr_raft_snapshot_index",
                "Last index the latest snapshot covers",
                m.snapshot.map_or(0, |l| l.index),
            ),
            (
                "swarmr_raft_snapshot_size_bytes",
                "Size of the stored snapshot",
                crate::raft::state_machine::LAST_SNAPSHOT_BYTES.load(Ordering::Relaxed),
            ),
            (
                "swarmr_raft_voters",
                "Voting members of the Raft group",
                voters as u64,
            ),
        ];
        for (name, help, value) in figures {
            gauge(encoder, name, help, value as i64)?;
        }
        Ok(())
    }

    fn encode_store(
        &self,
        encoder: &mut DescriptorEncoder,
        (tasks, services, nodes): &Objects,
    ) -> Result<(), std::fmt::Error> {
        let store = self.core.store();
        let kinds = [
            Node::KIND,
            Service::KIND,
            Task::KIND,
            Network::KIND,
            Secret::KIND,
            Config::KIND,
            Cluster::KIND,
        ];
        let counts = kinds.map(|kind| (KindLabel { kind }, count_kind(store, kind) as i64));
        family(
            encoder,
            "swarmr_store_objects",
            "Objects in the store by kind",
            counts,
        )?;
        self.encode_tasks(encoder, tasks, services)?;
        let mut by_status = BTreeMap::new();
        for node in nodes {
            let status = node.status.clone().unwrap_or_default().state().label();
            let availability = node.spec.clone().unwrap_or_default().availability().label();
            let labels = NodeLabels {
                status: status.to_ascii_lowercase(),
                availability: availability.to_ascii_lowercase(),
                role: node.role().label(),
            };
            *by_status.entry(labels).or_insert(0) += 1;
        }
        family(
            encoder,
            "swarmr_nodes",
            "Nodes by status, availability and role",
            by_status,
        )?;
        Ok(())
    }

    fn encode_tasks(
        &self,
        encoder: &mut DescriptorEncoder,
        tasks: &[Task],
        services: &[Service],
    ) -> Result<(), std::fmt::Error> {
        let name_of = |id: &str| {
            services
                .iter()
                .find(|s| s.id == id)
                .and_then(|s| s.spec.as_ref())
                .map_or_else(|| id.to_string(), |spec| spec.name.clone())
        };
        let mut by_state = BTreeMap::new();
        let mut running = BTreeMap::new();
        for task in tasks {
            let state = task.current_state();
            let service = name_of(&task.service_id);
            if state == TaskState::Running && task.desired_state() == TaskState::Running {
                *running
                    .entry(ServiceLabel {
                        service: service.clone(),
                    })
                    .or_insert(0) += 1;
            }
            let labels = TaskLabels {
                service,
                state: state.label(),
            };
            *by_state.entry(labels).or_insert(0) += 1;
        }
        family(
            encoder,
            "swarmr_tasks",
            "Tasks by service and current state",
            by_state,
        )?;
        let desired = services.iter().map(|s| {
            let spec = s.spec.clone().unwrap_or_default();
            let desired = match spec.replicas {
                Some(n) => n as i64,
                // Global: one per node it runs on.
                None => tasks
                    .iter()
                    .filter(|t| t.service_id == s.id && t.desired_state() == TaskState::Running)
                    .count() as i64,
            };
            (ServiceLabel { service: spec.name }, desired)
        });
        family(
            encoder,
            "swarmr_service_replicas_desired",
            "Replicas each service asks for",
            desired,
        )?;
        let all_running = services.iter().map(|s| {
            let service = s.spec.clone().unwrap_or_default().name;
            let label = ServiceLabel { service };
            let n = running.get(&label).copied().unwrap_or(0);
            (label, n)
        });
        family(
            encoder,
            "swarmr_service_replicas_running",
            "Tasks of each service running and meant to run",
            all_running,
        )
    }
}

type Objects = (Vec<Task>, Vec<Service>, Vec<Node>);

fn read(store: &Store) -> Result<Objects, StoreError> {
    Ok((store.list()?, store.list()?, store.list()?))
}

/// Keys under a kind's prefix, without decoding them.
fn count_kind(store: &Store, kind: &str) -> usize {
    store
        .state
        .scan_prefix(format!("{kind}/").as_bytes())
        .keys()
        .count()
}
