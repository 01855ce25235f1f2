//! The live detect stage: [`Detector`] behind a Kafka [`Processor`], with per-partition state
//! that survives restarts and partition moves.
//!
//! Each assigned partition of the events topic has its own [`StateStore`], so a revoked
//! partition's users are dropped together. When the stage first sees a record of a partition
//! (at the group's committed offset `C`), it rebuilds that partition's state before processing:
//!
//! 1. **Snapshots.** Every `snapshot_interval_secs` (and on shutdown) the stage writes the state
//!    of each user changed since the last round to the state topic — same partition number, key
//!    = user id, tagged with the offset `O` up to which it includes events — and then a round
//!    marker `O`. It does so only once every decision of events before `O` is acknowledged, so a
//!    user record tagged `O_u` means "events before `O_u` are in this state and their decisions
//!    are out". The topic is compacted: the newest record per user survives.
//! 2. **Re-reading events.** Events from the last complete round `O_r` (or, without snapshots,
//!    from `rebuild_window_secs` ago) up to `C` are evaluated again into the state, their
//!    decisions discarded (they were produced before `C` was committed).
//! 3. **Live.** From `C` on, a record of user `u` below `O_u` is skipped (already in the state,
//!    decisions already out); everything else is processed normally.
//!
//! So a restart or a partition move never hides a detection whose events straddle it, and never
//! re-emits decisions for events before the committed offset.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use rdkafka::message::Message;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tracing::{error, info, warn};

use super::reload::{self, PendingPolicy};
use super::Detector;
use crate::config::{DetectConfig, Topics};
use crate::event::OktaEvent;
use crate::kafka::reader::PartitionReader;
use crate::kafka::{dlq_record, OutRecord, Processor};
use crate::state::{StateStore, ALLOWED_LATENESS_MS};

/// Key of a snapshot round's marker record (Okta user ids never contain `~`).
pub const ROUND_KEY: &str = "~round";
const STAGE: &str = "detect";

/// One record on the state topic.
#[derive(Debug, Serialize, Deserialize)]
struct SnapshotRecord {
    /// [`crate::state::Features::fingerprint`] of the feature set that wrote it.
    features: String,
    /// The state includes every event of the partition before this offset.
    offset: i64,
    /// The user's state; absent on a round marker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    state: Option<Value>,
}

/// What the stage has done, for logs, tests and metrics.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DetectCounters {
    /// Records consumed from the events topic.
    pub events: u64,
    /// Events the policies evaluated.
    pub evaluated: u64,
    /// Events seen before (same uuid, eventType and published; Okta hook retries, hook and
    /// poller together, a re-read page): no state change, no decision.
    pub repeats: u64,
    /// Decisions produced.
    pub decisions: u64,
    /// Records sent to the DLQ.
    pub dead_lettered: u64,
    /// Rule runtime errors.
    pub rule_errors: u64,
    /// Records whose key is not the user id the event is about.
    pub misrouted: u64,
    /// Partitions whose state was rebuilt.
    pub partitions_rebuilt: u64,
    /// Users restored from snapshots.
    pub users_restored: u64,
    /// Events re-read into the state during rebuilds.
    pub events_reread: u64,
    /// Live records skipped because a restored snapshot already included them.
    pub skipped_in_snapshot: u64,
    /// State records written.
    pub snapshots_written: u64,
}

struct PartitionState {
    store: StateStore,
    next_offset: i64,
    /// Users changed since the last snapshot round.
    dirty: HashSet<String>,
    /// Restored users whose snapshot includes events up to (not including) this offset, where
    /// that is beyond the committed offset.
    covered: HashMap<String, i64>,
    last_round: Instant,
    /// A round whose user records are written and acknowledged; its marker goes next.
    marker_due: Option<i64>,
}

/// The detect stage's processor.
pub struct LiveDetect {
    detector: Detector,
    topics: Topics,
    settings: DetectConfig,
    features: String,
    rebuild_window_ms: i64,
    reader: PartitionReader,
    partitions: BTreeMap<i32, PartitionState>,
    counters: DetectCounters,
    /// When the state-size gauge was last updated (counting users settles the cache: not on
    /// every batch).
    gauges_at: Option<Instant>,
    /// Where reloaded policy revisions wait to be swapped in.
    reloads: Option<PendingPolicy>,
}

