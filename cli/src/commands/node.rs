//! `swarmr node ls|inspect|update|promote|demote|rm`.

use anyhow::{anyhow, Context};
use serde_json::{json, Value};
use swarmr_proto::convert::{parse_availability, parse_role};
use swarmr_proto::{
    GetNodeRequest, ListNodesRequest, ManagerReachability, NodeRole, NodeView, RemoveNodeRequest,
    UpdateNodeRequest,
};

use crate::args::{ListArgs, NodeCommand};
use crate::client;
use crate::output;

pub async fn run(host: &str, command: NodeCommand) -> anyhow::Result<()> {
    match command {
        NodeCommand::Ls(args) => ls(host, args).await,
        NodeCommand::Inspect { nodes } => inspect(host, nodes).await,
        NodeCommand::Update {
            availability,
            label_add,
            label_rm,
            node,
        } => {
            let request = UpdateNodeRequest {
                reference: node,
                availability: availability
                    .map(|a| parse_availability(&a).map(|a| a as i32))
                    .transpose()
                    .map_err(|e| anyhow!(e))?,
                label_add: super::key_values("label-add", &label_add)?,
                label_rm,
                role: None,
                version: 0,
            };
            let view = update(host, request).await?;
            println!("{}", node_id(&view));
            Ok(())
        }
        NodeCommand::Promote { nodes } => set_role(host, nodes, "manager").await,
        NodeCommand::Demote { nodes } => set_role(host, nodes, "worker").await,
        NodeCommand::Rm { force, nodes } => {
            let mut control = client::control(host).await?;
            for reference in nodes {
                control
                    .remove_node(RemoveNodeRequest {
                        reference: reference.clone(),
                        force,
                    })
                    .await?;
                println!("{reference}");
            }
            Ok(())
        }
    }
}

async fn update(host: &str, request: UpdateNodeRequest) -> anyhow::Result<NodeView> {
    let mut control = client::control(host).await?;
    let reply = control.update_node(request).await?.into_inner();
    reply.node.context("the manager returned no node")
}

async fn set_role(host: &str, nodes: Vec<String>, role: &str) -> anyhow::Result<()> {
    let role = parse_role(role).map_err(|e| anyhow!(e))?;
    for reference in nodes {
        let request = UpdateNodeRequest {
            reference: reference.clone(),
            role: Some(role as i32),
            ..Default::default()
        };
        let view = update(host, request).await?;
        match role {
            NodeRole::Manager => println!(
                "Node {} promoted to a manager in the swarm.",
                node_id(&view)
            ),
            NodeRole::Worker => println!("Manager {} demoted in the swarm.", node_id(&view)),
        }
    }
    Ok(())
}

fn node_id(view: &NodeView) -> &str {
    view.node.as_ref().map_or("", |n| n.id.as_str())
}

async fn ls(host: &str, args: ListArgs) -> anyhow::Result<()> {
    let mut control = client::control(host).await?;
    let nodes = control
        .list_nodes(ListNodesRequest {})
        .await?
        .into_inner()
        .nodes;
    if args.quiet {
        for view in &nodes {
            println!("{}", node_id(view));
        }
        return Ok(());
    }
    let rows: Vec<Row> = nodes.iter().map(Row::from).collect();
    if args.format == "json" {
        for row in &rows {
            println!("{}", row.json());
        }
        return Ok(());
    }
    let table: Vec<Vec<String>> = rows.iter().map(Row::cells).collect();
    print!(
        "{}",
        output::table(
            &[
                "ID",
                "HOSTNAME",
                "STATUS",
                "AVAILABILITY",
                "MANAGER STATUS",
                "ADDR"
            ],
            &table
        )
    );
    Ok(())
}

/// One line of `node ls`.
struct Row {
    id: String,
    hostname: String,
    status: &'static str,
    availability: &'static str,
    manager_status: &'static str,
    is_self: bool,
    addr: String,
}

