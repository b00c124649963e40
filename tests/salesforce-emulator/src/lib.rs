//! A local Salesforce for the connector's tests, benchmarks and demo.
//!
//! It answers on loopback like a Salesforce org does on the wire, for
//! everything the Leads and Contacts connector uses:
//!
//! - the OAuth 2.0 token endpoint (refresh-token and client-credentials
//!   grants, `issued_at` as a string, no `expires_in`, Salesforce's error
//!   JSON), with sessions that expire after a configurable time;
//! - sObject create, read, update and delete for Lead, Contact, Account and
//!   User, with Salesforce's required fields, 18-character ids and error
//!   arrays;
//! - the SOQL subset the connector sends, paged with `nextRecordsUrl` and
//!   `Sforce-Query-Options`;
//! - sObject Collections (up to 200 records, per-record `statusCode`,
//!   `allOrNone`);
//! - SOAP `convertLead`;
//! - `Sforce-Limit-Info` on every response, a daily API allocation that ends
//!   in `REQUEST_LIMIT_EXCEEDED`, and `GET limits`.
//!
//! A control API under `/__emulator/` (a path Salesforce does not use)
//! injects faults and latency, turns on seeded random faults over a whole
//! run ([`Chaos`]), expires sessions, revokes refresh tokens, seeds records
//! and reports counters and the log of write attempts; [`Emulator`] offers
//! the same in process.

mod chaos;
mod control;
mod oauth;
mod org;
mod rest;
mod soap;
mod soql;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use org::{Records, SfError};

pub use chaos::{Chaos, ChaosKind, Outcome, WriteAttempt};

/// The API versions the emulator serves.
pub const VERSIONS: std::ops::RangeInclusive<u32> = 31..=64;

/// How the emulated org is set up.
#[derive(Debug, Clone)]
pub struct Options {
    pub org_id: String,
    pub org_name: String,
    pub username: String,
    pub client_id: String,
    pub client_secret: String,
    /// Refresh tokens valid at start.
    pub refresh_tokens: Vec<String>,
    /// Access tokens valid at start.
    pub access_tokens: Vec<String>,
    /// Issue a new refresh token on every refresh and invalidate the old one.
    pub rotate_refresh_tokens: bool,
    /// How long an access token lives; `None` for ever.
    pub session_lifetime: Option<Duration>,
    /// The daily API request allocation.
    pub daily_api_limit: u64,
    /// The `instance_url` the token endpoint returns; `None` returns the
    /// emulator's own base URL.
    pub instance_url: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            org_id: "00D5g000004Cm2EEAS".into(),
            org_name: "Acme Demo".into(),
            username: "integration@acme.example".into(),
            client_id: "demo-consumer-key".into(),
            client_secret: "demo-consumer-secret".into(),
            refresh_tokens: vec!["demo-refresh-token".into()],
            access_tokens: Vec::new(),
            rotate_refresh_tokens: false,
            session_lifetime: None,
            daily_api_limit: 100_000,
            instance_url: None,
        }
    }
}

/// Makes the next `count` requests whose path contains `path` (and whose
/// method is `method`, if given) fail with `status` and `error_code`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Fault {
    pub path: String,
    #[serde(default)]
    pub method: Option<String>,
    pub status: u16,
    pub error_code: String,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default = "one")]
    pub count: u32,
}

fn one() -> u32 {
    1
}

/// Delays requests whose path contains `path` (every request if empty)
/// by `millis`, give or take up to `jitter_millis` (uniformly), as a real
/// network and a real org's work would.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Latency {
    #[serde(default)]
    pub path: String,
    pub millis: u64,
    #[serde(default)]
    pub jitter_millis: u64,
    /// Delay the answer after the request has been carried out, rather
    /// than before: the record exists while the client still waits, which
    /// is the window a crash test needs.
    #[serde(default)]
    pub after: bool,
}

impl Latency {
    fn pick(&self) -> Duration {
        use rand::RngExt;
        let jitter = self.jitter_millis.min(self.millis);
        let millis = if jitter == 0 {
            self.millis
        } else {
            rand::rng().random_range(self.millis - jitter..=self.millis + jitter)
        };
        Duration::from_millis(millis)
    }
}

