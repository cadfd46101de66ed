//! The node namespace's nftables table: published ports (the routing mesh and host
//! mode), the mesh's connection marks, egress masquerade, and no connection tracking for
//! VXLAN's own UDP. Rewritten whole in one `nft -f` transaction, like the VIP tables.

use std::fmt::Write as _;
use std::net::Ipv4Addr;

use swarmr_netdriver::{fmt_mac, Ipv4Net};

use crate::network::mesh::{EGRESS_BRIDGE, INGRESS_IFNAME};

/// The table swarmr owns in the node namespace.
pub const TABLE: &str = "swarmr_host";

/// One published port and where its new connections go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedPort {
    pub protocol: &'static str,
    pub port: u32,
    /// Address and port of each serving task, reachable from this node.
    pub backends: Vec<(Ipv4Addr, u32)>,
}

/// What the table holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostRules {
    /// Every other node's mesh MAC and the connection mark that names it.
    pub mesh_marks: Vec<([u8; 6], u32)>,
    /// Local tasks' ingress addresses and the egress addresses they are served on.
    pub mesh_arrivals: Vec<(Ipv4Addr, Ipv4Addr)>,
    pub published: Vec<PublishedPort>,
    /// Masqueraded when it leaves through anything but the egress bridge or the mesh;
    /// `None` while no task here has a way out.
    pub egress_subnet: Option<Ipv4Net>,
}

impl HostRules {
    pub fn is_empty(&self) -> bool {
        self.mesh_arrivals.is_empty() && self.published.is_empty() && self.egress_subnet.is_none()
    }
}

fn dnat_target(backends: &[(Ipv4Addr, u32)]) -> String {
    match backends {
        [(ip, port)] => format!("dnat ip addr . port to {ip} . {port}"),
        _ => {
            let map: Vec<String> = backends
                .iter()
                .enumerate()
                .map(|(i, (ip, port))| format!("{i} : {ip} . {port}"))
                .collect();
            format!(
                "dnat ip addr . port to numgen inc mod {} map {{ {} }}",
                backends.len(),
                map.join(", ")
            )
        }
    }
}

fn nat_rules(rules: &HostRules) -> String {
    let mut nat = String::new();
    for (ingress, egress) in &rules.mesh_arrivals {
        let _ = writeln!(
            nat,
            "    iifname \"{INGRESS_IFNAME}\" ip daddr {ingress} dnat to {egress}"
        );
    }
    for port in rules.published.iter().filter(|p| !p.backends.is_empty()) {
        let _ = writeln!(
            nat,
            "    iifname != \"{INGRESS_IFNAME}\" fib daddr type local {} dport {} {}",
            port.protocol,
            port.port,
            dnat_target(&port.backends)
        );
    }
    nat
}

/// The `nft -f` script that replaces the table; an empty `rules` removes it.
pub fn ruleset(rules: &HostRules) -> String {
    let reset = format!("table ip {TABLE} {{}}\ndelete table ip {TABLE}\n");
    if rules.is_empty() {
        return reset;
    }
    let mut body = String::new();
    // VXLAN's UDP crosses this namespace; conntrack would only slow it down.
    for hook in ["prerouting", "output"] {
        let _ = writeln!(
            body,
            "  chain vxlan_notrack_{hook} {{\n    type filter hook {hook} priority raw; policy accept;\n    udp dport 4789 notrack\n  }}"
        );
    }
    if !rules.mesh_marks.is_empty() {
        let elements: Vec<String> = rules
            .mesh_marks
            .iter()
            .map(|(mac, mark)| format!("{} : {mark:#010x}", fmt_mac(mac)))
            .collect();
        let _ = writeln!(
            body,
            "  map mesh_marks {{\n    type ether_addr : mark\n    elements = {{ {} }}\n  }}",
            elements.join(", ")
        );
        let _ = writeln!(
            body,
            "  chain mesh_mark {{\n    type filter hook prerouting priority mangle; policy accept;\n    \
             iifname \"{INGRESS_IFNAME}\" ct state new ct mark set ether saddr map @mesh_marks\n    \
             iifname \"{EGRESS_BRIDGE}\" ct mark != 0 meta mark set ct mark\n  }}"
        );
    }
    let nat = nat_rules(rules);
    if !nat.is_empty() {
        let _ = writeln!(
            body,
            "  chain published {{\n    type nat hook prerouting priority dstnat; policy accept;\n{nat}  }}"
        );
    }
    if let Some(subnet) = rules.egress_subnet {
        let _ = writeln!(
            body,
            "  chain egress {{\n    type nat hook postrouting priority srcnat; policy accept;\n    \
             ip saddr {subnet} oifname != {{ \"{EGRESS_BRIDGE}\", \"{INGRESS_IFNAME}\" }} masquerade\n  }}"
        );
    }
    format!("{reset}table ip {TABLE} {{\n{body}}}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> Ipv4Addr {
        Ipv4Addr::new(10, 0, 9, last)
    }

    #[test]
    fn nothing_to_hold_removes_the_table() {
        assert_eq!(
            ruleset(&HostRules::default()),
            "table ip swarmr_host {}\ndelete table ip swarmr_host\n"
        );
    }

    #[test]
    fn published_ports_balance_and_mesh_arrivals_reach_the_task() {
        let rules = HostRules {
            mesh_marks: vec![([2, 0x42, 10, 0, 9, 3], 0x0a00_0903)],
            mesh_arrivals: vec![(ip(5), Ipv4Addr::new(172, 18, 0, 9))],
            published: vec![
                PublishedPort {
                    protocol: "tcp",
                    port: 8080,
                    backends: vec![(Ipv4Addr::new(172, 18, 0, 9), 80), (ip(7), 80)],
                },
                PublishedPort {
                    protocol: "udp",
                    port: 5353,
                    backends: vec![(ip(7), 53)],
                },
                PublishedPort {
                    protocol: "tcp",
                    port: 9000,
                    backends: vec![],
                },
            ],
            egress_subnet: Some("172.18.0.0/16".parse().expect("subnet")),
        };
        let script = ruleset(&rules);
        for want in [
            "elements = { 02:42:0a:00:09:03 : 0x0a000903 }",
            "iifname \"swr-ingress\" ip daddr 10.0.9.5 dnat to 172.18.0.9",
            "fib daddr type local tcp dport 8080 dnat ip addr . port to numgen inc mod 2 map { 0 : 172.18.0.9 . 80, 1 : 10.0.9.7 . 80 }",
            "fib daddr type local udp dport 5353 dnat ip addr . port to 10.0.9.7 . 53",
            "ip saddr 172.18.0.0/16 oifname != { \"swr_gwbridge\", \"swr-ingress\" } masquerade",
        ] {
            assert!(script.contains(want), "missing {want:?} in\n{script}");
        }
        assert!(!script.contains("9000"), "a port with no task gets no rule");
        assert_eq!(script, ruleset(&rules), "same input, same script");
    }
}
