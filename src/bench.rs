//! `vigil bench`: the detect stage against its floor, on one broker in one run.
//!
//! 1. Produce a simulated population's events to a fresh events topic.
//! 2. **Passthrough** (the floor): the same worker loop (consume → produce → wait for acks →
//!    commit) copying each record to another topic, no parsing, no state, no policy.
//! 3. **Detect**: the real detect stage on the same records, from the start of the topic.
//! 4. **Latency**: detect running while events are produced at a fixed rate; per event, the time
//!    from its producer timestamp until everything the stage produced for it (its decisions) is
//!    acknowledged by the broker.
//!
//! Rates are measured from the first record consumed to the last one acknowledged, so joining
//! the group does not count. With no `--brokers` it runs on librdkafka's in-process mock cluster.
//! Neither the mock cluster nor tansu wakes a waiting fetch when data arrives, so the consumers
//! use a short `fetch.wait.max.ms` (`--fetch-wait-ms`); against Apache Kafka it changes nothing
//! but the idle request rate.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use rdkafka::message::Message;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{DefaultProducerContext, FutureProducer, FutureRecord};

use crate::config::Config;
use crate::detect::command::load_policy;
use crate::detect::{Detector, LiveDetect};
use crate::event::OktaEvent;
use crate::kafka::admin::{ensure_topics, TopicSpec};
use crate::kafka::reader::PartitionReader;
use crate::kafka::{self, OutRecord, Processor, Worker, WorkerOptions};
use crate::simulate::{generate, Attack, SimConfig};

/// Arguments of `vigil bench`.
#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    /// Brokers (`host:port`); default: librdkafka's in-process mock cluster.
    #[arg(long)]
    pub brokers: Option<String>,
    /// Simulated users.
    #[arg(long, default_value_t = 300)]
    pub users: usize,
    /// Simulated days (all attacks injected on the last one).
    #[arg(long, default_value_t = 2)]
    pub days: u32,
    /// Partitions of the bench topics (the mock cluster keeps only 5 MiB per partition, so
    /// keep events per partition under ~3,000 there).
    #[arg(long, default_value_t = 16)]
    pub partitions: i32,
    /// Events per second produced during the latency phase.
    #[arg(long, default_value_t = 2000)]
    pub rate: u32,
    /// librdkafka's fetch.wait.max.ms for every consumer (see the module docs).
    #[arg(long, default_value_t = 5)]
    pub fetch_wait_ms: u32,
    /// Length of the latency phase in seconds.
    #[arg(long, default_value_t = 10)]
    pub latency_secs: u64,
    /// Which stage to measure.
    #[arg(long, value_enum, default_value_t = BenchStage::Detect)]
    pub stage: BenchStage,
    /// Decisions per second in the respond latency phase (at most `--rate`).
    #[arg(long, default_value_t = 100)]
    pub respond_rate: u32,
}

/// The stages `vigil bench` measures.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum BenchStage {
    /// Throughput against a passthrough, and latency at a fixed event rate.
    Detect,
    /// Latency from a decision produced to its action at a local vendor sink, against a
    /// passthrough at the same rate.
    Respond,
}

/// Counts records through any processor and stops the worker after `target` of them.
struct Counted<P> {
    inner: P,
    target: u64,
    seen: Arc<AtomicU64>,
    first: Option<Instant>,
    stop: Arc<AtomicBool>,
}

impl<P: Processor> Processor for Counted<P> {
    fn process<M: Message>(&mut self, message: &M, out: &mut Vec<OutRecord>) -> anyhow::Result<()> {
        self.first.get_or_insert_with(Instant::now);
        self.inner.process(message, out)?;
        if self.seen.fetch_add(1, Ordering::Relaxed) + 1 >= self.target {
            self.stop.store(true, Ordering::Relaxed);
        }
        Ok(())
    }

    fn revoked(&mut self, topic: &str, partitions: &[i32]) {
        self.inner.revoked(topic, partitions);
    }

    fn checkpoint(&mut self, out: &mut Vec<OutRecord>, closing: bool) -> anyhow::Result<()> {
        self.inner.checkpoint(out, closing)
    }
}

/// The floor: copy each record to `topic`.
/// Copies each record to `topic`: the floor every stage is measured against.
pub(crate) struct Passthrough {
    /// Where the copies go.
    pub(crate) topic: String,
}

