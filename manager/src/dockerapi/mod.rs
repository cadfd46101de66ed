//! Docker's Engine API for swarm objects, served by every manager, so the `docker` CLI
//! (`service`, `node`, `network`, `stack deploy`), docker-py and other SDKs drive swarmr.
//!
//! A thin translation layer: each request is parsed into bollard's models, checked
//! (`check`: a field swarmr would lose is refused by name), converted (`spec`), and
//! handed to the Control API in-process ([`ControlService`]), so it gets the same
//! validation, the same errors and the same one Raft entry per action as swarmr's own
//! CLI. Nothing here reads or writes the store. Answers are Docker's JSON (`objects`),
//! errors Docker's `{"message"}` with Docker's status codes (`error`).
//!
//! Paths may carry a version prefix (`/v1.41/services`), as the docker CLI sends once it
//! has negotiated one through `/_ping`. Endpoints outside swarm objects (containers,
//! images, exec) answer 501.
//!
//! Served on `<data-dir>/docker.sock` (0600) and, optionally, on TCP with the cluster's
//! mutual TLS (`tls`).

mod check;
mod container;
mod error;
mod files;
mod filters;
mod networks;
mod nodes;
mod objects;
mod secrets;
mod services;
mod spec;
mod system;
mod tasks;
pub mod tls;

use std::convert::Infallible;
use std::future::Future;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use axum::body::Body;
use axum::http::{HeaderValue, Request, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use tower::ServiceExt;
use tracing::{error, warn};

use crate::control::ControlService;
use crate::core::Core;
use error::ApiError;

/// The API version this manager speaks: Docker 20.10's.
pub const API_VERSION: &str = "1.41";
const MIN_API_VERSION: &str = "1.24";
/// The socket file in the data dir.
pub const SOCKET: &str = "docker.sock";

/// What every handler shares.
#[derive(Clone)]
pub struct DockerApi {
    control: ControlService,
    core: Core,
}

impl DockerApi {
    pub fn new(control: ControlService, core: Core) -> Self {
        Self { control, core }
    }

    fn router(self) -> Router {
        Router::new()
            .route("/_ping", get(system::ping))
            .route("/version", get(system::version))
            .route("/info", get(system::info))
            .route("/swarm", get(system::swarm))
            .route("/swarm/{action}", post(system::swarm_action))
            .merge(nodes::routes())
            .merge(networks::routes())
            .merge(services::routes())
            .merge(tasks::routes())
            .merge(secrets::routes())
            .fallback(system::unsupported)
            .with_state(self)
    }

    /// The router behind the version prefix, with Docker's headers on every answer.
    fn http_service(
        self,
    ) -> impl tower::Service<
        Request<Body>,
        Response = Response,
        Error = Infallible,
        Future = impl Future<Output = Result<Response, Infallible>> + Send,
    > + Clone
           + Send
           + 'static {
        let router = self.router();
        tower::service_fn(move |mut request: Request<Body>| {
            let router = router.clone();
            async move {
                let mut response = match strip_version(&mut request) {
                    Ok(()) => router.oneshot(request).await?,
                    Err(e) => e.into_response(),
                };
                let headers = response.headers_mut();
                headers.insert("Api-Version", HeaderValue::from_static(API_VERSION));
                headers.insert("Docker-Experimental", HeaderValue::from_static("false"));
                headers.insert("Ostype", HeaderValue::from_static("linux"));
                headers.insert(
                    "Server",
                    HeaderValue::from_static(concat!("swarmr/", env!("CARGO_PKG_VERSION"))),
                );
                Ok(response)
            }
        })
    }

    /// Serves `<data_dir>/docker.sock` (mode 0600) until `halt`.
    pub async fn serve_unix(
        self,
        data_dir: PathBuf,
        halt: impl Future<Output = ()> + Send + 'static,
    ) {
        let path = data_dir.join(SOCKET);
        // A socket file left by a crashed run would make bind fail.
        let _ = std::fs::remove_file(&path);
        let listener = match tokio::net::UnixListener::bind(&path) {
            Ok(listener) => listener,
            Err(e) => {
                error!(path = %path.display(), error = %e, "cannot open the Docker API socket");
                return;
            }
        };
        if let Err(e) = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)) {
            warn!(path = %path.display(), error = %e, "cannot restrict the Docker API socket to its owner");
        }
        let make = tower::make::Shared::new(self.http_service());
        if let Err(e) = axum::serve(listener, make)
            .with_graceful_shutdown(halt)
            .await
        {
            error!(error = %e, "Docker API socket server stopped");
        }
        let _ = std::fs::remove_file(&path);
    }

    /// Serves the API on TCP with the cluster's mutual TLS until `halt`.
    pub async fn serve_tls(
        self,
        listener: tls::TlsListener,
        halt: impl Future<Output = ()> + Send + 'static,
    ) {
        let make = tower::make::Shared::new(self.http_service());
        if let Err(e) = axum::serve(listener, make)
            .with_graceful_shutdown(halt)
            .await
        {
            error!(error = %e, "Docker API TCP server stopped");
        }
    }
}

/// `/v1.41/services` → `/services`, refusing versions outside what this manager speaks
/// with Docker's words.
fn strip_version(request: &mut Request<Body>) -> Result<(), ApiError> {
    let uri = request.uri();
    let path = uri.path();
    let Some(rest) = path.strip_prefix("/v") else {
        return Ok(());
    };
    let (version, tail) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    if version.is_empty() || !version.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Ok(());
    }
    if newer(version, API_VERSION) {
        return Err(ApiError::bad_request(format!(
            "client version {version} is too new. Maximum supported API version is {API_VERSION}"
        )));
    }
    if newer(MIN_API_VERSION, version) {
        return Err(ApiError::bad_request(format!(
            "client version {version} is too old. Minimum supported API version is {MIN_API_VERSION}, please upgrade your client to a newer version"
        )));
    }
    let tail = if tail.is_empty() { "/" } else { tail };
    let rewritten = match uri.query() {
        Some(query) => format!("{tail}?{query}"),
        None => tail.to_string(),
    };
    *request.uri_mut() = rewritten
        .parse::<Uri>()
        .map_err(|e| ApiError::bad_request(format!("invalid path: {e}")))?;
    Ok(())
}

/// `a > b` for dotted versions (`1.41` > `1.9`).
fn newer(a: &str, b: &str) -> bool {
    let parts = |v: &str| -> Vec<u64> { v.split('.').map(|p| p.parse().unwrap_or(0)).collect() };
    parts(a) > parts(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strip(path: &str) -> Result<String, String> {
        let mut request = Request::builder().uri(path).body(Body::empty()).unwrap();
        strip_version(&mut request).map_err(|e| e.message)?;
        Ok(request.uri().to_string())
    }

    #[test]
    fn version_prefixes_are_stripped_and_checked() {
        assert_eq!(strip("/v1.41/services?x=1").unwrap(), "/services?x=1");
        assert_eq!(strip("/v1.30/_ping").unwrap(), "/_ping");
        assert_eq!(strip("/services").unwrap(), "/services");
        assert!(strip("/v1.52/info").unwrap_err().contains("too new"));
        assert!(strip("/v1.12/info").unwrap_err().contains("too old"));
        assert!(newer("1.41", "1.9") && !newer("1.24", "1.24"));
    }
}
