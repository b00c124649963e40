//! A native test harness: the connector's own code, run as a plain Rust
//! test against a store on loopback, without building a component.
//!
//! [`StandIn`] plays the host's broker with the same rules a connector
//! meets in production, so that a test that passes here does not fail
//! there for a reason the broker would give:
//! - only the descriptor's egress origins, filled from the settings, are
//!   reachable (plain HTTP only to loopback, and only when allowed); a
//!   host the connector chose itself (`https://api.example.com`, or a
//!   template whose host is more than one setting) only once the test
//!   approves it, as an operator would;
//! - the credential goes only to an origin whose whole host is a setting
//!   the test gave, never to a host the connector chose;
//! - the connector may not set `authorization`, `cookie`, `host` or the
//!   framing and encoding headers: the stand-in attaches the credential;
//! - redirects are not followed, and the credential is redacted from every
//!   answer;
//! - a 401 refreshes an OAuth 2.0 token once and re-sends.
//!
//! What it does not do is sandbox the code: memory and CPU limits, and the
//! credential scrubbing of every encoding, are the real host's. It also
//! always speaks contract 0.2 (the cache included), whatever the SDK's
//! `contract-0-1` feature says: a build for 0.1 is checked by `provisioner
//! plugins conform` on the component. Run that before shipping.
//!
//! ```no_run
//! use provisioner_connector::http::Client;
//! use provisioner_connector::testing::StandIn;
//! use provisioner_connector::{
//!     Capability, ConnectionReport, Connector, Descriptor, DescriptorBuilder, Source, StoreError,
//! };
//!
//! struct MyConnector {
//!     store: Client,
//! }
//!
//! impl Connector for MyConnector {
//!     fn describe() -> Descriptor {
//!         DescriptorBuilder::new("my-store", "0.1.0", "People in my store")
//!             .text_setting("host", "Host name and port of the store", true)
//!             .egress("https://{host}")
//!             .bearer("api_token")
//!             .capabilities([Capability::Create, Capability::Lookup])
//!             .match_attribute("email")
//!             .map("email", Source::attribute("email"))
//!             .build()
//!     }
//!
//!     fn connect() -> Result<Self, StoreError> {
//!         Ok(MyConnector { store: Client::egress(0)? })
//!     }
//!
//!     fn test_connection(&self) -> Result<ConnectionReport, StoreError> {
//!         self.store.get("/me").send()?;
//!         Ok(ConnectionReport::new("connected"))
//!     }
//! }
//!
//! // A store listening on 127.0.0.1:8080 for the test.
//! let host = StandIn::builder::<MyConnector>()
//!     .setting("host", "127.0.0.1:8080")
//!     .allow_insecure_loopback()
//!     .bearer("test-token")
//!     .build()
//!     .unwrap();
//! let report = host.call(|c: &MyConnector| c.test_connection()).unwrap();
//! ```

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

use crate::bindings::provisioner::identity_store::log::Level;
use crate::host::Host;
use crate::http::{Credential, HttpError, Method, Request, Response};
use crate::{AuthScheme, Connector, StoreError};

/// Headers only the broker may set.
const RESERVED: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "accept-encoding",
    "range",
    "if-range",
    "te",
    "accept-charset",
];

const REDACTED: &str = "__provisioner_redacted__";

/// What the stand-in authenticates with.
#[derive(Debug, Clone)]
enum Auth {
    None,
    Bearer(String),
    /// OAuth 2.0 client credentials against the descriptor's token URL.
    Client {
        token_url: String,
        id: String,
        secret: String,
    },
}

/// Builds a [`StandIn`] for a connector's descriptor.
pub struct StandInBuilder {
    descriptor: crate::Descriptor,
    settings: BTreeMap<String, String>,
    insecure_loopback: bool,
    auth: Option<Auth>,
    approved: Vec<String>,
}

impl StandInBuilder {
    /// Approves an egress template whose host the connector chose, as an
    /// operator does with `approved_egress`: it becomes reachable, and
    /// still never receives a credential.
    pub fn approve(mut self, template: &str) -> Self {
        self.approved.push(template.into());
        self
    }

    /// A non-secret setting, as the operator would write it.
    pub fn setting(mut self, name: &str, value: &str) -> Self {
        self.settings.insert(name.into(), value.into());
        self
    }

