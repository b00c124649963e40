//! A minimal third-party connector for the provisioner host.
//!
//! It provisions people into a small JSON REST store (the reference server is
//! `tests/json-store`) and shows everything a connector author needs:
//! describing settings and egress, letting the host hold the OAuth 2.0
//! secrets, reaching the store only through the brokered `http` import, and
//! classifying every failure so that the host can decide about retries.
//!
//! Build it on its own, without the host's sources:
//!
//! ```text
//! cargo build --release --target wasm32-wasip2 -p json-store-connector
//! cp target/wasm32-wasip2/release/json_store_connector.wasm plugins/
//! ```
//!
//! It sends one request per operation to stay short; a production connector
//! should use its store's batch API (see `plugins/salesforce-leads-contacts`).

wit_bindgen::generate!({
    path: "../../wit/v0.1.0",
    world: "connector",
});

use exports::provisioner::identity_store::identity_store::{
    AuthScheme, Capability, ConnectionReport, Descriptor, Guest, Mapping, MappingSource, Match,
    Oauth2, Operation, Outcome, Page, Setting, SettingKind, StoredRecord,
};
use provisioner::identity_store::http::{self, Credential, HttpError, Method, Request, Response};
use provisioner::identity_store::types::{Attribute, Rejection, StoreError, TransientError, Value};
use provisioner::identity_store::{config, log};
use serde_json::{Map, Value as Json, json};

struct JsonStore;

export!(JsonStore);

/// Index of `https://{host}` in the descriptor's egress list.
const STORE_ORIGIN: u32 = 0;

fn secret(name: &str, description: &str, required: bool) -> Setting {
    Setting {
        name: name.into(),
        description: description.into(),
        kind: SettingKind::Text,
        required,
        secret: true,
        default_value: None,
    }
}

fn mapping(target: &str, source: MappingSource) -> Mapping {
    Mapping {
        target: target.into(),
        source,
        apply_on_update: true,
    }
}

/// The version this build reports. A release pipeline may stamp its own
/// (`JSON_STORE_CONNECTOR_VERSION` at build time); the host's hot-swap tests
/// build two versions of this connector that way.
const VERSION: &str = match option_env!("JSON_STORE_CONNECTOR_VERSION") {
    Some(version) => version,
    None => env!("CARGO_PKG_VERSION"),
};

/// The default mapping of `display_name`, also settable at build time
/// (`JSON_STORE_CONNECTOR_DISPLAY_NAME`): the hot-swap tests build a second
/// version whose default mappings differ, as a plugin upgrade's may.
const DISPLAY_NAME: &str = match option_env!("JSON_STORE_CONNECTOR_DISPLAY_NAME") {
    Some(template) => template,
    None => "{given_name} {family_name}",
};

impl Guest for JsonStore {
    fn describe() -> Descriptor {
        Descriptor {
            name: "json-store".into(),
            version: VERSION.into(),
            description: "People in a JSON REST store (reference connector)".into(),
            settings: vec![
                Setting {
                    name: "host".into(),
                    description: "Host name and optional port of the store, e.g. store.example.com"
                        .into(),
                    kind: SettingKind::Text,
                    required: true,
                    secret: false,
                    default_value: None,
                },
                Setting {
                    name: "page_size".into(),
                    description: "Records per page when listing".into(),
                    kind: SettingKind::Integer,
                    required: false,
                    secret: false,
                    default_value: Some("100".into()),
                },
                secret("client_id", "OAuth 2.0 client id", true),
                secret("client_secret", "OAuth 2.0 client secret", true),
                secret("access_token", "OAuth 2.0 access token", false),
                secret("refresh_token", "OAuth 2.0 refresh token", false),
            ],
            capabilities: vec![
                Capability::Create,
                Capability::Update,
                Capability::Disable,
                Capability::Delete,
                Capability::Lookup,
                Capability::List,
            ],
            egress: vec!["https://{host}".into()],
            auth: AuthScheme::Oauth2(Oauth2 {
                token_url: "https://{host}/oauth/token".into(),
            }),
            match_attribute: "email".into(),
            default_mappings: vec![
                mapping("email", MappingSource::Attribute("email".into())),
                mapping("given_name", MappingSource::Attribute("given_name".into())),
                mapping(
                    "family_name",
                    MappingSource::Attribute("family_name".into()),
                ),
                mapping("display_name", MappingSource::Template(DISPLAY_NAME.into())),
            ],
        }
    }

