//! The respond stage against librdkafka's mock cluster and the vendor HTTP fakes: every action
//! type end to end, duplicates, rate limits and server errors, permanent failures to the DLQ,
//! delayed actions and their conditions, overrides, the blast-radius guard, dry run.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use common::fakes::{FakeResponse, Fakes};
use common::kafka::*;
use common::respond::*;
use vigil::config::Config;
use vigil::decision::{ActionKind, Condition, Decision};
use vigil::kafka::WorkerSummary;
use vigil::respond::RespondCounters;
use vigil::run::Embedded;

struct Setup {
    _cluster: Embedded,
    config: Config,
    fakes: Fakes,
    _dir: tempfile::TempDir,
}

fn setup(prefix: &str, with_credentials: bool) -> Setup {
    init_logs();
    let mut config = config("unused:9092", prefix);
    let cluster = Embedded::with_partitions(&mut config, 2).expect("embedded broker");
    let fakes = Fakes::start();
    let dir = tempfile::tempdir().unwrap();
    use_fakes(&mut config, &fakes, dir.path(), with_credentials);
    Setup {
        _cluster: cluster,
        config,
        fakes,
        _dir: dir,
    }
}

fn respond(config: &Config) -> Running<(WorkerSummary, RespondCounters)> {
    let config = config.clone();
    Running::start(move |stop| vigil::respond::command::run_stage(&config, stop))
}

/// Produce `decisions`, run the stage until every one of their actions is final, stop it.
fn run_to_final(
    config: &Config,
    decisions: &[&Decision],
) -> (BTreeMap<String, Value>, RespondCounters) {
    produce_decisions(config, decisions);
    let stage = respond(config);
    let ids: Vec<&str> = decisions
        .iter()
        .flat_map(|d| d.actions.iter().map(|a| a.action_id.as_str()))
        .collect();
    let ledger = final_ledger(config, &ids);
    let (_, counters) = stage.stop();
    (ledger, counters)
}

fn status_of(ledger: &BTreeMap<String, Value>, action_id: &str) -> String {
    ledger[action_id]["status"].as_str().unwrap().to_owned()
}

#[test]
fn every_action_type_reaches_its_vendor_once_even_when_decisions_repeat() {
    let s = setup("every", true);
    s.fakes.add_user("00uALICE", "ACTIVE");
    s.fakes.add_user("00uBOB", "ACTIVE");
    s.fakes.add_user("00uCAROL", "SUSPENDED");
    let alice = decision(
        "00uALICE",
        "e-alice",
        vec![
            act(ActionKind::OktaClearSessions, json!({"oauth_tokens": true})),
            act(ActionKind::OktaResetFactors, json!({})),
            act(ActionKind::OktaExpirePassword, json!({})),
            act(ActionKind::OktaAddToGroup, json!({"group_id": "00gSTEPUP"})),
            act(ActionKind::SlackNotify, json!({})),
            act(ActionKind::PagerdutyTrigger, json!({})),
            act(ActionKind::AuditRecord, json!({})),
        ],
    );
    let alice_later = decision(
        "00uALICE",
        "e-alice-2",
        vec![act(ActionKind::PagerdutyResolve, json!({}))],
    );
    let bob = decision(
        "00uBOB",
        "e-bob",
        vec![act(ActionKind::OktaSuspendUser, json!({}))],
    );
    let bob_reset = decision(
        "00uBOB",
        "e-bob-2",
        vec![act(
            ActionKind::OktaResetPassword,
            json!({"send_email": true, "revoke_sessions": true}),
        )],
    );
    let carol = decision(
        "00uCAROL",
        "e-carol",
        vec![act(ActionKind::OktaUnsuspendUser, json!({}))],
    );
    // Every decision twice: redelivery upstream must not repeat an action.
    let all = [&alice, &alice_later, &bob, &bob_reset, &carol];
    produce_decisions(&s.config, &all);
    produce_decisions(&s.config, &all);

    let stage = respond(&s.config);
    let ids: Vec<&str> = all
        .iter()
        .flat_map(|d| d.actions.iter().map(|a| a.action_id.as_str()))
        .collect();
    let ledger = final_ledger(&s.config, &ids);
    wait_committed(
        &s.config,
        &s.config.respond.group_id,
        &s.config.topics.decisions,
        10,
    );
    let (summary, counters) = stage.stop();

    assert_eq!(summary.consumed, 10);
    assert_eq!(counters.duplicates, ids.len() as u64);
    for id in &ids {
        assert_eq!(status_of(&ledger, id), "succeeded", "{}", ledger[*id]);
    }
    let once = |method: &str, path: &str| {
        assert_eq!(s.fakes.count(method, path), 1, "{method} {path}");
    };
    once("DELETE", "/okta/api/v1/users/00uALICE/sessions");
    once(
        "POST",
        "/okta/api/v1/users/00uALICE/lifecycle/reset_factors",
    );
    once(
        "POST",
        "/okta/api/v1/users/00uALICE/lifecycle/expire_password",
    );
    once("PUT", "/okta/api/v1/groups/00gSTEPUP/users/00uALICE");
    once("POST", "/okta/api/v1/users/00uBOB/lifecycle/suspend");
    once("POST", "/okta/api/v1/users/00uBOB/lifecycle/reset_password");
    once("POST", "/okta/api/v1/users/00uCAROL/lifecycle/unsuspend");
    once("POST", "/slack/api/chat.postMessage");
    assert_eq!(
        s.fakes.count("POST", "/pd-events/v2/enqueue"),
        2,
        "trigger + resolve"
    );
    let sessions = s
        .fakes
        .requests()
        .into_iter()
        .find(|r| r.path.ends_with("/sessions"))
        .unwrap();
    assert!(
        sessions.query.contains("oauthTokens=true"),
        "{}",
        sessions.query
    );
    assert_eq!(s.fakes.user_status("00uCAROL").as_deref(), Some("ACTIVE"));
    assert_eq!(
        s.fakes
            .incident_status(&vigil::connector::dedup_key("00uALICE"))
            .as_deref(),
        Some("resolved")
    );
    assert_eq!(s.fakes.violations(), Vec::<String>::new());
}

