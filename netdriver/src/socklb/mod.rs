//! VIPs balanced at the socket: cgroup BPF `sock_addr` programs (`bpf/socklb.c`) rewrite a
//! `connect()` or `sendmsg()` to a VIP into one of its backends, once per connection, and
//! show the VIP again to `getpeername()` and `recvmsg()`, as Cilium's socket load balancer
//! does. Task namespaces then need no NAT chain, so no connection tracking on their
//! packets.
//!
//! The programs are attached at the root of the cgroup v2 hierarchy through BPF links, so
//! they see every process whichever cgroup Docker put it in (also `nsenter -n` callers), and
//! they detach when this process exits. Each [`SockLb`] has its own programs and maps, so
//! several nodes on one machine each balance only the namespaces they wrote entries for:
//! entries are keyed by network namespace cookie, and a namespace without entries is not
//! touched. [`plan`] decides the entries (pure); this module reads and writes them.

pub mod plan;

use std::fs::File;
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use aya::maps::{HashMap, MapData, MapError};
use aya::programs::{CgroupAttachMode, CgroupSockAddr, ProgramError};
use aya::{Ebpf, EbpfError, Pod};
use nix::sched::{setns, CloneFlags};

use crate::error::Cause;
use crate::kernel::on_thread;
pub use plan::{diff, BackendKey, Entries, MapChange, VipEntry, VipKey, VipRule};

/// The programs, by the name of their C function; each runs at its cgroup hook.
const PROGRAMS: [&str; 4] = [
    "swarmr_connect4",
    "swarmr_sendmsg4",
    "swarmr_recvmsg4",
    "swarmr_getpeername4",
];

/// `SO_NETNS_COOKIE` from `<asm-generic/socket.h>` (Linux 5.14); not in the libc crate's
/// public API.
const SO_NETNS_COOKIE: i32 = 71;

static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/socklb.o"));

