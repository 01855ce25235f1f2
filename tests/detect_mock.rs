//! The detect and re-key stages against librdkafka's mock cluster (in-process, no external
//! broker): same decisions as replay, DLQ, restart with state, broker outage, re-keying.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use serde_json::Value;

use common::kafka::*;
use rdkafka::message::{OwnedMessage, Timestamp};
use vigil::config::Config;
use vigil::detect::{Detector, LiveDetect};
use vigil::kafka::reader::PartitionReader;
use vigil::kafka::record::*;
use vigil::kafka::Processor;

const WAIT: Duration = Duration::from_secs(60);

fn cluster() -> (MockCluster<'static, DefaultProducerContext>, String) {
    init_logs();
    let cluster = MockCluster::new(1).expect("mock cluster");
    let bootstrap = cluster.bootstrap_servers();
    (cluster, bootstrap)
}

fn create_mock_topics(
    cluster: &MockCluster<'static, DefaultProducerContext>,
    config: &Config,
    partitions: i32,
) {
    let topics = &config.topics;
    for topic in [
        &topics.events,
        &topics.decisions,
        &topics.dlq,
        &topics.state,
        &topics.ledger,
        &topics.overrides,
    ]
    .into_iter()
    .chain(topics.upstream.as_ref())
    {
        cluster
            .create_topic(topic, partitions, 1)
            .expect("topic created");
    }
}

fn detect(
    config: &Config,
) -> Running<(vigil::kafka::WorkerSummary, vigil::detect::DetectCounters)> {
    let config = config.clone();
    Running::start(move |stop| vigil::detect::command::run_stage(&config, stop))
}

fn decisions_on(config: &Config, expected: usize) -> Vec<Value> {
    let records = read_until(config, &config.topics.decisions, WAIT, |r| {
        r.len() >= expected
    });
    for r in &records {
        let d = r.json();
        assert_eq!(
            r.key.as_deref(),
            d["user"]["id"].as_str(),
            "decisions are keyed by user"
        );
    }
    records.iter().map(Record::json).collect()
}

fn canonical(decisions: &[Value]) -> BTreeSet<String> {
    decisions.iter().map(|d| d.to_string()).collect()
}

/// Three failed sign-ins of `user`, a minute apart, from `minute`.
fn failures(user: &str, minute: u32) -> Vec<Value> {
    (0..3)
        .map(|i| {
            common::event(
                &format!("fail-{user}-{minute}-{i}"),
                &format!("2026-03-04T10:{:02}:00.000Z", minute + i),
                "user.session.start",
                user,
                "FAILURE",
            )
        })
        .collect()
}

fn publishes_exactly_the_decisions_replay_gives(transactional_id: Option<&str>) {
    let (_cluster, bootstrap) = cluster();
    let mut config = config(&bootstrap, "same");
    config.detect.transactional_id = transactional_id.map(str::to_owned);
    create_mock_topics(&_cluster, &config, 3);
    // The mock cluster keeps only ~5 MiB per partition: a small population, all attacks.
    let events = simulated_events(25, 2, 7);
    let expected = replay_decisions(&events);
    assert!(
        expected.len() >= 5,
        "the simulated attacks produce decisions"
    );
    produce(&config, &config.topics.events, &keyed(&events));

    let stage = detect(&config);
    let got = decisions_on(&config, expected.len());
    let (summary, counters) = stage.stop();

    assert_eq!(summary.consumed as usize, events.len());
    assert_eq!(counters.dead_lettered, 0);
    assert_eq!(got.len(), expected.len(), "no decision lost or duplicated");
    assert_eq!(
        canonical(&got),
        canonical(&expected),
        "same ids, same content"
    );
}

#[test]
fn detect_publishes_exactly_the_decisions_replay_gives() {
    publishes_exactly_the_decisions_replay_gives(None);
}

#[test]
fn with_transactions_on_detect_publishes_the_same_decisions() {
    // The mock cluster accepts transactional calls without honouring them: this proves the
    // transactional path runs and publishes, not that it is atomic.
    publishes_exactly_the_decisions_replay_gives(Some("vigil-detect-test-1"));
}

