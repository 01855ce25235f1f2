//! Respond-stage helpers: decisions built like the policies build them, a configuration
//! pointing every connector at the HTTP fakes, the ledger read back.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde_json::{json, Map, Value};

use vigil::config::Config;
use vigil::decision::{action_id, decision_id, Action, ActionKind, Condition, Decision};

use super::fakes::Fakes;
use super::kafka::{produce, read_until};

/// The PagerDuty routing key the tests configure (32 characters, as the Events API wants).
pub const ROUTING_KEY: &str = "R0123456789abcdef0123456789abcde";

/// One action of a test decision.
pub struct Act {
    pub kind: ActionKind,
    pub params: Value,
    pub after_secs: u64,
    pub conditions: Vec<Condition>,
}

/// An immediate action with `params`.
pub fn act(kind: ActionKind, params: Value) -> Act {
    Act {
        kind,
        params,
        after_secs: 0,
        conditions: Vec::new(),
    }
}

/// A delayed action with conditions.
pub fn delayed(kind: ActionKind, after_secs: u64, conditions: &[Condition]) -> Act {
    Act {
        kind,
        params: json!({}),
        after_secs,
        conditions: conditions.to_vec(),
    }
}

/// A decision about `user` for the event `event_uuid` published now, with `acts` (params
/// defaulted the way the policy loader does).
pub fn decision(user: &str, event_uuid: &str, acts: Vec<Act>) -> Decision {
    decision_at(user, event_uuid, chrono::Utc::now(), acts)
}

/// [`decision`] for an event published at `published`.
pub fn decision_at(
    user: &str,
    event_uuid: &str,
    published: chrono::DateTime<chrono::Utc>,
    acts: Vec<Act>,
) -> Decision {
    let id = decision_id(event_uuid, "test_rule", "");
    let actions = acts
        .into_iter()
        .enumerate()
        .map(|(i, a)| {
            let params: Map<String, Value> = a.params.as_object().cloned().unwrap_or_default();
            Action {
                action_id: action_id(&id, a.kind, user, i),
                kind: a.kind,
                target: user.to_owned(),
                params: a.kind.validate_params(params).expect("valid params"),
                after_secs: a.after_secs,
                due_at: rfc3339(published + chrono::Duration::seconds(a.after_secs as i64)),
                conditions: a.conditions,
            }
        })
        .collect();
    Decision {
        schema: vigil::decision::SCHEMA_VERSION,
        decision_id: id,
        event: vigil::decision::EventRef {
            uuid: event_uuid.to_owned(),
            event_type: "user.session.start".into(),
            published: rfc3339(published),
        },
        user: Some(vigil::decision::UserInfo {
            id: user.to_owned(),
            login: Some(format!("{user}@example.com")),
        }),
        rule: "test_rule".into(),
        severity: vigil::decision::Severity::High,
        risk_score: 85,
        summary: format!("test decision about {user}"),
        evidence: json!({"failed_signins_10m": 3}),
        policy_revision: "test".into(),
        actions,
    }
}

fn rfc3339(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Produce `decisions` to the decisions topic, keyed by user like detect does.
pub fn produce_decisions(config: &Config, decisions: &[&Decision]) {
    let records: Vec<_> = decisions
        .iter()
        .map(|d| {
            (
                d.user.as_ref().map(|u| u.id.clone()),
                serde_json::to_vec(d).unwrap(),
            )
        })
        .collect();
    produce(config, &config.topics.decisions, &records);
}

/// Point every connector of `config` at `fakes`, with credentials in files under `dir`
/// (`with_credentials = false` leaves them out: dry run). Retries are quick.
pub fn use_fakes(config: &mut Config, fakes: &Fakes, dir: &Path, with_credentials: bool) {
    let secret = |name: &str, value: &str| {
        let path = dir.join(name);
        std::fs::write(&path, format!("{value}\n")).unwrap();
        Some(path)
    };
    config.okta.base_url = Some(fakes.okta_base());
    config.slack.base_url = fakes.slack_base();
    config.slack.channel = Some("C0SECURITY".into());
    config.pagerduty.events_url = fakes.pd_events_base();
    config.pagerduty.api_url = fakes.pd_api_base();
    if with_credentials {
        config.okta.token_file = secret("okta-token", "okta-test-token");
        config.slack.token_file = secret("slack-token", "xoxb-test-token");
        config.pagerduty.routing_key_file = secret("pd-routing-key", ROUTING_KEY);
        config.pagerduty.api_token_file = secret("pd-api-token", "pd-test-api-token");
    }
    config.respond.retry_min_delay_ms = 50;
    config.respond.retry_max_delay_ms = 500;
    config.respond.retry_budget_secs = 20;
    config.respond.http_timeout_ms = 2_000;
}

/// The newest ledger record of each action in `action_ids`, once every one of them is final.
pub fn final_ledger(config: &Config, action_ids: &[&str]) -> BTreeMap<String, Value> {
    let newest = |records: &[super::kafka::Record]| {
        let mut newest: BTreeMap<String, Value> = BTreeMap::new();
        for r in records {
            let entry = r.json();
            newest.insert(entry["action_id"].as_str().unwrap().to_owned(), entry);
        }
        newest
    };
    let is_final = |e: &Value| !matches!(e["status"].as_str(), Some("scheduled" | "started"));
    let records = read_until(
        config,
        &config.topics.ledger,
        Duration::from_secs(60),
        |records| {
            let newest = newest(records);
            action_ids
                .iter()
                .all(|id| newest.get(*id).is_some_and(is_final))
        },
    );
    let newest = newest(&records);
    for id in action_ids {
        let entry = newest
            .get(*id)
            .unwrap_or_else(|| panic!("no ledger record of {id}"));
        assert!(is_final(entry), "{id} is not final: {entry}");
    }
    newest
}

/// Every ledger record (all steps), in order per partition.
pub fn ledger_records(config: &Config, at_least: usize) -> Vec<Value> {
    read_until(
        config,
        &config.topics.ledger,
        Duration::from_secs(30),
        |r| r.len() >= at_least,
    )
    .iter()
    .map(super::kafka::Record::json)
    .collect()
}
