//! The respond stage's processor: each decision's actions, executed effectively once.
//!
//! Per action: ledger check (a known action id is a duplicate and is dropped) → blast-radius
//! guard → intent record (`started`, acknowledged by the broker before the call) → connector
//! call with retries → result record (handed to the worker, which has every record of the batch
//! acknowledged before it commits the batch's offsets). Delayed and conditional actions are
//! recorded as `scheduled` (with their decision), armed in memory, and checked and executed when
//! due — also when already due on arrival — and a restart re-arms them from the ledger: their
//! conditions are checked on one path.
//!
//! A crash between the intent and the result leaves a `started` record. On recovery the action
//! is reconciled, not blindly repeated: the connector checks the vendor where a repeat would be
//! visible (a password reset: the user's status and its change time; a Slack post: the channel
//! history, by the action id in the message metadata). Idempotent actions (sessions, suspend
//! after a status read, group membership, PagerDuty with its dedup key) are simply executed
//! again. Where the vendor cannot be asked (a Slack incoming webhook) the post is repeated,
//! marked as a possible repeat: a duplicate alert is better than a lost one.
//!
//! The same lookup runs before any retry of a call whose answer was lost after it was sent
//! (timeout, connection cut, 5xx: [`Failure::MaybeApplied`]). Retries are bounded by time
//! (`retry_budget_secs`), and a vendor's rate-limit wait is never shorter than a floor.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context as _};
use backon::{BackoffBuilder as _, ExponentialBuilder};
use chrono::{DateTime, Utc};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::{json, Value};
use tracing::{debug, error, info, warn};

use super::conditions;
use super::guard::{BlastGuard, Verdict};
use crate::config::{RespondConfig, Topics};
use crate::connector::http;
use crate::connector::{
    ActionRequest, Connectors, Executed, Failure, IncidentStatus, Outcome, Reconciled,
};
use crate::decision::{Action, ActionKind, Condition, Decision};
use crate::kafka::reader::PartitionReader;
use crate::kafka::record::{
    dlq_record, OutRecord, DLQ_ERROR, DLQ_REASON, DLQ_STAGE, SOURCE_PARTITION, SOURCE_TOPIC,
};
use crate::kafka::Processor;
use crate::ledger::{LedgerEntry, LedgerView, LedgerViews, Status};
use crate::overrides::{OverrideTable, Scope};

/// Ledger writes are retried this many times before the stage stops (nothing is committed
/// then, so the decision is handled again after a restart).
const LEDGER_WRITE_ATTEMPTS: u32 = 8;

/// What the respond stage did.
#[derive(Debug, Default, Clone)]
pub struct RespondCounters {
    /// Decisions read.
    pub decisions: u64,
    /// Actions dropped because the ledger already had them.
    pub duplicates: u64,
    /// Final outcomes, per status.
    pub outcomes: BTreeMap<&'static str, u64>,
    /// Records sent to the DLQ (unreadable decisions, failed actions).
    pub dead_lettered: u64,
    /// Interrupted actions reconciled after a restart.
    pub reconciled: u64,
}

/// The respond stage's shared parts.
pub struct RespondParts {
    /// Runs the connectors' futures.
    pub runtime: tokio::runtime::Handle,
    /// Vendor clients.
    pub connectors: Arc<Connectors>,
    /// Writes the ledger (idempotent, acks=all).
    pub producer: FutureProducer,
    /// Reads ledger partitions (rebuild) and events (activity checks).
    pub reader: PartitionReader,
    /// Overrides in force.
    pub overrides: OverrideTable,
    /// Set on shutdown: retries stop, unfinished calls stay `started` for reconciliation.
    pub shutdown: Arc<AtomicBool>,
    /// Partitions of the events topic (for the activity check).
    pub event_partitions: usize,
    /// Partitions of the decisions topic.
    pub decision_partitions: usize,
    /// DLQ payloads keep at most this many bytes.
    pub dlq_max_payload_bytes: usize,
    /// The ledger views of the partitions this instance owns (shared with the HTTP API).
    pub ledger: LedgerViews,
}