impl Processor for Passthrough {
    fn process<M: Message>(&mut self, message: &M, out: &mut Vec<OutRecord>) -> anyhow::Result<()> {
        out.push(OutRecord {
            topic: self.topic.clone(),
            partition: None,
            key: message.key().map(<[u8]>::to_vec),
            payload: message.payload().unwrap_or_default().to_vec(),
            headers: Vec::new(),
        });
        Ok(())
    }
}

/// One phase's figures.
#[derive(Debug, Clone, Copy)]
struct Phase {
    records: u64,
    elapsed: Duration,
}

impl Phase {
    fn rate(&self) -> f64 {
        self.records as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Run the bench and print its figures.
pub fn run(args: &BenchArgs) -> anyhow::Result<()> {
    let mock = match &args.brokers {
        Some(_) => None,
        None => Some(
            MockCluster::<'static, DefaultProducerContext>::new(1)
                .context("cannot start the mock cluster")?,
        ),
    };
    let bootstrap = match (&args.brokers, &mock) {
        (Some(brokers), _) => brokers.clone(),
        (None, Some(mock)) => mock.bootstrap_servers(),
        (None, None) => unreachable!("a mock cluster is started when no brokers are given"),
    };
    let run_id = chrono::Utc::now().timestamp_millis();
    let mut config = Config::default();
    config.kafka.bootstrap_servers = Some(bootstrap.clone());
    // The mock cluster and tansu answer a fetch that finds no data only when fetch.wait.max.ms
    // expires (Apache Kafka answers as soon as data arrives), which would add up to 500 ms
    // (librdkafka's default) to every latency.
    config.kafka.properties.insert(
        "fetch.wait.max.ms".into(),
        crate::config::PropertyValue::Integer(i64::from(args.fetch_wait_ms)),
    );
    let name = |suffix: &str| format!("vigil-bench-{run_id}.{suffix}");
    if args.stage == BenchStage::Respond {
        config.topics.events = name("events");
        config.topics.decisions = name("decisions");
        config.topics.dlq = name("dlq");
        config.topics.ledger = name("ledger");
        config.topics.overrides = name("overrides");
        config.respond.group_id = format!("vigil-bench-{run_id}-respond");
        let floor = name("floor");
        let topics = &config.topics;
        create_topics(
            &config,
            mock.as_ref(),
            &[
                &topics.events,
                &topics.decisions,
                &topics.dlq,
                &topics.ledger,
                &topics.overrides,
                &floor,
                &format!("{floor}.out"),
            ],
            args.partitions,
        )?;
        println!(
            "vigil bench --stage respond on {}, {} partitions, fetch.wait.max.ms={}",
            args.brokers
                .as_deref()
                .unwrap_or("the in-process mock cluster"),
            args.partitions,
            args.fetch_wait_ms
        );
        let dir = tempfile_dir()?;
        let result = crate::bench_respond::run(&config, args, &dir, &floor);
        let _ = std::fs::remove_dir_all(&dir);
        return result;
    }
    config.topics.events = name("events");
    config.topics.decisions = name("decisions");
    config.topics.dlq = name("dlq");
    config.topics.state = name("state");
    let passthrough_topic = name("passthrough");
    let latency_events = name("latency-events");
    let latency_state = name("latency-state");
    let latency_floor_events = name("latency-floor-events");
    create_topics(
        &config,
        mock.as_ref(),
        &[
            &latency_state,
            &latency_floor_events,
            &config.topics.events,
            &config.topics.decisions,
            &config.topics.dlq,
            &config.topics.state,
            &passthrough_topic,
            &latency_events,
        ],
        args.partitions,
    )?;

    let events = simulated_records(args);
    let count = events.len() as u64;
    let bytes: usize = events.iter().map(|(_, p)| p.len()).sum();
    println!(
        "vigil bench: {} events ({} users x {} days, {:.0} bytes each on average) on {}, {} partitions, fetch.wait.max.ms={}",
        count,
        args.users,
        args.days,
        bytes as f64 / count.max(1) as f64,
        args.brokers.as_deref().unwrap_or("the in-process mock cluster"),
        args.partitions,
        args.fetch_wait_ms
    );
    let started = Instant::now();
    produce(
        &producer(&config, false)?,
        &config.topics.events,
        &events,
        None,
    )?;
    println!(
        "  produce            {:>9.0} events/s",
        count as f64 / started.elapsed().as_secs_f64()
    );

    let floor = run_phase(
        &config,
        &format!("vigil-bench-{run_id}-passthrough"),
        &config.topics.events,
        Passthrough {
            topic: passthrough_topic,
        },
        count,
    )?;
    println!(
        "  passthrough        {:>9.0} events/s   (floor: consume -> produce -> ack -> commit)",
        floor.rate()
    );
    let detect = run_phase(
        &config,
        &format!("vigil-bench-{run_id}-detect"),
        &config.topics.events,
        live_detect(&config)?,
        count,
    )?;
    println!(
        "  detect             {:>9.0} events/s   = {:.2}x the passthrough rate (target >= 0.5x)",
        detect.rate(),
        detect.rate() / floor.rate()
    );

    println!(
        "  latency at {} events/s, producer timestamp -> outputs acknowledged:",
        args.rate
    );
    let floor = latency_phase(
        &config,
        &latency_floor_events,
        Passthrough {
            topic: name("passthrough"),
        },
        &events,
        args,
    )?;
    print_latencies("passthrough", &floor);
    let mut phase_config = config.clone();
    phase_config.topics.events = latency_events.clone();
    // Snapshots belong to one events topic: offsets in them mean nothing for another.
    phase_config.topics.state = latency_state;
    let latencies = latency_phase(
        &phase_config,
        &latency_events,
        live_detect(&phase_config)?,
        &events,
        args,
    )?;
    print_latencies("detect", &latencies);
    println!("    (target: detect p99 <= 25 ms)");
    Ok(())
}

fn create_topics(
    config: &Config,
    mock: Option<&MockCluster<'static, DefaultProducerContext>>,
    names: &[&String],
    partitions: i32,
) -> anyhow::Result<()> {
    let specs: Vec<TopicSpec> = names
        .iter()
        .map(|name| TopicSpec {
            name: name.to_string(),
            partitions,
            replication: 1,
            compacted: false,
        })
        .collect();
    if let Some(mock) = mock {
        // The mock cluster does not answer CreateTopics; it has its own API.
        for spec in &specs {
            mock.create_topic(&spec.name, spec.partitions, 1)?;
        }
        return Ok(());
    }
    ensure_topics(&kafka::base_config(&config.kafka)?, &specs)
}

fn simulated_records(args: &BenchArgs) -> Vec<(Option<String>, Vec<u8>)> {
    let simulation = generate(&SimConfig {
        users: args.users,
        days: args.days,
        start: chrono::NaiveDate::from_ymd_opt(2026, 3, 2).unwrap_or_default(),
        seed: 1,
        attacks: Attack::ALL.to_vec(),
    });
    simulation
        .events
        .into_iter()
        .map(|event| {
            let key = OktaEvent::from_value(event.clone())
                .ok()
                .and_then(|e| e.user())
                .map(|u| u.id);
            (key, serde_json::to_vec(&event).unwrap_or_default())
        })
        .collect()
}

/// A producer for the bench's input: batching for bulk loads, none when paced.
/// A private directory for the bench's files (a credential file for the sink).
fn tempfile_dir() -> anyhow::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("vigil-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// A producer for the bench: unpaced batches linger a little, paced records go at once.
pub(crate) fn producer(config: &Config, paced: bool) -> anyhow::Result<FutureProducer> {
    Ok(kafka::producer_config(&config.kafka)?
        .set("linger.ms", if paced { "0" } else { "5" })
        .create()?)
}

/// Produce `records` to `topic`, paced at `rate` per second when given; wait for every ack.
pub(crate) fn produce(
    producer: &FutureProducer,
    topic: &str,
    records: &[(Option<String>, Vec<u8>)],
    rate: Option<u32>,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut pending = Vec::with_capacity(records.len());
    for (i, (key, payload)) in records.iter().enumerate() {
        if let Some(rate) = rate {
            let due = started + Duration::from_secs_f64(i as f64 / f64::from(rate.max(1)));
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
        loop {
            let mut record = FutureRecord::to(topic).payload(payload.as_slice());
            if let Some(key) = key {
                record = record.key(key.as_str());
            }
            match producer.send_result(record) {
                Ok(future) => {
                    pending.push(future);
                    break;
                }
                Err(_) => std::thread::sleep(Duration::from_millis(1)),
            }
        }
    }
    for result in futures::executor::block_on(futures::future::join_all(pending)) {
        result
            .context("producer closed")?
            .map_err(|(e, _)| e)
            .context("produce failed")?;
    }
    Ok(())
}

fn live_detect(config: &Config) -> anyhow::Result<LiveDetect> {
    let detector = Detector::new(load_policy(config)?, config.detect.limits());
    let reader = PartitionReader::new(&kafka::reader_config(&config.kafka)?)?;
    LiveDetect::new(
        detector,
        config.topics.clone(),
        config.detect.clone(),
        reader,
    )
}

fn worker<P: Processor>(
    config: &Config,
    group: &str,
    topic: &str,
    processor: Counted<P>,
    record_latency: bool,
) -> anyhow::Result<Worker<Counted<P>>> {
    let stop = processor.stop.clone();
    let mut options = WorkerOptions::for_stage("bench", config);
    options.record_latency = record_latency;
    Worker::new(
        &kafka::consumer_config(&config.kafka, group)?,
        &kafka::producer_config(&config.kafka)?,
        &[topic],
        processor,
        options,
        stop,
    )
}

fn counted<P>(inner: P, target: u64) -> Counted<P> {
    Counted {
        inner,
        target,
        seen: Arc::default(),
        first: None,
        stop: Arc::default(),
    }
}

/// Consume `count` records of `topic` through `processor` in a new group; time first to last.
fn run_phase<P: Processor>(
    config: &Config,
    group: &str,
    topic: &str,
    processor: P,
    count: u64,
) -> anyhow::Result<Phase> {
    let worker = worker(config, group, topic, counted(processor, count), false)?;
    let (_, processor) = worker.run()?;
    let first = processor.first.context("no record consumed")?;
    Ok(Phase {
        records: processor.seen.load(Ordering::Relaxed),
        elapsed: first.elapsed(),
    })
}

/// `processor` consuming `topic` while `records` are produced to it at `args.rate`; sorted
/// latencies (ms) from each record's producer timestamp to its outputs' acknowledgement.
pub(crate) fn latency_phase<P: Processor + Send + 'static>(
    config: &Config,
    topic: &str,
    processor: P,
    records: &[(Option<String>, Vec<u8>)],
    args: &BenchArgs,
) -> anyhow::Result<Vec<i64>> {
    let wanted = (u64::from(args.rate) * args.latency_secs) as usize;
    let records: Vec<_> = records.iter().take(wanted.max(1)).cloned().collect();
    // One warm-up record first, so the group has joined before the clock starts.
    let total = records.len() as u64 + 1;
    let processor = counted(processor, total);
    let seen = processor.seen.clone();
    let group = format!("{topic}-latency");
    let worker = worker(config, &group, topic, processor, true)?;
    let running = std::thread::spawn(move || worker.run());
    // The warm-up also readies the producer (metadata, producer id), outside the clock.
    let producer = producer(config, true)?;
    produce(&producer, topic, &records[..1], None)?;
    while seen.load(Ordering::Relaxed) == 0 {
        anyhow::ensure!(!running.is_finished(), "the worker stopped");
        std::thread::sleep(Duration::from_millis(20));
    }
    produce(&producer, topic, &records, Some(args.rate))?;
    let (summary, _) = running
        .join()
        .map_err(|_| anyhow::anyhow!("the worker panicked"))??;
    // The first is the warm-up record.
    let mut latencies: Vec<i64> = summary.latencies_ms.into_iter().skip(1).collect();
    latencies.sort_unstable();
    Ok(latencies)
}

/// One line of latency percentiles.
pub(crate) fn print_latencies(label: &str, sorted: &[i64]) {
    if let (Some(p50), Some(p90), Some(p99), Some(max)) = (
        percentile(sorted, 0.50),
        percentile(sorted, 0.90),
        percentile(sorted, 0.99),
        sorted.last(),
    ) {
        println!(
            "    {label:<12} p50 {p50:>4} ms   p90 {p90:>4} ms   p99 {p99:>4} ms   max {max:>4} ms   ({} events)",
            sorted.len()
        );
    }
}

/// The `q` quantile of sorted values (nearest rank).
fn percentile(sorted: &[i64], q: f64) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}