    fn test_connection() -> Result<ConnectionReport, StoreError> {
        let body = call(Method::Get, "/api/me", None)?;
        let text = |key: &str| {
            body.get(key)
                .and_then(Json::as_str)
                .unwrap_or("?")
                .to_string()
        };
        Ok(ConnectionReport {
            summary: format!("connected to store {} as {}", text("account"), text("user")),
            details: vec![
                ("account".into(), text("account")),
                ("user".into(), text("user")),
            ],
        })
    }

    fn apply(operations: Vec<Operation>) -> Vec<Result<Outcome, StoreError>> {
        operations.into_iter().map(apply_one).collect()
    }

    fn lookup_records(attribute: String, values: Vec<String>) -> Result<Vec<Match>, StoreError> {
        let body = call(
            Method::Post,
            "/api/people/search",
            Some(json!({ "attribute": attribute, "values": values })),
        )?;
        let mut matches = Vec::new();
        for person in people(&body)? {
            let found = person
                .attributes
                .iter()
                .find(|a| a.name == attribute)
                .and_then(|a| match &a.value {
                    Value::Text(text) => Some(text.clone()),
                    _ => None,
                });
            // Report the value as the host asked for it, so that it can pair
            // answers with questions even when the store folds case.
            if let Some(found) = found
                && let Some(asked) = values.iter().find(|v| v.eq_ignore_ascii_case(&found))
            {
                matches.push(Match {
                    value: asked.clone(),
                    id: person.id,
                    attributes: person.attributes,
                });
            }
        }
        Ok(matches)
    }

    fn list_records(cursor: Option<String>) -> Result<Page, StoreError> {
        let page_size = config::get("page_size").unwrap_or_else(|| "100".into());
        let mut path = format!("/api/people?limit={page_size}");
        if let Some(cursor) = cursor {
            path.push_str("&cursor=");
            path.push_str(&cursor);
        }
        let body = call(Method::Get, &path, None)?;
        Ok(Page {
            records: people(&body)?,
            next_cursor: body
                .get("next_cursor")
                .and_then(Json::as_str)
                .map(String::from),
        })
    }
}

fn apply_one(operation: Operation) -> Result<Outcome, StoreError> {
    match operation {
        Operation::Create(attributes) => {
            let body = call(
                Method::Post,
                "/api/people",
                Some(json!({ "attributes": to_json(&attributes) })),
            )?;
            match body.get("id").and_then(Json::as_str) {
                Some(id) => Ok(Outcome { id: id.into() }),
                None => Err(protocol("the store answered a create without an id")),
            }
        }
        Operation::Update(update) => {
            let path = format!("/api/people/{}", update.id);
            call(
                Method::Patch,
                &path,
                Some(json!({ "attributes": to_json(&update.attributes) })),
            )?;
            Ok(Outcome { id: update.id })
        }
        Operation::Disable(id) => {
            call(Method::Post, &format!("/api/people/{id}/disable"), None)?;
            Ok(Outcome { id })
        }
        Operation::Delete(id) => {
            call(Method::Delete, &format!("/api/people/{id}"), None)?;
            Ok(Outcome { id })
        }
        Operation::Convert(_) => Err(StoreError::Unsupported(
            "the JSON store has a single record type".into(),
        )),
    }
}

/// Sends one request to the store and classifies whatever comes back.
fn call(method: Method, path: &str, body: Option<Json>) -> Result<Json, StoreError> {
    let Some(origin) = config::egress_url(STORE_ORIGIN) else {
        return Err(StoreError::Unsupported(
            "the `host` setting is not configured".into(),
        ));
    };
    let mut headers = vec![
        ("accept".to_string(), "application/json".to_string()),
        // Stores log who calls them; naming the version makes a rollout
        // (or a hot swap) visible on the store's side too.
        (
            "user-agent".to_string(),
            format!("json-store-connector/{VERSION}"),
        ),
    ];
    if body.is_some() {
        headers.push(("content-type".into(), "application/json".into()));
    }
    let request = Request {
        method,
        url: format!("{origin}{path}"),
        headers,
        body: body.map(|b| b.to_string().into_bytes()),
        credential: Credential::AuthorizationHeader,
    };
    let response = http::send(&request).map_err(from_http_error)?;
    classify(response)
}

