//! `vigil run` as a process on a real Kafka-protocol broker (tansu, sqlite storage), killed
//! with SIGKILL twice — once while delayed suspends wait, once while they fall due — and
//! restarted: every action ends executed or cancelled with its reason, none is lost, none reaches
//! a vendor twice, and the System Log poller resumes from its stored cursor.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use common::fakes::Fakes;
use common::kafka::*;
use common::respond::*;
use common::tansu::{config_file, Stage, Tansu};
use vigil::config::Config;
use vigil::decision::{ActionKind, Condition, Decision};

/// Append the respond, ingest and connector sections (fakes, credentials in files) to the
/// configuration file at `path`.
fn with_connectors_and_poller(path: &Path, dir: &Path, fakes: &Fakes) {
    let secret = |name: &str, value: &str| {
        let file = dir.join(name);
        std::fs::write(&file, value).unwrap();
        file.display().to_string()
    };
    let text = format!(
        r#"
[respond]
group_id = "runcrash-respond"
retry_min_delay_ms = 50
retry_max_delay_ms = 500
max_destructive_per_minute = 10000

[ingest]
poll = true
poll_interval_ms = 200

[okta]
base_url = "{okta}"
token_file = "{okta_token}"

[slack]
base_url = "{slack}"
channel = "C0SECURITY"
token_file = "{slack_token}"

[pagerduty]
events_url = "{pd_events}"
api_url = "{pd_api}"
routing_key_file = "{routing_key}"
api_token_file = "{pd_token}"
"#,
        okta = fakes.okta_base(),
        okta_token = secret("okta-token", "okta-test-token"),
        slack = fakes.slack_base(),
        slack_token = secret("slack-token", "xoxb-test-token"),
        pd_events = fakes.pd_events_base(),
        pd_api = fakes.pd_api_base(),
        routing_key = secret("routing-key", ROUTING_KEY),
        pd_token = secret("pd-token", "pd-test-api-token"),
    );
    let mut config = std::fs::read_to_string(path).unwrap();
    config.push_str(&text);
    std::fs::write(path, config).unwrap();
}

/// Every ledger record's status, grouped by action id in order, once `done` says so.
fn ledger_steps(
    config: &Config,
    done: impl Fn(&BTreeMap<String, Vec<String>>) -> bool,
) -> BTreeMap<String, Vec<String>> {
    let group = |records: &[Record]| {
        let mut steps: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for r in records {
            let e = r.json();
            steps
                .entry(e["action_id"].as_str().unwrap().to_owned())
                .or_default()
                .push(e["status"].as_str().unwrap().to_owned());
        }
        steps
    };
    group(&read_until(
        config,
        &config.topics.ledger,
        Duration::from_secs(120),
        |records| done(&group(records)),
    ))
}

fn is_final(status: &str) -> bool {
    !matches!(status, "scheduled" | "started")
}

fn final_count(steps: &BTreeMap<String, Vec<String>>, ids: &BTreeSet<String>) -> usize {
    ids.iter()
        .filter(|id| {
            steps
                .get(*id)
                .and_then(|s| s.last())
                .is_some_and(|s| is_final(s))
        })
        .count()
}

