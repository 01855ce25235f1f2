//! Follows what the pipeline wrote — the decisions topic and the respond ledger — from outside
//! the stages, the way an operator reading the topics would.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::Context as _;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use tracing::warn;

use crate::config::Config;
use crate::decision::Decision;
use crate::kafka;
use crate::kafka::reader::PartitionReader;
use crate::ledger::{LedgerEntry, Status};

/// Something the pipeline wrote.
pub enum Seen {
    /// A decision was published.
    Decision(Box<Decision>),
    /// An action reached a new status.
    Action(Box<LedgerEntry>),
}

/// A reader of the decisions and ledger topics, and what it has read.
pub struct Observer {
    consumer: BaseConsumer,
    decisions_topic: String,
    /// Every decision, in the order read.
    pub decisions: Vec<Decision>,
    /// The newest ledger record of every action.
    pub ledger: HashMap<String, LedgerEntry>,
}

impl Observer {
    /// Read both topics from their beginning (committed records only, as respond does).
    pub fn new(config: &Config) -> anyhow::Result<Self> {
        let mut client = kafka::reader_config(&config.kafka)?;
        client
            .set("isolation.level", "read_committed")
            .set("enable.partition.eof", "false");
        let counts = PartitionReader::new(&client)?;
        let mut assignment = TopicPartitionList::new();
        for topic in [&config.topics.decisions, &config.topics.ledger] {
            let partitions = counts
                .partition_count(topic)?
                .with_context(|| format!("topic {topic} does not exist"))?;
            for p in 0..partitions as i32 {
                assignment.add_partition_offset(topic, p, Offset::Beginning)?;
            }
        }
        let consumer: BaseConsumer = client.create().context("cannot create the observer")?;
        consumer.assign(&assignment)?;
        Ok(Observer {
            consumer,
            decisions_topic: config.topics.decisions.clone(),
            decisions: Vec::new(),
            ledger: HashMap::new(),
        })
    }

    /// What arrived within `wait` (then whatever else is already fetched).
    pub fn poll(&mut self, wait: Duration) -> Vec<Seen> {
        let mut seen = Vec::new();
        let mut timeout = wait;
        while let Some(result) = self.consumer.poll(timeout) {
            timeout = Duration::ZERO;
            // End-of-partition notices and transient broker errors: nothing to show.
            let Ok(message) = result else { continue };
            let Some(payload) = message.payload() else {
                continue;
            };
            if message.topic() == self.decisions_topic {
                match serde_json::from_slice::<Decision>(payload) {
                    Ok(decision) => {
                        self.decisions.push(decision.clone());
                        seen.push(Seen::Decision(Box::new(decision)));
                    }
                    Err(e) => warn!(error = %e, "unreadable decision record"),
                }
            } else {
                match serde_json::from_slice::<LedgerEntry>(payload) {
                    Ok(entry) => {
                        let changed = self
                            .ledger
                            .get(&entry.action_id)
                            .is_none_or(|old| old.status != entry.status);
                        self.ledger.insert(entry.action_id.clone(), entry.clone());
                        // An intent is a step inside a call: the outcome follows at once.
                        if changed && entry.status != Status::Started {
                            seen.push(Seen::Action(Box::new(entry)));
                        }
                    }
                    Err(e) => warn!(error = %e, "unreadable ledger record"),
                }
            }
        }
        seen
    }

    /// Actions of the decisions read whose outcome is not known yet (no record, or a call in
    /// progress); delayed actions waiting for their due time count as known.
    pub fn unsettled(&self) -> usize {
        self.decisions
            .iter()
            .flat_map(|d| &d.actions)
            .filter(|a| {
                self.ledger
                    .get(&a.action_id)
                    .is_none_or(|entry| entry.status == Status::Started)
            })
            .count()
    }
}
