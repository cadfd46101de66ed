//! The Docker API on TCP (`--docker-api-addr`), with the cluster's mutual TLS, as
//! `docker --tlsverify` speaks it: the client shows a certificate of this cluster
//! (`swarmr ca issue-client`, or a manager's), the server one that names the address the
//! client dialled. The monitoring port (`--http-addr` off loopback, `crate::observe`)
//! listens the same way.
//!
//! Node certificates name no IP address, and Go's TLS verifies the one in DOCKER_HOST, so
//! the manager signs itself a serving certificate for this port (every manager holds the
//! cluster CA), naming its listen and advertise addresses, `localhost` and its hostname.
//! Its subject's OU is no node role, so it is good for nothing but serving this port. It
//! is re-issued half-way through its life.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose, Issuer, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{RootCertStore, ServerConfig};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use tracing::{debug, info, warn};

use crate::ca::authz::Standing;
use crate::ca::{CertRole, PeerIdentity};
use crate::core::Core;

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// Handshakes under way at once; a connection beyond them is closed at once.
const MAX_HANDSHAKES: usize = 256;
/// The OU of the serving certificates: no node role, so authz refuses it everywhere.
const SERVING_OU: &str = "swarmr-docker-api";

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot listen on {addr} for the {purpose}: {source}")]
    Bind {
        addr: SocketAddr,
        purpose: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("the cluster CA certificate does not parse")]
    ParseCa,
    #[error("TLS setup: {0}")]
    Tls(#[from] rustls::Error),
    #[error("sign the serving certificate: {0}")]
    Sign(#[from] rcgen::Error),
}

/// Connections that finished the handshake with a certificate of this cluster.
pub struct TlsListener {
    accepted: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl TlsListener {
    /// Binds `addr` for `purpose` (named in logs: "Docker API") and starts handshaking;
    /// the serving certificate is signed once the store holds the cluster (at once, except
    /// on a manager that just joined).
    pub async fn bind(
        addr: SocketAddr,
        purpose: &'static str,
        core: Core,
        names: Vec<String>,
    ) -> Result<Self, TlsError> {
        let bind_error = |source| TlsError::Bind {
            addr,
            purpose,
            source,
        };
        let tcp = TcpListener::bind(addr).await.map_err(bind_error)?;
        let local = tcp.local_addr().map_err(bind_error)?;
        let cert = Arc::new(Serving(RwLock::new(None)));
        let config = server_config(core.tls().ca_pem(), cert.clone())?;
        let (tx, accepted) = mpsc::channel(64);
        tokio::spawn(keep_certificate(
            core.clone(),
            purpose,
            names,
            cert,
            tx.clone(),
        ));
        tokio::spawn(accept_loop(
            tcp,
            TlsAcceptor::from(config),
            purpose,
            core,
            tx,
        ));
        Ok(Self { accepted, local })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.accepted.recv().await {
            Some(accepted) => accepted,
            // The accept loop only ends with the server; never hand out a connection.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

fn server_config(ca_pem: &str, cert: Arc<Serving>) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = provider();
    let mut roots = RootCertStore::empty();
    for der in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(der.map_err(|_| TlsError::ParseCa)?)?;
    }
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| TlsError::Tls(rustls::Error::General(e.to_string())))?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(cert);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

async fn accept_loop(
    tcp: TcpListener,
    acceptor: TlsAcceptor,
    purpose: &'static str,
    core: Core,
    tx: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
) {
    let cluster_id = core.tls().identity().cluster_id;
    let handshakes = Arc::new(tokio::sync::Semaphore::new(MAX_HANDSHAKES));
    loop {
        let (stream, peer) = tokio::select! {
            accepted = tcp.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    debug!(error = %e, purpose, "accept failed");
                    continue;
                }
            },
            () = tx.closed() => return,
        };
        let Ok(permit) = handshakes.clone().try_acquire_owned() else {
            debug!(%peer, purpose, "too many TLS handshakes under way; connection closed");
            continue;
        };
        let (acceptor, tx, core) = (acceptor.clone(), tx.clone(), core.clone());
        let cluster_id = cluster_id.clone();
        tokio::spawn(async move {
            let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream))
                .await
            {
                Ok(Ok(stream)) => stream,
                Ok(Err(e)) => return debug!(%peer, purpose, error = %e, "TLS handshake refused"),
                Err(_) => return debug!(%peer, purpose, "TLS handshake timed out"),
            };
            drop(permit);
            match client_identity(&stream) {
                Some(id) if allowed(&core, &cluster_id, &id) => {
                    let _ = tx.send((stream, peer)).await;
                }
                _ => {
                    warn!(%peer, purpose, "client refused: it needs a client certificate of this cluster that is not revoked (`swarmr ca issue-client`)")
                }
            }
        });
    }
}