/// How often the state-size gauge is updated.
const GAUGE_INTERVAL: Duration = Duration::from_secs(5);

impl LiveDetect {
    /// A stage around `detector`, reading partitions for rebuilds with `reader`. Checks that the
    /// state topic can hold every events partition's snapshots.
    pub fn new(
        detector: Detector,
        topics: Topics,
        settings: DetectConfig,
        reader: PartitionReader,
    ) -> anyhow::Result<Self> {
        let features = detector.policy().features();
        let rebuild_window_ms = match settings.rebuild_window_secs {
            Some(secs) => i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX / 4),
            None => i64::try_from(features.longest_window_secs().saturating_mul(1000))
                .unwrap_or(i64::MAX / 4)
                .saturating_add(ALLOWED_LATENESS_MS),
        };
        if settings.snapshots {
            let events = reader.partition_count(&topics.events)?;
            let state = reader.partition_count(&topics.state)?;
            match (events, state) {
                (_, None) => anyhow::bail!(
                    "the state topic {} does not exist: create it compacted (cleanup.policy=compact) with as many partitions as {}, or set detect.snapshots = false",
                    topics.state,
                    topics.events
                ),
                (Some(e), Some(s)) if s < e => anyhow::bail!(
                    "the state topic {} has {s} partitions but {} has {e}: snapshots of events partition N go to state partition N",
                    topics.state,
                    topics.events
                ),
                _ => {}
            }
        }
        Ok(LiveDetect {
            features: features.fingerprint(),
            detector,
            topics,
            settings,
            rebuild_window_ms,
            reader,
            partitions: BTreeMap::new(),
            counters: DetectCounters::default(),
            gauges_at: None,
            reloads: None,
        })
    }

    /// Swap in the revisions `pending` offers, between events.
    pub fn with_reloads(mut self, pending: PendingPolicy) -> Self {
        self.reloads = Some(pending);
        self
    }

    /// Swap in a reloaded revision if one waits. Its features must be the running ones: the
    /// per-user state was computed by them.
    fn take_reload(&mut self) {
        let Some(policy) = self.reloads.as_ref().and_then(PendingPolicy::take) else {
            return;
        };
        let from = self.detector.policy().revision().to_owned();
        if policy.features().fingerprint() != self.features {
            reload::record("refused");
            error!(from = %from, to = policy.revision(), "policy reload refused: features.toml changed, and the per-user state was computed by the running features; restart the stage to use this revision");
            return;
        }
        let to = policy.revision().to_owned();
        self.detector.replace_policy(policy);
        crate::metrics::metrics().set_policy_revision(&to);
        crate::health::health().policy_loaded(&to);
        reload::record("loaded");
        info!(from = %from, to = %to, "policy revision swapped in: later events are evaluated by it");
    }

    /// What the stage has done so far.
    pub fn counters(&self) -> &DetectCounters {
        &self.counters
    }

    /// The partitions whose state this instance holds.
    pub fn partitions(&self) -> Vec<i32> {
        self.partitions.keys().copied().collect()
    }

    /// Rebuild partition `partition`'s state up to `first`, the first offset the group delivers.
    fn rebuild(&mut self, partition: i32, first: i64) -> anyhow::Result<PartitionState> {
        let started = Instant::now();
        let store = self.detector.new_store();
        let mut covered = HashMap::new();
        let mut round = None;
        if self.settings.snapshots {
            let mut foreign = 0u64;
            let mut broken = 0u64;
            let features = &self.features;
            self.reader
                .read_all(&self.topics.state, partition, |record| {
                    let (Some(key), Some(payload)) = (record.key, record.payload) else {
                        return true;
                    };
                    let key = String::from_utf8_lossy(key);
                    let record: SnapshotRecord = match serde_json::from_slice(payload) {
                        Ok(record) => record,
                        Err(_) => {
                            broken += 1;
                            return true;
                        }
                    };
                    if &record.features != features {
                        foreign += 1;
                        return true;
                    }
                    match record.state {
                        None if key == ROUND_KEY => round = Some(record.offset),
                        None => broken += 1,
                        Some(state) => match store.restore(&key, state) {
                            Ok(()) => {
                                covered.insert(key.into_owned(), record.offset);
                            }
                            Err(_) => broken += 1,
                        },
                    }
                    true
                })
                .context("cannot read the state snapshots")?;
            if foreign > 0 || broken > 0 {
                warn!(
                    partition,
                    foreign,
                    broken,
                    "ignored state records written for another features.toml or unreadable"
                );
            }
        }
        let start = match round {
            Some(round) => round.min(first),
            None => {
                let (low, _) = self.reader.watermarks(&self.topics.events, partition)?;
                if first <= low {
                    first // nothing before the resume point: a new group or a new topic
                } else {
                    let since = chrono::Utc::now().timestamp_millis() - self.rebuild_window_ms;
                    self.reader
                        .offset_at(&self.topics.events, partition, since)?
                        .min(first)
                }
            }
        };
        let mut dirty = HashSet::new();
        let mut reread = 0u64;
        let max_bytes = self.settings.max_event_bytes;
        let detector = &mut self.detector;
        self.reader
            .read_range(&self.topics.events, partition, start, first, |record| {
                let Some(event) = record
                    .payload
                    .and_then(|p| OktaEvent::decode(p, max_bytes).ok())
                else {
                    return true; // dead-lettered when it was first consumed
                };
                let user = event.user().map(|u| u.id);
                if let Some(user) = &user {
                    if covered.get(user).is_some_and(|&o| record.offset < o) {
                        return true;
                    }
                }
                detector.process_in(&store, &event, false);
                if let Some(user) = user {
                    dirty.insert(user);
                }
                reread += 1;
                true
            })
            .context("cannot re-read the events partition")?;
        let users_restored = covered.len() as u64;
        covered.retain(|_, &mut o| o > first);
        self.counters.partitions_rebuilt += 1;
        self.counters.users_restored += users_restored;
        self.counters.events_reread += reread;
        info!(
            partition,
            users_restored,
            snapshot_round = ?round,
            reread_from = start,
            reread_events = reread,
            resume_at = first,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "partition state rebuilt"
        );
        Ok(PartitionState {
            store,
            next_offset: first,
            dirty,
            covered,
            last_round: Instant::now(),
            marker_due: None,
        })
    }

    fn dead_letter<M: Message>(
        &mut self,
        message: &M,
        reason: &str,
        error: &str,
        out: &mut Vec<OutRecord>,
    ) {
        warn!(
            partition = message.partition(),
            offset = message.offset(),
            reason,
            error,
            "bad record sent to the DLQ"
        );
        self.counters.dead_lettered += 1;
        crate::metrics::metrics()
            .dead_lettered
            .with_label_values(&[STAGE, reason])
            .inc();
        out.push(dlq_record(
            &self.topics.dlq,
            STAGE,
            message,
            reason,
            error,
            self.settings.dlq_max_payload_bytes,
        ));
    }

    fn snapshot_record(&self, partition: i32, key: &str, record: &SnapshotRecord) -> OutRecord {
        OutRecord {
            topic: self.topics.state.clone(),
            partition: Some(partition),
            key: Some(key.as_bytes().to_vec()),
            payload: serde_json::to_vec(record).unwrap_or_default(),
            headers: Vec::new(),
        }
    }
}