/// One loaded decisions partition's armed delayed actions (its ledger view is in
/// [`RespondParts::ledger`]).
#[derive(Default)]
struct PartitionState {
    /// (due time, action id) of scheduled actions.
    due: BTreeSet<(DateTime<Utc>, String)>,
}

/// The respond processor (see the module documentation).
pub struct LiveRespond {
    parts: RespondParts,
    topics: Topics,
    config: RespondConfig,
    guard: BlastGuard,
    partitions: HashMap<i32, PartitionState>,
    to_load: BTreeSet<i32>,
    /// Ledger records for the worker to deliver with the batch.
    unsent: Vec<OutRecord>,
    counters: RespondCounters,
    /// When the gauges were last set (reading the overrides table copies it: not every poll).
    gauges_at: Option<Instant>,
}

/// How often the pending, circuit and overrides gauges are refreshed.
const GAUGE_INTERVAL: Duration = Duration::from_secs(1);

impl LiveRespond {
    /// A processor with `parts`, for `topics`, configured by `config`.
    pub fn new(parts: RespondParts, topics: Topics, config: RespondConfig) -> Self {
        let guard = BlastGuard::new(
            &config.protected_users,
            config.max_destructive_per_minute,
            Duration::from_secs(config.circuit_open_secs),
        );
        LiveRespond {
            parts,
            topics,
            config,
            guard,
            partitions: HashMap::new(),
            to_load: BTreeSet::new(),
            unsent: Vec::new(),
            counters: RespondCounters::default(),
            gauges_at: None,
        }
    }

    /// What it did so far.
    pub fn counters(&self) -> &RespondCounters {
        &self.counters
    }

    /// Load partition `p`'s ledger (once): the actions known, the delayed ones to arm, the
    /// interrupted ones to reconcile.
    fn ensure_partition(&mut self, p: i32, out: &mut Vec<OutRecord>) -> anyhow::Result<()> {
        if self.partitions.contains_key(&p) {
            return Ok(());
        }
        let started = Instant::now();
        let oldest = Utc::now() - chrono::Duration::seconds(self.config.dedup_window_secs as i64);
        let mut state = PartitionState::default();
        let mut view = LedgerView::default();
        let mut unreadable = 0u64;
        self.parts
            .reader
            .read_all(&self.topics.ledger, p, |record| {
                match record.payload.map(serde_json::from_slice::<LedgerEntry>) {
                    Some(Ok(entry)) if entry.status.is_final() && entry.recorded_at < oldest => {}
                    Some(Ok(entry)) => view.record(entry),
                    _ => unreadable += 1,
                }
                true
            })
            .with_context(|| format!("cannot read {}[{p}]", self.topics.ledger))?;
        let mut interrupted = Vec::new();
        for entry in view.unfinished() {
            match entry.status {
                Status::Scheduled => {
                    state.due.insert((entry.due_at, entry.action_id.clone()));
                }
                _ => interrupted.push(entry.clone()),
            }
        }
        info!(
            partition = p,
            actions = view.len(),
            scheduled = state.due.len(),
            interrupted = interrupted.len(),
            unreadable,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "ledger partition loaded"
        );
        self.partitions.insert(p, state);
        self.parts.ledger.insert_partition(p, view);
        for entry in interrupted {
            self.reconcile(p, entry, out)?;
        }
        Ok(())
    }

