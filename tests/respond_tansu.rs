//! `vigil respond` as a process against a real Kafka-protocol broker (tansu) and the vendor
//! fakes: kill -9 at random points mid-batch, then every action is done, and the ones a repeat
//! would show (Slack posts, password resets, PagerDuty incidents, suspensions) exactly once.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use rand::{Rng, SeedableRng};
use serde_json::json;

use common::fakes::Fakes;
use common::kafka::*;
use common::respond::*;
use common::tansu::{config_file, Stage, Tansu};
use vigil::config::Config;
use vigil::decision::{ActionKind, Decision};

/// Append the connector sections (fakes, credentials in files) to the config file at `path`.
fn with_connectors(path: &std::path::Path, dir: &std::path::Path, fakes: &Fakes) {
    let secret = |name: &str, value: &str| {
        let file = dir.join(name);
        std::fs::write(&file, value).unwrap();
        file.display().to_string()
    };
    let text = format!(
        r#"
[respond]
group_id = "crash-respond"
retry_min_delay_ms = 50
retry_max_delay_ms = 500
max_destructive_per_minute = 10000

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

fn response_for(user: &str) -> Decision {
    decision(
        user,
        &format!("e-{user}"),
        vec![
            act(ActionKind::SlackNotify, json!({})),
            act(ActionKind::OktaClearSessions, json!({})),
            act(ActionKind::OktaResetPassword, json!({})),
            act(ActionKind::PagerdutyTrigger, json!({})),
        ],
    )
}

/// Every ledger record, grouped by action id, in order.
fn steps(config: &Config, expected_final: usize) -> BTreeMap<String, Vec<String>> {
    let is_final = |s: &str| !matches!(s, "scheduled" | "started");
    let records = read_until(
        config,
        &config.topics.ledger,
        Duration::from_secs(60),
        |r| {
            r.iter()
                .filter(|r| is_final(r.json()["status"].as_str().unwrap()))
                .count()
                >= expected_final
        },
    );
    let mut steps: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in records {
        let e = r.json();
        steps
            .entry(e["action_id"].as_str().unwrap().to_owned())
            .or_default()
            .push(e["status"].as_str().unwrap().to_owned());
    }
    steps
}

#[test]
fn kill_9_mid_batch_then_every_action_is_done_and_none_visibly_twice() {
    init_logs();
    let tansu = Tansu::start();
    let dir = tempfile::tempdir().unwrap();
    let fakes = Fakes::start();
    // Slow vendors, so that kills land between calls and their ledger records.
    fakes.set_latency(Duration::from_millis(25));
    let path = config_file(dir.path(), &tansu.bootstrap, "crash");
    with_connectors(&path, dir.path(), &fakes);
    let config = Config::load_with_env(Some(&path), Vec::new()).unwrap();
    create_topics(&config, 3);

    let users: Vec<String> = (0..40).map(|i| format!("00uCRASH{i:02}")).collect();
    for user in &users {
        fakes.add_user(user, "ACTIVE");
    }
    let decisions: Vec<Decision> = users.iter().map(|u| response_for(u)).collect();
    produce_decisions(&config, &decisions.iter().collect::<Vec<_>>());

    let seed: u64 = rand::rng().random();
    println!("kill schedule seed {seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let log = dir.path().join("respond.log");
    // Each round: start, wait until a few more actions are done (so the kill lands mid-work,
    // not while joining the group), a random moment more, then SIGKILL.
    let total = decisions.len() * 4;
    for round in 1..=3 {
        let stage = Stage::start("respond", &path, &log);
        let target = (total * round / 5).max(1);
        steps(&config, target);
        std::thread::sleep(Duration::from_millis(rng.random_range(0..150)));
        stage.kill9();
    }
    let stage = Stage::start("respond", &path, &log);
    let action_ids: BTreeSet<String> = decisions
        .iter()
        .flat_map(|d| d.actions.iter().map(|a| a.action_id.clone()))
        .collect();
    let steps = steps(&config, action_ids.len());
    assert!(stage.terminate().success());
    let keep_log = || {
        let kept = std::env::temp_dir().join("vigil-respond-crash.log");
        std::fs::copy(&log, &kept).unwrap();
        format!("seed {seed}; respond's log: {}", kept.display())
    };

    // Every action reached a final state: succeeded (directly or reconciled).
    for id in &action_ids {
        let last = steps.get(id).and_then(|s| s.last());
        assert_eq!(
            last.map(String::as_str),
            Some("succeeded"),
            "{id}: {:?} ({})",
            steps.get(id),
            keep_log()
        );
    }
    let interrupted = steps
        .values()
        .filter(|s| s.iter().filter(|s| *s == "started").count() > 1)
        .count();
    println!("{interrupted} actions were interrupted by a kill and finished after a restart");
    // Visible effects exactly once.
    let messages = fakes.slack_messages();
    let posted: Vec<&str> = messages
        .iter()
        .map(|m| {
            m["metadata"]["event_payload"]["action_id"]
                .as_str()
                .unwrap()
        })
        .collect();
    let distinct: BTreeSet<&str> = posted.iter().copied().collect();
    assert_eq!(
        posted.len(),
        users.len(),
        "one Slack post per decision ({})",
        keep_log()
    );
    assert_eq!(distinct.len(), users.len());
    for user in &users {
        let reset = format!("/okta/api/v1/users/{user}/lifecycle/reset_password");
        assert_eq!(fakes.count("POST", &reset), 1, "{reset} ({})", keep_log());
        assert_eq!(fakes.user_status(user).as_deref(), Some("RECOVERY"));
        assert_eq!(
            fakes.incident_count(&vigil::connector::dedup_key(user)),
            1,
            "one PagerDuty incident for {user}"
        );
    }
    // Idempotent calls may repeat, but only for an action the ledger shows interrupted.
    for d in &decisions {
        let clear = &d.actions[1];
        let calls = fakes.count(
            "DELETE",
            &format!("/okta/api/v1/users/{}/sessions", clear.target),
        );
        let started = steps[&clear.action_id]
            .iter()
            .filter(|s| *s == "started")
            .count();
        assert!(
            calls >= 1 && calls <= started,
            "{}: {calls} calls, {started} intents",
            clear.action_id
        );
    }
    assert_eq!(fakes.violations(), Vec::<String>::new());
}
