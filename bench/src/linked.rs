//! The Salesforce connector's logic compiled natively and served by the
//! host's broker, as a [`Target`]: for the side-by-side connector calls,
//! and for a whole sync with the logic linked into the engine.
//! Shared by `provisioner-bench` and `provisioner-linked`.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use provisioner::broker::{self, Broker};
use provisioner::runtime::contract as host;
use provisioner::runtime::{CallError, Connector};
use provisioner::targets::Target;
use salesforce_leads_contacts::connector::Salesforce;
use salesforce_leads_contacts::{contract as guest, http, log, types};

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

    fn report_quota(&self, used: u64, max: u64) {
        self.broker.report_usage(used, max);
    }
}

/// What the engine calls in place of `connector`: for the Salesforce
/// connector, its logic compiled natively; any other as it is.
pub fn native(connector: Connector) -> Arc<dyn Target> {
    if connector.plugin().name() == salesforce_leads_contacts::connector::NAME {
        Arc::new(NativeSalesforce { connector })
    } else {
        Arc::new(connector)
    }
}

/// The connector's logic in place of the component's `apply` and
/// `lookup-records`, run on a blocking thread as the component runs on its
/// own store. Test Connection and listing still go to the component.
pub struct NativeSalesforce {
    connector: Connector,
}

impl NativeSalesforce {
    fn host(&self) -> BrokerHost {
        BrokerHost {
            broker: self.connector.broker().clone(),
            runtime: tokio::runtime::Handle::current(),
        }
    }
}

#[async_trait]
impl Target for NativeSalesforce {
    fn plugin(&self) -> &str {
        Target::plugin(&self.connector)
    }

    fn descriptor(&self) -> &host::Descriptor {
        Target::descriptor(&self.connector)
    }

    fn store_key(&self) -> String {
        self.connector.store_key()
    }

    fn api_usage(&self) -> Option<(u64, u64)> {
        Target::api_usage(&self.connector)
    }

    async fn test_connection(&self) -> Result<host::ConnectionReport, CallError> {
        Target::test_connection(&self.connector).await
    }

    async fn list(&self, cursor: Option<String>) -> Result<host::Page, CallError> {
        Target::list(&self.connector, cursor).await
    }

    async fn apply_groups(
        &self,
        operations: Vec<host::GroupOperation>,
    ) -> Result<Vec<Result<host::Outcome, host::StoreError>>, CallError> {
        Target::apply_groups(&self.connector, operations).await
    }

    async fn lookup_groups(
        &self,
        display_names: Vec<String>,
    ) -> Result<Vec<host::Group>, CallError> {
        Target::lookup_groups(&self.connector, display_names).await
    }

    async fn apply(
        &self,
        operations: Vec<host::Operation>,
    ) -> Result<Vec<Result<host::Outcome, host::StoreError>>, CallError> {
        let host = self.host();
        let operations: Vec<guest::Operation> = operations.into_iter().map(operation).collect();
        let answers = tokio::task::spawn_blocking(move || Salesforce::new(host).apply(operations))
            .await
            .map_err(interrupted)?;
        Ok(answers
            .into_iter()
            .map(|answer| {
                answer
                    .map(|outcome| host::Outcome {
                        id: outcome.id,
                        version: outcome.version,
                    })
                    .map_err(store_error)
            })
            .collect())
    }

    async fn lookup(
        &self,
        attribute: &str,
        values: Vec<String>,
    ) -> Result<Vec<host::Match>, CallError> {
        let host = self.host();
        let attribute = attribute.to_string();
        let found = tokio::task::spawn_blocking(move || {
            Salesforce::new(host).lookup_records(attribute, values)
        })
        .await
        .map_err(interrupted)?;
        match found {
            Ok(found) => Ok(found
                .into_iter()
                .map(|m| host::Match {
                    value: m.value,
                    id: m.id,
                    attributes: m.attributes.into_iter().map(from_guest).collect(),
                    version: m.version,
                })
                .collect()),
            Err(error) => Err(CallError::Store {
                error: store_error(error),
                cause: None,
            }),
        }
    }
}

fn interrupted(error: tokio::task::JoinError) -> CallError {
    CallError::Store {
        error: host::StoreError::Transient {
            message: format!("the linked connector did not finish: {error}"),
            retry_after: None,
        },
        cause: None,
    }
}

fn to_guest(attribute: host::Attribute) -> types::Attribute {
    types::Attribute {
        name: attribute.name,
        value: match attribute.value {
            host::Value::Null => types::Value::Null,
            host::Value::Text(text) => types::Value::Text(text),
            host::Value::Boolean(flag) => types::Value::Boolean(flag),
            host::Value::Integer(number) => types::Value::Integer(number),
            host::Value::TextList(items) => types::Value::TextList(items),
        },
    }
}

fn from_guest(attribute: types::Attribute) -> host::Attribute {
    host::Attribute {
        name: attribute.name,
        value: match attribute.value {
            types::Value::Null => host::Value::Null,
            types::Value::Text(text) => host::Value::Text(text),
            types::Value::Boolean(flag) => host::Value::Boolean(flag),
            types::Value::Integer(number) => host::Value::Integer(number),
            types::Value::TextList(items) => host::Value::TextList(items),
        },
    }
}

fn operation(operation: host::Operation) -> guest::Operation {
    let attributes = |list: Vec<host::Attribute>| list.into_iter().map(to_guest).collect();
    match operation {
        host::Operation::Create { attributes: list } => guest::Operation::Create(attributes(list)),
        host::Operation::Update {
            id,
            attributes: list,
            version,
        } => guest::Operation::Update(guest::Update {
            id,
            attributes: attributes(list),
            version,
        }),
        host::Operation::Enable {
            id,
            attributes: list,
            version,
        } => guest::Operation::Enable(guest::Update {
            id,
            attributes: attributes(list),
            version,
        }),
        host::Operation::Disable { id } => guest::Operation::Disable(id),
        host::Operation::Delete { id } => guest::Operation::Delete(id),
        host::Operation::Convert {
            id,
            target_type,
            attributes: list,
        } => guest::Operation::Convert(guest::Conversion {
            id,
            target_type,
            attributes: attributes(list),
        }),
    }
}

fn store_error(error: types::StoreError) -> host::StoreError {
    match error {
        types::StoreError::Transient(t) => host::StoreError::Transient {
            message: t.message,
            retry_after: t.retry_after_ms.map(Duration::from_millis),
        },
        types::StoreError::Rejected(r) => host::StoreError::Rejected {
            code: r.code,
            message: r.message,
            fields: r.fields,
        },
        types::StoreError::NotFound(m) => host::StoreError::NotFound(m),
        types::StoreError::Unauthorized(m) => host::StoreError::Unauthorized(m),
        types::StoreError::Unsupported(m) => host::StoreError::Unsupported(m),
        types::StoreError::Conflict(m) => host::StoreError::Conflict(m),
    }
}
