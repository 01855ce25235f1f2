//! Configuration of the streaming stages: a TOML file, then `VIGIL_<SECTION>__<KEY>` environment
//! variables on top (for example `VIGIL_KAFKA__BOOTSTRAP_SERVERS`, `VIGIL_TOPICS__EVENTS`,
//! `VIGIL_KAFKA__PROPERTIES__SASL_PASSWORD` for the librdkafka property `sasl.password`).
//!
//! Every section and key has a default, so an empty file is a valid configuration; unknown keys
//! are errors (a typo must not silently fall back to a default). `vigil.example.toml` documents
//! every key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::event::DEFAULT_MAX_EVENT_BYTES;
use crate::state::StateLimits;

/// The prefix of environment overrides; `__` separates section and key.
pub const ENV_PREFIX: &str = "VIGIL_";

/// A configuration that cannot be used: the message names the file and line or the variable.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(pub String);

/// Everything the streaming stages read.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// How to reach Kafka.
    #[serde(default)]
    pub kafka: KafkaConfig,
    /// Topic names.
    #[serde(default)]
    pub topics: Topics,
    /// The detect stage.
    #[serde(default)]
    pub detect: DetectConfig,
    /// The re-key stage.
    #[serde(default)]
    pub rekey: RekeyConfig,
    /// The respond stage.
    #[serde(default)]
    pub respond: RespondConfig,
    /// The HTTP server (overrides API).
    #[serde(default)]
    pub http: HttpConfig,
    /// Ingest from Okta (Event Hook receiver, System Log poller).
    #[serde(default)]
    pub ingest: IngestConfig,
    /// The Okta connector.
    #[serde(default)]
    pub okta: crate::connector::OktaConfig,
    /// The Slack connector.
    #[serde(default)]
    pub slack: crate::connector::SlackConfig,
    /// The PagerDuty connector.
    #[serde(default)]
    pub pagerduty: crate::connector::PagerDutyConfig,
}

/// How to reach Kafka.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaConfig {
    /// `host:port[,host:port…]` of the brokers.
    pub bootstrap_servers: Option<String>,
    /// librdkafka properties passed through to every client (security.protocol, sasl.*, ssl.*,
    /// …). Vigil sets the ones its guarantees depend on itself and refuses overrides of those.
    #[serde(default)]
    pub properties: BTreeMap<String, PropertyValue>,
    /// librdkafka properties whose value is read from a file (for example `sasl.password` from a
    /// mounted secret); the file's content is trimmed of surrounding whitespace.
    #[serde(default)]
    pub property_files: BTreeMap<String, PathBuf>,
}

/// A librdkafka property value: TOML and the environment give strings, numbers or booleans.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum PropertyValue {
    /// A string.
    Text(String),
    /// An integer.
    Integer(i64),
    /// A boolean.
    Bool(bool),
}

impl std::fmt::Display for PropertyValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PropertyValue::Text(s) => f.write_str(s),
            PropertyValue::Integer(n) => write!(f, "{n}"),
            PropertyValue::Bool(b) => write!(f, "{b}"),
        }
    }
}

/// Topic names (see DESIGN.md's pipeline).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Topics {
    /// Okta events, keyed by user id.
    pub events: String,
    /// Decisions, keyed by user id.
    pub decisions: String,
    /// Records no stage could use, with the reason in headers.
    pub dlq: String,
    /// Detect's per-user state snapshots (compacted; at least as many partitions as `events`).
    pub state: String,
    /// An unkeyed or wrongly keyed upstream topic that `vigil rekey` moves into `events`.
    pub upstream: Option<String>,
    /// What the respond stage did per action (compacted, keyed by action id; partition i holds
    /// the actions of decisions partition i, so at least as many partitions as `decisions`).
    pub ledger: String,
    /// Analysts' overrides (compacted, keyed by user id).
    pub overrides: String,
    /// The System Log poller's cursor (compacted, one record).
    pub ingest_state: String,
}

impl Default for Topics {
    fn default() -> Self {
        Topics {
            events: "okta.events".into(),
            decisions: "vigil.decisions".into(),
            dlq: "vigil.dlq".into(),
            state: "vigil.detect.state".into(),
            upstream: None,
            ledger: "vigil.ledger".into(),
            overrides: "vigil.overrides".into(),
            ingest_state: "vigil.ingest.state".into(),
        }
    }
}

