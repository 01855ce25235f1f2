//! HTTP fakes of Okta, Slack and PagerDuty for the connector and respond tests: one axum server
//! on a free port (its own thread and runtime, so sync and async tests can use it), under path
//! prefixes `/okta`, `/slack/api`, `/slack/webhook`, `/pd-events`, `/pd-api`.
//!
//! Every request is recorded and checked against the vendor specs in ../shared/specs (method,
//! path, query parameters, headers, required body fields and enum values); a mismatch is kept as
//! a violation (never a panic in a handler) that tests assert to be empty. The fakes keep state
//! like the vendors: Okta users with their lifecycle status (suspend only ACTIVE users, …),
//! Slack messages with their metadata, PagerDuty incidents by dedup key. Tests can inject
//! responses (429 with rate-limit headers, 5xx, 400) and latency.
//!
//! Like the vendors, the fakes apply a request when it arrives, whatever happens to the answer:
//! `delay_next` answers after the client may have given up, `drop_next` closes the connection
//! without answering. Okta's answers carry `Date` from Okta's clock, which `set_okta_clock_skew`
//! can put off ours, as are its `statusChanged` and `X-Rate-Limit-Reset` (epoch seconds, rounded
//! down).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::{json, Value};

/// One request as the fake received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// HTTP method, upper case.
    pub method: String,
    /// Path, as received (still percent-encoded).
    pub path: String,
    /// Raw query string (empty when none).
    pub query: String,
    /// Headers by lower-case name.
    pub headers: BTreeMap<String, String>,
    /// Body as text.
    pub body: String,
    /// When it arrived.
    pub at: Instant,
}

/// A canned response to inject.
#[derive(Debug, Clone)]
pub struct FakeResponse {
    /// HTTP status.
    pub status: u16,
    /// Headers to send.
    pub headers: Vec<(String, String)>,
    /// Body as text.
    pub body: String,
    /// `X-Rate-Limit-Reset` set when answered: Okta's clock in epoch seconds, rounded down,
    /// plus this many seconds (0 or less: the reset is now or past).
    pub reset_in_secs: Option<i64>,
}

impl FakeResponse {
    /// An empty answer with `status`.
    pub fn new(status: u16) -> Self {
        FakeResponse {
            status,
            headers: Vec::new(),
            body: String::new(),
            reset_in_secs: None,
        }
    }

    /// Okta's 429 (E0000047, no `Retry-After`) whose window resets `reset_in_secs` after the
    /// answer by Okta's clock, to the second (rounded down, as Okta does).
    pub fn okta_rate_limited(reset_in_secs: i64) -> Self {
        let mut response = FakeResponse::new(429)
            .header("X-Rate-Limit-Limit", "600")
            .header("X-Rate-Limit-Remaining", "0")
            .json(json!({
                "errorCode": "E0000047",
                "errorSummary": "API call exceeded rate limit due to too many requests.",
                "errorLink": "E0000047",
                "errorId": "oae-fake",
                "errorCauses": [],
            }));
        response.reset_in_secs = Some(reset_in_secs);
        response
    }

    /// With a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// With a JSON body (and its content type).
    pub fn json(mut self, body: Value) -> Self {
        self.body = body.to_string();
        self.headers
            .push(("content-type".into(), "application/json".into()));
        self
    }

