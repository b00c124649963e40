//! Contract 0.1 for the same connector code (the `contract-0-1` feature),
//! for hosts that speak only 0.1.
//!
//! The connector is written against 0.2's types; this module exports it
//! through 0.1's world and adapts at the boundary. What 0.1 cannot say is
//! left out rather than faked:
//! - the descriptor loses its attribute types, its list mappings and the
//!   capabilities 0.1 lacks (`enable`, `groups`, `schema`). A connector
//!   that declares `enable` loses `disable` too: a 0.1 host brings a person
//!   back by rewriting attributes, which would not reactivate a record
//!   such a connector disabled;
//! - a list read from the store reaches the host as its text when it has
//!   one element, and is left out of the record when it has more;
//! - a `conflict` (a 412 the connector did not ask for: 0.1 sends no
//!   versions) is a rejection, since the host cannot read the record again
//!   before writing;
//! - the cache is empty and refuses to store.

use std::marker::PhantomData;

#[cfg(target_arch = "wasm32")]
use crate::host::{Host, Level};
#[cfg(target_arch = "wasm32")]
use crate::http::Response;
use crate::http::{HttpError, Request};
use crate::{Connector, StoreError};

#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: ["../wit/v0.1.0", "wit-v0.1"],
        world: "provisioner:sdk-compat/connector-v0-1",
        generate_all,
        pub_export_macro: true,
        export_macro_name: "__export_connector_world_v0_1",
        default_bindings_module: "::provisioner_connector::v0_1::bindings",
        additional_derives: [PartialEq],
    });
}

use bindings::exports::provisioner::identity_store::identity_store as old;
use bindings::provisioner::identity_store::{http as old_http, types as old_types};

/// The host through 0.1's imports.
#[cfg(target_arch = "wasm32")]
pub(crate) struct Imports;

#[cfg(target_arch = "wasm32")]
impl Host for Imports {
    fn send(&self, request: &Request) -> Result<Response, HttpError> {
        let answer = old_http::send(&request_out(request));
        answer
            .map(|r| Response {
                status: r.status,
                headers: r.headers,
                body: r.body,
            })
            .map_err(http_error_in)
    }
    fn setting(&self, name: &str) -> Option<String> {
        bindings::provisioner::identity_store::config::get(name)
    }
    fn egress_url(&self, index: u32) -> Option<String> {
        bindings::provisioner::identity_store::config::egress_url(index)
    }
    fn session(&self, name: &str) -> Option<String> {
        bindings::provisioner::identity_store::config::session(name)
    }
    fn log(&self, level: Level, message: &str) {
        use bindings::provisioner::identity_store::log as old_log;
        let level = match level {
            Level::Trace => old_log::Level::Trace,
            Level::Debug => old_log::Level::Debug,
            Level::Info => old_log::Level::Info,
            Level::Warn => old_log::Level::Warn,
            Level::Error => old_log::Level::Error,
        };
        old_log::log(level, message)
    }
    fn connection_name(&self) -> String {
        bindings::provisioner::identity_store::config::connection_name()
    }
    fn cache_set(&self, _key: &str, _value: &str, _ttl_ms: u64) -> Result<(), String> {
        Err("the host speaks contract 0.1, which has no cache".into())
    }
}

#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
fn request_out(request: &Request) -> old_http::Request {
    use crate::http::{Credential, Method};
    old_http::Request {
        method: match request.method {
            Method::Get => old_http::Method::Get,
            Method::Head => old_http::Method::Head,
            Method::Post => old_http::Method::Post,
            Method::Put => old_http::Method::Put,
            Method::Patch => old_http::Method::Patch,
            Method::Delete => old_http::Method::Delete,
        },
        url: request.url.clone(),
        headers: request.headers.clone(),
        body: request.body.clone(),
        credential: match &request.credential {
            Credential::None => old_http::Credential::None,
            Credential::AuthorizationHeader => old_http::Credential::AuthorizationHeader,
            Credential::Body(body) => old_http::Credential::Body(old_http::BodyCredential {
                placeholder: body.placeholder.clone(),
                expired_marker: body.expired_marker.clone(),
            }),
        },
    }
}

#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
fn http_error_in(error: old_http::HttpError) -> HttpError {
    match error {
        old_http::HttpError::Denied(m) => HttpError::Denied(m),
        old_http::HttpError::Unreachable(m) => HttpError::Unreachable(m),
        old_http::HttpError::Tls(m) => HttpError::Tls(m),
        old_http::HttpError::Timeout(m) => HttpError::Timeout(m),
        old_http::HttpError::TooLarge(cap) => HttpError::TooLarge(cap),
        old_http::HttpError::Unauthorized(m) => HttpError::Unauthorized(m),
        old_http::HttpError::InvalidRequest(m) => HttpError::InvalidRequest(m),
        old_http::HttpError::Protocol(m) => HttpError::Protocol(m),
    }
}

