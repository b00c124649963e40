//! Write a connector for the provisioner host without touching its WIT.
//!
//! A connector is a type that implements [`Connector`]; one macro,
//! [`export_connector!`], turns it into a component of contract 0.2 (see
//! `wit/v0.2.0/identity-store.wit`, which stays the manual of what each
//! call means). What every connector used to write by hand comes with the
//! crate:
//!
//! - [`DescriptorBuilder`]: settings, capabilities, egress, auth and
//!   mappings, checked for the mistakes the host would refuse
//!   ([`DescriptorBuilder::check`]);
//! - [`http`]: requests through the host's broker, JSON in and out, and a
//!   default classification of answers into [`StoreError`]s;
//! - [`settings`], [`cache`] and [`log`]: the other doors the host opens;
//! - [`json`]: attributes to and from a store's JSON, with the contract's
//!   attribute paths (`name.givenName`, `emails[type eq "work"].value`);
//! - [`testing`] (native builds only): the same code run as a plain Rust
//!   test against a store on loopback, through a stand-in broker with the
//!   host's rules.
//!
//! ```no_run
//! use provisioner_connector::{
//!     Capability, ConnectionReport, Connector, Descriptor, DescriptorBuilder, Outcome, Source,
//!     StoreError, http::Client,
//! };
//!
//! struct Hello {
//!     store: Client,
//! }
//!
//! impl Connector for Hello {
//!     fn describe() -> Descriptor {
//!         DescriptorBuilder::new("hello", "0.1.0", "People in the hello store")
//!             .text_setting("host", "Host name of the store", true)
//!             .egress("https://{host}")
//!             .bearer("api_token")
//!             .capabilities([Capability::Create, Capability::Lookup])
//!             .match_attribute("email")
//!             .map("email", Source::attribute("email"))
//!             .build()
//!     }
//!
//!     fn connect() -> Result<Self, StoreError> {
//!         Ok(Hello { store: Client::egress(0)? })
//!     }
//!
//!     fn test_connection(&self) -> Result<ConnectionReport, StoreError> {
//!         self.store.get("/me").send()?;
//!         Ok(ConnectionReport { summary: "connected".into(), details: vec![] })
//!     }
//! }
//!
//! provisioner_connector::export_connector!(Hello);
//! ```

#![warn(missing_docs)]

#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit/v0.2.0",
        world: "connector",
        pub_export_macro: true,
        export_macro_name: "__export_connector_world",
        default_bindings_module: "::provisioner_connector::bindings",
        additional_derives: [PartialEq],
    });
}

pub mod cache;
mod descriptor;
mod errors;
pub mod host;
pub mod http;
pub mod json;
pub mod log;
pub mod quota;
pub mod settings;
#[cfg(not(target_arch = "wasm32"))]
pub mod testing;
#[cfg(feature = "contract-0-1")]
pub mod v0_1;

use std::marker::PhantomData;

pub use bindings::exports::provisioner::identity_store::identity_store::{
    AttributeSpec, AttributeType, AuthScheme, Capability, ConnectionReport, Conversion, Descriptor,
    Group, GroupMembers, GroupOperation, GroupPage, GroupRename, Mapping, MappingSource, Match,
    NewGroup, Oauth2, Operation, Outcome, Page, Setting, SettingKind, StoredRecord, Update,
};
pub use bindings::provisioner::identity_store::types::{
    Attribute, Rejection, StoreError, TransientError, Value,
};
pub use descriptor::{DescriptorBuilder, DescriptorError, Source, check as check_descriptor};

/// The contract version this crate implements.
pub const CONTRACT: &str = "0.2.0";

/// A value stamped at build time, or `default`: for a version or a
/// default that a release pipeline may set through the environment.
///
/// ```
/// const VERSION: &str =
///     provisioner_connector::stamped(option_env!("MY_CONNECTOR_VERSION"), env!("CARGO_PKG_VERSION"));
/// # assert!(!VERSION.is_empty());
/// ```
pub const fn stamped(value: Option<&'static str>, default: &'static str) -> &'static str {
    match value {
        Some(value) => value,
        None => default,
    }
}

