//! The overlay fast path: `bpf/l2fwd.c` at tc ingress of each sandbox's `vxlan0` and of
//! the sandbox end of every local endpoint's veth, forwarding unicast frames past the
//! sandbox bridge (into a local container's namespace with `bpf_redirect_peer`, or to
//! `vxlan0`'s transmit), as Cilium does for its endpoints. ARP and other broadcasts, the
//! gateway and any MAC not in the map still take the bridge, so the bridge is both the
//! slow path and the fallback where BPF cannot load.
//!
//! Each sandbox has its own program instance and map, held by this process through TCX
//! links (Linux 6.6+): they go when the sandbox goes, and when this process exits, which
//! leaves the bridge forwarding. [`plan`] decides (pure); this module reads and writes.

pub mod plan;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};

use aya::maps::{HashMap as BpfHashMap, MapData, MapError};
use aya::programs::links::LinkOrder;
use aya::programs::tc::{SchedClassifierLinkId, TcAttachOptions};
use aya::programs::{ProgramError, SchedClassifier, TcAttachType};
use aya::{Ebpf, EbpfError, Pod};
use nix::sched::{setns, CloneFlags};

use crate::error::{error_chain, Cause};
use crate::kernel::on_thread;
use crate::socklb::gone_is_done;
use crate::types::{names, HostDesired, NetworkDesired};
pub use plan::{diff, FastChange, NextHop, Wanted};