fn value_out(value: crate::Value) -> old_types::Value {
    match value {
        crate::Value::Null => old_types::Value::Null,
        crate::Value::Text(text) => old_types::Value::Text(text),
        crate::Value::Boolean(flag) => old_types::Value::Boolean(flag),
        crate::Value::Integer(number) => old_types::Value::Integer(number),
        // Only through `attributes_out`, which leaves several out.
        crate::Value::TextList(items) => old_types::Value::Text(items.concat()),
    }
}

fn value_in(value: old_types::Value) -> crate::Value {
    match value {
        old_types::Value::Null => crate::Value::Null,
        old_types::Value::Text(text) => crate::Value::Text(text),
        old_types::Value::Boolean(flag) => crate::Value::Boolean(flag),
        old_types::Value::Integer(number) => crate::Value::Integer(number),
    }
}

/// Attributes for a 0.1 host: a list of several values has no 0.1 form,
/// and is left out rather than joined into text the host never wrote.
fn attributes_out(attributes: Vec<crate::Attribute>) -> Vec<old_types::Attribute> {
    attributes
        .into_iter()
        .filter_map(|a| {
            let value = match a.value {
                crate::Value::TextList(mut items) if items.len() <= 1 => items
                    .pop()
                    .map_or(old_types::Value::Null, old_types::Value::Text),
                crate::Value::TextList(_) => return None,
                other => value_out(other),
            };
            Some(old_types::Attribute {
                name: a.name,
                value,
            })
        })
        .collect()
}

fn attributes_in(attributes: Vec<old_types::Attribute>) -> Vec<crate::Attribute> {
    let into = |a: old_types::Attribute| crate::Attribute {
        name: a.name,
        value: value_in(a.value),
    };
    attributes.into_iter().map(into).collect()
}

fn error_out(error: StoreError) -> old_types::StoreError {
    match error {
        StoreError::Transient(t) => old_types::StoreError::Transient(old_types::TransientError {
            message: t.message,
            retry_after_ms: t.retry_after_ms,
        }),
        StoreError::Rejected(r) => old_types::StoreError::Rejected(old_types::Rejection {
            code: r.code,
            message: r.message,
            fields: r.fields,
        }),
        StoreError::NotFound(m) => old_types::StoreError::NotFound(m),
        StoreError::Unauthorized(m) => old_types::StoreError::Unauthorized(m),
        StoreError::Unsupported(m) => old_types::StoreError::Unsupported(m),
        // 0.1 sends no versions and has no conflict: retrying would meet
        // the same 412, so it is reported, not retried.
        StoreError::Conflict(m) => old_types::StoreError::Rejected(old_types::Rejection {
            code: "CONFLICT".into(),
            message: m,
            fields: Vec::new(),
        }),
    }
}

fn descriptor_out(d: crate::Descriptor) -> old::Descriptor {
    use crate::{AuthScheme, Capability, MappingSource, SettingKind};
    let enables = d.capabilities.contains(&Capability::Enable);
    old::Descriptor {
        name: d.name,
        version: d.version,
        description: d.description,
        settings: d
            .settings
            .into_iter()
            .map(|s| old::Setting {
                name: s.name,
                description: s.description,
                kind: match s.kind {
                    SettingKind::Text => old::SettingKind::Text,
                    SettingKind::Boolean => old::SettingKind::Boolean,
                    SettingKind::Integer => old::SettingKind::Integer,
                    SettingKind::Choice(choices) => old::SettingKind::Choice(choices),
                },
                required: s.required,
                secret: s.secret,
                default_value: s.default_value,
            })
            .collect(),
        capabilities: d
            .capabilities
            .into_iter()
            .filter_map(|c| match c {
                Capability::Create => Some(old::Capability::Create),
                Capability::Update => Some(old::Capability::Update),
                // See the module's doc: without `enable`, a 0.1 host could
                // not undo a disable.
                Capability::Disable if enables => None,
                Capability::Disable => Some(old::Capability::Disable),
                Capability::Delete => Some(old::Capability::Delete),
                Capability::Lookup => Some(old::Capability::Lookup),
                Capability::List => Some(old::Capability::List),
                Capability::Convert => Some(old::Capability::Convert),
                Capability::Enable | Capability::Groups | Capability::Schema => None,
            })
            .collect(),
        egress: d.egress,
        auth: match d.auth {
            AuthScheme::None => old::AuthScheme::None,
            AuthScheme::Oauth2(o) => old::AuthScheme::Oauth2(old::Oauth2 {
                token_url: o.token_url,
            }),
            AuthScheme::Bearer(secret) => old::AuthScheme::Bearer(secret),
        },
        match_attribute: d.match_attribute,
        default_mappings: d
            .default_mappings
            .into_iter()
            .filter_map(|m| {
                let source = match m.source {
                    MappingSource::Attribute(a) => old::MappingSource::Attribute(a),
                    MappingSource::Constant(c) => old::MappingSource::Constant(c),
                    MappingSource::Template(t) => old::MappingSource::Template(t),
                    // A list has no 0.1 form.
                    MappingSource::Templates(_) => return None,
                };
                Some(old::Mapping {
                    target: m.target,
                    source,
                    apply_on_update: m.apply_on_update,
                })
            })
            .collect(),
    }
}

