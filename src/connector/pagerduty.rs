//! PagerDuty: Events API v2 (pagerduty-events-v2-openapi.json) to trigger and resolve, the REST
//! API (pagerduty-rest-openapi.json) to read an incident's status for conditional actions.
//!
//! The dedup key is per user (`vigil-<user id>`): every decision about a user under attack
//! lands on the same open incident, and a repeated trigger is merged by PagerDuty, so a
//! trigger is idempotent.

use std::path::PathBuf;

use reqwest::{Method, Url};
use serde::Deserialize;
use serde_json::{json, Value};

use super::http::{self, Call, Secret};
use super::{
    admin_user_link, ActionRequest, Executed, Failure, IncidentStatus, OktaConfig, Outcome,
};
use crate::decision::{ActionKind, Severity};

/// Environment variable of the Events API routing (integration) key.
pub const ROUTING_KEY_ENV: &str = "VIGIL_PAGERDUTY_ROUTING_KEY";
/// Environment variable of the REST API token.
pub const API_TOKEN_ENV: &str = "VIGIL_PAGERDUTY_API_TOKEN";

/// The PagerDuty connector's settings (`[pagerduty]`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PagerDutyConfig {
    /// Events API base URL.
    pub events_url: String,
    /// REST API base URL.
    pub api_url: String,
    /// File holding the routing key (else `VIGIL_PAGERDUTY_ROUTING_KEY`).
    pub routing_key_file: Option<PathBuf>,
    /// File holding a read-only REST API token (else `VIGIL_PAGERDUTY_API_TOKEN`); without it
    /// "unless acknowledged" cannot see acknowledgements.
    pub api_token_file: Option<PathBuf>,
    /// Email of a PagerDuty user, sent as the `From` header on REST requests (PagerDuty wants
    /// it on writes and for account-level tokens; reads here work without it).
    pub from_email: Option<String>,
}

impl Default for PagerDutyConfig {
    fn default() -> Self {
        PagerDutyConfig {
            events_url: "https://events.pagerduty.com".into(),
            api_url: "https://api.pagerduty.com".into(),
            routing_key_file: None,
            api_token_file: None,
            from_email: None,
        }
    }
}

/// The dedup key of `user_id`'s incident: one open incident per user under attack.
pub fn dedup_key(user_id: &str) -> String {
    format!("vigil-{user_id}")
}

/// PagerDuty's severities (Events API v2 `payload.severity`), least severe first.
const SEVERITIES: [&str; 4] = ["info", "warning", "error", "critical"];

/// PagerDuty severity of a decision: at least what its severity says (a critical decision
/// stays critical), raised by a high risk score, never lowered by a low one. The service's
/// urgency follows (with severity-based urgency, critical and error page at high urgency).
pub fn severity(decision: Severity, risk_score: u32) -> &'static str {
    let floor = match decision {
        Severity::Critical => 3,
        Severity::High => 2,
        Severity::Medium => 1,
        Severity::Low | Severity::Info => 0,
    };
    let by_score = match risk_score {
        90.. => 3,
        70..=89 => 2,
        40..=69 => 1,
        _ => 0,
    };
    SEVERITIES[floor.max(by_score)]
}

/// The PagerDuty client.
pub struct PagerDuty {
    events: Url,
    api: Url,
    routing_key: Option<Secret>,
    api_token: Option<Secret>,
    from_email: Option<String>,
    admin_console: Option<String>,
    client: reqwest::Client,
}

