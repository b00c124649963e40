//! Paths to connector components built for the host's tests.
//!
//! `build.rs` builds each one with `cargo build --target wasm32-wasip2`, the
//! way a third-party author would, so tests load real components and need no
//! manual step and no checked-in binaries.

include!(concat!(env!("OUT_DIR"), "/plugins.rs"));

/// Every misbehaving component, for tests that load them all at once.
pub const MISBEHAVING: &[&str] = &[
    DISALLOWED_HOST,
    LOOP_FOREVER,
    MEMORY_BOMB,
    PANIC,
    WASI_SOCKETS,
    FUTURE_CONTRACT,
    SNOOP,
];
