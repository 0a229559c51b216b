//! JSON errors of the API: `{"error":{"code":"...","message":"..."}}` with a
//! stable code for programs and a message for people. Codes are mapped from
//! [`ErrorKind`] in one place; internal details go to the log, never to clients.

use hyper::header::{HeaderValue, ALLOW, RETRY_AFTER, WWW_AUTHENTICATE};
use hyper::{Response, StatusCode};

use crate::error::{Error, ErrorKind};
use crate::http::Body;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Seconds, for 429.
    retry_after: Option<u64>,
    /// Methods the path answers, for 405.
    allow: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
            allow: None,
        }
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    pub fn bad_json(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_json", message)
    }

    pub fn too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the request body is larger than {} KiB", limit / 1024),
        )
    }

    pub fn rate_limited(retry_after: u64) -> Self {
        ApiError {
            retry_after: Some(retry_after.max(1)),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "too many failed attempts from this address; try again later",
            )
        }
    }

    pub fn method_not_allowed(allow: &[&str]) -> Self {
        ApiError {
            allow: Some(allow.join(", ")),
            ..Self::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                format!("this path answers {}", allow.join(", ")),
            )
        }
    }

    pub fn response(self) -> Response<Body> {
        let body = serde_json::json!({
            "error": { "code": self.code, "message": self.message }
        });
        let mut r = crate::http::json(self.status, &body);
        let h = r.headers_mut();
        if self.status == StatusCode::UNAUTHORIZED {
            h.insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(s) = self.retry_after {
            h.insert(RETRY_AFTER, HeaderValue::from(s));
        }
        if let Some(v) = self.allow.and_then(|a| HeaderValue::from_str(&a).ok()) {
            h.insert(ALLOW, v);
        }
        r
    }
}

impl From<Error> for ApiError {
    /// Status and text from the one public-reply table; the stable code by kind.
    fn from(e: Error) -> Self {
        crate::reply::log("api", &e);
        let code = match e.kind() {
            ErrorKind::NotFound => "not_found",
            ErrorKind::PermissionDenied => "forbidden",
            ErrorKind::AuthFailed => "unauthorized",
            ErrorKind::InvalidInput | ErrorKind::Unsupported => "invalid_request",
            ErrorKind::NotADirectory | ErrorKind::IsADirectory | ErrorKind::DirectoryNotEmpty => {
                "invalid_request"
            }
            ErrorKind::AlreadyExists => "conflict",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::StorageFull => "storage_full",
            ErrorKind::Internal => "internal",
        };
        let status = match e.kind() {
            // Kept as the API has answered them since its first version.
            ErrorKind::NotADirectory | ErrorKind::IsADirectory | ErrorKind::DirectoryNotEmpty => {
                StatusCode::BAD_REQUEST
            }
            k => StatusCode::from_u16(crate::reply::of(k).http)
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        };
        ApiError::new(status, code, crate::reply::text(&e).to_string())
    }
}
