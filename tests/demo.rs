//! `vigil demo`, the README's first command, run as a user would (the built binary, no
//! configuration): the whole pipeline on the embedded broker detects every injected attack, and
//! the requests its dry-run connectors recorded are the responses the playbook calls for, shaped
//! as the vendors' APIs want them.

mod common;

use std::collections::HashMap;

use common::{stderr, stdout};
use serde_json::Value;

/// The responses each attack must get (the product's playbook), at least.
const EXPECTED: &[(&str, &[&str])] = &[
    (
        "credential-stuffing",
        &["okta.add_to_group", "slack.notify"],
    ),
    (
        "mfa-fatigue",
        &[
            "okta.clear_sessions",
            "okta.suspend_user",
            "pagerduty.trigger",
            "slack.notify",
        ],
    ),
    (
        "session-theft",
        &[
            "okta.clear_sessions",
            "okta.suspend_user",
            "pagerduty.trigger",
            "slack.notify",
        ],
    ),
    (
        "user-reported",
        &[
            "okta.clear_sessions",
            "okta.reset_password",
            "okta.add_to_group",
            "slack.notify",
        ],
    ),
    (
        "admin-backdoor",
        &["okta.suspend_user", "pagerduty.trigger", "slack.notify"],
    ),
];

#[test]
fn the_demo_runs_the_pipeline_and_records_the_expected_requests() {
    let dir = tempfile::tempdir().unwrap();
    let report_path = dir.path().join("report.json");
    // Fewer users than the default keep the debug build quick; 15 days let baselines learn.
    // Credentials in the environment change nothing: the demo never reaches a vendor (an Okta
    // token without an Okta URL would even be a configuration error outside the demo).
    let out = common::vigil()
        .args([
            "demo",
            "--users",
            "40",
            "--days",
            "15",
            "--report",
            report_path.to_str().unwrap(),
        ])
        .env("VIGIL_OKTA_TOKEN", "okta-token-in-the-environment")
        .env("VIGIL_SLACK_TOKEN", "xoxb-in-the-environment")
        .env(
            "VIGIL_PAGERDUTY_ROUTING_KEY",
            "routing-key-in-the-environment",
        )
        .output()
        .unwrap();
    let text = stdout(&out);
    assert!(out.status.success(), "{text}\n{}", stderr(&out));
    for (attack, _) in EXPECTED {
        let line = text
            .lines()
            .find(|l| l.trim_start().starts_with(attack))
            .unwrap_or_else(|| panic!("no summary line for {attack}:\n{text}"));
        assert!(line.contains("detected by"), "{line}");
    }
    assert!(text.contains(", 0 rule errors"), "{text}");
    assert!(
        text.contains("nothing was sent to Okta, Slack or PagerDuty"),
        "{text}"
    );

    let report: Value = serde_json::from_slice(&std::fs::read(&report_path).unwrap()).unwrap();
    let ledger = report["ledger"].as_object().unwrap();
    // Every action of every decision has an outcome, and every dry-run request is the one the
    // vendor's API documents for that action and target.
    let mut by_user: HashMap<String, Vec<(String, String)>> = HashMap::new();
    for decision in report["decisions"].as_array().unwrap() {
        for action in decision["actions"].as_array().unwrap() {
            let id = action["action_id"].as_str().unwrap();
            let entry = ledger
                .get(id)
                .unwrap_or_else(|| panic!("no ledger record for {action}"));
            let kind = action["type"].as_str().unwrap();
            let status = entry["status"].as_str().unwrap();
            match kind {
                "audit.record" => assert_eq!(status, "succeeded", "{entry}"),
                _ => {
                    assert!(
                        ["dry_run", "scheduled", "cancelled"].contains(&status),
                        "{entry}"
                    );
                    if status == "dry_run" {
                        check_request(kind, action, &entry["detail"]);
                    }
                }
            }
            by_user
                .entry(action["target"].as_str().unwrap().to_owned())
                .or_default()
                .push((kind.to_owned(), status.to_owned()));
        }
    }
    for (attack, kinds) in EXPECTED {
        let injected = report["injected"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["attack"] == *attack)
            .unwrap();
        let victim = injected["user_id"].as_str().unwrap();
        let got = by_user.get(victim).cloned().unwrap_or_default();
        for kind in *kinds {
            assert!(
                got.iter()
                    .any(|(k, status)| k == kind
                        && ["dry_run", "scheduled"].contains(&status.as_str())),
                "{attack}: no {kind} for {victim}; got {got:?}"
            );
        }
    }
}

/// The recorded request of a dry-run `action` is the vendor's documented call for it.
fn check_request(kind: &str, action: &Value, detail: &Value) {
    let target = action["target"].as_str().unwrap();
    let method = detail["method"].as_str().unwrap();
    let url = detail["url"].as_str().unwrap();
    let path = url::Url::parse(url).unwrap().path().to_owned();
    let (want_method, want_path) = match kind {
        "okta.clear_sessions" => ("DELETE", format!("/api/v1/users/{target}/sessions")),
        "okta.reset_password" => (
            "POST",
            format!("/api/v1/users/{target}/lifecycle/reset_password"),
        ),
        "okta.suspend_user" => ("POST", format!("/api/v1/users/{target}/lifecycle/suspend")),
        "okta.add_to_group" => {
            let group = action["params"]["group_id"].as_str().unwrap();
            ("PUT", format!("/api/v1/groups/{group}/users/{target}"))
        }
        "slack.notify" => {
            assert_eq!(
                detail["body"]["metadata"]["event_payload"]["action_id"], action["action_id"],
                "{detail}"
            );
            assert!(detail["body"]["channel"].is_string(), "{detail}");
            ("POST", "/api/chat.postMessage".to_owned())
        }
        "pagerduty.trigger" => {
            assert_eq!(detail["body"]["event_action"], "trigger", "{detail}");
            assert_eq!(detail["body"]["routing_key"], "[redacted]", "{detail}");
            assert_eq!(
                detail["body"]["dedup_key"],
                format!("vigil-{target}"),
                "{detail}"
            );
            ("POST", "/v2/enqueue".to_owned())
        }
        other => panic!("the demo's pack asked for {other}: add its documented request here"),
    };
    assert_eq!(
        (method, path.as_str()),
        (want_method, want_path.as_str()),
        "{detail}"
    );
    // The Events API authenticates by the routing key in the body; the others by a header
    // that a dry run shows, never with its value.
    let auth = if kind == "pagerduty.trigger" {
        Value::Null
    } else {
        Value::from("[redacted]")
    };
    assert_eq!(detail["headers"]["Authorization"], auth, "{detail}");
}
