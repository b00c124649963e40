//! `provisioner plugins conform`: the contract's promises, checked against
//! a live store through a configured connection, so that an author knows
//! before shipping whether the host can rely on the connector.
//!
//! The checks go through the same [`Connector`] the sync engine calls, and
//! judge answers by the engine's own rules: a record must read back as it
//! was written by the comparison the planner makes ([`plan::diff_against`]),
//! or every record the host adopts would be updated again for nothing.
//!
//! It writes only records of its own: their match value is
//! `provisioner-conform-RUN-N@example.com`, from people it makes up, and it
//! deletes them afterwards unless asked to keep them. A check that cannot
//! run (a capability the connector does not declare, or an earlier step
//! that failed) is skipped with the reason, never passed.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::config::Connection;
use crate::runtime::contract::{
    Attribute, AuthScheme, Capability, Descriptor, Match, Operation, StoreError, Value,
};
use crate::runtime::{CallError, Connector};
use crate::sync::mapping::{self, CompiledMapping};
use crate::sync::plan;

/// People made up for a run; enough to see a batch, a page and an update.
const PEOPLE: usize = 3;
/// Pages read at most while looking for the run's records in a listing.
const MAX_PAGES: usize = 10_000;

/// How one check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Pass,
    Fail,
    Skip,
}

/// One promise of the contract, checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    pub check: &'static str,
    pub verdict: Verdict,
    /// What was seen: for a failure, which promise broke and how.
    pub detail: String,
}

/// What a run found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    pub connection: String,
    pub plugin: String,
    pub version: String,
    pub contract: String,
    /// The tag in the match value of every record this run created.
    pub run: String,
    pub checks: Vec<Check>,
    /// Records of this run still in the store: kept on request, or left
    /// because deleting them failed.
    pub left: Vec<String>,
}

impl Report {
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.verdict != Verdict::Fail)
    }

    fn pass(&mut self, check: &'static str, detail: impl Into<String>) {
        self.push(check, Verdict::Pass, detail);
    }

    fn fail(&mut self, check: &'static str, detail: impl Into<String>) {
        self.push(check, Verdict::Fail, detail);
    }

    fn skip(&mut self, check: &'static str, detail: impl Into<String>) {
        self.push(check, Verdict::Skip, detail);
    }

    fn push(&mut self, check: &'static str, verdict: Verdict, detail: impl Into<String>) {
        self.checks.push(Check {
            check,
            verdict,
            detail: detail.into(),
        });
    }

    /// Records a check that holds when `problem` is `None`.
    fn judge(&mut self, check: &'static str, problem: Option<String>, ok: impl Into<String>) {
        match problem {
            None => self.pass(check, ok),
            Some(problem) => self.fail(check, problem),
        }
    }
}

/// What a run may do.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Leave the run's records in the store for inspection.
    pub keep: bool,
}

/// A record this run created, and what it was created with.
struct Made {
    id: String,
    key: String,
    written: Vec<Attribute>,
}

/// Builds the connection with made-up credentials pointed at a stand-in
/// host; `Ok(None)` when the store's host is not a setting.
pub type StandIn<'a> = &'a (dyn Fn(&str) -> Result<Option<Connector>, String> + Sync);

