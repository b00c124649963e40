//! A small JSON REST identity store with an OAuth 2.0 token endpoint.
//!
//! It is the server side of the reference `json-store` connector: the
//! README's demo talks to it, and the host's tests use it to exercise the
//! broker for real, over loopback HTTP: token refresh and rotation, refused
//! refresh tokens, redirects, and counters that show exactly which requests
//! reached it.
//!
//! The OAuth 2.0 endpoint answers like Salesforce's: form-encoded grants,
//! `issued_at` as a string, no `expires_in`, and errors as
//! `{"error", "error_description"}`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::{Form, Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// The credentials the store accepts and how its token endpoint behaves.
#[derive(Debug, Clone)]
pub struct Options {
    pub client_id: String,
    pub client_secret: String,
    /// Refresh tokens valid at start.
    pub refresh_tokens: Vec<String>,
    /// Access tokens valid at start.
    pub access_tokens: Vec<String>,
    /// Issue a new refresh token on every refresh and invalidate the old
    /// one, as orgs with refresh-token rotation do.
    pub rotate_refresh_tokens: bool,
    /// The `instance_url` the token endpoint returns; `None` returns the
    /// store's own base URL.
    pub instance_url: Option<String>,
    /// Shown by `GET /api/me`.
    pub account: String,
    /// Ways to break the store's promises, for the conformance kit's tests.
    pub quirks: Quirks,
}

/// Broken promises a store can be told to keep breaking.
#[derive(Debug, Clone, Default)]
pub struct Quirks {
    /// Searches match values exactly, case included.
    pub case_sensitive_search: bool,
    /// Each page of a listing starts with the last record of the page
    /// before.
    pub overlapping_pages: bool,
    /// Reads (searches and listings) leave out this attribute.
    pub hidden_attribute: Option<String>,
    /// A delete answers success and keeps the record.
    pub ignore_deletes: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            client_id: "demo-client".into(),
            client_secret: "demo-secret".into(),
            refresh_tokens: vec!["demo-refresh-token".into()],
            access_tokens: Vec::new(),
            rotate_refresh_tokens: false,
            instance_url: None,
            account: "demo".into(),
            quirks: Quirks::default(),
        }
    }
}

/// What reached the store, for assertions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    /// Requests to the token endpoint, by grant type.
    pub token_requests: BTreeMap<String, u64>,
    /// API requests by `METHOD /path-pattern`, including refused ones.
    pub api_requests: BTreeMap<String, u64>,
    /// API requests by `User-Agent`: which connector build made them.
    pub user_agents: BTreeMap<String, u64>,
    /// API requests answered 401.
    pub unauthorized: u64,
    /// Redirects served.
    pub redirects: u64,
}

#[derive(Debug)]
struct Person {
    attributes: Map<String, Value>,
}

#[derive(Debug, Default)]
struct Inner {
    access_tokens: HashSet<String>,
    refresh_tokens: HashSet<String>,
    people: BTreeMap<String, Person>,
    next_id: u64,
    issued: u64,
    redirects: HashMap<String, String>,
    refuse_all_tokens: bool,
    counters: Counters,
    /// Every access and refresh token the token endpoint issued.
    issued_tokens: Vec<String>,
}

