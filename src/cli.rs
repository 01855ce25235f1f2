//! The command line: one clap derive tree; each subcommand's arguments belong to its module.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::{
    actions_cli, bench, demo, detect, ingest, override_cli, policy_test, rekey, replay, respond,
    run, simulate, topics,
};

/// Vigil: real-time identity-threat response for Okta.
///
/// Okta System Log events are evaluated by Rego policies against per-user state; the decisions
/// drive Okta, Slack and PagerDuty actions.
#[derive(Parser, Debug)]
#[command(name = "vigil", version, about, long_about = None)]
pub struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Log output formats.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// The whole pipeline on an embedded broker, fed simulated Okta traffic with attacks;
    /// connectors in dry run, nothing to configure.
    Demo(demo::DemoArgs),
    /// Run a file of Okta events through the policies and print the decisions (JSON lines).
    Replay(replay::ReplayArgs),
    /// Every stage in one process (ingest when configured, detect, respond); with no brokers
    /// configured, on an embedded in-memory broker (which refuses live vendor credentials unless
    /// --volatile); runs until SIGINT/SIGTERM.
    Run(run::RunArgs),
    /// The detect stage: consume Okta events from Kafka, publish decisions (and bad records to
    /// the DLQ); runs until SIGINT/SIGTERM, then finishes in-flight work and commits.
    Detect(detect::command::DetectArgs),
    /// The respond stage: execute the decisions' Okta, Slack and PagerDuty actions effectively
    /// once, with delayed actions, overrides and a blast-radius guard; runs until SIGINT/SIGTERM.
    Respond(respond::command::RespondArgs),
    /// Set, lift or list analysts' overrides (suppress a user's decisions, cancel pending actions).
    Override(override_cli::OverrideArgs),
    /// What the respond stage did about a user, a decision or an action: the ledger of a running
    /// Vigil, through its HTTP API.
    Actions(actions_cli::ActionsArgs),
    /// Bring Okta events in: `hook` (Event Hook receiver) or `poll` (System Log API poller).
    Ingest(ingest::command::IngestArgs),
    /// Move events from an unkeyed upstream topic to the events topic, keyed by user.
    Rekey(rekey::RekeyArgs),
    /// Measure a stage against a bare consume-produce passthrough on one broker: detect (rates,
    /// their ratio, latency at a fixed event rate) or respond (decision-to-vendor latency).
    Bench(bench::BenchArgs),
    /// Create the configured topics that do not exist yet (trial and test setups).
    Topics(topics::TopicsArgs),
    /// Work with a policy directory.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Write simulated Okta System Log traffic, optionally with attacks injected.
    Simulate(simulate::SimulateArgs),
}

/// `vigil policy …`
#[derive(Subcommand, Debug)]
pub enum PolicyCommand {
    /// Run the `test_*` rules of every `*_test.rego` and every `scenarios/*.toml`; report coverage.
    Test(policy_test::PolicyTestArgs),
}

/// Init logging and run the command.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // The demo prints its own view; stage logs would bury it (RUST_LOG brings them back).
    let default_level = match cli.command {
        Command::Demo(_) => "warn",
        _ => "info",
    };
    init_logging(cli.log_format, default_level);
    let result = match &cli.command {
        Command::Demo(args) => demo::run(args),
        Command::Replay(args) => replay::run(args).map(|_| true),
        Command::Run(args) => run::run(args),
        Command::Detect(args) => detect::command::run(args),
        Command::Respond(args) => respond::command::run(args),
        Command::Override(args) => override_cli::run(args),
        Command::Actions(args) => actions_cli::run(args),
        Command::Ingest(args) => ingest::command::run(args),
        Command::Rekey(args) => rekey::run(args),
        Command::Bench(args) => bench::run(args).map(|()| true),
        Command::Topics(args) => topics::run(args).map(|()| true),
        Command::Policy(PolicyCommand::Test(args)) => policy_test::run(args),
        Command::Simulate(args) => simulate::run(args).map(|()| true),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        // `vigil replay … | head` closes our stdout early: that is the reader's choice, not an error.
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vigil: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
            || cause
                .downcast_ref::<serde_json::Error>()
                .and_then(|e| e.io_error_kind())
                .is_some_and(|kind| kind == std::io::ErrorKind::BrokenPipe)
    })
}

fn init_logging(format: LogFormat, default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
