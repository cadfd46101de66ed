//! Docker's error shape: `{"message": "..."}` with Docker's status codes, mapped from the
//! Control API's gRPC codes as the Docker daemon maps swarmkit's.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use tonic::{Code, Status};

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    /// An endpoint or operation this manager does not serve.
    pub fn unsupported(what: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::NOT_IMPLEMENTED,
            format!("this is a swarmr manager: {what}"),
        )
    }

    /// Docker answers a stale `version` with swarmkit's "update out of sequence", as an
    /// internal error (HTTP 500), so clients that match on it keep working.
    pub fn from_update(status: Status) -> Self {
        if status.code() == Code::Aborted {
            let message = status.message();
            let message = match message.starts_with("update out of sequence") {
                true => message.to_string(),
                false => format!("update out of sequence: {message}"),
            };
            return Self::new(StatusCode::INTERNAL_SERVER_ERROR, message);
        }
        status.into()
    }
}

impl From<Status> for ApiError {
    fn from(status: Status) -> Self {
        let code = match status.code() {
            Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => {
                StatusCode::BAD_REQUEST
            }
            Code::NotFound => StatusCode::NOT_FOUND,
            Code::AlreadyExists => StatusCode::CONFLICT,
            Code::PermissionDenied => StatusCode::FORBIDDEN,
            Code::Unauthenticated => StatusCode::UNAUTHORIZED,
            Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Self::new(code, status.message())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "message": self.message });
        (self.status, Json(body)).into_response()
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
