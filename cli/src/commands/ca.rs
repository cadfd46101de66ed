//! `swarmr ca issue-client | ls | revoke`: client certificates for remote CLI access.
//!
//! The key is made here and never leaves this machine; the manager signs a CSR for it
//! (OU = swarm-client, which may call the Control API and nothing else) and keeps a
//! record of it, so it can be listed and revoked.

use std::path::Path;

use anyhow::Context;
use swarmr_proto::{
    IssueClientCertificateRequest, ListClientCertificatesRequest, RevokeClientCertificateRequest,
};

use crate::args::CaCommand;
use crate::client;
use crate::commands::node::millis_to_rfc3339;
use crate::daemon::write_file;

pub async fn run(host: &str, cmd: CaCommand) -> anyhow::Result<()> {
    match cmd {
        CaCommand::IssueClient { out } => issue_client(host, &out).await,
        CaCommand::Ls => ls(host).await,
        CaCommand::Revoke { id } => revoke(host, &id).await,
    }
}

async fn ls(host: &str) -> anyhow::Result<()> {
    let mut control = client::control(host).await?;
    let reply = control
        .list_client_certificates(ListClientCertificatesRequest {})
        .await?
        .into_inner();
    let rows: Vec<Vec<String>> = reply
        .certificates
        .iter()
        .map(|c| {
            vec![
                c.id.clone(),
                millis_to_rfc3339(c.issued_at),
                millis_to_rfc3339(c.not_after),
                match c.revoked_at {
                    0 => String::new(),
                    at => millis_to_rfc3339(at),
                },
            ]
        })
        .collect();
    print!(
        "{}",
        crate::output::table(&["ID", "ISSUED", "EXPIRES", "REVOKED"], &rows)
    );
    Ok(())
}

async fn revoke(host: &str, id: &str) -> anyhow::Result<()> {
    let mut control = client::control(host).await?;
    control
        .revoke_client_certificate(RevokeClientCertificateRequest { id: id.to_string() })
        .await?;
    println!("{id}");
    Ok(())
}

async fn issue_client(host: &str, out: &Path) -> anyhow::Result<()> {
    let (key_pem, csr_pem) = swarmr_manager::ca::new_key_and_csr()?;
    let mut control = client::control(host).await?;
    let reply = control
        .issue_client_certificate(IssueClientCertificateRequest { csr_pem })
        .await?
        .into_inner();
    std::fs::create_dir_all(out).with_context(|| format!("create {}", out.display()))?;
    write_file(&out.join(client::CA_FILE), &reply.ca_cert_pem, 0o644)?;
    write_file(&out.join(client::CERT_FILE), &reply.cert_pem, 0o644)?;
    write_file(&out.join(client::KEY_FILE), &key_pem, 0o600)?;
    // The same, under the names `docker --tlsverify` looks for in DOCKER_CERT_PATH.
    write_file(&out.join("ca.pem"), &reply.ca_cert_pem, 0o644)?;
    write_file(&out.join("cert.pem"), &reply.cert_pem, 0o644)?;
    write_file(&out.join("key.pem"), &key_pem, 0o600)?;
    println!(
        "Client certificate written to {} (revoke it with `swarmr ca revoke <ID>`; `swarmr ca ls` lists them).\nUse it with: swarmr --tls-dir {} -H <manager IP>:2377 node ls\nor, for a manager's --docker-api-addr: DOCKER_CERT_PATH={} DOCKER_TLS_VERIFY=1 DOCKER_HOST=tcp://<IP:PORT> docker node ls",
        out.display(),
        out.display(),
        out.display()
    );
    Ok(())
}
