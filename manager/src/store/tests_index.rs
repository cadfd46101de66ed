//! The indexed conflict checks against the scan they replaced: same answer, same message,
//! for any state (duplicates included) reached by creates, updates and deletes.

use proptest::prelude::*;
use prost::Message;
use swarmr_proto::store_action::{Kind, Target};
use swarmr_proto::{
    Config, ContainerSpec, Network, NetworkSpec, PortConfig, Secret, SecretReference, SecretSpec,
    Service, ServiceSpec, StoreAction,
};

use super::object::{key_of, view};
use super::references::{service_uses, FileKind};
use super::{Index, Object, Refusal, Staged, Store};

/// The scan every apply ran before the index: decode every object of the kind.
fn scan_conflict(store: &Store, kind: Kind, target: &Target) -> Option<Refusal> {
    fn check<T: Object>(store: &Store, obj: &T) -> Option<Refusal> {
        let prefix = format!("{}/", T::KIND);
        store
            .state
            .scan_prefix(prefix.as_bytes())
            .filter_map(|item| T::decode(item.unwrap().1.as_ref()).ok())
            .filter(|other| other.id() != obj.id())
            .find_map(|other| obj.conflict_with(&other))
    }
    fn in_use(store: &Store, kind: FileKind, id: &str, name: &str) -> Option<Refusal> {
        let users: Vec<String> = store
            .state
            .scan_prefix(b"service/")
            .filter_map(|item| Service::decode(item.unwrap().1.as_ref()).ok())
            .filter(|s| service_uses(s, kind, id))
            .map(|s| s.spec.map(|s| s.name).unwrap_or(s.id))
            .collect();
        let reason = || super::references::in_use_message(kind, name, &users);
        (!users.is_empty()).then(|| Refusal::invalid(reason()))
    }
    let name =
        |spec: &Option<SecretSpec>| spec.as_ref().map(|s| s.name.clone()).unwrap_or_default();
    match (kind, target) {
        (Kind::Delete, Target::Secret(s)) => in_use(store, FileKind::Secret, &s.id, &name(&s.spec)),
        (Kind::Delete, Target::Config(c)) => in_use(store, FileKind::Config, &c.id, &name(&c.spec)),
        (Kind::Delete, _) => None,
        (_, Target::Network(n)) => check(store, n),
        (_, Target::Service(s)) => check(store, s)
            .or_else(|| super::references::missing(&Staged::default(), &store.state, s).unwrap()),
        (_, Target::Secret(s)) => check(store, s),
        (_, Target::Config(c)) => check(store, c),
        _ => None,
    }
}

const SUBNETS: &[&str] = &[
    "10.0.0.0/24",
    "10.0.1.0/24",
    "10.0.0.0/16",
    "10.0.0.128/25",
    "10.0.0.5/24",
    "0.0.0.0/0",
    "10.1.0.0/30",
    "",
    "bogus",
];

fn network(id: u8, name: u8, vni: u8, subnet: usize, ingress: bool) -> Target {
    Target::Network(Network {
        id: format!("n{id}"),
        spec: Some(NetworkSpec {
            name: format!("net{name}"),
            ingress,
            ..Default::default()
        }),
        vni: 4096 + u32::from(vni),
        subnet: SUBNETS[subnet % SUBNETS.len()].into(),
        ..Default::default()
    })
}

fn service(
    id: u8,
    name: u8,
    ports: Vec<(u8, bool)>,
    secret: Option<u8>,
    config: Option<u8>,
) -> Target {
    let refs = |prefix: &str, id: Option<u8>| {
        id.map(|i| SecretReference {
            id: format!("{prefix}{i}"),
            name: format!("{prefix}-name{i}"),
            ..Default::default()
        })
        .into_iter()
        .collect()
    };
    let ports = ports
        .into_iter()
        .map(|(p, host)| PortConfig {
            published_port: u32::from(p % 3) * 80,
            protocol: i32::from(p % 2),
            publish_mode: i32::from(host),
            ..Default::default()
        })
        .collect();
    Target::Service(Service {
        id: format!("s{id}"),
        spec: Some(ServiceSpec {
            name: format!("svc{name}"),
            container: Some(ContainerSpec {
                secrets: refs("x", secret),
                configs: refs("c", config),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ports,
        ..Default::default()
    })
}

fn file(secret: bool, id: u8, name: u8) -> Target {
    let spec = Some(SecretSpec {
        name: format!("file{name}"),
        labels: Default::default(),
    });
    if secret {
        Target::Secret(Secret {
            id: format!("x{id}"),
            spec,
            ..Default::default()
        })
    } else {
        Target::Config(Config {
            id: format!("c{id}"),
            spec,
            ..Default::default()
        })
    }
}

fn target() -> impl Strategy<Value = Target> {
    let small = || 0u8..4;
    prop_oneof![
        (
            small(),
            small(),
            small(),
            0usize..SUBNETS.len(),
            any::<bool>()
        )
            .prop_map(|(i, n, v, s, g)| network(i, n, v, s, g)),
        (
            small(),
            small(),
            prop::collection::vec((0u8..6, any::<bool>()), 0..3),
            prop::option::of(small()),
            prop::option::of(small())
        )
            .prop_map(|(i, n, p, x, c)| service(i, n, p, x, c)),
        (any::<bool>(), small(), small()).prop_map(|(s, i, n)| file(s, i, n)),
    ]
}

fn op() -> impl Strategy<Value = (bool, Target)> {
    (prop::bool::weighted(0.2), target())
}

fn encode(target: &Target) -> Vec<u8> {
    match target {
        Target::Network(o) => o.encode_to_vec(),
        Target::Service(o) => o.encode_to_vec(),
        Target::Secret(o) => o.encode_to_vec(),
        Target::Config(o) => o.encode_to_vec(),
        other => panic!("not generated: {other:?}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn indexed_conflicts_equal_the_scan(
        ops in prop::collection::vec(op(), 0..40),
        queries in prop::collection::vec((0u8..3, target()), 1..10),
    ) {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let store = Store::open(&db).unwrap();
        let mut index = Index::default();
        for (delete, target) in &ops {
            let v = view(target);
            let key = key_of(v.kind, v.id);
            let kind = if *delete {
                store.state.remove(key.as_bytes()).unwrap();
                Kind::Delete
            } else {
                store.state.insert(key.as_bytes(), encode(target)).unwrap();
                Kind::Update
            };
            index.apply(&[StoreAction {
                kind: kind as i32,
                expected_version: 0,
                target: Some(target.clone()),
            }]);
        }
        let rebuilt = Index::build(&store.state).unwrap();
        for (kind, query) in &queries {
            let kind = [Kind::Create, Kind::Update, Kind::Delete][usize::from(*kind)];
            let scanned = scan_conflict(&store, kind, query);
            let indexed = store.find_conflict(&Staged::default(), &index, kind, query).unwrap();
            prop_assert_eq!(&indexed, &scanned, "incremental index, {:?} {:?}", kind, query);
            let from_build = store.find_conflict(&Staged::default(), &rebuilt, kind, query).unwrap();
            prop_assert_eq!(&from_build, &scanned, "rebuilt index");
        }
    }
}