/// Runs every check through `connector`, the connection as configured.
/// `wrong` is the same connection holding made-up credentials, or why it
/// could not be built; `None` when the connector authenticates with none.
/// `stand_in` points the connection at a stand-in store that always fails.
pub async fn conform(
    connection: &Connection,
    connector: &Connector,
    wrong: Option<Result<Connector, String>>,
    stand_in: StandIn<'_>,
    options: Options,
) -> Report {
    let plugin = connector.plugin();
    let descriptor = plugin.descriptor();
    let run = format!("{:08x}", rand::random::<u32>());
    let mut report = Report {
        connection: connection.name.clone(),
        plugin: descriptor.name.clone(),
        version: descriptor.version.clone(),
        contract: plugin.contract().to_string(),
        run: run.clone(),
        checks: Vec::new(),
        left: Vec::new(),
    };
    let mappings = describe(descriptor, &mut report);

    match connector.test_connection().await {
        Ok(answer) => report.pass("test-connection", answer.summary),
        Err(error) => report.fail(
            "test-connection",
            format!("a test of the configured connection must succeed: {error}"),
        ),
    }
    match wrong {
        None => report.skip(
            "test-connection refuses wrong credentials",
            "the connector authenticates with no credentials",
        ),
        Some(Err(reason)) => report.fail(
            "test-connection refuses wrong credentials",
            format!("the connection could not be bound with made-up credentials: {reason}"),
        ),
        Some(Ok(wrong)) => {
            let (verdict, detail) = refused(wrong.test_connection().await);
            report.push("test-connection refuses wrong credentials", verdict, detail);
        }
    }

    let Some(mappings) = mappings else {
        report.skip(
            "records",
            "the default mappings do not compile, so no record can be made",
        );
        return report;
    };
    let made = records(connector, &mappings, &run, &mut report).await;
    let removed = if options.keep {
        if !made.is_empty() {
            report.skip(
                "disable and delete",
                "the records are kept for inspection (--keep)",
            );
        }
        false
    } else {
        remove(connector, &made, &mut report).await
    };
    if !removed {
        report.left = made.iter().map(|m| m.id.clone()).collect();
    }
    transient(stand_in, &mut report).await;
    report
}

/// A stand-in store on loopback that answers every request with `status`
/// and `Retry-After: retry_after`; its address, and the task serving it.
async fn failing_store(
    status: axum::http::StatusCode,
    retry_after: u64,
) -> std::io::Result<(String, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?.to_string();
    let app = axum::Router::new().fallback(move || async move {
        (
            status,
            [
                (axum::http::header::RETRY_AFTER, retry_after.to_string()),
                (
                    axum::http::header::CONTENT_TYPE,
                    "application/json".to_string(),
                ),
            ],
            r#"{"error":"the conformance kit's stand-in store always fails"}"#,
        )
    });
    let task = tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            tracing::warn!(%error, "the conformance kit's stand-in store stopped");
        }
    });
    Ok((address, task))
}

/// A store that is busy or overloaded (503, or 429) and says when to come
/// back must read as transient, with that delay: the host then retries no
/// sooner than asked, instead of failing the person or hammering the
/// store. Checked against a stand-in on loopback, with made-up credentials.
async fn transient(stand_in: StandIn<'_>, report: &mut Report) {
    const CHECK: &str = "transient answers";
    let mut seen = Vec::new();
    for (status, seconds) in [
        (axum::http::StatusCode::SERVICE_UNAVAILABLE, 7),
        (axum::http::StatusCode::TOO_MANY_REQUESTS, 11),
    ] {
        let (host, task) = match failing_store(status, seconds).await {
            Ok(served) => served,
            Err(error) => {
                report.skip(
                    CHECK,
                    format!("no stand-in store could be started: {error}"),
                );
                return;
            }
        };
        let connector = match stand_in(&host) {
            Ok(Some(connector)) => connector,
            Ok(None) => {
                task.abort();
                report.skip(
                    CHECK,
                    "no egress template takes its whole host from a setting, so the store cannot be stood in for",
                );
                return;
            }
            Err(reason) => {
                task.abort();
                report.fail(
                    CHECK,
                    format!("the connection could not be pointed at a stand-in: {reason}"),
                );
                return;
            }
        };
        let answer = connector.test_connection().await;
        task.abort();
        let wanted = std::time::Duration::from_secs(seconds);
        let code = status.as_u16();
        match answer.as_ref().err().and_then(CallError::store_error) {
            Some(StoreError::Transient {
                retry_after: Some(delay),
                ..
            }) if *delay == wanted => seen.push(format!("{code} after {seconds} s")),
            Some(StoreError::Transient { retry_after, .. }) => {
                report.fail(
                    CHECK,
                    format!(
                        "HTTP {code} with Retry-After: {seconds} reads as transient, but must ask for a retry after {seconds} s, not {}",
                        retry_after
                            .map(|d| format!("{} ms", d.as_millis()))
                            .unwrap_or_else(|| "no delay".into())
                    ),
                );
                return;
            }
            _ => {
                let got = match &answer {
                    Ok(_) => "a success".to_string(),
                    Err(error) => error.to_string(),
                };
                report.fail(
                    CHECK,
                    format!(
                        "HTTP {code} with Retry-After: {seconds} must read as transient, not {got}"
                    ),
                );
                return;
            }
        }
    }
    report.pass(CHECK, seen.join(", "));
}

