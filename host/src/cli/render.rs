//! How the CLI prints things: aligned text for people, JSON for scripts.

use std::collections::BTreeMap;
use std::io::Write;

use serde_json::json;

use super::push::{PersonResult, PushReport};
use crate::config::Connection;
use crate::config::rules::Guard;
use crate::inert::inert;
use crate::runtime::contract::{AuthScheme, ConnectionReport, MappingSource};
use crate::runtime::{CallError, Plugin, PluginSet};
use crate::status::model::{
    ConnectionHealth, Counts, Failure, GroupStatus, Overview, PersonStatus, RuleSummary,
};
use crate::sync::engine::{PassReport, RuleStatus};

/// Aligned columns. Every cell is made inert first: cells carry plugin and
/// store text, and a row must stay one line.
/// Columns are as wide as their widest cell on a terminal, in display
/// columns: a name in CJK or with an emoji takes two per character.
fn table(rows: &[Vec<String>]) -> String {
    use unicode_width::UnicodeWidthStr;
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|row| row.iter().map(|cell| inert(cell).into_owned()).collect())
        .collect();
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|cell| cell.width())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in &rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(cell);
                let pad = widths[c].saturating_sub(cell.width()) + 2;
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn plugin_json(plugin: &Plugin) -> serde_json::Value {
    json!({
        "name": plugin.name(),
        "version": plugin.descriptor().version,
        "contract": plugin.contract().to_string(),
        "path": plugin.path().display().to_string(),
        "descriptor": plugin.descriptor(),
    })
}

pub(super) fn plugin_list(
    plugins: &PluginSet,
    in_use: &BTreeMap<String, String>,
    as_json: bool,
) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    if as_json {
        let value = json!({
            "plugins": plugins.plugins.values().map(|p| plugin_json(p)).collect::<Vec<_>>(),
            "in_use": in_use,
            "refused": plugins.refused.iter().map(|r| json!({
                "path": r.path.display().to_string(),
                "reason": r.reason,
            })).collect::<Vec<_>>(),
        });
        return writeln!(out, "{}", serde_json::to_string_pretty(&value)?);
    }
    let refused = match plugins.refused.len() {
        0 => String::new(),
        n => format!("{n} file(s) refused; the reasons are on stderr\n"),
    };
    if plugins.plugins.is_empty() {
        return write!(out, "no plugins loaded\n{refused}");
    }
    let mut rows = vec![vec![
        "NAME".to_string(),
        "VERSION".into(),
        "IN USE".into(),
        "CONTRACT".into(),
        "CAPABILITIES".into(),
        "EGRESS".into(),
    ]];
    for plugin in plugins.plugins.values() {
        let d = plugin.descriptor();
        rows.push(vec![
            plugin.name().to_string(),
            d.version.clone(),
            in_use
                .get(plugin.name())
                .cloned()
                .unwrap_or_else(|| "-".into()),
            plugin.contract().to_string(),
            d.capabilities
                .iter()
                .map(|c| c.to_string())
                .collect::<Vec<_>>()
                .join(","),
            d.egress.join(" "),
        ]);
    }
    write!(out, "{}{refused}", table(&rows))
}

