//! Which way this node balances VIPs, chosen once at start: the BPF socket load balancer
//! (`swarmr_netdriver::socklb`: the VIP is rewritten at `connect()`, so task namespaces
//! carry no NAT and no connection tracking) where it loads, else nftables NAT rules in
//! each task container (`vip`). Both are fed the same rules, from the pushed directory,
//! which lists only healthy tasks.
//!
//! With BPF, each running task's namespace (by netns cookie) gets the entries of the VIPs
//! on its networks; the maps are diffed against that every round and repaired, and a gone
//! container's entries go. A container being wired gets its entries at once and keeps
//! them until the session shows it running (or `PENDING_GRACE` passes).

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use swarmr_netdriver::socklb::{self, Entries, MapChange, SockLb, SockLbError};
use swarmr_proto::{DiscoveryNetwork, SessionMessage, Task, TaskState};
use tokio::sync::Mutex;
use tracing::{debug, info, warn};

use super::error::DiscoveryError;
use super::vip;
use crate::error::chain as report;

/// How long a just-wired container keeps its entries before the session shows it running.
const PENDING_GRACE: Duration = Duration::from_secs(120);

/// `--vip-balancer`: `auto` tries BPF and falls back to nftables; `nftables` skips BPF.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum VipMode {
    #[default]
    Auto,
    Nftables,
}

pub struct VipBalancer {
    kind: Kind,
    /// What runs and why, for logs and `network check`.
    describe: String,
}

enum Kind {
    Bpf(Box<Mutex<BpfState>>),
    /// The script last loaded per container (task id), with the PID it went to.
    Nft(Mutex<HashMap<String, (u32, String)>>),
}

struct BpfState {
    lb: SockLb,
    /// Netns cookie by container PID.
    cookies: HashMap<u32, u64>,
    /// Containers wired but not yet shown running: task id -> (pid, rules, since).
    pending: HashMap<String, (u32, Vec<socklb::VipRule>, Instant)>,
    /// Containers whose leftover nftables table (from a run without BPF) was removed.
    cleaned: HashSet<u32>,
}

impl VipBalancer {
    /// Loads the BPF programs unless told not to; logs which way VIPs are balanced.
    pub fn start(mode: VipMode) -> Self {
        Self::start_on(mode, socklb::cgroup2_root)
    }

    /// [`start`](Self::start) with the programs attached to the cgroup `root` gives.
    fn start_on(mode: VipMode, root: impl FnOnce() -> Result<PathBuf, SockLbError>) -> Self {
        let balancer = match mode {
            VipMode::Nftables => Self::nft("nftables (--vip-balancer nftables)".into()),
            VipMode::Auto => match root().and_then(|root| SockLb::load(&root)) {
                Ok(lb) => VipBalancer {
                    describe: format!(
                        "bpf (socket load balancer on cgroup {})",
                        lb.cgroup().display()
                    ),
                    kind: Kind::Bpf(Box::new(Mutex::new(BpfState {
                        lb,
                        cookies: HashMap::new(),
                        pending: HashMap::new(),
                        cleaned: HashSet::new(),
                    }))),
                },
                Err(e) => Self::nft(format!(
                    "nftables (fallback: the BPF socket load balancer did not load: {})",
                    report(&e)
                )),
            },
        };
        match balancer.kind {
            Kind::Bpf(_) => info!(vip_balancer = %balancer.describe, "VIP balancing"),
            Kind::Nft(_) => warn!(vip_balancer = %balancer.describe, "VIP balancing"),
        }
        balancer
    }

    fn nft(describe: String) -> Self {
        VipBalancer {
            kind: Kind::Nft(Mutex::new(HashMap::new())),
            describe,
        }
    }

    /// `bpf (...)` or `nftables (...)`.
    pub fn describe(&self) -> &str {
        &self.describe
    }

    /// A just-started container's VIPs, so that its first connection to a service is
    /// balanced (the loop takes over once the task shows RUNNING).
    pub async fn load_at_start(
        &self,
        task: &Task,
        pid: u32,
        directory: &[DiscoveryNetwork],
    ) -> Result<(), DiscoveryError> {
        let rules = vip::rules_for(task, directory);
        match &self.kind {
            Kind::Nft(_) => vip::apply(pid, &vip::ruleset(&rules)).await,
            Kind::Bpf(state) => {
                let mut state = state.lock().await;
                let cookie = state.cookie(pid).await?;
                let mut want = Entries::default();
                want.insert_namespace(cookie, &rules);
                let have = state.read()?.only(|netns| netns == cookie);
                state.apply(&socklb::diff(&want, &have))?;
                state
                    .pending
                    .insert(task.id.clone(), (pid, rules, Instant::now()));
                Ok(())
            }
        }
    }

    /// Makes every running container's VIPs match the directory; `force` rewrites nft
    /// tables even if unchanged (the maps are diffed against the kernel every time).
    /// Errors are logged per container and retried next round.
    pub async fn reconcile(&self, message: &SessionMessage, force: bool) {
        match &self.kind {
            Kind::Nft(applied) => reconcile_nft(&mut *applied.lock().await, message, force).await,
            Kind::Bpf(state) => {
                let mut state = state.lock().await;
                let result = match state.desired(message).await {
                    Ok(want) => state.read().and_then(|have| {
                        let changes = socklb::diff(&want, &have);
                        if !changes.is_empty() {
                            debug!(changes = changes.len(), "VIP maps updated");
                        }
                        state.apply(&changes)
                    }),
                    Err(e) => Err(e),
                };
                if let Err(e) = result {
                    warn!(error = %report(&e), "VIP maps not updated; retrying");
                }
                state.remove_nft_leftovers(message).await;
            }
        }
    }

