//! `network check`: every node's differences from the cluster state, one row each.

use anyhow::bail;
use serde_json::json;
use swarmr_proto::{CheckNetworkReply, CheckNetworksRequest};

use crate::client;
use crate::output;

/// Rows of the table: node, network, kind, detail.
fn rows(nodes: &[CheckNetworkReply]) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    for node in nodes {
        if !node.error.is_empty() {
            rows.push(vec![
                node.hostname.clone(),
                "-".into(),
                "unchecked".into(),
                node.error.clone(),
            ]);
        }
        for d in &node.differences {
            let network = if d.network_id.is_empty() {
                "(node)".to_string()
            } else {
                super::network::short_id(&d.network_id)
            };
            rows.push(vec![
                node.hostname.clone(),
                network,
                d.kind.clone(),
                d.detail.clone(),
            ]);
        }
    }
    rows
}

/// How each node that answered balances VIPs (`bpf (...)` or `nftables (...)`) and
/// forwards overlay frames (`bpf (...)` or `bridge (...)`).
fn balancer_rows(nodes: &[CheckNetworkReply]) -> Vec<Vec<String>> {
    nodes
        .iter()
        .filter(|n| !n.vip_balancer.is_empty())
        .map(|n| {
            let forwarding = match n.overlay_forwarding.as_str() {
                "" => "-".to_string(),
                how => how.to_string(),
            };
            vec![n.hostname.clone(), n.vip_balancer.clone(), forwarding]
        })
        .collect()
}

pub async fn check(host: &str, format: &str) -> anyhow::Result<()> {
    let mut control = client::control(host).await?;
    let nodes = control
        .check_networks(CheckNetworksRequest {})
        .await?
        .into_inner()
        .nodes;
    let rows = rows(&nodes);
    if format == "json" {
        for row in &rows {
            println!(
                "{}",
                json!({ "Node": row[0], "Network": row[1], "Kind": row[2], "Detail": row[3] })
            );
        }
    } else if !rows.is_empty() {
        print!(
            "{}",
            output::table(&["NODE", "NETWORK", "DIFFERENCE", "DETAIL"], &rows)
        );
    }
    let balancers = balancer_rows(&nodes);
    if format != "json" && !balancers.is_empty() {
        print!(
            "{}",
            output::table(&["NODE", "VIP BALANCER", "OVERLAY FORWARDING"], &balancers)
        );
    }
    let unchecked = nodes.iter().filter(|n| !n.error.is_empty()).count();
    let differing = nodes.iter().filter(|n| !n.differences.is_empty()).count();
    if unchecked + differing > 0 {
        bail!(
            "{differing} of {} nodes differ from the cluster state and {unchecked} could not be checked: a node repairs its differences within seconds; run again to see what stays",
            nodes.len()
        );
    }
    if format != "json" {
        println!(
            "every node's network state matches the cluster state ({} nodes)",
            nodes.len()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use swarmr_proto::NetworkDifference;

    #[test]
    fn each_node_that_says_how_it_balances_vips_is_a_row() {
        let nodes = vec![
            CheckNetworkReply {
                hostname: "h1".into(),
                vip_balancer: "bpf (socket load balancer on cgroup /sys/fs/cgroup)".into(),
                overlay_forwarding: "bridge (--overlay-forwarding bridge)".into(),
                ..Default::default()
            },
            CheckNetworkReply {
                hostname: "h2".into(),
                error: "node did not answer".into(),
                ..Default::default()
            },
        ];
        let got = balancer_rows(&nodes);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0][0], "h1");
        assert!(got[0][1].starts_with("bpf"));
        assert!(got[0][2].starts_with("bridge"));
    }

    #[test]
    fn each_difference_and_unchecked_node_is_a_row() {
        let nodes = vec![
            CheckNetworkReply {
                hostname: "h1".into(),
                differences: vec![NetworkDifference {
                    network_id: "abcdefghijklmnopqrstuvwxy".into(),
                    kind: "missing".into(),
                    detail: "add_neigh 10.0.0.5".into(),
                }],
                ..Default::default()
            },
            CheckNetworkReply {
                hostname: "h2".into(),
                error: "node did not answer".into(),
                ..Default::default()
            },
            CheckNetworkReply {
                hostname: "h3".into(),
                ..Default::default()
            },
        ];
        let got = rows(&nodes);
        assert_eq!(got.len(), 2, "a matching node has no row");
        assert!(balancer_rows(&nodes).is_empty(), "no node said how");
        assert_eq!(got[0][..3], ["h1", "abcdefghijkl", "missing"]);
        assert_eq!(got[1][2], "unchecked");
    }
}
