//! OAuth 2.0 credentials held by the host on a connection's behalf.
//!
//! Salesforce-style token endpoints return no `expires_in`: a client learns
//! that its access token expired from a 401 on an API call. So the token is
//! refreshed lazily, on the first request without one and on a 401, and every
//! concurrent caller that saw the same stale token shares one refresh (single
//! flight): the state mutex is held across the exchange, and a caller whose
//! stale generation is already superseded simply takes the new token.
//!
//! Refreshes are rate-limited, so that neither a store that refuses every
//! token nor a connector that provokes 401s can make the host flood the
//! token endpoint:
//!
//! - a token that the store refused before accepting it once is not
//!   replaced until [`REFUSED_TOKEN_FLOOR`] after it was obtained; the
//!   caller gets `unauthorized` at once, and the engine quarantines the
//!   connection. A token that expired after serving is replaced at once,
//!   which is what a session timeout needs;
//! - two exchanges are at least [`EXCHANGE_SPACING`] apart: a caller that
//!   needs one sooner waits for it;
//! - a credential set gets at most [`EXCHANGES_PER_HOUR`] exchanges in any
//!   hour; past that, callers get `unauthorized` (and the connection is
//!   quarantined) without the token endpoint hearing of it. A session that
//!   lasts as long as Salesforce's (hours) needs a handful an hour;
//! - a refused exchange is answered from memory to the callers behind it
//!   for [`FAILURE_MEMORY`], not asked again by each.
//!
//! Only a 2xx answer counts as the store accepting a token: any other
//! answer could come from a path that never looked at it.
//!
//! A token endpoint that does say when its token expires (`expires_in`, as
//! identity providers issuing client-credentials tokens do) gets asked for
//! the next token shortly before then, so that no request has to be
//! refused first. If that early exchange fails, the token in hand keeps
//! serving until the store refuses it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use url::Url;

use super::scrub::Held;
use super::{HttpError, SecretSink, classify_reqwest};

/// How long a token the store refused without ever accepting it stays
/// the last one asked for.
pub(crate) const REFUSED_TOKEN_FLOOR: Duration = Duration::from_secs(5);

/// The least time between two token exchanges of one credential set.
pub(crate) const EXCHANGE_SPACING: Duration = Duration::from_secs(1);

/// The most token exchanges one credential set may make in an hour.
pub(crate) const EXCHANGES_PER_HOUR: usize = 60;

/// How long a refused exchange is answered from memory.
pub(crate) const FAILURE_MEMORY: Duration = Duration::from_secs(60);

/// The least time a token is used before it is renewed ahead of its
/// expiry: a token endpoint issuing very short-lived tokens must not use
/// up the hourly cap in minutes. A token that does expire sooner is
/// replaced when the store refuses it.
pub(crate) const RENEWAL_FLOOR: Duration = Duration::from_secs(60);

/// How the client proves itself to the token endpoint (RFC 6749 §2.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientAuth {
    /// HTTP Basic with the form-encoded client id and secret: the method
    /// every authorization server must support.
    #[default]
    Basic,
    /// `client_id` and `client_secret` in the form body, as Salesforce
    /// expects.
    Post,
}

/// A token endpoint the operator configured for a connector that takes a
/// static bearer token (`[connections.NAME.oauth2]`): the host obtains the
/// bearer token with the client-credentials grant (RFC 6749 §4.4) instead,
/// and renews it. The plugin neither knows nor can tell.
#[derive(Debug, Clone)]
pub struct TokenEndpoint {
    /// Written whole by the operator: the plugin chose none of it.
    pub url: Url,
    /// Sent with the grant when set; many identity providers require it.
    pub scope: Option<String>,
    pub client_auth: ClientAuth,
}