#[test]
fn rate_limits_and_server_errors_are_waited_out_and_retried() {
    let s = setup("retry", true);
    s.fakes.add_user("00uDAN", "ACTIVE");
    let reset = (chrono::Utc::now().timestamp() + 1).to_string();
    s.fakes.fail_next(
        "/lifecycle/suspend",
        vec![FakeResponse::new(429)
            .header("X-Rate-Limit-Limit", "600")
            .header("X-Rate-Limit-Remaining", "0")
            .header("X-Rate-Limit-Reset", &reset)
            .json(json!({"errorCode": "E0000047", "errorSummary": "API call exceeded rate limit due to too many requests."}))],
    );
    s.fakes.fail_next(
        "chat.postMessage",
        vec![FakeResponse::new(429).header("Retry-After", "1")],
    );
    s.fakes.fail_next(
        "/v2/enqueue",
        vec![FakeResponse::new(503), FakeResponse::new(500)],
    );
    let d = decision(
        "00uDAN",
        "e-dan",
        vec![
            act(ActionKind::OktaSuspendUser, json!({})),
            act(ActionKind::SlackNotify, json!({})),
            act(ActionKind::PagerdutyTrigger, json!({})),
        ],
    );
    let (ledger, _) = run_to_final(&s.config, &[&d]);
    let ids: Vec<&str> = d.actions.iter().map(|a| a.action_id.as_str()).collect();
    let attempts: Vec<u64> = ids
        .iter()
        .map(|id| ledger[*id]["attempts"].as_u64().unwrap())
        .collect();
    assert_eq!(attempts, [2, 2, 3], "{ledger:?}");
    for id in &ids {
        assert_eq!(status_of(&ledger, id), "succeeded");
    }
    assert_eq!(s.fakes.user_status("00uDAN").as_deref(), Some("SUSPENDED"));
    // The rate-limited calls waited for the time the vendor named.
    let times = |path: &str| -> Vec<Instant> {
        s.fakes
            .requests()
            .iter()
            .filter(|r| r.path.ends_with(path))
            .map(|r| r.at)
            .collect()
    };
    let slack = times("chat.postMessage");
    assert_eq!(slack.len(), 2);
    assert!(
        slack[1] - slack[0] >= Duration::from_millis(900),
        "Retry-After honoured"
    );
    assert_eq!(s.fakes.slack_messages().len(), 1, "posted once");
    assert_eq!(s.fakes.violations(), Vec::<String>::new());
}

#[test]
fn a_permanent_failure_is_dead_lettered_with_the_vendor_response() {
    let s = setup("permanent", true);
    s.fakes.fail_next(
        "/v2/enqueue",
        vec![FakeResponse::new(400).json(json!({
            "status": "invalid event",
            "message": "Event object is invalid",
            "errors": ["Length of 'routing_key' is incorrect (should be 32 characters)"]
        }))],
    );
    let d = decision(
        "00uERIN",
        "e-erin",
        vec![act(ActionKind::PagerdutyTrigger, json!({}))],
    );
    produce_decisions(&s.config, &[&d]);
    // And a record that is not a decision at all.
    produce(
        &s.config,
        &s.config.topics.decisions,
        &[(Some("00uERIN".into()), b"{not json".to_vec())],
    );
    let stage = respond(&s.config);
    let id = d.actions[0].action_id.as_str();
    let ledger = final_ledger(&s.config, &[id]);
    let dlq = read_until(
        &s.config,
        &s.config.topics.dlq,
        Duration::from_secs(30),
        |r| r.len() >= 2,
    );
    let (_, counters) = stage.stop();

    assert_eq!(status_of(&ledger, id), "failed");
    assert_eq!(ledger[id]["attempts"], 1, "a 400 is not retried");
    assert_eq!(s.fakes.count("POST", "/pd-events/v2/enqueue"), 1);
    let failed = dlq
        .iter()
        .find(|r| r.header("vigil.dlq.reason") == Some("action_failed"))
        .expect("failed action dead-lettered");
    let body = failed.json();
    assert_eq!(body["action"]["action_id"], id);
    assert_eq!(body["response"]["status"], 400);
    assert!(
        body["response"]["body"]
            .as_str()
            .unwrap()
            .contains("routing_key"),
        "{body}"
    );
    let bad = dlq
        .iter()
        .find(|r| r.header("vigil.dlq.reason") == Some("bad_decision"))
        .expect("unreadable decision dead-lettered");
    assert_eq!(bad.payload, b"{not json");
    assert_eq!(counters.dead_lettered, 2);
}

