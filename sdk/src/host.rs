//! The host's doors, behind one trait: the component's imports in a
//! `wasm32` build, and in a native build the stand-in that
//! [`crate::testing`] installs for the calling thread.

use crate::bindings::provisioner::identity_store::http::{HttpError, Request, Response};
use crate::bindings::provisioner::identity_store::log::Level;

pub(crate) trait Host {
    fn send(&self, request: &Request) -> Result<Response, HttpError>;
    fn setting(&self, name: &str) -> Option<String>;
    fn egress_url(&self, index: u32) -> Option<String>;
    fn session(&self, name: &str) -> Option<String>;
    fn connection_name(&self) -> String;
    fn cache_get(&self, key: &str) -> Option<String>;
    fn cache_set(&self, key: &str, value: &str, ttl_ms: u64) -> Result<(), String>;
    fn cache_remove(&self, key: &str);
    fn log(&self, level: Level, message: &str);
}

#[cfg(target_arch = "wasm32")]
mod imports {
    use super::*;
    use crate::bindings::provisioner::identity_store::{cache, config, http, log};

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
        fn log(&self, level: Level, message: &str) {
            log::log(level, message)
        }
    }
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

/// Runs `f` with the host of this call: the stand-in installed by
/// [`crate::testing::StandIn::run`], or one that refuses everything
/// outside it, so that a test that forgot it fails with a reason.
#[cfg(not(target_arch = "wasm32"))]
pub(crate) fn with<R>(f: impl FnOnce(&dyn Host) -> R) -> R {
    let current = CURRENT.with(|c| c.borrow().clone());
    match current {
        Some(host) => f(host.as_ref()),
        None => f(&Outside),
    }
}

/// Installs `host` for the calling thread while `f` runs.
#[cfg(not(target_arch = "wasm32"))]
pub(crate) fn install<R>(host: std::rc::Rc<dyn Host>, f: impl FnOnce() -> R) -> R {
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

/// The host outside a stand-in's `run`: nothing is reachable.
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
    fn connection_name(&self) -> String {
        String::new()
    }
    fn cache_get(&self, _key: &str) -> Option<String> {
        None
    }
    fn cache_set(&self, _key: &str, _value: &str, _ttl_ms: u64) -> Result<(), String> {
        Err("no host".into())
    }
    fn cache_remove(&self, _key: &str) {}
    fn log(&self, _level: Level, _message: &str) {}
}
