//! Subnets and VNIs for `network create`, decided by the manager that takes the request,
//! before it proposes the network. The committed networks are looked up in the store's
//! index (see `store::index`); what this manager has decided but not yet committed is
//! held here, so concurrent creates pick different subnets and VNIs and can commit in
//! one batch. Each decision costs the same with 10 or 10,000 networks: the search keeps
//! its place (the subnet allocator's hints, the lowest VNI that may be free) and starts
//! over only when a committed network gave something up.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use swarmr_proto::Network;

use super::ipam::{IpamError, SubnetAllocator, VNI_FIRST, VNI_LAST};
use crate::store::Index;

/// Decided networks not yet committed, and where the searches stand.
#[derive(Default)]
pub struct NetworkIpam {
    pending: Vec<Network>,
    /// Holds only the pending subnets; the committed ones are the index's. Rebuilt when
    /// the cluster's pools or subnet size change.
    subnets: Option<(Vec<Ipv4Net>, u8, SubnetAllocator)>,
    /// Every VNI from [`VNI_FIRST`] below this is held by a committed network.
    vni_floor: u32,
    /// The index's `released()` the searches' places were found under.
    released_seen: u64,
}

fn block(subnet: Ipv4Net) -> (u32, u8) {
    (u32::from(subnet.network()), subnet.prefix_len())
}

fn committed_overlap(index: &Index, subnet: Ipv4Net) -> Option<Ipv4Net> {
    let (start, len) = index.first_overlap(block(subnet))?;
    Ipv4Net::new(Ipv4Addr::from(start), len).ok()
}

impl NetworkIpam {
    /// Networks decided here and not yet committed or given up.
    pub fn pending(&self) -> &[Network] {
        &self.pending
    }

    /// Starts the searches over if a committed network gave something up since.
    fn catch_up(&mut self, index: &Index) {
        if index.released() != self.released_seen {
            self.released_seen = index.released();
            self.vni_floor = VNI_FIRST;
            if let Some((_, _, allocator)) = &mut self.subnets {
                allocator.forget_hints();
            }
        }
    }

    fn allocator(
        &mut self,
        pools: Vec<Ipv4Net>,
        mask: u8,
    ) -> Result<&mut SubnetAllocator, IpamError> {
        let allocator = match self.subnets.take() {
            Some((p, m, allocator)) if p == pools && m == mask => allocator,
            _ => {
                let pending = self.pending.iter().filter_map(|n| n.subnet.parse().ok());
                SubnetAllocator::new(pools.clone(), mask, pending)?
            }
        };
        let (_, _, allocator) = self.subnets.insert((pools, mask, allocator));
        Ok(allocator)
    }

    /// A subnet for a new network: the user's (checked) or the first free one of `mask`
    /// in `pools`. Held until [`settle`](Self::settle).
    pub fn subnet(
        &mut self,
        index: &Index,
        pools: Vec<Ipv4Net>,
        mask: u8,
        user: Option<Ipv4Net>,
    ) -> Result<Ipv4Net, IpamError> {
        self.catch_up(index);
        let allocator = self.allocator(pools, mask)?;
        let elsewhere = |candidate| committed_overlap(index, candidate);
        match user {
            Some(subnet) => {
                allocator.reserve_user_subnet_beside(subnet, &elsewhere)?;
                Ok(subnet)
            }
            None => allocator.allocate_beside(&elsewhere),
        }
    }

    /// The lowest VNI from [`VNI_FIRST`] up that no network holds or is about to.
    pub fn vni(&mut self, index: &Index) -> Result<u32, IpamError> {
        self.catch_up(index);
        self.vni_floor = self.vni_floor.max(VNI_FIRST);
        while self.vni_floor <= VNI_LAST && index.vni_taken(self.vni_floor) {
            self.vni_floor += 1;
        }
        (self.vni_floor..=VNI_LAST)
            .find(|v| !index.vni_taken(*v) && !self.pending.iter().any(|n| n.vni == *v))
            .ok_or(IpamError::VnisExhausted {
                first: VNI_FIRST,
                last: VNI_LAST,
            })
    }

    /// Holds a decided network until [`settle`](Self::settle).
    pub fn hold(&mut self, network: Network) {
        self.pending.push(network);
    }

    /// The proposal of network `id` was decided (committed or not): stop holding what it
    /// took; once committed, the index holds it.
    pub fn settle(&mut self, id: &str) {
        let Some(at) = self.pending.iter().position(|n| n.id == id) else {
            return;
        };
        let network = self.pending.swap_remove(at);
        if let (Some((_, _, allocator)), Ok(subnet)) = (&mut self.subnets, network.subnet.parse()) {
            allocator.release(subnet);
        }
    }

    /// Gives back a subnet taken by [`subnet`](Self::subnet) for a network that will not
    /// be held (its decision failed later).
    pub fn give_back(&mut self, subnet: Ipv4Net) {
        if let Some((_, _, allocator)) = &mut self.subnets {
            allocator.release(subnet);
        }
    }
}