pub(super) fn plugin_details(plugin: &Plugin, as_json: bool) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    if as_json {
        return writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&plugin_json(plugin))?
        );
    }
    let d = plugin.descriptor();
    writeln!(out, "{} {}", d.name, inert(&d.version))?;
    if !d.description.is_empty() {
        writeln!(out, "  {}", inert(&d.description))?;
    }
    writeln!(out, "contract:     {}", plugin.contract())?;
    writeln!(out, "file:         {}", plugin.path().display())?;
    writeln!(
        out,
        "capabilities: {}",
        d.capabilities
            .iter()
            .map(|c| c.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    )?;
    writeln!(out, "egress:")?;
    let rows: Vec<Vec<String>> = d
        .egress
        .iter()
        .map(|raw| vec![format!("  {raw}"), egress_note(raw, d)])
        .collect();
    write!(out, "{}", table(&rows))?;
    let auth = match &d.auth {
        AuthScheme::None => "none".to_string(),
        AuthScheme::OAuth2 { token_url } => format!("OAuth 2.0, token URL {token_url}"),
        AuthScheme::Bearer { secret } => format!("bearer token from secret {secret}"),
    };
    writeln!(out, "auth:         {}", inert(&auth))?;
    writeln!(out, "match on:     {}", inert(&d.match_attribute))?;
    writeln!(out, "settings:")?;
    let mut rows = Vec::new();
    for s in &d.settings {
        let mut flags = vec![s.kind.to_string()];
        if s.required {
            flags.push("required".into());
        }
        if s.secret {
            flags.push("secret".into());
        }
        if let Some(default) = &s.default_value {
            flags.push(format!("default {default}"));
        }
        rows.push(vec![
            format!("  {}", s.name),
            flags.join(", "),
            s.description.clone(),
        ]);
    }
    write!(out, "{}", table(&rows))?;
    if !d.default_mappings.is_empty() {
        writeln!(out, "default mappings:")?;
        let rows: Vec<Vec<String>> = d
            .default_mappings
            .iter()
            .map(|m| {
                let source = match &m.source {
                    MappingSource::Attribute(a) => a.clone(),
                    MappingSource::Constant(c) => format!("{c:?} (constant)"),
                    MappingSource::Template(t) => format!("\"{t}\" (template)"),
                    MappingSource::Templates(t) => format!("{t:?} (templates)"),
                };
                let when = if m.apply_on_update {
                    "create and update"
                } else {
                    "create only"
                };
                vec![
                    format!("  {}", m.target),
                    format!("<- {source}"),
                    when.into(),
                ]
            })
            .collect();
        write!(out, "{}", table(&rows))?;
    }
    if !d.attributes.is_empty() {
        writeln!(out, "attributes:")?;
        let rows: Vec<Vec<String>> = d
            .attributes
            .iter()
            .map(|a| {
                vec![
                    format!("  {}", inert(&a.name)),
                    a.kind.to_string(),
                    if a.case_exact {
                        "compared exactly".into()
                    } else {
                        "compared without case".into()
                    },
                    inert(&a.description).to_string(),
                ]
            })
            .collect();
        write!(out, "{}", table(&rows))?;
    }
    Ok(())
}

/// Who would choose the host of an egress template, and so what it may
/// receive: the operator's view of a plugin's egress.
fn egress_note(raw: &str, d: &crate::runtime::contract::Descriptor) -> String {
    use crate::broker::egress::{HostSource, Template};
    match Template::parse(raw).map(|t| t.host_source().clone()) {
        Ok(HostSource::Setting(name)) => {
            let default = d
                .setting(&name)
                .and_then(|s| s.default_value.clone())
                .map(|v| {
                    format!(
                        "; left unset, the plugin's default {v} is a host the plugin chose, reachable only under approved_egress"
                    )
                })
                .unwrap_or_default();
            format!("host from your setting {name}: may receive credentials{default}")
        }
        Ok(HostSource::Plugin) => "a host the plugin chose: reachable only if you list it under approved_egress, never with credentials unless under credential_origins".into(),
        Ok(HostSource::Wildcard) => "admits only the instance_url your token endpoint returns".into(),
        Err(error) => error.to_string(),
    }
}

