//! An in-memory kernel for tests without root: it keeps namespaces, links
//! (with veth peers), addresses, routes, FDB and neighbour entries, and
//! records every change as a [`Change`].

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::{Mutex, MutexGuard};

use nix::errno::Errno;

use crate::change::Change;
use crate::error::{Cause, Error};
mod netlink;

use crate::netlink::{Address, FdbEntry, Link, Neighbour, NlResult, Ns, Route};

/// One fake namespace.
#[derive(Clone, Debug, Default)]
pub struct FakeNs {
    pub links: Vec<Link>,
    pub addresses: Vec<Address>,
    pub routes: Vec<Route>,
    pub fdb: Vec<FdbEntry>,
    pub neighbours: Vec<Neighbour>,
}

/// Everything the fake kernel holds.
#[derive(Debug, Default)]
pub struct FakeState {
    pub namespaces: BTreeMap<Ns, FakeNs>,
    /// Every change made, in order.
    pub calls: Vec<Change>,
    /// A change whose text contains one of these fails with EIO.
    pub fail_on: Vec<String>,
    /// veth peers, both ways, by (globally unique) link index.
    peers: BTreeMap<u32, u32>,
    next_index: u32,
}

/// A recording fake of [`Netlink`](crate::Netlink).
#[derive(Debug, Default)]
pub struct FakeNetlink {
    state: Mutex<FakeState>,
}

impl FakeNetlink {
    /// A node namespace with `lo` and an underlay `eth0` holding `underlay` with `mtu`.
    pub fn new(underlay: Ipv4Addr, mtu: u32) -> Self {
        let fake = Self::default();
        {
            let mut st = fake.state();
            st.next_index = 1;
            let lo = st.new_link("lo", None, 65536, true);
            let eth0 = st.new_link("eth0", None, mtu, true);
            let index = eth0.index;
            st.namespaces.insert(
                Ns::Node,
                FakeNs {
                    links: vec![lo, eth0],
                    ..FakeNs::default()
                },
            );
            let addr = Address {
                link_index: index,
                ip: underlay,
                prefix_len: 24,
            };
            st.ns_mut(&Ns::Node).addresses.push(addr);
        }
        fake
    }

    /// Locks and returns the state, for inspection and set-up in tests.
    pub fn state(&self) -> MutexGuard<'_, FakeState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A container namespace with a `lo` that is down.
    pub fn add_container(&self, pid: u32) {
        let mut st = self.state();
        let lo = st.new_link("lo", None, 65536, false);
        st.namespaces.insert(
            Ns::Container(pid),
            FakeNs {
                links: vec![lo],
                ..FakeNs::default()
            },
        );
    }

    /// The container's namespace disappears, with the veths in it and their peers.
    pub fn remove_container(&self, pid: u32) {
        self.state().remove_ns(&Ns::Container(pid));
    }

    /// The recorded changes, emptied.
    pub fn take_calls(&self) -> Vec<Change> {
        std::mem::take(&mut self.state().calls)
    }

    /// Records `change`, fails it if asked to, then applies `f` to the state.
    fn change<T>(
        &self,
        change: Change,
        f: impl FnOnce(&mut FakeState) -> Result<T, Errno>,
    ) -> NlResult<T> {
        let mut st = self.state();
        let text = change.to_string();
        let result = if st.fail_on.iter().any(|s| text.contains(s.as_str())) {
            Err(Errno::EIO)
        } else {
            f(&mut st)
        };
        if result.is_ok() {
            st.calls.push(change);
        }
        result.map_err(|errno| fake_error(text, errno))
    }

    /// Like `change`, for an edit of the tables of `ns` about `link` (which must be
    /// there): `edit` gets them and the link's index.
    fn change_on_link(
        &self,
        change: Change,
        ns: &Ns,
        link: &str,
        edit: impl FnOnce(&mut FakeNs, u32),
    ) -> NlResult<()> {
        self.change(change, |st| {
            let index = st.link(ns, link)?.index;
            edit(st.ns(ns)?, index);
            Ok(())
        })
    }

    fn read<T>(&self, ns: &Ns, f: impl FnOnce(&FakeNs) -> T) -> NlResult<T> {
        let st = self.state();
        let fns = st
            .namespaces
            .get(ns)
            .ok_or_else(|| fake_error(format!("read {ns}"), Errno::ENOENT))?;
        Ok(f(fns))
    }
}

fn fake_error(what: String, errno: Errno) -> Error {
    Error::Simulated {
        what,
        source: Cause::Os(errno),
    }
}

impl FakeState {
    fn new_link(&mut self, name: &str, kind: Option<&str>, mtu: u32, up: bool) -> Link {
        let index = self.next_index;
        self.next_index += 1;
        Link {
            index,
            name: name.into(),
            kind: kind.map(Into::into),
            up,
            mtu,
            ..Link::default()
        }
    }

    fn ns_mut(&mut self, ns: &Ns) -> &mut FakeNs {
        self.namespaces.entry(ns.clone()).or_default()
    }

    fn ns(&mut self, ns: &Ns) -> Result<&mut FakeNs, Errno> {
        self.namespaces.get_mut(ns).ok_or(Errno::ENOENT)
    }

    fn link(&mut self, ns: &Ns, name: &str) -> Result<&mut Link, Errno> {
        self.ns(ns)?
            .links
            .iter_mut()
            .find(|l| l.name == name)
            .ok_or(Errno::ENODEV)
    }

    fn add_link(&mut self, ns: &Ns, link: Link) -> Result<(), Errno> {
        let fns = self.ns(ns)?;
        if fns.links.iter().any(|l| l.name == link.name) {
            return Err(Errno::EEXIST);
        }
        fns.links.push(link);
        Ok(())
    }

    /// Removes a link by index wherever it is, with what hangs on it and its veth peer.
    fn remove_index(&mut self, index: u32) {
        for fns in self.namespaces.values_mut() {
            fns.links.retain(|l| l.index != index);
            fns.addresses.retain(|a| a.link_index != index);
            fns.routes.retain(|r| r.oif != Some(index));
            fns.fdb.retain(|e| e.link_index != index);
            fns.neighbours.retain(|e| e.link_index != index);
            for link in fns.links.iter_mut().filter(|l| l.master == Some(index)) {
                link.master = None;
            }
        }
        if let Some(peer) = self.peers.remove(&index) {
            self.peers.remove(&peer);
            self.remove_index(peer);
        }
    }

    fn remove_ns(&mut self, ns: &Ns) {
        let Some(fns) = self.namespaces.remove(ns) else {
            return;
        };
        for link in fns.links {
            if let Some(peer) = self.peers.remove(&link.index) {
                self.peers.remove(&peer);
                self.remove_index(peer);
            }
        }
    }

    fn move_link(&mut self, ns: &Ns, name: &str, target: &Ns) -> Result<(), Errno> {
        self.ns(target)?;
        let fns = self.ns(ns)?;
        let pos = fns
            .links
            .iter()
            .position(|l| l.name == name)
            .ok_or(Errno::ENODEV)?;
        let mut link = fns.links.remove(pos);
        let index = link.index;
        fns.addresses.retain(|a| a.link_index != index);
        fns.routes.retain(|r| r.oif != Some(index));
        (link.up, link.master) = (false, None);
        self.add_link(target, link)
    }
}
