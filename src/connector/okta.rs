//! Okta: user lifecycle, sessions and group membership through the Management API
//! (okta-management-openapi.yaml), with Okta's rate limits honoured.
//!
//! Okta's lifecycle decides what fits: `suspend` works only on ACTIVE users and `unsuspend`
//! only on SUSPENDED ones, so both read the user first — already there is success, any other
//! status is a recorded skip (a user in RECOVERY after a password reset cannot sign in until
//! the reset is done anyway).

use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::{Method, Url};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::time::Instant;

use super::http::{self, Answer, Call, Secret};
use super::{Executed, Failure, Outcome, Reconciled};
use crate::decision::{Action, ActionKind};

/// Environment variable of the API token (when `token_file` is not set).
pub const TOKEN_ENV: &str = "VIGIL_OKTA_TOKEN";

/// How the token is presented.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum OktaAuth {
    /// `Authorization: SSWS <API token>`.
    #[default]
    Ssws,
    /// `Authorization: Bearer <OAuth 2.0 access token>`.
    Bearer,
}

/// The Okta connector's settings (`[okta]`).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct OktaConfig {
    /// The org URL, e.g. `https://acme.okta.com`; unset → dry run.
    pub base_url: Option<String>,
    /// Token scheme.
    pub auth: OktaAuth,
    /// File holding the token (else `VIGIL_OKTA_TOKEN`).
    pub token_file: Option<PathBuf>,
    /// Admin console URL for links in messages; default: the org URL with `-admin`
    /// (acme.okta.com → acme-admin.okta.com).
    pub admin_url: Option<String>,
}

impl OktaConfig {
    /// The admin console URL (see `admin_url`), if the org is known.
    pub fn admin_console(&self) -> Option<String> {
        if let Some(admin) = &self.admin_url {
            return Some(admin.clone());
        }
        let mut base = Url::parse(self.base_url.as_deref()?).ok()?;
        let host = base.host_str()?.to_owned();
        if let Some((org, domain)) = host.split_once('.') {
            if !org.ends_with("-admin")
                && ["okta.com", "oktapreview.com", "okta-emea.com"].contains(&domain)
            {
                base.set_host(Some(&format!("{org}-admin.{domain}"))).ok()?;
            }
        }
        // The origin keeps a port (a proxy, a test server); a custom domain stays as it is.
        Some(base.origin().ascii_serialization())
    }
}

/// The Okta client.
pub struct Okta {
    base: Url,
    /// `SSWS …` or `Bearer …`; `None` → dry run.
    authorization: Option<Secret>,
    client: reqwest::Client,
    /// Okta said X-Rate-Limit-Remaining: 0; no request before this instant.
    paused_until: Mutex<Option<Instant>>,
    /// Okta's clock minus ours (milliseconds), from the last answer's `Date`: Okta's own
    /// timestamps (`statusChanged`) are compared with our times through it.
    clock_offset_ms: AtomicI64,
}

