//! Contract 0.2.0: wasmtime bindings for `wit/v0.2.0`, the host side of its
//! imports (the shared ones and `cache`), and conversions to the
//! version-independent types, which are this version's.

use std::time::Duration;

use wasmtime::component::HasSelf;

use super::{
    Attribute, AttributeSpec, AttributeType, AuthScheme, Capability, ConnectionReport, Descriptor,
    Group, GroupOperation, GroupPage, Mapping, MappingSource, Match, Operation, Outcome, Page,
    SettingKind, SettingSpec, StoreError, StoredRecord, Value, brokered_imports, call,
    shared_exports,
};
use crate::runtime::sandbox::PluginState;

wasmtime::component::bindgen!({
    path: "../wit/v0.2.0",
    world: "connector",
    imports: {
        "provisioner:identity-store/http.send": async,
    },
    exports: { default: async },
});

use self::provisioner::identity_store::{cache, config, http, log, quota, types};
use exports::provisioner::identity_store::identity_store as wit;

pub(crate) use self::ConnectorPre as BindingsPre;

shared_exports!();

/// The exports 0.2 added.
impl BindingsPre<PluginState> {
    pub(crate) async fn apply_groups(
        &self,
        store: &mut wasmtime::Store<PluginState>,
        operations: Vec<GroupOperation>,
    ) -> wasmtime::Result<Vec<Result<Outcome, StoreError>>> {
        let operations: Vec<wit::GroupOperation> = operations.into_iter().map(Into::into).collect();
        Ok(super::answers(call!(
            self,
            store,
            call_apply_groups(&operations)
        )))
    }

    pub(crate) async fn lookup_groups(
        &self,
        store: &mut wasmtime::Store<PluginState>,
        display_names: &[String],
    ) -> wasmtime::Result<Result<Vec<Group>, StoreError>> {
        let answer = call!(self, store, call_lookup_groups(display_names));
        Ok(answer
            .map(|groups| groups.into_iter().map(Into::into).collect())
            .map_err(Into::into))
    }

    pub(crate) async fn list_groups(
        &self,
        store: &mut wasmtime::Store<PluginState>,
        cursor: Option<&str>,
    ) -> wasmtime::Result<Result<GroupPage, StoreError>> {
        let answer = call!(self, store, call_list_groups(cursor));
        Ok(answer
            .map(|page| GroupPage {
                groups: page.groups.into_iter().map(Into::into).collect(),
                next_cursor: page.next_cursor,
            })
            .map_err(Into::into))
    }

    pub(crate) async fn discover_schema(
        &self,
        store: &mut wasmtime::Store<PluginState>,
    ) -> wasmtime::Result<Result<Vec<AttributeSpec>, StoreError>> {
        let answer = call!(self, store, call_discover_schema());
        Ok(answer
            .map(|specs| specs.into_iter().map(Into::into).collect())
            .map_err(Into::into))
    }
}

impl From<wit::Outcome> for Outcome {
    fn from(o: wit::Outcome) -> Self {
        Outcome {
            id: o.id,
            version: o.version,
        }
    }
}

/// Adds this version's imports to the linker.
pub(crate) fn add_to_linker(
    linker: &mut wasmtime::component::Linker<PluginState>,
) -> wasmtime::Result<()> {
    Connector::add_to_linker::<PluginState, HasSelf<PluginState>>(linker, |state| state)
}

impl types::Host for PluginState {}

brokered_imports!();

impl cache::Host for PluginState {
    fn get(&mut self, key: String) -> Option<String> {
        self.broker().and_then(|b| b.cache().get(&key))
    }

    fn set(&mut self, key: String, value: String, ttl_ms: u64) -> Result<(), String> {
        match self.broker() {
            Some(broker) => broker
                .cache()
                .set(key, value, Duration::from_millis(ttl_ms))
                .map_err(|e| e.to_string()),
            None => Err("no connection is bound to this call; describe has no cache".into()),
        }
    }

    fn remove(&mut self, key: String) {
        if let Some(broker) = self.broker() {
            broker.cache().remove(&key);
        }
    }
}

