//! Subnets of networks: cut from the cluster's default address pools, or
//! given by the user.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use super::error::IpamError;
use super::validate::{check_pools, check_subnet_size, default_pools, overlaps, DEFAULT_MASK_LEN};

/// Subnets held outside the allocator: one overlapping the given one, if any.
pub type Elsewhere<'a> = dyn Fn(Ipv4Net) -> Option<Ipv4Net> + 'a;

/// The subnets held by networks, and the pools new ones are cut from.
///
/// [`allocate`](Self::allocate) returns the first subnet of the mask length,
/// pools in order, that overlaps no held subnet. Two CIDR blocks either are
/// disjoint or one contains the other, so an overlap is found by looking up
/// the candidate's supernets and the held subnets that start inside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubnetAllocator {
    pools: Vec<Ipv4Net>,
    mask_len: u8,
    /// Held subnets by (network address, prefix), with how many networks hold
    /// each (more than one only if the replicated state already had a clash).
    used: BTreeMap<(u32, u8), u32>,
    /// Per pool: every candidate below this address overlaps a held subnet.
    /// Only a shortcut; allocations are the same as scanning from the start.
    hints: Vec<u64>,
}

impl SubnetAllocator {
    /// Builds the allocator from the cluster's pools and mask length and the
    /// subnets of the existing networks (one entry per network).
    pub fn new(
        pools: Vec<Ipv4Net>,
        mask_len: u8,
        existing: impl IntoIterator<Item = Ipv4Net>,
    ) -> Result<Self, IpamError> {
        check_pools(&pools, mask_len)?;
        let hints = pools.iter().map(|p| start_of(*p)).collect();
        let mut a = SubnetAllocator {
            pools,
            mask_len,
            used: BTreeMap::new(),
            hints,
        };
        for subnet in existing {
            a.hold(subnet.trunc());
        }
        Ok(a)
    }

    /// Swarm's defaults: `10.0.0.0/8` cut into /24s.
    pub fn with_defaults(existing: impl IntoIterator<Item = Ipv4Net>) -> Result<Self, IpamError> {
        Self::new(default_pools(), DEFAULT_MASK_LEN, existing)
    }

    pub fn pools(&self) -> &[Ipv4Net] {
        &self.pools
    }

    pub fn mask_len(&self) -> u8 {
        self.mask_len
    }

