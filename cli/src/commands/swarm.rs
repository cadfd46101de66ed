//! `swarmr join-token` and `swarmr leave`.

use swarmr_proto::{JoinTokenRequest, LeaveRequest, NodeRole};

use crate::args::{JoinTokenArgs, LeaveArgs};
use crate::client;

pub async fn join_token(host: &str, args: JoinTokenArgs) -> anyhow::Result<()> {
    let role = if args.role == "manager" {
        NodeRole::Manager
    } else {
        NodeRole::Worker
    };
    let mut control = client::control(host).await?;
    let reply = control
        .join_token(JoinTokenRequest {
            role: role as i32,
            rotate: args.rotate,
        })
        .await?
        .into_inner();
    if args.quiet {
        println!("{}", reply.token);
        return Ok(());
    }
    if args.rotate {
        println!("Successfully rotated {} join token.\n", role.label());
    }
    print!(
        "{}",
        join_instructions(role, &reply.token, &reply.manager_addr)
    );
    Ok(())
}

pub fn join_instructions(role: NodeRole, token: &str, manager_addr: &str) -> String {
    format!(
        "To add a {} to this swarm, run the following command:\n\n    swarmr join --token {token} {manager_addr}\n\n",
        role.label()
    )
}

pub async fn leave(host: &str, args: LeaveArgs) -> anyhow::Result<()> {
    let mut control = client::control(host).await?;
    control.leave(LeaveRequest { force: args.force }).await?;
    println!("Node left the swarm.");
    Ok(())
}
