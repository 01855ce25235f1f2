//! `vigil replay`: run a file of Okta events through the same detector the live stage uses and
//! print the decisions as JSON lines. Same input, same policies → byte-identical output.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, IsTerminal, Read, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};

use crate::detect::Detector;
use crate::event::{read_events, DEFAULT_MAX_EVENT_BYTES};
use crate::policy::{LoadOptions, Policy, PolicySource};
use crate::state::StateLimits;

/// Bad records and rule errors printed one by one before they are only counted.
const MAX_PRINTED_ERRORS: u64 = 100;

/// Arguments of `vigil replay`.
#[derive(clap::Args, Debug, Clone)]
pub struct ReplayArgs {
    /// Okta events to replay: NDJSON, a System Log API page (JSON array) or Event Hook envelopes;
    /// `-` reads standard input.
    #[arg(long, value_name = "FILE|-")]
    pub events: PathBuf,
    /// Policy directory (Rego modules, data.json files, features.toml); default: the pack built
    /// into this binary (the repository's `policies/`).
    #[arg(long, value_name = "DIR")]
    pub policies: Option<PathBuf>,
    /// Write decisions here instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Also write, per evaluated event, the exact input document the policies received (JSON
    /// lines), to reproduce a decision with `opa eval` on the same policy directory.
    #[arg(long, value_name = "FILE")]
    pub inputs_out: Option<PathBuf>,
    /// Reject events larger than this many bytes.
    #[arg(long, default_value_t = DEFAULT_MAX_EVENT_BYTES)]
    pub max_event_bytes: usize,
    /// Bound on evaluating one event, in milliseconds; past it the event's rules error.
    #[arg(long, default_value_t = 100)]
    pub eval_timeout_ms: u64,
    /// Users tracked at most (replay is deterministic while the file has fewer users).
    #[arg(long, default_value_t = 1_000_000)]
    pub max_users: u64,
    /// An event seen again (same uuid, eventType and published) within this many seconds of
    /// event time is a repeat: ignored and counted in the summary (at least the longest
    /// feature window).
    #[arg(long, default_value_t = crate::state::DEFAULT_DEDUP_WINDOW.as_secs())]
    pub dedup_window_secs: u64,
    /// Never draw the progress bar (it is only drawn when stderr is a terminal anyway).
    #[arg(long)]
    pub no_progress: bool,
    /// Screen events with the interpreter instead of the rules compiled to regorus' VM (slower;
    /// the decisions are the same, which this flag lets anyone check).
    #[arg(long)]
    pub interpreter_screen: bool,
}

/// What a replay did.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ReplaySummary {
    /// Events decoded.
    pub events: u64,
    /// Events the policies evaluated.
    pub evaluated: u64,
    /// Events seen before (same uuid, eventType and published): no state change, no decision.
    pub repeats: u64,
    /// Decisions written.
    pub decisions: u64,
    /// Decisions per rule.
    pub decisions_by_rule: BTreeMap<String, u64>,
    /// Rejected records per reason.
    pub bad_records: BTreeMap<&'static str, u64>,
    /// Rule runtime errors per rule.
    pub rule_errors: BTreeMap<String, u64>,
    /// Wall time spent.
    pub elapsed: Duration,
}

impl ReplaySummary {
    /// Total rejected records.
    pub fn bad_record_count(&self) -> u64 {
        self.bad_records.values().sum()
    }

