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
    assert_eq!(fakes.sessions_cleared("00uA"), 1);
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
            // Reset − Date, plus the second both were rounded down by.
            assert!(
                after >= Duration::from_secs(29) && after <= Duration::from_secs(31),
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
    // rate-limit reset before its next Okta request, as it should). The client's timeout is 2 s.
    let c = connectors(&fakes, ALL);
    fakes.delay_next("/reset_factors", Duration::from_secs(3));
    match run(&c, &one("00uA", ActionKind::OktaResetFactors, json!({}))) {
        Err(Failure::Retryable { detail, .. }) => assert!(detail.contains("timed out"), "{detail}"),
        other => panic!("{other:?}"),
    }
    fakes.delay_next("/v2/enqueue", Duration::from_secs(3));
    match run(&c, &one("00uA", ActionKind::PagerdutyTrigger, json!({}))) {
        Err(Failure::Retryable { detail, .. }) => assert!(detail.contains("timed out"), "{detail}"),
        other => panic!("{other:?}"),
    }
    // Only the next request was slow.
    assert_eq!(
        run(&c, &one("00uA", ActionKind::OktaResetFactors, json!({})))
            .unwrap()
            .outcome,
        Outcome::Done
    );
    assert_eq!(fakes.violations(), Vec::<String>::new());
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
    assert_eq!(executed.detail["headers"]["Authorization"], "[redacted]");
    assert_eq!(executed.detail["headers"]["Accept"], "application/json");
    // Suspend cannot read the status without a token: the lifecycle call is recorded, and why.
    let executed = run(&c, &one("00uA", ActionKind::OktaSuspendUser, json!({}))).unwrap();
    assert_eq!(executed.outcome, Outcome::DryRun);
    assert!(executed.detail["url"]
        .as_str()
        .unwrap()
        .ends_with("/okta/api/v1/users/00uA/lifecycle/suspend"));
    assert!(
        executed.detail["note"]
            .as_str()
            .unwrap()
            .contains("not read"),
        "{}",
        executed.detail
    );
    let executed = run(&c, &one("00uA", ActionKind::PagerdutyTrigger, json!({}))).unwrap();
    assert_eq!(executed.outcome, Outcome::DryRun);
    assert_eq!(executed.detail["body"]["routing_key"], "[redacted]");
    assert_eq!(executed.detail["body"]["event_action"], "trigger");
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
    assert_eq!(executed.outcome, Outcome::DryRun);
    assert_eq!(executed.detail["headers"]["Authorization"], "[redacted]");
    assert_eq!(executed.detail["body"]["channel"], "C0SECURITY");
    assert_eq!(fakes.requests().len(), 1, "only the webhook post was sent");
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
    // A user in RECOVERY since before the intent was not reset by this action.
    fakes.add_user("00uOLD", "RECOVERY");
    let old = one("00uOLD", ActionKind::OktaResetPassword, json!({}));
    assert_eq!(check(&old, intent), Reconciled::NotDone);
    // The history is read from 5 s before the intent, with the metadata.
    let history = fakes
        .requests()
        .into_iter()
        .find(|r| r.path.ends_with("/conversations.history"))
        .unwrap();
    assert!(
        history.query.contains(&format!(
            "oldest={}",
            (intent - chrono::Duration::seconds(5)).timestamp()
        )),
        "{}",
        history.query
    );
    assert!(history.query.contains("include_all_metadata=true"));
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

#[test]
fn unsuspend_fits_the_status_and_a_suspend_race_ends_in_the_users_state() {
    let fakes = Fakes::start();
    fakes.add_user("00uACTIVE", "ACTIVE");
    fakes.add_user("00uREC", "RECOVERY");
    fakes.add_user("00uRACE", "SUSPENDED");
    let c = connectors(&fakes, ALL);
    let unsuspend =
        |user: &str| run(&c, &one(user, ActionKind::OktaUnsuspendUser, json!({}))).unwrap();
    let already = unsuspend("00uACTIVE");
    assert_eq!(already.outcome, Outcome::AlreadyInState);
    assert_eq!(already.detail["status_read"], "ACTIVE");
    let skipped = unsuspend("00uREC");
    assert_eq!(skipped.outcome, Outcome::Skipped);
    assert_eq!(skipped.detail["status_read"], "RECOVERY");
    assert_eq!(fakes.count_prefix("POST", "/okta/api/v1/users/"), 0);

    // The status read says ACTIVE, but by the time suspend arrives an admin has suspended the
    // user: Okta refuses with E0000001, and the re-read shows the goal reached.
    fakes.fail_next(
        "/users/00uRACE",
        vec![FakeResponse::new(200).json(json!({
            "id": "00uRACE", "status": "ACTIVE", "statusChanged": "2026-01-01T00:00:00.000Z"
        }))],
    );
    let raced = run(&c, &one("00uRACE", ActionKind::OktaSuspendUser, json!({}))).unwrap();
    assert_eq!(raced.outcome, Outcome::AlreadyInState, "{}", raced.detail);
    assert!(raced.detail["okta_error"]
        .as_str()
        .unwrap()
        .contains("E0000001"));
    assert_eq!(
        fakes.count("POST", "/okta/api/v1/users/00uRACE/lifecycle/suspend"),
        1
    );
    assert_eq!(fakes.count("GET", "/okta/api/v1/users/00uRACE"), 2);
    assert_eq!(fakes.violations(), Vec::<String>::new());
}

#[test]
fn okta_errors_keep_oktas_answer() {
    let fakes = Fakes::start();
    fakes.add_user("00uA", "ACTIVE");
    let c = connectors(&fakes, ALL);
    fakes.fail_next(
        "/lifecycle/expire_password",
        vec![FakeResponse::new(403).json(json!({
            "errorCode": "E0000006",
            "errorSummary": "You do not have permission to perform the requested action",
            "errorLink": "E0000006", "errorId": "oae1", "errorCauses": []
        }))],
    );
    match run(&c, &one("00uA", ActionKind::OktaExpirePassword, json!({}))) {
        Err(Failure::Permanent {
            status: Some(403),
            body,
            ..
        }) => assert!(body.contains("E0000006"), "{body}"),
        other => panic!("{other:?}"),
    }
    fakes.fail_next("/groups/", vec![FakeResponse::new(503)]);
    assert!(matches!(
        run(
            &c,
            &one(
                "00uA",
                ActionKind::OktaAddToGroup,
                json!({"group_id": "00gSTEP"})
            )
        ),
        Err(Failure::Retryable { after: None, .. })
    ));
    // Nothing changed at Okta for the refused calls.
    assert_eq!(fakes.user_status("00uA").as_deref(), Some("ACTIVE"));
    assert!(fakes.group_members("00gSTEP").is_empty());
    // A redirect is not followed (it could carry the token to another host): it is an
    // answer like any other 3xx, permanent.
    fakes.fail_next(
        "/sessions",
        vec![FakeResponse::new(302).header("Location", "http://127.0.0.1:9/steal")],
    );
    assert!(matches!(
        run(&c, &one("00uA", ActionKind::OktaClearSessions, json!({}))),
        Err(Failure::Permanent {
            status: Some(302),
            ..
        })
    ));
    assert_eq!(fakes.sessions_cleared("00uA"), 0);
    // A 429 without Okta's headers is still a rate limit: a wait of zero (the stage floors it).
    fakes.fail_next("/sessions", vec![FakeResponse::new(429)]);
    assert!(matches!(
        run(&c, &one("00uA", ActionKind::OktaClearSessions, json!({}))),
        Err(Failure::Retryable {
            after: Some(Duration::ZERO),
            ..
        })
    ));
    assert_eq!(fakes.violations(), Vec::<String>::new());
}

#[test]
fn slack_failures_are_classified_and_messages_are_safe() {
    let fakes = Fakes::start();
    let c = connectors(&fakes, ALL);
    fakes.fail_next(
        "chat.postMessage",
        vec![
            FakeResponse::new(200)
                .header("Retry-After", "4")
                .json(json!({"ok": false, "error": "ratelimited"})),
            FakeResponse::new(503),
        ],
    );
    match run(&c, &one("00uA", ActionKind::SlackNotify, json!({}))) {
        Err(Failure::Retryable { after, .. }) => assert_eq!(after, Some(Duration::from_secs(4))),
        other => panic!("{other:?}"),
    }
    // A 5xx to a post may have posted it: looked up before any retry.
    assert!(matches!(
        run(&c, &one("00uA", ActionKind::SlackNotify, json!({}))),
        Err(Failure::MaybeApplied { .. })
    ));
    assert!(fakes.slack_messages().is_empty());

    // What an attacker controls (the summary quotes the event) cannot ping or link.
    let mut d = one(
        "00uA",
        ActionKind::SlackNotify,
        json!({"channel": "C0OTHER"}),
    );
    d.summary = "sign-in from <!channel> <https://evil.test|Okta>".into();
    let done = runtime()
        .block_on(c.execute(&ActionRequest {
            decision: &d,
            action: &d.actions[0],
            note: Some("possible repeat"),
        }))
        .unwrap();
    assert_eq!(done.outcome, Outcome::Done);
    assert_eq!(done.detail["channel"], "C0OTHER");
    assert!(done.detail["ts"].is_string());
    let message = fakes.slack_messages().pop().unwrap();
    let all = message.to_string();
    assert!(
        !all.contains("<!channel>") && !all.contains("<https://evil"),
        "{all}"
    );
    assert!(all.contains("&lt;!channel&gt;"));
    assert!(message["text"]
        .as_str()
        .unwrap()
        .starts_with("[possible repeat]"));

    // No channel anywhere: refused before anything is sent.
    let fakes_before = fakes.requests().len();
    let nochannel = Connectors::new(
        &OktaConfig::default(),
        &SlackConfig {
            base_url: fakes.slack_base(),
            ..SlackConfig::default()
        },
        &PagerDutyConfig::default(),
        Duration::from_secs(2),
        &|name: &str| (name == "VIGIL_SLACK_TOKEN").then(|| "xoxb-test".to_owned()),
    )
    .unwrap();
    assert!(matches!(
        run(&nochannel, &one("00uA", ActionKind::SlackNotify, json!({}))),
        Err(Failure::Permanent { status: None, .. })
    ));
    assert_eq!(fakes.requests().len(), fakes_before);
    assert_eq!(fakes.violations(), Vec::<String>::new());
}

#[test]
fn a_webhook_answers_in_plain_text() {
    let fakes = Fakes::start();
    let c = connectors(&fakes, &["VIGIL_SLACK_WEBHOOK_URL"]);
    fakes.fail_next(
        "/slack/webhook/",
        vec![
            FakeResponse {
                status: 400,
                headers: vec![],
                body: "invalid_payload".into(),
                reset_in_secs: None,
            },
            FakeResponse::new(429).header("Retry-After", "9"),
            FakeResponse {
                status: 200,
                headers: vec![],
                body: "something else".into(),
                reset_in_secs: None,
            },
            FakeResponse::new(500),
        ],
    );
    let d = one("00uA", ActionKind::SlackNotify, json!({}));
    match run(&c, &d) {
        Err(Failure::Permanent {
            status: Some(400),
            body,
            detail,
        }) => {
            assert_eq!(body, "invalid_payload");
            assert!(
                !detail.contains("/slack/webhook"),
                "the URL is a secret: {detail}"
            );
        }
        other => panic!("{other:?}"),
    }
    match run(&c, &d) {
        Err(Failure::Retryable { after, detail }) => {
            assert_eq!(after, Some(Duration::from_secs(9)));
            assert!(!detail.contains("XXXX"), "{detail}");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        run(&c, &d),
        Err(Failure::Permanent {
            status: Some(200),
            ..
        })
    ));
    assert!(matches!(run(&c, &d), Err(Failure::MaybeApplied { .. })));
    let done = run(&c, &d).unwrap();
    assert_eq!(done.outcome, Outcome::Done);
    assert!(!done.detail.to_string().contains("/slack/webhook"));
    let message = fakes.slack_messages().pop().unwrap();
    assert!(message["text"].is_string() && message["blocks"].is_array());
    assert!(
        message.get("channel").is_none(),
        "a webhook's channel is fixed"
    );
    // The operational alert goes the same way.
    assert_eq!(
        runtime().block_on(c.alert("circuit open")).unwrap().outcome,
        Outcome::Done
    );
    assert_eq!(
        fakes.slack_messages().pop().unwrap()["text"],
        "circuit open"
    );
    assert_eq!(fakes.violations(), Vec::<String>::new());
}

#[test]
fn the_alert_goes_to_the_default_channel() {
    let fakes = Fakes::start();
    let c = connectors(&fakes, ALL);
    let executed = runtime()
        .block_on(c.alert("blast-radius circuit open: 12 suspensions in 60 s"))
        .unwrap();
    assert_eq!(executed.outcome, Outcome::Done);
    let message = fakes.slack_messages().pop().unwrap();
    assert_eq!(message["channel"], "C0SECURITY");
    assert!(message["text"].as_str().unwrap().contains("circuit open"));
    assert_eq!(
        fakes.count("POST", "/slack/api/chat.postMessage"),
        1,
        "one post"
    );
    assert_eq!(fakes.violations(), Vec::<String>::new());
}

#[test]
fn pagerduty_resolves_and_reports_status_and_rate_limits() {
    let fakes = Fakes::start();
    let okta = OktaConfig {
        base_url: Some(fakes.okta_base()),
        ..OktaConfig::default()
    };
    let pagerduty = PagerDutyConfig {
        events_url: fakes.pd_events_base(),
        api_url: fakes.pd_api_base(),
        from_email: Some("secops@example.com".into()),
        ..PagerDutyConfig::default()
    };
    let env = |name: &str| match name {
        "VIGIL_PAGERDUTY_ROUTING_KEY" => Some(ROUTING_KEY.to_owned()),
        "VIGIL_PAGERDUTY_API_TOKEN" => Some("pd-test-api-token".to_owned()),
        _ => None,
    };
    let c = Connectors::new(
        &okta,
        &SlackConfig::default(),
        &pagerduty,
        Duration::from_secs(2),
        &env,
    )
    .unwrap();
    // One runtime throughout: pooled connections belong to the runtime that opened them.
    let rt = runtime();
    let run = |c: &Connectors, d: &Decision| {
        rt.block_on(c.execute(&ActionRequest {
            decision: d,
            action: &d.actions[0],
            note: None,
        }))
    };
    let key = vigil::connector::dedup_key("00uA");
    let trigger = one("00uA", ActionKind::PagerdutyTrigger, json!({}));
    let resolve = one("00uA", ActionKind::PagerdutyResolve, json!({}));
    let executed = run(&c, &trigger).unwrap();
    assert_eq!(executed.detail["dedup_key"], key.as_str());
    assert_eq!(executed.detail["http_status"], 202);
    // A repeated trigger lands on the same incident.
    run(&c, &trigger).unwrap();
    assert_eq!(fakes.incident_count(&key), 1);
    let sent: Value = serde_json::from_str(&fakes.requests()[0].body).unwrap();
    assert_eq!(sent["payload"]["source"], "vigil");
    assert_eq!(
        sent["links"][0]["href"],
        format!(
            "http://127.0.0.1:{}/admin/user/profile/view/00uA",
            port(&fakes)
        )
    );
    run(&c, &resolve).unwrap();
    let sent: Value = serde_json::from_str(&fakes.requests().pop().unwrap().body).unwrap();
    assert_eq!(sent["event_action"], "resolve");
    assert!(sent.get("payload").is_none());
    assert_eq!(fakes.incident_status(&key).as_deref(), Some("resolved"));
    assert_eq!(
        rt.block_on(c.incident_status(&key)).unwrap(),
        Some(IncidentStatus::Resolved)
    );
    // After a resolve a new attack opens a new incident: the newest one is the one reported.
    run(&c, &trigger).unwrap();
    assert_eq!(fakes.incident_count(&key), 2);
    assert_eq!(
        rt.block_on(c.incident_status(&key)).unwrap(),
        Some(IncidentStatus::Triggered)
    );
    let lookup = fakes.requests().pop().unwrap();
    assert_eq!(lookup.headers["from"], "secops@example.com");
    assert_eq!(
        lookup.headers["authorization"],
        "Token token=pd-test-api-token"
    );
    assert!(lookup.query.contains("incident_key=vigil-00uA"));
    assert!(lookup.query.contains("date_range=all"));

    fakes.fail_next(
        "/v2/enqueue",
        vec![
            FakeResponse::new(429),
            FakeResponse::new(429).header("Retry-After", "20"),
        ],
    );
    assert!(matches!(
        run(&c, &trigger),
        Err(Failure::Retryable {
            after: Some(Duration::ZERO),
            ..
        })
    ));
    match run(&c, &trigger) {
        Err(Failure::Retryable { after, .. }) => assert_eq!(after, Some(Duration::from_secs(20))),
        other => panic!("{other:?}"),
    }
    fakes.fail_next("/pd-api/incidents", vec![FakeResponse::new(401)]);
    assert!(matches!(
        rt.block_on(c.incident_status(&key)),
        Err(Failure::Permanent {
            status: Some(401),
            ..
        })
    ));
    assert_eq!(fakes.violations(), Vec::<String>::new());
}

/// The fakes' port (the Okta base doubles as the admin console in these tests).
fn port(fakes: &Fakes) -> u16 {
    fakes.url().rsplit(':').next().unwrap().parse().unwrap()
}

#[test]
fn audit_record_sends_nothing() {
    let fakes = Fakes::start();
    let c = connectors(&fakes, ALL);
    assert!(!c.is_dry_run(ActionKind::AuditRecord));
    let executed = run(&c, &one("00uA", ActionKind::AuditRecord, json!({}))).unwrap();
    assert_eq!(executed.outcome, Outcome::Done);
    assert_eq!(executed.detail, json!({}));
    assert!(fakes.requests().is_empty());
}

#[test]
fn a_hostile_group_or_user_id_stays_inside_the_base() {
    let fakes = Fakes::start();
    fakes.add_user("00uA", "ACTIVE");
    let c = connectors(&fakes, ALL);
    for group in ["../../users/00uA/lifecycle/suspend", "00g/../x", "%2e%2e"] {
        let d = one(
            "00uA",
            ActionKind::OktaAddToGroup,
            json!({ "group_id": group }),
        );
        assert!(
            matches!(run(&c, &d), Err(Failure::Permanent { status: None, .. })),
            "{group}"
        );
    }
    // Links built from a hostile id in a message stay one path segment of the console.
    let d = one("../../evil", ActionKind::PagerdutyTrigger, json!({}));
    run(&c, &d).unwrap();
    let sent: Value = serde_json::from_str(&fakes.requests().pop().unwrap().body).unwrap();
    let href = sent["links"][0]["href"].as_str().unwrap();
    assert!(
        href.ends_with("/admin/user/profile/view/..%2F..%2Fevil"),
        "{href}"
    );
    assert_eq!(
        fakes.requests().len(),
        1,
        "only the PagerDuty event was sent"
    );
    assert_eq!(fakes.user_status("00uA").as_deref(), Some("ACTIVE"));
    assert_eq!(fakes.violations(), Vec::<String>::new());
}

#[test]
fn slack_reconciliation_reads_past_a_busy_page_and_admits_what_it_cannot_know() {
    let fakes = Fakes::start();
    let c = connectors(&fakes, ALL);
    let rt = runtime();
    let post = one("00uA", ActionKind::SlackNotify, json!({}));
    let request = ActionRequest {
        decision: &post,
        action: &post.actions[0],
        note: None,
    };
    let intent = chrono::Utc::now();
    rt.block_on(c.execute(&request)).unwrap();
    // 450 later messages: ours is on the third page, newest first.
    fakes.post_others("C0SECURITY", 450);
    match rt.block_on(c.reconcile(&request, intent)).unwrap() {
        Reconciled::AlreadyDone(detail) => assert_eq!(detail["channel"], "C0SECURITY"),
        other => panic!("{other:?}"),
    }
    assert_eq!(fakes.count("GET", "/slack/api/conversations.history"), 3);
    // A bot that may not read the channel cannot know: Unknown (the stage re-posts, marked).
    fakes.fail_next(
        "conversations.history",
        vec![
            FakeResponse::new(200).json(json!({"ok": false, "error": "missing_scope"})),
            FakeResponse::new(200)
                .header("Retry-After", "30")
                .json(json!({"ok": false, "error": "ratelimited"})),
        ],
    );
    assert_eq!(
        rt.block_on(c.reconcile(&request, intent)).unwrap(),
        Reconciled::Unknown
    );
    match rt.block_on(c.reconcile(&request, intent)) {
        Err(Failure::Retryable { after, .. }) => assert_eq!(after, Some(Duration::from_secs(30))),
        other => panic!("{other:?}"),
    }
    assert_eq!(fakes.violations(), Vec::<String>::new());
}

#[test]
fn shadow_mode_sends_nothing_whatever_credentials_are_configured() {
    let fakes = Fakes::start();
    let dir = tempfile::tempdir().unwrap();
    let secret = |name: &str, value: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, value).unwrap();
        Some(path)
    };
    let okta = OktaConfig {
        base_url: Some(fakes.okta_base()),
        token_file: secret("okta", "okta-test-token"),
        ..OktaConfig::default()
    };
    let slack = SlackConfig {
        base_url: fakes.slack_base(),
        channel: Some("C0SECURITY".into()),
        token_file: secret("slack", "xoxb-test-token"),
        ..SlackConfig::default()
    };
    let pagerduty = PagerDutyConfig {
        events_url: fakes.pd_events_base(),
        api_url: fakes.pd_api_base(),
        routing_key_file: secret("pd", ROUTING_KEY),
        ..PagerDutyConfig::default()
    };
    let timeout = Duration::from_secs(2);
    let every_env = |_: &str| Some("from-the-environment".to_owned());
    let live = Connectors::new(&okta, &slack, &pagerduty, timeout, &every_env).unwrap();
    let shadow = Connectors::dry_run(&okta, &slack, &pagerduty, timeout).unwrap();
    for kind in [
        ActionKind::OktaSuspendUser,
        ActionKind::SlackNotify,
        ActionKind::PagerdutyTrigger,
    ] {
        assert!(!live.is_dry_run(kind), "{kind:?} has credentials");
        assert!(shadow.is_dry_run(kind), "{kind:?} in shadow mode");
        let executed = run(&shadow, &one("00uA", kind, json!({}))).unwrap();
        assert_eq!(executed.outcome, Outcome::DryRun, "{kind:?}");
    }
    assert!(fakes.requests().is_empty(), "{:?}", fakes.requests());
}

