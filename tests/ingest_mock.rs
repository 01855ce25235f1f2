//! Ingest against the mock cluster and the Okta fake: the Event Hook receiver (verification,
//! secret, batches keyed by user, malformed, empty and oversized bodies, every answer counted,
//! broker down), the System Log poller (10,000 events over many pages exactly once and in order
//! with Okta's separate `Link` fields and with one comma-joined field, kill -9 and resume from
//! the cursor, rate limits, `vigil run` staying up while Okta fails, the first start's
//! lookback), and the whole pipeline: hook → detect → respond → vendors.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use common::fakes::{FakeResponse, Fakes};
use common::kafka::*;
use common::tansu::Stage;
use common::{free_port, hook_envelope};
use vigil::config::Config;
use vigil::run::Embedded;

fn cluster_with_topics(prefix: &str, partitions: i32) -> (Embedded, Config) {
    init_logs();
    let mut config = config("unused:9092", prefix);
    let embedded = Embedded::with_partitions(&mut config, partitions).expect("embedded broker");
    (embedded, config)
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
        let mut request = client.post(&url).json(&hook_envelope(&events));
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
    let too_big_unauthenticated = client
        .post(&url)
        .body(vec![b' '; config.ingest.hook_max_body_bytes + 1])
        .send()
        .unwrap();
    assert_eq!(
        too_big_unauthenticated.status(),
        401,
        "the secret is checked before the size"
    );

    let stored = client
        .post(&url)
        .header("Authorization", "hook-secret")
        .json(&hook_envelope(&events))
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
            .json(&hook_envelope(&events))
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
    order_by_user_of(&records.iter().map(Record::json).collect::<Vec<_>>())
}

/// Per user, the uuids of `events` in their order.
fn order_by_user_of(events: &[Value]) -> BTreeMap<String, Vec<String>> {
    let mut order: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for e in events {
        order
            .entry(e["actor"]["id"].as_str().unwrap().to_owned())
            .or_default()
            .push(e["uuid"].as_str().unwrap().to_owned());
    }
    order
}