/// Counts a request out of flight however its handling ends, a dropped
/// connection included.
struct InFlight(Arc<Shared>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut state = self.0.lock();
        state.in_flight = state.in_flight.saturating_sub(1);
    }
}

/// What reached the emulator, for tests and benchmarks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Counters {
    /// API requests by `METHOD endpoint`, e.g. `POST composite/sobjects`,
    /// `GET query`, `POST soap`; refused ones included.
    pub requests: BTreeMap<String, u64>,
    /// Token endpoint requests by grant type.
    pub token_requests: BTreeMap<String, u64>,
    /// Live records by sObject type.
    pub records: BTreeMap<String, usize>,
    /// API requests counted against the daily allocation.
    pub api_usage: u64,
    /// API requests refused for an invalid or expired session.
    pub unauthorized: u64,
    /// Requests failed by injected faults.
    pub faults_served: u64,
    /// Requests given a chaos fault, by kind.
    pub chaos_served: BTreeMap<String, u64>,
    /// The most API requests in flight at once: what a real org's limit
    /// on concurrent requests would have seen.
    pub most_in_flight: u64,
}

impl Counters {
    /// Requests to one endpoint, e.g. `counters.of("POST composite/sobjects")`.
    pub fn of(&self, endpoint: &str) -> u64 {
        self.requests.get(endpoint).copied().unwrap_or(0)
    }

    /// API requests of every kind.
    pub fn total(&self) -> u64 {
        self.requests.values().sum()
    }
}

/// A query's remaining rows, served page by page.
pub(crate) struct Cursor {
    rows: Vec<Value>,
    batch: usize,
}

pub(crate) struct OrgState {
    pub records: Records,
    pub sessions: HashMap<String, Instant>,
    pub refresh_tokens: HashSet<String>,
    pub cursors: HashMap<String, Cursor>,
    pub faults: Vec<Fault>,
    pub latency: Option<Latency>,
    pub counters: Counters,
    /// API requests being served now.
    pub in_flight: u64,
    pub issued: u64,
    /// Sessions end once this many more API requests have been served.
    pub expire_after: Option<u64>,
    pub chaos: Option<chaos::ChaosState>,
    /// Every record's part in every Collections write, in arrival order.
    pub write_log: Vec<WriteAttempt>,
    pub started: Instant,
    /// Error answers quote the credentials of the request they answer.
    pub echo_credentials: bool,
}

pub(crate) struct Shared {
    pub options: Options,
    pub base_url: String,
    state: Mutex<OrgState>,
}

impl Shared {
    pub fn lock(&self) -> MutexGuard<'_, OrgState> {
        // A handler that panicked leaves consistent maps behind (every
        // mutation is one insert or remove); keep serving.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn user_id(&self) -> String {
        "0055g000001Xy7dAAC".into()
    }

    /// `Sforce-Limit-Info`, as every API response carries it.
    pub fn limit_info(&self, state: &OrgState) -> String {
        format!(
            "api-usage={}/{}",
            state.counters.api_usage, self.options.daily_api_limit
        )
    }

    pub fn session_valid(&self, state: &OrgState, token: &str) -> bool {
        state.sessions.get(token).is_some_and(|issued| {
            self.options
                .session_lifetime
                .is_none_or(|lifetime| issued.elapsed() < lifetime)
        })
    }
}

/// What an error answer in echo mode adds to its message: the credential
/// the request carried, as it came, URL-encoded, and in base64.
pub(crate) fn echo_of(credential: &str) -> String {
    use base64::Engine;
    format!(
        " [request credentials: {credential}; as a URL: {}; in base64: {}]",
        url_encoded(credential),
        base64::engine::general_purpose::STANDARD.encode(credential)
    )
}