/// A delayed suspend like the policy pack's: after `after` seconds, unless acknowledged or
/// overridden, only if the user is still active.
fn delayed_suspend(user: &str, after: u64) -> vigil::decision::Decision {
    decision(
        user,
        &format!("e-{user}"),
        vec![
            act(ActionKind::PagerdutyTrigger, json!({})),
            delayed(
                ActionKind::OktaSuspendUser,
                after,
                &[
                    Condition::UnlessAcknowledged,
                    Condition::UnlessOverridden,
                    Condition::OnlyIfActivityContinues,
                ],
            ),
        ],
    )
}

#[test]
fn a_delayed_suspend_is_cancelled_by_acknowledgement_or_override_and_runs_otherwise() {
    let s = setup("delayed", true);
    let users = ["00uACKED", "00uOVERRIDDEN", "00uQUIET", "00uACTIVE"];
    for user in users {
        s.fakes.add_user(user, "ACTIVE");
    }
    // The group joins first (it takes seconds on the mock cluster), so the delay is all wait.
    let stage = respond(&s.config);
    let warm_up = decision(
        "00uWARMUP",
        "e-warm-up",
        vec![act(ActionKind::AuditRecord, json!({}))],
    );
    produce_decisions(&s.config, &[&warm_up]);
    final_ledger(&s.config, &[warm_up.actions[0].action_id.as_str()]);
    let decisions: Vec<_> = users.iter().map(|u| delayed_suspend(u, 4)).collect();
    produce_decisions(&s.config, &decisions.iter().collect::<Vec<_>>());

    // While the suspends wait: the on-call acknowledges one incident, an analyst overrides
    // another user, and two users go on producing events (one of them acknowledged).
    let triggers: Vec<&str> = decisions
        .iter()
        .map(|d| d.actions[0].action_id.as_str())
        .collect();
    final_ledger(&s.config, &triggers);
    s.fakes
        .acknowledge(&vigil::connector::dedup_key("00uACKED"));
    let producer = vigil::kafka::producer_config(&s.config.kafka).unwrap();
    let producer: rdkafka::producer::FutureProducer = producer.create().unwrap();
    let now = chrono::Utc::now();
    futures::executor::block_on(vigil::overrides::publish(
        &producer,
        &s.config.topics.overrides,
        &vigil::overrides::Override {
            user_id: "00uOVERRIDDEN".into(),
            scope: vigil::overrides::Scope::Pending,
            reason: "travelling, confirmed by phone".into(),
            by: Some("analyst@example.com".into()),
            created_at: now,
            until: now + chrono::Duration::hours(2),
        },
    ))
    .unwrap();
    let later = (now + chrono::Duration::seconds(1)).to_rfc3339();
    let activity: Vec<Value> = ["00uACTIVE", "00uACKED"]
        .iter()
        .map(|u| {
            common::event(
                &format!("later-{u}"),
                &later,
                "user.session.start",
                u,
                "FAILURE",
            )
        })
        .collect();
    produce(&s.config, &s.config.topics.events, &keyed(&activity));

    let suspends: Vec<&str> = decisions
        .iter()
        .map(|d| d.actions[1].action_id.as_str())
        .collect();
    let ledger = final_ledger(&s.config, &suspends);
    stage.stop();

    let outcome = |i: usize| {
        let e = &ledger[suspends[i]];
        (
            e["status"].as_str().unwrap().to_owned(),
            e["reason"].as_str().unwrap_or("").to_owned(),
        )
    };
    let (status, reason) = outcome(0);
    assert_eq!(status, "cancelled");
    assert!(reason.contains("acknowledged"), "{reason}");
    let (status, reason) = outcome(1);
    assert_eq!(status, "cancelled");
    assert!(
        reason.contains("travelling, confirmed by phone"),
        "{reason}"
    );
    let (status, reason) = outcome(2);
    assert_eq!(status, "cancelled");
    assert!(reason.contains("no activity"), "{reason}");
    assert_eq!(outcome(3).0, "succeeded");
    assert_eq!(
        s.fakes
            .count("POST", "/okta/api/v1/users/00uACTIVE/lifecycle/suspend"),
        1
    );
    for user in ["00uACKED", "00uOVERRIDDEN", "00uQUIET"] {
        assert_eq!(
            s.fakes.user_status(user).as_deref(),
            Some("ACTIVE"),
            "{user}"
        );
    }
    assert_eq!(s.fakes.violations(), Vec::<String>::new());
}

