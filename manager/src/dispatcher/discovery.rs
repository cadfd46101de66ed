//! The service directory a node's embedded DNS and VIP rules serve: for every network the
//! node has live tasks on, each service attached to it with its endpoint mode, its VIP on
//! that network and its tasks that are RUNNING and meant to run. Built from the same
//! store snapshot as the rest of the session message, so a task told to stop (desired
//! SHUTDOWN) or reported failed leaves the directory in the next push.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use swarmr_proto::convert::container_name;
use swarmr_proto::{
    DiscoveryNetwork, DiscoveryService, DiscoveryTask, NetworkAssignment, Service, Task, TaskState,
};

use super::index::View;

/// The directory of the networks in `assignments` (those the node's live tasks use), from
/// the dispatcher's index: serving tasks are live endpoints, so the index holds them.
pub fn for_networks(view: &View, assignments: &[NetworkAssignment]) -> Vec<DiscoveryNetwork> {
    let ids: BTreeSet<&str> = assignments
        .iter()
        .filter_map(|a| a.network.as_ref())
        .map(|n| n.id.as_str())
        .collect();
    let mut services: BTreeMap<&str, &Service> = BTreeMap::new();
    let mut tasks: BTreeMap<&str, &Task> = BTreeMap::new();
    for &network_id in &ids {
        services.extend(view.services_on(network_id).map(|s| (s.id.as_str(), s)));
        tasks.extend(view.endpoints(network_id).map(|t| (t.id.as_str(), t)));
    }
    let services: Vec<&Service> = services.into_values().collect();
    let tasks: Vec<&Task> = tasks.into_values().collect();
    build(&ids, &services, &tasks)
}

/// Serves traffic: RUNNING as reported, and still wanted.
pub(super) fn is_serving(task: &Task) -> bool {
    let running = task
        .status
        .as_ref()
        .is_some_and(|s| s.state() == TaskState::Running);
    running && task.desired_state() == TaskState::Running
}

/// `10.0.0.5/24` → `10.0.0.5`; DNS answers and DNAT targets carry no prefix.
fn host_part(addr: &str) -> &str {
    addr.split_once('/').map_or(addr, |(ip, _)| ip)
}

