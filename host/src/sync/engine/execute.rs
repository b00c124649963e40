//! Sending: work goes out by connection, in batches, each journalled
//! before it is sent and recorded after its answers.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::binding::Bound;
use super::report::{Action, Answer, PlanLine};
use super::slices::runs_of;
use super::work::{Outcomes, Work, WorkKind, written_of};
use super::{Engine, EngineError};
use crate::config::RemoveAction;
use crate::runtime::CallError;
use crate::runtime::contract::{Operation, StoreError};
use crate::sync::backoff;
use crate::sync::links::{Link, LinkError, LinkState, remember};

/// Operations answered and planned so far in a pass, for progress.
#[derive(Default)]
pub(super) struct Tally {
    done: std::sync::atomic::AtomicUsize,
    planned: std::sync::atomic::AtomicUsize,
}

impl Engine {
    /// Records a failure on a link, with when to try again.
    pub(super) fn fail_link(&self, link: &mut Link, error: &StoreError, person_seq: Option<i64>) {
        link.state = LinkState::Failed;
        link.error = Some(LinkError::from_store(error));
        link.person_seq = person_seq;
        link.attempts = link.attempts.saturating_add(1);
        if matches!(error, StoreError::Transient { .. }) {
            crate::telemetry::retry(&link.connection);
        }
        link.next_retry = match error {
            StoreError::Transient { retry_after, .. } => Some(backoff::retry_at(
                self.clock.now_ms(),
                link.attempts,
                self.settings.retry_base,
                self.settings.retry_max,
                *retry_after,
                self.clock.jitter(),
            )),
            _ => None,
        };
    }

    /// Sends the work, by connection and in batches, and records answers.
    pub(super) async fn execute(
        &self,
        work: Vec<Work>,
        tally: &Tally,
    ) -> Result<Vec<Answer>, EngineError> {
        if work.is_empty() {
            return Ok(Vec::new());
        }
        let mut by_connection: BTreeMap<String, Vec<Work>> = BTreeMap::new();
        for item in work {
            by_connection
                .entry(item.connection.clone())
                .or_default()
                .push(item);
        }
        crate::telemetry::queue_depth(by_connection.values().map(Vec::len).sum());
        let mut batches = Vec::new();
        let mut connections = Vec::new();
        for (connection, items) in by_connection {
            let bound = match self.bind(&connection).await {
                Ok(bound) => bound,
                Err(reason) => {
                    tracing::warn!(connection, %reason, "cannot send to this connection");
                    continue;
                }
            };
            connections.push(bound.clone());
            for chunk in runs_of(items, self.settings.batch_size) {
                batches.push((bound.clone(), chunk));
            }
        }
        let planned: usize = batches.iter().map(|(_, chunk)| chunk.len()).sum();
        let total = tally.planned.fetch_add(planned, Ordering::SeqCst) + planned;
        let done = &tally.done;
        let progress = self
            .progress
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let results = futures_util::future::join_all(batches.into_iter().map(|(bound, chunk)| {
            let size = chunk.len();
            let progress = progress.clone();
            async move {
                let result = self.send_batch(bound, chunk).await;
                let now = done.fetch_add(size, Ordering::SeqCst) + size;
                if let Some(progress) = progress {
                    progress(now, total);
                }
                result
            }
        }))
        .await;
        // The allowance the connectors last reported, kept once per call
        // rather than once per batch: status reads the latest.
        for bound in connections {
            if let Some((used, max)) = bound.connection.target.api_usage() {
                let name = &bound.connection.name;
                self.db.record_usage(name, used, max).await?;
            }
        }
        let mut answers = Vec::with_capacity(planned);
        for result in results {
            answers.extend(result?);
        }
        Ok(answers)
    }

