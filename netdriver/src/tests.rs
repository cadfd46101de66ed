//! Reconcile against the in-memory kernel: no root needed.

use std::net::Ipv4Addr;

use crate::fake::FakeNetlink;
use crate::{
    mac_for_ip, Change, Driver, HostDesired, LocalEndpoint, NetworkDesired, Ns, RemoteEndpoint,
};

const NODE: &str = "node0000aaaa";
const UNDERLAY: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);

fn ip(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 0, 1, last)
}

fn local(id: &str, pid: u32, last: u8) -> LocalEndpoint {
    LocalEndpoint {
        endpoint_id: id.into(),
        container_pid: pid,
        ifname: "eth0".into(),
        ip: ip(last),
        mac: mac_for_ip(ip(last)),
    }
}

fn remote(last: u8, vtep: u8) -> RemoteEndpoint {
    RemoteEndpoint {
        ip: ip(last),
        mac: mac_for_ip(ip(last)),
        vtep: Ipv4Addr::new(192, 0, 2, vtep),
    }
}

fn network(vni: u32) -> NetworkDesired {
    NetworkDesired {
        network_id: format!("net{vni}"),
        vni,
        subnet: "10.0.1.0/24".parse().unwrap(),
        gateway: ip(1),
        mtu: None,
        local_endpoints: vec![local("taskaaaa0001", 101, 3), local("taskbbbb0002", 102, 4)],
        remote_endpoints: vec![remote(5, 2), remote(6, 3)],
    }
}

fn host(networks: Vec<NetworkDesired>) -> HostDesired {
    HostDesired {
        node_short_id: NODE.into(),
        underlay_addr: UNDERLAY,
        networks,
        egress: None,
    }
}

fn driver() -> Driver<FakeNetlink> {
    let fake = FakeNetlink::new(UNDERLAY, 1500);
    fake.add_container(101);
    fake.add_container(102);
    Driver::new(fake)
}

fn sandbox() -> Ns {
    Ns::Sandbox(format!("swr-{NODE}-4096"))
}

fn position(calls: &[Change], pred: impl Fn(&Change) -> bool) -> usize {
    calls.iter().position(pred).expect("change not found")
}

#[tokio::test]
async fn fresh_host_is_wired_in_order() {
    let d = driver();
    let report = d.reconcile(&host(vec![network(4096)])).await.unwrap();
    assert!(report.is_ok(), "{report:?}");
    let calls = d.netlink().take_calls();
    assert_eq!(
        calls[0],
        Change::EnsureSandbox {
            name: format!("swr-{NODE}-4096")
        }
    );
    let Change::CreateVxlan { ns, spec } =
        &calls[position(&calls, |c| matches!(c, Change::CreateVxlan { .. }))]
    else {
        unreachable!()
    };
    assert_eq!(
        (ns, spec.vni, spec.port, spec.local, spec.mtu),
        (&Ns::Node, 4096, 4789, UNDERLAY, 1450)
    );
    let neigh = position(&calls, |c| matches!(c, Change::AddNeigh { .. }));
    let fdb = position(&calls, |c| matches!(c, Change::AddFdb { .. }));
    let route = position(&calls, |c| matches!(c, Change::AddDefaultRoute { .. }));
    assert!(
        neigh < fdb && fdb < route,
        "neighbours, then FDB, then routes: {calls:#?}"
    );

    let st = d.netlink().state();
    let c = &st.namespaces[&Ns::Container(101)];
    let eth0 = c.links.iter().find(|l| l.name == "eth0").unwrap();
    assert_eq!(
        (eth0.mac, eth0.mtu, eth0.up),
        (Some(mac_for_ip(ip(3))), 1450, true)
    );
    assert_eq!(c.addresses[0].ip, ip(3));
    assert_eq!(c.routes[0].gateway, Some(ip(1)));
    assert!(c.links.iter().find(|l| l.name == "lo").unwrap().up);
    let sb = &st.namespaces[&sandbox()];
    assert_eq!(sb.fdb.len(), 2);
    assert_eq!(sb.neighbours.len(), 2);
    let vxlan = sb.links.iter().find(|l| l.name == "vxlan0").unwrap();
    let br0 = sb.links.iter().find(|l| l.name == "br0").unwrap();
    assert_eq!(vxlan.master, Some(br0.index));
    assert!(
        st.namespaces[&Ns::Node]
            .links
            .iter()
            .all(|l| l.kind.is_none()),
        "temp vxlan left in node ns"
    );
}