    /// Human summary, several lines.
    pub fn render(&self, revision: &str) -> String {
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        let join = |m: Vec<(String, u64)>| {
            if m.is_empty() {
                "none".to_owned()
            } else {
                m.into_iter()
                    .map(|(k, v)| format!("{k} {v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        };
        format!(
            "replay: {} events ({} evaluated, {} repeats ignored), {} decisions, {} bad records, {} rule errors in {:.2} s ({:.0} events/s)\n  decisions by rule: {}\n  bad records by reason: {}\n  rule errors by rule: {}\n  policy revision: {}",
            self.events,
            self.evaluated,
            self.repeats,
            self.decisions,
            self.bad_record_count(),
            self.rule_errors.values().sum::<u64>(),
            self.elapsed.as_secs_f64(),
            self.events as f64 / secs,
            join(self.decisions_by_rule.iter().map(|(k, v)| (k.clone(), *v)).collect()),
            join(self.bad_records.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()),
            join(self.rule_errors.iter().map(|(k, v)| (k.clone(), *v)).collect()),
            revision,
        )
    }
}

/// Run `vigil replay`.
pub fn run(args: &ReplayArgs) -> anyhow::Result<ReplaySummary> {
    let source = PolicySource::from_arg(args.policies.as_deref());
    let policy = Policy::load(
        &source,
        LoadOptions {
            include_tests: false,
            eval_timeout: Duration::from_millis(args.eval_timeout_ms),
            compiled_screen: !args.interpreter_screen,
        },
    )
    .with_context(|| format!("cannot load policies from {source}"))?;
    let revision = policy.revision().to_owned();
    let limits = StateLimits {
        max_users: args.max_users,
        dedup_window: Duration::from_secs(args.dedup_window_secs),
        ..StateLimits::default()
    };
    let mut detector = Detector::new(policy, limits);

    let show_progress = !args.no_progress && io::stderr().is_terminal();
    let (reader, progress): (Box<dyn Read>, ProgressBar) = if args.events.as_os_str() == "-" {
        let bar = if show_progress {
            ProgressBar::new_spinner()
        } else {
            ProgressBar::hidden()
        };
        (Box::new(io::stdin().lock()), bar)
    } else {
        let file = File::open(&args.events)
            .with_context(|| format!("cannot open {}", args.events.display()))?;
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        let bar = if show_progress {
            ProgressBar::new(len)
        } else {
            ProgressBar::hidden()
        };
        bar.set_style(
            ProgressStyle::with_template(
                "{bar:40} {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        (Box::new(file), bar)
    };
    let input = BufReader::with_capacity(1 << 20, progress.wrap_read(reader));
    let mut out: Box<dyn Write> = match &args.out {
        Some(path) => Box::new(
            File::create(path).with_context(|| format!("cannot create {}", path.display()))?,
        ),
        None => Box::new(io::stdout().lock()),
    };
    let mut out = BufWriter::new(&mut out);
    let mut inputs_out = match &args.inputs_out {
        Some(path) => {
            Some(BufWriter::new(File::create(path).with_context(|| {
                format!("cannot create {}", path.display())
            })?))
        }
        None => None,
    };
    let summary = replay(
        input,
        &mut detector,
        &mut out,
        inputs_out.as_mut().map(|w| w as &mut dyn Write),
        args.max_event_bytes,
        &mut |line| {
            progress.suspend(|| eprintln!("{line}"));
        },
    )?;
    progress.finish_and_clear();
    out.flush().context("cannot write decisions")?;
    if let Some(w) = inputs_out.as_mut() {
        w.flush().context("cannot write inputs")?;
    }
    eprintln!("{}", summary.render(&revision));
    Ok(summary)
}

/// The replay loop over any reader and writer: decisions as JSON lines to `out`, per-record
/// problems as lines to `report` (the first [`MAX_PRINTED_ERRORS`], then only counted).
pub fn replay(
    input: impl BufRead,
    detector: &mut Detector,
    out: &mut dyn Write,
    mut inputs_out: Option<&mut dyn Write>,
    max_event_bytes: usize,
    report: &mut dyn FnMut(String),
) -> anyhow::Result<ReplaySummary> {
    let started = Instant::now();
    let mut summary = ReplaySummary::default();
    let mut printed = 0u64;
    let mut say = |line: String| {
        printed += 1;
        if printed <= MAX_PRINTED_ERRORS {
            report(line);
        } else if printed == MAX_PRINTED_ERRORS + 1 {
            report("… further errors are only counted (see the summary)".to_owned());
        }
    };
    for record in read_events(input, max_event_bytes) {
        let record = match record {
            Ok(record) => record,
            Err(e) => {
                *summary.bad_records.entry(e.error.reason()).or_default() += 1;
                say(format!("bad record at {e}"));
                continue;
            }
        };
        summary.events += 1;
        let outcome = detector.process(&record.event, inputs_out.is_some());
        if outcome.repeat {
            summary.repeats += 1;
        }
        if outcome.evaluated {
            summary.evaluated += 1;
        }
        for error in &outcome.rule_errors {
            *summary.rule_errors.entry(error.rule.clone()).or_default() += 1;
            say(format!(
                "rule error at {} (event {}): rule {}: {}",
                record.position, record.event.uuid, error.rule, error.message
            ));
        }
        if let (Some(w), Some(input)) = (inputs_out.as_mut(), &outcome.input) {
            serde_json::to_writer(&mut *w, input)?;
            w.write_all(b"\n")?;
        }
        for decision in &outcome.decisions {
            serde_json::to_writer(&mut *out, decision)?;
            out.write_all(b"\n")?;
            summary.decisions += 1;
            *summary
                .decisions_by_rule
                .entry(decision.rule.clone())
                .or_default() += 1;
        }
    }
    summary.elapsed = started.elapsed();
    Ok(summary)
}