impl quota::Host for PluginState {
    fn report(&mut self, used: u64, max: u64) {
        if let Some(broker) = self.broker() {
            broker.report_usage(used, max);
        }
    }
}

impl From<types::Value> for Value {
    fn from(value: types::Value) -> Self {
        match value {
            types::Value::Null => Value::Null,
            types::Value::Text(text) => Value::Text(text),
            types::Value::Boolean(flag) => Value::Boolean(flag),
            types::Value::Integer(number) => Value::Integer(number),
            types::Value::TextList(items) => Value::TextList(items),
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
            Value::TextList(items) => types::Value::TextList(items),
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
            types::StoreError::Conflict(m) => StoreError::Conflict(m),
        }
    }
}

impl From<wit::AttributeSpec> for AttributeSpec {
    fn from(spec: wit::AttributeSpec) -> Self {
        AttributeSpec {
            name: spec.name,
            kind: match spec.type_ {
                wit::AttributeType::Text => AttributeType::Text,
                wit::AttributeType::Boolean => AttributeType::Boolean,
                wit::AttributeType::Integer => AttributeType::Integer,
                wit::AttributeType::TextList => AttributeType::TextList,
            },
            case_exact: spec.case_exact,
            description: spec.description,
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
                    wit::Capability::Enable => Capability::Enable,
                    wit::Capability::Delete => Capability::Delete,
                    wit::Capability::Lookup => Capability::Lookup,
                    wit::Capability::List => Capability::List,
                    wit::Capability::Convert => Capability::Convert,
                    wit::Capability::Groups => Capability::Groups,
                    wit::Capability::Schema => Capability::Schema,
                })
                .collect(),
            egress: d.egress,
            auth: auth_in(d.auth),
            match_attribute: d.match_attribute,
            default_mappings: d
                .default_mappings
                .into_iter()
                .map(|m| Mapping {
                    target: m.target,
                    source: match m.source {
                        wit::MappingSource::Attribute(a) => MappingSource::Attribute(a),
                        wit::MappingSource::Constant(c) => MappingSource::Constant(c),
                        wit::MappingSource::Template(t) => MappingSource::Template(t),
                        wit::MappingSource::Templates(t) => MappingSource::Templates(t),
                    },
                    apply_on_update: m.apply_on_update,
                })
                .collect(),
            attributes: d.attributes.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<Operation> for wit::Operation {
    fn from(operation: Operation) -> Self {
        match operation {
            Operation::Create { attributes } => wit::Operation::Create(attributes_out(attributes)),
            Operation::Update {
                id,
                attributes,
                version,
            } => wit::Operation::Update(wit::Update {
                id,
                attributes: attributes_out(attributes),
                version,
            }),
            Operation::Enable {
                id,
                attributes,
                version,
            } => wit::Operation::Enable(wit::Update {
                id,
                attributes: attributes_out(attributes),
                version,
            }),
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

impl From<GroupOperation> for wit::GroupOperation {
    fn from(operation: GroupOperation) -> Self {
        match operation {
            GroupOperation::Create {
                display_name,
                members,
            } => wit::GroupOperation::Create(wit::NewGroup {
                display_name,
                members,
            }),
            GroupOperation::Rename {
                id,
                display_name,
                version,
            } => wit::GroupOperation::Rename(wit::GroupRename {
                id,
                display_name,
                version,
            }),
            GroupOperation::Delete { id } => wit::GroupOperation::Delete(id),
            GroupOperation::AddMembers { id, members } => {
                wit::GroupOperation::AddMembers(wit::GroupMembers { id, members })
            }
            GroupOperation::RemoveMembers { id, members } => {
                wit::GroupOperation::RemoveMembers(wit::GroupMembers { id, members })
            }
        }
    }
}

impl From<wit::Group> for Group {
    fn from(g: wit::Group) -> Self {
        Group {
            id: g.id,
            display_name: g.display_name,
            members: g.members,
            version: g.version,
        }
    }
}

impl From<wit::Match> for Match {
    fn from(m: wit::Match) -> Self {
        Match {
            value: m.value,
            id: m.id,
            attributes: attributes_in(m.attributes),
            version: m.version,
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
                    version: r.version,
                })
                .collect(),
            next_cursor: p.next_cursor,
        }
    }
}