    fn into_response(self, okta_now: chrono::DateTime<chrono::Utc>) -> Response {
        let mut response = (StatusCode::from_u16(self.status).unwrap(), self.body).into_response();
        if let Some(secs) = self.reset_in_secs {
            let reset = okta_now.timestamp() + secs;
            response
                .headers_mut()
                .insert("x-rate-limit-reset", reset.to_string().parse().unwrap());
        }
        for (name, value) in self.headers {
            response.headers_mut().insert(
                axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        response
    }
}

#[derive(Debug, Clone)]
struct User {
    status: String,
    status_changed: chrono::DateTime<chrono::Utc>,
}

#[derive(Debug, Clone)]
struct Incident {
    id: String,
    key: String,
    status: String,
    /// `payload.severity` of the trigger that opened it.
    severity: String,
    /// As a service with severity-based urgency sets it: high for critical and error.
    urgency: String,
    created_at: chrono::DateTime<chrono::Utc>,
}

impl State {
    /// Now, on Okta's clock.
    fn okta_now(&self) -> chrono::DateTime<chrono::Utc> {
        chrono::Utc::now() + self.okta_skew
    }
}

#[derive(Default)]
struct State {
    users: HashMap<String, User>,
    groups: HashMap<String, Vec<String>>,
    messages: Vec<Value>,
    incidents: Vec<Incident>,
    requests: Vec<Recorded>,
    injected: Vec<(String, VecDeque<FakeResponse>)>,
    /// The System Log, oldest first.
    logs: Vec<Value>,
    /// The Okta base URL, for absolute `Link` headers.
    okta_base: String,
    latency: Duration,
    /// One-shot delays: the next request whose path contains the text waits this long.
    delays: Vec<(String, Duration)>,
    /// One-shot drops: the next request whose path contains the text is applied, and its
    /// connection closed without an answer.
    drops: Vec<String>,
    /// Okta's clock minus ours.
    okta_skew: chrono::Duration,
    /// `DELETE …/sessions` calls per user.
    sessions_cleared: HashMap<String, usize>,
    violations: Vec<String>,
}

/// The running fakes.
pub struct Fakes {
    url: String,
    state: Arc<Mutex<State>>,
}

impl Fakes {
    /// Start the server on 127.0.0.1 and a free port.
    pub fn start() -> Fakes {
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                tx.send(listener.local_addr().unwrap()).unwrap();
                let app = Router::new().fallback(handle).with_state(shared);
                axum::serve(listener, app).await.unwrap();
            });
        });
        let addr = rx.recv().unwrap();
        state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .okta_base = format!("http://{addr}/okta");
        Fakes {
            url: format!("http://{addr}"),
            state,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The server's root URL.
    pub fn url(&self) -> String {
        self.url.clone()
    }
    /// Okta org URL (`okta.base_url`).
    pub fn okta_base(&self) -> String {
        format!("{}/okta", self.url)
    }
    /// Slack Web API base (`slack.base_url`).
    pub fn slack_base(&self) -> String {
        format!("{}/slack/api", self.url)
    }
    /// A Slack incoming webhook URL.
    pub fn slack_webhook(&self) -> String {
        format!("{}/slack/webhook/T000/B000/XXXX", self.url)
    }
    /// PagerDuty Events API base (`pagerduty.events_url`).
    pub fn pd_events_base(&self) -> String {
        format!("{}/pd-events", self.url)
    }
    /// PagerDuty REST API base (`pagerduty.api_url`).
    pub fn pd_api_base(&self) -> String {
        format!("{}/pd-api", self.url)
    }

    /// An Okta user with `status` (ACTIVE, SUSPENDED, RECOVERY, …).
    pub fn add_user(&self, id: &str, status: &str) {
        let mut state = self.lock();
        let changed = state.okta_now() - chrono::Duration::days(30);
        state.users.insert(
            id.to_owned(),
            User {
                status: status.to_owned(),
                status_changed: changed,
            },
        );
    }

    /// The user's status changes now (as if an admin, or a call before a crash, did it).
    pub fn change_status_now(&self, id: &str, status: &str) {
        let mut state = self.lock();
        let now = state.okta_now();
        let user = state.users.get_mut(id).expect("a known user");
        user.status = status.to_owned();
        user.status_changed = now;
    }

    /// Okta's clock runs `skew_secs` ahead of ours (behind when negative): its `Date`,
    /// `X-Rate-Limit-Reset` and `statusChanged` say so.
    pub fn set_okta_clock_skew(&self, skew_secs: i64) {
        self.lock().okta_skew = chrono::Duration::seconds(skew_secs);
    }

    /// Apply the next request whose path contains `path_contains`, then close its connection
    /// without answering (a vendor that did the work and lost the connection).
    pub fn drop_next(&self, path_contains: &str) {
        self.lock().drops.push(path_contains.to_owned());
    }

    /// The user's Okta status, if the user exists.
    pub fn user_status(&self, id: &str) -> Option<String> {
        self.lock().users.get(id).map(|u| u.status.clone())
    }

    /// Members added to `group`, in order.
    pub fn group_members(&self, group: &str) -> Vec<String> {
        self.lock().groups.get(group).cloned().unwrap_or_default()
    }

    /// The on-call acknowledges the open incident with `dedup_key`.
    pub fn acknowledge(&self, dedup_key: &str) {
        let mut state = self.lock();
        let incident = state
            .incidents
            .iter_mut()
            .rev()
            .find(|i| i.key == dedup_key)
            .expect("an incident to acknowledge");
        incident.status = "acknowledged".into();
    }

    /// Status of the newest incident with `dedup_key`.
    pub fn incident_status(&self, dedup_key: &str) -> Option<String> {
        self.lock()
            .incidents
            .iter()
            .rev()
            .find(|i| i.key == dedup_key)
            .map(|i| i.status.clone())
    }

    /// Severity and urgency of the newest incident with `dedup_key`.
    pub fn incident_severity(&self, dedup_key: &str) -> Option<(String, String)> {
        self.lock()
            .incidents
            .iter()
            .rev()
            .find(|i| i.key == dedup_key)
            .map(|i| (i.severity.clone(), i.urgency.clone()))
    }

    /// Incidents ever opened with `dedup_key`.
    pub fn incident_count(&self, dedup_key: &str) -> usize {
        self.lock()
            .incidents
            .iter()
            .filter(|i| i.key == dedup_key)
            .count()
    }

    /// Every request received, oldest first.
    pub fn requests(&self) -> Vec<Recorded> {
        self.lock().requests.clone()
    }

    /// Requests with `method` to exactly `path`.
    pub fn count(&self, method: &str, path: &str) -> usize {
        self.lock()
            .requests
            .iter()
            .filter(|r| r.method == method && r.path == path)
            .count()
    }

    /// Requests with `method` to a path starting with `prefix`.
    pub fn count_prefix(&self, method: &str, prefix: &str) -> usize {
        self.lock()
            .requests
            .iter()
            .filter(|r| r.method == method && r.path.starts_with(prefix))
            .count()
    }

    /// Answer the next requests whose path contains `path_contains` with `responses`, in order
    /// (the request is still recorded and checked).
    pub fn fail_next(&self, path_contains: &str, responses: Vec<FakeResponse>) {
        self.lock()
            .injected
            .push((path_contains.to_owned(), responses.into()));
    }

    /// Add events to the System Log (`GET /api/v1/logs`), oldest first.
    pub fn append_logs(&self, events: &[Value]) {
        self.lock().logs.extend(events.iter().cloned());
    }

    /// Wait this long before answering any request.
    pub fn set_latency(&self, latency: Duration) {
        self.lock().latency = latency;
    }

    /// Answer the next request whose path contains `path_contains` only after `delay` (on top
    /// of any latency); the request is handled on arrival all the same, as a vendor would.
    pub fn delay_next(&self, path_contains: &str, delay: Duration) {
        self.lock().delays.push((path_contains.to_owned(), delay));
    }

    /// How often the user's sessions were cleared.
    pub fn sessions_cleared(&self, id: &str) -> usize {
        self.lock().sessions_cleared.get(id).copied().unwrap_or(0)
    }

    /// Someone else posts `count` messages to `channel` (a busy channel's history).
    pub fn post_others(&self, channel: &str, count: usize) {
        let mut state = self.lock();
        for _ in 0..count {
            let ts = format!(
                "{}.{:06}",
                chrono::Utc::now().timestamp(),
                state.messages.len() + 1
            );
            state
                .messages
                .push(json!({"channel": channel, "text": "chatter", "ts": ts}));
        }
    }

    /// Slack messages posted (chat.postMessage bodies and webhook bodies), oldest first.
    pub fn slack_messages(&self) -> Vec<Value> {
        self.lock().messages.clone()
    }

    /// Every way a request differed from the vendor's spec.
    pub fn violations(&self) -> Vec<String> {
        self.lock().violations.clone()
    }
}

