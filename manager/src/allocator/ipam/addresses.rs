//! The addresses of one network: its gateway, task IPs and VIPs.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use super::bitmap::Bitmap;
use super::error::{AddressRole, IpamError};
use super::validate::{check_gateway, check_subnet_size, first_host};

/// The host addresses of one subnet, handed out serially.
///
/// The network and broadcast addresses are never handed out. The gateway is
/// taken when the pool is built. [`allocate`](Self::allocate) returns the
/// first free address at or after the cursor and moves the cursor past it, so
/// a released address is only reused after the cursor has wrapped around.
/// The state is (subnet, gateway, live addresses, cursor): rebuilding a pool
/// from those four gives the same allocations as the original.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressPool {
    subnet: Ipv4Net,
    gateway: Ipv4Addr,
    /// Bit `i` is host address `network + 1 + i`.
    used: Bitmap,
    /// Host index where the next search starts.
    next: u64,
}

impl AddressPool {
    /// A pool for `subnet` with `gateway` (default: the first host address,
    /// `.1`) taken. The subnet must be /30 or larger and have no host bits.
    pub fn new(subnet: Ipv4Net, gateway: Option<Ipv4Addr>) -> Result<Self, IpamError> {
        check_subnet_size(subnet)?;
        let subnet = subnet.trunc();
        let gateway = gateway.unwrap_or_else(|| first_host(subnet));
        check_gateway(gateway, subnet)?;
        let hosts = (1u64 << (32 - u32::from(subnet.prefix_len()))) - 2;
        let mut pool = AddressPool {
            subnet,
            gateway,
            used: Bitmap::new(hosts),
            next: 0,
        };
        pool.used.set(pool.index_of(gateway));
        Ok(pool)
    }

    /// Rebuilds a pool from persisted facts: the live task and VIP addresses
    /// and the cursor stored in the network object (`None`: start of range).
    pub fn rebuild(
        subnet: Ipv4Net,
        gateway: Option<Ipv4Addr>,
        live: impl IntoIterator<Item = Ipv4Addr>,
        cursor: Option<Ipv4Addr>,
    ) -> Result<Self, IpamError> {
        let mut pool = AddressPool::new(subnet, gateway)?;
        for ip in live {
            pool.reserve(ip)?;
        }
        match cursor {
            Some(c) => pool.with_cursor(c),
            None => Ok(pool),
        }
    }

    /// Continues serial allocation from `cursor` (a value of [`cursor`](Self::cursor)).
    pub fn with_cursor(mut self, cursor: Ipv4Addr) -> Result<Self, IpamError> {
        self.next = self
            .host_index(cursor)
            .ok_or(IpamError::CursorOutsideSubnet {
                cursor,
                subnet: self.subnet,
            })?;
        Ok(self)
    }

    /// Where the next allocation starts searching; persist it with the network.
    pub fn cursor(&self) -> Ipv4Addr {
        self.addr_at(self.next)
    }

    pub fn subnet(&self) -> Ipv4Net {
        self.subnet
    }

    pub fn gateway(&self) -> Ipv4Addr {
        self.gateway
    }

    /// How many addresses tasks and VIPs can hold (hosts minus the gateway).
    pub fn capacity(&self) -> u64 {
        self.used.len() - 1
    }

    /// How many addresses tasks and VIPs hold now.
    pub fn in_use(&self) -> u64 {
        self.used.ones() - 1
    }

    /// Whether `ip` is held by a task, a VIP or the gateway.
    pub fn is_used(&self, ip: Ipv4Addr) -> bool {
        self.host_index(ip).is_some_and(|i| self.used.get(i))
    }

