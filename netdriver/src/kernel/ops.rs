//! The [`Netlink`] trait on the kernel: one rtnetlink request per change.

use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsRawFd;

use futures::TryStreamExt;
use rtnetlink::packet_route::link::{InfoData, InfoVeth};
use rtnetlink::packet_route::neighbour::NeighbourFlags;
use rtnetlink::{
    LinkBridge, LinkMessageBuilder, LinkUnspec, LinkVeth, LinkVxlan, RouteMessageBuilder,
};

use super::{list, netns, parse, KernelNetlink};
use crate::error::{Cause, Error};
use crate::netlink::{
    Address, FdbEntry, Link, Neighbour, Netlink, NlResult, Ns, Route, VethSpec, VxlanSpec,
};
use crate::types::fmt_mac;

impl Netlink for KernelNetlink {
    async fn list_sandboxes(&self, prefix: &str) -> NlResult<Vec<String>> {
        netns::list_sandboxes(&self.netns_dir, prefix).map_err(|source| Error::ListSandboxes {
            dir: self.netns_dir.display().to_string(),
            source,
        })
    }

    async fn list_links(&self, ns: &Ns) -> NlResult<Vec<Link>> {
        let h = self.handle(ns).await?;
        list::links(&h).await.map_err(|e| Error::ListLinks {
            ns: ns.clone(),
            source: e.into(),
        })
    }

    async fn list_addresses(&self, ns: &Ns) -> NlResult<Vec<Address>> {
        let h = self.handle(ns).await?;
        list::addresses(&h).await.map_err(|e| Error::ListAddresses {
            ns: ns.clone(),
            source: e.into(),
        })
    }

    async fn list_routes(&self, ns: &Ns) -> NlResult<Vec<Route>> {
        let h = self.handle(ns).await?;
        list::routes(&h).await.map_err(|e| Error::ListRoutes {
            ns: ns.clone(),
            source: e.into(),
        })
    }

    async fn list_fdb(&self, ns: &Ns) -> NlResult<Vec<FdbEntry>> {
        let h = self.handle(ns).await?;
        list::fdb(&h).await.map_err(|e| Error::ListFdb {
            ns: ns.clone(),
            source: e.into(),
        })
    }

    async fn list_neighbours(&self, ns: &Ns) -> NlResult<Vec<Neighbour>> {
        let h = self.handle(ns).await?;
        list::neighbours(&h)
            .await
            .map_err(|e| Error::ListNeighbours {
                ns: ns.clone(),
                source: e.into(),
            })
    }

    async fn ensure_sandbox(&self, name: &str) -> NlResult<()> {
        let dir = self.netns_dir.clone();
        let owned = name.to_string();
        let result = netns::on_thread(move || netns::create_sandbox(&dir, &owned)).await;
        result
            .and_then(|r| r)
            .map_err(|source| Error::EnsureSandbox {
                name: name.into(),
                source,
            })
    }

    async fn delete_sandbox(&self, name: &str) -> NlResult<()> {
        self.lock_handles().remove(&Ns::Sandbox(name.into()));
        netns::remove_sandbox(&self.netns_dir.join(name)).map_err(|source| Error::DeleteSandbox {
            name: name.into(),
            source,
        })
    }

    async fn create_bridge(&self, ns: &Ns, name: &str, mtu: u32) -> NlResult<()> {
        let h = self.handle(ns).await?;
        let msg = LinkBridge::new(name).mtu(mtu).build();
        h.link()
            .add(msg)
            .execute()
            .await
            .map_err(|e| Error::CreateBridge {
                ns: ns.clone(),
                link: name.into(),
                source: e.into(),
            })
    }

    async fn create_vxlan(&self, ns: &Ns, spec: &VxlanSpec) -> NlResult<()> {
        let h = self.handle(ns).await?;
        let msg = LinkVxlan::new(&spec.name, spec.vni)
            .dev(spec.underlay_index)
            .port(spec.port)
            .local(spec.local)
            .learning(false)
            .proxy(true)
            .mtu(spec.mtu)
            .build();
        h.link()
            .add(msg)
            .execute()
            .await
            .map_err(|e| Error::CreateVxlan {
                ns: ns.clone(),
                link: spec.name.clone(),
                source: e.into(),
            })
    }

