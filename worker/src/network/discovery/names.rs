//! Pure name resolution over the directory the dispatcher pushed: which addresses a name
//! has for a given asker, or whether it is unknown to the cluster, or not ours at all.
//!
//! The asker is found by its source address on the network the query arrived on; it
//! may resolve the names of every network its task is on, the arrival network first.

use std::net::Ipv4Addr;

use swarmr_proto::{DiscoveryNetwork, DiscoveryService, EndpointMode};

/// What the embedded DNS does with a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// A cluster name; its A records (empty: known, but no running task now).
    Records(Vec<Ipv4Addr>),
    /// Looks like a cluster name, but no service or task on the asker's networks has it.
    NxDomain,
    /// Not a cluster name: ask the host's resolvers.
    Forward,
}

/// `Web.` → `web`: names are case-insensitive and may come fully qualified.
fn normalize(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

fn parse_all<'a>(addrs: impl Iterator<Item = &'a str>) -> Vec<Ipv4Addr> {
    addrs.filter_map(|a| a.parse().ok()).collect()
}

fn task_addrs(service: &DiscoveryService) -> Vec<Ipv4Addr> {
    parse_all(service.tasks.iter().map(|t| t.addr.as_str()))
}

/// The answer for `name` on one network, if the network knows it.
fn lookup(network: &DiscoveryNetwork, name: &str) -> Option<Vec<Ipv4Addr>> {
    let tasks_of = name.strip_prefix("tasks.");
    for service in &network.services {
        let is_named = |asked: &str| {
            service.name.eq_ignore_ascii_case(asked)
                || service
                    .aliases
                    .iter()
                    .any(|a| a.eq_ignore_ascii_case(asked))
        };
        if tasks_of.is_some_and(is_named) {
            return Some(task_addrs(service));
        }
        if is_named(name) {
            let dnsrr = service.endpoint_mode() == EndpointMode::Dnsrr || service.vip.is_empty();
            return Some(if dnsrr {
                task_addrs(service)
            } else {
                parse_all(std::iter::once(service.vip.as_str()))
            });
        }
        if let Some(task) = service
            .tasks
            .iter()
            .find(|t| t.name.eq_ignore_ascii_case(name))
        {
            return Some(parse_all(std::iter::once(task.addr.as_str())));
        }
    }
    None
}

/// The networks the asker may resolve in, the arrival network first: those its task is
/// on, or just the arrival network if the source address is no known task (yet).
fn asker_networks<'a>(
    directory: &'a [DiscoveryNetwork],
    arrival: &str,
    source: Ipv4Addr,
) -> Vec<&'a DiscoveryNetwork> {
    let source = source.to_string();
    let task_id = directory
        .iter()
        .filter(|n| n.network_id == arrival)
        .flat_map(|n| n.services.iter().flat_map(|s| &s.tasks))
        .find(|t| t.addr == source)
        .map(|t| t.task_id.as_str());
    let mut networks: Vec<&DiscoveryNetwork> = directory
        .iter()
        .filter(|n| {
            n.network_id == arrival
                || task_id.is_some_and(|id| {
                    n.services
                        .iter()
                        .any(|s| s.tasks.iter().any(|t| t.task_id == id))
                })
        })
        .collect();
    networks.sort_by_key(|n| n.network_id != arrival);
    networks
}

/// Whether a name nobody on the asker's networks has should still be the cluster's to
/// deny rather than the outside world's: a single label (no public name is one), a
/// `tasks.` name, or a name that starts with any known service's name (a container name).
fn looks_like_cluster_name(directory: &[DiscoveryNetwork], name: &str) -> bool {
    if !name.contains('.') || name.starts_with("tasks.") {
        return true;
    }
    let first = name.split('.').next().unwrap_or_default();
    directory
        .iter()
        .flat_map(|n| &n.services)
        .any(|s| s.name.eq_ignore_ascii_case(first))
}

