//! Doing: runs planned steps through a [`Netlink`], one call per step.
//! A failed step skips the rest of its scope and is reported.

use std::collections::BTreeSet;

use tracing::Instrument;

use crate::change::{Change, Scope, Step};
use crate::error::error_chain;
use crate::netlink::{Netlink, NlResult};

/// What applying a plan did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Applied {
    /// Steps carried out, as text.
    pub done: Vec<String>,
    /// Failed steps with the error chain.
    pub failed: Vec<(Scope, String)>,
}

/// Runs `steps` in order. After a failure, later steps of the same network
/// (for a network failure) or the same endpoint are skipped.
pub async fn apply<N: Netlink>(nl: &N, steps: &[Step]) -> Applied {
    let mut applied = Applied::default();
    let mut failed_networks = BTreeSet::new();
    let mut failed_endpoints = BTreeSet::new();
    for step in steps {
        let skip = match &step.scope {
            Scope::Node => false,
            Scope::Network { vni, .. } => failed_networks.contains(vni),
            Scope::Endpoint {
                vni, endpoint_id, ..
            } => {
                failed_networks.contains(vni)
                    || failed_endpoints.contains(&(*vni, endpoint_id.clone()))
            }
        };
        if skip {
            continue;
        }
        let span = tracing::info_span!(
            "netdriver.step",
            network.id = step.scope.network_id(),
            vni = step.scope.vni()
        );
        match execute(nl, &step.change).instrument(span).await {
            Ok(()) => {
                tracing::debug!("{step}");
                applied.done.push(step.to_string());
            }
            Err(err) => {
                let reason = error_chain(&err);
                tracing::warn!(step = %step, "step failed: {reason}");
                match &step.scope {
                    Scope::Node => {}
                    Scope::Network { vni, .. } => {
                        failed_networks.insert(*vni);
                    }
                    Scope::Endpoint {
                        vni, endpoint_id, ..
                    } => {
                        failed_endpoints.insert((*vni, endpoint_id.clone()));
                    }
                }
                applied.failed.push((step.scope.clone(), reason));
            }
        }
    }
    applied
}

/// The one [`Netlink`] call for `change`.
pub async fn execute<N: Netlink>(nl: &N, change: &Change) -> NlResult<()> {
    use Change::*;
    match change {
        EnsureSandbox { name } => nl.ensure_sandbox(name).await,
        DeleteSandbox { name } => nl.delete_sandbox(name).await,
        CreateBridge { ns, name, mtu } => nl.create_bridge(ns, name, *mtu).await,
        CreateVxlan { ns, spec } => nl.create_vxlan(ns, spec).await,
        CreateVeth { ns, spec } => nl.create_veth(ns, spec).await,
        DeleteLink { ns, name } => nl.delete_link(ns, name).await,
        MoveLinkToNetns { ns, name, target } => nl.move_link_to_netns(ns, name, target).await,
        RenameLink { ns, name, new_name } => nl.rename_link(ns, name, new_name).await,
        SetLinkMaster { ns, name, master } => nl.set_link_master(ns, name, master).await,
        SetLinkMtu { ns, name, mtu } => nl.set_link_mtu(ns, name, *mtu).await,
        SetLinkUp { ns, name } => nl.set_link_up(ns, name).await,
        AddAddress {
            ns,
            link,
            ip,
            prefix_len,
        } => nl.add_address(ns, link, *ip, *prefix_len).await,
        DelAddress {
            ns,
            link,
            ip,
            prefix_len,
        } => nl.del_address(ns, link, *ip, *prefix_len).await,
        AddDefaultRoute { ns, link, gateway } => nl.add_default_route(ns, link, *gateway).await,
        AddFdb {
            ns,
            link,
            mac,
            vtep,
        } => nl.add_fdb(ns, link, *mac, *vtep).await,
        DelFdb { ns, link, mac } => nl.del_fdb(ns, link, *mac).await,
        AddNeigh { ns, link, ip, mac } => nl.add_neigh(ns, link, *ip, *mac).await,
        DelNeigh { ns, link, ip } => nl.del_neigh(ns, link, *ip).await,
    }
}
