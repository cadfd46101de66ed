//! VXLAN network identifiers of overlay networks.

use super::bitmap::Bitmap;
use super::error::IpamError;

/// The first VNI handed out (Swarm's ingress network takes it).
pub const VNI_FIRST: u32 = 4096;
/// The largest VNI: ids are 24 bits.
pub const VNI_LAST: u32 = (1 << 24) - 1;

/// The VNIs held by existing networks. [`allocate`](Self::allocate) returns
/// the lowest free one from [`VNI_FIRST`] up. Rebuilt by reserving the VNI of
/// every existing network, so a VNI is never reused while its network exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VniAllocator {
    /// Bit `i` is VNI `i + 1`; storage grows with the highest VNI held.
    used: Bitmap,
}

impl Default for VniAllocator {
    fn default() -> Self {
        VniAllocator {
            used: Bitmap::new(u64::from(VNI_LAST)),
        }
    }
}

impl VniAllocator {
    pub fn new() -> Self {
        Self::default()
    }

    /// Rebuilds from the VNIs of existing networks; duplicates are harmless.
    pub fn rebuild(existing: impl IntoIterator<Item = u32>) -> Result<Self, IpamError> {
        let mut a = Self::new();
        for vni in existing {
            a.reserve(vni)?;
        }
        Ok(a)
    }

    /// The lowest free VNI at or above [`VNI_FIRST`].
    pub fn allocate(&mut self) -> Result<u32, IpamError> {
        let exhausted = IpamError::VnisExhausted {
            first: VNI_FIRST,
            last: VNI_LAST,
        };
        let i = self
            .used
            .first_clear_in(index(VNI_FIRST), self.used.len())
            .ok_or(exhausted)?;
        self.used.set(i);
        Ok(vni_at(i))
    }

    /// Marks `vni` as held. Idempotent: returns whether it was free. Any
    /// valid VNI (1 to 2^24-1) is accepted, below [`VNI_FIRST`] too, so that
    /// networks created with an explicit VNI are kept.
    pub fn reserve(&mut self, vni: u32) -> Result<bool, IpamError> {
        check_vni(vni)?;
        Ok(self.used.set(index(vni)))
    }

    /// Frees `vni` when its network is removed. Idempotent: returns whether it was held.
    pub fn release(&mut self, vni: u32) -> bool {
        check_vni(vni).is_ok() && self.used.clear(index(vni))
    }

    pub fn is_used(&self, vni: u32) -> bool {
        check_vni(vni).is_ok() && self.used.get(index(vni))
    }

    /// How many VNIs are held.
    pub fn len(&self) -> usize {
        usize::try_from(self.used.ones()).unwrap_or(usize::MAX)
    }

    pub fn is_empty(&self) -> bool {
        self.used.ones() == 0
    }
}

/// The bit of a valid VNI.
fn index(vni: u32) -> u64 {
    u64::from(vni.saturating_sub(1))
}

fn vni_at(i: u64) -> u32 {
    u32::try_from(i + 1).unwrap_or(u32::MAX)
}

fn check_vni(vni: u32) -> Result<(), IpamError> {
    if vni == 0 || vni > VNI_LAST {
        return Err(IpamError::VniOutOfRange { vni });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn lowest_free_from_4096() {
        let mut a = VniAllocator::new();
        assert_eq!(a.allocate(), Ok(4096));
        assert_eq!(a.allocate(), Ok(4097));
        assert!(a.release(4096));
        assert_eq!(a.allocate(), Ok(4096), "the lowest free");
        assert_eq!(a.allocate(), Ok(4098));
    }

    #[test]
    fn rebuild_skips_existing_and_ignores_ids_below_the_range() {
        let mut a = VniAllocator::rebuild([4097, 10, 4096, 4099, 4097]).unwrap();
        assert_eq!(a.len(), 4);
        assert_eq!(a.allocate(), Ok(4098));
        assert_eq!(a.allocate(), Ok(4100));
    }

    #[test]
    fn reserve_table() {
        let mut a = VniAllocator::new();
        let cases: &[(u32, Result<bool, &str>)] = &[
            (4096, Ok(true)),
            (4096, Ok(false)),
            (1, Ok(true)),
            (VNI_LAST, Ok(true)),
            (0, Err("VXLAN id 0 is out of range: use 1 to 16777215")),
            (
                1 << 24,
                Err("VXLAN id 16777216 is out of range: use 1 to 16777215"),
            ),
        ];
        for (vni, want) in cases {
            let got = a.reserve(*vni).map_err(|e| e.to_string());
            assert_eq!(got, want.map_err(str::to_owned), "vni {vni}");
        }
        assert!(!a.release(5000), "releasing a free VNI is a no-op");
        assert!(!a.release(0) && !a.is_used(0));
    }

    #[test]
    fn exhaustion() {
        let mut a = VniAllocator::rebuild(VNI_FIRST..=VNI_LAST).unwrap();
        let err = a.allocate().unwrap_err();
        assert_eq!(
            err.to_string(),
            "no free VXLAN id left (all from 4096 to 16777215 are in use): remove unused overlay networks"
        );
        a.release(70_000);
        assert_eq!(a.allocate(), Ok(70_000));
    }

    proptest! {
        #[test]
        fn never_hands_out_a_held_vni(ops in prop::collection::vec(any::<Option<u8>>(), 0..200)) {
            let mut a = VniAllocator::new();
            let mut live = std::collections::BTreeSet::new();
            for op in ops {
                match op {
                    None => {
                        let v = a.allocate().unwrap();
                        prop_assert!(live.insert(v), "duplicate {}", v);
                        let lowest = (VNI_FIRST..).find(|x| !live.contains(x) || *x == v);
                        prop_assert_eq!(Some(v), lowest);
                    }
                    Some(n) if !live.is_empty() => {
                        let v = *live.iter().nth(n as usize % live.len()).unwrap();
                        live.remove(&v);
                        prop_assert!(a.release(v));
                    }
                    Some(_) => {}
                }
                prop_assert_eq!(a.len(), live.len());
            }
        }
    }
}
