//! The policy engine: load a policy directory into regorus, reject broken policies at load with
//! file and line, evaluate the one entrypoint per event with a time bound, and isolate a rule that
//! fails at runtime so the others still decide.
//!
//! This module knows nothing about state or Kafka: it maps an input document to findings.

mod bundle;
mod finding;

use std::num::NonZeroU32;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

pub use bundle::{Bundle, EMBEDDED_NAME};
pub use finding::{ActionSpec, Finding};

use regorus::utils::limits::ExecutionTimerConfig;

use crate::state::{Features, FEATURES_FILE};

/// The one documented entrypoint: the set of findings for the current event.
pub const ENTRYPOINT: &str = "data.vigil.main.decisions";
/// Rules live in packages under this prefix, each with a `findings` set.
pub const RULES_PREFIX: &str = "data.vigil.rules.";
/// The graduated response, evaluated after the rules.
pub const RESPONSE_FINDINGS: &str = "data.vigil.response.findings";
/// Default bound on evaluating one event.
pub const DEFAULT_EVAL_TIMEOUT: Duration = Duration::from_millis(100);

/// A policy directory that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// A file could not be read.
    #[error("{path}: {error}")]
    Io {
        /// The file or directory.
        path: String,
        /// The OS error.
        error: String,
    },
    /// The directory has no Rego module.
    #[error("{0}: no .rego files found")]
    Empty(String),
    /// A Rego module does not parse or compile (the message carries file:line:col).
    #[error("{0}")]
    Rego(String),
    /// A data file is not valid JSON or conflicts with another.
    #[error("{path}: {message}")]
    Data {
        /// The file (with line:col when known).
        path: String,
        /// What is wrong.
        message: String,
    },
    /// `features.toml` is invalid.
    #[error(transparent)]
    Features(#[from] crate::state::FeaturesError),
    /// A rule package has no usable `findings` rule, or the entrypoint is missing.
    #[error("{0}")]
    Contract(String),
}

/// A rule that failed at runtime on one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleError {
    /// The rule (package's last component), or `vigil.main` when it could not be narrowed down.
    pub rule: String,
    /// The engine's message.
    pub message: String,
}

/// The result of evaluating one input.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Evaluation {
    /// Valid findings, in the engine's deterministic order.
    pub findings: Vec<Finding>,
    /// Rules that failed or returned an invalid finding.
    pub errors: Vec<RuleError>,
}

/// Options for [`Policy::load`].
#[derive(Debug, Clone, Copy)]
pub struct LoadOptions {
    /// Also load `*_test.rego` modules.
    pub include_tests: bool,
    /// Bound on one event's evaluation.
    pub eval_timeout: Duration,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            include_tests: false,
            eval_timeout: DEFAULT_EVAL_TIMEOUT,
        }
    }
}

/// Where policies come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicySource {
    /// A directory on disk (an OPA bundle layout).
    Dir(std::path::PathBuf),
    /// The pack built into the binary.
    Embedded,
}

impl PolicySource {
    /// `Some(dir)` → that directory; `None` → the built-in pack.
    pub fn from_arg(dir: Option<&Path>) -> Self {
        dir.map_or(PolicySource::Embedded, |d| {
            PolicySource::Dir(d.to_path_buf())
        })
    }

    /// Read the bundle.
    pub fn read(&self, include_tests: bool) -> Result<Bundle, PolicyError> {
        match self {
            PolicySource::Dir(dir) => Bundle::read(dir, include_tests),
            PolicySource::Embedded => Bundle::embedded(include_tests),
        }
    }
}

impl std::fmt::Display for PolicySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PolicySource::Dir(dir) => write!(f, "{}", dir.display()),
            PolicySource::Embedded => f.write_str(EMBEDDED_NAME),
        }
    }
}

/// A loaded, compiled policy directory, ready to evaluate. Cheap to clone (one per worker).
#[derive(Clone)]
pub struct Policy {
    engine: regorus::Engine,
    rules: Vec<String>,
    revision: String,
    features: Arc<Features>,
}

impl Policy {
    /// Load and compile every module and data file of `source`.
    pub fn load(source: &PolicySource, options: LoadOptions) -> Result<Self, PolicyError> {
        Self::from_bundle(source.read(options.include_tests)?, options)
    }

    /// Compile an already-read bundle.
    pub fn from_bundle(bundle: Bundle, options: LoadOptions) -> Result<Self, PolicyError> {
        let dir = bundle.root.clone();
        let features = match &bundle.features {
            Some(text) => Features::parse(text, &dir.join(FEATURES_FILE))?,
            None => Features::default(),
        };
        let mut engine = regorus::Engine::new();
        engine.set_rego_v0(false);
        for (rel, text) in &bundle.modules {
            let path = dir.join(rel).display().to_string();
            engine
                .add_policy(path, text.clone())
                .map_err(|e| PolicyError::Rego(tidy_rego_error(&e.to_string())))?;
        }
        let data = serde_json::from_value::<regorus::Value>(bundle.data.clone())
            .map_err(|e| PolicyError::Rego(format!("data: {e}")))?;
        engine
            .add_data(data)
            .map_err(|e| PolicyError::Rego(e.to_string()))?;
        engine.set_execution_timer_config(ExecutionTimerConfig {
            limit: options.eval_timeout,
            check_interval: NonZeroU32::MIN,
        });
        let packages = engine
            .get_packages()
            .map_err(|e| PolicyError::Rego(e.to_string()))?;
        let rules: Vec<String> = packages
            .iter()
            .filter(|p| p.starts_with(RULES_PREFIX) && !p.ends_with("_test"))
            .map(|p| format!("{p}.findings"))
            .collect();
        let mut policy = Policy {
            engine,
            rules,
            revision: bundle.revision,
            features: Arc::new(features),
        };
        policy.check_compiles()?;
        Ok(policy)
    }