pub(super) fn test_result(
    connection: &Connection,
    result: &Result<ConnectionReport, CallError>,
    as_json: bool,
) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    let d = connection.plugin.descriptor();
    if as_json {
        let value = match result {
            Ok(report) => json!({
                "connection": connection.name,
                "plugin": d.name,
                "version": d.version,
                "ok": true,
                "summary": report.summary,
                "details": report.details,
            }),
            Err(error) => json!({
                "connection": connection.name,
                "plugin": d.name,
                "version": d.version,
                "ok": false,
                "error": error.to_string(),
                "store_error": error.store_error(),
                "cause": match error {
                    CallError::Store { cause, .. } => serde_json::to_value(cause).unwrap_or_default(),
                    _ => serde_json::Value::Null,
                },
            }),
        };
        return writeln!(out, "{}", serde_json::to_string_pretty(&value)?);
    }
    let header = format!(
        "connection {} (plugin {} {})",
        connection.name, d.name, d.version
    );
    match result {
        Ok(report) => {
            writeln!(out, "{header}: OK")?;
            writeln!(out, "  {}", inert(&report.summary))?;
            let rows: Vec<Vec<String>> = report
                .details
                .iter()
                .map(|(k, v)| vec![format!("  {k}"), v.clone()])
                .collect();
            write!(out, "{}", table(&rows))
        }
        Err(error) => {
            writeln!(out, "{header}: FAILED")?;
            match error {
                CallError::Store { error, cause } => {
                    writeln!(out, "  {}", inert(&error.to_string()))?;
                    if let Some(cause) = cause {
                        writeln!(out, "  cause: {}", inert(&cause.to_string()))?;
                    }
                    Ok(())
                }
                other => writeln!(out, "  {}", inert(&other.to_string())),
            }
        }
    }
}

pub(super) fn push_report(
    connection: &str,
    plugin: &str,
    report: &PushReport,
    as_json: bool,
) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    if as_json {
        return writeln!(out, "{}", serde_json::to_string_pretty(report)?);
    }
    writeln!(
        out,
        "pushed {} people through connection {connection} (plugin {plugin})",
        report.results.len(),
    )?;
    writeln!(
        out,
        "  created {}, updated {}, unchanged {}, skipped {}, failed {}",
        report.count("created"),
        report.count("updated"),
        report.count("unchanged"),
        report.count("skipped"),
        report.count("failed")
    )?;
    let mut rows = Vec::new();
    for result in &report.results {
        match result {
            PersonResult::Skipped { id, reason } => {
                rows.push(vec!["  skipped".into(), id.clone(), reason.clone()])
            }
            PersonResult::Failed { id, error } => {
                rows.push(vec!["  failed".into(), id.clone(), error.to_string()])
            }
            PersonResult::Updated {
                id,
                record,
                changed,
            } => rows.push(vec![
                "  updated".into(),
                id.clone(),
                format!("{record}: {}", changed.join(", ")),
            ]),
            _ => {}
        }
    }
    write!(out, "{}", table(&rows))
}

pub(super) fn sync_report(
    report: &PassReport,
    buckets: &BTreeMap<String, BTreeMap<String, usize>>,
    as_json: bool,
) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    if as_json {
        let value = json!({ "pass": report, "summary": buckets });
        return writeln!(out, "{}", serde_json::to_string_pretty(&value)?);
    }
    for rule in &report.rules {
        let status = match &rule.status {
            Some(RuleStatus::Active) | None => String::new(),
            Some(RuleStatus::Inactive) => " (inactive)".into(),
            Some(RuleStatus::Deleted) => " (deleted from the configuration)".into(),
            Some(RuleStatus::Failed(reason)) => format!(" FAILED: {}", inert(reason)),
            Some(RuleStatus::Quarantined(reason)) => format!(" QUARANTINED: {}", inert(reason)),
        };
        let actions = rule
            .actions
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", ");
        writeln!(
            out,
            "rule {} -> {}{}{}{}",
            rule.rule,
            rule.connection,
            if report.dry_run { " [dry run]" } else { "" },
            status,
            if actions.is_empty() {
                String::new()
            } else {
                format!(": {actions}")
            }
        )?;
        let rows: Vec<Vec<String>> = rule
            .plan
            .iter()
            .map(|line| {
                vec![
                    format!("  {}", line.person),
                    line.action.clone(),
                    line.detail.clone(),
                ]
            })
            .chain(rule.groups.iter().map(|line| {
                vec![
                    format!("  group {}", inert(&line.group)),
                    line.action.to_string(),
                    inert(&line.detail).into_owned(),
                ]
            }))
            .collect();
        write!(out, "{}", table(&rows))?;
    }
    let mut rows = vec![
        ["RULE"]
            .into_iter()
            .chain(BUCKETS)
            .map(String::from)
            .collect(),
    ];
    for (rule, counts) in buckets {
        let n = |k: &str| counts.get(k).copied().unwrap_or(0).to_string();
        rows.push(vec![
            rule.clone(),
            n("impacted"),
            n("success"),
            n("unsynced"),
            n("partially-synced"),
            n("failed"),
        ]);
    }
    writeln!(out)?;
    write!(out, "{}", table(&rows))
}

