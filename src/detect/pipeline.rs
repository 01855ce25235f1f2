//! Event → per-user state → Rego → decisions, synchronously and deterministically.
//!
//! This is the only place state and policy meet. It does no I/O: callers feed events and take
//! decisions, so replay, tests, benches and the Kafka loop run exactly the same code.

use serde::Serialize;
use serde_json::Value;

use super::rego_input::RegoConverter;
use crate::decision::{self, Action, Decision, EventRef, UserInfo, SCHEMA_VERSION};
use crate::event::{OktaEvent, UserRef};
use crate::overrides::OverrideTable;
use crate::policy::{Evaluation, Finding, Policy, RuleError};
use crate::state::{rfc3339, StateLimits, StateStore, StateView};

/// What one event produced.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Whether the policies were evaluated (the event type is one they look at).
    pub evaluated: bool,
    /// The event had been applied before (same uuid, eventType and published): it changed no
    /// state and made no decision.
    pub repeat: bool,
    /// The decisions, sorted by rule and key.
    pub decisions: Vec<Decision>,
    /// Rules that failed on this event.
    pub rule_errors: Vec<RuleError>,
    /// The exact input document the policies received, when asked for.
    pub input: Option<Value>,
}

/// The policy input document (see `policies/README.md`).
#[derive(Serialize)]
struct Input<'a> {
    // `event` is added separately: it is converted straight from the decoded event, without an
    // intermediate copy (this conversion is a large share of the cost of an evaluated event).
    user: Option<InputUser<'a>>,
    now: String,
    now_ns: i64,
    state: StateView,
}

#[derive(Serialize)]
struct InputUser<'a> {
    id: &'a str,
    login: Option<&'a str>,
    display_name: Option<&'a str>,
}

/// Owns the state store and a policy; one per worker.
pub struct Detector {
    store: StateStore,
    policy: Policy,
    limits: StateLimits,
    verify_dispatch: bool,
    converter: RegoConverter,
    overrides: Option<OverrideTable>,
}

impl Detector {
    /// A detector with empty state for `policy`'s features.
    pub fn new(policy: Policy, limits: StateLimits) -> Self {
        let store = StateStore::new(policy.features().clone(), limits);
        Detector {
            store,
            policy,
            limits,
            verify_dispatch: false,
            converter: RegoConverter::default(),
            overrides: None,
        }
    }

    /// Show policies the analysts' overrides (`input.override`: the user's override in force at
    /// the event's time). Without a table (replay) no event has one.
    pub fn with_overrides(mut self, table: OverrideTable) -> Self {
        self.overrides = Some(table);
        self
    }

    /// Also evaluate the entrypoint on every event and report any difference from the fast path
    /// as an error of rule `vigil.dispatch`, and any rule the compiled screen would miss as an
    /// error of rule `vigil.screen` (slow; for `vigil policy test` and tests).
    pub fn verify_dispatch(mut self, on: bool) -> Self {
        self.verify_dispatch = on;
        self
    }

    fn evaluate_verified(&mut self, event_type: &str, input: regorus::Value) -> Evaluation {
        let misses = self.policy.screen_misses(event_type, input.clone());
        let mut fast = self.policy.evaluate(event_type, input.clone());
        if !misses.is_empty() {
            fast.errors.push(RuleError {
                rule: "vigil.screen".into(),
                message: format!(
                    "the compiled screen finds nothing on this {event_type} event where the interpreter finds something or fails in {misses:?}: rewrite the construct regorus' VM gets wrong, or set compiled_screen = false"
                ),
            });
        }
        let reference = self.policy.evaluate_exhaustive(input);
        if fast.findings != reference.findings {
            let rules = |e: &Evaluation| {
                e.findings
                    .iter()
                    .map(|f| f.rule.clone())
                    .collect::<Vec<_>>()
            };
            fast.errors.push(RuleError {
                rule: "vigil.dispatch".into(),
                message: format!(
                    "the entrypoint finds {:?} on this {event_type} event but the dispatched rules find {:?}: a rule fires on an event type it does not declare in `event_types`, or the response fires without a finding",
                    rules(&reference),
                    rules(&fast)
                ),
            });
        }
        fast
    }

    /// The policy in use.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Evaluate later events with `policy` (same features: the state stays valid).
    pub fn replace_policy(&mut self, policy: Policy) {
        self.policy = policy;
    }

    /// The policy in use, mutably (tests and coverage).
    pub fn policy_mut(&mut self) -> &mut Policy {
        &mut self.policy
    }

    /// The state store.
    pub fn store(&self) -> &StateStore {
        &self.store
    }

    /// Forget all state (a new scenario, a revoked partition).
    pub fn reset_state(&mut self) {
        self.store = StateStore::new(self.policy.features().clone(), self.limits);
    }

    /// An empty state store for this detector's features and limits (the live stage keeps one per
    /// partition so a revoked partition's users can be dropped together).
    pub fn new_store(&self) -> StateStore {
        StateStore::new(self.policy.features().clone(), self.limits)
    }

