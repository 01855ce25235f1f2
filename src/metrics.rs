//! Prometheus metrics of every stage, in one registry per process, served on `/metrics`.
//!
//! Names follow Prometheus conventions: `vigil_` prefix, base units, `_total` for counters.
//! Labels are bounded: event types, rules, action types, outcomes and reasons come from fixed
//! or policy-defined vocabularies, never from user ids.

use std::sync::LazyLock;

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

/// Every metric Vigil exports.
pub struct Metrics {
    registry: Registry,
    /// Events consumed by detect, by `event_type` and `outcome` (the event's outcome.result).
    pub events: IntCounterVec,
    /// Records dead-lettered, by `stage` and `reason`.
    pub dead_lettered: IntCounterVec,
    /// Policy evaluation time per evaluated event.
    pub evaluation_seconds: Histogram,
    /// Decisions, by `rule` and `severity`.
    pub decisions: IntCounterVec,
    /// Rule runtime errors, by `rule`.
    pub rule_errors: IntCounterVec,
    /// Users tracked in detect's state (all assigned partitions).
    pub state_users: IntGauge,
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
    /// Event Hook deliveries, by `result` (stored, unauthorized, malformed, unavailable).
    pub hook_deliveries: IntCounterVec,
    /// Events brought in by ingest, by `source` (hook, poll).
    pub ingested_events: IntCounterVec,
    /// System Log pages fetched.
    pub poll_pages: IntCounter,
    /// Waits for a vendor's rate-limit reset, by `vendor`.
    pub rate_limit_waits: IntCounterVec,
    /// Always 1; labels `version` and `policy_revision`.
    pub build_info: IntGaugeVec,
}

fn counter(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let metric = IntCounterVec::new(Opts::new(name, help), labels).expect("a valid metric");
    registry
        .register(Box::new(metric.clone()))
        .expect("a unique metric");
    metric
}

fn gauge(registry: &Registry, name: &str, help: &str) -> IntGauge {
    let metric = IntGauge::new(name, help).expect("a valid metric");
    registry
        .register(Box::new(metric.clone()))
        .expect("a unique metric");
    metric
}

impl Metrics {
    fn new() -> Self {
        let r = Registry::new();
        let evaluation_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "vigil_policy_evaluation_seconds",
                "Policy evaluation time per evaluated event.",
            )
            .buckets(vec![
                0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.1,
            ]),
        )
        .expect("a valid metric");
        r.register(Box::new(evaluation_seconds.clone()))
            .expect("a unique metric");
        let action_seconds = HistogramVec::new(
            HistogramOpts::new(
                "vigil_action_duration_seconds",
                "Time from an action's due time to its outcome.",
            )
            .buckets(vec![
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0,
            ]),
            &["type"],
        )
        .expect("a valid metric");
        r.register(Box::new(action_seconds.clone()))
            .expect("a unique metric");
        let build_info = IntGaugeVec::new(
            Opts::new(
                "vigil_build_info",
                "Always 1: the version and the policy revision in use.",
            ),
            &["version", "policy_revision"],
        )
        .expect("a valid metric");
        r.register(Box::new(build_info.clone()))
            .expect("a unique metric");
        let poll_pages = IntCounter::new("vigil_poll_pages_total", "System Log pages fetched.")
            .expect("a valid metric");
        r.register(Box::new(poll_pages.clone()))
            .expect("a unique metric");
        Metrics {
            events: counter(
                &r,
                "vigil_events_total",
                "Events consumed by detect.",
                &["event_type", "outcome"],
            ),
            dead_lettered: counter(
                &r,
                "vigil_dead_lettered_total",
                "Records sent to the DLQ.",
                &["stage", "reason"],
            ),
            evaluation_seconds,
            decisions: counter(
                &r,
                "vigil_decisions_total",
                "Decisions published.",
                &["rule", "severity"],
            ),
            rule_errors: counter(
                &r,
                "vigil_rule_errors_total",
                "Rule runtime errors.",
                &["rule"],
            ),
            state_users: gauge(&r, "vigil_state_users", "Users tracked in detect's state."),
            actions: counter(
                &r,
                "vigil_actions_total",
                "Actions finished, by outcome.",
                &["type", "outcome"],
            ),
            action_seconds,
            retries: counter(
                &r,
                "vigil_action_retries_total",
                "Vendor calls retried.",
                &["type"],
            ),
            pending_actions: gauge(
                &r,
                "vigil_pending_actions",
                "Delayed actions waiting for their due time.",
            ),
            circuit_open: gauge(
                &r,
                "vigil_circuit_open",
                "1 while the blast-radius circuit holds destructive actions.",
            ),
            overrides_active: gauge(
                &r,
                "vigil_overrides_active",
                "Analysts' overrides in force.",
            ),
            hook_deliveries: counter(
                &r,
                "vigil_hook_deliveries_total",
                "Okta Event Hook deliveries.",
                &["result"],
            ),
            ingested_events: counter(
                &r,
                "vigil_ingested_events_total",
                "Events brought in by ingest.",
                &["source"],
            ),
            poll_pages,
            rate_limit_waits: counter(
                &r,
                "vigil_rate_limit_waits_total",
                "Waits for a vendor's rate-limit reset.",
                &["vendor"],
            ),
            build_info,
            registry: r,
        }
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