#[tokio::test]
async fn same_input_twice_changes_nothing() {
    let d = driver();
    let desired = host(vec![network(4096), network(4097)]);
    assert!(!d.reconcile(&desired).await.unwrap().changes.is_empty());
    let again = d.reconcile(&desired).await.unwrap();
    assert!(again.is_ok(), "{again:?}");
    assert_eq!(again.changes, Vec::<String>::new());
}

#[tokio::test]
async fn scale_down_deletes_only_what_went() {
    let d = driver();
    let mut desired = host(vec![network(4096)]);
    d.reconcile(&desired).await.unwrap();
    d.netlink().take_calls();
    desired.networks[0].remote_endpoints.remove(0);
    desired.networks[0].local_endpoints.remove(1);
    d.reconcile(&desired).await.unwrap();
    let calls = d.netlink().take_calls();
    let sb = sandbox();
    let link = "vxlan0".to_string();
    assert_eq!(
        calls,
        vec![
            Change::DelNeigh {
                ns: sb.clone(),
                link: link.clone(),
                ip: ip(5)
            },
            Change::DelFdb {
                ns: sb.clone(),
                link,
                mac: mac_for_ip(ip(5))
            },
            Change::DeleteLink {
                ns: sb,
                name: "ve-taskbbbb0002".into()
            },
        ]
    );
    let st = d.netlink().state();
    assert!(st.namespaces[&Ns::Container(102)]
        .links
        .iter()
        .all(|l| l.name != "eth0"));
}

#[tokio::test]
async fn restarted_container_is_wired_again() {
    let d = driver();
    let mut desired = host(vec![network(4096)]);
    d.reconcile(&desired).await.unwrap();
    d.netlink().take_calls();
    d.netlink().remove_container(101);
    d.netlink().add_container(201);
    desired.networks[0].local_endpoints[0].container_pid = 201;
    let report = d.reconcile(&desired).await.unwrap();
    assert!(report.is_ok(), "{report:?}");
    let calls = d.netlink().take_calls();
    assert!(calls.contains(&Change::MoveLinkToNetns {
        ns: sandbox(),
        name: crate::names::veth_peer("taskaaaa0001", 4096),
        target: Ns::Container(201),
    }));
    assert!(calls
        .iter()
        .all(|c| !matches!(c, Change::AddFdb { .. } | Change::CreateBridge { .. })));
    assert!(d.reconcile(&desired).await.unwrap().changes.is_empty());
}

#[tokio::test]
async fn changed_container_interface_is_rewired() {
    let d = driver();
    let desired = host(vec![network(4096)]);
    d.reconcile(&desired).await.unwrap();
    d.netlink().take_calls();
    d.netlink()
        .state()
        .namespaces
        .get_mut(&Ns::Container(102))
        .unwrap()
        .addresses
        .clear();
    d.reconcile(&desired).await.unwrap();
    let calls = d.netlink().take_calls();
    assert_eq!(
        calls[0],
        Change::DeleteLink {
            ns: Ns::Container(102),
            name: "eth0".into()
        }
    );
    assert!(calls.iter().all(|c| !c.to_string().contains("pid 101")));
}

