//! The overrides HTTP API (axum): analysts suppress a user's decisions or cancel their pending
//! actions for a period, with a reason; every write is a record on the overrides topic.
//!
//! * `GET  /healthz` — liveness, `GET /metrics` — Prometheus; no token.
//! * `GET  /v1/overrides` — every user's newest override.
//! * `PUT  /v1/overrides/{user_id}` — `{"reason": "…", "for_secs": 3600, "scope": "all"|"pending", "by": "…"}`
//!   (or `"until": RFC 3339` instead of `for_secs`); answers 201 with the override.
//! * `DELETE /v1/overrides/{user_id}` — `{"reason": "…", "by": "…"}`: lift (an override ending now).
//! * `GET  /v1/actions?user=ID` (or `decision=ID`, or `action=ID`) — the ledger's newest record of
//!   each matching action this instance knows (the decisions partitions it owns, listed in the
//!   answer): `{"partitions": [..], "actions": [..]}`.
//!
//! `/v1` needs `Authorization: Bearer <token>` (compared in constant time); with no token
//! configured it answers 503 rather than run open.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use rdkafka::producer::FutureProducer;
use serde::Deserialize;
use serde_json::json;

use crate::config::HttpConfig;
use crate::ledger::{LedgerQuery, LedgerViews};
use crate::overrides::{self, Override, OverrideTable, Scope};
use crate::shared_secret::SharedSecret;

/// The environment variable holding the API token when no token file is configured.
pub const API_TOKEN_ENV: &str = "VIGIL_API_TOKEN";

/// What the handlers share.
#[derive(Clone)]
pub struct ApiState {
    table: OverrideTable,
    producer: FutureProducer,
    topic: String,
    ledger: LedgerViews,
    /// The token, when one is configured.
    token: Option<SharedSecret>,
}

impl ApiState {
    /// Handlers over `table`, writing to `topic` with `producer`, answering ledger queries from
    /// `ledger`, guarded by `token`.
    pub fn new(
        table: OverrideTable,
        producer: FutureProducer,
        topic: String,
        ledger: LedgerViews,
        token: Option<String>,
    ) -> Self {
        ApiState {
            table,
            producer,
            topic,
            ledger,
            token: token.as_deref().map(SharedSecret::new),
        }
    }
}

/// The API token: from `token_file` when set (trimmed), else from `VIGIL_API_TOKEN`.
pub fn api_token(config: &HttpConfig) -> anyhow::Result<Option<String>> {
    crate::shared_secret::load(config.token_file.as_deref(), API_TOKEN_ENV)
}

/// The API's routes.
pub fn router(state: ApiState) -> Router {
    let state = Arc::new(state);
    // The token is checked before anything else, the body included.
    let v1 = Router::new()
        .route("/v1/overrides", get(list))
        .route("/v1/overrides/{user_id}", put(set).delete(lift))
        .route("/v1/actions", get(actions))
        .route_layer(middleware::from_fn_with_state(state.clone(), authorize));
    crate::http_server::admin_routes()
        .merge(v1)
        .with_state(state)
}

/// Listen on `listen` and serve until `shutdown` is set; the returned task ends with the server.
pub async fn serve(
    listen: &str,
    state: ApiState,
    shutdown: Arc<AtomicBool>,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    if state.token.is_none() {
        tracing::warn!("HTTP API without a token: its /v1 endpoints answer 503");
    }
    crate::http_server::serve("HTTP API", listen, router(state), shutdown).await
}

/// An API error as JSON.
fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({"error": message.into()}))).into_response()
}

/// Let the request through only with the configured bearer token.
async fn authorize(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    request: Request,
    next: Next,
) -> Response {
    let Some(expected) = &state.token else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "no API token configured (http.token_file or VIGIL_API_TOKEN)",
        );
    };
    let presented = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if expected.matches(presented) {
        next.run(request).await
    } else {
        error(StatusCode::UNAUTHORIZED, "missing or wrong bearer token")
    }
}

async fn list(State(state): State<Arc<ApiState>>) -> Response {
    Json(state.table.all()).into_response()
}

/// Query of `GET /v1/actions`: exactly one of the three.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionsQuery {
    /// Okta user id.
    pub user: Option<String>,
    /// Decision id.
    pub decision: Option<String>,
    /// Action id.
    pub action: Option<String>,
}

async fn actions(
    State(state): State<Arc<ApiState>>,
    query: Result<Query<ActionsQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(query)) = query else {
        return error(
            StatusCode::BAD_REQUEST,
            "query parameters: user, decision or action",
        );
    };
    let query = match (query.user, query.decision, query.action) {
        (Some(id), None, None) => LedgerQuery::User(id),
        (None, Some(id), None) => LedgerQuery::Decision(id),
        (None, None, Some(id)) => LedgerQuery::Action(id),
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                "give exactly one of user, decision and action",
            )
        }
    };
    // Partitions first: an action recorded in between shows up, never one of a partition
    // reported missing.
    let partitions = state.ledger.partitions();
    let actions = state.ledger.find(&query);
    Json(json!({"partitions": partitions, "actions": actions})).into_response()
}

/// Body of `PUT /v1/overrides/{user_id}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetBody {
    /// Why (required).
    pub reason: String,
    /// What it covers (default: all).
    #[serde(default)]
    pub scope: Option<Scope>,
    /// How long, in seconds (or `until`).
    #[serde(default)]
    pub for_secs: Option<u64>,
    /// Until when (or `for_secs`).
    #[serde(default)]
    pub until: Option<DateTime<Utc>>,
    /// Who.
    #[serde(default)]
    pub by: Option<String>,
}

/// Body of `DELETE /v1/overrides/{user_id}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LiftBody {
    /// Why (required).
    pub reason: String,
    /// Who.
    #[serde(default)]
    pub by: Option<String>,
}

async fn set(
    State(state): State<Arc<ApiState>>,
    Path(user_id): Path<String>,
    Json(body): Json<SetBody>,
) -> Response {
    let now = Utc::now();
    let until = match (body.for_secs, body.until) {
        (Some(secs), None) => {
            now + chrono::Duration::seconds(secs.min(i64::MAX as u64 / 1000) as i64)
        }
        (None, Some(until)) => until,
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                "give exactly one of for_secs and until",
            )
        }
    };
    let o = Override {
        user_id,
        scope: body.scope.unwrap_or(Scope::All),
        reason: body.reason,
        by: body.by,
        created_at: now,
        until,
    };
    write(&state, o, StatusCode::CREATED).await
}

async fn lift(
    State(state): State<Arc<ApiState>>,
    Path(user_id): Path<String>,
    Json(body): Json<LiftBody>,
) -> Response {
    let now = Utc::now();
    let o = Override {
        user_id,
        scope: Scope::All,
        reason: body.reason,
        by: body.by,
        created_at: now,
        until: now,
    };
    write(&state, o, StatusCode::OK).await
}

async fn write(state: &ApiState, o: Override, status: StatusCode) -> Response {
    if let Err(e) = o.validate() {
        return error(StatusCode::BAD_REQUEST, e);
    }
    match overrides::publish(&state.producer, &state.topic, &o).await {
        Ok(()) => {
            // In force here at once; the follower reads the same record back.
            state.table.insert(o.clone());
            (status, Json(o)).into_response()
        }
        Err(e) => error(StatusCode::BAD_GATEWAY, format!("{e:#}")),
    }
}
