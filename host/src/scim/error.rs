//! SCIM error bodies (RFC 7644 §3.12): every refusal the service provider
//! makes is one, with the HTTP status and, where the RFC has one, the
//! `scimType` a client acts on.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

pub const ERROR: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

/// A refused request: what the client gets, and nothing else (no
/// internal detail beyond what names its own input).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} {scim_type:?}: {detail}")]
pub struct ScimError {
    pub status: StatusCode,
    pub scim_type: Option<&'static str>,
    pub detail: String,
}

impl ScimError {
    pub fn new(
        status: StatusCode,
        scim_type: Option<&'static str>,
        detail: impl Into<String>,
    ) -> Self {
        ScimError {
            status,
            scim_type,
            detail: detail.into(),
        }
    }

    /// 400 with a `scimType` of RFC 7644 Table 9.
    pub fn bad(scim_type: &'static str, detail: impl Into<String>) -> Self {
        ScimError::new(StatusCode::BAD_REQUEST, Some(scim_type), detail)
    }

    pub fn invalid_value(detail: impl Into<String>) -> Self {
        ScimError::bad("invalidValue", detail)
    }

    pub fn not_found(what: &str, id: &str) -> Self {
        ScimError::new(
            StatusCode::NOT_FOUND,
            None,
            format!("no {what} {:?}", crate::inert::inert(id)),
        )
    }

    pub fn uniqueness(detail: impl Into<String>) -> Self {
        ScimError::new(StatusCode::CONFLICT, Some("uniqueness"), detail)
    }

    /// 412: the resource changed since the version the client holds.
    pub fn stale() -> Self {
        ScimError::new(
            StatusCode::PRECONDITION_FAILED,
            None,
            "the resource changed since the version in If-Match; read it again",
        )
    }

    /// 500, logged here; the client learns only that it failed.
    pub fn internal(error: impl std::fmt::Display) -> Self {
        tracing::error!(%error, "a SCIM request failed");
        ScimError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            None,
            "the service provider failed to complete the request; nothing was changed unless a read shows it",
        )
    }
}

impl IntoResponse for ScimError {
    fn into_response(self) -> Response {
        let mut body = json!({
            "schemas": [ERROR],
            "status": self.status.as_u16().to_string(),
            "detail": self.detail,
        });
        if let Some(scim_type) = self.scim_type {
            body["scimType"] = scim_type.into();
        }
        (
            self.status,
            [(header::CONTENT_TYPE, super::MEDIA_TYPE)],
            body.to_string(),
        )
            .into_response()
    }
}