/// `text` with every byte but ASCII letters and digits percent-encoded:
/// how a careless store quotes input in a URL, and a form of a leaked
/// credential that tests look for.
pub fn url_encoded(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Appends [`echo_of`] to every `message` of a REST error array.
fn echo_into(body: &[u8], credential: &str) -> Option<Vec<u8>> {
    let mut errors: Vec<Value> = serde_json::from_slice(body).ok()?;
    for error in &mut errors {
        if let Some(Value::String(message)) = error.get_mut("message") {
            message.push_str(&echo_of(credential));
        }
    }
    serde_json::to_vec(&errors).ok()
}

/// A REST error response: the JSON array Salesforce answers with.
pub(crate) fn rest_error(error: &SfError) -> Response {
    let status = StatusCode::from_u16(error.status).unwrap_or(StatusCode::BAD_REQUEST);
    (status, axum::Json(error.rest_body())).into_response()
}

/// The endpoint a request counts under: the path after the version,
/// with ids and cursors folded.
fn endpoint(method: &str, path: &str) -> String {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let shape = match parts.as_slice() {
        ["services", "oauth2", rest @ ..] => format!("oauth2/{}", rest.join("/")),
        ["services", "Soap", ..] => "soap".into(),
        ["services", "data"] => "versions".into(),
        ["services", "data", _version] => "resources".into(),
        ["services", "data", _, "query", _] => "query/next".into(),
        ["services", "data", _, "sobjects", object, _id] => format!("sobjects/{object}/{{id}}"),
        ["services", "data", _, rest @ ..] => rest.join("/"),
        _ => path.to_string(),
    };
    format!("{method} {shape}")
}

/// Counting, latency, faults, sessions, the daily allocation and the
/// limit header: what every API request goes through.
async fn gate(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let method = request.method().as_str().to_string();
    let path = request.uri().path().to_string();
    let is_soap = path.starts_with("/services/Soap/");
    let endpoint_name = endpoint(&method, &path);
    let (mut request, writes) = write_keys(&shared, &endpoint_name, request).await;
    let _in_flight = InFlight(shared.clone());

    let (delay, delay_after, fault, pick) = {
        let mut state = shared.lock();
        *state
            .counters
            .requests
            .entry(endpoint_name.clone())
            .or_default() += 1;
        state.in_flight += 1;
        state.counters.most_in_flight = state.counters.most_in_flight.max(state.in_flight);
        let matching = state.latency.as_ref().filter(|l| path.contains(&l.path));
        let delay = matching.filter(|l| !l.after).map(Latency::pick);
        let delay_after = matching.filter(|l| l.after).map(Latency::pick);
        let fault = state.faults.iter_mut().find(|f| {
            f.count > 0
                && path.contains(&f.path)
                && f.method
                    .as_deref()
                    .is_none_or(|m| m.eq_ignore_ascii_case(&method))
        });
        let fault = fault.map(|f| {
            f.count -= 1;
            f.clone()
        });
        state.faults.retain(|f| f.count > 0);
        if fault.is_some() {
            state.counters.faults_served += 1;
        }
        let pick = match (&fault, state.chaos.as_mut()) {
            (None, Some(chaos)) => chaos.roll(writes.as_ref().map_or(0, |w| w.keys.len())),
            _ => None,
        };
        // A lock only happens in a Collections create or update.
        let pick = pick.filter(|p| {
            p.kind != ChaosKind::LockRow || writes.as_ref().is_some_and(|w| w.method != "DELETE")
        });
        if let Some(pick) = &pick {
            *state
                .counters
                .chaos_served
                .entry(pick.kind.name().to_string())
                .or_default() += 1;
            if pick.kind == ChaosKind::ExpireSession {
                state
                    .sessions
                    .retain(|_, issued| issued.elapsed() < chaos::FRESH_SESSION);
            }
        }
        (delay, delay_after, fault, pick)
    };
    let fault = fault.or_else(|| {
        let (status, code) = pick.as_ref()?.kind.error()?;
        Some(Fault {
            path: String::new(),
            method: None,
            status,
            error_code: code.into(),
            message: None,
            count: 0,
        })
    });
    let chaos_kind = pick.as_ref().map(|p| p.kind);
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    if let Some(pick) = &pick {
        tokio::time::sleep(pick.delay).await;
        if pick.kind == ChaosKind::LockRow {
            request
                .extensions_mut()
                .insert(chaos::LockedRows(pick.locked.clone()));
        }
    }
    if chaos_kind == Some(ChaosKind::DropConnection) {
        log_writes(&shared, writes.as_ref(), |_| Outcome::Dropped);
        return cut_off(StatusCode::OK, Vec::new(), 64);
    }
    if let Some(fault) = fault {
        let code = fault.error_code.clone();
        log_writes(&shared, writes.as_ref(), |_| Outcome::Failed {
            code: code.clone(),
        });
        let error = SfError::new(
            fault.status,
            &fault.error_code,
            fault
                .message
                .unwrap_or_else(|| format!("{} (injected)", fault.error_code)),
        );
        let response = if is_soap {
            soap::fault(&error.code, &error.message)
        } else {
            rest_error(&error)
        };
        return with_limit_info(&shared, response);
    }

    let token = request
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("OAuth "))
        })
        .map(str::to_string);
    let echo = shared.lock().echo_credentials;
    if !is_soap && path.trim_end_matches('/') != "/services/data" {
        let mut state = shared.lock();
        if !token
            .as_deref()
            .is_some_and(|t| shared.session_valid(&state, t))
        {
            state.counters.unauthorized += 1;
            drop(state);
            log_writes(&shared, writes.as_ref(), |_| Outcome::Unauthorized);
            let mut message = "Session expired or invalid".to_string();
            if echo && let Some(token) = &token {
                message.push_str(&echo_of(token));
            }
            return with_limit_info(
                &shared,
                rest_error(&SfError::new(401, "INVALID_SESSION_ID", message)),
            );
        }
    }

    {
        let mut state = shared.lock();
        if state.counters.api_usage >= shared.options.daily_api_limit {
            drop(state);
            let error = SfError::new(
                403,
                "REQUEST_LIMIT_EXCEEDED",
                "TotalRequests Limit exceeded.",
            );
            log_writes(&shared, writes.as_ref(), |_| Outcome::Failed {
                code: error.code.clone(),
            });
            let response = if is_soap {
                soap::fault(&error.code, &error.message)
            } else {
                rest_error(&error)
            };
            return with_limit_info(&shared, response);
        }
        state.counters.api_usage += 1;
    }

    if let Some(version) = path
        .strip_prefix("/services/data/")
        .map(|r| r.split('/').next().unwrap_or(""))
        && rest::parse_version(version).is_none()
    {
        return with_limit_info(
            &shared,
            rest_error(&SfError::new(
                404,
                "NOT_FOUND",
                "The requested resource does not exist",
            )),
        );
    }

    let mut response = next.run(request).await;
    let truncate = chaos_kind == Some(ChaosKind::TruncateBody);
    if writes.is_some() || truncate {
        // The answer is read whole: to log each record's outcome, and to
        // cut it off.
        let (parts, body) = response.into_parts();
        let bytes = axum::body::to_bytes(body, usize::MAX)
            .await
            .unwrap_or_default();
        let status = parts.status;
        let results: Option<Vec<Value>> = serde_json::from_slice(&bytes).ok();
        log_writes(&shared, writes.as_ref(), |index| {
            if truncate {
                return Outcome::Lost;
            }
            if status == StatusCode::UNAUTHORIZED {
                return Outcome::Unauthorized;
            }
            let result = results.as_ref().and_then(|r| {
                if status.is_success() {
                    r.get(index)
                } else {
                    r.first()
                }
            });
            match result {
                Some(r) if r["success"] == true => Outcome::Ok,
                Some(r) => Outcome::Failed {
                    code: r["errors"][0]["statusCode"]
                        .as_str()
                        .or_else(|| r["errorCode"].as_str())
                        .unwrap_or("UNKNOWN")
                        .to_string(),
                },
                None => Outcome::Failed {
                    code: format!("HTTP {}", status.as_u16()),
                },
            }
        });
        response = if truncate {
            cut_off(status, bytes[..bytes.len() / 2].to_vec(), bytes.len())
        } else {
            Response::from_parts(parts, axum::body::Body::from(bytes))
        };
    }
    if echo
        && !is_soap
        && let Some(token) = &token
        && (response.status().is_client_error() || response.status().is_server_error())
    {
        let (parts, body) = response.into_parts();
        let bytes = axum::body::to_bytes(body, usize::MAX)
            .await
            .unwrap_or_default();
        let echoed = echo_into(&bytes, token).unwrap_or_else(|| bytes.to_vec());
        let mut parts = parts;
        parts.headers.remove(axum::http::header::CONTENT_LENGTH);
        response = Response::from_parts(parts, axum::body::Body::from(echoed));
    }
    if let Some(delay) = delay_after {
        tokio::time::sleep(delay).await;
    }
    {
        let mut state = shared.lock();
        if let Some(remaining) = state.expire_after.as_mut() {
            *remaining = remaining.saturating_sub(1);
            if *remaining == 0 {
                state.expire_after = None;
                state.sessions.clear();
            }
        }
    }
    with_limit_info(&shared, response)
}

