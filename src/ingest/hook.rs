//! The Okta Event Hook receiver: Okta POSTs `data.events[]` envelopes; each event goes to the
//! events topic keyed by its user, and Okta gets 200 only once the broker has them all (else
//! 503, and Okta retries once). The one-time verification GET echoes the challenge.
//!
//! Every request must carry the Authorization header value configured on the hook (compared
//! in constant time). Bodies over the limit get 413, malformed ones 400 with the reason.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::json;
use tracing::{info, warn};

use crate::event::keyed_events;
use crate::shared_secret::SharedSecret;

/// Environment variable of the hook secret (when `ingest.hook_secret_file` is not set).
pub const HOOK_SECRET_ENV: &str = "VIGIL_HOOK_SECRET";

/// What the receiver needs.
#[derive(Clone)]
pub struct HookState {
    /// Produces to the events topic (idempotent, acks=all).
    pub producer: FutureProducer,
    /// The events topic.
    pub topic: String,
    /// The Authorization value Okta sends.
    pub secret: SharedSecret,
    /// Larger events are refused.
    pub max_event_bytes: usize,
    /// Longest wait for the broker before answering 503.
    pub ack_timeout: Duration,
}

/// The receiver's routes: GET (verification) and POST (events) on `path`.
pub fn router(path: &str, state: HookState, max_body_bytes: usize) -> Router {
    // Only the hook: this port may face Okta (the internet); metrics stay on http.listen.
    Router::new()
        .route(path, get(verify).post(receive))
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .with_state(Arc::new(state))
}

fn authorized(state: &HookState, headers: &HeaderMap) -> bool {
    let presented = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    state.secret.matches(presented)
}

fn count(result: &str) {
    crate::metrics::metrics()
        .hook_deliveries
        .with_label_values(&[result])
        .inc();
}

fn refuse(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({"error": message.into()}))).into_response()
}

/// Okta's one-time verification: echo `X-Okta-Verification-Challenge`.
async fn verify(State(state): State<Arc<HookState>>, headers: HeaderMap) -> Response {
    if !authorized(&state, &headers) {
        warn!("Event Hook verification with a missing or wrong Authorization header");
        return refuse(
            StatusCode::UNAUTHORIZED,
            "missing or wrong Authorization header",
        );
    }
    match headers
        .get("x-okta-verification-challenge")
        .and_then(|v| v.to_str().ok())
    {
        Some(challenge) => {
            info!("Event Hook verified");
            Json(json!({"verification": challenge})).into_response()
        }
        None => refuse(
            StatusCode::BAD_REQUEST,
            "no X-Okta-Verification-Challenge header",
        ),
    }
}

/// A delivery: every event on the topic, acknowledged, before 200.
async fn receive(State(state): State<Arc<HookState>>, headers: HeaderMap, body: Bytes) -> Response {
    if !authorized(&state, &headers) {
        warn!("Event Hook delivery with a missing or wrong Authorization header refused");
        count("unauthorized");
        return refuse(
            StatusCode::UNAUTHORIZED,
            "missing or wrong Authorization header",
        );
    }
    let events = match keyed_events(&body, state.max_event_bytes) {
        Ok(events) => events,
        Err(refused) => {
            warn!(reason = refused.reason, error = %refused.error, "malformed Event Hook delivery refused");
            count("malformed");
            return refuse(
                StatusCode::BAD_REQUEST,
                format!("{}: {}", refused.reason, refused.error),
            );
        }
    };
    let mut deliveries = Vec::with_capacity(events.len());
    for event in &events {
        let mut record = FutureRecord::to(&state.topic).payload(event.payload.as_slice());
        if let Some(key) = &event.key {
            record = record.key(key.as_str());
        }
        match state.producer.send_result(record) {
            Ok(delivery) => deliveries.push(delivery),
            Err((e, _)) => {
                warn!(error = %e, "cannot queue an event; Okta will retry");
                count("unavailable");
                return refuse(StatusCode::SERVICE_UNAVAILABLE, "the event queue is full");
            }
        }
    }
    let acked =
        tokio::time::timeout(state.ack_timeout, futures::future::join_all(deliveries)).await;
    let failed = match &acked {
        Ok(results) => results.iter().filter(|r| !matches!(r, Ok(Ok(_)))).count(),
        Err(_) => events.len(),
    };
    if failed > 0 {
        // Okta retries once; events already written are repeated then, which detect's
        // deterministic ids make harmless.
        warn!(
            events = events.len(),
            failed, "Event Hook delivery not acknowledged by the broker; answering 503"
        );
        return refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "the events could not be stored; retry",
        );
    }
    info!(events = events.len(), "Event Hook delivery stored");
    count("stored");
    crate::metrics::metrics()
        .ingested_events
        .with_label_values(&["hook"])
        .inc_by(events.len() as u64);
    StatusCode::OK.into_response()
}