    /// Plain HTTP to loopback origins, as `allow_insecure_loopback = true`.
    pub fn allow_insecure_loopback(mut self) -> Self {
        self.insecure_loopback = true;
        self
    }

    /// A fixed access token, sent where the connector asks for the
    /// credential.
    pub fn bearer(mut self, token: &str) -> Self {
        self.auth = Some(Auth::Bearer(token.into()));
        self
    }

    /// OAuth 2.0 client credentials, exchanged at the descriptor's token
    /// URL on the first request that needs a credential, and again on a
    /// 401.
    pub fn oauth2_client(mut self, id: &str, secret: &str) -> Self {
        let token_url = match &self.descriptor.auth {
            AuthScheme::Oauth2(oauth) => oauth.token_url.clone(),
            _ => String::new(),
        };
        self.auth = Some(Auth::Client {
            token_url,
            id: id.into(),
            secret: secret.into(),
        });
        self
    }

    /// The stand-in, or why the settings do not fit the descriptor.
    pub fn build(self) -> Result<StandIn, String> {
        crate::descriptor::check(&self.descriptor).map_err(|e| e.to_string())?;
        let mut settings = BTreeMap::new();
        for spec in &self.descriptor.settings {
            if spec.secret {
                continue;
            }
            match self
                .settings
                .get(&spec.name)
                .or(spec.default_value.as_ref())
            {
                Some(value) => {
                    settings.insert(spec.name.clone(), value.clone());
                }
                None if spec.required => {
                    return Err(format!("setting {} is required", spec.name));
                }
                None => {}
            }
        }
        if let Some(unknown) = self.settings.keys().find(|k| !settings.contains_key(*k)) {
            return Err(format!(
                "{unknown} is not a non-secret setting of the descriptor"
            ));
        }
        let fill = |template: &str| fill(template, &settings, self.insecure_loopback);
        let egress: Vec<Option<Origin>> = self
            .descriptor
            .egress
            .iter()
            .map(|template| {
                let chosen_by_test =
                    whole_setting(template).is_some_and(|name| self.settings.contains_key(name));
                fill(template).map(|url| Origin {
                    url,
                    credentials: chosen_by_test,
                    reachable: chosen_by_test || self.approved.contains(template),
                })
            })
            .collect();
        let auth = match self.auth {
            Some(Auth::Client {
                token_url,
                id,
                secret,
            }) => Auth::Client {
                token_url: fill(&token_url)
                    .map(|origin| format!("{origin}{}", path_of(&token_url)))
                    .ok_or("the token URL's settings are not configured")?,
                id,
                secret,
            },
            Some(other) => other,
            None => Auth::None,
        };
        let client = reqwest::blocking::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        Ok(StandIn {
            inner: Rc::new(Inner {
                settings,
                egress,
                auth,
                token: RefCell::new(None),
                cache: RefCell::new(HashMap::new()),
                logs: RefCell::new(Vec::new()),
                quota: RefCell::new(None),
                sent: RefCell::new(0),
                client,
            }),
        })
    }
}

/// The path (and query) of a URL template, after its origin.
fn path_of(template: &str) -> &str {
    let after_scheme = template
        .split_once("://")
        .map(|(_, r)| r)
        .unwrap_or(template);
    after_scheme
        .find('/')
        .map(|i| &after_scheme[i..])
        .unwrap_or("")
}

/// An egress origin and what the broker's rules allow it.
#[derive(Debug, Clone)]
struct Origin {
    url: String,
    /// Its whole host is a setting the test gave.
    credentials: bool,
    reachable: bool,
}

/// The setting that is a template's whole host (`https://{domain}` or
/// `https://{domain}:8443`), if it is one.
fn whole_setting(template: &str) -> Option<&str> {
    let rest = template.strip_prefix("https://")?;
    let authority = &rest[..rest.find('/').unwrap_or(rest.len())];
    let host = authority
        .rsplit_once(':')
        .map_or(authority, |(host, port)| {
            if port.chars().all(|c| c.is_ascii_digit()) || port.starts_with('{') {
                host
            } else {
                authority
            }
        });
    host.strip_prefix('{')?
        .strip_suffix('}')
        .filter(|name| !name.contains(['{', '}']))
}

