//! Dumps of one namespace, parsed into observation types.

use std::net::Ipv4Addr;

use futures::TryStreamExt;
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::{Error, Handle, RouteMessageBuilder};

use super::parse;
use crate::netlink::{Address, FdbEntry, Link, Neighbour, Route};

pub(super) async fn links(h: &Handle) -> Result<Vec<Link>, Error> {
    let msgs: Vec<_> = h.link().get().execute().try_collect().await?;
    Ok(msgs.iter().map(parse::link).collect())
}

pub(super) async fn addresses(h: &Handle) -> Result<Vec<Address>, Error> {
    let msgs: Vec<_> = h.address().get().execute().try_collect().await?;
    Ok(msgs.iter().filter_map(parse::address).collect())
}

pub(super) async fn routes(h: &Handle) -> Result<Vec<Route>, Error> {
    let query = RouteMessageBuilder::<Ipv4Addr>::new().build();
    let msgs: Vec<_> = h.route().get(query).execute().try_collect().await?;
    Ok(msgs.iter().filter_map(parse::route).collect())
}

/// Every bridge-family entry; the caller filters by link.
pub(super) async fn fdb(h: &Handle) -> Result<Vec<FdbEntry>, Error> {
    let req = h
        .neighbours()
        .get()
        .set_address_family(AddressFamily::Bridge);
    let msgs: Vec<_> = req.execute().try_collect().await?;
    Ok(msgs.iter().filter_map(parse::fdb).collect())
}

pub(super) async fn neighbours(h: &Handle) -> Result<Vec<Neighbour>, Error> {
    let req = h.neighbours().get().set_address_family(AddressFamily::Inet);
    let msgs: Vec<_> = req.execute().try_collect().await?;
    Ok(msgs.iter().filter_map(parse::neighbour).collect())
}