fn operation_in(operation: old::Operation) -> crate::Operation {
    match operation {
        old::Operation::Create(attributes) => crate::Operation::Create(attributes_in(attributes)),
        old::Operation::Update(u) => crate::Operation::Update(crate::Update {
            id: u.id,
            attributes: attributes_in(u.attributes),
            version: None,
        }),
        old::Operation::Disable(id) => crate::Operation::Disable(id),
        old::Operation::Delete(id) => crate::Operation::Delete(id),
        old::Operation::Convert(c) => crate::Operation::Convert(crate::Conversion {
            id: c.id,
            target_type: c.target_type,
            attributes: attributes_in(c.attributes),
        }),
    }
}

fn outcome_out(
    result: Result<crate::Outcome, StoreError>,
) -> Result<old::Outcome, old_types::StoreError> {
    result.map(|o| old::Outcome { id: o.id }).map_err(error_out)
}

/// The component's 0.1 exports, for any [`Connector`]: what
/// `export_connector!` exports with the `contract-0-1` feature.
#[doc(hidden)]
pub struct Component<C>(PhantomData<C>);

impl<C: Connector> old::Guest for Component<C> {
    fn describe() -> old::Descriptor {
        descriptor_out(C::describe())
    }

    fn test_connection() -> Result<old::ConnectionReport, old_types::StoreError> {
        let report = C::connect().and_then(|c| c.test_connection());
        report
            .map(|r| old::ConnectionReport {
                summary: r.summary,
                details: r.details,
            })
            .map_err(error_out)
    }

    fn apply(operations: Vec<old::Operation>) -> Vec<Result<old::Outcome, old_types::StoreError>> {
        let operations: Vec<crate::Operation> = operations.into_iter().map(operation_in).collect();
        let results = crate::each::<C, _>(operations.len(), |c| c.apply(operations));
        results.into_iter().map(outcome_out).collect()
    }

    fn lookup_records(
        attribute: String,
        values: Vec<String>,
    ) -> Result<Vec<old::Match>, old_types::StoreError> {
        let found = C::connect().and_then(|c| c.lookup(attribute, values));
        found
            .map(|matches| {
                matches
                    .into_iter()
                    .map(|m| old::Match {
                        value: m.value,
                        id: m.id,
                        attributes: attributes_out(m.attributes),
                    })
                    .collect()
            })
            .map_err(error_out)
    }

    fn list_records(cursor: Option<String>) -> Result<old::Page, old_types::StoreError> {
        let page = C::connect().and_then(|c| c.list(cursor));
        page.map(|p| old::Page {
            records: p
                .records
                .into_iter()
                .map(|r| old::StoredRecord {
                    id: r.id,
                    attributes: attributes_out(r.attributes),
                })
                .collect(),
            next_cursor: p.next_cursor,
        })
        .map_err(error_out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Capability, DescriptorBuilder, Source};

    #[test]
    fn what_0_1_cannot_say_is_left_out() {
        let descriptor = DescriptorBuilder::new("p", "1.0.0", "")
            .capabilities([Capability::Create, Capability::Disable, Capability::Enable])
            .match_attribute("email")
            .map("email", Source::attribute("email"))
            .map("tags", Source::templates(["{team}"]))
            .build();
        let old = descriptor_out(descriptor);
        assert_eq!(old.capabilities, vec![old::Capability::Create]);
        assert_eq!(old.default_mappings.len(), 1);

        let text = |t: &str| crate::Value::Text(t.into());
        let attribute = |name: &str, value| crate::Attribute {
            name: name.into(),
            value,
        };
        let out = attributes_out(vec![
            attribute("one", crate::Value::TextList(vec!["a".into()])),
            attribute("two", crate::Value::TextList(vec!["a".into(), "b".into()])),
            attribute("none", crate::Value::TextList(vec![])),
            attribute("plain", text("x")),
        ]);
        let names: Vec<&str> = out.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["one", "none", "plain"]);
        assert_eq!(out[0].value, old_types::Value::Text("a".into()));
        assert_eq!(out[1].value, old_types::Value::Null);
        assert!(matches!(
            error_out(StoreError::Conflict("412".into())),
            old_types::StoreError::Rejected(r) if r.code == "CONFLICT"
        ));
    }
}
