//! Kafka plumbing shared by the streaming stages: client settings, the records stages produce,
//! and the consume → process → produce → commit loop ([`worker`]).

pub mod admin;
pub mod lag;
pub mod reader;
pub mod record;
pub mod worker;

use rdkafka::ClientConfig;

use crate::config::KafkaConfig;

pub use record::{dlq_record, OutRecord};
pub use worker::{Processor, Worker, WorkerOptions, WorkerSummary};

/// Properties Vigil sets itself because its delivery guarantees depend on them; configuring them
/// is an error rather than a silent change of semantics.
const MANAGED_PROPERTIES: &[&str] = &[
    "bootstrap.servers",
    "group.id",
    "enable.auto.commit",
    "enable.auto.offset.store",
    "enable.idempotence",
    "acks",
    "partition.assignment.strategy",
    "isolation.level",
];

/// Per-partition fetch size of the group consumers: above any record a broker is likely to be
/// configured to accept, so an oversized record reaches the DLQ.
const FETCH_PARTITION_BYTES: usize = 16 * 1024 * 1024;

/// librdkafka's `fetch.wait.max.ms` unless configured: Apache Kafka answers a waiting fetch as
/// soon as data arrives, but some brokers (tansu, librdkafka's mock cluster) hold it for the
/// whole wait, which would add up to librdkafka's default 500 ms to every detection and slow
/// the reads of a state rebuild. 50 ms costs an idle consumer 20 small requests a second.
const FETCH_WAIT_MS: u32 = 50;

/// A Kafka setting that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("kafka: {0}")]
pub struct KafkaSetupError(pub String);

/// The settings every client shares: brokers, then the configured pass-through properties.
pub fn base_config(kafka: &KafkaConfig) -> Result<ClientConfig, KafkaSetupError> {
    let servers = kafka.bootstrap_servers.as_deref().ok_or_else(|| {
        KafkaSetupError(
            "no brokers: set kafka.bootstrap_servers in the configuration file or VIGIL_KAFKA__BOOTSTRAP_SERVERS"
                .into(),
        )
    })?;
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", servers);
    // librdkafka's own log lines reach tracing through the `log` crate; warnings and worse only.
    config.set("log_level", "4");
    for (name, value) in &kafka.properties {
        refuse_managed(name)?;
        config.set(name, value.to_string());
    }
    for (name, path) in &kafka.property_files {
        refuse_managed(name)?;
        let value = std::fs::read_to_string(path).map_err(|e| {
            KafkaSetupError(format!(
                "property {name}: cannot read {}: {e}",
                path.display()
            ))
        })?;
        config.set(name, value.trim());
    }
    Ok(config)
}

fn consumer_defaults(kafka: &KafkaConfig, config: &mut ClientConfig) {
    if !kafka.properties.contains_key("fetch.wait.max.ms") {
        config.set("fetch.wait.max.ms", FETCH_WAIT_MS.to_string());
    }
}

fn refuse_managed(name: &str) -> Result<(), KafkaSetupError> {
    if MANAGED_PROPERTIES.contains(&name) {
        return Err(KafkaSetupError(format!(
            "property {name} is set by Vigil (its delivery guarantees depend on it); remove it from kafka.properties"
        )));
    }
    Ok(())
}

/// A consumer in `group_id` that commits only what the worker tells it to, with cooperative
/// rebalancing (a joining instance does not stop the others).
pub fn consumer_config(
    kafka: &KafkaConfig,
    group_id: &str,
) -> Result<ClientConfig, KafkaSetupError> {
    let mut config = base_config(kafka)?;
    consumer_defaults(kafka, &mut config);
    if !kafka.properties.contains_key("fetch.message.max.bytes") {
        // Some brokers (tansu) send nothing rather than part of a record larger than the
        // per-partition fetch size, which would stall the partition on one oversized record
        // instead of dead-lettering it.
        config.set("fetch.message.max.bytes", FETCH_PARTITION_BYTES.to_string());
    }
    config
        .set("group.id", group_id)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("partition.assignment.strategy", "cooperative-sticky");
    Ok(config)
}

/// A consumer outside any group, for reading partitions directly (state rebuild, tests, bench).
pub fn reader_config(kafka: &KafkaConfig) -> Result<ClientConfig, KafkaSetupError> {
    let mut config = base_config(kafka)?;
    consumer_defaults(kafka, &mut config);
    config
        .set("group.id", "vigil-reader-unused")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true");
    Ok(config)
}

/// An idempotent producer (no duplicates or reordering from its own retries) that partitions
/// keys like the Java client, so Vigil and other producers agree on where a user's records go.
pub fn producer_config(kafka: &KafkaConfig) -> Result<ClientConfig, KafkaSetupError> {
    let mut config = base_config(kafka)?;
    config
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("partitioner", "murmur2_random")
        .set("linger.ms", "2");
    Ok(config)
}
