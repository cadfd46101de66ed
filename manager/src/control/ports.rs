//! Published ports (`--publish`): checked, completed (a published port for those that
//! leave it to the cluster) and kept free of conflicts between services. A service that
//! publishes an ingress port gets the `ingress` network, made the first time one does.

use std::collections::BTreeSet;

use swarmr_proto::{Network, NetworkSpec, PortConfig, PortProtocol, PublishMode, Service};
use tonic::Status;

use super::networks::{self, Pending};
use super::resolve::Named;
use crate::core::Core;

/// The routing mesh's network, as Docker names it.
pub const INGRESS_NETWORK: &str = "ingress";
/// Where the cluster picks published ports from, as Docker does.
const DYNAMIC_PORTS: std::ops::RangeInclusive<u32> = 30000..=32767;
/// A service publishes at most this many ports.
pub const MAX_PORTS: usize = 64;
/// Ports swarmr itself listens on, on every node.
const RESERVED: [(u32, PortProtocol); 2] = [(2377, PortProtocol::Tcp), (4789, PortProtocol::Udp)];

/// `8080/tcp`, as errors and Docker's PORTS column say it.
pub fn port_label(port: &PortConfig) -> String {
    format!("{}/{}", port.published_port, port.protocol().label())
}

/// Shape checks on the ports a spec asks for; no store access.
pub fn check(ports: &[PortConfig]) -> Result<(), Status> {
    if ports.len() > MAX_PORTS {
        return Err(Status::invalid_argument(format!(
            "a service publishes at most {MAX_PORTS} ports: {} were given",
            ports.len()
        )));
    }
    let mut seen = BTreeSet::new();
    for port in ports {
        if PortProtocol::try_from(port.protocol).is_err()
            || PublishMode::try_from(port.publish_mode).is_err()
        {
            return Err(Status::invalid_argument(
                "invalid --publish: protocol is tcp or udp, mode is ingress or host",
            ));
        }
        if !(1..=65535).contains(&port.target_port) || port.published_port > 65535 {
            return Err(Status::invalid_argument(format!(
                "invalid --publish {}:{}: ports are between 1 and 65535",
                port.published_port, port.target_port
            )));
        }
        if port.publish_mode() == PublishMode::Host && port.published_port == 0 {
            return Err(Status::invalid_argument(format!(
                "--publish mode=host,target={} needs published=PORT: host mode binds that port on each node that runs a task",
                port.target_port
            )));
        }
        if RESERVED.contains(&(port.published_port, port.protocol())) {
            return Err(Status::invalid_argument(format!(
                "port {} is swarmr's own on every node: publish another port",
                port_label(port)
            )));
        }
        if port.published_port != 0 && !seen.insert((port.published_port, port.protocol)) {
            return Err(Status::invalid_argument(format!(
                "port {} is published twice: give each published port once",
                port_label(port)
            )));
        }
    }
    Ok(())
}

/// Every node answers an ingress port; a host port is bound on the nodes running a task.
fn takes_every_node(port: &PortConfig) -> bool {
    port.publish_mode() == PublishMode::Ingress
}

/// The first service other than `own_id` that already holds `port` in a way that
/// clashes: an ingress port clashes with any use of the same port and protocol.
fn holder<'a>(services: &'a [Service], own_id: &str, port: &PortConfig) -> Option<&'a Service> {
    services.iter().filter(|s| s.id != own_id).find(|s| {
        s.ports.iter().any(|p| {
            p.published_port == port.published_port
                && p.protocol == port.protocol
                && (takes_every_node(p) || takes_every_node(port))
        })
    })
}

/// The ports of `ports` as published: conflicts refused (naming the service that holds
/// the port), and published ports picked for those that asked the cluster to.
pub fn assign(
    services: &[Service],
    own_id: &str,
    ports: &[PortConfig],
) -> Result<Vec<PortConfig>, Status> {
    let mut published: Vec<PortConfig> = Vec::with_capacity(ports.len());
    for port in ports.iter().filter(|p| p.published_port != 0) {
        if let Some(other) = holder(services, own_id, port) {
            return Err(Status::already_exists(format!(
                "port {} is already published by service {}: pick another published port",
                port_label(port),
                other.name()
            )));
        }
        published.push(port.clone());
    }
    for port in ports.iter().filter(|p| p.published_port == 0) {
        let free = DYNAMIC_PORTS.clone().find(|candidate| {
            let probe = PortConfig {
                published_port: *candidate,
                ..port.clone()
            };
            holder(services, own_id, &probe).is_none()
                && !published
                    .iter()
                    .any(|p| p.published_port == *candidate && p.protocol == port.protocol)
        });
        let Some(free) = free else {
            return Err(Status::resource_exhausted(
                "no free published port left in 30000-32767: give published=PORT",
            ));
        };
        published.push(PortConfig {
            published_port: free,
            ..port.clone()
        });
    }
    Ok(published)
}

