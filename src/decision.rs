//! Decisions: the wire schema of the decisions topic, and the deterministic ids that make
//! redelivery harmless (same event + same rule → same `decision_id`, always).
//!
//! Pure data; no I/O, no policy or state logic.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// Version of the decision schema; bumped on any incompatible change.
pub const SCHEMA_VERSION: u32 = 1;

/// One rule's verdict on one event, with the actions it asks for.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    /// [`SCHEMA_VERSION`].
    pub schema: u32,
    /// Deterministic id: see [`decision_id`].
    pub decision_id: String,
    /// The event that triggered the decision.
    pub event: EventRef,
    /// The user the decision is about, when the event concerns one.
    pub user: Option<UserInfo>,
    /// The rule (policy package) that fired.
    pub rule: String,
    /// How bad it is.
    pub severity: Severity,
    /// The user's risk score after this event's findings, 0–100.
    pub risk_score: u32,
    /// One line for humans.
    pub summary: String,
    /// The state values that mattered.
    pub evidence: Value,
    /// Content hash of the policy directory that decided.
    pub policy_revision: String,
    /// What to do, in order.
    pub actions: Vec<Action>,
}

/// Reference to the triggering Okta event.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct EventRef {
    /// The event's `uuid`.
    pub uuid: String,
    /// The event's `eventType`.
    #[serde(rename = "eventType")]
    pub event_type: String,
    /// The event's `published`, normalised to RFC 3339 UTC with milliseconds.
    pub published: String,
}

/// The user a decision concerns.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct UserInfo {
    /// Okta user id.
    pub id: String,
    /// Okta login, when the event carried it.
    pub login: Option<String>,
}

/// Severity levels, lowest first.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth recording.
    Info,
    /// Worth a look.
    Low,
    /// Worth a look today.
    Medium,
    /// Worth a look now.
    High,
    /// Wake someone up.
    Critical,
}

impl Severity {
    /// The lowercase name, as on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

/// One action of a decision.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Action {
    /// Deterministic id: see [`action_id`]; the respond stage's idempotency key.
    pub action_id: String,
    /// What to do.
    #[serde(rename = "type")]
    pub kind: ActionKind,
    /// On whom (an Okta user id unless the action says otherwise).
    pub target: String,
    /// The action's parameters, with defaults filled in.
    pub params: Map<String, Value>,
    /// Delay after the event before the action is due.
    pub after_secs: u64,
    /// Event time at which the action is due (`published` + `after_secs`).
    pub due_at: String,
    /// Checked at the due time; any failing condition cancels the action.
    pub conditions: Vec<Condition>,
}

/// The actions Vigil knows how to execute.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ActionKind {
    /// Clear the user's Okta sessions (optionally revoking OAuth tokens).
    #[serde(rename = "okta.clear_sessions")]
    OktaClearSessions,
    /// Reset the password (the user goes to RECOVERY).
    #[serde(rename = "okta.reset_password")]
    OktaResetPassword,
    /// Expire the password (must change at next sign-in).
    #[serde(rename = "okta.expire_password")]
    OktaExpirePassword,
    /// Suspend the user (only ACTIVE users can be suspended).
    #[serde(rename = "okta.suspend_user")]
    OktaSuspendUser,
    /// Unsuspend the user.
    #[serde(rename = "okta.unsuspend_user")]
    OktaUnsuspendUser,
    /// Reset every MFA factor.
    #[serde(rename = "okta.reset_factors")]
    OktaResetFactors,
    /// Add to a group (step-up MFA: a group targeted by a stricter sign-on policy).
    #[serde(rename = "okta.add_to_group")]
    OktaAddToGroup,
    /// Post to the security channel.
    #[serde(rename = "slack.notify")]
    SlackNotify,
    /// Open (or update) a PagerDuty incident.
    #[serde(rename = "pagerduty.trigger")]
    PagerdutyTrigger,
    /// Resolve the PagerDuty incident.
    #[serde(rename = "pagerduty.resolve")]
    PagerdutyResolve,
    /// Record the decision in the audit ledger only.
    #[serde(rename = "audit.record")]
    AuditRecord,
}

