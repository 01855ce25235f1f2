//! Reading one partition directly, outside any consumer group: a range of offsets, or all of it.
//! The detect stage rebuilds a partition's state this way when it gains the partition.

use std::time::{Duration, Instant};

use anyhow::{anyhow, Context as _};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use tracing::warn;

/// A broker that sends nothing for this long while records are expected is an error (shorter
/// outages are waited out: connection errors are retried until then).
const STALL_TIMEOUT: Duration = Duration::from_secs(300);
const METADATA_TIMEOUT: Duration = Duration::from_secs(10);

/// One record as read.
#[derive(Debug, Clone, Copy)]
pub struct RecordRef<'a> {
    /// Its offset.
    pub offset: i64,
    /// Its timestamp (producer or broker time), -1 if it has none.
    pub timestamp_ms: i64,
    /// Its key.
    pub key: Option<&'a [u8]>,
    /// Its value.
    pub payload: Option<&'a [u8]>,
}

/// A consumer that reads partitions by assignment, never committing.
pub struct PartitionReader {
    consumer: BaseConsumer,
}

impl PartitionReader {
    /// A reader with `config` (see [`super::reader_config`]).
    pub fn new(config: &ClientConfig) -> anyhow::Result<Self> {
        let consumer = config.create().context("cannot create the Kafka reader")?;
        Ok(PartitionReader { consumer })
    }

    /// The number of partitions of `topic`, or `None` if the broker does not know it.
    pub fn partition_count(&self, topic: &str) -> anyhow::Result<Option<usize>> {
        let metadata = self
            .consumer
            .fetch_metadata(Some(topic), METADATA_TIMEOUT)
            .with_context(|| format!("cannot read the metadata of topic {topic}"))?;
        Ok(metadata
            .topics()
            .iter()
            .find(|t| t.name() == topic && t.error().is_none())
            .map(|t| t.partitions().len())
            .filter(|&n| n > 0))
    }

    /// The first offset whose record's timestamp is at or after `at_ms` (the end of the
    /// partition when every record is older), by binary search over record timestamps: brokers
    /// differ in how (and whether) they answer offset-by-time queries, reading records does not.
    /// Producer timestamps are only roughly ordered, so callers leave a margin.
    pub fn offset_at(&self, topic: &str, partition: i32, at_ms: i64) -> anyhow::Result<i64> {
        let (mut low, mut high) = self.watermarks(topic, partition)?;
        while low < high {
            let middle = low + (high - low) / 2;
            let mut timestamp = None;
            let mut found_offset = middle;
            self.read_range(topic, partition, middle, high, |record| {
                timestamp = Some(record.timestamp_ms);
                found_offset = record.offset;
                false
            })?;
            match timestamp {
                Some(t) if t < at_ms => low = found_offset + 1,
                _ => high = middle,
            }
        }
        Ok(low)
    }

    /// The low and high watermarks (first offset, next offset to be written).
    pub fn watermarks(&self, topic: &str, partition: i32) -> anyhow::Result<(i64, i64)> {
        let started = Instant::now();
        loop {
            match self
                .consumer
                .fetch_watermarks(topic, partition, METADATA_TIMEOUT)
            {
                Ok(marks) => return Ok(marks),
                Err(e) if started.elapsed() < STALL_TIMEOUT => {
                    warn!(topic, partition, error = %e, "cannot read partition offsets yet; retrying");
                    std::thread::sleep(Duration::from_millis(500));
                }
                Err(e) => {
                    return Err(e).with_context(|| {
                        format!("cannot read the offsets of {topic}[{partition}]")
                    })
                }
            }
        }
    }

    /// Call `f` for every record of `topic[partition]` in `[from, until)` (clamped to what the
    /// partition holds). `f` returns whether to go on.
    pub fn read_range(
        &self,
        topic: &str,
        partition: i32,
        from: i64,
        until: i64,
        mut f: impl FnMut(RecordRef<'_>) -> bool,
    ) -> anyhow::Result<()> {
        let (low, high) = self.watermarks(topic, partition)?;
        let (from, until) = (from.max(low), until.min(high));
        if from >= until {
            return Ok(());
        }
        let mut assignment = TopicPartitionList::new();
        assignment.add_partition_offset(topic, partition, Offset::Offset(from))?;
        self.consumer.assign(&assignment)?;
        let result = (|| {
            let mut last_progress = Instant::now();
            loop {
                match self.consumer.poll(Duration::from_millis(100)) {
                    Some(Ok(message)) => {
                        last_progress = Instant::now();
                        let offset = message.offset();
                        if offset >= until {
                            return Ok(());
                        }
                        let go_on = f(RecordRef {
                            offset,
                            timestamp_ms: message.timestamp().to_millis().unwrap_or(-1),
                            key: message.key(),
                            payload: message.payload(),
                        });
                        if !go_on || offset + 1 >= until {
                            return Ok(());
                        }
                    }
                    Some(Err(KafkaError::PartitionEOF(_))) => return Ok(()),
                    Some(Err(e)) if last_progress.elapsed() > STALL_TIMEOUT => {
                        return Err(anyhow!("reading {topic}[{partition}]: {e}"));
                    }
                    // Connection trouble: librdkafka reconnects by itself; wait it out.
                    Some(Err(_)) => std::thread::sleep(Duration::from_millis(100)),
                    None if last_progress.elapsed() > STALL_TIMEOUT => {
                        return Err(anyhow!(
                            "reading {topic}[{partition}]: no record for {STALL_TIMEOUT:?} before offset {until}"
                        ));
                    }
                    None => {}
                }
            }
        })();
        self.consumer.unassign()?;
        result
    }

    /// [`PartitionReader::read_range`] over everything the partition holds now.
    pub fn read_all(
        &self,
        topic: &str,
        partition: i32,
        f: impl FnMut(RecordRef<'_>) -> bool,
    ) -> anyhow::Result<()> {
        let (low, high) = self.watermarks(topic, partition)?;
        self.read_range(topic, partition, low, high, f)
    }
}
