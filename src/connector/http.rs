//! What the three connectors share: secrets, the HTTP client, URLs that cannot leave their
//! base, one request that can be sent or only described (dry run), and the mapping of vendor
//! answers to retryable or permanent failures.

use std::path::Path;
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _};
use chrono::{DateTime, Utc};
use reqwest::header::HeaderMap;
use reqwest::{Method, Url};
use serde_json::{json, Value};

use super::Failure;

/// Vendor response bodies kept in errors, the ledger and the DLQ, at most (bytes).
const MAX_KEPT_BODY: usize = 4096;
/// Vendor response bodies read at most (a channel history page is well below this).
const MAX_READ_BODY: usize = 4 << 20;

/// A credential: never printed, never logged.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    /// Wrap a credential.
    pub fn new(value: String) -> Self {
        Secret(value)
    }

    /// The value, for the one header that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

/// The secret from `file` (trimmed) when configured, else from the environment variable `var`;
/// `None` when neither has one (the connector then runs dry).
pub fn load_secret(
    file: Option<&Path>,
    var: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> anyhow::Result<Option<Secret>> {
    Ok(crate::shared_secret::load_with(file, var, env)?.map(Secret))
}

/// A configured base URL: http or https, no query, no fragment.
pub fn base_url(name: &str, text: &str) -> anyhow::Result<Url> {
    let url = Url::parse(text).with_context(|| format!("{name}: `{text}` is not a URL"))?;
    if !matches!(url.scheme(), "https" | "http") || url.cannot_be_a_base() {
        bail!("{name}: `{text}` must be an http(s) URL");
    }
    if url.query().is_some() || url.fragment().is_some() {
        bail!("{name}: `{text}` must not have a query or fragment");
    }
    if url.scheme() == "http" && !is_loopback(&url) {
        tracing::warn!(
            setting = name,
            "plain http to a non-local host: credentials travel unencrypted"
        );
    }
    Ok(url)
}

fn is_loopback(url: &Url) -> bool {
    matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"))
}

/// `base` with `segments` appended, each percent-encoded as one segment: ids from decisions
/// can never add segments, climb out of the base or change the host.
pub fn join(base: &Url, segments: &[&str]) -> Result<Url, Failure> {
    if let Some(bad) = segments
        .iter()
        .find(|s| s.is_empty() || **s == "." || **s == "..")
    {
        return Err(Failure::permanent(format!(
            "`{bad}` cannot be a URL path segment"
        )));
    }
    let mut url = base.clone();
    url.path_segments_mut()
        .map_err(|()| Failure::permanent("the base URL cannot take a path"))?
        .pop_if_empty()
        .extend(segments);
    Ok(url)
}

/// One vendor request: sent, or described for the ledger in a dry run.
#[derive(Debug, Clone)]
pub struct Call {
    /// HTTP method.
    pub method: Method,
    /// Full URL (query included).
    pub url: Url,
    /// Headers other than the credential.
    pub headers: Vec<(&'static str, String)>,
    /// The credential header: its name and value (`None` in a dry run, where there is no
    /// credential); always described as `[redacted]`, so a dry run shows the request's shape.
    pub auth: Option<(&'static str, Option<String>)>,
    /// JSON body.
    pub body: Option<Value>,
    /// Redact the URL's path when described (a Slack webhook URL is itself the secret).
    pub secret_url: bool,
}

impl Call {
    /// A request with JSON accept/content headers.
    pub fn new(method: Method, url: Url) -> Self {
        Call {
            method,
            url,
            headers: vec![("Accept", "application/json".into())],
            auth: None,
            body: None,
            secret_url: false,
        }
    }

    /// With a JSON body.
    pub fn json(mut self, body: Value) -> Self {
        self.headers
            .push(("Content-Type", "application/json; charset=utf-8".into()));
        self.body = Some(body);
        self
    }

    /// The request as the ledger records it in a dry run: the credential redacted.
    pub fn describe(&self) -> Value {
        let mut headers: serde_json::Map<String, Value> = self
            .headers
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Value::String(v.clone())))
            .collect();
        if let Some((name, _)) = &self.auth {
            headers.insert((*name).to_owned(), json!("[redacted]"));
        }
        let url = if self.secret_url {
            format!(
                "{}://{}/[redacted]",
                self.url.scheme(),
                self.url.host_str().unwrap_or("")
            )
        } else {
            self.url.to_string()
        };
        json!({
            "dry_run": true,
            "method": self.method.as_str(),
            "url": url,
            "headers": headers,
            "body": self.body,
        })
    }

    /// Send it. A request that never reached the vendor (no connection) is retryable; one that
    /// may have (timed out or cut off after it was sent) is retryable when it only reads, and
    /// [`Failure::MaybeApplied`] when it writes.
    pub async fn send(&self, client: &reqwest::Client) -> Result<Answer, Failure> {
        let mut request = client.request(self.method.clone(), self.url.clone());
        for (name, value) in &self.headers {
            request = request.header(*name, value);
        }
        match &self.auth {
            Some((name, Some(value))) => request = request.header(*name, value),
            // Sending without the credential would only earn a 401 and hide the real problem.
            Some((_, None)) => {
                return Err(Failure::permanent(format!(
                    "{} {}: no credential to send",
                    self.method,
                    self.redacted_url()
                )))
            }
            None => {}
        }
        if let Some(body) = &self.body {
            request = request.body(body.to_string());
        }
        let what = format!("{} {}", self.method, self.redacted_url());
        let response = request.send().await.map_err(|e| {
            let sent = !e.is_connect();
            self.lost(sent, format!("{what}: {}", transport_error(e)))
        })?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| self.lost(true, format!("{what}: reading the answer: {e}")))?;
        if bytes.len() > MAX_READ_BODY {
            return Err(self.lost(true, format!("{what}: answer over {MAX_READ_BODY} bytes")));
        }
        Ok(Answer {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
            what,
            writes: self.writes(),
        })
    }

    /// Whether the request can change something at the vendor (anything but GET and HEAD).
    fn writes(&self) -> bool {
        !matches!(self.method, Method::GET | Method::HEAD)
    }

    /// The failure of a call whose answer was lost: if it was `sent` and writes, it may have
    /// been applied.
    fn lost(&self, sent: bool, detail: String) -> Failure {
        if sent && self.writes() {
            Failure::MaybeApplied {
                after: None,
                detail,
            }
        } else {
            Failure::Retryable {
                after: None,
                detail,
            }
        }
    }

    fn redacted_url(&self) -> String {
        if self.secret_url {
            "[webhook]".into()
        } else {
            format!(
                "{}{}",
                self.url.origin().ascii_serialization(),
                self.url.path()
            )
        }
    }
}