    /// Finish an action whose intent was recorded but not its result.
    fn reconcile(
        &mut self,
        p: i32,
        entry: LedgerEntry,
        out: &mut Vec<OutRecord>,
    ) -> anyhow::Result<()> {
        let (Some(decision), Some(action)) = (entry.decision.clone(), entry.action().cloned())
        else {
            return self.finish(
                p,
                LedgerEntry {
                    decision: None,
                    ..entry
                }
                .with_status(Status::Failed, "interrupted record without its decision"),
            );
        };
        let intent_at = entry.recorded_at;
        let connectors = self.parts.connectors.clone();
        let request = ActionRequest {
            decision: &decision,
            action: &action,
            note: None,
        };
        let (result, attempts) = self.with_retries(action.kind.as_str(), || {
            connectors.reconcile(&request, intent_at)
        });
        self.counters.reconciled += 1;
        match result {
            Ok(Reconciled::AlreadyDone(detail)) => {
                info!(event = %decision.event.uuid, decision = %decision.decision_id, action = %action.action_id, kind = action.kind.as_str(), "interrupted action was already done");
                let mut done =
                    LedgerEntry::new(&decision, &action, Status::Succeeded, entry.due_at)
                        .because("reconciled after a restart: the vendor shows it done")
                        .attempted(attempts);
                done.detail = detail;
                self.finish(p, done)
            }
            Ok(Reconciled::NotDone) => self.execute(p, &decision, &action, None, out),
            Ok(Reconciled::Unknown) => {
                warn!(event = %decision.event.uuid, decision = %decision.decision_id, action = %action.action_id, kind = action.kind.as_str(), "interrupted action cannot be checked; repeating it marked as a possible repeat");
                self.execute(
                    p,
                    &decision,
                    &action,
                    Some("possible repeat: Vigil restarted while sending this"),
                    out,
                )
            }
            Err(failure) => self.failed(
                p,
                &decision,
                &action,
                entry.due_at,
                attempts,
                failure,
                None,
                out,
            ),
        }
    }

    /// Handle a fresh action of `decision`.
    fn admit(
        &mut self,
        p: i32,
        decision: &Decision,
        action: &Action,
        out: &mut Vec<OutRecord>,
    ) -> anyhow::Result<()> {
        if let Some(known) = self.known(p, &action.action_id)? {
            debug!(action = %action.action_id, status = known.status.as_str(), "duplicate action dropped");
            self.counters.duplicates += 1;
            return Ok(());
        }
        let due_at = due_at(action);
        let now = Utc::now();
        if action.kind != ActionKind::AuditRecord {
            if let Some(o) = decision
                .user
                .as_ref()
                .and_then(|u| self.parts.overrides.get(&u.id))
                .filter(|o| o.scope == Scope::All && o.active_at(now))
            {
                let reason = format!(
                    "suppressed by override of {}: {}",
                    o.by.as_deref().unwrap_or("an analyst"),
                    o.reason
                );
                return self.finish(
                    p,
                    LedgerEntry::new(decision, action, Status::Cancelled, due_at).because(reason),
                );
            }
        }
        // Every delayed or conditional action goes through the due path, even when it is due
        // already (a backlog, a catch-up): its conditions are checked there and only there, so
        // "unless acknowledged" means the same after an outage as on time. The schedule is
        // delivered with the batch before the checkpoint runs it.
        if action.after_secs > 0 || !action.conditions.is_empty() || due_at > now {
            let entry = LedgerEntry::new(decision, action, Status::Scheduled, due_at);
            self.record(p, entry)?;
            self.state(p)?
                .due
                .insert((due_at, action.action_id.clone()));
            info!(event = %decision.event.uuid, decision = %decision.decision_id, action = %action.action_id, kind = action.kind.as_str(), target = %action.target, due_at = %due_at, "action scheduled");
            return Ok(());
        }
        self.execute(p, decision, action, None, out)
    }

    /// The newest record of `action_id` in loaded partition `p`.
    fn known(&mut self, p: i32, action_id: &str) -> anyhow::Result<Option<LedgerEntry>> {
        // An unloaded partition is an error, not "unknown": that would run a duplicate.
        self.state(p)?;
        Ok(self.parts.ledger.get(p, action_id))
    }

    /// Run the scheduled actions of every partition that are due.
    fn run_due(&mut self, out: &mut Vec<OutRecord>) -> anyhow::Result<()> {
        let now = Utc::now();
        let mut due = Vec::new();
        for (&p, state) in &mut self.partitions {
            while let Some(first) = state.due.first().filter(|(at, _)| *at <= now) {
                let first = first.clone();
                state.due.remove(&first);
                due.push((p, first.1));
            }
        }
        for (p, action_id) in due {
            if self.parts.shutdown.load(Ordering::Relaxed) {
                // Still `scheduled` in the ledger: the next start runs it.
                break;
            }
            let Some(entry) = self.known(p, &action_id)? else {
                continue;
            };
            let (Some(decision), Some(action)) = (entry.decision.clone(), entry.action().cloned())
            else {
                continue;
            };
            // Overrides count from the decision's event on: one made while the decision waited
            // in a backlog covers it too.
            let since =
                event_time(&decision).map_or(entry.recorded_at, |t| t.min(entry.recorded_at));
            match self.cancel_reason(p, &decision, &action, since) {
                Ok(Some(reason)) => {
                    info!(event = %decision.event.uuid, decision = %decision.decision_id, action = %action_id, kind = action.kind.as_str(), reason = %reason, "delayed action cancelled");
                    self.finish(
                        p,
                        LedgerEntry::new(&decision, &action, Status::Cancelled, entry.due_at)
                            .because(reason),
                    )?;
                }
                Ok(None) => self.execute(p, &decision, &action, None, out)?,
                Err(failure) => {
                    let reason = format!("a condition could not be checked: {failure}");
                    self.failed(
                        p,
                        &decision,
                        &action,
                        entry.due_at,
                        Attempts::default(),
                        failure,
                        Some(reason),
                        out,
                    )?;
                }
            }
        }
        Ok(())
    }

