//! What a rule returns (a finding), checked strictly: a policy is code under review, and a typo
//! in an action must be an error, not a silently different response.

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::decision::{ActionKind, Condition, Severity};

/// A rule's verdict, as validated from the policy's output.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Finding {
    /// The rule name (the package's last component).
    pub rule: String,
    /// How bad it is.
    pub severity: Severity,
    /// Contribution to the user's risk score, 0–100.
    #[serde(default)]
    pub risk_weight: u32,
    /// One line for humans.
    pub summary: String,
    /// The state values that mattered.
    #[serde(default = "empty_object")]
    pub evidence: Value,
    /// Distinguishes two findings of one rule on one event.
    #[serde(default)]
    pub key: String,
    /// What to do.
    #[serde(default)]
    pub actions: Vec<ActionSpec>,
}

/// An action as a policy asks for it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionSpec {
    /// What to do.
    #[serde(rename = "type")]
    pub kind: ActionKind,
    /// On whom; the event's user when absent.
    #[serde(default)]
    pub target: Option<String>,
    /// Parameters, validated per kind.
    #[serde(default)]
    pub params: Map<String, Value>,
    /// Delay after the event.
    #[serde(default)]
    pub after_secs: u64,
    /// Checked at the due time.
    #[serde(default)]
    pub conditions: Vec<Condition>,
}

fn empty_object() -> Value {
    Value::Object(Map::new())
}

impl Finding {
    /// Validate one element of the entrypoint's result.
    pub fn from_json(value: Value) -> Result<Self, String> {
        let mut finding: Finding = serde_json::from_value(value).map_err(|e| e.to_string())?;
        if finding.rule.is_empty() {
            return Err("`rule` is empty".into());
        }
        if finding.risk_weight > 100 {
            return Err(format!("`risk_weight` {} is over 100", finding.risk_weight));
        }
        if !finding.evidence.is_object() {
            return Err("`evidence` must be an object".into());
        }
        for action in &mut finding.actions {
            action.params = action
                .kind
                .validate_params(std::mem::take(&mut action.params))?;
        }
        Ok(finding)
    }
}
