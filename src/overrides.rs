//! Analysts' overrides: "leave this user alone for a while, because …".
//!
//! An override is a record on the overrides topic (compacted, keyed by user id: the newest
//! record per user is in force). Scope `all` suppresses the user's new decisions and cancels
//! their pending actions; scope `pending` only cancels pending actions. Lifting an override is
//! writing one that ends now, so the lift itself is recorded with its reason.
//!
//! Every respond instance reads the whole topic into an [`OverrideTable`] and keeps following
//! it ([`follow`]); the HTTP API and `vigil override` write to it ([`publish`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use anyhow::{anyhow, Context as _};
use chrono::{DateTime, Utc};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

/// What an override covers.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Suppress new decisions and cancel pending actions.
    All,
    /// Cancel pending (delayed) actions only.
    Pending,
}

/// One analyst override.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Override {
    /// The Okta user id (the record key).
    pub user_id: String,
    /// What it covers.
    pub scope: Scope,
    /// Why (required: it is the audit trail).
    pub reason: String,
    /// Who, as the analyst gave it.
    #[serde(default)]
    pub by: Option<String>,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it ends (equal to `created_at` for a lift).
    pub until: DateTime<Utc>,
}

impl Override {
    /// Check what an analyst sent: a user, a reason, an end after the start.
    pub fn validate(&self) -> Result<(), String> {
        if self.user_id.trim().is_empty() {
            return Err("user_id must not be empty".into());
        }
        if self.reason.trim().is_empty() {
            return Err("reason must not be empty".into());
        }
        if self.until < self.created_at {
            return Err("until must not be before created_at".into());
        }
        Ok(())
    }

    /// Whether it is in force at `at`.
    pub fn active_at(&self, at: DateTime<Utc>) -> bool {
        self.created_at <= at && at < self.until
    }

    /// Whether it was in force at some time in `[from, to]` (a pending action's wait). A lift
    /// (no period) never is.
    pub fn overlaps(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> bool {
        self.created_at < self.until && self.created_at <= to && from < self.until
    }
}

/// The overrides in force, per user, shared between the follower and its readers.
#[derive(Debug, Clone, Default)]
pub struct OverrideTable {
    inner: Arc<RwLock<HashMap<String, Override>>>,
    caught_up: Arc<AtomicBool>,
}

impl OverrideTable {
    /// The newest override of `user_id`.
    pub fn get(&self, user_id: &str) -> Option<Override> {
        self.inner
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(user_id)
            .cloned()
    }

    /// Record `o` as its user's newest override.
    pub fn insert(&self, o: Override) {
        self.inner
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(o.user_id.clone(), o);
    }

    /// Every user's newest override, sorted by user.
    pub fn all(&self) -> Vec<Override> {
        let mut all: Vec<_> = self
            .inner
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect();
        all.sort_by(|a, b| a.user_id.cmp(&b.user_id));
        all
    }

    /// Whether the follower has read everything the topic held when it started.
    pub fn caught_up(&self) -> bool {
        self.caught_up.load(Ordering::Acquire)
    }
}

/// Read the overrides topic from the beginning into `table` and keep following it on a thread
/// until `shutdown` is set. `config` is a reader configuration (no group, no commits).
pub fn follow(
    config: &ClientConfig,
    topic: &str,
    table: OverrideTable,
    shutdown: Arc<AtomicBool>,
) -> anyhow::Result<std::thread::JoinHandle<()>> {
    // Caught up is judged by offsets; end-of-partition events would only be noise.
    let consumer: BaseConsumer = config
        .clone()
        .set("enable.partition.eof", "false")
        .create()
        .context("cannot create the overrides reader")?;
    let topic = topic.to_owned();
    let handle = std::thread::Builder::new()
        .name("overrides".into())
        .spawn(move || {
            if let Err(e) = follow_loop(&consumer, &topic, &table, &shutdown) {
                warn!(topic = %topic, error = %e, "overrides reader stopped");
            }
        })?;
    Ok(handle)
}

fn follow_loop(
    consumer: &BaseConsumer,
    topic: &str,
    table: &OverrideTable,
    shutdown: &AtomicBool,
) -> anyhow::Result<()> {
    // The topic may not exist yet (a fresh cluster): wait for it rather than fail the stage.
    let (partitions, mut remaining) = loop {
        if shutdown.load(Ordering::Relaxed) {
            return Ok(());
        }
        match assign_all(consumer, topic) {
            Ok(found) => break found,
            Err(e) => {
                warn!(topic = %topic, error = %e, "overrides topic not readable yet; retrying");
                std::thread::sleep(Duration::from_secs(2));
            }
        }
    };
    info!(topic = %topic, partitions, "following overrides");
    while !shutdown.load(Ordering::Relaxed) {
        if remaining.is_empty() && !table.caught_up() {
            table.caught_up.store(true, Ordering::Release);
            info!(overrides = table.all().len(), "overrides loaded");
        }
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(message)) => {
                remaining.retain(|&(p, high)| {
                    !(p == message.partition() && message.offset() + 1 >= high)
                });
                match message.payload().map(serde_json::from_slice::<Override>) {
                    Some(Ok(o)) => table.insert(o),
                    Some(Err(e)) => {
                        warn!(offset = message.offset(), error = %e, "unreadable override record skipped")
                    }
                    None => {}
                }
            }
            // The end of a partition: what `remaining` tracks already.
            Some(Err(KafkaError::PartitionEOF(_))) => {}
            Some(Err(e)) => {
                warn!(error = %e, "overrides reader error");
                std::thread::sleep(Duration::from_millis(200));
            }
            None => {}
        }
    }
    Ok(())
}

