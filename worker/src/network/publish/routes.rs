//! The mesh's return routes in the node namespace: a connection that arrived from node X
//! carries X's mark, and `fwmark X lookup X` sends its replies back through X. One rule
//! and one single-route table per other node, under one rule priority swarmr owns.
//! Changed through `ip -batch` (iproute2 over netlink), idempotently.

use super::PublishError;
use crate::network::mesh::INGRESS_IFNAME;
use std::collections::BTreeSet;
use std::net::Ipv4Addr;

/// The rule priority of every mesh return rule.
pub const RULE_PRIORITY: u32 = 5300;

/// Replies of connections marked `mark` leave through `via` (that node's mesh address).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct MeshRoute {
    pub mark: u32,
    pub via: Ipv4Addr,
}

/// The marks of swarmr's rules in `ip -4 rule show` output.
pub fn parse_marks(text: &str) -> BTreeSet<u32> {
    text.lines()
        .filter(|line| line.trim_start().starts_with(&format!("{RULE_PRIORITY}:")))
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            words.find(|w| *w == "fwmark")?;
            let mark = words.next()?.split('/').next()?;
            u32::from_str_radix(mark.trim_start_matches("0x"), 16).ok()
        })
        .collect()
}

/// The `ip -batch` commands that take `current` marks to `wanted` routes.
pub fn batch(current: &BTreeSet<u32>, wanted: &[MeshRoute]) -> String {
    let mut out = String::new();
    let wanted_marks: BTreeSet<u32> = wanted.iter().map(|r| r.mark).collect();
    for mark in current.difference(&wanted_marks) {
        out.push_str(&format!(
            "rule del pref {RULE_PRIORITY} fwmark {mark:#x} table {mark}\nroute flush table {mark}\n"
        ));
    }
    for route in wanted {
        if !current.contains(&route.mark) {
            out.push_str(&format!(
                "rule add pref {RULE_PRIORITY} fwmark {:#x} table {}\n",
                route.mark, route.mark
            ));
        }
        out.push_str(&format!(
            "route replace default via {} dev {INGRESS_IFNAME} table {}\n",
            route.via, route.mark
        ));
    }
    out
}

async fn ip(args: &[&str], input: Option<&str>) -> Result<String, PublishError> {
    crate::command::run("ip", args, input)
        .await
        .map_err(|detail| PublishError::Routes { detail })
}

/// Makes the node's mesh rules and tables `wanted`, removing swarmr's others.
pub async fn apply(wanted: &[MeshRoute]) -> Result<(), PublishError> {
    let current = parse_marks(&ip(&["-4", "rule", "show"], None).await?);
    let commands = batch(&current, wanted);
    if commands.is_empty() {
        return Ok(());
    }
    ip(&["-4", "-batch", "-"], Some(&commands)).await.map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_swarmrs_rules_are_read() {
        let text = "0:\tfrom all lookup local\n\
                    5300:\tfrom all fwmark 0xa000903 lookup 167774467\n\
                    5301:\tfrom all fwmark 0x7 lookup 7\n\
                    32766:\tfrom all lookup main\n";
        assert_eq!(parse_marks(text), BTreeSet::from([0x0a00_0903]));
    }

    #[test]
    fn stale_rules_go_and_new_ones_come_with_their_route() {
        let current = BTreeSet::from([1, 2]);
        let wanted = [
            MeshRoute {
                mark: 2,
                via: Ipv4Addr::new(10, 0, 9, 2),
            },
            MeshRoute {
                mark: 3,
                via: Ipv4Addr::new(10, 0, 9, 3),
            },
        ];
        let got = batch(&current, &wanted);
        assert_eq!(
            got,
            "rule del pref 5300 fwmark 0x1 table 1\nroute flush table 1\n\
             route replace default via 10.0.9.2 dev swr-ingress table 2\n\
             rule add pref 5300 fwmark 0x3 table 3\n\
             route replace default via 10.0.9.3 dev swr-ingress table 3\n"
        );
        assert_eq!(
            batch(&BTreeSet::new(), &[]),
            "",
            "nothing to do, nothing run"
        );
    }
}
