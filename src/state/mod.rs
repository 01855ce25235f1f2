//! Per-user state in event time: sliding windows, distinct counts, baselines, the hour-of-day
//! profile, the last sign-in and the risk score — whatever `features.toml` declares.
//!
//! Users live in a bounded moka cache (capacity in users, idle expiry). This module does no I/O
//! and knows nothing of policies: it turns an event into the `input.state` the policies read.

pub mod applied;
pub mod features;
mod user;

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

pub use applied::{Application, AppliedEvents};
pub use features::{Features, FeaturesError, FEATURES_FILE};
pub use user::{haversine_km, rfc3339, StateView, UserState, ALLOWED_LATENESS_MS};

use serde_json::Value;

use crate::event::OktaEvent;

/// How much state to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateLimits {
    /// Users tracked at most; beyond it the least useful user's state is evicted.
    pub max_users: u64,
    /// A user with no event for this long (wall time) is forgotten.
    pub idle_ttl: Duration,
    /// An event seen again within this long (event time) of the newest applied one is recognised
    /// as a repeat; never shorter than the longest sliding window the features declare.
    pub dedup_window: Duration,
}

/// Identities of applied events kept per user at most (far above a working day's events).
pub const MAX_APPLIED_PER_USER: usize = 8192;
/// Identities of applied events without a user kept per store at most.
pub const MAX_APPLIED_UNATTRIBUTED: usize = 65_536;
/// The default repeat window: a day, which covers Okta's hook retries and a poller re-reading
/// pages after a restart with a wide margin.
pub const DEFAULT_DEDUP_WINDOW: Duration = Duration::from_secs(86_400);

impl Default for StateLimits {
    fn default() -> Self {
        StateLimits {
            max_users: 1_000_000,
            idle_ttl: Duration::from_secs(30 * 86_400),
            dedup_window: DEFAULT_DEDUP_WINDOW,
        }
    }
}

/// Every tracked user's state for one feature set. Clones share the same users.
#[derive(Clone)]
pub struct StateStore {
    features: Arc<Features>,
    users: moka::sync::Cache<String, Arc<Mutex<UserState>>>,
    /// Applied events that concern no user (they change no state, but must not decide twice).
    unattributed: Arc<Mutex<AppliedEvents>>,
    dedup_window_ms: i64,
}

impl StateStore {
    /// An empty store for `features`.
    pub fn new(features: Arc<Features>, limits: StateLimits) -> Self {
        let users = moka::sync::Cache::builder()
            .max_capacity(limits.max_users)
            .time_to_idle(limits.idle_ttl)
            .eviction_listener(|_user, _state, cause| {
                if cause.was_evicted() {
                    let cause = match cause {
                        moka::notification::RemovalCause::Size => "size",
                        _ => "expired",
                    };
                    crate::metrics::metrics()
                        .state_evictions
                        .with_label_values(&[cause])
                        .inc();
                }
            })
            .build();
        let dedup_window_ms = i64::try_from(
            limits
                .dedup_window
                .max(Duration::from_secs(features.longest_window_secs()))
                .as_millis(),
        )
        .unwrap_or(i64::MAX);
        StateStore {
            features,
            users,
            unattributed: Arc::default(),
            dedup_window_ms,
        }
    }

    /// The feature set this store computes.
    pub fn features(&self) -> &Arc<Features> {
        &self.features
    }

    /// Add `event` to the state of `user_id` and return the state the policies see; `None` when
    /// the event was applied before (a repeat changes nothing and must decide nothing).
    pub fn observe(&self, user_id: Option<&str>, event: &OktaEvent) -> Option<StateView> {
        self.apply(user_id, event, true)
            .map(|view| view.unwrap_or_else(|| StateView::empty(&self.features)))
    }

    /// Add `event` to the state of `user_id` when no policy will read the result; `false` when
    /// it was a repeat.
    pub fn record(&self, user_id: Option<&str>, event: &OktaEvent) -> bool {
        self.apply(user_id, event, false).is_some()
    }