#[test]
fn a_scheduled_action_survives_a_restart() {
    let s = setup("restart", true);
    s.fakes.add_user("00uFRANK", "ACTIVE");
    let d = decision(
        "00uFRANK",
        "e-frank",
        vec![delayed(ActionKind::OktaSuspendUser, 8, &[])],
    );
    produce_decisions(&s.config, &[&d]);
    let first = respond(&s.config);
    wait_committed(
        &s.config,
        &s.config.respond.group_id,
        &s.config.topics.decisions,
        1,
    );
    first.stop();
    assert_eq!(
        s.fakes.user_status("00uFRANK").as_deref(),
        Some("ACTIVE"),
        "not due yet"
    );

    let second = respond(&s.config);
    let id = d.actions[0].action_id.as_str();
    let ledger = final_ledger(&s.config, &[id]);
    second.stop();
    assert_eq!(status_of(&ledger, id), "succeeded");
    assert_eq!(
        s.fakes
            .count("POST", "/okta/api/v1/users/00uFRANK/lifecycle/suspend"),
        1
    );
    let steps: Vec<String> = ledger_records(&s.config, 3)
        .iter()
        .map(|e| e["status"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(steps, ["scheduled", "started", "succeeded"]);
}

#[test]
fn protected_accounts_are_never_suspended_and_a_burst_opens_the_circuit() {
    let mut s = setup("guard", true);
    s.config.respond.protected_users = vec!["breakglass@example.com".into()];
    s.config.respond.max_destructive_per_minute = 2;
    let mut decisions = vec![decision(
        "breakglass",
        "e-vip",
        vec![act(ActionKind::OktaSuspendUser, json!({}))],
    )];
    for i in 0..4 {
        let user = format!("00uMASS{i}");
        s.fakes.add_user(&user, "ACTIVE");
        decisions.push(decision(
            &user,
            &format!("e-mass-{i}"),
            vec![act(ActionKind::OktaSuspendUser, json!({}))],
        ));
    }
    s.fakes.add_user("breakglass", "ACTIVE");
    produce_decisions(&s.config, &decisions.iter().collect::<Vec<_>>());
    let stage = respond(&s.config);
    let ids: Vec<&str> = decisions
        .iter()
        .map(|d| d.actions[0].action_id.as_str())
        .collect();
    let ledger = final_ledger(&s.config, &ids);
    stage.stop();

    assert_eq!(status_of(&ledger, ids[0]), "refused");
    assert_eq!(s.fakes.user_status("breakglass").as_deref(), Some("ACTIVE"));
    let mut statuses: Vec<String> = ids[1..].iter().map(|id| status_of(&ledger, id)).collect();
    statuses.sort();
    assert_eq!(statuses, ["held", "held", "succeeded", "succeeded"]);
    assert_eq!(
        s.fakes.count_prefix("POST", "/okta/api/v1/users/00uMASS"),
        2
    );
    let alerts = s.fakes.slack_messages();
    assert_eq!(alerts.len(), 1, "one alert when the circuit opens");
    assert!(
        alerts[0]["text"].as_str().unwrap().contains("circuit open"),
        "{}",
        alerts[0]
    );
}

#[test]
fn without_credentials_the_requests_are_recorded_not_sent() {
    let s = setup("dry", false);
    let d = decision(
        "00uGINA",
        "e-gina",
        vec![
            act(ActionKind::OktaClearSessions, json!({})),
            act(ActionKind::SlackNotify, json!({})),
            act(ActionKind::PagerdutyTrigger, json!({})),
        ],
    );
    let (ledger, _) = run_to_final(&s.config, &[&d]);
    let ids: Vec<&str> = d.actions.iter().map(|a| a.action_id.as_str()).collect();
    for id in &ids {
        assert_eq!(status_of(&ledger, id), "dry_run");
    }
    let sessions = &ledger[ids[0]]["detail"];
    assert_eq!(sessions["method"], "DELETE", "{sessions}");
    assert!(
        sessions["url"]
            .as_str()
            .unwrap()
            .ends_with("/api/v1/users/00uGINA/sessions?oauthTokens=false"),
        "{sessions}"
    );
    assert!(s.fakes.requests().is_empty(), "nothing sent");
}

#[test]
fn the_overrides_api_needs_the_token_and_suppresses_a_users_decisions() {
    let mut s = setup("api", true);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    s.config.http.listen = format!("127.0.0.1:{port}");
    let token_file = s._dir.path().join("api-token");
    std::fs::write(&token_file, "api-secret\n").unwrap();
    s.config.http.token_file = Some(token_file);
    s.fakes.add_user("00uHANK", "ACTIVE");
    let stage = respond(&s.config);

    let url = format!("http://127.0.0.1:{port}/v1/overrides/00uHANK");
    let body = json!({"reason": "red-team exercise", "for_secs": 3600, "by": "ana"});
    let client = reqwest::blocking::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    let unauthorised = loop {
        match client.put(&url).json(&body).send() {
            Ok(r) => break r,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(100)),
            Err(e) => panic!("API not up: {e}"),
        }
    };
    assert_eq!(unauthorised.status(), 401);
    let wrong = client
        .put(&url)
        .bearer_auth("api-secreT")
        .json(&body)
        .send()
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let no_reason = client
        .put(&url)
        .bearer_auth("api-secret")
        .json(&json!({"reason": "", "for_secs": 60}))
        .send()
        .unwrap();
    assert_eq!(no_reason.status(), 400);
    let created = client
        .put(&url)
        .bearer_auth("api-secret")
        .json(&body)
        .send()
        .unwrap();
    assert_eq!(created.status(), 201);
    let o: Value = created.json().unwrap();
    assert_eq!(o["scope"], "all");

    let suppressed = decision(
        "00uHANK",
        "e-hank",
        vec![act(ActionKind::OktaSuspendUser, json!({}))],
    );
    produce_decisions(&s.config, &[&suppressed]);
    let id = suppressed.actions[0].action_id.as_str();
    let ledger = final_ledger(&s.config, &[id]);
    assert_eq!(status_of(&ledger, id), "cancelled");
    assert!(ledger[id]["reason"]
        .as_str()
        .unwrap()
        .contains("red-team exercise"));

    let lifted = client
        .delete(&url)
        .bearer_auth("api-secret")
        .json(&json!({"reason": "exercise over", "by": "ana"}))
        .send()
        .unwrap();
    assert_eq!(lifted.status(), 200);
    let listed: Value = client
        .get(format!("http://127.0.0.1:{port}/v1/overrides"))
        .bearer_auth("api-secret")
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(listed[0]["reason"], "exercise over");
    let after = decision(
        "00uHANK",
        "e-hank-2",
        vec![act(ActionKind::OktaSuspendUser, json!({}))],
    );
    produce_decisions(&s.config, &[&after]);
    let id = after.actions[0].action_id.as_str();
    let ledger = final_ledger(&s.config, &[id]);
    stage.stop();
    assert_eq!(status_of(&ledger, id), "succeeded");
    assert_eq!(s.fakes.user_status("00uHANK").as_deref(), Some("SUSPENDED"));
}

#[test]
fn the_override_command_sets_lists_and_lifts_overrides_on_the_topic() {
    let s = setup("cli", false);
    let file = s._dir.path().join("vigil.toml");
    std::fs::write(
        &file,
        format!(
            "[kafka]\nbootstrap_servers = \"{}\"\n[topics]\noverrides = \"{}\"\n",
            s.config.kafka.bootstrap_servers.as_deref().unwrap(),
            s.config.topics.overrides
        ),
    )
    .unwrap();
    let config = file.to_str().unwrap();
    let set = common::run(&[
        "override",
        "set",
        "--config",
        config,
        "--user",
        "00uIVY",
        "--for",
        "2h",
        "--reason",
        "on a plane",
        "--scope",
        "pending",
        "--by",
        "ana",
    ]);
    assert!(set.status.success(), "{}", common::stderr(&set));
    let written: Value = serde_json::from_str(common::stdout(&set).trim()).unwrap();
    assert_eq!(written["scope"], "pending");
    let listed = common::run(&["override", "list", "--config", config]);
    assert!(listed.status.success(), "{}", common::stderr(&listed));
    let listed: Value = serde_json::from_str(common::stdout(&listed).trim()).unwrap();
    assert_eq!(listed, written);
    let until = chrono::DateTime::parse_from_rfc3339(listed["until"].as_str().unwrap()).unwrap();
    let created =
        chrono::DateTime::parse_from_rfc3339(listed["created_at"].as_str().unwrap()).unwrap();
    assert_eq!(until - created, chrono::Duration::hours(2));

    let no_reason = common::run(&[
        "override", "clear", "--config", config, "--user", "00uIVY", "--reason", "",
    ]);
    assert!(!no_reason.status.success());
    assert!(
        common::stderr(&no_reason).contains("reason"),
        "{}",
        common::stderr(&no_reason)
    );
    let cleared = common::run(&[
        "override", "clear", "--config", config, "--user", "00uIVY", "--reason", "landed",
    ]);
    assert!(cleared.status.success(), "{}", common::stderr(&cleared));
    let listed = common::run(&["override", "list", "--config", config]);
    let listed: Value = serde_json::from_str(common::stdout(&listed).trim()).unwrap();
    assert_eq!(listed["reason"], "landed");
    assert_eq!(listed["until"], listed["created_at"]);
}

/// A `started` ledger record of each action of `d` in ledger partition `partition`, written at
/// `at`: what a crash between the intent and the result leaves behind.
fn crashed_intents(
    config: &Config,
    d: &Decision,
    partition: i32,
    at: chrono::DateTime<chrono::Utc>,
) {
    let producer: rdkafka::producer::FutureProducer = vigil::kafka::producer_config(&config.kafka)
        .unwrap()
        .create()
        .unwrap();
    for action in &d.actions {
        let mut entry =
            vigil::ledger::LedgerEntry::new(d, action, vigil::ledger::Status::Started, at);
        entry.recorded_at = at;
        let payload = serde_json::to_vec(&entry).unwrap();
        let record = rdkafka::producer::FutureRecord::to(&config.topics.ledger)
            .partition(partition)
            .key(&action.action_id)
            .payload(&payload);
        futures::executor::block_on(producer.send(record, Duration::from_secs(10))).unwrap();
    }
}

#[test]
fn after_a_crash_between_intent_and_result_actions_are_reconciled_not_repeated() {
    let s = setup("reconcile", true);
    s.fakes.add_user("00uDONE", "ACTIVE");
    s.fakes.add_user("00uTODO", "ACTIVE");
    let intent = chrono::Utc::now();
    // The reset of 00uDONE went through before the crash; nothing of 00uTODO's did.
    let done = decision(
        "00uDONE",
        "e-done",
        vec![act(ActionKind::OktaResetPassword, json!({}))],
    );
    let todo = decision(
        "00uTODO",
        "e-todo",
        vec![
            act(ActionKind::OktaResetPassword, json!({})),
            act(ActionKind::SlackNotify, json!({})),
        ],
    );
    std::thread::sleep(Duration::from_millis(20));
    s.fakes.change_status_now("00uDONE", "RECOVERY");
    // The decisions were consumed but not committed: they are on the topic, and their intents
    // in the ledger partition of the same number.
    produce_decisions(&s.config, &[&done, &todo]);
    let on_topic = read_until(
        &s.config,
        &s.config.topics.decisions,
        Duration::from_secs(30),
        |r| r.len() >= 2,
    );
    for d in [&done, &todo] {
        let record = on_topic
            .iter()
            .find(|r| r.key.as_deref() == d.user.as_ref().map(|u| u.id.as_str()))
            .unwrap();
        crashed_intents(&s.config, d, record.partition, intent);
    }

    let stage = respond(&s.config);
    let ids: Vec<&str> = [&done, &todo]
        .iter()
        .flat_map(|d| d.actions.iter().map(|a| a.action_id.as_str()))
        .collect();
    let ledger = final_ledger(&s.config, &ids);
    let (_, counters) = stage.stop();

    assert_eq!(counters.reconciled, 3);
    let reconciled = &ledger[ids[0]];
    assert_eq!(reconciled["status"], "succeeded");
    assert!(
        reconciled["reason"]
            .as_str()
            .unwrap()
            .contains("reconciled"),
        "{reconciled}"
    );
    assert_eq!(
        s.fakes.count(
            "POST",
            "/okta/api/v1/users/00uDONE/lifecycle/reset_password"
        ),
        0,
        "the reset that happened is not repeated"
    );
    assert_eq!(status_of(&ledger, ids[1]), "succeeded");
    assert_eq!(status_of(&ledger, ids[2]), "succeeded");
    assert_eq!(
        s.fakes.count(
            "POST",
            "/okta/api/v1/users/00uTODO/lifecycle/reset_password"
        ),
        1
    );
    assert_eq!(
        s.fakes.slack_messages().len(),
        1,
        "the post that never happened is made once"
    );
    assert_eq!(
        counters.duplicates, 3,
        "the redelivered decisions are dropped"
    );
    assert_eq!(s.fakes.violations(), Vec::<String>::new());
}

#[test]
fn a_webhook_post_that_cannot_be_checked_is_repeated_marked_as_a_possible_repeat() {
    let mut s = setup("webhook", false);
    let webhook = s._dir.path().join("webhook");
    std::fs::write(&webhook, s.fakes.slack_webhook()).unwrap();
    s.config.slack.webhook_url_file = Some(webhook);
    let d = decision(
        "00uWEB",
        "e-web",
        vec![act(ActionKind::SlackNotify, json!({}))],
    );
    produce_decisions(&s.config, &[&d]);
    let record = &read_until(
        &s.config,
        &s.config.topics.decisions,
        Duration::from_secs(30),
        |r| !r.is_empty(),
    )[0];
    crashed_intents(&s.config, &d, record.partition, chrono::Utc::now());
    let stage = respond(&s.config);
    let ledger = final_ledger(&s.config, &[d.actions[0].action_id.as_str()]);
    stage.stop();
    assert_eq!(status_of(&ledger, &d.actions[0].action_id), "succeeded");
    let messages = s.fakes.slack_messages();
    assert_eq!(messages.len(), 1);
    assert!(
        messages[0]["text"]
            .as_str()
            .unwrap()
            .contains("possible repeat"),
        "{}",
        messages[0]
    );
}

#[test]
fn lag_is_published_while_the_stage_waits_on_a_slow_vendor() {
    let mut s = setup("lagging", true);
    s.config.respond.http_timeout_ms = 10_000;
    let group = s.config.respond.group_id.clone();
    let lag = || -> Option<i64> {
        // Both partitions of the decisions topic, once the watcher has published them.
        let metrics = vigil::metrics::metrics();
        let parts: Vec<i64> = (0..2)
            .filter_map(|p| {
                let text = metrics.render();
                let series = format!(
                    "vigil_consumer_lag_records{{group=\"{group}\",partition=\"{p}\",topic=\"{}\"}} ",
                    s.config.topics.decisions
                );
                text.lines()
                    .find_map(|l| l.strip_prefix(&series))
                    .and_then(|v| v.parse().ok())
            })
            .collect();
        (parts.len() == 2).then(|| parts.iter().sum())
    };
    let wait_for = |what: &str, ok: &dyn Fn(Option<i64>) -> bool| {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while !ok(lag()) {
            assert!(
                std::time::Instant::now() < deadline,
                "{what}: lag {:?}",
                lag()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let stage = respond(&s.config);
    wait_for("idle stage publishes no lag", &|l| l == Some(0));
    // Each clear-sessions call takes 4 s: the stage is busy with one batch for ~12 s and commits
    // nothing meanwhile; lag must show it rather than wait for the loop to come back.
    s.fakes.set_latency(Duration::from_secs(4));
    let users = ["00uSLOW1", "00uSLOW2", "00uSLOW3"];
    let decisions: Vec<Decision> = users
        .iter()
        .map(|u| {
            decision(
                u,
                &format!("e-{u}"),
                vec![act(ActionKind::OktaClearSessions, json!({}))],
            )
        })
        .collect();
    produce_decisions(&s.config, &decisions.iter().collect::<Vec<_>>());
    // The watcher looks every 5 s; the third call starts at 8 s and nothing is committed
    // before the batch ends, so its first look after the produce sees lag with calls pending.
    wait_for("lag while the vendor is slow", &|l| {
        l.is_some_and(|l| l >= 1)
    });
    assert!(
        s.fakes.count_prefix("DELETE", "/okta/api/v1/users/00uSLOW") < 3,
        "the lag was seen while calls were still in progress"
    );
    wait_for("no lag once done", &|l| l == Some(0));
    stage.stop();
    assert_eq!(
        s.fakes.count_prefix("DELETE", "/okta/api/v1/users/00uSLOW"),
        3
    );
}

/// When each request whose path contains `part` reached the fakes, oldest first.
fn arrivals(fakes: &Fakes, part: &str) -> Vec<Instant> {
    fakes
        .requests()
        .iter()
        .filter(|r| r.path.contains(part))
        .map(|r| r.at)
        .collect()
}

/// The gaps between consecutive arrivals.
fn gaps(times: &[Instant]) -> Vec<Duration> {
    times.windows(2).map(|w| w[1] - w[0]).collect()
}

/// The ledger's `retries` notes of an entry.
fn notes(entry: &Value) -> Vec<String> {
    entry["retries"]
        .as_array()
        .map(|n| n.iter().map(|n| n.as_str().unwrap().to_owned()).collect())
        .unwrap_or_default()
}

#[test]
fn a_rate_limit_reset_now_or_past_is_waited_out_at_the_floor_not_in_a_burst() {
    let s = setup("floor", true);
    s.fakes.add_user("00uSTEP", "ACTIVE");
    // Okta rounds the reset down to the second: read a moment later it is now, or past.
    s.fakes.fail_next(
        "/sessions",
        vec![
            FakeResponse::okta_rate_limited(0),
            FakeResponse::okta_rate_limited(-2),
        ],
    );
    s.fakes
        .fail_next("/groups/", vec![FakeResponse::okta_rate_limited(0)]);
    let d = decision(
        "00uSTEP",
        "e-step",
        vec![
            act(ActionKind::OktaClearSessions, json!({})),
            act(ActionKind::OktaAddToGroup, json!({"group_id": "00gSTEPUP"})),
            act(
                ActionKind::OktaAddToGroup,
                json!({"group_id": "00gSTEPUP2"}),
            ),
        ],
    );
    let (ledger, _) = run_to_final(&s.config, &[&d]);
    let ids: Vec<&str> = d.actions.iter().map(|a| a.action_id.as_str()).collect();
    for id in &ids {
        assert_eq!(status_of(&ledger, id), "succeeded", "{}", ledger[*id]);
    }
    let attempts: Vec<u64> = ids
        .iter()
        .map(|id| ledger[*id]["attempts"].as_u64().unwrap())
        .collect();
    assert_eq!(attempts, [3, 2, 1], "{ledger:?}");
    // No burst: exactly one request per attempt, each retry at least the floor (1 s) after
    // the rate-limited one.
    let sessions = arrivals(&s.fakes, "/sessions");
    assert_eq!(sessions.len(), 3);
    let groups = arrivals(&s.fakes, "/groups/");
    assert_eq!(groups.len(), 3, "two group adds, one of them retried once");
    for gap in gaps(&sessions).into_iter().chain(gaps(&groups[..2])) {
        assert!(gap >= Duration::from_secs(1), "retried after {gap:?}");
    }
    assert_eq!(s.fakes.sessions_cleared("00uSTEP"), 1);
    assert_eq!(s.fakes.group_members("00gSTEPUP"), ["00uSTEP"]);
    assert_eq!(s.fakes.group_members("00gSTEPUP2"), ["00uSTEP"]);
    assert_eq!(notes(&ledger[ids[0]]).len(), 2, "{}", ledger[ids[0]]);
    assert_eq!(s.fakes.violations(), Vec::<String>::new());
}

#[test]
fn a_rate_limit_wait_follows_the_vendors_clock_not_ours() {
    let s = setup("skew", true);
    s.fakes.add_user("00uBEHIND", "ACTIVE");
    s.fakes.add_user("00uAHEAD", "ACTIVE");
    let stage = respond(&s.config);
    let mut spacing = Vec::new();
    // Okta's clock 5 minutes behind ours (by ours the reset is long past: a 1 s floor), then
    // 5 minutes ahead (by ours it is 303 s away: beyond the capped wait and the budget).
    for (user, skew) in [("00uBEHIND", -300), ("00uAHEAD", 300)] {
        s.fakes.set_okta_clock_skew(skew);
        s.fakes
            .fail_next("/sessions", vec![FakeResponse::okta_rate_limited(3)]);
        let d = decision(
            user,
            &format!("e-{user}"),
            vec![act(ActionKind::OktaClearSessions, json!({}))],
        );
        produce_decisions(&s.config, &[&d]);
        let id = d.actions[0].action_id.as_str();
        let ledger = final_ledger(&s.config, &[id]);
        assert_eq!(status_of(&ledger, id), "succeeded", "{}", ledger[id]);
        assert_eq!(ledger[id]["attempts"], 2);
        let times = arrivals(&s.fakes, &format!("/users/{user}/sessions"));
        assert_eq!(times.len(), 2);
        spacing.push(times[1] - times[0]);
    }
    stage.stop();
    for gap in spacing {
        // Reset − Date is 3 s (4 with the rounding second), whatever our clock says.
        assert!(
            gap >= Duration::from_secs(3) && gap < Duration::from_secs(60),
            "retried after {gap:?}"
        );
    }
    assert_eq!(s.fakes.violations(), Vec::<String>::new());
}

#[test]
fn an_answer_lost_after_a_reset_post_or_page_is_looked_up_before_any_retry() {
    let s = setup("late", true);
    for user in ["00uLATE", "00uDROP"] {
        s.fakes.add_user(user, "ACTIVE");
    }
    let acts = || {
        vec![
            act(ActionKind::OktaResetPassword, json!({"send_email": true})),
            act(ActionKind::SlackNotify, json!({})),
            act(ActionKind::PagerdutyTrigger, json!({})),
        ]
    };
    // 00uLATE: each vendor applies the request and answers after the client's timeout (2 s).
    let late = decision("00uLATE", "e-late", acts());
    // 00uDROP: each vendor applies the request and drops the connection without answering.
    let dropped = decision("00uDROP", "e-drop", acts());
    for path in ["/reset_password", "chat.postMessage", "/v2/enqueue"] {
        s.fakes.delay_next(path, Duration::from_secs(3));
    }
    let stage = respond(&s.config);
    produce_decisions(&s.config, &[&late]);
    let late_ids: Vec<&str> = late.actions.iter().map(|a| a.action_id.as_str()).collect();
    let late_ledger = final_ledger(&s.config, &late_ids);
    for path in ["/reset_password", "chat.postMessage", "/v2/enqueue"] {
        s.fakes.drop_next(path);
    }
    produce_decisions(&s.config, &[&dropped]);
    let drop_ids: Vec<&str> = dropped
        .actions
        .iter()
        .map(|a| a.action_id.as_str())
        .collect();
    let drop_ledger = final_ledger(&s.config, &drop_ids);
    stage.stop();

    for (user, ledger, ids) in [
        ("00uLATE", &late_ledger, &late_ids),
        ("00uDROP", &drop_ledger, &drop_ids),
    ] {
        for id in ids.iter() {
            assert_eq!(
                status_of(ledger, id),
                "succeeded",
                "{user}: {}",
                ledger[*id]
            );
        }
        // One reset (one email): found by the lookup, not sent again.
        assert_eq!(
            s.fakes.count(
                "POST",
                &format!("/okta/api/v1/users/{user}/lifecycle/reset_password")
            ),
            1,
            "{user}"
        );
        assert_eq!(s.fakes.user_status(user).as_deref(), Some("RECOVERY"));
        for id in &ids[..2] {
            let entry = &ledger[*id];
            assert!(
                entry["reason"]
                    .as_str()
                    .is_some_and(|r| r.contains("reconciled after an uncertain answer")),
                "{user}: {entry}"
            );
            assert_eq!(entry["attempts"], 2, "the call, then the lookup: {entry}");
            let notes = notes(entry);
            assert!(notes[0].contains("may have been applied"), "{notes:?}");
            assert!(
                notes[1].contains("looked up after the uncertain answer: the vendor shows it done"),
                "{notes:?}"
            );
        }
        assert_eq!(ledger[ids[0]]["detail"]["status_read"], "RECOVERY");
        assert!(ledger[ids[1]]["detail"]["ts"].is_string());
        // PagerDuty merges the repeat into the incident by its dedup key: one incident.
        assert_eq!(ledger[ids[2]]["attempts"], 2);
        assert_eq!(
            s.fakes.incident_count(&vigil::connector::dedup_key(user)),
            1
        );
    }
    // One message per user.
    assert_eq!(s.fakes.slack_messages().len(), 2);
    assert_eq!(s.fakes.count("POST", "/slack/api/chat.postMessage"), 2);
    assert_eq!(s.fakes.count("POST", "/pd-events/v2/enqueue"), 4);
    assert_eq!(s.fakes.violations(), Vec::<String>::new());
}

#[test]
fn a_webhook_post_whose_answer_is_lost_is_sent_again_marked_as_a_possible_repeat() {
    let mut s = setup("lostwebhook", false);
    let webhook = s._dir.path().join("webhook");
    std::fs::write(&webhook, s.fakes.slack_webhook()).unwrap();
    s.config.slack.webhook_url_file = Some(webhook);
    s.fakes.drop_next("/slack/webhook/");
    let d = decision(
        "00uHOOK",
        "e-hook",
        vec![act(ActionKind::SlackNotify, json!({}))],
    );
    let (ledger, _) = run_to_final(&s.config, &[&d]);
    let entry = &ledger[&d.actions[0].action_id];
    assert_eq!(entry["status"], "succeeded", "{entry}");
    // It cannot be looked up: the message is sent again, marked, rather than lost.
    let messages = s.fakes.slack_messages();
    assert_eq!(messages.len(), 2);
    assert!(!messages[0]["text"]
        .as_str()
        .unwrap()
        .contains("possible repeat"));
    assert!(
        messages[1]["text"]
            .as_str()
            .unwrap()
            .contains("possible repeat"),
        "{}",
        messages[1]
    );
    assert!(
        notes(entry).iter().any(|n| n.contains("cannot be checked")),
        "{entry}"
    );
}

#[test]
fn retries_end_with_the_time_budget() {
    let mut s = setup("budget", true);
    s.config.respond.retry_budget_secs = 3;
    s.fakes.add_user("00uBUSY", "ACTIVE");
    // A wait of 30 s is beyond the budget: not waited for, recorded failed with why.
    s.fakes.fail_next(
        "chat.postMessage",
        vec![FakeResponse::new(429).header("Retry-After", "30")],
    );
    // A vendor failing for longer than the budget: retried with backoff, then given up.
    s.fakes
        .fail_next("/groups/", vec![FakeResponse::new(503); 200]);
    let d = decision(
        "00uBUSY",
        "e-busy",
        vec![
            act(ActionKind::SlackNotify, json!({})),
            act(ActionKind::OktaAddToGroup, json!({"group_id": "00gSTEPUP"})),
        ],
    );
    let (ledger, _) = run_to_final(&s.config, &[&d]);
    let post = &ledger[&d.actions[0].action_id];
    assert_eq!(post["status"], "failed", "{post}");
    assert_eq!(post["attempts"], 1);
    assert!(
        notes(post)
            .iter()
            .any(|n| n.contains("retry budget of 3 s")),
        "{post}"
    );
    assert!(s.fakes.slack_messages().is_empty());
    let group = &ledger[&d.actions[1].action_id];
    assert_eq!(group["status"], "failed", "{group}");
    let calls = s.fakes.count_prefix("PUT", "/okta/api/v1/groups/");
    assert!(
        (2..200).contains(&calls),
        "retried within the budget, then stopped: {calls} calls"
    );
    assert_eq!(group["attempts"], calls as u64);
}