/// The detect stage's settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DetectConfig {
    /// Consumer group id.
    pub group_id: String,
    /// Policy directory; the policies built into the binary when unset.
    pub policies: Option<PathBuf>,
    /// Records larger than this go to the DLQ.
    pub max_event_bytes: usize,
    /// Policy evaluation time bound per event, in milliseconds.
    pub eval_timeout_ms: u64,
    /// Screen events with the rules compiled to regorus' VM (the interpreter still makes every
    /// decision); `false` screens with the interpreter, several times slower.
    pub compiled_screen: bool,
    /// Users tracked at most per partition.
    pub max_users: u64,
    /// A user with no event for this long (seconds of wall time) is forgotten.
    pub idle_ttl_secs: u64,
    /// Events in flight at most (processed but not yet acknowledged by the broker).
    pub max_in_flight: usize,
    /// Write state snapshots at most this often per partition (seconds).
    pub snapshot_interval_secs: u64,
    /// Write and read state snapshots on `topics.state`. Without them a restart rebuilds only
    /// from the last `rebuild_window_secs` of events and loses longer baselines.
    pub snapshots: bool,
    /// How far back to re-read events when no snapshot exists; by default the longest window
    /// `features.toml` declares plus the allowed lateness.
    pub rebuild_window_secs: Option<u64>,
    /// DLQ records keep at most this many bytes of the original record (brokers cap messages
    /// near 1 MB); the full size and a SHA-256 are in headers.
    pub dlq_max_payload_bytes: usize,
    /// Produce each batch and commit its offsets in one Kafka transaction with this
    /// `transactional.id`, unique per instance (Apache Kafka only; off when unset). Delivery is at
    /// least once either way.
    pub transactional_id: Option<String>,
}

impl Default for DetectConfig {
    fn default() -> Self {
        let limits = StateLimits::default();
        DetectConfig {
            group_id: "vigil-detect".into(),
            policies: None,
            max_event_bytes: DEFAULT_MAX_EVENT_BYTES,
            eval_timeout_ms: 100,
            compiled_screen: true,
            max_users: limits.max_users,
            idle_ttl_secs: limits.idle_ttl.as_secs(),
            max_in_flight: 1000,
            snapshot_interval_secs: 10,
            snapshots: true,
            rebuild_window_secs: None,
            dlq_max_payload_bytes: 512 * 1024,
            transactional_id: None,
        }
    }
}

impl DetectConfig {
    /// The state bounds.
    pub fn limits(&self) -> StateLimits {
        StateLimits {
            max_users: self.max_users,
            idle_ttl: Duration::from_secs(self.idle_ttl_secs),
        }
    }
}

/// The re-key stage's settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RekeyConfig {
    /// Consumer group id.
    pub group_id: String,
    /// Records larger than this go to the DLQ.
    pub max_record_bytes: usize,
}

impl Default for RekeyConfig {
    fn default() -> Self {
        RekeyConfig {
            group_id: "vigil-rekey".into(),
            // An upstream record may be a whole System Log page or hook envelope.
            max_record_bytes: 16 * DEFAULT_MAX_EVENT_BYTES,
        }
    }
}

/// The respond stage's settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RespondConfig {
    /// Consumer group id.
    pub group_id: String,
    /// Decision records consumed per batch at most.
    pub max_in_flight: usize,
    /// Record every vendor request in the ledger instead of sending it, whatever credentials
    /// are configured (shadow mode: try new policies against production traffic).
    pub dry_run: bool,
    /// Okta user ids or logins that are never suspended, reset or expired, whatever a policy
    /// says (the policy pack has its own list; this one guards against a broken policy).
    pub protected_users: Vec<String>,
    /// Destructive actions (suspend, password reset/expiry, factor reset, session clearing)
    /// allowed per minute per instance; one more opens the circuit.
    pub max_destructive_per_minute: u32,
    /// How long an open circuit holds destructive actions (seconds).
    pub circuit_open_secs: u64,
    /// Time from an action's first call within which it is retried (and a condition check);
    /// a retry that would start later is not made and the action is dead-lettered (seconds).
    pub retry_budget_secs: u64,
    /// First retry delay (milliseconds); doubles per attempt, with jitter.
    pub retry_min_delay_ms: u64,
    /// Longest retry delay (milliseconds), unless the vendor asks for longer.
    pub retry_max_delay_ms: u64,
    /// Timeout of one HTTP request to a vendor (milliseconds).
    pub http_timeout_ms: u64,
    /// Ledger records older than this are not loaded when a partition is assigned (seconds):
    /// the window in which a redelivered decision is recognised as a duplicate.
    pub dedup_window_secs: u64,
}

