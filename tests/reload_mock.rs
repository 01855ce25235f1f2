//! Policy hot reload under load, on librdkafka's mock cluster: while events stream in, a
//! changed rule takes effect mid-stream, a broken revision is refused while the running one
//! keeps deciding, SIGHUP reloads, a revision with other features is refused, and every event
//! is decided exactly once throughout.
//! (A test binary of its own: it reads the process's metrics and sends itself SIGHUP.)

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::mocking::MockCluster;
use serde_json::Value;

use common::kafka::*;
use vigil::metrics::Metrics;

const RULE: &str = "vigil/rules/user_reported.rego";
const SUMMARY: &str = "reported suspicious activity on their account";

fn reloads(result: &str) -> u64 {
    vigil::metrics::metrics()
        .policy_reloads
        .with_label_values(&[result])
        .get()
}

/// Wait until `reloads(result)` is `count`.
fn wait_reloads(result: &str, count: u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while reloads(result) < count {
        assert!(Instant::now() < deadline, "no {result} reload #{count}");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(reloads(result), count);
}

#[test]
fn a_changed_rule_takes_effect_mid_stream_and_a_broken_one_is_refused() {
    init_logs();
    let cluster = MockCluster::new(1).unwrap();
    let mut config = config(&cluster.bootstrap_servers(), "reload");
    let dir = tempfile::tempdir().unwrap();
    common::copy_dir(&common::policies_dir(), dir.path());
    config.detect.policies = Some(dir.path().to_owned());
    // One partition: decisions come out in event order, so revisions can be checked in order.
    for topic in [
        &config.topics.events,
        &config.topics.decisions,
        &config.topics.dlq,
        &config.topics.state,
        &config.topics.overrides,
    ] {
        cluster.create_topic(topic, 1, 1).unwrap();
    }
    let stage = {
        let config = config.clone();
        Running::start(move |stop| vigil::detect::command::run_stage(&config, stop))
    };

    // The load: a user's "report suspicious activity" every few milliseconds until told to stop.
    let produced = Arc::new(AtomicUsize::new(0));
    let stop_feed = Arc::new(AtomicBool::new(false));
    let feed = {
        let (config, produced, stop) = (config.clone(), produced.clone(), stop_feed.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let from = produced.load(Ordering::Relaxed);
                let events: Vec<Value> = (from..from + 10)
                    .map(|i| {
                        common::event(
                            &format!("report-{i}"),
                            &chrono::Utc::now().to_rfc3339(),
                            "user.account.report_suspicious_activity_by_enduser",
                            &format!("00ureporter{i}"),
                            "SUCCESS",
                        )
                    })
                    .collect();
                produce(&config, &config.topics.events, &keyed(&events));
                produced.fetch_add(events.len(), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let wait_produced = |more: usize| {
        let until = produced.load(Ordering::Relaxed) + more;
        while produced.load(Ordering::Relaxed) < until {
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    let rule = dir.path().join(RULE);
    let original = std::fs::read_to_string(&rule).unwrap();
    let edit = |marker: &str| {
        std::fs::write(
            &rule,
            original.replace(SUMMARY, &format!("{marker} {SUMMARY}")),
        )
        .unwrap();
    };

    // Decisions by the first revision first (the group join takes a few seconds).
    let deadline = Instant::now() + Duration::from_secs(30);
    while Metrics::total(&vigil::metrics::metrics().events) < 30 {
        assert!(Instant::now() < deadline, "detect consumes nothing");
        std::thread::sleep(Duration::from_millis(20));
    }
    edit("RELOADED");
    wait_reloads("loaded", 1);
    wait_produced(60);
    std::fs::write(
        &rule,
        format!("{original}\nfindings contains f if {{ this is not rego\n"),
    )
    .unwrap();
    wait_reloads("refused", 1);
    let produced_while_broken = produced.load(Ordering::Relaxed);
    wait_produced(60);
    edit("AGAIN");
    wait_reloads("loaded", 2);
    wait_produced(60);
    // SIGHUP reloads too: nothing changed since, so the same revision.
    let unchanged = reloads("unchanged");
    let hup = std::process::Command::new("kill")
        .args(["-HUP", &std::process::id().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    wait_reloads("unchanged", unchanged + 1);
    // A revision with other features is refused: the running state was computed by the old ones.
    let features = dir.path().join("features.toml");
    let text = std::fs::read_to_string(&features).unwrap();
    std::fs::write(
        &features,
        text.replacen("window_secs = 600", "window_secs = 900", 1),
    )
    .unwrap();
    wait_reloads("refused", 2);
    wait_produced(60);
    stop_feed.store(true, Ordering::Relaxed);
    feed.join().unwrap();
    let total = produced.load(Ordering::Relaxed);

    let records = read_until(
        &config,
        &config.topics.decisions,
        Duration::from_secs(60),
        |r| {
            r.iter()
                .filter(|r| r.json()["rule"] == "user_reported")
                .count()
                >= total
        },
    );
    stage.stop();
    let decided: Vec<Value> = records
        .iter()
        .map(|r| r.json())
        .filter(|d| d["rule"] == "user_reported")
        .collect();
    // Every event decided exactly once.
    let mut per_event: HashMap<String, usize> = HashMap::new();
    for d in &decided {
        *per_event
            .entry(d["event"]["uuid"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    assert_eq!(per_event.len(), total, "an event without its decision");
    assert!(
        per_event.values().all(|&n| n == 1),
        "an event decided twice"
    );
    // In event order, the revisions go A…A B…B C…C, each with its own summary.
    let mut phases: Vec<(String, String)> = Vec::new();
    for d in &decided {
        let revision = d["policy_revision"].as_str().unwrap().to_owned();
        let summary = d["summary"].as_str().unwrap();
        let marker = ["RELOADED", "AGAIN"]
            .into_iter()
            .find(|m| summary.contains(m))
            .unwrap_or("original")
            .to_owned();
        if phases.last().map(|(r, _)| r) != Some(&revision) {
            phases.push((revision, marker));
        }
    }
    let markers: Vec<&str> = phases.iter().map(|(_, m)| m.as_str()).collect();
    assert_eq!(markers, ["original", "RELOADED", "AGAIN"], "{phases:?}");
    // While the broken file was on disk, events kept being decided by the running revision.
    let during_broken = decided
        .iter()
        .filter(|d| {
            let i: usize = d["event"]["uuid"].as_str().unwrap()["report-".len()..]
                .parse()
                .unwrap();
            i >= produced_while_broken && d["summary"].as_str().unwrap().contains("RELOADED")
        })
        .count();
    assert!(
        during_broken > 0,
        "no decision by the running revision after the refusal"
    );
    assert!(vigil::metrics::metrics()
        .render()
        .contains(&format!("policy_revision=\"{}\"", phases[2].0)));
}
