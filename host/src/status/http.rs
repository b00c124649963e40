//! The status HTTP server that `provisioner run` starts: the web page, a
//! JSON API with the same data as the CLI, `/metrics`, a health check, and
//! the operator's actions (retry, resume, approve removals), which need the
//! bearer token from `[status] token`.
//!
//! The page and the API show people's data, so the server is careful about
//! who reads it:
//!
//! - it answers only requests whose `Host` is its own address or a name
//!   under `[status] hosts` (421 otherwise), so that a page on another
//!   site that rebinds its DNS name to this address cannot read the API
//!   from a browser;
//! - listening beyond loopback, it requires the token for every read as
//!   well (as a bearer token, or as the password of HTTP Basic, which a
//!   browser asks for), and refuses to start without one;
//! - every answer forbids framing, sniffing, referrers and caching, and the
//!   page's policy allows only its own script and style, by hash.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::json;
use subtle::ConstantTimeEq;
use tokio::sync::Notify;

use super::{model, page};
use crate::config::{Config, RuleSet};
use crate::directory::{AttributeSchema, Directory};
use crate::state::prelude::*;

/// What the handlers share.
pub struct StatusState {
    pub db: Arc<dyn Store>,
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

/// Why a request was refused for want of the token.
struct Unauthorized {
    message: &'static str,
    /// Offer HTTP Basic, so that a browser asks for the token.
    basic: bool,
}

impl IntoResponse for Unauthorized {
    fn into_response(self) -> Response {
        let mut response = problem(StatusCode::UNAUTHORIZED, self.message);
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        if self.basic {
            response.headers_mut().append(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"provisioner status\", charset=\"UTF-8\""),
            );
        }
        response
    }
}

/// The token a request presents: `Authorization: Bearer <token>`, or, for
/// a read, the password of `Authorization: Basic` (any user name). A
/// browser sends Basic credentials it has cached with any request to the
/// server, a forged cross-site form post included, so they never
/// authorize an action; a Bearer header only the page's own script sets.
fn presented(headers: &HeaderMap, basic: bool) -> Option<Vec<u8>> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    if let Some(token) = value.strip_prefix("Bearer ") {
        return Some(token.as_bytes().to_vec());
    }
    if !basic {
        return None;
    }
    let encoded = value.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let colon = decoded.iter().position(|b| *b == b':')?;
    Some(decoded[colon + 1..].to_vec())
}

/// Checks the presented token in constant time.
fn authorized(state: &StatusState, headers: &HeaderMap, basic: bool) -> Result<(), Unauthorized> {
    let Some(expected) = &state.token else {
        return Err(Unauthorized {
            message: "no operator token is configured; set [status] token in provisioner.toml",
            basic,
        });
    };
    let presented = presented(headers, basic).unwrap_or_default();
    let good = !presented.is_empty()
        && bool::from(
            presented
                .as_slice()
                .ct_eq(expected.expose_secret().as_bytes()),
        );
    if good {
        Ok(())
    } else {
        Err(Unauthorized {
            message: "a valid operator token is required",
            basic,
        })
    }
}

/// Who may ask this server what.
#[derive(Debug, Clone)]
pub struct Guard {
    /// The address the server listens on.
    pub bound: SocketAddr,
    /// Names it answers to besides its address (`[status] hosts`).
    pub hosts: Vec<String>,
}

impl Guard {
    /// Reads need the token when anyone beyond this machine can connect.
    pub fn reads_need_token(&self) -> bool {
        !self.bound.ip().is_loopback()
    }

