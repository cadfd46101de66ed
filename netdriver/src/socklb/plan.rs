//! What the socket load balancer's maps should hold, and the changes that get them there:
//! pure, no IO. The worker says which VIPs each task namespace (by netns cookie) reaches
//! and their backends; [`diff`] orders the writes so a connect never reads a slot past
//! the count it saw: new slots before the count that covers them, the smaller count
//! before the slots it drops.

use std::collections::BTreeMap;
use std::fmt;
use std::net::Ipv4Addr;

use crate::change::Difference;

/// One VIP and the healthy tasks behind it, as one task's namespace sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VipRule {
    /// The network the VIP is on (for `network check`).
    pub network_id: String,
    pub vip: Ipv4Addr,
    pub backends: Vec<Ipv4Addr>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VipKey {
    pub netns: u64,
    pub vip: Ipv4Addr,
}

/// A VIP's entry: how many backend slots, and a generation that changes with the backend
/// set (a UDP socket's chosen backend is kept only while it is unchanged).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VipEntry {
    pub count: u32,
    pub generation: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BackendKey {
    pub netns: u64,
    pub vip: Ipv4Addr,
    pub slot: u32,
}

/// The user-space view of both maps the worker writes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Entries {
    pub vips: BTreeMap<VipKey, VipEntry>,
    pub backends: BTreeMap<BackendKey, Ipv4Addr>,
    /// The network of each VIP, for the check's rows; not in the kernel.
    pub networks: BTreeMap<Ipv4Addr, String>,
}

impl Entries {
    /// Adds the VIPs the namespace with cookie `netns` reaches.
    pub fn insert_namespace(&mut self, netns: u64, rules: &[VipRule]) {
        for rule in rules {
            let key = VipKey {
                netns,
                vip: rule.vip,
            };
            let entry = VipEntry {
                count: u32::try_from(rule.backends.len()).unwrap_or(u32::MAX),
                generation: generation(&rule.backends),
            };
            self.vips.insert(key, entry);
            for (slot, backend) in (0u32..).zip(&rule.backends) {
                let key = BackendKey {
                    netns,
                    vip: rule.vip,
                    slot,
                };
                self.backends.insert(key, *backend);
            }
            self.networks.insert(rule.vip, rule.network_id.clone());
        }
    }

    /// The entries of the namespaces in `keep` only.
    pub fn only(&self, keep: impl Fn(u64) -> bool) -> Entries {
        Entries {
            vips: self
                .vips
                .iter()
                .filter(|(k, _)| keep(k.netns))
                .map(|(k, v)| (*k, *v))
                .collect(),
            backends: self
                .backends
                .iter()
                .filter(|(k, _)| keep(k.netns))
                .map(|(k, v)| (*k, *v))
                .collect(),
            networks: self.networks.clone(),
        }
    }
}

/// FNV-1a over the backend addresses in order: equal sets give equal generations, so the
/// desired state stays a pure function of the directory.
fn generation(backends: &[Ipv4Addr]) -> u32 {
    backends
        .iter()
        .flat_map(|ip| ip.octets())
        .fold(0x811c_9dc5u32, |h, b| {
            (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
        })
}

/// One map write, with what it repairs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MapChange {
    PutBackend(BackendKey, Ipv4Addr, Difference),
    PutVip(VipKey, VipEntry, Difference),
    DelVip(VipKey),
    DelBackend(BackendKey),
}

impl MapChange {
    pub fn difference(&self) -> Difference {
        match self {
            MapChange::PutBackend(_, _, d) | MapChange::PutVip(_, _, d) => *d,
            MapChange::DelVip(_) | MapChange::DelBackend(_) => Difference::Stale,
        }
    }

    pub fn vip(&self) -> Ipv4Addr {
        match self {
            MapChange::PutBackend(k, ..) | MapChange::DelBackend(k) => k.vip,
            MapChange::PutVip(k, ..) | MapChange::DelVip(k) => k.vip,
        }
    }
}

impl fmt::Display for MapChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MapChange::PutBackend(k, ip, _) => write!(
                f,
                "put_backend netns {} vip {} slot {} -> {ip} (BPF map)",
                k.netns, k.vip, k.slot
            ),
            MapChange::PutVip(k, v, _) => write!(
                f,
                "put_vip netns {} vip {} ({} backends) (BPF map)",
                k.netns, k.vip, v.count
            ),
            MapChange::DelVip(k) => {
                write!(f, "del_vip netns {} vip {} (BPF map)", k.netns, k.vip)
            }
            MapChange::DelBackend(k) => write!(
                f,
                "del_backend netns {} vip {} slot {} (BPF map)",
                k.netns, k.vip, k.slot
            ),
        }
    }
}

