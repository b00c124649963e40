//! The host's doors, behind one trait: the component's imports in a
//! `wasm32` build, and in a native build whatever the caller installs for
//! its thread: the stand-in of [`crate::testing`], or a benchmark's link
//! to a real broker.
//!
//! Connector code reaches the host through the SDK's modules (`http`,
//! `settings`, `cache`, `log`), which go through [`Current`]. A connector
//! whose logic is generic over a [`Host`], so that a benchmark can call it
//! natively with a host of its own, takes [`Current`] in its component.

use crate::bindings::provisioner::identity_store::http::{HttpError, Request, Response};
pub use crate::bindings::provisioner::identity_store::log::Level;

/// What a connector can ask of the host: the contract's imports. The
/// doors a host may lack (the cache of contract 0.2, the connection's
/// name) have defaults that say so.
pub trait Host {
    /// `http.send`: one request through the broker.
    fn send(&self, request: &Request) -> Result<Response, HttpError>;
    /// `config.get`: a non-secret setting, defaults applied.
    fn setting(&self, name: &str) -> Option<String>;
    /// `config.egress-url`: the origin of the egress template at `index`.
    fn egress_url(&self, index: u32) -> Option<String>;
    /// `config.session`: a fact the host learned, such as `instance-url`.
    fn session(&self, name: &str) -> Option<String>;
    /// `log.log`: one line in the host's log.
    fn log(&self, level: Level, message: &str);

    /// `config.connection-name`: the operator's name for the connection;
    /// empty from a host that does not say.
    fn connection_name(&self) -> String {
        String::new()
    }

    /// `cache.get` (contract 0.2).
    fn cache_get(&self, _key: &str) -> Option<String> {
        None
    }

    /// `cache.set` (contract 0.2).
    fn cache_set(&self, _key: &str, _value: &str, _ttl_ms: u64) -> Result<(), String> {
        Err("this host keeps no cache".into())
    }

    /// `cache.remove` (contract 0.2).
    fn cache_remove(&self, _key: &str) {}

    /// `quota.report` (contract 0.2): the store's allowance, as it stated
    /// it. A 0.1 host has nowhere to show it.
    fn report_quota(&self, _used: u64, _max: u64) {}
}

#[cfg(all(target_arch = "wasm32", not(feature = "contract-0-1")))]
mod imports {
    use super::*;
    use crate::bindings::provisioner::identity_store::{cache, config, http, log, quota};

    pub(crate) struct Imports;

    impl Host for Imports {
        fn send(&self, request: &Request) -> Result<Response, HttpError> {
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
        fn log(&self, level: Level, message: &str) {
            log::log(level, message)
        }
        fn connection_name(&self) -> String {
            config::connection_name()
        }
        fn cache_get(&self, key: &str) -> Option<String> {
            cache::get(key)
        }
        fn cache_set(&self, key: &str, value: &str, ttl_ms: u64) -> Result<(), String> {
            cache::set(key, value, ttl_ms)
        }
        fn cache_remove(&self, key: &str) {
            cache::remove(key)
        }
        fn report_quota(&self, used: u64, max: u64) {
            quota::report(used, max)
        }
    }
}

#[cfg(all(target_arch = "wasm32", feature = "contract-0-1"))]
mod imports {
    pub(crate) use crate::v0_1::Imports;
}

/// Runs `f` with the host of this call.
#[cfg(target_arch = "wasm32")]
pub(crate) fn with<R>(f: impl FnOnce(&dyn Host) -> R) -> R {
    f(&imports::Imports)
}

#[cfg(not(target_arch = "wasm32"))]
thread_local! {
    static CURRENT: std::cell::RefCell<Option<std::rc::Rc<dyn Host>>> =
        const { std::cell::RefCell::new(None) };
}

/// Runs `f` with the host of this call: the one installed for this thread
/// ([`install`]), or one that refuses everything outside it, so that a
/// test that forgot it fails with a reason.
#[cfg(not(target_arch = "wasm32"))]
pub(crate) fn with<R>(f: impl FnOnce(&dyn Host) -> R) -> R {
    let current = CURRENT.with(|c| c.borrow().clone());
    match current {
        Some(host) => f(host.as_ref()),
        None => f(&Outside),
    }
}

/// Installs `host` for the calling thread while `f` runs (native builds):
/// connector code in `f` reaches it through the SDK's modules and
/// [`Current`].
#[cfg(not(target_arch = "wasm32"))]
pub fn install<R>(host: std::rc::Rc<dyn Host>, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<std::rc::Rc<dyn Host>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let previous = self.0.take();
            CURRENT.with(|c| *c.borrow_mut() = previous);
        }
    }
    let previous = CURRENT.with(|c| c.borrow_mut().replace(host));
    let _restore = Restore(previous);
    f()
}

/// The host of this call, as a value: the component's imports, or the
/// host installed for this thread.
#[derive(Debug, Clone, Copy, Default)]
pub struct Current;

impl Host for Current {
    fn send(&self, request: &Request) -> Result<Response, HttpError> {
        with(|host| host.send(request))
    }
    fn setting(&self, name: &str) -> Option<String> {
        with(|host| host.setting(name))
    }
    fn egress_url(&self, index: u32) -> Option<String> {
        with(|host| host.egress_url(index))
    }
    fn session(&self, name: &str) -> Option<String> {
        with(|host| host.session(name))
    }
    fn log(&self, level: Level, message: &str) {
        with(|host| host.log(level, message))
    }
    fn connection_name(&self) -> String {
        with(|host| host.connection_name())
    }
    fn cache_get(&self, key: &str) -> Option<String> {
        with(|host| host.cache_get(key))
    }
    fn cache_set(&self, key: &str, value: &str, ttl_ms: u64) -> Result<(), String> {
        with(|host| host.cache_set(key, value, ttl_ms))
    }
    fn cache_remove(&self, key: &str) {
        with(|host| host.cache_remove(key))
    }
    fn report_quota(&self, used: u64, max: u64) {
        with(|host| host.report_quota(used, max))
    }
}

/// The host outside an installed one: nothing is reachable.
#[cfg(not(target_arch = "wasm32"))]
struct Outside;

#[cfg(not(target_arch = "wasm32"))]
impl Host for Outside {
    fn send(&self, _request: &Request) -> Result<Response, HttpError> {
        Err(HttpError::Denied(
            "no host: run connector code inside provisioner_connector::testing::StandIn::run"
                .into(),
        ))
    }
    fn setting(&self, _name: &str) -> Option<String> {
        None
    }
    fn egress_url(&self, _index: u32) -> Option<String> {
        None
    }
    fn session(&self, _name: &str) -> Option<String> {
        None
    }
    fn log(&self, _level: Level, _message: &str) {}
}