impl TokenEndpoint {
    /// Checks a token URL the operator wrote: it receives the client
    /// secret, so it must be HTTPS (plain HTTP only to a loopback host, and
    /// only where the connection allows it), with no user name, password or
    /// fragment.
    pub fn parse(
        text: &str,
        scope: Option<String>,
        client_auth: ClientAuth,
        insecure_loopback: bool,
    ) -> Result<TokenEndpoint, String> {
        let url = Url::parse(text).map_err(|e| format!("{text:?} is not a URL: {e}"))?;
        let loopback = match url.host() {
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
            None => return Err(format!("{text:?} has no host")),
        };
        match url.scheme() {
            "https" => {}
            "http" if loopback && insecure_loopback => {}
            "http" if loopback => {
                return Err(format!(
                    "{text:?} is plain HTTP; the token endpoint receives the client secret, so it must be https:// (plain HTTP to a loopback host needs allow_insecure_loopback = true on the connection)"
                ));
            }
            _ => {
                return Err(format!(
                    "{text:?} must be an https:// URL: the token endpoint receives the client secret"
                ));
            }
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(format!(
                "{text:?} carries a user name or password; put the client id and secret under the connection's secrets"
            ));
        }
        if url.fragment().is_some() {
            return Err(format!(
                "{text:?} has a fragment (#...), which a token URL cannot use"
            ));
        }
        if scope
            .as_deref()
            .is_some_and(|s| s.trim().is_empty() || s.chars().any(char::is_control))
        {
            return Err(
                "scope must be space-separated scope names, without control characters".into(),
            );
        }
        Ok(TokenEndpoint {
            url,
            scope,
            client_auth,
        })
    }
}

/// When a token that expires `expires_in` after it was obtained is renewed:
/// a minute before it expires, or a tenth of its life for a short one, and
/// never sooner than [`RENEWAL_FLOOR`].
pub(crate) fn renewal_delay(expires_in: Duration) -> Duration {
    let lead = (expires_in / 10).min(Duration::from_secs(60));
    expires_in.saturating_sub(lead).max(RENEWAL_FLOOR)
}

/// `expires_in` as a number of seconds, or as a string of one, which
/// some token endpoints send.
#[derive(Deserialize)]
#[serde(untagged)]
enum Seconds {
    Number(u64),
    Text(String),
}

impl Seconds {
    fn get(&self) -> Option<Duration> {
        match self {
            Seconds::Number(n) => Some(Duration::from_secs(*n)),
            Seconds::Text(t) => t.trim().parse().ok().map(Duration::from_secs),
        }
    }
}

/// The exchanges of the last hour, at most [`EXCHANGES_PER_HOUR`].
#[derive(Debug, Default)]
struct HourlyCap {
    started: std::collections::VecDeque<Instant>,
}

impl HourlyCap {
    /// Counts an exchange starting `now`, or says how many the last hour
    /// already had.
    fn admit(&mut self, now: Instant) -> Result<(), usize> {
        while self
            .started
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= Duration::from_secs(3600))
        {
            self.started.pop_front();
        }
        if self.started.len() >= EXCHANGES_PER_HOUR {
            return Err(self.started.len());
        }
        self.started.push_back(now);
        Ok(())
    }
}

/// An access token and the generation it belongs to. The generation tells a
/// caller that met a 401 whether someone else already refreshed.
#[derive(Clone)]
pub(crate) struct Token {
    pub generation: u64,
    pub value: SecretString,
}

/// A token, and the `instance_url` the token endpoint returned if this call
/// performed the exchange.
pub(crate) struct Grant {
    pub token: Token,
    pub instance_url: Option<String>,
}

struct TokenState {
    generation: u64,
    access: Option<SecretString>,
    refresh: Option<SecretString>,
    /// The failure of the exchange attempted for a generation, so that the
    /// callers queued behind it do not each repeat a refused refresh.
    failure: Option<(u64, HttpError, Instant)>,
    /// The exchanges of the last hour.
    recent: HourlyCap,
    /// When the current access token was obtained, if this process
    /// exchanged for it (not for one from the configuration).
    obtained: Option<Instant>,
    /// When the last exchange was started.
    last_exchange: Option<Instant>,
    /// When the current token is renewed ahead of its expiry; `None` when
    /// the token endpoint did not say when it expires.
    renew_at: Option<Instant>,
}

impl TokenState {
    /// The token already held, if any; no exchange.
    fn held(&self) -> Option<Grant> {
        self.access.as_ref().map(|access| Grant {
            token: Token {
                generation: self.generation,
                value: access.clone(),
            },
            instance_url: None,
        })
    }
}

pub(crate) struct OAuth2 {
    connection: String,
    endpoint: TokenEndpoint,
    /// Whether an `instance_url` in the token endpoint's answer is
    /// considered: only for a plugin that declared the endpoint itself,
    /// and so vouches for the instances with its egress templates. An
    /// identity provider the operator named says nothing about the store.
    learns_instance: bool,
    client_id: Option<SecretString>,
    client_secret: Option<SecretString>,
    state: tokio::sync::Mutex<TokenState>,
    /// One more than the newest generation the store accepted; 0 for none.
    accepted: AtomicU64,
    /// Every credential of this set, for scrubbing answers.
    held: Arc<Held>,
    sink: Arc<dyn SecretSink>,
    max_response_bytes: u64,
}

