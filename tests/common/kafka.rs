//! Kafka helpers for the stage tests: a configuration for a broker, producing simulated events,
//! reading a topic back, running a stage in a thread.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde_json::Value;

use vigil::config::Config;
use vigil::detect::Detector;
use vigil::event::OktaEvent;
use vigil::kafka::admin::{ensure_topics, TopicSpec};
use vigil::policy::{LoadOptions, Policy, PolicySource};
use vigil::simulate::{generate, Attack, SimConfig};

/// A record read back from a topic.
#[derive(Debug, Clone)]
pub struct Record {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<String>,
    pub payload: Vec<u8>,
    pub headers: Vec<(String, String)>,
}

impl Record {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.payload).expect("JSON record")
    }
}

/// A configuration for `bootstrap` with topics named after `prefix` (tests share brokers).
pub fn config(bootstrap: &str, prefix: &str) -> Config {
    let mut config = Config::default();
    config.kafka.bootstrap_servers = Some(bootstrap.to_owned());
    config.topics.events = format!("{prefix}.events");
    config.topics.decisions = format!("{prefix}.decisions");
    config.topics.dlq = format!("{prefix}.dlq");
    config.topics.state = format!("{prefix}.state");
    config.topics.ledger = format!("{prefix}.ledger");
    config.topics.overrides = format!("{prefix}.overrides");
    config.detect.group_id = format!("{prefix}-detect");
    config.respond.group_id = format!("{prefix}-respond");
    // Tests that want the HTTP API pick a free port themselves.
    config.http.listen = String::new();
    config.detect.snapshot_interval_secs = 1;
    // A stopped instance's leave is not always seen by the mock coordinator: keep the wait for
    // its session to expire short.
    for (name, value) in [("session.timeout.ms", 6000), ("heartbeat.interval.ms", 500)] {
        config
            .kafka
            .properties
            .insert(name.into(), vigil::config::PropertyValue::Integer(value));
    }
    config
}

/// Create the configured topics with `partitions` each.
pub fn create_topics(config: &Config, partitions: i32) {
    let topics = &config.topics;
    let mut specs: Vec<TopicSpec> = [
        &topics.events,
        &topics.decisions,
        &topics.dlq,
        &topics.state,
        &topics.ledger,
        &topics.overrides,
    ]
    .iter()
    .map(|name| TopicSpec {
        name: name.to_string(),
        partitions,
        replication: 1,
        compacted: [&topics.state, &topics.ledger, &topics.overrides].contains(name),
    })
    .collect();
    if let Some(upstream) = &topics.upstream {
        specs.push(TopicSpec {
            name: upstream.clone(),
            partitions,
            replication: 1,
            compacted: false,
        });
    }
    ensure_topics(&client(config), &specs).expect("topics created");
}

fn client(config: &Config) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set(
        "bootstrap.servers",
        config.kafka.bootstrap_servers.as_deref().unwrap(),
    );
    c
}

/// A simulated fortnight-end day with every attack: `users` users over `days` days.
pub fn simulated_events(users: usize, days: u32, seed: u64) -> Vec<Value> {
    generate(&SimConfig {
        users,
        days,
        start: chrono::NaiveDate::from_ymd_opt(2026, 3, 2).unwrap(),
        seed,
        attacks: Attack::ALL.to_vec(),
    })
    .events
}

/// Produce `payloads` to `topic`, each keyed by its key, and check every acknowledgement. Keys
/// are partitioned as Vigil's own producers do (like the Java client), so a user's records land
/// where Vigil would put them: decisions partition N pairs with events partition N.
pub fn produce(config: &Config, topic: &str, payloads: &[(Option<String>, Vec<u8>)]) {
    let producer: FutureProducer = client(config)
        .set("partitioner", "murmur2_random")
        .set("message.max.bytes", "20000000")
        .set("linger.ms", "5")
        .create()
        .unwrap();
    let mut pending = Vec::new();
    for (key, payload) in payloads {
        let mut record = FutureRecord::to(topic).payload(payload.as_slice());
        if let Some(key) = key {
            record = record.key(key.as_str());
        }
        pending.push(
            producer
                .send_result(record)
                .map_err(|(e, _)| e)
                .expect("queued"),
        );
    }
    for result in futures::executor::block_on(futures::future::join_all(pending)) {
        result
            .expect("delivered")
            .map_err(|(e, _)| e)
            .expect("acknowledged");
    }
}

