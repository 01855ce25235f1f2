//! Ingest against the mock cluster and the Okta fake: the Event Hook receiver (verification,
//! secret, batches keyed by user, malformed bodies, broker down), the System Log poller (10,000
//! events over many pages exactly once and in order, kill -9 and resume from the cursor, rate
//! limits), and the whole pipeline: hook → detect → respond → vendors.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use common::fakes::{FakeResponse, Fakes};
use common::kafka::*;
use common::tansu::Stage;
use vigil::config::Config;
use vigil::run::Embedded;

fn cluster_with_topics(prefix: &str, partitions: i32) -> (Embedded, Config) {
    init_logs();
    let mut config = config("unused:9092", prefix);
    let embedded = Embedded::with_partitions(&mut config, partitions).expect("embedded broker");
    (embedded, config)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The hook receiver on a free port with secret "hook-secret"; its URL.
fn start_hook(config: &mut Config, dir: &std::path::Path) -> (Running<()>, String) {
    let port = free_port();
    config.ingest.hook_listen = format!("127.0.0.1:{port}");
    let secret = dir.join("hook-secret");
    std::fs::write(&secret, "hook-secret\n").unwrap();
    config.ingest.hook_secret_file = Some(secret);
    let stage_config = config.clone();
    let hook = Running::start(move |stop| vigil::ingest::command::run_hook(&stage_config, stop));
    let url = format!("http://127.0.0.1:{port}{}", config.ingest.hook_path);
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "hook receiver did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    (hook, url)
}

fn envelope(events: &[Value]) -> Value {
    json!({
        "eventType": "com.okta.event_hook",
        "eventTypeVersion": "1.0",
        "cloudEventsVersion": "0.1",
        "source": "https://acme.okta.com/api/v1/eventHooks/who8",
        "eventId": "b5a188b9-5ece-4636-b041-482ffda96311",
        "eventTime": "2026-11-22T10:00:00.000Z",
        "contentType": "application/json",
        "data": {"events": events},
    })
}

fn events_for(users: &[&str], per_user: usize) -> Vec<Value> {
    let mut events = Vec::new();
    for i in 0..per_user {
        for user in users {
            events.push(common::event(
                &format!("ev-{user}-{i}"),
                &format!("2026-11-22T10:{:02}:{:02}.000Z", i / 60, i % 60),
                "user.session.start",
                user,
                "SUCCESS",
            ));
        }
    }
    events
}

#[test]
fn the_hook_verifies_checks_its_secret_and_stores_each_event_keyed_by_user() {
    let (_cluster, mut config) = cluster_with_topics("hook", 2);
    let dir = tempfile::tempdir().unwrap();
    let (hook, url) = start_hook(&mut config, dir.path());
    let client = reqwest::blocking::Client::new();

    // Okta's one-time verification.
    let verified = client
        .get(&url)
        .header("Authorization", "hook-secret")
        .header("X-Okta-Verification-Challenge", "yQ2xQKiTPpr3Y9Rr")
        .send()
        .unwrap();
    assert_eq!(verified.status(), 200);
    assert_eq!(
        verified.json::<Value>().unwrap(),
        json!({"verification": "yQ2xQKiTPpr3Y9Rr"})
    );
    let unverified = client
        .get(&url)
        .header("X-Okta-Verification-Challenge", "x")
        .send()
        .unwrap();
    assert_eq!(unverified.status(), 401);

    let events = events_for(&["00uA", "00uB", "00uC"], 4);
    for secret in [None, Some("hook-secreT"), Some("Bearer hook-secret")] {
        let mut request = client.post(&url).json(&envelope(&events));
        if let Some(secret) = secret {
            request = request.header("Authorization", secret);
        }
        assert_eq!(request.send().unwrap().status(), 401, "{secret:?}");
    }
    let malformed = client
        .post(&url)
        .header("Authorization", "hook-secret")
        .body("{\"data\": {\"events\": [{\"uuid\": \"x\"}]}}")
        .send()
        .unwrap();
    assert_eq!(malformed.status(), 400);
    let reason = malformed.text().unwrap();
    assert!(
        reason.contains("missing_field"),
        "the reason is given: {reason}"
    );
    let too_big = client
        .post(&url)
        .header("Authorization", "hook-secret")
        .body(vec![b' '; config.ingest.hook_max_body_bytes + 1])
        .send()
        .unwrap();
    assert_eq!(too_big.status(), 413);

    let stored = client
        .post(&url)
        .header("Authorization", "hook-secret")
        .json(&envelope(&events))
        .send()
        .unwrap();
    assert_eq!(stored.status(), 200);
    // 200 means acknowledged: everything is readable now, and only the good batch got in.
    let records = read_until(
        &config,
        &config.topics.events,
        Duration::from_secs(10),
        |r| r.len() >= events.len(),
    );
    hook.stop();
    assert_eq!(records.len(), events.len());
    for r in &records {
        let event = r.json();
        assert_eq!(
            r.key.as_deref(),
            event["actor"]["id"].as_str(),
            "keyed by user"
        );
    }
    let uuids: BTreeSet<String> = records
        .iter()
        .map(|r| r.json()["uuid"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(uuids.len(), events.len());
}

#[test]
fn with_the_broker_down_the_hook_answers_503_and_okta_s_retry_stores_the_events() {
    let (cluster, mut config) = cluster_with_topics("hookdown", 2);
    let dir = tempfile::tempdir().unwrap();
    let (hook, url) = start_hook(&mut config, dir.path());
    let client = reqwest::blocking::Client::new();
    let events = events_for(&["00uA", "00uB"], 3);
    let post = || {
        client
            .post(&url)
            .header("Authorization", "hook-secret")
            .json(&envelope(&events))
            .timeout(Duration::from_secs(10))
            .send()
            .unwrap()
            .status()
    };
    // Warm up the producer (metadata), then take the broker away.
    assert_eq!(post(), 200);
    cluster.cluster().broker_down(1).unwrap();
    let started = Instant::now();
    assert_eq!(post(), 503);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "answered before Okta's 3 s timeout"
    );
    cluster.cluster().broker_up(1).unwrap();
    // Okta retries; the producer needs a moment to reconnect, so a retry may meet another 503
    // first (Okta retries only once: the System Log poller is the way to close such gaps).
    let deadline = Instant::now() + Duration::from_secs(30);
    while post() != 200 {
        assert!(Instant::now() < deadline, "the retry is never stored");
        std::thread::sleep(Duration::from_millis(500));
    }
    let records = read_until(
        &config,
        &config.topics.events,
        Duration::from_secs(30),
        |r| r.len() >= 3 * events.len(),
    );
    hook.stop();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for r in &records {
        *counts
            .entry(r.json()["uuid"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    assert_eq!(counts.len(), events.len(), "nothing lost");
    assert!(
        counts.values().all(|&n| n >= 2),
        "at least once per accepted delivery: {counts:?}"
    );
}

/// A config file for `vigil ingest poll` as a process.
fn poll_config_file(dir: &std::path::Path, config: &Config, fakes: &Fakes) -> std::path::PathBuf {
    let token = dir.join("okta-token");
    std::fs::write(&token, "okta-test-token").unwrap();
    let path = dir.join("poll.toml");
    std::fs::write(
        &path,
        format!(
            r#"[kafka]
bootstrap_servers = "{}"
[topics]
events = "{}"
ingest_state = "{}"
[okta]
base_url = "{}"
token_file = "{}"
[ingest]
poll_interval_ms = 200
[http]
listen = ""
"#,
            config.kafka.bootstrap_servers.as_deref().unwrap(),
            config.topics.events,
            config.topics.ingest_state,
            fakes.okta_base(),
            token.display()
        ),
    )
    .unwrap();
    path
}

/// Per user, the uuids in the order they are on the topic.
fn order_by_user(records: &[Record]) -> BTreeMap<String, Vec<String>> {
    let mut order: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in records {
        let e = r.json();
        order
            .entry(e["actor"]["id"].as_str().unwrap().to_owned())
            .or_default()
            .push(e["uuid"].as_str().unwrap().to_owned());
    }
    order
}

#[test]
fn the_poller_moves_10000_events_over_many_pages_exactly_once_in_order() {
    let (_cluster, mut config) = cluster_with_topics("poll", 8);
    let fakes = Fakes::start();
    let users: Vec<String> = (0..200).map(|i| format!("00uP{i:03}")).collect();
    let users: Vec<&str> = users.iter().map(String::as_str).collect();
    let events = events_for(&users, 50);
    assert_eq!(events.len(), 10_000);
    fakes.append_logs(&events);
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("okta-token");
    std::fs::write(&token, "okta-test-token").unwrap();
    config.okta.base_url = Some(fakes.okta_base());
    config.okta.token_file = Some(token);
    config.ingest.poll_interval_ms = 200;
    // Okta's rate limit is spent on the first request: the poller waits for the reset.
    let reset = chrono::Utc::now().timestamp() + 2;
    fakes.fail_next(
        "/api/v1/logs",
        vec![FakeResponse::new(429)
            .header("X-Rate-Limit-Remaining", "0")
            .header("X-Rate-Limit-Reset", &reset.to_string())],
    );
    let poller = {
        let config = config.clone();
        Running::start(move |stop| vigil::ingest::command::run_poll(&config, stop))
    };
    let records = read_until(
        &config,
        &config.topics.events,
        Duration::from_secs(60),
        |r| r.len() >= 10_000,
    );
    // More pages keep coming while it runs: a later event arrives too.
    let late = events_for(&["00uLATE"], 1);
    fakes.append_logs(&late);
    let with_late = read_until(
        &config,
        &config.topics.events,
        Duration::from_secs(30),
        |r| r.len() > 10_000,
    );
    let counters = poller.stop();

    assert_eq!(records.len(), 10_000);
    let expected: BTreeMap<String, Vec<String>> = {
        let mut by_user: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for e in &events {
            by_user
                .entry(e["actor"]["id"].as_str().unwrap().to_owned())
                .or_default()
                .push(e["uuid"].as_str().unwrap().to_owned());
        }
        by_user
    };
    assert_eq!(
        order_by_user(&records),
        expected,
        "each event once, each user's in log order"
    );
    assert_eq!(with_late.len(), 10_001);
    assert!(counters.pages >= 11, "10 full pages and more: {counters:?}");
    assert!(counters.rate_limited >= 1, "{counters:?}");
    let logs: Vec<_> = fakes
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/api/v1/logs"))
        .collect();
    assert!(
        logs[1].at - logs[0].at >= Duration::from_millis(900),
        "waited for the reset"
    );
    assert!(logs
        .iter()
        .all(|r| r.headers["authorization"] == "SSWS okta-test-token"));
    assert_eq!(fakes.violations(), Vec::<String>::new());
}

#[test]
fn a_poller_killed_mid_way_resumes_from_its_cursor_without_a_gap() {
    let (_cluster, config) = cluster_with_topics("pollkill", 8);
    let fakes = Fakes::start();
    let users: Vec<String> = (0..100).map(|i| format!("00uK{i:03}")).collect();
    let users: Vec<&str> = users.iter().map(String::as_str).collect();
    let events = events_for(&users, 60);
    fakes.append_logs(&events);
    // Slow pages, so the kill lands mid-way.
    fakes.set_latency(Duration::from_millis(150));
    let dir = tempfile::tempdir().unwrap();
    let path = poll_config_file(dir.path(), &config, &fakes);
    let log = dir.path().join("poll.log");
    let first = Stage::start("ingest poll", &path, &log);
    read_until(
        &config,
        &config.topics.events,
        Duration::from_secs(60),
        |r| r.len() >= 2_500,
    );
    first.kill9();
    let before_restart = fakes.requests().len();
    let second = Stage::start("ingest poll", &path, &log);
    let records = read_until(
        &config,
        &config.topics.events,
        Duration::from_secs(60),
        |r| {
            r.iter()
                .map(|r| r.json()["uuid"].as_str().unwrap().to_owned())
                .collect::<BTreeSet<_>>()
                .len()
                >= events.len()
        },
    );
    assert!(second.terminate().success());

    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for r in &records {
        *counts
            .entry(r.json()["uuid"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    assert_eq!(counts.len(), events.len(), "no gap");
    let repeated = counts.values().filter(|&&n| n > 1).count();
    assert!(
        repeated <= 1000,
        "at most the page in flight at the kill is repeated: {repeated}"
    );
    // The restart resumed from the cursor: it did not start over from `since`.
    let resumed = &fakes.requests()[before_restart];
    assert!(resumed.query.contains("after="), "{}", resumed.query);
    assert_eq!(fakes.violations(), Vec::<String>::new());
}

#[test]
fn simulated_traffic_through_the_hook_reaches_the_vendors_as_the_policies_decide() {
    let (_cluster, mut config) = cluster_with_topics("e2e", 3);
    let dir = tempfile::tempdir().unwrap();
    let fakes = Fakes::start();
    common::respond::use_fakes(&mut config, &fakes, dir.path(), true);
    config.respond.max_destructive_per_minute = 10_000;
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

    let (hook, url) = start_hook(&mut config, dir.path());
    let detect = {
        let config = config.clone();
        Running::start(move |stop| vigil::detect::command::run_stage(&config, stop))
    };
    let respond = {
        let config = config.clone();
        Running::start(move |stop| vigil::respond::command::run_stage(&config, stop))
    };
    let client = reqwest::blocking::Client::new();
    for batch in events.chunks(100) {
        let status = client
            .post(&url)
            .header("Authorization", "hook-secret")
            .json(&envelope(batch))
            .send()
            .unwrap()
            .status();
        assert_eq!(status, 200);
    }
    let ids: Vec<&str> = action_ids.iter().map(String::as_str).collect();
    let ledger = common::respond::final_ledger(&config, &ids);
    respond.stop();
    detect.stop();
    hook.stop();

    let mut by_status: BTreeMap<String, usize> = BTreeMap::new();
    for id in &ids {
        *by_status
            .entry(ledger[*id]["status"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    println!("actions by outcome: {by_status:?}");
    for bad in ["failed", "refused", "held", "dry_run"] {
        assert!(!by_status.contains_key(bad), "{bad}: {by_status:?}");
    }
    let posted = expected
        .iter()
        .flat_map(|d| d["actions"].as_array().unwrap().iter())
        .filter(|a| a["type"] == "slack.notify")
        .count();
    assert_eq!(
        fakes.slack_messages().len(),
        posted,
        "one post per slack.notify"
    );
    assert_eq!(fakes.violations(), Vec::<String>::new());
}