    /// The repeat check, then the update: `None` for a repeat, else the view when asked for
    /// (an event without a user has no state, so no view).
    fn apply(
        &self,
        user_id: Option<&str>,
        event: &OktaEvent,
        with_view: bool,
    ) -> Option<Option<StateView>> {
        let at = event.published_ms();
        let identity = applied::identity(event);
        let window = self.dedup_window_ms;
        let Some(id) = user_id else {
            let mut applied = self
                .unattributed
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            return match applied.apply(at, identity, window, MAX_APPLIED_UNATTRIBUTED) {
                Application::New => Some(None),
                Application::Repeat => None,
            };
        };
        self.with_user(id, |state| {
            match state
                .applied
                .apply(at, identity, window, MAX_APPLIED_PER_USER)
            {
                Application::New => Some(state.observe(&self.features, event, with_view)),
                Application::Repeat => None,
            }
        })
    }

    /// Remember a finding's risk weight for the user's later events.
    pub fn record_signal(&self, user_id: &str, rule: &str, weight: u32, at_ms: i64) {
        self.with_user(user_id, |state| state.record_signal(rule, weight, at_ms));
    }

    /// Tracked users (approximate while the cache is busy).
    pub fn user_count(&self) -> u64 {
        self.users.run_pending_tasks();
        self.users.entry_count()
    }

    /// Approximate bytes held by all users' state (walks every user: for metrics, not per event).
    pub fn approx_bytes(&self) -> usize {
        self.users
            .iter()
            .map(|(key, state)| {
                key.capacity()
                    + state
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .approx_bytes()
            })
            .sum()
    }

    /// A copy of one user's state as JSON, for a snapshot (`None` if the user is not tracked).
    pub fn snapshot(&self, user_id: &str) -> Option<Value> {
        let state = self.users.get(user_id)?;
        let guard = state.lock().unwrap_or_else(PoisonError::into_inner);
        serde_json::to_value(&*guard).ok()
    }

    /// Replace one user's state with a snapshot taken by [`StateStore::snapshot`].
    pub fn restore(&self, user_id: &str, snapshot: Value) -> Result<(), String> {
        let state = UserState::from_snapshot(snapshot, &self.features)?;
        self.users
            .insert(user_id.to_owned(), Arc::new(Mutex::new(state)));
        Ok(())
    }

    /// Forget every user (a partition was revoked, or the features changed).
    pub fn clear(&self) {
        self.users.invalidate_all();
        *self
            .unattributed
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = AppliedEvents::default();
    }

    fn with_user<T>(&self, user_id: &str, f: impl FnOnce(&mut UserState) -> T) -> T {
        let state = self.users.get_with_by_ref(user_id, || {
            Arc::new(Mutex::new(UserState::new(&self.features)))
        });
        // A panic while holding the lock cannot leave the state half-updated in a way that
        // matters more than losing the user, so keep going with what is there.
        let mut guard = state.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut guard)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::DEFAULT_MAX_EVENT_BYTES;
    use std::path::Path;

    const FEATURES: &str = r#"
        [[counter]]
        name = "fails"
        window_secs = 600
        match = { eventType = ["user.session.start"], "outcome.result" = ["FAILURE"] }
        [[distinct]]
        name = "ips"
        window_secs = 3600
        field = "client.ipAddress"
        [[baseline]]
        name = "country"
        field = "client.geographicalContext.country"
        match = { "outcome.result" = ["SUCCESS"] }
        learning_secs = 86400
        ttl_secs = 864000
        max_values = 2
        [hours]
        match = { "outcome.result" = ["SUCCESS"] }
        learning_events = 2
        [last_signin]
        match = { "outcome.result" = ["SUCCESS"] }
        [risk]
        window_secs = 3600
    "#;

    /// Test events are all distinct: observe and unwrap the view.
    trait ObserveNew {
        fn observe_new(&self, user: Option<&str>, event: &OktaEvent) -> StateView;
    }

