//! `provisioner plugins conform`: the contract's promises, checked against
//! a live store through a configured connection, so that an author knows
//! before shipping whether the host can rely on the connector.
//!
//! The checks go through the same [`Connector`] the sync engine calls, and
//! judge answers by the engine's own rules: a record must read back, in
//! every attribute the host keeps up to date, by the comparison the planner
//! makes ([`plan::diff_against`]), or every record the host adopts would be
//! updated again for nothing.
//!
//! It writes only records of its own: their match value is
//! `provisioner-conform-RUN-N@example.com`, from people it makes up, and it
//! writes nothing when the connector's default mappings do not carry that
//! tag into the match attribute. It touches only ids that its creates
//! answered, and at the end looks every tag up again: what it finds is
//! deleted unless asked to keep it, and whatever is still there is
//! reported. A check that cannot run (a capability the connector does not
//! declare, or an earlier step that failed) is skipped with the reason,
//! never passed.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::Serialize;

use crate::config::Connection;
use crate::mapping::{self, CompiledMapping};
use crate::runtime::contract::{
    Attribute, AuthScheme, Capability, Descriptor, Match, Operation, StoreError, Value,
};
use crate::runtime::{CallError, Connector};
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

/// A record this run created: its id, its tag, and which made-up person
/// it is.
struct Made {
    id: String,
    key: String,
    n: usize,
}

/// Builds the connection with made-up credentials pointed at a stand-in
/// host; `Ok(None)` when the store's host is not a setting.
pub type StandIn<'a> = &'a (dyn Fn(&str) -> Result<Option<Connector>, String> + Sync);

/// Runs every check through `connector`, the connection as configured.
/// `wrong` is the same connection holding made-up credentials, or why it
/// could not be built; `None` when the connection holds no credentials.
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
            "this connection holds no credentials to get wrong",
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

    match mappings {
        Some(mappings) => {
            let subject = Subject {
                connector,
                mappings: &mappings,
                matched: &descriptor.match_attribute,
                run: &run,
            };
            if let Some(made) = subject.records(&mut report).await {
                let removed = if options.keep {
                    report.skip(
                        "disable and delete",
                        "the records are kept for inspection (--keep)",
                    );
                    false
                } else {
                    subject.remove(&made, &mut report).await
                };
                report.left = subject.sweep(&made, !removed && !options.keep).await;
            }
        }
        None => report.skip(
            "records",
            "the default mappings do not compile, so no record can be made",
        ),
    }
    transient(stand_in, &mut report).await;
    report
}

