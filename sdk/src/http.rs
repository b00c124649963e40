//! Requests to the store, through the host's broker.
//!
//! The broker decides where a request may go and attaches the credential;
//! a connector only says which egress origin and whether to send the
//! credential ([`Credential`]). Answers come back whole and with every
//! credential redacted. [`Client`] adds what each connector used to write
//! by hand: URLs from the egress origin, JSON bodies, `If-Match`, and a
//! default classification of answers ([`classify`]) that a connector can
//! replace per request ([`RequestBuilder::classify_with`]) or skip
//! ([`RequestBuilder::send_raw`]).

use crate::StoreError;
pub use crate::bindings::provisioner::identity_store::http::{
    BodyCredential, Credential, HttpError, Method, Request, Response,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Requests to one egress origin.
#[derive(Debug, Clone)]
pub struct Client {
    origin: String,
    headers: Vec<(String, String)>,
    credential: Credential,
}

impl Client {
    /// A client for the descriptor's egress template at `index`, as the
    /// host filled it from the settings. Sends the connection's credential
    /// with every request; see [`Client::without_credential`].
    pub fn egress(index: u32) -> Result<Client, StoreError> {
        let origin = crate::host::with(|host| host.egress_url(index)).ok_or_else(|| {
            StoreError::rejected(
                "EGRESS_NOT_CONFIGURED",
                format!("egress template {index} has no origin: its settings are not configured"),
            )
        })?;
        Ok(Client::at(origin))
    }

    /// A client for an origin the connector computed (e.g. the
    /// `instance-url` session fact). The broker still checks it.
    pub fn at(origin: impl Into<String>) -> Client {
        Client {
            origin: origin.into().trim_end_matches('/').to_string(),
            headers: vec![("accept".into(), "application/json".into())],
            credential: Credential::AuthorizationHeader,
        }
    }

    /// Sends no credential (a public discovery endpoint).
    pub fn without_credential(mut self) -> Client {
        self.credential = Credential::None;
        self
    }

    /// A header on every request, e.g. `user-agent`.
    pub fn with_header(mut self, name: &str, value: &str) -> Client {
        self.headers.push((name.to_ascii_lowercase(), value.into()));
        self
    }

    /// The origin requests go to, e.g. `https://store.example.com`.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// A request to `path` (with its query, if any) under the origin.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let separator = if path.starts_with('/') || path.is_empty() {
            ""
        } else {
            "/"
        };
        RequestBuilder {
            request: Request {
                method,
                url: format!("{}{separator}{path}", self.origin),
                headers: self.headers.clone(),
                body: None,
                credential: self.credential.clone(),
            },
            classify,
        }
    }

    /// A `GET` of `path` under the origin.
    pub fn get(&self, path: &str) -> RequestBuilder {
        self.request(Method::Get, path)
    }

    /// A `POST` of `path` under the origin.
    pub fn post(&self, path: &str) -> RequestBuilder {
        self.request(Method::Post, path)
    }

    /// A `PUT` of `path` under the origin.
    pub fn put(&self, path: &str) -> RequestBuilder {
        self.request(Method::Put, path)
    }

    /// A `PATCH` of `path` under the origin.
    pub fn patch(&self, path: &str) -> RequestBuilder {
        self.request(Method::Patch, path)
    }

    /// A `DELETE` of `path` under the origin.
    pub fn delete(&self, path: &str) -> RequestBuilder {
        self.request(Method::Delete, path)
    }

    /// `GET path`, read as JSON: the common case of a REST read.
    pub fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T, StoreError> {
        self.get(path).send_json()
    }

    /// `POST path` with a JSON body, read as JSON: the common case of a
    /// search or a batch.
    pub fn post_json<T: DeserializeOwned, B: Serialize + ?Sized>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, StoreError> {
        self.post(path).json(body).send_json()
    }
}

/// One request being built.
#[derive(Debug, Clone)]
pub struct RequestBuilder {
    request: Request,
    classify: fn(&Response) -> Option<StoreError>,
}

