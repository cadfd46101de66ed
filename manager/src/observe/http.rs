//! The monitoring port (`--http-addr`): `/metrics`, `/healthz`, and on a manager the
//! dashboard (`/`, `/api/overview`). Secure by default: on a loopback address it speaks
//! plain HTTP to local processes (Prometheus beside the node, an SSH tunnel); on any other
//! address only the cluster's mutual TLS, with a client certificate on record (`swarmr ca
//! issue-client`) or a manager's, as the Docker API's TCP port does (`dockerapi::tls`).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use openraft::ServerState;
use prometheus_client::registry::Registry;
use tracing::error;

use super::dashboard;
use crate::core::Core;
use crate::dockerapi::tls::{TlsError, TlsListener};

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("cannot listen on {addr} for --http-addr: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("--http-addr {addr} is not a loopback address: off loopback the monitoring port speaks only mutual TLS, which a worker cannot check client certificates for. Use 127.0.0.1:PORT on workers, or run it on a manager")]
    NeedsManager { addr: SocketAddr },
    #[error(transparent)]
    Tls(#[from] TlsError),
}

/// What the handlers share: the run's registry and, on a manager, its replica.
#[derive(Clone)]
struct Monitoring {
    registry: Arc<Registry>,
    core: Option<Core>,
}

/// A bound monitoring port, ready to serve.
pub enum HttpListener {
    Plain(tokio::net::TcpListener),
    Tls(TlsListener),
}

impl HttpListener {
    /// Binds `addr`: plain on loopback, mutual TLS elsewhere (managers only). `names` are
    /// what the TLS serving certificate names (see `dockerapi::tls::serving_names`).
    pub async fn bind(
        addr: SocketAddr,
        core: Option<&Core>,
        names: Vec<String>,
    ) -> Result<Self, HttpError> {
        if addr.ip().is_loopback() {
            let tcp = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|source| HttpError::Bind { addr, source })?;
            return Ok(Self::Plain(tcp));
        }
        let core = core.ok_or(HttpError::NeedsManager { addr })?;
        Ok(Self::Tls(
            TlsListener::bind(addr, "monitoring port", core.clone(), names).await?,
        ))
    }

    /// Serves until `halt`.
    pub async fn serve(
        self,
        registry: Registry,
        core: Option<Core>,
        halt: impl Future<Output = ()> + Send + 'static,
    ) {
        let router = router(Monitoring {
            registry: Arc::new(registry),
            core,
        });
        let result = match self {
            Self::Plain(tcp) => axum::serve(tcp, router).with_graceful_shutdown(halt).await,
            Self::Tls(tls) => axum::serve(tls, router).with_graceful_shutdown(halt).await,
        };
        if let Err(e) = result {
            error!(error = %e, "monitoring port stopped");
        }
    }
}

fn router(state: Monitoring) -> Router {
    let asset = |kind: &'static str, body: &'static str| {
        get(move || async move { ([(header::CONTENT_TYPE, kind)], body) })
    };
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/api/overview", get(overview))
        .route(
            "/",
            asset("text/html; charset=utf-8", dashboard::INDEX_HTML),
        )
        .route(
            "/app.js",
            asset("text/javascript; charset=utf-8", dashboard::APP_JS),
        )
        .route(
            "/style.css",
            asset("text/css; charset=utf-8", dashboard::STYLE_CSS),
        )
        .with_state(state)
}

async fn metrics(State(state): State<Monitoring>) -> Response {
    let mut text = String::new();
    match prometheus_client::encoding::text::encode(&mut text, &state.registry) {
        Ok(()) => ([(header::CONTENT_TYPE, OPENMETRICS)], text).into_response(),
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "metrics could not be encoded\n",
        )
            .into_response(),
    }
}

/// 200 while the node can do its job: a worker whose process answers; a manager whose
/// Raft runs and knows a leader (a manager without quorum cannot take a write).
async fn healthz(State(state): State<Monitoring>) -> Response {
    let Some(core) = &state.core else {
        return (StatusCode::OK, "ok\n").into_response();
    };
    let metrics = core.raft().metrics().borrow().clone();
    let problem = match (&metrics.running_state, metrics.current_leader) {
        (Err(e), _) => Some(format!("raft stopped: {e}")),
        (Ok(()), None) => Some("no raft leader is known: the managers may have lost quorum".into()),
        (Ok(()), Some(_)) if metrics.state == ServerState::Shutdown => {
            Some("raft is shutting down".into())
        }
        _ => None,
    };
    match problem {
        None => (StatusCode::OK, "ok\n").into_response(),
        Some(reason) => (StatusCode::SERVICE_UNAVAILABLE, format!("{reason}\n")).into_response(),
    }
}

async fn overview(State(state): State<Monitoring>) -> Response {
    let Some(core) = &state.core else {
        return (
            StatusCode::NOT_FOUND,
            "this node is a worker: the dashboard is served by managers\n",
        )
            .into_response();
    };
    match dashboard::overview(core) {
        Ok(view) => Json(view).into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the store could not be read: {e}\n"),
        )
            .into_response(),
    }
}