/// The records a Collections write carries, keyed for the write log.
struct Writes {
    method: String,
    keys: Vec<String>,
    at_ms: u64,
}

/// For a Collections write, reads the body (and puts it back) to key its
/// records by Email: a create names it, an update or delete names an id
/// whose record does.
async fn write_keys(
    shared: &Shared,
    endpoint: &str,
    request: Request,
) -> (Request, Option<Writes>) {
    let Some(method) = ["POST", "PATCH", "DELETE"]
        .into_iter()
        .find(|m| endpoint == format!("{m} composite/sobjects"))
    else {
        return (request, None);
    };
    let query = request.uri().query().unwrap_or("").to_string();
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let state = shared.lock();
    let by_id = |id: &str| {
        state
            .records
            .find(id)
            .and_then(|(_, r)| r.get("Email").and_then(Value::as_str))
            .map(str::to_lowercase)
            .unwrap_or_else(|| format!("#{id}"))
    };
    let keys: Vec<String> = if method == "DELETE" {
        query
            .split('&')
            .filter_map(|pair| pair.strip_prefix("ids="))
            .flat_map(|ids| ids.split("%2C").flat_map(|i| i.split(',')))
            .filter(|id| !id.is_empty())
            .map(by_id)
            .collect()
    } else {
        let records: Vec<Value> = serde_json::from_slice::<Value>(&bytes)
            .ok()
            .and_then(|v| v.get("records").and_then(Value::as_array).cloned())
            .unwrap_or_default();
        records
            .iter()
            .map(|r| match r.get("Email").and_then(Value::as_str) {
                Some(email) if method == "POST" => email.to_lowercase(),
                _ => by_id(
                    r.get("id")
                        .or_else(|| r.get("Id"))
                        .and_then(Value::as_str)
                        .unwrap_or(""),
                ),
            })
            .collect()
    };
    let at_ms = state.started.elapsed().as_millis() as u64;
    drop(state);
    let request = Request::from_parts(parts, axum::body::Body::from(bytes));
    (
        request,
        Some(Writes {
            method: method.to_string(),
            keys,
            at_ms,
        }),
    )
}