    /// One batch: journal, send, record.
    async fn send_batch(
        &self,
        bound: Arc<Bound>,
        chunk: Vec<Work>,
    ) -> Result<Vec<Answer>, EngineError> {
        let _permit = bound.gate.acquire().await;
        if self.stopping() {
            return Ok(Vec::new());
        }
        let links = &*self.db;
        let connection = bound.connection.name.clone();
        if let Some(reason) = links.quarantined(&connection).await? {
            tracing::warn!(connection, %reason, "quarantined; batch not sent");
            return Ok(Vec::new());
        }
        let ids = links
            .journal_open(&chunk.iter().map(Work::journal).collect::<Vec<_>>())
            .await?;
        let operations: Vec<Operation> = chunk.iter().map(Work::operation).collect();
        let answers: Vec<Result<String, StoreError>> =
            match bound.connection.target.apply(operations).await {
                Ok(answers) => answers.into_iter().map(|a| a.map(|o| o.id)).collect(),
                Err(error) => {
                    let error = call_error(&error);
                    vec![Err(error); chunk.len()]
                }
            };
        crate::telemetry::queue_done(ids.len());
        if let Some((used, max)) = bound.connection.target.api_usage() {
            crate::telemetry::api_usage(&connection, used, max);
        }
        let mut outcomes = Outcomes::default();
        let mut counts = Vec::new();
        for ((item, id), answer) in chunk.into_iter().zip(ids).zip(answers) {
            let rule = item.rule.clone();
            match answer {
                Ok(target) => {
                    outcomes.journal.push((id, Ok(Some(target.clone()))));
                    counts.push((rule, self.succeed(item, target, &mut outcomes), None));
                }
                Err(error) => {
                    outcomes.journal.push((id, Err(error.to_string())));
                    let line = PlanLine {
                        person: item.person_id.clone(),
                        action: format!("{} failed", item.action()),
                        detail: error.to_string(),
                    };
                    counts.push((rule, self.failed(item, &error, &mut outcomes), Some(line)));
                }
            }
        }
        if let Some((connection, reason)) = &outcomes.quarantine {
            links.quarantine(connection, reason).await?;
        }
        links
            .commit(&outcomes.save, &outcomes.drop, &outcomes.journal)
            .await?;
        Ok(counts)
    }

    /// What an answered operation makes of its link.
    fn succeed(&self, item: Work, target: String, outcomes: &mut Outcomes) -> Action {
        let mut link = item.base;
        link.error = None;
        link.reason = None;
        link.attempts = 0;
        link.next_retry = None;
        link.person_seq = item.person_seq;
        match item.kind {
            WorkKind::Create(attributes) => {
                link.target_id = Some(target);
                link.written = written_of(&attributes);
                link.state = LinkState::Synced;
                outcomes.save.push(link);
                Action::Created
            }
            WorkKind::Update {
                changes, written, ..
            } => {
                match written {
                    Some(written) => link.written = written,
                    None => remember(&mut link.written, &changes),
                }
                link.state = LinkState::Synced;
                outcomes.save.push(link);
                Action::Updated
            }
            WorkKind::Remove {
                action: RemoveAction::Delete,
                ..
            } => {
                outcomes.drop.push((link.rule, link.person_id));
                Action::Removed
            }
            WorkKind::Remove {
                action: RemoveAction::Disable,
                ..
            } => {
                link.state = LinkState::Disabled;
                outcomes.save.push(link);
                Action::Disabled
            }
            WorkKind::Convert {
                from, attributes, ..
            } => {
                link.target_id = Some(target);
                link.written = written_of(&attributes);
                link.state = LinkState::Synced;
                outcomes.save.push(link);
                outcomes.drop.push((from.rule, from.person_id));
                Action::Converted
            }
        }
    }

    /// What a failed operation makes of its link.
    fn failed(&self, item: Work, error: &StoreError, outcomes: &mut Outcomes) -> Action {
        let mut link = item.base.clone();
        match (&item.kind, error) {
            // Already gone: a removal is done.
            (WorkKind::Remove { .. }, StoreError::NotFound(_)) => {
                outcomes.drop.push((link.rule, link.person_id));
                return Action::Removed;
            }
            // The record vanished from the store: forget it, and the next
            // pass looks the person up and creates them again.
            (WorkKind::Update { .. }, StoreError::NotFound(message)) => {
                link.target_id = None;
                link.written.clear();
                link.state = LinkState::Failed;
                link.error = Some(LinkError::from_store(error));
                link.next_retry = None;
                link.reason = Some(format!(
                    "the record is gone from the store ({message}); it will be looked up and created again"
                ));
                outcomes.save.push(link);
                return Action::Failed;
            }
            (WorkKind::Convert { from, .. }, StoreError::NotFound(_)) => {
                outcomes
                    .drop
                    .push((from.rule.clone(), from.person_id.clone()));
                return Action::Failed;
            }
            (_, StoreError::Unauthorized(message)) => {
                outcomes.quarantine = Some((item.connection.clone(), message.clone()));
            }
            _ => {}
        }
        self.fail_link(&mut link, error, item.person_seq);
        // The record is still disabled in the store: the link must keep
        // saying so, or the next pass would find nothing to change and
        // call the person synced.
        if item.base.state == LinkState::Disabled && matches!(item.kind, WorkKind::Update { .. }) {
            link.state = LinkState::Disabled;
        }
        outcomes.save.push(link);
        Action::Failed
    }
}

/// A sandbox failure counts as transient for every operation of the call:
/// the plugin may do better next time, and the host keeps going.
pub(super) fn call_error(error: &CallError) -> StoreError {
    match error {
        CallError::Store { error, .. } => error.clone(),
        other => StoreError::Transient {
            message: other.to_string(),
            retry_after: None,
        },
    }
}
