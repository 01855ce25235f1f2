//! `vigil respond`: the respond stage as a consumer-group member on the decisions topic.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use tracing::{info, warn};

use super::stage::{LiveRespond, RespondCounters, RespondParts};
use crate::config::Config;
use crate::connector::Connectors;
use crate::decision::ActionKind;
use crate::kafka::reader::PartitionReader;
use crate::kafka::{self, Worker, WorkerOptions, WorkerSummary};
use crate::ledger::LedgerViews;
use crate::overrides::{self, OverrideTable};

/// How long the stage waits for the overrides topic to be read before it starts acting.
const OVERRIDES_LOAD_TIMEOUT: Duration = Duration::from_secs(60);

/// Arguments of `vigil respond`.
#[derive(clap::Args, Debug, Clone)]
pub struct RespondArgs {
    /// Configuration file (TOML; see vigil.example.toml). `VIGIL_<SECTION>__<KEY>` environment
    /// variables override it. Vendor credentials come from the environment or files only:
    /// VIGIL_OKTA_TOKEN, VIGIL_SLACK_TOKEN, VIGIL_SLACK_WEBHOOK_URL, VIGIL_PAGERDUTY_ROUTING_KEY,
    /// VIGIL_PAGERDUTY_API_TOKEN (or the *_file keys); a connector without one runs dry.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// Run the respond stage until SIGINT/SIGTERM.
pub fn run(args: &RespondArgs) -> anyhow::Result<bool> {
    let config = Config::load(args.config.as_deref())?;
    let shutdown = crate::shutdown::on_signal()?;
    let (summary, counters) = run_stage(&config, shutdown)?;
    info!(
        consumed = summary.consumed,
        duplicates = counters.duplicates,
        dead_lettered = counters.dead_lettered,
        outcomes = ?counters.outcomes,
        "respond stopped"
    );
    Ok(true)
}

/// The respond stage with `config`, until `shutdown` is set.
pub fn run_stage(
    config: &Config,
    shutdown: Arc<AtomicBool>,
) -> anyhow::Result<(WorkerSummary, RespondCounters)> {
    let consumer_config = kafka::consumer_config(&config.kafka, &config.respond.group_id)?;
    let producer_config = kafka::producer_config(&config.kafka)?;
    let reader_config = kafka::reader_config(&config.kafka)?;
    let reader = PartitionReader::new(&reader_config)?;
    let topics = &config.topics;
    let count = |topic: &str| -> anyhow::Result<usize> {
        reader.partition_count(topic)?.with_context(|| {
            format!("topic {topic} does not exist (create the topics with `vigil topics`)")
        })
    };
    let decision_partitions = count(&topics.decisions)?;
    let ledger_partitions = count(&topics.ledger)?;
    let event_partitions = count(&topics.events)?;
    if ledger_partitions < decision_partitions {
        bail!(
            "topic {} has {ledger_partitions} partitions, fewer than {} ({decision_partitions}): ledger partition i records the actions of decisions partition i",
            topics.ledger,
            topics.decisions
        );
    }

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("respond-io")
        .enable_all()
        .build()?;
    let timeout = Duration::from_millis(config.respond.http_timeout_ms);
    let connectors = Arc::new(if config.respond.dry_run {
        info!("respond.dry_run: every vendor request is recorded in the ledger, none is sent");
        Connectors::dry_run(&config.okta, &config.slack, &config.pagerduty, timeout)?
    } else {
        Connectors::new(
            &config.okta,
            &config.slack,
            &config.pagerduty,
            timeout,
            &|name| std::env::var(name).ok(),
        )?
    });
    for (vendor, kind) in [
        ("okta", ActionKind::OktaSuspendUser),
        ("slack", ActionKind::SlackNotify),
        ("pagerduty", ActionKind::PagerdutyTrigger),
    ] {
        // Asked-for dry run was logged above; an unintended one deserves a warning per vendor.
        if connectors.is_dry_run(kind) && !config.respond.dry_run {
            warn!(
                vendor,
                "no credentials: dry run (requests are recorded in the ledger, not sent)"
            );
        }
    }

    let table = OverrideTable::default();
    let follower = overrides::follow(
        &reader_config,
        &topics.overrides,
        table.clone(),
        shutdown.clone(),
    )?;
    // Intents are written one at a time and waited for: no lingering.
    let producer: rdkafka::producer::FutureProducer = producer_config
        .clone()
        .set("linger.ms", "0")
        .create()
        .context("cannot create the ledger producer")?;
    let ledger = LedgerViews::default();
    let api = if config.http.listen.is_empty() {
        None
    } else {
        let state = super::api::ApiState::new(
            table.clone(),
            producer.clone(),
            topics.overrides.clone(),
            ledger.clone(),
            super::api::api_token(&config.http)?,
        );
        Some(runtime.block_on(super::api::serve(
            &config.http.listen,
            state,
            shutdown.clone(),
        ))?)
    };

    let started = Instant::now();
    while !table.caught_up() {
        if started.elapsed() > OVERRIDES_LOAD_TIMEOUT {
            bail!(
                "cannot read the overrides topic {} within {OVERRIDES_LOAD_TIMEOUT:?}",
                topics.overrides
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    info!(
        brokers = config.kafka.bootstrap_servers.as_deref().unwrap_or("-"),
        group = %config.respond.group_id,
        decisions = %topics.decisions,
        ledger = %topics.ledger,
        overrides = %topics.overrides,
        "respond starting"
    );

    let parts = RespondParts {
        runtime: runtime.handle().clone(),
        connectors,
        producer,
        reader,
        overrides: table,
        shutdown: shutdown.clone(),
        event_partitions,
        decision_partitions,
        dlq_max_payload_bytes: config.detect.dlq_max_payload_bytes,
        ledger,
    };
    let processor = LiveRespond::new(parts, topics.clone(), config.respond.clone());
    let mut options = WorkerOptions::for_stage("respond", config);
    options.max_in_flight = config.respond.max_in_flight.max(1);
    options.transactional_id = None;
    let worker = Worker::new(
        &consumer_config,
        &producer_config,
        &[&topics.decisions],
        processor,
        options,
        shutdown.clone(),
    )?;
    let result = worker.run();
    shutdown.store(true, std::sync::atomic::Ordering::Relaxed);
    if let Some(api) = api {
        let _ = runtime.block_on(api);
    }
    let _ = follower.join();
    let (summary, processor) = result?;
    Ok((summary, processor.counters().clone()))
}