/// The writes that turn `actual` into `desired`, in a safe order; none when equal.
pub fn diff(desired: &Entries, actual: &Entries) -> Vec<MapChange> {
    let put_or_fix = |found: bool| {
        if found {
            Difference::Wrong
        } else {
            Difference::Missing
        }
    };
    let mut changes = Vec::new();
    for (key, ip) in &desired.backends {
        match actual.backends.get(key) {
            Some(have) if have == ip => {}
            have => changes.push(MapChange::PutBackend(*key, *ip, put_or_fix(have.is_some()))),
        }
    }
    for (key, entry) in &desired.vips {
        match actual.vips.get(key) {
            Some(have) if have == entry => {}
            have => changes.push(MapChange::PutVip(*key, *entry, put_or_fix(have.is_some()))),
        }
    }
    for key in actual.vips.keys() {
        if !desired.vips.contains_key(key) {
            changes.push(MapChange::DelVip(*key));
        }
    }
    for key in actual.backends.keys() {
        if !desired.backends.contains_key(key) {
            changes.push(MapChange::DelBackend(*key));
        }
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> Ipv4Addr {
        Ipv4Addr::new(10, 0, 0, last)
    }

    fn rule(vip: u8, backends: &[u8]) -> VipRule {
        VipRule {
            network_id: "front".into(),
            vip: ip(vip),
            backends: backends.iter().map(|b| ip(*b)).collect(),
        }
    }

    fn entries(netns: u64, rules: &[VipRule]) -> Entries {
        let mut e = Entries::default();
        e.insert_namespace(netns, rules);
        e
    }

    #[test]
    fn a_new_vip_writes_its_slots_before_its_count() {
        let changes = diff(&entries(7, &[rule(2, &[3, 4])]), &Entries::default());
        let text: Vec<String> = changes.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            [
                "put_backend netns 7 vip 10.0.0.2 slot 0 -> 10.0.0.3 (BPF map)",
                "put_backend netns 7 vip 10.0.0.2 slot 1 -> 10.0.0.4 (BPF map)",
                "put_vip netns 7 vip 10.0.0.2 (2 backends) (BPF map)",
            ]
        );
        assert!(changes
            .iter()
            .all(|c| c.difference() == Difference::Missing));
    }

    #[test]
    fn a_scale_down_shrinks_the_count_before_dropping_slots() {
        let before = entries(7, &[rule(2, &[3, 4, 5])]);
        let after = entries(7, &[rule(2, &[4])]);
        let changes = diff(&after, &before);
        assert!(matches!(
            changes[0],
            MapChange::PutBackend(k, b, Difference::Wrong) if k.slot == 0 && b == ip(4)
        ));
        assert!(matches!(changes[1], MapChange::PutVip(_, v, _) if v.count == 1));
        assert!(matches!(changes[2], MapChange::DelBackend(k) if k.slot == 1));
        assert!(matches!(changes[3], MapChange::DelBackend(k) if k.slot == 2));
        assert_eq!(changes.len(), 4);
    }

    #[test]
    fn the_same_input_twice_changes_nothing() {
        let want = entries(7, &[rule(2, &[3, 4]), rule(9, &[])]);
        assert!(diff(&want, &want).is_empty());
    }

    #[test]
    fn a_gone_namespace_is_stale() {
        let actual = entries(7, &[rule(2, &[3])]);
        let changes = diff(&Entries::default(), &actual);
        assert_eq!(changes.len(), 2);
        assert!(changes.iter().all(|c| c.difference() == Difference::Stale));
    }

    #[test]
    fn a_vip_without_backends_has_a_zero_count_entry_that_refuses() {
        let e = entries(7, &[rule(9, &[])]);
        let key = VipKey {
            netns: 7,
            vip: ip(9),
        };
        assert_eq!(e.vips.get(&key).map(|v| v.count), Some(0));
        assert!(e.backends.is_empty());
    }

    #[test]
    fn the_generation_follows_the_backend_set() {
        assert_eq!(generation(&[ip(3), ip(4)]), generation(&[ip(3), ip(4)]));
        assert_ne!(generation(&[ip(3), ip(4)]), generation(&[ip(3)]));
    }
}