struct Shared {
    options: Options,
    base_url: String,
    inner: Mutex<Inner>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panicking handler cannot leave the maps half-updated in a way
        // that matters to a test double; keep serving.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A running store. Dropping it stops the server.
pub struct JsonStore {
    shared: Arc<Shared>,
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for JsonStore {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl JsonStore {
    /// Starts a store on `127.0.0.1` and an ephemeral port.
    pub async fn start(options: Options) -> std::io::Result<JsonStore> {
        Self::bind("127.0.0.1:0".parse().expect("literal address"), options).await
    }

    /// Starts a store on `addr`.
    pub async fn bind(addr: SocketAddr, options: Options) -> std::io::Result<JsonStore> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let inner = Inner {
            access_tokens: options.access_tokens.iter().cloned().collect(),
            refresh_tokens: options.refresh_tokens.iter().cloned().collect(),
            ..Inner::default()
        };
        let shared = Arc::new(Shared {
            options,
            base_url: format!("http://{addr}"),
            inner: Mutex::new(inner),
        });
        let app = router(shared.clone());
        let task = tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app).await {
                tracing::error!(%error, "json-store server stopped");
            }
        });
        Ok(JsonStore { shared, addr, task })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `127.0.0.1:PORT`, the value of the connector's `host` setting.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    pub fn base_url(&self) -> &str {
        &self.shared.base_url
    }

    /// Invalidates every access token, as a session timeout would.
    pub fn expire_access_tokens(&self) {
        self.shared.lock().access_tokens.clear();
    }

    /// Invalidates every refresh token: the next refresh gets
    /// `invalid_grant`.
    pub fn revoke_refresh_tokens(&self) {
        self.shared.lock().refresh_tokens.clear();
    }

    /// Answers every API call 401, even with a freshly issued token, as a
    /// store does when the integration user lost its API permission.
    pub fn refuse_all_access_tokens(&self) {
        self.shared.lock().refuse_all_tokens = true;
    }

    /// Answers requests for `path` with `302 Found` to `location`.
    pub fn redirect(&self, path: &str, location: &str) {
        self.shared
            .lock()
            .redirects
            .insert(path.to_string(), location.to_string());
    }

    pub fn counters(&self) -> Counters {
        self.shared.lock().counters.clone()
    }

    /// Every access and refresh token the token endpoint has issued, for
    /// tests that must find none of them where they do not belong.
    pub fn issued_tokens(&self) -> Vec<String> {
        self.shared.lock().issued_tokens.clone()
    }

    /// Refresh tokens currently valid (after rotation, the new one).
    pub fn refresh_tokens(&self) -> Vec<String> {
        self.shared.lock().refresh_tokens.iter().cloned().collect()
    }

    /// The stored people, as `(id, attributes)`.
    pub fn people(&self) -> Vec<(String, Map<String, Value>)> {
        self.shared
            .lock()
            .people
            .iter()
            .map(|(id, person)| (id.clone(), person.attributes.clone()))
            .collect()
    }
}

/// The HTTP surface, for embedding the store in another server.
fn router(shared: Arc<Shared>) -> Router {
    let api = Router::new()
        .route("/api/me", get(me))
        .route("/api/people", post(create_person).get(list_people))
        .route("/api/people/search", post(search_people))
        .route(
            "/api/people/{id}",
            axum::routing::patch(update_person).delete(delete_person),
        )
        .route("/api/people/{id}/disable", post(disable_person))
        .layer(middleware::from_fn_with_state(shared.clone(), authenticate));
    Router::new()
        .route("/oauth/token", post(token))
        .route("/_control/expire-access-tokens", post(control_expire))
        .route("/_control/revoke-refresh-tokens", post(control_revoke))
        .route("/_control/counters", get(control_counters))
        .merge(api)
        .layer(middleware::from_fn_with_state(shared.clone(), redirects))
        .with_state(shared)
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(json!({ "code": code, "message": message }))).into_response()
}

fn now_millis() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

async fn redirects(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let target = {
        let mut inner = shared.lock();
        let target = inner.redirects.get(request.uri().path()).cloned();
        if target.is_some() {
            inner.counters.redirects += 1;
        }
        target
    };
    match target {
        Some(location) => (StatusCode::FOUND, [(header::LOCATION, location)]).into_response(),
        None => next.run(request).await,
    }
}

/// Counts every API request and refuses those without a live access token,
/// with the 401 a session timeout produces.
async fn authenticate(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    request: Request,
    next: Next,
) -> Response {
    let pattern = pattern(request.method().as_str(), request.uri().path());
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_string);
    {
        let mut inner = shared.lock();
        *inner.counters.api_requests.entry(pattern).or_default() += 1;
        let agent = headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        *inner.counters.user_agents.entry(agent).or_default() += 1;
        let valid =
            !inner.refuse_all_tokens && token.is_some_and(|t| inner.access_tokens.contains(&t));
        if !valid {
            inner.counters.unauthorized += 1;
            return error(
                StatusCode::UNAUTHORIZED,
                "INVALID_TOKEN",
                "Session expired or invalid",
            );
        }
    }
    next.run(request).await
}

