//! Consumer lag and broker reachability, watched from a thread of their own: a stage blocked in
//! a long vendor call or a rate-limit wait is exactly when lag must keep moving on the dashboard,
//! so it cannot be measured by the loop that is blocked.
//!
//! Lag is Kafka's usual measure: a partition's end offset minus the group's committed offset
//! (no commit yet: the start of the partition), for the partitions this instance owns.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, TopicPartitionList};

/// How often lag is published and the broker's reachability checked.
const INTERVAL: Duration = Duration::from_secs(5);
/// A request taking longer than this counts as the broker being unreachable.
const TIMEOUT: Duration = Duration::from_secs(2);

/// The partitions an instance owns, kept by its worker loop.
pub type Owned = Arc<Mutex<BTreeSet<(String, i32)>>>;

/// The watching thread; dropping it stops the thread and waits for it.
pub struct Watcher {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Watch `owned` for `stage` until the returned [`Watcher`] is dropped. The client uses the
/// group's id without joining the group, only to read its committed offsets.
pub fn watch(
    stage: &'static str,
    consumer_config: &ClientConfig,
    probe_topic: String,
    owned: Owned,
) -> anyhow::Result<Watcher> {
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = stop.clone();
    let group = consumer_config
        .get("group.id")
        .unwrap_or_default()
        .to_owned();
    let client: BaseConsumer = consumer_config
        .create()
        .context("cannot create the lag watcher's Kafka client")?;
    let thread = std::thread::Builder::new()
        .name(format!("{stage}-lag"))
        .spawn(move || {
            let mut published: BTreeSet<(String, i32)> = BTreeSet::new();
            let mut last: Option<Instant> = None;
            while !stopped.load(Ordering::Relaxed) {
                if last.is_some_and(|at| at.elapsed() < INTERVAL) {
                    std::thread::sleep(Duration::from_millis(100));
                    continue;
                }
                last = Some(Instant::now());
                let reachable = client
                    .fetch_metadata(Some(&probe_topic), TIMEOUT)
                    .map(drop)
                    .map_err(|e| e.to_string());
                let answered = reachable.is_ok();
                crate::health::health().broker(stage, reachable);
                let now_owned = owned.lock().unwrap_or_else(PoisonError::into_inner).clone();
                for (topic, partition) in published.difference(&now_owned) {
                    let _ = crate::metrics::metrics()
                        .consumer_lag
                        .remove_label_values(&[&group, topic, &partition.to_string()]);
                }
                published = now_owned;
                if answered {
                    publish(&client, &group, &published);
                }
            }
        })?;
    Ok(Watcher {
        stop,
        thread: Some(thread),
    })
}

/// Set the lag gauge of every partition in `owned`.
fn publish(client: &BaseConsumer, group: &str, owned: &BTreeSet<(String, i32)>) {
    if owned.is_empty() {
        return;
    }
    let mut list = TopicPartitionList::new();
    for (topic, partition) in owned {
        list.add_partition(topic, *partition);
    }
    let Ok(committed) = client.committed_offsets(list, TIMEOUT) else {
        return;
    };
    for (topic, partition) in owned {
        let Ok((low, high)) = client.fetch_watermarks(topic, *partition, TIMEOUT) else {
            continue;
        };
        let position = committed
            .find_partition(topic, *partition)
            .and_then(|e| e.offset().to_raw())
            .filter(|&o| o >= 0)
            .unwrap_or(low);
        crate::metrics::metrics()
            .consumer_lag
            .with_label_values(&[group, topic, &partition.to_string()])
            .set((high - position).max(0));
    }
}