impl Okta {
    /// A client for `config`.
    pub fn new(
        config: &OktaConfig,
        client: reqwest::Client,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> anyhow::Result<Self> {
        let token = http::load_secret(config.token_file.as_deref(), TOKEN_ENV, env)?;
        let base = match &config.base_url {
            Some(url) => http::base_url("okta.base_url", url)?,
            None if token.is_some() => {
                anyhow::bail!("okta: a token is configured but okta.base_url is not")
            }
            None => Url::parse("https://okta.invalid").expect("a valid placeholder"),
        };
        let scheme = match config.auth {
            OktaAuth::Ssws => "SSWS",
            OktaAuth::Bearer => "Bearer",
        };
        Ok(Okta {
            base,
            authorization: token.map(|t| Secret::new(format!("{scheme} {}", t.expose()))),
            client,
            paused_until: Mutex::new(None),
            clock_offset_ms: AtomicI64::new(0),
        })
    }

    /// Whether requests are only recorded.
    pub fn is_dry_run(&self) -> bool {
        self.authorization.is_none()
    }

    /// One attempt at an Okta action.
    pub async fn execute(&self, action: &Action) -> Result<Executed, Failure> {
        let user = checked_id(&action.target)?;
        let flag = |name: &str| {
            action
                .params
                .get(name)
                .and_then(Value::as_bool)
                .unwrap_or(false)
        };
        let call = match action.kind {
            ActionKind::OktaClearSessions => {
                let mut call =
                    self.call(Method::DELETE, &["api", "v1", "users", user, "sessions"])?;
                call.url
                    .query_pairs_mut()
                    .append_pair("oauthTokens", bool_text(flag("oauth_tokens")));
                call
            }
            ActionKind::OktaResetPassword => {
                let mut call = self.lifecycle(user, "reset_password")?;
                call.url
                    .query_pairs_mut()
                    .append_pair("sendEmail", bool_text(flag("send_email")))
                    .append_pair("revokeSessions", bool_text(flag("revoke_sessions")));
                call
            }
            ActionKind::OktaExpirePassword => self.lifecycle(user, "expire_password")?,
            ActionKind::OktaResetFactors => self.lifecycle(user, "reset_factors")?,
            ActionKind::OktaAddToGroup => {
                let group = action
                    .params
                    .get("group_id")
                    .and_then(Value::as_str)
                    .ok_or_else(|| Failure::permanent("okta.add_to_group needs params.group_id"))?;
                let group = checked_id(group)?;
                self.call(Method::PUT, &["api", "v1", "groups", group, "users", user])?
            }
            ActionKind::OktaSuspendUser => {
                return self
                    .transition(user, "suspend", "ACTIVE", "SUSPENDED")
                    .await
            }
            ActionKind::OktaUnsuspendUser => {
                return self
                    .transition(user, "unsuspend", "SUSPENDED", "ACTIVE")
                    .await
            }
            other => {
                return Err(Failure::permanent(format!(
                    "{} is not an Okta action",
                    other.as_str()
                )))
            }
        };
        if self.is_dry_run() {
            return Ok(dry_run(&call));
        }
        let answer = self.send(&call).await?;
        // The reset link (sendEmail=false) is a credential: keep only that there was one.
        let link = answer.json().get("resetPasswordUrl").is_some();
        Ok(Executed {
            outcome: Outcome::Done,
            detail: json!({"http_status": answer.status, "reset_link_returned": link.then_some(true)}),
        })
    }

    /// Suspend or unsuspend: read the status, act only from `from`, succeed if already `to`.
    async fn transition(
        &self,
        user: &str,
        operation: &str,
        from: &str,
        to: &str,
    ) -> Result<Executed, Failure> {
        let call = self.lifecycle(user, operation)?;
        if self.is_dry_run() {
            let mut executed = dry_run(&call);
            executed.detail["note"] = json!(format!(
                "dry run: the user's status is not read; Okta allows {operation} only from {from}"
            ));
            return Ok(executed);
        }
        let (status, _) = self.user_status(user).await?;
        if status == to {
            return Ok(Executed {
                outcome: Outcome::AlreadyInState,
                detail: json!({"status_read": status}),
            });
        }
        if status != from {
            return Ok(Executed {
                outcome: Outcome::Skipped,
                detail: json!({
                    "status_read": status,
                    "reason": format!("the user is {status}; Okta allows {operation} only from {from}"),
                }),
            });
        }
        match self.send(&call).await {
            Ok(answer) => Ok(Executed {
                outcome: Outcome::Done,
                detail: json!({"status_read": status, "http_status": answer.status}),
            }),
            // E0000001: the status changed between the read and the call (a race with an
            // admin or another action): what matters is where the user is now.
            Err(Failure::Permanent {
                status: Some(400),
                body,
                detail,
            }) if body.contains("E0000001") => {
                let (now, _) = self.user_status(user).await?;
                if now == to {
                    Ok(Executed {
                        outcome: Outcome::AlreadyInState,
                        detail: json!({"status_read": now, "okta_error": body}),
                    })
                } else if now != from {
                    // Moved elsewhere meanwhile (RECOVERY, …): the same skip as if read first.
                    Ok(Executed {
                        outcome: Outcome::Skipped,
                        detail: json!({
                            "status_read": now,
                            "reason": format!("the user became {now}; Okta allows {operation} only from {from}"),
                            "okta_error": body,
                        }),
                    })
                } else {
                    Err(Failure::Permanent {
                        status: Some(400),
                        body,
                        detail,
                    })
                }
            }
            Err(e) => Err(e),
        }
    }

    /// Whether a password reset happened since `since` (our clock): the user is in RECOVERY
    /// (or PASSWORD_EXPIRED) and the status changed at or after it, on Okta's clock (our time
    /// moved by the offset its `Date` showed, less two seconds: both are read to the second).
    pub async fn reset_since(
        &self,
        action: &Action,
        since: DateTime<Utc>,
    ) -> Result<Reconciled, Failure> {
        if self.is_dry_run() {
            return Ok(Reconciled::NotDone);
        }
        let (status, changed) = self.user_status(checked_id(&action.target)?).await?;
        let since_okta = since
            + chrono::Duration::milliseconds(self.clock_offset_ms.load(Ordering::Relaxed))
            - chrono::Duration::seconds(2);
        let recent = changed.is_some_and(|c| c >= since_okta);
        if matches!(status.as_str(), "RECOVERY" | "PASSWORD_EXPIRED") && recent {
            Ok(Reconciled::AlreadyDone(
                json!({"status_read": status, "status_changed": changed}),
            ))
        } else {
            Ok(Reconciled::NotDone)
        }
    }

    /// The user's `status` and `statusChanged`.
    async fn user_status(&self, user: &str) -> Result<(String, Option<DateTime<Utc>>), Failure> {
        let call = self.call(Method::GET, &["api", "v1", "users", user])?;
        let body = self.send(&call).await?.json();
        let status = body["status"]
            .as_str()
            .ok_or_else(|| Failure::permanent(format!("Okta's user {user} has no status")))?
            .to_owned();
        let changed = body["statusChanged"]
            .as_str()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc));
        Ok((status, changed))
    }

    fn lifecycle(&self, user: &str, operation: &str) -> Result<Call, Failure> {
        self.call(
            Method::POST,
            &["api", "v1", "users", user, "lifecycle", operation],
        )
    }

    fn call(&self, method: Method, segments: &[&str]) -> Result<Call, Failure> {
        let mut call = Call::new(method, http::join(&self.base, segments)?);
        call.auth = Some((
            "Authorization",
            self.authorization.as_ref().map(|a| a.expose().to_owned()),
        ));
        // Okta's API documentation sends both headers on every request, bodies or not.
        call.headers
            .push(("Content-Type", "application/json".into()));
        Ok(call)
    }

    /// Send, after any rate-limit pause; remember a new pause; 429 waits for the reset.
    async fn send(&self, call: &Call) -> Result<Answer, Failure> {
        let pause = *self
            .paused_until
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(until) = pause.filter(|&u| u > Instant::now()) {
            crate::metrics::metrics()
                .rate_limit_waits
                .with_label_values(&["okta"])
                .inc();
            tokio::time::sleep_until(until).await;
        }
        let answer = call.send(&self.client).await?;
        if let Some(okta_now) = answer.vendor_now() {
            let offset = okta_now.timestamp_millis() - Utc::now().timestamp_millis();
            self.clock_offset_ms.store(offset, Ordering::Relaxed);
        }
        let reset = rate_limit_wait(&answer);
        // The window is spent (a 429, or a success that used its last request): every
        // Okta request of this client waits for the reset instead of earning a 429.
        let spent = answer.status == 429 || answer.header("x-rate-limit-remaining") == Some("0");
        if let (true, Some(wait)) = (spent, reset) {
            *self
                .paused_until
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Instant::now() + wait);
        }
        let after = if answer.status == 429 { reset } else { None };
        answer.check(after)
    }
}

