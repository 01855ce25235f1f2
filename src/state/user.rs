//! One user's state and the arithmetic on it, all in event time (milliseconds since the epoch).
//!
//! Every structure here is bounded: windows hold at most [`MAX_WINDOW_ENTRIES`] entries, baselines
//! at most `max_values` values, the risk window at most [`MAX_RISK_SIGNALS`] signals.

use std::collections::{BTreeMap, VecDeque};

use chrono::{DateTime, SecondsFormat, Timelike, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::applied::AppliedEvents;
use super::features::{BaselineSpec, Features};
use crate::event::OktaEvent;

/// A window never holds more entries than this; counts saturate here (far above any threshold).
pub const MAX_WINDOW_ENTRIES: usize = 1024;
/// The risk window keeps at most this many signals.
pub const MAX_RISK_SIGNALS: usize = 256;
/// Travel speed is computed over at least this long, so two sign-ins in the same second from
/// slightly different geolocations do not read as supersonic.
const MIN_TRAVEL_SECS: f64 = 60.0;
/// Windows keep entries this much longer than their length, so an event that arrives late (Okta
/// delivers hooks and polled pages out of order by seconds to minutes) still counts its neighbours.
pub const ALLOWED_LATENESS_MS: i64 = 10 * 60 * 1000;

/// The per-user state of every declared feature. It serializes (to JSON) for the detect stage's
/// snapshots; a snapshot is only meaningful for the feature set that wrote it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UserState {
    counters: Vec<Window>,
    distinct: Vec<Window>,
    baselines: Vec<Baseline>,
    hours: [u32; 24],
    last_signin: Option<Place>,
    risk: VecDeque<Signal>,
    /// Events already applied, so a repeat changes nothing (older snapshots have none).
    #[serde(default)]
    pub(super) applied: AppliedEvents,
}

/// What the policies see of a user's state for one event (`input.state`).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StateView {
    /// Counter name → matching events in the window.
    pub counters: BTreeMap<String, u64>,
    /// Distinct-count name → distinct values in the window.
    pub distinct: BTreeMap<String, u64>,
    /// Baseline name → what the baseline says of this event's value.
    pub baselines: BTreeMap<String, BaselineView>,
    /// The hour-of-day profile, when the event feeds it.
    pub hours: Option<HoursView>,
    /// The previous sign-in and the travel to this one, when this is a sign-in after another.
    pub last_signin: Option<TravelView>,
    /// The risk score from earlier findings in the window.
    pub risk: RiskView,
}

/// A baseline's verdict on the current event's value.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct BaselineView {
    /// The value of the field in this event.
    pub value: String,
    /// First time this value was seen (this event when `new`).
    pub new: bool,
    /// The baseline is younger than its learning period.
    pub learning: bool,
    /// When the value was first seen.
    pub first_seen: String,
    /// When the value was last seen (this event).
    pub last_seen: String,
    /// How often the value was seen, this event included.
    pub seen_count: u32,
    /// How many distinct values the baseline holds.
    pub known_values: usize,
    /// When the baseline started.
    pub tracked_since: String,
}

/// The hour-of-day profile with this event counted.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct HoursView {
    /// UTC hour of this event.
    pub hour: u32,
    /// Events in this hour, this one included.
    pub hour_count: u32,
    /// Events in all hours, this one included.
    pub total: u32,
    /// Fewer earlier events than the learning threshold.
    pub learning: bool,
    /// Counts per UTC hour.
    pub profile: [u32; 24],
}

/// A successful sign-in's place.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Place {
    /// When it happened.
    pub published: String,
    #[serde(skip)]
    at_ms: i64,
    /// Client IP address.
    pub ip: Option<String>,
    /// Country name.
    pub country: Option<String>,
    /// City name.
    pub city: Option<String>,
    /// Latitude.
    pub lat: Option<f64>,
    /// Longitude.
    pub lon: Option<f64>,
    /// Autonomous system number.
    pub asn: Option<Value>,
}

/// The previous sign-in and what it takes to get from there to here.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TravelView {
    /// The previous successful sign-in.
    pub previous: Place,
    /// Great-circle distance in km, when both places have coordinates.
    pub distance_km: Option<f64>,
    /// Seconds since the previous sign-in.
    pub elapsed_secs: i64,
    /// Implied speed in km/h, when the distance is known.
    pub speed_kmh: Option<f64>,
}

