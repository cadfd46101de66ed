//! Netlink messages to the driver's observation types.

use std::net::{IpAddr, Ipv4Addr};

use rtnetlink::packet_route::address::{AddressAttribute, AddressMessage};
use rtnetlink::packet_route::link::{
    InfoData, InfoVxlan, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use rtnetlink::packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState,
};
use rtnetlink::packet_route::route::{RouteAddress, RouteAttribute, RouteMessage};
use rtnetlink::packet_route::AddressFamily;

use crate::netlink::{Address, FdbEntry, Link, Neighbour, Route, VxlanAttrs};

/// The main routing table.
const RT_TABLE_MAIN: u32 = 254;

pub(crate) fn link(msg: &LinkMessage) -> Link {
    let mut link = Link {
        index: msg.header.index,
        up: msg.header.flags.contains(LinkFlags::Up),
        ..Link::default()
    };
    for attr in &msg.attributes {
        match attr {
            LinkAttribute::IfName(name) => link.name = name.clone(),
            LinkAttribute::Mtu(mtu) => link.mtu = *mtu,
            LinkAttribute::Address(mac) => link.mac = mac6(mac),
            LinkAttribute::Controller(master) => link.master = Some(*master),
            LinkAttribute::LinkInfo(infos) => link_info(&mut link, infos),
            _ => {}
        }
    }
    link
}

fn link_info(link: &mut Link, infos: &[LinkInfo]) {
    for info in infos {
        match info {
            LinkInfo::Kind(kind) => link.kind = Some(kind.to_string()),
            LinkInfo::Data(InfoData::Vxlan(attrs)) => link.vxlan = Some(vxlan(attrs)),
            _ => {}
        }
    }
}

fn vxlan(attrs: &[InfoVxlan]) -> VxlanAttrs {
    let mut out = VxlanAttrs::default();
    for attr in attrs {
        match attr {
            InfoVxlan::Id(vni) => out.vni = *vni,
            InfoVxlan::Port(port) => out.port = *port,
            InfoVxlan::Local(local) => out.local = Some(*local),
            InfoVxlan::Learning(on) => out.learning = *on,
            InfoVxlan::Proxy(on) => out.proxy = *on,
            _ => {}
        }
    }
    out
}

fn mac6(bytes: &[u8]) -> Option<[u8; 6]> {
    bytes.try_into().ok()
}

pub(crate) fn address(msg: &AddressMessage) -> Option<Address> {
    if msg.header.family != AddressFamily::Inet {
        return None;
    }
    let ip = msg.attributes.iter().find_map(|a| match a {
        AddressAttribute::Local(IpAddr::V4(ip)) => Some(*ip),
        _ => None,
    });
    let ip = ip.or_else(|| {
        msg.attributes.iter().find_map(|a| match a {
            AddressAttribute::Address(IpAddr::V4(ip)) => Some(*ip),
            _ => None,
        })
    })?;
    Some(Address {
        link_index: msg.header.index,
        ip,
        prefix_len: msg.header.prefix_len,
    })
}

pub(crate) fn route(msg: &RouteMessage) -> Option<Route> {
    let mut table = u32::from(msg.header.table);
    let mut route = Route {
        dst: Ipv4Addr::UNSPECIFIED,
        prefix_len: msg.header.destination_prefix_length,
        gateway: None,
        oif: None,
    };
    for attr in &msg.attributes {
        match attr {
            RouteAttribute::Destination(RouteAddress::Inet(ip)) => route.dst = *ip,
            RouteAttribute::Gateway(RouteAddress::Inet(ip)) => route.gateway = Some(*ip),
            RouteAttribute::Oif(index) => route.oif = Some(*index),
            RouteAttribute::Table(id) => table = *id,
            _ => {}
        }
    }
    (msg.header.address_family == AddressFamily::Inet && table == RT_TABLE_MAIN).then_some(route)
}

pub(crate) fn fdb(msg: &NeighbourMessage) -> Option<FdbEntry> {
    if msg.header.family != AddressFamily::Bridge {
        return None;
    }
    let mut mac = None;
    let mut dst = None;
    for attr in &msg.attributes {
        match attr {
            NeighbourAttribute::LinkLayerAddress(lla) => mac = mac6(lla),
            NeighbourAttribute::Destination(addr) => dst = ipv4(addr),
            _ => {}
        }
    }
    let learned = msg.header.flags.contains(NeighbourFlags::Controller)
        && !matches!(
            msg.header.state,
            NeighbourState::Permanent | NeighbourState::Noarp
        );
    Some(FdbEntry {
        link_index: msg.header.ifindex,
        mac: mac?,
        dst,
        learned,
    })
}

/// Bridge-family entries carry the VTEP as raw bytes.
fn ipv4(addr: &NeighbourAddress) -> Option<Ipv4Addr> {
    match addr {
        NeighbourAddress::Inet(ip) => Some(*ip),
        NeighbourAddress::Other(bytes) => <[u8; 4]>::try_from(bytes.as_slice())
            .ok()
            .map(Ipv4Addr::from),
        _ => None,
    }
}

pub(crate) fn neighbour(msg: &NeighbourMessage) -> Option<Neighbour> {
    if msg.header.family != AddressFamily::Inet {
        return None;
    }
    let mut ip = None;
    let mut mac = None;
    for attr in &msg.attributes {
        match attr {
            NeighbourAttribute::Destination(NeighbourAddress::Inet(dst)) => ip = Some(*dst),
            NeighbourAttribute::LinkLayerAddress(lla) => mac = mac6(lla),
            _ => {}
        }
    }
    Some(Neighbour {
        link_index: msg.header.ifindex,
        ip: ip?,
        mac,
        permanent: msg.header.state == NeighbourState::Permanent,
    })
}

/// The key of the FDB entry of `mac` on link `index` (all its VTEPs), for deletion.
pub(crate) fn fdb_key(index: u32, mac: [u8; 6], flags: NeighbourFlags) -> NeighbourMessage {
    let mut msg = NeighbourMessage::default();
    msg.header.family = AddressFamily::Bridge;
    msg.header.ifindex = index;
    msg.header.flags = flags;
    msg.attributes
        .push(NeighbourAttribute::LinkLayerAddress(mac.to_vec()));
    msg
}

/// The key of the neighbour entry of `ip` on link `index`, for deletion.
pub(crate) fn neighbour_key(index: u32, ip: Ipv4Addr) -> NeighbourMessage {
    let mut msg = NeighbourMessage::default();
    msg.header.family = AddressFamily::Inet;
    msg.header.ifindex = index;
    msg.attributes
        .push(NeighbourAttribute::Destination(NeighbourAddress::Inet(ip)));
    msg
}