/// One identity store, as the host calls it.
///
/// The host runs every call in a fresh instance: [`Connector::connect`]
/// builds the connector from the connection's settings at the start of
/// each call, and whatever must outlive the call goes in [`cache`].
///
/// Only [`describe`](Connector::describe), [`connect`](Connector::connect)
/// and [`test_connection`](Connector::test_connection) are required. Every
/// operation a connector does not implement answers `unsupported`, which
/// the host never asks for unless the descriptor declares its capability.
/// [`apply`](Connector::apply) sends each operation to its own method; a
/// store with a batch API overrides it instead, since the host sends a few
/// hundred operations at once, and then the per-operation methods are
/// never called (the host calls only the contract's functions).
pub trait Connector: Sized {
    /// What the connector is and needs; pure, with no connection and no
    /// network. Build it with [`DescriptorBuilder`].
    fn describe() -> Descriptor;

    /// The connector for one call, from the connection's settings.
    fn connect() -> Result<Self, StoreError>;

    /// One cheap authenticated call that says who the store thinks we are.
    fn test_connection(&self) -> Result<ConnectionReport, StoreError>;

    /// One result per operation, in order; one failure must not fail the
    /// others.
    fn apply(&self, operations: Vec<Operation>) -> Vec<Result<Outcome, StoreError>> {
        operations
            .into_iter()
            .map(|operation| match operation {
                Operation::Create(attributes) => self.create(attributes),
                Operation::Update(update) => self.update(update),
                Operation::Disable(id) => self.disable(id),
                Operation::Enable(update) => self.enable(update),
                Operation::Delete(id) => self.delete(id),
                Operation::Convert(conversion) => self.convert(conversion),
            })
            .collect()
    }

    /// Creates a record; its id (and version) in the outcome.
    fn create(&self, _attributes: Vec<Attribute>) -> Result<Outcome, StoreError> {
        Err(errors::unsupported("create"))
    }

    /// Writes the given attributes, at `update.version` when there is one.
    fn update(&self, _update: Update) -> Result<Outcome, StoreError> {
        Err(errors::unsupported("update"))
    }

    /// Deactivates a record (the `disable` capability).
    fn disable(&self, _id: String) -> Result<Outcome, StoreError> {
        Err(errors::unsupported("disable"))
    }

    /// Reactivates a record and writes what changed (the `enable` capability).
    fn enable(&self, _update: Update) -> Result<Outcome, StoreError> {
        Err(errors::unsupported("enable"))
    }

    /// Deletes a record.
    fn delete(&self, _id: String) -> Result<Outcome, StoreError> {
        Err(errors::unsupported("delete"))
    }

    /// Turns a record into another type in place (the `convert` capability).
    fn convert(&self, _conversion: Conversion) -> Result<Outcome, StoreError> {
        Err(errors::unsupported("convert"))
    }

    /// Records whose `attribute` equals one of `values`, compared as the
    /// store compares them; report each match with the value as asked.
    fn lookup(&self, _attribute: String, _values: Vec<String>) -> Result<Vec<Match>, StoreError> {
        Err(errors::unsupported("lookup"))
    }

    /// One page of every record the connection manages.
    fn list(&self, _cursor: Option<String>) -> Result<Page, StoreError> {
        Err(errors::unsupported("list"))
    }

    /// One result per group operation, in order (the `groups` capability).
    fn apply_groups(&self, operations: Vec<GroupOperation>) -> Vec<Result<Outcome, StoreError>> {
        operations
            .iter()
            .map(|_| Err(errors::unsupported("groups")))
            .collect()
    }

    /// Groups by display name, compared as the store compares them.
    fn lookup_groups(&self, _display_names: Vec<String>) -> Result<Vec<Group>, StoreError> {
        Err(errors::unsupported("groups"))
    }

    /// One page of every group the connection manages.
    fn list_groups(&self, _cursor: Option<String>) -> Result<GroupPage, StoreError> {
        Err(errors::unsupported("groups"))
    }

    /// The store's attributes with their types (the `schema` capability).
    fn discover_schema(&self) -> Result<Vec<AttributeSpec>, StoreError> {
        Err(errors::unsupported("schema"))
    }
}