/// A progress bar for the sending phase, when stdout is a terminal; plain
/// output otherwise.
pub(super) fn progress_bar(json: bool) -> Option<indicatif::ProgressBar> {
    use std::io::IsTerminal;
    if json || !std::io::stdout().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} sending {pos}/{len} operations {wide_bar} {eta}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    Some(bar)
}

fn when(ms: Option<i64>) -> String {
    ms.map(crate::status::page::when)
        .unwrap_or_else(|| "-".into())
}

pub(super) fn overview(overview: &Overview, as_json: bool) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    if as_json {
        return writeln!(out, "{}", serde_json::to_string_pretty(overview)?);
    }
    rule_summaries(&mut out, &overview.rules)?;
    writeln!(out)?;
    connection_health(&mut out, &overview.connections)?;
    if overview.failures_total > 0 {
        writeln!(
            out,
            "\n{} failure(s); see `provisioner status --failures`",
            overview.failures_total
        )?;
    }
    Ok(())
}

/// `status group NAME`.
pub(super) fn group_status(status: &GroupStatus, as_json: bool) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    if as_json {
        return writeln!(out, "{}", serde_json::to_string_pretty(status)?);
    }
    writeln!(
        out,
        "group {}: {} member(s) in the directory",
        inert(&status.group),
        status.members
    )?;
    if status.rules.is_empty() {
        writeln!(out, "  no rule pushes it")?;
    }
    for rule in &status.rules {
        let pushed = if rule.pushed {
            ""
        } else {
            " (no longer pushed)"
        };
        write!(out, "  rule {} -> {}{pushed}: ", rule.rule, rule.connection)?;
        match &rule.link {
            None => writeln!(out, "not reached by a pass yet")?,
            Some(link) => {
                writeln!(
                    out,
                    "{}, {} member(s) written, group {}, at {}",
                    link.state.as_str(),
                    link.members.len(),
                    link.target_id
                        .as_deref()
                        .map(inert)
                        .unwrap_or("none yet".into()),
                    when(Some(link.updated_at))
                )?;
                if let Some(reason) = &link.reason {
                    writeln!(out, "    {}", inert(reason))?;
                }
            }
        }
        for entry in &rule.trace {
            let text = |key: &str| entry[key].as_str().unwrap_or_default().to_string();
            let mut line = format!(
                "    {} {} ({} members) {}",
                when(entry["started_at"].as_i64()),
                text("action"),
                entry["detail"]["members"],
                text("outcome")
            );
            if let Some(error) = entry["detail"]["error"].as_str() {
                line.push_str(&format!(": {error}"));
            }
            writeln!(out, "{}", inert(&line))?;
        }
    }
    Ok(())
}

/// PingOne's buckets, as the status tables head them.
const BUCKETS: [&str; 5] = [
    "IMPACTED",
    "SUCCESS",
    "UNSYNCED",
    "PARTIALLY SYNCED",
    "FAILED",
];

/// A row's bucket cells, in the order of [`BUCKETS`].
fn bucket_cells(c: &Counts) -> [String; 5] {
    [
        c.impacted,
        c.success,
        c.unsynced,
        c.partially_synced,
        c.failed,
    ]
    .map(|n| n.to_string())
}

/// PingOne's Group Sync Summary, for the rules that push groups.
fn group_summaries(out: &mut impl Write, rules: &[RuleSummary]) -> std::io::Result<()> {
    let mut rows = vec![
        ["GROUPS OF RULE"]
            .into_iter()
            .chain(BUCKETS)
            .map(String::from)
            .collect(),
    ];
    for rule in rules {
        let Some(c) = &rule.group_counts else {
            continue;
        };
        rows.push(
            [rule.rule.clone()]
                .into_iter()
                .chain(bucket_cells(c))
                .collect(),
        );
    }
    if rows.len() > 1 {
        writeln!(out)?;
        write!(out, "{}", table(&rows))?;
    }
    Ok(())
}

