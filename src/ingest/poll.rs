//! The System Log poller: `GET /api/v1/logs` in polling mode (no `until`, ascending), following
//! Okta's `Link: rel="next"` as given — never a crafted `after` — and producing each event to the
//! events topic keyed by its user.
//!
//! The cursor (the next link) is written to the ingest state topic after the page's events are
//! acknowledged, so a restart resumes from the last stored page: at least once, never a gap. A
//! repeat of the last page after a crash, or events Okta lists twice across pages, are dropped
//! by uuid within a window (detect's deterministic ids make any that get through harmless).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _};
use chrono::Utc;
use rdkafka::producer::{FutureProducer, FutureRecord};
use reqwest::{Method, Url};
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use crate::config::IngestConfig;
use crate::connector::http::{self, Call, Secret};
use crate::connector::{Failure, OktaAuth, OktaConfig};
use crate::event::OktaEvent;
use crate::kafka::reader::PartitionReader;

/// The cursor record's key on the ingest state topic (always partition 0).
const CURSOR_KEY: &str = "okta-system-log-cursor";

/// What the poller stores between runs.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Cursor {
    /// The next link Okta gave, to request next.
    pub next: String,
    /// When it was stored.
    pub stored_at: chrono::DateTime<Utc>,
}

/// What a poller run did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PollCounters {
    /// Pages fetched.
    pub pages: u64,
    /// Events produced.
    pub events: u64,
    /// Events dropped as repeats.
    pub repeats: u64,
    /// Waits for Okta's rate-limit reset.
    pub rate_limited: u64,
}

/// The poller.
pub struct Poller {
    base: Url,
    authorization: Secret,
    client: reqwest::Client,
    producer: FutureProducer,
    reader: PartitionReader,
    events_topic: String,
    state_topic: String,
    config: IngestConfig,
    seen: moka::sync::Cache<String, ()>,
    counters: PollCounters,
}

impl Poller {
    /// A poller of the Okta org in `okta` (its token needs `okta.logs.read`).
    pub fn new(
        okta: &OktaConfig,
        config: &IngestConfig,
        producer: FutureProducer,
        reader: PartitionReader,
        events_topic: &str,
        state_topic: &str,
    ) -> anyhow::Result<Self> {
        let base = http::base_url(
            "okta.base_url",
            okta.base_url
                .as_deref()
                .context("the System Log poller needs okta.base_url")?,
        )?;
        let token = http::load_secret(
            okta.token_file.as_deref(),
            crate::connector::OKTA_TOKEN_ENV,
            &|v| std::env::var(v).ok(),
        )?
        .context(
            "the System Log poller needs an Okta token (okta.token_file or VIGIL_OKTA_TOKEN)",
        )?;
        let scheme = match okta.auth {
            OktaAuth::Ssws => "SSWS",
            OktaAuth::Bearer => "Bearer",
        };
        Ok(Poller {
            base,
            authorization: Secret::new(format!("{scheme} {}", token.expose())),
            client: http::client(Duration::from_secs(30))?,
            producer,
            reader,
            events_topic: events_topic.to_owned(),
            state_topic: state_topic.to_owned(),
            seen: moka::sync::Cache::new(config.poll_dedup_events),
            config: config.clone(),
            counters: PollCounters::default(),
        })
    }

    /// Poll until `shutdown` is set.
    pub async fn run(mut self, shutdown: Arc<AtomicBool>) -> anyhow::Result<PollCounters> {
        let mut next = match self.load_cursor()? {
            Some(cursor) => {
                info!(stored_at = %cursor.stored_at, "resuming the System Log from the stored cursor");
                self.checked_link(&cursor.next)?
            }
            None => self.first_page(),
        };
        while !shutdown.load(Ordering::Relaxed) {
            let page = match self.fetch(&next).await {
                Ok(page) => page,
                Err(Failure::Retryable { after, detail }) => {
                    let wait = after.unwrap_or(Duration::from_millis(self.config.poll_interval_ms));
                    if after.is_some() {
                        self.counters.rate_limited += 1;
                        crate::metrics::metrics()
                            .rate_limit_waits
                            .with_label_values(&["okta"])
                            .inc();
                    }
                    warn!(error = %detail, ?wait, "System Log request failed; waiting");
                    pause(wait, &shutdown).await;
                    continue;
                }
                Err(failure) => bail!("the System Log refused the request: {failure}"),
            };
            self.counters.pages += 1;
            crate::metrics::metrics().poll_pages.inc();
            let full = page.events.len() >= self.config.poll_page_size as usize;
            self.produce(&page.events).await?;
            let link = page.next.ok_or_else(|| {
                anyhow!("the System Log answered without a next link (polling mode always has one)")
            })?;
            next = self.checked_link(&link)?;
            self.store_cursor(&next).await?;
            if let Some(wait) = page.rate_limit_wait {
                self.counters.rate_limited += 1;
                crate::metrics::metrics()
                    .rate_limit_waits
                    .with_label_values(&["okta"])
                    .inc();
                pause(wait, &shutdown).await;
            } else if !full {
                // Caught up: Okta adds events as they happen.
                pause(
                    Duration::from_millis(self.config.poll_interval_ms),
                    &shutdown,
                )
                .await;
            }
        }
        info!(
            pages = self.counters.pages,
            events = self.counters.events,
            repeats = self.counters.repeats,
            "System Log poller stopped"
        );
        Ok(self.counters)
    }

    /// The first request: from `poll_lookback_secs` ago, oldest first.
    fn first_page(&self) -> Url {
        let since = Utc::now() - chrono::Duration::seconds(self.config.poll_lookback_secs as i64);
        let mut url = http::join(&self.base, &["api", "v1", "logs"]).expect("a fixed path");
        url.query_pairs_mut()
            .append_pair(
                "since",
                &since.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            )
            .append_pair("sortOrder", "ASCENDING")
            .append_pair("limit", &self.config.poll_page_size.min(1000).to_string());
        url
    }

