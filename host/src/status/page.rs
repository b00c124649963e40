//! The status page: server-rendered HTML with its CSS and a few lines of
//! script inline, so that it loads with no other request and works without
//! the network. maud escapes everything interpolated, and people's data is
//! only ever interpolated. The page's content security policy admits that
//! one script and that one style sheet by their hashes, and nothing else:
//! no other script, no inline style attribute, no other origin.

use std::time::{Duration, UNIX_EPOCH};

use maud::{DOCTYPE, Markup, PreEscaped, html};

use super::model::{ConnectionHealth, Counts, Overview, RuleSummary};

/// An RFC 3339 time for a timestamp in milliseconds.
pub fn when(ms: i64) -> String {
    if ms <= 0 {
        return "-".into();
    }
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(ms as u64)).to_string()
}

const STYLE: &str = r#"
:root { --ok: #2e7d32; --warn: #b26a00; --bad: #c62828; --muted: #666; --line: #ddd; }
body { font: 14px/1.45 system-ui, sans-serif; margin: 0 auto; max-width: 1200px; padding: 1rem 1.5rem; color: #222; }
header { display: flex; align-items: baseline; gap: 1rem; flex-wrap: wrap; border-bottom: 2px solid #222; margin-bottom: 1rem; }
h1 { font-size: 1.4rem; margin: 0.3rem 0; } h2 { font-size: 1.1rem; margin: 1.5rem 0 0.5rem; }
.muted { color: var(--muted); }
header label { margin-left: auto; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 0.35rem 0.5rem; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-weight: 600; font-size: 0.85rem; color: var(--muted); }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
.active, .ok, .Success { color: var(--ok); } .quarantined, .failed, .Failed { color: var(--bad); font-weight: 600; }
.inactive { color: var(--muted); } .Retrying { color: var(--warn); }
button { font: inherit; padding: 0.15rem 0.6rem; cursor: pointer; }
#message { color: var(--bad); min-height: 1.2em; }
svg.chart rect.success { fill: var(--ok); } svg.chart rect.unsynced { fill: #9e9e9e; }
svg.chart rect.partially_synced { fill: var(--warn); } svg.chart rect.failed { fill: var(--bad); }
svg.usage { vertical-align: middle; } svg.usage rect.track { fill: #eee; } svg.usage rect.used { fill: var(--ok); }
code { font-size: 0.85rem; }
"#;

const SCRIPT: &str = r#"
const token = document.getElementById('token');
const message = document.getElementById('message');
token.value = sessionStorage.getItem('provisioner-token') || '';
token.addEventListener('input', () => sessionStorage.setItem('provisioner-token', token.value));
async function act(url, body) {
  message.textContent = '';
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'Authorization': 'Bearer ' + token.value, 'Content-Type': 'application/json' },
    body: JSON.stringify(body || {}),
  });
  const answer = await response.json().catch(() => ({ error: response.statusText }));
  if (!response.ok) { message.textContent = answer.error || ('HTTP ' + response.status); throw new Error(message.textContent); }
  return answer;
}
function sleep(ms) { return new Promise(resolve => setTimeout(resolve, ms)); }
document.querySelectorAll('button[data-action=retry]').forEach(button => button.addEventListener('click', async () => {
  const row = button.closest('tr');
  const cell = row.querySelector('td.state');
  const rule = button.dataset.rule, person = button.dataset.person;
  try { await act('/api/retry', { rule, person }); } catch (e) { return; }
  cell.textContent = 'Retrying'; cell.className = 'state Retrying';
  for (let i = 0; i < 120; i++) {
    await sleep(500);
    const headers = token.value ? { 'Authorization': 'Bearer ' + token.value } : {};
    const status = await fetch('/api/people/' + encodeURIComponent(person), { headers }).then(r => r.json()).catch(() => null);
    const link = status && status.rules.find(r => r.rule === rule);
    const state = link && link.link ? link.link.state : null;
    if (state === 'synced') { cell.textContent = 'Success'; cell.className = 'state Success'; button.disabled = true; return; }
    if (state === 'failed' && link.link.attempts > 0) { cell.textContent = 'Failed'; cell.className = 'state Failed'; return; }
  }
}));
document.querySelectorAll('button[data-action=resume]').forEach(button => button.addEventListener('click', async () => {
  try { await act('/api/connections/' + encodeURIComponent(button.dataset.connection) + '/resume'); } catch (e) { return; }
  setTimeout(() => location.reload(), 800);
}));
document.querySelectorAll('button[data-action=approve], button[data-action=approve-updates]').forEach(button => button.addEventListener('click', async () => {
  const what = button.dataset.action === 'approve' ? 'approve-removals' : 'approve-updates';
  try { await act('/api/rules/' + encodeURIComponent(button.dataset.rule) + '/' + what); } catch (e) { return; }
  setTimeout(() => location.reload(), 800);
}));
"#;

/// The page's content security policy: its own script and style by hash,
/// fetches to its own origin, and nothing else.
pub fn content_security_policy() -> &'static str {
    static POLICY: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        use base64::Engine;
        use sha2::Digest;
        let hash = |text: &str| {
            base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(text.as_bytes()))
        };
        format!(
            "default-src 'none'; script-src 'sha256-{}'; style-src 'sha256-{}'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
            hash(SCRIPT),
            hash(STYLE)
        )
    });
    &POLICY
}

