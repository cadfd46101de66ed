//! The cluster's identity: the root CA created at `init`, and the join tokens that pin it.
//!
//! A token is `SWMTKN-1-<digest>-<secret>` as in Docker Swarm: the digest is the SHA-256
//! of the root CA certificate (DER) in base36, zero-padded to 50 characters; the secret is
//! 16 random bytes in base36, zero-padded to 25. One token per role; rotating a role's
//! token makes the old one admit no new node.

mod ids;
mod token;

pub use ids::{new_id, new_raft_id};
pub use token::{check_token, new_token, new_token_with_digest, parse_token, TokenCheck};

use sha2::{Digest, Sha256};

use crate::error::CaError;

/// The root CA, PEM-encoded.
pub struct RootCa {
    pub cert_pem: String,
    pub key_pem: String,
    /// Hex SHA-256 of the certificate's DER.
    pub digest: [u8; 32],
}

impl RootCa {
    /// An ECDSA P-256 root valid for 20 years, as Docker Swarm makes.
    pub fn generate(cluster_id: &str) -> Result<Self, CaError> {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
            .map_err(CaError::GenerateKey)?;
        let mut params = rcgen::CertificateParams::default();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "swarm-ca");
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, cluster_id);
        let now = std::time::SystemTime::now();
        params.not_before = now.into();
        params.not_after = (now + std::time::Duration::from_secs(20 * 365 * 24 * 3600)).into();
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).map_err(CaError::SignRoot)?;
        let digest: [u8; 32] = Sha256::digest(cert.der()).into();
        Ok(Self {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            digest,
        })
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