    /// Why a due action must not run (an override in force at some time since `since`, its
    /// conditions), if it must not.
    fn cancel_reason(
        &mut self,
        p: i32,
        decision: &Decision,
        action: &Action,
        since: DateTime<Utc>,
    ) -> Result<Option<String>, Failure> {
        if let Some(reason) =
            conditions::overridden(&self.parts.overrides, decision, since, Utc::now())
        {
            return Ok(Some(reason));
        }
        for condition in conditions::ordered(action) {
            match condition {
                // Covered by every pending action's override check above.
                Condition::UnlessOverridden => {}
                Condition::OnlyIfActivityContinues => {
                    let partitions = self.event_partitions_of(p);
                    let active = conditions::activity_continues(
                        &self.parts.reader,
                        &self.topics.events,
                        &partitions,
                        decision,
                    )
                    .map_err(|e| Failure::Retryable {
                        after: None,
                        detail: format!("reading {}: {e:#}", self.topics.events),
                    })?;
                    if !active {
                        return Ok(Some("no activity of the user since the decision".into()));
                    }
                }
                Condition::UnlessAcknowledged => {
                    let Some(user) = &decision.user else { continue };
                    let key = crate::connector::dedup_key(&user.id);
                    let connectors = self.parts.connectors.clone();
                    let (status, _) = self.with_retries("pagerduty.incident_status", || {
                        connectors.incident_status(&key)
                    });
                    match status? {
                        Some(IncidentStatus::Acknowledged) => {
                            return Ok(Some(format!("PagerDuty incident {key} acknowledged")))
                        }
                        Some(IncidentStatus::Resolved) => {
                            return Ok(Some(format!("PagerDuty incident {key} resolved")))
                        }
                        Some(IncidentStatus::Triggered) | None => {}
                    }
                }
            }
        }
        Ok(None)
    }

    /// The events partitions that can hold a user of decisions partition `p`: the same index
    /// when both topics have as many partitions (both are keyed by user id with the same
    /// partitioner), else all of them.
    fn event_partitions_of(&self, p: i32) -> Vec<i32> {
        if self.parts.event_partitions == self.parts.decision_partitions {
            vec![p]
        } else {
            (0..self.parts.event_partitions as i32).collect()
        }
    }