#[test]
fn bad_records_go_to_the_dlq_with_reason_source_and_bytes_and_the_stream_goes_on() {
    let (_cluster, bootstrap) = cluster();
    let config = config(&bootstrap, "dlq");
    create_mock_topics(&_cluster, &config, 1);
    let huge = {
        let mut e = common::event(
            "huge",
            "2026-03-04T09:00:00.000Z",
            "user.session.start",
            "00ubig",
            "SUCCESS",
        );
        // The mock cluster keeps only the newest 5 MiB of a partition, so 3 MB here; the
        // 10 MB case is fed to the stage directly below.
        e["debugContext"] = serde_json::json!({"blob": "x".repeat(3 * 1024 * 1024)});
        serde_json::to_vec(&e).unwrap()
    };
    let missing_type = br#"{"uuid":"no-type","published":"2026-03-04T09:00:00.000Z"}"#.to_vec();
    // Separate produce calls: separate batches, as separate upstream writes would be.
    produce(
        &config,
        &config.topics.events,
        &[
            (Some("00ua".to_owned()), b"this is not json".to_vec()),
            (Some("00ub".to_owned()), missing_type.clone()),
        ],
    );
    produce(
        &config,
        &config.topics.events,
        &[(Some("00ubig".to_owned()), huge.clone())],
    );
    produce(
        &config,
        &config.topics.events,
        &keyed(&failures("00ubrute", 10)),
    );

    let stage = detect(&config);
    let dlq = read_until(&config, &config.topics.dlq, WAIT, |r| r.len() >= 3);
    let decisions = decisions_on(&config, 1);
    let (_, counters) = stage.stop();

    assert_eq!(counters.dead_lettered, 3);
    assert_eq!(dlq.len(), 3);
    let reasons: Vec<&str> = dlq.iter().map(|r| r.header(DLQ_REASON).unwrap()).collect();
    assert_eq!(reasons, ["invalid_json", "missing_field", "too_large"]);
    for (offset, r) in dlq.iter().enumerate() {
        assert_eq!(r.header(SOURCE_TOPIC), Some(config.topics.events.as_str()));
        assert_eq!(r.header(SOURCE_PARTITION), Some("0"));
        assert_eq!(r.header(SOURCE_OFFSET), Some(offset.to_string().as_str()));
        assert_eq!(r.header(DLQ_STAGE), Some("detect"));
    }
    assert_eq!(dlq[0].payload, b"this is not json", "original bytes kept");
    assert_eq!(dlq[0].key.as_deref(), Some("00ua"));
    assert!(dlq[1].header(DLQ_ERROR).unwrap().contains("eventType"));
    assert_eq!(dlq[1].payload, missing_type);
    // Over the broker's ~1 MB record limit: the head, the size and a hash.
    assert_eq!(dlq[2].header(TRUNCATED), Some("true"));
    assert_eq!(
        dlq[2].header(ORIGINAL_BYTES),
        Some(huge.len().to_string().as_str())
    );
    assert_eq!(dlq[2].payload.as_slice(), &huge[..512 * 1024]);
    use sha2::Digest;
    assert_eq!(
        dlq[2].header(ORIGINAL_SHA256),
        Some(hex::encode(sha2::Sha256::digest(&huge)).as_str())
    );
    // The stream went on: the brute force after the bad records is detected.
    let rules: Vec<&str> = decisions
        .iter()
        .map(|d| d["rule"].as_str().unwrap())
        .collect();
    assert!(rules.contains(&"failed_signins"), "{rules:?}");
}

#[test]
fn a_10_mb_record_is_dead_lettered_with_its_head_its_size_and_its_hash() {
    let (_cluster, bootstrap) = cluster();
    let config = config(&bootstrap, "huge");
    create_mock_topics(&_cluster, &config, 1);
    let policy = vigil::detect::command::load_policy(&config).unwrap();
    let reader =
        PartitionReader::new(&vigil::kafka::reader_config(&config.kafka).unwrap()).unwrap();
    let mut stage = LiveDetect::new(
        Detector::new(policy, config.detect.limits()),
        config.topics.clone(),
        config.detect.clone(),
        reader,
    )
    .unwrap();
    let mut huge = common::event(
        "huge",
        "2026-03-04T09:00:00.000Z",
        "user.session.start",
        "00ubig",
        "SUCCESS",
    );
    huge["debugContext"] = serde_json::json!({"blob": "x".repeat(10 * 1024 * 1024)});
    let huge = serde_json::to_vec(&huge).unwrap();
    let message = OwnedMessage::new(
        Some(huge.clone()),
        Some(b"00ubig".to_vec()),
        config.topics.events.clone(),
        Timestamp::CreateTime(0),
        0,
        41,
        None,
    );
    let mut out = Vec::new();
    stage.process(&message, &mut out).unwrap();

    assert_eq!(out.len(), 1);
    let dead = &out[0];
    assert_eq!(dead.topic, config.topics.dlq);
    assert_eq!(dead.header(DLQ_REASON), Some(&b"too_large"[..]));
    assert_eq!(dead.header(SOURCE_OFFSET), Some(&b"41"[..]));
    assert_eq!(
        dead.header(ORIGINAL_BYTES),
        Some(huge.len().to_string().as_bytes())
    );
    assert_eq!(dead.header(TRUNCATED), Some(&b"true"[..]));
    assert_eq!(
        dead.payload.as_slice(),
        &huge[..config.detect.dlq_max_payload_bytes]
    );
    assert_eq!(dead.key.as_deref(), Some(&b"00ubig"[..]));
    assert_eq!(stage.counters().dead_lettered, 1);
}

