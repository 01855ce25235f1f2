//! TEMPORARY interface stub (replaced by the connectors branch).
#![allow(missing_docs, dead_code, unused_variables)]
use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::decision::{Action, ActionKind, Decision};

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct OktaConfig {
    pub base_url: Option<String>,
    pub token_file: Option<PathBuf>,
}
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SlackConfig {
    pub base_url: String,
}
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PagerDutyConfig {
    pub events_url: String,
}

pub struct Connectors;
pub struct ActionRequest<'a> {
    pub decision: &'a Decision,
    pub action: &'a Action,
    pub note: Option<&'a str>,
}
pub struct Executed {
    pub outcome: Outcome,
    pub detail: serde_json::Value,
}
pub enum Outcome {
    Done,
    AlreadyInState,
    DryRun,
    Skipped,
}
pub enum Reconciled {
    AlreadyDone(serde_json::Value),
    NotDone,
    Unknown,
}
pub enum IncidentStatus {
    Triggered,
    Acknowledged,
    Resolved,
}
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error("retryable: {detail}")]
    Retryable {
        after: Option<Duration>,
        detail: String,
    },
    #[error("permanent: {detail}")]
    Permanent {
        status: Option<u16>,
        body: String,
        detail: String,
    },
}
pub fn dedup_key(user_id: &str) -> String {
    format!("vigil-{user_id}")
}
impl Connectors {
    pub fn new(
        okta: &OktaConfig,
        slack: &SlackConfig,
        pagerduty: &PagerDutyConfig,
        timeout: Duration,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> anyhow::Result<Self> {
        Ok(Connectors)
    }
    pub fn is_dry_run(&self, kind: ActionKind) -> bool {
        true
    }
    pub async fn execute(&self, request: &ActionRequest<'_>) -> Result<Executed, Failure> {
        Ok(Executed {
            outcome: Outcome::DryRun,
            detail: serde_json::Value::Null,
        })
    }
    pub async fn reconcile(
        &self,
        request: &ActionRequest<'_>,
        intent_at: DateTime<Utc>,
    ) -> Result<Reconciled, Failure> {
        Ok(Reconciled::NotDone)
    }
    pub async fn incident_status(
        &self,
        dedup_key: &str,
    ) -> Result<Option<IncidentStatus>, Failure> {
        Ok(None)
    }
    pub async fn alert(&self, text: &str) -> Result<Executed, Failure> {
        Ok(Executed {
            outcome: Outcome::DryRun,
            detail: serde_json::Value::Null,
        })
    }
}
