//! `provisioner connections push`: a people file through one connection,
//! once. It is one pass of the sync engine, as `sync` runs it, over a
//! directory and links that live in memory for the command only: the
//! same lookups, adoption, case rules, typed values, preferences and
//! batching, and nothing kept afterwards. What the pass did is told person
//! by person, in the file's order.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use serde::Serialize;

use super::app::App;
use super::render;
use crate::config::{Rule, RuleSet};
use crate::directory::import::{self, Format};
use crate::directory::{Directory, PersonChange};
use crate::runtime::contract::StoreError;
use crate::state::prelude::*;
use crate::state::{StateDb, StateError};
use crate::sync::engine::{PassOptions, RuleStatus};
use crate::sync::links::LinkState;

/// The rule the pass runs: everyone in the file who is enabled, with the
/// connector's default mappings.
const RULE: &str = "push";

/// What happened to one person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "result")]
pub(super) enum PersonResult {
    Created {
        id: String,
        record: String,
    },
    Updated {
        id: String,
        record: String,
        changed: Vec<String>,
    },
    Unchanged {
        id: String,
        record: String,
    },
    /// Not sent, by a preference or because there is nothing to match on.
    Skipped {
        id: String,
        reason: String,
    },
    Failed {
        id: String,
        error: StoreError,
    },
}

/// The outcome of a push, person by person, in the file's order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub(super) struct PushReport {
    pub results: Vec<PersonResult>,
}

impl PushReport {
    pub fn count(&self, kind: &str) -> usize {
        self.results
            .iter()
            .filter(|r| {
                matches!(
                    (kind, r),
                    ("created", PersonResult::Created { .. })
                        | ("updated", PersonResult::Updated { .. })
                        | ("unchanged", PersonResult::Unchanged { .. })
                        | ("skipped", PersonResult::Skipped { .. })
                        | ("failed", PersonResult::Failed { .. })
                )
            })
            .count()
    }
}

pub(super) async fn push(
    app: &App<'_>,
    name: &str,
    path: &Path,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let config = app.config()?;
    let schema = config
        .attribute_schema()
        .map_err(|d| anyhow::anyhow!(d.to_string()))?;
    let db: Arc<dyn Store> = Arc::new(StateDb::in_memory()?);
    let directory = Directory::new(&*db, schema.clone());
    let (rows, errors) = import::read(path, Format::of(path), &directory)?;
    if !errors.is_empty() {
        for error in &errors {
            eprintln!("{}", crate::inert::inert(&error.to_string()));
        }
        anyhow::bail!(
            "{} bad row(s) in {}; nothing was pushed",
            errors.len(),
            path.display()
        );
    }
    let people: Vec<PersonChange> = rows.into_iter().map(|row| row.change).collect();
    directory.upsert(&people).await?;

    let Some(connection) = config.connection_names().find(|n| *n == name) else {
        anyhow::bail!(
            "no connection named {name:?} in {}",
            config.path().display()
        );
    };
    let rule = Rule::everyone(RULE, connection);
    let rules = RuleSet {
        rules: BTreeMap::from([(RULE.to_string(), rule)]),
        broken: Default::default(),
        diagnostics: Vec::new(),
    };
    let engine = app.engine_over(config, db, schema, rules).await?;
    let pass = engine.pass(&PassOptions::default()).await?;
    let status = pass.rules.first().and_then(|r| r.status.clone());
    if let Some(RuleStatus::Failed(reason) | RuleStatus::Quarantined(reason)) = status {
        anyhow::bail!("pushing people through connection {name}: {reason}");
    }
    let report = results(engine.db(), &people).await?;
    let plugin = engine.config().plugin_of(name).unwrap_or_default();
    let version = engine
        .plugins()
        .snapshot()
        .get(&plugin)
        .map(|p| p.descriptor().version.clone())
        .unwrap_or_default();
    render::push_report(name, &format!("{plugin} {version}"), &report, json)?;
    Ok(if report.count("failed") == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// What the pass did to each person, read from the links and the journal
/// it wrote.
async fn results(db: &dyn Store, people: &[PersonChange]) -> Result<PushReport, StateError> {
    let links = db;
    let linked = links.of_rule(RULE).await?;
    let mut journal: BTreeMap<String, Vec<serde_json::Value>> = BTreeMap::new();
    let limit = people.len().saturating_mul(4).saturating_add(16);
    for entry in links.journal(None, Some(RULE), None, limit).await? {
        if let Some(person) = entry["person"].as_str() {
            journal.entry(person.to_string()).or_default().push(entry);
        }
    }
    let mut report = PushReport::default();
    for person in people {
        let id = person.id.clone();
        if person.enabled == Some(false) {
            report.results.push(PersonResult::Skipped {
                id,
                reason: "disabled in the source; removals are the sync engine's".into(),
            });
            continue;
        }
        let Some(link) = linked.get(&id) else {
            report.results.push(PersonResult::Skipped {
                id,
                reason: "not reached: the pass stopped before this person".into(),
            });
            continue;
        };
        let reason = link.reason.clone().unwrap_or_default();
        let record = link.target_id.clone().unwrap_or_default();
        let sent = |action: &str| {
            journal
                .get(&id)
                .into_iter()
                .flatten()
                .find(|entry| entry["action"] == action && entry["outcome"] == "ok")
        };
        let result = match link.state {
            LinkState::Synced if sent("create").is_some() => PersonResult::Created { id, record },
            LinkState::Synced => match sent("adopt-update") {
                Some(entry) => PersonResult::Updated {
                    id,
                    record,
                    changed: entry["detail"]["changed"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|name| name.as_str().map(String::from))
                        .collect(),
                },
                None => PersonResult::Unchanged { id, record },
            },
            LinkState::Unsynced => PersonResult::Skipped {
                id,
                reason: format!("unsynced: {reason}"),
            },
            LinkState::Partial => PersonResult::Skipped {
                id,
                reason: format!("partially synced: {reason}"),
            },
            // Nothing to match on is the file's doing, not the store's.
            LinkState::Failed => match &link.error {
                Some(error) if error.code.as_deref() == Some("NO_MATCH_VALUE") => {
                    PersonResult::Skipped {
                        id,
                        reason: error.message.clone(),
                    }
                }
                Some(error) => PersonResult::Failed {
                    id,
                    error: error.to_store(),
                },
                None => PersonResult::Failed {
                    id,
                    error: StoreError::Transient {
                        message: reason,
                        retry_after: None,
                    },
                },
            },
            LinkState::Kept | LinkState::Disabled => PersonResult::Skipped { id, reason },
        };
        report.results.push(result);
    }
    Ok(report)
}
