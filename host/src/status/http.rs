//! The status HTTP server that `provisioner run` starts: the web page, a
//! JSON API with the same data as the CLI, `/metrics`, a health check, and
//! the operator's actions (retry, resume, approve removals), which need the
//! bearer token from `[status] token`.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::json;
use subtle::ConstantTimeEq;
use tokio::sync::Notify;

use super::{model, page};
use crate::config::{Config, RuleSet};
use crate::directory::{AttributeSchema, Directory};
use crate::state::StateDb;
use crate::sync::links::Links;

/// What the handlers share.
pub struct StatusState {
    pub db: Arc<StateDb>,
    pub config: Arc<Config>,
    pub rules: Arc<RuleSet>,
    pub schema: AttributeSchema,
    pub token: Option<SecretString>,
    /// Wakes the scheduler after an operator action.
    pub kick: Arc<Notify>,
}

type Shared = Arc<StatusState>;

fn problem(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

fn internal(error: impl std::fmt::Display) -> Response {
    tracing::error!(%error, "status request failed");
    problem(StatusCode::INTERNAL_SERVER_ERROR, error.to_string())
}

/// Why an operator action was refused.
struct Unauthorized(&'static str);

impl IntoResponse for Unauthorized {
    fn into_response(self) -> Response {
        let mut response = problem(StatusCode::UNAUTHORIZED, self.0);
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer"),
        );
        response
    }
}

/// Checks `Authorization: Bearer <token>` in constant time.
fn authorized(state: &StatusState, headers: &HeaderMap) -> Result<(), Unauthorized> {
    let Some(expected) = &state.token else {
        return Err(Unauthorized(
            "no operator token is configured; set [status] token in provisioner.toml",
        ));
    };
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let good = presented
        .as_bytes()
        .ct_eq(expected.expose_secret().as_bytes())
        .into();
    if good {
        Ok(())
    } else {
        Err(Unauthorized("a valid operator token is required"))
    }
}

pub fn router(state: Shared) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/healthz", get(health))
        .route("/metrics", get(metrics))
        .route("/api/status", get(status))
        .route("/api/failures", get(failures))
        .route("/api/people/{id}", get(person))
        .route("/api/audit", get(audit))
        .route("/api/retry", post(retry))
        .route("/api/connections/{name}/resume", post(resume))
        .route("/api/rules/{name}/approve-removals", post(approve))
        .with_state(state)
}

/// Serves until the future resolves; returns the bound address at once.
pub async fn serve(
    addr: SocketAddr,
    state: Shared,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let app = router(state);
    let task = tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            tracing::error!(%error, "the status server stopped");
        }
    });
    Ok((bound, task))
}

async fn index(State(state): State<Shared>) -> Response {
    match model::overview(&state.db, &state.schema, &state.config, &state.rules) {
        Ok(overview) => {
            Html(page::render(&overview, state.token.is_some()).into_string()).into_response()
        }
        Err(error) => internal(error),
    }
}

async fn health(State(state): State<Shared>) -> Response {
    match state
        .db
        .lock()
        .query_row("SELECT 1", [], |r| r.get::<_, i64>(0))
    {
        Ok(_) => Json(json!({ "status": "ok" })).into_response(),
        Err(error) => problem(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("state file: {error}"),
        ),
    }
}

async fn metrics(State(state): State<Shared>) -> Response {
    let connections: Vec<String> = state.config.connection_names().map(String::from).collect();
    match super::metrics::render(&state.db, &connections) {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(error) => internal(error),
    }
}

async fn status(State(state): State<Shared>) -> Response {
    match model::overview(&state.db, &state.schema, &state.config, &state.rules) {
        Ok(overview) => Json(overview).into_response(),
        Err(error) => internal(error),
    }
}

async fn failures(State(state): State<Shared>) -> Response {
    match model::overview(&state.db, &state.schema, &state.config, &state.rules) {
        Ok(overview) => Json(overview.failures).into_response(),
        Err(error) => internal(error),
    }
}

async fn person(State(state): State<Shared>, Path(id): Path<String>) -> Response {
    let directory = Directory::new(&state.db, state.schema.clone());
    match model::find_person(&directory, &id) {
        Ok(Some(person)) => match model::person(&state.db, &state.rules, person) {
            Ok(status) => Json(status).into_response(),
            Err(error) => internal(error),
        },
        Ok(None) => problem(StatusCode::NOT_FOUND, format!("no person {id:?}")),
        Err(error) => internal(error),
    }
}

#[derive(Deserialize)]
struct AuditQuery {
    person: Option<String>,
    rule: Option<String>,
    /// Milliseconds since the epoch.
    since: Option<i64>,
    limit: Option<usize>,
}

async fn audit(State(state): State<Shared>, Query(query): Query<AuditQuery>) -> Response {
    match Links::new(&state.db).journal(
        query.person.as_deref(),
        query.rule.as_deref(),
        query.since,
        query.limit.unwrap_or(100).min(10_000),
    ) {
        Ok(entries) => Json(entries).into_response(),
        Err(error) => internal(error),
    }
}

#[derive(Deserialize, Default)]
struct RetryBody {
    rule: Option<String>,
    person: Option<String>,
}

async fn retry(
    State(state): State<Shared>,
    headers: HeaderMap,
    body: Option<Json<RetryBody>>,
) -> Response {
    if let Err(refused) = authorized(&state, &headers) {
        return refused.into_response();
    }
    let body = body.map(|b| b.0).unwrap_or_default();
    match Links::new(&state.db).retry(body.rule.as_deref(), body.person.as_deref()) {
        Ok(due) => {
            state.kick.notify_one();
            Json(json!({ "due": due })).into_response()
        }
        Err(error) => internal(error),
    }
}

async fn resume(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Response {
    if let Err(refused) = authorized(&state, &headers) {
        return refused.into_response();
    }
    if !state.config.connection_names().any(|n| n == name) {
        return problem(StatusCode::NOT_FOUND, format!("no connection {name:?}"));
    }
    match Links::new(&state.db).resume(&name) {
        Ok(resumed) => {
            state.kick.notify_one();
            Json(json!({ "resumed": resumed })).into_response()
        }
        Err(error) => internal(error),
    }
}

async fn approve(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Response {
    if let Err(refused) = authorized(&state, &headers) {
        return refused.into_response();
    }
    match Links::new(&state.db).approve_removals(&name) {
        Ok(true) => {
            state.kick.notify_one();
            Json(json!({ "approved": true })).into_response()
        }
        Ok(false) => problem(
            StatusCode::CONFLICT,
            format!("rule {name} has no removals waiting for approval"),
        ),
        Err(error) => internal(error),
    }
}
