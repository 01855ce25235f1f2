//! Policy hot reload: a thread watches the policy directory (and SIGHUP), loads and compiles a
//! changed revision off the hot path, and leaves it for the detect loop, which swaps it in
//! between two events — no event is dropped or evaluated twice, and a revision that does not
//! load is refused while the running one stays.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use tracing::{error, info};

use crate::policy::{LoadOptions, Policy, PolicySource};

/// How often the policy directory is looked at.
const WATCH_INTERVAL: Duration = Duration::from_millis(500);

/// A revision waiting to be swapped in, shared by the watcher and the detect loop.
#[derive(Clone, Default)]
pub struct PendingPolicy {
    ready: Arc<AtomicBool>,
    policy: Arc<Mutex<Option<Policy>>>,
}

impl PendingPolicy {
    /// Offer `policy` (replacing an offer not yet taken).
    pub fn offer(&self, policy: Policy) {
        *self.policy.lock().unwrap_or_else(PoisonError::into_inner) = Some(policy);
        self.ready.store(true, Ordering::Release);
    }

    /// The offered revision, if any (one atomic load when there is none: called per event).
    pub fn take(&self) -> Option<Policy> {
        if !self.ready.swap(false, Ordering::Acquire) {
            return None;
        }
        self.policy
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }
}

/// Count a reload attempt's result and log it.
pub fn record(result: &str) {
    crate::metrics::metrics()
        .policy_reloads
        .with_label_values(&[result])
        .inc();
}

/// Watch `source` until `shutdown`: on SIGHUP (`hangups` changes) or when a file under the
/// directory changes (and has settled), load the revision and offer it when it differs from
/// `revision`. Returns the pending slot the detect loop takes revisions from.
pub fn watch(
    source: PolicySource,
    options: LoadOptions,
    revision: String,
    hangups: Arc<AtomicU64>,
    shutdown: Arc<AtomicBool>,
) -> anyhow::Result<PendingPolicy> {
    let pending = PendingPolicy::default();
    let offer = pending.clone();
    let dir = match &source {
        PolicySource::Dir(dir) => Some(dir.clone()),
        PolicySource::Embedded => {
            info!("policies built into the binary: nothing to watch (SIGHUP reloads the same)");
            None
        }
    };
    std::thread::Builder::new()
        .name("policy-watch".into())
        .spawn(move || {
            let mut current = revision;
            let mut seen_hangups = hangups.load(Ordering::Relaxed);
            let mut loaded_files = dir.as_deref().map(fingerprint);
            let mut last_files = loaded_files.clone();
            while !shutdown.load(Ordering::Relaxed) {
                std::thread::sleep(WATCH_INTERVAL);
                let files = dir.as_deref().map(fingerprint);
                let hangup = hangups.load(Ordering::Relaxed) != seen_hangups;
                // A change is loaded once two looks agree, so an editor's half-written file
                // is not what gets compiled.
                let settled_change = files != loaded_files && files == last_files;
                last_files = files.clone();
                if !hangup && !settled_change {
                    continue;
                }
                seen_hangups = hangups.load(Ordering::Relaxed);
                loaded_files = files;
                let why = if hangup { "SIGHUP" } else { "files changed" };
                match Policy::load(&source, options) {
                    Err(e) => {
                        record("refused");
                        error!(source = %source, trigger = why, error = %e, revision = %current, "policy reload refused: the running revision stays");
                    }
                    Ok(policy) if policy.revision() == current => {
                        record("unchanged");
                        info!(source = %source, trigger = why, revision = %current, "policy reload: same revision");
                    }
                    Ok(policy) => {
                        info!(source = %source, trigger = why, from = %current, to = policy.revision(), rules = policy.rules().len(), "policy revision loaded; swapping it in between events");
                        current = policy.revision().to_owned();
                        offer.offer(policy);
                    }
                }
            }
        })?;
    Ok(pending)
}

/// Directory levels looked into at most (a symlink loop must not hang the watcher).
const MAX_DEPTH: usize = 8;

/// Every file under `dir` with its size and modification time (cheap to compare each tick).
fn fingerprint(dir: &Path) -> BTreeMap<PathBuf, (u64, Option<SystemTime>)> {
    let mut files = BTreeMap::new();
    let mut stack = vec![(dir.to_path_buf(), 0)];
    while let Some((dir, depth)) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            // `metadata` follows symlinks: a ConfigMap's `..data` swap shows as a change.
            let Ok(meta) = std::fs::metadata(&path) else {
                continue;
            };
            if meta.is_dir() {
                if depth < MAX_DEPTH {
                    stack.push((path, depth + 1));
                }
            } else {
                files.insert(path, (meta.len(), meta.modified().ok()));
            }
        }
    }
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_offer_is_taken_once() {
        let pending = PendingPolicy::default();
        assert!(pending.take().is_none());
        let policy = Policy::load(&PolicySource::Embedded, LoadOptions::default()).unwrap();
        pending.offer(policy);
        assert!(pending.take().is_some());
        assert!(pending.take().is_none());
    }
}