fn classify(response: Response) -> Result<Json, StoreError> {
    let body: Json = if response.body.is_empty() {
        Json::Null
    } else {
        serde_json::from_slice(&response.body).unwrap_or(Json::Null)
    };
    let text = |key: &str| {
        body.get(key)
            .and_then(Json::as_str)
            .unwrap_or("")
            .to_string()
    };
    let message = || {
        let message = text("message");
        if message.is_empty() {
            format!("HTTP {}", response.status)
        } else {
            message
        }
    };
    match response.status {
        200..=299 => Ok(body),
        401 | 403 => Err(StoreError::Unauthorized(message())),
        404 => Err(StoreError::NotFound(message())),
        408 | 429 | 500..=599 => Err(StoreError::Transient(TransientError {
            message: format!("HTTP {}: {}", response.status, message()),
            retry_after_ms: retry_after(&response),
        })),
        status => Err(StoreError::Rejected(Rejection {
            code: if text("code").is_empty() {
                format!("HTTP_{status}")
            } else {
                text("code")
            },
            message: message(),
            fields: body
                .get("fields")
                .and_then(Json::as_array)
                .map(|fields| {
                    fields
                        .iter()
                        .filter_map(Json::as_str)
                        .map(String::from)
                        .collect()
                })
                .unwrap_or_default(),
        })),
    }
}

fn retry_after(response: &Response) -> Option<u64> {
    response
        .headers
        .iter()
        .find(|(name, _)| name == "retry-after")
        .and_then(|(_, value)| value.trim().parse::<u64>().ok())
        .map(|seconds| seconds * 1000)
}

/// Keeps the host's wording: it names the refused URL, the TLS failure or
/// the token endpoint's answer, which is what an operator needs to see.
fn from_http_error(error: HttpError) -> StoreError {
    let transient = |message: String| {
        StoreError::Transient(TransientError {
            message,
            retry_after_ms: None,
        })
    };
    match error {
        HttpError::Unauthorized(message) => StoreError::Unauthorized(message),
        HttpError::Denied(message) => StoreError::Rejected(Rejection {
            code: "EGRESS_DENIED".into(),
            message,
            fields: Vec::new(),
        }),
        HttpError::InvalidRequest(message) => StoreError::Rejected(Rejection {
            code: "INVALID_REQUEST".into(),
            message,
            fields: Vec::new(),
        }),
        HttpError::TooLarge(limit) => StoreError::Rejected(Rejection {
            code: "RESPONSE_TOO_LARGE".into(),
            message: format!("the response exceeded the host's {limit}-byte cap"),
            fields: Vec::new(),
        }),
        HttpError::Unreachable(message) => transient(format!("unreachable: {message}")),
        HttpError::Tls(message) => transient(format!("TLS: {message}")),
        HttpError::Timeout(message) => transient(format!("timeout: {message}")),
        HttpError::Protocol(message) => transient(format!("protocol: {message}")),
    }
}

fn protocol(message: &str) -> StoreError {
    log::log(log::Level::Warn, message);
    StoreError::Transient(TransientError {
        message: message.into(),
        retry_after_ms: None,
    })
}

fn people(body: &Json) -> Result<Vec<StoredRecord>, StoreError> {
    let Some(people) = body.get("people").and_then(Json::as_array) else {
        return Err(protocol("the store answered without a `people` list"));
    };
    Ok(people
        .iter()
        .filter_map(|person| {
            let id = person.get("id")?.as_str()?.to_string();
            let attributes = person
                .get("attributes")
                .and_then(Json::as_object)
                .map(from_json)
                .unwrap_or_default();
            Some(StoredRecord { id, attributes })
        })
        .collect())
}

fn to_json(attributes: &[Attribute]) -> Map<String, Json> {
    attributes
        .iter()
        .map(|attribute| {
            let value = match &attribute.value {
                Value::Null => Json::Null,
                Value::Text(text) => Json::from(text.as_str()),
                Value::Boolean(flag) => Json::from(*flag),
                Value::Integer(number) => Json::from(*number),
            };
            (attribute.name.clone(), value)
        })
        .collect()
}

fn from_json(object: &Map<String, Json>) -> Vec<Attribute> {
    object
        .iter()
        .map(|(name, value)| Attribute {
            name: name.clone(),
            value: match value {
                Json::Null => Value::Null,
                Json::Bool(flag) => Value::Boolean(*flag),
                Json::Number(number) => match number.as_i64() {
                    Some(integer) => Value::Integer(integer),
                    None => Value::Text(number.to_string()),
                },
                Json::String(text) => Value::Text(text.clone()),
                other => Value::Text(other.to_string()),
            },
        })
        .collect()
}
