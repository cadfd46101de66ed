//! Placement constraints as Docker spells them: `node.id==X`, `node.hostname!=Y`,
//! `node.role==manager`, `node.labels.zone==a`.
//!
//! Values compare case-insensitively (as swarmkit's `strings.EqualFold`); label keys
//! compare exactly. A node without the label fails `==` and passes `!=`.

use std::fmt;

use swarmr_proto::Node;

/// What a constraint looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConstraintKey {
    NodeId,
    Hostname,
    Role,
    /// `node.labels.<key>`: a label of the node's spec.
    Label(String),
}

/// `==` or `!=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    Eq,
    NotEq,
}

/// One parsed constraint; `Display` prints it back normalized (`node.role==manager`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Constraint {
    pub key: ConstraintKey,
    pub op: Operator,
    pub value: String,
}

const USAGE: &str =
    "use KEY==VALUE or KEY!=VALUE with node.id, node.hostname, node.role or node.labels.<key>";

/// Parses every constraint of a service spec; the error names the first bad one.
pub fn parse_constraints(texts: &[String]) -> Result<Vec<Constraint>, String> {
    texts.iter().map(|t| Constraint::parse(t)).collect()
}

/// True when the node meets every constraint.
pub fn node_matches(constraints: &[Constraint], node: &Node) -> bool {
    constraints.iter().all(|c| c.matches(node))
}

impl Constraint {
    /// Parses one `KEY==VALUE` or `KEY!=VALUE`; spaces around key and value are ignored.
    pub fn parse(text: &str) -> Result<Constraint, String> {
        let invalid = || format!("invalid constraint {text:?}: {USAGE}");
        let (key, op, value) = split_operator(text).ok_or_else(invalid)?;
        let (key, value) = (key.trim(), value.trim());
        if value.is_empty() || value.contains('=') || value.contains('!') {
            return Err(invalid());
        }
        let key = parse_key(key).ok_or_else(invalid)?;
        if key == ConstraintKey::Role
            && !matches!(value.to_ascii_lowercase().as_str(), "manager" | "worker")
        {
            return Err(format!(
                "invalid constraint {text:?}: node.role is manager or worker"
            ));
        }
        Ok(Constraint {
            key,
            op,
            value: value.to_string(),
        })
    }

    /// True when the node meets this constraint.
    pub fn matches(&self, node: &Node) -> bool {
        let actual = match &self.key {
            ConstraintKey::NodeId => Some(node.id.as_str()),
            ConstraintKey::Hostname => node.description.as_ref().map(|d| d.hostname.as_str()),
            ConstraintKey::Role => Some(node.role().label()),
            ConstraintKey::Label(key) => node
                .spec
                .as_ref()
                .and_then(|s| s.labels.get(key))
                .map(String::as_str),
        };
        let equal = actual.is_some_and(|a| a.eq_ignore_ascii_case(&self.value));
        match self.op {
            Operator::Eq => equal,
            Operator::NotEq => !equal,
        }
    }
}

/// Splits at the first `==` or `!=`, whichever comes first.
fn split_operator(text: &str) -> Option<(&str, Operator, &str)> {
    let eq = text.find("==");
    let ne = text.find("!=");
    let (at, op) = match (eq, ne) {
        (Some(e), Some(n)) if n < e => (n, Operator::NotEq),
        (Some(e), _) => (e, Operator::Eq),
        (None, Some(n)) => (n, Operator::NotEq),
        (None, None) => return None,
    };
    Some((&text[..at], op, &text[at + 2..]))
}

/// Keys are case-insensitive (`Node.Labels.zone`); the label name keeps its case.
fn parse_key(key: &str) -> Option<ConstraintKey> {
    const LABELS: &str = "node.labels.";
    let lower = key.to_ascii_lowercase();
    match lower.as_str() {
        "node.id" => Some(ConstraintKey::NodeId),
        "node.hostname" => Some(ConstraintKey::Hostname),
        "node.role" => Some(ConstraintKey::Role),
        _ if lower.starts_with(LABELS) && key.len() > LABELS.len() => {
            let label = &key[LABELS.len()..];
            let valid = !label.contains(char::is_whitespace);
            valid.then(|| ConstraintKey::Label(label.to_string()))
        }
        _ => None,
    }
}

impl fmt::Display for Constraint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.key {
            ConstraintKey::NodeId => f.write_str("node.id")?,
            ConstraintKey::Hostname => f.write_str("node.hostname")?,
            ConstraintKey::Role => f.write_str("node.role")?,
            ConstraintKey::Label(key) => write!(f, "node.labels.{key}")?,
        }
        let op = match self.op {
            Operator::Eq => "==",
            Operator::NotEq => "!=",
        };
        write!(f, "{op}{}", self.value)
    }
}

#[cfg(test)]
mod tests {
    use swarmr_proto::{NodeDescription, NodeRole};

    use super::*;

    fn node(id: &str) -> Node {
        Node {
            id: id.to_string(),
            description: Some(NodeDescription {
                hostname: format!("host-{id}"),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn parses_constraints() {
        let cases: &[(&str, Result<&str, &str>)] = &[
            ("node.id==abc", Ok("node.id==abc")),
            ("node.hostname != web-1", Ok("node.hostname!=web-1")),
            ("Node.Role==MANAGER", Ok("node.role==MANAGER")),
            ("node.labels.Zone==a", Ok("node.labels.Zone==a")),
            ("node.labels.zone=a", Err("invalid constraint \"node.labels.zone=a\": use KEY==VALUE or KEY!=VALUE with node.id, node.hostname, node.role or node.labels.<key>")),
            ("node.labels.==a", Err("use KEY==VALUE")),
            ("node.labels.zone==", Err("use KEY==VALUE")),
            ("node.labels.zone==a==b", Err("use KEY==VALUE")),
            ("engine.labels.x==y", Err("use KEY==VALUE")),
            ("node.ip==1.2.3.4", Err("use KEY==VALUE")),
            ("node.role==boss", Err("invalid constraint \"node.role==boss\": node.role is manager or worker")),
        ];
        for (text, want) in cases {
            let got = Constraint::parse(text);
            match (want, got) {
                (Ok(shown), Ok(c)) => assert_eq!(&c.to_string(), shown, "{text}"),
                (Err(part), Err(e)) => assert!(e.contains(part), "{text}: {e}"),
                (want, got) => panic!("{text}: want {want:?}, got {got:?}"),
            }
        }
        let all = ["node.role==worker".to_string(), "bad".to_string()];
        assert!(parse_constraints(&all).unwrap_err().contains("\"bad\""));
        assert_eq!(parse_constraints(&all[..1]).unwrap().len(), 1);
    }

    #[test]
    fn matches_constraints() {
        let mut manager = node("n1");
        manager
            .spec
            .get_or_insert_with(Default::default)
            .labels
            .insert("zone".into(), "A".into());
        manager.set_role(NodeRole::Manager);
        let worker = node("n2");
        let cases = [
            ("node.id==n1", true, false),
            ("node.id!=n1", false, true),
            ("node.hostname==HOST-n1", true, false),
            ("node.role==manager", true, false),
            ("node.role!=manager", false, true),
            ("node.labels.zone==a", true, false),
            ("node.labels.zone!=a", false, true),
            ("node.labels.ZONE==a", false, false),
        ];
        for (text, on_manager, on_worker) in cases {
            let c = Constraint::parse(text).unwrap();
            assert_eq!(c.matches(&manager), on_manager, "{text} on manager");
            assert_eq!(c.matches(&worker), on_worker, "{text} on worker");
        }
    }
}
