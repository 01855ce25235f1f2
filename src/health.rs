//! Readiness of this process's stages for `/readyz`: each consumer group joined (partitions
//! assigned, possibly none when a group has more members than partitions), the broker answered
//! recently, where policies are evaluated a policy revision loaded, and each ingest source of
//! the process working (the hook receiver listening, the poller's last page fetched).

use std::collections::BTreeMap;
use std::sync::{LazyLock, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// A broker that has not answered for this long makes the process unready.
pub const BROKER_STALE_AFTER: Duration = Duration::from_secs(30);

#[derive(Default)]
struct StageState {
    joined: bool,
    partitions: usize,
    broker_answered: Option<Instant>,
    broker_error: Option<String>,
}

#[derive(Default)]
struct State {
    stages: BTreeMap<&'static str, StageState>,
    needs_policy: bool,
    policy_revision: Option<String>,
    /// Each ingest source: `Ok` while working, else why not.
    ingest: BTreeMap<&'static str, Result<(), String>>,
}

/// What `/readyz` reports; shared by every stage of the process.
#[derive(Default)]
pub struct Health {
    state: Mutex<State>,
}

impl Health {
    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.state.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// A stage with a consumer group started: the process is unready until it has joined.
    pub fn stage_started(&self, stage: &'static str) {
        self.with(|s| s.stages.insert(stage, StageState::default()));
    }

    /// `stage` received an assignment and now owns `partitions` partitions.
    pub fn assigned(&self, stage: &'static str, partitions: usize) {
        self.with(|s| {
            let state = s.stages.entry(stage).or_default();
            state.joined = true;
            state.partitions = partitions;
        });
    }

    /// The outcome of `stage`'s latest request to the broker.
    pub fn broker(&self, stage: &'static str, result: Result<(), String>) {
        self.with(|s| {
            let state = s.stages.entry(stage).or_default();
            match result {
                Ok(()) => {
                    state.broker_answered = Some(Instant::now());
                    state.broker_error = None;
                }
                Err(e) => state.broker_error = Some(e),
            }
        });
    }

    /// This process evaluates policies: unready until one is loaded.
    pub fn needs_policy(&self) {
        self.with(|s| s.needs_policy = true);
    }

    /// A policy revision is in use.
    pub fn policy_loaded(&self, revision: &str) {
        self.with(|s| s.policy_revision = Some(revision.to_owned()));
    }

    /// An ingest source of this process started: unready until it reports working.
    pub fn ingest_started(&self, source: &'static str) {
        self.ingest(source, Err("starting".into()));
    }

    /// Whether ingest `source` works now (`Err` says why not).
    pub fn ingest(&self, source: &'static str, condition: Result<(), String>) {
        self.with(|s| s.ingest.insert(source, condition));
    }

    /// Whether every stage is ready, and the details.
    pub fn report(&self) -> (bool, Value) {
        self.with(|s| {
            let mut ready = !s.needs_policy || s.policy_revision.is_some();
            let mut stages = serde_json::Map::new();
            for (name, st) in &s.stages {
                let broker_ok = st
                    .broker_answered
                    .is_some_and(|at| at.elapsed() < BROKER_STALE_AFTER);
                ready &= st.joined && broker_ok;
                let broker = match (&st.broker_error, broker_ok) {
                    (_, true) => "reachable".to_owned(),
                    (Some(e), false) => format!("unreachable: {e}"),
                    (None, false) => "not contacted yet".to_owned(),
                };
                stages.insert(
                    (*name).to_owned(),
                    json!({"group_joined": st.joined, "partitions": st.partitions, "broker": broker}),
                );
            }
            let mut ingest = serde_json::Map::new();
            for (name, condition) in &s.ingest {
                ready &= condition.is_ok();
                let entry = match condition {
                    Ok(()) => json!({"ready": true}),
                    Err(e) => json!({"ready": false, "error": e}),
                };
                ingest.insert((*name).to_owned(), entry);
            }
            (
                ready,
                json!({"ready": ready, "stages": stages, "ingest": ingest, "policy_revision": s.policy_revision}),
            )
        })
    }
}

/// The process's health.
pub fn health() -> &'static Health {
    static HEALTH: LazyLock<Health> = LazyLock::new(Health::default);
    &HEALTH
}

/// The `/readyz` route: 200 when ready, else 503; the body says what is missing.
pub async fn readyz() -> impl axum::response::IntoResponse {
    let (ready, body) = health().report();
    let status = if ready {
        axum::http::StatusCode::OK
    } else {
        axum::http::StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_when_every_stage_joined_and_reached_the_broker_and_a_policy_is_loaded() {
        let h = Health::default();
        h.needs_policy();
        h.stage_started("detect");
        h.stage_started("respond");
        assert!(!h.report().0, "nothing yet");
        h.assigned("detect", 4);
        h.assigned("respond", 0);
        h.broker("detect", Ok(()));
        h.broker("respond", Ok(()));
        assert!(!h.report().0, "no policy");
        h.policy_loaded("sha256:1");
        let (ready, body) = h.report();
        assert!(ready, "{body}");
        assert_eq!(body["stages"]["detect"]["partitions"], 4);
        h.broker("respond", Err("connection refused".into()));
        let (_, body) = h.report();
        assert_eq!(
            body["stages"]["respond"]["broker"], "reachable",
            "a recent answer counts"
        );
        let (ready, body) = Health::default().report();
        assert!(ready, "no stage, nothing to wait for: {body}");
    }

    #[test]
    fn an_ingest_source_makes_the_process_unready_until_it_works_and_while_it_fails() {
        let h = Health::default();
        h.ingest_started("ingest-poll");
        let (ready, body) = h.report();
        assert!(!ready);
        assert_eq!(body["ingest"]["ingest-poll"]["error"], "starting");
        h.ingest("ingest-poll", Ok(()));
        assert!(h.report().0, "{}", h.report().1);
        h.ingest("ingest-poll", Err("Okta answered 503".into()));
        let (ready, body) = h.report();
        assert!(!ready);
        assert_eq!(
            body["ingest"]["ingest-poll"],
            json!({"ready": false, "error": "Okta answered 503"})
        );
    }
}