    /// The map writes a reconcile would make now, with the VIP's network (BPF only: the
    /// nftables tables are rewritten whole every `FULL_RESYNC` rounds instead).
    pub async fn check(
        &self,
        message: &SessionMessage,
    ) -> Result<Vec<(String, MapChange)>, DiscoveryError> {
        let Kind::Bpf(state) = &self.kind else {
            return Ok(Vec::new());
        };
        let mut state = state.lock().await;
        let want = state.desired(message).await?;
        let have = state.read()?;
        Ok(socklb::diff(&want, &have)
            .into_iter()
            .map(|c| {
                let network = want.networks.get(&c.vip()).cloned().unwrap_or_default();
                (network, c)
            })
            .collect())
    }
}

/// The running tasks of `message` that have a container with networks: (task, pid).
fn running(message: &SessionMessage) -> impl Iterator<Item = (&Task, u32)> {
    message.tasks.iter().filter_map(|task| {
        let status = task.status.as_ref()?;
        let running =
            status.state() == TaskState::Running && task.desired_state() == TaskState::Running;
        (running && status.pid != 0 && !task.networks.is_empty()).then_some((task, status.pid))
    })
}

async fn reconcile_nft(
    applied: &mut HashMap<String, (u32, String)>,
    message: &SessionMessage,
    force: bool,
) {
    if force {
        applied.clear();
    }
    let mut seen = HashSet::new();
    for (task, pid) in running(message) {
        seen.insert(task.id.clone());
        let wanted = (pid, vip::ruleset(&vip::rules_for(task, &message.discovery)));
        if applied.get(&task.id) == Some(&wanted) {
            continue;
        }
        match vip::apply(pid, &wanted.1).await {
            Ok(()) => {
                debug!(task.id = %task.id, "VIP rules loaded");
                applied.insert(task.id.clone(), wanted);
            }
            Err(e) => {
                warn!(task.id = %task.id, error = %report(&e), "VIP rules not loaded; retrying")
            }
        }
    }
    applied.retain(|id, _| seen.contains(id));
}

impl BpfState {
    async fn cookie(&mut self, pid: u32) -> Result<u64, DiscoveryError> {
        if let Some(cookie) = self.cookies.get(&pid) {
            return Ok(*cookie);
        }
        let path = PathBuf::from(format!("/proc/{pid}/ns/net"));
        let cookie = socklb::netns_cookie(&path).await.map_err(bpf_error)?;
        self.cookies.insert(pid, cookie);
        Ok(cookie)
    }

    /// Entries for every running container and every pending one still in its grace.
    async fn desired(&mut self, message: &SessionMessage) -> Result<Entries, DiscoveryError> {
        let mut want = Entries::default();
        let mut pids = HashSet::new();
        for (task, pid) in running(message) {
            let cookie = match self.cookie(pid).await {
                Ok(cookie) => cookie,
                // Gone between the report and now: nothing to balance there.
                Err(e) => {
                    debug!(task.id = %task.id, error = %report(&e), "no namespace for the task");
                    continue;
                }
            };
            pids.insert(pid);
            want.insert_namespace(cookie, &vip::rules_for(task, &message.discovery));
        }
        let shown: HashSet<&str> = running(message).map(|(t, _)| t.id.as_str()).collect();
        self.pending.retain(|id, (_, _, since)| {
            !shown.contains(id.as_str()) && since.elapsed() < PENDING_GRACE
        });
        for (pid, rules, _) in self.pending.values() {
            if let Some(cookie) = self.cookies.get(pid) {
                pids.insert(*pid);
                want.insert_namespace(*cookie, rules);
            }
        }
        self.cookies.retain(|pid, _| pids.contains(pid));
        self.cleaned.retain(|pid| pids.contains(pid));
        Ok(want)
    }

    fn read(&self) -> Result<Entries, DiscoveryError> {
        self.lb.read().map_err(bpf_error)
    }

    fn apply(&mut self, changes: &[MapChange]) -> Result<(), DiscoveryError> {
        self.lb.apply(changes).map_err(bpf_error)
    }

    /// A container wired while this node balanced with nftables keeps its NAT table (and
    /// so conntrack) until removed: once per container.
    async fn remove_nft_leftovers(&mut self, message: &SessionMessage) {
        for (task, pid) in running(message) {
            if self.cleaned.contains(&pid) {
                continue;
            }
            match vip::apply(pid, vip::REMOVE).await {
                Ok(()) => {
                    self.cleaned.insert(pid);
                }
                Err(e) => debug!(task.id = %task.id, error = %report(&e), "nft table not removed"),
            }
        }
    }
}

fn bpf_error(source: SockLbError) -> DiscoveryError {
    DiscoveryError::VipMaps { source }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_balancer_that_cannot_load_falls_back_to_nftables_and_says_why() {
        let no_cgroup = VipBalancer::start_on(VipMode::Auto, || Err(SockLbError::NoCgroup2));
        assert!(matches!(no_cgroup.kind, Kind::Nft(_)));
        assert!(
            no_cgroup.describe().starts_with(
                "nftables (fallback: the BPF socket load balancer did not load: no cgroup v2"
            ),
            "{}",
            no_cgroup.describe()
        );
        let missing = VipBalancer::start_on(VipMode::Auto, || Ok("/nonexistent/cgroup".into()));
        assert!(missing
            .describe()
            .contains("cannot open cgroup /nonexistent/cgroup"));
    }

    #[test]
    fn nftables_mode_does_not_try_bpf() {
        let forced = VipBalancer::start_on(VipMode::Nftables, || panic!("BPF was tried"));
        assert_eq!(forced.describe(), "nftables (--vip-balancer nftables)");
    }
}
