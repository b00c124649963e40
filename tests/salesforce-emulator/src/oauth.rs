//! `POST /services/oauth2/token`, as Salesforce answers it: form-encoded
//! grants, `issued_at` as a string of epoch milliseconds, no `expires_in`,
//! and `{"error", "error_description"}` on failure.

use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::extract::{Form, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::Shared;

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new().route("/services/oauth2/token", post(token))
}

#[derive(Deserialize)]
struct TokenForm {
    grant_type: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    refresh_token: Option<String>,
}

fn refuse(error: &str, description: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({ "error": error, "error_description": description })),
    )
        .into_response()
}

fn millis() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

async fn token(State(shared): State<Arc<Shared>>, Form(form): Form<TokenForm>) -> Response {
    let grant = form.grant_type.clone().unwrap_or_default();
    let mut state = shared.lock();
    *state
        .counters
        .token_requests
        .entry(if grant.is_empty() {
            "none".into()
        } else {
            grant.clone()
        })
        .or_default() += 1;
    if grant != "refresh_token" && grant != "client_credentials" {
        return refuse("unsupported_grant_type", "grant type not supported");
    }
    if form.client_id.as_deref() != Some(shared.options.client_id.as_str()) {
        return refuse("invalid_client_id", "client identifier invalid");
    }
    if form.client_secret.as_deref() != Some(shared.options.client_secret.as_str()) {
        return refuse("invalid_client", "invalid client credentials");
    }
    let mut rotated = None;
    if grant == "refresh_token" {
        let presented = form.refresh_token.unwrap_or_default();
        if !state.refresh_tokens.contains(&presented) {
            return refuse("invalid_grant", "expired access/refresh token");
        }
        if shared.options.rotate_refresh_tokens {
            state.issued += 1;
            let fresh = format!("5Aep861{}{:010}", millis(), state.issued);
            state.refresh_tokens.remove(&presented);
            state.refresh_tokens.insert(fresh.clone());
            rotated = Some(fresh);
        }
    }
    state.issued += 1;
    let access = format!(
        "{}!AQ0AQ{}{:08}",
        &shared.options.org_id[..15],
        millis(),
        state.issued
    );
    state.sessions.insert(access.clone(), Instant::now());
    let instance_url = shared
        .options
        .instance_url
        .clone()
        .unwrap_or_else(|| shared.base_url.clone());
    let mut body = json!({
        "access_token": access,
        "instance_url": instance_url,
        "id": format!("https://login.salesforce.com/id/{}/{}", shared.options.org_id, shared.user_id()),
        "token_type": "Bearer",
        "issued_at": millis().to_string(),
        "signature": "d2hhdGV2ZXIgdGhlIHNpZ25hdHVyZSBpcw==",
        "scope": "api refresh_token",
    });
    if let Some(fresh) = rotated {
        body["refresh_token"] = Value::from(fresh);
    }
    (StatusCode::OK, Json(body)).into_response()
}