fn transport_error(e: reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "cannot connect".into()
    } else {
        // Without the URL: it may be a secret (webhook).
        e.without_url().to_string()
    }
}

/// `text` cut to what errors, the ledger and the DLQ keep.
pub fn truncated(text: &str) -> String {
    if text.len() <= MAX_KEPT_BODY {
        return text.to_owned();
    }
    let mut end = MAX_KEPT_BODY;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// A vendor's answer.
#[derive(Debug)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// Response headers.
    pub headers: HeaderMap,
    /// Body.
    pub body: String,
    /// "METHOD url" for messages.
    pub what: String,
    /// Whether the request could change something at the vendor (not a GET).
    pub writes: bool,
}

impl Answer {
    /// A header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body as JSON (`Null` when it is not).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }

    /// The vendor's clock when it answered (the `Date` header, whole seconds).
    pub fn vendor_now(&self) -> Option<DateTime<Utc>> {
        http_date(self.header("date")?)
    }

    /// The wait `Retry-After` asks for: seconds, or an HTTP-date read against the vendor's own
    /// `Date` (our clock only when it sent none), so a skewed clock changes nothing.
    pub fn retry_after(&self) -> Option<Duration> {
        let value = self.header("retry-after")?;
        if let Some(wait) = retry_after(value) {
            return Some(wait);
        }
        let at = http_date(value)?;
        let now = self.vendor_now().unwrap_or_else(Utc::now);
        Some((at - now).to_std().unwrap_or(Duration::ZERO))
    }

    /// 2xx → `Ok(self)`; 429 → retryable after `after` when the caller knows the vendor's
    /// wait, else after `Retry-After`, else after no stated wait (`Some(ZERO)`: the respond
    /// stage still waits its rate-limit floor); 408 → retryable; 5xx → retryable for a read,
    /// [`Failure::MaybeApplied`] for a write (the vendor may have done it before failing);
    /// anything else is permanent, with the body.
    pub fn check(self, after: Option<Duration>) -> Result<Answer, Failure> {
        match self.status {
            200..=299 => Ok(self),
            429 => Err(Failure::Retryable {
                after: after
                    .or_else(|| self.retry_after())
                    .or(Some(Duration::ZERO)),
                detail: self.failure_detail(),
            }),
            500..=599 if self.writes => Err(Failure::MaybeApplied {
                after: after.or_else(|| self.retry_after()),
                detail: self.failure_detail(),
            }),
            408 | 500..=599 => Err(Failure::Retryable {
                after: after.or_else(|| self.retry_after()),
                detail: self.failure_detail(),
            }),
            status => Err(Failure::Permanent {
                status: Some(status),
                detail: format!("{} answered {status}", self.what),
                body: truncated(&self.body),
            }),
        }
    }
}

impl Answer {
    /// "METHOD url answered STATUS: body" for a failure.
    fn failure_detail(&self) -> String {
        format!(
            "{} answered {}: {}",
            self.what,
            self.status,
            truncated(&self.body)
        )
    }
}

