//! The ledger: what the respond stage did with every action, one record per step, on a
//! compacted topic keyed by action id (so the newest record of an action is its state).
//!
//! Partition `p` of the ledger holds the actions of decisions partition `p`: the instance that
//! owns a decisions partition rebuilds what it needs (duplicates to drop, delayed actions to
//! arm, interrupted calls to reconcile) from one ledger partition.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::decision::{Action, ActionKind, Decision};

/// Version of the ledger record schema.
pub const LEDGER_SCHEMA: u32 = 1;

/// Where an action stands.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Waiting for its due time (the record carries the decision, to survive restarts).
    Scheduled,
    /// About to call the vendor (intent): a crash after this is reconciled, not blindly repeated.
    Started,
    /// The vendor did it.
    Succeeded,
    /// The target already was in the wanted state (suspending a suspended user).
    AlreadyInState,
    /// Not done because it does not fit the target's state (the reason says why).
    Skipped,
    /// No credentials: the request it would have sent is recorded instead.
    DryRun,
    /// A condition or an override cancelled it at its due time.
    Cancelled,
    /// Refused by the blast-radius guard (protected account).
    Refused,
    /// Held by the open circuit (too many destructive actions per minute); not executed.
    Held,
    /// Failed permanently (or after every retry); also dead-lettered.
    Failed,
}

impl Status {
    /// Whether nothing more will happen to the action.
    pub fn is_final(self) -> bool {
        !matches!(self, Status::Scheduled | Status::Started)
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Scheduled => "scheduled",
            Status::Started => "started",
            Status::Succeeded => "succeeded",
            Status::AlreadyInState => "already_in_state",
            Status::Skipped => "skipped",
            Status::DryRun => "dry_run",
            Status::Cancelled => "cancelled",
            Status::Refused => "refused",
            Status::Held => "held",
            Status::Failed => "failed",
        }
    }
}

/// One ledger record.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LedgerEntry {
    /// [`LEDGER_SCHEMA`].
    pub schema: u32,
    /// The action (the record's key).
    pub action_id: String,
    /// Its decision.
    pub decision_id: String,
    /// The action type.
    #[serde(rename = "type")]
    pub kind: ActionKind,
    /// The action's target.
    pub target: String,
    /// The user the decision concerns.
    pub user_id: Option<String>,
    /// Where the action stands.
    pub status: Status,
    /// Why, in words (cancellation cause, skip reason, error).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Vendor calls made for this step (retries included).
    #[serde(default)]
    pub attempts: u32,
    /// Why each retried call failed and how long Vigil waited before the next one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retries: Vec<String>,
    /// What the connector reported (HTTP status, returned ids, the dry-run request, …).
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub detail: Value,
    /// When the action is due (wall clock, RFC 3339).
    pub due_at: DateTime<Utc>,
    /// When this record was written (wall clock).
    pub recorded_at: DateTime<Utc>,
    /// The whole decision, on records an action may have to be resumed from (scheduled,
    /// started).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<Decision>,
}

impl LedgerEntry {
    /// A record of `action` (of `decision`) in `status`, written now.
    pub fn new(
        decision: &Decision,
        action: &Action,
        status: Status,
        due_at: DateTime<Utc>,
    ) -> Self {
        LedgerEntry {
            schema: LEDGER_SCHEMA,
            action_id: action.action_id.clone(),
            decision_id: decision.decision_id.clone(),
            kind: action.kind,
            target: action.target.clone(),
            user_id: decision.user.as_ref().map(|u| u.id.clone()),
            status,
            reason: None,
            attempts: 0,
            retries: Vec::new(),
            detail: Value::Null,
            due_at,
            recorded_at: Utc::now(),
            decision: (!status.is_final()).then(|| decision.clone()),
        }
    }

    /// The same, with a reason.
    pub fn because(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }

    /// The action this record is about, looked up in its decision (resumable records only).
    pub fn action(&self) -> Option<&Action> {
        self.decision
            .as_ref()?
            .actions
            .iter()
            .find(|a| a.action_id == self.action_id)
    }
}

/// The newest record of every action of one partition, as far as this instance knows.
#[derive(Debug, Default)]
pub struct LedgerView {
    entries: HashMap<String, LedgerEntry>,
}

impl LedgerView {
    /// Remember `entry` as its action's newest record (a final record drops its decision and
    /// detail: only resuming needs them, and memory grows with every action known).
    pub fn record(&mut self, mut entry: LedgerEntry) {
        if entry.status.is_final() {
            entry.decision = None;
            entry.detail = Value::Null;
        }
        self.entries.insert(entry.action_id.clone(), entry);
    }

    /// The newest record of `action_id`.
    pub fn get(&self, action_id: &str) -> Option<&LedgerEntry> {
        self.entries.get(action_id)
    }

    /// Actions still waiting or interrupted (not final).
    pub fn unfinished(&self) -> impl Iterator<Item = &LedgerEntry> {
        self.entries.values().filter(|e| !e.status.is_final())
    }

    /// Actions known.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no action is known.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}
