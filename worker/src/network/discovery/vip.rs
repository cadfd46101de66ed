//! VIP load balancing with nftables, the fallback where the BPF socket load balancer
//! cannot load (`balancer`): inside each task container's own namespace (where Docker
//! puts its IPVS rules), one nftables table whose NAT output chain rewrites a new
//! connection to a VIP to one running task, chosen round robin by `numgen`. Conntrack
//! keeps each connection on the task it started with; a rewritten table changes only
//! where new connections go, so a stopped task gets none from the moment it leaves the
//! directory. A VIP with no running task is rejected at once rather than left to time out.
//!
//! The table is always rewritten whole, in one `nft -f` transaction (create, delete,
//! create: atomic, and idempotent whether or not it existed).

use swarmr_netdriver::socklb::VipRule;
use swarmr_proto::{DiscoveryNetwork, EndpointMode, Task};

use super::error::DiscoveryError;

/// The table swarmr owns in every task container's namespace.
pub const TABLE: &str = "swarmr";

/// Removes the table, whether or not it is there.
pub const REMOVE: &str = "table ip swarmr {}\ndelete table ip swarmr\n";

/// The VIPs a task's container can reach: those of the vip-mode services on its networks.
pub fn rules_for(task: &Task, directory: &[DiscoveryNetwork]) -> Vec<VipRule> {
    let mut rules: Vec<VipRule> = directory
        .iter()
        .filter(|n| task.networks.iter().any(|a| a.network_id == n.network_id))
        .flat_map(|n| n.services.iter().map(move |s| (n, s)))
        .filter(|(_, s)| s.endpoint_mode() == EndpointMode::Vip)
        .filter_map(|(n, s)| {
            Some(VipRule {
                network_id: n.network_id.clone(),
                vip: s.vip.parse().ok()?,
                backends: s.tasks.iter().filter_map(|t| t.addr.parse().ok()).collect(),
            })
        })
        .collect();
    rules.sort_by_key(|r| r.vip);
    rules.dedup_by_key(|r| r.vip);
    rules
}

/// The `nft -f` script that replaces the table with `rules`.
pub fn ruleset(rules: &[VipRule]) -> String {
    let mut nat = String::new();
    let mut reject = String::new();
    for rule in rules {
        if rule.backends.is_empty() {
            reject.push_str(&format!("    ip daddr {} reject\n", rule.vip));
            continue;
        }
        let map: Vec<String> = rule
            .backends
            .iter()
            .enumerate()
            .map(|(i, ip)| format!("{i} : {ip}"))
            .collect();
        nat.push_str(&format!(
            "    ip daddr {} dnat to numgen inc mod {} map {{ {} }}\n",
            rule.vip,
            rule.backends.len(),
            map.join(", ")
        ));
    }
    // A base chain only where it has rules: a NAT chain turns on connection tracking for
    // every packet of the namespace (about a fifth of a veth's TCP throughput here).
    let mut chains = String::new();
    if !nat.is_empty() {
        chains.push_str(&format!(
            "  chain vip_nat {{\n    type nat hook output priority -100; policy accept;\n{nat}  }}\n"
        ));
    }
    if !reject.is_empty() {
        chains.push_str(&format!(
            "  chain vip_reject {{\n    type filter hook output priority 0; policy accept;\n{reject}  }}\n"
        ));
    }
    format!("{REMOVE}table ip {TABLE} {{\n{chains}}}\n")
}

/// Loads `script` into the namespace of process `pid` with `nsenter -n nft -f -`: the
/// child enters only that network namespace, and this process none.
pub async fn apply(pid: u32, script: &str) -> Result<(), DiscoveryError> {
    let netns = format!("--net=/proc/{pid}/ns/net");
    let loaded = crate::command::run("nsenter", &[&netns, "nft", "-f", "-"], Some(script)).await;
    crate::metrics::rules_loaded("vip", loaded.is_ok());
    loaded
        .map(drop)
        .map_err(|detail| DiscoveryError::LoadVipRules { pid, detail })
}

#[cfg(test)]
mod tests {
    use super::*;
    use swarmr_proto::{DiscoveryService, DiscoveryTask, NetworkAttachment};

    fn service(name: &str, mode: EndpointMode, vip: &str, addrs: &[&str]) -> DiscoveryService {
        DiscoveryService {
            name: name.into(),
            endpoint_mode: mode as i32,
            vip: vip.into(),
            tasks: addrs
                .iter()
                .map(|a| DiscoveryTask {
                    addr: (*a).into(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    fn directory() -> Vec<DiscoveryNetwork> {
        vec![
            DiscoveryNetwork {
                network_id: "front".into(),
                services: vec![
                    service(
                        "web",
                        EndpointMode::Vip,
                        "10.0.0.2",
                        &["10.0.0.3", "10.0.0.4"],
                    ),
                    service("rr", EndpointMode::Dnsrr, "", &["10.0.0.5"]),
                    service("idle", EndpointMode::Vip, "10.0.0.9", &[]),
                ],
            },
            DiscoveryNetwork {
                network_id: "other".into(),
                services: vec![service("db", EndpointMode::Vip, "10.0.1.2", &["10.0.1.3"])],
            },
        ]
    }

    fn client() -> Task {
        Task {
            networks: vec![NetworkAttachment {
                network_id: "front".into(),
                addr: "10.0.0.8/24".into(),
            }],
            ..Default::default()
        }
    }

    #[test]
    fn vip_services_of_the_task_networks_only() {
        let rules = rules_for(&client(), &directory());
        let vips: Vec<String> = rules.iter().map(|r| r.vip.to_string()).collect();
        assert_eq!(vips, ["10.0.0.2", "10.0.0.9"]);
        assert_eq!(rules[0].backends.len(), 2);
    }

    #[test]
    fn ruleset_balances_over_backends_and_rejects_empty_vips() {
        let script = ruleset(&rules_for(&client(), &directory()));
        let want = "table ip swarmr {}\n\
delete table ip swarmr\n\
table ip swarmr {\n  chain vip_nat {\n    type nat hook output priority -100; policy accept;\n    \
ip daddr 10.0.0.2 dnat to numgen inc mod 2 map { 0 : 10.0.0.3, 1 : 10.0.0.4 }\n  }\n  \
chain vip_reject {\n    type filter hook output priority 0; policy accept;\n    \
ip daddr 10.0.0.9 reject\n  }\n}\n";
        assert_eq!(script, want);
    }

    #[test]
    fn no_vip_no_base_chain() {
        assert_eq!(
            ruleset(&[]),
            "table ip swarmr {}\ndelete table ip swarmr\ntable ip swarmr {\n}\n"
        );
    }

    #[test]
    fn the_same_input_twice_gives_the_same_script() {
        let rules = rules_for(&client(), &directory());
        assert_eq!(ruleset(&rules), ruleset(&rules));
    }
}
