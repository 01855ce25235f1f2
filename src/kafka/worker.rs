//! The consume → process → produce → commit loop every streaming stage runs.
//!
//! It works in batches of at most `max_in_flight` consumed records: process each as it arrives,
//! hand what it produces to the producer, then wait until the broker has acknowledged *every*
//! produced record of the batch (retrying failures) before committing the batch's offsets. So:
//!
//! * at least once: an offset is committed only after everything its record produced is durable;
//!   a crash anywhere re-consumes from the last commit, and deterministic ids make the repeat
//!   harmless downstream;
//! * back-pressure: nothing is consumed while a batch waits for acknowledgements, so a slow or
//!   unreachable broker slows consumption instead of growing memory;
//! * graceful shutdown: when asked to stop it finishes the batch, lets the processor write its
//!   last checkpoint, commits synchronously and leaves the group (on drop).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::{anyhow, Context as _};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders, OwnedMessage};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use rdkafka::{ClientConfig, ClientContext, Offset, TopicPartitionList};
use tracing::{info, warn};

use super::record::{OutRecord, DLQ_ERROR, DLQ_REASON, DLQ_STAGE, TRUNCATED};

/// How long one poll waits for a record when the batch is empty.
const POLL_TIMEOUT: Duration = Duration::from_millis(100);
/// Retries of a failed delivery back off up to this long between attempts.
const MAX_RETRY_WAIT: Duration = Duration::from_secs(5);
/// On shutdown, give up re-sending after this many failed rounds (nothing is committed then, so
/// the records are consumed and produced again after a restart).
const SHUTDOWN_RETRY_ROUNDS: u32 = 5;

/// Bound on each transactional call.
const TRANSACTION_TIMEOUT: Duration = Duration::from_secs(30);

/// What a stage does with each consumed record.
pub trait Processor {
    /// Handle one consumed record, pushing what it produces onto `out`. An error stops the worker
    /// without committing the record, so it is consumed again after a restart.
    fn process<M: Message>(&mut self, message: &M, out: &mut Vec<OutRecord>) -> anyhow::Result<()>;

    /// `partitions` of `topic` were taken away by a rebalance: forget their state.
    fn revoked(&mut self, _topic: &str, _partitions: &[i32]) {}

    /// `partitions` of `topic` were given by a rebalance (records may follow, or not).
    fn assigned(&mut self, _topic: &str, _partitions: &[i32]) {}

    /// Called between batches, once everything produced so far is acknowledged and before the
    /// batch's offsets are committed: records to write at that point (state snapshots).
    /// `closing` is set on shutdown, when the worker calls it until it produces nothing.
    fn checkpoint(&mut self, _out: &mut Vec<OutRecord>, _closing: bool) -> anyhow::Result<()> {
        Ok(())
    }
}

/// How the worker runs.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// Stage name, for logs and DLQ headers.
    pub stage: &'static str,
    /// Consumed records in flight at most (processed, outputs not yet acknowledged).
    pub max_in_flight: usize,
    /// Where a record the producer refuses outright (too large, …) goes instead.
    pub dlq_topic: String,
    /// DLQ payloads keep at most this many bytes.
    pub dlq_max_payload_bytes: usize,
    /// Keep, per consumed record, the milliseconds from its producer's timestamp until its
    /// outputs were acknowledged (for the bench).
    pub record_latency: bool,
    /// Produce each batch and commit its offsets in one Kafka transaction with this
    /// `transactional.id` (Apache Kafka only; off by default). The at-least-once guarantee does
    /// not depend on it: it only keeps a crashed batch's outputs from being read by
    /// `read_committed` consumers.
    pub transactional_id: Option<String>,
}

