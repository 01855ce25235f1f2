//! The System Log poller: `GET /api/v1/logs` in polling mode (no `until`, ascending), following
//! Okta's `Link: rel="next"` as given — never a crafted `after` — and producing each event to the
//! events topic keyed by its user.
//!
//! The cursor (the next link) is written to the ingest state topic after the page's events are
//! acknowledged, so a restart resumes from the last stored page: at least once, never a gap. A
//! repeat of the last page after a crash, or events Okta lists twice across pages, are dropped
//! by uuid within a window (detect's deterministic ids make any that get through harmless).
//!
//! The poller stays up: a failed page (network, 5xx, 401/403 or another 4xx, a body that is not
//! a JSON array, no next link, the broker) is counted by reason, logged, reported to `/readyz`
//! and retried from the same link after a capped exponential backoff with jitter. Only
//! configuration stops it: no base URL or token, or a next link that leaves the org.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _};
use backon::{BackoffBuilder as _, ExponentialBackoff, ExponentialBuilder};
use chrono::{DateTime, Utc};
use rdkafka::producer::{FutureProducer, FutureRecord};
use reqwest::{Method, Url};
use serde::{Deserialize, Serialize};
use tracing::{error, info, warn};

use super::link;
use crate::config::IngestConfig;
use crate::connector::http::{self, Call, Secret};
use crate::connector::{OktaAuth, OktaConfig};
use crate::event::OktaEvent;
use crate::kafka::reader::PartitionReader;

/// The cursor record's key on the ingest state topic (always partition 0).
const CURSOR_KEY: &str = "okta-system-log-cursor";

/// The poller's name in `/readyz`.
pub const HEALTH_NAME: &str = "ingest-poll";

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
    /// Failures retried.
    pub errors: u64,
}

/// Why a page failed: the `reason` label of `vigil_poll_errors_total` (a fixed set).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// No answer: connection refused or reset, timeout, body cut off.
    Network,
    /// Okta answered 5xx (or 408).
    ServerError,
    /// Okta answered 401 or 403: the token is wrong, revoked or lacks `okta.logs.read`.
    Unauthorized,
    /// Okta answered another 4xx.
    ClientError,
    /// A 2xx whose body is not a JSON array, or whose `Link` header cannot be parsed.
    BadPage,
    /// A 2xx without a `rel="next"` link (polling mode always has one).
    NoNextLink,
    /// The broker did not take the events or the cursor, or the cursor could not be read.
    Broker,
}

impl Reason {
    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            Reason::Network => "network",
            Reason::ServerError => "server_error",
            Reason::Unauthorized => "unauthorized",
            Reason::ClientError => "client_error",
            Reason::BadPage => "bad_page",
            Reason::NoNextLink => "no_next_link",
            Reason::Broker => "broker",
        }
    }
}

/// Why a page was not done.
enum Problem {
    /// Okta's rate limit is spent: wait this long (not a failure).
    RateLimited(Duration),
    /// Retried from the same link after a backoff.
    Failed(Reason, String),
    /// Configuration: the poller stops.
    Fatal(anyhow::Error),
}

/// A page done: its events stored, the cursor moved.
struct Done {
    next: Url,
    full: bool,
    rate_limit_wait: Option<Duration>,
}