/// The origin of an egress template, filled from the settings.
fn fill(
    template: &str,
    settings: &BTreeMap<String, String>,
    insecure_loopback: bool,
) -> Option<String> {
    let mut origin = String::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        origin.push_str(&rest[..open]);
        let close = rest[open..].find('}')? + open;
        origin.push_str(settings.get(&rest[open + 1..close])?);
        rest = &rest[close + 1..];
    }
    origin.push_str(rest);
    let url = url::Url::parse(&origin).ok()?;
    let host = url.host_str()?;
    let loopback = matches!(host, "localhost" | "127.0.0.1" | "[::1]");
    let scheme = if insecure_loopback && loopback {
        "http"
    } else {
        url.scheme()
    };
    let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
    Some(format!("{scheme}://{host}{port}"))
}

/// A stand-in for the host, for native tests of a connector.
pub struct StandIn {
    inner: Rc<Inner>,
}

struct Inner {
    settings: BTreeMap<String, String>,
    egress: Vec<Option<Origin>>,
    auth: Auth,
    token: RefCell<Option<String>>,
    cache: RefCell<HashMap<String, String>>,
    logs: RefCell<Vec<(Level, String)>>,
    quota: RefCell<Option<(u64, u64)>>,
    sent: RefCell<usize>,
    client: reqwest::blocking::Client,
}

impl StandIn {
    /// A stand-in for `C`'s descriptor; give it settings and credentials.
    pub fn builder<C: Connector>() -> StandInBuilder {
        StandInBuilder {
            descriptor: C::describe(),
            settings: BTreeMap::new(),
            insecure_loopback: false,
            auth: None,
            approved: Vec::new(),
        }
    }

    /// Runs `f` with this stand-in as the host, as one call of the host
    /// would.
    pub fn run<R>(&self, f: impl FnOnce() -> R) -> R {
        crate::host::install(self.inner.clone(), f)
    }

    /// Connects `C` as a call does, and runs `f` on it.
    pub fn call<C: Connector, R>(
        &self,
        f: impl FnOnce(&C) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        self.run(|| f(&C::connect()?))
    }

    /// What the connector logged, as `LEVEL message` lines.
    pub fn logs(&self) -> Vec<String> {
        self.inner
            .logs
            .borrow()
            .iter()
            .map(|(level, message)| format!("{level:?} {message}"))
            .collect()
    }

    /// The allowance the connector last reported, as the host would show
    /// it.
    pub fn quota(&self) -> Option<(u64, u64)> {
        *self.inner.quota.borrow()
    }

    /// Requests sent to the store so far (token exchanges excluded).
    pub fn requests(&self) -> usize {
        *self.inner.sent.borrow()
    }
}

