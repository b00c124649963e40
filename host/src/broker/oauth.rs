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
    token_url: Url,
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
    error: Option<String>,
    error_description: Option<String>,
}

impl OAuth2 {
    /// Takes the OAuth 2.0 secrets out of `secrets`; `held` must already
    /// hold every one of them.
    pub(crate) fn new(
        connection: &str,
        token_url: Url,
        secrets: &mut std::collections::BTreeMap<String, SecretString>,
        held: Arc<Held>,
        sink: Arc<dyn SecretSink>,
        max_response_bytes: u64,
    ) -> OAuth2 {
        OAuth2 {
            connection: connection.into(),
            token_url,
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
            }),
            accepted: AtomicU64::new(0),
            held,
            sink,
            max_response_bytes,
        }
    }

    pub(crate) fn token_url(&self) -> &Url {
        &self.token_url
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
        if let Some(grant) = state.held() {
            return Ok(grant);
        }
        self.exchange(&mut state, client).await
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
            Ok((access, rotated, instance_url)) => {
                self.held.add(&access);
                if let Some(rotated) = &rotated {
                    self.held.add(rotated);
                }
                state.generation += 1;
                state.access = Some(access.clone());
                state.failure = None;
                state.obtained = Some(Instant::now());
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
                    instance_url,
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
    ) -> Result<(SecretString, Option<SecretString>, Option<String>), HttpError> {
        let client_id = self.client_id.as_ref().map(|s| s.expose_secret());
        let client_secret = self.client_secret.as_ref().map(|s| s.expose_secret());
        let mut form: Vec<(&str, &str)> = Vec::new();
        match (&state.refresh, client_id, client_secret) {
            (Some(refresh), _, _) => {
                form.push(("grant_type", "refresh_token"));
                form.push(("refresh_token", refresh.expose_secret()));
            }
            (None, Some(_), Some(_)) => form.push(("grant_type", "client_credentials")),
            _ => {
                return Err(HttpError::Unauthorized(
                    "no usable access token, and neither a refresh token nor client credentials \
                     are configured to obtain one"
                        .into(),
                ));
            }
        }
        if let Some(id) = client_id {
            form.push(("client_id", id));
        }
        if let Some(secret) = client_secret {
            form.push(("client_secret", secret));
        }
        let grant = form[0].1;
        let response = client
            .post(self.token_url.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .form(&form)
            .send()
            .await
            .map_err(|e| classify_reqwest(&e, &self.token_url, None))?;
        let status = response.status();
        let body = super::read_capped(response, &self.token_url, self.max_response_bytes).await?;
        let parsed: Option<TokenResponse> = serde_json::from_slice(&body).ok();
        let endpoint = format!("the token endpoint {}", self.token_url);
        match parsed {
            Some(TokenResponse {
                access_token: Some(access),
                refresh_token,
                instance_url,
                ..
            }) if status.is_success() => Ok((
                SecretString::from(access),
                refresh_token.map(SecretString::from),
                instance_url,
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

#[cfg(test)]
mod tests {
    use super::*;

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