/// What the connector says about itself, checked; the compiled default
/// mappings if they compile.
fn describe(descriptor: &Descriptor, report: &mut Report) -> Option<Vec<CompiledMapping>> {
    let name_ok = !descriptor.name.is_empty()
        && descriptor
            .name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    report.judge(
        "describe: name",
        (!name_ok).then(|| {
            format!(
                "the name {:?} must be lower-case letters, digits and hyphens, as configurations write it",
                descriptor.name
            )
        }),
        descriptor.name.clone(),
    );
    report.judge(
        "describe: version",
        semver::Version::parse(&descriptor.version)
            .err()
            .map(|e| format!("{:?} is not a semantic version: {e}", descriptor.version)),
        descriptor.version.clone(),
    );
    let auth = match &descriptor.auth {
        AuthScheme::Bearer { secret } => match descriptor.setting(secret) {
            Some(spec) if spec.secret => None,
            Some(_) => Some(format!(
                "the bearer token's setting {secret} is not declared secret"
            )),
            None => Some(format!(
                "the bearer token's setting {secret} is not declared"
            )),
        },
        AuthScheme::OAuth2 { token_url } if token_url.is_empty() => {
            Some("OAuth 2.0 without a token URL".into())
        }
        _ => None,
    };
    report.judge("describe: auth", auth, "consistent with the settings");
    let lookup = (!descriptor.has(Capability::Lookup)).then(|| {
        "no lookup capability: the host looks every person up before it creates them, so it could never adopt a record and would create twins".to_string()
    });
    report.judge("describe: capabilities", lookup, capabilities(descriptor));
    let mappings = match mapping::compile(&descriptor.default_mappings) {
        Ok(mappings) => mappings,
        Err(error) => {
            report.fail("describe: default mappings", error);
            return None;
        }
    };
    let matched = &descriptor.match_attribute;
    report.judge(
        "describe: default mappings",
        (!mappings
            .iter()
            .any(|m| m.target.eq_ignore_ascii_case(matched)))
        .then(|| {
            format!("nothing maps to {matched}, the attribute records are matched on, so a rule with the defaults can neither match nor create anyone")
        }),
        format!("{} mappings, {matched} among them", mappings.len()),
    );
    Some(mappings)
}

fn capabilities(descriptor: &Descriptor) -> String {
    descriptor
        .capabilities
        .iter()
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// A test with wrong credentials must be refused as `unauthorized`: that is
/// what quarantines a connection instead of retrying it forever.
fn refused<T>(answer: Result<T, CallError>) -> (Verdict, String) {
    match answer {
        Err(error) => match error.store_error() {
            Some(StoreError::Unauthorized(message)) => (Verdict::Pass, message.clone()),
            _ => (
                Verdict::Fail,
                format!("wrong credentials must be refused as unauthorized, not: {error}"),
            ),
        },
        Ok(_) => (
            Verdict::Fail,
            "a test with made-up credentials succeeded; it must fail as unauthorized".into(),
        ),
    }
}

/// A made-up person of this run.
fn person(run: &str, n: usize, title: &str) -> BTreeMap<String, String> {
    [
        ("given_name", "Conform".to_string()),
        ("family_name", format!("Check{n} {run}")),
        ("display_name", format!("Conform Check{n}")),
        ("email", key(run, n)),
        ("phone", format!("+1555010{n}")),
        ("mobile_phone", format!("+1555020{n}")),
        ("title", title.to_string()),
        ("department", "Conformance".into()),
        ("company", "provisioner conform".into()),
        ("street", "1 Conformance Way".into()),
        ("city", "Oslo".into()),
        ("region", "Oslo".into()),
        ("postal_code", "0150".into()),
        ("country", "Norway".into()),
        ("employee_number", format!("C{run}{n}")),
        ("locale", "en-US".into()),
        ("timezone", "Europe/Oslo".into()),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_string(), value))
    .collect()
}

