//! Slack: `chat.postMessage` with Block Kit and a bot token, or an incoming webhook.
//!
//! Posting is not idempotent (a retry posts twice), so every bot message carries the action id
//! in its metadata: after a crash the channel history says whether the post happened. A
//! webhook cannot be asked; see the respond stage for what is done then.

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use reqwest::{Method, Url};
use serde::Deserialize;
use serde_json::{json, Value};

use super::http::{self, Call, Secret};
use super::{admin_user_link, ActionRequest, Executed, Failure, OktaConfig, Outcome, Reconciled};
use crate::decision::Action;

/// Environment variable of the bot token.
pub const TOKEN_ENV: &str = "VIGIL_SLACK_TOKEN";
/// Environment variable of the incoming webhook URL (a secret itself).
pub const WEBHOOK_ENV: &str = "VIGIL_SLACK_WEBHOOK_URL";
/// Evidence shown in a message, at most (Slack caps a section's text at 3,000 characters).
const MAX_EVIDENCE: usize = 2_500;
/// Pages of channel history read at most when reconciling (200 messages each).
const MAX_HISTORY_PAGES: usize = 10;

/// The Slack connector's settings (`[slack]`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SlackConfig {
    /// Web API base URL.
    pub base_url: String,
    /// Channel for actions that name none, and for operational alerts.
    pub channel: Option<String>,
    /// File holding the bot token `xoxb-…` (else `VIGIL_SLACK_TOKEN`).
    pub token_file: Option<PathBuf>,
    /// File holding an incoming webhook URL (else `VIGIL_SLACK_WEBHOOK_URL`); used when there
    /// is no bot token.
    pub webhook_url_file: Option<PathBuf>,
}

impl Default for SlackConfig {
    fn default() -> Self {
        SlackConfig {
            base_url: "https://slack.com/api".into(),
            channel: None,
            token_file: None,
            webhook_url_file: None,
        }
    }
}

enum Mode {
    Bot(Secret),
    Webhook(Url),
    DryRun,
}

/// The Slack client.
pub struct Slack {
    base: Url,
    channel: Option<String>,
    mode: Mode,
    admin_console: Option<String>,
    client: reqwest::Client,
}

