//! The Salesforce Leads and Contacts connector.
//!
//! Built with `cargo build --target wasm32-wasip2` it is a component for the
//! provisioner host; built natively it is a plain library with the same
//! logic behind [`Host`], for tests, fuzzing and benchmarks. See
//! [`connector`] for what it does and [`wire`] for how it reads
//! Salesforce's answers.

wit_bindgen::generate!({
    path: "../../wit/v0.1.0",
    world: "connector",
    additional_derives: [PartialEq],
});

#[cfg(any(target_arch = "wasm32", test))]
mod arena;
pub mod connector;
mod record;
pub mod soap;
pub mod soql;
pub mod wire;

pub use exports::provisioner::identity_store::identity_store as contract;
pub use provisioner::identity_store::{http, log, types};

/// What the connector needs from the host: the contract's imports.
pub trait Host {
    fn send(&self, request: &http::Request) -> Result<http::Response, http::HttpError>;
    fn setting(&self, name: &str) -> Option<String>;
    fn egress_url(&self, index: u32) -> Option<String>;
    fn session(&self, name: &str) -> Option<String>;
    fn log(&self, level: log::Level, message: &str);
}

#[cfg(target_arch = "wasm32")]
mod component {
    use super::connector::{self, Salesforce};
    use super::contract::{ConnectionReport, Descriptor, Guest, Match, Operation, Outcome, Page};
    use super::provisioner::identity_store::config;
    use super::types::StoreError;
    use super::{Host, http, log};

    /// The host, through the component's imports.
    pub(crate) struct Imports;

    impl Host for Imports {
        fn send(&self, request: &http::Request) -> Result<http::Response, http::HttpError> {
            http::send(request)
        }

        fn setting(&self, name: &str) -> Option<String> {
            config::get(name)
        }

        fn egress_url(&self, index: u32) -> Option<String> {
            config::egress_url(index)
        }

        fn session(&self, name: &str) -> Option<String> {
            config::session(name)
        }

        fn log(&self, level: log::Level, message: &str) {
            log::log(level, message)
        }
    }

    pub(crate) struct Component;

    impl Guest for Component {
        fn describe() -> Descriptor {
            connector::describe()
        }

        fn test_connection() -> Result<ConnectionReport, StoreError> {
            Salesforce::new(Imports).test_connection()
        }

        fn apply(operations: Vec<Operation>) -> Vec<Result<Outcome, StoreError>> {
            Salesforce::new(Imports).apply(operations)
        }

        fn lookup_records(
            attribute: String,
            values: Vec<String>,
        ) -> Result<Vec<Match>, StoreError> {
            Salesforce::new(Imports).lookup_records(attribute, values)
        }

        fn list_records(cursor: Option<String>) -> Result<Page, StoreError> {
            Salesforce::new(Imports).list_records(cursor)
        }
    }
}

#[cfg(target_arch = "wasm32")]
use component::Component;

#[cfg(target_arch = "wasm32")]
#[global_allocator]
static ALLOCATOR: arena::CallArena = arena::CallArena::new();

#[cfg(target_arch = "wasm32")]
export!(Component);
