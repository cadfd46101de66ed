//! Trust on first contact, pinned by the join token: a joining node trusts no CA yet, so
//! it takes the one the manager presents (the last certificate of its chain) only if that
//! CA's digest is the one in the token, and only if the manager's certificate is signed by
//! it. The secret is sent afterwards, over a connection verified against that CA alone, so
//! a man-in-the-middle never sees it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use sha2::{Digest, Sha256};
use thiserror::Error;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::ids::base36;
use super::issue::MANAGER_NAME;
use super::tls::provider;

#[derive(Debug, Error)]
pub enum PinError {
    #[error("cannot reach the manager at {0}: check the address and that port 2377/tcp is open")]
    Unreachable(String, #[source] std::io::Error),
    #[error("the manager at {0} presented a CA whose digest does not match the join token: the token is for another cluster, or this is a man-in-the-middle; nothing was sent")]
    Mismatch(String),
    #[error("TLS with the manager at {0} failed")]
    Handshake(String, #[source] std::io::Error),
}

/// Connects to `addr` and returns its CA certificate (PEM) if its digest is `digest36`
/// (the base36 digest from the join token).
pub async fn fetch_pinned_ca(
    addr: &str,
    digest36: &str,
    timeout: Duration,
) -> Result<String, PinError> {
    let verifier = Arc::new(PinnedCa {
        digest36: digest36.to_string(),
        provider: provider(),
        outcome: Mutex::new(None),
    });
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| PinError::Handshake(addr.into(), std::io::Error::other(e)))?
        .dangerous()
        .with_custom_certificate_verifier(verifier.clone())
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let name = ServerName::try_from(MANAGER_NAME)
        .map_err(|e| PinError::Handshake(addr.into(), std::io::Error::other(e.to_string())))?;
    let tcp = tokio::time::timeout(timeout, TcpStream::connect(addr))
        .await
        .map_err(|_| PinError::Unreachable(addr.into(), std::io::ErrorKind::TimedOut.into()))?
        .map_err(|e| PinError::Unreachable(addr.into(), e))?;
    let handshake = TlsConnector::from(Arc::new(config)).connect(name, tcp);
    let result = tokio::time::timeout(timeout, handshake)
        .await
        .map_err(|_| PinError::Unreachable(addr.into(), std::io::ErrorKind::TimedOut.into()))?;
    let outcome = verifier.outcome.lock().ok().and_then(|mut o| o.take());
    match (result, outcome) {
        (Ok(_), Some(Pinned::Ca(der))) => Ok(pem(&der)),
        (_, Some(Pinned::Mismatch)) => Err(PinError::Mismatch(addr.into())),
        (Err(e), _) => Err(PinError::Handshake(addr.into(), e)),
        (Ok(_), None) => Err(PinError::Handshake(
            addr.into(),
            std::io::Error::other("the manager's certificate was never checked"),
        )),
    }
}

fn pem(der: &[u8]) -> String {
    pem::encode(&pem::Pem::new("CERTIFICATE", der.to_vec()))
}

fn digest36(der: &[u8]) -> String {
    let digest: [u8; 32] = Sha256::digest(der).into();
    base36(&digest, 50)
}

/// What the verifier saw: the pinned CA (DER), or a CA with another digest.
#[derive(Debug)]
enum Pinned {
    Ca(Vec<u8>),
    Mismatch,
}

#[derive(Debug)]
struct PinnedCa {
    digest36: String,
    provider: Arc<CryptoProvider>,
    outcome: Mutex<Option<Pinned>>,
}

impl PinnedCa {
    fn record(&self, pinned: Pinned) {
        if let Ok(mut outcome) = self.outcome.lock() {
            *outcome = Some(pinned);
        }
    }
}

impl ServerCertVerifier for PinnedCa {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(ca) = intermediates.last() else {
            self.record(Pinned::Mismatch);
            return Err(rustls::Error::General("the manager sent no CA".into()));
        };
        if digest36(ca) != self.digest36 {
            self.record(Pinned::Mismatch);
            return Err(rustls::Error::General("CA digest mismatch".into()));
        }
        let mut roots = RootCertStore::empty();
        roots.add(ca.clone().into_owned())?;
        let inner =
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), self.provider.clone())
                .build()
                .map_err(|e| rustls::Error::General(e.to_string()))?;
        let verified = inner.verify_server_cert(end_entity, &[], server_name, ocsp, now)?;
        self.record(Pinned::Ca(ca.to_vec()));
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