    /// A next link, only if it stays on the configured org and the logs path.
    fn checked_link(&self, link: &str) -> anyhow::Result<Url> {
        let url =
            Url::parse(link).with_context(|| format!("the next link `{link}` is not a URL"))?;
        let logs = http::join(&self.base, &["api", "v1", "logs"]).expect("a fixed path");
        if url.origin() != self.base.origin() || url.path() != logs.path() {
            bail!("the next link `{link}` leaves {logs}: refused");
        }
        Ok(url)
    }

    async fn fetch(&self, url: &Url) -> Result<Page, Failure> {
        let mut call = Call::new(Method::GET, url.clone());
        call.auth = Some((
            "Authorization",
            Some(self.authorization.expose().to_owned()),
        ));
        let answer = call.send(&self.client).await?;
        let reset = answer.header("x-rate-limit-reset").and_then(|reset| {
            crate::connector::okta::reset_wait(reset, Utc::now().timestamp_millis())
        });
        let spent = answer.header("x-rate-limit-remaining") == Some("0");
        let next = answer.header("link").and_then(next_link);
        let after = if answer.status == 429 {
            reset.or(Some(Duration::from_secs(1)))
        } else {
            None
        };
        let answer = answer.check(after)?;
        let events: Vec<serde_json::Value> =
            serde_json::from_str(&answer.body).map_err(|e| Failure::Retryable {
                after: None,
                detail: format!("the System Log page is not a JSON array: {e}"),
            })?;
        Ok(Page {
            events,
            next,
            rate_limit_wait: if spent { reset } else { None },
        })
    }

    /// Produce the page's new events, keyed by user, and wait for every acknowledgement.
    async fn produce(&mut self, events: &[serde_json::Value]) -> anyhow::Result<()> {
        let mut deliveries = Vec::new();
        let mut uuids = Vec::new();
        for value in events {
            let uuid = value
                .get("uuid")
                .and_then(|u| u.as_str())
                .unwrap_or("")
                .to_owned();
            if !uuid.is_empty() && self.seen.contains_key(&uuid) {
                self.counters.repeats += 1;
                continue;
            }
            // Bad events go on anyway: detect dead-letters them with the reason.
            let key = OktaEvent::from_value(value.clone())
                .ok()
                .and_then(|e| e.user())
                .map(|u| u.id);
            let payload = serde_json::to_vec(value)?;
            let mut record = FutureRecord::to(&self.events_topic).payload(payload.as_slice());
            if let Some(key) = &key {
                record = record.key(key.as_str());
            }
            let delivery = self
                .producer
                .send_result(record)
                .map_err(|(e, _)| anyhow!("cannot queue an event: {e}"))?;
            deliveries.push(delivery);
            uuids.push(uuid);
        }
        for result in futures::future::join_all(deliveries).await {
            result
                .map_err(|_| anyhow!("the producer shut down"))?
                .map_err(|(e, _)| anyhow!("an event was not stored: {e}"))?;
        }
        crate::metrics::metrics()
            .ingested_events
            .with_label_values(&["poll"])
            .inc_by(uuids.len() as u64);
        for uuid in uuids {
            self.seen.insert(uuid, ());
            self.counters.events += 1;
        }
        Ok(())
    }

    fn load_cursor(&self) -> anyhow::Result<Option<Cursor>> {
        let mut cursor = None;
        self.reader.read_all(&self.state_topic, 0, |record| {
            if record.key == Some(CURSOR_KEY.as_bytes()) {
                if let Some(c) = record.payload.and_then(|p| serde_json::from_slice(p).ok()) {
                    cursor = Some(c);
                }
            }
            true
        })?;
        Ok(cursor)
    }

    async fn store_cursor(&self, next: &Url) -> anyhow::Result<()> {
        let cursor = Cursor {
            next: next.to_string(),
            stored_at: Utc::now(),
        };
        let payload = serde_json::to_vec(&cursor)?;
        self.producer
            .send(
                FutureRecord::to(&self.state_topic)
                    .partition(0)
                    .key(CURSOR_KEY)
                    .payload(&payload),
                Duration::from_secs(30),
            )
            .await
            .map_err(|(e, _)| anyhow!("cannot store the System Log cursor: {e}"))?;
        Ok(())
    }
}

struct Page {
    events: Vec<serde_json::Value>,
    next: Option<String>,
    rate_limit_wait: Option<Duration>,
}

/// Sleep `wait`, waking early on shutdown.
async fn pause(wait: Duration, shutdown: &AtomicBool) {
    let until = tokio::time::Instant::now() + wait;
    while tokio::time::Instant::now() < until && !shutdown.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(50).min(until - tokio::time::Instant::now()))
            .await;
    }
}

/// The `rel="next"` URL of a `Link` header.
pub fn next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|part| {
        let (url, params) = part.trim().split_once(';')?;
        let is_next = params
            .split(';')
            .any(|p| matches!(p.trim(), "rel=\"next\"" | "rel=next"));
        is_next.then(|| {
            url.trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_owned()
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_link_is_found_among_others() {
        let header = r#"<https://acme.okta.com/api/v1/logs?limit=2&after=1>; rel="self", <https://acme.okta.com/api/v1/logs?limit=2&after=2>; rel="next""#;
        assert_eq!(
            next_link(header).as_deref(),
            Some("https://acme.okta.com/api/v1/logs?limit=2&after=2")
        );
        assert_eq!(next_link(r#"<https://x/a>; rel="self""#), None);
    }
}