/// A stand-in store on loopback that answers every request with `status`
/// and `Retry-After: retry_after`.
struct FailingStore {
    address: String,
    /// Requests answered, so that a check knows the stand-in was reached.
    requests: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

async fn failing_store(
    status: axum::http::StatusCode,
    retry_after: u64,
) -> std::io::Result<FailingStore> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?.to_string();
    let requests = Arc::new(AtomicUsize::new(0));
    let counter = requests.clone();
    let app = axum::Router::new().fallback(move || async move {
        counter.fetch_add(1, Ordering::SeqCst);
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
    Ok(FailingStore {
        address,
        requests,
        task,
    })
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
        let store = match failing_store(status, seconds).await {
            Ok(store) => store,
            Err(error) => {
                report.skip(
                    CHECK,
                    format!("no stand-in store could be started: {error}"),
                );
                return;
            }
        };
        let connector = match stand_in(&store.address) {
            Ok(Some(connector)) => connector,
            Ok(None) => {
                store.task.abort();
                report.skip(
                    CHECK,
                    "no egress template takes its whole host from a setting, so the store cannot be stood in for",
                );
                return;
            }
            Err(reason) => {
                store.task.abort();
                report.fail(
                    CHECK,
                    format!("the connection could not be pointed at a stand-in: {reason}"),
                );
                return;
            }
        };
        let answer = connector.test_connection().await;
        store.task.abort();
        let code = status.as_u16();
        // A call that broke (a trap, a deadline) fails whether or not it
        // got as far as the stand-in.
        if let Err(error) = &answer
            && error.store_error().is_none()
        {
            report.fail(
                CHECK,
                format!(
                    "HTTP {code} with Retry-After: {seconds} must read as transient, not {error}"
                ),
            );
            return;
        }
        if store.requests.load(Ordering::SeqCst) == 0 {
            report.skip(
                CHECK,
                "the connector's test never reached the stand-in store: its request goes to a host that is not the setting moved there",
            );
            return;
        }
        let wanted = std::time::Duration::from_secs(seconds);
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
    report.judge(
        "describe: capabilities",
        lookup,
        descriptor.capability_list(),
    );
    let mappings = match mapping::defaults(descriptor) {
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
fn person(run: &str, n: usize) -> BTreeMap<String, String> {
    [
        ("given_name", "Conform".to_string()),
        ("family_name", format!("Check{n} {run}")),
        ("display_name", format!("Conform Check{n}")),
        ("email", key(run, n)),
        ("phone", format!("+1555010{n}")),
        ("mobile_phone", format!("+1555020{n}")),
        ("title", "Conformance check".into()),
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

/// The same person with every attribute changed but the one records are
/// matched on.
fn changed(run: &str, n: usize) -> BTreeMap<String, String> {
    person(run, n)
        .into_iter()
        .map(|(name, value)| {
            let value = match name.as_str() {
                "email" => value,
                "phone" | "mobile_phone" => format!("{value}9"),
                _ => format!("{value} Updated"),
            };
            (name, value)
        })
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

fn answers(answers: &[Result<crate::runtime::contract::Outcome, StoreError>]) -> String {
    answers
        .iter()
        .map(|a| match a {
            Ok(outcome) => format!("ok {}", outcome.id),
            Err(error) => error.to_string(),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// One answer to one operation, or what was wrong with it.
fn single(
    answer: Result<Vec<Result<crate::runtime::contract::Outcome, StoreError>>, CallError>,
) -> Result<Result<String, StoreError>, String> {
    match answer {
        Err(error) => Err(format!("the call failed as a whole: {error}")),
        Ok(mut answers) if answers.len() == 1 => Ok(answers.remove(0).map(|o| o.id)),
        Ok(answers) => Err(format!("one operation answered {} results", answers.len())),
    }
}

/// The connector under test, with what every check needs.
struct Subject<'a> {
    connector: &'a Connector,
    mappings: &'a [CompiledMapping],
    matched: &'a str,
    run: &'a str,
}

impl Subject<'_> {
    fn case_rules(&self) -> plan::CaseRules<'_> {
        plan::CaseRules {
            match_attribute: self.matched,
            mappings: self.mappings,
        }
    }

    fn has(&self, capability: Capability) -> bool {
        self.connector.plugin().descriptor().has(capability)
    }

    /// What the host keeps up to date on a person's record: the mappings
    /// that apply on update.
    fn kept(&self, attributes: &BTreeMap<String, String>) -> Vec<Attribute> {
        mapping::attributes(self.mappings, attributes, true)
    }

    /// One attribute to update a record with: not the match attribute,
    /// and one whose changed value differs from the first, so that writing
    /// either changes the record (a mapping may write the match value
    /// twice, as SCIM's userName and work email).
    fn touch(&self, n: usize) -> Vec<Attribute> {
        let original = self.kept(&person(self.run, n));
        self.kept(&changed(self.run, n))
            .into_iter()
            .filter(|a| !a.name.eq_ignore_ascii_case(self.matched) && a.value != Value::Null)
            .filter(|a| !original.contains(a))
            .take(1)
            .collect()
    }

    /// Looks records up by their tags, in upper case or as written; the
    /// matches by tag in lower case.
    async fn find(
        &self,
        keys: &[String],
        upper: bool,
    ) -> Result<BTreeMap<String, Vec<Match>>, CallError> {
        let values = keys
            .iter()
            .map(|k| if upper { k.to_uppercase() } else { k.clone() })
            .collect();
        let found = self.connector.lookup(self.matched, values).await?;
        let mut by_key: BTreeMap<String, Vec<Match>> = BTreeMap::new();
        for m in found {
            by_key.entry(m.value.to_lowercase()).or_default().push(m);
        }
        Ok(by_key)
    }

    /// Create, lookup, read-back, update, list and a batch with a bad
    /// operation. Returns what the creates answered, or `None` when
    /// nothing was written.
    async fn records(&self, report: &mut Report) -> Option<Vec<Made>> {
        if !self.has(Capability::Create) {
            report.skip("create", "the connector declares no create capability");
            return None;
        }
        if !self.has(Capability::Lookup) {
            report.skip(
                "create",
                "without a lookup capability nothing written could be checked or found again, so nothing is written",
            );
            return None;
        }
        let tag = format!("provisioner-conform-{}-", self.run);
        let mut wanted = Vec::new();
        for n in 0..PEOPLE {
            let attributes = mapping::attributes(self.mappings, &person(self.run, n), false);
            match match_value(&attributes, self.matched) {
                Some(key) if key.contains(&tag) => wanted.push((n, key, attributes)),
                _ => {
                    report.skip(
                        "create",
                        format!(
                            "the default mappings do not carry a made-up email into {}, so the kit cannot tag what it writes as its own, and writes nothing",
                            self.matched
                        ),
                    );
                    return None;
                }
            }
        }
        let operations = wanted
            .iter()
            .map(|(_, _, attributes)| Operation::Create {
                attributes: attributes.clone(),
            })
            .collect();
        let mut made = Vec::new();
        let mut problems = Vec::new();
        match self.connector.apply(operations).await {
            Err(error) => problems.push(format!("the batch failed as a whole: {error}")),
            Ok(answers) => {
                for ((n, key, _), answer) in wanted.into_iter().zip(answers) {
                    match answer {
                        Ok(outcome) if !outcome.id.is_empty() => made.push(Made {
                            id: outcome.id,
                            key,
                            n,
                        }),
                        Ok(_) => problems.push(format!("{key}: created without an id")),
                        Err(error) => problems.push(format!("{key}: {error}")),
                    }
                }
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
        let confirmed = self.lookup(&made, report).await;
        self.update(&confirmed, report).await;
        self.versions(&confirmed, report).await;
        self.list(&made, report).await;
        self.batch(&confirmed, report).await;
        Some(made)
    }

    /// Each record is found once by its tag in upper case, and reads back
    /// as written; the records confirmed so, which later checks may touch.
    async fn lookup<'m>(&self, made: &'m [Made], report: &mut Report) -> Vec<&'m Made> {
        if made.is_empty() {
            report.skip("lookup", "no record was created");
            report.skip("read back as written", "no record was created");
            return Vec::new();
        }
        let keys: Vec<String> = made.iter().map(|m| m.key.clone()).collect();
        let found = match self.find(&keys, true).await {
            Ok(found) => found,
            Err(error) => {
                report.fail(
                    "lookup",
                    format!("looking the new records up failed: {error}"),
                );
                report.skip("read back as written", "the lookup failed");
                return Vec::new();
            }
        };
        let matched = self.matched;
        let mut confirmed = Vec::new();
        let mut problems = Vec::new();
        let mut unread = Vec::new();
        let mut compared = 0;
        for m in made {
            match found.get(&m.key.to_lowercase()).map(Vec::as_slice) {
                Some([one]) if one.id == m.id => {
                    confirmed.push(m);
                    let kept = self.kept(&person(self.run, m.n));
                    compared = kept
                        .iter()
                        .filter(|a| !a.name.eq_ignore_ascii_case(matched) && a.value != Value::Null)
                        .count();
                    let differ = plan::diff_against(&kept, &one.attributes, self.case_rules());
                    if !differ.is_empty() {
                        unread.push(format!(
                            "{}: {}",
                            m.key,
                            read_back(&differ, &one.attributes)
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
        if confirmed.is_empty() {
            report.skip(
                "read back as written",
                "the lookup found none of the records",
            );
        } else if compared == 0 {
            report.skip(
                "read back as written",
                format!("the default mappings kept up to date write nothing but {matched} for a made-up person"),
            );
        } else {
            report.judge(
                "read back as written",
                (!unread.is_empty()).then(|| {
                    format!(
                        "a lookup must read back what the host keeps up to date, or the host updates every record it adopts: {}",
                        unread.join("; ")
                    )
                }),
                format!("{compared} mapped attributes besides {matched}"),
            );
        }
        confirmed
    }

    /// The record an update check writes to, or the reason it is skipped.
    fn to_update<'m>(
        &self,
        confirmed: &[&'m Made],
        check: &'static str,
        report: &mut Report,
    ) -> Option<&'m Made> {
        if !self.has(Capability::Update) {
            report.skip(check, "the connector declares no update capability");
            return None;
        }
        let first = confirmed.first().copied();
        if first.is_none() {
            report.skip(check, "no record was created and found again");
        }
        first
    }

    /// An update carries only what changed, and a lookup reads it back.
    async fn update(&self, confirmed: &[&Made], report: &mut Report) {
        const CHECK: &str = "update";
        let Some(first) = self.to_update(confirmed, CHECK, report) else {
            return;
        };
        let written: BTreeMap<String, Value> = self
            .kept(&person(self.run, first.n))
            .into_iter()
            .map(|a| (a.name, a.value))
            .collect();
        let changes = plan::diff_written(&self.kept(&changed(self.run, first.n)), &written);
        if changes.is_empty() {
            report.skip(
                CHECK,
                "no default mapping kept up to date reads a standard attribute other than the match value, so there is nothing to change",
            );
            return;
        }
        let names: Vec<&str> = changes.iter().map(|a| a.name.as_str()).collect();
        let answer = self
            .connector
            .apply(vec![Operation::Update {
                id: first.id.clone(),
                attributes: changes.clone(),
                version: None,
            }])
            .await;
        match single(answer) {
            Ok(Ok(_)) => {}
            Ok(Err(error)) => {
                report.fail(
                    CHECK,
                    format!("the update of {} failed: {error}", first.key),
                );
                return;
            }
            Err(problem) => {
                report.fail(CHECK, format!("the update of {}: {problem}", first.key));
                return;
            }
        }
        let problem = match self.find(std::slice::from_ref(&first.key), false).await {
            Err(error) => Some(format!("looking the updated record up failed: {error}")),
            Ok(found) => match found.get(&first.key.to_lowercase()).map(Vec::as_slice) {
                Some([one]) => {
                    let differ = plan::diff_against(&changes, &one.attributes, self.case_rules());
                    (!differ.is_empty()).then(|| {
                        format!(
                            "after an update of {}, a lookup reads {}",
                            names.join(", "),
                            read_back(&differ, &one.attributes)
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

    /// A version that a lookup reads guards an update (contract 0.2): the
    /// update at it succeeds, and the same version again is a `conflict`,
    /// or the host would overwrite changes made since it read the record.
    async fn versions(&self, confirmed: &[&Made], report: &mut Report) {
        const CHECK: &str = "versions";
        let Some(first) = self.to_update(confirmed, CHECK, report) else {
            return;
        };
        // The update check wrote the changed values; this one writes the
        // first ones back, so that the write changes the record and a store
        // whose versions hash the content still moves to a new one.
        let original = self.kept(&person(self.run, first.n));
        let touch: Vec<Attribute> = self
            .touch(first.n)
            .iter()
            .filter_map(|t| original.iter().find(|o| o.name == t.name).cloned())
            .collect();
        if touch.is_empty() {
            report.skip(CHECK, "there is no update to send");
            return;
        }
        let version = match self.find(std::slice::from_ref(&first.key), false).await {
            Err(error) => {
                report.fail(CHECK, format!("looking {} up failed: {error}", first.key));
                return;
            }
            Ok(found) => match found.get(&first.key.to_lowercase()).map(Vec::as_slice) {
                Some([one]) => one.version.clone(),
                _ => {
                    report.fail(CHECK, format!("{} is not found once", first.key));
                    return;
                }
            },
        };
        let Some(version) = version else {
            report.skip(CHECK, "the store reports no record versions");
            return;
        };
        let update = || {
            vec![Operation::Update {
                id: first.id.clone(),
                attributes: touch.clone(),
                version: Some(version.clone()),
            }]
        };
        let problem = match single(self.connector.apply(update()).await) {
            Ok(Ok(_)) => match single(self.connector.apply(update()).await) {
                Ok(Err(StoreError::Conflict(_))) => None,
                Ok(Err(error)) => Some(format!(
                    "an update at a version already written over must fail as conflict; it failed as {error}"
                )),
                Ok(Ok(_)) => Some(
                    "an update at a version already written over succeeded; it must fail as conflict, or the host overwrites changes made since it read the record"
                        .into(),
                ),
                Err(problem) => Some(problem),
            },
            Ok(Err(error)) => Some(format!(
                "an update at the version a lookup read ({version}) must succeed; it failed: {error}"
            )),
            Err(problem) => Some(problem),
        };
        report.judge(
            CHECK,
            problem,
            "an update at the version read succeeds; at a stale one, conflict",
        );
    }

    /// A listing pages through every record once.
    async fn list(&self, made: &[Made], report: &mut Report) {
        const CHECK: &str = "list";
        if !self.has(Capability::List) {
            report.skip(CHECK, "the connector declares no list capability");
            return;
        }
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        let mut cursor = None;
        let mut pages = 0;
        loop {
            let page = match self.connector.list(cursor.take()).await {
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
    async fn batch(&self, confirmed: &[&Made], report: &mut Report) {
        const CHECK: &str = "batch with a bad operation";
        if !self.has(Capability::Update) {
            report.skip(CHECK, "the connector declares no update capability");
            return;
        }
        let [first, second, ..] = confirmed else {
            report.skip(CHECK, "fewer than two records were created and found again");
            return;
        };
        let touch = self.touch(first.n);
        if touch.is_empty() {
            report.skip(
                CHECK,
                "no default mapping kept up to date has a value to update",
            );
            return;
        }
        let update = |id: &str| Operation::Update {
            id: id.to_string(),
            attributes: touch.clone(),
            version: None,
        };
        let missing = format!("provisioner-conform-{}-missing", self.run);
        let operations = vec![update(&first.id), update(&missing), update(&second.id)];
        let problem = match self.connector.apply(operations).await {
            Err(error) => Some(format!("the whole batch failed: {error}")),
            Ok(answered) => match answered.as_slice() {
                [
                    Ok(a),
                    Err(StoreError::NotFound(_) | StoreError::Rejected { .. }),
                    Ok(c),
                ] if a.id == first.id && c.id == second.id => None,
                [_, _, _] => Some(format!(
                    "an update of the unknown id {missing} between two good ones must fail alone, as not-found or rejected, with the good ones answered in place; the answers were: {}",
                    answers(&answered)
                )),
                other => Some(format!("3 operations answered {} results", other.len())),
            },
        };
        report.judge(CHECK, problem, "only the bad one failed, in its place");
    }

    /// Disable (if declared), delete, and what a deleted record answers;
    /// true if every delete succeeded.
    async fn remove(&self, made: &[Made], report: &mut Report) -> bool {
        let Some(first) = made.first() else {
            return true;
        };
        self.disable_and_enable(first, report).await;
        const AFTER: [&str; 2] = ["lookup after delete", "update after delete"];
        if !self.has(Capability::Delete) {
            report.skip(
                "delete",
                "the connector declares no delete capability; the run's records stay in the store",
            );
            for check in AFTER {
                report.skip(check, "nothing was deleted");
            }
            return false;
        }
        let operations = made
            .iter()
            .map(|m| Operation::Delete { id: m.id.clone() })
            .collect();
        let problem = match self.connector.apply(operations).await {
            Err(error) => Some(format!("deleting the run's records failed: {error}")),
            Ok(answered) => {
                let failed: Vec<String> = made
                    .iter()
                    .zip(&answered)
                    .filter_map(|(m, a)| a.as_ref().err().map(|e| format!("{}: {e}", m.key)))
                    .collect();
                (!failed.is_empty()).then(|| {
                    format!(
                        "a delete of each record must succeed: {}",
                        failed.join("; ")
                    )
                })
            }
        };
        if let Some(problem) = problem {
            report.fail("delete", problem);
            for check in AFTER {
                report.skip(check, "the delete failed");
            }
            return false;
        }
        report.pass("delete", format!("{} records", made.len()));

        self.after_delete(made, first, report).await;
        true
    }

    /// A deleted record must not be found, and an update of it must fail
    /// as not-found, so that the host creates it again.
    async fn after_delete(&self, made: &[Made], first: &Made, report: &mut Report) {
        // In the case they were written in, so that a store that matches
        // case and all still has its chance to find them.
        let keys: Vec<String> = made.iter().map(|m| m.key.clone()).collect();
        let problem = match self.find(&keys, false).await {
            Err(error) => Some(format!("looking the deleted records up failed: {error}")),
            Ok(found) => {
                let still: Vec<&str> = keys
                    .iter()
                    .filter(|k| found.get(&k.to_lowercase()).is_some_and(|m| !m.is_empty()))
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
        let touch = self.touch(first.n);
        if !self.has(Capability::Update) || touch.is_empty() {
            report.skip("update after delete", "there is no update to send");
            return;
        }
        let answer = self
            .connector
            .apply(vec![Operation::Update {
                id: first.id.clone(),
                attributes: touch,
                version: None,
            }])
            .await;
        let problem = match single(answer) {
            Ok(Err(StoreError::NotFound(_))) => None,
            Ok(Err(error)) => Some(format!(
                "an update of a deleted record must fail as not-found, so that the host creates it again; it failed as {error}"
            )),
            Ok(Ok(_)) => {
                Some("an update of a deleted record succeeded; it must fail as not-found".into())
            }
            Err(problem) => Some(problem),
        };
        report.judge("update after delete", problem, "not-found");
    }

    /// Disable, and enable the disabled record again, where declared.
    async fn disable_and_enable(&self, first: &Made, report: &mut Report) {
        if self.has(Capability::Disable) {
            let problem = match single(
                self.connector
                    .apply(vec![Operation::Disable {
                        id: first.id.clone(),
                    }])
                    .await,
            ) {
                Ok(Ok(_)) => None,
                Ok(Err(error)) => Some(format!("disabling {} failed: {error}", first.key)),
                Err(problem) => Some(format!("disabling {}: {problem}", first.key)),
            };
            let disabled = problem.is_none();
            report.judge("disable", problem, "the first record");
            if !self.has(Capability::Enable) {
                report.skip("enable", "the connector declares no enable capability");
            } else if !disabled {
                report.skip("enable", "the disable failed");
            } else {
                let answer = self
                    .connector
                    .apply(vec![Operation::Enable {
                        id: first.id.clone(),
                        attributes: Vec::new(),
                        version: None,
                    }])
                    .await;
                let problem = match single(answer) {
                    Ok(Ok(_)) => None,
                    Ok(Err(error)) => Some(format!(
                        "enabling the disabled {} failed: {error}",
                        first.key
                    )),
                    Err(problem) => Some(format!("enabling {}: {problem}", first.key)),
                };
                report.judge("enable", problem, "the record disabled above");
            }
        } else {
            report.skip("disable", "the connector declares no disable capability");
            report.skip("enable", "nothing was disabled");
        }
    }

    /// Looks every tag of the run up once more: whatever is found is
    /// deleted when `clean` (a delete failed, or an update wrote a record
    /// back), and whatever is still there is what the run left in the
    /// store.
    async fn sweep(&self, made: &[Made], clean: bool) -> Vec<String> {
        let keys: Vec<String> = (0..PEOPLE).map(|n| key(self.run, n)).collect();
        let found = |found: BTreeMap<String, Vec<Match>>| -> Vec<String> {
            keys.iter()
                .filter_map(|k| found.get(&k.to_lowercase()))
                .flatten()
                .map(|m| m.id.clone())
                .collect()
        };
        let Ok(there) = self.find(&keys, false).await.map(found) else {
            // Nothing can be confirmed: say what was created.
            return made.iter().map(|m| m.id.clone()).collect();
        };
        if there.is_empty() || !clean || !self.has(Capability::Delete) {
            return there;
        }
        let operations = there
            .iter()
            .map(|id| Operation::Delete { id: id.clone() })
            .collect();
        if let Err(error) = self.connector.apply(operations).await {
            tracing::warn!(%error, "the conformance kit could not delete its records");
        }
        self.find(&keys, false).await.map(found).unwrap_or(there)
    }
}

/// Which attributes differ from what a lookup read, and what it read.
fn read_back(differ: &[Attribute], read: &[Attribute]) -> String {
    differ
        .iter()
        .map(|a| {
            let got = read
                .iter()
                .find(|r| r.name.eq_ignore_ascii_case(&a.name))
                .map(|r| format!("{:?}", r.value))
                .unwrap_or_else(|| "nothing".into());
            format!("{} written {:?}, read {got}", a.name, a.value)
        })
        .collect::<Vec<_>>()
        .join(", ")
}