fn log_writes(shared: &Shared, writes: Option<&Writes>, outcome: impl Fn(usize) -> Outcome) {
    let Some(writes) = writes else { return };
    let mut state = shared.lock();
    for (index, key) in writes.keys.iter().enumerate() {
        state.write_log.push(WriteAttempt {
            key: key.clone(),
            method: writes.method.clone(),
            at_ms: writes.at_ms,
            outcome: outcome(index),
        });
    }
}

/// An answer whose connection breaks after `prefix`: it announces
/// `length` bytes and sends fewer, so the client sees the body end early
/// (or, with no prefix, the connection close before an answer).
fn cut_off(status: StatusCode, prefix: Vec<u8>, length: usize) -> Response {
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = vec![
        Ok(prefix),
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionAborted,
            "connection dropped by the emulator's chaos",
        )),
    ];
    let mut response = Response::new(axum::body::Body::from_stream(futures_util::stream::iter(
        chunks,
    )));
    *response.status_mut() = status;
    response.headers_mut().insert(
        axum::http::header::CONTENT_LENGTH,
        HeaderValue::from(length.max(1)),
    );
    response
}

fn with_limit_info(shared: &Shared, mut response: Response) -> Response {
    let info = {
        let state = shared.lock();
        shared.limit_info(&state)
    };
    if let Ok(value) = HeaderValue::from_str(&info) {
        response.headers_mut().insert("sforce-limit-info", value);
    }
    response
}

