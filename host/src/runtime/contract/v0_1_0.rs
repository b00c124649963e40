//! Contract 0.1.0: wasmtime bindings for `wit/v0.1.0`, the host side of its
//! imports, and conversions to the version-independent types.
//!
//! A 0.1 connector has what 0.2 added only in its absence: its descriptor
//! declares no attribute types, no `enable`, `groups` or `schema`, and its
//! answers carry no versions. [`Connector::apply`] never sends it a list
//! value or an `enable`, so the conversions below need not say how.
//!
//! [`Connector::apply`]: crate::runtime::Connector::apply

use std::time::Duration;

use wasmtime::component::HasSelf;

use super::{
    Attribute, AuthScheme, Capability, ConnectionReport, Descriptor, Mapping, MappingSource, Match,
    Operation, Outcome, Page, SettingKind, SettingSpec, StoreError, StoredRecord, Value,
    brokered_imports, call, shared_exports,
};
use crate::runtime::sandbox::PluginState;

wasmtime::component::bindgen!({
    path: "../wit/v0.1.0",
    world: "connector",
    imports: {
        "provisioner:identity-store/http.send": async,
    },
    exports: { default: async },
});

use self::provisioner::identity_store::{config, http, log, types};
use exports::provisioner::identity_store::identity_store as wit;

pub(crate) use self::ConnectorPre as BindingsPre;

shared_exports!();

/// Adds this version's imports to the linker.
pub(crate) fn add_to_linker(
    linker: &mut wasmtime::component::Linker<PluginState>,
) -> wasmtime::Result<()> {
    Connector::add_to_linker::<PluginState, HasSelf<PluginState>>(linker, |state| state)
}

impl types::Host for PluginState {}

brokered_imports!();

impl From<types::Value> for Value {
    fn from(value: types::Value) -> Self {
        match value {
            types::Value::Null => Value::Null,
            types::Value::Text(text) => Value::Text(text),
            types::Value::Boolean(flag) => Value::Boolean(flag),
            types::Value::Integer(number) => Value::Integer(number),
        }
    }
}

impl From<Value> for types::Value {
    fn from(value: Value) -> Self {
        match value {
            Value::Null => types::Value::Null,
            Value::Text(text) => types::Value::Text(text),
            Value::Boolean(flag) => types::Value::Boolean(flag),
            Value::Integer(number) => types::Value::Integer(number),
            // Refused before conversion; see the module's doc.
            Value::TextList(items) => types::Value::Text(items.join(", ")),
        }
    }
}

impl From<types::StoreError> for StoreError {
    fn from(error: types::StoreError) -> Self {
        match error {
            types::StoreError::Transient(t) => StoreError::Transient {
                message: t.message,
                retry_after: t.retry_after_ms.map(Duration::from_millis),
            },
            types::StoreError::Rejected(r) => StoreError::Rejected {
                code: r.code,
                message: r.message,
                fields: r.fields,
            },
            types::StoreError::NotFound(m) => StoreError::NotFound(m),
            types::StoreError::Unauthorized(m) => StoreError::Unauthorized(m),
            types::StoreError::Unsupported(m) => StoreError::Unsupported(m),
        }
    }
}

impl From<wit::Descriptor> for Descriptor {
    fn from(d: wit::Descriptor) -> Self {
        Descriptor {
            name: d.name,
            version: d.version,
            description: d.description,
            settings: settings_in(d.settings),
            capabilities: d
                .capabilities
                .into_iter()
                .map(|c| match c {
                    wit::Capability::Create => Capability::Create,
                    wit::Capability::Update => Capability::Update,
                    wit::Capability::Disable => Capability::Disable,
                    wit::Capability::Delete => Capability::Delete,
                    wit::Capability::Lookup => Capability::Lookup,
                    wit::Capability::List => Capability::List,
                    wit::Capability::Convert => Capability::Convert,
                })
                .collect(),
            egress: d.egress,
            auth: auth_in(d.auth),
            match_attribute: d.match_attribute,
            attributes: Vec::new(),
            default_mappings: d
                .default_mappings
                .into_iter()
                .map(|m| Mapping {
                    target: m.target,
                    source: match m.source {
                        wit::MappingSource::Attribute(a) => MappingSource::Attribute(a),
                        wit::MappingSource::Constant(c) => MappingSource::Constant(c),
                        wit::MappingSource::Template(t) => MappingSource::Template(t),
                    },
                    apply_on_update: m.apply_on_update,
                })
                .collect(),
        }
    }
}

impl From<Operation> for wit::Operation {
    fn from(operation: Operation) -> Self {
        match operation {
            Operation::Create { attributes } => wit::Operation::Create(attributes_out(attributes)),
            Operation::Update { id, attributes, .. } | Operation::Enable { id, attributes, .. } => {
                wit::Operation::Update(wit::Update {
                    id,
                    attributes: attributes_out(attributes),
                })
            }
            Operation::Disable { id } => wit::Operation::Disable(id),
            Operation::Delete { id } => wit::Operation::Delete(id),
            Operation::Convert {
                id,
                target_type,
                attributes,
            } => wit::Operation::Convert(wit::Conversion {
                id,
                target_type,
                attributes: attributes_out(attributes),
            }),
        }
    }
}

impl From<wit::Outcome> for Outcome {
    fn from(o: wit::Outcome) -> Self {
        Outcome {
            id: o.id,
            version: None,
        }
    }
}

impl From<wit::Match> for Match {
    fn from(m: wit::Match) -> Self {
        Match {
            value: m.value,
            id: m.id,
            attributes: attributes_in(m.attributes),
            version: None,
        }
    }
}

impl From<wit::Page> for Page {
    fn from(p: wit::Page) -> Self {
        Page {
            records: p
                .records
                .into_iter()
                .map(|r| StoredRecord {
                    id: r.id,
                    attributes: attributes_in(r.attributes),
                    version: None,
                })
                .collect(),
            next_cursor: p.next_cursor,
        }
    }
}