/// Log the stages' tracing output in test output (once per test binary).
pub fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_test_writer()
        .try_init();
}

/// A consumer in `group` (never committing) and every partition of `topic` at `offset`.
fn consumer_of(
    config: &Config,
    group: &str,
    topic: &str,
    offset: Offset,
) -> (BaseConsumer, TopicPartitionList) {
    let consumer: BaseConsumer = client(config)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .unwrap();
    let partitions = metadata.topics()[0].partitions().len() as i32;
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, offset).unwrap();
    }
    (consumer, tpl)
}

/// Wait until `group` has committed `total` records of `topic` (summed over partitions).
pub fn wait_committed(config: &Config, group: &str, topic: &str, total: i64) {
    let (consumer, tpl) = consumer_of(config, group, topic, Offset::Invalid);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let committed = consumer
            .committed_offsets(tpl.clone(), Duration::from_secs(10))
            .unwrap();
        let sum: i64 = committed
            .elements()
            .iter()
            .filter_map(|e| match e.offset() {
                Offset::Offset(o) => Some(o),
                _ => None,
            })
            .sum();
        if sum >= total {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{group} committed {sum} of {total} records of {topic}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Events as records keyed by their user id (what ingest does).
pub fn keyed(events: &[Value]) -> Vec<(Option<String>, Vec<u8>)> {
    events
        .iter()
        .map(|e| {
            let key = OktaEvent::from_value(e.clone())
                .ok()
                .and_then(|e| e.user())
                .map(|u| u.id);
            (key, serde_json::to_vec(e).unwrap())
        })
        .collect()
}

/// Everything on `topic` (all partitions), read until `done(records)` or `timeout`.
pub fn read_until(
    config: &Config,
    topic: &str,
    timeout: Duration,
    done: impl Fn(&[Record]) -> bool,
) -> Vec<Record> {
    let (consumer, tpl) = consumer_of(config, "test-reader", topic, Offset::Beginning);
    consumer.assign(&tpl).unwrap();
    let deadline = Instant::now() + timeout;
    let mut records = Vec::new();
    while Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => records.push(Record {
                partition: m.partition(),
                offset: m.offset(),
                key: m.key().map(|k| String::from_utf8_lossy(k).into_owned()),
                payload: m.payload().unwrap_or_default().to_vec(),
                headers: m
                    .headers()
                    .map(|h| {
                        h.iter()
                            .map(|h| {
                                (
                                    h.key.to_owned(),
                                    String::from_utf8_lossy(h.value.unwrap_or_default())
                                        .into_owned(),
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
            }),
            Some(Err(e)) => panic!("reading {topic}: {e}"),
            None => {
                if done(&records) {
                    break;
                }
            }
        }
    }
    records
}

/// The decision ids `vigil replay`'s detector gives for `events`, in order, with the decisions.
pub fn replay_decisions(events: &[Value]) -> Vec<Value> {
    let policy = Policy::load(&PolicySource::Embedded, LoadOptions::default()).unwrap();
    let mut detector = Detector::new(policy, Default::default());
    let mut decisions = Vec::new();
    for e in events {
        let Ok(event) = OktaEvent::from_value(e.clone()) else {
            continue;
        };
        for d in detector.process(&event, false).decisions {
            decisions.push(serde_json::to_value(d).unwrap());
        }
    }
    decisions
}

/// Decision ids of decision records.
pub fn ids(decisions: &[Value]) -> BTreeSet<String> {
    decisions
        .iter()
        .map(|d| d["decision_id"].as_str().unwrap().to_owned())
        .collect()
}

/// A stage running in a thread until stopped.
pub struct Running<T> {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<anyhow::Result<T>>,
}

impl<T: Send + 'static> Running<T> {
    pub fn start(f: impl FnOnce(Arc<AtomicBool>) -> anyhow::Result<T> + Send + 'static) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        Running {
            stop,
            handle: std::thread::spawn(move || f(flag)),
        }
    }

    /// Ask it to stop gracefully and wait.
    pub fn stop(self) -> T {
        self.stop.store(true, Ordering::Relaxed);
        self.handle
            .join()
            .expect("stage thread")
            .expect("stage ran")
    }
}

impl<T: Send + 'static> Running<T> {
    /// Run `wait`, then stop gracefully.
    pub fn stop_after(self, wait: impl FnOnce()) -> T {
        wait();
        self.stop()
    }
}
