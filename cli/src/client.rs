//! Connecting to a node: its unix control socket, or a manager's TCP address over mutual
//! TLS with a client certificate (`--tls-dir`).

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{anyhow, Context};
use hyper_util::rt::TokioIo;
use swarmr_proto::control_client::ControlClient;
use tonic::transport::{Channel, Endpoint, Uri};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Writes may wait out a leader election; reads answer at once.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The files of a `--tls-dir`, as `swarmr ca issue-client` writes them.
pub const CA_FILE: &str = "ca.crt";
pub const CERT_FILE: &str = "client.crt";
pub const KEY_FILE: &str = "client.key";

static TLS_DIR: OnceLock<Option<PathBuf>> = OnceLock::new();

/// Set once from `--tls-dir` / `SWARMR_TLS_DIR` before any command runs.
pub fn use_tls_dir(dir: Option<PathBuf>) {
    let _ = TLS_DIR.set(dir);
}

pub async fn channel(host: &str) -> anyhow::Result<Channel> {
    let unreachable = || {
        format!(
            "cannot reach the swarmr node at {host}: is it running? Start one with `swarmr init` or `swarmr join`, or point --host / SWARMR_HOST at a manager"
        )
    };
    if let Some(path) = host.strip_prefix("unix://") {
        let path = path.to_string();
        // The URI is required by tonic but unused: the connector dials the socket.
        let endpoint = Endpoint::try_from("http://[::1]:50051")?
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT);
        let connect = endpoint.connect_with_connector(tower::service_fn(move |_: Uri| {
            let path = path.clone();
            async move {
                let stream = tokio::net::UnixStream::connect(path).await?;
                Ok::<_, std::io::Error>(TokioIo::new(stream))
            }
        }));
        return tokio::time::timeout(CONNECT_TIMEOUT, connect)
            .await
            .map_err(|_| anyhow!(unreachable()))?
            .with_context(unreachable);
    }
    let addr = host.strip_prefix("tcp://").unwrap_or(host);
    addr.parse::<std::net::SocketAddr>().map_err(|_| {
        anyhow!("invalid --host {host:?}: use unix:///path/to/swarmr.sock or IP:PORT")
    })?;
    let Some(dir) = TLS_DIR.get().cloned().flatten() else {
        anyhow::bail!(
            "talking to {addr} needs a client certificate: on a manager run `swarmr ca issue-client --out DIR`, copy DIR here, and pass --tls-dir DIR (or set SWARMR_TLS_DIR)"
        );
    };
    let config = swarmr_manager::ca::load_client(
        &dir.join(CA_FILE),
        &dir.join(CERT_FILE),
        &dir.join(KEY_FILE),
    )
    .with_context(|| format!("load the client certificate in {}", dir.display()))?;
    Ok(swarmr_manager::ca::channel_with(
        config,
        addr,
        swarmr_manager::ca::MANAGER_NAME,
    )?)
}

pub async fn control(host: &str) -> anyhow::Result<ControlClient<Channel>> {
    Ok(ControlClient::new(channel(host).await?)
        .max_decoding_message_size(swarmr_proto::limits::MAX_MESSAGE_BYTES)
        .max_encoding_message_size(swarmr_proto::limits::MAX_MESSAGE_BYTES))
}