    async fn create_veth(&self, ns: &Ns, spec: &VethSpec) -> NlResult<()> {
        let h = self.handle(ns).await?;
        let peer_msg = LinkMessageBuilder::<LinkUnspec>::new()
            .name(&spec.peer)
            .mtu(spec.mtu)
            .address(spec.peer_mac.to_vec())
            .build();
        let msg = LinkVeth::new(&spec.name, &spec.peer)
            .mtu(spec.mtu)
            .set_info_data(InfoData::Veth(InfoVeth::Peer(peer_msg)))
            .build();
        h.link()
            .add(msg)
            .execute()
            .await
            .map_err(|e| Error::CreateVeth {
                ns: ns.clone(),
                link: spec.name.clone(),
                source: e.into(),
            })
    }

    async fn delete_link(&self, ns: &Ns, name: &str) -> NlResult<()> {
        let h = self.handle(ns).await?;
        let Some(index) = self.find_index(&h, ns, name).await? else {
            return Ok(());
        };
        match h.link().del(index).execute().await.map_err(Cause::from) {
            Err(source) if !source.is_not_found() => Err(Error::DeleteLink {
                ns: ns.clone(),
                link: name.into(),
                source,
            }),
            _ => Ok(()),
        }
    }

    async fn move_link_to_netns(&self, ns: &Ns, name: &str, target: &Ns) -> NlResult<()> {
        let err = |source| Error::MoveLinkToNetns {
            ns: ns.clone(),
            link: name.into(),
            target: target.clone(),
            source,
        };
        let file = self.ns_file(target).map_err(err)?;
        let fd = file.as_raw_fd();
        self.set_link(ns, name, |b| b.setns_by_fd(fd))
            .await?
            .map_err(err)
    }

    async fn rename_link(&self, ns: &Ns, name: &str, new_name: &str) -> NlResult<()> {
        let result = self.set_link(ns, name, |b| b.name(new_name)).await?;
        result.map_err(|source| Error::RenameLink {
            ns: ns.clone(),
            link: name.into(),
            new_name: new_name.into(),
            source,
        })
    }

    async fn set_link_master(&self, ns: &Ns, name: &str, master: &str) -> NlResult<()> {
        let h = self.handle(ns).await?;
        let master_index = self.index(&h, ns, master).await?;
        let result = self
            .set_link(ns, name, |b| b.controller(master_index))
            .await?;
        result.map_err(|source| Error::SetLinkMaster {
            ns: ns.clone(),
            link: name.into(),
            master: master.into(),
            source,
        })
    }

    async fn set_link_mtu(&self, ns: &Ns, name: &str, mtu: u32) -> NlResult<()> {
        let result = self.set_link(ns, name, |b| b.mtu(mtu)).await?;
        result.map_err(|source| Error::SetLinkMtu {
            ns: ns.clone(),
            link: name.into(),
            source,
        })
    }

    async fn set_link_up(&self, ns: &Ns, name: &str) -> NlResult<()> {
        let result = self.set_link(ns, name, |b| b.up()).await?;
        result.map_err(|source| Error::SetLinkUp {
            ns: ns.clone(),
            link: name.into(),
            source,
        })
    }

    async fn add_address(&self, ns: &Ns, link: &str, ip: Ipv4Addr, prefix_len: u8) -> NlResult<()> {
        let h = self.handle(ns).await?;
        let index = self.index(&h, ns, link).await?;
        let req = h.address().add(index, IpAddr::V4(ip), prefix_len).replace();
        req.execute().await.map_err(|e| Error::AddAddress {
            ns: ns.clone(),
            link: link.into(),
            addr: format!("{ip}/{prefix_len}"),
            source: e.into(),
        })
    }

