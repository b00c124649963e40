//! The Salesforce Leads and Contacts connector.
//!
//! Built with `cargo build --target wasm32-wasip2` it is a component for the
//! provisioner host, on the SDK (`provisioner-connector`): contract 0.2, or
//! 0.1 with the `contract-0-1` feature, from the same code. Built natively
//! it is a plain library with the same logic over any [`Host`], for tests,
//! fuzzing and benchmarks. See [`connector`] for what it does and [`wire`]
//! for how it reads Salesforce's answers.

#[cfg(any(target_arch = "wasm32", test))]
mod arena;
pub mod connector;
mod record;
pub mod soap;
pub mod soql;
pub mod wire;

/// The contract's types, through the SDK.
pub use provisioner_connector as contract;
pub use provisioner_connector as types;
pub use provisioner_connector::host::Host;
pub use provisioner_connector::{http, log};

use connector::Salesforce;
use contract::{
    ConnectionReport, Connector, Descriptor, Match, Operation, Outcome, Page, StoreError,
};
use provisioner_connector::host::Current;

/// The component: the connector over the host of the call.
impl Connector for Salesforce<Current> {
    fn describe() -> Descriptor {
        connector::describe()
    }

    fn connect() -> Result<Self, StoreError> {
        Ok(Salesforce::new(Current))
    }

    fn test_connection(&self) -> Result<ConnectionReport, StoreError> {
        Salesforce::test_connection(self)
    }

    fn apply(&self, operations: Vec<Operation>) -> Vec<Result<Outcome, StoreError>> {
        Salesforce::apply(self, operations)
    }

    fn lookup(&self, attribute: String, values: Vec<String>) -> Result<Vec<Match>, StoreError> {
        self.lookup_records(attribute, values)
    }

    fn list(&self, cursor: Option<String>) -> Result<Page, StoreError> {
        self.list_records(cursor)
    }
}

#[cfg(target_arch = "wasm32")]
#[global_allocator]
static ALLOCATOR: arena::CallArena = arena::CallArena::new();

provisioner_connector::export_connector!(Salesforce<Current>);