/// The `after` of a retryable failure (panics on anything else).
fn wait_asked(result: Result<vigil::connector::Executed, Failure>) -> Duration {
    match result {
        Err(Failure::Retryable {
            after: Some(after), ..
        }) => after,
        other => panic!("{other:?}"),
    }
}

#[test]
fn okta_rate_limit_waits_are_read_on_oktas_clock() {
    let fakes = Fakes::start();
    fakes.add_user("00uA", "ACTIVE");
    let clear = one("00uA", ActionKind::OktaClearSessions, json!({}));
    // Okta's clock five minutes ahead of ours: by our clock the reset is 303 s away, by
    // Okta's 3 s (plus the second both values were rounded down by).
    fakes.set_okta_clock_skew(300);
    fakes.fail_next("/sessions", vec![FakeResponse::okta_rate_limited(3)]);
    let after = wait_asked(run(&connectors(&fakes, ALL), &clear));
    assert!(
        after >= Duration::from_secs(3) && after <= Duration::from_secs(4),
        "{after:?}"
    );
    // Five minutes behind: by our clock the reset is long past (no wait), by Okta's 3 s away.
    fakes.set_okta_clock_skew(-300);
    fakes.fail_next("/sessions", vec![FakeResponse::okta_rate_limited(3)]);
    let after = wait_asked(run(&connectors(&fakes, ALL), &clear));
    assert!(
        after >= Duration::from_secs(3) && after <= Duration::from_secs(4),
        "{after:?}"
    );
    // A reset that is now or past asks for no wait of its own (the stage waits its floor).
    fakes.set_okta_clock_skew(0);
    for reset_in in [0, -5] {
        fakes.fail_next("/sessions", vec![FakeResponse::okta_rate_limited(reset_in)]);
        let after = wait_asked(run(&connectors(&fakes, ALL), &clear));
        assert!(after <= Duration::from_secs(1), "{reset_in}: {after:?}");
    }
    assert_eq!(fakes.sessions_cleared("00uA"), 0, "a 429 changes nothing");
    assert_eq!(fakes.violations(), Vec::<String>::new());
}

