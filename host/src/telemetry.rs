//! What this process observes, as it happens: requests to target stores,
//! the API usage connectors report, retries, the queue and plugin call
//! latency. A leaf: the broker, the runtime and the engine record here
//! without knowing the status module, which renders these beside what the
//! state knows (`status::metrics`).

use std::sync::LazyLock;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct Connection {
    pub connection: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Request {
    connection: String,
    status: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Call {
    plugin: String,
    method: String,
}

struct Live {
    target_requests: Family<Request, Counter>,
    api_used: Family<Connection, Gauge>,
    api_limit: Family<Connection, Gauge>,
    retries: Family<Connection, Counter>,
    queue_depth: Gauge,
    plugin_calls: Family<Call, Histogram>,
}

static LIVE: LazyLock<Live> = LazyLock::new(|| Live {
    target_requests: Family::default(),
    api_used: Family::default(),
    api_limit: Family::default(),
    retries: Family::default(),
    queue_depth: Gauge::default(),
    plugin_calls: Family::new_with_constructor(|| {
        Histogram::new(exponential_buckets(0.000_5, 2.0, 18))
    }),
});

/// A request the broker sent to a store, by status class (2xx, 4xx, ...).
pub fn target_request(connection: &str, status: u16) {
    LIVE.target_requests
        .get_or_create(&Request {
            connection: connection.into(),
            status: format!("{}xx", status / 100),
        })
        .inc();
}

/// The API usage a store reported.
pub fn api_usage(connection: &str, used: u64, max: u64) {
    let label = Connection {
        connection: connection.into(),
    };
    LIVE.api_used.get_or_create(&label).set(used as i64);
    LIVE.api_limit.get_or_create(&label).set(max as i64);
}

/// A transient failure scheduled for another try.
pub fn retry(connection: &str) {
    LIVE.retries
        .get_or_create(&Connection {
            connection: connection.into(),
        })
        .inc();
}

/// Operations planned and not yet answered.
pub fn queue_depth(depth: usize) {
    LIVE.queue_depth.set(depth as i64);
}

pub fn queue_done(count: usize) {
    LIVE.queue_depth.dec_by(count as i64);
}

/// One call into a plugin.
pub fn plugin_call(plugin: &str, method: &str, seconds: f64) {
    LIVE.plugin_calls
        .get_or_create(&Call {
            plugin: plugin.into(),
            method: method.into(),
        })
        .observe(seconds);
}

/// Registers what this process observed, for one exposition.
pub(crate) fn register(registry: &mut Registry) {
    registry.register(
        "target_requests",
        "Requests sent to target stores, by connection and status class",
        LIVE.target_requests.clone(),
    );
    registry.register(
        "target_api_usage",
        "API requests used in the store's current window, as its connector last reported",
        LIVE.api_used.clone(),
    );
    registry.register(
        "target_api_limit",
        "The store's API allowance in its current window, as its connector last reported",
        LIVE.api_limit.clone(),
    );
    registry.register(
        "retries",
        "Transient failures scheduled for another try",
        LIVE.retries.clone(),
    );
    registry.register(
        "queue_depth",
        "Operations planned and not yet answered",
        LIVE.queue_depth.clone(),
    );
    registry.register(
        "plugin_call_seconds",
        "Time spent in plugin calls",
        LIVE.plugin_calls.clone(),
    );
}
