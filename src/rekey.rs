//! `vigil rekey`: move events from an unkeyed or wrongly keyed upstream topic to the events
//! topic, one event per record, keyed by the user it is about — so each user's events land on
//! one partition and one detect instance holds the user's whole state.
//!
//! An upstream record may hold one event, a System Log page (JSON array) or an Event Hook
//! envelope; each event becomes its own record. A record with any undecodable event goes to the
//! DLQ whole (with the reason of the first bad event), and none of its events is forwarded, so
//! a fixed and re-sent record does not duplicate the good ones.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::Context as _;
use rdkafka::message::Message;
use tracing::{info, warn};

use crate::config::Config;
use crate::event::keyed_events;
use crate::kafka::{self, dlq_record, OutRecord, Processor, Worker, WorkerOptions, WorkerSummary};

const STAGE: &str = "rekey";

/// Arguments of `vigil rekey`.
#[derive(clap::Args, Debug, Clone)]
pub struct RekeyArgs {
    /// Configuration file (TOML; see vigil.example.toml); `topics.upstream` names the source.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// Counts of what re-keying did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RekeyCounters {
    /// Upstream records consumed.
    pub records: u64,
    /// Events forwarded to the events topic.
    pub events: u64,
    /// Upstream records sent to the DLQ.
    pub dead_lettered: u64,
}

/// The re-key processor.
pub struct Rekey {
    events_topic: String,
    dlq_topic: String,
    max_record_bytes: usize,
    /// One event of a record larger than this is a bad record (detect would refuse it anyway).
    max_event_bytes: usize,
    dlq_max_payload_bytes: usize,
    counters: RekeyCounters,
}

impl Processor for Rekey {
    fn process<M: Message>(&mut self, message: &M, out: &mut Vec<OutRecord>) -> anyhow::Result<()> {
        self.counters.records += 1;
        let payload = message.payload().unwrap_or_default();
        let fault = if payload.len() > self.max_record_bytes {
            Some((
                "too_large",
                format!(
                    "record is {} bytes, over the {}-byte limit",
                    payload.len(),
                    self.max_record_bytes
                ),
            ))
        } else {
            match keyed_events(payload, self.max_event_bytes) {
                Ok(events) => {
                    crate::metrics::metrics()
                        .ingested_events
                        .with_label_values(&[STAGE])
                        .inc_by(events.len() as u64);
                    for event in events {
                        out.push(OutRecord::keyed(
                            &self.events_topic,
                            event.key.as_deref(),
                            event.payload,
                        ));
                        self.counters.events += 1;
                    }
                    None
                }
                Err(refused) => Some((refused.reason, refused.error)),
            }
        };
        if let Some((reason, error)) = fault {
            warn!(partition = message.partition(), offset = message.offset(), reason, error = %error, "bad upstream record sent to the DLQ");
            self.counters.dead_lettered += 1;
            crate::metrics::metrics()
                .dead_lettered
                .with_label_values(&[STAGE, reason])
                .inc();
            out.push(dlq_record(
                &self.dlq_topic,
                STAGE,
                message,
                reason,
                &error,
                self.dlq_max_payload_bytes,
            ));
        }
        Ok(())
    }
}

/// Run `vigil rekey` until SIGINT/SIGTERM.
pub fn run(args: &RekeyArgs) -> anyhow::Result<bool> {
    let config = Config::load(args.config.as_deref())?;
    let shutdown = crate::shutdown::on_signal()?;
    let admin = crate::http_server::spawn_admin(&config.http.listen, shutdown.clone())?;
    let result = run_stage(&config, shutdown.clone());
    // The HTTP server stops with the stage, whichever way the stage ended.
    shutdown.store(true, std::sync::atomic::Ordering::Relaxed);
    if let Some(admin) = admin {
        let _ = admin.join();
    }
    let (summary, counters) = result?;
    info!(
        consumed = summary.consumed,
        events = counters.events,
        dead_lettered = counters.dead_lettered,
        "rekey stopped"
    );
    Ok(true)
}

/// The re-key stage with `config` until `shutdown` is set.
pub fn run_stage(
    config: &Config,
    shutdown: Arc<AtomicBool>,
) -> anyhow::Result<(WorkerSummary, RekeyCounters)> {
    let upstream = config.topics.upstream.as_deref().context(
        "vigil rekey needs topics.upstream (the unkeyed topic to read) in the configuration",
    )?;
    anyhow::ensure!(
        upstream != config.topics.events,
        "topics.upstream and topics.events are both {upstream}: re-keying a topic into itself would loop"
    );
    info!(from = upstream, to = %config.topics.events, group = %config.rekey.group_id, "rekey starting");
    let processor = Rekey {
        events_topic: config.topics.events.clone(),
        dlq_topic: config.topics.dlq.clone(),
        max_record_bytes: config.rekey.max_record_bytes,
        max_event_bytes: config.detect.max_event_bytes,
        dlq_max_payload_bytes: config.detect.dlq_max_payload_bytes,
        counters: RekeyCounters::default(),
    };
    let worker = Worker::new(
        &kafka::consumer_config(&config.kafka, &config.rekey.group_id)?,
        &kafka::producer_config(&config.kafka)?,
        &[upstream],
        processor,
        WorkerOptions::for_stage(STAGE, config),
        shutdown,
    )?;
    let (summary, processor) = worker.run()?;
    Ok((summary, processor.counters))
}