fn pattern(method: &str, path: &str) -> String {
    let parts: Vec<&str> = path.split('/').collect();
    let shape = match parts.as_slice() {
        ["", "api", "people", id] if *id != "search" => "/api/people/{id}".to_string(),
        ["", "api", "people", _, "disable"] => "/api/people/{id}/disable".to_string(),
        _ => path.to_string(),
    };
    format!("{method} {shape}")
}

#[derive(Deserialize)]
struct TokenForm {
    grant_type: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    refresh_token: Option<String>,
}

fn oauth_error(error: &str, description: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({ "error": error, "error_description": description })),
    )
        .into_response()
}

async fn token(State(shared): State<Arc<Shared>>, Form(form): Form<TokenForm>) -> Response {
    let grant = form.grant_type.clone().unwrap_or_default();
    let mut inner = shared.lock();
    *inner
        .counters
        .token_requests
        .entry(grant.clone())
        .or_default() += 1;
    if grant != "refresh_token" && grant != "client_credentials" {
        return oauth_error("unsupported_grant_type", "grant type not supported");
    }
    if form.client_id.as_deref() != Some(shared.options.client_id.as_str()) {
        return oauth_error("invalid_client_id", "client identifier invalid");
    }
    if form.client_secret.as_deref() != Some(shared.options.client_secret.as_str()) {
        return oauth_error("invalid_client", "invalid client credentials");
    }
    let mut rotated = None;
    if grant == "refresh_token" {
        let presented = form.refresh_token.unwrap_or_default();
        if !inner.refresh_tokens.contains(&presented) {
            return oauth_error("invalid_grant", "expired access/refresh token");
        }
        if shared.options.rotate_refresh_tokens {
            inner.issued += 1;
            let fresh = format!("refresh-{}-{}", inner.issued, now_millis());
            inner.refresh_tokens.remove(&presented);
            inner.refresh_tokens.insert(fresh.clone());
            inner.issued_tokens.push(fresh.clone());
            rotated = Some(fresh);
        }
    }
    inner.issued += 1;
    let access = format!("access-{}-{}", inner.issued, now_millis());
    inner.access_tokens.insert(access.clone());
    inner.issued_tokens.push(access.clone());
    let instance_url = shared
        .options
        .instance_url
        .clone()
        .unwrap_or_else(|| shared.base_url.clone());
    let mut body = json!({
        "access_token": access,
        "instance_url": instance_url,
        "id": format!("{}/id/{}/user-1", shared.base_url, shared.options.account),
        "token_type": "Bearer",
        "issued_at": now_millis().to_string(),
        "signature": "c2lnbmF0dXJl",
        "scope": "api refresh_token",
    });
    if let Some(fresh) = rotated {
        body["refresh_token"] = Value::from(fresh);
    }
    (StatusCode::OK, Json(body)).into_response()
}

async fn me(State(shared): State<Arc<Shared>>) -> Response {
    Json(json!({
        "account": shared.options.account,
        "user": "integration@example.com",
        "api_version": "1",
    }))
    .into_response()
}

#[derive(Deserialize)]
struct Body {
    attributes: Map<String, Value>,
}

async fn create_person(State(shared): State<Arc<Shared>>, Json(body): Json<Body>) -> Response {
    let email = body.attributes.get("email").and_then(Value::as_str);
    if email.is_none_or(str::is_empty) {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({
                "code": "REQUIRED_FIELD_MISSING",
                "message": "Required fields are missing: [email]",
                "fields": ["email"],
            })),
        )
            .into_response();
    }
    let mut inner = shared.lock();
    inner.next_id += 1;
    let id = format!("p-{:06}", inner.next_id);
    let mut attributes = body.attributes;
    attributes
        .entry("active".to_string())
        .or_insert(Value::Bool(true));
    inner.people.insert(id.clone(), Person { attributes });
    (StatusCode::CREATED, Json(json!({ "id": id }))).into_response()
}

