//! [`KernelNetlink`]: the [`Netlink`] trait on the real kernel, through
//! rtnetlink, with one cached connection per namespace.

mod list;
mod netns;
mod ops;
mod parse;

pub(crate) use netns::on_thread;

use std::collections::HashMap;
use std::fs::File;
use std::path::PathBuf;
use std::sync::Mutex;

use futures::TryStreamExt;
use rtnetlink::{Handle, LinkMessageBuilder, LinkUnspec};

use crate::error::{Cause, Error};
use crate::netlink::{NlResult, Ns};

/// Where `ip netns` keeps its bind mounts.
pub const NETNS_DIR: &str = "/run/netns";

/// The kernel. The node namespace is the one of the thread that calls [`KernelNetlink::new`].
#[derive(Debug)]
pub struct KernelNetlink {
    netns_dir: PathBuf,
    node_ns: File,
    handles: Mutex<HashMap<Ns, Handle>>,
}

impl KernelNetlink {
    /// Sandboxes go under `/run/netns`; the node namespace is the caller's.
    pub fn new() -> Result<Self, Error> {
        let tid = nix::unistd::gettid();
        let node_ns = File::open(format!("/proc/self/task/{tid}/ns/net")).map_err(|e| {
            Error::ConnectNetlink {
                ns: Ns::Node,
                source: e.into(),
            }
        })?;
        Ok(Self {
            netns_dir: PathBuf::from(NETNS_DIR),
            node_ns,
            handles: Mutex::new(HashMap::new()),
        })
    }

    fn ns_file(&self, ns: &Ns) -> Result<File, Cause> {
        Ok(match ns {
            Ns::Node => self.node_ns.try_clone()?,
            Ns::Sandbox(name) => File::open(self.netns_dir.join(name))?,
            Ns::Container(pid) => File::open(format!("/proc/{pid}/ns/net"))?,
        })
    }

    /// The cached connection into `ns`, opened on first use.
    async fn handle(&self, ns: &Ns) -> NlResult<Handle> {
        if let Some(handle) = self.lock_handles().get(ns) {
            return Ok(handle.clone());
        }
        let connect_err = |source| Error::ConnectNetlink {
            ns: ns.clone(),
            source,
        };
        let file = self.ns_file(ns).map_err(connect_err)?;
        let handle = netns::connect_in(file).await.map_err(connect_err)?;
        self.lock_handles().insert(ns.clone(), handle.clone());
        Ok(handle)
    }

    fn lock_handles(&self) -> std::sync::MutexGuard<'_, HashMap<Ns, Handle>> {
        self.handles.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The index of link `name` in `ns`, `None` if there is none.
    async fn find_index(&self, h: &Handle, ns: &Ns, name: &str) -> NlResult<Option<u32>> {
        let mut links = h.link().get().match_name(name).execute();
        match links.try_next().await {
            Ok(msg) => Ok(msg.map(|m| m.header.index)),
            Err(err) => {
                let source = Cause::from(err);
                if source.is_not_found() {
                    return Ok(None);
                }
                Err(Error::FindLink {
                    ns: ns.clone(),
                    link: name.into(),
                    source,
                })
            }
        }
    }

    /// The index of link `name` in `ns`; a missing link is an error.
    async fn index(&self, h: &Handle, ns: &Ns, name: &str) -> NlResult<u32> {
        self.find_index(h, ns, name)
            .await?
            .ok_or_else(|| Error::FindLink {
                ns: ns.clone(),
                link: name.into(),
                source: Cause::Os(nix::errno::Errno::ENODEV),
            })
    }

    /// One `RTM_SETLINK` on link `name`, built by `f` from its index.
    async fn set_link(
        &self,
        ns: &Ns,
        name: &str,
        f: impl FnOnce(LinkMessageBuilder<LinkUnspec>) -> LinkMessageBuilder<LinkUnspec>,
    ) -> NlResult<Result<(), Cause>> {
        let h = self.handle(ns).await?;
        let index = self.index(&h, ns, name).await?;
        let msg = f(LinkUnspec::new_with_index(index)).build();
        Ok(h.link().set(msg).execute().await.map_err(Cause::from))
    }
}