/// What each fake route is in its vendor's spec: (spec file, method, spec path).
pub const SPEC_ROUTES: &[(&str, &str, &str)] = &[
    ("okta-management-openapi.yaml", "get", "/api/v1/users/{id}"),
    ("okta-management-openapi.yaml", "get", "/api/v1/logs"),
    (
        "okta-management-openapi.yaml",
        "delete",
        "/api/v1/users/{userId}/sessions",
    ),
    (
        "okta-management-openapi.yaml",
        "post",
        "/api/v1/users/{id}/lifecycle/suspend",
    ),
    (
        "okta-management-openapi.yaml",
        "post",
        "/api/v1/users/{id}/lifecycle/unsuspend",
    ),
    (
        "okta-management-openapi.yaml",
        "post",
        "/api/v1/users/{id}/lifecycle/reset_password",
    ),
    (
        "okta-management-openapi.yaml",
        "post",
        "/api/v1/users/{id}/lifecycle/expire_password",
    ),
    (
        "okta-management-openapi.yaml",
        "post",
        "/api/v1/users/{id}/lifecycle/reset_factors",
    ),
    (
        "okta-management-openapi.yaml",
        "put",
        "/api/v1/groups/{groupId}/users/{userId}",
    ),
    ("pagerduty-events-v2-openapi.json", "post", "/enqueue"),
    ("pagerduty-rest-openapi.json", "get", "/incidents"),
];

