//! [`Netlink`] on the in-memory kernel.

use std::net::Ipv4Addr;

use nix::errno::Errno;

use super::FakeNetlink;
use crate::change::Change;
use crate::netlink::{
    Address, FdbEntry, Link, Neighbour, Netlink, NlResult, Ns, Route, VethSpec, VxlanAttrs,
    VxlanSpec,
};

impl Netlink for FakeNetlink {
    async fn list_sandboxes(&self, prefix: &str) -> NlResult<Vec<String>> {
        let st = self.state();
        let names = st.namespaces.keys().filter_map(|ns| match ns {
            Ns::Sandbox(name) if name.starts_with(prefix) => Some(name.clone()),
            _ => None,
        });
        Ok(names.collect())
    }
    async fn list_links(&self, ns: &Ns) -> NlResult<Vec<Link>> {
        self.read(ns, |n| n.links.clone())
    }
    async fn list_addresses(&self, ns: &Ns) -> NlResult<Vec<Address>> {
        self.read(ns, |n| n.addresses.clone())
    }
    async fn list_routes(&self, ns: &Ns) -> NlResult<Vec<Route>> {
        self.read(ns, |n| n.routes.clone())
    }
    async fn list_fdb(&self, ns: &Ns) -> NlResult<Vec<FdbEntry>> {
        self.read(ns, |n| n.fdb.clone())
    }
    async fn list_neighbours(&self, ns: &Ns) -> NlResult<Vec<Neighbour>> {
        self.read(ns, |n| n.neighbours.clone())
    }
    async fn ensure_sandbox(&self, name: &str) -> NlResult<()> {
        self.change(Change::EnsureSandbox { name: name.into() }, |st| {
            if !st.namespaces.contains_key(&Ns::Sandbox(name.into())) {
                let lo = st.new_link("lo", None, 65536, false);
                st.ns_mut(&Ns::Sandbox(name.into())).links.push(lo);
            }
            Ok(())
        })
    }
    async fn delete_sandbox(&self, name: &str) -> NlResult<()> {
        self.change(Change::DeleteSandbox { name: name.into() }, |st| {
            st.remove_ns(&Ns::Sandbox(name.into()));
            Ok(())
        })
    }
    async fn create_bridge(&self, ns: &Ns, name: &str, mtu: u32) -> NlResult<()> {
        let change = Change::CreateBridge {
            ns: ns.clone(),
            name: name.into(),
            mtu,
        };
        self.change(change, |st| {
            let link = st.new_link(name, Some("bridge"), mtu, false);
            st.add_link(ns, link)
        })
    }
    async fn create_vxlan(&self, ns: &Ns, spec: &VxlanSpec) -> NlResult<()> {
        self.change(
            Change::CreateVxlan {
                ns: ns.clone(),
                spec: spec.clone(),
            },
            |st| {
                let mut link = st.new_link(&spec.name, Some("vxlan"), spec.mtu, false);
                let attrs = VxlanAttrs {
                    vni: spec.vni,
                    port: spec.port,
                    local: Some(spec.local),
                    learning: false,
                    proxy: true,
                };
                link.vxlan = Some(attrs);
                st.add_link(ns, link)
            },
        )
    }
    async fn create_veth(&self, ns: &Ns, spec: &VethSpec) -> NlResult<()> {
        let change = Change::CreateVeth {
            ns: ns.clone(),
            spec: spec.clone(),
        };
        self.change(change, |st| {
            let a = st.new_link(&spec.name, Some("veth"), spec.mtu, false);
            let mut b = st.new_link(&spec.peer, Some("veth"), spec.mtu, false);
            b.mac = Some(spec.peer_mac);
            st.peers.insert(a.index, b.index);
            st.peers.insert(b.index, a.index);
            st.add_link(ns, a)?;
            st.add_link(ns, b)
        })
    }
    async fn delete_link(&self, ns: &Ns, name: &str) -> NlResult<()> {
        self.change(
            Change::DeleteLink {
                ns: ns.clone(),
                name: name.into(),
            },
            |st| match st.link(ns, name) {
                Ok(link) => {
                    let index = link.index;
                    st.remove_index(index);
                    Ok(())
                }
                Err(_) => Ok(()),
            },
        )
    }
    async fn move_link_to_netns(&self, ns: &Ns, name: &str, target: &Ns) -> NlResult<()> {
        let change = Change::MoveLinkToNetns {
            ns: ns.clone(),
            name: name.into(),
            target: target.clone(),
        };
        self.change(change, |st| st.move_link(ns, name, target))
    }
    async fn rename_link(&self, ns: &Ns, name: &str, new_name: &str) -> NlResult<()> {
        let change = Change::RenameLink {
            ns: ns.clone(),
            name: name.into(),
            new_name: new_name.into(),
        };
        self.change(change, |st| {
            if st.link(ns, new_name).is_ok() {
                return Err(Errno::EEXIST);
            }
            let link = st.link(ns, name)?;
            if link.up {
                return Err(Errno::EBUSY);
            }
            link.name = new_name.into();
            Ok(())
        })
    }
    async fn set_link_master(&self, ns: &Ns, name: &str, master: &str) -> NlResult<()> {
        let change = Change::SetLinkMaster {
            ns: ns.clone(),
            name: name.into(),
            master: master.into(),
        };
        self.change(change, |st| {
            let index = st.link(ns, master)?.index;
            st.link(ns, name)?.master = Some(index);
            Ok(())
        })
    }
    async fn set_link_mtu(&self, ns: &Ns, name: &str, mtu: u32) -> NlResult<()> {
        let change = Change::SetLinkMtu {
            ns: ns.clone(),
            name: name.into(),
            mtu,
        };
        self.change(change, |st| {
            st.link(ns, name)?.mtu = mtu;
            Ok(())
        })
    }
    async fn set_link_up(&self, ns: &Ns, name: &str) -> NlResult<()> {
        let change = Change::SetLinkUp {
            ns: ns.clone(),
            name: name.into(),
        };
        self.change(change, |st| {
            st.link(ns, name)?.up = true;
            Ok(())
        })
    }
    async fn add_address(&self, ns: &Ns, link: &str, ip: Ipv4Addr, prefix_len: u8) -> NlResult<()> {
        let change = Change::AddAddress {
            ns: ns.clone(),
            link: link.into(),
            ip,
            prefix_len,
        };
        self.change_on_link(change, ns, link, |tables, link_index| {
            let addrs = &mut tables.addresses;
            addrs.retain(|a| !(a.link_index == link_index && a.ip == ip));
            addrs.push(Address {
                link_index,
                ip,
                prefix_len,
            });
        })
    }
    async fn del_address(&self, ns: &Ns, link: &str, ip: Ipv4Addr, prefix_len: u8) -> NlResult<()> {
        let change = Change::DelAddress {
            ns: ns.clone(),
            link: link.into(),
            ip,
            prefix_len,
        };
        self.change_on_link(change, ns, link, |tables, link_index| {
            tables
                .addresses
                .retain(|a| !(a.link_index == link_index && a.ip == ip));
        })
    }
    async fn add_default_route(&self, ns: &Ns, link: &str, gateway: Ipv4Addr) -> NlResult<()> {
        let change = Change::AddDefaultRoute {
            ns: ns.clone(),
            link: link.into(),
            gateway,
        };
        self.change(change, |st| {
            let oif = Some(st.link(ns, link)?.index);
            let routes = &mut st.ns(ns)?.routes;
            routes.retain(|r| r.prefix_len != 0);
            routes.push(Route {
                dst: Ipv4Addr::UNSPECIFIED,
                prefix_len: 0,
                gateway: Some(gateway),
                oif,
            });
            Ok(())
        })
    }
    async fn add_fdb(&self, ns: &Ns, link: &str, mac: [u8; 6], vtep: Ipv4Addr) -> NlResult<()> {
        let change = Change::AddFdb {
            ns: ns.clone(),
            link: link.into(),
            mac,
            vtep,
        };
        self.change_on_link(change, ns, link, |tables, link_index| {
            let fdb = &mut tables.fdb;
            match fdb
                .iter_mut()
                .find(|e| e.link_index == link_index && e.mac == mac)
            {
                Some(entry) => entry.dst = Some(vtep),
                None => fdb.push(FdbEntry {
                    link_index,
                    mac,
                    dst: Some(vtep),
                    learned: false,
                }),
            }
        })
    }
    async fn del_fdb(&self, ns: &Ns, link: &str, mac: [u8; 6]) -> NlResult<()> {
        let change = Change::DelFdb {
            ns: ns.clone(),
            link: link.into(),
            mac,
        };
        self.change_on_link(change, ns, link, |tables, link_index| {
            tables
                .fdb
                .retain(|e| !(e.link_index == link_index && e.mac == mac));
        })
    }
    async fn add_neigh(&self, ns: &Ns, link: &str, ip: Ipv4Addr, mac: [u8; 6]) -> NlResult<()> {
        let change = Change::AddNeigh {
            ns: ns.clone(),
            link: link.into(),
            ip,
            mac,
        };
        self.change_on_link(change, ns, link, |tables, link_index| {
            let neigh = &mut tables.neighbours;
            neigh.retain(|e| !(e.link_index == link_index && e.ip == ip));
            neigh.push(Neighbour {
                link_index,
                ip,
                mac: Some(mac),
                permanent: true,
            });
        })
    }
    async fn del_neigh(&self, ns: &Ns, link: &str, ip: Ipv4Addr) -> NlResult<()> {
        let change = Change::DelNeigh {
            ns: ns.clone(),
            link: link.into(),
            ip,
        };
        self.change_on_link(change, ns, link, |tables, link_index| {
            tables
                .neighbours
                .retain(|e| !(e.link_index == link_index && e.ip == ip));
        })
    }
    fn release_namespaces(&self) {}
}
