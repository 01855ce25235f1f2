//! Creating the topics a stage needs, for trial setups, tests and the bench (production clusters
//! usually manage topics themselves).

use std::time::Duration;

use anyhow::{anyhow, Context as _};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::ClientConfig;

/// One topic to create.
#[derive(Debug, Clone)]
pub struct TopicSpec {
    /// Its name.
    pub name: String,
    /// Partitions.
    pub partitions: i32,
    /// Replication factor.
    pub replication: i32,
    /// Keep only the newest record per key (the state, ledger and overrides topics).
    pub compacted: bool,
}

/// Create every topic in `specs` that does not exist yet; existing topics are left alone.
pub fn ensure_topics(config: &ClientConfig, specs: &[TopicSpec]) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> = config
        .create()
        .context("cannot create the Kafka admin client")?;
    let topics: Vec<NewTopic<'_>> = specs
        .iter()
        .map(|spec| {
            let topic = NewTopic::new(
                &spec.name,
                spec.partitions,
                TopicReplication::Fixed(spec.replication),
            );
            if spec.compacted {
                topic.set("cleanup.policy", "compact")
            } else {
                topic
            }
        })
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let results = futures::executor::block_on(admin.create_topics(&topics, &options))
        .context("cannot create topics")?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => return Err(anyhow!("cannot create topic {name}: {code}")),
        }
    }
    Ok(())
}