/// The token endpoint's JSON, success and failure alike.
#[derive(Deserialize)]
struct TokenResponse {
    access_token: Option<String>,
    refresh_token: Option<String>,
    instance_url: Option<String>,
    expires_in: Option<Seconds>,
    error: Option<String>,
    error_description: Option<String>,
}

impl OAuth2 {
    /// Takes the OAuth 2.0 secrets out of `secrets`; `held` must already
    /// hold every one of them.
    pub(crate) fn new(
        connection: &str,
        endpoint: TokenEndpoint,
        learns_instance: bool,
        secrets: &mut std::collections::BTreeMap<String, SecretString>,
        held: Arc<Held>,
        sink: Arc<dyn SecretSink>,
        max_response_bytes: u64,
    ) -> OAuth2 {
        OAuth2 {
            connection: connection.into(),
            endpoint,
            learns_instance,
            client_id: secrets.remove("client_id"),
            client_secret: secrets.remove("client_secret"),
            state: tokio::sync::Mutex::new(TokenState {
                generation: 0,
                access: secrets.remove("access_token"),
                refresh: secrets.remove("refresh_token"),
                failure: None,
                recent: Default::default(),
                obtained: None,
                last_exchange: None,
                renew_at: None,
            }),
            accepted: AtomicU64::new(0),
            held,
            sink,
            max_response_bytes,
        }
    }

    pub(crate) fn token_url(&self) -> &Url {
        &self.endpoint.url
    }

    /// The credentials of this set, for scrubbing.
    pub(crate) fn held(&self) -> &Arc<Held> {
        &self.held
    }

    /// Notes that the store accepted the token of `generation`: it works,
    /// and when it is refused later it has expired, and may be replaced at
    /// once.
    pub(crate) fn accepted(&self, generation: u64) {
        self.accepted.fetch_max(generation + 1, Ordering::Relaxed);
    }

    /// The current access token, exchanging for one if there is none yet.
    pub(crate) async fn current(&self, client: &reqwest::Client) -> Result<Grant, HttpError> {
        let mut state = self.state.lock().await;
        let Some(grant) = state.held() else {
            return self.exchange(&mut state, client).await;
        };
        if state.renew_at.is_none_or(|at| Instant::now() < at) {
            return Ok(grant);
        }
        match self.exchange(&mut state, client).await {
            Ok(fresh) => Ok(fresh),
            // The exchange logged its failure, and remembers it for a
            // while; the token in hand has not expired yet.
            Err(_) => {
                state.access = Some(grant.token.value.clone());
                Ok(grant)
            }
        }
    }

    /// A fresh access token after `stale` was answered with 401.
    pub(crate) async fn refresh(
        &self,
        client: &reqwest::Client,
        stale: u64,
    ) -> Result<Grant, HttpError> {
        let mut state = self.state.lock().await;
        if state.generation != stale
            && let Some(grant) = state.held()
        {
            return Ok(grant);
        }
        let never_accepted = self.accepted.load(Ordering::Relaxed) <= state.generation;
        if let Some(obtained) = state.obtained
            && never_accepted
            && state.failure.is_none()
        {
            let age = obtained.elapsed();
            if age < REFUSED_TOKEN_FLOOR {
                let error = HttpError::Unauthorized(format!(
                    "the store refused the access token obtained {} ms ago without accepting it once; \
                     the host asks for no other until {} s after it was obtained",
                    age.as_millis(),
                    REFUSED_TOKEN_FLOOR.as_secs()
                ));
                tracing::warn!(connection = %self.connection, %error, "refresh held back");
                return Err(error);
            }
        }
        self.exchange(&mut state, client).await
    }