/// Assign every partition of `topic` from the beginning; returns the partition count and the
/// partitions that hold records, with their high watermark (what "caught up" means).
fn assign_all(consumer: &BaseConsumer, topic: &str) -> anyhow::Result<(usize, Vec<(i32, i64)>)> {
    let timeout = Duration::from_secs(10);
    let metadata = consumer.fetch_metadata(Some(topic), timeout)?;
    let partitions = metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic && t.error().is_none())
        .map(|t| t.partitions().len())
        .filter(|&n| n > 0)
        .ok_or_else(|| anyhow!("topic {topic} does not exist"))?;
    let mut assignment = TopicPartitionList::new();
    let mut remaining = Vec::new();
    for p in 0..partitions as i32 {
        let (low, high) = consumer.fetch_watermarks(topic, p, timeout)?;
        if high > low {
            remaining.push((p, high));
        }
        assignment.add_partition_offset(topic, p, Offset::Beginning)?;
    }
    consumer.assign(&assignment)?;
    Ok((partitions, remaining))
}

/// Write `o` to the overrides topic and wait until the broker has it.
pub async fn publish(producer: &FutureProducer, topic: &str, o: &Override) -> anyhow::Result<()> {
    o.validate().map_err(|e| anyhow!("invalid override: {e}"))?;
    let payload = serde_json::to_vec(o)?;
    producer
        .send(
            FutureRecord::to(topic).key(&o.user_id).payload(&payload),
            Duration::from_secs(30),
        )
        .await
        .map_err(|(e, _)| anyhow!("cannot write the override to {topic}: {e}"))?;
    info!(user = %o.user_id, scope = ?o.scope, until = %o.until, by = o.by.as_deref().unwrap_or("-"), reason = %o.reason, "override recorded");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 22, 10, minute, 0).unwrap()
    }

    fn o(from: u32, to: u32) -> Override {
        Override {
            user_id: "00u1".into(),
            scope: Scope::All,
            reason: "travelling".into(),
            by: None,
            created_at: at(from),
            until: at(to),
        }
    }

    #[test]
    fn an_override_is_in_force_from_creation_until_its_end() {
        let o = o(10, 20);
        assert!(!o.active_at(at(9)));
        assert!(o.active_at(at(10)));
        assert!(!o.active_at(at(20)));
        // A pending action waiting 0–15 overlaps an override made at 10.
        assert!(o.overlaps(at(0), at(15)));
        assert!(!o.overlaps(at(20), at(35)));
        assert!(!o.overlaps(at(0), at(9)));
    }

    #[test]
    fn overrides_without_reason_or_ending_before_they_start_are_refused() {
        let mut bad = o(10, 20);
        bad.reason = " ".into();
        assert!(bad.validate().unwrap_err().contains("reason"));
        assert!(o(20, 10).validate().unwrap_err().contains("until"));
        assert!(o(10, 10).validate().is_ok(), "a lift ends when it starts");
        assert!(!o(10, 10).overlaps(at(0), at(15)), "a lift cancels nothing");
    }
}
