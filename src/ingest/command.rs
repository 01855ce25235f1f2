//! `vigil ingest hook` and `vigil ingest poll`.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use rdkafka::producer::FutureProducer;
use tracing::info;

use super::hook::{self, HookState, HOOK_SECRET_ENV};
use super::poll::{PollCounters, Poller};
use crate::config::Config;
use crate::kafka::{self, reader::PartitionReader};
use crate::shared_secret::{self, SharedSecret};

/// `vigil ingest …`
#[derive(clap::Args, Debug, Clone)]
pub struct IngestArgs {
    /// Configuration file (TOML; see vigil.example.toml, sections [ingest] and [okta]).
    #[arg(long, value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,
    /// Which way in.
    #[command(subcommand)]
    pub source: IngestSource,
}

/// The ingest sources.
#[derive(clap::Subcommand, Debug, Clone)]
pub enum IngestSource {
    /// Receive Okta Event Hooks on `ingest.hook_listen` + `ingest.hook_path`; needs the hook's
    /// Authorization value (ingest.hook_secret_file or VIGIL_HOOK_SECRET).
    Hook,
    /// Poll the System Log API of `okta.base_url` (token: okta.token_file or VIGIL_OKTA_TOKEN,
    /// scope okta.logs.read), resuming from the cursor on the ingest state topic. The first start
    /// (no cursor) reads from ingest.poll_lookback_secs ago (1 hour by default): events Okta stored
    /// earlier are never polled. Failed pages are retried with backoff; only invalid
    /// configuration stops it.
    Poll,
}

/// Run `vigil ingest …` until SIGINT/SIGTERM.
pub fn run(args: &IngestArgs) -> anyhow::Result<bool> {
    let config = Config::load(args.config.as_deref())?;
    let shutdown = crate::shutdown::on_signal()?;
    let _admin = crate::http_server::spawn_admin(&config.http.listen, shutdown.clone())?;
    match args.source {
        IngestSource::Hook => run_hook(&config, shutdown)?,
        IngestSource::Poll => {
            run_poll(&config, shutdown)?;
        }
    }
    Ok(true)
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

fn events_producer(config: &Config) -> anyhow::Result<FutureProducer> {
    kafka::producer_config(&config.kafka)?
        .create()
        .context("cannot create the Kafka producer")
}

/// The Event Hook receiver until `shutdown` is set.
pub fn run_hook(config: &Config, shutdown: Arc<AtomicBool>) -> anyhow::Result<()> {
    let secret = shared_secret::load(config.ingest.hook_secret_file.as_deref(), HOOK_SECRET_ENV)?
        .context("the Event Hook receiver needs the hook's Authorization value (ingest.hook_secret_file or VIGIL_HOOK_SECRET): it never runs open")?;
    let state = HookState {
        producer: events_producer(config)?,
        topic: config.topics.events.clone(),
        secret: SharedSecret::new(&secret),
        max_event_bytes: config.detect.max_event_bytes,
        ack_timeout: Duration::from_millis(config.ingest.hook_ack_timeout_ms),
        max_body_bytes: config.ingest.hook_max_body_bytes,
    };
    let router = hook::router(&config.ingest.hook_path, state);
    let runtime = runtime()?;
    info!(path = %config.ingest.hook_path, events = %config.topics.events, "ingest hook starting");
    let health = crate::health::health();
    health.ingest_started(hook::HEALTH_NAME);
    let server = runtime
        .block_on(crate::http_server::serve(
            "Event Hook receiver",
            &config.ingest.hook_listen,
            router,
            shutdown,
        ))
        .inspect_err(|e| health.ingest(hook::HEALTH_NAME, Err(format!("{e:#}"))))?;
    health.ingest(hook::HEALTH_NAME, Ok(()));
    let served = runtime.block_on(server);
    health.ingest(hook::HEALTH_NAME, Err("stopped".into()));
    served?;
    Ok(())
}

/// The System Log poller until `shutdown` is set.
pub fn run_poll(config: &Config, shutdown: Arc<AtomicBool>) -> anyhow::Result<PollCounters> {
    let reader = PartitionReader::new(&kafka::reader_config(&config.kafka)?)?;
    let poller = Poller::new(
        &config.okta,
        &config.ingest,
        events_producer(config)?,
        reader,
        &config.topics.events,
        &config.topics.ingest_state,
    )?;
    info!(okta = config.okta.base_url.as_deref().unwrap_or("-"), events = %config.topics.events, "ingest poll starting");
    runtime()?.block_on(poller.run(shutdown))
}
