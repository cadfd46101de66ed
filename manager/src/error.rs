//! Errors of the manager, named for the step that failed.

use swarmr_proto::RefusalKind;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("open the state tree")]
    Open(#[source] sled::Error),
    #[error("read the cluster state")]
    Read(#[source] sled::Error),
    #[error("decode a stored object")]
    Decode(#[source] prost::DecodeError),
}

/// Why a write did not commit.
#[derive(Debug, Error)]
pub enum ProposeError {
    /// The state machine refused it; nothing was written.
    #[error("{0}")]
    Rejected(String),
    /// Refused because an object changed since it was read: read again and retry.
    #[error("{0}")]
    Conflict(String),
    /// Refused because another object of the kind has the name.
    #[error("{0}")]
    NameTaken(String),
    /// Refused because another object holds a VNI, subnet or published port this one
    /// claims: one decided again from the new state may fit.
    #[error("{0}")]
    ResourceTaken(String),
    /// This manager could not read its own replica to decide the change.
    #[error("read the cluster state: {}", source_chain(.0))]
    ReadStore(#[from] StoreError),
    #[error("no manager leader answered within {0:?}: the cluster may have lost quorum; make sure more than half of the managers run and reach each other, or recover with `swarmr init --force-new-cluster`")]
    NoLeader(std::time::Duration),
    #[error("the Raft node stopped: {0}")]
    Stopped(String),
    #[error("membership change failed: {0}")]
    Membership(String),
    #[error(
        "the change is too large for one Raft entry ({size} bytes, at most {max}): make it smaller"
    )]
    TooLarge { size: usize, max: usize },
    #[error("the leader did not answer within {0:?}: the write may or may not have been applied; check before retrying")]
    OutcomeUnknown(std::time::Duration),
    /// A leader-only write on a manager that no longer leads: the new leader redoes it
    /// from its own view.
    #[error("this manager is no longer the leader")]
    Deposed,
}

impl ProposeError {
    /// The error of a proposal the state machine refused, by the kind of refusal.
    pub fn refused(kind: RefusalKind, reason: String) -> Self {
        match kind {
            RefusalKind::Invalid => ProposeError::Rejected(reason),
            RefusalKind::Stale => ProposeError::Conflict(reason),
            RefusalKind::NameTaken => ProposeError::NameTaken(reason),
            RefusalKind::ResourceTaken => ProposeError::ResourceTaken(reason),
        }
    }
}

impl From<ProposeError> for tonic::Status {
    fn from(e: ProposeError) -> Self {
        match e {
            ProposeError::Rejected(msg)
            | ProposeError::NameTaken(msg)
            | ProposeError::ResourceTaken(msg) => tonic::Status::failed_precondition(msg),
            ProposeError::Conflict(msg) => tonic::Status::aborted(msg),
            ProposeError::ReadStore(_) => tonic::Status::internal(e.to_string()),
            ProposeError::NoLeader(_) | ProposeError::Stopped(_) | ProposeError::Deposed => {
                tonic::Status::unavailable(e.to_string())
            }
            ProposeError::Membership(_) => tonic::Status::failed_precondition(e.to_string()),
            ProposeError::TooLarge { .. } => tonic::Status::invalid_argument(e.to_string()),
            ProposeError::OutcomeUnknown(_) => tonic::Status::unknown(e.to_string()),
        }
    }
}

impl From<StoreError> for tonic::Status {
    fn from(e: StoreError) -> Self {
        tonic::Status::internal(format!("{e}: {}", source_chain(&e)))
    }
}

fn source_chain(e: &dyn std::error::Error) -> String {
    let mut out = Vec::new();
    let mut cur = e.source();
    while let Some(s) = cur {
        out.push(s.to_string());
        cur = s.source();
    }
    out.join(": ")
}

#[derive(Debug, Error)]
pub enum CaError {
    #[error("generate the CA key")]
    GenerateKey(#[source] rcgen::Error),
    #[error("sign the root CA certificate")]
    SignRoot(#[source] rcgen::Error),
    #[error("make a certificate signing request")]
    MakeCsr(#[source] rcgen::Error),
    #[error("the certificate signing request is invalid")]
    BadCsr(#[source] rcgen::Error),
    #[error("the certificate signing request must be for an ECDSA P-256 key")]
    KeyType,
    #[error("load the cluster CA")]
    LoadRoot(#[source] rcgen::Error),
    #[error("sign the certificate")]
    Sign(#[source] rcgen::Error),
    #[error("a certificate is not a PEM/DER X.509 certificate of this cluster")]
    ParseCert,
    #[error("a private key is not a PEM key")]
    ParseKey,
    #[error("TLS configuration")]
    Tls(#[source] rustls::Error),
    #[error("invalid TLS server name")]
    ServerName,
    #[error("read {0}")]
    Read(std::path::PathBuf, #[source] std::io::Error),
    #[error("invalid address {0}: use IP:PORT")]
    Address(String),
}

#[derive(Debug, Error)]
pub enum ManagerError {
    #[error("open the manager database (is another swarmr using this data dir?)")]
    OpenDb(#[source] sled::Error),
    #[error("open the Raft log (is another swarmr using this data dir?)")]
    OpenLog(#[source] std::io::Error),
    #[error("read the stored state")]
    Store(#[from] StoreError),
    #[error("storage")]
    Storage(#[source] Box<openraft::StorageError<u64>>),
    #[error("invalid Raft configuration")]
    RaftConfig(#[source] Box<openraft::ConfigError>),
    #[error("start Raft: {0}")]
    StartRaft(String),
    #[error("create the cluster CA")]
    Ca(#[from] CaError),
    #[error(transparent)]
    Propose(#[from] ProposeError),
    #[error("keep the data key of secrets and configs")]
    Secrets(#[source] crate::secrets::SecretsError),
}