async fn update_person(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    Json(body): Json<Body>,
) -> Response {
    let mut inner = shared.lock();
    match inner.people.get_mut(&id) {
        Some(person) => {
            person.attributes.extend(body.attributes);
            StatusCode::NO_CONTENT.into_response()
        }
        None => error(StatusCode::NOT_FOUND, "NOT_FOUND", "no such person"),
    }
}

async fn disable_person(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let mut inner = shared.lock();
    match inner.people.get_mut(&id) {
        Some(person) => {
            person
                .attributes
                .insert("active".to_string(), Value::Bool(false));
            StatusCode::NO_CONTENT.into_response()
        }
        None => error(StatusCode::NOT_FOUND, "NOT_FOUND", "no such person"),
    }
}

async fn delete_person(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let mut inner = shared.lock();
    if shared.options.quirks.ignore_deletes && inner.people.contains_key(&id) {
        return StatusCode::NO_CONTENT.into_response();
    }
    match inner.people.remove(&id) {
        Some(_) => StatusCode::NO_CONTENT.into_response(),
        None => error(StatusCode::NOT_FOUND, "NOT_FOUND", "no such person"),
    }
}

#[derive(Deserialize)]
struct Search {
    attribute: String,
    values: Vec<String>,
}

fn render(id: &str, person: &Person, quirks: &Quirks) -> Value {
    let mut attributes = person.attributes.clone();
    if let Some(hidden) = &quirks.hidden_attribute {
        attributes.remove(hidden);
    }
    json!({ "id": id, "attributes": attributes })
}

async fn search_people(State(shared): State<Arc<Shared>>, Json(search): Json<Search>) -> Response {
    let quirks = &shared.options.quirks;
    let fold = |v: &str| {
        if quirks.case_sensitive_search {
            v.to_string()
        } else {
            v.to_lowercase()
        }
    };
    let wanted: HashSet<String> = search.values.iter().map(|v| fold(v)).collect();
    let inner = shared.lock();
    let people: Vec<Value> = inner
        .people
        .iter()
        .filter(|(_, person)| {
            person
                .attributes
                .get(&search.attribute)
                .and_then(Value::as_str)
                .is_some_and(|v| wanted.contains(&fold(v)))
        })
        .map(|(id, person)| render(id, person, quirks))
        .collect();
    Json(json!({ "people": people })).into_response()
}

#[derive(Deserialize)]
struct Paging {
    cursor: Option<String>,
    limit: Option<usize>,
}

async fn list_people(State(shared): State<Arc<Shared>>, Query(paging): Query<Paging>) -> Response {
    let limit = paging.limit.unwrap_or(100).clamp(1, 1000);
    let quirks = &shared.options.quirks;
    let inner = shared.lock();
    let start = paging.cursor.unwrap_or_default();
    let mut page: Vec<Value> = inner
        .people
        .range(start.clone()..)
        .take(limit + 1)
        .map(|(id, person)| render(id, person, quirks))
        .collect();
    // The cursor is the id that starts the next page.
    let next = if page.len() > limit {
        page.pop()
            .and_then(|last| last.get("id").and_then(Value::as_str).map(String::from))
    } else {
        None
    };
    if quirks.overlapping_pages
        && let Some((id, person)) = inner.people.range(..start).next_back()
    {
        page.insert(0, render(id, person, quirks));
    }
    Json(json!({ "people": page, "next_cursor": next })).into_response()
}

async fn control_expire(State(shared): State<Arc<Shared>>) -> StatusCode {
    shared.lock().access_tokens.clear();
    StatusCode::NO_CONTENT
}

async fn control_revoke(State(shared): State<Arc<Shared>>) -> StatusCode {
    shared.lock().refresh_tokens.clear();
    StatusCode::NO_CONTENT
}

async fn control_counters(State(shared): State<Arc<Shared>>) -> Response {
    let counters = shared.lock().counters.clone();
    Json(json!({
        "token_requests": counters.token_requests,
        "api_requests": counters.api_requests,
        "user_agents": counters.user_agents,
        "unauthorized": counters.unauthorized,
        "redirects": counters.redirects,
    }))
    .into_response()
}
