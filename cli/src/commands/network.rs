//! `swarmr network create|ls|inspect|rm|prune`.

use std::io::BufRead;

use anyhow::{bail, Context};
use serde_json::{json, Value};
use swarmr_proto::{
    CreateNetworkRequest, GetNetworkRequest, ListNetworksRequest, Network, NetworkSpec,
    NetworkView, PruneNetworksRequest, RemoveNetworkRequest,
};

use super::key_values;
use super::node::millis_to_rfc3339;
use crate::args::NetworkCommand;
use crate::client;
use crate::output;

pub async fn run(host: &str, command: NetworkCommand) -> anyhow::Result<()> {
    match command {
        NetworkCommand::Create {
            driver,
            subnet,
            gateway,
            attachable,
            internal,
            label,
            opt,
            name,
        } => {
            let spec = NetworkSpec {
                name,
                driver,
                labels: key_values("label", &label)?,
                options: key_values("opt", &opt)?,
                attachable,
                internal,
                subnet: subnet.unwrap_or_default(),
                gateway: gateway.unwrap_or_default(),
                ingress: false,
            };
            let mut control = client::control(host).await?;
            let reply = control
                .create_network(CreateNetworkRequest { spec: Some(spec) })
                .await?;
            let network = reply
                .into_inner()
                .network
                .context("the manager returned no network")?;
            println!("{}", network.id);
            Ok(())
        }
        NetworkCommand::Ls { list, filter } => ls(host, list.quiet, &list.format, &filter).await,
        NetworkCommand::Inspect { networks } => inspect(host, networks).await,
        NetworkCommand::Rm { networks } => {
            let mut control = client::control(host).await?;
            for reference in networks {
                control
                    .remove_network(RemoveNetworkRequest {
                        reference: reference.clone(),
                    })
                    .await?;
                println!("{reference}");
            }
            Ok(())
        }
        NetworkCommand::Prune { force } => prune(host, force).await,
    }
}

fn name(network: &Network) -> &str {
    network.spec.as_ref().map_or("", |s| s.name.as_str())
}

async fn ls(host: &str, quiet: bool, format: &str, filters: &[String]) -> anyhow::Result<()> {
    let mut name_filters = Vec::new();
    for filter in filters {
        match filter.split_once('=') {
            Some(("name", value)) => name_filters.push(value.to_string()),
            _ => bail!("invalid --filter {filter:?}: use name=VALUE"),
        }
    }
    let mut control = client::control(host).await?;
    let networks = control
        .list_networks(ListNetworksRequest {})
        .await?
        .into_inner()
        .networks;
    let shown: Vec<&Network> = networks
        .iter()
        .filter(|n| {
            name_filters.is_empty() || name_filters.iter().any(|f| name(n).contains(f.as_str()))
        })
        .collect();
    if quiet {
        shown.iter().for_each(|n| println!("{}", n.id));
        return Ok(());
    }
    let driver = |n: &Network| {
        n.spec
            .as_ref()
            .map_or("overlay", |s| s.driver.as_str())
            .to_string()
    };
    if format == "json" {
        for n in &shown {
            let row = json!({ "ID": n.id, "Name": name(n), "Driver": driver(n), "Scope": "swarm" });
            println!("{row}");
        }
        return Ok(());
    }
    let rows: Vec<Vec<String>> = shown
        .iter()
        .map(|n| {
            vec![
                short_id(&n.id),
                name(n).to_string(),
                driver(n),
                "swarm".into(),
            ]
        })
        .collect();
    print!(
        "{}",
        output::table(&["NETWORK ID", "NAME", "DRIVER", "SCOPE"], &rows)
    );
    Ok(())
}

/// Docker shows the first 12 characters of an id in tables.
pub fn short_id(id: &str) -> String {
    id.chars().take(12).collect()
}

async fn inspect(host: &str, references: Vec<String>) -> anyhow::Result<()> {
    let mut control = client::control(host).await?;
    let mut out = Vec::new();
    for reference in references {
        let reply = control.get_network(GetNetworkRequest { reference }).await?;
        let view = reply
            .into_inner()
            .network
            .context("the manager returned no network")?;
        out.push(inspect_json(&view));
    }
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

/// A network shaped like `docker network inspect`, with containers from every node.
fn inspect_json(view: &NetworkView) -> Value {
    let network = view.network.clone().unwrap_or_default();
    let spec = network.spec.clone().unwrap_or_default();
    let created = network.meta.map(|m| m.created_at).unwrap_or_default();
    let mut options: serde_json::Map<String, Value> = spec
        .options
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    options.insert(
        "com.docker.network.driver.overlay.vxlanid_list".into(),
        json!(network.vni.to_string()),
    );
    let containers: serde_json::Map<String, Value> = view
        .containers
        .iter()
        .map(|c| {
            let key = if c.container_id.is_empty() {
                c.task_id.clone()
            } else {
                c.container_id.clone()
            };
            let value = json!({
                "Name": c.name, "EndpointID": c.task_id, "MacAddress": c.mac_address,
                "IPv4Address": c.ipv4_address, "IPv6Address": "", "Node": c.node_hostname,
            });
            (key, value)
        })
        .collect();
    let services: serde_json::Map<String, Value> = view
        .services
        .iter()
        .map(|s| {
            (
                s.name.clone(),
                json!({ "VIP": s.vip, "Tasks": s.task_names }),
            )
        })
        .collect();
    let peers: Vec<Value> = view
        .peers
        .iter()
        .map(|p| json!({ "Name": p.node_hostname, "IP": p.addr }))
        .collect();
    json!({
        "Name": spec.name,
        "Id": network.id,
        "Created": millis_to_rfc3339(created),
        "Scope": "swarm",
        "Driver": spec.driver,
        "EnableIPv6": false,
        "IPAM": { "Driver": "default", "Options": null, "Config": [{ "Subnet": network.subnet, "Gateway": network.gateway }] },
        "Internal": spec.internal,
        "Attachable": spec.attachable,
        "Ingress": false,
        "Containers": containers,
        "Options": options,
        "Labels": spec.labels,
        "Peers": peers,
        "Services": services,
    })
}

async fn prune(host: &str, force: bool) -> anyhow::Result<()> {
    if !force {
        eprint!("WARNING! This will remove all networks not used by at least one service.\nAre you sure you want to continue? [y/N] ");
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer)?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            return Ok(());
        }
    }
    let mut control = client::control(host).await?;
    let removed = control
        .prune_networks(PruneNetworksRequest {})
        .await?
        .into_inner()
        .removed;
    if !removed.is_empty() {
        println!("Deleted Networks:");
        removed.iter().for_each(|n| println!("{n}"));
    }
    Ok(())
}
