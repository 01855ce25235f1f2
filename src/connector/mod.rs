//! Vendor connectors: Okta, Slack and PagerDuty, built against the specs in ../shared/specs.
//!
//! One call of [`Connectors::execute`] is one attempt at one action (the respond stage retries
//! [`Failure::Retryable`] with backoff, and looks a [`Failure::MaybeApplied`] up with
//! [`Connectors::reconcile`] before trying again). A vendor without credentials runs dry: the
//! exact request it would have sent is returned, credentials redacted, and nothing is sent.

pub(crate) mod http;
pub(crate) mod okta;
mod pagerduty;
mod slack;

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::decision::{Action, ActionKind, Decision};

pub use okta::{OktaAuth, OktaConfig, TOKEN_ENV as OKTA_TOKEN_ENV};
pub use pagerduty::{dedup_key, PagerDutyConfig};
pub use slack::SlackConfig;

/// One action to carry out, with the decision it belongs to.
#[derive(Debug, Clone, Copy)]
pub struct ActionRequest<'a> {
    /// The decision (user, rule, evidence for messages).
    pub decision: &'a Decision,
    /// The action.
    pub action: &'a Action,
    /// Shown on a message re-sent after an uncertain crash ("possible repeat").
    pub note: Option<&'a str>,
}

/// What an attempt did.
#[derive(Debug, Clone, PartialEq)]
pub struct Executed {
    /// The outcome.
    pub outcome: Outcome,
    /// What to record: HTTP status, returned ids, the status read, a skip's `reason`, or for a
    /// dry run the request.
    pub detail: Value,
}

/// How an action ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The vendor did it.
    Done,
    /// It already was so (suspending a suspended user).
    AlreadyInState,
    /// Recorded, not sent: no credentials.
    DryRun,
    /// Not done because it does not fit the target's state (`detail.reason` says why).
    Skipped,
}

/// After a crash between intent and result, or an answer lost after sending: was it done?
#[derive(Debug, Clone, PartialEq)]
pub enum Reconciled {
    /// Yes: the vendor shows it (the evidence).
    AlreadyDone(Value),
    /// No, or it is safe to do again.
    NotDone,
    /// Cannot be known (a Slack incoming webhook).
    Unknown,
}

/// A PagerDuty incident's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncidentStatus {
    /// Open, nobody on it.
    Triggered,
    /// Someone is on it.
    Acknowledged,
    /// Closed.
    Resolved,
}

/// Why an attempt failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Failure {
    /// Not done at the vendor: try again (after `after` when the vendor said so).
    #[error("{detail}")]
    Retryable {
        /// The vendor's requested wait, by its own clock (Retry-After, X-Rate-Limit-Reset
        /// against Date); `Some(ZERO)` for a rate limit that named none.
        after: Option<Duration>,
        /// What happened.
        detail: String,
    },
    /// The request reached the vendor and its answer was lost or a 5xx (timed out after it
    /// was sent, connection cut while reading, server error): it may have been applied. Only
    /// actions a repeat would show (a password reset, a Slack post) fail so; the respond stage
    /// looks them up ([`Connectors::reconcile`]) before any retry.
    #[error("{detail} (may have been applied)")]
    MaybeApplied {
        /// The vendor's requested wait, if it named one.
        after: Option<Duration>,
        /// What happened.
        detail: String,
    },
    /// Trying again will not help.
    #[error("{detail}: {body}")]
    Permanent {
        /// HTTP status, when there was an answer.
        status: Option<u16>,
        /// The vendor's answer (truncated).
        body: String,
        /// What happened.
        detail: String,
    },
}

impl Failure {
    /// A permanent failure that is not the vendor's answer (bad input).
    pub fn permanent(detail: impl Into<String>) -> Self {
        Failure::Permanent {
            status: None,
            body: String::new(),
            detail: detail.into(),
        }
    }
}

/// Every vendor's client.
pub struct Connectors {
    okta: okta::Okta,
    slack: slack::Slack,
    pagerduty: pagerduty::PagerDuty,
}