    async fn exchange(
        &self,
        state: &mut TokenState,
        client: &reqwest::Client,
    ) -> Result<Grant, HttpError> {
        if let Some((generation, failure, at)) = &state.failure
            && *generation == state.generation
            && at.elapsed() < FAILURE_MEMORY
        {
            return Err(failure.clone());
        }
        if let Err(count) = state.recent.admit(Instant::now()) {
            let error = HttpError::Unauthorized(format!(
                "the host asked the token endpoint for {count} tokens within the last hour for this credential set, and asks for no more until an hour after the first: a store or connector that needs that many is refusing or provoking refusals"
            ));
            tracing::warn!(connection = %self.connection, %error, "refresh held back");
            return Err(error);
        }
        if let Some(last) = state.last_exchange {
            let since = last.elapsed();
            if since < EXCHANGE_SPACING {
                tokio::time::sleep(EXCHANGE_SPACING - since).await;
            }
        }
        state.last_exchange = Some(Instant::now());
        let result = self.request_token(state, client).await;
        match result {
            Ok((access, rotated, instance_url, expires_in)) => {
                self.held.add(&access);
                if let Some(rotated) = &rotated {
                    self.held.add(rotated);
                }
                state.generation += 1;
                state.access = Some(access.clone());
                state.failure = None;
                state.obtained = Some(Instant::now());
                state.renew_at = expires_in.map(|life| Instant::now() + renewal_delay(life));
                if let Some(rotated) = rotated {
                    if let Err(error) =
                        self.sink
                            .persist(&self.connection, "refresh_token", &rotated)
                    {
                        tracing::warn!(
                            connection = %self.connection,
                            %error,
                            "the token endpoint rotated the refresh token; the new one is kept in memory only"
                        );
                    }
                    state.refresh = Some(rotated);
                }
                tracing::info!(
                    connection = %self.connection,
                    generation = state.generation,
                    "obtained a new access token"
                );
                Ok(Grant {
                    token: Token {
                        generation: state.generation,
                        value: access,
                    },
                    instance_url: instance_url.filter(|_| self.learns_instance),
                })
            }
            Err(error) => {
                // The token endpoint may quote what it was sent.
                let error = error.scrubbed(&self.held.scrubber());
                // The token that failed is useless either way.
                state.access = None;
                state.failure = Some((state.generation, error.clone(), Instant::now()));
                tracing::warn!(connection = %self.connection, %error, "token exchange failed");
                Err(error)
            }
        }
    }

    /// Runs the refresh-token grant, or the client-credentials grant when
    /// there is no refresh token.
    async fn request_token(
        &self,
        state: &TokenState,
        client: &reqwest::Client,
    ) -> Result<Exchanged, HttpError> {
        let client_id = self.client_id.as_ref().map(|s| s.expose_secret());
        let client_secret = self.client_secret.as_ref().map(|s| s.expose_secret());
        let mut form: Vec<(&str, &str)> = Vec::new();
        match (&state.refresh, client_id, client_secret) {
            (Some(refresh), _, _) => {
                form.push(("grant_type", "refresh_token"));
                form.push(("refresh_token", refresh.expose_secret()));
            }
            (None, Some(_), Some(_)) => {
                form.push(("grant_type", "client_credentials"));
                if let Some(scope) = &self.endpoint.scope {
                    form.push(("scope", scope));
                }
            }
            _ => {
                return Err(HttpError::Unauthorized(
                    "no usable access token, and neither a refresh token nor client credentials \
                     are configured to obtain one"
                        .into(),
                ));
            }
        }
        let grant = form[0].1;
        let url = &self.endpoint.url;
        let mut request = client
            .post(url.clone())
            .header(reqwest::header::ACCEPT, "application/json");
        match (self.endpoint.client_auth, client_id, client_secret) {
            (ClientAuth::Basic, Some(id), Some(secret)) => {
                let encode = |s: &str| {
                    url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>()
                };
                request = request.basic_auth(encode(id), Some(encode(secret)));
            }
            (ClientAuth::Basic, Some(id), None) => form.push(("client_id", id)),
            _ => {
                if let Some(id) = client_id {
                    form.push(("client_id", id));
                }
                if let Some(secret) = client_secret {
                    form.push(("client_secret", secret));
                }
            }
        }
        let response = request
            .form(&form)
            .send()
            .await
            .map_err(|e| classify_reqwest(&e, url, None))?;
        let status = response.status();
        let body = super::read_capped(response, url, self.max_response_bytes).await?;
        let parsed: Option<TokenResponse> = serde_json::from_slice(&body).ok();
        let endpoint = format!("the token endpoint {url}");
        match parsed {
            Some(TokenResponse {
                access_token: Some(access),
                refresh_token,
                instance_url,
                expires_in,
                ..
            }) if status.is_success() => Ok((
                SecretString::from(access),
                refresh_token.map(SecretString::from),
                instance_url,
                expires_in.as_ref().and_then(Seconds::get),
            )),
            Some(TokenResponse {
                error: Some(error),
                error_description,
                ..
            }) if status.is_client_error() => Err(HttpError::Unauthorized(format!(
                "{endpoint} refused the {grant} grant: {error}: {}",
                error_description.as_deref().unwrap_or("no description")
            ))),
            _ if status.is_success() => Err(HttpError::Protocol(format!(
                "{endpoint} answered HTTP {status} without an access_token"
            ))),
            _ if status.is_client_error() => Err(HttpError::Unauthorized(format!(
                "{endpoint} refused the {grant} grant with HTTP {status}"
            ))),
            _ => Err(HttpError::Protocol(format!(
                "{endpoint} answered HTTP {status}"
            ))),
        }
    }
}

