//! What objects claim that others of their kind may not share (names, VNIs, subnets,
//! published ports) and which services use which secrets and configs, kept in memory
//! beside the `state` tree. The apply-time checks look their candidates up here instead of
//! decoding every object of the kind, so an apply costs the same with 10 or 10,000 objects.
//!
//! The index only narrows the search: the exact rule (`Object::conflict_with`,
//! `references::service_uses`) still decides on the stored objects it names, so the
//! outcome and the message are the scan's. It is rebuilt from the tree when the store
//! opens and when a snapshot is installed, and updated with every applied entry, under
//! the store's write lock.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use prost::Message;
use swarmr_proto::store_action::{Kind, Target};
use swarmr_proto::{Config, Network, Secret, SecretSpec, Service, StoreAction};

use super::conflicts::{block_of, mask, Block};
use super::object::{key_of, view, Object};
use super::references::FileKind;

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Claim {
    /// A name, per kind.
    Name(&'static str, String),
    Vni(u32),
    /// A service's published port and protocol.
    Port(u32, i32),
    /// A service's spec references this secret or config.
    Uses(FileKind, String),
    /// The routing mesh's network.
    Ingress,
    Subnet(Block),
}

#[derive(Default, Debug)]
pub struct Index {
    /// Claim → ids of the objects making it (every claim but `Subnet`).
    holders: BTreeMap<Claim, BTreeSet<String>>,
    /// Network subnets by (network address, prefix length) → ids.
    subnets: BTreeMap<Block, BTreeSet<String>>,
    /// The claims each object makes, by store key, so an update or delete drops them.
    made: HashMap<String, Vec<Claim>>,
    /// Bumped whenever an object gives up claims: a search that skipped what it held
    /// (a subnet, a VNI) must look again.
    released: u64,
}

fn spec_name(spec: &Option<SecretSpec>) -> String {
    spec.as_ref().map(|s| s.name.clone()).unwrap_or_default()
}

fn network_claims(n: &Network) -> Vec<Claim> {
    let name = n.spec.as_ref().map(|s| s.name.clone()).unwrap_or_default();
    let mut claims = vec![Claim::Name(Network::KIND, name), Claim::Vni(n.vni)];
    claims.extend(block_of(&n.subnet).map(Claim::Subnet));
    if n.is_ingress() {
        claims.push(Claim::Ingress);
    }
    claims
}

fn service_claims(s: &Service) -> Vec<Claim> {
    let name = s.spec.as_ref().map(|s| s.name.clone()).unwrap_or_default();
    let mut claims = vec![Claim::Name(Service::KIND, name)];
    claims.extend(
        s.ports
            .iter()
            .map(|p| Claim::Port(p.published_port, p.protocol)),
    );
    if let Some(container) = s.spec.as_ref().and_then(|s| s.container.as_ref()) {
        for kind in [FileKind::Secret, FileKind::Config] {
            let refs = kind.refs(container).iter();
            claims.extend(refs.map(|r| Claim::Uses(kind, r.id.clone())));
        }
    }
    claims
}

fn claims_of(target: &Target) -> Vec<Claim> {
    match target {
        Target::Network(n) => network_claims(n),
        Target::Service(s) => service_claims(s),
        Target::Secret(s) => vec![Claim::Name(Secret::KIND, spec_name(&s.spec))],
        Target::Config(c) => vec![Claim::Name(Config::KIND, spec_name(&c.spec))],
        Target::Node(_) | Target::Cluster(_) | Target::Task(_) => Vec::new(),
    }
}

/// Objects of the kinds that make claims, decoded from their stored bytes.
fn decode_target(key: &[u8], bytes: &[u8]) -> Option<Target> {
    let kind = key.split(|b| *b == b'/').next()?;
    let target = match kind {
        b"network" => Target::Network(Network::decode(bytes).ok()?),
        b"service" => Target::Service(Service::decode(bytes).ok()?),
        b"secret" => Target::Secret(Secret::decode(bytes).ok()?),
        b"config" => Target::Config(Config::decode(bytes).ok()?),
        _ => return None,
    };
    Some(target)
}

impl Index {
    /// The index of everything stored in `state`.
    pub fn build(state: &sled::Tree) -> Result<Self, sled::Error> {
        let mut index = Self::default();
        for prefix in [Network::KIND, Service::KIND, Secret::KIND, Config::KIND] {
            for item in state.scan_prefix(format!("{prefix}/").as_bytes()) {
                let (key, bytes) = item?;
                // An object that does not decode claims nothing, as the scan skipped it.
                if let Some(target) = decode_target(&key, &bytes) {
                    index.put(&target);
                }
            }
        }
        Ok(index)
    }

    /// Records the actions of an applied entry.
    pub fn apply(&mut self, actions: &[StoreAction]) {
        for action in actions {
            let Some(target) = &action.target else {
                continue;
            };
            match action.kind() {
                Kind::Delete => {
                    let v = view(target);
                    self.remove(&key_of(v.kind, v.id));
                }
                Kind::Create | Kind::Update => self.put(target),
            }
        }
    }

    fn put(&mut self, target: &Target) {
        let v = view(target);
        let key = key_of(v.kind, v.id);
        let mut claims = claims_of(target);
        claims.sort();
        claims.dedup();
        // Most updates (a network's address cursor, a service's tasks) claim the same.
        if self.made.get(&key) == Some(&claims) {
            return;
        }
        self.remove(&key);
        if claims.is_empty() {
            return;
        }
        for claim in &claims {
            let ids = match claim {
                Claim::Subnet(block) => self.subnets.entry(*block).or_default(),
                other => self.holders.entry(other.clone()).or_default(),
            };
            ids.insert(v.id.to_string());
        }
        self.made.insert(key, claims);
    }

    /// Drops the object's claims.
    fn remove(&mut self, key: &str) {
        let Some(claims) = self.made.remove(key) else {
            return;
        };
        self.released += 1;
        let id = key.split_once('/').map_or(key, |(_, id)| id);
        for claim in claims {
            match &claim {
                Claim::Subnet(block) => drop_id(&mut self.subnets, block, id),
                other => drop_id(&mut self.holders, other, id),
            }
        }
    }

    fn ids(&self, claim: &Claim) -> impl Iterator<Item = &String> {
        self.holders.get(claim).into_iter().flatten()
    }

    /// Ids of the objects of the target's kind that may conflict with it: every object
    /// sharing a name, VNI or published port, or holding an overlapping subnet. Sorted,
    /// so the first real conflict is the one a scan in key order finds.
    pub fn candidates(&self, target: &Target) -> BTreeSet<String> {
        let mut ids = BTreeSet::new();
        for claim in claims_of(target) {
            match claim {
                Claim::Subnet(block) => {
                    ids.extend(self.overlapping(block).flat_map(|(_, ids)| ids).cloned())
                }
                Claim::Uses(..) | Claim::Ingress => {}
                other => ids.extend(self.ids(&other).cloned()),
            }
        }
        ids
    }

    /// The held subnets overlapping `block` with their holders: those containing it,
    /// then those inside it (a block may come twice).
    fn overlapping(
        &self,
        (start, len): Block,
    ) -> impl Iterator<Item = (&Block, &BTreeSet<String>)> {
        let containing = (0..=len)
            .filter_map(move |prefix| self.subnets.get_key_value(&(start & mask(prefix), prefix)));
        let end = start | !mask(len);
        containing.chain(self.subnets.range((start, 0)..=(end, 32)))
    }

    /// A held subnet overlapping `block`, if any.
    pub fn first_overlap(&self, block: Block) -> Option<Block> {
        self.overlapping(block).next().map(|(held, _)| *held)
    }

    /// Ids of the services whose spec references the secret or config `id`, sorted.
    pub fn users(&self, kind: FileKind, id: &str) -> impl Iterator<Item = &String> {
        self.ids(&Claim::Uses(kind, id.to_string()))
    }

    /// The network holding `name`, if any.
    pub fn network_named(&self, name: &str) -> Option<&String> {
        self.ids(&Claim::Name(Network::KIND, name.to_string()))
            .next()
    }

    /// The routing mesh's network, if any.
    pub fn ingress_network(&self) -> Option<&String> {
        self.ids(&Claim::Ingress).next()
    }

    pub fn vni_taken(&self, vni: u32) -> bool {
        self.ids(&Claim::Vni(vni)).next().is_some()
    }

    /// Changes whenever an object gave up claims (see the field).
    pub fn released(&self) -> u64 {
        self.released
    }
}

/// Removes `id` from the set under `key`, and the set once empty.
fn drop_id<K: Ord>(map: &mut BTreeMap<K, BTreeSet<String>>, key: &K, id: &str) {
    if let Some(ids) = map.get_mut(key) {
        ids.remove(id);
        if ids.is_empty() {
            map.remove(key);
        }
    }
}
