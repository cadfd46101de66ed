//! One store action as a Docker event: `Type`, `Action` (create, update, remove),
//! `Actor.ID` and `Actor.Attributes`. An update names what changed as Docker does
//! (`replicas.old`/`replicas.new`, `state.old`/`state.new`), from the object's previous
//! summary, which [`Summaries`] keeps for every object in the store.

use std::collections::{BTreeMap, HashMap};

use swarmr_proto::convert::now_millis;
use swarmr_proto::store_action::{Kind, Target};
use swarmr_proto::{ClusterEvent, StoreAction};

/// The fields of one object that events report, by attribute name.
type Summary = BTreeMap<&'static str, String>;

/// The last summary of every object, so an update can say what changed.
#[derive(Default)]
pub struct Summaries(HashMap<String, Summary>);

/// (type, id, name, time in ms, the tracked fields) of one object.
struct Shape {
    kind: &'static str,
    id: String,
    time_ms: i64,
    fields: Summary,
}

fn shape(target: &Target) -> Option<Shape> {
    let updated = |meta: &Option<swarmr_proto::Meta>| meta.as_ref().map_or(0, |m| m.updated_at);
    let mut fields = Summary::new();
    let (kind, id, time_ms) = match target {
        Target::Service(s) => {
            let spec = s.spec.clone().unwrap_or_default();
            fields.insert("name", spec.name);
            let replicas = spec
                .replicas
                .map_or("global".to_string(), |n| n.to_string());
            fields.insert("replicas", replicas);
            let image = spec.container.unwrap_or_default().image;
            fields.insert("image", image);
            if let Some(status) = &s.update_status {
                fields.insert("updatestate", status.state().label().to_string());
            }
            ("service", &s.id, updated(&s.meta))
        }
        Target::Node(n) => {
            let hostname = n.description.clone().unwrap_or_default().hostname;
            fields.insert("name", hostname);
            let state = n.status.clone().unwrap_or_default().state().label();
            fields.insert("state", state.to_ascii_lowercase());
            let availability = n.spec.clone().unwrap_or_default().availability().label();
            fields.insert("availability", availability.to_ascii_lowercase());
            fields.insert("role", n.role().label().to_string());
            ("node", &n.id, updated(&n.meta))
        }
        Target::Network(n) => {
            let spec = n.spec.clone().unwrap_or_default();
            fields.insert("name", spec.name);
            fields.insert("driver", "overlay".to_string());
            ("network", &n.id, updated(&n.meta))
        }
        Target::Task(t) => {
            fields.insert("name", format!("{}.{}", t.service_name, t.slot));
            fields.insert("service", t.service_name.clone());
            fields.insert("node.id", t.node_id.clone());
            fields.insert("state", t.current_state().label().to_string());
            fields.insert("desiredstate", t.desired_state().label().to_string());
            ("task", &t.id, updated(&t.meta))
        }
        Target::Secret(s) => {
            fields.insert("name", s.spec.clone().unwrap_or_default().name);
            ("secret", &s.id, updated(&s.meta))
        }
        Target::Config(c) => {
            fields.insert("name", c.spec.clone().unwrap_or_default().name);
            ("config", &c.id, updated(&c.meta))
        }
        // The cluster object holds the CA and tokens: nothing an event should show.
        Target::Cluster(_) => return None,
    };
    Some(Shape {
        kind,
        id: id.clone(),
        time_ms,
        fields,
    })
}

impl Summaries {
    /// Remembers an object already in the store (at subscription).
    pub fn remember(&mut self, target: &Target) {
        if let Some(shape) = shape(target) {
            self.0.insert(shape.id, shape.fields);
        }
    }