/// Runs a batch through a store's batch endpoint: `encode` turns each
/// operation into the store's form or refuses it (an operation the store
/// has no form for), `send` makes one request for at most `max` accepted
/// ones and returns one result each, and the answers come back in the
/// operations' order among the refusals. The host's batches may be larger
/// than a store takes (`[sync] batch_size`), hence `max`. A failed request
/// fails each operation it carried with its error; an answer with the
/// wrong number of results fails them as a protocol error, since pairing
/// them up would be a guess.
pub fn apply_batch<T, O>(
    operations: Vec<T>,
    max: usize,
    mut encode: impl FnMut(T) -> Result<O, StoreError>,
    mut send: impl FnMut(Vec<O>) -> Result<Vec<Result<Outcome, StoreError>>, StoreError>,
) -> Vec<Result<Outcome, StoreError>> {
    let mut slots: Vec<Option<Result<Outcome, StoreError>>> = Vec::new();
    let mut accepted = Vec::new();
    for operation in operations {
        match encode(operation) {
            Ok(encoded) => {
                slots.push(None);
                accepted.push(encoded);
            }
            Err(refusal) => slots.push(Some(Err(refusal))),
        }
    }
    let mut answers = Vec::with_capacity(accepted.len());
    let mut accepted = accepted.into_iter().peekable();
    while accepted.peek().is_some() {
        let chunk: Vec<O> = accepted.by_ref().take(max.max(1)).collect();
        let count = chunk.len();
        answers.extend(match send(chunk) {
            Ok(results) if results.len() == count => results,
            Ok(results) => {
                let error = StoreError::protocol(format!(
                    "the store answered {} results for {count} operations",
                    results.len()
                ));
                vec![Err(error); count]
            }
            Err(error) => vec![Err(error); count],
        });
    }
    let mut answers = answers.into_iter();
    slots
        .into_iter()
        .map(|slot| match slot {
            Some(refusal) => refusal,
            None => answers
                .next()
                .unwrap_or_else(|| Err(StoreError::protocol("a result is missing"))),
        })
        .collect()
}

/// Pairs the records a lookup found with the values the host asked for,
/// as [`Connector::lookup`] must report them: each with the value as
/// asked, compared without case unless `case_exact` (a store that folds
/// case answers `ADA@X.TEST` for `ada@x.test`). Records whose attribute
/// matches no asked value are left out.
pub fn pair_matches(
    records: Vec<StoredRecord>,
    attribute: &str,
    values: &[String],
    case_exact: bool,
) -> Vec<Match> {
    records
        .into_iter()
        .filter_map(|record| {
            let found = record.attributes.iter().find(|a| a.name == attribute)?;
            let Value::Text(found) = &found.value else {
                return None;
            };
            let asked = values.iter().find(|v| {
                if case_exact {
                    *v == found
                } else {
                    v.eq_ignore_ascii_case(found)
                }
            })?;
            Some(Match {
                value: asked.clone(),
                id: record.id,
                attributes: record.attributes,
                version: record.version,
            })
        })
        .collect()
}

/// The component's exports, for any [`Connector`]: what
/// [`export_connector!`] exports. Public only for the macro.
#[doc(hidden)]
pub struct Component<C>(PhantomData<C>);

/// Builds the connector, or gives every operation the reason it could not.
pub(crate) fn each<C: Connector, T>(
    count: usize,
    call: impl FnOnce(C) -> Vec<Result<T, StoreError>>,
) -> Vec<Result<T, StoreError>> {
    match C::connect() {
        Ok(connector) => call(connector),
        Err(error) => (0..count).map(|_| Err(error.clone())).collect(),
    }
}

impl<C: Connector> bindings::exports::provisioner::identity_store::identity_store::Guest
    for Component<C>
{
    fn describe() -> Descriptor {
        C::describe()
    }

    fn test_connection() -> Result<ConnectionReport, StoreError> {
        C::connect()?.test_connection()
    }

    fn apply(operations: Vec<Operation>) -> Vec<Result<Outcome, StoreError>> {
        each::<C, _>(operations.len(), |c| c.apply(operations))
    }

    fn lookup_records(attribute: String, values: Vec<String>) -> Result<Vec<Match>, StoreError> {
        C::connect()?.lookup(attribute, values)
    }

    fn list_records(cursor: Option<String>) -> Result<Page, StoreError> {
        C::connect()?.list(cursor)
    }

    fn apply_groups(operations: Vec<GroupOperation>) -> Vec<Result<Outcome, StoreError>> {
        each::<C, _>(operations.len(), |c| c.apply_groups(operations))
    }

    fn lookup_groups(display_names: Vec<String>) -> Result<Vec<Group>, StoreError> {
        C::connect()?.lookup_groups(display_names)
    }

    fn list_groups(cursor: Option<String>) -> Result<GroupPage, StoreError> {
        C::connect()?.list_groups(cursor)
    }

    fn discover_schema() -> Result<Vec<AttributeSpec>, StoreError> {
        C::connect()?.discover_schema()
    }
}