/// The risk score from earlier findings.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RiskView {
    /// Sum of the weights in the window, capped at 100.
    pub score: u32,
    /// The window length.
    pub window_secs: u64,
    /// The findings that make up the score.
    pub signals: Vec<SignalView>,
}

/// One earlier finding in the risk window.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SignalView {
    /// Rule that found it.
    pub rule: String,
    /// Its risk weight.
    pub weight: u32,
    /// When.
    pub published: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Signal {
    at_ms: i64,
    rule: String,
    weight: u32,
}

/// Timestamps (with an optional value hash) in event-time order.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Window {
    entries: VecDeque<(i64, u64)>,
}

impl Window {
    /// Insert in time order (events can arrive slightly out of order) and drop what fell out.
    fn add(&mut self, at_ms: i64, hash: u64, window_ms: i64) {
        let pos = self.entries.partition_point(|(t, _)| *t <= at_ms);
        self.entries.insert(pos, (at_ms, hash));
        let newest = self.entries.back().map_or(at_ms, |(t, _)| *t);
        while self
            .entries
            .front()
            .is_some_and(|(t, _)| *t <= newest - window_ms - ALLOWED_LATENESS_MS)
        {
            self.entries.pop_front();
        }
        if self.entries.len() > MAX_WINDOW_ENTRIES {
            self.entries.pop_front();
        }
    }

    /// Entries in `(now - window, now]`.
    fn range(&self, now_ms: i64, window_ms: i64) -> impl Iterator<Item = &(i64, u64)> {
        let start = self
            .entries
            .partition_point(|(t, _)| *t <= now_ms - window_ms);
        let end = self.entries.partition_point(|(t, _)| *t <= now_ms);
        self.entries.range(start..end)
    }

    fn count(&self, now_ms: i64, window_ms: i64) -> u64 {
        self.range(now_ms, window_ms).count() as u64
    }

