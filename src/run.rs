//! `vigil run`: every stage in one process — ingest (when configured), detect and respond — on
//! the configured brokers, or, with none configured, on an embedded Kafka-protocol broker
//! (librdkafka's mock cluster: in memory, non-durable, for trial and small single-node use).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use anyhow::{anyhow, Context as _};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;
use tracing::{error, info, warn};

use crate::config::Config;

/// Partitions of each topic on the embedded broker: it keeps only the newest 5 MiB per
/// partition, so more partitions hold more (≈ 3,000 Okta events each).
const EMBEDDED_PARTITIONS: i32 = 8;

/// Arguments of `vigil run`.
#[derive(clap::Args, Debug, Clone)]
pub struct RunArgs {
    /// Configuration file (TOML; see vigil.example.toml). Without `kafka.bootstrap_servers` an
    /// embedded in-memory broker is used; without vendor credentials connectors run dry.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// An embedded broker with every configured topic, for a configuration without brokers.
pub struct Embedded {
    cluster: MockCluster<'static, DefaultProducerContext>,
}

impl Embedded {
    /// Start one and point `config` at it.
    pub fn start(config: &mut Config) -> anyhow::Result<Self> {
        Self::with_partitions(config, EMBEDDED_PARTITIONS)
    }

    /// [`Embedded::start`] with `partitions` per topic.
    pub fn with_partitions(config: &mut Config, partitions: i32) -> anyhow::Result<Self> {
        let cluster = MockCluster::new(1).context("cannot start the embedded broker")?;
        config.kafka.bootstrap_servers = Some(cluster.bootstrap_servers());
        let t = &config.topics;
        for topic in [
            &t.events,
            &t.decisions,
            &t.dlq,
            &t.state,
            &t.ledger,
            &t.overrides,
            &t.ingest_state,
        ] {
            cluster
                .create_topic(topic, partitions, 1)
                .with_context(|| format!("cannot create {topic} on the embedded broker"))?;
        }
        Ok(Embedded { cluster })
    }

    /// The broker, for fault injection in tests.
    pub fn cluster(&self) -> &MockCluster<'static, DefaultProducerContext> {
        &self.cluster
    }

    /// `host:port` of the embedded broker.
    pub fn bootstrap(&self) -> String {
        self.cluster.bootstrap_servers()
    }
}

/// Run every stage until SIGINT/SIGTERM.
pub fn run(args: &RunArgs) -> anyhow::Result<bool> {
    let mut config = Config::load(args.config.as_deref())?;
    let _embedded = if config.kafka.bootstrap_servers.is_none() {
        let embedded = Embedded::start(&mut config)?;
        warn!(
            broker = %embedded.bootstrap(),
            "no brokers configured: running on an embedded in-memory Kafka-protocol broker (librdkafka's mock cluster) — non-durable, keeps ~5 MiB per partition, for trial use only"
        );
        Some(embedded)
    } else {
        None
    };
    let shutdown = crate::shutdown::on_signal()?;
    run_stages(&config, shutdown)?;
    Ok(true)
}

/// Every configured stage on its own thread until `shutdown` is set or one fails (then all
/// stop, and the first error is returned).
pub fn run_stages(config: &Config, shutdown: Arc<AtomicBool>) -> anyhow::Result<()> {
    run_stages_with(config, shutdown, true)
}

/// [`run_stages`], with ingest only when `ingest` (the demo feeds the events topic itself and
/// must not open the hook port because a secret happens to be in the environment).
pub fn run_stages_with(
    config: &Config,
    shutdown: Arc<AtomicBool>,
    ingest: bool,
) -> anyhow::Result<()> {
    let mut stages: Vec<(&'static str, JoinHandle<anyhow::Result<()>>)> = Vec::new();
    let mut spawn =
        |name: &'static str, f: Box<dyn FnOnce(Arc<AtomicBool>) -> anyhow::Result<()> + Send>| {
            let stop = shutdown.clone();
            let handle = std::thread::Builder::new().name(name.into()).spawn(move || {
            let result = f(stop.clone());
            if let Err(e) = &result {
                error!(stage = name, error = %format!("{e:#}"), "stage failed; stopping every stage");
            }
            // One stage ending ends the process: a half-running pipeline is worse than none.
            stop.store(true, Ordering::Relaxed);
            result
        });
            handle.map(|h| stages.push((name, h)))
        };
    let c = config.clone();
    spawn(
        "detect",
        Box::new(move |stop| crate::detect::command::run_stage(&c, stop).map(drop)),
    )?;
    let c = config.clone();
    spawn(
        "respond",
        Box::new(move |stop| crate::respond::command::run_stage(&c, stop).map(drop)),
    )?;
    let hook_secret = if ingest {
        crate::shared_secret::load(
            config.ingest.hook_secret_file.as_deref(),
            crate::ingest::hook::HOOK_SECRET_ENV,
        )?
    } else {
        None
    };
    if hook_secret.is_some() {
        let c = config.clone();
        spawn(
            "ingest-hook",
            Box::new(move |stop| crate::ingest::command::run_hook(&c, stop)),
        )?;
    } else if ingest {
        info!("Event Hook receiver off: no hook secret configured");
    }
    if ingest && config.ingest.poll {
        let c = config.clone();
        spawn(
            "ingest-poll",
            Box::new(move |stop| crate::ingest::command::run_poll(&c, stop).map(drop)),
        )?;
    } else if ingest {
        info!("System Log poller off (ingest.poll = false)");
    }
    let mut first_error = None;
    for (name, handle) in stages {
        match handle.join() {
            Ok(Ok(())) => info!(stage = name, "stage stopped"),
            Ok(Err(e)) => {
                first_error.get_or_insert(e.context(format!("the {name} stage failed")));
            }
            Err(_) => {
                first_error.get_or_insert(anyhow!("the {name} stage panicked"));
            }
        }
    }
    first_error.map_or(Ok(()), Err)
}