impl PagerDuty {
    /// A client for `config`; `okta` gives the admin console for links.
    pub fn new(
        config: &PagerDutyConfig,
        okta: &OktaConfig,
        client: reqwest::Client,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> anyhow::Result<Self> {
        Ok(PagerDuty {
            events: http::base_url("pagerduty.events_url", &config.events_url)?,
            api: http::base_url("pagerduty.api_url", &config.api_url)?,
            routing_key: http::load_secret(
                config.routing_key_file.as_deref(),
                ROUTING_KEY_ENV,
                env,
            )?,
            api_token: http::load_secret(config.api_token_file.as_deref(), API_TOKEN_ENV, env)?,
            from_email: config.from_email.clone(),
            admin_console: okta.admin_console(),
            client,
        })
    }

    /// Whether events are only recorded.
    pub fn is_dry_run(&self) -> bool {
        self.routing_key.is_none()
    }

    /// Trigger or resolve the user's incident.
    pub async fn send(&self, request: &ActionRequest<'_>) -> Result<Executed, Failure> {
        let d = request.decision;
        let user = d
            .user
            .as_ref()
            .map(|u| u.id.clone())
            .unwrap_or_else(|| request.action.target.clone());
        let key = dedup_key(&user);
        let routing_key = self
            .routing_key
            .as_ref()
            .map_or("[redacted]", |k| k.expose());
        let mut body = json!({"routing_key": routing_key, "dedup_key": key});
        if request.action.kind == ActionKind::PagerdutyResolve {
            body["event_action"] = json!("resolve");
        } else {
            let login = d
                .user
                .as_ref()
                .and_then(|u| u.login.clone())
                .unwrap_or(user.clone());
            let summary: String = format!("{}: {}", d.rule, d.summary)
                .chars()
                .take(1024)
                .collect();
            body["event_action"] = json!("trigger");
            body["payload"] = json!({
                "summary": summary,
                "source": "vigil",
                "severity": severity(d.severity, d.risk_score),
                "timestamp": d.event.published,
                "component": login,
                "group": "identity",
                "class": d.rule,
                "custom_details": {
                    "user": d.user,
                    "rule": d.rule,
                    "risk_score": d.risk_score,
                    "evidence": d.evidence,
                    "decision_id": d.decision_id,
                    "action_id": request.action.action_id,
                    "event": d.event,
                },
            });
            if let Some(admin) = &self.admin_console {
                body["links"] =
                    json!([{"href": admin_user_link(admin, &user), "text": "Okta user"}]);
            }
        }
        let call =
            Call::new(Method::POST, http::join(&self.events, &["v2", "enqueue"])?).json(body);
        if self.is_dry_run() {
            return Ok(Executed {
                outcome: Outcome::DryRun,
                detail: call.describe(),
            });
        }
        let answer = call.send(&self.client).await?.check(None)?;
        Ok(Executed {
            outcome: Outcome::Done,
            detail: json!({"http_status": answer.status, "dedup_key": key}),
        })
    }

    /// The status of the newest incident with `dedup_key`.
    pub async fn incident_status(
        &self,
        dedup_key: &str,
    ) -> Result<Option<IncidentStatus>, Failure> {
        let incident = self.newest_incident(dedup_key).await?;
        Ok(match incident.as_ref().and_then(|i| i["status"].as_str()) {
            Some("acknowledged") => Some(IncidentStatus::Acknowledged),
            Some("resolved") => Some(IncidentStatus::Resolved),
            Some(_) => Some(IncidentStatus::Triggered),
            None => None,
        })
    }

    /// The web page of the newest incident with `dedup_key`, for links.
    pub async fn incident_url(&self, dedup_key: &str) -> Result<Option<String>, Failure> {
        let incident = self.newest_incident(dedup_key).await?;
        Ok(incident.and_then(|i| i["html_url"].as_str().map(str::to_owned)))
    }

    /// The newest incident with `dedup_key` (REST API); `None` without an API token.
    async fn newest_incident(&self, dedup_key: &str) -> Result<Option<Value>, Failure> {
        let Some(token) = &self.api_token else {
            return Ok(None);
        };
        let mut call = Call::new(Method::GET, http::join(&self.api, &["incidents"])?);
        // The spec requires both headers on every REST request (Accept is the API version).
        call.headers = vec![
            ("Accept", "application/vnd.pagerduty+json;version=2".into()),
            ("Content-Type", "application/json".into()),
        ];
        if let Some(from) = &self.from_email {
            call.headers.push(("From", from.clone()));
        }
        // Without date_range=all PagerDuty searches only the last month, and an attack on a
        // user can outlive that; newest first, so the first page holds the one we want.
        call.url
            .query_pairs_mut()
            .append_pair("incident_key", dedup_key)
            .append_pair("date_range", "all")
            .append_pair("sort_by", "created_at:desc")
            .append_pair("limit", "100");
        call.auth = Some((
            "Authorization",
            Some(format!("Token token={}", token.expose())),
        ));
        let reply = call.send(&self.client).await?.check(None)?.json();
        Ok(newest(
            reply["incidents"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default(),
        )
        .cloned())
    }
}

/// The incident created last (RFC 3339 UTC timestamps compare as text); on a tie or without
/// timestamps, the first listed, as the request asked for newest first.
fn newest(incidents: &[Value]) -> Option<&Value> {
    incidents.iter().rev().max_by(|a, b| {
        a["created_at"]
            .as_str()
            .unwrap_or("")
            .cmp(b["created_at"].as_str().unwrap_or(""))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_incident_wins_whatever_the_order() {
        let list = [
            json!({"id": "old", "created_at": "2026-01-01T00:00:00Z"}),
            json!({"id": "new", "created_at": "2026-03-01T00:00:00Z"}),
            json!({"id": "mid", "created_at": "2026-02-01T00:00:00Z"}),
        ];
        assert_eq!(newest(&list).unwrap()["id"], "new");
        let untimed = [json!({"id": "first"}), json!({"id": "second"})];
        assert_eq!(newest(&untimed).unwrap()["id"], "first");
        assert!(newest(&[]).is_none());
    }

    #[test]
    fn severity_is_the_decisions_at_least_and_a_high_score_raises_it() {
        // A critical decision stays critical whatever its score.
        assert_eq!(severity(Severity::Critical, 0), "critical");
        assert_eq!(severity(Severity::Critical, 50), "critical");
        assert_eq!(severity(Severity::High, 10), "error");
        assert_eq!(severity(Severity::Medium, 0), "warning");
        assert_eq!(severity(Severity::Low, 0), "info");
        assert_eq!(severity(Severity::Info, 39), "info");
        // The score raises a milder decision.
        assert_eq!(severity(Severity::Info, 90), "critical");
        assert_eq!(severity(Severity::Low, 89), "error");
        assert_eq!(severity(Severity::Medium, 75), "error");
        assert_eq!(severity(Severity::High, 40), "error");
        // Every value is in the spec's enum.
        for s in [
            Severity::Info,
            Severity::Low,
            Severity::Medium,
            Severity::High,
            Severity::Critical,
        ] {
            for score in [0, 40, 70, 90, 100] {
                assert!(SEVERITIES.contains(&severity(s, score)));
            }
        }
    }

    #[test]
    fn the_dedup_key_is_per_user() {
        assert_eq!(dedup_key("00u1"), "vigil-00u1");
        assert_ne!(dedup_key("00u1"), dedup_key("00u2"));
    }
}