impl Processor for LiveDetect {
    fn process<M: Message>(&mut self, message: &M, out: &mut Vec<OutRecord>) -> anyhow::Result<()> {
        self.take_reload();
        let partition = message.partition();
        if !self.partitions.contains_key(&partition) {
            let state = self.rebuild(partition, message.offset())?;
            self.partitions.insert(partition, state);
        }
        self.counters.events += 1;
        let event = match message.payload() {
            None => Err(("empty_record", "the record has no value".to_owned())),
            Some(payload) => OktaEvent::decode(payload, self.settings.max_event_bytes)
                .map_err(|e| (e.reason(), e.to_string())),
        };
        let event = match event {
            Ok(event) => event,
            Err((reason, error)) => {
                self.dead_letter(message, reason, &error, out);
                if let Some(state) = self.partitions.get_mut(&partition) {
                    state.next_offset = message.offset() + 1;
                }
                return Ok(());
            }
        };
        let outcome_result = event
            .field("outcome.result")
            .and_then(|v| v.as_str())
            .unwrap_or("");
        crate::metrics::metrics()
            .events
            .with_label_values(&[event.event_type.as_str(), outcome_result])
            .inc();
        let user = event.user().map(|u| u.id);
        if message.key() != user.as_deref().map(str::as_bytes) && user.is_some() {
            if self.counters.misrouted == 0 {
                warn!(
                    partition,
                    offset = message.offset(),
                    "an event's record key is not its user id: state is per partition, so run `vigil rekey` on this topic"
                );
            }
            self.counters.misrouted += 1;
        }
        let Some(state) = self.partitions.get_mut(&partition) else {
            return Ok(());
        };
        state.next_offset = message.offset() + 1;
        if let Some(user) = &user {
            if state
                .covered
                .get(user)
                .is_some_and(|&o| message.offset() < o)
            {
                self.counters.skipped_in_snapshot += 1;
                return Ok(());
            }
        }
        let outcome = self.detector.process_in(&state.store, &event, false);
        if outcome.repeat {
            self.counters.repeats += 1;
            crate::metrics::metrics().repeated_events.inc();
            tracing::debug!(event = %event.uuid, partition, offset = message.offset(), "repeated event ignored");
            return Ok(());
        }
        if let Some(user) = &user {
            state.dirty.insert(user.clone());
        }
        if outcome.evaluated {
            self.counters.evaluated += 1;
        }
        for error in &outcome.rule_errors {
            self.counters.rule_errors += 1;
            crate::metrics::metrics()
                .rule_errors
                .with_label_values(&[error.rule.as_str()])
                .inc();
            warn!(event = %event.uuid, rule = %error.rule, error = %error.message, "rule failed on an event");
        }
        for decision in outcome.decisions {
            self.counters.decisions += 1;
            crate::metrics::metrics()
                .decisions
                .with_label_values(&[decision.rule.as_str(), decision.severity.as_str()])
                .inc();
            info!(
                decision_id = %decision.decision_id,
                rule = %decision.rule,
                event = %event.uuid,
                user = user.as_deref().unwrap_or("-"),
                actions = decision.actions.len(),
                "decision"
            );
            let key = user.as_deref().unwrap_or(&event.uuid);
            let payload = serde_json::to_vec(&decision).context("cannot serialize a decision")?;
            out.push(OutRecord::keyed(&self.topics.decisions, Some(key), payload));
        }
        Ok(())
    }

