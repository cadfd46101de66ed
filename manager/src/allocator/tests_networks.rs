//! The long-lived network search against a fresh allocator built from every committed
//! network (what `network create` did before): the same subnet and VNI, whatever was
//! created, given up or removed before; and never one that is held or in flight.

use proptest::prelude::*;
use swarmr_proto::store_action::{Kind, Target};
use swarmr_proto::{Network, NetworkSpec, StoreAction};

use super::ipam::{validate, SubnetAllocator, VniAllocator};
use super::networks::NetworkIpam;
use crate::store::Index;

#[derive(Debug, Clone)]
enum Op {
    /// Decide a network and commit it.
    Commit,
    /// Decide a network, then give it up (its proposal was rejected).
    GiveUp,
    /// Remove the n-th committed network.
    Remove(usize),
    /// Decide a network and keep it in flight.
    InFlight,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => Just(Op::Commit),
        1 => Just(Op::GiveUp),
        2 => any::<usize>().prop_map(Op::Remove),
        1 => Just(Op::InFlight),
    ]
}

fn action(kind: Kind, network: &Network) -> StoreAction {
    StoreAction {
        kind: kind as i32,
        expected_version: 0,
        target: Some(Target::Network(network.clone())),
    }
}

proptest! {
    #[test]
    fn decides_as_a_fresh_allocator_over_the_committed_networks(ops in prop::collection::vec(op(), 1..60)) {
        let pools = vec!["10.0.0.0/22".parse().unwrap()];
        let mut ipam = NetworkIpam::default();
        let mut index = Index::default();
        let mut committed: Vec<Network> = Vec::new();
        for (i, op) in ops.iter().enumerate() {
            if let Op::Remove(n) = op {
                if !committed.is_empty() {
                    let gone = committed.remove(n % committed.len());
                    index.apply(&[action(Kind::Delete, &gone)]);
                }
                continue;
            }
            let in_flight: Vec<_> = ipam.pending().to_vec();
            let mut held: Vec<_> = committed.iter().chain(&in_flight).map(|n| n.subnet.parse().unwrap()).collect();
            let fresh = SubnetAllocator::new(pools.clone(), 24, held.drain(..)).unwrap().clone().allocate();
            let vnis = committed.iter().chain(&in_flight).map(|n| n.vni);
            let fresh_vni = VniAllocator::rebuild(vnis).unwrap().allocate().unwrap();
            let subnet = ipam.subnet(&index, pools.clone(), 24, None);
            prop_assert_eq!(subnet.clone().ok(), fresh.ok(), "subnet after {:?}", &ops[..i]);
            let Ok(subnet) = subnet else { continue };
            let vni = ipam.vni(&index).unwrap();
            prop_assert_eq!(vni, fresh_vni);
            let network = Network {
                id: format!("n{i}"),
                spec: Some(NetworkSpec { name: format!("net{i}"), ..Default::default() }),
                subnet: subnet.to_string(),
                gateway: validate::first_host(subnet).to_string(),
                vni,
                ..Default::default()
            };
            ipam.hold(network.clone());
            match op {
                Op::Commit => {
                    index.apply(&[action(Kind::Create, &network)]);
                    committed.push(network.clone());
                    ipam.settle(&network.id);
                }
                Op::GiveUp => ipam.settle(&network.id),
                _ => {}
            }
        }
    }
}