/// Each rule's counts, and under them what holds or stops it and the
/// guards in force.
fn rule_summaries(out: &mut impl Write, rules: &[RuleSummary]) -> std::io::Result<()> {
    let head = ["RULE", "CONNECTION", "STATUS", "LAST SYNC"];
    let mut rows = vec![head.into_iter().chain(BUCKETS).map(String::from).collect()];
    for rule in rules {
        let named = [
            rule.rule.clone(),
            rule.connection.clone(),
            rule.status.clone(),
            when(rule.last_sync),
        ];
        rows.push(
            named
                .into_iter()
                .chain(bucket_cells(&rule.counts))
                .collect(),
        );
    }
    write!(out, "{}", table(&rows))?;
    group_summaries(out, rules)?;
    for rule in rules {
        if let Some(reason) = &rule.reason {
            writeln!(out, "  {} is {}: {}", rule.rule, rule.status, inert(reason))?;
        }
        if let Some((planned, linked)) = rule.held_removals {
            writeln!(
                out,
                "  {}: {planned} of {linked} removals held by the removal guard; approve with `provisioner approve-removals {}`",
                rule.rule, rule.rule
            )?;
        }
        if let Some((planned, linked)) = rule.held_updates {
            writeln!(
                out,
                "  {}: {planned} of {linked} updates held by the update guard after a mapping change; review with `provisioner sync --dry-run --rule {}`, approve with `provisioner approve-updates {}`",
                rule.rule, rule.rule, rule.rule
            )?;
        }
        if rule.pending > 0 {
            writeln!(
                out,
                "  {}: {} person(s) with changes not yet carried out",
                rule.rule, rule.pending
            )?;
        }
    }
    let removal = |r: &RuleSummary| r.removal_guard;
    let update = |r: &RuleSummary| r.update_guard;
    for (label, guard_of) in [
        (
            "removal guard (a pass holds its removals beyond)",
            &removal as &dyn Fn(&RuleSummary) -> Option<Guard>,
        ),
        (
            "update guard (a mapping change holds its updates beyond)",
            &update,
        ),
    ] {
        let guards: Vec<String> = rules
            .iter()
            .filter_map(|r| {
                let guard = guard_of(r)?;
                Some(format!(
                    "{} {} or {:.0} %",
                    r.rule,
                    guard.max_count,
                    guard.max_share * 100.0
                ))
            })
            .collect();
        if !guards.is_empty() {
            writeln!(out, "  {label}: {}", guards.join(", "))?;
        }
    }
    Ok(())
}

/// Each connection's plugin, health and API usage, and the plugin
/// problems under them.
fn connection_health(
    out: &mut impl Write,
    connections: &[ConnectionHealth],
) -> std::io::Result<()> {
    let mut rows = vec![vec![
        "CONNECTION".to_string(),
        "PLUGIN".into(),
        "HEALTH".into(),
        "API USAGE".into(),
    ]];
    for connection in connections {
        rows.push(vec![
            connection.connection.clone(),
            match (&connection.plugin_version, &connection.plugin_problem) {
                (Some(version), None) => format!("{} {version}", connection.plugin),
                (Some(version), Some(_)) => match connection.plugin_problem_kind.as_deref() {
                    Some("clash") => format!("{} {version} (name clash)", connection.plugin),
                    _ => format!("{} {version} (see below)", connection.plugin),
                },
                (None, Some(_)) => format!("{} (not loaded)", connection.plugin),
                (None, None) => format!("{} (not loaded)", connection.plugin),
            },
            match &connection.quarantined {
                Some(reason) => format!("quarantined: {reason}"),
                None => connection.health.clone(),
            },
            connection
                .api_usage
                .as_ref()
                .map(|u| format!("{}/{}", u.used, u.max))
                .unwrap_or_else(|| "-".into()),
        ]);
    }
    write!(out, "{}", table(&rows))?;
    for connection in connections {
        if let Some(problem) = &connection.plugin_problem {
            writeln!(out, "  {}: {}", connection.connection, inert(problem))?;
        }
    }
    Ok(())
}

