//! The whole pipeline under real-world delivery — Event Hook and System Log poller → detect →
//! respond → vendor fakes, every stage in one process as `vigil run` runs them — asserting on
//! what the vendors received: each effect at most once, every action final (done, or cancelled
//! with its reason), no user touched that the policies did not decide about.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use common::fakes::Fakes;
use common::kafka::*;
use vigil::config::Config;
use vigil::run::Embedded;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// An embedded broker, the vendor fakes with credentials, the hook on a free port (secret
/// "hook-secret") and the poller reading the fake's System Log.
fn pipeline(prefix: &str, dir: &std::path::Path) -> (Embedded, Config, Fakes, String) {
    init_logs();
    let mut config = config("unused:9092", prefix);
    let embedded = Embedded::with_partitions(&mut config, 4).expect("embedded broker");
    let fakes = Fakes::start();
    common::respond::use_fakes(&mut config, &fakes, dir, true);
    config.respond.max_destructive_per_minute = 10_000;
    let port = free_port();
    config.ingest.hook_listen = format!("127.0.0.1:{port}");
    let secret = dir.join("hook-secret");
    std::fs::write(&secret, "hook-secret\n").unwrap();
    config.ingest.hook_secret_file = Some(secret);
    config.ingest.poll = true;
    config.ingest.poll_interval_ms = 200;
    let url = format!("http://127.0.0.1:{port}{}", config.ingest.hook_path);
    (embedded, config, fakes, url)
}

fn wait_for_port(url: &str) {
    let addr = url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(&addr).is_err() {
        assert!(Instant::now() < deadline, "the hook receiver did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn envelope(events: &[Value]) -> Value {
    json!({
        "eventType": "com.okta.event_hook",
        "eventTypeVersion": "1.0",
        "cloudEventsVersion": "0.1",
        "source": "https://acme.okta.com/api/v1/eventHooks/who8",
        "eventId": "b5a188b9-5ece-4636-b041-482ffda96311",
        "eventTime": "2026-03-03T10:00:00.000Z",
        "contentType": "application/json",
        "data": {"events": events},
    })
}

/// Every record on `topic` (all partitions), read for a few seconds.
fn everything_on(config: &Config, topic: &str) -> Vec<Value> {
    read_until(config, topic, Duration::from_secs(3), |_| false)
        .iter()
        .map(Record::json)
        .collect()
}

fn canonical(decisions: &[Value]) -> BTreeSet<String> {
    decisions.iter().map(|d| d.to_string()).collect()
}

/// The Okta user a vendor request concerns, from its path (`…/users/{id}/…`).
fn okta_user(path: &str) -> Option<&str> {
    let mut segments = path.split('/');
    segments.find(|s| *s == "users")?;
    segments.next()
}

#[test]
fn every_event_delivered_three_times_by_hook_retries_and_the_poller_acts_as_once() {
    let dir = tempfile::tempdir().unwrap();
    let (_embedded, config, fakes, url) = pipeline("thrice", dir.path());
    let events = simulated_events(25, 2, 7);
    let expected = replay_decisions(&events);
    for e in &events {
        if let Some(id) = e["actor"]["id"].as_str() {
            fakes.add_user(id, "ACTIVE");
        }
    }
    let action_ids: Vec<String> = expected
        .iter()
        .flat_map(|d| d["actions"].as_array().unwrap().iter())
        .map(|a| a["action_id"].as_str().unwrap().to_owned())
        .collect();
    assert!(action_ids.len() >= 10, "the attacks ask for actions");
    let decided_users: BTreeSet<&str> = expected
        .iter()
        .filter_map(|d| d["user"]["id"].as_str())
        .collect();
    // The poller finds every event in the System Log …
    fakes.append_logs(&events);
    let run = {
        let config = config.clone();
        Running::start(move |stop| vigil::run::run_stages(&config, stop))
    };
    wait_for_port(&url);
    // … and the hook receives each delivery twice: Okta retries one it did not see acknowledged.
    let client = reqwest::blocking::Client::new();
    for batch in events.chunks(100) {
        for _ in 0..2 {
            let status = client
                .post(&url)
                .header("Authorization", "hook-secret")
                .json(&envelope(batch))
                .send()
                .unwrap()
                .status();
            assert_eq!(status, 200);
        }
    }
    wait_committed(
        &config,
        &config.detect.group_id,
        &config.topics.events,
        3 * events.len() as i64,
    );
    let ids: Vec<&str> = action_ids.iter().map(String::as_str).collect();
    let ledger = common::respond::final_ledger(&config, &ids);
    run.stop();

    let decisions = everything_on(&config, &config.topics.decisions);
    assert_eq!(
        decisions.len(),
        expected.len(),
        "no decision added by a repeat, none lost"
    );
    assert_eq!(canonical(&decisions), canonical(&expected));

    // Every action is final: done, or cancelled with its reason.
    let mut done: BTreeMap<String, usize> = BTreeMap::new();
    for id in &ids {
        let entry = &ledger[*id];
        let status = entry["status"].as_str().unwrap();
        let kind = entry["type"].as_str().unwrap_or_default().to_owned();
        match status {
            "succeeded" | "already_in_state" | "skipped" => *done.entry(kind).or_default() += 1,
            "cancelled" => assert!(
                entry["reason"].as_str().is_some_and(|r| !r.is_empty()),
                "a cancellation says why: {entry}"
            ),
            other => panic!("{id} ended {other}: {entry}"),
        }
    }
    // Each vendor effect exactly as often as the ledger says it was done: none twice.
    let requests = fakes.requests();
    let count = |method: &str, tail: &str| {
        requests
            .iter()
            .filter(|r| {
                r.method == method && r.path.starts_with("/okta/") && r.path.ends_with(tail)
            })
            .count()
    };
    let succeeded = |kind: &str| {
        ids.iter()
            .filter(|id| ledger[**id]["type"] == kind && ledger[**id]["status"] == "succeeded")
            .count()
    };
    assert_eq!(
        count("POST", "/lifecycle/reset_password"),
        succeeded("okta.reset_password")
    );
    assert_eq!(
        count("POST", "/lifecycle/suspend"),
        succeeded("okta.suspend_user")
    );
    assert_eq!(
        count("DELETE", "/sessions"),
        succeeded("okta.clear_sessions")
    );
    assert_eq!(
        fakes.slack_messages().len(),
        succeeded("slack.notify"),
        "one Slack post per notify done"
    );
    let pd_sent = requests
        .iter()
        .filter(|r| r.method == "POST" && r.path.starts_with("/pd-events/"))
        .count();
    assert_eq!(
        pd_sent,
        succeeded("pagerduty.trigger") + succeeded("pagerduty.resolve"),
        "one PagerDuty event per page"
    );
    // Nobody the policies did not decide about is touched.
    for r in requests.iter().filter(|r| r.method != "GET") {
        if let Some(user) = okta_user(&r.path) {
            assert!(
                decided_users.contains(user),
                "{} {} concerns a user no decision names",
                r.method,
                r.path
            );
        }
    }
    println!("actions done by kind: {done:?}");
    assert_eq!(fakes.violations(), Vec::<String>::new());
}
