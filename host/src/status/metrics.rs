//! Prometheus metrics.
//!
//! Two kinds, rendered together on `/metrics`:
//! - what this process observed (`crate::telemetry`): target API requests,
//!   the API usage connectors last reported, retries scheduled, the queue,
//!   plugin call latency;
//! - what the state file knows, read at scrape time so that restarts lose
//!   nothing: actions by connection, kind and result (the journal itself),
//!   quarantine state, links by rule and state, and those of the groups
//!   rules push.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::state::StateError;
use crate::state::prelude::*;
use crate::telemetry::Connection;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Action {
    connection: String,
    kind: String,
    result: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LinkLabels {
    rule: String,
    state: String,
}

/// The whole exposition, in the Prometheus text format.
pub async fn render(db: &dyn Store, connections: &[String]) -> Result<String, StateError> {
    let mut registry = Registry::with_prefix("provisioner");
    crate::telemetry::register(&mut registry);

    let actions: Family<Action, Counter> = Family::default();
    let quarantined: Family<Connection, Gauge> = Family::default();
    let links: Family<LinkLabels, Gauge> = Family::default();
    for (connection, kind, result, count) in db.journal_counts().await? {
        actions
            .get_or_create(&Action {
                connection,
                kind,
                result,
            })
            .inc_by(count);
    }
    let held = db.quarantines().await?;
    for name in connections {
        let value = i64::from(held.contains_key(name));
        quarantined
            .get_or_create(&Connection {
                connection: name.clone(),
            })
            .set(value);
    }
    for (rule, state, count) in db.count_states().await? {
        let state = state.as_str().to_string();
        links
            .get_or_create(&LinkLabels { rule, state })
            .set(i64::try_from(count).unwrap_or(i64::MAX));
    }
    registry.register(
        "actions",
        "Actions in the journal, by connection, kind and result",
        actions,
    );
    registry.register(
        "connection_quarantined",
        "1 while a connection is quarantined",
        quarantined,
    );
    registry.register("links", "Links by rule and state", links);
    let group_links: Family<LinkLabels, Gauge> = Family::default();
    for (rule, state, count) in db.count_group_states().await? {
        let state = state.as_str().to_string();
        group_links
            .get_or_create(&LinkLabels { rule, state })
            .set(i64::try_from(count).unwrap_or(i64::MAX));
    }
    registry.register(
        "group_links",
        "Links of pushed groups by rule and state",
        group_links,
    );

    let mut text = String::new();
    encode(&mut text, &registry).map_err(|e| StateError::Io {
        path: db.describe().into(),
        reason: format!("encoding metrics: {e}"),
    })?;
    Ok(text)
}