impl Connectors {
    /// Clients for every vendor, each request bounded by `timeout`; `env` looks up the
    /// environment (credentials: `VIGIL_OKTA_TOKEN`, `VIGIL_SLACK_TOKEN`,
    /// `VIGIL_SLACK_WEBHOOK_URL`, `VIGIL_PAGERDUTY_ROUTING_KEY`, `VIGIL_PAGERDUTY_API_TOKEN`,
    /// unless the configuration names files).
    pub fn new(
        okta: &OktaConfig,
        slack: &SlackConfig,
        pagerduty: &PagerDutyConfig,
        timeout: Duration,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> anyhow::Result<Self> {
        let client = http::client(timeout)?;
        Ok(Connectors {
            okta: okta::Okta::new(okta, client.clone(), env)?,
            slack: slack::Slack::new(slack, okta, client.clone(), env)?,
            pagerduty: pagerduty::PagerDuty::new(pagerduty, okta, client, env)?,
        })
    }

    /// Connectors that only record requests, whatever credentials the files and the environment
    /// hold (`respond.dry_run`: shadow mode, and `vigil demo`, which must never reach a vendor).
    pub fn dry_run(
        okta: &OktaConfig,
        slack: &SlackConfig,
        pagerduty: &PagerDutyConfig,
        timeout: Duration,
    ) -> anyhow::Result<Self> {
        let okta = OktaConfig {
            token_file: None,
            ..okta.clone()
        };
        let slack = SlackConfig {
            token_file: None,
            webhook_url_file: None,
            ..slack.clone()
        };
        let pagerduty = PagerDutyConfig {
            routing_key_file: None,
            api_token_file: None,
            ..pagerduty.clone()
        };
        Self::new(&okta, &slack, &pagerduty, timeout, &|_| None)
    }

    /// Whether `kind` would only be recorded (no credentials for its vendor).
    pub fn is_dry_run(&self, kind: ActionKind) -> bool {
        match vendor(kind) {
            Vendor::Okta => self.okta.is_dry_run(),
            Vendor::Slack => self.slack.is_dry_run(),
            Vendor::PagerDuty => self.pagerduty.is_dry_run(),
            Vendor::None => false,
        }
    }

    /// One attempt at the action. An answer lost after the request was sent is
    /// [`Failure::MaybeApplied`] only for actions a repeat would show ([`repeatable`] is
    /// false); for the others it is simply [`Failure::Retryable`].
    pub async fn execute(&self, request: &ActionRequest<'_>) -> Result<Executed, Failure> {
        let result = match vendor(request.action.kind) {
            Vendor::Okta => self.okta.execute(request.action).await,
            Vendor::Slack => {
                let incident = self.incident_link(request.decision).await;
                self.slack.notify(request, incident.as_deref()).await
            }
            Vendor::PagerDuty => self.pagerduty.send(request).await,
            // audit.record: the ledger entry is the whole action.
            Vendor::None => Ok(Executed {
                outcome: Outcome::Done,
                detail: Value::Object(serde_json::Map::new()),
            }),
        };
        match result {
            Err(Failure::MaybeApplied { after, detail }) if repeatable(request.action.kind) => {
                Err(Failure::Retryable {
                    after,
                    detail: format!("{detail} (may have been applied; safe to repeat)"),
                })
            }
            other => other,
        }
    }

    /// Whether an action whose intent was recorded at `intent_at` was done (after a crash, or
    /// after [`Failure::MaybeApplied`]): asked of the vendor for the actions a repeat would show
    /// (password reset, Slack post); the others are safe to repeat.
    pub async fn reconcile(
        &self,
        request: &ActionRequest<'_>,
        intent_at: DateTime<Utc>,
    ) -> Result<Reconciled, Failure> {
        match request.action.kind {
            ActionKind::OktaResetPassword => self.okta.reset_since(request.action, intent_at).await,
            ActionKind::SlackNotify => self.slack.posted_since(request.action, intent_at).await,
            kind => {
                debug_assert!(repeatable(kind), "{} needs a lookup", kind.as_str());
                Ok(Reconciled::NotDone)
            }
        }
    }

    /// The status of the PagerDuty incident with `dedup_key`; `None` when there is none or no
    /// REST API token.
    pub async fn incident_status(
        &self,
        dedup_key: &str,
    ) -> Result<Option<IncidentStatus>, Failure> {
        self.pagerduty.incident_status(dedup_key).await
    }

    /// The user's PagerDuty incident page, when the REST API can say; a failed lookup only
    /// costs the link.
    async fn incident_link(&self, decision: &Decision) -> Option<String> {
        let user = decision.user.as_ref()?;
        match self.pagerduty.incident_url(&dedup_key(&user.id)).await {
            Ok(url) => url,
            Err(e) => {
                tracing::debug!(error = %e, "no PagerDuty link for the Slack message");
                None
            }
        }
    }

    /// Post an operational alert (the circuit opened) to the default Slack channel.
    pub async fn alert(&self, text: &str) -> Result<Executed, Failure> {
        self.slack.alert(text).await
    }
}

/// Whether doing `kind` again after it was done changes nothing a person would see: the call
/// is idempotent (session clearing, group PUT, PagerDuty with its dedup key), or the connector
/// reads the state first (suspend, unsuspend). A password reset sends another email and a
/// Slack post shows twice: those are looked up instead ([`Connectors::reconcile`]).
pub fn repeatable(kind: ActionKind) -> bool {
    !matches!(
        kind,
        ActionKind::OktaResetPassword | ActionKind::SlackNotify
    )
}

enum Vendor {
    Okta,
    Slack,
    PagerDuty,
    None,
}

fn vendor(kind: ActionKind) -> Vendor {
    match kind {
        ActionKind::OktaClearSessions
        | ActionKind::OktaResetPassword
        | ActionKind::OktaExpirePassword
        | ActionKind::OktaSuspendUser
        | ActionKind::OktaUnsuspendUser
        | ActionKind::OktaResetFactors
        | ActionKind::OktaAddToGroup => Vendor::Okta,
        ActionKind::SlackNotify => Vendor::Slack,
        ActionKind::PagerdutyTrigger | ActionKind::PagerdutyResolve => Vendor::PagerDuty,
        ActionKind::AuditRecord => Vendor::None,
    }
}

/// The Okta admin console page of a user, for messages.
fn admin_user_link(admin: &str, user_id: &str) -> String {
    format!(
        "{}/admin/user/profile/view/{}",
        admin.trim_end_matches('/'),
        url_segment(user_id)
    )
}

/// `text` percent-encoded as one URL path segment.
fn url_segment(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}