/// A token exchange's yield: the access token, a rotated refresh token,
/// the `instance_url`, and how long the access token lives.
type Exchanged = (
    SecretString,
    Option<SecretString>,
    Option<String>,
    Option<Duration>,
);

#[cfg(test)]
mod tests {
    use super::*;

    /// A token endpoint on loopback that answers with `answers` in turn,
    /// and records each request's `authorization` header and form.
    async fn endpoint(
        answers: Vec<(u16, serde_json::Value)>,
    ) -> (Url, Arc<std::sync::Mutex<Vec<(String, String)>>>) {
        use axum::http::{HeaderMap, StatusCode};
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let answers = Arc::new(std::sync::Mutex::new(answers.into_iter()));
        let recorded = seen.clone();
        let app = axum::Router::new().route(
            "/token",
            axum::routing::post(move |headers: HeaderMap, body: String| async move {
                let authorization = headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string();
                recorded.lock().unwrap().push((authorization, body));
                let (status, json) = answers.lock().unwrap().next().expect("an answer left");
                (StatusCode::from_u16(status).unwrap(), axum::Json(json))
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = Url::parse(&format!("http://{}/token", listener.local_addr().unwrap())).unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (url, seen)
    }

    fn client_credentials(url: Url, scope: Option<&str>) -> OAuth2 {
        let mut secrets: std::collections::BTreeMap<String, SecretString> = [
            ("client_id", "the client"),
            ("client_secret", "s3cret/with+plus&and=0123456789"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), SecretString::from(v)))
        .collect();
        let endpoint = TokenEndpoint::parse(
            url.as_str(),
            scope.map(String::from),
            ClientAuth::Basic,
            true,
        )
        .unwrap();
        OAuth2::new(
            "idp",
            endpoint,
            false,
            &mut secrets,
            Arc::new(Held::new(Vec::new())),
            Arc::new(super::super::NoSink),
            1 << 20,
        )
    }

    fn value(grant: &Grant) -> &str {
        grant.token.value.expose_secret()
    }

    #[tokio::test]
    async fn client_credentials_go_by_basic_auth_and_the_token_is_renewed_before_it_expires() {
        let (url, seen) = endpoint(vec![
            (
                200,
                serde_json::json!({"access_token": "first-token", "expires_in": 3600,
                                     "instance_url": "https://elsewhere.example.com"}),
            ),
            (
                200,
                serde_json::json!({"access_token": "second-token", "expires_in": "3600"}),
            ),
        ])
        .await;
        let oauth = client_credentials(url, Some("scim.read scim.write"));
        let client = reqwest::Client::new();

        let grant = oauth.current(&client).await.unwrap();
        assert_eq!(value(&grant), "first-token");
        assert_eq!(
            grant.instance_url, None,
            "an identity provider says nothing of the store"
        );
        // Not due yet: the token in hand, no exchange.
        assert_eq!(value(&oauth.current(&client).await.unwrap()), "first-token");
        assert_eq!(seen.lock().unwrap().len(), 1);

        // Due: renewed before the store has to refuse it.
        oauth.state.lock().await.renew_at = Some(Instant::now());
        oauth.state.lock().await.last_exchange = None;
        assert_eq!(
            value(&oauth.current(&client).await.unwrap()),
            "second-token"
        );

        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 2);
        for (authorization, form) in &seen {
            // RFC 6749 2.3.1: id and secret form-encoded, then Basic.
            let expected = base64::Engine::encode(
                &base64::engine::general_purpose::STANDARD,
                "the+client:s3cret%2Fwith%2Bplus%26and%3D0123456789",
            );
            assert_eq!(authorization, &format!("Basic {expected}"));
            assert_eq!(
                form,
                "grant_type=client_credentials&scope=scim.read+scim.write"
            );
        }
    }

    #[tokio::test]
    async fn a_failed_early_renewal_keeps_the_token_in_hand() {
        let (url, seen) = endpoint(vec![
            (
                200,
                serde_json::json!({"access_token": "the-token", "expires_in": 3600}),
            ),
            (503, serde_json::json!({"error": "temporarily_unavailable"})),
        ])
        .await;
        let oauth = client_credentials(url, None);
        let client = reqwest::Client::new();
        assert_eq!(value(&oauth.current(&client).await.unwrap()), "the-token");
        oauth.state.lock().await.renew_at = Some(Instant::now());
        oauth.state.lock().await.last_exchange = None;
        // The provider is down: the token that has not expired still serves,
        assert_eq!(value(&oauth.current(&client).await.unwrap()), "the-token");
        // and the failure is remembered, not asked again by every caller.
        assert_eq!(value(&oauth.current(&client).await.unwrap()), "the-token");
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 2, "{seen:?}");
        assert_eq!(
            seen[1].1, "grant_type=client_credentials",
            "no scope was configured"
        );
    }

