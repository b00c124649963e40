//! Workload 4, side by side: the Salesforce connector's logic compiled
//! natively, behind the plugin's own `Host` trait and linked into this
//! bench-only build of the host, against the same logic as a sandboxed
//! component. Both run the calls an initial sync makes (lookups of 1,000
//! Emails, creates in batches of 200) through the same broker: the same
//! OAuth, egress policy and HTTP client. Only the sandbox differs.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use provisioner::broker::{self, Broker};
use provisioner::runtime::Connector;
use provisioner::runtime::contract as host;
use salesforce_leads_contacts::connector::Salesforce;
use salesforce_leads_contacts::{contract as guest, http, log, types};

/// Emails per lookup call and records per apply call, as the engine sends.
const LOOKUP_CHUNK: usize = 1_000;
const BATCH: usize = 200;

/// The plugin's imports, served by the broker: what the component's
/// imports do, minus the sandbox.
struct BrokerHost {
    broker: Arc<Broker>,
    runtime: tokio::runtime::Handle,
}

impl salesforce_leads_contacts::Host for BrokerHost {
    fn send(&self, request: &http::Request) -> Result<http::Response, http::HttpError> {
        let request = broker::HttpRequest {
            method: match request.method {
                http::Method::Get => broker::Method::Get,
                http::Method::Head => broker::Method::Head,
                http::Method::Post => broker::Method::Post,
                http::Method::Put => broker::Method::Put,
                http::Method::Patch => broker::Method::Patch,
                http::Method::Delete => broker::Method::Delete,
            },
            url: request.url.clone(),
            headers: request.headers.clone(),
            body: request.body.clone(),
            credential: match &request.credential {
                http::Credential::None => broker::Credential::None,
                http::Credential::AuthorizationHeader => broker::Credential::AuthorizationHeader,
                http::Credential::Body(body) => broker::Credential::Body {
                    placeholder: body.placeholder.clone(),
                    expired_marker: body.expired_marker.clone(),
                },
            },
        };
        match self.runtime.block_on(self.broker.send(request)) {
            Ok(response) => Ok(http::Response {
                status: response.status,
                headers: response.headers,
                body: response.body,
            }),
            Err(error) => Err(match error {
                broker::HttpError::Denied(m) => http::HttpError::Denied(m),
                broker::HttpError::Unreachable(m) => http::HttpError::Unreachable(m),
                broker::HttpError::Tls(m) => http::HttpError::Tls(m),
                broker::HttpError::Timeout(m) => http::HttpError::Timeout(m),
                broker::HttpError::TooLarge(cap) => http::HttpError::TooLarge(cap),
                broker::HttpError::Unauthorized(m) => http::HttpError::Unauthorized(m),
                broker::HttpError::InvalidRequest(m) => http::HttpError::InvalidRequest(m),
                broker::HttpError::Protocol(m) => http::HttpError::Protocol(m),
            }),
        }
    }

    fn setting(&self, name: &str) -> Option<String> {
        self.broker.setting(name)
    }

    fn egress_url(&self, index: u32) -> Option<String> {
        self.broker.egress_url(usize::try_from(index).ok()?)
    }

    fn session(&self, name: &str) -> Option<String> {
        self.broker.session(name)
    }

    fn log(&self, _level: log::Level, _message: &str) {}
}

/// (FirstName, LastName, Email, Title) of person `index`, as the default
/// mappings send them.
fn fields(index: usize) -> [(&'static str, String); 4] {
    let id = format!("p{index:06}");
    [
        ("FirstName", "Bench".to_string()),
        ("LastName", id.clone()),
        ("Email", format!("{id}@example.com")),
        ("Title", "t0".to_string()),
    ]
}

/// The initial sync's connector calls through the component.
pub async fn through_component(connector: &Connector, people: usize) -> anyhow::Result<Duration> {
    let emails: Vec<String> = (0..people).map(|i| fields(i)[2].1.clone()).collect();
    let started = Instant::now();
    for chunk in emails.chunks(LOOKUP_CHUNK) {
        let found = connector.lookup("Email", chunk.to_vec()).await?;
        if !found.is_empty() {
            bail!("a fresh org already has {} of these people", found.len());
        }
    }
    for batch in (0..people).collect::<Vec<_>>().chunks(BATCH) {
        let operations = batch
            .iter()
            .map(|&i| host::Operation::Create {
                attributes: fields(i)
                    .into_iter()
                    .map(|(name, value)| host::Attribute {
                        name: name.into(),
                        value: host::Value::Text(value),
                    })
                    .collect(),
            })
            .collect();
        for result in connector.apply(operations).await? {
            result.map_err(|e| anyhow::anyhow!("create refused: {e:?}"))?;
        }
    }
    Ok(started.elapsed())
}

/// The same calls through the native build of the same logic.
pub async fn native(broker: Arc<Broker>, people: usize) -> anyhow::Result<Duration> {
    let runtime = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        let connector = Salesforce::new(BrokerHost { broker, runtime });
        let emails: Vec<String> = (0..people).map(|i| fields(i)[2].1.clone()).collect();
        let started = Instant::now();
        for chunk in emails.chunks(LOOKUP_CHUNK) {
            let found = connector
                .lookup_records("Email".into(), chunk.to_vec())
                .map_err(|e| anyhow::anyhow!("lookup failed: {e:?}"))?;
            if !found.is_empty() {
                bail!("a fresh org already has {} of these people", found.len());
            }
        }
        for batch in (0..people).collect::<Vec<_>>().chunks(BATCH) {
            let operations = batch
                .iter()
                .map(|&i| {
                    guest::Operation::Create(
                        fields(i)
                            .into_iter()
                            .map(|(name, value)| types::Attribute {
                                name: name.into(),
                                value: types::Value::Text(value),
                            })
                            .collect(),
                    )
                })
                .collect();
            for result in connector.apply(operations) {
                result.map_err(|e| anyhow::anyhow!("create refused: {e:?}"))?;
            }
        }
        Ok(started.elapsed())
    })
    .await
    .context("the native run panicked")?
}