/// Stop after two failures, restart, send the third: detected once, nothing re-emitted.
fn restart_keeps_the_window(snapshots: bool) {
    let (_cluster, bootstrap) = cluster();
    let mut config = config(&bootstrap, if snapshots { "snap" } else { "nosnap" });
    config.detect.snapshots = snapshots;
    create_mock_topics(&_cluster, &config, 2);
    let attempts = failures("00urestart", 20);
    let mut before = keyed(&attempts[..2]);
    // Other users' traffic on both partitions.
    before.extend(keyed(&failures("00uother", 40)[..2]));
    produce(&config, &config.topics.events, &before);
    let (first, _) = detect(&config).stop_after(|| {
        wait_committed(&config, &config.detect.group_id, &config.topics.events, 4);
    });
    assert_eq!(first.consumed, 4);

    produce(&config, &config.topics.events, &keyed(&attempts[2..]));
    let stage = detect(&config);
    let decisions = decisions_on(&config, 1);
    let (second, counters) = stage.stop();

    assert_eq!(
        second.consumed, 1,
        "the committed records are not consumed again"
    );
    assert_eq!(decisions.len(), 1, "{decisions:?}");
    assert_eq!(decisions[0]["rule"], "failed_signins");
    assert_eq!(decisions[0]["event"]["uuid"], "fail-00urestart-20-2");
    assert_eq!(
        decisions[0]["evidence"]["failed_signins_10m"], 3,
        "{}",
        decisions[0]
    );
    if snapshots {
        assert!(counters.users_restored >= 1, "{counters:?}");
    } else {
        assert!(counters.events_reread >= 2, "{counters:?}");
    }
}

#[test]
fn a_restart_keeps_the_window_from_snapshots() {
    restart_keeps_the_window(true);
}

#[test]
fn a_restart_keeps_the_window_by_rereading_events_without_snapshots() {
    restart_keeps_the_window(false);
}

/// Every event twice: the copy (re-serialized) placed 1 to `spread` records after its original,
/// as Okta's hook retries, hook and poller together, or a re-read page deliver it.
fn delivered_twice(events: &[Value], spread: usize) -> Vec<Value> {
    let mut placed: Vec<(usize, u8, Value)> = Vec::new();
    for (i, event) in events.iter().enumerate() {
        placed.push((i, 0, event.clone()));
        // A fixed scatter: tests stay reproducible, copies land at every distance.
        placed.push((i + 1 + (i * 37) % spread, 1, event.clone()));
    }
    placed.sort_by_key(|(at, copy, _)| (*at, *copy));
    placed.into_iter().map(|(_, _, event)| event).collect()
}

