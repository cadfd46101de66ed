//! Size limits of what the cluster accepts, checked before anything is written: a
//! service's replicas and spec, labels and options of networks and nodes, and what a node
//! says about itself. With them every object is small, so a Raft entry, a session message
//! and a reply stay far below the gRPC message limit (`swarmr_proto::limits`).
//!
//! Each refusal is one line naming the field, what was given and the limit. Values are
//! never echoed whole (a 1 MiB label would make a 1 MiB error).

use std::collections::HashMap;

use prost::Message;
use swarmr_proto::{NetworkSpec, NodeDescription, ServiceSpec};
use tonic::Status;

/// The most replicas one service may ask for.
pub const MAX_REPLICAS: u64 = 10_000;
/// Entries of one label (or option) map.
pub const MAX_LABELS: usize = 64;
pub const MAX_LABEL_KEY: usize = 128;
pub const MAX_LABEL_VALUE: usize = 4096;
/// Environment variables, command words, constraints and networks of one service.
pub const MAX_ENV: usize = 256;
pub const MAX_ARGS: usize = 256;
pub const MAX_CONSTRAINTS: usize = 32;
pub const MAX_NETWORKS: usize = 16;
/// Bytes of one environment variable, command word or constraint.
pub const MAX_ITEM: usize = 4096;
pub const MAX_IMAGE: usize = 512;
/// Bytes of a whole service spec, encoded: every task carries a copy of its container.
pub const MAX_SPEC_BYTES: usize = 64 * 1024;
/// Bytes of each field of a node's description (hostname, engine version, os, arch).
pub const MAX_DESCRIPTION_FIELD: usize = 255;

fn too_long(what: &str, len: usize, max: usize) -> Status {
    Status::invalid_argument(format!(
        "{what} is too long ({len} bytes): the limit is {max} bytes"
    ))
}

fn too_many(what: &str, count: usize, max: usize) -> Status {
    Status::invalid_argument(format!("too many {what} ({count}): the limit is {max}"))
}

pub fn check_replicas(replicas: u64) -> Result<(), Status> {
    if replicas > MAX_REPLICAS {
        return Err(Status::invalid_argument(format!(
            "{replicas} replicas is more than a service may have: use at most {MAX_REPLICAS} (split the work over several services)"
        )));
    }
    Ok(())
}

/// `what` names the map for the error ("service labels", "--opt options").
pub fn check_labels(what: &str, labels: &HashMap<String, String>) -> Result<(), Status> {
    if labels.len() > MAX_LABELS {
        return Err(too_many(what, labels.len(), MAX_LABELS));
    }
    for (key, value) in labels {
        if key.len() > MAX_LABEL_KEY {
            return Err(too_long(
                &format!("a key of the {what}"),
                key.len(),
                MAX_LABEL_KEY,
            ));
        }
        if value.len() > MAX_LABEL_VALUE {
            return Err(too_long(
                &format!("the value of {what} key {key:?}"),
                value.len(),
                MAX_LABEL_VALUE,
            ));
        }
    }
    Ok(())
}

fn check_items(what: &str, items: &[String], max_count: usize) -> Result<(), Status> {
    if items.len() > max_count {
        return Err(too_many(what, items.len(), max_count));
    }
    match items.iter().position(|item| item.len() > MAX_ITEM) {
        Some(i) => Err(too_long(
            &format!("entry {} of the {what}", i + 1),
            items[i].len(),
            MAX_ITEM,
        )),
        None => Ok(()),
    }
}

/// Every size of a service spec; run before any other check, so nothing large is echoed.
pub fn check_service_spec(spec: &ServiceSpec) -> Result<(), Status> {
    if let Some(replicas) = spec.replicas {
        check_replicas(replicas)?;
    }
    check_labels("service labels (--label)", &spec.labels)?;
    check_items(
        "constraints (--constraint)",
        &spec.constraints,
        MAX_CONSTRAINTS,
    )?;
    if spec.networks.len() > MAX_NETWORKS {
        return Err(too_many(
            "networks (--network)",
            spec.networks.len(),
            MAX_NETWORKS,
        ));
    }
    if spec.network_aliases.len() > MAX_NETWORKS {
        return Err(too_many(
            "network alias entries",
            spec.network_aliases.len(),
            MAX_NETWORKS,
        ));
    }
    for entry in &spec.network_aliases {
        check_items("aliases per network", &entry.aliases, MAX_CONSTRAINTS)?;
    }
    if let Some(container) = &spec.container {
        if container.image.len() > MAX_IMAGE {
            return Err(too_long("the image name", container.image.len(), MAX_IMAGE));
        }
        check_items("environment variables (-e)", &container.env, MAX_ENV)?;
        check_items("command words", &container.command, MAX_ARGS)?;
        check_labels("container labels (--container-label)", &container.labels)?;
    }
    let size = spec.encoded_len();
    if size > MAX_SPEC_BYTES {
        return Err(too_long("the service spec", size, MAX_SPEC_BYTES));
    }
    Ok(())
}

pub fn check_network_spec(spec: &NetworkSpec) -> Result<(), Status> {
    check_labels("network labels (--label)", &spec.labels)?;
    check_labels("network options (--opt)", &spec.options)
}

/// What a node reports about itself at join and with every session.
pub fn check_description(description: &NodeDescription) -> Result<(), Status> {
    let fields = [
        ("hostname", &description.hostname),
        ("engine version", &description.engine_version),
        ("os", &description.os),
        ("arch", &description.arch),
    ];
    let resources = description.resources.unwrap_or_default();
    if resources.nano_cpus < 0 || resources.memory_bytes < 0 {
        return Err(Status::invalid_argument(
            "the node's resources are negative: report 0 or more CPUs and bytes",
        ));
    }
    for (name, value) in fields {
        if value.len() > MAX_DESCRIPTION_FIELD {
            return Err(too_long(
                &format!("the node's {name}"),
                value.len(),
                MAX_DESCRIPTION_FIELD,
            ));
        }
        if value.chars().any(char::is_control) {
            return Err(Status::invalid_argument(format!(
                "the node's {name} contains control characters: use printable text"
            )));
        }
    }
    Ok(())
}

