//! The Okta Event Hook receiver: Okta POSTs `data.events[]` envelopes; each event goes to the
//! events topic keyed by its user, and Okta gets 200 only once the broker has them all (else
//! 503, and Okta retries once). The one-time verification GET echoes the challenge.
//!
//! Every request must carry the Authorization header value configured on the hook (compared
//! in constant time), checked before the body is read: an unauthenticated request gets 401
//! whatever its size. Bodies over the limit get 413, malformed ones 400 with the reason; every
//! answer is counted in `vigil_hook_deliveries_total{result}`.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, BodyDataStream};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use futures::StreamExt as _;
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::json;
use tracing::{info, warn};

use crate::event::keyed_events;
use crate::shared_secret::SharedSecret;

/// Environment variable of the hook secret (when `ingest.hook_secret_file` is not set).
pub const HOOK_SECRET_ENV: &str = "VIGIL_HOOK_SECRET";

/// The receiver's name in `/readyz`: ready while it listens.
pub const HEALTH_NAME: &str = "ingest-hook";

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
    /// Larger request bodies are refused (413), once the secret is checked.
    pub max_body_bytes: usize,
}

/// The receiver's routes: GET (verification) and POST (events) on `path`.
pub fn router(path: &str, state: HookState) -> Router {
    // Only the hook: this port may face Okta (the internet); metrics stay on http.listen.
    // No body-limit layer: it would answer 413 before the secret is checked; `receive` reads
    // the body itself, with the limit, after checking it.
    Router::new()
        .route(path, get(verify).post(receive))
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

/// An error answer, counted as `result`.
fn refuse(result: &str, status: StatusCode, message: impl Into<String>) -> Response {
    count(result);
    (status, Json(json!({"error": message.into()}))).into_response()
}

/// What the receiver requires of a delivery: Okta's envelope with a `data.events` array.
#[derive(Deserialize)]
struct Envelope {
    data: Option<EnvelopeData>,
}

#[derive(Deserialize)]
struct EnvelopeData {
    events: Option<Vec<IgnoredAny>>,
}

/// How many events the envelope holds, or why it is not one.
fn envelope_events(body: &[u8]) -> Result<usize, String> {
    let envelope: Envelope = serde_json::from_slice(body).map_err(|e| {
        format!("not an Okta Event Hook delivery (an object with `data.events`): {e}")
    })?;
    envelope
        .data
        .and_then(|data| data.events)
        .map(|events| events.len())
        .ok_or_else(|| {
            "missing_field: `data.events` is required (an Okta Event Hook delivery)".into()
        })
}

/// Read and drop what remains of a refused request's body, up to `limit` bytes, so the sender
/// (which writes the whole body before reading) gets the answer instead of a broken pipe; a
/// sender of more than that sees the connection closed.
async fn discard(mut stream: BodyDataStream, limit: usize) {
    let mut read = 0;
    while let Some(Ok(chunk)) = stream.next().await {
        read += chunk.len();
        if read > limit {
            break;
        }
    }
}

/// The body, at most `limit` bytes (`None` beyond, the rest discarded): a declared length
/// over it is refused without keeping anything.
async fn read_body(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<Option<Vec<u8>>, axum::Error> {
    let declared = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let mut stream = body.into_data_stream();
    if declared.is_some_and(|n| n > limit as u64) {
        discard(stream, limit.saturating_mul(2)).await;
        return Ok(None);
    }
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        if bytes.len() + chunk.len() > limit {
            discard(stream, limit).await;
            return Ok(None);
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(Some(bytes))
}

/// Okta's one-time verification: echo `X-Okta-Verification-Challenge`.
async fn verify(State(state): State<Arc<HookState>>, headers: HeaderMap) -> Response {
    if !authorized(&state, &headers) {
        warn!("Event Hook verification with a missing or wrong Authorization header");
        return refuse(
            "unauthorized",
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
            count("verified");
            Json(json!({"verification": challenge})).into_response()
        }
        None => refuse(
            "malformed",
            StatusCode::BAD_REQUEST,
            "no X-Okta-Verification-Challenge header",
        ),
    }
}

/// A delivery: every event on the topic, acknowledged, before 200.
async fn receive(State(state): State<Arc<HookState>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    if !authorized(&state, &parts.headers) {
        warn!("Event Hook delivery with a missing or wrong Authorization header refused");
        // Nothing of it is kept; reading on lets the sender see the 401.
        discard(
            body.into_data_stream(),
            state.max_body_bytes.saturating_mul(2),
        )
        .await;
        return refuse(
            "unauthorized",
            StatusCode::UNAUTHORIZED,
            "missing or wrong Authorization header",
        );
    }
    let body = match read_body(&parts.headers, body, state.max_body_bytes).await {
        Ok(Some(body)) => body,
        Ok(None) => {
            warn!(
                limit = state.max_body_bytes,
                "oversized Event Hook delivery refused"
            );
            return refuse(
                "too_large",
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "the body is over {} bytes (ingest.hook_max_body_bytes)",
                    state.max_body_bytes
                ),
            );
        }
        Err(e) => {
            warn!(error = %e, "cannot read an Event Hook delivery");
            return refuse(
                "malformed",
                StatusCode::BAD_REQUEST,
                format!("cannot read the body: {e}"),
            );
        }
    };
    match envelope_events(&body) {
        Ok(0) => {
            // Nothing to store is not an error: Okta would only retry it.
            info!("Event Hook delivery without events");
            count("empty");
            return StatusCode::OK.into_response();
        }
        Ok(_) => {}
        Err(error) => {
            warn!(%error, "malformed Event Hook delivery refused");
            return refuse("malformed", StatusCode::BAD_REQUEST, error);
        }
    }
    let events = match keyed_events(&body, state.max_event_bytes) {
        Ok(events) => events,
        Err(refused) => {
            warn!(reason = refused.reason, error = %refused.error, "malformed Event Hook delivery refused");
            return refuse(
                "malformed",
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
                return refuse(
                    "unavailable",
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the event queue is full",
                );
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
            "unavailable",
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_delivery_must_be_an_envelope_with_a_data_events_array() {
        assert_eq!(
            envelope_events(br#"{"data": {"events": [{"uuid": "a"}, {}]}}"#),
            Ok(2)
        );
        assert_eq!(envelope_events(br#"{"data": {"events": []}}"#), Ok(0));
        for body in [
            &br#"{"eventType": "com.okta.event_hook"}"#[..],
            br#"{"data": {}}"#,
            br#"{"data": {"events": 5}}"#,
            br#"[{"uuid": "a"}]"#,
            b"not json",
        ] {
            let error = envelope_events(body).unwrap_err();
            assert!(error.contains("`data.events`"), "{error}");
        }
    }
}
