//! The broker: a plugin's only doors out of the sandbox.
//!
//! One [`Broker`] serves one connection. It answers the plugin's `config`
//! import from the connection's non-secret settings, and its `http` import
//! by sending the request itself, with reqwest and rustls, after checking
//! the egress policy ([`egress`]) for the request and for every redirect
//! hop. It attaches the credentials, which never leave the host: the OAuth
//! 2.0 tokens ([`oauth`]) and static bearer tokens live here and nowhere
//! else.
//!
//! A credential goes only to an origin the operator chose (see [`egress`]),
//! a body credential only into the SOAP header ([`splice`]), and every
//! answer is scrubbed of every credential before the plugin sees it
//! ([`scrub`]), because stores echo their input.

pub mod cache;
pub mod egress;
mod oauth;
pub mod scrub;
mod splice;

pub use oauth::{ClientAuth, TokenEndpoint};

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use url::Url;

use crate::runtime::contract::{AuthScheme, Descriptor};
use egress::{Choices, Denied, EgressPolicy, Reach, TemplateError};
use scrub::{Held, Scrubber};

/// Headers a plugin may not set: credentials and routing are the host's.
const RESERVED_HEADERS: &[&str] = &["authorization", "proxy-authorization", "cookie", "host"];
/// Headers the host computes from the body and the connection.
const FRAMING_HEADERS: &[&str] = &["content-length", "transfer-encoding", "connection"];
/// Headers that shape how an answer is encoded or cut. Every answer is
/// scrubbed of credentials before the plugin sees it, and compressed, cut
/// into ranges or transcoded to UTF-16, an echoed credential would pass
/// the scrubber; the host asks for whole, uncompressed answers itself.
const REPRESENTATION_HEADERS: &[&str] = &[
    "accept-encoding",
    "range",
    "if-range",
    "te",
    "accept-charset",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Method {
    Get,
    Head,
    Post,
    Put,
    Patch,
    Delete,
}

impl Method {
    fn as_reqwest(self) -> reqwest::Method {
        match self {
            Method::Get => reqwest::Method::GET,
            Method::Head => reqwest::Method::HEAD,
            Method::Post => reqwest::Method::POST,
            Method::Put => reqwest::Method::PUT,
            Method::Patch => reqwest::Method::PATCH,
            Method::Delete => reqwest::Method::DELETE,
        }
    }
}

/// Where the host puts the connection's credential; see the WIT's
/// `credential`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    None,
    AuthorizationHeader,
    Body {
        placeholder: String,
        expired_marker: String,
    },
}

/// A request as the plugin asked for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    pub method: Method,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
    pub credential: Credential,
}

/// What one plugin call has used of the broker's allowances.
#[derive(Debug, Default)]
pub struct CallScope {
    /// Whether a body credential's expired marker already had the token
    /// refreshed in this call. The marker is text the connector chose, so
    /// an answer "expires" the session whenever the connector likes: it
    /// gets one refresh a call, not one a request.
    marker_refreshed: std::sync::atomic::AtomicBool,
}

/// The shortest body placeholder the host accepts, so that a token is never
/// spliced into a body by accident.
const MIN_PLACEHOLDER: usize = 8;

/// The final answer after redirects and at most one credential refresh.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// Why the broker produced no response; mirrors the WIT's `http-error`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "message")]
pub enum HttpError {
    #[error("denied: {0}")]
    Denied(String),
    #[error("unreachable: {0}")]
    Unreachable(String),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("timeout: {0}")]
    Timeout(String),
    #[error("too large: the response exceeded the {0}-byte cap")]
    TooLarge(u64),
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    #[error("protocol: {0}")]
    Protocol(String),
}