    /// Guard, intent, call with retries, result.
    fn execute(
        &mut self,
        p: i32,
        decision: &Decision,
        action: &Action,
        note: Option<&str>,
        out: &mut Vec<OutRecord>,
    ) -> anyhow::Result<()> {
        let due_at = due_at(action);
        let login = decision.user.as_ref().and_then(|u| u.login.as_deref());
        match self
            .guard
            .check(action.kind, &action.target, login, Instant::now())
        {
            Verdict::Allow => {}
            Verdict::Refuse(reason) => {
                warn!(event = %decision.event.uuid, decision = %decision.decision_id, action = %action.action_id, kind = action.kind.as_str(), reason = %reason, "action refused");
                return self.finish(
                    p,
                    LedgerEntry::new(decision, action, Status::Refused, due_at).because(reason),
                );
            }
            Verdict::Hold { reason, opened } => {
                if opened {
                    self.alert_circuit_open(&reason);
                }
                warn!(event = %decision.event.uuid, decision = %decision.decision_id, action = %action.action_id, kind = action.kind.as_str(), target = %action.target, "action held by the open circuit");
                return self.finish(
                    p,
                    LedgerEntry::new(decision, action, Status::Held, due_at).because(reason),
                );
            }
        }
        let intent = LedgerEntry::new(decision, action, Status::Started, due_at);
        self.write(p, &intent)?;
        let connectors = self.parts.connectors.clone();
        let (connectors, intent_at) = (&*connectors, intent.recorded_at);
        // An answer lost after the request was sent (MaybeApplied) is looked up, exactly as
        // after a crash, before the action is tried again.
        let (unsure, note, notes) = (&Cell::new(false), &Cell::new(note), &RefCell::default());
        let attempt = move || async move {
            if unsure.get() {
                let request = ActionRequest {
                    decision,
                    action,
                    note: note.get(),
                };
                match connectors.reconcile(&request, intent_at).await? {
                    Reconciled::AlreadyDone(found) => {
                        lookup_note(notes, "the vendor shows it done");
                        let mut found = match found {
                            Value::Object(_) => found,
                            other => json!({ "found": other }),
                        };
                        found["reason"] =
                            json!("reconciled after an uncertain answer: the vendor shows it done");
                        return Ok(Executed {
                            outcome: Outcome::Done,
                            detail: found,
                        });
                    }
                    Reconciled::NotDone => lookup_note(notes, "not done; trying again"),
                    Reconciled::Unknown => {
                        lookup_note(
                            notes,
                            "cannot be checked; sent again marked as a possible repeat",
                        );
                        note.set(Some(POSSIBLE_REPEAT));
                    }
                }
                unsure.set(false);
            }
            let request = ActionRequest {
                decision,
                action,
                note: note.get(),
            };
            let result = connectors.execute(&request).await;
            unsure.set(matches!(result, Err(Failure::MaybeApplied { .. })));
            result
        };
        let (result, calls) = self.retry_loop(action.kind.as_str(), notes, attempt);
        let attempts = Attempts {
            calls,
            retries: notes.take(),
        };
        match result {
            Ok(executed) => {
                let status = match executed.outcome {
                    Outcome::Done => Status::Succeeded,
                    Outcome::AlreadyInState => Status::AlreadyInState,
                    Outcome::DryRun => Status::DryRun,
                    Outcome::Skipped => Status::Skipped,
                };
                info!(event = %decision.event.uuid, decision = %decision.decision_id, action = %action.action_id, kind = action.kind.as_str(), target = %action.target, status = status.as_str(), attempts = attempts.calls, "action done");
                let mut entry =
                    LedgerEntry::new(decision, action, status, due_at).attempted(attempts);
                entry.detail = executed.detail;
                if let Some(reason) = entry.detail.get("reason").and_then(Value::as_str) {
                    entry.reason = Some(reason.to_owned());
                }
                self.finish(p, entry)
            }
            Err(_) if self.parts.shutdown.load(Ordering::Relaxed) => Err(anyhow!(
                "stopping during retries of {} {}: it stays `started` and is reconciled on restart",
                action.kind.as_str(),
                action.action_id
            )),
            Err(failure) => self.failed(p, decision, action, due_at, attempts, failure, None, out),
        }
    }