/// The SPEC_ROUTES entry serving `method` `path` (a path of the fake, with its prefix).
pub fn spec_route(
    method: &str,
    path: &str,
) -> Option<&'static (&'static str, &'static str, &'static str)> {
    // The fake's prefixes stand for the vendors' servers: the Events API's server ends in
    // /v2, its spec paths start after it.
    let (file, spec_path) = if let Some(rest) = path.strip_prefix("/okta") {
        ("okta-management-openapi.yaml", rest)
    } else if let Some(rest) = path.strip_prefix("/pd-events/v2") {
        ("pagerduty-events-v2-openapi.json", rest)
    } else if let Some(rest) = path.strip_prefix("/pd-api") {
        ("pagerduty-rest-openapi.json", rest)
    } else {
        return None;
    };
    let segments: Vec<&str> = spec_path.split('/').collect();
    SPEC_ROUTES.iter().find(|(f, m, template)| {
        let parts: Vec<&str> = template.split('/').collect();
        *f == file
            && m.eq_ignore_ascii_case(method)
            && parts.len() == segments.len()
            && parts
                .iter()
                .zip(&segments)
                .all(|(t, s)| (t.starts_with('{') && t.ends_with('}') && !s.is_empty()) || t == s)
    })
}

/// Okta's error body.
fn okta_error(status: u16, code: &str, summary: &str) -> Response {
    FakeResponse::new(status)
        .json(json!({
            "errorCode": code,
            "errorSummary": summary,
            "errorLink": code,
            "errorId": "oae-fake",
            "errorCauses": [],
        }))
        .into_response(chrono::Utc::now())
}

fn user_json(id: &str, user: &User) -> Value {
    json!({
        "id": id,
        "status": user.status,
        "statusChanged": user.status_changed.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "profile": {"login": format!("{id}@example.com")},
    })
}