    /// Process one event against the detector's own store: update state, evaluate if the policies
    /// want this event type, and turn findings into decisions. `keep_input` returns the input
    /// document too.
    pub fn process(&mut self, event: &OktaEvent, keep_input: bool) -> Outcome {
        let store = self.store.clone();
        self.process_in(&store, event, keep_input)
    }

    /// [`Detector::process`] against another store (one partition's users).
    pub fn process_in(
        &mut self,
        store: &StateStore,
        event: &OktaEvent,
        keep_input: bool,
    ) -> Outcome {
        let user = event.user();
        let Some(state) = store.observe(user.as_ref().map(|u| u.id.as_str()), event) else {
            return Outcome {
                repeat: true,
                ..Outcome::default()
            };
        };
        if !self.policy.wants(&event.event_type) {
            return Outcome::default();
        }
        let input = Input {
            user: user.as_ref().map(|u| InputUser {
                id: &u.id,
                login: u.login.as_deref(),
                display_name: u.display_name.as_deref(),
            }),
            now: rfc3339(event.published_ms()),
            now_ns: event.published_ms().saturating_mul(1_000_000),
            state,
        };
        let prior_risk = input.state.risk.score;
        let json = match serde_json::to_value(&input) {
            Ok(json) => json,
            Err(e) => {
                return Outcome {
                    evaluated: false,
                    rule_errors: vec![RuleError {
                        rule: "vigil.input".into(),
                        message: e.to_string(),
                    }],
                    ..Outcome::default()
                }
            }
        };
        let in_force = self.override_of(user.as_ref(), event);
        let mut regorus_input = self.converter.value(&json);
        if let Ok(fields) = regorus_input.as_object_mut() {
            fields.insert(
                regorus::Value::from("event"),
                self.converter.object(&event.raw),
            );
            if let Some(o) = &in_force {
                fields.insert(regorus::Value::from("override"), self.converter.value(o));
            }
        }
        let kept = keep_input.then(|| {
            let mut json = json;
            if let Value::Object(fields) = &mut json {
                fields.insert("event".into(), Value::Object(event.raw.clone()));
                if let Some(o) = in_force {
                    fields.insert("override".into(), o);
                }
            }
            json
        });
        let started = std::time::Instant::now();
        let evaluation = if self.verify_dispatch {
            self.evaluate_verified(&event.event_type, regorus_input)
        } else {
            self.policy.evaluate(&event.event_type, regorus_input)
        };
        crate::metrics::metrics()
            .evaluation_seconds
            .observe(started.elapsed().as_secs_f64());
        let mut findings = evaluation.findings;
        findings.sort_by(|a, b| (&a.rule, &a.key).cmp(&(&b.rule, &b.key)));
        findings.dedup_by(|a, b| a.rule == b.rule && a.key == b.key);
        let added: u32 = findings.iter().map(|f| f.risk_weight).sum();
        let risk_score = prior_risk.saturating_add(added).min(100);
        if let Some(user) = &user {
            for f in &findings {
                store.record_signal(&user.id, &f.rule, f.risk_weight, event.published_ms());
            }
        }
        let decisions = findings
            .into_iter()
            .map(|f| self.decide(event, user.as_ref(), f, risk_score))
            .collect();
        Outcome {
            evaluated: true,
            repeat: false,
            decisions,
            rule_errors: evaluation.errors,
            input: kept,
        }
    }

    /// The user's override in force at the event's time, as JSON.
    fn override_of(&self, user: Option<&UserRef>, event: &OktaEvent) -> Option<Value> {
        let o = self.overrides.as_ref()?.get(&user?.id)?;
        let at = chrono::DateTime::from_timestamp_millis(event.published_ms())?;
        o.active_at(at).then(|| serde_json::to_value(o).ok())?
    }

    fn decide(
        &self,
        event: &OktaEvent,
        user: Option<&UserRef>,
        f: Finding,
        risk_score: u32,
    ) -> Decision {
        let decision_id = decision::decision_id(&event.uuid, &f.rule, &f.key);
        let default_target = user.map(|u| u.id.clone()).unwrap_or_default();
        let actions = f
            .actions
            .into_iter()
            .enumerate()
            .map(|(index, spec)| {
                let target = spec.target.unwrap_or_else(|| default_target.clone());
                let after_ms =
                    i64::try_from(spec.after_secs.saturating_mul(1000)).unwrap_or(i64::MAX / 4);
                Action {
                    action_id: decision::action_id(&decision_id, spec.kind, &target, index),
                    kind: spec.kind,
                    target,
                    params: spec.params,
                    after_secs: spec.after_secs,
                    due_at: rfc3339(event.published_ms().saturating_add(after_ms)),
                    conditions: spec.conditions,
                }
            })
            .collect();
        Decision {
            schema: SCHEMA_VERSION,
            decision_id,
            event: EventRef {
                uuid: event.uuid.clone(),
                event_type: event.event_type.clone(),
                published: rfc3339(event.published_ms()),
            },
            user: user.map(|u| UserInfo {
                id: u.id.clone(),
                login: u.login.clone(),
            }),
            rule: f.rule,
            severity: f.severity,
            risk_score,
            summary: f.summary,
            evidence: f.evidence,
            policy_revision: self.policy.revision().to_owned(),
            actions,
        }
    }
}