impl WorkerOptions {
    /// The options of `stage` as configured (in-flight bound and DLQ settings).
    pub fn for_stage(stage: &'static str, config: &crate::config::Config) -> Self {
        WorkerOptions {
            stage,
            max_in_flight: config.detect.max_in_flight.max(1),
            dlq_topic: config.topics.dlq.clone(),
            dlq_max_payload_bytes: config.detect.dlq_max_payload_bytes,
            record_latency: false,
            transactional_id: config.detect.transactional_id.clone(),
        }
    }
}

/// What a worker did.
#[derive(Debug, Default, Clone)]
pub struct WorkerSummary {
    /// Records consumed.
    pub consumed: u64,
    /// Records produced and acknowledged.
    pub produced: u64,
    /// Failed deliveries that were sent again.
    pub redelivered: u64,
    /// Produce-to-acknowledged milliseconds per consumed record, when asked for.
    pub latencies_ms: Vec<i64>,
}

/// Consumer callbacks: rebalances are logged and remembered for the loop.
#[derive(Default)]
pub struct GroupContext {
    stage: &'static str,
    revoked: Mutex<Vec<(String, i32)>>,
    assigned: Mutex<Vec<(String, i32)>>,
    /// An assignment arrived (even an empty one: the group was joined).
    rebalanced: AtomicBool,
}

impl ClientContext for GroupContext {}

impl ConsumerContext for GroupContext {
    fn pre_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Revoke(partitions) => {
                let list = partition_list(partitions);
                info!(stage = self.stage, partitions = %describe(&list), "partitions revoked");
                self.revoked
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .extend(list);
            }
            Rebalance::Assign(partitions) => {
                let list = partition_list(partitions);
                info!(stage = self.stage, partitions = %describe(&list), "partitions assigned");
                self.rebalanced.store(true, Ordering::Relaxed);
                self.assigned
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .extend(list);
            }
            Rebalance::Error(e) => warn!(stage = self.stage, error = %e, "rebalance failed"),
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, _offsets: &TopicPartitionList) {
        if let Err(e) = result {
            // A failed commit (for example of a partition just revoked) only means those
            // records are consumed again by their next owner: at least once, not lost.
            warn!(stage = self.stage, error = %e, "offset commit failed");
        }
    }
}

/// Empty a list the rebalance callback fills, returning what it held.
fn take(list: &Mutex<Vec<(String, i32)>>) -> Vec<(String, i32)> {
    std::mem::take(&mut *list.lock().unwrap_or_else(PoisonError::into_inner))
}

fn partition_list(tpl: &TopicPartitionList) -> Vec<(String, i32)> {
    tpl.elements()
        .iter()
        .map(|e| (e.topic().to_owned(), e.partition()))
        .collect()
}