impl ActionKind {
    /// The wire name (`okta.clear_sessions`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::OktaClearSessions => "okta.clear_sessions",
            ActionKind::OktaResetPassword => "okta.reset_password",
            ActionKind::OktaExpirePassword => "okta.expire_password",
            ActionKind::OktaSuspendUser => "okta.suspend_user",
            ActionKind::OktaUnsuspendUser => "okta.unsuspend_user",
            ActionKind::OktaResetFactors => "okta.reset_factors",
            ActionKind::OktaAddToGroup => "okta.add_to_group",
            ActionKind::SlackNotify => "slack.notify",
            ActionKind::PagerdutyTrigger => "pagerduty.trigger",
            ActionKind::PagerdutyResolve => "pagerduty.resolve",
            ActionKind::AuditRecord => "audit.record",
        }
    }

    /// Check a policy's params for this action and fill in defaults; unknown params are errors,
    /// so a typo in a policy never silently changes what an action does.
    pub fn validate_params(
        self,
        mut params: Map<String, Value>,
    ) -> Result<Map<String, Value>, String> {
        // (name, default) of every boolean param; `None` marks a required string.
        let allowed: &[(&str, Option<bool>)] = match self {
            ActionKind::OktaClearSessions => &[("oauth_tokens", Some(false))],
            ActionKind::OktaResetPassword => {
                &[("send_email", Some(true)), ("revoke_sessions", Some(true))]
            }
            ActionKind::OktaAddToGroup => &[("group_id", None)],
            ActionKind::SlackNotify => &[("channel", None)],
            _ => &[],
        };
        if let Some(unknown) = params
            .keys()
            .find(|k| !allowed.iter().any(|(name, _)| name == k))
        {
            return Err(format!("{}: unknown param `{unknown}`", self.as_str()));
        }
        for (name, default) in allowed {
            match (default, params.get(*name)) {
                (Some(_), Some(Value::Bool(_))) => {}
                (Some(d), None) => {
                    params.insert((*name).to_owned(), Value::Bool(*d));
                }
                (None, Some(Value::String(s))) if !s.is_empty() => {}
                (None, None) if self == ActionKind::SlackNotify => {}
                (Some(_), Some(_)) => {
                    return Err(format!("{}: `{name}` must be a boolean", self.as_str()))
                }
                (None, _) => {
                    return Err(format!(
                        "{}: `{name}` must be a non-empty string",
                        self.as_str()
                    ))
                }
            }
        }
        Ok(params)
    }
}

/// Conditions checked when a delayed action falls due.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    /// Cancel if the PagerDuty incident for the decision was acknowledged.
    UnlessAcknowledged,
    /// Cancel if an analyst override is active for the user.
    UnlessOverridden,
    /// Cancel unless the user produced events after the decision.
    OnlyIfActivityContinues,
}

/// The decision id: a hash of the event uuid, the rule and the finding key.
///
/// It does not include the policy revision on purpose: a redelivered event evaluated after a
/// policy reload must still be recognised as the same decision downstream.
pub fn decision_id(event_uuid: &str, rule: &str, key: &str) -> String {
    format!(
        "d-{}",
        short_hash(&["vigil.decision.v1", event_uuid, rule, key])
    )
}

/// The action id: a hash of the decision id, the action's type, target and position.
pub fn action_id(decision_id: &str, kind: ActionKind, target: &str, index: usize) -> String {
    let index = index.to_string();
    format!(
        "a-{}",
        short_hash(&[
            "vigil.action.v1",
            decision_id,
            kind.as_str(),
            target,
            &index
        ])
    )
}

/// 128 bits of SHA-256 over length-prefixed parts (so `("ab","c")` and `("a","bc")` differ).
fn short_hash(parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    let digest = hasher.finalize();
    digest[..16]
        .iter()
        .fold(String::with_capacity(32), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_and_distinguish_their_parts() {
        let id = decision_id("e1", "failed_signins", "");
        // Pinned: ids are a wire contract; a change here breaks dedup across versions.
        assert_eq!(id, decision_id("e1", "failed_signins", ""));
        assert_eq!(id.len(), 34);
        assert_ne!(id, decision_id("e1", "failed_signin", "s"));
        assert_ne!(id, decision_id("e2", "failed_signins", ""));
        let a = action_id(&id, ActionKind::SlackNotify, "00u1", 0);
        assert_ne!(a, action_id(&id, ActionKind::SlackNotify, "00u1", 1));
        assert_ne!(a, action_id(&id, ActionKind::OktaSuspendUser, "00u1", 0));
    }

    #[test]
    fn params_are_checked_and_defaulted() {
        let p = |v: Value| v.as_object().unwrap().clone();
        let reset = ActionKind::OktaResetPassword
            .validate_params(Map::new())
            .unwrap();
        assert_eq!(
            Value::Object(reset),
            serde_json::json!({"send_email": true, "revoke_sessions": true})
        );
        assert!(ActionKind::OktaAddToGroup
            .validate_params(Map::new())
            .unwrap_err()
            .contains("group_id"));
        assert!(ActionKind::OktaAddToGroup
            .validate_params(p(serde_json::json!({"group_id": "00g1"})))
            .is_ok());
        assert!(ActionKind::OktaClearSessions
            .validate_params(p(serde_json::json!({"oauth_token": true})))
            .unwrap_err()
            .contains("unknown param `oauth_token`"));
        assert!(ActionKind::OktaClearSessions
            .validate_params(p(serde_json::json!({"oauth_tokens": "yes"})))
            .is_err());
        assert!(ActionKind::SlackNotify.validate_params(Map::new()).is_ok());
    }

    #[test]
    fn decisions_round_trip_on_the_wire() {
        let kind: ActionKind = serde_json::from_str("\"okta.add_to_group\"").unwrap();
        assert_eq!(kind, ActionKind::OktaAddToGroup);
        assert_eq!(
            serde_json::to_string(&Condition::UnlessAcknowledged).unwrap(),
            "\"unless_acknowledged\""
        );
        assert!(serde_json::from_str::<ActionKind>("\"okta.delete_user\"").is_err());
    }
}
