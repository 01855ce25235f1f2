//! The whole pipeline under real-world delivery — Event Hook and System Log poller → detect →
//! respond → vendor fakes, every stage in one process as `vigil run` runs them — asserting on
//! what the vendors received: each effect at most once, every action final (done, or cancelled
//! with its reason), no user touched that the policies did not decide about.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use serde_json::Value;

use common::fakes::{FakeResponse, Fakes};
use common::kafka::*;
use common::{free_port, hook_envelope};
use vigil::config::Config;
use vigil::run::Embedded;

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

/// What one run of the pipeline left behind.
struct Ran {
    fakes: Fakes,
    /// The decisions single delivery gives (replay of the events once).
    expected: Vec<Value>,
    /// The decisions the pipeline published.
    decisions: Vec<Value>,
    /// Every action id the expected decisions ask for, with its final ledger record.
    ledger: BTreeMap<String, Value>,
}

impl Ran {
    /// Ids of the actions of `kind` that ended `status`.
    fn ended(&self, kind: &str, status: &str) -> Vec<&Value> {
        self.ledger
            .values()
            .filter(|e| e["type"] == kind && e["status"] == status)
            .collect()
    }

    /// Decisions as single delivery; every action final — done, or cancelled with its reason;
    /// nobody touched that no decision names; the fakes saw only requests the specs allow.
    fn assert_as_once(&self) {
        assert_eq!(
            self.decisions.len(),
            self.expected.len(),
            "no decision added by a repeat, none lost"
        );
        assert_eq!(canonical(&self.decisions), canonical(&self.expected));
        let mut done: BTreeMap<String, usize> = BTreeMap::new();
        for (id, entry) in &self.ledger {
            let kind = entry["type"].as_str().unwrap().to_owned();
            match entry["status"].as_str().unwrap() {
                "succeeded" | "already_in_state" | "skipped" => *done.entry(kind).or_default() += 1,
                "cancelled" => assert!(
                    entry["reason"].as_str().is_some_and(|r| !r.is_empty()),
                    "a cancellation says why: {entry}"
                ),
                other => panic!("{id} ended {other}: {entry}"),
            }
        }
        println!("actions done by kind: {done:?}");
        let decided: BTreeSet<&str> = self
            .expected
            .iter()
            .filter_map(|d| d["user"]["id"].as_str())
            .collect();
        for r in self.fakes.requests().iter().filter(|r| r.method != "GET") {
            if let Some(user) = okta_user(&r.path) {
                assert!(
                    decided.contains(user),
                    "{} {} concerns a user no decision names",
                    r.method,
                    r.path
                );
            }
        }
        assert_eq!(self.fakes.violations(), Vec::<String>::new());
    }
}

/// Simulated traffic with every attack through `vigil run`'s stages: the poller finds every
/// event in the System Log when `poll`, and the hook receives each batch `hook_deliveries`
/// times. `prepare` sets the fakes up before the run.
fn run_pipeline(
    prefix: &str,
    poll: bool,
    hook_deliveries: usize,
    prepare: impl FnOnce(&Fakes),
) -> Ran {
    let dir = tempfile::tempdir().unwrap();
    let (_embedded, mut config, fakes, url) = pipeline(prefix, dir.path());
    config.ingest.poll = poll;
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
    if poll {
        fakes.append_logs(&events);
    }
    prepare(&fakes);
    let run = {
        let config = config.clone();
        Running::start(move |stop| vigil::run::run_stages(&config, stop))
    };
    wait_for_port(&url);
    let client = reqwest::blocking::Client::new();
    for batch in events.chunks(100) {
        // Okta retries a delivery it did not see acknowledged: the same batch again.
        for _ in 0..hook_deliveries {
            let status = client
                .post(&url)
                .header("Authorization", "hook-secret")
                .json(&hook_envelope(batch))
                .send()
                .unwrap()
                .status();
            assert_eq!(status, 200);
        }
    }
    let copies = hook_deliveries + usize::from(poll);
    wait_committed(
        &config,
        &config.detect.group_id,
        &config.topics.events,
        (copies * events.len()) as i64,
    );
    let ids: Vec<&str> = action_ids.iter().map(String::as_str).collect();
    let ledger = common::respond::final_ledger(&config, &ids);
    run.stop();
    let decisions = everything_on(&config, &config.topics.decisions);
    Ran {
        fakes,
        expected,
        decisions,
        ledger,
    }
}

