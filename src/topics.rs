//! `vigil topics`: create the configured topics that are missing.

use std::path::PathBuf;

use tracing::info;

use crate::config::Config;
use crate::kafka::admin::{ensure_topics, TopicSpec};
use crate::kafka::base_config;

/// Arguments of `vigil topics`.
#[derive(clap::Args, Debug, Clone)]
pub struct TopicsArgs {
    /// Configuration file (TOML; see vigil.example.toml).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Partitions of each topic; the events, decisions and state topics must match.
    #[arg(long, default_value_t = 6)]
    pub partitions: i32,
    /// Replication factor (1 suits a single trial broker; production clusters want 3).
    #[arg(long, default_value_t = 1)]
    pub replication_factor: i32,
}

/// Every topic the configuration names, with the state topic compacted.
pub fn specs(config: &Config, partitions: i32, replication: i32) -> Vec<TopicSpec> {
    let topics = &config.topics;
    let mut specs = vec![
        (topics.events.clone(), false),
        (topics.decisions.clone(), false),
        (topics.dlq.clone(), false),
        (topics.state.clone(), true),
        (topics.ledger.clone(), true),
        (topics.overrides.clone(), true),
        (topics.ingest_state.clone(), true),
    ];
    if let Some(upstream) = &topics.upstream {
        specs.push((upstream.clone(), false));
    }
    specs
        .into_iter()
        .map(|(name, compacted)| TopicSpec {
            name,
            partitions,
            replication,
            compacted,
        })
        .collect()
}

/// Create the missing topics.
pub fn run(args: &TopicsArgs) -> anyhow::Result<()> {
    let config = Config::load(args.config.as_deref())?;
    let specs = specs(&config, args.partitions, args.replication_factor);
    ensure_topics(&base_config(&config.kafka)?, &specs)?;
    for spec in &specs {
        info!(topic = %spec.name, partitions = spec.partitions, compacted = spec.compacted, "topic ready");
    }
    Ok(())
}