    fn revoked(&mut self, topic: &str, partitions: &[i32]) {
        if topic != self.topics.events {
            return;
        }
        for partition in partitions {
            if self.partitions.remove(partition).is_some() {
                info!(partition, "partition state dropped");
            }
        }
    }

    fn checkpoint(&mut self, out: &mut Vec<OutRecord>, closing: bool) -> anyhow::Result<()> {
        // Also here, so an idle stage reports the new revision without waiting for an event.
        self.take_reload();
        if self
            .gauges_at
            .is_none_or(|at| at.elapsed() >= GAUGE_INTERVAL)
        {
            let users: u64 = self.partitions.values().map(|s| s.store.user_count()).sum();
            let bytes: usize = self
                .partitions
                .values()
                .map(|s| s.store.approx_bytes())
                .sum();
            let metrics = crate::metrics::metrics();
            metrics.state_users.set(users as i64);
            metrics.state_bytes.set(bytes as i64);
            self.gauges_at = Some(Instant::now());
        }
        if !self.settings.snapshots {
            return Ok(());
        }
        let interval = Duration::from_secs(self.settings.snapshot_interval_secs);
        let mut records = Vec::new();
        for (&partition, state) in &mut self.partitions {
            if let Some(offset) = state.marker_due.take() {
                // The round's user records are acknowledged: now it is complete.
                records.push((partition, ROUND_KEY.to_owned(), offset, None));
                state.last_round = Instant::now();
                continue;
            }
            if state.dirty.is_empty() || (!closing && state.last_round.elapsed() < interval) {
                continue;
            }
            let offset = state.next_offset;
            let mut users: Vec<String> = state.dirty.drain().collect();
            users.sort_unstable();
            for user in users {
                if let Some(snapshot) = state.store.snapshot(&user) {
                    records.push((partition, user, offset, Some(snapshot)));
                }
            }
            state.marker_due = Some(offset);
        }
        for (partition, key, offset, state) in records {
            let record = SnapshotRecord {
                features: self.features.clone(),
                offset,
                state,
            };
            out.push(self.snapshot_record(partition, &key, &record));
            self.counters.snapshots_written += 1;
        }
        Ok(())
    }
}