/// A stacked bar of a rule's buckets.
fn chart(counts: &Counts) -> Markup {
    let total = counts.impacted.max(1) as f64;
    let mut segments = Vec::new();
    let mut x = 0.0;
    for (class, count) in [
        ("success", counts.success),
        ("unsynced", counts.unsynced),
        ("partially_synced", counts.partially_synced),
        ("failed", counts.failed),
    ] {
        if count > 0 {
            let width = 160.0 * count as f64 / total;
            segments.push((class, count, x, width));
            x += width;
        }
    }
    html! {
        svg.chart width="160" height="14" viewBox="0 0 160 14" role="img" aria-label="sync buckets" {
            rect x="0" y="0" width="160" height="14" fill="#f2f2f2" {}
            @for (class, count, x, width) in segments {
                rect class=(class) x=(format!("{x:.1}")) y="0" width=(format!("{width:.1}")) height="14" { title { (class) ": " (count) } }
            }
        }
    }
}

pub fn render(overview: &Overview, token_configured: bool) -> Markup {
    let now = crate::state::now_ms();
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "provisioner status" }
                style { (PreEscaped(STYLE)) }
            }
            body {
                header {
                    h1 { "provisioner" }
                    span.muted { "as of " (when(now)) }
                    label {
                        "Operator token "
                        input #token type="password" autocomplete="off" placeholder=(if token_configured { "required for actions" } else { "not configured" });
                    }
                }
                p #message role="status" {}

                (rules(&overview.rules))
                (groups(&overview.rules))
                (connections(&overview.connections))
                (failures(overview))
                (recent(&overview.recent))
                script { (PreEscaped(SCRIPT)) }
            }
        }
    }
}

