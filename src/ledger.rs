//! The ledger: what the respond stage did with every action, one record per step, on a
//! compacted topic keyed by action id (so the newest record of an action is its state).
//!
//! Partition `p` of the ledger holds the actions of decisions partition `p`: the instance that
//! owns a decisions partition rebuilds what it needs (duplicates to drop, delayed actions to
//! arm, interrupted calls to reconcile) from one ledger partition.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

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

/// The ledger views of the decisions partitions this instance owns, shared between the respond
/// stage (the only writer) and the HTTP API (`GET /v1/actions`), so the API answers from what
/// the stage knows without reading the topic.
#[derive(Debug, Clone, Default)]
pub struct LedgerViews {
    inner: Arc<RwLock<HashMap<i32, LedgerView>>>,
}

/// Which actions a ledger query asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LedgerQuery {
    /// Every action about this user.
    User(String),
    /// Every action of this decision.
    Decision(String),
    /// This action.
    Action(String),
}

impl LedgerQuery {
    fn matches(&self, entry: &LedgerEntry) -> bool {
        match self {
            LedgerQuery::User(id) => entry.user_id.as_deref() == Some(id.as_str()),
            LedgerQuery::Decision(id) => entry.decision_id == *id,
            LedgerQuery::Action(id) => entry.action_id == *id,
        }
    }
}

impl LedgerViews {
    /// Whether partition `p`'s view is loaded.
    pub fn has_partition(&self, p: i32) -> bool {
        self.read().contains_key(&p)
    }

    /// Take partition `p`'s loaded view.
    pub fn insert_partition(&self, p: i32, view: LedgerView) {
        self.write().insert(p, view);
    }

    /// Forget partition `p` (revoked: its new owner answers for it).
    pub fn remove_partition(&self, p: i32) {
        self.write().remove(&p);
    }

    /// The partitions loaded, in order.
    pub fn partitions(&self) -> Vec<i32> {
        let mut partitions: Vec<i32> = self.read().keys().copied().collect();
        partitions.sort_unstable();
        partitions
    }

    /// The newest record of `action_id` in partition `p`.
    pub fn get(&self, p: i32, action_id: &str) -> Option<LedgerEntry> {
        self.read().get(&p)?.get(action_id).cloned()
    }

    /// Remember `entry` in partition `p`; false when `p` is not loaded.
    pub fn record(&self, p: i32, entry: LedgerEntry) -> bool {
        match self.write().get_mut(&p) {
            Some(view) => {
                view.record(entry);
                true
            }
            None => false,
        }
    }

    /// The newest record of every known action `query` asks for, oldest first.
    pub fn find(&self, query: &LedgerQuery) -> Vec<LedgerEntry> {
        let mut found: Vec<LedgerEntry> = self
            .read()
            .values()
            .flat_map(|view| view.entries.values())
            .filter(|e| query.matches(e))
            .cloned()
            .collect();
        found.sort_by(|a, b| (a.recorded_at, &a.action_id).cmp(&(b.recorded_at, &b.action_id)));
        found
    }

    // A panic elsewhere while holding the lock leaves the map consistent (every change is one
    // insert or remove), so a poisoned lock is still usable.
    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<i32, LedgerView>> {
        self.inner.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<i32, LedgerView>> {
        self.inner.write().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decision::{action_id, decision_id, EventRef, Severity, UserInfo};

    fn decision(user: &str, event: &str) -> Decision {
        let id = decision_id(event, "rule", "");
        Decision {
            schema: crate::decision::SCHEMA_VERSION,
            decision_id: id.clone(),
            event: EventRef {
                uuid: event.into(),
                event_type: "user.session.start".into(),
                published: "2026-01-01T00:00:00Z".into(),
            },
            user: Some(UserInfo {
                id: user.into(),
                login: None,
            }),
            rule: "rule".into(),
            severity: Severity::High,
            risk_score: 1,
            summary: String::new(),
            evidence: Value::Null,
            policy_revision: "r".into(),
            actions: vec![Action {
                action_id: action_id(&id, ActionKind::SlackNotify, user, 0),
                kind: ActionKind::SlackNotify,
                target: user.into(),
                params: Default::default(),
                after_secs: 0,
                due_at: "2026-01-01T00:00:00Z".into(),
                conditions: Vec::new(),
            }],
        }
    }

    fn entry(d: &Decision, status: Status) -> LedgerEntry {
        LedgerEntry::new(d, &d.actions[0], status, Utc::now())
    }

    #[test]
    fn views_answer_by_user_decision_and_action_for_the_partitions_held() {
        let views = LedgerViews::default();
        views.insert_partition(0, LedgerView::default());
        views.insert_partition(1, LedgerView::default());
        let (a, b, c) = (
            decision("00uA", "e1"),
            decision("00uA", "e2"),
            decision("00uB", "e3"),
        );
        assert!(views.record(0, entry(&a, Status::Scheduled)));
        assert!(views.record(0, entry(&a, Status::Cancelled).because("acknowledged")));
        assert!(views.record(1, entry(&b, Status::Succeeded)));
        assert!(views.record(1, entry(&c, Status::DryRun)));
        assert!(!views.record(2, entry(&c, Status::DryRun)), "not held");

        let user_a = views.find(&LedgerQuery::User("00uA".into()));
        let ids: Vec<&str> = user_a.iter().map(|e| e.decision_id.as_str()).collect();
        assert_eq!(ids, [a.decision_id.as_str(), b.decision_id.as_str()]);
        assert_eq!(user_a[0].status, Status::Cancelled, "the newest record");
        assert_eq!(user_a[0].reason.as_deref(), Some("acknowledged"));
        let by_decision = views.find(&LedgerQuery::Decision(c.decision_id.clone()));
        assert_eq!(by_decision.len(), 1);
        assert_eq!(by_decision[0].user_id.as_deref(), Some("00uB"));
        let by_action = views.find(&LedgerQuery::Action(b.actions[0].action_id.clone()));
        assert_eq!(by_action[0].status, Status::Succeeded);
        assert!(views.find(&LedgerQuery::User("00uZ".into())).is_empty());

        views.remove_partition(1);
        assert_eq!(views.partitions(), [0]);
        assert_eq!(views.find(&LedgerQuery::User("00uA".into())).len(), 1);
    }
}