    /// Record a permanent failure and dead-letter the action with the vendor's response.
    #[allow(clippy::too_many_arguments)]
    fn failed(
        &mut self,
        p: i32,
        decision: &Decision,
        action: &Action,
        due_at: DateTime<Utc>,
        attempts: Attempts,
        failure: Failure,
        reason: Option<String>,
        out: &mut Vec<OutRecord>,
    ) -> anyhow::Result<()> {
        let reason = reason.unwrap_or_else(|| failure.to_string());
        error!(event = %decision.event.uuid, decision = %decision.decision_id, action = %action.action_id, kind = action.kind.as_str(), target = %action.target, attempts = attempts.calls, reason = %reason, "action failed; dead-lettered");
        let calls = attempts.calls;
        let response = match &failure {
            Failure::Permanent { status, body, .. } => json!({"status": status, "body": body}),
            Failure::Retryable { .. } | Failure::MaybeApplied { .. } => Value::Null,
        };
        let mut entry = LedgerEntry::new(decision, action, Status::Failed, due_at)
            .because(reason.clone())
            .attempted(attempts);
        entry.detail = json!({ "response": response });
        let payload = json!({
            "decision_id": decision.decision_id,
            "user": decision.user,
            "rule": decision.rule,
            "action": action,
            "attempts": calls,
            "error": reason,
            "response": response,
        });
        let mut payload = serde_json::to_vec(&payload)?;
        payload.truncate(self.parts.dlq_max_payload_bytes);
        out.push(OutRecord {
            topic: self.topics.dlq.clone(),
            partition: None,
            key: decision.user.as_ref().map(|u| u.id.clone().into_bytes()),
            payload,
            headers: vec![
                (DLQ_REASON.to_owned(), b"action_failed".to_vec()),
                (DLQ_ERROR.to_owned(), reason.into_bytes()),
                (DLQ_STAGE.to_owned(), b"respond".to_vec()),
                (
                    SOURCE_TOPIC.to_owned(),
                    self.topics.decisions.as_bytes().to_vec(),
                ),
                (SOURCE_PARTITION.to_owned(), p.to_string().into_bytes()),
            ],
        });
        self.counters.dead_lettered += 1;
        crate::metrics::metrics()
            .dead_lettered
            .with_label_values(&["respond", "action_failed"])
            .inc();
        self.finish(p, entry)
    }

    /// Tell the security channel (once per opening) that the circuit holds destructive actions.
    fn alert_circuit_open(&self, reason: &str) {
        error!(reason = %reason, "blast-radius circuit opened");
        let text =
            format!(":rotating_light: Vigil {reason}. Review the held actions in the ledger.");
        let connectors = self.parts.connectors.clone();
        if let Err(e) = self.parts.runtime.block_on(connectors.alert(&text)) {
            error!(error = %e, "cannot send the circuit alert to Slack");
        }
    }

    /// `call` with exponential backoff and jitter for retryable failures, honouring the wait a
    /// vendor asks for (never less than [`http::RATE_LIMIT_FLOOR`]); stops retrying on shutdown and
    /// when the next try would start after `retry_budget_secs`. Returns the result and the calls
    /// made. `what` labels the retry metric (the action type).
    fn with_retries<T, Fut>(
        &self,
        what: &str,
        call: impl FnMut() -> Fut,
    ) -> (Result<T, Failure>, Attempts)
    where
        Fut: std::future::Future<Output = Result<T, Failure>>,
    {
        let notes = RefCell::default();
        let (result, calls) = self.retry_loop(what, &notes, call);
        let attempts = Attempts {
            calls,
            retries: notes.into_inner(),
        };
        (result, attempts)
    }

