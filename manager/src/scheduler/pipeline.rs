//! The filters in order, with a failure count per filter. A node that fails is
//! charged to the first filter it fails, as in swarmkit, so the counts add up to
//! the number of rejected nodes.

use swarmr_proto::{Service, Task};

use super::filter::{
    AvailabilityFilter, ConstraintFilter, CpuFilter, Filter, HostPortFilter, MemoryFilter,
    PinnedNodeFilter, ReadyFilter,
};
use super::nodeinfo::{host_ports, NodeInfo};
use crate::constraint::parse_constraints;

/// The prefix of every scheduling error.
pub const NO_SUITABLE_NODE: &str = "no suitable node";

/// Ordered filters and how many nodes each rejected since the last [`Pipeline::reset`].
pub struct Pipeline {
    filters: Vec<Box<dyn Filter>>,
    failures: Vec<usize>,
}

impl Pipeline {
    /// Ready, Availability, then one constraint filter per service constraint, host
    /// ports, the pinned-node filter, then memory and CPU (last: only they change as a
    /// pass places tasks, see [`Pipeline::fits`]). Fails when a constraint does not parse.
    pub fn for_service(service: &Service) -> Result<Pipeline, String> {
        let texts = service
            .spec
            .as_ref()
            .map(|s| s.constraints.as_slice())
            .unwrap_or_default();
        let mut filters: Vec<Box<dyn Filter>> =
            vec![Box::new(ReadyFilter), Box::new(AvailabilityFilter)];
        for constraint in parse_constraints(texts)? {
            filters.push(Box::new(ConstraintFilter { constraint }));
        }
        let ports = host_ports(service);
        if !ports.is_empty() {
            filters.push(Box::new(HostPortFilter { ports }));
        }
        filters.push(Box::new(PinnedNodeFilter));
        filters.push(Box::new(MemoryFilter));
        filters.push(Box::new(CpuFilter));
        Ok(Pipeline::new(filters))
    }

    pub fn new(filters: Vec<Box<dyn Filter>>) -> Pipeline {
        let failures = vec![0; filters.len()];
        Pipeline { filters, failures }
    }

    /// True when the node passes every filter; otherwise charges the first failing one.
    pub fn check(&mut self, task: &Task, node: &NodeInfo<'_>) -> bool {
        match self.filters.iter().position(|f| !f.check(task, node)) {
            None => true,
            Some(i) => {
                self.failures[i] += 1;
                false
            }
        }
    }

    /// The failure counts so far, to [`Pipeline::restore`] later.
    pub fn failures(&self) -> Vec<usize> {
        self.failures.clone()
    }

    /// Puts back failure counts taken with [`Pipeline::failures`].
    pub fn restore(&mut self, failures: &[usize]) {
        self.failures.copy_from_slice(failures);
    }

    /// Forgets the failure counts.
    pub fn reset(&mut self) {
        self.failures.iter_mut().for_each(|n| *n = 0);
    }

    /// `no suitable node (1 node not available for new tasks; 2 nodes fail constraint
    /// node.labels.zone==a)`, in filter order; just `no suitable node` without failures.
    pub fn explain(&self) -> String {
        let parts: Vec<String> = self
            .filters
            .iter()
            .zip(&self.failures)
            .filter(|(_, &n)| n > 0)
            .map(|(f, &n)| f.explain(n))
            .collect();
        if parts.is_empty() {
            NO_SUITABLE_NODE.to_string()
        } else {
            format!("{NO_SUITABLE_NODE} ({})", parts.join("; "))
        }
    }
}
