//! What two objects of one kind may not share: checked at apply time, so a decision made
//! on a stale replica cannot store a duplicate name, VNI or overlapping subnet.

use std::net::Ipv4Addr;

use swarmr_proto::RefusalKind::{NameTaken, ResourceTaken};
use swarmr_proto::{Network, PortConfig, PublishMode, Service};

use super::apply::Refusal;

/// Refuses a second object of `kind` named `name`; `other_id` has the name.
pub fn same_name(kind: &str, name: &str, other_name: &str, other_id: &str) -> Option<Refusal> {
    (name == other_name).then(|| {
        let reason = format!("{kind} name {name:?} is already in use by {kind} {other_id}");
        Refusal::new(NameTaken, reason)
    })
}

pub fn network(new: &Network, other: &Network) -> Option<Refusal> {
    let name = |n: &Network| n.spec.as_ref().map(|s| s.name.clone()).unwrap_or_default();
    if let Some(taken) = same_name("network", &name(new), &name(other), &other.id) {
        return Some(taken);
    }
    let reason = if new.vni == other.vni {
        format!("VNI {} is already used by network {}", new.vni, other.id)
    } else if subnets_overlap(&new.subnet, &other.subnet) {
        let (subnet, theirs) = (&new.subnet, &other.subnet);
        format!(
            "subnet {subnet} overlaps {theirs} of network {:?}",
            name(other)
        )
    } else {
        return None;
    };
    Some(Refusal::new(ResourceTaken, reason))
}

pub fn service(new: &Service, other: &Service) -> Option<Refusal> {
    let name = |s: &Service| s.spec.as_ref().map(|s| s.name.clone()).unwrap_or_default();
    if let Some(taken) = same_name("service", &name(new), &name(other), &other.id) {
        return Some(taken);
    }
    // Two services decided on different managers at once may pick one ingress port.
    let ingress = |p: &PortConfig| p.publish_mode() == PublishMode::Ingress;
    new.ports.iter().find_map(|mine| {
        other
            .ports
            .iter()
            .any(|theirs| {
                theirs.published_port == mine.published_port
                    && theirs.protocol == mine.protocol
                    && (ingress(mine) || ingress(theirs))
            })
            .then(|| {
                let reason = format!(
                    "port {}/{} is already published by service {}",
                    mine.published_port,
                    mine.protocol().label(),
                    name(other)
                );
                Refusal::new(ResourceTaken, reason)
            })
    })
}

/// A CIDR block as (network address, prefix length), the address masked to the length.
pub type Block = (u32, u8);

pub fn mask(len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(len.min(32)))
    }
}

/// The block a subnet text names; `None` if it does not parse (such a subnet overlaps
/// nothing).
pub fn block_of(s: &str) -> Option<Block> {
    let (addr, len) = s.split_once('/')?;
    let addr: Ipv4Addr = addr.parse().ok()?;
    let len = len.parse::<u32>().ok()?.min(32) as u8;
    Some((u32::from(addr) & mask(len), len))
}

fn subnets_overlap(a: &str, b: &str) -> bool {
    match (block_of(a), block_of(b)) {
        // Two blocks overlap exactly when one contains the other: compare under the
        // shorter mask.
        (Some((a, la)), Some((b, lb))) => {
            let mask = mask(la.min(lb));
            a & mask == b & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlap_means_containment() {
        assert!(subnets_overlap("10.0.0.0/16", "10.0.5.0/24"));
        assert!(subnets_overlap("10.0.5.0/24", "10.0.0.0/16"));
        assert!(!subnets_overlap("10.0.1.0/24", "10.0.2.0/24"));
        assert!(!subnets_overlap("", "10.0.2.0/24"));
    }
}