impl Default for RespondConfig {
    fn default() -> Self {
        RespondConfig {
            group_id: "vigil-respond".into(),
            max_in_flight: 100,
            dry_run: false,
            protected_users: Vec::new(),
            max_destructive_per_minute: 20,
            circuit_open_secs: 900,
            retry_budget_secs: 120,
            retry_min_delay_ms: 200,
            retry_max_delay_ms: 30_000,
            http_timeout_ms: 10_000,
            dedup_window_secs: 30 * 24 * 3600,
        }
    }
}

/// Ingest's settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestConfig {
    /// Address the Event Hook receiver listens on.
    pub hook_listen: String,
    /// Path Okta posts to (and verifies with a GET).
    pub hook_path: String,
    /// File holding the Authorization header value configured on the Okta Event Hook (else the
    /// environment variable `VIGIL_HOOK_SECRET`); the receiver refuses to start without one.
    pub hook_secret_file: Option<PathBuf>,
    /// Larger request bodies are refused (413).
    pub hook_max_body_bytes: usize,
    /// How long a delivery may wait for the broker's acknowledgement before answering 503 (Okta
    /// gives up after 3 s and retries once).
    pub hook_ack_timeout_ms: u64,
    /// Wait between System Log requests when a page was not full (milliseconds).
    pub poll_interval_ms: u64,
    /// Events per System Log page (`limit`, at most 1000).
    pub poll_page_size: u32,
    /// On the first start (no cursor yet), read back this far (seconds).
    pub poll_lookback_secs: u64,
    /// Event uuids remembered to drop repeats across overlapping pages.
    pub poll_dedup_events: u64,
    /// Run the System Log poller inside `vigil run`.
    pub poll: bool,
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            hook_listen: "127.0.0.1:8089".into(),
            hook_path: "/okta/event-hook".into(),
            hook_secret_file: None,
            hook_max_body_bytes: 8 << 20,
            hook_ack_timeout_ms: 2_500,
            poll_interval_ms: 5_000,
            poll_page_size: 1_000,
            poll_lookback_secs: 3_600,
            poll_dedup_events: 100_000,
            poll: false,
        }
    }
}

/// The HTTP server every stage runs (overrides API).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Address to listen on; empty disables the server.
    pub listen: String,
    /// File holding the bearer token that the write endpoints require (else the environment
    /// variable `VIGIL_API_TOKEN`); without a token the write endpoints answer 503.
    pub token_file: Option<PathBuf>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: "127.0.0.1:8088".into(),
            token_file: None,
        }
    }
}

impl Config {
    /// Read `path` (if any), then apply `VIGIL_<SECTION>__<KEY>` overrides from the environment.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load_with_env(path, std::env::vars())
    }

    /// [`Config::load`] with an explicit environment (tests).
    pub fn load_with_env(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut table = toml::Table::new();
        if let Some(path) = path {
            let text = std::fs::read_to_string(path)
                .map_err(|e| ConfigError(format!("{}: {e}", path.display())))?;
            // Deserialize the file alone first: its errors then carry the file's line and column.
            toml::from_str::<Config>(&text)
                .map_err(|e| ConfigError(format!("{}: {e}", path.display())))?;
            table = toml::from_str(&text)
                .map_err(|e| ConfigError(format!("{}: {e}", path.display())))?;
        }
        let mut names = Vec::new();
        for (name, value) in env {
            // Only `SECTION__KEY` variables are configuration; single-level `VIGIL_*` variables
            // are command-line flags' environment fallbacks.
            let Some(path) = name.strip_prefix(ENV_PREFIX).filter(|k| k.contains("__")) else {
                continue;
            };
            let parts: Vec<String> = path.split("__").map(str::to_ascii_lowercase).collect();
            set_path(&mut table, &parts, env_value(&value))
                .map_err(|e| ConfigError(format!("{name}: {e}")))?;
            names.push(name);
        }
        let mut config: Config = toml::Value::Table(table)
            .try_into()
            .map_err(|e| ConfigError(format!("environment overrides {}: {e}", names.join(", "))))?;
        config.kafka.properties = std::mem::take(&mut config.kafka.properties)
            .into_iter()
            .map(|(k, v)| (property_name(&k), v))
            .collect();
        Ok(config)
    }
}