#[tokio::test]
async fn vxlan_mismatch_rebuilds_it_and_its_entries() {
    let d = driver();
    let mut desired = host(vec![network(4096)]);
    d.reconcile(&desired).await.unwrap();
    d.netlink().take_calls();
    desired.networks[0].mtu = Some(1400);
    let report = d.reconcile(&desired).await.unwrap();
    assert!(
        report
            .changes
            .iter()
            .any(|c| c.starts_with("delete_link vxlan0") && c.ends_with("(mtu: 1450 vs 1400)")),
        "{:?}",
        report.changes
    );
    let calls = d.netlink().take_calls();
    assert_eq!(
        calls
            .iter()
            .filter(|c| matches!(c, Change::AddFdb { .. }))
            .count(),
        2
    );
    assert!(d.reconcile(&desired).await.unwrap().changes.is_empty());
}

#[tokio::test]
async fn gone_network_loses_its_sandbox_and_other_nodes_are_untouched() {
    let d = driver();
    d.netlink().state().namespaces.insert(
        Ns::Sandbox("swr-othernode00-4096".into()),
        Default::default(),
    );
    d.reconcile(&host(vec![network(4096), network(4097)]))
        .await
        .unwrap();
    d.netlink().take_calls();
    d.reconcile(&host(vec![network(4097)])).await.unwrap();
    let calls = d.netlink().take_calls();
    assert_eq!(
        calls[0],
        Change::DeleteSandbox {
            name: format!("swr-{NODE}-4096")
        }
    );
    assert!(calls.iter().all(|c| !c.to_string().contains("othernode")));
    let removed = d.teardown(NODE).await.unwrap();
    assert_eq!(removed, vec![format!("swr-{NODE}-4097")]);
    assert!(d
        .netlink()
        .state()
        .namespaces
        .contains_key(&Ns::Sandbox("swr-othernode00-4096".into())));
}

#[tokio::test]
async fn one_failing_endpoint_does_not_stop_the_others() {
    let d = driver();
    d.netlink()
        .state()
        .fail_on
        .push("to container netns of pid 101".into());
    let report = d.reconcile(&host(vec![network(4096)])).await.unwrap();
    assert_eq!(report.failed_endpoints.len(), 1, "{report:?}");
    assert_eq!(report.failed_endpoints[0].0, "taskaaaa0001");
    assert!(report.failed_endpoints[0].1.contains("net4096"));
    let st = d.netlink().state();
    assert!(st.namespaces[&Ns::Container(102)]
        .links
        .iter()
        .any(|l| l.name == "eth0"));
}

#[tokio::test]
async fn failing_network_fails_its_endpoints_only() {
    let d = driver();
    d.netlink()
        .state()
        .fail_on
        .push("create_bridge br0 mtu 1450 in sandbox swr-node0000aaaa-4097".into());
    let mut other = network(4097);
    other.local_endpoints = vec![LocalEndpoint {
        ifname: "eth1".into(),
        ..local("taskcccc0003", 101, 7)
    }];
    let report = d
        .reconcile(&host(vec![network(4096), other]))
        .await
        .unwrap();
    assert_eq!(report.failed_networks.len(), 1, "{report:?}");
    assert_eq!(report.failed_endpoints.len(), 1);
    assert_eq!(report.failed_endpoints[0].0, "taskcccc0003");
    let st = d.netlink().state();
    assert!(st.namespaces[&Ns::Container(101)]
        .links
        .iter()
        .any(|l| l.name == "eth0"));
}

#[tokio::test]
async fn vanished_container_is_reported() {
    let d = driver();
    d.netlink().remove_container(102);
    let report = d.reconcile(&host(vec![network(4096)])).await.unwrap();
    assert_eq!(report.failed_endpoints.len(), 1, "{report:?}");
    assert_eq!(report.failed_endpoints[0].0, "taskbbbb0002");
}

#[tokio::test]
async fn second_network_gets_no_default_route() {
    let d = driver();
    let mut second = network(4097);
    second.gateway = Ipv4Addr::new(10, 0, 2, 1);
    second.subnet = "10.0.2.0/24".parse().unwrap();
    second.local_endpoints = vec![LocalEndpoint {
        ifname: "eth1".into(),
        ip: Ipv4Addr::new(10, 0, 2, 3),
        ..local("taskaaaa0001", 101, 3)
    }];
    second.remote_endpoints.clear();
    d.reconcile(&host(vec![network(4096), second]))
        .await
        .unwrap();
    let st = d.netlink().state();
    let c = &st.namespaces[&Ns::Container(101)];
    assert!(c.links.iter().any(|l| l.name == "eth1"));
    assert_eq!(c.routes.len(), 1);
    assert_eq!(c.routes[0].gateway, Some(ip(1)));
}

