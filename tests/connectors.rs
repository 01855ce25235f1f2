//! The vendor connectors against the HTTP fakes: the requests each action sends (checked by the
//! fakes against the specs), already-in-state and skip cases, rate limits and errors, dry run,
//! reconciliation after a crash, and that the fakes' routes are the specs' routes.

mod common;

use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};

use common::fakes::{FakeResponse, Fakes, SPEC_ROUTES};
use common::respond::{act, decision, ROUTING_KEY};
use vigil::connector::{
    ActionRequest, Connectors, Failure, IncidentStatus, OktaConfig, Outcome, PagerDutyConfig,
    Reconciled, SlackConfig,
};
use vigil::decision::{ActionKind, Decision};

/// Connectors pointed at `fakes`, credentials from a fake environment (`with` = which ones).
fn connectors(fakes: &Fakes, with: &[&str]) -> Connectors {
    let okta = OktaConfig {
        base_url: Some(fakes.okta_base()),
        ..OktaConfig::default()
    };
    let slack = SlackConfig {
        base_url: fakes.slack_base(),
        channel: Some("C0SECURITY".into()),
        ..SlackConfig::default()
    };
    let pagerduty = PagerDutyConfig {
        events_url: fakes.pd_events_base(),
        api_url: fakes.pd_api_base(),
        ..PagerDutyConfig::default()
    };
    let webhook = fakes.slack_webhook();
    let with: Vec<String> = with.iter().map(|s| s.to_string()).collect();
    let env = move |name: &str| -> Option<String> {
        if !with.iter().any(|w| w == name) {
            return None;
        }
        Some(match name {
            "VIGIL_OKTA_TOKEN" => "okta-test-token".into(),
            "VIGIL_SLACK_TOKEN" => "xoxb-test-token".into(),
            "VIGIL_SLACK_WEBHOOK_URL" => webhook.clone(),
            "VIGIL_PAGERDUTY_ROUTING_KEY" => ROUTING_KEY.into(),
            "VIGIL_PAGERDUTY_API_TOKEN" => "pd-test-api-token".into(),
            _ => return None,
        })
    };
    Connectors::new(&okta, &slack, &pagerduty, Duration::from_secs(2), &env).unwrap()
}

const ALL: &[&str] = &[
    "VIGIL_OKTA_TOKEN",
    "VIGIL_SLACK_TOKEN",
    "VIGIL_PAGERDUTY_ROUTING_KEY",
    "VIGIL_PAGERDUTY_API_TOKEN",
];

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn one(user: &str, kind: ActionKind, params: Value) -> Decision {
    decision(
        user,
        &format!("e-{user}-{}", kind.as_str()),
        vec![act(kind, params)],
    )
}

fn run(c: &Connectors, d: &Decision) -> Result<vigil::connector::Executed, Failure> {
    runtime().block_on(c.execute(&ActionRequest {
        decision: d,
        action: &d.actions[0],
        note: None,
    }))
}

