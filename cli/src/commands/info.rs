//! `swarmr info`: the cluster at a glance, laid out as the Swarm section of `docker info`.

use std::fmt::Write;
use std::time::{Duration, UNIX_EPOCH};

use serde_json::json;
use swarmr_proto::{InfoRequest, InfoResponse};

use crate::observe_args::InfoArgs;

pub async fn run(host: &str, args: InfoArgs) -> anyhow::Result<()> {
    let mut control = crate::client::control(host).await?;
    let info = control.info(InfoRequest {}).await?.into_inner();
    match args.format.as_str() {
        "json" => println!("{}", to_json(&info)),
        _ => print!("{}", text(&info)),
    }
    Ok(())
}

fn time(seconds: i64) -> String {
    let at = UNIX_EPOCH + Duration::from_secs(u64::try_from(seconds).unwrap_or(0));
    humantime::format_rfc3339_seconds(at).to_string()
}

fn millis(ms: u64) -> String {
    humantime::format_duration(Duration::from_millis(ms)).to_string()
}

fn text(info: &InfoResponse) -> String {
    let mut out = String::new();
    let leader = info.managers.iter().find(|m| m.leader);
    let _ = writeln!(out, "Swarm: active");
    let _ = writeln!(out, " NodeID: {}", info.node_id);
    let _ = writeln!(out, " Is Manager: {}", info.node_role == "manager");
    let _ = writeln!(out, " ClusterID: {}", info.cluster_id);
    let _ = writeln!(out, " Created: {}", time(info.created_at / 1000));
    let _ = writeln!(out, " Managers: {}", info.managers.len());
    let _ = writeln!(out, " Nodes: {}", info.nodes);
    let _ = writeln!(
        out,
        " Leader: {}",
        leader.map_or("none (no quorum?)".to_string(), |m| format!(
            "{} ({})",
            m.node_id, m.addr
        ))
    );
    let _ = writeln!(
        out,
        " Services: {}, tasks running: {}, networks: {}",
        info.services, info.tasks_running, info.networks
    );
    let _ = writeln!(out, " Raft:");
    let _ = writeln!(out, "  Snapshot Interval: {}", info.snapshot_interval);
    let _ = writeln!(
        out,
        "  Heartbeat Interval: {}",
        millis(info.heartbeat_interval_ms)
    );
    let _ = writeln!(
        out,
        "  Election Timeout: {} to {}",
        millis(info.election_timeout_min_ms),
        millis(info.election_timeout_max_ms)
    );
    let _ = writeln!(out, "  Term: {}", info.raft_term);
    let _ = writeln!(
        out,
        "  Last Log Index: {}, Applied: {}",
        info.raft_commit_index, info.raft_applied_index
    );
    let _ = writeln!(out, " Dispatcher:");
    let _ = writeln!(
        out,
        "  Heartbeat Period: {}",
        millis(info.dispatcher_heartbeat_ms)
    );
    let _ = writeln!(out, " CA Configuration:");
    let expiry = Duration::from_secs(info.cert_expiry_secs);
    let _ = writeln!(
        out,
        "  Expiry Duration: {}",
        humantime::format_duration(expiry)
    );
    let _ = writeln!(out, "  Root CA Expires: {}", time(info.ca_expires_at));
    let _ = writeln!(out, " Node Address: {}", info.node_addr);
    let _ = writeln!(out, " Manager Addresses:");
    for manager in &info.managers {
        let status = match (manager.leader, manager.reachable) {
            (true, _) => "Leader",
            (false, true) => "Reachable",
            (false, false) => "Unreachable",
        };
        let _ = writeln!(out, "  {} ({status})", manager.addr);
    }
    out
}

fn to_json(info: &InfoResponse) -> serde_json::Value {
    let managers: Vec<_> = info
        .managers
        .iter()
        .map(|m| json!({"NodeID": m.node_id, "Addr": m.addr, "Leader": m.leader, "Reachable": m.reachable}))
        .collect();
    json!({
        "NodeID": info.node_id,
        "NodeAddr": info.node_addr,
        "ControlAvailable": info.node_role == "manager",
        "Cluster": {
            "ID": info.cluster_id,
            "CreatedAt": time(info.created_at / 1000),
            "Spec": {
                "Raft": {
                    "SnapshotInterval": info.snapshot_interval,
                    "HeartbeatIntervalMs": info.heartbeat_interval_ms,
                    "ElectionTimeoutMinMs": info.election_timeout_min_ms,
                    "ElectionTimeoutMaxMs": info.election_timeout_max_ms,
                },
                "Dispatcher": {"HeartbeatPeriodMs": info.dispatcher_heartbeat_ms},
                "CAConfig": {"NodeCertExpirySeconds": info.cert_expiry_secs},
            },
            "RootCAExpiresAt": time(info.ca_expires_at),
        },
        "Raft": {"Term": info.raft_term, "LastLogIndex": info.raft_commit_index, "AppliedIndex": info.raft_applied_index},
        "Leader": info.leader_id,
        "Managers": info.managers.len(),
        "Nodes": info.nodes,
        "RemoteManagers": managers,
        "Services": info.services,
        "TasksRunning": info.tasks_running,
        "Networks": info.networks,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use swarmr_proto::InfoManager;

    #[test]
    fn info_names_the_leader_and_the_unreachable_managers() {
        let info = InfoResponse {
            cluster_id: "c1".into(),
            nodes: 3,
            managers: vec![
                InfoManager {
                    node_id: "m1".into(),
                    addr: "192.0.2.1:2377".into(),
                    leader: true,
                    reachable: true,
                },
                InfoManager {
                    node_id: "m2".into(),
                    addr: "192.0.2.2:2377".into(),
                    leader: false,
                    reachable: false,
                },
            ],
            heartbeat_interval_ms: 100,
            node_role: "manager".into(),
            ..Default::default()
        };
        let out = text(&info);
        assert!(out.contains(" Leader: m1 (192.0.2.1:2377)"), "{out}");
        assert!(out.contains("  192.0.2.2:2377 (Unreachable)"), "{out}");
        assert!(out.contains("  Heartbeat Interval: 100ms"), "{out}");
        assert_eq!(to_json(&info)["Managers"], 2);
    }
}