fn router(shared: Arc<Shared>) -> Router {
    let api = rest::routes()
        .merge(soap::routes())
        .layer(middleware::from_fn_with_state(shared.clone(), gate));
    Router::new()
        .merge(oauth::routes())
        .merge(control::routes())
        .merge(api)
        .with_state(shared)
}

/// A running emulator. Dropping it stops the server.
pub struct Emulator {
    shared: Arc<Shared>,
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Emulator {
    /// Starts an emulator on `127.0.0.1` and an ephemeral port.
    pub async fn start(options: Options) -> std::io::Result<Emulator> {
        Self::bind(SocketAddr::from(([127, 0, 0, 1], 0)), options).await
    }

    /// Starts an emulator on `addr`, which must be a loopback address.
    pub async fn bind(addr: SocketAddr, options: Options) -> std::io::Result<Emulator> {
        if !addr.ip().is_loopback() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("the emulator serves loopback only, not {addr}"),
            ));
        }
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let mut records = Records::default();
        if let Some(organization) = org::sobject("Organization") {
            let mut fields = Map::new();
            fields.insert("Name".into(), Value::from(options.org_name.clone()));
            fields.insert("OrganizationType".into(), Value::from("Enterprise Edition"));
            fields.insert("InstanceName".into(), Value::from("EMU1"));
            let id = org::normalize_id(&options.org_id).ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!("org_id {:?} is not a Salesforce id", options.org_id),
                )
            })?;
            records.insert_with_id(organization, id, fields);
        }
        let now = Instant::now();
        let state = OrgState {
            records,
            sessions: options
                .access_tokens
                .iter()
                .map(|t| (t.clone(), now))
                .collect(),
            refresh_tokens: options.refresh_tokens.iter().cloned().collect(),
            cursors: HashMap::new(),
            faults: Vec::new(),
            latency: None,
            counters: Counters::default(),
            in_flight: 0,
            issued: 0,
            expire_after: None,
            chaos: None,
            write_log: Vec::new(),
            started: now,
            echo_credentials: false,
        };
        let shared = Arc::new(Shared {
            options,
            base_url: format!("http://{addr}"),
            state: Mutex::new(state),
        });
        let app = router(shared.clone());
        let task = tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app).await {
                tracing::error!(%error, "salesforce emulator stopped");
            }
        });
        Ok(Emulator { shared, addr, task })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `127.0.0.1:PORT`: the connector's `domain` setting.
    pub fn domain(&self) -> String {
        self.addr.to_string()
    }

    pub fn base_url(&self) -> &str {
        &self.shared.base_url
    }

    pub fn options(&self) -> &Options {
        &self.shared.options
    }

    pub fn counters(&self) -> Counters {
        let state = self.shared.lock();
        let mut counters = state.counters.clone();
        counters.records = state
            .records
            .counts()
            .into_iter()
            .filter(|(name, _)| name != "Organization")
            .collect();
        counters
    }

    pub fn inject(&self, fault: Fault) {
        self.shared.lock().faults.push(fault);
    }

    pub fn clear_faults(&self) {
        self.shared.lock().faults.clear();
    }

    pub fn set_latency(&self, latency: Option<Latency>) {
        self.shared.lock().latency = latency;
    }

    /// Ends every session: the next API call answers 401.
    pub fn expire_sessions(&self) {
        self.shared.lock().sessions.clear();
    }

    /// Ends every session once `requests` more API requests have been
    /// served: a session that expires partway through a batch, at a
    /// deterministic point.
    pub fn expire_sessions_after(&self, requests: u64) {
        self.shared.lock().expire_after = Some(requests.max(1));
    }

    /// Faults a share of all API requests from now on; `None` stops.
    pub fn set_chaos(&self, chaos: Option<Chaos>) {
        self.shared.lock().chaos = chaos.map(chaos::ChaosState::new);
    }

    /// Every record's part in every Collections write so far.
    pub fn write_log(&self) -> Vec<WriteAttempt> {
        self.shared.lock().write_log.clone()
    }

    /// Makes every error answer quote the credentials of the request it
    /// answers, raw, URL-encoded and in base64, as a careless store's
    /// error pages do: for tests that a client keeps them from whoever
    /// reads the answer.
    pub fn echo_credentials(&self, on: bool) {
        self.shared.lock().echo_credentials = on;
    }

    /// Invalidates every refresh token: the next refresh gets
    /// `invalid_grant`.
    pub fn revoke_refresh_tokens(&self) {
        self.shared.lock().refresh_tokens.clear();
    }

    /// Accepts a new refresh token, as an org does once an administrator
    /// authorizes the connected app again.
    pub fn add_refresh_token(&self, token: &str) {
        self.shared.lock().refresh_tokens.insert(token.to_string());
    }

    pub fn refresh_tokens(&self) -> Vec<String> {
        self.shared.lock().refresh_tokens.iter().cloned().collect()
    }

    /// Creates a record directly, without an API call, e.g. a Lead that the
    /// connector should adopt.
    pub fn seed(&self, sobject: &str, fields: Value) -> Result<String, String> {
        let object = org::sobject(sobject).ok_or_else(|| format!("no sObject {sobject}"))?;
        let Value::Object(fields) = fields else {
            return Err("fields must be a JSON object".into());
        };
        self.shared
            .lock()
            .records
            .create(object, &fields)
            .map_err(|e| format!("{}: {}", e.code, e.message))
    }

    /// Every live record of a type, with all its fields.
    pub fn records(&self, sobject: &str) -> Vec<Map<String, Value>> {
        let canonical = org::sobject(sobject).map(|s| s.name).unwrap_or("");
        self.shared.lock().records.all(canonical).cloned().collect()
    }

    /// One record by id, if it is live.
    pub fn record(&self, id: &str) -> Option<Map<String, Value>> {
        self.shared
            .lock()
            .records
            .find(id)
            .map(|(_, record)| record.clone())
    }

    /// Ties a Contact to a portal user, so that deleting it fails with
    /// `DELETE_FAILED`.
    pub fn mark_portal_user(&self, contact_id: &str) -> bool {
        self.shared.lock().records.mark_portal_user(contact_id)
    }
}