pub(super) fn failures(failures: &[Failure], as_json: bool) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    if as_json {
        return writeln!(out, "{}", serde_json::to_string_pretty(failures)?);
    }
    if failures.is_empty() {
        return writeln!(out, "no failures");
    }
    let mut rows = vec![vec![
        "RULE".to_string(),
        "PERSON".into(),
        "EMAIL".into(),
        "CLASS".into(),
        "CODE".into(),
        "FIELDS".into(),
        "ATTEMPTS".into(),
        "NEXT RETRY".into(),
        "MESSAGE".into(),
    ]];
    for f in failures {
        rows.push(vec![
            f.rule.clone(),
            f.person.clone(),
            f.email.clone().unwrap_or_else(|| "-".into()),
            f.class.clone(),
            f.code.clone().unwrap_or_else(|| "-".into()),
            if f.fields.is_empty() {
                "-".into()
            } else {
                f.fields.join(",")
            },
            f.attempts.to_string(),
            f.next_retry
                .map(|t| when(Some(t)))
                .unwrap_or_else(|| "when the data changes".into()),
            f.message.clone(),
        ]);
    }
    write!(out, "{}", table(&rows))
}

pub(super) fn person_status(status: &PersonStatus, as_json: bool) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    if as_json {
        return writeln!(out, "{}", serde_json::to_string_pretty(status)?);
    }
    let p = &status.person;
    writeln!(
        out,
        "{}{}{} groups: {}; population: {}",
        p.id,
        p.attributes
            .get("email")
            .map(|e| format!(" <{e}>"))
            .unwrap_or_default(),
        if p.deleted {
            " (deleted)"
        } else if !p.enabled {
            " (disabled)"
        } else {
            ""
        },
        if p.groups.is_empty() {
            "-".to_string()
        } else {
            p.groups.iter().cloned().collect::<Vec<_>>().join(", ")
        },
        p.population.as_deref().unwrap_or("-")
    )?;
    if let Some(change) = &status.last_change {
        writeln!(
            out,
            "last change: {} by {}, {}",
            change.kind,
            inert(change.source.as_deref().unwrap_or("an earlier version")),
            when(Some(change.at))
        )?;
    }
    for rule in &status.rules {
        writeln!(out, "rule {} -> {}", rule.rule, rule.connection)?;
        writeln!(out, "  scope:  {}", rule.scope)?;
        match &rule.link {
            None => writeln!(out, "  link:   none")?,
            Some(link) => {
                writeln!(
                    out,
                    "  link:   {}{}",
                    link.state.as_str(),
                    link.target_id
                        .as_ref()
                        .map(|t| format!(", record {t}"))
                        .unwrap_or_default()
                )?;
                if let Some(reason) = &link.reason {
                    writeln!(out, "  reason: {}", inert(reason))?;
                }
                if let Some(error) = &link.error {
                    let line = format!(
                        "{}{}: {}{} (attempt {}{})",
                        error.class,
                        error
                            .code
                            .as_ref()
                            .map(|c| format!(" {c}"))
                            .unwrap_or_default(),
                        error.message,
                        if error.fields.is_empty() {
                            String::new()
                        } else {
                            format!(" [fields: {}]", error.fields.join(", "))
                        },
                        link.attempts,
                        link.next_retry
                            .map(|t| format!(", next {}", when(Some(t))))
                            .unwrap_or_default()
                    );
                    writeln!(out, "  error:  {}", inert(&line))?;
                }
            }
        }
        if !rule.trace.is_empty() {
            writeln!(out, "  trace:")?;
            for entry in &rule.trace {
                writeln!(out, "    {}", inert(&describe_entry(entry)))?;
            }
        }
    }
    Ok(())
}

