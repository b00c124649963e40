//! A target store held in memory, and connections bound to it: what the
//! engine's own tests run whole passes against, with no component, no
//! broker and no network in the way.
//!
//! The store behaves as a connector promises the contract: a create
//! without the match attribute is rejected, an update of a record that is
//! gone is `not-found`, lookups compare the match attribute without case.
//! A test can queue an error for the next batches, to see what the engine
//! does with a store that fails.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;

use super::{Bound, Connect, ConnectError, Target};
use crate::config::{Preferences, RemoveAction, RemoveActions};
use crate::runtime::CallError;
use crate::runtime::contract::{
    Attribute, AuthScheme, Capability, ConnectionReport, Descriptor, Group, GroupOperation,
    Mapping, MappingSource, Match, Operation, Outcome, Page, StoreError, StoredRecord, Value,
};

/// The attribute records are matched on.
pub const MATCH: &str = "Email";

/// One record: its attributes, whether it is active, and its type.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub attributes: BTreeMap<String, Value>,
    pub active: bool,
    pub kind: String,
}

#[derive(Default)]
struct Inner {
    records: BTreeMap<String, Record>,
    groups: BTreeMap<String, Group>,
    next_id: u64,
    /// Errors the next batches answer with, one batch each.
    failures: VecDeque<StoreError>,
    /// An error the next batch of group operations answers with.
    group_failure: Option<StoreError>,
    calls: Calls,
}

/// The calls the store has answered, by kind.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Calls {
    pub apply: usize,
    pub lookup: usize,
    pub operations: usize,
    pub apply_groups: usize,
    pub lookup_groups: usize,
}

/// The store, shared by every connection bound to it.
pub struct MemoryStore {
    descriptor: Descriptor,
    inner: Mutex<Inner>,
}

impl MemoryStore {
    /// A store that can create, update, enable, disable, delete and
    /// convert, whose default mappings write `Email` and `LastName` from
    /// the directory's `email` and `family_name`.
    pub fn new() -> Arc<MemoryStore> {
        let mut descriptor = Descriptor::for_tests(
            &[
                Capability::Create,
                Capability::Update,
                Capability::Enable,
                Capability::Disable,
                Capability::Delete,
                Capability::Convert,
                Capability::Groups,
            ],
            AuthScheme::None,
        );
        descriptor.name = "memory".into();
        descriptor.match_attribute = MATCH.into();
        descriptor.default_mappings = [("Email", "email"), ("LastName", "family_name")]
            .into_iter()
            .map(|(target, source)| Mapping {
                target: target.into(),
                source: MappingSource::Attribute(source.into()),
                apply_on_update: true,
            })
            .collect();
        Arc::new(MemoryStore {
            descriptor,
            inner: Mutex::new(Inner::default()),
        })
    }

    fn inner(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every record, by id.
    pub fn records(&self) -> BTreeMap<String, Record> {
        self.inner().records.clone()
    }

    /// A record put there behind the engine's back, as if created by hand
    /// in the store.
    pub fn insert(&self, attributes: &[(&str, &str)], kind: &str) -> String {
        let mut inner = self.inner();
        let id = inner.new_id();
        let attributes = attributes
            .iter()
            .map(|(name, value)| (name.to_string(), Value::Text(value.to_string())))
            .collect();
        inner.records.insert(
            id.clone(),
            Record {
                attributes,
                active: true,
                kind: kind.into(),
            },
        );
        id
    }

    /// The next batch applied answers with `error`, every operation of it.
    pub fn fail_next_apply(&self, error: StoreError) {
        self.inner().failures.push_back(error);
    }

    /// The next batch of group operations answers with `error`.
    pub fn fail_group_batch_next(&self, error: StoreError) {
        self.inner().group_failure = Some(error);
    }

    pub fn calls(&self) -> Calls {
        self.inner().calls
    }

    /// Every group, by id.
    pub fn groups(&self) -> BTreeMap<String, Group> {
        self.inner().groups.clone()
    }

    /// A group put there behind the engine's back; its id.
    pub fn insert_group(&self, display_name: &str, members: &[&str]) -> String {
        let mut inner = self.inner();
        let id = inner.new_id();
        let group = Group {
            id: id.clone(),
            display_name: display_name.into(),
            members: members.iter().map(|m| m.to_string()).collect(),
            version: None,
        };
        inner.groups.insert(id.clone(), group);
        id
    }
}

impl Inner {
    fn new_id(&mut self) -> String {
        self.next_id += 1;
        format!("m{:06}", self.next_id)
    }

