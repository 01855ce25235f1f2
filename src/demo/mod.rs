//! `vigil demo`: the whole pipeline on a bare machine — detect and respond on an embedded
//! Kafka-protocol broker, connectors in dry run — fed simulated Okta traffic that ends now with
//! attacks, shown as it happens, then summarised. Nothing is configured, nothing leaves the host.

mod observer;
mod scenario;
mod view;

use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use chrono::Utc;
use serde_json::json;

use crate::config::Config;
use crate::metrics::{metrics, Metrics};
use crate::policy::{LoadOptions, Policy, PolicySource};
use crate::run::Embedded;
use observer::{Observer, Seen};
use scenario::Scenario;

/// Events produced ahead of detect at most: the embedded broker keeps only the newest ~5 MiB
/// of each partition, so the feed must not outrun the consumer by more than that.
const AHEAD: usize = 8_000;
/// Events produced per step.
const CHUNK: usize = 1_000;
/// Actions still without an outcome this long after the last event was consumed: give up.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(120);
/// With decisions counted but not read (a transaction retried), quiet this long means done.
const QUIET: Duration = Duration::from_secs(5);

/// Arguments of `vigil demo`.
#[derive(clap::Args, Debug, Clone)]
pub struct DemoArgs {
    /// Simulated users.
    #[arg(long, default_value_t = 200)]
    pub users: usize,
    /// Simulated days; baselines learn for 14 days, so 15 lets "new country/device" rules speak.
    #[arg(long, default_value_t = 15)]
    pub days: u32,
    /// Random seed of the simulation.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Policy directory; default: the pack built into this binary.
    #[arg(long, value_name = "DIR")]
    pub policies: Option<PathBuf>,
    /// After the summary keep running until Ctrl-C: delayed actions fall due, `/metrics` and
    /// the overrides API (token from VIGIL_API_TOKEN) stay up on --listen.
    #[arg(long)]
    pub serve: bool,
    /// Address of the HTTP server with --serve.
    #[arg(long, default_value = "127.0.0.1:8088", value_name = "ADDR")]
    pub listen: String,
    /// Also write the run as JSON (injected attacks, decisions, every action's ledger record).
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
}