/// The match value of the run's `n`th record: the tag that makes it ours.
fn key(run: &str, n: usize) -> String {
    format!("provisioner-conform-{run}-{n}@example.com")
}

/// The value a made-up person's attributes give the match attribute.
fn match_value(attributes: &[Attribute], matched: &str) -> Option<String> {
    attributes
        .iter()
        .find(|a| a.name.eq_ignore_ascii_case(matched))
        .and_then(|a| match &a.value {
            Value::Text(text) if !text.is_empty() => Some(text.clone()),
            _ => None,
        })
}

/// Looks the run's records up by their keys in upper case, as a store
/// that matches without case must find them; by key in lower case.
async fn find(
    connector: &Connector,
    matched: &str,
    keys: &[String],
) -> Result<BTreeMap<String, Vec<Match>>, CallError> {
    let found = connector
        .lookup(matched, keys.iter().map(|k| k.to_uppercase()).collect())
        .await?;
    let mut by_key: BTreeMap<String, Vec<Match>> = BTreeMap::new();
    for m in found {
        by_key.entry(m.value.to_lowercase()).or_default().push(m);
    }
    Ok(by_key)
}

/// Create, lookup, read-back, update, list and a batch with a bad
/// operation. Returns what was created, for removal.
async fn records(
    connector: &Connector,
    mappings: &[CompiledMapping],
    run: &str,
    report: &mut Report,
) -> Vec<Made> {
    let descriptor = connector.plugin().descriptor();
    let matched = descriptor.match_attribute.clone();
    if !descriptor.has(Capability::Create) {
        report.skip("create", "the connector declares no create capability");
        return Vec::new();
    }
    let mut wanted = Vec::new();
    for n in 0..PEOPLE {
        let attributes = mapping::attributes(mappings, &person(run, n, "Conformance check"), false);
        let Some(key) = match_value(&attributes, &matched) else {
            report.skip(
                "create",
                format!("the default mappings give no value for {matched} from a made-up person's standard attributes"),
            );
            return Vec::new();
        };
        wanted.push((key, attributes));
    }
    let operations = wanted
        .iter()
        .map(|(_, attributes)| Operation::Create {
            attributes: attributes.clone(),
        })
        .collect();
    let answers = match connector.apply(operations).await {
        Ok(answers) => answers,
        Err(error) => {
            report.fail(
                "create",
                format!("a batch of {PEOPLE} creates failed: {error}"),
            );
            return Vec::new();
        }
    };
    let mut made = Vec::new();
    let mut problems = Vec::new();
    for ((key, attributes), answer) in wanted.into_iter().zip(answers) {
        match answer {
            Ok(outcome) if !outcome.id.is_empty() => made.push(Made {
                id: outcome.id,
                key,
                written: attributes,
            }),
            Ok(_) => problems.push(format!("{key}: created without an id")),
            Err(error) => problems.push(format!("{key}: {error}")),
        }
    }
    let distinct: BTreeSet<&str> = made.iter().map(|m| m.id.as_str()).collect();
    if distinct.len() != made.len() {
        problems.push("two creates answered the same id".into());
    }
    report.judge(
        "create",
        (!problems.is_empty()).then(|| {
            format!(
                "a batch of {PEOPLE} creates must answer one distinct id per create, in order: {}",
                problems.join("; ")
            )
        }),
        format!("{PEOPLE} records in one batch"),
    );
    if made.is_empty() {
        return made;
    }

    let keys: Vec<String> = made.iter().map(|m| m.key.clone()).collect();
    match find(connector, &matched, &keys).await {
        Err(error) => report.fail(
            "lookup",
            format!("looking the new records up failed: {error}"),
        ),
        Ok(found) => {
            let mut problems = Vec::new();
            let mut unread = Vec::new();
            let mut read = 0;
            for m in &made {
                match found.get(&m.key.to_lowercase()).map(Vec::as_slice) {
                    Some([one]) if one.id == m.id => {
                        read += 1;
                        let differ = plan::diff_against(&m.written, &one.attributes, &matched);
                        if !differ.is_empty() {
                            unread.push(format!(
                                "{}: {}",
                                m.key,
                                differ
                                    .iter()
                                    .map(|a| {
                                        let read = one
                                            .attributes
                                            .iter()
                                            .find(|r| r.name.eq_ignore_ascii_case(&a.name))
                                            .map(|r| format!("{:?}", r.value))
                                            .unwrap_or_else(|| "nothing".into());
                                        format!("{} written {:?}, read {read}", a.name, a.value)
                                    })
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ));
                        }
                    }
                    Some([one]) => problems.push(format!(
                        "{} found as {}, created as {}: the creates' answers are out of order",
                        m.key, one.id, m.id
                    )),
                    Some([]) | None => {
                        problems.push(format!("{} not found by {matched} in upper case", m.key))
                    }
                    Some(many) => problems.push(format!("{} found {} times", m.key, many.len())),
                }
            }
            report.judge(
                "lookup",
                (!problems.is_empty()).then(|| {
                    format!(
                        "a lookup must find each record once by its {matched}, whatever its case: {}",
                        problems.join("; ")
                    )
                }),
                format!("each record once, by {matched} in upper case"),
            );
            if read == 0 {
                report.skip(
                    "read back as written",
                    "the lookup found none of the records",
                );
                return made_and_more(connector, mappings, run, made, report).await;
            }
            report.judge(
                "read back as written",
                (!unread.is_empty()).then(|| {
                    format!(
                        "a lookup must read back what was written, or the host updates every record it adopts: {}",
                        unread.join("; ")
                    )
                }),
                "every mapped attribute",
            );
        }
    }

    made_and_more(connector, mappings, run, made, report).await
}