impl Slack {
    /// A client for `config`; `okta` gives the admin console for links.
    pub fn new(
        config: &SlackConfig,
        okta: &OktaConfig,
        client: reqwest::Client,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> anyhow::Result<Self> {
        let base = http::base_url("slack.base_url", &config.base_url)?;
        let token = http::load_secret(config.token_file.as_deref(), TOKEN_ENV, env)?;
        let webhook = http::load_secret(config.webhook_url_file.as_deref(), WEBHOOK_ENV, env)?;
        let mode = match (token, webhook) {
            (Some(token), _) => Mode::Bot(token),
            (None, Some(url)) => Mode::Webhook(
                http::base_url("the Slack webhook URL", url.expose())
                    .map_err(|_| anyhow::anyhow!("the Slack webhook URL is not an http(s) URL"))?,
            ),
            (None, None) => Mode::DryRun,
        };
        Ok(Slack {
            base,
            channel: config.channel.clone(),
            mode,
            admin_console: okta.admin_console(),
            client,
        })
    }

    /// Whether posts are only recorded.
    pub fn is_dry_run(&self) -> bool {
        matches!(self.mode, Mode::DryRun)
    }

    /// Post the decision behind `request` to its channel.
    /// `incident` is the user's PagerDuty incident page, when known.
    pub async fn notify(
        &self,
        request: &ActionRequest<'_>,
        incident: Option<&str>,
    ) -> Result<Executed, Failure> {
        let channel = request
            .action
            .params
            .get("channel")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .or_else(|| self.channel.clone());
        let (text, blocks) = message(request, self.admin_console.as_deref(), incident);
        let mut body = json!({"text": text, "blocks": blocks});
        if !matches!(self.mode, Mode::Webhook(_)) {
            let channel = channel.ok_or_else(|| {
                Failure::permanent("slack.notify needs a channel (action param or slack.channel)")
            })?;
            body["channel"] = json!(channel);
            body["unfurl_links"] = json!(false);
            body["metadata"] = json!({
                "event_type": "vigil_action",
                "event_payload": {
                    "action_id": request.action.action_id,
                    "decision_id": request.decision.decision_id,
                },
            });
        }
        self.post(body).await
    }

    /// An operational alert to the default channel.
    pub async fn alert(&self, text: &str) -> Result<Executed, Failure> {
        let mut body = json!({"text": text});
        if !matches!(self.mode, Mode::Webhook(_)) {
            let channel = self
                .channel
                .clone()
                .ok_or_else(|| Failure::permanent("alerts need slack.channel"))?;
            body["channel"] = json!(channel);
        }
        self.post(body).await
    }

    async fn post(&self, body: Value) -> Result<Executed, Failure> {
        let call = if let Mode::Webhook(url) = &self.mode {
            let mut call = Call::new(Method::POST, url.clone()).json(body);
            call.secret_url = true;
            call
        } else {
            let url = http::join(&self.base, &["chat.postMessage"])?;
            let mut call = Call::new(Method::POST, url).json(body);
            let token = match &self.mode {
                Mode::Bot(token) => Some(format!("Bearer {}", token.expose())),
                _ => None,
            };
            call.auth = Some(("Authorization", token));
            call
        };
        if self.is_dry_run() {
            return Ok(Executed {
                outcome: Outcome::DryRun,
                detail: call.describe(),
            });
        }
        let answer = call.send(&self.client).await?.check(None)?;
        if call.secret_url {
            // Incoming webhooks answer `ok` as plain text. Anything else is not a known
            // success; it is not retried either, as a repeat could post the message twice.
            if answer.body.trim() != "ok" {
                return Err(Failure::Permanent {
                    status: Some(answer.status),
                    body: http::truncated(&answer.body),
                    detail: "the Slack webhook did not answer `ok`".into(),
                });
            }
            return Ok(Executed {
                outcome: Outcome::Done,
                detail: json!({"http_status": answer.status, "via": "webhook"}),
            });
        }
        let reply = answer.json();
        if reply["ok"] == json!(true) {
            return Ok(Executed {
                outcome: Outcome::Done,
                detail: json!({"channel": reply["channel"], "ts": reply["ts"]}),
            });
        }
        // Slack answers 200 with ok:false on failure.
        let error = reply["error"].as_str().unwrap_or("no error given");
        if error == "ratelimited" {
            return Err(Failure::Retryable {
                after: answer.retry_after().or(Some(std::time::Duration::ZERO)),
                detail: "chat.postMessage: ratelimited".into(),
            });
        }
        Err(Failure::Permanent {
            status: Some(answer.status),
            body: http::truncated(&answer.body),
            detail: format!("chat.postMessage failed: {error}"),
        })
    }

    /// Whether the message of `action` was posted since `since` (channel history, by the
    /// action id in the metadata).
    pub async fn posted_since(
        &self,
        action: &Action,
        since: DateTime<Utc>,
    ) -> Result<Reconciled, Failure> {
        let token = match &self.mode {
            Mode::Bot(token) => token,
            Mode::Webhook(_) => return Ok(Reconciled::Unknown),
            Mode::DryRun => return Ok(Reconciled::NotDone),
        };
        let channel = action
            .params
            .get("channel")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .or_else(|| self.channel.clone())
            .ok_or_else(|| Failure::permanent("no channel to look in"))?;
        let oldest = (since - chrono::Duration::seconds(5)).timestamp();
        // A busy channel can hold more than a page since the intent: follow the cursor, within
        // a bound (Slack's history is rate limited; this is a recovery path, not a scan).
        let mut cursor: Option<String> = None;
        for _ in 0..MAX_HISTORY_PAGES {
            let mut call = Call::new(
                Method::GET,
                http::join(&self.base, &["conversations.history"])?,
            );
            call.url
                .query_pairs_mut()
                .append_pair("channel", &channel)
                .append_pair("oldest", &oldest.to_string())
                .append_pair("include_all_metadata", "true")
                .append_pair("limit", "200");
            if let Some(cursor) = &cursor {
                call.url.query_pairs_mut().append_pair("cursor", cursor);
            }
            call.auth = Some(("Authorization", Some(format!("Bearer {}", token.expose()))));
            let answer = call.send(&self.client).await?.check(None)?;
            let reply = answer.json();
            match (&reply["ok"], reply["error"].as_str()) {
                (Value::Bool(true), _) => {}
                (_, Some("ratelimited")) => {
                    return Err(Failure::Retryable {
                        after: answer.retry_after().or(Some(std::time::Duration::ZERO)),
                        detail: "conversations.history: ratelimited".into(),
                    })
                }
                // The history cannot be read (missing_scope, not_in_channel, …): that will not
                // change by retrying, and whether the post happened stays unknown.
                (Value::Bool(false), Some(error)) => {
                    tracing::warn!(error, "cannot read the Slack channel history to reconcile");
                    return Ok(Reconciled::Unknown);
                }
                _ => {
                    return Err(Failure::Retryable {
                        after: None,
                        detail: "conversations.history: no Slack answer".into(),
                    })
                }
            }
            let found = reply["messages"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|m| {
                    m["metadata"]["event_payload"]["action_id"].as_str()
                        == Some(action.action_id.as_str())
                });
            if let Some(m) = found {
                return Ok(Reconciled::AlreadyDone(
                    json!({"channel": channel, "ts": m["ts"]}),
                ));
            }
            cursor = reply["response_metadata"]["next_cursor"]
                .as_str()
                .filter(|c| !c.is_empty() && reply["has_more"] == json!(true))
                .map(str::to_owned);
            if cursor.is_none() {
                return Ok(Reconciled::NotDone);
            }
        }
        // More history than we read: not found so far is not "not posted".
        Ok(Reconciled::Unknown)
    }
}

/// The fallback text and Block Kit blocks of a decision's message.
fn message(
    request: &ActionRequest<'_>,
    admin_console: Option<&str>,
    incident: Option<&str>,
) -> (String, Value) {
    let d = request.decision;
    let user = d.user.as_ref();
    // Login for people, Okta id for the console and the API (both, so nobody has to look up).
    let who = user
        .map(|u| match &u.login {
            Some(login) => format!("{login} (`{}`)", u.id),
            None => format!("`{}`", u.id),
        })
        .unwrap_or_else(|| "(no user)".into());
    let prefix = request.note.map(|n| format!("[{n}] ")).unwrap_or_default();
    // Summary and evidence carry what the attacker controlled (user agents, names): escaped,
    // so they cannot mention @channel or draw a link in the security channel.
    let text = escape(&format!(
        "{prefix}[{}] {}: {}",
        d.severity.as_str(),
        d.rule,
        d.summary
    ));
    // Compact: the values that mattered fit on a few lines of a narrow Slack column.
    let mut evidence = serde_json::to_string(&d.evidence).unwrap_or_default();
    if evidence.len() > MAX_EVIDENCE {
        let mut end = MAX_EVIDENCE;
        while !evidence.is_char_boundary(end) {
            end -= 1;
        }
        evidence.truncate(end);
        evidence.push('…');
    }
    let mut links = Vec::new();
    if let (Some(admin), Some(user)) = (admin_console, user) {
        links.push(format!("<{}|Okta user>", admin_user_link(admin, &user.id)));
    }
    if let Some(incident) = incident {
        links.push(format!("<{incident}|PagerDuty incident>"));
    }
    links.push(format!(
        "decision `{}` · action `{}`",
        d.decision_id, request.action.action_id
    ));
    let blocks = json!([
        {"type": "header", "text": {"type": "plain_text", "text": truncate(&format!("{prefix}{}", d.rule), 150)}},
        {"type": "section", "text": {"type": "mrkdwn", "text": truncate(&escape(&d.summary), 3000)}},
        {"type": "section", "fields": [
            {"type": "mrkdwn", "text": format!("*User*\n{}", truncate(&escape(&who), 1900))},
            {"type": "mrkdwn", "text": format!("*Severity*\n{}", d.severity.as_str())},
            {"type": "mrkdwn", "text": format!("*Risk score*\n{}", d.risk_score)},
            {"type": "mrkdwn", "text": format!("*Event*\n{}", truncate(&escape(&format!("{} at {}", d.event.event_type, d.event.published)), 1900))},
        ]},
        // A fence inside the evidence would end the code block early.
        {"type": "section", "text": {"type": "mrkdwn", "text": format!("```{}```", escape(&evidence).replace("```", "'''"))}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": links.join(" · ")}]},
    ]);
    (text, blocks)
}

/// `text` with Slack's control characters escaped (`&`, `<`, `>`), as Slack asks of any
/// text it should show rather than interpret.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn truncate(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        text.to_owned()
    } else {
        let mut t: String = text.chars().take(max_chars - 1).collect();
        t.push('…');
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attacker_text_cannot_mention_or_link() {
        assert_eq!(
            escape("<!channel> see <https://evil.test|okta> & more"),
            "&lt;!channel&gt; see &lt;https://evil.test|okta&gt; &amp; more"
        );
    }

    #[test]
    fn long_texts_are_cut_on_characters() {
        assert_eq!(truncate("abc", 3), "abc");
        assert_eq!(truncate("äbcd", 3), "äb…");
    }
}