/// Each rule: counts, a chart, what is pending and what its guards hold.
fn rules(rules: &[RuleSummary]) -> Markup {
    html! {
    h2 { "Rules" }
    table #rules {
        thead { tr {
            th { "Rule" } th { "Connection" } th { "Scope" } th { "Status" } th { "Last sync" }
            th { "Impacted" } th { "Success" } th { "Unsynced" } th { "Partially synced" } th { "Failed" } th {} th {}
        } }
        tbody {
            @for rule in rules {
                tr data-rule=(rule.rule) {
                    td { strong { (rule.rule) } }
                    td { (rule.connection) }
                    td.muted { (rule.scope) }
                    td class=(rule.status) {
                        (rule.status)
                        @if let Some(reason) = &rule.reason { br; span.muted { (reason) } }
                    }
                    td.muted { (rule.last_sync.map(when).unwrap_or_else(|| "never".into())) }
                    td.n data-count="impacted" { (rule.counts.impacted) }
                    td.n data-count="success" { (rule.counts.success) }
                    td.n data-count="unsynced" { (rule.counts.unsynced) }
                    td.n data-count="partially_synced" { (rule.counts.partially_synced) }
                    td.n data-count="failed" { (rule.counts.failed) }
                    td { (chart(&rule.counts)) }
                    td {
                        @if rule.pending > 0 {
                            span.pending data-pending=(rule.pending) { (rule.pending) " pending" } br;
                        }
                        @if let Some(guard) = rule.removal_guard {
                            span.muted title="A pass that would remove more waits for approval" {
                                "removal guard " (guard.max_count) " / " (format!("{:.0}", guard.max_share * 100.0)) " %"
                            }
                        }
                        @if let Some((planned, linked)) = rule.held_updates {
                            br; span.muted { (planned) " of " (linked) " updates held after a mapping change " }
                            button data-action="approve-updates" data-rule=(rule.rule) { "Approve updates" }
                        }
                        @if let Some((planned, linked)) = rule.held_removals {
                            br; span.muted { (planned) " of " (linked) " removals held " }
                            button data-action="approve" data-rule=(rule.rule) { "Approve removals" }
                        }
                    }
                }
            }
        }
    }
    }
}

/// PingOne's Group Sync Summary, for the rules that push groups.
fn groups(rules: &[RuleSummary]) -> Markup {
    let pushing: Vec<(&str, &Counts)> = rules
        .iter()
        .filter_map(|r| r.group_counts.as_ref().map(|c| (r.rule.as_str(), c)))
        .collect();
    html! {
    @if !pushing.is_empty() {
        h2 { "Groups" }
        table #groups {
            thead { tr {
                th { "Rule" } th { "Impacted" } th { "Success" } th { "Unsynced" } th { "Partially synced" } th { "Failed" } th {}
            } }
            tbody {
                @for (rule, counts) in pushing {
                    tr data-rule=(rule) {
                        td { strong { (rule) } }
                        td.n data-count="impacted" { (counts.impacted) }
                        td.n data-count="success" { (counts.success) }
                        td.n data-count="unsynced" { (counts.unsynced) }
                        td.n data-count="partially_synced" { (counts.partially_synced) }
                        td.n data-count="failed" { (counts.failed) }
                        td { (chart(counts)) }
                    }
                }
            }
        }
    }
    }
}

/// Each connection: its plugin, health, API usage, and a Resume button
/// while it is quarantined.
fn connections(connections: &[ConnectionHealth]) -> Markup {
    html! {
    h2 { "Connections" }
    table #connections {
        thead { tr { th { "Connection" } th { "Plugin" } th { "Health" } th { "API usage" } th {} } }
        tbody {
            @for connection in connections {
                tr data-connection=(connection.connection) {
                    td { strong { (connection.connection) } }
                    td {
                        (connection.plugin)
                        @if let Some(version) = &connection.plugin_version { " " span.muted { (version) } }
                        @else { br; span.failed { "not loaded" } }
                        @if let Some(problem) = &connection.plugin_problem { br; span.failed.clash { (problem) } }
                    }
                    @if let Some(reason) = &connection.quarantined {
                        td.quarantined { "quarantined" br; span.muted { (reason) } }
                    } @else if connection.health == "ok" {
                        td.ok { "ok" }
                    } @else {
                        td.failed data-health=(connection.health) { (connection.health) }
                    }
                    td {
                        @if let Some(usage) = &connection.api_usage {
                            @let share: f64 = if usage.max > 0 { 100.0 * usage.used as f64 / usage.max as f64 } else { 0.0 };
                            svg.usage width="128" height="10" viewBox="0 0 100 10" role="img" aria-label=(format!("{share:.1} % used")) {
                                rect.track x="0" y="0" width="100" height="10" {}
                                rect.used x="0" y="0" width=(format!("{:.1}", share.min(100.0))) height="10" {}
                            }
                            " " (usage.used) " / " (usage.max)
                        } @else {
                            span.muted { "not reported yet" }
                        }
                    }
                    td {
                        @if connection.quarantined.is_some() {
                            button data-action="resume" data-connection=(connection.connection) { "Resume" }
                        }
                    }
                }
            }
        }
    }
    }
}

