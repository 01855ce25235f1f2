//! The events already applied to a state, so that the same Okta event arriving twice counts once.
//!
//! Okta retries an Event Hook delivery it did not see acknowledged within 3 s, the hook and the
//! poller may both deliver an event, and a poller re-reads a page after a restart: the same
//! event then reaches detect as two records. Applying it twice would double counters and the
//! risk score, and a *new* decision (a new id, so respond cannot drop it) could ask for a lockout.
//!
//! An event is identified by its `uuid` together with `eventType` and `published` (some sources
//! reuse uuids across event types). Identities are kept in event time for a window (at least the
//! longest sliding window of the features and 24 h by default), sorted by time: a duplicate has
//! the same `published`, so a lookup is a binary search. Memory is bounded by the window and by
//! a cap on entries; identities pushed out by the cap can no longer be recognised (counted).

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::event::OktaEvent;

/// The identity of an event: a 64-bit FNV-1a hash of `uuid`, `eventType` and `published` (in
/// milliseconds), stable across processes and versions (it is kept in snapshots).
pub fn identity(event: &OktaEvent) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |bytes: &[u8]| {
        for &b in bytes {
            hash = (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
        // A separator, so ("ab", "c") and ("a", "bc") differ.
        hash = (hash ^ 0xff).wrapping_mul(0x0000_0100_0000_01b3);
    };
    feed(event.uuid.as_bytes());
    feed(event.event_type.as_bytes());
    feed(&event.published_ms().to_le_bytes());
    hash
}

/// Whether an event was new to a state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Application {
    /// First time: apply it.
    New,
    /// Already applied: change nothing, decide nothing.
    Repeat,
}

/// Identities of applied events with their event time, oldest first, within a window.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AppliedEvents {
    /// (published ms, identity), sorted.
    entries: VecDeque<(i64, u64)>,
}

impl AppliedEvents {
    /// Record the event with `identity` published at `at_ms`, unless it was applied already.
    /// Identities older than `window_ms` before the newest one are forgotten, and at most
    /// `max_entries` are kept (the oldest go first).
    pub fn apply(
        &mut self,
        at_ms: i64,
        identity: u64,
        window_ms: i64,
        max_entries: usize,
    ) -> Application {
        let entry = (at_ms, identity);
        let pos = self.entries.partition_point(|e| *e < entry);
        if self.entries.get(pos) == Some(&entry) {
            return Application::Repeat;
        }
        self.entries.insert(pos, entry);
        let newest = self.entries.back().map_or(at_ms, |e| e.0);
        while self
            .entries
            .front()
            .is_some_and(|e| e.0 < newest.saturating_sub(window_ms))
        {
            self.entries.pop_front();
        }
        while self.entries.len() > max_entries {
            self.entries.pop_front();
        }
        Application::New
    }

    /// Identities kept.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether none is kept.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Heap bytes held, for the state-size metric.
    pub fn approx_bytes(&self) -> usize {
        self.entries.capacity() * std::mem::size_of::<(i64, u64)>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::DEFAULT_MAX_EVENT_BYTES;

    const HOUR: i64 = 3_600_000;

    fn event(uuid: &str, event_type: &str, published: &str) -> OktaEvent {
        let json =
            serde_json::json!({"uuid": uuid, "eventType": event_type, "published": published});
        OktaEvent::decode(json.to_string().as_bytes(), DEFAULT_MAX_EVENT_BYTES).unwrap()
    }

    #[test]
    fn an_event_is_identified_by_uuid_type_and_time() {
        let a = event("u1", "user.session.start", "2026-03-02T09:00:00.000Z");
        assert_eq!(
            identity(&a),
            identity(&event("u1", "user.session.start", "2026-03-02T09:00:00Z")),
            "the same instant written differently is the same event"
        );
        assert_ne!(
            identity(&a),
            identity(&event("u1", "user.session.end", "2026-03-02T09:00:00Z"))
        );
        assert_ne!(
            identity(&a),
            identity(&event("u1", "user.session.start", "2026-03-02T09:00:01Z"))
        );
        assert_ne!(
            identity(&a),
            identity(&event("u2", "user.session.start", "2026-03-02T09:00:00Z"))
        );
    }

    #[test]
    fn a_repeat_is_recognised_in_any_order_within_the_window() {
        let mut applied = AppliedEvents::default();
        assert_eq!(applied.apply(5 * HOUR, 1, 24 * HOUR, 100), Application::New);
        assert_eq!(applied.apply(3 * HOUR, 2, 24 * HOUR, 100), Application::New);
        assert_eq!(applied.apply(5 * HOUR, 3, 24 * HOUR, 100), Application::New);
        assert_eq!(
            applied.apply(5 * HOUR, 1, 24 * HOUR, 100),
            Application::Repeat
        );
        assert_eq!(
            applied.apply(3 * HOUR, 2, 24 * HOUR, 100),
            Application::Repeat
        );
        assert_eq!(
            applied.apply(5 * HOUR, 3, 24 * HOUR, 100),
            Application::Repeat
        );
        assert_eq!(applied.len(), 3);
    }

    #[test]
    fn identities_leave_with_the_window_and_the_cap() {
        let mut applied = AppliedEvents::default();
        applied.apply(0, 1, 24 * HOUR, 100);
        applied.apply(25 * HOUR, 2, 24 * HOUR, 100);
        assert_eq!(applied.len(), 1, "the first is out of the window");
        assert_eq!(applied.apply(0, 1, 24 * HOUR, 100), Application::New);
        let mut capped = AppliedEvents::default();
        for i in 0..10 {
            capped.apply(i, i as u64, 24 * HOUR, 4);
        }
        assert_eq!(capped.len(), 4);
        assert_eq!(capped.apply(9, 9, 24 * HOUR, 4), Application::Repeat);
        assert_eq!(capped.apply(0, 0, 24 * HOUR, 4), Application::New);
    }
}
