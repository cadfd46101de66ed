//! Node and client certificates: the CSR a node makes for its own key, and the certificate
//! a manager signs for it with the root CA.
//!
//! The subject is the manager's choice, never the CSR's: CN = node id, OU = role, O =
//! cluster id, as in Docker Swarm. SANs name what a peer dials: every node cert holds
//! `swarm-worker` (workers serve Logs) and manager certs also `swarm-manager`, so a node
//! dialling "a manager" refuses a worker that pretends to be one.

use std::time::{Duration, SystemTime};

use rand::RngCore;
use rcgen::{
    CertificateParams, CertificateSigningRequestParams, DnType, ExtendedKeyUsagePurpose, Issuer,
    KeyPair, KeyUsagePurpose, SerialNumber,
};

use crate::error::CaError;

/// The OU of a node or client certificate, which decides what its holder may call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertRole {
    Manager,
    Worker,
    /// A remote CLI: the Control API only.
    Client,
}

impl CertRole {
    pub fn ou(self) -> &'static str {
        match self {
            CertRole::Manager => "swarm-manager",
            CertRole::Worker => "swarm-worker",
            CertRole::Client => "swarm-client",
        }
    }

    pub fn from_ou(ou: &str) -> Option<Self> {
        [CertRole::Manager, CertRole::Worker, CertRole::Client]
            .into_iter()
            .find(|r| r.ou() == ou)
    }
}

/// The server name a node verifies when it dials a manager (sessions, Raft, forwarding).
pub const MANAGER_NAME: &str = "swarm-manager";
/// The server name a manager verifies when it dials any node (Logs).
pub const NODE_NAME: &str = "swarm-worker";

/// Lifetime of node certificates unless `init --cert-expiry` says otherwise.
pub const DEFAULT_CERT_EXPIRY: Duration = Duration::from_secs(90 * 24 * 3600);

/// A fresh P-256 key (PEM) and a CSR for it (PEM).
pub fn new_key_and_csr() -> Result<(String, String), CaError> {
    let key =
        KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(CaError::GenerateKey)?;
    let key_pem = key.serialize_pem();
    let csr = csr_for_key(&key_pem)?;
    Ok((key_pem, csr))
}

/// A CSR for an existing key (PEM): a retried join presents the same key again.
pub fn csr_for_key(key_pem: &str) -> Result<String, CaError> {
    let key = KeyPair::from_pem(key_pem).map_err(CaError::GenerateKey)?;
    CertificateParams::default()
        .serialize_request(&key)
        .and_then(|csr| csr.pem())
        .map_err(CaError::MakeCsr)
}

/// Hex SHA-256 of the public key in `csr_pem`, once its signature proved the requester
/// holds the key: what tells a retried join from a new node.
pub fn csr_key_digest(csr_pem: &str) -> Result<String, CaError> {
    use rcgen::PublicKeyData;
    use sha2::{Digest, Sha256};
    let csr = CertificateSigningRequestParams::from_pem(csr_pem).map_err(CaError::BadCsr)?;
    Ok(super::hex(&Sha256::digest(csr.public_key.der_bytes())))
}

/// Who a certificate is for.
pub struct Subject<'a> {
    pub common_name: &'a str,
    pub role: CertRole,
    pub cluster_id: &'a str,
}

/// Signs `csr_pem` (whose signature proves the requester holds the key) for `subject`,
/// valid for `lifetime` from now.
pub fn issue(
    ca_cert_pem: &str,
    ca_key_pem: &str,
    csr_pem: &str,
    subject: &Subject<'_>,
    lifetime: Duration,
) -> Result<String, CaError> {
    let csr = CertificateSigningRequestParams::from_pem(csr_pem).map_err(CaError::BadCsr)?;
    if csr.public_key.algorithm() != &rcgen::PKCS_ECDSA_P256_SHA256 {
        return Err(CaError::KeyType);
    }
    let ca_key = KeyPair::from_pem(ca_key_pem).map_err(CaError::LoadRoot)?;
    let issuer = Issuer::from_ca_cert_pem(ca_cert_pem, ca_key).map_err(CaError::LoadRoot)?;
    let mut sans = vec![subject.common_name.to_string()];
    match subject.role {
        CertRole::Manager => sans.extend([MANAGER_NAME.into(), NODE_NAME.into()]),
        CertRole::Worker => sans.push(NODE_NAME.into()),
        CertRole::Client => {}
    }
    let mut params = CertificateParams::new(sans).map_err(CaError::Sign)?;
    let dn = &mut params.distinguished_name;
    dn.push(DnType::CommonName, subject.common_name);
    dn.push(DnType::OrganizationalUnitName, subject.role.ou());
    dn.push(DnType::OrganizationName, subject.cluster_id);
    // A little slack for clocks that disagree, but never more than a tenth of the
    // lifetime, or a short test lifetime would be due for renewal at once.
    let skew = (lifetime / 10).min(Duration::from_secs(60));
    leaf_params(&mut params, skew, lifetime);
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params.use_authority_key_identifier_extension = true;
    let cert = params
        .signed_by(&csr.public_key, &issuer)
        .map_err(CaError::Sign)?;
    Ok(cert.pem())
}

/// What every leaf the cluster CA signs has: valid from `skew` ago (clocks disagree) for
/// `lifetime` from now, a random positive serial, and signing as its one key usage.
pub fn leaf_params(params: &mut CertificateParams, skew: Duration, lifetime: Duration) {
    let now = SystemTime::now();
    params.not_before = (now - skew).into();
    params.not_after = (now + lifetime).into();
    let mut serial = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut serial);
    serial[0] &= 0x7f;
    params.serial_number = Some(SerialNumber::from_slice(&serial));
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ca::{peer::PeerIdentity, RootCa};

    /// A one-minute worker certificate for `node1` of `cluster1`, from a new root CA.
    fn issue_for_node1(csr: &str) -> Result<String, CaError> {
        let root = RootCa::generate("cluster1").unwrap();
        let subject = Subject {
            common_name: "node1",
            role: CertRole::Worker,
            cluster_id: "cluster1",
        };
        let lifetime = Duration::from_secs(60);
        issue(&root.cert_pem, &root.key_pem, csr, &subject, lifetime)
    }

    #[test]
    fn issued_certs_carry_the_managers_subject_not_the_csrs() {
        let (_key, csr) = new_key_and_csr().unwrap();
        let pem = issue_for_node1(&csr).unwrap();
        let peer = PeerIdentity::from_pem(&pem).unwrap();
        assert_eq!(peer.id, "node1");
        assert_eq!(peer.role, CertRole::Worker);
        assert_eq!(peer.cluster_id, "cluster1");
        let lifetime = peer.not_after.duration_since(peer.not_before).unwrap();
        assert_eq!(lifetime, Duration::from_secs(66));
    }

    #[test]
    fn a_tampered_csr_is_refused() {
        let tampered =
            "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n";
        let err = issue_for_node1(tampered).unwrap_err();
        assert!(matches!(err, CaError::BadCsr(_)), "{err}");
    }
}
