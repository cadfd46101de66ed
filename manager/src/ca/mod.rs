//! The cluster's identity: the root CA created at `init`, and the join tokens that pin it.
//!
//! A token is `SWMTKN-1-<digest>-<secret>` as in Docker Swarm: the digest is the SHA-256
//! of the root CA certificate (DER) in base36, zero-padded to 50 characters; the secret is
//! 16 random bytes in base36, zero-padded to 25. One token per role; rotating a role's
//! token makes the old one admit no new node.
//!
//! The CA also signs every node's certificate (`issue`), which all gRPC between nodes is
//! authenticated with (`tls`, `authz`); a joining node pins the CA by the token's digest
//! before it sends the secret (`pin`).

pub mod authz;
mod handshakes;
mod ids;
mod issue;
mod peer;
mod pin;
mod tls;
mod token;

pub use ids::{new_id, new_raft_id};
pub use issue::{
    csr_for_key, csr_key_digest, issue, leaf_params, new_key_and_csr, CertRole, Subject,
    DEFAULT_CERT_EXPIRY, MANAGER_NAME, NODE_NAME,
};
pub use peer::PeerIdentity;
pub use pin::{fetch_pinned_ca, PinError};
pub use tls::{anonymous_client, channel_with, client_with_cert, load_client, NodeTls};
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

    /// A fresh key and a certificate for it, signed here: what `init` gives its own node.
    /// Returns (certificate, key), PEM.
    pub fn issue_with_new_key(
        &self,
        subject: &Subject<'_>,
        lifetime: std::time::Duration,
    ) -> Result<(String, String), CaError> {
        let (key_pem, csr_pem) = new_key_and_csr()?;
        let cert_pem = issue(&self.cert_pem, &self.key_pem, &csr_pem, subject, lifetime)?;
        Ok((cert_pem, key_pem))
    }
}

/// Signs `csr_pem` for a node of `cluster` in `role`, with the CA held in the cluster
/// object and its certificate lifetime.
pub fn issue_for_cluster(
    cluster: &swarmr_proto::Cluster,
    csr_pem: &str,
    common_name: &str,
    role: CertRole,
) -> Result<String, CaError> {
    let lifetime = cert_lifetime(cluster);
    let subject = Subject {
        common_name,
        role,
        cluster_id: &cluster.id,
    };
    issue(
        &cluster.ca_cert_pem,
        &cluster.ca_key_pem,
        csr_pem,
        &subject,
        lifetime,
    )
}

/// How long certificates the cluster signs are valid (`init --cert-expiry`).
pub fn cert_lifetime(cluster: &swarmr_proto::Cluster) -> std::time::Duration {
    match cluster.cert_expiry_secs {
        0 => DEFAULT_CERT_EXPIRY,
        secs => std::time::Duration::from_secs(secs),
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