#[test]
fn the_poller_moves_10000_events_over_many_pages_with_separate_link_fields_exactly_once_in_order() {
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
fn the_poller_follows_one_comma_joined_link_field_too() {
    let (_cluster, mut config) = cluster_with_topics("polljoined", 4);
    let fakes = Fakes::start();
    fakes.comma_joined_links(true);
    let users: Vec<String> = (0..50).map(|i| format!("00uJ{i:03}")).collect();
    let users: Vec<&str> = users.iter().map(String::as_str).collect();
    let events = events_for(&users, 40);
    fakes.append_logs(&events);
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("okta-token");
    std::fs::write(&token, "okta-test-token").unwrap();
    config.okta.base_url = Some(fakes.okta_base());
    config.okta.token_file = Some(token);
    config.ingest.poll_interval_ms = 200;
    config.ingest.poll_page_size = 250;
    let poller = {
        let config = config.clone();
        Running::start(move |stop| vigil::ingest::command::run_poll(&config, stop))
    };
    let records = read_until(
        &config,
        &config.topics.events,
        Duration::from_secs(60),
        |r| r.len() >= events.len(),
    );
    let counters = poller.stop();
    let uuids: BTreeSet<String> = records
        .iter()
        .map(|r| r.json()["uuid"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(records.len(), events.len(), "each event once");
    assert_eq!(uuids.len(), events.len());
    assert!(
        counters.pages >= 8,
        "2,000 events in pages of 250: {counters:?}"
    );
    assert_eq!(counters.errors, 0, "{counters:?}");
    // The link followed was the one in the joined field: every request after the first
    // names the cursor the previous page's next link carried.
    let logs: Vec<_> = fakes
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/api/v1/logs"))
        .collect();
    assert!(logs[1].query.contains("after=c250"), "{}", logs[1].query);
    assert_eq!(fakes.violations(), Vec::<String>::new());
}

#[test]
fn a_rate_limit_reset_already_past_on_oktas_skewed_clock_is_waited_out_at_the_floor() {
    let (_cluster, mut config) = cluster_with_topics("pollskew", 2);
    let fakes = Fakes::start();
    // Okta's clock runs two minutes ahead: by ours its reset "now" is far in the future, by
    // its own `Date` it is now — and then already past.
    fakes.set_okta_clock_skew(120);
    let events = events_for(&["00uSKEW"], 5);
    fakes.append_logs(&events);
    fakes.fail_next(
        "/api/v1/logs",
        vec![
            FakeResponse::okta_rate_limited(0),
            FakeResponse::okta_rate_limited(-1),
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("okta-token");
    std::fs::write(&token, "okta-test-token").unwrap();
    config.okta.base_url = Some(fakes.okta_base());
    config.okta.token_file = Some(token);
    config.ingest.poll_interval_ms = 200;
    let poller = {
        let config = config.clone();
        Running::start(move |stop| vigil::ingest::command::run_poll(&config, stop))
    };
    let records = read_until(
        &config,
        &config.topics.events,
        Duration::from_secs(60),
        |r| r.len() >= events.len(),
    );
    let counters = poller.stop();
    assert_eq!(records.len(), events.len(), "each event once");
    assert!(counters.rate_limited >= 2, "{counters:?}");
    let logs: Vec<_> = fakes
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/api/v1/logs"))
        .collect();
    for pair in logs[..3].windows(2) {
        let gap = pair[1].at - pair[0].at;
        // Not a burst (the floor), and not two minutes (our clock's reading of the reset).
        assert!(
            gap >= Duration::from_secs(1) && gap < Duration::from_secs(30),
            "waited {gap:?} after a 429"
        );
    }
    assert_eq!(fakes.violations(), Vec::<String>::new());
}

#[test]
fn a_refused_token_is_retried_without_spinning_and_a_rotated_token_file_is_picked_up() {
    let (_cluster, mut config) = cluster_with_topics("polltoken", 2);
    let fakes = Fakes::start();
    let events = events_for(&["00uT1", "00uT2"], 3);
    fakes.append_logs(&events);
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("okta-token");
    std::fs::write(&token, "revoked-token").unwrap();
    config.okta.base_url = Some(fakes.okta_base());
    config.okta.token_file = Some(token.clone());
    config.ingest.poll_interval_ms = 200;
    config.ingest.poll_retry_min_ms = 300;
    config.ingest.poll_retry_max_ms = 1000;
    let invalid = || {
        FakeResponse::new(401)
            .json(json!({"errorCode": "E0000011", "errorSummary": "Invalid token provided"}))
    };
    fakes.fail_next("/api/v1/logs", vec![invalid(), invalid()]);
    let poller = {
        let config = config.clone();
        Running::start(move |stop| vigil::ingest::command::run_poll(&config, stop))
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while fakes.requests().is_empty() {
        assert!(Instant::now() < deadline, "no request");
        std::thread::sleep(Duration::from_millis(10));
    }
    // The operator rotates the token while the poller keeps failing.
    std::fs::write(&token, "rotated-token\n").unwrap();
    let records = read_until(
        &config,
        &config.topics.events,
        Duration::from_secs(30),
        |r| r.len() >= events.len(),
    );
    let counters = poller.stop();
    assert_eq!(records.len(), events.len());
    assert_eq!(counters.errors, 2, "{counters:?}");
    let logs: Vec<_> = fakes
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/api/v1/logs"))
        .collect();
    assert_eq!(logs[0].headers["authorization"], "SSWS revoked-token");
    assert!(
        logs[1].at - logs[0].at >= Duration::from_millis(300),
        "a backoff between failures, not a hot loop"
    );
    assert_eq!(
        logs.last().unwrap().headers["authorization"],
        "SSWS rotated-token",
        "the token is read again after a 401"
    );
    assert_eq!(fakes.violations(), Vec::<String>::new());
}

/// `text` without ANSI colour sequences (a process's log written to a file).
fn plain(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The URL of `path` on 127.0.0.1:`port`.
fn port_url(port: u16, path: &str) -> String {
    format!("http://127.0.0.1:{port}{path}")
}

/// The value of one series in a Prometheus exposition (0 when absent: a counter not moved).
fn series(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// The sum of every series of a metric.
fn series_sum(metrics: &str, metric: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with(metric) && l[metric.len()..].starts_with(['{', ' ']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// A `vigil run` configuration on the test's broker with the poller on, Okta at the fake.
fn run_config_file(
    dir: &std::path::Path,
    config: &Config,
    fakes: &Fakes,
    http_port: u16,
) -> std::path::PathBuf {
    let token = dir.join("okta-token");
    std::fs::write(&token, "okta-test-token").unwrap();
    let t = &config.topics;
    let path = dir.join("run.toml");
    std::fs::write(
        &path,
        format!(
            r#"[kafka]
bootstrap_servers = "{bootstrap}"
[kafka.properties]
"session.timeout.ms" = 6000
"heartbeat.interval.ms" = 500
[topics]
events = "{events}"
decisions = "{decisions}"
dlq = "{dlq}"
state = "{state}"
ledger = "{ledger}"
overrides = "{overrides}"
ingest_state = "{ingest_state}"
[detect]
group_id = "{detect_group}"
[respond]
group_id = "{respond_group}"
dry_run = true
[okta]
base_url = "{okta}"
token_file = "{token}"
[ingest]
poll = true
poll_interval_ms = 200
poll_page_size = 500
poll_retry_min_ms = 200
poll_retry_max_ms = 1000
[http]
listen = "127.0.0.1:{http_port}"
"#,
            bootstrap = config.kafka.bootstrap_servers.as_deref().unwrap(),
            events = t.events,
            decisions = t.decisions,
            dlq = t.dlq,
            state = t.state,
            ledger = t.ledger,
            overrides = t.overrides,
            ingest_state = t.ingest_state,
            detect_group = config.detect.group_id,
            respond_group = config.respond.group_id,
            okta = fakes.okta_base(),
            token = token.display(),
        ),
    )
    .unwrap();
    path
}

/// `/readyz` of the process on `port`: its status and body.
fn readyz(client: &reqwest::blocking::Client, port: u16) -> Option<(u16, Value)> {
    let answer = client.get(port_url(port, "/readyz")).send().ok()?;
    Some((answer.status().as_u16(), answer.json().ok()?))
}

#[test]
fn vigil_run_stays_up_while_the_system_log_fails_and_the_poller_then_catches_up_without_loss() {
    let (_cluster, config) = cluster_with_topics("pollfail", 4);
    let fakes = Fakes::start();
    let users: Vec<String> = (0..50).map(|i| format!("00uF{i:03}")).collect();
    let users: Vec<&str> = users.iter().map(String::as_str).collect();
    let before = events_for(&users, 20);
    fakes.append_logs(&before);
    let dir = tempfile::tempdir().unwrap();
    let http_port = free_port();
    let path = run_config_file(dir.path(), &config, &fakes, http_port);
    let log = dir.path().join("run.log");
    let run = Stage::start("run", &path, &log);
    let client = reqwest::blocking::Client::new();
    let log_text = || plain(&std::fs::read_to_string(&log).unwrap_or_default());

    read_until(
        &config,
        &config.topics.events,
        Duration::from_secs(60),
        |r| r.len() >= before.len(),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while readyz(&client, http_port).map(|(status, _)| status) != Some(200) {
        assert!(
            Instant::now() < deadline,
            "never ready: {:?}\n{}",
            readyz(&client, http_port),
            log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // Okta fails in every way a poller meets, one after the other, while new events arrive.
    let self_only = format!(
        "<{}/api/v1/logs?limit=500&sortOrder=ASCENDING&after=c0>; rel=\"self\"",
        fakes.okta_base()
    );
    fakes.fail_next(
        "/api/v1/logs",
        vec![
            FakeResponse::new(500).json(json!({"errorCode": "E0000009", "errorSummary": "Internal Server Error"})),
            FakeResponse::new(200).text("<html>Okta is down for maintenance</html>"),
            FakeResponse::new(200).json(json!([])).header("Link", &self_only),
            FakeResponse::cut_off(),
            FakeResponse::new(403).json(json!({"errorCode": "E0000006", "errorSummary": "You do not have permission to perform the requested action"})),
            FakeResponse::new(503),
        ],
    );
    let after = events_for(&users, 50)[before.len()..].to_vec();
    fakes.append_logs(&after);

    // While it fails: unready, saying why, and the other stages still there.
    let deadline = Instant::now() + Duration::from_secs(30);
    let unready = loop {
        if let Some((503, body)) = readyz(&client, http_port) {
            if body["ingest"]["ingest-poll"]["ready"] == false {
                break body;
            }
        }
        assert!(Instant::now() < deadline, "never unready\n{}", log_text());
        std::thread::sleep(Duration::from_millis(20));
    };
    let error = unready["ingest"]["ingest-poll"]["error"].as_str().unwrap();
    assert!(
        [
            "server_error:",
            "bad_page:",
            "no_next_link:",
            "network:",
            "unauthorized:"
        ]
        .iter()
        .any(|reason| error.starts_with(reason)),
        "{unready}"
    );
    for stage in ["detect", "respond"] {
        assert_eq!(unready["stages"][stage]["group_joined"], true, "{unready}");
    }

    // Then Okta recovers: every event once, in each user's order, and ready again.
    let all: Vec<Value> = before.iter().chain(&after).cloned().collect();
    let records = read_until(
        &config,
        &config.topics.events,
        Duration::from_secs(60),
        |r| r.len() >= all.len(),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while readyz(&client, http_port).map(|(status, _)| status) != Some(200) {
        assert!(
            Instant::now() < deadline,
            "never ready again\n{}",
            log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let metrics = client
        .get(port_url(http_port, "/metrics"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    // Detect went on consuming throughout: it has seen every event.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut consumed = series_sum(&metrics, "vigil_events_total");
    while consumed < all.len() as f64 {
        assert!(Instant::now() < deadline, "detect consumed {consumed}");
        std::thread::sleep(Duration::from_millis(200));
        let now = client
            .get(port_url(http_port, "/metrics"))
            .send()
            .unwrap()
            .text()
            .unwrap();
        consumed = series_sum(&now, "vigil_events_total");
    }
    let status = run.terminate();
    let log_text = log_text();
    assert!(
        status.success(),
        "vigil run exited on its own: {status}\n{log_text}"
    );

    let expected: BTreeMap<String, Vec<String>> = order_by_user_of(&all);
    assert_eq!(records.len(), all.len(), "no event twice");
    assert_eq!(
        order_by_user(&records),
        expected,
        "none lost, each user's in order"
    );
    for (reason, count) in [
        ("server_error", 2.0),
        ("bad_page", 1.0),
        ("no_next_link", 1.0),
        ("network", 1.0),
        ("unauthorized", 1.0),
    ] {
        assert_eq!(
            series(
                &metrics,
                &format!("vigil_poll_errors_total{{reason=\"{reason}\"}}")
            ),
            count,
            "{reason}"
        );
    }
    assert!(
        log_text.contains("the System Log refused the request; retrying"),
        "a 403 is logged as an error: {log_text}"
    );
    assert_eq!(fakes.violations(), Vec::<String>::new());
}

#[test]
fn a_first_start_reads_back_the_lookback_and_says_what_it_found() {
    let (_cluster, config) = cluster_with_topics("polllookback", 2);
    let fakes = Fakes::start();
    // Stored two hours ago: before the default lookback of one hour.
    let old = events_for(&["00uOLD"], 5);
    fakes.append_logs_stored_at(&old, chrono::Utc::now() - chrono::Duration::hours(2));
    let dir = tempfile::tempdir().unwrap();
    let path = poll_config_file(dir.path(), &config, &fakes);
    let log = dir.path().join("poll.log");
    let poller = Stage::start("ingest poll", &path, &log);
    let log_text = || plain(&std::fs::read_to_string(&log).unwrap_or_default());
    let deadline = Instant::now() + Duration::from_secs(30);
    while !log_text().contains("the System Log has no events since `since`") {
        assert!(Instant::now() < deadline, "{}", log_text());
        std::thread::sleep(Duration::from_millis(100));
    }
    let recent = events_for(&["00uNEW"], 3);
    fakes.append_logs(&recent);
    let records = read_until(
        &config,
        &config.topics.events,
        Duration::from_secs(30),
        |r| r.len() >= recent.len(),
    );
    assert!(poller.terminate().success());
    let log_text = log_text();
    assert!(
        log_text.contains("no stored cursor: reading the System Log from `since` on")
            && log_text.contains("lookback_secs=3600"),
        "the window is logged: {log_text}"
    );
    let first = &fakes.requests()[0];
    assert!(first.query.contains("since="), "{}", first.query);
    let users: BTreeSet<String> = records
        .iter()
        .map(|r| r.json()["actor"]["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(records.len(), recent.len());
    assert_eq!(
        users,
        BTreeSet::from(["00uNEW".to_owned()]),
        "older events are not read"
    );
}

#[test]
fn the_hook_checks_the_secret_before_the_body_and_counts_every_answer() {
    let (_cluster, config) = cluster_with_topics("hookanswers", 2);
    let dir = tempfile::tempdir().unwrap();
    let (hook_port, http_port) = (free_port(), free_port());
    let secret = dir.path().join("hook-secret");
    std::fs::write(&secret, "hook-secret\n").unwrap();
    let path = dir.path().join("hook.toml");
    std::fs::write(
        &path,
        format!(
            r#"[kafka]
bootstrap_servers = "{}"
[topics]
events = "{}"
[ingest]
hook_listen = "127.0.0.1:{hook_port}"
hook_secret_file = "{}"
hook_max_body_bytes = 65536
[http]
listen = "127.0.0.1:{http_port}"
"#,
            config.kafka.bootstrap_servers.as_deref().unwrap(),
            config.topics.events,
            secret.display()
        ),
    )
    .unwrap();
    let log = dir.path().join("hook.log");
    let hook = Stage::start("ingest hook", &path, &log);
    let client = reqwest::blocking::Client::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while readyz(&client, http_port).map(|(status, _)| status) != Some(200) {
        assert!(
            Instant::now() < deadline,
            "{:?}",
            readyz(&client, http_port)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let (_, ready) = readyz(&client, http_port).unwrap();
    assert_eq!(ready["ingest"]["ingest-hook"]["ready"], true, "{ready}");
    let url = port_url(hook_port, &config.ingest.hook_path);
    let post = |secret: Option<&str>, body: Vec<u8>| {
        let mut request = client
            .post(&url)
            .header("Content-Type", "application/json")
            .body(body);
        if let Some(secret) = secret {
            request = request.header("Authorization", secret);
        }
        let answer = request.send().unwrap();
        (answer.status().as_u16(), answer.text().unwrap())
    };

    let no_events = json!({"eventType": "com.okta.event_hook", "data": {}});
    let (status, reason) = post(Some("hook-secret"), no_events.to_string().into_bytes());
    assert_eq!(status, 400);
    assert!(
        reason.contains("`data.events`"),
        "the missing field is named: {reason}"
    );
    assert_eq!(
        post(
            Some("hook-secret"),
            hook_envelope(&[]).to_string().into_bytes()
        )
        .0,
        200
    );
    let oversized = vec![b' '; 200_000];
    assert_eq!(
        post(None, oversized.clone()).0,
        401,
        "the secret is checked first"
    );
    let (status, reason) = post(Some("hook-secret"), oversized);
    assert_eq!(status, 413);
    assert!(reason.contains("65536"), "{reason}");
    let events = events_for(&["00uH1", "00uH2"], 1);
    assert_eq!(
        post(
            Some("hook-secret"),
            hook_envelope(&events).to_string().into_bytes()
        )
        .0,
        200
    );

    let records = read_until(
        &config,
        &config.topics.events,
        Duration::from_secs(10),
        |r| r.len() >= events.len(),
    );
    let metrics = client
        .get(port_url(http_port, "/metrics"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(hook.terminate().success());
    assert_eq!(
        records.len(),
        events.len(),
        "only the real delivery stored anything"
    );
    for (result, count) in [
        ("malformed", 1.0),
        ("empty", 1.0),
        ("unauthorized", 1.0),
        ("too_large", 1.0),
        ("stored", 1.0),
    ] {
        assert_eq!(
            series(
                &metrics,
                &format!("vigil_hook_deliveries_total{{result=\"{result}\"}}")
            ),
            count,
            "{result}:\n{metrics}"
        );
    }
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
            .json(&hook_envelope(batch))
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