impl HttpError {
    /// The same error with every credential removed from its text: the
    /// text may quote a store's answer or a URL it redirected to.
    pub(crate) fn scrubbed(self, scrubber: &Scrubber) -> HttpError {
        let clean = |text: String| match scrubber.scrub_text(&text) {
            Cow::Borrowed(_) => text,
            Cow::Owned(clean) => clean,
        };
        match self {
            HttpError::Denied(m) => HttpError::Denied(clean(m)),
            HttpError::Unreachable(m) => HttpError::Unreachable(clean(m)),
            HttpError::Tls(m) => HttpError::Tls(clean(m)),
            HttpError::Timeout(m) => HttpError::Timeout(clean(m)),
            HttpError::TooLarge(cap) => HttpError::TooLarge(cap),
            HttpError::Unauthorized(m) => HttpError::Unauthorized(clean(m)),
            HttpError::InvalidRequest(m) => HttpError::InvalidRequest(clean(m)),
            HttpError::Protocol(m) => HttpError::Protocol(clean(m)),
        }
    }
}

/// Where a rotated secret goes. The configuration's secret store implements
/// it; the broker only knows that a value must be kept.
pub trait SecretSink: Send + Sync {
    /// Persists the new value of the secret setting `name` of `connection`,
    /// durably, before returning. The error text must not contain the value.
    fn persist(&self, connection: &str, name: &str, value: &SecretString) -> Result<(), String>;
}

/// A sink for connections whose secrets cannot be written back.
pub struct NoSink;

impl SecretSink for NoSink {
    fn persist(&self, _connection: &str, name: &str, _value: &SecretString) -> Result<(), String> {
        Err(format!("{name} has no writable secret store"))
    }
}

/// Timeouts and caps for brokered HTTP.
#[derive(Debug, Clone, Copy)]
pub struct HttpLimits {
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    pub max_response_bytes: u64,
    pub max_redirects: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            max_response_bytes: 32 << 20,
            max_redirects: 5,
        }
    }
}

/// Everything needed to broker one connection.
pub struct BrokerSpec<'a> {
    pub connection: &'a str,
    pub descriptor: &'a Descriptor,
    /// Non-secret settings, defaults applied, in text form.
    pub settings: BTreeMap<String, String>,
    /// Secret settings by name. They stay in the broker.
    pub secrets: BTreeMap<String, SecretString>,
    /// What the operator decided about egress: the settings they wrote,
    /// the hosts they approved and trusted, plain HTTP to loopback.
    pub choices: Choices,
    pub limits: HttpLimits,
    pub sink: Arc<dyn SecretSink>,
    /// Connections whose OAuth 2.0 secrets come from the same places share
    /// one token state through this pool, so that a refresh-token rotation
    /// by one never strands the other with a spent token.
    pub shared: Option<(&'a CredentialPool, String)>,
}

/// OAuth 2.0 token states shared between connections, keyed by where their
/// secrets come from and where they are exchanged.
#[derive(Default)]
pub struct CredentialPool {
    states: std::sync::Mutex<std::collections::HashMap<String, Arc<oauth::OAuth2>>>,
}

impl std::fmt::Debug for CredentialPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialPool").finish_non_exhaustive()
    }
}

/// Why a connection cannot be brokered as configured.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error("token URL: {0}")]
    TokenUrl(String),
    #[error("building the HTTP client: {0}")]
    Client(String),
}

enum Auth {
    None,
    Bearer(SecretString),
    OAuth2(Arc<oauth::OAuth2>),
}

/// The doors of one connection.
pub struct Broker {
    connection: String,
    settings: BTreeMap<String, String>,
    policy: RwLock<EgressPolicy>,
    session: RwLock<BTreeMap<String, String>>,
    auth: Auth,
    /// Every credential the connection holds or held, for scrubbing.
    held: Arc<Held>,
    client: reqwest::Client,
    limits: HttpLimits,
    /// The API usage the connector last reported for the store (contract
    /// 0.2's `quota`): the host reads no store's headers itself.
    usage: std::sync::Mutex<Option<(u64, u64)>>,
    cache: cache::ConnectorCache,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker")
            .field("connection", &self.connection)
            .finish_non_exhaustive()
    }
}