    #[test]
    fn a_token_is_renewed_ahead_of_its_expiry_but_not_in_a_rush() {
        let secs = Duration::from_secs;
        assert_eq!(renewal_delay(secs(3600)), secs(3540), "a minute early");
        assert_eq!(renewal_delay(secs(300)), secs(270), "a tenth early");
        assert_eq!(
            renewal_delay(secs(10)),
            RENEWAL_FLOOR,
            "never within the floor"
        );
        assert_eq!(renewal_delay(secs(0)), RENEWAL_FLOOR);
    }

    #[test]
    fn expires_in_reads_as_a_number_or_a_string_of_one() {
        let read = |json: &str| {
            serde_json::from_str::<TokenResponse>(json)
                .unwrap()
                .expires_in
                .and_then(|s| s.get())
        };
        assert_eq!(
            read(r#"{"expires_in": 3599}"#),
            Some(Duration::from_secs(3599))
        );
        assert_eq!(
            read(r#"{"expires_in": "3599"}"#),
            Some(Duration::from_secs(3599))
        );
        assert_eq!(read(r#"{"expires_in": "soon"}"#), None);
        assert_eq!(read(r#"{}"#), None);
    }

    #[test]
    fn an_operator_token_url_is_https_with_nothing_hidden_in_it() {
        let parse = |url: &str, loopback: bool| {
            TokenEndpoint::parse(url, None, ClientAuth::Basic, loopback).map(|e| e.url.to_string())
        };
        assert_eq!(
            parse("https://login.example.com/oauth2/v1/token?x=1", false).as_deref(),
            Ok("https://login.example.com/oauth2/v1/token?x=1")
        );
        assert!(parse("http://127.0.0.1:9/token", true).is_ok());
        for (url, loopback, says) in [
            (
                "http://idp.example.com/token",
                true,
                "must be an https:// URL",
            ),
            ("http://127.0.0.1:9/token", false, "allow_insecure_loopback"),
            (
                "https://id:secret@idp.example.com/token",
                false,
                "user name or password",
            ),
            ("https://idp.example.com/token#frag", false, "fragment"),
            ("ftp://idp.example.com/token", false, "https://"),
            ("idp.example.com/token", false, "not a URL"),
        ] {
            let error = parse(url, loopback).unwrap_err();
            assert!(error.contains(says), "{url}: {error}");
        }
        let error = TokenEndpoint::parse(
            "https://i.example/t",
            Some(" ".into()),
            ClientAuth::Basic,
            false,
        )
        .unwrap_err();
        assert!(error.contains("scope"), "{error}");
    }

    #[test]
    fn an_hour_holds_at_most_the_cap_of_exchanges() {
        let mut cap = HourlyCap::default();
        let start = Instant::now();
        for minute in 0..EXCHANGES_PER_HOUR as u64 {
            assert_eq!(cap.admit(start + Duration::from_secs(30 * minute)), Ok(()));
        }
        let late = start + Duration::from_secs(30 * EXCHANGES_PER_HOUR as u64);
        assert_eq!(cap.admit(late), Err(EXCHANGES_PER_HOUR));
        // An hour after the first, one more is allowed, and only one.
        let hour = start + Duration::from_secs(3600);
        assert_eq!(cap.admit(hour), Ok(()));
        assert_eq!(cap.admit(hour), Err(EXCHANGES_PER_HOUR));
    }
}