/// How long until Okta's rate-limit window resets, on Okta's clock: `X-Rate-Limit-Reset` less
/// the answer's `Date` (our clock only when there is none), plus a second, as both are
/// rounded down to the second; `None` without a reset header.
pub(crate) fn rate_limit_wait(answer: &Answer) -> Option<Duration> {
    let now_ms = answer
        .vendor_now()
        .unwrap_or_else(Utc::now)
        .timestamp_millis();
    let reset = answer.header("x-rate-limit-reset")?;
    // A reset already past needs no wait, not the rounding second.
    let wait = reset_wait(reset, now_ms)?;
    Some(if wait.is_zero() {
        wait
    } else {
        (wait + Duration::from_secs(1)).min(MAX_RESET_WAIT)
    })
}

/// The longest wait an `X-Rate-Limit-Reset` may impose: Okta's windows are one minute, so
/// anything much later is a skewed clock or a bad header, not a reason to stall the stage.
const MAX_RESET_WAIT: Duration = Duration::from_secs(120);

/// How long from `now_ms` (Unix milliseconds) until `X-Rate-Limit-Reset` (Unix seconds):
/// never negative, at most [`MAX_RESET_WAIT`]; `None` when the header is not a number.
pub(crate) fn reset_wait(header: &str, now_ms: i64) -> Option<Duration> {
    let reset: i64 = header.trim().parse().ok()?;
    let wait_ms = reset.saturating_mul(1000).saturating_sub(now_ms).max(0);
    Some(Duration::from_millis(wait_ms as u64).min(MAX_RESET_WAIT))
}