impl From<&NodeView> for Row {
    fn from(view: &NodeView) -> Self {
        let node = view.node.clone().unwrap_or_default();
        let spec = node.spec.clone().unwrap_or_default();
        let status = node.status.clone().unwrap_or_default();
        Row {
            id: node.id.clone(),
            hostname: node.description.map(|d| d.hostname).unwrap_or_default(),
            status: status.state().label(),
            availability: spec.availability().label(),
            manager_status: view.manager_status().label(),
            is_self: view.is_self,
            addr: status.addr,
        }
    }
}

impl Row {
    fn cells(&self) -> Vec<String> {
        let id = if self.is_self {
            format!("{} *", self.id)
        } else {
            self.id.clone()
        };
        vec![
            id,
            self.hostname.clone(),
            self.status.into(),
            self.availability.into(),
            self.manager_status.into(),
            self.addr.clone(),
        ]
    }

    fn json(&self) -> Value {
        json!({
            "ID": self.id,
            "Hostname": self.hostname,
            "Status": self.status,
            "Availability": self.availability,
            "ManagerStatus": self.manager_status,
            "Self": self.is_self,
            "Addr": self.addr,
        })
    }
}

async fn inspect(host: &str, references: Vec<String>) -> anyhow::Result<()> {
    let mut control = client::control(host).await?;
    let mut out = Vec::new();
    for reference in references {
        let view = control
            .get_node(GetNodeRequest { reference })
            .await?
            .into_inner()
            .node
            .context("the manager returned no node")?;
        out.push(inspect_json(&view));
    }
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

pub fn millis_to_rfc3339(ms: i64) -> String {
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_millis(time).to_string()
}

/// A node shaped like `docker node inspect`.
fn inspect_json(view: &NodeView) -> Value {
    let node = view.node.clone().unwrap_or_default();
    let meta = node.meta.unwrap_or_default();
    let spec = node.spec.clone().unwrap_or_default();
    let description = node.description.clone().unwrap_or_default();
    let status = node.status.clone().unwrap_or_default();
    let mut value = json!({
        "ID": node.id,
        "Version": { "Index": meta.version },
        "CreatedAt": millis_to_rfc3339(meta.created_at),
        "UpdatedAt": millis_to_rfc3339(meta.updated_at),
        "Spec": {
            "Labels": spec.labels,
            "Role": spec.desired_role().label(),
            "Availability": spec.availability().label().to_lowercase(),
        },
        "Description": {
            "Hostname": description.hostname,
            "Platform": { "Architecture": description.arch, "OS": description.os },
            "Engine": { "EngineVersion": description.engine_version },
            "Resources": crate::commands::service::resources_json(
                description.resources.unwrap_or_default(),
            ),
        },
        "Status": {
            "State": status.state().label().to_lowercase(),
            "Message": status.message,
            "Addr": status.addr,
        },
    });
    if node.role() == NodeRole::Manager {
        value["ManagerStatus"] = json!({
            "Leader": view.manager_status() == ManagerReachability::Leader,
            "Reachability": match view.manager_status() {
                ManagerReachability::Unreachable => "unreachable",
                _ => "reachable",
            },
            "Addr": node.api_addr,
        });
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;
    use swarmr_proto::{Node, NodeAvailability, NodeSpec, NodeState, NodeStatus};

    #[test]
    fn row_marks_self_and_leader() {
        let view = NodeView {
            node: Some(Node {
                id: "abc".into(),
                spec: Some(NodeSpec {
                    availability: NodeAvailability::Drain as i32,
                    ..Default::default()
                }),
                status: Some(NodeStatus {
                    state: NodeState::Ready as i32,
                    addr: "192.0.2.1".into(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            manager_status: ManagerReachability::Leader as i32,
            is_self: true,
        };
        let row = Row::from(&view);
        assert_eq!(row.cells()[0], "abc *");
        assert_eq!(row.json()["Availability"], "Drain");
        assert_eq!(row.json()["ManagerStatus"], "Leader");
        assert_eq!(row.json()["Self"], true);
    }
}
