//! Connecting to a node: its unix control socket, or a manager's TCP address.

use std::time::Duration;

use anyhow::{anyhow, Context};
use hyper_util::rt::TokioIo;
use swarmr_proto::control_client::ControlClient;
use tonic::transport::{Channel, Endpoint, Uri};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Writes may wait out a leader election; reads answer at once.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

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
    let endpoint = Endpoint::from_shared(format!("http://{addr}"))?
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT);
    endpoint.connect().await.with_context(unreachable)
}

pub async fn control(host: &str) -> anyhow::Result<ControlClient<Channel>> {
    Ok(ControlClient::new(channel(host).await?))
}