    fn apply_one(&mut self, operation: Operation) -> Result<Outcome, StoreError> {
        let merge = |record: &mut Record, attributes: Vec<Attribute>| {
            for attribute in attributes {
                record.attributes.insert(attribute.name, attribute.value);
            }
        };
        let id = match operation {
            Operation::Create { attributes } => {
                if !attributes.iter().any(|a| a.name == MATCH) {
                    return Err(StoreError::Rejected {
                        code: "REQUIRED_FIELD_MISSING".into(),
                        message: format!("{MATCH} is required"),
                        fields: vec![MATCH.into()],
                    });
                }
                let id = self.new_id();
                let mut record = Record {
                    attributes: BTreeMap::new(),
                    active: true,
                    kind: "Person".into(),
                };
                merge(&mut record, attributes);
                self.records.insert(id.clone(), record);
                id
            }
            Operation::Update { id, attributes, .. } => {
                merge(self.record(&id)?, attributes);
                id
            }
            Operation::Enable { id, attributes, .. } => {
                let record = self.record(&id)?;
                record.active = true;
                merge(record, attributes);
                id
            }
            Operation::Disable { id } => {
                self.record(&id)?.active = false;
                id
            }
            Operation::Delete { id } => {
                self.records
                    .remove(&id)
                    .ok_or_else(|| StoreError::NotFound(id.clone()))?;
                id
            }
            Operation::Convert {
                id,
                target_type,
                attributes,
            } => {
                let record = self.record(&id)?;
                record.kind = target_type;
                merge(record, attributes);
                id
            }
        };
        Ok(Outcome { id, version: None })
    }

    fn apply_group(&mut self, operation: GroupOperation) -> Result<Outcome, StoreError> {
        let id = match operation {
            GroupOperation::Create {
                display_name,
                members,
            } => {
                let id = self.new_id();
                let group = Group {
                    id: id.clone(),
                    display_name,
                    members,
                    version: None,
                };
                self.groups.insert(id.clone(), group);
                id
            }
            GroupOperation::Rename {
                id, display_name, ..
            } => {
                self.group(&id)?.display_name = display_name;
                id
            }
            GroupOperation::Delete { id } => {
                self.groups
                    .remove(&id)
                    .ok_or_else(|| StoreError::NotFound(id.clone()))?;
                id
            }
            GroupOperation::AddMembers { id, members } => {
                let group = self.group(&id)?;
                for member in members {
                    if !group.members.contains(&member) {
                        group.members.push(member);
                    }
                }
                id
            }
            GroupOperation::RemoveMembers { id, members } => {
                self.group(&id)?.members.retain(|m| !members.contains(m));
                id
            }
        };
        Ok(Outcome { id, version: None })
    }

    fn group(&mut self, id: &str) -> Result<&mut Group, StoreError> {
        self.groups
            .get_mut(id)
            .ok_or_else(|| StoreError::NotFound(id.to_string()))
    }

    fn record(&mut self, id: &str) -> Result<&mut Record, StoreError> {
        self.records
            .get_mut(id)
            .ok_or_else(|| StoreError::NotFound(id.to_string()))
    }
}

fn attributes_of(record: &Record) -> Vec<Attribute> {
    record
        .attributes
        .iter()
        .map(|(name, value)| Attribute {
            name: name.clone(),
            value: value.clone(),
        })
        .collect()
}

#[async_trait]
impl Target for MemoryStore {
    fn plugin(&self) -> &str {
        &self.descriptor.name
    }

    fn descriptor(&self) -> &Descriptor {
        &self.descriptor
    }

    fn store_key(&self) -> String {
        format!("memory:{:p}", self)
    }

    fn api_usage(&self) -> Option<(u64, u64)> {
        None
    }