/// A manager of this cluster, or a client certificate on record and not revoked: who
/// may call the Control API over gRPC.
fn allowed(core: &Core, cluster_id: &str, id: &PeerIdentity) -> bool {
    id.cluster_id == cluster_id
        && matches!(id.role, CertRole::Client | CertRole::Manager)
        && crate::standing::standing_of(core, id) == Standing::Member { manages: true }
}

fn client_identity(stream: &TlsStream<TcpStream>) -> Option<PeerIdentity> {
    let chain = stream.get_ref().1.peer_certificates()?;
    PeerIdentity::from_der(chain.first()?).ok()
}

/// The serving certificate handshakes use; `None` until the first is signed.
#[derive(Debug)]
struct Serving(RwLock<Option<Arc<CertifiedKey>>>);

impl ResolvesServerCert for Serving {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        match self.0.read() {
            Ok(slot) => slot.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

/// Signs the serving certificate, and again half-way through each one's life, until the
/// listener goes.
async fn keep_certificate<T>(
    core: Core,
    purpose: &'static str,
    names: Vec<String>,
    slot: Arc<Serving>,
    alive: mpsc::Sender<T>,
) {
    loop {
        let wait = match sign(&core, purpose, &names) {
            Ok((key, lifetime)) => {
                match slot.0.write() {
                    Ok(mut s) => *s = Some(Arc::new(key)),
                    Err(poisoned) => *poisoned.into_inner() = Some(Arc::new(key)),
                }
                info!(names = ?names, purpose, "serving certificate signed");
                lifetime / 2
            }
            Err(e) => {
                debug!(error = %e, purpose, "serving certificate not signed yet; retrying");
                Duration::from_secs(1)
            }
        };
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = alive.closed() => return,
        }
    }
}

fn sign(core: &Core, purpose: &str, names: &[String]) -> Result<(CertifiedKey, Duration), String> {
    let cluster = core.cluster().map_err(|s| s.message().to_string())?;
    let lifetime = Duration::from_secs(cluster.cert_expiry_secs.max(60));
    let cert = signed(
        &cluster.ca_cert_pem,
        &cluster.ca_key_pem,
        &cluster.id,
        &format!("swarmr {purpose}"),
        names,
        lifetime,
    )
    .map_err(|e| e.to_string())?;
    Ok((cert, lifetime))
}

fn signed(
    ca_cert: &str,
    ca_key: &str,
    cluster_id: &str,
    common_name: &str,
    names: &[String],
    lifetime: Duration,
) -> Result<CertifiedKey, TlsError> {
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let issuer = Issuer::from_ca_cert_pem(ca_cert, KeyPair::from_pem(ca_key)?)?;
    let mut params = CertificateParams::new(names.to_vec())?;
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params
        .distinguished_name
        .push(DnType::OrganizationalUnitName, SERVING_OU);
    params
        .distinguished_name
        .push(DnType::OrganizationName, cluster_id);
    crate::ca::leaf_params(&mut params, Duration::from_secs(60), lifetime);
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let cert = params.signed_by(&key, &issuer)?;
    let root = CertificateDer::from_pem_slice(ca_cert.as_bytes()).map_err(|_| TlsError::ParseCa)?;
    let private = PrivateKeyDer::try_from(key.serialize_der())
        .map_err(|e| TlsError::Tls(rustls::Error::General(e.to_string())))?;
    let provider = provider();
    Ok(CertifiedKey::from_der(
        vec![cert.der().clone(), root],
        private,
        &provider,
    )?)
}

/// The names the serving certificate carries: the addresses a client may dial.
pub fn serving_names(
    listen: SocketAddr,
    advertise_ip: Option<IpAddr>,
    hostname: &str,
) -> Vec<String> {
    let mut names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
    let ips = [
        Some(listen.ip()).filter(|ip| !ip.is_unspecified()),
        advertise_ip,
    ];
    names.extend(ips.into_iter().flatten().map(|ip| ip.to_string()));
    if !hostname.is_empty() {
        names.push(hostname.to_string());
    }
    names.dedup();
    names
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}
