//! Mutual TLS between nodes, with rustls and the ring provider.
//!
//! [`NodeTls`] holds the cluster CA (the only root any node trusts) and this node's
//! current certificate behind a lock: the server and every client connection pick the
//! certificate at handshake time, so a renewal ([`NodeTls::replace`]) takes effect on the
//! next connection without restarting the server or rebuilding channels.
//!
//! The server asks every client for a certificate but lets one without through the
//! handshake: `Join` is the one call a node without a certificate must reach. What each
//! caller may call is decided per request by [`super::authz`], from the verified chain.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use rustls::client::{ResolvesClientCert, Resumption};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, RootCertStore, ServerConfig, SignatureScheme};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::server::TlsStream;
use tokio_rustls::{TlsAcceptor, TlsConnector};
use tonic::transport::{Channel, Endpoint, Uri};
use tracing::debug;

use super::handshakes::Handshakes;
use super::peer::PeerIdentity;
use crate::error::CaError;

/// TCP connect plus TLS handshake, for one attempt.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// A client that opens a connection and never finishes the handshake is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// This node's TLS identity: the CA, its certificate and key.
#[derive(Clone)]
pub struct NodeTls {
    inner: Arc<Inner>,
}

struct Inner {
    ca_pem: String,
    current: Arc<Current>,
    server: Arc<ServerConfig>,
    client: Arc<ClientConfig>,
}

impl NodeTls {
    pub fn new(ca_pem: &str, cert_pem: &str, key_pem: &str) -> Result<Self, CaError> {
        let provider = provider();
        let roots = Arc::new(roots(ca_pem)?);
        let current = Arc::new(Current(RwLock::new(Loaded::new(
            ca_pem, cert_pem, key_pem, &provider,
        )?)));
        let verifier = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
            .allow_unauthenticated()
            .build()
            .map_err(|e| CaError::Tls(rustls::Error::General(e.to_string())))?;
        let mut server = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(CaError::Tls)?
            .with_client_cert_verifier(verifier)
            .with_cert_resolver(current.clone());
        server.alpn_protocols = vec![b"h2".to_vec()];
        // No session resumption: a resumed session carries the client certificate of the
        // first handshake, so a renewed or re-issued certificate would go unseen.
        server.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
        server.send_tls13_tickets = 0;
        let mut client = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(CaError::Tls)?
            .with_root_certificates(roots)
            .with_client_cert_resolver(current.clone());
        client.alpn_protocols = vec![b"h2".to_vec()];
        client.resumption = Resumption::disabled();
        Ok(Self {
            inner: Arc::new(Inner {
                ca_pem: ca_pem.to_string(),
                current,
                server: Arc::new(server),
                client: Arc::new(client),
            }),
        })
    }

    /// Swaps in a renewed (or re-issued) certificate for every later handshake.
    pub fn replace(&self, cert_pem: &str, key_pem: &str) -> Result<(), CaError> {
        let loaded = Loaded::new(&self.inner.ca_pem, cert_pem, key_pem, &provider())?;
        match self.inner.current.0.write() {
            Ok(mut slot) => *slot = loaded,
            Err(poisoned) => *poisoned.into_inner() = loaded,
        }
        Ok(())
    }

    /// The subject and validity of the current certificate.
    pub fn identity(&self) -> PeerIdentity {
        self.inner.current.get().identity
    }

    pub fn ca_pem(&self) -> &str {
        &self.inner.ca_pem
    }

    /// A lazily connected channel to the node at `addr`, which must present a certificate
    /// of this cluster naming `server_name` ([`super::MANAGER_NAME`] or
    /// [`super::NODE_NAME`]).
    pub fn channel(&self, addr: &str, server_name: &'static str) -> Result<Channel, CaError> {
        // Between nodes, a dead peer must show within seconds (failover, sessions).
        let endpoint = endpoint(addr)?
            .http2_keep_alive_interval(Duration::from_secs(1))
            .keep_alive_timeout(Duration::from_secs(2));
        connect_lazy(endpoint, self.inner.client.clone(), addr, server_name)
    }