fn repeats_change_nothing_across_a_restart(snapshots: bool) {
    let (_cluster, bootstrap) = cluster();
    let mut config = config(
        &bootstrap,
        if snapshots { "rep-snap" } else { "rep-nosnap" },
    );
    config.detect.snapshots = snapshots;
    create_mock_topics(&_cluster, &config, 3);
    let events = simulated_events(25, 2, 7);
    let expected = replay_decisions(&events);
    let twice = delivered_twice(&events, 200);
    let half = twice.len() / 2;
    let group = config.detect.group_id.clone();
    let topic = config.topics.events.clone();

    produce(&config, &topic, &keyed(&twice[..half]));
    let (_, before) = detect(&config).stop_after(|| {
        wait_committed(&config, &group, &topic, half as i64);
    });
    // The rest after a restart: an original before it, its copy after, must still count once.
    produce(&config, &topic, &keyed(&twice[half..]));
    let (_, after) = detect(&config).stop_after(|| {
        wait_committed(&config, &group, &topic, twice.len() as i64);
    });

    let got = decisions_on(&config, expected.len());
    assert_eq!(got.len(), expected.len(), "no decision added or lost");
    assert_eq!(
        canonical(&got),
        canonical(&expected),
        "the decisions of single delivery"
    );
    let ignored = before.repeats + after.repeats + after.skipped_in_snapshot;
    assert!(
        before.repeats > 0 && after.repeats > 0 && ignored >= events.len() as u64,
        "every copy is recognised on both sides of the restart: {before:?} {after:?}"
    );
}

#[test]
fn an_event_delivered_twice_decides_once_even_across_a_restart_with_snapshots() {
    repeats_change_nothing_across_a_restart(true);
}

#[test]
fn an_event_delivered_twice_decides_once_even_across_a_restart_without_snapshots() {
    repeats_change_nothing_across_a_restart(false);
}

#[test]
fn a_broker_outage_delays_decisions_but_loses_none() {
    let (cluster, bootstrap) = cluster();
    let config = config(&bootstrap, "outage");
    create_mock_topics(&cluster, &config, 2);
    let events = simulated_events(20, 2, 11);
    let expected = replay_decisions(&events);
    let records = keyed(&events);
    let (first_half, second_half) = records.split_at(records.len() / 2);
    produce(&config, &config.topics.events, first_half);

    let stage = detect(&config);
    // Down in the middle of the stream: once decisions flow, while the rest is being produced.
    read_until(&config, &config.topics.decisions, WAIT, |r| !r.is_empty());
    cluster.broker_down(1).unwrap();
    let producing = {
        let (config, rest) = (config.clone(), second_half.to_vec());
        std::thread::spawn(move || produce(&config, &config.topics.events, &rest))
    };
    std::thread::sleep(Duration::from_secs(3));
    cluster.broker_up(1).unwrap();
    producing.join().unwrap();
    let got = decisions_on(&config, expected.len());
    stage.stop();
    assert_eq!(ids(&got), ids(&expected));
}

#[test]
fn failing_produce_requests_are_retried_and_lose_no_decision() {
    let (cluster, bootstrap) = cluster();
    let config = config(&bootstrap, "reqerr");
    create_mock_topics(&cluster, &config, 2);
    let events = simulated_events(20, 2, 13);
    let expected = replay_decisions(&events);
    produce(&config, &config.topics.events, &keyed(&events));
    // The broker now fails the next produce requests with a retriable error.
    cluster.request_errors(
        RDKafkaApiKey::Produce,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS; 8],
    );

    let stage = detect(&config);
    let got = decisions_on(&config, expected.len());
    stage.stop();
    assert_eq!(got.len(), expected.len(), "no decision lost or duplicated");
    assert_eq!(ids(&got), ids(&expected));
}

#[test]
fn rekey_moves_unkeyed_pages_and_envelopes_to_one_keyed_record_per_event() {
    let (_cluster, bootstrap) = cluster();
    let mut config = config(&bootstrap, "rekey");
    config.topics.upstream = Some("rekey.raw".into());
    create_mock_topics(&_cluster, &config, 3);
    let a = failures("00ualice", 1);
    let b = failures("00ubob", 1);
    let envelope =
        serde_json::json!({"eventType": "com.okta.event_hook", "data": {"events": [a[0], b[0]]}});
    let page = serde_json::json!([a[1], b[1]]);
    let records = vec![
        (None, serde_json::to_vec(&envelope).unwrap()),
        (None, serde_json::to_vec(&page).unwrap()),
        (Some("wrong".into()), serde_json::to_vec(&a[2]).unwrap()),
        (None, b"{broken".to_vec()),
        (None, serde_json::to_vec(&b[2]).unwrap()),
    ];
    produce(&config, "rekey.raw", &records);

    let stage = {
        let config = config.clone();
        Running::start(move |stop| vigil::rekey::run_stage(&config, stop))
    };
    let events = read_until(&config, &config.topics.events, WAIT, |r| r.len() >= 6);
    let dlq = read_until(&config, &config.topics.dlq, WAIT, |r| !r.is_empty());
    let (_, counters) = stage.stop();

    assert_eq!(counters.events, 6);
    assert_eq!(counters.dead_lettered, 1);
    // Only this test re-keys in this process: the counters are its own.
    let metrics = vigil::metrics::metrics();
    assert_eq!(
        metrics.ingested_events.with_label_values(&["rekey"]).get(),
        6
    );
    assert_eq!(
        metrics
            .dead_lettered
            .with_label_values(&["rekey", "invalid_json"])
            .get(),
        1
    );
    assert_eq!(dlq[0].payload, b"{broken");
    assert_eq!(dlq[0].header(DLQ_STAGE), Some("rekey"));
    let mut partitions = std::collections::BTreeMap::<String, BTreeSet<i32>>::new();
    for r in &events {
        let event = r.json();
        let user = event["actor"]["id"].as_str().unwrap().to_owned();
        assert_eq!(r.key.as_deref(), Some(user.as_str()), "keyed by user");
        partitions.entry(user).or_default().insert(r.partition);
    }
    assert_eq!(partitions.len(), 2);
    assert!(
        partitions.values().all(|p| p.len() == 1),
        "one partition per user: {partitions:?}"
    );
}