/// The first failures, with a Retry button each.
fn failures(overview: &Overview) -> Markup {
    html! {
    h2 { "Failures" }
    @if overview.failures.is_empty() {
        p.muted #no-failures { "None." }
    } @else {
        table #failures {
            thead { tr {
                th { "Rule" } th { "Person" } th { "Error" } th { "Message" } th { "Fields" }
                th { "Attempts" } th { "Next retry" } th { "State" } th {}
            } }
            tbody {
                @for failure in &overview.failures {
                    tr data-failure data-rule=(failure.rule) data-person=(failure.person) {
                        td { (failure.rule) }
                        td { (failure.person) @if let Some(email) = &failure.email { br; span.muted { (email) } } }
                        td { (failure.class) @if let Some(code) = &failure.code { br; code { (code) } } }
                        td { (failure.message) }
                        td { (failure.fields.join(", ")) }
                        td.n { (failure.attempts) }
                        td.muted { (failure.next_retry.map(when).unwrap_or_else(|| "when the data changes".into())) }
                        td.state.Failed { "Failed" }
                        td { button data-action="retry" data-rule=(failure.rule) data-person=(failure.person) { "Retry" } }
                    }
                }
            }
        }
        @if overview.failures_total > overview.failures.len() as u64 {
            p.muted #more-failures { "The first " (overview.failures.len()) " of " (overview.failures_total) " failures." }
        }
    }
    }
}

/// The journal's latest entries.
fn recent(entries: &[serde_json::Value]) -> Markup {
    html! {
    h2 { "Recent activity" }
    table #recent {
        thead { tr { th { "When" } th { "Rule" } th { "Person" } th { "Action" } th { "Target" } th { "Outcome" } th { "Error" } } }
        tbody {
            @for entry in entries {
                tr {
                    td.muted { (entry["started_at"].as_i64().map(when).unwrap_or_default()) }
                    td { (entry["rule"].as_str().unwrap_or("")) }
                    td { (entry["person"].as_str().unwrap_or("")) }
                    td { (entry["action"].as_str().unwrap_or("")) }
                    td { code { (entry["target"].as_str().unwrap_or("")) } }
                    td class=(entry["outcome"].as_str().unwrap_or("")) { (entry["outcome"].as_str().unwrap_or("in flight")) }
                    td.muted { (entry["error"].as_str().unwrap_or("")) }
                }
            }
        }
    }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::model::{Failure, RuleSummary};

    #[test]
    fn peoples_data_is_escaped() {
        let overview = Overview {
            rules: vec![RuleSummary {
                rule: "r".into(),
                connection: "c".into(),
                scope: "group <b>".into(),
                status: "active".into(),
                reason: None,
                last_sync: None,
                counts: Counts {
                    impacted: 2,
                    success: 1,
                    unsynced: 0,
                    partially_synced: 0,
                    failed: 1,
                },
                held_removals: None,
                removal_guard: None,
                held_updates: None,
                update_guard: None,
                pending: 0,
                group_counts: None,
            }],
            connections: Vec::new(),
            failures: vec![Failure {
                rule: "r".into(),
                person: "<script>alert(1)</script>".into(),
                email: Some("\"><img src=x onerror=alert(2)>".into()),
                class: "rejected".into(),
                code: Some("REQUIRED_FIELD_MISSING".into()),
                message: "Required fields are missing: [LastName]".into(),
                fields: vec!["LastName".into()],
                attempts: 1,
                next_retry: None,
            }],
            failures_total: 1,
            recent: Vec::new(),
        };
        let page = render(&overview, true).into_string();
        assert!(
            !page.contains("<script>alert(1)"),
            "the person id is escaped"
        );
        assert!(!page.contains("<img src=x"), "the email is escaped");
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(page.contains("data-count=\"failed\">1<"), "{page}");
        assert!(
            !page.contains("http://") && !page.contains("https://"),
            "no external fetch"
        );
    }
}