#[test]
fn every_event_delivered_three_times_by_hook_retries_and_the_poller_acts_as_once() {
    let ran = run_pipeline("thrice", true, 2, |_| {});
    ran.assert_as_once();
    // Each vendor effect exactly as often as the ledger says it was done: none twice.
    let requests = ran.fakes.requests();
    let okta = |method: &str, tail: &str| {
        requests
            .iter()
            .filter(|r| {
                r.method == method && r.path.starts_with("/okta/") && r.path.ends_with(tail)
            })
            .count()
    };
    let succeeded = |kind: &str| ran.ended(kind, "succeeded").len();
    assert_eq!(
        okta("POST", "/lifecycle/reset_password"),
        succeeded("okta.reset_password")
    );
    assert_eq!(
        okta("POST", "/lifecycle/suspend"),
        succeeded("okta.suspend_user")
    );
    assert_eq!(
        okta("DELETE", "/sessions"),
        succeeded("okta.clear_sessions")
    );
    assert_eq!(
        ran.fakes.slack_messages().len(),
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
}

#[test]
fn vendors_that_rate_limit_on_a_skewed_clock_and_lose_answers_get_each_effect_once() {
    let ran = run_pipeline("unruly", false, 2, |fakes| {
        // Okta's clock is five minutes behind ours; its rate-limit windows reset "now" by its
        // clock — long past by ours — for the first session clears and group adds.
        fakes.set_okta_clock_skew(-300);
        for path in ["/sessions", "/groups/"] {
            fakes.fail_next(
                path,
                vec![
                    FakeResponse::okta_rate_limited(0),
                    FakeResponse::okta_rate_limited(-1),
                ],
            );
        }
        // The password reset is applied and answered after the client's timeout; the first
        // Slack post is applied and its connection dropped; the first page answered late.
        fakes.delay_next("/reset_password", Duration::from_secs(3));
        fakes.drop_next("chat.postMessage");
        fakes.delay_next("/v2/enqueue", Duration::from_secs(3));
    });
    ran.assert_as_once();
    let succeeded = |kind: &str| ran.ended(kind, "succeeded");
    let resets = succeeded("okta.reset_password");
    assert!(!resets.is_empty(), "the attacks reset a password");
    for entry in &resets {
        let user = entry["target"].as_str().unwrap();
        assert_eq!(
            ran.fakes.count(
                "POST",
                &format!("/okta/api/v1/users/{user}/lifecycle/reset_password")
            ),
            1,
            "one reset email for {user}, found by the lookup, not sent again: {entry}"
        );
    }
    assert_eq!(
        ran.fakes.slack_messages().len(),
        succeeded("slack.notify").len(),
        "the dropped post is found in the channel, not posted twice"
    );
    for entry in succeeded("pagerduty.trigger") {
        let user = entry["target"].as_str().unwrap();
        assert_eq!(
            ran.fakes.incident_count(&format!("vigil-{user}")),
            1,
            "{user}"
        );
    }
    let cleared: usize = succeeded("okta.clear_sessions")
        .iter()
        .map(|e| e["target"].as_str().unwrap())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .map(|user| ran.fakes.sessions_cleared(user))
        .sum();
    assert_eq!(
        cleared,
        succeeded("okta.clear_sessions").len(),
        "every session clear done once, after its rate-limit wait"
    );
    // The 429s were waited out on Okta's clock, never in a burst.
    let requests = ran.fakes.requests();
    for path in ["/sessions", "/groups/"] {
        let calls: Vec<_> = requests
            .iter()
            .filter(|r| r.method != "GET" && r.path.contains(path))
            .collect();
        assert!(calls.len() >= 3, "{path}: {} calls", calls.len());
        for pair in calls[..3].windows(2) {
            assert!(
                pair[1].at - pair[0].at >= Duration::from_secs(1),
                "{path}: retried {:?} after a 429",
                pair[1].at - pair[0].at
            );
        }
    }
}
