//! What the demo prints: a line per decision and per action outcome as they happen, a progress
//! line, and the final summary.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::observer::Observer;
use crate::decision::{Decision, Severity};
use crate::ledger::{LedgerEntry, Status};
use crate::simulate::InjectedAttack;

/// A decision as one line, then its actions as the policy asked for them.
pub fn decision(d: &Decision) -> String {
    let severity = match d.severity {
        Severity::Critical => "CRIT",
        Severity::High => "HIGH",
        Severity::Medium => "MED ",
        Severity::Low => "LOW ",
        Severity::Info => "INFO",
    };
    let time = d.event.published.get(11..19).unwrap_or("");
    format!(
        "{time} decision {severity} risk {:>3} {:<24} {:<28} {}",
        d.risk_score,
        d.rule,
        who(d),
        d.summary
    )
}

/// An action's new status as one line: the request a dry run recorded, when a delayed action
/// is due, or why it ended as it did.
pub fn action(entry: &LedgerEntry, login: &str, now: DateTime<Utc>) -> String {
    let what = match entry.status {
        Status::DryRun => request(&entry.detail),
        Status::Scheduled => {
            let minutes = (entry.due_at - now).num_seconds().max(0) as f64 / 60.0;
            format!(
                "due {} (in {minutes:.0} min)",
                entry.due_at.format("%H:%M:%S")
            )
        }
        _ => entry.reason.clone().unwrap_or_default(),
    };
    format!(
        "         action   {:<16} {:<21} {login:<28} {what}",
        entry.status.as_str(),
        entry.kind.as_str(),
    )
}

/// `METHOD URL` of a recorded request (the URL names the target for Okta), with the Slack
/// channel or the PagerDuty dedup key for the others.
fn request(detail: &Value) -> String {
    let body = &detail["body"];
    let target = match (body["channel"].as_str(), body["dedup_key"].as_str()) {
        (Some(channel), _) => format!(" channel {channel}"),
        (_, Some(key)) => format!(" dedup_key {key}"),
        _ => String::new(),
    };
    format!(
        "{} {}{target}",
        detail["method"].as_str().unwrap_or("?"),
        detail["url"].as_str().unwrap_or("?")
    )
}

/// The user a decision is about, as people know them.
pub fn who(d: &Decision) -> String {
    d.user
        .as_ref()
        .map(|u| u.login.clone().unwrap_or_else(|| u.id.clone()))
        .unwrap_or_default()
}

/// Rules that decided on each injected attack's events (empty: missed).
pub fn detections(
    injected: &[InjectedAttack],
    decisions: &[Decision],
) -> Vec<(String, BTreeSet<String>)> {
    let mut rules_by_event: HashMap<&str, BTreeSet<String>> = HashMap::new();
    for d in decisions {
        rules_by_event
            .entry(d.event.uuid.as_str())
            .or_default()
            .insert(d.rule.clone());
    }
    injected
        .iter()
        .map(|attack| {
            let rules = attack
                .event_uuids
                .iter()
                .filter_map(|uuid| rules_by_event.get(uuid.as_str()))
                .flatten()
                .cloned()
                .collect();
            (attack.attack.name().to_owned(), rules)
        })
        .collect()
}

/// The final summary, as lines.
pub fn summary(
    observer: &Observer,
    injected: &[InjectedAttack],
    events: usize,
    seconds: f64,
    rule_errors: u64,
    now: DateTime<Utc>,
) -> Vec<String> {
    let mut lines = vec![
        String::new(),
        format!(
            "summary: {events} events in {seconds:.1} s ({:.0} events/s through the pipeline), {} decisions, {rule_errors} rule errors",
            events as f64 / seconds.max(1e-9),
            observer.decisions.len(),
        ),
    ];
    let mut by_rule: BTreeMap<&str, u64> = BTreeMap::new();
    for d in &observer.decisions {
        *by_rule.entry(d.rule.as_str()).or_default() += 1;
    }
    lines.push(format!("decisions by rule: {}", join(&by_rule)));
    let mut by_status: BTreeMap<&str, u64> = BTreeMap::new();
    let mut by_kind: BTreeMap<&str, u64> = BTreeMap::new();
    for entry in observer.ledger.values() {
        *by_status.entry(entry.status.as_str()).or_default() += 1;
        *by_kind.entry(entry.kind.as_str()).or_default() += 1;
    }
    lines.push(format!("actions by type: {}", join(&by_kind)));
    lines.push(format!("actions by outcome: {}", join(&by_status)));
    let mut pending: Vec<&LedgerEntry> = observer
        .ledger
        .values()
        .filter(|e| e.status == Status::Scheduled)
        .collect();
    pending.sort_by_key(|e| e.due_at);
    if !pending.is_empty() {
        lines.push("delayed actions pending (cancelled at their due time by an acknowledgement, an override or the conditions they carry):".into());
        let logins = logins(&observer.decisions);
        for entry in pending {
            lines.push(action(entry, login(&logins, entry), now));
        }
    }
    let dry = by_status.get("dry_run").copied().unwrap_or(0);
    lines.push(format!(
        "connectors in dry run: {dry} requests recorded in the ledger; nothing was sent to Okta, Slack or PagerDuty"
    ));
    lines.push("injected attacks:".into());
    for ((name, rules), attack) in detections(injected, &observer.decisions)
        .into_iter()
        .zip(injected)
    {
        let verdict = if rules.is_empty() {
            "MISSED".to_owned()
        } else {
            format!(
                "detected by {}",
                rules.into_iter().collect::<Vec<_>>().join(", ")
            )
        };
        lines.push(format!("  {name:<20} {:<28} {verdict}", attack.user_login));
    }
    lines
}

/// Okta user id → login, from the decisions.
pub fn logins(decisions: &[Decision]) -> HashMap<String, String> {
    decisions
        .iter()
        .filter_map(|d| {
            let user = d.user.as_ref()?;
            Some((user.id.clone(), user.login.clone()?))
        })
        .collect()
}

/// The login of the user an entry's action is about (else the target).
pub fn login<'a>(logins: &'a HashMap<String, String>, entry: &'a LedgerEntry) -> &'a str {
    entry
        .user_id
        .as_ref()
        .and_then(|id| logins.get(id))
        .map_or(entry.target.as_str(), String::as_str)
}

fn join(counts: &BTreeMap<&str, u64>) -> String {
    if counts.is_empty() {
        return "none".into();
    }
    counts
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}