fn describe_entry(entry: &serde_json::Value) -> String {
    let text = |key: &str| entry[key].as_str().unwrap_or("").to_string();
    let mut line = format!(
        "{}  {}  {}",
        when(entry["started_at"].as_i64()),
        text("action"),
        entry["outcome"].as_str().unwrap_or("in flight")
    );
    if let Some(target) = entry["target"].as_str() {
        line.push_str(&format!("  {target}"));
    }
    if let Some(detail) = entry
        .get("detail")
        .filter(|d| d.as_object().is_some_and(|o| !o.is_empty()))
    {
        line.push_str(&format!("  {detail}"));
    }
    if let Some(error) = entry["error"].as_str() {
        line.push_str(&format!("  {error}"));
    }
    line
}

pub(super) fn audit(entries: &[serde_json::Value], as_json: bool) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    if as_json {
        return writeln!(out, "{}", serde_json::to_string_pretty(entries)?);
    }
    for entry in entries {
        let line = format!(
            "{}  {}  {}  {}",
            entry["rule"].as_str().unwrap_or("-"),
            entry["person"].as_str().unwrap_or("-"),
            entry["connection"].as_str().unwrap_or("-"),
            describe_entry(entry)
        );
        writeln!(out, "{}", inert(&line))?;
    }
    writeln!(
        out,
        "{} entr{}",
        entries.len(),
        if entries.len() == 1 { "y" } else { "ies" }
    )
}

pub(super) fn directory_changes(
    changes: &[crate::directory::Change],
    as_json: bool,
) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    if as_json {
        return writeln!(out, "{}", serde_json::to_string_pretty(changes)?);
    }
    for change in changes {
        let line = format!(
            "{}  {}  {}  {}  by {}",
            change.seq,
            when(Some(change.at)),
            change.person_id,
            change.kind,
            change.source.as_deref().unwrap_or("an earlier version")
        );
        writeln!(out, "{}", inert(&line))?;
    }
    writeln!(
        out,
        "{} change{}",
        changes.len(),
        if changes.len() == 1 { "" } else { "s" }
    )
}

pub(super) fn conform_report(
    report: &crate::conform::Report,
    as_json: bool,
) -> std::io::Result<()> {
    use crate::conform::Verdict;
    let mut out = std::io::stdout().lock();
    if as_json {
        return writeln!(out, "{}", serde_json::to_string_pretty(report)?);
    }
    writeln!(
        out,
        "connection {} (plugin {} {}, contract {}), run {}",
        report.connection,
        inert(&report.plugin),
        inert(&report.version),
        report.contract,
        report.run
    )?;
    let mut rows = vec![vec!["CHECK".to_string(), "RESULT".into(), "DETAIL".into()]];
    for check in &report.checks {
        rows.push(vec![
            check.check.to_string(),
            match check.verdict {
                Verdict::Pass => "pass".into(),
                Verdict::Fail => "FAIL".into(),
                Verdict::Skip => "skip".into(),
            },
            inert(&check.detail).into_owned(),
        ]);
    }
    write!(out, "{}", table(&rows))?;
    let count = |verdict| {
        report
            .checks
            .iter()
            .filter(|c| c.verdict == verdict)
            .count()
    };
    writeln!(
        out,
        "{} passed, {} failed, {} skipped",
        count(Verdict::Pass),
        count(Verdict::Fail),
        count(Verdict::Skip)
    )?;
    if !report.left.is_empty() {
        writeln!(
            out,
            "records of this run left in the store: {}",
            report
                .left
                .iter()
                .map(|id| inert(id).into_owned())
                .collect::<Vec<_>>()
                .join(", ")
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::table;

    #[test]
    fn tables_align_columns() {
        let rows = vec![
            vec!["A".to_string(), "BB".into(), "C".into()],
            vec!["AAA".to_string(), "B".into(), "CCC".into()],
        ];
        assert_eq!(table(&rows), "A    BB  C\nAAA  B   CCC\n");
        // Wide characters take two columns each, and align as such.
        let rows = vec![
            vec!["名前".to_string(), "x".into()],
            vec!["abcde".to_string(), "y".into()],
        ];
        assert_eq!(table(&rows), "名前   x\nabcde  y\n");
    }
}