#[test]
fn okta_actions_send_the_spec_requests() {
    let fakes = Fakes::start();
    fakes.add_user("00uA", "ACTIVE");
    let c = connectors(&fakes, ALL);
    let cases = [
        (
            ActionKind::OktaClearSessions,
            json!({"oauth_tokens": true}),
            "DELETE",
            "/okta/api/v1/users/00uA/sessions",
            "oauthTokens=true",
        ),
        (
            ActionKind::OktaResetFactors,
            json!({}),
            "POST",
            "/okta/api/v1/users/00uA/lifecycle/reset_factors",
            "",
        ),
        (
            ActionKind::OktaAddToGroup,
            json!({"group_id": "00gSTEP"}),
            "PUT",
            "/okta/api/v1/groups/00gSTEP/users/00uA",
            "",
        ),
        (
            ActionKind::OktaResetPassword,
            json!({"send_email": false}),
            "POST",
            "/okta/api/v1/users/00uA/lifecycle/reset_password",
            "sendEmail=false&revokeSessions=true",
        ),
        (
            ActionKind::OktaExpirePassword,
            json!({}),
            "POST",
            "/okta/api/v1/users/00uA/lifecycle/expire_password",
            "",
        ),
    ];
    for (kind, params, method, path, query) in cases {
        let executed = run(&c, &one("00uA", kind, params)).unwrap();
        assert_eq!(executed.outcome, Outcome::Done, "{kind:?}");
        let last = fakes.requests().pop().unwrap();
        assert_eq!(
            (
                last.method.as_str(),
                last.path.as_str(),
                last.query.as_str()
            ),
            (method, path, query)
        );
        assert_eq!(last.headers["authorization"], "SSWS okta-test-token");
    }
    assert_eq!(fakes.group_members("00gSTEP"), ["00uA"]);
    assert_eq!(
        fakes.user_status("00uA").as_deref(),
        Some("PASSWORD_EXPIRED")
    );
    // The reset link of sendEmail=false is a credential: not recorded.
    assert!(!fakes.requests().is_empty());
    assert_eq!(fakes.violations(), Vec::<String>::new());
}

#[test]
fn suspend_reads_the_status_first_and_fits_the_action_to_it() {
    let fakes = Fakes::start();
    fakes.add_user("00uACTIVE", "ACTIVE");
    fakes.add_user("00uSUSP", "SUSPENDED");
    fakes.add_user("00uREC", "RECOVERY");
    let c = connectors(&fakes, ALL);
    let suspend = |user: &str| run(&c, &one(user, ActionKind::OktaSuspendUser, json!({}))).unwrap();
    assert_eq!(suspend("00uACTIVE").outcome, Outcome::Done);
    assert_eq!(fakes.user_status("00uACTIVE").as_deref(), Some("SUSPENDED"));
    assert_eq!(suspend("00uSUSP").outcome, Outcome::AlreadyInState);
    let skipped = suspend("00uREC");
    assert_eq!(skipped.outcome, Outcome::Skipped);
    assert!(
        skipped.detail["reason"]
            .as_str()
            .unwrap()
            .contains("RECOVERY"),
        "{}",
        skipped.detail
    );
    assert_eq!(
        fakes.count_prefix("POST", "/okta/api/v1/users/00uSUSP/"),
        0,
        "no suspend sent"
    );
    assert_eq!(fakes.count_prefix("POST", "/okta/api/v1/users/00uREC/"), 0);
    let unsuspend = run(
        &c,
        &one("00uSUSP", ActionKind::OktaUnsuspendUser, json!({})),
    )
    .unwrap();
    assert_eq!(unsuspend.outcome, Outcome::Done);
    assert_eq!(fakes.user_status("00uSUSP").as_deref(), Some("ACTIVE"));
    // A user Okta does not know is a permanent failure with Okta's error.
    match run(
        &c,
        &one("00uNOBODY", ActionKind::OktaSuspendUser, json!({})),
    ) {
        Err(Failure::Permanent {
            status: Some(404),
            body,
            ..
        }) => assert!(body.contains("E0000007")),
        other => panic!("{other:?}"),
    }
    assert_eq!(fakes.violations(), Vec::<String>::new());
}

