//! Prometheus metrics of every stage, in one registry per process, served on `/metrics`.
//!
//! Names follow Prometheus conventions: `vigil_` prefix, base units, `_total` for counters.
//! Labels are bounded: event types, rules, action types, outcomes and reasons come from fixed
//! or policy-defined vocabularies, never from user ids.

use std::sync::LazyLock;

use prometheus::core::Collector;
use prometheus::proto::MetricType;
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

/// Every metric Vigil exports.
pub struct Metrics {
    registry: Registry,
    /// Every registered metric, to list names even of those without samples yet.
    collectors: Vec<Box<dyn Collector>>,
    /// Events consumed by detect, by `event_type` and `outcome` (the event's outcome.result).
    pub events: IntCounterVec,
    /// Records dead-lettered, by `stage` and `reason`.
    pub dead_lettered: IntCounterVec,
    /// Events detect ignored as repeats of an event already applied (same uuid, eventType,
    /// published).
    pub repeated_events: IntCounter,
    /// Policy evaluation time per evaluated event.
    pub evaluation_seconds: Histogram,
    /// Decisions, by `rule` and `severity`.
    pub decisions: IntCounterVec,
    /// Rule runtime errors, by `rule`.
    pub rule_errors: IntCounterVec,
    /// Users tracked in detect's state (all assigned partitions).
    pub state_users: IntGauge,
    /// Approximate bytes of detect's state (all assigned partitions).
    pub state_bytes: IntGauge,
    /// Users' state evicted, by `cause` (size, expired).
    pub state_evictions: IntCounterVec,
    /// Records behind the end of each assigned partition, by `group`, `topic`, `partition`.
    pub consumer_lag: IntGaugeVec,
    /// Policy reloads, by `result` (loaded, unchanged, refused).
    pub policy_reloads: IntCounterVec,
    /// Actions finished, by `type` and `outcome` (the ledger status).
    pub actions: IntCounterVec,
    /// Time from an action's due time to its outcome, by `type`.
    pub action_seconds: HistogramVec,
    /// Vendor calls retried, by `type`.
    pub retries: IntCounterVec,
    /// Delayed actions waiting for their due time.
    pub pending_actions: IntGauge,
    /// 1 while the blast-radius circuit holds destructive actions.
    pub circuit_open: IntGauge,
    /// Overrides in force.
    pub overrides_active: IntGauge,
    /// Event Hook requests answered, by `result` (stored, empty, verified, unauthorized,
    /// malformed, too_large, unavailable).
    pub hook_deliveries: IntCounterVec,
    /// Events brought in by ingest, by `source` (hook, poll, rekey).
    pub ingested_events: IntCounterVec,
    /// System Log pages fetched.
    pub poll_pages: IntCounter,
    /// System Log poller failures (each retried), by `reason` (see `ingest::poll::Reason`).
    pub poll_errors: IntCounterVec,
    /// Waits for a vendor's rate-limit reset, by `vendor`.
    pub rate_limit_waits: IntCounterVec,
    /// Always 1; labels `version` and `policy_revision`.
    pub build_info: IntGaugeVec,
}

/// Registers metrics in a registry and remembers them.
#[derive(Default)]
struct Registrar {
    registry: Registry,
    collectors: Vec<Box<dyn Collector>>,
}

impl Registrar {
    fn add<C: Collector + Clone + 'static>(&mut self, metric: C) -> C {
        self.registry
            .register(Box::new(metric.clone()))
            .expect("a unique metric");
        self.collectors.push(Box::new(metric.clone()));
        metric
    }

    fn counter(&mut self, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
        self.add(IntCounterVec::new(Opts::new(name, help), labels).expect("a valid metric"))
    }

    fn gauge(&mut self, name: &str, help: &str) -> IntGauge {
        self.add(IntGauge::new(name, help).expect("a valid metric"))
    }
}