    /// Compile and run the entrypoint and every rule once on an empty input, so that an undefined
    /// reference or a missing `findings` rule is a load error, not a runtime surprise.
    fn check_compiles(&mut self) -> Result<(), PolicyError> {
        self.engine.set_input(regorus::Value::new_object());
        let mut paths = vec![ENTRYPOINT.to_owned()];
        paths.extend(self.rules.iter().cloned());
        for path in paths {
            self.engine.eval_rule(path.clone()).map_err(|e| {
                PolicyError::Contract(format!(
                    "{} (while compiling {path})",
                    tidy_rego_error(&e.to_string())
                ))
            })?;
        }
        Ok(())
    }

    /// Content hash of the directory this policy was loaded from.
    pub fn revision(&self) -> &str {
        &self.revision
    }

    /// The per-user features the directory declares.
    pub fn features(&self) -> &Arc<Features> {
        &self.features
    }

    /// Full paths of every rule's `findings` set.
    pub fn rules(&self) -> &[String] {
        &self.rules
    }

    /// Evaluate the entrypoint for one input document. Never fails: errors are reported per rule.
    pub fn evaluate(&mut self, input: regorus::Value) -> Evaluation {
        self.engine.set_input(input);
        match self.engine.eval_rule(ENTRYPOINT.to_owned()) {
            Ok(value) => {
                let mut evaluation = Evaluation::default();
                collect_findings(value, "vigil.main", &mut evaluation);
                evaluation
            }
            Err(_) => self.evaluate_rule_by_rule(),
        }
    }

    /// The entrypoint failed: find out which rules failed and keep the findings of the others.
    fn evaluate_rule_by_rule(&mut self) -> Evaluation {
        let mut evaluation = Evaluation::default();
        let mut paths = self.rules.clone();
        paths.push(RESPONSE_FINDINGS.to_owned());
        for path in paths {
            let rule = rule_name(&path);
            match self.engine.eval_rule(path.clone()) {
                Ok(value) => collect_findings(value, &rule, &mut evaluation),
                Err(e) => evaluation.errors.push(RuleError {
                    rule,
                    message: e.to_string(),
                }),
            }
        }
        if evaluation.errors.is_empty() {
            // Every rule succeeded alone, so the failure is in vigil.main itself.
            evaluation.findings.clear();
            evaluation.errors.push(RuleError {
                rule: "vigil.main".into(),
                message: match self.engine.eval_rule(ENTRYPOINT.to_owned()) {
                    Err(e) => e.to_string(),
                    Ok(_) => "entrypoint failed once and then succeeded".into(),
                },
            });
        }
        evaluation
    }

    /// Evaluate any rule path (for tests), with the current input.
    pub fn eval_path(&mut self, path: &str) -> Result<regorus::Value, String> {
        self.engine
            .eval_rule(path.to_owned())
            .map_err(|e| e.to_string())
    }

    /// Set the input for [`Policy::eval_path`].
    pub fn set_input(&mut self, input: regorus::Value) {
        self.engine.set_input(input);
    }

    /// Start (or stop) recording line coverage.
    pub fn set_coverage(&mut self, enabled: bool) {
        self.engine.set_enable_coverage(enabled);
    }

    /// Lines covered so far, per module.
    pub fn coverage(&self) -> Result<regorus::coverage::Report, String> {
        self.engine.get_coverage_report().map_err(|e| e.to_string())
    }
}

/// regorus reports `--> file:line:col`, a source excerpt and `error: message`; put
/// `file:line:col: message` first, the way compilers do, and keep the excerpt below it.
fn tidy_rego_error(message: &str) -> String {
    let location = message
        .lines()
        .find_map(|l| l.trim().strip_prefix("--> "))
        .map(str::trim);
    let what = message
        .lines()
        .find_map(|l| l.trim().strip_prefix("error: "))
        .map(str::trim);
    match (location, what) {
        (Some(location), Some(what)) => format!("{location}: {what}\n{}", message.trim()),
        _ => message.trim().to_owned(),
    }
}

/// `data.vigil.rules.failed_signins.findings` → `failed_signins`.
fn rule_name(path: &str) -> String {
    let trimmed = path.trim_end_matches(".findings");
    trimmed.rsplit('.').next().unwrap_or(trimmed).to_owned()
}

fn collect_findings(value: regorus::Value, source: &str, out: &mut Evaluation) {
    if value == regorus::Value::Undefined {
        return;
    }
    let json = match serde_json::to_value(&value) {
        Ok(json) => json,
        Err(e) => {
            out.errors.push(RuleError {
                rule: source.to_owned(),
                message: format!("result is not JSON: {e}"),
            });
            return;
        }
    };
    let items = match json {
        serde_json::Value::Array(items) => items,
        serde_json::Value::Null => Vec::new(),
        other => {
            out.errors.push(RuleError {
                rule: source.to_owned(),
                message: format!(
                    "expected a set of findings, got {}",
                    crate::event::json_type(&other)
                ),
            });
            return;
        }
    };
    for item in items {
        let rule = item
            .get("rule")
            .and_then(serde_json::Value::as_str)
            .unwrap_or(source)
            .to_owned();
        match Finding::from_json(item) {
            Ok(finding) => out.findings.push(finding),
            Err(message) => out.errors.push(RuleError {
                rule,
                message: format!("invalid finding: {message}"),
            }),
        }
    }
}