impl Broker {
    pub fn new(spec: BrokerSpec<'_>) -> Result<Broker, BrokerError> {
        let BrokerSpec {
            connection,
            descriptor,
            settings,
            mut secrets,
            choices,
            limits,
            sink,
            shared,
        } = spec;
        let policy = EgressPolicy::new(&descriptor.egress, &settings, &choices)?;
        // Every secret setting, not only those the auth scheme uses: a
        // plugin may declare others, and none of them may come back.
        let all_secrets: Vec<SecretString> = secrets.values().cloned().collect();
        for (name, value) in &secrets {
            if value.expose_secret().len() < scrub::MIN_SECRET {
                tracing::warn!(
                    connection,
                    secret = %name,
                    "the secret is shorter than {} characters, too short to tell from ordinary text: answers are not scrubbed of it",
                    scrub::MIN_SECRET
                );
            }
        }
        // The operator's token endpoint, written whole, replaces a static
        // bearer token; a plugin's own endpoint must be at an origin the
        // operator chose.
        let endpoint = match (&descriptor.auth, choices.token_endpoint.clone()) {
            (AuthScheme::Bearer { .. }, Some(endpoint)) => Some((endpoint, false)),
            (_, Some(_)) => {
                return Err(BrokerError::TokenUrl(format!(
                    "connection {connection}: a token endpoint of the operator's replaces a static bearer token, and {} takes none",
                    descriptor.name
                )));
            }
            (AuthScheme::OAuth2 { token_url }, None) => {
                let url = policy
                    .token_url(token_url, &settings)
                    .map_err(BrokerError::TokenUrl)?;
                let endpoint = TokenEndpoint {
                    url,
                    scope: None,
                    client_auth: ClientAuth::Post,
                };
                Some((endpoint, true))
            }
            (AuthScheme::None | AuthScheme::Bearer { .. }, None) => None,
        };
        let auth = match (&descriptor.auth, endpoint) {
            (_, Some((endpoint, learns_instance))) => {
                let key = format!("{}|{}", endpoint.url, shared.as_ref().map_or("", |s| &s.1));
                let make = |secrets: &mut BTreeMap<String, SecretString>| {
                    Arc::new(oauth::OAuth2::new(
                        connection,
                        endpoint,
                        learns_instance,
                        secrets,
                        Arc::new(Held::new(all_secrets.clone())),
                        sink.clone(),
                        limits.max_response_bytes,
                    ))
                };
                let state = match shared {
                    Some((pool, _)) => pool
                        .states
                        .lock()
                        .unwrap_or_else(|poisoned| poisoned.into_inner())
                        .entry(key)
                        .or_insert_with(|| make(&mut secrets))
                        .clone(),
                    None => make(&mut secrets),
                };
                Auth::OAuth2(state)
            }
            // The contract's word: a connection without credentials sends
            // none. A required secret that is missing never gets here (the
            // configuration is refused), and `check` warns of an optional
            // one left unset.
            (AuthScheme::Bearer { secret }, None) => match secrets.remove(secret) {
                Some(value) => Auth::Bearer(value),
                None => Auth::None,
            },
            (AuthScheme::None | AuthScheme::OAuth2 { .. }, None) => Auth::None,
        };
        // Connections sharing a credential set share what it held.
        let held = match &auth {
            Auth::OAuth2(oauth) => oauth.held().clone(),
            _ => Arc::new(Held::new(all_secrets)),
        };
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(limits.connect_timeout)
            .timeout(limits.request_timeout)
            .user_agent(concat!("provisioner/", env!("CARGO_PKG_VERSION")))
            // `localhost` is admitted as loopback by name: make sure it is.
            .resolve("localhost", std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
            .build()
            .map_err(|e| BrokerError::Client(e.to_string()))?;
        Ok(Broker {
            connection: connection.into(),
            settings,
            policy: RwLock::new(policy),
            session: RwLock::new(BTreeMap::new()),
            auth,
            held,
            client,
            limits,
            usage: std::sync::Mutex::new(None),
            cache: cache::ConnectorCache::default(),
        })
    }

    /// The API usage the connector last reported, if it reports one.
    pub fn api_usage(&self) -> Option<(u64, u64)> {
        *self.usage.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Keeps what the connector reports of the store's allowance.
    pub fn report_usage(&self, used: u64, max: u64) {
        *self.usage.lock().unwrap_or_else(|p| p.into_inner()) = Some((used, max));
    }

    pub fn connection(&self) -> &str {
        &self.connection
    }

    /// The `cache` door of contract 0.2.
    pub fn cache(&self) -> &cache::ConnectorCache {
        &self.cache
    }

    /// The `config.get` door: non-secret settings only.
    pub fn setting(&self, name: &str) -> Option<String> {
        self.settings.get(name).cloned()
    }

    /// The `config.egress-url` door.
    pub fn egress_url(&self, index: usize) -> Option<String> {
        self.read_policy().egress_url(index)
    }

    /// The `config.session` door.
    pub fn session(&self, name: &str) -> Option<String> {
        self.session
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(name)
            .cloned()
    }

    /// The token URL, for operators (`connections test`).
    pub fn token_url(&self) -> Option<&Url> {
        match &self.auth {
            Auth::OAuth2(oauth) => Some(oauth.token_url()),
            _ => None,
        }
    }

    fn read_policy(&self) -> std::sync::RwLockReadGuard<'_, EgressPolicy> {
        // The policy is replaced whole under the lock; a panic elsewhere
        // cannot leave it half-written.
        self.policy
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Checks a URL the plugin asked for, and whether it may carry the
    /// connection's credentials when `credentialed`.
    fn check(&self, url: &Url, credentialed: bool) -> Result<(), Denied> {
        let policy = self.read_policy();
        if credentialed {
            policy.check_credentialed(url)
        } else {
            policy.check(url).map(|_: Reach| ())
        }
    }

    /// The scrubber for every credential this connection holds or held.
    fn scrubber(&self) -> Arc<Scrubber> {
        self.held.scrubber()
    }

    /// Records what a token exchange taught us: the `instance_url` becomes
    /// reachable if an egress template vouches for it.
    fn learn(&self, grant: &oauth::Grant) {
        let Some(instance_url) = &grant.instance_url else {
            return;
        };
        let admitted = self
            .policy
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .admit_learned(instance_url);
        match admitted {
            Ok(url) => {
                self.session
                    .write()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .insert("instance-url".into(), url);
            }
            Err(reason) => tracing::warn!(
                connection = %self.connection,
                %reason,
                "ignoring the instance_url returned by the token endpoint"
            ),
        }
    }

    async fn credential(&self) -> Result<Option<oauth::Token>, HttpError> {
        match &self.auth {
            Auth::OAuth2(oauth) => {
                let grant = oauth.current(&self.client).await?;
                self.learn(&grant);
                Ok(Some(grant.token))
            }
            Auth::Bearer(value) => Ok(Some(oauth::Token {
                generation: 0,
                value: value.clone(),
            })),
            Auth::None => Ok(None),
        }
    }

    /// The `http.send` door. Whatever comes back, answer or error, is
    /// scrubbed of the connection's credentials.
    pub async fn send(&self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
        self.send_in(request, &CallScope::default()).await
    }

    /// [`Broker::send`] as part of a plugin call, whose allowances `call`
    /// keeps.
    pub async fn send_in(
        &self,
        request: HttpRequest,
        call: &CallScope,
    ) -> Result<HttpResponse, HttpError> {
        let result = self.send_unscrubbed(request, call).await;
        let scrubber = self.scrubber();
        match result {
            Ok(mut response) => {
                let mut found = 0;
                if let (Cow::Owned(body), count) = scrubber.scrub(&response.body) {
                    response.body = body;
                    found += count;
                }
                for (name, value) in &mut response.headers {
                    for text in [name, value] {
                        if let Cow::Owned(clean) = scrubber.scrub_text(text) {
                            *text = clean;
                            found += 1;
                        }
                    }
                }
                if found > 0 {
                    tracing::warn!(
                        connection = %self.connection,
                        status = response.status,
                        found,
                        "the store's answer quoted this connection's credentials; they were replaced with {} before the plugin saw it",
                        scrub::MARKER
                    );
                }
                Ok(response)
            }
            Err(error) => Err(error.scrubbed(&scrubber)),
        }
    }

    /// Checks a request before anything is sent: its headers, its body
    /// credential's placeholder, its URL against the egress policy, and
    /// where a credential would be spliced. Returns the headers to send,
    /// the URL, and whether the request carries a credential.
    fn prepare(
        &self,
        request: &HttpRequest,
    ) -> Result<(reqwest::header::HeaderMap, Url, bool), HttpError> {
        let mut headers = checked_headers(&request.headers)?;
        headers.insert(
            reqwest::header::ACCEPT_ENCODING,
            reqwest::header::HeaderValue::from_static("identity"),
        );
        if let Credential::Body {
            placeholder,
            expired_marker,
        } = &request.credential
            && (placeholder.len() < MIN_PLACEHOLDER || expired_marker.is_empty())
        {
            return Err(HttpError::InvalidRequest(format!(
                "a body credential needs a placeholder of at least {MIN_PLACEHOLDER} characters and an expired marker"
            )));
        }
        let url = Url::parse(&request.url).map_err(|e| {
            HttpError::InvalidRequest(format!("{:?} is not an absolute URL: {e}", request.url))
        })?;
        // A request carries a credential when it asks for one and the
        // connection has one.
        let credentialed =
            !matches!(request.credential, Credential::None) && !matches!(self.auth, Auth::None);
        self.check(&url, credentialed)
            .map_err(|denied| HttpError::Denied(denied.to_string()))?;
        if credentialed && let Credential::Body { placeholder, .. } = &request.credential {
            splice::check(
                request.body.as_deref().unwrap_or_default(),
                placeholder,
                &request.headers,
            )
            .map_err(HttpError::InvalidRequest)?;
        }
        Ok((headers, url, credentialed))
    }

    /// Where a redirect goes, checked as the first request was: a
    /// credential follows it only to an origin that may have it. Returns
    /// the next URL, and whether the request becomes a `GET` without a
    /// body.
    fn redirect(
        &self,
        url: &Url,
        location: &reqwest::header::HeaderValue,
        status: reqwest::StatusCode,
        method: Method,
        credentialed: bool,
    ) -> Result<(Url, bool), HttpError> {
        let location = location.to_str().map_err(|_| {
            HttpError::Protocol(format!("{url} redirected to a location that is not ASCII"))
        })?;
        let next = url
            .join(location)
            .map_err(|e| HttpError::Protocol(format!("{url} redirected to {location:?}: {e}")))?;
        self.check(&next, credentialed).map_err(|denied| {
            HttpError::Denied(format!("redirect from {url} refused: {denied}"))
        })?;
        let becomes_get = status == reqwest::StatusCode::SEE_OTHER
            || ((status == reqwest::StatusCode::MOVED_PERMANENTLY
                || status == reqwest::StatusCode::FOUND)
                && method == Method::Post);
        Ok((next, becomes_get))
    }

    async fn send_unscrubbed(
        &self,
        request: HttpRequest,
        call: &CallScope,
    ) -> Result<HttpResponse, HttpError> {
        let (headers, mut url, credentialed) = self.prepare(&request)?;
        let mut method = request.method;
        let mut body = request.body;
        let mut token = if credentialed {
            self.credential().await?
        } else {
            None
        };
        let mut refreshed = false;
        let mut hops = 0;
        loop {
            let started = std::time::Instant::now();
            let builder = self
                .client
                .request(method.as_reqwest(), url.clone())
                .headers(headers.clone());
            let response = attach(builder, &request.credential, token.as_ref(), body.clone())
                .send()
                .await
                .map_err(|e| classify_reqwest(&e, &url, Some(self.limits.request_timeout)))?;
            let status = response.status();
            crate::telemetry::target_request(&self.connection, status.as_u16());
            tracing::debug!(
                connection = %self.connection,
                method = ?method,
                host = url.host_str().unwrap_or(""),
                path = %self.scrubber().scrub_text(url.path()),
                status = status.as_u16(),
                elapsed_ms = started.elapsed().as_millis() as u64,
                "brokered request"
            );

            if status.is_redirection()
                && let Some(location) = response.headers().get(reqwest::header::LOCATION)
            {
                hops += 1;
                if hops > self.limits.max_redirects {
                    return Err(HttpError::Protocol(format!(
                        "more than {} redirects, last at {url}",
                        self.limits.max_redirects
                    )));
                }
                let (next, becomes_get) =
                    self.redirect(&url, location, status, method, token.is_some())?;
                if becomes_get {
                    method = Method::Get;
                    body = None;
                }
                url = next;
                continue;
            }

            let (response_headers, response_body) =
                read_answer(response, &url, self.limits.max_response_bytes).await?;
            let rejected = token.is_some()
                && match &request.credential {
                    Credential::AuthorizationHeader => status == reqwest::StatusCode::UNAUTHORIZED,
                    Credential::Body { expired_marker, .. } => {
                        !status.is_success() && contains(&response_body, expired_marker.as_bytes())
                    }
                    Credential::None => false,
                };
            if let Auth::OAuth2(oauth) = &self.auth
                && let Some(current) = &token
            {
                if !rejected {
                    if status.is_success() {
                        oauth.accepted(current.generation);
                    }
                } else if refreshed {
                    return Err(HttpError::Unauthorized(format!(
                        "{url} still refused the credentials after the access token was refreshed: {}",
                        excerpt(&response_body)
                    )));
                } else if matches!(request.credential, Credential::Body { .. })
                    && call
                        .marker_refreshed
                        .swap(true, std::sync::atomic::Ordering::Relaxed)
                {
                    return Err(HttpError::Unauthorized(format!(
                        "{url} answered with the body credential's expired marker again; the access token was already refreshed once in this call for that marker: {}",
                        excerpt(&response_body)
                    )));
                } else {
                    let grant = oauth.refresh(&self.client, current.generation).await?;
                    self.learn(&grant);
                    token = Some(grant.token);
                    refreshed = true;
                    continue;
                }
            }
            return Ok(HttpResponse {
                status: status.as_u16(),
                headers: response_headers,
                body: response_body,
            });
        }
    }
}

/// The request with its credential: a bearer token in the header, or the
/// token spliced into the body at its placeholder.
fn attach(
    builder: reqwest::RequestBuilder,
    credential: &Credential,
    token: Option<&oauth::Token>,
    body: Option<Vec<u8>>,
) -> reqwest::RequestBuilder {
    let mut builder = builder;
    let mut payload = body;
    if let Some(token) = token {
        match credential {
            Credential::AuthorizationHeader => {
                builder = builder.bearer_auth(token.value.expose_secret());
            }
            Credential::Body { placeholder, .. } => {
                payload = payload.map(|bytes| {
                    replace_once(
                        &bytes,
                        placeholder.as_bytes(),
                        token.value.expose_secret().as_bytes(),
                    )
                });
            }
            Credential::None => {}
        }
    }
    match payload {
        Some(payload) => builder.body(payload),
        None => builder,
    }
}

/// An answer's headers and body, read within the cap, refused if the
/// scrubber could not read them.
async fn read_answer(
    response: reqwest::Response,
    url: &Url,
    cap: u64,
) -> Result<(Vec<(String, String)>, Vec<u8>), HttpError> {
    scrubbable(&response, url)?;
    let headers: Vec<(String, String)> = response
        .headers()
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_string(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect();
    let body = read_capped(response, url, cap).await?;
    scrubbable_body(&body, url)?;
    Ok((headers, body))
}

/// Refuses an answer the scrubber could not read: compressed, partial, or
/// in a charset that is not ASCII-compatible. The host asked for none of
/// these, so a store that sends one anyway gets no benefit of the doubt.
fn scrubbable(response: &reqwest::Response, url: &Url) -> Result<(), HttpError> {
    let headers = response.headers();
    if let Some(encoding) = headers.get(reqwest::header::CONTENT_ENCODING) {
        let encoding = String::from_utf8_lossy(encoding.as_bytes()).to_ascii_lowercase();
        if !encoding.trim().is_empty() && encoding.trim() != "identity" {
            return Err(HttpError::Protocol(format!(
                "{url} answered with content encoding {encoding:?}, which the host did not ask for and cannot search for credentials"
            )));
        }
    }
    if response.status() == reqwest::StatusCode::PARTIAL_CONTENT {
        return Err(HttpError::Protocol(format!(
            "{url} answered with part of a resource (206), which the host did not ask for"
        )));
    }
    if let Some(kind) = headers.get(reqwest::header::CONTENT_TYPE) {
        let kind = String::from_utf8_lossy(kind.as_bytes()).to_ascii_lowercase();
        let charset = kind
            .split(';')
            .filter_map(|p| p.trim().strip_prefix("charset="))
            .map(|c| c.trim_matches('"'))
            .next();
        if charset.is_some_and(|c| {
            c.starts_with("utf-16") || c.starts_with("utf-32") || c.starts_with("ucs")
        }) {
            return Err(HttpError::Protocol(format!(
                "{url} answered in {}, which the host cannot search for credentials; connectors get ASCII-compatible answers only",
                charset.unwrap_or_default()
            )));
        }
    }
    Ok(())
}

/// Refuses a body in UTF-16 or UTF-32 that no header declared as such:
/// its byte order mark gives it away.
fn scrubbable_body(body: &[u8], url: &Url) -> Result<(), HttpError> {
    let marks: [&[u8]; 3] = [b"\xff\xfe", b"\xfe\xff", b"\0\0\xfe\xff"];
    if marks.iter().any(|bom| body.starts_with(bom)) {
        return Err(HttpError::Protocol(format!(
            "{url} answered in UTF-16 or UTF-32, which the host cannot search for credentials; connectors get ASCII-compatible answers only"
        )));
    }
    Ok(())
}

/// Checks the plugin's headers: credentials, routing, framing and the
/// answer's representation are the host's to set.
fn checked_headers(headers: &[(String, String)]) -> Result<reqwest::header::HeaderMap, HttpError> {
    let mut map = reqwest::header::HeaderMap::new();
    for (name, value) in headers {
        let lower = name.to_ascii_lowercase();
        if RESERVED_HEADERS.contains(&lower.as_str()) {
            return Err(HttpError::Denied(format!(
                "the {lower} header is the host's to set; connectors never send credentials or pick the host"
            )));
        }
        if FRAMING_HEADERS.contains(&lower.as_str()) {
            return Err(HttpError::InvalidRequest(format!(
                "the {lower} header is computed by the host"
            )));
        }
        if REPRESENTATION_HEADERS.contains(&lower.as_str()) {
            return Err(HttpError::Denied(format!(
                "the {lower} header is the host's to set: answers reach connectors whole and uncompressed, so that the host can scrub them of credentials"
            )));
        }
        let name = reqwest::header::HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| HttpError::InvalidRequest(format!("{name:?} is not a header name")))?;
        let value = reqwest::header::HeaderValue::from_str(value).map_err(|_| {
            HttpError::InvalidRequest(format!("the value of header {name} is not valid"))
        })?;
        map.append(name, value);
    }
    Ok(map)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && memchr::memmem::find(haystack, needle).is_some()
}

/// Replaces the one occurrence of `needle` in `haystack` that
/// [`splice::check`] found.
fn replace_once(haystack: &[u8], needle: &[u8], with: &[u8]) -> Vec<u8> {
    match memchr::memmem::find(haystack, needle) {
        Some(at) => [&haystack[..at], with, &haystack[at + needle.len()..]].concat(),
        None => haystack.to_vec(),
    }
}

/// Reads a body, failing as soon as it exceeds `cap` bytes.
async fn read_capped(
    mut response: reqwest::Response,
    url: &Url,
    cap: u64,
) -> Result<Vec<u8>, HttpError> {
    if response.content_length().is_some_and(|len| len > cap) {
        return Err(HttpError::TooLarge(cap));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| classify_reqwest(&e, url, None))?
    {
        if body.len() as u64 + chunk.len() as u64 > cap {
            return Err(HttpError::TooLarge(cap));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A short, printable piece of a body for error messages.
fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return "empty body".into();
    }
    let mut cut: String = text.chars().take(300).collect();
    if cut.len() < text.len() {
        cut.push('…');
    }
    cut
}

/// True when a TLS handshake or certificate check is somewhere in the
/// chain. rustls errors travel inside `std::io::Error`s, sometimes nested,
/// and an `io::Error` hides its payload from `source()`, so look inside.
fn is_tls(error: &(dyn std::error::Error + 'static)) -> bool {
    if error.downcast_ref::<rustls::Error>().is_some() {
        return true;
    }
    if let Some(io) = error.downcast_ref::<std::io::Error>()
        && let Some(inner) = io.get_ref()
        && is_tls(inner)
    {
        return true;
    }
    error.source().is_some_and(is_tls)
}

/// Turns a reqwest failure into the class a connector can act on. The text
/// carries the whole cause chain: "connection refused", "invalid peer
/// certificate: UnknownIssuer" and the like are what an operator needs.
fn classify_reqwest(error: &reqwest::Error, url: &Url, timeout: Option<Duration>) -> HttpError {
    let mut causes: Vec<String> = Vec::new();
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(error);
    while let Some(cause) = source {
        let text = cause.to_string();
        if !causes.iter().any(|c| c.contains(&text)) {
            causes.push(text);
        }
        source = cause.source();
    }
    let detail = if causes.is_empty() {
        error.to_string()
    } else {
        causes.join(": ")
    };
    let origin = url.origin().ascii_serialization();
    if error.is_timeout() {
        let after = timeout
            .map(|t| format!(" within {} s", t.as_secs()))
            .unwrap_or_default();
        HttpError::Timeout(format!("{origin} did not answer{after}"))
    } else if is_tls(error) {
        HttpError::Tls(format!("{origin}: {detail}"))
    } else if error.is_connect() {
        HttpError::Unreachable(format!("{origin}: {detail}"))
    } else if error.is_body() || error.is_decode() {
        HttpError::Protocol(format!("{origin}: reading the answer: {detail}"))
    } else {
        HttpError::Unreachable(format!("{origin}: {detail}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_placeholder_is_replaced_once() {
        assert_eq!(
            replace_once(b"<a>{{sid}}</a><b>{{sid}}</b>", b"{{sid}}", b"T0K"),
            b"<a>T0K</a><b>{{sid}}</b>".to_vec()
        );
        assert_eq!(
            replace_once(b"none here", b"{{sid}}", b"T"),
            b"none here".to_vec()
        );
        assert!(contains(b"xx INVALID_SESSION_ID yy", b"INVALID_SESSION_ID"));
        assert!(!contains(b"fine", b""));
    }

    fn bearer_spec<'a>(
        descriptor: &'a Descriptor,
        secrets: BTreeMap<String, SecretString>,
    ) -> BrokerSpec<'a> {
        BrokerSpec {
            connection: "store",
            descriptor,
            settings: BTreeMap::new(),
            secrets,
            choices: Choices::default(),
            limits: HttpLimits::default(),
            sink: Arc::new(NoSink),
            shared: None,
        }
    }

    /// An optional bearer secret left unset means no credentials, as the
    /// contract says, not a connection that fails at its first call.
    #[tokio::test]
    async fn an_unset_optional_bearer_secret_sends_no_credential() {
        let descriptor = Descriptor::for_tests(
            &[],
            AuthScheme::Bearer {
                secret: "api_token".into(),
            },
        );
        let broker = Broker::new(bearer_spec(&descriptor, BTreeMap::new())).unwrap();
        assert!(broker.credential().await.unwrap().is_none());

        let token = SecretString::from("a-static-token-of-some-length".to_string());
        let secrets = BTreeMap::from([("api_token".to_string(), token)]);
        let broker = Broker::new(bearer_spec(&descriptor, secrets)).unwrap();
        let sent = broker.credential().await.unwrap().unwrap();
        assert_eq!(sent.value.expose_secret(), "a-static-token-of-some-length");
    }

    #[test]
    fn reserved_and_framing_headers_are_refused() {
        for name in [
            "Authorization",
            "cookie",
            "HOST",
            "proxy-authorization",
            "Accept-Encoding",
            "range",
            "If-Range",
            "TE",
            "accept-charset",
        ] {
            let error = checked_headers(&[(name.into(), "x".into())]).unwrap_err();
            assert!(matches!(error, HttpError::Denied(_)), "{name}: {error}");
        }
        for name in ["content-length", "Transfer-Encoding", "connection"] {
            let error = checked_headers(&[(name.into(), "1".into())]).unwrap_err();
            assert!(
                matches!(error, HttpError::InvalidRequest(_)),
                "{name}: {error}"
            );
        }
        let ok = checked_headers(&[("accept".into(), "application/json".into())]).unwrap();
        assert_eq!(ok.len(), 1);
    }
}
