//! `vigil detect`: the detect stage as a consumer-group member on the events topic.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tracing::info;

use super::{DetectCounters, Detector, LiveDetect};
use crate::config::Config;
use crate::kafka::reader::PartitionReader;
use crate::kafka::{self, Worker, WorkerOptions, WorkerSummary};
use crate::overrides::OverrideTable;
use crate::policy::{LoadOptions, Policy, PolicySource};

/// Arguments of `vigil detect`.
#[derive(clap::Args, Debug, Clone)]
pub struct DetectArgs {
    /// Configuration file (TOML; see vigil.example.toml). `VIGIL_<SECTION>__<KEY>` environment
    /// variables override it, e.g. VIGIL_KAFKA__BOOTSTRAP_SERVERS=broker:9092.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// Run the detect stage until SIGINT/SIGTERM.
pub fn run(args: &DetectArgs) -> anyhow::Result<bool> {
    let config = Config::load(args.config.as_deref())?;
    let shutdown = crate::shutdown::on_signal()?;
    let admin = crate::http_server::spawn_admin(&config.http.listen, shutdown.clone())?;
    let (summary, counters) = run_stage(&config, shutdown)?;
    if let Some(admin) = admin {
        let _ = admin.join();
    }
    info!(
        consumed = summary.consumed,
        decisions = counters.decisions,
        dead_lettered = counters.dead_lettered,
        "detect stopped"
    );
    Ok(true)
}

/// Load the policies named by the configuration.
pub fn load_policy(config: &Config) -> anyhow::Result<Policy> {
    Policy::load(&policy_source(config), policy_options(config)).context("cannot load the policies")
}

fn policy_source(config: &Config) -> PolicySource {
    PolicySource::from_arg(config.detect.policies.as_deref())
}

fn policy_options(config: &Config) -> LoadOptions {
    LoadOptions {
        include_tests: false,
        eval_timeout: Duration::from_millis(config.detect.eval_timeout_ms),
        compiled_screen: config.detect.compiled_screen,
    }
}

/// The detect stage with `config`, until `shutdown` is set: the loop `vigil detect`, `vigil run`,
/// the tests and the bench share.
pub fn run_stage(
    config: &Config,
    shutdown: Arc<AtomicBool>,
) -> anyhow::Result<(WorkerSummary, DetectCounters)> {
    // Client settings first: a missing broker address is reported before anything else.
    let consumer_config = kafka::consumer_config(&config.kafka, &config.detect.group_id)?;
    let producer_config = kafka::producer_config(&config.kafka)?;
    let reader = PartitionReader::new(&kafka::reader_config(&config.kafka)?)?;
    crate::health::health().needs_policy();
    let policy = load_policy(config)?;
    info!(
        revision = policy.revision(),
        rules = policy.rules().len(),
        brokers = config.kafka.bootstrap_servers.as_deref().unwrap_or("-"),
        group = %config.detect.group_id,
        events = %config.topics.events,
        decisions = %config.topics.decisions,
        dlq = %config.topics.dlq,
        state = %config.topics.state,
        "detect starting"
    );
    // Policies see analysts' overrides (input.override); detect does not wait for the topic:
    // the respond stage enforces overrides whatever the decision says.
    let overrides = OverrideTable::default();
    let follower = crate::overrides::follow(
        &kafka::reader_config(&config.kafka)?,
        &config.topics.overrides,
        overrides.clone(),
        shutdown.clone(),
    )?;
    crate::metrics::metrics().set_policy_revision(policy.revision());
    crate::health::health().policy_loaded(policy.revision());
    // SIGHUP or a changed file under the policy directory: a new revision, swapped in between
    // events (or refused, keeping this one).
    let reloads = crate::detect::reload::watch(
        policy_source(config),
        policy_options(config),
        policy.revision().to_owned(),
        crate::shutdown::hangups()?,
        shutdown.clone(),
    )?;
    let detector = Detector::new(policy, config.detect.limits()).with_overrides(overrides);
    let processor = LiveDetect::new(
        detector,
        config.topics.clone(),
        config.detect.clone(),
        reader,
    )?
    .with_reloads(reloads);
    let worker = Worker::new(
        &consumer_config,
        &producer_config,
        &[&config.topics.events],
        processor,
        WorkerOptions::for_stage("detect", config),
        shutdown.clone(),
    )?;
    let result = worker.run();
    shutdown.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = follower.join();
    let (summary, processor) = result?;
    Ok((summary, processor.counters().clone()))
}