/// Run `vigil demo`; `Ok(false)` when an injected attack went undetected.
pub fn run(args: &DemoArgs) -> anyhow::Result<bool> {
    let started = Instant::now();
    let source = PolicySource::from_arg(args.policies.as_deref());
    // Loaded here too, so a broken policy is reported at once rather than by a stage thread.
    let policy = Policy::load(&source, LoadOptions::default())
        .with_context(|| format!("cannot load {source}"))?;
    let mut config = Config::default();
    config.detect.policies = args.policies.clone();
    config.respond.dry_run = true;
    config.http.listen = if args.serve {
        args.listen.clone()
    } else {
        String::new()
    };
    let embedded = Embedded::start(&mut config)?;
    println!(
        "vigil demo: detect and respond on an embedded Kafka-protocol broker ({}, in memory); policies {source} (revision {}, {} rules); connectors in dry run",
        embedded.bootstrap(),
        policy.revision(),
        policy.rules().len()
    );
    let scenario = Scenario::generate(args.users, args.days, args.seed, Utc::now())?;
    let total = scenario.records.len();
    println!(
        "feeding {total} simulated events: {} users from {} until now; attacks in the last day: {}",
        args.users,
        scenario.first.format("%Y-%m-%d %H:%M"),
        scenario
            .injected
            .iter()
            .map(|a| a.attack.name())
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!();

    let shutdown = crate::shutdown::on_signal()?;
    let stages = spawn_stages(&config, shutdown.clone())?;
    let producer = crate::bench::producer(&config, false)?;
    let mut observer = Observer::new(&config)?;
    let mut screen = Screen::new(total);
    let mut fed = 0;
    let mut consumed_at: Option<Instant> = None;
    let mut last_seen = Instant::now();
    let feeding_started = Instant::now();
    loop {
        if shutdown.load(Ordering::Relaxed) {
            return stop(stages, "interrupted before the run finished");
        }
        let consumed = consumed();
        if fed < total && fed < consumed as usize + AHEAD {
            let end = (fed + CHUNK).min(total);
            crate::bench::produce(
                &producer,
                &config.topics.events,
                &scenario.records[fed..end],
                None,
            )?;
            fed = end;
        }
        let seen = observer.poll(Duration::from_millis(50));
        if !seen.is_empty() {
            last_seen = Instant::now();
        }
        screen.show(&seen, &observer);
        screen.progress(consumed, &observer, feeding_started);
        if consumed as usize >= total {
            let since = *consumed_at.get_or_insert_with(Instant::now);
            let decisions_read =
                observer.decisions.len() as u64 >= Metrics::total(&metrics().decisions);
            if observer.unsettled() == 0 && (decisions_read || last_seen.elapsed() > QUIET) {
                break;
            }
            if since.elapsed() > SETTLE_TIMEOUT {
                return stop(
                    stages,
                    &format!(
                        "{} actions still have no outcome {} s after the last event",
                        observer.unsettled(),
                        SETTLE_TIMEOUT.as_secs()
                    ),
                );
            }
        }
    }
    screen.clear();
    let seconds = feeding_started.elapsed().as_secs_f64();
    let rule_errors = Metrics::total(&metrics().rule_errors);
    for line in view::summary(
        &observer,
        &scenario.injected,
        total,
        seconds,
        rule_errors,
        Utc::now(),
    ) {
        println!("{line}");
    }
    let detected = view::detections(&scenario.injected, &observer.decisions)
        .iter()
        .all(|(_, rules)| !rules.is_empty());
    if let Some(path) = &args.report {
        write_report(path, &scenario, &observer)?;
    }
    println!("done in {:.1} s", started.elapsed().as_secs_f64());
    io::stdout().flush()?;
    if args.serve {
        println!();
        println!(
            "serving until Ctrl-C: http://{0}/metrics, http://{0}/healthz, overrides API http://{0}/v1/overrides (bearer token from VIGIL_API_TOKEN); delayed actions run when due",
            args.listen
        );
        while !shutdown.load(Ordering::Relaxed) && !stages.is_finished() {
            let seen = observer.poll(Duration::from_millis(200));
            screen.show(&seen, &observer);
        }
        if let Some(path) = &args.report {
            write_report(path, &scenario, &observer)?;
        }
    }
    shutdown.store(true, Ordering::Relaxed);
    join(stages)?;
    Ok(detected)
}

/// Detect and respond (as `vigil run` runs them) on their own thread.
fn spawn_stages(
    config: &Config,
    shutdown: Arc<AtomicBool>,
) -> anyhow::Result<JoinHandle<anyhow::Result<()>>> {
    let config = config.clone();
    Ok(std::thread::Builder::new()
        .name("stages".into())
        .spawn(move || crate::run::run_stages_with(&config, shutdown, false))?)
}

fn join(stages: JoinHandle<anyhow::Result<()>>) -> anyhow::Result<()> {
    stages
        .join()
        .map_err(|_| anyhow::anyhow!("a stage panicked"))?
}

/// Stop the stages and report why the run ended early (a stage's own error first).
fn stop(stages: JoinHandle<anyhow::Result<()>>, why: &str) -> anyhow::Result<bool> {
    join(stages)?;
    bail!("{why}")
}

/// Events detect has taken off the topic (evaluated or dead-lettered).
fn consumed() -> u64 {
    Metrics::total(&metrics().events) + Metrics::total(&metrics().dead_lettered)
}

fn write_report(path: &PathBuf, scenario: &Scenario, observer: &Observer) -> anyhow::Result<()> {
    let injected: Vec<_> = scenario
        .injected
        .iter()
        .zip(view::detections(&scenario.injected, &observer.decisions))
        .map(|(attack, (name, rules))| {
            json!({
                "attack": name,
                "user_id": attack.user_id,
                "user_login": attack.user_login,
                "detected_by": rules,
            })
        })
        .collect();
    let report = json!({
        "events": scenario.records.len(),
        "injected": injected,
        "decisions": observer.decisions,
        "ledger": observer.ledger,
    });
    std::fs::write(path, serde_json::to_vec_pretty(&report)?)
        .with_context(|| format!("cannot write {}", path.display()))
}

/// The terminal: lines as things happen and, on a terminal, a progress line kept at the bottom.
struct Screen {
    total: usize,
    live: bool,
    shown_at: Instant,
    progress_shown: bool,
}

impl Screen {
    fn new(total: usize) -> Self {
        Screen {
            total,
            live: io::stderr().is_terminal(),
            shown_at: Instant::now(),
            progress_shown: false,
        }
    }

    fn show(&mut self, seen: &[Seen], observer: &Observer) {
        if seen.is_empty() {
            return;
        }
        self.clear();
        let logins = view::logins(&observer.decisions);
        let now = Utc::now();
        for item in seen {
            match item {
                Seen::Decision(d) => println!("{}", view::decision(d)),
                Seen::Action(entry) => {
                    println!("{}", view::action(entry, view::login(&logins, entry), now))
                }
            }
        }
    }

    fn progress(&mut self, consumed: u64, observer: &Observer, since: Instant) {
        let every = if self.live {
            Duration::from_millis(250)
        } else {
            Duration::from_secs(5)
        };
        if self.shown_at.elapsed() < every {
            return;
        }
        self.shown_at = Instant::now();
        let rate = consumed as f64 / since.elapsed().as_secs_f64().max(1e-9);
        let line = format!(
            "events {consumed}/{} ({rate:.0}/s) · decisions {} · actions {} recorded, {} in progress",
            self.total,
            observer.decisions.len(),
            observer.ledger.len(),
            observer.unsettled()
        );
        if self.live {
            eprint!("\r{line}\x1b[K");
            self.progress_shown = true;
        } else {
            println!("progress: {line}");
        }
    }

    fn clear(&mut self) {
        if self.progress_shown {
            eprint!("\r\x1b[K");
            self.progress_shown = false;
        }
    }
}