/// Whether a service with these ports needs the routing mesh.
pub fn needs_ingress(ports: &[PortConfig]) -> bool {
    ports.iter().any(takes_every_node)
}

/// The id of the `ingress` network, made now if the cluster has none yet. It is a
/// cluster object of its own (as Docker's), so making it first and failing the service
/// afterwards leaves nothing half-done.
pub async fn ingress_network(core: &Core, pending: &Pending) -> Result<String, Status> {
    let networks: Vec<Network> = core.store().list()?;
    if let Some(ingress) = networks.iter().find(|n| n.is_ingress()) {
        return Ok(ingress.id.clone());
    }
    if networks.iter().any(|n| n.name() == INGRESS_NETWORK) {
        return Err(Status::failed_precondition(format!(
            "a network named {INGRESS_NETWORK:?} exists but is not the routing mesh: remove or rename it to publish ingress ports"
        )));
    }
    let spec = NetworkSpec {
        name: INGRESS_NETWORK.into(),
        ingress: true,
        ..Default::default()
    };
    Ok(networks::create(core, pending, spec).await?.id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use swarmr_proto::ServiceSpec;

    fn port(published: u32, target: u32, udp: bool, host: bool) -> PortConfig {
        PortConfig {
            protocol: if udp {
                PortProtocol::Udp
            } else {
                PortProtocol::Tcp
            } as i32,
            target_port: target,
            published_port: published,
            publish_mode: if host {
                PublishMode::Host
            } else {
                PublishMode::Ingress
            } as i32,
            ..Default::default()
        }
    }

    fn service(id: &str, name: &str, ports: Vec<PortConfig>) -> Service {
        Service {
            id: id.into(),
            spec: Some(ServiceSpec {
                name: name.into(),
                ..Default::default()
            }),
            ports,
            ..Default::default()
        }
    }

    #[test]
    fn bad_ports_are_refused_with_the_reason() {
        let cases = [
            (vec![port(8080, 0, false, false)], "between 1 and 65535"),
            (vec![port(70000, 80, false, false)], "between 1 and 65535"),
            (vec![port(0, 80, false, true)], "needs published=PORT"),
            (vec![port(2377, 80, false, false)], "swarmr's own"),
            (
                vec![port(8080, 80, false, false), port(8080, 81, false, false)],
                "published twice",
            ),
        ];
        for (ports, want) in cases {
            let err = check(&ports).expect_err("refused");
            assert!(err.message().contains(want), "{}", err.message());
        }
        // The same number on tcp and udp is two ports.
        check(&[port(53, 53, false, false), port(53, 53, true, false)]).expect("tcp and udp");
    }

    #[test]
    fn a_taken_ingress_port_names_its_service() {
        let web = service("w", "web", vec![port(8080, 80, false, false)]);
        let err = assign(
            std::slice::from_ref(&web),
            "new",
            &[port(8080, 81, false, false)],
        )
        .expect_err("conflict");
        assert!(err.message().contains("service web"), "{}", err.message());
        // A host port clashes with an ingress port too, but not with another host port.
        assert!(assign(&[web], "new", &[port(8080, 81, false, true)]).is_err());
        let edge = service("e", "edge", vec![port(9090, 80, false, true)]);
        assign(
            std::slice::from_ref(&edge),
            "new",
            &[port(9090, 80, false, true)],
        )
        .expect("host+host");
        // A service keeps its own ports on update.
        assign(&[edge], "e", &[port(9090, 80, false, true)]).expect("own port");
    }

    #[test]
    fn unpublished_ports_get_the_first_free_dynamic_port() {
        let taken = service("t", "taken", vec![port(30000, 80, false, false)]);
        let got = assign(
            &[taken],
            "new",
            &[port(0, 80, false, false), port(0, 81, false, false)],
        )
        .expect("assigned");
        let published: Vec<u32> = got.iter().map(|p| p.published_port).collect();
        assert_eq!(published, [30001, 30002]);
        // Same input twice, same answer.
        let again = assign(&[], "new", &[port(0, 80, false, false)]).expect("again");
        assert_eq!(
            again,
            assign(&[], "new", &[port(0, 80, false, false)]).expect("again")
        );
    }
}