    /// [`Self::with_retries`], noting each retry in `notes` (the ledger's `retries`), where
    /// `call` may add notes of its own. A [`Failure::MaybeApplied`] is waited out like a
    /// retryable one: `call` is what looks it up before trying again.
    fn retry_loop<T, Fut>(
        &self,
        what: &str,
        notes: &RefCell<Vec<String>>,
        mut call: impl FnMut() -> Fut,
    ) -> (Result<T, Failure>, u32)
    where
        Fut: std::future::Future<Output = Result<T, Failure>>,
    {
        let budget = Duration::from_secs(self.config.retry_budget_secs);
        let deadline = Instant::now() + budget;
        let max_delay = Duration::from_millis(self.config.retry_max_delay_ms);
        let mut backoff = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(self.config.retry_min_delay_ms))
            .with_max_delay(max_delay)
            .with_jitter()
            .without_max_times()
            .build();
        let shutdown = &self.parts.shutdown;
        self.parts.runtime.block_on(async {
            let mut calls = 0;
            loop {
                calls += 1;
                let failure = match call().await {
                    Ok(value) => return (Ok(value), calls),
                    Err(failure) => failure,
                };
                let (wait, rate_limited) = match &failure {
                    Failure::Permanent { .. } => return (Err(failure), calls),
                    Failure::Retryable {
                        after: Some(after), ..
                    }
                    | Failure::MaybeApplied {
                        after: Some(after), ..
                    } => (http::rate_limit_pause(*after), true),
                    _ => (backoff.next().unwrap_or(max_delay), false),
                };
                if shutdown.load(Ordering::Relaxed) {
                    return (Err(failure), calls);
                }
                if Instant::now() + wait > deadline {
                    notes.borrow_mut().push(format!(
                        "{failure}; not retried: a wait of {} ms would pass the retry budget of {} s",
                        wait.as_millis(),
                        budget.as_secs()
                    ));
                    return (Err(failure), calls);
                }
                warn!(action = what, attempt = calls, error = %failure, ?wait, "vendor call failed; retrying");
                let metrics = crate::metrics::metrics();
                metrics.retries.with_label_values(&[what]).inc();
                if rate_limited {
                    // Action types and checks are named `vendor.what`.
                    let vendor = what.split('.').next().unwrap_or(what);
                    metrics.rate_limit_waits.with_label_values(&[vendor]).inc();
                }
                notes.borrow_mut().push(format!(
                    "{failure}; retried after {} ms",
                    wait.as_millis()
                ));
                if !crate::shutdown::sleep_unless_stopped(wait, shutdown).await {
                    return (Err(failure), calls);
                }
            }
        })
    }

    /// Pending actions, the circuit, overrides in force (at most every [`GAUGE_INTERVAL`]).
    fn update_gauges(&mut self) {
        if self
            .gauges_at
            .is_some_and(|at| at.elapsed() < GAUGE_INTERVAL)
        {
            return;
        }
        self.gauges_at = Some(Instant::now());
        let metrics = crate::metrics::metrics();
        let pending: usize = self.partitions.values().map(|s| s.due.len()).sum();
        metrics.pending_actions.set(pending as i64);
        metrics
            .circuit_open
            .set(i64::from(self.guard.is_open(Instant::now())));
        let now = Utc::now();
        let active = self
            .parts
            .overrides
            .all()
            .iter()
            .filter(|o| o.active_at(now))
            .count();
        metrics.overrides_active.set(active as i64);
    }

    /// Record a final outcome and count it.
    fn finish(&mut self, p: i32, entry: LedgerEntry) -> anyhow::Result<()> {
        *self
            .counters
            .outcomes
            .entry(entry.status.as_str())
            .or_default() += 1;
        let metrics = crate::metrics::metrics();
        metrics
            .actions
            .with_label_values(&[entry.kind.as_str(), entry.status.as_str()])
            .inc();
        let late = (Utc::now() - entry.due_at).num_milliseconds().max(0) as f64 / 1000.0;
        metrics
            .action_seconds
            .with_label_values(&[entry.kind.as_str()])
            .observe(late);
        self.record(p, entry)
    }

    /// Hand `entry` to the worker, which has the broker acknowledge it before it commits the
    /// batch's offsets. Enough for every record but the intent: if the process dies before the
    /// acknowledgement, the decision is consumed again (a schedule is made again) or the
    /// intent is found unfinished (reconciled).
    fn record(&mut self, p: i32, entry: LedgerEntry) -> anyhow::Result<()> {
        self.unsent.push(OutRecord {
            topic: self.topics.ledger.clone(),
            partition: Some(p),
            key: Some(entry.action_id.clone().into_bytes()),
            payload: serde_json::to_vec(&entry)?,
            headers: Vec::new(),
        });
        self.state(p)?;
        self.parts.ledger.record(p, entry);
        Ok(())
    }

    /// Write `entry` to ledger partition `p` and wait for the broker's acknowledgement (the
    /// intent: it must be durable before the vendor is called).
    fn write(&mut self, p: i32, entry: &LedgerEntry) -> anyhow::Result<()> {
        let payload = serde_json::to_vec(entry)?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let record = FutureRecord::to(&self.topics.ledger)
                .partition(p)
                .key(&entry.action_id)
                .payload(&payload);
            let delivery = self
                .parts
                .producer
                .send_result(record)
                .map_err(|(e, _)| anyhow!("cannot queue a ledger record: {e}"))?;
            match futures::executor::block_on(delivery) {
                Ok(Ok(_)) => break,
                Ok(Err((e, _))) if attempt < LEDGER_WRITE_ATTEMPTS => {
                    warn!(error = %e, attempt, "ledger write failed; retrying");
                    std::thread::sleep(Duration::from_millis(100 << attempt.min(5)));
                }
                Ok(Err((e, _))) => return Err(anyhow!("cannot write the ledger: {e}")),
                Err(_) => return Err(anyhow!("the ledger producer shut down")),
            }
        }
        self.state(p)?;
        self.parts.ledger.record(p, entry.clone());
        Ok(())
    }

    fn state(&mut self, p: i32) -> anyhow::Result<&mut PartitionState> {
        self.partitions
            .get_mut(&p)
            .ok_or_else(|| anyhow!("partition {p} is not loaded"))
    }
}

