//! What the store needs to know about each kind of object: its key and its `Meta`.

use std::sync::Arc;

use swarmr_proto::{
    store_action::Target, Cluster, Config, Meta, Network, Node, Secret, Service, Task,
};

use super::apply::Refusal;
use super::cache::TaskCache;

/// A kind of object kept in the store, encoded as protobuf under `<KIND>/<id>`.
pub trait Object: prost::Message + Default + Clone {
    const KIND: &'static str;
    fn id(&self) -> &str;
    fn meta(&self) -> Option<&Meta>;
    fn meta_mut(&mut self) -> &mut Meta;
    fn into_target(self) -> Target;

    fn version(&self) -> u64 {
        self.meta().map_or(0, |m| m.version)
    }

    fn key(&self) -> String {
        key_of(Self::KIND, self.id())
    }

    /// Why `self` cannot be stored beside `other` (a name or address both claim), if so.
    /// Checked when the entry is applied, so racing requests cannot both win.
    fn conflict_with(&self, _other: &Self) -> Option<Refusal> {
        None
    }

    /// Every object of the kind from the store's decoded cache, if it keeps this kind.
    fn from_cache(_cache: &TaskCache) -> Option<Vec<Arc<Self>>> {
        None
    }
}

pub fn key_of(kind: &str, id: &str) -> String {
    format!("{kind}/{id}")
}

macro_rules! impl_object {
    ($ty:ty, $kind:literal, $variant:ident) => {
        impl_object!($ty, $kind, $variant, {});
    };
    ($ty:ty, $kind:literal, $variant:ident, { $($extra:item)* }) => {
        impl Object for $ty {
            $($extra)*
            const KIND: &'static str = $kind;
            fn id(&self) -> &str {
                &self.id
            }
            fn meta(&self) -> Option<&Meta> {
                self.meta.as_ref()
            }
            fn meta_mut(&mut self) -> &mut Meta {
                self.meta.get_or_insert_with(Meta::default)
            }
            fn into_target(self) -> Target {
                Target::$variant(self)
            }
        }
    };
}

impl_object!(Node, "node", Node);
impl_object!(Cluster, "cluster", Cluster);
impl_object!(Network, "network", Network, {
    fn conflict_with(&self, other: &Self) -> Option<Refusal> {
        crate::store::conflicts::network(self, other)
    }
});
impl_object!(Service, "service", Service, {
    fn conflict_with(&self, other: &Self) -> Option<Refusal> {
        crate::store::conflicts::service(self, other)
    }
});
impl_object!(Task, "task", Task, {
    fn from_cache(cache: &TaskCache) -> Option<Vec<Arc<Self>>> {
        cache.shared()
    }
});
impl_object!(Secret, "secret", Secret, {
    fn conflict_with(&self, other: &Self) -> Option<Refusal> {
        crate::store::references::same_name("secret", &self.spec, &other.spec, &other.id)
    }
});
impl_object!(Config, "config", Config, {
    fn conflict_with(&self, other: &Self) -> Option<Refusal> {
        crate::store::references::same_name("config", &self.spec, &other.spec, &other.id)
    }
});

/// The parts of an action's target the apply step works with, whatever its kind.
pub struct TargetView<'a> {
    pub kind: &'static str,
    pub id: &'a str,
    pub meta: Option<&'a Meta>,
}

pub fn view(target: &Target) -> TargetView<'_> {
    fn of<T: Object>(obj: &T) -> TargetView<'_> {
        TargetView {
            kind: T::KIND,
            id: obj.id(),
            meta: obj.meta(),
        }
    }
    match target {
        Target::Node(o) => of(o),
        Target::Cluster(o) => of(o),
        Target::Network(o) => of(o),
        Target::Service(o) => of(o),
        Target::Task(o) => of(o),
        Target::Secret(o) => of(o),
        Target::Config(o) => of(o),
    }
}

/// Sets the target's meta and returns its protobuf encoding.
pub fn stamp_and_encode(target: &mut Target, meta: Meta) -> Vec<u8> {
    fn go<T: Object>(obj: &mut T, meta: Meta) -> Vec<u8> {
        *obj.meta_mut() = meta;
        obj.encode_to_vec()
    }
    match target {
        Target::Node(o) => go(o, meta),
        Target::Cluster(o) => go(o, meta),
        Target::Network(o) => go(o, meta),
        Target::Service(o) => go(o, meta),
        Target::Task(o) => go(o, meta),
        Target::Secret(o) => go(o, meta),
        Target::Config(o) => go(o, meta),
    }
}