#[test]
fn detect_without_brokers_or_with_a_bad_key_says_what_to_fix() {
    let out = common::vigil()
        .arg("detect")
        .env_remove("VIGIL_KAFKA__BOOTSTRAP_SERVERS")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = common::stderr(&out);
    assert!(
        err.contains("no brokers") && err.contains("VIGIL_KAFKA__BOOTSTRAP_SERVERS"),
        "{err}"
    );
    assert!(
        !err.contains("detect starting"),
        "fails before starting: {err}"
    );

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vigil.toml");
    std::fs::write(
        &path,
        "[topics]\nevents = \"e\"\n[detect]\nmax_inflight = 5\n",
    )
    .unwrap();
    let out = common::vigil()
        .args(["detect", "--config", path.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = common::stderr(&out);
    assert!(
        err.contains("vigil.toml") && err.contains("line 4") && err.contains("max_inflight"),
        "{err}"
    );
}

#[test]
fn policies_see_an_analysts_override_and_drop_lockouts_for_that_user() {
    let (cluster, bootstrap) = cluster();
    let config = config(&bootstrap, "override");
    create_mock_topics(&cluster, &config, 2);
    let producer: rdkafka::producer::FutureProducer = vigil::kafka::producer_config(&config.kafka)
        .unwrap()
        .create()
        .unwrap();
    let now = chrono::Utc::now();
    futures::executor::block_on(vigil::overrides::publish(
        &producer,
        &config.topics.overrides,
        &vigil::overrides::Override {
            user_id: "00uexcused".into(),
            scope: vigil::overrides::Scope::All,
            reason: "red-team exercise".into(),
            by: Some("ana".into()),
            created_at: now - chrono::Duration::minutes(5),
            until: now + chrono::Duration::hours(1),
        },
    ))
    .unwrap();
    let published = now.to_rfc3339();
    let reports: Vec<Value> = ["00uexcused", "00uplain"]
        .iter()
        .map(|u| {
            common::event(
                &format!("report-{u}"),
                &published,
                "user.account.report_suspicious_activity_by_enduser",
                u,
                "SUCCESS",
            )
        })
        .collect();
    // The follower reads the overrides topic in the background: give it a moment.
    let stage = detect(&config);
    std::thread::sleep(Duration::from_secs(2));
    produce(&config, &config.topics.events, &keyed(&reports));
    let got = decisions_on(&config, 2);
    stage.stop();
    let reported = |user: &str| {
        got.iter()
            .find(|d| d["user"]["id"] == user && d["rule"] == "user_reported")
            .unwrap_or_else(|| panic!("no user_reported decision for {user}: {got:?}"))
            .clone()
    };
    let types = |d: &Value| -> Vec<String> {
        d["actions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["type"].as_str().unwrap().to_owned())
            .collect()
    };
    assert!(types(&reported("00uplain")).contains(&"okta.reset_password".to_owned()));
    let excused = types(&reported("00uexcused"));
    assert!(
        !excused.contains(&"okta.reset_password".to_owned()),
        "{excused:?}"
    );
    assert!(excused.contains(&"slack.notify".to_owned()), "{excused:?}");
}