    impl ObserveNew for StateStore {
        fn observe_new(&self, user: Option<&str>, event: &OktaEvent) -> StateView {
            self.observe(user, event).expect("a new event")
        }
    }

    fn store() -> StateStore {
        let features = Features::parse(FEATURES, Path::new("features.toml")).unwrap();
        StateStore::new(Arc::new(features), StateLimits::default())
    }

    fn event(at: &str, result: &str, ip: &str, country: &str, lat: f64, lon: f64) -> OktaEvent {
        let json = serde_json::json!({
            "uuid": format!("{at}{ip}"), "published": at, "eventType": "user.session.start",
            "outcome": {"result": result},
            "client": {"ipAddress": ip, "geographicalContext": {"country": country, "geolocation": {"lat": lat, "lon": lon}}}
        });
        OktaEvent::decode(json.to_string().as_bytes(), DEFAULT_MAX_EVENT_BYTES).unwrap()
    }

    const PARIS: (f64, f64) = (48.8566, 2.3522);
    const NEW_YORK: (f64, f64) = (40.7128, -74.0060);

    #[test]
    fn counters_slide_in_event_time_and_include_the_current_event() {
        let s = store();
        let fail = |at| event(at, "FAILURE", "1.1.1.1", "France", PARIS.0, PARIS.1);
        assert_eq!(
            s.observe_new(Some("u"), &fail("2026-03-02T09:00:00Z"))
                .counters["fails"],
            1
        );
        assert_eq!(
            s.observe_new(Some("u"), &fail("2026-03-02T09:05:00Z"))
                .counters["fails"],
            2
        );
        // Exactly one window after the first failure, the first one has left the window.
        assert_eq!(
            s.observe_new(Some("u"), &fail("2026-03-02T09:10:00Z"))
                .counters["fails"],
            2
        );
        assert_eq!(
            s.observe_new(Some("u"), &fail("2026-03-02T09:10:01Z"))
                .counters["fails"],
            3
        );
        // A late (out-of-order) event counts in its own window, not in the newest one.
        assert_eq!(
            s.observe_new(Some("u"), &fail("2026-03-02T09:00:30Z"))
                .counters["fails"],
            2
        );
        // Other users are independent.
        assert_eq!(
            s.observe_new(Some("v"), &fail("2026-03-02T09:10:01Z"))
                .counters["fails"],
            1
        );
        assert_eq!(
            s.observe_new(None, &fail("2026-03-02T09:10:01Z")).counters["fails"],
            0
        );
    }

    #[test]
    fn distinct_counts_values_not_events() {
        let s = store();
        let ok = |at, ip| event(at, "SUCCESS", ip, "France", PARIS.0, PARIS.1);
        s.observe_new(Some("u"), &ok("2026-03-02T09:00:00Z", "1.1.1.1"));
        s.observe_new(Some("u"), &ok("2026-03-02T09:01:00Z", "1.1.1.1"));
        assert_eq!(
            s.observe_new(Some("u"), &ok("2026-03-02T09:02:00Z", "2.2.2.2"))
                .distinct["ips"],
            2
        );
        assert_eq!(
            s.observe_new(Some("u"), &ok("2026-03-02T10:01:30Z", "3.3.3.3"))
                .distinct["ips"],
            2
        );
    }

