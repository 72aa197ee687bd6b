//! The one place where outcomes become gRPC statuses.
//!
//! Handlers return [`ServiceError`]; its variants are outcomes, not causes.
//! Peers receive the short sanitized message; the node's log gets the detail
//! with the request id.

use tonic::{Code, Status};

/// The outcome of a refused or failed call.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum ServiceError {
    /// Malformed request: INVALID_ARGUMENT.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// Unknown peer, unknown key, bad signature, identity mismatch: UNAUTHENTICATED.
    #[error("unauthenticated: {0}")]
    Unauthenticated(&'static str),
    /// No agreement covers it, or the role does not allow it: PERMISSION_DENIED.
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    /// Wrong audience, expired, not yet valid, replayed: FAILED_PRECONDITION.
    #[error("failed precondition: {0}")]
    FailedPrecondition(&'static str),
    /// Rate limit or quota: RESOURCE_EXHAUSTED, with when to retry.
    #[error("resource exhausted: {what}")]
    ResourceExhausted {
        /// Which limit.
        what: &'static str,
        /// Milliseconds until a retry can succeed.
        retry_after_ms: u64,
    },
    /// Storage failed; nothing was disclosed: UNAVAILABLE.
    #[error("unavailable: node is not serving")]
    Unavailable,
    /// A peer refused a step-2 message this node sent (Admin only): FAILED_PRECONDITION
    /// with the peer's status code and message.
    #[error("refused by the peer: {code}: {message}")]
    PeerRefused {
        /// The peer's gRPC status code name.
        code: &'static str,
        /// The peer's (sanitized) message.
        message: String,
    },
    /// A bug or an unexpected local failure: INTERNAL.
    #[error("internal error")]
    Internal,
}

impl ServiceError {
    /// The gRPC code.
    pub fn code(&self) -> Code {
        match self {
            ServiceError::InvalidArgument(_) => Code::InvalidArgument,
            ServiceError::Unauthenticated(_) => Code::Unauthenticated,
            ServiceError::PermissionDenied(_) => Code::PermissionDenied,
            ServiceError::FailedPrecondition(_) => Code::FailedPrecondition,
            ServiceError::ResourceExhausted { .. } => Code::ResourceExhausted,
            ServiceError::Unavailable => Code::Unavailable,
            ServiceError::PeerRefused { .. } => Code::FailedPrecondition,
            ServiceError::Internal => Code::Internal,
        }
    }

    /// `CODE_NAME: detail`, as recorded in audit records.
    pub fn reason(&self) -> String {
        let detail = match self {
            ServiceError::InvalidArgument(m) | ServiceError::PermissionDenied(m) => m.as_str(),
            ServiceError::Unauthenticated(m)
            | ServiceError::FailedPrecondition(m)
            | ServiceError::ResourceExhausted { what: m, .. } => m,
            ServiceError::Unavailable => "store failure",
            ServiceError::PeerRefused { code, .. } => code,
            ServiceError::Internal => "internal",
        };
        format!("{}: {detail}", code_name(self.code()))
    }
}

impl From<ServiceError> for Status {
    fn from(e: ServiceError) -> Status {
        let message = match &e {
            ServiceError::InvalidArgument(m) | ServiceError::PermissionDenied(m) => m.clone(),
            ServiceError::Unauthenticated(m)
            | ServiceError::FailedPrecondition(m)
            | ServiceError::ResourceExhausted { what: m, .. } => (*m).to_owned(),
            ServiceError::Unavailable => "node is not serving".to_owned(),
            ServiceError::PeerRefused { code, message } => {
                format!("refused by the peer: {code}: {message}")
            }
            ServiceError::Internal => "internal error".to_owned(),
        };
        let mut status = Status::new(e.code(), message);
        if let ServiceError::ResourceExhausted { retry_after_ms, .. } = e {
            // When a retry can succeed, in milliseconds (docs/protocol.md).
            if let Ok(v) = retry_after_ms.to_string().parse() {
                status.metadata_mut().insert("retry-after-ms", v);
            }
        }
        status
    }
}

/// The canonical upper-case name of a gRPC code (`PERMISSION_DENIED`).
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}