    /// Whether a request's `Host` names this server. An address literal
    /// cannot be rebound by DNS, so any of this server's addresses passes;
    /// a name passes only if it is `localhost` on a loopback listener or
    /// one the operator listed.
    pub fn host_allowed(&self, host: &str) -> bool {
        let name = match host.strip_prefix('[') {
            Some(rest) => rest.split(']').next().unwrap_or(""),
            None => host.rsplit_once(':').map_or(host, |(name, _)| name),
        };
        let ip = self.bound.ip();
        if let Ok(requested) = name.parse::<std::net::IpAddr>() {
            return ip.is_unspecified()
                || requested == ip
                || (requested.is_loopback() && ip.is_loopback());
        }
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        (name == "localhost" && (ip.is_loopback() || ip.is_unspecified()))
            || self.hosts.iter().any(|h| h == &name)
    }
}

/// Refuses a request whose `Host` does not name this server.
async fn check_host(State(guard): State<Arc<Guard>>, request: Request, next: Next) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| request.uri().authority().map(|a| a.to_string()));
    match host {
        None => problem(StatusCode::BAD_REQUEST, "the request names no host"),
        Some(host) if !guard.host_allowed(&host) => problem(
            StatusCode::MISDIRECTED_REQUEST,
            format!(
                "this server does not answer to host {:?}; add the name to [status] hosts if it should",
                crate::inert::inert(&host)
            ),
        ),
        Some(_) => next.run(request).await,
    }
}

/// Requires the token for reads when the guard says so.
async fn check_read(
    State((state, guard)): State<(Shared, Arc<Guard>)>,
    request: Request,
    next: Next,
) -> Response {
    if guard.reads_need_token()
        && let Err(refused) = authorized(&state, request.headers(), true)
    {
        return refused.into_response();
    }
    next.run(request).await
}

/// Requires the token for every write, before the request is read any
/// further: one layer over the writing routes, so that a new one cannot
/// forget the check.
async fn check_write(State(state): State<Shared>, request: Request, next: Next) -> Response {
    if let Err(refused) = authorized(&state, request.headers(), false) {
        return refused.into_response();
    }
    next.run(request).await
}

/// Headers every answer carries.
async fn harden(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    for (name, value) in [
        (
            header::CONTENT_SECURITY_POLICY,
            page::content_security_policy(),
        ),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-store"),
    ] {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(name, value);
        }
    }
    response
}

pub fn router(state: Shared, guard: Guard) -> Router {
    let guard = Arc::new(guard);
    let reads = Router::new()
        .route("/", get(index))
        .route("/metrics", get(metrics))
        .route("/api/status", get(status))
        .route("/api/failures", get(failures))
        .route("/api/people/{id}", get(person))
        .route("/api/groups/{name}", get(group))
        .route("/api/audit", get(audit))
        .layer(middleware::from_fn_with_state(
            (state.clone(), guard.clone()),
            check_read,
        ));
    let writes = Router::new()
        .route("/api/retry", post(retry))
        .route("/api/connections/{name}/resume", post(resume))
        .route("/api/rules/{name}/approve-removals", post(approve_removals))
        .route("/api/rules/{name}/approve-updates", post(approve_updates))
        .layer(middleware::from_fn_with_state(state.clone(), check_write));
    Router::new()
        .merge(reads)
        .merge(writes)
        .route("/healthz", get(health))
        .layer(middleware::from_fn_with_state(guard, check_host))
        .layer(middleware::from_fn(harden))
        .with_state(state)
}

/// Serves until the future resolves; returns the bound address at once.
/// Refuses to serve beyond loopback without a token: the read API would
/// be open to anyone who can connect.
pub async fn serve(
    addr: SocketAddr,
    state: Shared,
    hosts: Vec<String>,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    if !addr.ip().is_loopback() && state.token.is_none() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            crate::config::status_needs_token(addr),
        ));
    }
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let app = router(state, Guard { bound, hosts });
    let task = tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            tracing::error!(%error, "the status server stopped");
        }
    });
    Ok((bound, task))
}

async fn index(State(state): State<Shared>) -> Response {
    match model::overview(&*state.db, &state.schema, &state.config, &state.rules).await {
        Ok(overview) => {
            Html(page::render(&overview, state.token.is_some()).into_string()).into_response()
        }
        Err(error) => internal(error),
    }
}