#[derive(Debug, thiserror::Error)]
pub enum SockLbError {
    #[error("no cgroup v2 hierarchy is mounted (see /proc/self/mountinfo)")]
    NoCgroup2,
    #[error("cannot open cgroup {path}")]
    OpenCgroup {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot load the BPF object")]
    LoadObject(#[source] EbpfError),
    #[error("BPF program {name} is not in the object")]
    MissingProgram { name: &'static str },
    #[error("cannot load BPF program {name}")]
    LoadProgram {
        name: &'static str,
        #[source]
        source: ProgramError,
    },
    #[error("cannot attach BPF program {name} to cgroup {path}")]
    Attach {
        name: &'static str,
        path: PathBuf,
        #[source]
        source: ProgramError,
    },
    #[error("BPF map {name}")]
    Map {
        name: &'static str,
        #[source]
        source: MapError,
    },
    #[error("cannot read the network namespace cookie of {path}")]
    NetnsCookie {
        path: PathBuf,
        #[source]
        source: Cause,
    },
}

/// The loaded, attached programs and their maps; dropping it detaches them.
pub struct SockLb {
    ebpf: Ebpf,
    cgroup: PathBuf,
}

impl SockLb {
    /// Loads the programs and attaches them to `cgroup` (the v2 root: [`cgroup2_root`]).
    /// Fails without root, on kernels without these hooks or BPF links, or where the
    /// verifier refuses: callers then fall back to NAT rules.
    pub fn load(cgroup: &Path) -> Result<Self, SockLbError> {
        let dir = File::open(cgroup).map_err(|source| SockLbError::OpenCgroup {
            path: cgroup.to_path_buf(),
            source,
        })?;
        let mut ebpf = Ebpf::load(OBJECT).map_err(SockLbError::LoadObject)?;
        for name in PROGRAMS {
            let program: &mut CgroupSockAddr = ebpf
                .program_mut(name)
                .ok_or(SockLbError::MissingProgram { name })?
                .try_into()
                .map_err(|source| SockLbError::LoadProgram { name, source })?;
            program
                .load()
                .map_err(|source| SockLbError::LoadProgram { name, source })?;
            // Through a BPF link (Linux 5.7+), which always lets other programs, such as
            // another node's on this machine, run at the same hook; the link goes with us.
            program
                .attach(&dir, CgroupAttachMode::Single)
                .map_err(|source| SockLbError::Attach {
                    name,
                    path: cgroup.to_path_buf(),
                    source,
                })?;
        }
        Ok(SockLb {
            ebpf,
            cgroup: cgroup.to_path_buf(),
        })
    }

    /// The cgroup the programs are attached to.
    pub fn cgroup(&self) -> &Path {
        &self.cgroup
    }

    /// What the two worker-written maps hold now.
    pub fn read(&self) -> Result<Entries, SockLbError> {
        let mut entries = Entries::default();
        let vips: HashMap<&MapData, RawVipKey, RawVipValue> = self.map("vips")?;
        for item in vips.iter() {
            let (k, v) = item.map_err(|source| SockLbError::Map {
                name: "vips",
                source,
            })?;
            let entry = VipEntry {
                count: v.count,
                generation: v.generation,
            };
            entries.vips.insert(k.into(), entry);
        }
        let backends: HashMap<&MapData, RawBackendKey, u32> = self.map("backends")?;
        for item in backends.iter() {
            let (k, v) = item.map_err(|source| SockLbError::Map {
                name: "backends",
                source,
            })?;
            entries.backends.insert(k.into(), from_be(v));
        }
        Ok(entries)
    }

    /// Makes the writes, in order; deleting what is already gone is fine.
    pub fn apply(&mut self, changes: &[MapChange]) -> Result<(), SockLbError> {
        for change in changes {
            self.apply_one(change)?;
        }
        Ok(())
    }

    fn apply_one(&mut self, change: &MapChange) -> Result<(), SockLbError> {
        let failed = |name| move |source| SockLbError::Map { name, source };
        match change {
            MapChange::PutBackend(k, ip, _) => {
                let mut map: HashMap<&mut MapData, RawBackendKey, u32> =
                    self.map_mut("backends")?;
                map.insert(RawBackendKey::from(*k), to_be(*ip), 0)
                    .map_err(failed("backends"))
            }
            MapChange::PutVip(k, v, _) => {
                let mut map: HashMap<&mut MapData, RawVipKey, RawVipValue> =
                    self.map_mut("vips")?;
                let value = RawVipValue {
                    count: v.count,
                    generation: v.generation,
                    next: 0,
                    pad: 0,
                };
                map.insert(RawVipKey::from(*k), value, 0)
                    .map_err(failed("vips"))
            }
            MapChange::DelVip(k) => {
                let mut map: HashMap<&mut MapData, RawVipKey, RawVipValue> =
                    self.map_mut("vips")?;
                gone_is_done(map.remove(&RawVipKey::from(*k))).map_err(failed("vips"))
            }
            MapChange::DelBackend(k) => {
                let mut map: HashMap<&mut MapData, RawBackendKey, u32> =
                    self.map_mut("backends")?;
                gone_is_done(map.remove(&RawBackendKey::from(*k))).map_err(failed("backends"))
            }
        }
    }

    fn map<K: Pod, V: Pod>(
        &self,
        name: &'static str,
    ) -> Result<HashMap<&MapData, K, V>, SockLbError> {
        let map = self.ebpf.map(name).ok_or(SockLbError::Map {
            name,
            source: MapError::InvalidName { name: name.into() },
        })?;
        HashMap::try_from(map).map_err(|source| SockLbError::Map { name, source })
    }

    fn map_mut<K: Pod, V: Pod>(
        &mut self,
        name: &'static str,
    ) -> Result<HashMap<&mut MapData, K, V>, SockLbError> {
        let map = self.ebpf.map_mut(name).ok_or(SockLbError::Map {
            name,
            source: MapError::InvalidName { name: name.into() },
        })?;
        HashMap::try_from(map).map_err(|source| SockLbError::Map { name, source })
    }
}

/// A removal of what is not there is done (also used by the overlay fast path's map).
pub(crate) fn gone_is_done(result: Result<(), MapError>) -> Result<(), MapError> {
    match result {
        Err(MapError::KeyNotFound) => Ok(()),
        other => other,
    }
}

/// Where the cgroup v2 hierarchy is mounted (`/sys/fs/cgroup` on a unified system,
/// `/sys/fs/cgroup/unified` on a hybrid one), from this process's mount table.
pub fn cgroup2_root() -> Result<PathBuf, SockLbError> {
    let table = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    cgroup2_in_mountinfo(&table).ok_or(SockLbError::NoCgroup2)
}

fn cgroup2_in_mountinfo(table: &str) -> Option<PathBuf> {
    table.lines().find_map(|line| {
        // "<id> <parent> <dev> <root> <mount point> <options> [optional...] - <fstype> ..."
        let (left, right) = line.split_once(" - ")?;
        let point = left.split_whitespace().nth(4)?;
        (right.split_whitespace().next()? == "cgroup2").then(|| PathBuf::from(point))
    })
}

/// The cookie of the network namespace `ns` names (e.g. `/proc/<pid>/ns/net`): what the
/// programs see as `bpf_get_netns_cookie()` for a socket in it. Unique for the boot.
pub async fn netns_cookie(ns: &Path) -> Result<u64, SockLbError> {
    let failed = |source: Cause| SockLbError::NetnsCookie {
        path: ns.to_path_buf(),
        source,
    };
    let file = File::open(ns).map_err(|e| failed(e.into()))?;
    on_thread(move || -> Result<u64, Cause> {
        setns(&file, CloneFlags::CLONE_NEWNET)?;
        let socket = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?;
        let mut cookie = 0u64;
        let mut len = std::mem::size_of::<u64>() as nix::libc::socklen_t;
        // SAFETY: the buffer and its length describe `cookie`, a u64 the kernel fills.
        let rc = unsafe {
            nix::libc::getsockopt(
                socket.as_raw_fd(),
                nix::libc::SOL_SOCKET,
                SO_NETNS_COOKIE,
                (&mut cookie as *mut u64).cast(),
                &mut len,
            )
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error().into());
        }
        Ok(cookie)
    })
    .await
    .map_err(failed)?
    .map_err(failed)
}

// The maps' C layouts (`bpf/socklb.c`); addresses in network byte order as the kernel has
// them in `bpf_sock_addr.user_ip4`.

#[repr(C)]
#[derive(Clone, Copy)]
struct RawVipKey {
    netns: u64,
    vip: u32,
    pad: u32,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct RawVipValue {
    count: u32,
    generation: u32,
    next: u32,
    pad: u32,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct RawBackendKey {
    netns: u64,
    vip: u32,
    slot: u32,
}

// SAFETY: plain `repr(C)` structs of integers without padding bytes, as aya requires.
unsafe impl Pod for RawVipKey {}
// SAFETY: as above.
unsafe impl Pod for RawVipValue {}
// SAFETY: as above.
unsafe impl Pod for RawBackendKey {}

fn to_be(ip: Ipv4Addr) -> u32 {
    u32::from_ne_bytes(ip.octets())
}

fn from_be(raw: u32) -> Ipv4Addr {
    Ipv4Addr::from(raw.to_ne_bytes())
}

impl From<VipKey> for RawVipKey {
    fn from(k: VipKey) -> Self {
        RawVipKey {
            netns: k.netns,
            vip: to_be(k.vip),
            pad: 0,
        }
    }
}

impl From<RawVipKey> for VipKey {
    fn from(k: RawVipKey) -> Self {
        VipKey {
            netns: k.netns,
            vip: from_be(k.vip),
        }
    }
}

impl From<BackendKey> for RawBackendKey {
    fn from(k: BackendKey) -> Self {
        RawBackendKey {
            netns: k.netns,
            vip: to_be(k.vip),
            slot: k.slot,
        }
    }
}

impl From<RawBackendKey> for BackendKey {
    fn from(k: RawBackendKey) -> Self {
        BackendKey {
            netns: k.netns,
            vip: from_be(k.vip),
            slot: k.slot,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cgroup2_mount_of_a_hybrid_system() {
        let table = "25 30 0:23 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755\n\
                     26 25 0:24 / /sys/fs/cgroup/unified rw,relatime shared:5 - cgroup2 cgroup2 rw\n\
                     27 25 0:25 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n";
        assert_eq!(
            cgroup2_in_mountinfo(table),
            Some(PathBuf::from("/sys/fs/cgroup/unified"))
        );
        assert_eq!(
            cgroup2_in_mountinfo("27 25 0:25 / /x rw - cgroup cgroup rw\n"),
            None
        );
    }

    #[test]
    fn addresses_keep_the_kernels_byte_order() {
        let ip = Ipv4Addr::new(10, 0, 0, 2);
        assert_eq!(to_be(ip).to_ne_bytes(), [10, 0, 0, 2]);
        assert_eq!(from_be(to_be(ip)), ip);
    }
}
