//! `vigil run`: every stage in one process — ingest (when configured), detect and respond — on
//! the configured brokers, or, with none configured, on an embedded Kafka-protocol broker
//! (librdkafka's mock cluster: in memory, non-durable, for trial and small single-node use).
//!
//! The embedded broker forgets everything on a restart, and the ledger is what makes actions
//! effectively once: so without brokers `vigil run` refuses credentials that would make a
//! connector act for real, unless the user accepts that with `--volatile`.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use anyhow::{anyhow, Context as _};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;
use tracing::{error, info, warn};

use crate::config::{Config, ConfigError};
use crate::connector::Connectors;
use crate::decision::ActionKind;

/// Partitions of each topic on the embedded broker: it keeps only the newest 5 MiB per
/// partition, so more partitions hold more (≈ 3,000 Okta events each).
const EMBEDDED_PARTITIONS: i32 = 8;

/// What the embedded broker loses on a restart (said by the refusal and by the warnings).
const EMBEDDED_FORGETS: &str = "a restart forgets the ledger (actions already done can be done again), the delayed actions (they never run), the System Log poller's cursor and detect's per-user state";

/// Arguments of `vigil run`.
#[derive(clap::Args, Debug, Clone)]
pub struct RunArgs {
    /// Configuration file (TOML; see vigil.example.toml). Without `kafka.bootstrap_servers` an
    /// embedded in-memory broker is used; without vendor credentials connectors run dry.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Accept live vendor actions on the embedded in-memory broker (no
    /// `kafka.bootstrap_servers`). A restart forgets the ledger (actions already done can be done
    /// again), the delayed actions (they never run), the System Log poller's cursor and detect's
    /// state, so without this flag `vigil run` without brokers refuses to start when a vendor
    /// credential (VIGIL_OKTA_TOKEN, VIGIL_SLACK_TOKEN, VIGIL_SLACK_WEBHOOK_URL,
    /// VIGIL_PAGERDUTY_ROUTING_KEY or a *_file key) would make a connector act. To poll the
    /// System Log with the Okta token and keep every action dry, set `respond.dry_run = true`
    /// instead. Same as `run.volatile = true` or VIGIL_RUN__VOLATILE=true.
    #[arg(long)]
    pub volatile: bool,
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
        let volatile = args.volatile || config.run.volatile;
        let live = embedded_check(&config, volatile, &|name| std::env::var(name).ok())?;
        let embedded = Embedded::start(&mut config)?;
        let accepted = if live.is_empty() {
            "every connector in dry run".to_owned()
        } else {
            format!(
                "live vendor actions accepted by --volatile or run.volatile: {}",
                live.join(", ")
            )
        };
        warn!(
            broker = %embedded.bootstrap(),
            "no brokers configured: running on an embedded in-memory Kafka-protocol broker (librdkafka's mock cluster) — non-durable, keeps ~5 MiB per partition, for trial use only: {EMBEDDED_FORGETS}; {accepted}"
        );
        Some(embedded)
    } else {
        None
    };
    let shutdown = crate::shutdown::on_signal()?;
    run_stages(&config, shutdown)?;
    Ok(true)
}

/// On the embedded broker: the vendors whose actions would be sent for real (credentials in
/// `env` or files, `respond.dry_run` off), or a refusal naming them unless `volatile`.
pub fn embedded_check(
    config: &Config,
    volatile: bool,
    env: &dyn Fn(&str) -> Option<String>,
) -> anyhow::Result<Vec<&'static str>> {
    if config.respond.dry_run {
        return Ok(Vec::new());
    }
    let timeout = std::time::Duration::from_millis(config.respond.http_timeout_ms);
    let connectors = Connectors::new(&config.okta, &config.slack, &config.pagerduty, timeout, env)?;
    let live: Vec<&'static str> = [
        ("okta", ActionKind::OktaSuspendUser),
        ("slack", ActionKind::SlackNotify),
        ("pagerduty", ActionKind::PagerdutyTrigger),
    ]
    .into_iter()
    .filter(|(_, kind)| !connectors.is_dry_run(*kind))
    .map(|(vendor, _)| vendor)
    .collect();
    if live.is_empty() || volatile {
        return Ok(live);
    }
    Err(ConfigError(format!(
        "no kafka.bootstrap_servers: `vigil run` would run on an embedded in-memory broker with live credentials for {} — {EMBEDDED_FORGETS}. Configure a broker (kafka.bootstrap_servers), or keep actions dry with respond.dry_run = true (the Okta token still reads the System Log), or accept this with --volatile (run.volatile = true, VIGIL_RUN__VOLATILE=true)",
        live.join(", ")
    ))
    .into())
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

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    fn with_okta() -> Config {
        let mut config = Config::default();
        config.okta.base_url = Some("https://acme.okta.com".into());
        config
    }

    #[test]
    fn live_credentials_on_the_embedded_broker_are_refused_unless_volatile() {
        let slack = env(&[("VIGIL_SLACK_TOKEN", "xoxb-1")]);
        let err = embedded_check(&Config::default(), false, &slack)
            .unwrap_err()
            .to_string();
        for needle in [
            "slack",
            "ledger",
            "delayed actions",
            "cursor",
            "state",
            "--volatile",
            "respond.dry_run",
        ] {
            assert!(err.contains(needle), "{needle}: {err}");
        }
        assert!(!err.contains("xoxb-1"), "no secret in the message: {err}");
        assert_eq!(
            embedded_check(&Config::default(), true, &slack).unwrap(),
            ["slack"]
        );
    }

    #[test]
    fn a_token_kept_dry_or_no_credentials_need_no_flag() {
        let okta = env(&[("VIGIL_OKTA_TOKEN", "00abc")]);
        let mut dry = with_okta();
        dry.respond.dry_run = true;
        assert!(embedded_check(&dry, false, &okta).unwrap().is_empty());
        assert!(embedded_check(&with_okta(), false, &env(&[]))
            .unwrap()
            .is_empty());
        assert!(embedded_check(&with_okta(), false, &okta).is_err());
        // A PagerDuty REST token alone only reads incidents: no action is sent with it.
        let read_only = env(&[("VIGIL_PAGERDUTY_API_TOKEN", "pd")]);
        assert!(embedded_check(&Config::default(), false, &read_only)
            .unwrap()
            .is_empty());
    }
}