    fn distinct(&self, now_ms: i64, window_ms: i64) -> u64 {
        let mut hashes: Vec<u64> = self.range(now_ms, window_ms).map(|(_, h)| *h).collect();
        hashes.sort_unstable();
        hashes.dedup();
        hashes.len() as u64
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Baseline {
    since_ms: Option<i64>,
    values: Vec<SeenValue>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct SeenValue {
    value: String,
    first_ms: i64,
    last_ms: i64,
    count: u32,
}

impl Baseline {
    fn observe(&mut self, spec: &BaselineSpec, value: String, at_ms: i64) -> BaselineView {
        let ttl_ms = secs_to_ms(spec.ttl_secs);
        self.values.retain(|v| v.last_ms > at_ms - ttl_ms);
        if self.values.is_empty() {
            // Everything expired (or nothing yet): a baseline that knows nothing learns again.
            self.since_ms = None;
        }
        let since = *self.since_ms.get_or_insert(at_ms);
        let (index, new) = match self.values.iter().position(|v| v.value == value) {
            Some(i) => {
                let seen = &mut self.values[i];
                seen.last_ms = seen.last_ms.max(at_ms);
                seen.count = seen.count.saturating_add(1);
                (i, false)
            }
            None => {
                if self.values.len() >= spec.max_values {
                    if let Some(oldest) =
                        (0..self.values.len()).min_by_key(|&i| self.values[i].last_ms)
                    {
                        self.values.swap_remove(oldest);
                    }
                }
                self.values.push(SeenValue {
                    value,
                    first_ms: at_ms,
                    last_ms: at_ms,
                    count: 1,
                });
                (self.values.len() - 1, true)
            }
        };
        let seen = &self.values[index];
        BaselineView {
            value: seen.value.clone(),
            new,
            learning: at_ms - since < secs_to_ms(spec.learning_secs),
            first_seen: rfc3339(seen.first_ms),
            last_seen: rfc3339(seen.last_ms),
            seen_count: seen.count,
            known_values: self.values.len(),
            tracked_since: rfc3339(since),
        }
    }

    fn approx_bytes(&self) -> usize {
        self.values.capacity() * std::mem::size_of::<SeenValue>()
            + self
                .values
                .iter()
                .map(|v| v.value.capacity())
                .sum::<usize>()
    }
}

impl UserState {
    /// An empty state for the declared features.
    pub fn new(features: &Features) -> Self {
        UserState {
            counters: vec![Window::default(); features.counters.len()],
            distinct: vec![Window::default(); features.distinct.len()],
            baselines: vec![Baseline::default(); features.baselines.len()],
            hours: [0; 24],
            last_signin: None,
            risk: VecDeque::new(),
            applied: AppliedEvents::default(),
        }
    }

    /// Add the event to every feature it matches and, when `with_view`, return the state as the
    /// policies see it (events no rule reads skip building it).
    pub fn observe(
        &mut self,
        features: &Features,
        event: &OktaEvent,
        with_view: bool,
    ) -> Option<StateView> {
        let now = event.published_ms();
        self.expire_risk(features, now);
        let mut view = with_view.then(|| self.view_without_event(features, now));
        for (spec, window) in features.counters.iter().zip(&mut self.counters) {
            let window_ms = secs_to_ms(spec.window_secs);
            if spec.filter.matches(event) {
                window.add(now, 0, window_ms);
            }
            if let Some(view) = view.as_mut() {
                view.counters
                    .insert(spec.name.clone(), window.count(now, window_ms));
            }
        }
        for (spec, window) in features.distinct.iter().zip(&mut self.distinct) {
            let window_ms = secs_to_ms(spec.window_secs);
            if spec.filter.matches(event) {
                if let Some(value) = event.field_text(&spec.field) {
                    window.add(now, stable_hash(&value), window_ms);
                }
            }
            if let Some(view) = view.as_mut() {
                view.distinct
                    .insert(spec.name.clone(), window.distinct(now, window_ms));
            }
        }
        for (spec, baseline) in features.baselines.iter().zip(&mut self.baselines) {
            if !spec.filter.matches(event) {
                continue;
            }
            if let Some(value) = event.field_text(&spec.field) {
                let seen = baseline.observe(spec, value, now);
                if let Some(view) = view.as_mut() {
                    view.baselines.insert(spec.name.clone(), seen);
                }
            }
        }
        if let Some(spec) = features.hours.as_ref().filter(|s| s.filter.matches(event)) {
            let hour = event.published.hour();
            self.hours[hour as usize] = self.hours[hour as usize].saturating_add(1);
            let total: u32 = self.hours.iter().sum();
            if let Some(view) = view.as_mut() {
                view.hours = Some(HoursView {
                    hour,
                    hour_count: self.hours[hour as usize],
                    total,
                    learning: total.saturating_sub(1) < spec.learning_events,
                    profile: self.hours,
                });
            }
        }
        if let Some(spec) = &features.last_signin {
            if spec.filter.matches(event) {
                let here = Place::of(event);
                let previous = self.last_signin.replace(here.clone());
                if let Some(view) = view.as_mut() {
                    view.last_signin = previous.map(|previous| travel(previous, &here));
                }
            }
        }
        view
    }

    /// Drop risk signals that left the window, so the list stays bounded without any reader.
    fn expire_risk(&mut self, features: &Features, now: i64) {
        let window_ms = secs_to_ms(features.risk.window_secs);
        while self
            .risk
            .front()
            .is_some_and(|s| s.at_ms <= now - window_ms - ALLOWED_LATENESS_MS)
        {
            self.risk.pop_front();
        }
    }

    /// Counters and the risk score as of `now`, before the current event is added.
    fn view_without_event(&mut self, features: &Features, now: i64) -> StateView {
        let window_ms = secs_to_ms(features.risk.window_secs);
        while self
            .risk
            .front()
            .is_some_and(|s| s.at_ms <= now - window_ms)
        {
            self.risk.pop_front();
        }
        let live: Vec<&Signal> = self
            .risk
            .iter()
            .filter(|s| s.at_ms > now - window_ms && s.at_ms <= now)
            .collect();
        let score = live.iter().map(|s| s.weight).sum::<u32>().min(100);
        StateView {
            counters: BTreeMap::new(),
            distinct: BTreeMap::new(),
            baselines: BTreeMap::new(),
            hours: None,
            last_signin: None,
            risk: RiskView {
                score,
                window_secs: features.risk.window_secs,
                signals: live
                    .into_iter()
                    .map(|s| SignalView {
                        rule: s.rule.clone(),
                        weight: s.weight,
                        published: rfc3339(s.at_ms),
                    })
                    .collect(),
            },
        }
    }

    /// Remember the findings of an event for the risk score of later events.
    pub fn record_signal(&mut self, rule: &str, weight: u32, at_ms: i64) {
        if weight == 0 {
            return;
        }
        let pos = self.risk.partition_point(|s| s.at_ms <= at_ms);
        self.risk.insert(
            pos,
            Signal {
                at_ms,
                rule: rule.to_owned(),
                weight,
            },
        );
        if self.risk.len() > MAX_RISK_SIGNALS {
            self.risk.pop_front();
        }
    }

    /// Rebuild a state from its serialized form (see [`UserState`]), refusing one written for a
    /// different feature set.
    pub fn from_snapshot(value: Value, features: &Features) -> Result<Self, String> {
        let mut state: UserState = serde_json::from_value(value).map_err(|e| e.to_string())?;
        let shape = (
            state.counters.len(),
            state.distinct.len(),
            state.baselines.len(),
        );
        let declared = (
            features.counters.len(),
            features.distinct.len(),
            features.baselines.len(),
        );
        if shape != declared {
            return Err(format!(
                "snapshot has (counters, distinct, baselines) = {shape:?}, features.toml declares {declared:?}"
            ));
        }
        if let Some(place) = &mut state.last_signin {
            // The instant is not serialized separately: `published` carries it to the millisecond.
            place.at_ms = DateTime::parse_from_rfc3339(&place.published)
                .map_err(|e| format!("last_signin.published: {e}"))?
                .timestamp_millis();
        }
        Ok(state)
    }

    /// Heap and inline bytes this state holds, for the state-size metric.
    pub fn approx_bytes(&self) -> usize {
        let window = |w: &Window| w.entries.capacity() * std::mem::size_of::<(i64, u64)>();
        std::mem::size_of::<Self>()
            + self.counters.iter().map(window).sum::<usize>()
            + self.distinct.iter().map(window).sum::<usize>()
            + self
                .baselines
                .iter()
                .map(Baseline::approx_bytes)
                .sum::<usize>()
            + self.risk.capacity() * std::mem::size_of::<Signal>()
            + self.applied.approx_bytes()
    }
}

impl StateView {
    /// The state of an event that concerns no user: every counter zero, nothing else.
    pub fn empty(features: &Features) -> Self {
        let zeros = |names: Vec<&String>| names.into_iter().map(|n| (n.clone(), 0)).collect();
        StateView {
            counters: zeros(features.counters.iter().map(|c| &c.name).collect()),
            distinct: zeros(features.distinct.iter().map(|c| &c.name).collect()),
            baselines: BTreeMap::new(),
            hours: None,
            last_signin: None,
            risk: RiskView {
                score: 0,
                window_secs: features.risk.window_secs,
                signals: Vec::new(),
            },
        }
    }
}

impl Place {
    fn of(event: &OktaEvent) -> Self {
        let geo = |k: &str| event.field_text(&format!("client.geographicalContext.{k}"));
        let coordinate = |k: &str| {
            event
                .field(&format!("client.geographicalContext.geolocation.{k}"))
                .and_then(Value::as_f64)
        };
        Place {
            published: rfc3339(event.published_ms()),
            at_ms: event.published_ms(),
            ip: event.field_text("client.ipAddress"),
            country: geo("country"),
            city: geo("city"),
            lat: coordinate("lat"),
            lon: coordinate("lon"),
            asn: event.field("securityContext.asNumber").cloned(),
        }
    }
}

fn travel(previous: Place, here: &Place) -> TravelView {
    let elapsed_ms = here.at_ms - previous.at_ms;
    let distance_km = match (previous.lat, previous.lon, here.lat, here.lon) {
        (Some(a), Some(b), Some(c), Some(d)) => Some(round2(haversine_km(a, b, c, d))),
        _ => None,
    };
    let hours = (elapsed_ms as f64 / 1000.0).max(MIN_TRAVEL_SECS) / 3600.0;
    TravelView {
        previous,
        distance_km,
        elapsed_secs: elapsed_ms / 1000,
        speed_kmh: distance_km.map(|d| round2(d / hours)),
    }
}

/// Great-circle distance on a spherical Earth (mean radius), good to ~0.5 %.
pub fn haversine_km(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    const EARTH_RADIUS_KM: f64 = 6371.0088;
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = (lat2 - lat1).to_radians();
    let dl = (lon2 - lon1).to_radians();
    let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_KM * a.sqrt().min(1.0).asin()
}

/// Two decimals keep the decisions' evidence readable and byte-stable.
fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn secs_to_ms(secs: u64) -> i64 {
    i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX / 4)
}

/// 64-bit FNV-1a: fixed by its definition, so the hashes in a snapshot written by one build still
/// match the values another build (or another Rust release) hashes after a restart.
fn stable_hash(value: &str) -> u64 {
    value.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Milliseconds since the epoch as an RFC 3339 UTC timestamp.
pub fn rfc3339(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}