#[test]
fn an_answer_lost_after_sending_a_reset_or_post_may_have_been_applied() {
    let fakes = Fakes::start();
    fakes.add_user("00uA", "ACTIVE");
    let c = connectors(&fakes, ALL);
    let rt = runtime();
    let attempt = |d: &Decision| {
        rt.block_on(c.execute(&ActionRequest {
            decision: d,
            action: &d.actions[0],
            note: None,
        }))
    };
    let lookup = |d: &Decision, since| {
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
    // Okta resets the password and the connection drops before the answer.
    let reset = one("00uA", ActionKind::OktaResetPassword, json!({}));
    let intent = chrono::Utc::now();
    fakes.drop_next("/reset_password");
    assert!(
        matches!(attempt(&reset), Err(Failure::MaybeApplied { .. })),
        "a dropped connection after a write is not a plain retry"
    );
    assert_eq!(fakes.user_status("00uA").as_deref(), Some("RECOVERY"));
    assert!(matches!(lookup(&reset, intent), Reconciled::AlreadyDone(_)));
    // Slack posts, then answers after the client's timeout (2 s).
    let post = one("00uA", ActionKind::SlackNotify, json!({}));
    fakes.delay_next("chat.postMessage", Duration::from_secs(3));
    match attempt(&post) {
        Err(Failure::MaybeApplied { detail, .. }) => assert!(detail.contains("timed out")),
        other => panic!("{other:?}"),
    }
    assert_eq!(fakes.slack_messages().len(), 1);
    assert!(matches!(lookup(&post, intent), Reconciled::AlreadyDone(_)));
    // What a repeat cannot harm is simply retryable: the dedup key, an idempotent DELETE.
    fakes.drop_next("/v2/enqueue");
    assert!(matches!(
        attempt(&one("00uA", ActionKind::PagerdutyTrigger, json!({}))),
        Err(Failure::Retryable { .. })
    ));
    fakes.delay_next("/sessions", Duration::from_secs(3));
    assert!(matches!(
        attempt(&one("00uA", ActionKind::OktaClearSessions, json!({}))),
        Err(Failure::Retryable { .. })
    ));
    // Nothing listening: the request never left, so it is safe to try again.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let okta = OktaConfig {
        base_url: Some(format!("http://127.0.0.1:{closed}")),
        ..OktaConfig::default()
    };
    let refused = Connectors::new(
        &okta,
        &SlackConfig::default(),
        &PagerDutyConfig::default(),
        Duration::from_secs(2),
        &|name: &str| (name == "VIGIL_OKTA_TOKEN").then(|| "okta-test-token".to_owned()),
    )
    .unwrap();
    match rt.block_on(refused.execute(&ActionRequest {
        decision: &reset,
        action: &reset.actions[0],
        note: None,
    })) {
        Err(Failure::Retryable { detail, .. }) => assert!(detail.contains("cannot connect")),
        other => panic!("{other:?}"),
    }
    assert_eq!(fakes.violations(), Vec::<String>::new());
}