#[cfg(test)]
mod tests {
    use super::{Latency, endpoint};

    #[test]
    fn latency_jitters_within_its_bounds() {
        let latency = Latency {
            path: String::new(),
            millis: 100,
            jitter_millis: 20,
            after: false,
        };
        let picks: Vec<u128> = (0..2000).map(|_| latency.pick().as_millis()).collect();
        assert!(picks.iter().all(|p| (80..=120).contains(p)), "{picks:?}");
        assert!(picks.contains(&80) && picks.contains(&120), "both ends");
        let fixed = Latency {
            jitter_millis: 0,
            ..latency.clone()
        };
        assert_eq!(fixed.pick().as_millis(), 100);
        let wide = Latency {
            millis: 5,
            ..latency
        };
        assert!(
            (0..=10).contains(&wide.pick().as_millis()),
            "never below zero"
        );
    }

    #[test]
    fn endpoints_fold_ids_and_versions() {
        assert_eq!(
            endpoint("POST", "/services/data/v62.0/composite/sobjects"),
            "POST composite/sobjects"
        );
        assert_eq!(endpoint("GET", "/services/data/v62.0/query"), "GET query");
        assert_eq!(
            endpoint("GET", "/services/data/v62.0/query/01gABC-2000"),
            "GET query/next"
        );
        assert_eq!(
            endpoint(
                "PATCH",
                "/services/data/v62.0/sobjects/Lead/00Q5g0000000001AAA"
            ),
            "PATCH sobjects/Lead/{id}"
        );
        assert_eq!(endpoint("POST", "/services/Soap/u/62.0"), "POST soap");
        assert_eq!(endpoint("GET", "/services/data/v62.0/limits"), "GET limits");
    }
}