    /// TLS connections accepted on `listener`, handshakes done off the accept loop so
    /// one slow client holds up no other, within the bounds of [`Handshakes`]. The loop
    /// ends when the stream is dropped.
    pub fn incoming(
        &self,
        listener: TcpListener,
    ) -> tokio_stream::wrappers::ReceiverStream<Result<TlsStream<TcpStream>, std::io::Error>> {
        let (tx, rx) = mpsc::channel(64);
        let acceptor = TlsAcceptor::from(self.inner.server.clone());
        let handshakes = Handshakes::default();
        tokio::spawn(async move {
            loop {
                let (tcp, peer) = tokio::select! {
                    accepted = listener.accept() => match accepted {
                        Ok(accepted) => accepted,
                        Err(e) => {
                            debug!(error = %e, "accept failed");
                            continue;
                        }
                    },
                    () = tx.closed() => return,
                };
                let slot = match handshakes.admit(peer.ip(), std::time::Instant::now()) {
                    Ok(slot) => slot,
                    Err(refusal) => {
                        debug!(%peer, ?refusal, "connection closed: too many TLS handshakes");
                        continue;
                    }
                };
                let _ = tcp.set_nodelay(true);
                let (acceptor, tx) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    let _slot = slot;
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => {
                            let _ = tx.send(Ok(stream)).await;
                        }
                        // A plaintext client, a foreign CA, an expired certificate: the
                        // peer got its alert; nothing to serve.
                        Ok(Err(e)) => debug!(%peer, error = %e, "TLS handshake refused"),
                        Err(_) => debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        tokio_stream::wrappers::ReceiverStream::new(rx)
    }
}

/// A channel that speaks TLS with `config`, verifying the server as `server_name`: for a
/// CLI or a joining node, whose calls may wait on a busy manager (no keep-alive probes).
pub fn channel_with(
    config: Arc<ClientConfig>,
    addr: &str,
    server_name: &'static str,
) -> Result<Channel, CaError> {
    connect_lazy(endpoint(addr)?, config, addr, server_name)
}

fn endpoint(addr: &str) -> Result<Endpoint, CaError> {
    // The URI only labels the channel: the connector dials `addr` itself.
    Ok(Endpoint::from_shared(format!("http://{addr}"))
        .map_err(|_| CaError::Address(addr.to_string()))?
        .connect_timeout(CONNECT_TIMEOUT))
}

fn connect_lazy(
    endpoint: Endpoint,
    config: Arc<ClientConfig>,
    addr: &str,
    server_name: &'static str,
) -> Result<Channel, CaError> {
    let name = ServerName::try_from(server_name).map_err(|_| CaError::ServerName)?;
    let addr = addr.to_string();
    let connector = tower::service_fn(move |_: Uri| {
        let (config, name, addr) = (config.clone(), name.clone(), addr.clone());
        async move {
            let connect = async {
                let tcp = TcpStream::connect(&addr).await?;
                tcp.set_nodelay(true)?;
                TlsConnector::from(config).connect(name, tcp).await
            };
            let stream = tokio::time::timeout(CONNECT_TIMEOUT, connect)
                .await
                .map_err(|_| std::io::Error::other(format!("connect to {addr} timed out")))??;
            Ok::<_, std::io::Error>(TokioIo::new(stream))
        }
    });
    Ok(endpoint.connect_with_connector_lazy(connector))
}

/// A client configuration that trusts only `ca_pem` and presents no certificate: what a
/// joining node uses for `Join`, once it has pinned the CA.
pub fn anonymous_client(ca_pem: &str) -> Result<Arc<ClientConfig>, CaError> {
    let mut client = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(CaError::Tls)?
        .with_root_certificates(roots(ca_pem)?)
        .with_no_client_auth();
    client.alpn_protocols = vec![b"h2".to_vec()];
    client.resumption = Resumption::disabled();
    Ok(Arc::new(client))
}

/// The same, presenting the certificate in `cert_pem` (a remote CLI's).
pub fn client_with_cert(
    ca_pem: &str,
    cert_pem: &str,
    key_pem: &str,
) -> Result<Arc<ClientConfig>, CaError> {
    let provider = provider();
    let loaded = Loaded::new(ca_pem, cert_pem, key_pem, &provider)?;
    let mut client = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(CaError::Tls)?
        .with_root_certificates(roots(ca_pem)?)
        .with_client_cert_resolver(Arc::new(Current(RwLock::new(loaded))));
    client.alpn_protocols = vec![b"h2".to_vec()];
    client.resumption = Resumption::disabled();
    Ok(Arc::new(client))
}

/// [`client_with_cert`] from files: a remote CLI's `--tls-dir`, or a node's data dir.
pub fn load_client(
    ca: &std::path::Path,
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<Arc<ClientConfig>, CaError> {
    let read = |path: &std::path::Path| {
        std::fs::read_to_string(path).map_err(|e| CaError::Read(path.to_path_buf(), e))
    };
    client_with_cert(&read(ca)?, &read(cert)?, &read(key)?)
}

fn roots(ca_pem: &str) -> Result<RootCertStore, CaError> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots
            .add(cert.map_err(|_| CaError::ParseCert)?)
            .map_err(CaError::Tls)?;
    }
    if roots.is_empty() {
        return Err(CaError::ParseCert);
    }
    Ok(roots)
}

/// A certificate ready for handshakes, and what it says.
#[derive(Debug, Clone)]
struct Loaded {
    key: Arc<CertifiedKey>,
    identity: PeerIdentity,
}

impl Loaded {
    fn new(ca: &str, cert: &str, key: &str, provider: &CryptoProvider) -> Result<Self, CaError> {
        let leaf =
            CertificateDer::from_pem_slice(cert.as_bytes()).map_err(|_| CaError::ParseCert)?;
        let root = CertificateDer::from_pem_slice(ca.as_bytes()).map_err(|_| CaError::ParseCert)?;
        let identity = PeerIdentity::from_der(&leaf)?;
        let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).map_err(|_| CaError::ParseKey)?;
        // The chain carries the root too: a joining node pins it by digest (see `pin`).
        let certified =
            CertifiedKey::from_der(vec![leaf, root], key, provider).map_err(CaError::Tls)?;
        Ok(Self {
            key: Arc::new(certified),
            identity,
        })
    }
}

/// The certificate handshakes use now, on both sides of a connection.
#[derive(Debug)]
struct Current(RwLock<Loaded>);

impl Current {
    fn get(&self) -> Loaded {
        match self.0.read() {
            Ok(slot) => slot.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

impl ResolvesServerCert for Current {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.get().key)
    }
}

impl ResolvesClientCert for Current {
    fn resolve(&self, _: &[&[u8]], _: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        Some(self.get().key)
    }

    fn has_certs(&self) -> bool {
        true
    }
}