    #[test]
    fn baselines_learn_then_flag_new_values_and_forget_after_ttl() {
        let s = store();
        let ok = |at, country| event(at, "SUCCESS", "1.1.1.1", country, PARIS.0, PARIS.1);
        let first = s
            .observe_new(Some("u"), &ok("2026-03-01T09:00:00Z", "France"))
            .baselines["country"]
            .clone();
        assert!(first.new && first.learning && first.seen_count == 1);
        let again = s
            .observe_new(Some("u"), &ok("2026-03-03T09:00:00Z", "France"))
            .baselines["country"]
            .clone();
        assert!(!again.new && !again.learning && again.seen_count == 2);
        assert_eq!(again.first_seen, "2026-03-01T09:00:00.000Z");
        let spain = s
            .observe_new(Some("u"), &ok("2026-03-03T10:00:00Z", "Spain"))
            .baselines["country"]
            .clone();
        assert!(spain.new && !spain.learning && spain.known_values == 2);
        // max_values = 2: a third value evicts the least recently seen (France).
        s.observe_new(Some("u"), &ok("2026-03-03T11:00:00Z", "Italy"));
        assert!(
            s.observe_new(Some("u"), &ok("2026-03-03T12:00:00Z", "France"))
                .baselines["country"]
                .new
        );
        // A failure does not feed this baseline.
        assert!(!s
            .observe_new(
                Some("u"),
                &event("2026-03-03T12:00:00Z", "FAILURE", "1", "Chad", 0.0, 0.0)
            )
            .baselines
            .contains_key("country"));
        // After the TTL everything is forgotten and the baseline learns again.
        let later = s
            .observe_new(Some("u"), &ok("2026-04-30T09:00:00Z", "France"))
            .baselines["country"]
            .clone();
        assert!(later.new && later.learning && later.known_values == 1);
    }

    #[test]
    fn travel_speed_between_successful_sign_ins() {
        let s = store();
        assert!(s
            .observe_new(
                Some("u"),
                &event(
                    "2026-03-02T09:00:00Z",
                    "SUCCESS",
                    "1",
                    "France",
                    PARIS.0,
                    PARIS.1
                )
            )
            .last_signin
            .is_none());
        let view = s.observe_new(
            Some("u"),
            &event(
                "2026-03-02T10:00:00Z",
                "SUCCESS",
                "2",
                "United States",
                NEW_YORK.0,
                NEW_YORK.1,
            ),
        );
        let travel = view.last_signin.unwrap();
        assert_eq!(travel.previous.country.as_deref(), Some("France"));
        assert_eq!(travel.elapsed_secs, 3600);
        let km = travel.distance_km.unwrap();
        assert!(
            (5830.0..5845.0).contains(&km),
            "Paris–New York is about 5,837 km, got {km}"
        );
        assert_eq!(travel.speed_kmh, Some(km));
        let view = s.observe_new(
            Some("u"),
            &event(
                "2026-03-02T10:00:10Z",
                "SUCCESS",
                "2",
                "United States",
                NEW_YORK.0,
                NEW_YORK.1,
            ),
        );
        assert_eq!(view.last_signin.unwrap().speed_kmh, Some(0.0));
    }

    #[test]
    fn hours_profile_learns_and_counts_the_current_event() {
        let s = store();
        let ok = |at| event(at, "SUCCESS", "1", "France", PARIS.0, PARIS.1);
        assert!(
            s.observe_new(Some("u"), &ok("2026-03-02T09:00:00Z"))
                .hours
                .unwrap()
                .learning
        );
        assert!(
            s.observe_new(Some("u"), &ok("2026-03-03T09:00:00Z"))
                .hours
                .unwrap()
                .learning
        );
        let h = s
            .observe_new(Some("u"), &ok("2026-03-04T03:00:00Z"))
            .hours
            .unwrap();
        assert!(!h.learning);
        assert_eq!((h.hour, h.hour_count, h.total, h.profile[9]), (3, 1, 3, 2));
    }

    #[test]
    fn risk_signals_expire_with_the_window() {
        let s = store();
        let ok = |at| event(at, "SUCCESS", "1", "France", PARIS.0, PARIS.1);
        let at = ok("2026-03-02T09:00:00Z").published_ms();
        s.record_signal("u", "failed_signins", 30, at);
        s.record_signal("u", "new_country", 80, at + 1000);
        let view = s.observe_new(Some("u"), &ok("2026-03-02T09:30:00Z"));
        assert_eq!(view.risk.score, 100, "capped at 100");
        assert_eq!(view.risk.signals.len(), 2);
        assert_eq!(
            s.observe_new(Some("u"), &ok("2026-03-02T10:00:00.500Z"))
                .risk
                .score,
            80
        );
    }