static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/l2fwd.o"));
const PROGRAM: &str = "swarmr_l2fwd";
const MAP: &str = "next_hops";
/// `NEXT_HOP_PEER` in `bpf/l2fwd.c`.
const PEER_FLAG: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum FastPathError {
    #[error("cannot load the BPF object")]
    LoadObject(#[source] EbpfError),
    #[error("cannot load BPF program {PROGRAM}")]
    LoadProgram(#[source] ProgramError),
    #[error("cannot attach the fast path to ifindex {ifindex}")]
    Attach {
        ifindex: u32,
        #[source]
        source: ProgramError,
    },
    #[error("BPF map {MAP}")]
    Map(#[source] MapError),
    #[error("cannot enter sandbox {path}")]
    Enter {
        path: PathBuf,
        #[source]
        source: Cause,
    },
}

/// `struct mac_key` in `bpf/l2fwd.c`.
#[repr(C)]
#[derive(Clone, Copy)]
struct RawMac {
    mac: [u8; 6],
    pad: [u8; 2],
}

/// `struct next_hop` in `bpf/l2fwd.c`.
#[repr(C)]
#[derive(Clone, Copy)]
struct RawHop {
    ifindex: u32,
    flags: u32,
}

// SAFETY: plain `repr(C)` structs of integers without padding bytes, as in the C source.
unsafe impl Pod for RawMac {}
// SAFETY: as above.
unsafe impl Pod for RawHop {}

/// One sandbox's program instance, map and attachments.
struct Sandbox {
    ebpf: Ebpf,
    links: BTreeMap<u32, SchedClassifierLinkId>,
}

impl Sandbox {
    fn load() -> Result<Self, FastPathError> {
        let mut ebpf = Ebpf::load(OBJECT).map_err(FastPathError::LoadObject)?;
        program(&mut ebpf)?
            .load()
            .map_err(FastPathError::LoadProgram)?;
        Ok(Sandbox {
            ebpf,
            links: BTreeMap::new(),
        })
    }

    fn hops(&self) -> Result<BTreeMap<[u8; 6], NextHop>, FastPathError> {
        let map = self.ebpf.map(MAP).ok_or_else(missing_map)?;
        let map: BpfHashMap<&MapData, RawMac, RawHop> =
            BpfHashMap::try_from(map).map_err(FastPathError::Map)?;
        let mut out = BTreeMap::new();
        for item in map.iter() {
            let (key, hop) = item.map_err(FastPathError::Map)?;
            let hop = NextHop {
                ifindex: hop.ifindex,
                peer: hop.flags & PEER_FLAG != 0,
            };
            out.insert(key.mac, hop);
        }
        Ok(out)
    }

    /// Makes one change; must run inside the sandbox's namespace (attachments resolve
    /// the ifindex there).
    fn apply(&mut self, change: &FastChange) -> Result<(), FastPathError> {
        match *change {
            FastChange::Attach(ifindex) => {
                let name =
                    nix::net::if_::if_indextoname(ifindex).map_err(|e| FastPathError::Attach {
                        ifindex,
                        source: ProgramError::IOError(e.into()),
                    })?;
                let name = name.to_string_lossy().into_owned();
                let options = TcAttachOptions::TcxOrder(LinkOrder::default());
                let link = program(&mut self.ebpf)?
                    .attach_with_options(&name, TcAttachType::Ingress, options)
                    .map_err(|source| FastPathError::Attach { ifindex, source })?;
                self.links.insert(ifindex, link);
            }
            FastChange::Detach(ifindex) => {
                if let Some(link) = self.links.remove(&ifindex) {
                    // The link of a device that is gone is defunct already.
                    let _ = program(&mut self.ebpf)?.detach(link);
                }
            }
            FastChange::PutHop(mac, hop) => {
                let flags = if hop.peer { PEER_FLAG } else { 0 };
                let value = RawHop {
                    ifindex: hop.ifindex,
                    flags,
                };
                self.map_mut()?
                    .insert(key(mac), value, 0)
                    .map_err(FastPathError::Map)?;
            }
            FastChange::DelHop(mac) => {
                gone_is_done(self.map_mut()?.remove(&key(mac))).map_err(FastPathError::Map)?;
            }
        }
        Ok(())
    }

    fn map_mut(&mut self) -> Result<BpfHashMap<&mut MapData, RawMac, RawHop>, FastPathError> {
        let map = self.ebpf.map_mut(MAP).ok_or_else(missing_map)?;
        BpfHashMap::try_from(map).map_err(FastPathError::Map)
    }
}

fn key(mac: [u8; 6]) -> RawMac {
    RawMac { mac, pad: [0; 2] }
}

fn missing_map() -> FastPathError {
    FastPathError::Map(MapError::InvalidName { name: MAP.into() })
}

fn program(ebpf: &mut Ebpf) -> Result<&mut SchedClassifier, FastPathError> {
    let missing = || FastPathError::LoadProgram(ProgramError::UnexpectedProgramType);
    ebpf.program_mut(PROGRAM)
        .ok_or_else(missing)?
        .try_into()
        .map_err(FastPathError::LoadProgram)
}

/// The fast paths of this node's sandboxes.
pub struct FastPath {
    netns_dir: PathBuf,
    sandboxes: HashMap<String, Sandbox>,
    /// The failure last returned per network id, so a lasting one is returned once.
    failing: HashMap<String, String>,
}

/// One difference `network check` reports: network id, `missing`/`stale`/`wrong`, what.
pub type FastPathDifference = (String, &'static str, String);

/// One network whose fast path could not be made to match, and why: its frames keep
/// (some or all) going through the bridge.
pub type Failure = (String, FastPathError);

impl FastPath {
    /// Loads the program once to learn whether this kernel takes it (root, BPF, the
    /// verifier); callers run without a fast path (bridge only) when it does not.
    pub fn probe(netns_dir: &Path) -> Result<Self, FastPathError> {
        Sandbox::load()?;
        Ok(FastPath {
            netns_dir: netns_dir.to_path_buf(),
            sandboxes: HashMap::new(),
            failing: HashMap::new(),
        })
    }

    /// Makes every desired sandbox's fast path match `desired` and drops those of
    /// sandboxes no longer desired. Returns the changes made and the networks that failed,
    /// each failure once until it changes or the network's fast path is in place again.
    pub async fn sync(&mut self, desired: &HostDesired) -> (Vec<String>, Vec<Failure>) {
        let (done, failed) = self.sync_all(desired).await;
        let (fresh, failing) = new_failures(&self.failing, failed);
        self.failing = failing;
        (done, fresh)
    }

    async fn sync_all(&mut self, desired: &HostDesired) -> (Vec<String>, Vec<Failure>) {
        let mut done = Vec::new();
        let mut failed = Vec::new();
        let mut kept = HashMap::new();
        for network in &desired.networks {
            let name = names::sandbox(&desired.node_short_id, network.vni);
            let sandbox = match self.sandboxes.remove(&name) {
                Some(s) => Ok(s),
                None => Sandbox::load(),
            };
            let sandbox = match sandbox {
                Ok(s) => s,
                Err(e) => {
                    failed.push((network.network_id.clone(), e));
                    continue;
                }
            };
            let path = self.netns_dir.join(&name);
            let (sandbox, result) = in_sandbox(path, sandbox, network.clone(), true).await;
            match result {
                Ok((changes, _)) => done.extend(changes.iter().map(ToString::to_string)),
                Err(e) => failed.push((network.network_id.clone(), e)),
            }
            if let Some(sandbox) = sandbox {
                kept.insert(name, sandbox);
            }
        }
        // What is left belongs to sandboxes no longer desired: dropping detaches it.
        self.sandboxes = kept;
        (done, failed)
    }

    /// What `sync` would change now, as `network check` reports it.
    pub async fn check(&mut self, desired: &HostDesired) -> Vec<FastPathDifference> {
        let mut out = Vec::new();
        for network in &desired.networks {
            let name = names::sandbox(&desired.node_short_id, network.vni);
            let Some(sandbox) = self.sandboxes.remove(&name) else {
                out.push(self.not_loaded(network, &name));
                continue;
            };
            let path = self.netns_dir.join(&name);
            let (sandbox, result) = in_sandbox(path, sandbox, network.clone(), false).await;
            if let Some(sandbox) = sandbox {
                let (changes, hops) = result.unwrap_or_default();
                out.extend(changes.iter().map(|change| {
                    let kind = change.difference(&hops);
                    (network.network_id.clone(), kind, change.to_string())
                }));
                self.sandboxes.insert(name, sandbox);
            }
        }
        out
    }

    /// A desired sandbox without its program: every frame of the network goes through
    /// the bridge, which `network check` must say (with the last sync's reason, if any).
    fn not_loaded(&self, network: &NetworkDesired, sandbox: &str) -> FastPathDifference {
        let why = self
            .failing
            .get(&network.network_id)
            .map_or("not loaded yet".to_string(), |e| format!("failed: {e}"));
        (
            network.network_id.clone(),
            "missing",
            format!("fast path: load the program in {sandbox} ({why})"),
        )
    }
}

/// The failures not returned last time in the same words, and what fails now by network.
fn new_failures(
    before: &HashMap<String, String>,
    failed: Vec<Failure>,
) -> (Vec<Failure>, HashMap<String, String>) {
    let mut fresh = Vec::new();
    let mut now = HashMap::new();
    for (network_id, error) in failed {
        let text = error_chain(&error);
        if before.get(&network_id) != Some(&text) {
            fresh.push((network_id.clone(), error));
        }
        now.insert(network_id, text);
    }
    (fresh, now)
}

/// One sandbox's changes and its map as it was before them.
type Planned = (Vec<FastChange>, BTreeMap<[u8; 6], NextHop>);

/// Plans (and with `apply`, makes) one sandbox's changes on a thread inside its namespace.
/// The sandbox comes back unless its thread died.
async fn in_sandbox(
    path: PathBuf,
    mut sandbox: Sandbox,
    network: NetworkDesired,
    apply: bool,
) -> (Option<Sandbox>, Result<Planned, FastPathError>) {
    let enter_failed = |path: &Path, source: Cause| FastPathError::Enter {
        path: path.to_path_buf(),
        source,
    };
    let thread_path = path.clone();
    let ran = on_thread(move || {
        let result = (|| {
            let ns = File::open(&thread_path).map_err(|e| enter_failed(&thread_path, e.into()))?;
            setns(&ns, CloneFlags::CLONE_NEWNET)
                .map_err(|e| enter_failed(&thread_path, e.into()))?;
            let wanted = plan::wanted(&network, |name| nix::net::if_::if_nametoindex(name).ok());
            let devices: BTreeSet<u32> = sandbox.links.keys().copied().collect();
            let hops = sandbox.hops()?;
            let changes = diff(&devices, &hops, &wanted);
            if apply {
                for change in &changes {
                    sandbox.apply(change)?;
                }
            }
            Ok((changes, hops))
        })();
        (sandbox, result)
    })
    .await;
    match ran {
        Ok((sandbox, result)) => (Some(sandbox), result),
        Err(cause) => (None, Err(enter_failed(&path, cause))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(network: &str) -> Failure {
        (
            network.to_string(),
            FastPathError::Map(MapError::KeyNotFound),
        )
    }

    #[tokio::test]
    async fn check_reports_a_desired_sandbox_without_its_program() {
        let network = |id: &str, vni| NetworkDesired {
            network_id: id.to_string(),
            vni,
            subnet: "10.0.0.0/24".parse().unwrap(),
            gateway: "10.0.0.1".parse().unwrap(),
            mtu: None,
            local_endpoints: Vec::new(),
            remote_endpoints: Vec::new(),
        };
        let desired = HostDesired {
            node_short_id: "node1".into(),
            underlay_addr: "192.0.2.1".parse().unwrap(),
            networks: vec![network("n1", 4096), network("n2", 4097)],
            egress: None,
        };
        let mut fast_path = FastPath {
            netns_dir: PathBuf::from("/nonexistent"),
            sandboxes: HashMap::new(),
            failing: HashMap::from([("n2".to_string(), "the verifier said no".to_string())]),
        };
        let differences = fast_path.check(&desired).await;
        let kinds: Vec<(&str, &str)> = differences
            .iter()
            .map(|(id, kind, _)| (id.as_str(), *kind))
            .collect();
        assert_eq!(kinds, [("n1", "missing"), ("n2", "missing")]);
        assert!(
            differences[0].2.contains("not loaded yet"),
            "{:?}",
            differences[0]
        );
        assert!(
            differences[1].2.contains("the verifier said no"),
            "{:?}",
            differences[1]
        );
    }

    #[test]
    fn a_lasting_failure_is_returned_once_and_again_after_it_cleared() {
        let (fresh, failing) = new_failures(&HashMap::new(), vec![failure("n1")]);
        assert_eq!(fresh.len(), 1);
        let (fresh, failing) = new_failures(&failing, vec![failure("n1"), failure("n2")]);
        let ids: Vec<&str> = fresh.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(ids, ["n2"], "only the new one");
        let (_, cleared) = new_failures(&failing, vec![failure("n2")]);
        let (fresh, _) = new_failures(&cleared, vec![failure("n1"), failure("n2")]);
        let ids: Vec<&str> = fresh.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(ids, ["n1"], "n1 failed again after it was in place");
    }
}