/// Exports a [`Connector`] as the component's `identity-store`. Use it
/// once, at the crate root of a `cdylib` built for `wasm32-wasip2`. With
/// the SDK's `contract-0-1` feature, the same connector is exported
/// through contract 0.1 instead, for hosts that speak only that.
#[cfg(not(feature = "contract-0-1"))]
#[macro_export]
macro_rules! export_connector {
    ($connector:ty) => {
        // Native builds (tests, the harness) call the connector directly.
        #[cfg(target_arch = "wasm32")]
        #[doc(hidden)]
        type __ProvisionerConnectorComponent = $crate::Component<$connector>;
        #[cfg(target_arch = "wasm32")]
        $crate::bindings::__export_connector_world!(
            __ProvisionerConnectorComponent with_types_in $crate::bindings
        );
    };
}

/// Exports a [`Connector`] through contract 0.1 (the `contract-0-1`
/// feature).
#[cfg(feature = "contract-0-1")]
#[macro_export]
macro_rules! export_connector {
    ($connector:ty) => {
        #[cfg(target_arch = "wasm32")]
        #[doc(hidden)]
        type __ProvisionerConnectorComponent = $crate::v0_1::Component<$connector>;
        #[cfg(target_arch = "wasm32")]
        $crate::v0_1::bindings::__export_connector_world_v0_1!(
            __ProvisionerConnectorComponent with_types_in $crate::v0_1::bindings
        );
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(id: &str) -> Result<Outcome, StoreError> {
        Ok(Outcome {
            id: id.into(),
            version: None,
        })
    }

    #[test]
    fn a_batch_goes_in_chunks_and_answers_in_order_among_refusals() {
        let mut requests = Vec::new();
        let answers = apply_batch(
            vec![1, 2, -3, 4, 5],
            2,
            |n| {
                if n < 0 {
                    Err(StoreError::rejected("NEGATIVE", "no"))
                } else {
                    Ok(n)
                }
            },
            |chunk| {
                requests.push(chunk.clone());
                Ok(chunk.iter().map(|n| ok(&n.to_string())).collect())
            },
        );
        assert_eq!(requests, vec![vec![1, 2], vec![4, 5]]);
        let ids: Vec<String> = answers
            .iter()
            .map(|a| match a {
                Ok(o) => o.id.clone(),
                Err(_) => "refused".into(),
            })
            .collect();
        assert_eq!(ids, ["1", "2", "refused", "4", "5"]);
    }

    #[test]
    fn a_failed_or_miscounted_request_fails_only_what_it_carried() {
        let mut calls = 0;
        let answers = apply_batch(vec![1, 2, 3], 2, Ok, |chunk| {
            calls += 1;
            match calls {
                1 => Err(StoreError::transient("503", Some(1000))),
                _ => Ok(vec![ok("a"); chunk.len() + 1]),
            }
        });
        assert!(matches!(&answers[0], Err(StoreError::Transient(t)) if t.message == "503"));
        assert!(matches!(&answers[1], Err(StoreError::Transient(t)) if t.message == "503"));
        assert!(
            matches!(&answers[2], Err(StoreError::Transient(t)) if t.message.contains("2 results for 1")),
            "{answers:?}"
        );
    }

    #[test]
    fn matches_are_reported_as_asked() {
        let record = |id: &str, email: &str| StoredRecord {
            id: id.into(),
            attributes: vec![Attribute {
                name: "email".into(),
                value: Value::Text(email.into()),
            }],
            version: Some("v1".into()),
        };
        let asked = vec!["ada@x.test".to_string()];
        let records = vec![record("1", "ADA@X.TEST"), record("2", "bob@x.test")];
        let found = pair_matches(records.clone(), "email", &asked, false);
        assert_eq!(found.len(), 1);
        assert_eq!(
            (found[0].value.as_str(), found[0].id.as_str()),
            ("ada@x.test", "1")
        );
        assert_eq!(found[0].version.as_deref(), Some("v1"));
        assert!(pair_matches(records, "email", &asked, true).is_empty());
    }
}