impl Metrics {
    fn new() -> Self {
        let mut r = Registrar::default();
        let evaluation_seconds = r.add(
            Histogram::with_opts(
                HistogramOpts::new(
                    "vigil_policy_evaluation_seconds",
                    "Policy evaluation time per evaluated event.",
                )
                .buckets(vec![
                    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.1,
                ]),
            )
            .expect("a valid metric"),
        );
        let action_seconds = r.add(
            HistogramVec::new(
                HistogramOpts::new(
                    "vigil_action_duration_seconds",
                    "Time from an action's due time to its outcome.",
                )
                .buckets(vec![
                    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0,
                ]),
                &["type"],
            )
            .expect("a valid metric"),
        );
        let build_info = r.add(
            IntGaugeVec::new(
                Opts::new(
                    "vigil_build_info",
                    "Always 1: the version and the policy revision in use.",
                ),
                &["version", "policy_revision"],
            )
            .expect("a valid metric"),
        );
        let consumer_lag = r.add(
            IntGaugeVec::new(
                Opts::new(
                    "vigil_consumer_lag_records",
                    "Records not yet consumed, by consumer group, topic and partition.",
                ),
                &["group", "topic", "partition"],
            )
            .expect("a valid metric"),
        );
        let poll_pages = r.add(
            IntCounter::new("vigil_poll_pages_total", "System Log pages fetched.")
                .expect("a valid metric"),
        );
        let repeated_events = r.add(
            IntCounter::new(
                "vigil_repeated_events_total",
                "Events detect ignored as repeats of one already applied (same uuid, eventType and published).",
            )
            .expect("a valid metric"),
        );
        Metrics {
            repeated_events,
            events: r.counter(
                "vigil_events_total",
                "Events consumed by detect.",
                &["event_type", "outcome"],
            ),
            dead_lettered: r.counter(
                "vigil_dead_lettered_total",
                "Records sent to the DLQ.",
                &["stage", "reason"],
            ),
            evaluation_seconds,
            decisions: r.counter(
                "vigil_decisions_total",
                "Decisions published.",
                &["rule", "severity"],
            ),
            rule_errors: r.counter("vigil_rule_errors_total", "Rule runtime errors.", &["rule"]),
            state_users: r.gauge("vigil_state_users", "Users tracked in detect's state."),
            state_bytes: r.gauge(
                "vigil_state_bytes",
                "Approximate bytes of detect's per-user state.",
            ),
            state_evictions: r.counter(
                "vigil_state_evictions_total",
                "Users' state dropped for room or idleness.",
                &["cause"],
            ),
            consumer_lag,
            policy_reloads: r.counter(
                "vigil_policy_reloads_total",
                "Policy reloads, by result (loaded, unchanged, refused).",
                &["result"],
            ),
            actions: r.counter(
                "vigil_actions_total",
                "Actions finished, by outcome.",
                &["type", "outcome"],
            ),
            action_seconds,
            retries: r.counter(
                "vigil_action_retries_total",
                "Vendor calls retried.",
                &["type"],
            ),
            pending_actions: r.gauge(
                "vigil_pending_actions",
                "Delayed actions waiting for their due time.",
            ),
            circuit_open: r.gauge(
                "vigil_circuit_open",
                "1 while the blast-radius circuit holds destructive actions.",
            ),
            overrides_active: r.gauge("vigil_overrides_active", "Analysts' overrides in force."),
            hook_deliveries: r.counter(
                "vigil_hook_deliveries_total",
                "Okta Event Hook requests answered, by result.",
                &["result"],
            ),
            ingested_events: r.counter(
                "vigil_ingested_events_total",
                "Events brought in by ingest.",
                &["source"],
            ),
            poll_pages,
            poll_errors: r.counter(
                "vigil_poll_errors_total",
                "System Log poller failures, each retried, by reason.",
                &["reason"],
            ),
            rate_limit_waits: r.counter(
                "vigil_rate_limit_waits_total",
                "Waits for a vendor's rate-limit reset.",
                &["vendor"],
            ),
            build_info,
            registry: r.registry,
            collectors: r.collectors,
        }
    }

    /// Every series name this process can export (histograms as their `_bucket`, `_sum` and
    /// `_count` series), whether or not it has samples yet.
    pub fn series_names(&self) -> Vec<String> {
        let mut names = Vec::new();
        for family in self.collectors.iter().flat_map(|c| c.collect()) {
            let name = family.name();
            if family.get_field_type() == MetricType::HISTOGRAM {
                for suffix in ["_bucket", "_sum", "_count"] {
                    names.push(format!("{name}{suffix}"));
                }
            } else {
                names.push(name.to_owned());
            }
        }
        names
    }

    /// The sum of a counter's series (all label values).
    pub fn total(counter: &IntCounterVec) -> u64 {
        counter
            .collect()
            .iter()
            .flat_map(|family| family.get_metric())
            .map(|m| m.get_counter().get_value() as u64)
            .sum()
    }

    /// Every metric in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buffer);
        String::from_utf8(buffer).unwrap_or_default()
    }

    /// Record the policy revision in use (replacing the previous one).
    pub fn set_policy_revision(&self, revision: &str) {
        self.build_info.reset();
        self.build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION"), revision])
            .set(1);
    }
}

/// The process's metrics.
pub fn metrics() -> &'static Metrics {
    static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);
    &METRICS
}

/// The `/metrics` route.
pub async fn handler() -> impl axum::response::IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        metrics().render(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_names_list_metrics_before_their_first_sample() {
        let names = metrics().series_names();
        for name in [
            "vigil_consumer_lag_records",
            "vigil_action_duration_seconds_bucket",
            "vigil_action_duration_seconds_count",
            "vigil_policy_reloads_total",
        ] {
            assert!(names.iter().any(|n| n == name), "{name} missing: {names:?}");
        }
        assert!(!names.iter().any(|n| n == "vigil_action_duration_seconds"));
    }

    #[test]
    fn metrics_render_in_the_text_format_with_conventional_names() {
        let m = metrics();
        m.decisions
            .with_label_values(&["failed_signins", "high"])
            .inc();
        m.set_policy_revision("sha256:abc");
        let text = m.render();
        assert!(
            text.contains("vigil_decisions_total{rule=\"failed_signins\",severity=\"high\"}"),
            "{text}"
        );
        assert!(
            text.contains("vigil_build_info{policy_revision=\"sha256:abc\""),
            "{text}"
        );
        for line in text.lines().filter(|l| l.starts_with("# TYPE ")) {
            let mut parts = line.split_whitespace().skip(2);
            let (name, kind) = (parts.next().unwrap(), parts.next().unwrap());
            assert!(name.starts_with("vigil_"), "{name}");
            if kind == "counter" {
                assert!(name.ends_with("_total"), "{name}");
            }
        }
    }
}