/// Pure: the directory of `networks` from every service and task.
pub fn build(
    networks: &BTreeSet<&str>,
    services: &[&Service],
    tasks: &[&Task],
) -> Vec<DiscoveryNetwork> {
    let mut serving: HashMap<&str, Vec<&Task>> = HashMap::new();
    for &task in tasks.iter().filter(|t| is_serving(t)) {
        serving
            .entry(task.service_id.as_str())
            .or_default()
            .push(task);
    }
    networks
        .iter()
        .map(|&network_id| {
            let services = services
                .iter()
                .filter_map(|service| {
                    let spec = service.spec.as_ref()?;
                    if !spec.networks.iter().any(|n| n == network_id) {
                        return None;
                    }
                    let vip = service
                        .vips
                        .iter()
                        .find(|v| v.network_id == network_id)
                        .map(|v| host_part(&v.addr).to_string())
                        .unwrap_or_default();
                    let tasks = serving
                        .get(service.id.as_str())
                        .into_iter()
                        .flatten()
                        .filter_map(|task| {
                            let attachment =
                                task.networks.iter().find(|a| a.network_id == network_id)?;
                            (!attachment.addr.is_empty()).then(|| DiscoveryTask {
                                task_id: task.id.clone(),
                                name: container_name(task),
                                addr: host_part(&attachment.addr).to_string(),
                            })
                        })
                        .collect();
                    let aliases = spec
                        .network_aliases
                        .iter()
                        .filter(|a| a.network == network_id)
                        .flat_map(|a| a.aliases.iter().cloned())
                        .collect();
                    Some(DiscoveryService {
                        service_id: service.id.clone(),
                        name: spec.name.clone(),
                        endpoint_mode: spec.endpoint_mode,
                        vip,
                        tasks,
                        aliases,
                    })
                })
                .collect();
            DiscoveryNetwork {
                network_id: network_id.to_string(),
                services,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use swarmr_proto::{NetworkAttachment, ServiceSpec, TaskStatus, VirtualIp};

    fn service(id: &str, name: &str, networks: &[&str], vips: &[(&str, &str)]) -> Service {
        Service {
            id: id.into(),
            spec: Some(ServiceSpec {
                name: name.into(),
                networks: networks.iter().map(|n| n.to_string()).collect(),
                ..Default::default()
            }),
            vips: vips
                .iter()
                .map(|(n, a)| VirtualIp {
                    network_id: n.to_string(),
                    addr: a.to_string(),
                })
                .collect(),
            ..Default::default()
        }
    }

    fn refs<T>(items: &[T]) -> Vec<&T> {
        items.iter().collect()
    }

    fn task(id: &str, service: &str, state: TaskState, desired: TaskState, addr: &str) -> Task {
        Task {
            id: id.into(),
            service_id: service.into(),
            service_name: "web".into(),
            slot: 1,
            desired_state: desired as i32,
            status: Some(TaskStatus {
                state: state as i32,
                ..Default::default()
            }),
            networks: vec![NetworkAttachment {
                network_id: "front".into(),
                addr: addr.into(),
            }],
            ..Default::default()
        }
    }

    #[test]
    fn only_running_wanted_tasks_are_listed_with_bare_addresses() {
        let services = vec![
            service("s1", "web", &["front"], &[("front", "10.0.0.2/24")]),
            service("s2", "db", &["back"], &[]),
        ];
        let tasks = vec![
            task(
                "t1",
                "s1",
                TaskState::Running,
                TaskState::Running,
                "10.0.0.3/24",
            ),
            task(
                "t2",
                "s1",
                TaskState::Running,
                TaskState::Shutdown,
                "10.0.0.4/24",
            ),
            task(
                "t3",
                "s1",
                TaskState::Starting,
                TaskState::Running,
                "10.0.0.5/24",
            ),
            task(
                "t4",
                "s1",
                TaskState::Failed,
                TaskState::Running,
                "10.0.0.6/24",
            ),
        ];
        let networks = BTreeSet::from(["front"]);
        let directory = build(&networks, &refs(&services), &refs(&tasks));
        assert_eq!(directory.len(), 1);
        let front = &directory[0];
        assert_eq!(front.services.len(), 1, "db is not on front");
        let web = &front.services[0];
        assert_eq!(web.vip, "10.0.0.2");
        assert_eq!(web.tasks.len(), 1);
        assert_eq!(web.tasks[0].addr, "10.0.0.3");
        assert_eq!(web.tasks[0].name, "web.1.t1");
    }

    #[test]
    fn the_same_input_twice_gives_the_same_directory() {
        let services = vec![service("s1", "web", &["front"], &[])];
        let tasks = vec![task(
            "t1",
            "s1",
            TaskState::Running,
            TaskState::Running,
            "10.0.0.3/24",
        )];
        let networks = BTreeSet::from(["front", "back"]);
        let first = build(&networks, &refs(&services), &refs(&tasks));
        assert_eq!(first, build(&networks, &refs(&services), &refs(&tasks)));
        assert!(first[0].services.is_empty(), "back has no services");
        assert_eq!(first[1].services[0].vip, "", "no VIP: dnsrr");
    }

    #[test]
    fn a_services_aliases_go_to_the_network_they_were_given_for() {
        let mut web = service("s1", "app_web", &["front", "back"], &[]);
        if let Some(spec) = web.spec.as_mut() {
            spec.network_aliases = vec![swarmr_proto::NetworkAliases {
                network: "front".into(),
                aliases: vec!["web".into()],
            }];
        }
        let networks = BTreeSet::from(["front", "back"]);
        let directory = build(&networks, &refs(&[web]), &[]);
        let aliases = |id: &str| {
            let network = directory
                .iter()
                .find(|n| n.network_id == id)
                .expect("network");
            network.services[0].aliases.clone()
        };
        assert_eq!(aliases("front"), vec!["web".to_string()]);
        assert!(aliases("back").is_empty());
    }
}