    /// The held subnets, in address order (each once).
    pub fn held(&self) -> impl Iterator<Item = Ipv4Net> + '_ {
        self.used
            .keys()
            .filter_map(|&(start, prefix)| net(start, prefix))
    }

    /// The first free subnet of the mask length, pools in order.
    pub fn allocate(&mut self) -> Result<Ipv4Net, IpamError> {
        self.allocate_beside(&|_| None)
    }

    /// [`allocate`](Self::allocate), with the subnets `elsewhere` finds (one overlapping
    /// the one it is given) held too: a long-lived allocator that holds only the
    /// subnets in flight, beside an index of the committed ones. Call
    /// [`forget_hints`](Self::forget_hints) when one of those is given up.
    pub fn allocate_beside(&mut self, elsewhere: &Elsewhere<'_>) -> Result<Ipv4Net, IpamError> {
        for i in 0..self.pools.len() {
            if let Some(subnet) = self.allocate_in(i, elsewhere) {
                self.hold(subnet);
                return Ok(subnet);
            }
        }
        Err(IpamError::PoolsExhausted {
            mask_len: self.mask_len,
            pools: self
                .pools
                .iter()
                .map(Ipv4Net::to_string)
                .collect::<Vec<_>>()
                .join(", "),
        })
    }

    /// The first free candidate of pool `i`, moving that pool's hint to it.
    fn allocate_in(&mut self, i: usize, elsewhere: &Elsewhere<'_>) -> Option<Ipv4Net> {
        let pool = *self.pools.get(i)?;
        let size = 1u64 << (32 - u32::from(self.mask_len));
        let end = end_of(pool);
        let mut start = self.hints.get(i).copied().unwrap_or_else(|| start_of(pool));
        while start < end {
            let candidate = net(u32::try_from(start).ok()?, self.mask_len)?;
            match self
                .first_overlap(candidate)
                .or_else(|| elsewhere(candidate))
            {
                None => break,
                // A bigger held subnet: jump past all of it.
                Some(held) if held.prefix_len() < self.mask_len => start = end_of(held),
                Some(_) => start += size,
            }
        }
        if let Some(hint) = self.hints.get_mut(i) {
            *hint = start;
        }
        if start >= end {
            return None;
        }
        net(u32::try_from(start).ok()?, self.mask_len)
    }

    /// Checks a user-given subnet (size, then overlap with the held ones)
    /// without taking it.
    pub fn check_user_subnet(&self, subnet: Ipv4Net) -> Result<(), IpamError> {
        self.check_user_subnet_beside(subnet, &|_| None)
    }

    /// [`check_user_subnet`](Self::check_user_subnet) with the subnets `elsewhere` finds.
    pub fn check_user_subnet_beside(
        &self,
        subnet: Ipv4Net,
        elsewhere: &Elsewhere<'_>,
    ) -> Result<(), IpamError> {
        let subnet = subnet.trunc();
        check_subnet_size(subnet)?;
        match self.first_overlap(subnet).or_else(|| elsewhere(subnet)) {
            Some(existing) => Err(IpamError::SubnetOverlap { subnet, existing }),
            None => Ok(()),
        }
    }

    /// Takes a user-given subnet (of any size, inside the pools or not); it
    /// must not overlap the subnet of any existing network.
    pub fn reserve_user_subnet(&mut self, subnet: Ipv4Net) -> Result<(), IpamError> {
        self.reserve_user_subnet_beside(subnet, &|_| None)
    }

    /// [`reserve_user_subnet`](Self::reserve_user_subnet) with the subnets `elsewhere`
    /// finds.
    pub fn reserve_user_subnet_beside(
        &mut self,
        subnet: Ipv4Net,
        elsewhere: &Elsewhere<'_>,
    ) -> Result<(), IpamError> {
        self.check_user_subnet_beside(subnet, elsewhere)?;
        self.hold(subnet.trunc());
        Ok(())
    }

    /// Starts every search at its pool's start again: a subnet held elsewhere was freed.
    pub fn forget_hints(&mut self) {
        for (hint, pool) in self.hints.iter_mut().zip(&self.pools) {
            *hint = start_of(*pool);
        }
    }

    /// Frees the subnet of a removed network. Idempotent: returns whether it was held.
    pub fn release(&mut self, subnet: Ipv4Net) -> bool {
        let subnet = subnet.trunc();
        let key = key_of(subnet);
        match self.used.get_mut(&key) {
            None => return false,
            Some(n) if *n > 1 => *n -= 1,
            Some(_) => {
                self.used.remove(&key);
            }
        }
        // Candidates overlapping it may be free again.
        let size = 1u64 << (32 - u32::from(self.mask_len));
        let from = start_of(subnet) / size * size;
        for (hint, pool) in self.hints.iter_mut().zip(&self.pools) {
            if overlaps(*pool, subnet) {
                *hint = (*hint).min(from.max(start_of(*pool)));
            }
        }
        true
    }

    /// A held subnet overlapping `subnet`: one containing it, else one inside it.
    fn first_overlap(&self, subnet: Ipv4Net) -> Option<Ipv4Net> {
        let start = u32::from(subnet.network());
        let containing = (0..=subnet.prefix_len()).find_map(|prefix| {
            let key = (start & mask(prefix), prefix);
            self.used
                .contains_key(&key)
                .then(|| net(key.0, key.1))
                .flatten()
        });
        containing.or_else(|| {
            let end = u32::from(subnet.broadcast());
            let inside = (start, subnet.prefix_len())..=(end, 32);
            self.used
                .range(inside)
                .next()
                .and_then(|(&(s, p), _)| net(s, p))
        })
    }

    fn hold(&mut self, subnet: Ipv4Net) {
        *self.used.entry(key_of(subnet)).or_insert(0) += 1;
    }
}