impl RequestBuilder {
    /// A header (names go lower case); the broker refuses the ones it sets.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.request
            .headers
            .push((name.to_ascii_lowercase(), value.into()));
        self
    }

    /// Appends `name=value` to the query, percent-encoded.
    pub fn query(mut self, name: &str, value: &str) -> Self {
        let separator = if self.request.url.contains('?') {
            '&'
        } else {
            '?'
        };
        self.request.url.push(separator);
        self.request.url.push_str(&encode(name));
        self.request.url.push('=');
        self.request.url.push_str(&encode(value));
        self
    }

    /// A JSON body, with its content type.
    pub fn json<T: Serialize + ?Sized>(mut self, body: &T) -> Self {
        // Serialising plain data into a Vec cannot fail.
        self.request.body = serde_json::to_vec(body).ok();
        self.header("content-type", "application/json")
    }

    /// Any body, with its content type.
    pub fn body(mut self, content_type: &str, body: Vec<u8>) -> Self {
        self.request.body = Some(body);
        self.header("content-type", content_type)
    }

    /// Write only if the record is at `version` (contract 0.2): an answer
    /// of 412 then classifies as `conflict`. A version that is already an
    /// entity tag (quoted, or weak `W/"…"`) goes as it is; a bare one is
    /// quoted.
    pub fn if_match(self, version: Option<&str>) -> Self {
        match version {
            Some(version) if version.starts_with('"') || version.starts_with("W/") => {
                self.header("if-match", version)
            }
            Some(version) => self.header("if-match", &format!("\"{version}\"")),
            None => self,
        }
    }

    /// Classifies answers with `classify` instead of [`classify`]; it
    /// returns `None` for an answer that is a success.
    pub fn classify_with(mut self, classify: fn(&Response) -> Option<StoreError>) -> Self {
        self.classify = classify;
        self
    }

    /// Sends the request: a failure to get an answer, or an answer that
    /// classifies as an error, is a [`StoreError`].
    pub fn send(self) -> Result<Response, StoreError> {
        let classify = self.classify;
        let response = self.send_raw()?;
        match classify(&response) {
            Some(error) => Err(error),
            None => Ok(response),
        }
    }

    /// Sends the request and reads a JSON answer.
    pub fn send_json<T: DeserializeOwned>(self) -> Result<T, StoreError> {
        self.send()?.json()
    }

    /// Sends the request and returns any answer, 4xx and 5xx included; only
    /// a failure to get one is an error.
    pub fn send_raw(self) -> Result<Response, StoreError> {
        crate::host::with(|host| host.send(&self.request)).map_err(from_http_error)
    }
}

impl Response {
    /// The first header of that name (names are lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON of type `T`; an unreadable body is a protocol
    /// error (transient: proxies and deployments cause them).
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, StoreError> {
        let body: &[u8] = if self.body.is_empty() {
            b"null"
        } else {
            &self.body
        };
        serde_json::from_slice(body).map_err(|e| {
            StoreError::protocol(format!(
                "HTTP {}: the answer is not the JSON expected: {e}",
                self.status
            ))
        })
    }

    /// The record version the answer carries in `ETag`, exactly as sent
    /// (quotes and a weak `W/` kept), so that [`RequestBuilder::if_match`]
    /// sends back what the store will recognise.
    pub fn etag(&self) -> Option<String> {
        self.header("etag").map(|v| v.trim().to_string())
    }

    /// `Retry-After` in milliseconds, when given in seconds.
    pub fn retry_after_ms(&self) -> Option<u64> {
        self.header("retry-after")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(|seconds| seconds.saturating_mul(1000))
    }
}

/// The default reading of an answer:
/// - 2xx and 3xx: success (`None`);
/// - 401: `unauthorized` (the host already refreshed once);
/// - 404: `not-found`;
/// - 412: `conflict` (the `If-Match` version is stale);
/// - 408, 429 and 5xx: `transient`, with `Retry-After`;
/// - any other 4xx: `rejected`, with the code, message and fields found in
///   a JSON body (`code`/`error`/`scimType`, `message`/`detail`/
///   `error_description`, `fields`), or `HTTP_<status>`.
pub fn classify(response: &Response) -> Option<StoreError> {
    if response.status < 400 {
        return None;
    }
    let body: serde_json::Value = serde_json::from_slice(&response.body).unwrap_or_default();
    classify_status(response.status, &body, response.retry_after_ms())
}