    async fn del_address(&self, ns: &Ns, link: &str, ip: Ipv4Addr, prefix_len: u8) -> NlResult<()> {
        let h = self.handle(ns).await?;
        let index = self.index(&h, ns, link).await?;
        let err = |e: rtnetlink::Error| Error::DelAddress {
            ns: ns.clone(),
            link: link.into(),
            addr: format!("{ip}/{prefix_len}"),
            source: e.into(),
        };
        let msgs: Vec<_> = h
            .address()
            .get()
            .set_link_index_filter(index)
            .execute()
            .try_collect()
            .await
            .map_err(err)?;
        let wanted = Address {
            link_index: index,
            ip,
            prefix_len,
        };
        for msg in msgs
            .into_iter()
            .filter(|m| parse::address(m).as_ref() == Some(&wanted))
        {
            h.address().del(msg).execute().await.map_err(err)?;
        }
        Ok(())
    }

    async fn add_default_route(&self, ns: &Ns, link: &str, gateway: Ipv4Addr) -> NlResult<()> {
        let h = self.handle(ns).await?;
        let index = self.index(&h, ns, link).await?;
        let msg = RouteMessageBuilder::<Ipv4Addr>::new()
            .gateway(gateway)
            .output_interface(index)
            .build();
        h.route()
            .add(msg)
            .replace()
            .execute()
            .await
            .map_err(|e| Error::AddDefaultRoute {
                ns: ns.clone(),
                link: link.into(),
                gateway,
                source: e.into(),
            })
    }

    async fn add_fdb(&self, ns: &Ns, link: &str, mac: [u8; 6], vtep: Ipv4Addr) -> NlResult<()> {
        let h = self.handle(ns).await?;
        let index = self.index(&h, ns, link).await?;
        // `bridge fdb replace MAC dev vxlan0 dst VTEP self permanent`.
        let req = h
            .neighbours()
            .add_bridge(index, &mac)
            .flags(NeighbourFlags::Own);
        let req = req.destination(IpAddr::V4(vtep)).replace();
        req.execute().await.map_err(|e| Error::AddFdb {
            ns: ns.clone(),
            link: link.into(),
            mac: fmt_mac(&mac),
            source: e.into(),
        })
    }

    async fn del_fdb(&self, ns: &Ns, link: &str, mac: [u8; 6]) -> NlResult<()> {
        let h = self.handle(ns).await?;
        let index = self.index(&h, ns, link).await?;
        // `bridge fdb del MAC dev vxlan0 self`, then `... master`: the VXLAN device's own
        // entry and the one the bridge learned on that port, whichever exist.
        for flags in [NeighbourFlags::Own, NeighbourFlags::Controller] {
            let deleted = h
                .neighbours()
                .del(parse::fdb_key(index, mac, flags))
                .execute()
                .await
                .map_err(Cause::from);
            if let Err(source) = deleted {
                if !source.is_not_found() {
                    return Err(Error::DelFdb {
                        ns: ns.clone(),
                        link: link.into(),
                        mac: fmt_mac(&mac),
                        source,
                    });
                }
            }
        }
        Ok(())
    }

    async fn add_neigh(&self, ns: &Ns, link: &str, ip: Ipv4Addr, mac: [u8; 6]) -> NlResult<()> {
        let h = self.handle(ns).await?;
        let index = self.index(&h, ns, link).await?;
        let req = h
            .neighbours()
            .add(index, IpAddr::V4(ip))
            .link_layer_address(&mac)
            .replace();
        req.execute().await.map_err(|e| Error::AddNeigh {
            ns: ns.clone(),
            link: link.into(),
            ip,
            source: e.into(),
        })
    }

    async fn del_neigh(&self, ns: &Ns, link: &str, ip: Ipv4Addr) -> NlResult<()> {
        let h = self.handle(ns).await?;
        let index = self.index(&h, ns, link).await?;
        match h
            .neighbours()
            .del(parse::neighbour_key(index, ip))
            .execute()
            .await
            .map_err(Cause::from)
        {
            Err(source) if !source.is_not_found() => Err(Error::DelNeigh {
                ns: ns.clone(),
                link: link.into(),
                ip,
                source,
            }),
            _ => Ok(()),
        }
    }

    fn release_namespaces(&self) {
        self.lock_handles().retain(|ns, _| *ns == Ns::Node);
    }
}