fn key_of(subnet: Ipv4Net) -> (u32, u8) {
    (u32::from(subnet.network()), subnet.prefix_len())
}

fn mask(prefix: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0)
}

fn net(start: u32, prefix: u8) -> Option<Ipv4Net> {
    Ipv4Net::new(Ipv4Addr::from(start), prefix).ok()
}

fn start_of(subnet: Ipv4Net) -> u64 {
    u64::from(u32::from(subnet.network()))
}

/// One past the last address of `subnet`.
fn end_of(subnet: Ipv4Net) -> u64 {
    u64::from(u32::from(subnet.broadcast())) + 1
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn net(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }

    fn nets(list: &[&str]) -> Vec<Ipv4Net> {
        list.iter().map(|s| net(s)).collect()
    }

    fn take(a: &mut SubnetAllocator, n: usize) -> Vec<String> {
        (0..n).map(|_| a.allocate().unwrap().to_string()).collect()
    }

    #[test]
    fn allocation_table() {
        struct Case {
            name: &'static str,
            pools: &'static [&'static str],
            mask_len: u8,
            existing: &'static [&'static str],
            want: &'static [&'static str],
        }
        let cases = [
            Case {
                name: "defaults in order",
                pools: &["10.0.0.0/8"],
                mask_len: 24,
                existing: &[],
                want: &["10.0.0.0/24", "10.0.1.0/24", "10.0.2.0/24"],
            },
            Case {
                name: "skip existing /24s",
                pools: &["10.0.0.0/8"],
                mask_len: 24,
                existing: &["10.0.0.0/24", "10.0.2.0/24"],
                want: &["10.0.1.0/24", "10.0.3.0/24"],
            },
            Case {
                name: "skip a user /16 covering 256 /24s",
                pools: &["10.0.0.0/8"],
                mask_len: 24,
                existing: &["10.0.0.0/16"],
                want: &["10.1.0.0/24", "10.1.1.0/24"],
            },
            Case {
                name: "skip a user /16 after the first /24",
                pools: &["10.0.0.0/8"],
                mask_len: 24,
                existing: &["10.0.0.0/24", "10.1.0.0/16"],
                want: &["10.0.1.0/24"],
            },
            Case {
                name: "a small user subnet blocks its whole /24",
                pools: &["10.0.0.0/8"],
                mask_len: 24,
                existing: &["10.0.0.128/30", "10.0.1.0/24"],
                want: &["10.0.2.0/24"],
            },
            Case {
                name: "next pool when the first is full",
                pools: &["192.168.0.0/23", "172.16.0.0/12"],
                mask_len: 24,
                existing: &["192.168.1.0/24"],
                want: &["192.168.0.0/24", "172.16.0.0/24", "172.16.1.0/24"],
            },
            Case {
                name: "mask 26",
                pools: &["10.10.0.0/16"],
                mask_len: 26,
                existing: &["10.10.0.64/26"],
                want: &["10.10.0.0/26", "10.10.0.128/26"],
            },
        ];
        for c in cases {
            let mut a = SubnetAllocator::new(nets(c.pools), c.mask_len, nets(c.existing)).unwrap();
            assert_eq!(take(&mut a, c.want.len()), c.want, "{}", c.name);
        }
    }

    #[test]
    fn user_subnet_table() {
        let existing = nets(&["10.0.0.0/24", "10.1.0.0/16", "192.168.5.0/30"]);
        let a = SubnetAllocator::with_defaults(existing).unwrap();
        let cases: &[(&str, Result<(), &str>)] = &[
            ("10.0.1.0/24", Ok(())),
            ("172.20.0.0/16", Ok(())),
            ("10.2.0.0/30", Ok(())),
            ("10.0.0.0/24", Err("subnet 10.0.0.0/24 overlaps 10.0.0.0/24, the subnet of an existing network: choose a subnet that does not overlap it, or remove that network first")),
            ("10.1.7.0/24", Err("subnet 10.1.7.0/24 overlaps 10.1.0.0/16, the subnet of an existing network: choose a subnet that does not overlap it, or remove that network first")),
            ("10.0.0.0/8", Err("subnet 10.0.0.0/8 overlaps 10.0.0.0/24, the subnet of an existing network: choose a subnet that does not overlap it, or remove that network first")),
            ("192.168.0.0/16", Err("subnet 192.168.0.0/16 overlaps 192.168.5.0/30, the subnet of an existing network: choose a subnet that does not overlap it, or remove that network first")),
            ("10.9.9.0/31", Err("subnet 10.9.9.0/31 is too small: it must hold a gateway and at least one task; use /30 or larger")),
        ];
        for (subnet, want) in cases {
            let mut b = a.clone();
            let got = b
                .reserve_user_subnet(net(subnet))
                .map_err(|e| e.to_string());
            assert_eq!(got, want.map_err(str::to_owned), "{subnet}");
            assert_eq!(b == a, got.is_err(), "{subnet}: held only when accepted");
        }
    }

    #[test]
    fn user_subnet_twice_is_refused_the_second_time() {
        let mut a = SubnetAllocator::with_defaults([]).unwrap();
        a.reserve_user_subnet(net("10.5.0.0/16")).unwrap();
        let err = a.reserve_user_subnet(net("10.5.0.0/16")).unwrap_err();
        assert_eq!(
            err,
            IpamError::SubnetOverlap {
                subnet: net("10.5.0.0/16"),
                existing: net("10.5.0.0/16")
            }
        );
    }

    #[test]
    fn slash_16_pool_gives_256_then_exhausted() {
        let mut a = SubnetAllocator::new(nets(&["10.20.0.0/16"]), 24, []).unwrap();
        let got: Vec<_> = (0..256).map(|_| a.allocate().unwrap()).collect();
        assert_eq!(got.first(), Some(&net("10.20.0.0/24")));
        assert_eq!(got.last(), Some(&net("10.20.255.0/24")));
        let err = a.allocate().unwrap_err();
        assert_eq!(
            err.to_string(),
            "no free /24 subnet left in the default address pools (10.20.0.0/16): remove unused networks, or give the network an explicit --subnet"
        );
        assert!(a.release(net("10.20.77.0/24")));
        assert_eq!(a.allocate().unwrap(), net("10.20.77.0/24"));
        assert!(a.allocate().is_err());
    }

    #[test]
    fn default_pool_gives_every_slash_24_then_reports_exhaustion() {
        let mut a = SubnetAllocator::with_defaults(nets(&["10.0.0.0/16"])).unwrap();
        for _ in 0..65_536 - 256 {
            a.allocate().unwrap();
        }
        assert!(matches!(
            a.allocate(),
            Err(IpamError::PoolsExhausted { .. })
        ));
        assert_eq!(a.held().count(), 65_536 - 256 + 1);
    }

    #[test]
    fn release_is_idempotent_and_frees_the_lowest_first() {
        let mut a = SubnetAllocator::with_defaults([]).unwrap();
        take(&mut a, 5);
        assert!(a.release(net("10.0.3.0/24")));
        assert!(!a.release(net("10.0.3.0/24")), "second release is a no-op");
        assert!(a.release(net("10.0.1.0/24")));
        assert_eq!(
            take(&mut a, 3),
            ["10.0.1.0/24", "10.0.3.0/24", "10.0.5.0/24"]
        );
    }

    #[test]
    fn releasing_a_user_slash_16_frees_its_24s() {
        let mut a = SubnetAllocator::with_defaults(nets(&["10.0.0.0/16"])).unwrap();
        assert_eq!(take(&mut a, 1), ["10.1.0.0/24"]);
        assert!(a.release(net("10.0.0.0/16")));
        assert_eq!(take(&mut a, 2), ["10.0.0.0/24", "10.0.1.0/24"]);
    }

    #[test]
    fn same_input_twice_gives_the_same_allocations() {
        let existing = nets(&["10.0.1.0/24", "10.0.3.0/24", "10.0.1.0/24"]);
        let mut a = SubnetAllocator::with_defaults(existing.clone()).unwrap();
        let mut b = SubnetAllocator::with_defaults(existing).unwrap();
        assert_eq!(a, b);
        assert_eq!(take(&mut a, 4), take(&mut b, 4));
        // The duplicate is counted per network: one release leaves it held.
        assert!(a.release(net("10.0.1.0/24")));
        assert!(a.check_user_subnet(net("10.0.1.0/24")).is_err());
    }

    #[test]
    fn bad_pools_are_refused() {
        let err = SubnetAllocator::new(nets(&["10.0.0.0/16"]), 8, []).unwrap_err();
        assert_eq!(
            err,
            IpamError::MaskShorterThanPool {
                mask_len: 8,
                pool: net("10.0.0.0/16")
            }
        );
        assert_eq!(
            SubnetAllocator::new(vec![], 24, []).unwrap_err(),
            IpamError::NoPools
        );
    }

    #[derive(Debug, Clone)]
    enum Op {
        Allocate,
        /// A user subnet: (third octet, prefix 16..=30).
        User(u8, u8, u8),
        Release(usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => Just(Op::Allocate),
            2 => (any::<u8>(), any::<u8>(), 16u8..=30).prop_map(|(b, c, p)| Op::User(b, c, p)),
            2 => any::<usize>().prop_map(Op::Release),
        ]
    }

    proptest! {
        #[test]
        fn never_hands_out_overlapping_subnets(
            mask_len in 24u8..=28,
            ops in prop::collection::vec(op(), 0..150),
        ) {
            // A small pool so that exhaustion and skipping happen often.
            let pools = nets(&["10.0.0.0/21", "10.0.16.0/22"]);
            let mut a = SubnetAllocator::new(pools.clone(), mask_len, []).unwrap();
            let mut live: Vec<Ipv4Net> = Vec::new();
            for op in ops {
                match op {
                    Op::Allocate => {
                        if let Ok(s) = a.allocate() {
                            prop_assert_eq!(s.prefix_len(), mask_len);
                            prop_assert!(pools.iter().any(|p| p.contains(&s)));
                            live.push(s);
                        }
                    }
                    Op::User(b, c, p) => {
                        let s = Ipv4Net::new(Ipv4Addr::new(10, b % 32, c, 0), p).unwrap().trunc();
                        let clash = live.iter().any(|l| overlaps(*l, s));
                        prop_assert_eq!(a.reserve_user_subnet(s).is_err(), clash);
                        if !clash {
                            live.push(s);
                        }
                    }
                    Op::Release(n) if !live.is_empty() => {
                        let s = live.swap_remove(n % live.len());
                        prop_assert!(a.release(s));
                    }
                    Op::Release(_) => {}
                }
                for (i, x) in live.iter().enumerate() {
                    for y in &live[i + 1..] {
                        prop_assert!(!overlaps(*x, *y), "{} overlaps {}", x, y);
                    }
                }
                // The hints are only a shortcut: a fresh rebuild agrees.
                let fresh = SubnetAllocator::new(pools.clone(), mask_len, live.clone()).unwrap();
                prop_assert_eq!(fresh.clone().allocate().ok(), a.clone().allocate().ok());
            }
        }
    }
}
