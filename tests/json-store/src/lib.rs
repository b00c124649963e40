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
    /// An update at a stale version (`If-Match`, or a batch operation's
    /// `version`) is written anyway.
    pub ignore_versions: bool,
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
    /// Bumped on every write; answered as `version` and honoured in
    /// `If-Match` and a batch operation's `version`.
    version: u64,
}

/// One write, from a single-record endpoint or a batch.
#[derive(Debug, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
enum Write {
    Create {
        attributes: Map<String, Value>,
    },
    Update {
        id: String,
        #[serde(default)]
        attributes: Map<String, Value>,
        version: Option<String>,
    },
    Disable {
        id: String,
    },
    Enable {
        id: String,
        #[serde(default)]
        attributes: Map<String, Value>,
        version: Option<String>,
    },
    Delete {
        id: String,
    },
}

/// Why a write failed: the status and the body the store answers with.
struct Refusal {
    status: StatusCode,
    body: Value,
}

impl Refusal {
    fn new(status: StatusCode, code: &str, message: &str) -> Refusal {
        Refusal {
            status,
            body: json!({ "code": code, "message": message }),
        }
    }
}

/// The most operations one batch may carry.
pub const MAX_BATCH: usize = 200;

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
        .route("/api/people/batch", post(batch))
        .route(
            "/api/people/{id}",
            axum::routing::patch(update_person).delete(delete_person),
        )
        .route("/api/people/{id}/disable", post(disable_person))
        .route("/api/people/{id}/enable", post(enable_person))
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
        ["", "api", "people", id] if *id != "search" && *id != "batch" => {
            "/api/people/{id}".to_string()
        }
        ["", "api", "people", _, "disable"] => "/api/people/{id}/disable".to_string(),
        ["", "api", "people", _, "enable"] => "/api/people/{id}/enable".to_string(),
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

impl Shared {
    /// Carries out one write; the single-record endpoints and the batch
    /// endpoint share it, so they cannot disagree.
    fn write(&self, write: Write) -> Result<(String, u64), Refusal> {
        let mut inner = self.lock();
        let missing = || Refusal::new(StatusCode::NOT_FOUND, "NOT_FOUND", "no such person");
        match write {
            Write::Create { mut attributes } => {
                if attributes
                    .get("email")
                    .and_then(Value::as_str)
                    .is_none_or(str::is_empty)
                {
                    return Err(Refusal {
                        status: StatusCode::BAD_REQUEST,
                        body: json!({
                            "code": "REQUIRED_FIELD_MISSING",
                            "message": "Required fields are missing: [email]",
                            "fields": ["email"],
                        }),
                    });
                }
                inner.next_id += 1;
                let id = format!("p-{:06}", inner.next_id);
                attributes
                    .entry("active".to_string())
                    .or_insert(Value::Bool(true));
                inner.people.insert(
                    id.clone(),
                    Person {
                        attributes,
                        version: 1,
                    },
                );
                Ok((id, 1))
            }
            Write::Update {
                id,
                attributes,
                version,
            } => {
                let version = version.filter(|_| !self.options.quirks.ignore_versions);
                update(&mut inner, id, attributes, version, false)
            }
            Write::Enable {
                id,
                attributes,
                version,
            } => update(&mut inner, id, attributes, version, true),
            Write::Disable { id } => {
                let person = inner.people.get_mut(&id).ok_or_else(missing)?;
                person
                    .attributes
                    .insert("active".to_string(), Value::Bool(false));
                person.version += 1;
                Ok((id, person.version))
            }
            Write::Delete { id } => {
                if self.options.quirks.ignore_deletes && inner.people.contains_key(&id) {
                    return Ok((id, 0));
                }
                match inner.people.remove(&id) {
                    Some(_) => Ok((id, 0)),
                    None => Err(missing()),
                }
            }
        }
    }
}

/// Writes `attributes` on a person still at `version` (if given), and
/// makes them active when `enable`.
fn update(
    inner: &mut Inner,
    id: String,
    attributes: Map<String, Value>,
    version: Option<String>,
    enable: bool,
) -> Result<(String, u64), Refusal> {
    let Some(person) = inner.people.get_mut(&id) else {
        return Err(Refusal::new(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "no such person",
        ));
    };
    if version.is_some_and(|v| v != format!("v{}", person.version)) {
        return Err(Refusal::new(
            StatusCode::PRECONDITION_FAILED,
            "VERSION_MISMATCH",
            "the person changed since that version",
        ));
    }
    person.attributes.extend(attributes);
    if enable {
        person
            .attributes
            .insert("active".to_string(), Value::Bool(true));
    }
    person.version += 1;
    Ok((id, person.version))
}

fn answer(result: Result<(String, u64), Refusal>, status: StatusCode) -> Response {
    match result {
        Ok((id, version)) if status == StatusCode::CREATED => (
            status,
            Json(json!({ "id": id, "version": format!("v{version}") })),
        )
            .into_response(),
        Ok((_, version)) if version > 0 => (
            StatusCode::NO_CONTENT,
            [(header::ETAG, format!("\"v{version}\""))],
        )
            .into_response(),
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(refusal) => (refusal.status, Json(refusal.body)).into_response(),
    }
}

/// The version an `If-Match` header asks for, without the ETag's quotes.
fn if_match(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::IF_MATCH)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.trim()
                .trim_start_matches("W/")
                .trim_matches('"')
                .to_string()
        })
}

async fn create_person(State(shared): State<Arc<Shared>>, Json(body): Json<Body>) -> Response {
    let result = shared.write(Write::Create {
        attributes: body.attributes,
    });
    answer(result, StatusCode::CREATED)
}

async fn update_person(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Json(body): Json<Body>,
) -> Response {
    let result = shared.write(Write::Update {
        id,
        attributes: body.attributes,
        version: if_match(&headers),
    });
    answer(result, StatusCode::NO_CONTENT)
}

async fn disable_person(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    answer(shared.write(Write::Disable { id }), StatusCode::NO_CONTENT)
}

async fn enable_person(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let result = shared.write(Write::Enable {
        id,
        attributes: Map::new(),
        version: if_match(&headers),
    });
    answer(result, StatusCode::NO_CONTENT)
}

async fn delete_person(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    answer(shared.write(Write::Delete { id }), StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct Batch {
    operations: Vec<Value>,
}

/// `POST /api/people/batch`: up to [`MAX_BATCH`] writes, one result each,
/// in order; one bad operation fails only itself.
async fn batch(State(shared): State<Arc<Shared>>, Json(batch): Json<Batch>) -> Response {
    if batch.operations.len() > MAX_BATCH {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "BATCH_TOO_LARGE",
            &format!("a batch holds at most {MAX_BATCH} operations"),
        );
    }
    let results: Vec<Value> = batch
        .operations
        .into_iter()
        .map(|operation| {
            let write = match serde_json::from_value::<Write>(operation) {
                Ok(write) => write,
                Err(e) => {
                    return json!({ "status": 400, "code": "INVALID_OPERATION", "message": e.to_string() });
                }
            };
            match shared.write(write) {
                Ok((id, version)) => json!({ "id": id, "version": format!("v{version}") }),
                Err(refusal) => {
                    let mut body = refusal.body;
                    body["status"] = Value::from(refusal.status.as_u16());
                    body
                }
            }
        })
        .collect();
    Json(json!({ "results": results })).into_response()
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
    json!({ "id": id, "attributes": attributes, "version": format!("v{}", person.version) })
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