    async fn test_connection(&self) -> Result<ConnectionReport, CallError> {
        Ok(ConnectionReport {
            summary: "memory store".into(),
            details: Vec::new(),
        })
    }

    async fn apply(
        &self,
        operations: Vec<Operation>,
    ) -> Result<Vec<Result<Outcome, StoreError>>, CallError> {
        let mut inner = self.inner();
        inner.calls.apply += 1;
        inner.calls.operations += operations.len();
        if let Some(error) = inner.failures.pop_front() {
            return Ok(operations.iter().map(|_| Err(error.clone())).collect());
        }
        Ok(operations
            .into_iter()
            .map(|operation| inner.apply_one(operation))
            .collect())
    }

    async fn lookup(&self, attribute: &str, values: Vec<String>) -> Result<Vec<Match>, CallError> {
        let mut inner = self.inner();
        inner.calls.lookup += 1;
        let mut found = Vec::new();
        for value in values {
            for (id, record) in &inner.records {
                let matches = match record.attributes.get(attribute) {
                    Some(Value::Text(text)) => text.eq_ignore_ascii_case(&value),
                    _ => false,
                };
                if matches {
                    found.push(Match {
                        value: value.clone(),
                        id: id.clone(),
                        attributes: attributes_of(record),
                        version: None,
                    });
                }
            }
        }
        Ok(found)
    }

    async fn apply_groups(
        &self,
        operations: Vec<GroupOperation>,
    ) -> Result<Vec<Result<Outcome, StoreError>>, CallError> {
        let mut inner = self.inner();
        inner.calls.apply_groups += 1;
        if let Some(error) = inner.group_failure.take() {
            return Ok(operations.iter().map(|_| Err(error.clone())).collect());
        }
        Ok(operations
            .into_iter()
            .map(|operation| inner.apply_group(operation))
            .collect())
    }

    async fn lookup_groups(&self, display_names: Vec<String>) -> Result<Vec<Group>, CallError> {
        let mut inner = self.inner();
        inner.calls.lookup_groups += 1;
        Ok(inner
            .groups
            .values()
            .filter(|g| {
                display_names
                    .iter()
                    .any(|n| n.eq_ignore_ascii_case(&g.display_name))
            })
            .cloned()
            .collect())
    }

    async fn list(&self, _cursor: Option<String>) -> Result<Page, CallError> {
        let inner = self.inner();
        Ok(Page {
            records: inner
                .records
                .iter()
                .map(|(id, record)| StoredRecord {
                    id: id.clone(),
                    attributes: attributes_of(record),
                    version: None,
                })
                .collect(),
            next_cursor: None,
        })
    }
}

/// Connections bound to one [`MemoryStore`], each with its preferences.
pub struct MemoryConnections {
    pub store: Arc<MemoryStore>,
    pub connections: BTreeMap<String, Preferences>,
}

impl MemoryConnections {
    /// Connections named `names`, with the preferences a connection to a
    /// store that can do everything gets by default, except that people
    /// who leave are disabled.
    pub fn new(store: Arc<MemoryStore>, names: &[&str]) -> MemoryConnections {
        let preferences = Preferences {
            allow_create: true,
            allow_update: true,
            allow_disable: true,
            allow_deprovision: true,
            allow_delete: false,
            remove_action: RemoveActions::all(Some(RemoveAction::Disable)),
            deprovision_on_rule_deletion: false,
        };
        MemoryConnections {
            store,
            connections: names
                .iter()
                .map(|name| (name.to_string(), preferences.clone()))
                .collect(),
        }
    }
}

impl Connect for MemoryConnections {
    fn connect(&self, name: &str) -> Result<Bound, ConnectError> {
        let preferences =
            self.connections.get(name).cloned().ok_or_else(|| {
                ConnectError::Unresolved(vec![format!("no connection named {name}")])
            })?;
        Ok(Bound {
            name: name.to_string(),
            preferences,
            settings: BTreeMap::from([(crate::runtime::RECORD_TYPE.into(), "Person".into())]),
            target: self.store.clone(),
        })
    }

    fn generation(&self) -> u64 {
        0
    }
}