    #[test]
    fn capacity_bounds_the_number_of_users() {
        let features = Arc::new(Features::parse(FEATURES, Path::new("f")).unwrap());
        let s = StateStore::new(
            features,
            StateLimits {
                max_users: 10,
                ..StateLimits::default()
            },
        );
        let e = event(
            "2026-03-02T09:00:00Z",
            "SUCCESS",
            "1",
            "France",
            PARIS.0,
            PARIS.1,
        );
        let evictions = || {
            crate::metrics::metrics()
                .state_evictions
                .with_label_values(&["size"])
                .get()
        };
        let before = evictions();
        for i in 0..1000 {
            s.observe_new(Some(&format!("u{i}")), &e);
        }
        assert!(s.user_count() <= 10, "{}", s.user_count());
        assert!(s.approx_bytes() > 0);
        // Counted in the metric (other tests may add to it, never take away).
        assert!(evictions() - before >= 990, "{}", evictions() - before);
    }

    #[test]
    fn a_repeated_event_changes_nothing_even_after_a_snapshot() {
        let s = store();
        let fail = |at| event(at, "FAILURE", "1.1.1.1", "France", PARIS.0, PARIS.1);
        let first = fail("2026-03-02T09:00:00Z");
        assert_eq!(s.observe_new(Some("u"), &first).counters["fails"], 1);
        assert_eq!(
            s.observe_new(Some("u"), &fail("2026-03-02T09:01:00Z"))
                .counters["fails"],
            2
        );
        assert!(s.observe(Some("u"), &first).is_none(), "a repeat");
        assert!(!s.record(Some("u"), &first), "a repeat, even unread");
        // Another user's event with the same uuid is that user's first.
        assert!(s.observe(Some("v"), &first).is_some());
        // Events without a user decide only once too.
        assert!(s.observe(None, &first).is_some());
        assert!(s.observe(None, &first).is_none());
        // The identities travel with the snapshot: a restored state still knows the event.
        let restored = store();
        restored.restore("u", s.snapshot("u").unwrap()).unwrap();
        assert!(restored.observe(Some("u"), &first).is_none());
        assert_eq!(
            restored
                .observe_new(Some("u"), &fail("2026-03-02T09:02:00Z"))
                .counters["fails"],
            3
        );
    }

    #[test]
    fn a_snapshot_written_before_repeats_were_tracked_still_loads() {
        let s = store();
        s.observe_new(Some("u"), &ok_at("2026-03-02T09:00:00Z"));
        let mut old = s.snapshot("u").unwrap();
        old.as_object_mut().unwrap().remove("applied");
        let restored = store();
        restored.restore("u", old).unwrap();
        assert!(restored
            .observe(Some("u"), &ok_at("2026-03-02T09:00:00Z"))
            .is_some());
    }

    fn ok_at(at: &str) -> OktaEvent {
        event(at, "SUCCESS", "1.1.1.1", "France", PARIS.0, PARIS.1)
    }

    #[test]
    fn the_repeat_window_is_at_least_the_longest_feature_window() {
        let features = Arc::new(Features::parse(FEATURES, Path::new("f")).unwrap());
        let s = StateStore::new(
            features.clone(),
            StateLimits {
                dedup_window: Duration::from_secs(1),
                ..StateLimits::default()
            },
        );
        assert_eq!(
            s.dedup_window_ms,
            features.longest_window_secs() as i64 * 1000
        );
        let first = ok_at("2026-03-02T09:00:00Z");
        s.observe_new(Some("u"), &first);
        s.observe_new(Some("u"), &ok_at("2026-03-02T09:59:00Z"));
        assert!(
            s.observe(Some("u"), &first).is_none(),
            "within the hour window"
        );
    }
}