impl Inner {
    /// The origin `url` goes to, if the connector may reach it.
    fn allowed(&self, url: &str) -> Result<&Origin, HttpError> {
        let parsed =
            url::Url::parse(url).map_err(|e| HttpError::InvalidRequest(format!("{url}: {e}")))?;
        let origin = parsed.origin().ascii_serialization();
        match self.egress.iter().flatten().find(|o| o.url == origin) {
            Some(found) if found.reachable => Ok(found),
            Some(_) => Err(HttpError::Denied(format!(
                "{origin} is a host the connector chose; approve it (StandInBuilder::approve) as an operator would"
            ))),
            None => Err(HttpError::Denied(format!(
                "{origin} is not among the connector's egress origins ({})",
                self.egress
                    .iter()
                    .flatten()
                    .map(|o| o.url.clone())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }

    fn token(&self, fresh: bool) -> Result<Option<String>, HttpError> {
        match &self.auth {
            Auth::None => Ok(None),
            Auth::Bearer(token) => Ok(Some(token.clone())),
            Auth::Client {
                token_url,
                id,
                secret,
            } => {
                if !fresh && let Some(token) = self.token.borrow().clone() {
                    return Ok(Some(token));
                }
                let answer = self
                    .client
                    .post(token_url)
                    .form(&[
                        ("grant_type", "client_credentials"),
                        ("client_id", id),
                        ("client_secret", secret),
                    ])
                    .send()
                    .map_err(|e| HttpError::Unreachable(format!("token endpoint: {e}")))?;
                let status = answer.status();
                let body: serde_json::Value = answer.json().unwrap_or_default();
                let token = body
                    .get("access_token")
                    .and_then(|t| t.as_str())
                    .ok_or_else(|| {
                        HttpError::Unauthorized(format!("token endpoint answered {status}: {body}"))
                    })?;
                *self.token.borrow_mut() = Some(token.to_string());
                Ok(Some(token.to_string()))
            }
        }
    }

    fn send_once(&self, request: &Request, token: Option<&str>) -> Result<Response, HttpError> {
        let method = match request.method {
            Method::Get => reqwest::Method::GET,
            Method::Head => reqwest::Method::HEAD,
            Method::Post => reqwest::Method::POST,
            Method::Put => reqwest::Method::PUT,
            Method::Patch => reqwest::Method::PATCH,
            Method::Delete => reqwest::Method::DELETE,
        };
        let mut builder = self.client.request(method, &request.url);
        for (name, value) in &request.headers {
            builder = builder.header(name, value);
        }
        let mut body = request.body.clone();
        match (&request.credential, token) {
            (Credential::AuthorizationHeader, Some(token)) => {
                builder = builder.bearer_auth(token);
            }
            (Credential::Body(credential), Some(token)) => {
                body = body.map(|b| {
                    String::from_utf8_lossy(&b)
                        .replace(&credential.placeholder, token)
                        .into_bytes()
                });
            }
            _ => {}
        }
        if let Some(body) = body {
            builder = builder.body(body);
        }
        *self.sent.borrow_mut() += 1;
        let answer = builder.send().map_err(|e| {
            if e.is_timeout() {
                HttpError::Timeout(e.to_string())
            } else {
                HttpError::Unreachable(e.to_string())
            }
        })?;
        let status = answer.status().as_u16();
        let headers = answer
            .headers()
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let body = answer
            .bytes()
            .map_err(|e| HttpError::Protocol(e.to_string()))?
            .to_vec();
        let response = Response {
            status,
            headers,
            body,
        };
        Ok(response)
    }

    /// Every credential the stand-in holds, for redaction.
    fn held(&self) -> Vec<String> {
        let mut held: Vec<String> = self.token.borrow().iter().cloned().collect();
        match &self.auth {
            Auth::None => {}
            Auth::Bearer(token) => held.push(token.clone()),
            Auth::Client { id, secret, .. } => held.extend([id.clone(), secret.clone()]),
        }
        held
    }
}

/// Replaces `token` in the answer's headers and text body. Short values
/// are left alone, as the host leaves them (too short to tell from
/// ordinary text), and so is a body that is not UTF-8: the host scrubs
/// every encoding of every credential; this harness, the raw text only.
fn redact(response: &mut Response, token: &str) {
    if token.len() < 8 {
        return;
    }
    if let Ok(text) = std::str::from_utf8(&response.body)
        && text.contains(token)
    {
        response.body = text.replace(token, REDACTED).into_bytes();
    }
    for (_, value) in &mut response.headers {
        if value.contains(token) {
            *value = value.replace(token, REDACTED);
        }
    }
}

impl Host for Inner {
    fn send(&self, request: &Request) -> Result<Response, HttpError> {
        if let Some((name, _)) = request
            .headers
            .iter()
            .find(|(name, _)| RESERVED.contains(&name.to_ascii_lowercase().as_str()))
        {
            return Err(HttpError::InvalidRequest(format!(
                "the header {name} is the host's to set"
            )));
        }
        let origin = self.allowed(&request.url)?;
        let wants = !matches!(request.credential, Credential::None);
        if wants && !origin.credentials && !matches!(self.auth, Auth::None) {
            return Err(HttpError::Denied(format!(
                "{} is a host the connector chose: it never receives a credential",
                origin.url
            )));
        }
        let token = if wants { self.token(false)? } else { None };
        let mut response = self.send_once(request, token.as_deref())?;
        if response.status == 401 && wants && matches!(self.auth, Auth::Client { .. }) {
            let fresh = self.token(true)?;
            response = self.send_once(request, fresh.as_deref())?;
            if response.status == 401 {
                return Err(HttpError::Unauthorized(
                    "the store still answers 401 after a refresh".into(),
                ));
            }
        }
        // Stores echo their input: every answer is scrubbed of every
        // credential the connection holds, whether this request sent it.
        for held in self.held() {
            redact(&mut response, &held);
        }
        Ok(response)
    }

    fn setting(&self, name: &str) -> Option<String> {
        self.settings.get(name).cloned()
    }

    fn egress_url(&self, index: u32) -> Option<String> {
        let origin = self.egress.get(usize::try_from(index).ok()?)?;
        origin.as_ref().map(|o| o.url.clone())
    }

    fn session(&self, _name: &str) -> Option<String> {
        None
    }

    fn connection_name(&self) -> String {
        "stand-in".into()
    }

    fn cache_get(&self, key: &str) -> Option<String> {
        self.cache.borrow().get(key).cloned()
    }

    fn cache_set(&self, key: &str, value: &str, _ttl_ms: u64) -> Result<(), String> {
        if key.is_empty() || key.len() > 128 || value.len() > 64 << 10 {
            return Err("over the host's cache limits".into());
        }
        self.cache.borrow_mut().insert(key.into(), value.into());
        Ok(())
    }

    fn cache_remove(&self, key: &str) {
        self.cache.borrow_mut().remove(key);
    }

    fn log(&self, level: Level, message: &str) {
        self.logs.borrow_mut().push((level, message.into()));
    }

    fn report_quota(&self, used: u64, max: u64) {
        *self.quota.borrow_mut() = Some((used, max));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Client;
    use crate::{Capability, ConnectionReport, Descriptor, DescriptorBuilder, Source};

    /// A connector with one origin the operator names and one it chose.
    struct TwoHosts;

    impl Connector for TwoHosts {
        fn describe() -> Descriptor {
            DescriptorBuilder::new("two-hosts", "1.0.0", "")
                .text_setting("domain", "", true)
                .egress("https://{domain}")
                .egress("https://telemetry.invalid")
                .bearer("token")
                .capabilities([Capability::Create])
                .match_attribute("email")
                .map("email", Source::attribute("email"))
                .build()
        }
        fn connect() -> Result<Self, StoreError> {
            Ok(TwoHosts)
        }
        fn test_connection(&self) -> Result<ConnectionReport, StoreError> {
            Ok(ConnectionReport::new("ok"))
        }
    }

    fn denied(result: Result<Response, StoreError>) -> String {
        match result {
            Err(StoreError::Rejected(r)) if r.code == "EGRESS_DENIED" => r.message,
            other => panic!("not denied: {other:?}"),
        }
    }

    #[test]
    fn a_host_the_connector_chose_needs_approval_and_never_gets_the_credential() {
        let builder = || {
            StandIn::builder::<TwoHosts>()
                .setting("domain", "store.invalid")
                .bearer("secret-token-123")
        };
        let host = builder().build().unwrap();
        let chosen = host.run(|| Client::egress(1).unwrap().get("/").send());
        assert!(denied(chosen).contains("approve it"));

        let host = builder()
            .approve("https://telemetry.invalid")
            .build()
            .unwrap();
        let with_credential = host.run(|| Client::egress(1).unwrap().get("/").send());
        assert!(denied(with_credential).contains("never receives a credential"));
        // Without one, the policy lets it through (and the name resolves
        // nowhere, so the failure is the network's).
        let plain = host.run(|| {
            Client::egress(1)
                .unwrap()
                .without_credential()
                .get("/")
                .send()
        });
        assert!(matches!(plain, Err(StoreError::Transient(_))), "{plain:?}");
        assert_eq!(host.requests(), 1);
    }

    #[test]
    fn settings_must_fit_the_descriptor() {
        let missing = StandIn::builder::<TwoHosts>().build().err();
        assert_eq!(missing.as_deref(), Some("setting domain is required"));
        let unknown = StandIn::builder::<TwoHosts>()
            .setting("domain", "x")
            .setting("colour", "red")
            .build()
            .err();
        assert!(unknown.is_some_and(|e| e.contains("colour")));
    }

    #[test]
    fn the_latest_quota_report_is_what_the_host_shows() {
        let host = StandIn::builder::<TwoHosts>()
            .setting("domain", "store.invalid")
            .build()
            .unwrap();
        assert_eq!(host.quota(), None);
        host.run(|| {
            crate::quota::report(5, 100);
            crate::quota::report(7, 100);
        });
        assert_eq!(host.quota(), Some((7, 100)));
    }
}