#[tokio::test]
async fn missing_underlay_is_an_error() {
    let d = driver();
    let mut desired = host(vec![network(4096)]);
    desired.underlay_addr = Ipv4Addr::new(192, 0, 2, 99);
    assert!(matches!(
        d.reconcile(&desired).await,
        Err(crate::Error::FindUnderlay { .. })
    ));
}

/// The worker spawns reconciles on a multi-threaded runtime and shares the driver.
#[allow(dead_code)]
fn kernel_driver_is_send_and_sync(d: &crate::Driver<crate::KernelNetlink>, h: &HostDesired) {
    fn send<T: Send>(_: T) {}
    fn sync<T: Sync>(_: &T) {}
    sync(d);
    send(d.reconcile(h));
    send(d.teardown("node"));
}

fn with_egress(mut desired: HostDesired) -> HostDesired {
    let endpoint = |id: &str, pid, last| crate::EgressEndpoint {
        endpoint_id: id.into(),
        container_pid: pid,
        ifname: "eth1".into(),
        ip: Ipv4Addr::new(172, 18, 0, last),
    };
    desired.egress = Some(crate::EgressDesired {
        bridge: "swr_gwbridge".into(),
        gateway: Ipv4Addr::new(172, 18, 0, 1),
        prefix_len: 16,
        endpoints: vec![
            endpoint("taskaaaa0001", 101, 2),
            endpoint("taskbbbb0002", 102, 3),
        ],
    });
    desired
}

#[tokio::test]
async fn egress_takes_the_default_route_and_is_idempotent() {
    let d = driver();
    let desired = with_egress(host(vec![network(4096)]));
    let report = d.reconcile(&desired).await.unwrap();
    assert!(report.is_ok(), "{report:?}");
    {
        let st = d.netlink().state();
        let node = &st.namespaces[&Ns::Node];
        let bridge = node
            .links
            .iter()
            .find(|l| l.name == "swr_gwbridge")
            .expect("bridge");
        let host_end = node
            .links
            .iter()
            .find(|l| l.name == "vg-taskaaaa0001")
            .expect("veth");
        assert_eq!(host_end.master, Some(bridge.index));
        let c = &st.namespaces[&Ns::Container(101)];
        let eth1 = c.links.iter().find(|l| l.name == "eth1").expect("eth1");
        assert!(c
            .addresses
            .iter()
            .any(|a| a.link_index == eth1.index && a.ip == Ipv4Addr::new(172, 18, 0, 2)));
        let defaults: Vec<_> = c.routes.iter().filter(|r| r.prefix_len == 0).collect();
        assert_eq!(defaults.len(), 1, "{defaults:?}");
        assert_eq!(defaults[0].gateway, Some(Ipv4Addr::new(172, 18, 0, 1)));
    }
    d.netlink().take_calls();
    let again = d.reconcile(&desired).await.unwrap();
    assert!(
        again.changes.is_empty(),
        "second pass changed {:?}",
        again.changes
    );
}

#[tokio::test]
async fn a_gone_egress_endpoint_loses_its_host_end() {
    let d = driver();
    let mut desired = with_egress(host(vec![network(4096)]));
    d.reconcile(&desired).await.unwrap();
    if let Some(egress) = desired.egress.as_mut() {
        egress.endpoints.truncate(1);
    }
    d.reconcile(&desired).await.unwrap();
    let st = d.netlink().state();
    let names: Vec<&str> = st.namespaces[&Ns::Node]
        .links
        .iter()
        .map(|l| l.name.as_str())
        .collect();
    assert!(names.contains(&"vg-taskaaaa0001"), "{names:?}");
    assert!(!names.contains(&"vg-taskbbbb0002"), "{names:?}");
}
