//! Who is on the other end: the subject of a certificate rustls has already verified
//! against the cluster CA (a TLS peer), or of this node's own certificate.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls::pki_types::{pem::PemObject, CertificateDer};
use x509_parser::prelude::{FromDer, X509Certificate};

use super::issue::CertRole;
use crate::error::CaError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerIdentity {
    /// CN: the node id (or a client's id).
    pub id: String,
    /// OU.
    pub role: CertRole,
    /// O.
    pub cluster_id: String,
    pub not_before: SystemTime,
    pub not_after: SystemTime,
}

impl PeerIdentity {
    pub fn from_der(der: &[u8]) -> Result<Self, CaError> {
        let (_, cert) = X509Certificate::from_der(der).map_err(|_| CaError::ParseCert)?;
        let subject = cert.subject();
        let text = |attr: Option<&x509_parser::x509::AttributeTypeAndValue<'_>>| {
            attr.and_then(|a| a.as_str().ok()).map(str::to_string)
        };
        let id = text(subject.iter_common_name().next()).ok_or(CaError::ParseCert)?;
        let ou = text(subject.iter_organizational_unit().next()).unwrap_or_default();
        let role = CertRole::from_ou(&ou).ok_or(CaError::ParseCert)?;
        let cluster_id = text(subject.iter_organization().next()).unwrap_or_default();
        let at = |secs: i64| UNIX_EPOCH + Duration::from_secs(secs.max(0) as u64);
        Ok(Self {
            id,
            role,
            cluster_id,
            not_before: at(cert.validity().not_before.timestamp()),
            not_after: at(cert.validity().not_after.timestamp()),
        })
    }

    /// The first certificate of a PEM chain.
    pub fn from_pem(pem: &str) -> Result<Self, CaError> {
        let der = CertificateDer::from_pem_slice(pem.as_bytes()).map_err(|_| CaError::ParseCert)?;
        Self::from_der(&der)
    }

    /// When to ask for a new certificate: half-way through its life, as Docker Swarm
    /// does (it picks a random point between 50% and 80%).
    pub fn renew_at(&self) -> SystemTime {
        let lifetime = self
            .not_after
            .duration_since(self.not_before)
            .unwrap_or_default();
        self.not_before + lifetime / 2
    }
}