/// The checks after the lookup, over the records made.
async fn made_and_more(
    connector: &Connector,
    mappings: &[CompiledMapping],
    run: &str,
    made: Vec<Made>,
    report: &mut Report,
) -> Vec<Made> {
    update(connector, mappings, run, &made, report).await;
    list(connector, &made, report).await;
    batch(connector, run, &made, report).await;
    made
}

/// An update carries only what changed, and a lookup reads it back.
async fn update(
    connector: &Connector,
    mappings: &[CompiledMapping],
    run: &str,
    made: &[Made],
    report: &mut Report,
) {
    const CHECK: &str = "update";
    if !connector.plugin().descriptor().has(Capability::Update) {
        report.skip(CHECK, "the connector declares no update capability");
        return;
    }
    let Some(first) = made.first() else {
        return;
    };
    // Every attribute changes but the one records are matched on.
    let changed: BTreeMap<String, String> = person(run, 0, "Conformance check")
        .into_iter()
        .map(|(name, value)| {
            let value = match name.as_str() {
                "email" => value,
                "phone" | "mobile_phone" => format!("{value}9"),
                _ => format!("{value} Updated"),
            };
            (name, value)
        })
        .collect();
    let desired = mapping::attributes(mappings, &changed, true);
    let written: BTreeMap<String, Value> = first
        .written
        .iter()
        .map(|a| (a.name.clone(), a.value.clone()))
        .collect();
    let changes = plan::diff_written(&desired, &written);
    if changes.is_empty() {
        report.skip(
            CHECK,
            "no default mapping that applies on update reads a standard attribute other than the match value, so there is nothing to change",
        );
        return;
    }
    let names: Vec<&str> = changes.iter().map(|a| a.name.as_str()).collect();
    let answer = connector
        .apply(vec![Operation::Update {
            id: first.id.clone(),
            attributes: changes.clone(),
        }])
        .await;
    let problem = match answer.as_deref() {
        Ok([Ok(_)]) => None,
        Ok([Err(error)]) => Some(format!("the update of {} failed: {error}", first.key)),
        Ok(other) => Some(format!("one update answered {} results", other.len())),
        Err(error) => Some(format!("the update of {} failed: {error}", first.key)),
    };
    if let Some(problem) = problem {
        report.fail(CHECK, problem);
        return;
    }
    let matched = &connector.plugin().descriptor().match_attribute;
    let problem = match find(connector, matched, std::slice::from_ref(&first.key)).await {
        Err(error) => Some(format!("looking the updated record up failed: {error}")),
        Ok(found) => match found.get(&first.key.to_lowercase()).map(Vec::as_slice) {
            Some([one]) => {
                let differ = plan::diff_against(&changes, &one.attributes, matched);
                (!differ.is_empty()).then(|| {
                    format!(
                        "after an update of {} a lookup reads other values for {}",
                        names.join(", "),
                        differ
                            .iter()
                            .map(|a| a.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                })
            }
            _ => Some(format!("{} is not found once after the update", first.key)),
        },
    };
    report.judge(
        CHECK,
        problem,
        format!("{} changed and read back", names.join(", ")),
    );
}

/// A listing pages through every record once.
async fn list(connector: &Connector, made: &[Made], report: &mut Report) {
    const CHECK: &str = "list";
    if !connector.plugin().descriptor().has(Capability::List) {
        report.skip(CHECK, "the connector declares no list capability");
        return;
    }
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut cursor = None;
    let mut pages = 0;
    loop {
        let page = match connector.list(cursor.take()).await {
            Ok(page) => page,
            Err(error) => {
                report.fail(CHECK, format!("page {} failed: {error}", pages + 1));
                return;
            }
        };
        pages += 1;
        for record in page.records {
            *seen.entry(record.id).or_default() += 1;
        }
        match page.next_cursor {
            Some(next) if pages < MAX_PAGES => cursor = Some(next),
            Some(_) => {
                report.skip(
                    CHECK,
                    format!("the store has more than {MAX_PAGES} pages; not read to the end"),
                );
                return;
            }
            None => break,
        }
    }
    let twice: Vec<&String> = seen
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(id, _)| id)
        .collect();
    let missing: Vec<&str> = made
        .iter()
        .filter(|m| !seen.contains_key(&m.id))
        .map(|m| m.id.as_str())
        .collect();
    let problem = if !twice.is_empty() {
        Some(format!(
            "the pages must cover every record once, but list {} more than once",
            twice
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))
    } else if !missing.is_empty() {
        Some(format!(
            "the pages must cover every record, but miss {}",
            missing.join(", ")
        ))
    } else {
        None
    };
    report.judge(
        CHECK,
        problem,
        format!("{} records on {pages} page(s), each once", seen.len()),
    );
}

/// A batch with one bad operation fails that one only, in its place.
async fn batch(connector: &Connector, run: &str, made: &[Made], report: &mut Report) {
    const CHECK: &str = "batch with a bad operation";
    let descriptor = connector.plugin().descriptor();
    if !descriptor.has(Capability::Update) {
        report.skip(CHECK, "the connector declares no update capability");
        return;
    }
    let [first, second, ..] = made else {
        report.skip(CHECK, "fewer than two records were created");
        return;
    };
    let touch = |m: &Made| Operation::Update {
        id: m.id.clone(),
        attributes: m
            .written
            .iter()
            .filter(|a| !a.name.eq_ignore_ascii_case(&descriptor.match_attribute))
            .take(1)
            .cloned()
            .collect(),
    };
    let missing = format!("provisioner-conform-{run}-missing");
    let operations = vec![
        touch(first),
        Operation::Update {
            id: missing.clone(),
            attributes: Vec::new(),
        },
        touch(second),
    ];
    let problem = match connector.apply(operations).await {
        Err(error) => Some(format!("the whole batch failed: {error}")),
        Ok(answers) => match answers.as_slice() {
            [
                Ok(a),
                Err(StoreError::NotFound(_) | StoreError::Rejected { .. }),
                Ok(c),
            ] if a.id == first.id && c.id == second.id => None,
            [_, _, _] => Some(format!(
                "an update of the unknown id {missing} between two good ones must fail alone, as not-found or rejected, with the good ones answered in place; the answers were: {}",
                answers
                    .iter()
                    .map(|a| match a {
                        Ok(outcome) => format!("ok {}", outcome.id),
                        Err(error) => error.to_string(),
                    })
                    .collect::<Vec<_>>()
                    .join("; ")
            )),
            other => Some(format!("3 operations answered {} results", other.len())),
        },
    };
    report.judge(CHECK, problem, "only the bad one failed, in its place");
}

/// Disable (if declared), delete, and what a deleted record answers; true
/// if the run's records are gone.
async fn remove(connector: &Connector, made: &[Made], report: &mut Report) -> bool {
    let descriptor = connector.plugin().descriptor();
    if made.is_empty() {
        return true;
    }
    if descriptor.has(Capability::Disable) {
        let answer = connector
            .apply(vec![Operation::Disable {
                id: made[0].id.clone(),
            }])
            .await;
        let problem = match answer.as_deref() {
            Ok([Ok(_)]) => None,
            Ok([Err(error)]) => Some(format!("disabling {} failed: {error}", made[0].key)),
            Ok(other) => Some(format!("one disable answered {} results", other.len())),
            Err(error) => Some(format!("disabling {} failed: {error}", made[0].key)),
        };
        report.judge("disable", problem, "the first record");
    } else {
        report.skip("disable", "the connector declares no disable capability");
    }
    if !descriptor.has(Capability::Delete) {
        report.skip(
            "delete",
            "the connector declares no delete capability; the run's records stay in the store",
        );
        return false;
    }
    let operations = made
        .iter()
        .map(|m| Operation::Delete { id: m.id.clone() })
        .collect();
    let problem = match connector.apply(operations).await {
        Err(error) => Some(format!("deleting the run's records failed: {error}")),
        Ok(answers) => {
            let failed: Vec<String> = made
                .iter()
                .zip(&answers)
                .filter_map(|(m, a)| a.as_ref().err().map(|e| format!("{}: {e}", m.key)))
                .collect();
            (!failed.is_empty() || answers.len() != made.len()).then(|| {
                format!(
                    "a delete of each record must succeed: {}",
                    if failed.is_empty() {
                        format!("{} answers for {} deletes", answers.len(), made.len())
                    } else {
                        failed.join("; ")
                    }
                )
            })
        }
    };
    let deleted = problem.is_none();
    report.judge("delete", problem, format!("{} records", made.len()));
    if !deleted {
        return false;
    }
    // In the case they were written in, so that a store that matches
    // case and all still has its chance to find them.
    let keys: Vec<String> = made.iter().map(|m| m.key.clone()).collect();
    let problem = match connector
        .lookup(&descriptor.match_attribute, keys.clone())
        .await
    {
        Err(error) => Some(format!("looking the deleted records up failed: {error}")),
        Ok(found) => {
            let still: Vec<&str> = keys
                .iter()
                .filter(|k| found.iter().any(|m| m.value.eq_ignore_ascii_case(k)))
                .map(String::as_str)
                .collect();
            (!still.is_empty()).then(|| {
                format!(
                    "a lookup must not find a deleted record, but finds {}",
                    still.join(", ")
                )
            })
        }
    };
    report.judge("lookup after delete", problem, "none found");
    if descriptor.has(Capability::Update) {
        let answer = connector
            .apply(vec![Operation::Update {
                id: made[0].id.clone(),
                attributes: made[0].written.iter().take(1).cloned().collect(),
            }])
            .await;
        let problem = match answer.as_deref() {
            Ok([Err(StoreError::NotFound(_))]) => None,
            Ok([Err(error)]) => Some(format!(
                "an update of a deleted record must fail as not-found, so that the host creates it again; it failed as {error}"
            )),
            Ok([Ok(_)]) => {
                Some("an update of a deleted record succeeded; it must fail as not-found".into())
            }
            Ok(other) => Some(format!("one update answered {} results", other.len())),
            Err(error) => Some(format!("the update failed as a whole: {error}")),
        };
        report.judge("update after delete", problem, "not-found");
    }
    true
}