/// The poller.
pub struct Poller {
    base: Url,
    okta: OktaConfig,
    authorization: Secret,
    client: reqwest::Client,
    producer: FutureProducer,
    reader: PartitionReader,
    events_topic: String,
    state_topic: String,
    config: IngestConfig,
    seen: moka::sync::Cache<String, ()>,
    counters: PollCounters,
    /// The `since` of a first start without a cursor, until the poller has caught up once.
    first_window: Option<DateTime<Utc>>,
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
        Ok(Poller {
            base,
            authorization: authorization(okta)?,
            okta: okta.clone(),
            client: http::client(Duration::from_secs(30))?,
            producer,
            reader,
            events_topic: events_topic.to_owned(),
            state_topic: state_topic.to_owned(),
            seen: moka::sync::Cache::new(config.poll_dedup_events),
            config: config.clone(),
            counters: PollCounters::default(),
            first_window: None,
        })
    }

    /// Poll until `shutdown` is set; an error only for configuration (see the module doc).
    pub async fn run(mut self, shutdown: Arc<AtomicBool>) -> anyhow::Result<PollCounters> {
        let health = crate::health::health();
        health.ingest_started(HEALTH_NAME);
        let mut backoff = self.backoff();
        let mut next = loop {
            if shutdown.load(Ordering::Relaxed) {
                return Ok(self.counters);
            }
            match self.load_cursor() {
                Ok(Some(cursor)) => {
                    info!(stored_at = %cursor.stored_at, "resuming the System Log from the stored cursor");
                    let stored = Url::parse(&cursor.next)
                        .with_context(|| {
                            format!("the stored cursor `{}` is not a URL", cursor.next)
                        })
                        .and_then(|url| self.checked_link(url))
                        .inspect_err(|e| health.ingest(HEALTH_NAME, Err(format!("{e:#}"))))?;
                    break stored;
                }
                Ok(None) => break self.first_page(),
                Err(e) => {
                    let detail = format!("cannot read the stored cursor: {e:#}");
                    self.failed(Reason::Broker, detail, &mut backoff, &shutdown)
                        .await;
                }
            }
        };
        while !shutdown.load(Ordering::Relaxed) {
            match self.poll_page(&next).await {
                Ok(done) => {
                    backoff = self.backoff();
                    health.ingest(HEALTH_NAME, Ok(()));
                    next = done.next;
                    if let Some(wait) = done.rate_limit_wait {
                        self.rate_limited(wait, &shutdown).await;
                    } else if !done.full {
                        self.caught_up();
                        // Okta adds events as they happen.
                        crate::shutdown::sleep_unless_stopped(
                            Duration::from_millis(self.config.poll_interval_ms),
                            &shutdown,
                        )
                        .await;
                    }
                }
                Err(Problem::RateLimited(wait)) => self.rate_limited(wait, &shutdown).await,
                Err(Problem::Failed(reason, detail)) => {
                    self.failed(reason, detail, &mut backoff, &shutdown).await
                }
                Err(Problem::Fatal(e)) => {
                    health.ingest(HEALTH_NAME, Err(format!("{e:#}")));
                    return Err(e);
                }
            }
        }
        info!(
            pages = self.counters.pages,
            events = self.counters.events,
            repeats = self.counters.repeats,
            errors = self.counters.errors,
            "System Log poller stopped"
        );
        Ok(self.counters)
    }

    /// One page: fetched, checked, its events stored, the cursor moved past it. Nothing is
    /// produced from a page that fails a check, so retrying the same link loses nothing.
    async fn poll_page(&mut self, url: &Url) -> Result<Done, Problem> {
        let page = self.fetch(url).await?;
        let next = self.checked_link(page.next).map_err(Problem::Fatal)?;
        self.counters.pages += 1;
        crate::metrics::metrics().poll_pages.inc();
        let full = page.events.len() >= self.page_limit() as usize;
        self.produce(&page.events)
            .await
            .map_err(|e| Problem::Failed(Reason::Broker, format!("{e:#}")))?;
        self.store_cursor(&next)
            .await
            .map_err(|e| Problem::Failed(Reason::Broker, format!("{e:#}")))?;
        Ok(Done {
            next,
            full,
            rate_limit_wait: page.rate_limit_wait,
        })
    }

    /// Count, log and report a failure, then wait the next backoff delay.
    async fn failed(
        &mut self,
        reason: Reason,
        detail: String,
        backoff: &mut ExponentialBackoff,
        shutdown: &AtomicBool,
    ) {
        let max = Duration::from_millis(self.config.poll_retry_max_ms);
        let wait = backoff.next().unwrap_or(max).min(max);
        self.counters.errors += 1;
        crate::metrics::metrics()
            .poll_errors
            .with_label_values(&[reason.label()])
            .inc();
        crate::health::health().ingest(HEALTH_NAME, Err(format!("{}: {detail}", reason.label())));
        match reason {
            // These will not pass by themselves: someone has to act.
            Reason::Unauthorized | Reason::ClientError => {
                error!(reason = reason.label(), error = %detail, ?wait, "the System Log refused the request; retrying")
            }
            _ => {
                warn!(reason = reason.label(), error = %detail, ?wait, "System Log page failed; retrying")
            }
        }
        if reason == Reason::Unauthorized {
            // A rotated token file (or environment) takes effect without a restart.
            match authorization(&self.okta) {
                Ok(fresh) => self.authorization = fresh,
                Err(e) => error!(error = %format!("{e:#}"), "cannot reload the Okta token"),
            }
        }
        crate::shutdown::sleep_unless_stopped(wait, shutdown).await;
    }

    async fn rate_limited(&mut self, wait: Duration, shutdown: &AtomicBool) {
        self.counters.rate_limited += 1;
        crate::metrics::metrics()
            .rate_limit_waits
            .with_label_values(&["okta"])
            .inc();
        info!(
            ?wait,
            "Okta's System Log rate limit is spent; waiting for its reset"
        );
        crate::shutdown::sleep_unless_stopped(wait, shutdown).await;
    }

    /// The first time a page is not full after a start without a cursor: say what was found.
    fn caught_up(&mut self) {
        let Some(since) = self.first_window.take() else {
            return;
        };
        if self.counters.events == 0 {
            warn!(%since, lookback_secs = self.config.poll_lookback_secs, "the System Log has no events since `since`: events Okta stored earlier are not read (ingest.poll_lookback_secs)");
        } else {
            info!(%since, events = self.counters.events, pages = self.counters.pages, "caught up with the System Log since `since`");
        }
    }

    fn backoff(&self) -> ExponentialBackoff {
        ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(self.config.poll_retry_min_ms))
            .with_max_delay(Duration::from_millis(self.config.poll_retry_max_ms))
            .with_jitter()
            .without_max_times()
            .build()
    }

    /// The first request: from `poll_lookback_secs` ago, oldest first.
    fn first_page(&mut self) -> Url {
        let since = Utc::now() - chrono::Duration::seconds(self.config.poll_lookback_secs as i64);
        info!(
            %since,
            lookback_secs = self.config.poll_lookback_secs,
            "no stored cursor: reading the System Log from `since` on; events Okta stored earlier are not read (ingest.poll_lookback_secs)"
        );
        self.first_window = Some(since);
        let mut url = http::join(&self.base, &["api", "v1", "logs"]).expect("a fixed path");
        url.query_pairs_mut()
            .append_pair(
                "since",
                &since.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            )
            .append_pair("sortOrder", "ASCENDING")
            .append_pair("limit", &self.page_limit().to_string());
        url
    }

    /// The `limit` asked for: the configured page size, at most Okta's 1000.
    fn page_limit(&self) -> u32 {
        self.config.poll_page_size.min(1000)
    }

    /// A next link, only if it stays on the configured org and the logs path.
    fn checked_link(&self, url: Url) -> anyhow::Result<Url> {
        let logs = http::join(&self.base, &["api", "v1", "logs"]).expect("a fixed path");
        if url.origin() != self.base.origin() || url.path() != logs.path() {
            bail!("the next link `{url}` leaves {logs}: refused");
        }
        Ok(url)
    }

    async fn fetch(&self, url: &Url) -> Result<Page, Problem> {
        let mut call = Call::new(Method::GET, url.clone());
        call.auth = Some((
            "Authorization",
            Some(self.authorization.expose().to_owned()),
        ));
        let answer = call
            .send(&self.client)
            .await
            .map_err(|e| Problem::Failed(Reason::Network, e.to_string()))?;
        // On Okta's clock (its `Date`), not ours: clocks drift.
        let reset = crate::connector::okta::rate_limit_wait(&answer);
        let refused = |reason| {
            Problem::Failed(
                reason,
                format!(
                    "{} answered {}: {}",
                    answer.what,
                    answer.status,
                    http::truncated(&answer.body)
                ),
            )
        };
        match answer.status {
            200..=299 => {}
            // A reset now or past must not become a burst of requests: floor and jitter.
            429 => {
                return Err(Problem::RateLimited(http::rate_limit_pause(
                    reset.unwrap_or_default(),
                )))
            }
            401 | 403 => return Err(refused(Reason::Unauthorized)),
            408 | 500..=599 => return Err(refused(Reason::ServerError)),
            _ => return Err(refused(Reason::ClientError)),
        }
        let events: Vec<serde_json::Value> = serde_json::from_str(&answer.body).map_err(|e| {
            Problem::Failed(
                Reason::BadPage,
                format!("the System Log page is not a JSON array: {e}"),
            )
        })?;
        let fields = answer
            .headers
            .get_all(reqwest::header::LINK)
            .iter()
            .map(|v| {
                v.to_str()
                    .map_err(|_| "a Link header is not text".to_owned())
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| Problem::Failed(Reason::BadPage, e))?;
        let next = link::find(fields, "next")
            .map_err(|e| Problem::Failed(Reason::BadPage, e))?
            .ok_or_else(|| {
                Problem::Failed(
                    Reason::NoNextLink,
                    "the System Log answered without a next link (polling mode always has one)"
                        .into(),
                )
            })?;
        // A relative reference is resolved against the request, as RFC 8288 says.
        let next = url.join(&next).map_err(|e| {
            Problem::Failed(
                Reason::BadPage,
                format!("the next link `{next}` is not a URL: {e}"),
            )
        })?;
        let spent = answer.header("x-rate-limit-remaining") == Some("0");
        Ok(Page {
            events,
            next,
            rate_limit_wait: if spent { reset } else { None },
        })
    }

    /// Produce the page's new events, keyed by user, and wait for every acknowledgement. Each
    /// acknowledged event is remembered at once, so a retry after a partial failure produces
    /// only the rest.
    async fn produce(&mut self, events: &[serde_json::Value]) -> anyhow::Result<()> {
        let mut deliveries = Vec::new();
        let mut uuids = Vec::new();
        let mut queue_error = None;
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
            match self.producer.send_result(record) {
                Ok(delivery) => {
                    deliveries.push(delivery);
                    uuids.push(uuid);
                }
                Err((e, _)) => {
                    // Keep the page's order per user: nothing after a refused event.
                    queue_error = Some(anyhow!("cannot queue an event: {e}"));
                    break;
                }
            }
        }
        let mut delivery_error = None;
        let mut stored = 0;
        for (result, uuid) in futures::future::join_all(deliveries)
            .await
            .into_iter()
            .zip(uuids)
        {
            match result {
                Ok(Ok(_)) => {
                    stored += 1;
                    if !uuid.is_empty() {
                        self.seen.insert(uuid, ());
                    }
                }
                Ok(Err((e, _))) => {
                    delivery_error.get_or_insert(anyhow!("an event was not stored: {e}"));
                }
                Err(_) => {
                    delivery_error.get_or_insert(anyhow!("the producer shut down"));
                }
            }
        }
        self.counters.events += stored;
        crate::metrics::metrics()
            .ingested_events
            .with_label_values(&["poll"])
            .inc_by(stored);
        match delivery_error.or(queue_error) {
            Some(e) => Err(e),
            None => Ok(()),
        }
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
    next: Url,
    rate_limit_wait: Option<Duration>,
}

/// `Authorization` for the configured token (needs `okta.logs.read`).
fn authorization(okta: &OktaConfig) -> anyhow::Result<Secret> {
    let token = http::load_secret(
        okta.token_file.as_deref(),
        crate::connector::OKTA_TOKEN_ENV,
        &|v| std::env::var(v).ok(),
    )?
    .context("the System Log poller needs an Okta token (okta.token_file or VIGIL_OKTA_TOKEN)")?;
    let scheme = match okta.auth {
        OktaAuth::Ssws => "SSWS",
        OktaAuth::Bearer => "Bearer",
    };
    Ok(Secret::new(format!("{scheme} {}", token.expose())))
}