    /// The addresses held by tasks and VIPs, in address order.
    pub fn live(&self) -> impl Iterator<Item = Ipv4Addr> + '_ {
        self.used
            .iter_ones()
            .map(|i| self.addr_at(i))
            .filter(|ip| *ip != self.gateway)
    }

    /// The next free address at or after the cursor, wrapping around.
    pub fn allocate(&mut self) -> Result<Ipv4Addr, IpamError> {
        let exhausted = IpamError::Exhausted {
            subnet: self.subnet,
            capacity: self.capacity(),
        };
        if self.used.is_full() {
            return Err(exhausted);
        }
        let i = self.used.first_clear_from(self.next).ok_or(exhausted)?;
        self.used.set(i);
        self.next = (i + 1) % self.used.len();
        Ok(self.addr_at(i))
    }

    /// Marks `ip` as held (rebuilding from existing tasks and VIPs).
    /// Idempotent: returns whether it was free before. Does not move the cursor.
    pub fn reserve(&mut self, ip: Ipv4Addr) -> Result<bool, IpamError> {
        let i = self.assignable_index(ip)?;
        Ok(self.used.set(i))
    }

    /// Frees `ip`. Idempotent: returns whether it was held.
    pub fn release(&mut self, ip: Ipv4Addr) -> Result<bool, IpamError> {
        let i = self.assignable_index(ip)?;
        Ok(self.used.clear(i))
    }

    /// The host index of an address a task or VIP may hold.
    fn assignable_index(&self, ip: Ipv4Addr) -> Result<u64, IpamError> {
        let subnet = self.subnet;
        if !subnet.contains(&ip) {
            return Err(IpamError::AddressOutsideSubnet { ip, subnet });
        }
        let role = if ip == subnet.network() {
            AddressRole::Network
        } else if ip == subnet.broadcast() {
            AddressRole::Broadcast
        } else if ip == self.gateway {
            AddressRole::Gateway
        } else {
            return Ok(self.index_of(ip));
        };
        Err(IpamError::AddressNotAssignable { ip, subnet, role })
    }

    fn host_index(&self, ip: Ipv4Addr) -> Option<u64> {
        let net = u64::from(u32::from(self.subnet.network()));
        let i = u64::from(u32::from(ip)).checked_sub(net + 1)?;
        (i < self.used.len()).then_some(i)
    }

    /// The host index of an address known to be a host of the subnet.
    fn index_of(&self, ip: Ipv4Addr) -> u64 {
        u64::from(u32::from(ip)).saturating_sub(u64::from(u32::from(self.subnet.network())) + 1)
    }

    fn addr_at(&self, i: u64) -> Ipv4Addr {
        let net = u64::from(u32::from(self.subnet.network()));
        Ipv4Addr::from(u32::try_from(net + 1 + i).unwrap_or(u32::MAX))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::time::Instant;

    use proptest::prelude::*;

    use super::*;

    fn net(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn gateway_is_taken_first_and_tasks_start_after_it() {
        let mut p = AddressPool::new(net("10.0.1.0/24"), None).unwrap();
        assert_eq!(p.gateway(), ip("10.0.1.1"));
        assert!(p.is_used(ip("10.0.1.1")));
        assert_eq!((p.capacity(), p.in_use()), (253, 0));
        let got: Vec<_> = (0..3).map(|_| p.allocate().unwrap().to_string()).collect();
        assert_eq!(got, ["10.0.1.2", "10.0.1.3", "10.0.1.4"]);
        assert_eq!(p.in_use(), 3);
    }

    #[test]
    fn a_user_gateway_is_skipped_and_tasks_start_at_dot_one() {
        let mut p = AddressPool::new(net("10.0.9.0/29"), Some(ip("10.0.9.3"))).unwrap();
        let got: Vec<_> = std::iter::from_fn(|| p.allocate().ok())
            .map(|a| a.to_string())
            .collect();
        assert_eq!(
            got,
            ["10.0.9.1", "10.0.9.2", "10.0.9.4", "10.0.9.5", "10.0.9.6"]
        );
    }

    #[test]
    fn construction_table() {
        let cases: &[(&str, Option<&str>, Result<&str, &str>)] = &[
            ("10.0.9.0/30", None, Ok("10.0.9.1")),
            ("10.0.9.0/30", Some("10.0.9.2"), Ok("10.0.9.2")),
            (
                "10.0.9.0/31",
                None,
                Err("subnet 10.0.9.0/31 is too small: it must hold a gateway and at least one task; use /30 or larger"),
            ),
            (
                "10.0.9.0/24",
                Some("10.0.9.255"),
                Err("gateway 10.0.9.255 is the broadcast address of 10.0.9.0/24: use a host address, such as 10.0.9.1"),
            ),
            (
                "10.0.9.0/24",
                Some("10.0.8.1"),
                Err("gateway 10.0.8.1 is outside subnet 10.0.9.0/24: use an address inside it, such as 10.0.9.1"),
            ),
        ];
        for (subnet, gw, want) in cases {
            let got = AddressPool::new(net(subnet), gw.map(ip))
                .map(|p| p.gateway().to_string())
                .map_err(|e| e.to_string());
            assert_eq!(
                got,
                want.map(str::to_owned).map_err(str::to_owned),
                "{subnet} {gw:?}"
            );
        }
    }

    #[test]
    fn released_address_waits_for_wrap_around() {
        let mut p = AddressPool::new(net("10.0.1.0/29"), None).unwrap();
        // Hosts .1-.6; .1 is the gateway.
        let a = p.allocate().unwrap();
        let b = p.allocate().unwrap();
        assert_eq!((a, b), (ip("10.0.1.2"), ip("10.0.1.3")));
        assert!(p.release(a).unwrap());
        let rest: Vec<_> = (0..3).map(|_| p.allocate().unwrap().to_string()).collect();
        assert_eq!(rest, ["10.0.1.4", "10.0.1.5", "10.0.1.6"]);
        assert_eq!(p.allocate().unwrap(), a, "only after wrapping around");
    }

    #[test]
    fn exhaustion_then_release_then_allocate() {
        let mut p = AddressPool::new(net("10.0.1.0/24"), None).unwrap();
        for _ in 0..253 {
            p.allocate().unwrap();
        }
        let err = p.allocate().unwrap_err();
        assert_eq!(
            err,
            IpamError::Exhausted {
                subnet: net("10.0.1.0/24"),
                capacity: 253
            }
        );
        assert!(err
            .to_string()
            .starts_with("no free address in 10.0.1.0/24 (all 253 in use)"));
        assert!(p.release(ip("10.0.1.77")).unwrap());
        assert_eq!(p.allocate().unwrap(), ip("10.0.1.77"));
        assert!(p.allocate().is_err());
    }

    #[test]
    fn reserve_and_release_table() {
        let mut p = AddressPool::new(net("10.0.1.0/24"), None).unwrap();
        let cases: &[(&str, Result<bool, &str>)] = &[
            ("10.0.1.9", Ok(true)),
            ("10.0.1.9", Ok(false)),
            ("10.0.1.0", Err("address 10.0.1.0 is the network address of 10.0.1.0/24 and cannot be given to a task or VIP")),
            ("10.0.1.255", Err("address 10.0.1.255 is the broadcast address of 10.0.1.0/24 and cannot be given to a task or VIP")),
            ("10.0.1.1", Err("address 10.0.1.1 is the gateway address of 10.0.1.0/24 and cannot be given to a task or VIP")),
            ("10.0.2.9", Err("address 10.0.2.9 is not in subnet 10.0.1.0/24")),
        ];
        for (addr, want) in cases {
            let got = p.reserve(ip(addr)).map_err(|e| e.to_string());
            assert_eq!(got, want.map_err(str::to_owned), "reserve {addr}");
        }
        assert_eq!(p.in_use(), 1);
        assert_eq!(p.release(ip("10.0.1.9")), Ok(true));
        assert_eq!(
            p.release(ip("10.0.1.9")),
            Ok(false),
            "second release is a no-op"
        );
        assert!(p.release(ip("10.0.1.1")).is_err(), "the gateway stays");
        assert_eq!(p.in_use(), 0);
    }

    #[test]
    fn cursor_round_trip_and_bad_cursor() {
        let mut p = AddressPool::new(net("10.0.1.0/24"), None).unwrap();
        assert_eq!(p.cursor(), ip("10.0.1.1"));
        p.allocate().unwrap();
        assert_eq!(p.cursor(), ip("10.0.1.3"));
        let q = AddressPool::rebuild(net("10.0.1.0/24"), None, p.live(), Some(p.cursor())).unwrap();
        assert_eq!(q, p);
        let err = p.clone().with_cursor(ip("10.0.1.255")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "allocation cursor 10.0.1.255 is not a host address of 10.0.1.0/24"
        );
    }

    #[test]
    fn slash_16_hands_out_every_address_once_quickly() {
        let mut p = AddressPool::new(net("10.1.0.0/16"), None).unwrap();
        let start = Instant::now();
        let mut seen = vec![false; 1 << 16];
        for _ in 0..65_533 {
            let a = p.allocate().unwrap();
            let i = (u32::from(a) - u32::from(ip("10.1.0.0"))) as usize;
            assert!(!seen[i], "duplicate {a}");
            seen[i] = true;
        }
        assert!(p.allocate().is_err());
        assert_eq!(p.in_use(), 65_533);
        assert!(
            !seen[0] && !seen[1] && !seen[65_535],
            "network, gateway, broadcast"
        );
        assert!(
            start.elapsed().as_secs_f64() < 1.0,
            "took {:?}",
            start.elapsed()
        );
    }

    #[derive(Debug, Clone)]
    enum Op {
        Allocate,
        /// Release the n-th live address (modulo the count), if any.
        Release(usize),
    }

    fn ops() -> impl Strategy<Value = Vec<Op>> {
        prop::collection::vec(
            prop_oneof![3 => Just(Op::Allocate), 2 => any::<usize>().prop_map(Op::Release)],
            0..200,
        )
    }

    fn apply(p: &mut AddressPool, live: &mut BTreeSet<Ipv4Addr>, op: &Op) {
        match op {
            Op::Allocate => match p.allocate() {
                Ok(a) => {
                    assert!(live.insert(a), "duplicate live address {a}");
                    let s = p.subnet();
                    assert!(a != s.network() && a != s.broadcast() && a != p.gateway());
                    assert!(s.contains(&a));
                }
                Err(IpamError::Exhausted { .. }) => {
                    assert_eq!(live.len() as u64, p.capacity());
                }
                Err(e) => panic!("unexpected {e}"),
            },
            Op::Release(n) if !live.is_empty() => {
                let a = *live.iter().nth(n % live.len()).unwrap();
                live.remove(&a);
                assert_eq!(p.release(a), Ok(true));
            }
            Op::Release(_) => {}
        }
        assert_eq!(p.in_use(), live.len() as u64);
        assert!(p.live().eq(live.iter().copied()));
    }

    proptest! {
        #[test]
        fn random_sequences_never_duplicate(prefix in 26u8..=30, gw_off in 1u32..3, ops in ops()) {
            let subnet = Ipv4Net::new(ip("10.0.4.0"), prefix).unwrap();
            let gw = Ipv4Addr::from(u32::from(subnet.network()) + gw_off);
            let mut p = AddressPool::new(subnet, Some(gw)).unwrap();
            let mut live = BTreeSet::new();
            for op in &ops {
                apply(&mut p, &mut live, op);
            }
        }

        #[test]
        fn rebuild_continues_like_the_original(prefix in 26u8..=30, ops in ops(), more in 1usize..80) {
            let subnet = Ipv4Net::new(ip("10.0.4.0"), prefix).unwrap();
            let mut p = AddressPool::new(subnet, None).unwrap();
            let mut live = BTreeSet::new();
            for op in &ops {
                apply(&mut p, &mut live, op);
            }
            // Rebuild from the persisted facts, live addresses in reverse order.
            let mut q = AddressPool::rebuild(
                subnet,
                Some(p.gateway()),
                live.iter().rev().copied(),
                Some(p.cursor()),
            )
            .unwrap();
            prop_assert_eq!(&q, &p);
            for _ in 0..more {
                prop_assert_eq!(q.allocate(), p.allocate());
            }
        }
    }
}