async fn handle(
    axum::extract::State(shared): axum::extract::State<Arc<Mutex<State>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let recorded = Recorded {
        method: method.to_string(),
        path: uri.path().to_owned(),
        query: uri.query().unwrap_or("").to_owned(),
        headers: headers
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
            .collect(),
        body: String::from_utf8_lossy(&body).into_owned(),
        at: Instant::now(),
    };
    // The request is handled as soon as it has arrived, like a vendor would: a client that
    // goes away while the answer is slow (latency) does not undo what was done.
    let (response, injected, latency, hang_up) = {
        let mut state = shared.lock().unwrap_or_else(PoisonError::into_inner);
        state.requests.push(recorded.clone());
        let mut violations = Vec::new();
        let response = route(&mut state, &recorded, &mut violations);
        let injected = state
            .injected
            .iter_mut()
            .find(|(path, responses)| {
                recorded.path.contains(path.as_str()) && !responses.is_empty()
            })
            .and_then(|(_, responses)| responses.pop_front());
        for v in violations {
            state
                .violations
                .push(format!("{} {}: {v}", recorded.method, recorded.path));
        }
        let mut latency = state.latency;
        if let Some(i) = state
            .delays
            .iter()
            .position(|(path, _)| recorded.path.contains(path.as_str()))
        {
            latency += state.delays.remove(i).1;
        }
        let hang_up = state
            .drops
            .iter()
            .position(|path| recorded.path.contains(path.as_str()))
            .map(|i| state.drops.remove(i))
            .is_some();
        (response, injected, latency, hang_up)
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    if hang_up {
        // Ends the connection's task: the socket closes with no answer sent (resume_unwind
        // skips the panic hook, so nothing is printed).
        std::panic::resume_unwind(Box::new("fake: connection dropped without an answer"));
    }
    let okta_now = shared
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .okta_now();
    // route() changes no state when a response is injected: the vendor refused the call.
    let mut response = match injected {
        Some(canned) => canned.into_response(okta_now),
        None => response.unwrap_or_else(|r| r),
    };
    if recorded.path.starts_with("/okta/") {
        // Okta's clock, to the second (HTTP-date).
        let date = okta_now.format("%a, %d %b %Y %H:%M:%S GMT").to_string();
        response.headers_mut().insert("date", date.parse().unwrap());
    }
    response
}

/// Check the request and, unless a response is injected, apply it. `Err` carries an error
/// response the vendor would give.
#[allow(clippy::result_large_err)] // both sides are HTTP responses, returned once per request
fn route(
    state: &mut State,
    r: &Recorded,
    violations: &mut Vec<String>,
) -> Result<Response, Response> {
    let injected_pending = state
        .injected
        .iter()
        .any(|(path, responses)| r.path.contains(path.as_str()) && !responses.is_empty());
    let query: HashMap<String, String> = url_pairs(&r.query);
    let header = |name: &str| r.headers.get(name).map(String::as_str).unwrap_or("");
    // Every Okta and PagerDuty request the fake serves must be a route of the vendor's spec
    // (SPEC_ROUTES, itself checked against the spec files by tests/connectors.rs).
    let vendor = ["/okta/", "/pd-events/", "/pd-api/"]
        .iter()
        .any(|prefix| r.path.starts_with(prefix));
    if vendor && spec_route(&r.method, &r.path).is_none() {
        violations.push("not a route of the vendor spec (SPEC_ROUTES)".into());
    }
    if let Some(rest) = r.path.strip_prefix("/okta/api/v1/") {
        let auth = header("authorization");
        if !(auth.starts_with("SSWS ") || auth.starts_with("Bearer ")) || auth.len() < 8 {
            violations.push(format!(
                "Okta needs `Authorization: SSWS <token>` or `Bearer <token>`, got `{auth}`"
            ));
        }
        if !header("accept").contains("application/json") {
            violations.push("Okta requests must accept application/json".into());
        }
        let parts: Vec<&str> = rest.split('/').collect();
        let m = r.method.as_str();
        let required: &[&str] = match (m, parts.as_slice()) {
            ("POST", ["users", _, "lifecycle", "reset_password"]) => &["sendEmail"],
            _ => &[],
        };
        for name in required {
            if !query.contains_key(*name) {
                violations.push(format!("query parameter `{name}` is required"));
            }
        }
        for (name, value) in query.iter().filter(|_| parts.as_slice() != ["logs"]) {
            let allowed: &[&str] = match (m, parts.as_slice()) {
                ("DELETE", ["users", _, "sessions"]) => &["oauthTokens", "forgetDevices"],
                ("POST", ["users", _, "lifecycle", "reset_password"]) => {
                    &["sendEmail", "revokeSessions"]
                }
                ("POST", ["users", _, "lifecycle", "reset_factors"]) => {
                    &["removeRecoveryEnrollment"]
                }
                _ => &[],
            };
            if !allowed.contains(&name.as_str()) {
                violations.push(format!("query parameter `{name}` is not in the spec"));
            }
            if value != "true" && value != "false" {
                violations.push(format!(
                    "query parameter `{name}` must be a boolean, got `{value}`"
                ));
            }
        }
        if injected_pending {
            return Ok(StatusCode::OK.into_response());
        }
        let now = state.okta_now();
        if let (m, ["logs"]) = (m, parts.as_slice()) {
            return Ok(system_log(state, m, &query, violations));
        }
        return match (m, parts.as_slice()) {
            ("GET", ["users", id]) => match state.users.get(*id) {
                Some(u) => Ok(axum::Json(user_json(id, u)).into_response()),
                None => Err(okta_error(
                    404,
                    "E0000007",
                    &format!("Not found: Resource not found: {id} (User)"),
                )),
            },
            ("DELETE", ["users", id, "sessions"]) => {
                if !state.users.contains_key(*id) {
                    return Err(okta_error(404, "E0000007", "Not found: Resource not found"));
                }
                *state.sessions_cleared.entry((*id).to_owned()).or_default() += 1;
                Ok(StatusCode::NO_CONTENT.into_response())
            }
            ("POST", ["users", id, "lifecycle", action]) => {
                let Some(user) = state.users.get_mut(*id) else {
                    return Err(okta_error(404, "E0000007", "Not found: Resource not found"));
                };
                let (from, to): (Option<&str>, &str) = match *action {
                    "suspend" => (Some("ACTIVE"), "SUSPENDED"),
                    "unsuspend" => (Some("SUSPENDED"), "ACTIVE"),
                    "reset_password" => (None, "RECOVERY"),
                    "expire_password" => (None, "PASSWORD_EXPIRED"),
                    "reset_factors" => (None, ""),
                    other => {
                        violations.push(format!("unknown lifecycle operation {other}"));
                        return Err(StatusCode::NOT_FOUND.into_response());
                    }
                };
                if let Some(from) = from {
                    if user.status != from {
                        let summary = if *action == "suspend" {
                            "Api validation failed: Cannot suspend a user that is not active"
                        } else {
                            "Api validation failed: Cannot unsuspend a user that is not suspended"
                        };
                        return Err(okta_error(400, "E0000001", summary));
                    }
                }
                if !to.is_empty() {
                    user.status = to.to_owned();
                    user.status_changed = now;
                }
                let body = match *action {
                    "reset_password"
                        if query.get("sendEmail").map(String::as_str) == Some("false") =>
                    {
                        json!({"resetPasswordUrl": format!("https://fake.okta.com/reset/{id}")})
                    }
                    "expire_password" => user_json(id, user),
                    _ => json!({}),
                };
                Ok(axum::Json(body).into_response())
            }
            ("PUT", ["groups", group, "users", id]) => {
                if !state.users.contains_key(*id) {
                    return Err(okta_error(404, "E0000007", "Not found: Resource not found"));
                }
                let members = state.groups.entry((*group).to_owned()).or_default();
                if !members.iter().any(|m| m == id) {
                    members.push((*id).to_owned());
                }
                Ok(StatusCode::NO_CONTENT.into_response())
            }
            _ => {
                violations.push("no such Okta route".into());
                Err(StatusCode::NOT_FOUND.into_response())
            }
        };
    }
    if let Some(method_name) = r.path.strip_prefix("/slack/api/") {
        let auth = header("authorization");
        if !auth.starts_with("Bearer xox") {
            violations.push(format!(
                "Slack needs `Authorization: Bearer xoxb-…`, got `{auth}`"
            ));
        }
        return match (r.method.as_str(), method_name) {
            ("POST", "chat.postMessage") => {
                if !header("content-type").starts_with("application/json") {
                    violations.push(
                        "chat.postMessage with a JSON body needs Content-Type: application/json"
                            .into(),
                    );
                }
                let body: Value = serde_json::from_str(&r.body).unwrap_or_else(|_| {
                    violations.push("body is not JSON".into());
                    Value::Null
                });
                let channel = body["channel"].as_str().unwrap_or("");
                if channel.is_empty() {
                    violations.push("`channel` is required".into());
                }
                if body["text"].as_str().is_none_or(str::is_empty) && !body["blocks"].is_array() {
                    violations.push("`text` or `blocks` is required".into());
                }
                if body["blocks"].as_array().is_some_and(|b| b.len() > 50) {
                    violations.push("at most 50 blocks".into());
                }
                if let Some(metadata) = body.get("metadata") {
                    if metadata["event_type"].as_str().is_none_or(str::is_empty)
                        || !metadata["event_payload"].is_object()
                    {
                        violations.push(
                            "metadata needs `event_type` (string) and `event_payload` (object)"
                                .into(),
                        );
                    }
                }
                if injected_pending {
                    return Ok(StatusCode::OK.into_response());
                }
                let ts = format!(
                    "{}.{:06}",
                    chrono::Utc::now().timestamp(),
                    state.messages.len() + 1
                );
                let mut message = body.clone();
                message["ts"] = json!(ts);
                state.messages.push(message);
                Ok(
                    axum::Json(json!({"ok": true, "channel": channel, "ts": ts, "message": body}))
                        .into_response(),
                )
            }
            ("GET" | "POST", "conversations.history") => {
                let params = if r.method == "GET" {
                    query.clone()
                } else {
                    url_pairs(&r.body)
                };
                let channel = params.get("channel").cloned().unwrap_or_default();
                if channel.is_empty() {
                    violations.push("conversations.history needs `channel`".into());
                }
                let oldest: f64 = params
                    .get("oldest")
                    .and_then(|o| o.parse().ok())
                    .unwrap_or(0.0);
                let with_metadata =
                    params.get("include_all_metadata").map(String::as_str) == Some("true");
                let mut messages: Vec<Value> = state
                    .messages
                    .iter()
                    .filter(|m| m["channel"] == channel.as_str())
                    .filter(|m| {
                        m["ts"]
                            .as_str()
                            .and_then(|t| t.parse::<f64>().ok())
                            .unwrap_or(0.0)
                            >= oldest
                    })
                    .map(|m| {
                        let mut m = m.clone();
                        if !with_metadata {
                            m.as_object_mut().unwrap().remove("metadata");
                        }
                        m
                    })
                    .collect();
                // Newest first, a page of `limit` from the opaque cursor (here an offset).
                messages.reverse();
                let limit: usize = params
                    .get("limit")
                    .and_then(|l| l.parse().ok())
                    .unwrap_or(100);
                if !(1..=999).contains(&limit) {
                    violations.push(format!("limit {limit} is not 1..=999"));
                }
                let from = match params.get("cursor") {
                    Some(c) => c
                        .strip_prefix("next_")
                        .and_then(|n| n.parse::<usize>().ok())
                        .unwrap_or_else(|| {
                            violations.push(format!("cursor `{c}` was not minted here"));
                            0
                        }),
                    None => 0,
                };
                let to = (from + limit.max(1)).min(messages.len());
                let has_more = to < messages.len();
                let page = messages[from.min(to)..to].to_vec();
                let next = if has_more {
                    format!("next_{to}")
                } else {
                    String::new()
                };
                Ok(axum::Json(json!({
                    "ok": true, "messages": page, "has_more": has_more,
                    "response_metadata": {"next_cursor": next},
                }))
                .into_response())
            }
            _ => {
                violations.push("no such Slack method in the fake".into());
                Ok(axum::Json(json!({"ok": false, "error": "unknown_method"})).into_response())
            }
        };
    }
    if r.path.starts_with("/slack/webhook/") {
        if r.method != "POST" {
            violations.push("incoming webhooks take POST".into());
        }
        let body: Value = serde_json::from_str(&r.body).unwrap_or(Value::Null);
        if body["text"].as_str().is_none_or(str::is_empty) && !body["blocks"].is_array() {
            return Err((StatusCode::BAD_REQUEST, "no_text").into_response());
        }
        if !injected_pending {
            state.messages.push(body);
        }
        return Ok((StatusCode::OK, "ok").into_response());
    }
    if r.path == "/pd-events/v2/enqueue" {
        if r.method != "POST" {
            violations.push("enqueue takes POST".into());
        }
        if !header("content-type").starts_with("application/json") {
            violations.push("Events API v2 needs Content-Type: application/json".into());
        }
        let body: Value = serde_json::from_str(&r.body).unwrap_or(Value::Null);
        // The spec requires routing_key and event_action. It gives routing_key no length (real
        // integration keys are 32 characters, as in its example; not checked, as not specified).
        if body["routing_key"].as_str().is_none_or(str::is_empty) {
            violations.push("routing_key (a string) is required".into());
        }
        let action = body["event_action"].as_str().unwrap_or("");
        if !["trigger", "acknowledge", "resolve"].contains(&action) {
            violations.push(format!(
                "event_action `{action}` is not trigger|acknowledge|resolve"
            ));
        }
        let dedup = body["dedup_key"].as_str().unwrap_or("").to_owned();
        if action != "trigger" && dedup.is_empty() {
            violations.push("dedup_key is required to acknowledge or resolve".into());
        }
        if dedup.len() > 255 {
            violations.push("dedup_key is at most 255 characters".into());
        }
        if action == "trigger" {
            let payload = &body["payload"];
            for field in ["summary", "source", "severity"] {
                if payload[field].as_str().is_none_or(str::is_empty) {
                    violations.push(format!("payload.{field} is required on trigger"));
                }
            }
            if payload["summary"]
                .as_str()
                .is_some_and(|s| s.chars().count() > 1024)
            {
                violations.push("payload.summary is at most 1024 characters".into());
            }
            let severity = payload["severity"].as_str().unwrap_or("");
            if !["critical", "error", "warning", "info"].contains(&severity) {
                violations.push(format!("payload.severity `{severity}` is not in the enum"));
            }
            if let Some(ts) = payload.get("timestamp") {
                if ts
                    .as_str()
                    .is_none_or(|t| chrono::DateTime::parse_from_rfc3339(t).is_err())
                {
                    violations.push(format!("payload.timestamp `{ts}` is not a date-time"));
                }
            }
            if let Some(details) = payload.get("custom_details") {
                if !details.is_object() {
                    violations.push("payload.custom_details must be an object".into());
                }
            }
            for field in ["component", "group", "class"] {
                if payload.get(field).is_some_and(|v| !v.is_string()) {
                    violations.push(format!("payload.{field} must be a string"));
                }
            }
        }
        if let Some(links) = body.get("links") {
            let ok = links.as_array().is_some_and(|links| {
                links
                    .iter()
                    .all(|l| l["href"].as_str().is_some_and(|h| !h.is_empty()))
            });
            if !ok {
                violations.push("links must be an array of objects with `href`".into());
            }
        }
        if injected_pending {
            return Ok(StatusCode::OK.into_response());
        }
        let open = state
            .incidents
            .iter_mut()
            .rev()
            .find(|i| i.key == dedup && i.status != "resolved");
        match (action, open) {
            ("trigger", None) => {
                let id = format!("PINC{:04}", state.incidents.len() + 1);
                let severity = body["payload"]["severity"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned();
                let urgency = if matches!(severity.as_str(), "critical" | "error") {
                    "high"
                } else {
                    "low"
                };
                state.incidents.push(Incident {
                    id,
                    key: dedup.clone(),
                    status: "triggered".into(),
                    severity,
                    urgency: urgency.into(),
                    created_at: chrono::Utc::now(),
                });
            }
            ("resolve", Some(i)) => i.status = "resolved".into(),
            ("acknowledge", Some(i)) => i.status = "acknowledged".into(),
            _ => {}
        }
        return Ok((
            StatusCode::ACCEPTED,
            axum::Json(
                json!({"status": "success", "message": "Event processed", "dedup_key": dedup}),
            ),
        )
            .into_response());
    }
    if r.path == "/pd-api/incidents" {
        if r.method != "GET" {
            violations.push("list incidents takes GET".into());
        }
        let auth = header("authorization");
        if !auth.starts_with("Token token=") {
            violations.push(format!(
                "REST API needs `Authorization: Token token=…`, got `{auth}`"
            ));
        }
        if header("accept") != "application/vnd.pagerduty+json;version=2" {
            violations.push(format!(
                "REST API needs Accept: application/vnd.pagerduty+json;version=2, got `{}`",
                header("accept")
            ));
        }
        if header("content-type") != "application/json" {
            violations.push(format!(
                "REST API needs Content-Type: application/json, got `{}`",
                header("content-type")
            ));
        }
        // The list-incidents query parameters of the spec (pagerduty-rest-openapi.json).
        const PARAMS: &[&str] = &[
            "limit",
            "offset",
            "total",
            "date_range",
            "incident_key",
            "service_ids[]",
            "team_ids[]",
            "user_ids[]",
            "urgencies[]",
            "time_zone",
            "statuses[]",
            "sort_by",
            "include[]",
            "since",
            "until",
        ];
        for name in query.keys() {
            if !PARAMS.contains(&name.as_str()) {
                violations.push(format!("`{name}` is not a list-incidents parameter"));
            }
        }
        if query.get("date_range").is_some_and(|d| d != "all") {
            violations.push("date_range can only be `all`".into());
        }
        if query
            .get("limit")
            .is_some_and(|l| l.parse::<u32>().is_ok_and(|l| l > 100) || l.parse::<u32>().is_err())
        {
            violations.push("limit is a number, at most 100".into());
        }
        let sort = query.get("sort_by").cloned().unwrap_or_default();
        if !sort.is_empty()
            && !["incident_number", "created_at", "resolved_at", "urgency"]
                .iter()
                .any(|f| sort == *f || sort == format!("{f}:asc") || sort == format!("{f}:desc"))
        {
            violations.push(format!("sort_by `{sort}` is not field[:asc|:desc]"));
        }
        let key = query.get("incident_key").cloned().unwrap_or_default();
        let mut incidents: Vec<Value> = state
            .incidents
            .iter()
            .filter(|i| key.is_empty() || i.key == key)
            .map(|i| {
                json!({"id": i.id, "type": "incident", "incident_key": i.key, "status": i.status,
                       "urgency": i.urgency,
                       "created_at": i.created_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                       "html_url": format!("https://fake.pagerduty.com/incidents/{}", i.id)})
            })
            .collect();
        // Oldest first unless asked otherwise, like PagerDuty's default.
        if sort.ends_with(":desc") {
            incidents.reverse();
        }
        return Ok(axum::Json(
            json!({"incidents": incidents, "limit": 25, "offset": 0, "more": false}),
        )
        .into_response());
    }
    violations.push("no fake serves this path".into());
    Err(StatusCode::NOT_FOUND.into_response())
}

/// `GET /api/v1/logs` in polling mode: pages of `limit` from the opaque `after` cursor, with the
/// `Link` headers (self, and next — always, as Okta does without `until`) and rate-limit headers.
fn system_log(
    state: &State,
    method: &str,
    query: &HashMap<String, String>,
    violations: &mut Vec<String>,
) -> Response {
    if method != "GET" {
        violations.push("the System Log takes GET".into());
    }
    for name in query.keys() {
        if ![
            "since",
            "until",
            "after",
            "filter",
            "q",
            "limit",
            "sortOrder",
        ]
        .contains(&name.as_str())
        {
            violations.push(format!("`{name}` is not a System Log parameter"));
        }
    }
    if query.contains_key("until") {
        violations.push("polling mode has no `until`".into());
    }
    if query.get("sortOrder").map(String::as_str) != Some("ASCENDING") {
        violations.push("polling needs sortOrder=ASCENDING".into());
    }
    let limit: usize = query
        .get("limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(100);
    if limit > 1000 {
        violations.push("limit is at most 1000".into());
    }
    // The cursor is opaque to clients; here it is an index, minted only by this fake.
    let from = match query.get("after") {
        Some(after) => match after
            .strip_prefix('c')
            .and_then(|n| n.parse::<usize>().ok())
        {
            Some(n) => n,
            None => {
                violations.push(format!("`after={after}` was not minted by the System Log"));
                0
            }
        },
        None => {
            if !query.contains_key("since") {
                violations.push("the first request names `since`".into());
            }
            0
        }
    };
    let to = (from + limit).min(state.logs.len());
    let page: Vec<Value> = state.logs[from.min(to)..to].to_vec();
    let link = |after: usize, rel: &str| {
        format!(
            "<{}/api/v1/logs?limit={limit}&sortOrder=ASCENDING&after=c{after}>; rel=\"{rel}\"",
            state.okta_base
        )
    };
    let header = format!("{}, {}", link(from, "self"), link(to, "next"));
    let mut response = axum::Json(page).into_response();
    let headers = response.headers_mut();
    headers.insert("link", header.parse().unwrap());
    headers.insert("x-rate-limit-limit", "120".parse().unwrap());
    headers.insert("x-rate-limit-remaining", "119".parse().unwrap());
    let reset = chrono::Utc::now().timestamp() + 60;
    headers.insert("x-rate-limit-reset", reset.to_string().parse().unwrap());
    response
}

/// `a=1&b=2` (URL-decoded).
fn url_pairs(text: &str) -> HashMap<String, String> {
    url::form_urlencoded::parse(text.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}