/// [`classify`] for a status and JSON body that arrived some other way:
/// one result of a batch endpoint, which carries its own status.
pub fn classify_status(
    status: u16,
    body: &serde_json::Value,
    retry_after_ms: Option<u64>,
) -> Option<StoreError> {
    if status < 400 {
        return None;
    }
    let text = |keys: &[&str]| {
        keys.iter()
            .find_map(|k| {
                body.get(*k)
                    .and_then(|v| v.as_str())
                    .filter(|v| !v.is_empty())
            })
            .map(String::from)
    };
    let message = text(&["message", "detail", "error_description"])
        .unwrap_or_else(|| format!("HTTP {status}"));
    Some(match status {
        401 => StoreError::Unauthorized(message),
        404 => StoreError::NotFound(message),
        412 => StoreError::Conflict(message),
        408 | 429 | 500..=599 => {
            StoreError::transient(format!("HTTP {status}: {message}"), retry_after_ms)
        }
        _ => StoreError::Rejected(crate::Rejection {
            code: text(&["code", "scimType", "error"]).unwrap_or_else(|| format!("HTTP_{status}")),
            message,
            fields: body
                .get("fields")
                .and_then(|f| f.as_array())
                .map(|f| {
                    f.iter()
                        .filter_map(|v| v.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default(),
        }),
    })
}

/// Keeps the host's wording: it names the refused URL, the TLS failure or
/// the token endpoint's answer, which is what an operator needs to see.
pub fn from_http_error(error: HttpError) -> StoreError {
    match error {
        HttpError::Unauthorized(message) => StoreError::Unauthorized(message),
        HttpError::Denied(message) => StoreError::rejected("EGRESS_DENIED", message),
        HttpError::InvalidRequest(message) => StoreError::rejected("INVALID_REQUEST", message),
        HttpError::TooLarge(limit) => StoreError::rejected(
            "RESPONSE_TOO_LARGE",
            format!("the response exceeded the host's {limit}-byte cap"),
        ),
        HttpError::Unreachable(message) => {
            StoreError::transient(format!("unreachable: {message}"), None)
        }
        HttpError::Tls(message) => StoreError::transient(format!("TLS: {message}"), None),
        HttpError::Timeout(message) => StoreError::transient(format!("timeout: {message}"), None),
        HttpError::Protocol(message) => StoreError::transient(format!("protocol: {message}"), None),
    }
}

/// Percent-encodes a query component (RFC 3986 unreserved kept).
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(byte as char)
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, body: &str, headers: &[(&str, &str)]) -> Response {
        Response {
            status,
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn answers_classify_by_status_with_the_store_s_words() {
        assert_eq!(classify(&answer(204, "", &[])), None);
        assert!(matches!(
            classify(&answer(401, "{}", &[])),
            Some(StoreError::Unauthorized(_))
        ));
        assert!(
            matches!(classify(&answer(404, r#"{"detail":"gone"}"#, &[])), Some(StoreError::NotFound(m)) if m == "gone")
        );
        assert!(matches!(
            classify(&answer(412, "", &[])),
            Some(StoreError::Conflict(_))
        ));
        // A 403 refuses one request, not the connection's credential.
        assert!(matches!(
            classify(&answer(403, "{}", &[])),
            Some(StoreError::Rejected(_))
        ));
        match classify(&answer(429, "", &[("retry-after", "3")])) {
            Some(StoreError::Transient(t)) => assert_eq!(t.retry_after_ms, Some(3000)),
            other => panic!("{other:?}"),
        }
        match classify(&answer(
            400,
            r#"{"scimType":"uniqueness","detail":"taken"}"#,
            &[],
        )) {
            Some(StoreError::Rejected(r)) => {
                assert_eq!(
                    (r.code.as_str(), r.message.as_str()),
                    ("uniqueness", "taken")
                )
            }
            other => panic!("{other:?}"),
        }
        match classify(&answer(422, "not json", &[])) {
            Some(StoreError::Rejected(r)) => assert_eq!(r.code, "HTTP_422"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn queries_are_encoded_and_versions_quoted() {
        let client = Client::at("https://store.test/");
        let request = client
            .get("/Users")
            .query("filter", "userName eq \"a&b\"")
            .if_match(Some("v3"))
            .request;
        assert_eq!(
            request.url,
            "https://store.test/Users?filter=userName%20eq%20%22a%26b%22"
        );
        assert!(
            request
                .headers
                .contains(&("if-match".into(), "\"v3\"".into()))
        );
        // A weak tag from an ETag header goes back exactly as it came.
        let tagged = answer(200, "", &[("etag", "W/\"7\"")]).etag();
        let weak = client.get("/Users/1").if_match(tagged.as_deref()).request;
        assert!(
            weak.headers
                .contains(&("if-match".into(), "W/\"7\"".into()))
        );
    }
}
