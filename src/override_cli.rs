//! `vigil override`: set, lift and list analysts' overrides from the command line, straight on
//! the overrides topic (no running stage needed), or through a running Vigil's HTTP API
//! (`--api`; the only way to reach `vigil run` on its embedded broker).

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use chrono::Utc;

use crate::api_client::ApiClient;
use crate::config::Config;
use crate::kafka;
use crate::overrides::{self, Override, OverrideTable, Scope};

/// `vigil override …`
#[derive(clap::Args, Debug, Clone)]
pub struct OverrideArgs {
    /// Configuration file (for the brokers and the overrides topic).
    #[arg(long, value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,
    /// Go through a running Vigil's HTTP API instead of the overrides topic: at URL, or without
    /// one at `http.listen` of the configuration. The default when no brokers are configured
    /// (`vigil run` on its embedded broker). The token comes from VIGIL_API_TOKEN or
    /// `http.token_file`.
    #[arg(long, value_name = "URL", global = true, num_args = 0..=1, default_missing_value = "")]
    pub api: Option<String>,
    /// What to do.
    #[command(subcommand)]
    pub command: OverrideCommand,
}

/// The override subcommands.
#[derive(clap::Subcommand, Debug, Clone)]
pub enum OverrideCommand {
    /// Suppress a user's decisions (scope all) or cancel their pending actions (scope pending)
    /// for a period.
    Set {
        /// Okta user id.
        #[arg(long)]
        user: String,
        /// Why (recorded with the override).
        #[arg(long)]
        reason: String,
        /// For how long: `30m`, `2h`, `1day`.
        #[arg(long = "for", value_parser = humantime::parse_duration)]
        duration: Duration,
        /// What it covers.
        #[arg(long, value_enum, default_value_t = Scope::All)]
        scope: Scope,
        /// Who (recorded with the override).
        #[arg(long, env = "USER")]
        by: Option<String>,
    },
    /// Lift a user's override now (the lift is recorded with its reason).
    Clear {
        /// Okta user id.
        #[arg(long)]
        user: String,
        /// Why.
        #[arg(long)]
        reason: String,
        /// Who.
        #[arg(long, env = "USER")]
        by: Option<String>,
    },
    /// Print every user's newest override as JSON lines.
    List,
}

/// Run `vigil override …`.
pub fn run(args: &OverrideArgs) -> anyhow::Result<bool> {
    let config = Config::load(args.config.as_deref())?;
    if args.api.is_some() || config.kafka.bootstrap_servers.is_none() {
        let url = args.api.as_deref().filter(|url| !url.is_empty());
        return through_api(&ApiClient::new(&config, url)?, &args.command);
    }
    let topic = &config.topics.overrides;
    let now = Utc::now();
    let o = match &args.command {
        OverrideCommand::Set {
            user,
            reason,
            duration,
            scope,
            by,
        } => Override {
            user_id: user.clone(),
            scope: *scope,
            reason: reason.clone(),
            by: by.clone(),
            created_at: now,
            until: now + chrono::Duration::from_std(*duration).context("--for is too long")?,
        },
        OverrideCommand::Clear { user, reason, by } => Override {
            user_id: user.clone(),
            scope: Scope::All,
            reason: reason.clone(),
            by: by.clone(),
            created_at: now,
            until: now,
        },
        OverrideCommand::List => return list(&config).map(|()| true),
    };
    let producer: rdkafka::producer::FutureProducer = kafka::producer_config(&config.kafka)?
        .create()
        .context("cannot create the Kafka producer")?;
    futures::executor::block_on(overrides::publish(&producer, topic, &o))?;
    println!("{}", serde_json::to_string(&o)?);
    Ok(true)
}

fn list(config: &Config) -> anyhow::Result<()> {
    let table = OverrideTable::default();
    let stop = Arc::new(AtomicBool::new(false));
    let reader = kafka::reader_config(&config.kafka)?;
    let follower = overrides::follow(
        &reader,
        &config.topics.overrides,
        table.clone(),
        stop.clone(),
    )?;
    let started = Instant::now();
    while !table.caught_up() {
        if started.elapsed() > Duration::from_secs(30) {
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            bail!("cannot read {} within 30 s", config.topics.overrides);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = follower.join();
    for o in table.all() {
        println!("{}", serde_json::to_string(&o)?);
    }
    Ok(())
}

/// `vigil override …` through the HTTP API (`PUT`/`DELETE /v1/overrides/{user}`,
/// `GET /v1/overrides`); prints the same JSON lines as the topic path.
fn through_api(api: &ApiClient, command: &OverrideCommand) -> anyhow::Result<bool> {
    use reqwest::Method;
    let written = match command {
        OverrideCommand::Set {
            user,
            reason,
            duration,
            scope,
            by,
        } => {
            let body = serde_json::json!({
                "reason": reason,
                "for_secs": duration.as_secs(),
                "scope": scope,
                "by": by,
            });
            api.call(Method::PUT, &["v1", "overrides", user], &[], Some(&body))?
        }
        OverrideCommand::Clear { user, reason, by } => {
            let body = serde_json::json!({"reason": reason, "by": by});
            api.call(Method::DELETE, &["v1", "overrides", user], &[], Some(&body))?
        }
        OverrideCommand::List => {
            let listed = api.call(Method::GET, &["v1", "overrides"], &[], None)?;
            for o in listed.as_array().into_iter().flatten() {
                println!("{}", serde_json::to_string(o)?);
            }
            return Ok(true);
        }
    };
    println!("{}", serde_json::to_string(&written)?);
    Ok(true)
}