#[test]
fn a_reset_is_found_whatever_oktas_clock_says() {
    let fakes = Fakes::start();
    let c = connectors(&fakes, ALL);
    let rt = runtime();
    for (user, skew) in [("00uAHEAD", 90), ("00uBEHIND", -90)] {
        fakes.set_okta_clock_skew(skew);
        fakes.add_user(user, "ACTIVE");
        let reset = one(user, ActionKind::OktaResetPassword, json!({}));
        let request = ActionRequest {
            decision: &reset,
            action: &reset.actions[0],
            note: None,
        };
        let intent = chrono::Utc::now();
        fakes.drop_next("/reset_password");
        assert!(matches!(
            rt.block_on(c.execute(&request)),
            Err(Failure::MaybeApplied { .. })
        ));
        // statusChanged is on Okta's clock: compared with the intent through its Date.
        match rt.block_on(c.reconcile(&request, intent)).unwrap() {
            Reconciled::AlreadyDone(found) => assert_eq!(found["status_read"], "RECOVERY"),
            other => panic!("{user}: {other:?}"),
        }
    }
    // A reset before the intent (by Okta's clock, ahead of ours) is not this action's.
    fakes.set_okta_clock_skew(90);
    fakes.add_user("00uEARLIER", "ACTIVE");
    fakes.change_status_now("00uEARLIER", "RECOVERY");
    // Further back than the lookup's margin (two seconds, and the second Date is rounded by).
    std::thread::sleep(Duration::from_millis(3_500));
    let reset = one("00uEARLIER", ActionKind::OktaResetPassword, json!({}));
    let request = ActionRequest {
        decision: &reset,
        action: &reset.actions[0],
        note: None,
    };
    assert_eq!(
        rt.block_on(c.reconcile(&request, chrono::Utc::now()))
            .unwrap(),
        Reconciled::NotDone
    );
    assert_eq!(fakes.violations(), Vec::<String>::new());
}

#[test]
fn a_critical_decision_opens_a_critical_incident_whatever_its_score() {
    let fakes = Fakes::start();
    let c = connectors(&fakes, ALL);
    let mut d = one("00uADM", ActionKind::PagerdutyTrigger, json!({}));
    d.severity = vigil::decision::Severity::Critical;
    d.risk_score = 30;
    run(&c, &d).unwrap();
    let sent: Value = serde_json::from_str(&fakes.requests().pop().unwrap().body).unwrap();
    assert_eq!(sent["payload"]["severity"], "critical");
    assert_eq!(
        fakes.incident_severity("vigil-00uADM"),
        Some(("critical".into(), "high".into())),
        "critical pages at high urgency"
    );
    // A milder decision with a high score is raised by it.
    let mut d = one("00uLOW", ActionKind::PagerdutyTrigger, json!({}));
    d.severity = vigil::decision::Severity::Low;
    d.risk_score = 92;
    run(&c, &d).unwrap();
    assert_eq!(
        fakes.incident_severity("vigil-00uLOW"),
        Some(("critical".into(), "high".into()))
    );
    assert_eq!(fakes.violations(), Vec::<String>::new());
}
