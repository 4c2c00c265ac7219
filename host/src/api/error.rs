//! Errors → HTTP answers, in one place: a status, a stable `code` and a human `detail`.
//! Anything unexpected is logged with context and answered as an opaque 500.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::auth::{AuthError, LoginError};
use crate::{plugins, service, store};

/// An error answer.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// A stable, machine-readable code, e.g. `not_found`.
    pub code: &'static str,
    /// What went wrong, for people.
    pub detail: String,
    /// Seconds to wait, for 429.
    pub retry_after: Option<u64>,
}

/// The JSON body of every error.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// A stable, machine-readable code, e.g. `not_found`.
    pub code: &'static str,
    /// What went wrong, for people.
    pub detail: String,
}

impl ApiError {
    /// An error with that status, code and detail.
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            code,
            detail: detail.into(),
            retry_after: None,
        }
    }

    /// 400 with code `invalid_request`.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", detail)
    }

    /// 404 with code `not_found`.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", detail)
    }

    /// 401 with code `unauthenticated`.
    pub fn unauthenticated() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "a valid access token for this tenant is required (Authorization: Bearer …)",
        )
    }

    /// 403 with code `forbidden`.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", detail)
    }

    /// 500, logging the cause.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "an internal error occurred; it was logged",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            code: self.code,
            detail: self.detail.clone(),
        };
        let mut response = (self.status, Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

impl From<service::Error> for ApiError {
    fn from(e: service::Error) -> Self {
        match e {
            service::Error::NotFound(what) => Self::not_found(format!("{what} not found")),
            service::Error::Invalid(detail) => {
                Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", detail)
            }
            service::Error::Forbidden(detail) => Self::forbidden(detail),
            service::Error::Conflict(detail) => Self::new(StatusCode::CONFLICT, "conflict", detail),
            service::Error::Store(e) => Self::internal(&e),
        }
    }
}

impl From<store::Error> for ApiError {
    fn from(e: store::Error) -> Self {
        Self::internal(&e)
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Unauthenticated => Self::unauthenticated(),
            AuthError::Store(e) => Self::internal(&e),
        }
    }
}

impl From<LoginError> for ApiError {
    fn from(e: LoginError) -> Self {
        match e {
            LoginError::Invalid => Self::new(
                StatusCode::UNAUTHORIZED,
                "invalid_credentials",
                "the account, token and TOTP code do not match",
            ),
            LoginError::Locked { retry_after } => Self {
                retry_after: Some(retry_after),
                ..Self::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too_many_attempts",
                    "too many failed logins; the account is locked for a while",
                )
            },
            LoginError::Store(e) => Self::internal(&e),
        }
    }
}

impl From<plugins::Error> for ApiError {
    fn from(e: plugins::Error) -> Self {
        let status = match &e {
            plugins::Error::NotFound(_) => StatusCode::NOT_FOUND,
            plugins::Error::BuiltIn(_) => StatusCode::CONFLICT,
            // A component that misbehaves while it is validated is refused like garbage.
            plugins::Error::Invalid(_)
            | plugins::Error::WrongKind { .. }
            | plugins::Error::InvalidSettings(_)
            | plugins::Error::Timeout
            | plugins::Error::Trap(_)
            | plugins::Error::ResourceLimit(_)
            | plugins::Error::BadOutput(_)
            | plugins::Error::Rejected(_) => StatusCode::UNPROCESSABLE_ENTITY,
            plugins::Error::Io(_) | plugins::Error::Engine(_) => return Self::internal(&e),
        };
        Self::new(status, e.code(), e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_errors_map_to_client_statuses_with_their_code() {
        let cases = [
            (plugins::Error::NotFound("x".into()), StatusCode::NOT_FOUND),
            (plugins::Error::BuiltIn("json".into()), StatusCode::CONFLICT),
            (
                plugins::Error::Invalid("not a component".into()),
                StatusCode::UNPROCESSABLE_ENTITY,
            ),
            (plugins::Error::Timeout, StatusCode::UNPROCESSABLE_ENTITY),
            (
                plugins::Error::Trap("unreachable".into()),
                StatusCode::UNPROCESSABLE_ENTITY,
            ),
        ];
        for (error, status) in cases {
            let code = error.code();
            let detail = error.to_string();
            let answer = ApiError::from(error);
            assert_eq!(answer.status, status, "{code}");
            assert_eq!(answer.code, code);
            assert_eq!(answer.detail, detail);
        }
    }

    #[test]
    fn plugin_engine_failures_are_opaque() {
        let answer = ApiError::from(plugins::Error::Engine("secret internals".into()));
        assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!answer.detail.contains("secret internals"));
    }
}