/// An HTTP-date (`Sun, 06 Nov 1994 08:49:37 GMT`).
pub fn http_date(value: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc2822(value.trim())
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Rate-limit waits are never shorter than this: a reset read as now or past (rounded to the
/// second, a drifting clock) must not turn into a burst of attempts.
pub const RATE_LIMIT_FLOOR: Duration = Duration::from_secs(1);
/// At most this much is added at random to a rate-limit wait, so that what waited together
/// does not return together.
const RATE_LIMIT_JITTER: Duration = Duration::from_millis(500);

/// The pause after a vendor asked to wait `after`: at least [`RATE_LIMIT_FLOOR`], plus jitter.
pub fn rate_limit_pause(after: Duration) -> Duration {
    let jitter = rand::random_range(0..=RATE_LIMIT_JITTER.as_millis() as u64);
    after.max(RATE_LIMIT_FLOOR) + Duration::from_millis(jitter)
}

/// `Retry-After` in seconds (the form Slack and PagerDuty use).
pub fn retry_after(value: &str) -> Option<Duration> {
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// The shared HTTP client: a timeout per request, no redirects (a redirect could lead a
/// credential to another host), no proxy surprises beyond the environment's.
pub fn client(timeout: Duration) -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("vigil/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| anyhow!("cannot build the HTTP client: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_cannot_leave_the_base_url() {
        let base = Url::parse("https://acme.okta.com/").unwrap();
        let url = join(&base, &["api", "v1", "users", "a/../../admin?x=1#y"]).unwrap();
        assert_eq!(url.host_str(), Some("acme.okta.com"));
        assert_eq!(url.path(), "/api/v1/users/a%2F..%2F..%2Fadmin%3Fx=1%23y");
        assert!(url.query().is_none());
        assert!(join(&base, &["api", ".."]).is_err());
        assert!(join(&base, &["api", ""]).is_err());
        let prefixed = Url::parse("http://127.0.0.1:9/okta").unwrap();
        assert_eq!(
            join(&prefixed, &["api", "v1"]).unwrap().as_str(),
            "http://127.0.0.1:9/okta/api/v1"
        );
    }

    #[test]
    fn answers_are_classified_and_retry_after_is_read() {
        let answer = |status: u16, writes: bool, headers: &[(&'static str, &str)]| {
            let mut map = HeaderMap::new();
            for (k, v) in headers {
                map.insert(*k, v.parse().unwrap());
            }
            Answer {
                status,
                headers: map,
                body: "{\"error\":\"x\"}".into(),
                what: "POST x".into(),
                writes,
            }
        };
        assert!(answer(204, true, &[]).check(None).is_ok());
        match answer(429, true, &[("retry-after", "7")]).check(None) {
            Err(Failure::Retryable { after, .. }) => {
                assert_eq!(after, Some(Duration::from_secs(7)))
            }
            other => panic!("{other:?}"),
        }
        // A 429 that names no wait is still a rate limit: a wait (of zero) the stage floors.
        assert!(matches!(
            answer(429, true, &[]).check(None),
            Err(Failure::Retryable {
                after: Some(Duration::ZERO),
                ..
            })
        ));
        // Retry-After as an HTTP-date counts from the vendor's Date, not from our clock.
        match answer(
            503,
            false,
            &[
                ("date", "Sun, 06 Nov 1994 08:49:37 GMT"),
                ("retry-after", "Sun, 06 Nov 1994 08:49:52 GMT"),
            ],
        )
        .check(None)
        {
            Err(Failure::Retryable { after, .. }) => {
                assert_eq!(after, Some(Duration::from_secs(15)))
            }
            other => panic!("{other:?}"),
        }
        // A 5xx to a write may have been applied; to a read it is a plain failure.
        assert!(matches!(
            answer(503, true, &[]).check(None),
            Err(Failure::MaybeApplied { after: None, .. })
        ));
        assert!(matches!(
            answer(503, false, &[]).check(None),
            Err(Failure::Retryable { after: None, .. })
        ));
        match answer(400, true, &[]).check(None) {
            Err(Failure::Permanent { status, body, .. }) => {
                assert_eq!(status, Some(400));
                assert!(body.contains("error"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn secrets_come_from_files_then_the_environment_and_never_print() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, "  s3cret\n").unwrap();
        let env = |name: &str| (name == "VAR").then(|| "from-env".to_owned());
        let from_file = load_secret(Some(&file), "VAR", &env).unwrap().unwrap();
        assert_eq!(from_file.expose(), "s3cret");
        assert_eq!(format!("{from_file:?}"), "[redacted]");
        assert_eq!(
            load_secret(None, "VAR", &env).unwrap().unwrap().expose(),
            "from-env"
        );
        assert!(load_secret(None, "OTHER", &env).unwrap().is_none());
        assert!(load_secret(Some(&dir.path().join("missing")), "VAR", &env).is_err());
    }

    #[test]
    fn a_described_call_hides_the_credential() {
        let mut call =
            Call::new(Method::POST, Url::parse("https://x.test/a").unwrap()).json(json!({"k": 1}));
        call.auth = Some(("Authorization", Some("SSWS token-value".into())));
        let text = call.describe().to_string();
        assert!(!text.contains("token-value"), "{text}");
        assert_eq!(call.describe()["headers"]["Authorization"], "[redacted]");
        // In a dry run there is no credential, yet the header the vendor needs is shown.
        call.auth = Some(("Authorization", None));
        assert_eq!(call.describe()["headers"]["Authorization"], "[redacted]");
    }
}