/// Okta ids are short alphanumeric strings: anything else in a target is refused before it
/// reaches a URL.
fn checked_id(id: &str) -> Result<&str, Failure> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(id)
    } else {
        Err(Failure::permanent(format!("`{id}` is not an Okta id")))
    }
}

fn bool_text(b: bool) -> &'static str {
    if b {
        "true"
    } else {
        "false"
    }
}

fn dry_run(call: &Call) -> Executed {
    Executed {
        outcome: Outcome::DryRun,
        detail: call.describe(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_admin_console_is_the_org_with_admin() {
        let config = |base: &str| OktaConfig {
            base_url: Some(base.into()),
            ..OktaConfig::default()
        };
        assert_eq!(
            config("https://acme.okta.com").admin_console().unwrap(),
            "https://acme-admin.okta.com"
        );
        assert_eq!(
            config("https://acme.oktapreview.com/")
                .admin_console()
                .unwrap(),
            "https://acme-admin.oktapreview.com"
        );
        assert_eq!(
            config("https://login.acme.com").admin_console().unwrap(),
            "https://login.acme.com"
        );
        assert_eq!(
            config("http://127.0.0.1:8080/okta")
                .admin_console()
                .unwrap(),
            "http://127.0.0.1:8080"
        );
        assert!(OktaConfig::default().admin_console().is_none());
    }

    #[test]
    fn the_rate_limit_reset_becomes_a_bounded_wait() {
        let now_ms = 1_700_000_000_000;
        assert_eq!(
            reset_wait("1700000030", now_ms),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            reset_wait(" 1700000000 ", now_ms + 500),
            Some(Duration::ZERO),
            "a reset in the past is no wait"
        );
        assert_eq!(reset_wait("1800000000", now_ms), Some(MAX_RESET_WAIT));
        assert_eq!(reset_wait("soon", now_ms), None);
        assert_eq!(reset_wait("", now_ms), None);
    }

    #[test]
    fn the_reset_is_read_against_oktas_date_not_our_clock() {
        let answer = |date: Option<&str>, reset: &str| {
            let mut headers = reqwest::header::HeaderMap::new();
            if let Some(date) = date {
                headers.insert("date", date.parse().unwrap());
            }
            headers.insert("x-rate-limit-reset", reset.parse().unwrap());
            Answer {
                status: 429,
                headers,
                body: String::new(),
                what: "GET x".into(),
                writes: false,
            }
        };
        // 1994-11-06T08:49:37Z is 784111777: Okta's Date decides, decades from our clock.
        let date = Some("Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(
            rate_limit_wait(&answer(date, "784111807")),
            Some(Duration::from_secs(31)),
            "30 s by Okta's clock, plus the second both values were rounded down by"
        );
        assert_eq!(
            rate_limit_wait(&answer(date, "784111777")),
            Some(Duration::ZERO)
        );
        assert_eq!(
            rate_limit_wait(&answer(date, "784111700")),
            Some(Duration::ZERO)
        );
        // Without a Date, our clock is all there is.
        let soon = (Utc::now().timestamp() + 10).to_string();
        let wait = rate_limit_wait(&answer(None, &soon)).unwrap();
        assert!(
            wait > Duration::from_secs(9) && wait <= Duration::from_secs(11),
            "{wait:?}"
        );
    }

    #[test]
    fn only_okta_shaped_ids_reach_a_url() {
        assert!(checked_id("00u1a2b3C4d5E6f7G8h9").is_ok());
        for bad in ["", "../admin", "a/b", "a?b", "a b", &"x".repeat(65)] {
            assert!(checked_id(bad).is_err(), "{bad}");
        }
    }
}