/// An environment value as TOML would type it: integers and booleans as such, anything else text.
fn env_value(text: &str) -> toml::Value {
    if let Ok(n) = text.parse::<i64>() {
        toml::Value::Integer(n)
    } else if let Ok(b) = text.parse::<bool>() {
        toml::Value::Boolean(b)
    } else {
        toml::Value::String(text.to_owned())
    }
}

fn set_path(table: &mut toml::Table, parts: &[String], value: toml::Value) -> Result<(), String> {
    let (last, sections) = parts.split_last().ok_or("empty key")?;
    let mut current = table;
    for section in sections {
        let entry = current
            .entry(section.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        current = entry
            .as_table_mut()
            .ok_or_else(|| format!("`{section}` is not a section"))?;
    }
    current.insert(last.clone(), value);
    Ok(())
}

/// Environment variables name librdkafka properties with `_` for `.` (`SASL_PASSWORD`); no
/// librdkafka property has an underscore in its name, so the mapping is unambiguous.
fn property_name(key: &str) -> String {
    key.to_ascii_lowercase().replace('_', ".")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_example_file_documents_the_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("vigil.example.toml");
        let example = Config::load_with_env(Some(&path), env(&[])).unwrap();
        let defaults = Config::default();
        assert_eq!(
            format!("{:?}", example.topics),
            format!("{:?}", defaults.topics)
        );
        assert_eq!(
            format!("{:?}", example.detect),
            format!("{:?}", defaults.detect)
        );
        assert_eq!(
            format!("{:?}", example.respond),
            format!("{:?}", defaults.respond)
        );
        assert_eq!(
            format!("{:?}", example.http),
            format!("{:?}", defaults.http)
        );
        assert_eq!(
            format!("{:?}", example.rekey),
            format!("{:?}", defaults.rekey)
        );
    }

    #[test]
    fn defaults_without_a_file() {
        let config = Config::load_with_env(None, env(&[])).unwrap();
        assert_eq!(config.topics.events, "okta.events");
        assert_eq!(config.detect.group_id, "vigil-detect");
        assert!(config.kafka.bootstrap_servers.is_none());
    }

    #[test]
    fn environment_overrides_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vigil.toml");
        std::fs::write(
            &path,
            "[kafka]\nbootstrap_servers = \"a:9092\"\n[kafka.properties]\n\"security.protocol\" = \"SASL_SSL\"\n[detect]\nmax_users = 10\n",
        )
        .unwrap();
        let config = Config::load_with_env(
            Some(&path),
            env(&[
                ("VIGIL_KAFKA__BOOTSTRAP_SERVERS", "b:9092"),
                ("VIGIL_KAFKA__PROPERTIES__SASL_PASSWORD", "s3cret"),
                ("VIGIL_DETECT__MAX_IN_FLIGHT", "7"),
                ("VIGIL_LOG_FORMAT", "json"),
                ("HOME", "/root"),
            ]),
        )
        .unwrap();
        assert_eq!(config.kafka.bootstrap_servers.as_deref(), Some("b:9092"));
        assert_eq!(config.detect.max_users, 10);
        assert_eq!(config.detect.max_in_flight, 7);
        let props = &config.kafka.properties;
        assert_eq!(props["security.protocol"].to_string(), "SASL_SSL");
        assert_eq!(props["sasl.password"].to_string(), "s3cret");
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors_that_name_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vigil.toml");
        std::fs::write(&path, "[detect]\n\nmax_user = 10\n").unwrap();
        let err = Config::load_with_env(Some(&path), env(&[]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("vigil.toml") && err.contains("max_user") && err.contains("line 3"),
            "{err}"
        );

        let err = Config::load_with_env(None, env(&[("VIGIL_DETECT__MAX_USERS", "many")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("VIGIL_DETECT__MAX_USERS"), "{err}");

        let err = Config::load_with_env(Some(&dir.path().join("absent.toml")), env(&[]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("absent.toml"), "{err}");
    }
}