fn describe(list: &[(String, i32)]) -> String {
    list.iter()
        .map(|(t, p)| format!("{t}[{p}]"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// One stage's consumer, producer and processor.
pub struct Worker<P: Processor> {
    consumer: BaseConsumer<GroupContext>,
    producer: FutureProducer,
    processor: P,
    options: WorkerOptions,
    shutdown: Arc<AtomicBool>,
    summary: WorkerSummary,
    /// A transaction is open (begun at the first record or offset of a batch, so an idle
    /// stage does not begin and commit an empty transaction every poll).
    in_transaction: std::cell::Cell<bool>,
    /// The partitions this instance owns, for the lag watcher.
    owned: super::lag::Owned,
    /// Publishes lag and broker reachability; stops when the worker is dropped.
    _lag: super::lag::Watcher,
}

impl<P: Processor> Worker<P> {
    /// A worker consuming `topics` in the group of `consumer_config`; it stops when `shutdown`
    /// is set.
    pub fn new(
        consumer_config: &ClientConfig,
        producer_config: &ClientConfig,
        topics: &[&str],
        processor: P,
        options: WorkerOptions,
        shutdown: Arc<AtomicBool>,
    ) -> anyhow::Result<Self> {
        let context = GroupContext {
            stage: options.stage,
            revoked: Mutex::default(),
            assigned: Mutex::default(),
            rebalanced: AtomicBool::new(false),
        };
        crate::health::health().stage_started(options.stage);
        let owned = super::lag::Owned::default();
        let lag = super::lag::watch(
            options.stage,
            consumer_config,
            topics.first().map(|t| t.to_string()).unwrap_or_default(),
            owned.clone(),
        )?;
        let consumer: BaseConsumer<GroupContext> = consumer_config
            .create_with_context(context)
            .context("cannot create the Kafka consumer")?;
        consumer
            .subscribe(topics)
            .with_context(|| format!("cannot subscribe to {}", topics.join(", ")))?;
        let mut producer_config = producer_config.clone();
        if let Some(id) = &options.transactional_id {
            producer_config.set("transactional.id", id);
        }
        let producer: FutureProducer = producer_config
            .create()
            .context("cannot create the Kafka producer")?;
        if options.transactional_id.is_some() {
            producer
                .init_transactions(TRANSACTION_TIMEOUT)
                .context("cannot initialise Kafka transactions")?;
        }
        Ok(Worker {
            consumer,
            producer,
            processor,
            options,
            shutdown,
            summary: WorkerSummary::default(),
            in_transaction: std::cell::Cell::new(false),
            owned,
            _lag: lag,
        })
    }

    /// The processor (for its counters).
    pub fn processor(&self) -> &P {
        &self.processor
    }

    /// Run until shutdown is requested (or a processor or delivery error), then commit, leave
    /// the group and return what was done with the processor.
    pub fn run(mut self) -> anyhow::Result<(WorkerSummary, P)> {
        let mut out = Vec::new();
        let mut in_flight = Vec::new();
        let mut timestamps = Vec::new();
        loop {
            let closing = self.shutdown.load(Ordering::Relaxed);
            let mut offsets: BTreeMap<(String, i32), i64> = BTreeMap::new();
            if !closing {
                while timestamps.len() < self.options.max_in_flight {
                    let timeout = if timestamps.is_empty() {
                        POLL_TIMEOUT
                    } else {
                        Duration::ZERO
                    };
                    let message = match self.consumer.poll(timeout) {
                        None => break,
                        Some(Ok(message)) => message,
                        Some(Err(e)) => {
                            warn!(stage = self.options.stage, error = %e, "consumer error");
                            break;
                        }
                    };
                    self.processor.process(&message, &mut out)?;
                    for record in out.drain(..) {
                        in_flight.push(self.send(record)?);
                    }
                    offsets.insert(
                        (message.topic().to_owned(), message.partition()),
                        message.offset() + 1,
                    );
                    timestamps.push(message.timestamp().to_millis().unwrap_or(-1));
                    self.summary.consumed += 1;
                }
            }
            self.deliver(&mut in_flight)?;
            self.record_latencies(&mut timestamps);

            let revoked = take(&self.consumer.context().revoked);
            for (topic, partition) in &revoked {
                self.processor
                    .revoked(topic, std::slice::from_ref(partition));
                offsets.remove(&(topic.clone(), *partition));
            }
            let assigned = take(&self.consumer.context().assigned);
            for (topic, partition) in &assigned {
                self.processor
                    .assigned(topic, std::slice::from_ref(partition));
            }

            if self
                .consumer
                .context()
                .rebalanced
                .swap(false, Ordering::Relaxed)
            {
                let assignment = self.consumer.assignment().map(|a| partition_list(&a));
                let assignment = assignment.unwrap_or_default();
                crate::health::health().assigned(self.options.stage, assignment.len());
                *self.owned.lock().unwrap_or_else(PoisonError::into_inner) =
                    assignment.into_iter().collect();
            }

            self.checkpoint(&mut out, &mut in_flight, false)?;
            if closing {
                // Snapshots may take more than one round (records, then their marker).
                for _ in 0..4 {
                    if !self.checkpoint(&mut out, &mut in_flight, true)? {
                        break;
                    }
                }
            }
            self.commit(&offsets, closing)?;
            if closing {
                info!(
                    stage = self.options.stage,
                    consumed = self.summary.consumed,
                    produced = self.summary.produced,
                    "stopped: in-flight records delivered and offsets committed"
                );
                return Ok((self.summary, self.processor));
            }
        }
    }

    /// Ask the processor for checkpoint records and deliver them; whether there were any.
    fn checkpoint(
        &mut self,
        out: &mut Vec<OutRecord>,
        in_flight: &mut Vec<DeliveryFuture>,
        closing: bool,
    ) -> anyhow::Result<bool> {
        self.processor.checkpoint(out, closing)?;
        let any = !out.is_empty();
        for record in out.drain(..) {
            in_flight.push(self.send(record)?);
        }
        self.deliver(in_flight)?;
        Ok(any)
    }

    /// Begin the batch's transaction if transactions are on and none is open.
    fn ensure_transaction(&self) -> anyhow::Result<()> {
        if self.options.transactional_id.is_some() && !self.in_transaction.get() {
            self.producer.begin_transaction()?;
            self.in_transaction.set(true);
        }
        Ok(())
    }

    fn commit(&self, offsets: &BTreeMap<(String, i32), i64>, sync: bool) -> anyhow::Result<()> {
        let mut tpl = TopicPartitionList::new();
        for ((topic, partition), next) in offsets {
            tpl.add_partition_offset(topic, *partition, Offset::Offset(*next))?;
        }
        if self.options.transactional_id.is_some() {
            if offsets.is_empty() && !self.in_transaction.get() {
                return Ok(());
            }
            self.ensure_transaction()?;
            self.in_transaction.set(false);
            return self.commit_transaction(&tpl);
        }
        if offsets.is_empty() {
            return Ok(());
        }
        let mode = if sync {
            CommitMode::Sync
        } else {
            CommitMode::Async
        };
        if let Err(e) = self.consumer.commit(&tpl, mode) {
            warn!(stage = self.options.stage, error = %e, "offset commit failed; the records will be consumed again");
        }
        Ok(())
    }

    /// Commit the batch's outputs and offsets atomically; on failure abort and stop (the batch
    /// is consumed again after a restart).
    fn commit_transaction(&self, offsets: &TopicPartitionList) -> anyhow::Result<()> {
        let result = (|| {
            if offsets.count() > 0 {
                let group = self
                    .consumer
                    .group_metadata()
                    .ok_or_else(|| anyhow!("no consumer group metadata"))?;
                self.producer
                    .send_offsets_to_transaction(offsets, &group, TRANSACTION_TIMEOUT)?;
            }
            self.producer.commit_transaction(TRANSACTION_TIMEOUT)?;
            Ok::<_, anyhow::Error>(())
        })();
        if let Err(e) = &result {
            warn!(stage = self.options.stage, error = %e, "transaction failed; aborting");
            let _ = self.producer.abort_transaction(TRANSACTION_TIMEOUT);
        }
        result.context("cannot commit the batch's transaction")
    }

    fn record_latencies(&mut self, timestamps: &mut Vec<i64>) {
        if self.options.record_latency {
            let now = chrono::Utc::now().timestamp_millis();
            self.summary
                .latencies_ms
                .extend(timestamps.iter().filter(|&&t| t >= 0).map(|t| now - t));
        }
        timestamps.clear();
    }

    /// Hand one record to the producer, waiting while its queue is full (back-pressure). A record
    /// the producer refuses outright goes to the DLQ instead, so one bad output cannot stop the
    /// stream forever.
    fn send(&self, record: OutRecord) -> anyhow::Result<DeliveryFuture> {
        self.ensure_transaction()?;
        match self.enqueue(&record) {
            Ok(future) => Ok(future),
            Err(e) if record.topic != self.options.dlq_topic => {
                warn!(stage = self.options.stage, topic = %record.topic, error = %e, "the producer refused a record; dead-lettering it");
                let dead = self.refused_to_dlq(record, &e);
                self.enqueue(&dead)
                    .map_err(|e| anyhow!("cannot dead-letter a refused record: {e}"))
            }
            Err(e) => Err(anyhow!("cannot produce to {}: {e}", record.topic)),
        }
    }

    fn enqueue(&self, record: &OutRecord) -> KafkaResult<DeliveryFuture> {
        let mut headers = OwnedHeaders::new_with_capacity(record.headers.len());
        for (key, value) in &record.headers {
            headers = headers.insert(Header {
                key,
                value: Some(value),
            });
        }
        loop {
            let mut future_record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(&record.topic)
                .payload(record.payload.as_slice())
                .headers(headers.clone());
            if let Some(key) = &record.key {
                future_record = future_record.key(key.as_slice());
            }
            if let Some(partition) = record.partition {
                future_record = future_record.partition(partition);
            }
            match self.producer.send_result(future_record) {
                Ok(future) => return Ok(future),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err((e, _)) => return Err(e),
            }
        }
    }

    fn refused_to_dlq(&self, record: OutRecord, error: &KafkaError) -> OutRecord {
        let mut payload = record.payload;
        let truncated = payload.len() > self.options.dlq_max_payload_bytes;
        payload.truncate(self.options.dlq_max_payload_bytes);
        let mut headers = vec![
            (DLQ_REASON.to_owned(), b"output_refused".to_vec()),
            (
                DLQ_ERROR.to_owned(),
                format!("producing to {} failed: {error}", record.topic).into_bytes(),
            ),
            (DLQ_STAGE.to_owned(), self.options.stage.as_bytes().to_vec()),
        ];
        if truncated {
            headers.push((TRUNCATED.to_owned(), b"true".to_vec()));
        }
        headers.extend(record.headers);
        OutRecord {
            topic: self.options.dlq_topic.clone(),
            partition: None,
            key: record.key,
            payload,
            headers,
        }
    }

    /// Wait until every in-flight record is acknowledged, sending failed ones again with a
    /// growing pause (the producer already retried them internally for `message.timeout.ms`).
    fn deliver(&mut self, in_flight: &mut Vec<DeliveryFuture>) -> anyhow::Result<()> {
        let mut round = 0u32;
        while !in_flight.is_empty() {
            let results =
                futures::executor::block_on(futures::future::join_all(in_flight.drain(..)));
            let mut failed = Vec::new();
            for result in results {
                match result {
                    Ok(Ok(_)) => self.summary.produced += 1,
                    Ok(Err((error, message))) => failed.push((error, message)),
                    Err(_) => return Err(anyhow!("the producer shut down with records in flight")),
                }
            }
            let Some((error, _)) = failed.first() else {
                break;
            };
            round += 1;
            if self.shutdown.load(Ordering::Relaxed) && round > SHUTDOWN_RETRY_ROUNDS {
                return Err(anyhow!(
                    "stopping with {} undelivered records ({error}); their offsets are not committed",
                    failed.len()
                ));
            }
            let wait = Duration::from_millis(100u64 << round.min(6)).min(MAX_RETRY_WAIT);
            warn!(stage = self.options.stage, failed = failed.len(), error = %error, ?wait, "delivery failed; sending again");
            std::thread::sleep(wait);
            for (_, message) in failed {
                self.summary.redelivered += 1;
                in_flight.push(self.enqueue(&owned_to_record(&message))?);
            }
        }
        Ok(())
    }
}

fn owned_to_record(message: &OwnedMessage) -> OutRecord {
    OutRecord {
        topic: message.topic().to_owned(),
        partition: (message.partition() >= 0).then_some(message.partition()),
        key: message.key().map(<[u8]>::to_vec),
        payload: message.payload().unwrap_or_default().to_vec(),
        headers: message
            .headers()
            .map(|h| {
                h.iter()
                    .map(|h| (h.key.to_owned(), h.value.unwrap_or_default().to_vec()))
                    .collect()
            })
            .unwrap_or_default(),
    }
}
