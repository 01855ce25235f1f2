//! `vigil demo`: simulate a stretch of Okta traffic with attacks injected, run it through the
//! built-in policies, and show what Vigil decided — on a bare machine, with nothing configured.
//!
//! Today this runs the detect path in process (the same code as `vigil replay`); the Kafka
//! stages and connectors join it as they land.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::decision::{Decision, Severity};
use crate::detect::Detector;
use crate::event::OktaEvent;
use crate::policy::{LoadOptions, Policy, PolicySource};
use crate::simulate::{generate, Attack, SimConfig};
use crate::state::StateLimits;

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
}

/// Run `vigil demo`; `Ok(false)` when an injected attack went undetected.
pub fn run(args: &DemoArgs) -> anyhow::Result<bool> {
    let started = Instant::now();
    let source = PolicySource::from_arg(args.policies.as_deref());
    let policy = Policy::load(&source, LoadOptions::default())
        .with_context(|| format!("cannot load {source}"))?;
    println!(
        "vigil demo: policies {source} (revision {}), {} rules",
        policy.revision(),
        policy.rules().len()
    );
    let config = SimConfig {
        users: args.users,
        days: args.days,
        start: chrono::NaiveDate::from_ymd_opt(2026, 3, 2).context("start date")?,
        seed: args.seed,
        attacks: Attack::ALL.to_vec(),
    };
    let simulation = generate(&config);
    println!(
        "simulated {} events: {} users × {} days, attacks on the last day: {}",
        simulation.events.len(),
        args.users,
        args.days,
        simulation
            .injected
            .iter()
            .map(|a| a.attack.name().to_owned())
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!();

    let mut detector = Detector::new(policy, StateLimits::default());
    let mut by_rule: BTreeMap<String, u64> = BTreeMap::new();
    let mut by_event: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut actions: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut rule_errors = 0u64;
    let replay_started = Instant::now();
    let mut last_tick = Instant::now();
    let live = io::stdout().is_terminal();
    let total = simulation.events.len();
    for (i, value) in simulation.events.into_iter().enumerate() {
        let event = OktaEvent::from_value(value).context("the simulator wrote an invalid event")?;
        let outcome = detector.process(&event, false);
        rule_errors += outcome.rule_errors.len() as u64;
        for decision in &outcome.decisions {
            *by_rule.entry(decision.rule.clone()).or_default() += 1;
            by_event
                .entry(decision.event.uuid.clone())
                .or_default()
                .insert(decision.rule.clone());
            for action in &decision.actions {
                *actions.entry(action.kind.as_str()).or_default() += 1;
            }
            println!("{}", render(decision));
        }
        if live && last_tick.elapsed() > Duration::from_millis(250) {
            let rate = (i + 1) as f64 / replay_started.elapsed().as_secs_f64();
            eprint!("\r{} / {total} events, {rate:.0} events/s   ", i + 1);
            last_tick = Instant::now();
        }
    }
    if live {
        eprint!("\r{}\r", " ".repeat(60));
    }
    let elapsed = replay_started.elapsed().as_secs_f64().max(1e-9);
    println!();
    println!("summary: {total} events in {elapsed:.2} s ({:.0} events/s), {} decisions, {rule_errors} rule errors",
        total as f64 / elapsed, by_rule.values().sum::<u64>());
    println!("decisions by rule: {}", join(&by_rule));
    println!(
        "actions requested: {}",
        join(&actions.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect())
    );
    println!("(no vendor credentials configured: nothing was sent to Okta, Slack or PagerDuty)");
    let mut all_detected = true;
    println!("injected attacks:");
    for attack in &simulation.injected {
        let rules: BTreeSet<&String> = attack
            .event_uuids
            .iter()
            .filter_map(|uuid| by_event.get(uuid))
            .flatten()
            .collect();
        let verdict = if rules.is_empty() {
            all_detected = false;
            "MISSED".to_owned()
        } else {
            format!(
                "detected by {}",
                rules.into_iter().cloned().collect::<Vec<_>>().join(", ")
            )
        };
        println!(
            "  {:<20} {:<28} {verdict}",
            attack.attack.name(),
            attack.user_login
        );
    }
    println!("done in {:.1} s", started.elapsed().as_secs_f64());
    io::stdout().flush()?;
    Ok(all_detected)
}

fn render(d: &Decision) -> String {
    let severity = match d.severity {
        Severity::Critical => "CRIT",
        Severity::High => "HIGH",
        Severity::Medium => "MED ",
        Severity::Low => "LOW ",
        Severity::Info => "INFO",
    };
    let who = d
        .user
        .as_ref()
        .map(|u| u.login.clone().unwrap_or_else(|| u.id.clone()))
        .unwrap_or_default();
    let actions: Vec<String> = d
        .actions
        .iter()
        .map(|a| {
            if a.after_secs > 0 {
                format!("{} in {} min", a.kind.as_str(), a.after_secs / 60)
            } else {
                a.kind.as_str().to_owned()
            }
        })
        .collect();
    format!(
        "{} {severity} risk {:>3} {:<22} {:<28} {}\n      → {}",
        &d.event.published[..19],
        d.risk_score,
        d.rule,
        who,
        d.summary,
        if actions.is_empty() {
            "no action".to_owned()
        } else {
            actions.join(", ")
        }
    )
}

fn join(m: &BTreeMap<String, u64>) -> String {
    if m.is_empty() {
        return "none".into();
    }
    m.iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}