    /// The event for one applied action, `None` for what events do not show (the cluster
    /// object, a task update that changed nothing tracked).
    pub fn event(&mut self, action: &StoreAction) -> Option<ClusterEvent> {
        let shape = shape(action.target.as_ref()?)?;
        let name = shape.fields.get("name").cloned().unwrap_or_default();
        let mut attributes = HashMap::from([("name".to_string(), name)]);
        let verb = match action.kind() {
            Kind::Create => {
                self.0.insert(shape.id.clone(), shape.fields);
                "create"
            }
            Kind::Delete => {
                self.0.remove(&shape.id);
                "remove"
            }
            Kind::Update => {
                let old = self.0.insert(shape.id.clone(), shape.fields.clone());
                let old = old.unwrap_or_default();
                for (field, new) in &shape.fields {
                    let before = old.get(field).cloned().unwrap_or_default();
                    if *field != "name" && before != *new {
                        attributes.insert(format!("{field}.old"), before);
                        attributes.insert(format!("{field}.new"), new.clone());
                    }
                }
                if shape.kind == "task" && attributes.len() == 1 {
                    return None;
                }
                "update"
            }
        };
        if shape.kind == "task" {
            for field in ["service", "node.id"] {
                if let Some(value) = self.0.get(&shape.id).and_then(|f| f.get(field)) {
                    attributes.insert(field.to_string(), value.clone());
                }
            }
        }
        let time_ms = match (verb, shape.time_ms) {
            ("remove", _) | (_, 0) => now_millis(),
            (_, t) => t,
        };
        Some(ClusterEvent {
            r#type: shape.kind.to_string(),
            action: verb.to_string(),
            actor_id: shape.id,
            actor_attributes: attributes,
            time_nano: time_ms.saturating_mul(1_000_000),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use swarmr_proto::{Node, NodeState, NodeStatus, Service, ServiceSpec};

    fn service(replicas: u64) -> Target {
        Target::Service(Service {
            id: "s1".into(),
            spec: Some(ServiceSpec {
                name: "web".into(),
                replicas: Some(replicas),
                ..Default::default()
            }),
            ..Default::default()
        })
    }

    fn action(kind: Kind, target: Target) -> StoreAction {
        StoreAction {
            kind: kind as i32,
            expected_version: 0,
            target: Some(target),
        }
    }

    #[test]
    fn a_scale_names_the_old_and_new_replicas() {
        let mut summaries = Summaries::default();
        let created = summaries.event(&action(Kind::Create, service(2))).unwrap();
        assert_eq!(
            (created.r#type.as_str(), created.action.as_str()),
            ("service", "create")
        );
        assert_eq!(created.actor_attributes["name"], "web");
        let scaled = summaries.event(&action(Kind::Update, service(5))).unwrap();
        assert_eq!(scaled.action, "update");
        assert_eq!(scaled.actor_attributes["replicas.old"], "2");
        assert_eq!(scaled.actor_attributes["replicas.new"], "5");
        // The same spec again: an update with nothing changed but the name.
        let same = summaries.event(&action(Kind::Update, service(5))).unwrap();
        assert_eq!(same.actor_attributes.len(), 1);
        let removed = summaries.event(&action(Kind::Delete, service(5))).unwrap();
        assert_eq!(removed.action, "remove");
    }

    #[test]
    fn a_node_going_down_says_so() {
        let node = |state: NodeState| {
            Target::Node(Node {
                id: "n1".into(),
                status: Some(NodeStatus {
                    state: state as i32,
                    ..Default::default()
                }),
                ..Default::default()
            })
        };
        let mut summaries = Summaries::default();
        summaries.remember(&node(NodeState::Ready));
        let down = summaries
            .event(&action(Kind::Update, node(NodeState::Down)))
            .unwrap();
        assert_eq!(down.actor_attributes["state.old"], "ready");
        assert_eq!(down.actor_attributes["state.new"], "down");
    }

    #[test]
    fn the_cluster_object_is_never_shown() {
        let cluster = Target::Cluster(Default::default());
        let event = Summaries::default().event(&action(Kind::Update, cluster));
        assert!(event.is_none());
    }
}