async fn health(State(state): State<Shared>) -> Response {
    match state.db.ping().await {
        Ok(_) => Json(json!({ "status": "ok" })).into_response(),
        Err(error) => problem(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("state file: {error}"),
        ),
    }
}

async fn metrics(State(state): State<Shared>) -> Response {
    let connections: Vec<String> = state.config.connection_names().map(String::from).collect();
    match super::metrics::render(&*state.db, &connections).await {
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
    match model::overview(&*state.db, &state.schema, &state.config, &state.rules).await {
        Ok(overview) => Json(overview).into_response(),
        Err(error) => internal(error),
    }
}

async fn failures(State(state): State<Shared>) -> Response {
    match model::failures(&*state.db, &state.schema, model::FAILURES_LISTED).await {
        Ok(failures) => Json(failures).into_response(),
        Err(error) => internal(error),
    }
}

async fn person(State(state): State<Shared>, Path(id): Path<String>) -> Response {
    let directory = Directory::new(&*state.db, state.schema.clone());
    match model::find_person(&directory, &id).await {
        Ok(Some(person)) => match model::person(&*state.db, &state.rules, person).await {
            Ok(status) => Json(status).into_response(),
            Err(error) => internal(error),
        },
        Ok(None) => problem(StatusCode::NOT_FOUND, format!("no person {id:?}")),
        Err(error) => internal(error),
    }
}

async fn group(State(state): State<Shared>, Path(name): Path<String>) -> Response {
    match model::group(&*state.db, &state.rules, &name).await {
        Ok(status) => Json(status).into_response(),
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
    match state
        .db
        .journal(
            query.person.as_deref(),
            query.rule.as_deref(),
            query.since,
            query.limit.unwrap_or(100).min(10_000),
        )
        .await
    {
        Ok(entries) => Json(entries).into_response(),
        Err(error) => internal(error),
    }
}

#[derive(Deserialize, Default)]
struct RetryBody {
    rule: Option<String>,
    person: Option<String>,
}

async fn retry(State(state): State<Shared>, body: Option<Json<RetryBody>>) -> Response {
    let body = body.map(|b| b.0).unwrap_or_default();
    match state
        .db
        .retry(body.rule.as_deref(), body.person.as_deref())
        .await
    {
        Ok(due) => {
            state.kick.notify_one();
            Json(json!({ "due": due })).into_response()
        }
        Err(error) => internal(error),
    }
}

async fn resume(State(state): State<Shared>, Path(name): Path<String>) -> Response {
    if !state.config.connection_names().any(|n| n == name) {
        return problem(StatusCode::NOT_FOUND, format!("no connection {name:?}"));
    }
    match state.db.resume(&name).await {
        Ok(resumed) => {
            state.kick.notify_one();
            Json(json!({ "resumed": resumed })).into_response()
        }
        Err(error) => internal(error),
    }
}

async fn approve_removals(State(state): State<Shared>, Path(name): Path<String>) -> Response {
    let approved = state.db.approve_removals(&name).await;
    approval(&state, &name, "removals", approved)
}

async fn approve_updates(State(state): State<Shared>, Path(name): Path<String>) -> Response {
    let approved = state.db.approve_updates(&name).await;
    approval(&state, &name, "updates", approved)
}

/// The answer to an approval of what a rule's guard holds (`what`), which
/// goes at the next pass, started at once.
fn approval(
    state: &Shared,
    name: &str,
    what: &str,
    approved: Result<bool, crate::state::StateError>,
) -> Response {
    match approved {
        Ok(true) => {
            state.kick.notify_one();
            Json(json!({ "approved": true })).into_response()
        }
        Ok(false) => problem(
            StatusCode::CONFLICT,
            format!("rule {name} has no {what} waiting for approval"),
        ),
        Err(error) => internal(error),
    }
}
