//! `vigil bench --stage respond`: the time from a decision produced to its action arriving at
//! the vendor, against the floor of a bare consume → produce → ack passthrough at the same rate.
//!
//! The vendor is a local HTTP sink answering like Okta's "clear user sessions" (204) and noting
//! when each request arrived; each decision asks to clear one distinct user's sessions, so a
//! request maps to its decision by the user id in the path.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::delete;
use axum::Router;
use serde_json::{json, Map};

use crate::bench::{latency_phase, print_latencies, produce, producer, BenchArgs, Passthrough};
use crate::config::Config;
use crate::decision::{
    action_id, decision_id, Action, ActionKind, Decision, EventRef, Severity, UserInfo,
};

/// When each user's sessions were cleared (Unix ms).
type Arrivals = Arc<Mutex<HashMap<String, i64>>>;

/// Run the respond latency phases on `config`'s broker (topics already created by the caller).
pub fn run(
    config: &Config,
    args: &BenchArgs,
    dir: &std::path::Path,
    floor_topic: &str,
) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let arrivals = Arrivals::default();
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    let sink = format!("http://{}", listener.local_addr()?);
    let app = Router::new()
        .route("/api/v1/users/{id}/sessions", delete(clear_sessions))
        .with_state(arrivals.clone());
    runtime.spawn(async move { axum::serve(listener, app).await });

    let mut config = config.clone();
    let token = dir.join("okta-token");
    std::fs::write(&token, "bench-token")?;
    config.okta.base_url = Some(sink);
    config.okta.token_file = Some(token);
    config.http.listen = String::new();
    // Hundreds of session clears a minute is what the circuit exists to stop; here it is the load.
    config.respond.max_destructive_per_minute = u32::MAX;

    let rate = args.rate.min(args.respond_rate);
    let count = (u64::from(rate) * args.latency_secs).max(1) as usize;
    println!("  respond latency at {rate} decisions/s, decision produced -> action at the vendor:");
    let decisions: Vec<(Option<String>, Vec<u8>)> = (0..=count)
        .map(|i| {
            let user = format!("00ubench{i:06}");
            let d = clear_sessions_decision(&user, i);
            (
                Some(user),
                serde_json::to_vec(&d).expect("a decision serialises"),
            )
        })
        .collect();

    // The floor: the same records through a bare passthrough at the same rate.
    let mut floor_args = args.clone();
    floor_args.rate = rate;
    let floor = latency_phase(
        &config,
        floor_topic,
        Passthrough {
            topic: format!("{floor_topic}.out"),
        },
        &decisions[1..],
        &floor_args,
    )?;
    print_latencies("passthrough", &floor);

    let shutdown = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stage = {
        let config = config.clone();
        let shutdown = shutdown.clone();
        std::thread::spawn(move || crate::respond::command::run_stage(&config, shutdown))
    };
    let producer = producer(&config, true)?;
    // Warm-up: the group joins and the first ledger partition loads outside the clock.
    produce(&producer, &config.topics.decisions, &decisions[..1], None)?;
    let warm_up = Instant::now();
    while !arrivals
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .contains_key("00ubench000000")
    {
        anyhow::ensure!(!stage.is_finished(), "the respond stage stopped");
        anyhow::ensure!(
            warm_up.elapsed() < Duration::from_secs(60),
            "no action arrived within 60 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut sent = HashMap::with_capacity(count);
    let started = Instant::now();
    for (i, record) in decisions[1..].iter().enumerate() {
        let due = started + Duration::from_secs_f64(i as f64 / f64::from(rate.max(1)));
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        sent.insert(
            record.0.clone().unwrap_or_default(),
            chrono::Utc::now().timestamp_millis(),
        );
        produce(
            &producer,
            &config.topics.decisions,
            std::slice::from_ref(record),
            None,
        )?;
    }
    let sending = started.elapsed().as_secs_f64();
    println!(
        "    (decisions produced at {:.0}/s, each waiting for its acknowledgement)",
        count as f64 / sending
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while arrivals
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .len()
        <= count
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    shutdown.store(true, std::sync::atomic::Ordering::Relaxed);
    stage
        .join()
        .map_err(|_| anyhow::anyhow!("the respond stage panicked"))?
        .context("the respond stage failed")?;
    let arrivals = arrivals.lock().unwrap_or_else(PoisonError::into_inner);
    let mut latencies: Vec<i64> = sent
        .iter()
        .filter_map(|(user, at)| arrivals.get(user).map(|arrived| arrived - at))
        .collect();
    latencies.sort_unstable();
    anyhow::ensure!(
        latencies.len() == count,
        "{} of {count} actions arrived",
        latencies.len()
    );
    print_latencies("respond", &latencies);
    if let (Some(floor), Some(ours)) = (
        floor.get(floor.len() * 99 / 100),
        latencies.get(latencies.len() * 99 / 100),
    ) {
        println!(
            "    respond p99 = {:.1}x the passthrough p99 (target: respond p99 <= 100 ms)",
            *ours as f64 / (*floor).max(1) as f64
        );
    }
    Ok(())
}

async fn clear_sessions(State(arrivals): State<Arrivals>, Path(id): Path<String>) -> StatusCode {
    arrivals
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(id, chrono::Utc::now().timestamp_millis());
    StatusCode::NO_CONTENT
}

/// A decision asking to clear `user`'s sessions now.
fn clear_sessions_decision(user: &str, i: usize) -> Decision {
    let uuid = format!("bench-{i}");
    let id = decision_id(&uuid, "bench", "");
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let kind = ActionKind::OktaClearSessions;
    Decision {
        schema: crate::decision::SCHEMA_VERSION,
        decision_id: id.clone(),
        event: EventRef {
            uuid,
            event_type: "user.session.start".into(),
            published: now.clone(),
        },
        user: Some(UserInfo {
            id: user.to_owned(),
            login: None,
        }),
        rule: "bench".into(),
        severity: Severity::Medium,
        risk_score: 40,
        summary: "bench".into(),
        evidence: json!({}),
        policy_revision: "bench".into(),
        actions: vec![Action {
            action_id: action_id(&id, kind, user, 0),
            kind,
            target: user.to_owned(),
            params: kind.validate_params(Map::new()).expect("defaults"),
            after_secs: 0,
            due_at: now,
            conditions: Vec::new(),
        }],
    }
}