#[test]
fn kill_9_of_vigil_run_with_delayed_actions_pending_then_nothing_lost_nothing_twice() {
    init_logs();
    let tansu = Tansu::start();
    let dir = tempfile::tempdir().unwrap();
    let fakes = Fakes::start();
    // Slow vendors, so that kills land between calls and their ledger records.
    fakes.set_latency(Duration::from_millis(25));
    let path = config_file(dir.path(), &tansu.bootstrap, "runcrash");
    with_connectors_and_poller(&path, dir.path(), &fakes);
    let topics = common::run(&[
        "topics",
        "--config",
        path.to_str().unwrap(),
        "--partitions",
        "3",
    ]);
    assert!(topics.status.success(), "{}", common::stderr(&topics));
    let config = Config::load_with_env(Some(&path), Vec::new()).unwrap();

    // Three kinds of user, 10 each: the on-call acknowledged their incident (an earlier page),
    // they went quiet, or they go on signing in.
    let group =
        |kind: &str| -> Vec<String> { (0..10).map(|i| format!("00u{kind}{i:02}")).collect() };
    let (acked, quiet, active) = (group("ACKED"), group("QUIET"), group("ACTIVE"));
    let everyone: Vec<&String> = acked.iter().chain(&quiet).chain(&active).collect();
    for user in &everyone {
        fakes.add_user(user, "ACTIVE");
    }
    for user in &acked {
        paged_and_acknowledged(&fakes, user);
    }
    // Each decision: a Slack post and a page now, a suspend in 20 to 30 s unless acknowledged,
    // only if the activity continues.
    let published = chrono::Utc::now();
    let decisions: Vec<Decision> = everyone
        .iter()
        .enumerate()
        .map(|(i, user)| {
            decision_at(
                user,
                &format!("e-{user}"),
                published,
                vec![
                    act(ActionKind::SlackNotify, json!({})),
                    act(ActionKind::PagerdutyTrigger, json!({})),
                    delayed(
                        ActionKind::OktaSuspendUser,
                        20 + 5 * (i as u64 % 3),
                        &[
                            Condition::UnlessAcknowledged,
                            Condition::UnlessOverridden,
                            Condition::OnlyIfActivityContinues,
                        ],
                    ),
                ],
            )
        })
        .collect();
    produce_decisions(&config, &decisions.iter().collect::<Vec<_>>());
    // The activity reaches Vigil through its System Log poller.
    let later = (published + chrono::Duration::seconds(1)).to_rfc3339();
    let activity: Vec<Value> = acked
        .iter()
        .chain(&active)
        .map(|u| {
            common::event(
                &format!("later-{u}"),
                &later,
                "user.authentication.sso",
                u,
                "SUCCESS",
            )
        })
        .collect();
    fakes.append_logs(&activity);

    let all_ids: BTreeSet<String> = decisions
        .iter()
        .flat_map(|d| d.actions.iter().map(|a| a.action_id.clone()))
        .collect();
    let suspend_ids: BTreeSet<String> = decisions
        .iter()
        .map(|d| d.actions[2].action_id.clone())
        .collect();
    let seed: u64 = rand::rng().random();
    println!("kill schedule seed {seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let log = dir.path().join("run.log");
    let keep_log = || {
        let kept = std::env::temp_dir().join("vigil-run-crash.log");
        std::fs::copy(&log, &kept).unwrap();
        format!("seed {seed}; vigil run's log: {}", kept.display())
    };

    // Kill 1: the immediate actions under way, the suspends still waiting, the poller's page
    // stored.
    let run = Stage::start("run", &path, &log);
    ledger_steps(&config, |s| final_count(s, &all_ids) >= 20);
    read_until(
        &config,
        &config.topics.events,
        Duration::from_secs(60),
        |r| r.len() >= activity.len(),
    );
    std::thread::sleep(Duration::from_millis(500 + rng.random_range(0..150)));
    run.kill9();
    // What the broker holds now: at least the finals seen before the kill (a reader that
    // stops at its first empty poll could return before its first fetch).
    let at_first_kill = ledger_steps(&config, |s| final_count(s, &all_ids) >= 20);
    let pending = suspend_ids
        .iter()
        .filter(|id| {
            at_first_kill.get(*id).is_some_and(|s| {
                s.iter().any(|s| s == "scheduled") && !s.iter().any(|s| is_final(s))
            })
        })
        .count();
    println!("{pending} delayed suspends were pending at the first kill");
    assert!(
        pending > 0,
        "the first kill came before any suspend was due ({})",
        keep_log()
    );

    // Kill 2: while the suspends fall due.
    let run = Stage::start("run", &path, &log);
    ledger_steps(&config, |s| final_count(s, &suspend_ids) >= 1);
    std::thread::sleep(Duration::from_millis(rng.random_range(0..150)));
    run.kill9();

    let run = Stage::start("run", &path, &log);
    let steps = ledger_steps(&config, |s| final_count(s, &all_ids) == all_ids.len());
    assert!(run.terminate().success(), "{}", keep_log());

    // Every action ended, with the outcome its conditions call for.
    let last = |id: &str| steps[id].last().unwrap().clone();
    let ledger = final_ledger(
        &config,
        &all_ids.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    for d in &decisions {
        let user = &d.actions[0].target;
        for a in &d.actions[..2] {
            assert_eq!(
                last(&a.action_id),
                "succeeded",
                "{} ({})",
                a.action_id,
                keep_log()
            );
        }
        let suspend = &ledger[&d.actions[2].action_id];
        let reason = suspend["reason"].as_str().unwrap_or("");
        let status = suspend["status"].as_str().unwrap();
        if acked.contains(user) {
            assert_eq!(status, "cancelled", "{user}: {suspend} ({})", keep_log());
            assert!(reason.contains("acknowledged"), "{user}: {reason}");
        } else if quiet.contains(user) {
            assert_eq!(status, "cancelled", "{user}: {suspend} ({})", keep_log());
            assert!(reason.contains("no activity"), "{user}: {reason}");
        } else {
            assert!(
                matches!(status, "succeeded" | "already_in_state"),
                "{user}: {suspend} ({})",
                keep_log()
            );
        }
    }

    // At the vendors: nothing twice, nothing missing.
    let posted: Vec<String> = fakes
        .slack_messages()
        .iter()
        .map(|m| {
            m["metadata"]["event_payload"]["action_id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    let distinct: BTreeSet<&String> = posted.iter().collect();
    assert_eq!(
        posted.len(),
        decisions.len(),
        "one post per decision ({})",
        keep_log()
    );
    assert_eq!(distinct.len(), decisions.len());
    for d in &decisions {
        let user = &d.actions[0].target;
        assert_eq!(
            fakes.incident_count(&vigil::connector::dedup_key(user)),
            1,
            "one incident for {user}"
        );
        let calls = fakes.count(
            "POST",
            &format!("/okta/api/v1/users/{user}/lifecycle/suspend"),
        );
        if active.contains(user) {
            // Suspending is idempotent (status read first): a call may repeat only where the
            // ledger shows the call interrupted.
            let started = steps[&d.actions[2].action_id]
                .iter()
                .filter(|s| *s == "started")
                .count();
            assert!(
                calls >= 1 && calls <= started,
                "{user}: {calls} calls, {started} intents"
            );
            assert_eq!(fakes.user_status(user).as_deref(), Some("SUSPENDED"));
        } else {
            assert_eq!(calls, 0, "{user} must not be suspended ({})", keep_log());
            assert_eq!(fakes.user_status(user).as_deref(), Some("ACTIVE"));
        }
    }
    // The poller started from `since` once; the restarts resumed from the stored cursor.
    let logs: Vec<String> = fakes
        .requests()
        .iter()
        .filter(|r| r.path == "/okta/api/v1/logs")
        .map(|r| r.query.clone())
        .collect();
    assert_eq!(
        logs.iter().filter(|q| q.contains("since=")).count(),
        1,
        "{logs:?}"
    );
    assert_eq!(fakes.violations(), Vec::<String>::new());
}