impl LedgerEntry {
    /// This record with another status and a reason, written now.
    fn with_status(mut self, status: Status, reason: &str) -> Self {
        self.status = status;
        self.reason = Some(reason.to_owned());
        self.recorded_at = Utc::now();
        self
    }
}

/// The note on a message sent again when whether the first one arrived cannot be checked.
const POSSIBLE_REPEAT: &str = "possible repeat: the first attempt's answer was lost";

/// Add what the lookup after an uncertain answer found to the ledger's `retries` notes.
fn lookup_note(notes: &RefCell<Vec<String>>, found: &str) {
    notes
        .borrow_mut()
        .push(format!("looked up after the uncertain answer: {found}"));
}

/// The calls one step took.
#[derive(Debug, Default)]
struct Attempts {
    calls: u32,
    retries: Vec<String>,
}

impl LedgerEntry {
    /// This record with the calls `attempts` made.
    fn attempted(mut self, attempts: Attempts) -> Self {
        self.attempts = attempts.calls;
        self.retries = attempts.retries;
        self
    }
}

/// When `decision`'s event happened (its `published`), if readable.
fn event_time(decision: &Decision) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(&decision.event.published)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// When `action` is due, on the wall clock: its `due_at` (event time + delay); an unreadable
/// one means now.
fn due_at(action: &Action) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(&action.due_at)
        .map(|d| d.with_timezone(&Utc))
        .unwrap_or_else(|_| Utc::now())
}

impl Processor for LiveRespond {
    fn process<M: Message>(&mut self, message: &M, out: &mut Vec<OutRecord>) -> anyhow::Result<()> {
        let p = message.partition();
        self.ensure_partition(p, out)?;
        self.counters.decisions += 1;
        let decision = match message
            .payload()
            .ok_or_else(|| "the record has no value".to_owned())
            .and_then(|bytes| serde_json::from_slice::<Decision>(bytes).map_err(|e| e.to_string()))
        {
            Ok(decision) => decision,
            Err(e) => {
                warn!(partition = p, offset = message.offset(), error = %e, "unreadable decision dead-lettered");
                out.push(dlq_record(
                    &self.topics.dlq,
                    "respond",
                    message,
                    "bad_decision",
                    &e,
                    self.parts.dlq_max_payload_bytes,
                ));
                self.counters.dead_lettered += 1;
                crate::metrics::metrics()
                    .dead_lettered
                    .with_label_values(&["respond", "bad_decision"])
                    .inc();
                return Ok(());
            }
        };
        for action in &decision.actions {
            self.admit(p, &decision, action, out)?;
        }
        out.append(&mut self.unsent);
        Ok(())
    }

    fn assigned(&mut self, topic: &str, partitions: &[i32]) {
        if topic == self.topics.decisions {
            self.to_load.extend(partitions);
        }
    }

    fn revoked(&mut self, topic: &str, partitions: &[i32]) {
        if topic != self.topics.decisions {
            return;
        }
        for p in partitions {
            // Its scheduled actions stay `scheduled` in the ledger: the new owner arms them.
            self.partitions.remove(p);
            self.parts.ledger.remove_partition(*p);
            self.to_load.remove(p);
        }
    }

    fn checkpoint(&mut self, out: &mut Vec<OutRecord>, closing: bool) -> anyhow::Result<()> {
        if closing {
            return Ok(());
        }
        // A partition gained with no new decision may still hold delayed actions to run.
        while let Some(p) = self.to_load.pop_first() {
            self.ensure_partition(p, out)?;
        }
        self.run_due(out)?;
        out.append(&mut self.unsent);
        self.update_gauges();
        Ok(())
    }
}