#[test]
fn rate_limits_and_errors_are_classified_with_the_wait_the_vendor_asks() {
    let fakes = Fakes::start();
    fakes.add_user("00uA", "ACTIVE");
    let c = connectors(&fakes, ALL);
    let reset = chrono::Utc::now().timestamp() + 30;
    fakes.fail_next(
        "/sessions",
        vec![FakeResponse::new(429)
            .header("X-Rate-Limit-Remaining", "0")
            .header("X-Rate-Limit-Reset", &reset.to_string())],
    );
    match run(&c, &one("00uA", ActionKind::OktaClearSessions, json!({}))) {
        Err(Failure::Retryable {
            after: Some(after), ..
        }) => {
            assert!(
                after > Duration::from_secs(25) && after <= Duration::from_secs(30),
                "{after:?}"
            )
        }
        other => panic!("{other:?}"),
    }
    fakes.fail_next(
        "chat.postMessage",
        vec![FakeResponse::new(429).header("Retry-After", "12")],
    );
    match run(&c, &one("00uA", ActionKind::SlackNotify, json!({}))) {
        Err(Failure::Retryable { after, .. }) => assert_eq!(after, Some(Duration::from_secs(12))),
        other => panic!("{other:?}"),
    }
    fakes.fail_next(
        "chat.postMessage",
        vec![FakeResponse::new(200).json(json!({"ok": false, "error": "channel_not_found"}))],
    );
    match run(&c, &one("00uA", ActionKind::SlackNotify, json!({}))) {
        Err(Failure::Permanent { detail, .. }) => assert!(detail.contains("channel_not_found")),
        other => panic!("{other:?}"),
    }
    fakes.fail_next("/v2/enqueue", vec![FakeResponse::new(502)]);
    assert!(matches!(
        run(&c, &one("00uA", ActionKind::PagerdutyTrigger, json!({}))),
        Err(Failure::Retryable { .. })
    ));
    fakes.fail_next(
        "/v2/enqueue",
        vec![FakeResponse::new(400).json(json!({"status": "invalid event", "errors": ["bad"]}))],
    );
    match run(&c, &one("00uA", ActionKind::PagerdutyTrigger, json!({}))) {
        Err(Failure::Permanent {
            status: Some(400),
            body,
            ..
        }) => assert!(body.contains("invalid event")),
        other => panic!("{other:?}"),
    }
    // A vendor that does not answer in time (a fresh client: this one now waits for Okta's
    // rate-limit reset before its next Okta request, as it should).
    let c = connectors(&fakes, ALL);
    fakes.set_latency(Duration::from_secs(3));
    match run(&c, &one("00uA", ActionKind::OktaResetFactors, json!({}))) {
        Err(Failure::Retryable { detail, .. }) => assert!(detail.contains("timed out"), "{detail}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn slack_and_pagerduty_messages_carry_what_the_on_call_needs() {
    let fakes = Fakes::start();
    let c = connectors(&fakes, ALL);
    let d = decision(
        "00uA",
        "e-msg",
        vec![
            act(ActionKind::PagerdutyTrigger, json!({})),
            act(ActionKind::SlackNotify, json!({})),
        ],
    );
    let rt = runtime();
    for action in &d.actions {
        let executed = rt
            .block_on(c.execute(&ActionRequest {
                decision: &d,
                action,
                note: None,
            }))
            .unwrap();
        assert_eq!(executed.outcome, Outcome::Done);
    }
    let message = &fakes.slack_messages()[0];
    assert_eq!(message["channel"], "C0SECURITY");
    assert_eq!(
        message["metadata"]["event_payload"]["action_id"],
        d.actions[1].action_id.as_str()
    );
    let text = message["blocks"].to_string();
    for needle in [
        "00uA@example.com",
        "test_rule",
        "high",
        "85",
        "failed_signins_10m",
        "/admin/user/profile/view/00uA",
    ] {
        assert!(text.contains(needle), "{needle} in {text}");
    }
    let event: Value = serde_json::from_str(
        &fakes
            .requests()
            .iter()
            .find(|r| r.path.ends_with("/enqueue"))
            .unwrap()
            .body,
    )
    .unwrap();
    assert_eq!(event["dedup_key"], vigil::connector::dedup_key("00uA"));
    assert_eq!(event["payload"]["severity"], "error", "risk 85");
    assert_eq!(
        event["payload"]["custom_details"]["decision_id"],
        d.decision_id.as_str()
    );
    assert_eq!(
        rt.block_on(c.incident_status(&vigil::connector::dedup_key("00uA")))
            .unwrap(),
        Some(IncidentStatus::Triggered)
    );
    fakes.acknowledge(&vigil::connector::dedup_key("00uA"));
    assert_eq!(
        rt.block_on(c.incident_status(&vigil::connector::dedup_key("00uA")))
            .unwrap(),
        Some(IncidentStatus::Acknowledged)
    );
    assert_eq!(
        rt.block_on(c.incident_status("vigil-nobody")).unwrap(),
        None
    );
    assert_eq!(fakes.violations(), Vec::<String>::new());
}

#[test]
fn without_credentials_the_request_is_recorded_with_secrets_redacted() {
    let fakes = Fakes::start();
    // Only the webhook: its URL is a secret and must not appear either.
    let c = connectors(&fakes, &["VIGIL_SLACK_WEBHOOK_URL"]);
    assert!(c.is_dry_run(ActionKind::OktaSuspendUser));
    assert!(!c.is_dry_run(ActionKind::SlackNotify));
    let executed = run(&c, &one("00uA", ActionKind::OktaResetPassword, json!({}))).unwrap();
    assert_eq!(executed.outcome, Outcome::DryRun);
    assert_eq!(executed.detail["method"], "POST");
    assert!(executed.detail["url"].as_str().unwrap().ends_with(
        "/okta/api/v1/users/00uA/lifecycle/reset_password?sendEmail=true&revokeSessions=true"
    ));
    let executed = run(&c, &one("00uA", ActionKind::PagerdutyTrigger, json!({}))).unwrap();
    assert_eq!(executed.outcome, Outcome::DryRun);
    assert_eq!(executed.detail["body"]["routing_key"], "[redacted]");
    assert!(fakes.requests().is_empty(), "nothing sent while dry");
    // The webhook posts for real, and a dry run of it would not show its URL.
    assert_eq!(
        run(&c, &one("00uA", ActionKind::SlackNotify, json!({})))
            .unwrap()
            .outcome,
        Outcome::Done
    );
    assert_eq!(fakes.slack_messages().len(), 1);
    let dry = connectors(&fakes, &[]);
    let executed = run(&dry, &one("00uA", ActionKind::SlackNotify, json!({}))).unwrap();
    assert!(
        !executed.detail.to_string().contains("xoxb"),
        "{}",
        executed.detail
    );
}

#[test]
fn reconciliation_finds_what_was_done_since_the_intent() {
    let fakes = Fakes::start();
    fakes.add_user("00uA", "ACTIVE");
    let c = connectors(&fakes, ALL);
    let rt = runtime();
    let check = |d: &Decision, since| {
        rt.block_on(c.reconcile(
            &ActionRequest {
                decision: d,
                action: &d.actions[0],
                note: None,
            },
            since,
        ))
        .unwrap()
    };
    let reset = one("00uA", ActionKind::OktaResetPassword, json!({}));
    let post = one("00uA", ActionKind::SlackNotify, json!({}));
    let intent = chrono::Utc::now();
    assert_eq!(check(&reset, intent), Reconciled::NotDone);
    assert_eq!(check(&post, intent), Reconciled::NotDone);
    // One runtime throughout: the client's pooled connections belong to the runtime that made them.
    for d in [&reset, &post] {
        rt.block_on(c.execute(&ActionRequest {
            decision: d,
            action: &d.actions[0],
            note: None,
        }))
        .unwrap();
    }
    assert!(matches!(check(&reset, intent), Reconciled::AlreadyDone(_)));
    assert!(matches!(check(&post, intent), Reconciled::AlreadyDone(_)));
    // Another action's post is not this one's.
    let other = decision(
        "00uA",
        "e-other",
        vec![act(ActionKind::SlackNotify, json!({}))],
    );
    assert_eq!(check(&other, intent), Reconciled::NotDone);
    // Idempotent actions are simply done again.
    let clear = one("00uA", ActionKind::OktaClearSessions, json!({}));
    assert_eq!(check(&clear, intent), Reconciled::NotDone);
    // A webhook cannot be asked.
    let webhook = connectors(&fakes, &["VIGIL_SLACK_WEBHOOK_URL"]);
    let unknown = rt
        .block_on(webhook.reconcile(
            &ActionRequest {
                decision: &post,
                action: &post.actions[0],
                note: None,
            },
            intent,
        ))
        .unwrap();
    assert_eq!(unknown, Reconciled::Unknown);
    assert_eq!(fakes.violations(), Vec::<String>::new());
}

#[test]
fn a_hostile_target_cannot_reach_another_path() {
    let fakes = Fakes::start();
    let c = connectors(&fakes, ALL);
    for target in [
        "../../groups/00gADMINS/users/00uX",
        "00uA/sessions",
        "00uA?x=1",
    ] {
        let d = one(target, ActionKind::OktaClearSessions, json!({}));
        match run(&c, &d) {
            Err(Failure::Permanent { detail, .. }) => {
                assert!(detail.contains("not an Okta id"), "{detail}")
            }
            other => panic!("{target}: {other:?}"),
        }
    }
    assert!(fakes.requests().is_empty());
}

#[test]
fn every_fake_route_is_a_route_of_the_vendor_spec() {
    let specs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/specs");
    if !specs.exists() {
        // The specs live next to the repository on the team's machines.
        eprintln!("skipped: {} not found", specs.display());
        return;
    }
    for (file, method, path) in SPEC_ROUTES {
        let text = std::fs::read_to_string(specs.join(file)).unwrap();
        if file.ends_with(".json") {
            let spec: Value = serde_json::from_str(&text).unwrap();
            assert!(
                spec["paths"][path][method].is_object(),
                "{method} {path} not in {file}"
            );
        } else {
            // YAML: the path line, then its method before the next path.
            let start = text
                .find(&format!("\n  {path}:\n"))
                .unwrap_or_else(|| panic!("{path} not in {file}"));
            let rest = &text[start + path.len() + 4..];
            let end = rest.find("\n  /").unwrap_or(rest.len());
            assert!(
                rest[..end].contains(&format!("\n    {method}:")),
                "{method} {path} not in {file}"
            );
        }
    }
}

#[test]
fn okta_oauth_tokens_go_as_bearer_and_a_spent_rate_limit_pauses_the_next_request() {
    let fakes = Fakes::start();
    fakes.add_user("00uA", "ACTIVE");
    let okta = OktaConfig {
        base_url: Some(fakes.okta_base()),
        auth: vigil::connector::OktaAuth::Bearer,
        ..OktaConfig::default()
    };
    let env = |name: &str| (name == "VIGIL_OKTA_TOKEN").then(|| "oauth-access-token".to_owned());
    let c = Connectors::new(
        &okta,
        &SlackConfig::default(),
        &PagerDutyConfig::default(),
        Duration::from_secs(5),
        &env,
    )
    .unwrap();
    // A success that spends the last request of the window: Okta says when it resets.
    let reset = chrono::Utc::now().timestamp() + 2;
    fakes.fail_next(
        "/reset_factors",
        vec![FakeResponse::new(200)
            .header("X-Rate-Limit-Remaining", "0")
            .header("X-Rate-Limit-Reset", &reset.to_string())
            .json(json!({}))],
    );
    let rt = runtime();
    for kind in [ActionKind::OktaResetFactors, ActionKind::OktaClearSessions] {
        let d = one("00uA", kind, json!({}));
        rt.block_on(c.execute(&ActionRequest {
            decision: &d,
            action: &d.actions[0],
            note: None,
        }))
        .unwrap();
    }
    let requests = fakes.requests();
    assert_eq!(
        requests[0].headers["authorization"],
        "Bearer oauth-access-token"
    );
    // The reset is 1–2 s after the first answer (whole seconds): the second request waited.
    let waited = requests[1].at - requests[0].at;
    assert!(waited >= Duration::from_millis(900), "waited {waited:?}");
    assert_eq!(fakes.violations(), Vec::<String>::new());
}