/// A node's advertised gRPC address must be a concrete `IP:PORT`: other nodes dial it and
/// its IP is the node's VXLAN endpoint.
pub fn check_api_addr(addr: &str) -> Result<(), Status> {
    let invalid = |why: &str| {
        let shown: String = addr.chars().take(64).collect();
        Status::invalid_argument(format!(
            "advertise address {shown:?} {why}; pass --advertise-addr with this node's IP"
        ))
    };
    let parsed: std::net::SocketAddr = addr.parse().map_err(|_| invalid("is not IP:PORT"))?;
    let ip = parsed.ip();
    if ip.is_unspecified() || ip.is_multicast() || parsed.port() == 0 {
        return Err(invalid(
            "is not an address other nodes can reach (unspecified, multicast or port 0)",
        ));
    }
    if let std::net::IpAddr::V4(v4) = ip {
        if v4.is_broadcast() {
            return Err(invalid("is the broadcast address"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use swarmr_proto::ContainerSpec;

    fn spec(change: impl FnOnce(&mut ServiceSpec)) -> ServiceSpec {
        let mut spec = ServiceSpec {
            name: "web".into(),
            container: Some(ContainerSpec {
                image: "busybox".into(),
                ..Default::default()
            }),
            replicas: Some(3),
            ..Default::default()
        };
        change(&mut spec);
        spec
    }

    fn container(spec: &mut ServiceSpec) -> &mut ContainerSpec {
        spec.container.get_or_insert_with(Default::default)
    }

    #[test]
    fn service_spec_sizes_are_capped_with_one_line_errors() {
        let big = "x".repeat(MAX_ITEM + 1);
        let many = |n: usize| (0..n).map(|i| format!("K{i}=v")).collect::<Vec<_>>();
        let labels = |n: usize| (0..n).map(|i| (format!("k{i}"), "v".into())).collect();
        let table: Vec<(ServiceSpec, Option<&str>)> = vec![
            (spec(|_| {}), None),
            (spec(|s| s.replicas = Some(MAX_REPLICAS)), None),
            (
                spec(|s| s.replicas = Some(MAX_REPLICAS + 1)),
                Some("at most 10000"),
            ),
            (
                spec(|s| s.replicas = Some(100_000_000_000)),
                Some("replicas"),
            ),
            (
                spec(|s| container(s).env = many(MAX_ENV + 1)),
                Some("environment"),
            ),
            (
                spec(|s| container(s).env = vec![big.clone()]),
                Some("entry 1 of the environment"),
            ),
            (
                spec(|s| container(s).command = many(MAX_ARGS + 1)),
                Some("command words"),
            ),
            (
                spec(|s| container(s).image = "i".repeat(600)),
                Some("image name"),
            ),
            (
                spec(|s| s.labels = labels(MAX_LABELS + 1)),
                Some("service labels"),
            ),
            (
                spec(|s| container(s).labels = labels(MAX_LABELS + 1)),
                Some("container labels"),
            ),
            (
                spec(|s| s.constraints = vec!["node.role==manager".into(); 33]),
                Some("constraints"),
            ),
            (
                spec(|s| s.networks = vec!["n".into(); 17]),
                Some("networks"),
            ),
            (
                spec(|s| container(s).env = (0..40).map(|_| "e".repeat(4000)).collect()),
                Some("the service spec is too long"),
            ),
        ];
        for (spec, want) in table {
            let got = check_service_spec(&spec).map_err(|s| s.message().to_string());
            match (want, got) {
                (None, Ok(())) => {}
                (Some(want), Err(message)) => {
                    assert!(message.contains(want), "{message:?} lacks {want:?}");
                    assert!(!message.contains('\n') && message.len() < 200, "{message}");
                }
                (want, got) => panic!("wanted {want:?}, got {got:?}"),
            }
        }
    }

    #[test]
    fn label_keys_and_values_are_capped() {
        let key = HashMap::from([("k".repeat(MAX_LABEL_KEY + 1), String::new())]);
        let value = HashMap::from([("k".into(), "v".repeat(MAX_LABEL_VALUE + 1))]);
        assert!(check_labels("labels", &key).is_err());
        assert!(check_labels("labels", &value).is_err());
        let fine = HashMap::from([("k".into(), "v".repeat(MAX_LABEL_VALUE))]);
        assert!(check_labels("labels", &fine).is_ok());
    }

    #[test]
    fn worker_supplied_fields_are_checked() {
        for good in ["127.0.0.1:2377", "192.0.2.1:1", "[::1]:2377"] {
            assert!(check_api_addr(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "bogus",
            "0.0.0.0:2377",
            "127.0.0.1:0",
            "224.0.0.1:2377",
            "255.255.255.255:2377",
            "[::]:2377",
        ] {
            assert!(check_api_addr(bad).is_err(), "{bad}");
        }
        let fine = NodeDescription {
            hostname: "w1".into(),
            ..Default::default()
        };
        assert!(check_description(&fine).is_ok());
        let long = NodeDescription {
            hostname: "h".repeat(256),
            ..Default::default()
        };
        assert!(check_description(&long).is_err());
        let control = NodeDescription {
            os: "linux\n".into(),
            ..Default::default()
        };
        assert!(check_description(&control).is_err());
    }
}