/// What to answer `source`, asking on `arrival`, for `name`.
pub fn resolve(
    directory: &[DiscoveryNetwork],
    arrival: &str,
    source: Ipv4Addr,
    name: &str,
) -> Answer {
    let name = normalize(name);
    if name.is_empty() {
        return Answer::Forward;
    }
    for network in asker_networks(directory, arrival, source) {
        if let Some(addrs) = lookup(network, &name) {
            return Answer::Records(addrs);
        }
    }
    if looks_like_cluster_name(directory, &name) {
        Answer::NxDomain
    } else {
        Answer::Forward
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use swarmr_proto::DiscoveryTask;

    fn service(
        name: &str,
        mode: EndpointMode,
        vip: &str,
        tasks: &[(&str, &str)],
    ) -> DiscoveryService {
        DiscoveryService {
            service_id: format!("id-{name}"),
            name: name.into(),
            endpoint_mode: mode as i32,
            vip: vip.into(),
            aliases: Vec::new(),
            tasks: tasks
                .iter()
                .enumerate()
                .map(|(i, (id, addr))| DiscoveryTask {
                    task_id: (*id).into(),
                    name: format!("{name}.{}.{id}", i + 1),
                    addr: (*addr).into(),
                })
                .collect(),
        }
    }

    /// front: web (vip), dns (dnsrr), client; back: db, and client again.
    fn directory() -> Vec<DiscoveryNetwork> {
        vec![
            DiscoveryNetwork {
                network_id: "front".into(),
                services: vec![
                    service(
                        "web",
                        EndpointMode::Vip,
                        "10.0.0.2",
                        &[("w1", "10.0.0.3"), ("w2", "10.0.0.4")],
                    ),
                    service(
                        "rr",
                        EndpointMode::Dnsrr,
                        "",
                        &[("r1", "10.0.0.5"), ("r2", "10.0.0.6")],
                    ),
                    service(
                        "client",
                        EndpointMode::Vip,
                        "10.0.0.7",
                        &[("c1", "10.0.0.8")],
                    ),
                ],
            },
            DiscoveryNetwork {
                network_id: "back".into(),
                services: vec![
                    service("db", EndpointMode::Vip, "10.0.1.2", &[("d1", "10.0.1.3")]),
                    service(
                        "client",
                        EndpointMode::Vip,
                        "10.0.1.7",
                        &[("c1", "10.0.1.8")],
                    ),
                ],
            },
            DiscoveryNetwork {
                network_id: "other".into(),
                services: vec![service(
                    "secret",
                    EndpointMode::Vip,
                    "10.0.2.2",
                    &[("s1", "10.0.2.3")],
                )],
            },
        ]
    }

    fn ip(text: &str) -> Ipv4Addr {
        text.parse().expect("test address")
    }

    fn ask(source: &str, name: &str) -> Answer {
        resolve(&directory(), "front", ip(source), name)
    }

    fn records(addrs: &[&str]) -> Answer {
        Answer::Records(addrs.iter().map(|a| ip(a)).collect())
    }

    #[test]
    fn network_aliases_answer_like_the_service_name() {
        let mut web = service(
            "app_web",
            EndpointMode::Vip,
            "10.0.0.2",
            &[("t1", "10.0.0.3")],
        );
        web.aliases = vec!["web".into()];
        let directory = vec![DiscoveryNetwork {
            network_id: "n1".into(),
            services: vec![web],
        }];
        let source = ip("10.0.0.3");
        assert_eq!(
            resolve(&directory, "n1", source, "web"),
            records(&["10.0.0.2"])
        );
        assert_eq!(
            resolve(&directory, "n1", source, "tasks.web"),
            records(&["10.0.0.3"])
        );
    }

    #[test]
    fn service_names_give_the_vip_or_every_task() {
        let cases = [
            ("web", records(&["10.0.0.2"])),
            ("WEB.", records(&["10.0.0.2"])),
            ("tasks.web", records(&["10.0.0.3", "10.0.0.4"])),
            ("rr", records(&["10.0.0.5", "10.0.0.6"])),
            ("web.2.w2", records(&["10.0.0.4"])),
            ("client", records(&["10.0.0.7"])),
        ];
        for (name, want) in cases {
            assert_eq!(ask("10.0.0.8", name), want, "{name}");
        }
    }

    #[test]
    fn names_of_every_network_of_the_asker_resolve_but_no_others() {
        assert_eq!(ask("10.0.0.8", "db"), records(&["10.0.1.2"]));
        assert_eq!(
            ask("10.0.0.3", "db"),
            Answer::NxDomain,
            "web is not on back"
        );
        assert_eq!(ask("10.0.0.8", "secret"), Answer::NxDomain);
        assert_eq!(ask("10.0.0.8", "tasks.secret"), Answer::NxDomain);
    }

    #[test]
    fn only_names_outside_the_cluster_go_upstream() {
        assert_eq!(ask("10.0.0.8", "nosuch"), Answer::NxDomain);
        assert_eq!(ask("10.0.0.8", "web.9.gone"), Answer::NxDomain);
        assert_eq!(ask("10.0.0.8", "example.com."), Answer::Forward);
    }

    #[test]
    fn an_unknown_asker_resolves_on_the_arrival_network_only() {
        assert_eq!(ask("10.0.0.99", "web"), records(&["10.0.0.2"]));
        assert_eq!(ask("10.0.0.99", "db"), Answer::NxDomain);
    }

    #[test]
    fn a_service_without_running_tasks_resolves_to_nothing() {
        let mut dir = directory();
        dir[0].services[1].tasks.clear();
        assert_eq!(
            resolve(&dir, "front", ip("10.0.0.8"), "rr"),
            Answer::Records(vec![])
        );
    }
}
