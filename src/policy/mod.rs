//! The policy engine: load a policy directory into regorus, reject broken policies at load with
//! file and line, evaluate the one entrypoint per event with a time bound, and isolate a rule that
//! fails at runtime so the others still decide.
//!
//! This module knows nothing about state or Kafka: it maps an input document to findings.

mod bundle;
mod finding;
mod screen;

use std::collections::BTreeSet;
use std::num::NonZeroU32;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

pub use bundle::{Bundle, EMBEDDED_NAME};
pub use finding::{ActionSpec, Finding};

use regorus::utils::limits::ExecutionTimerConfig;
use screen::{Screen, Verdict};

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
    /// Screen events with the rules compiled to regorus' VM, asking the interpreter only when
    /// one may find something (see `screen.rs`); `false` screens with the interpreter.
    pub compiled_screen: bool,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            include_tests: false,
            eval_timeout: DEFAULT_EVAL_TIMEOUT,
            compiled_screen: true,
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
    screen: Screen,
    rules: Vec<Rule>,
    revision: String,
    features: Arc<Features>,
}

/// One rule package and the event types it declares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// The package's last component (`failed_signins`).
    pub name: String,
    /// `data.vigil.rules.<name>.findings`.
    pub findings_path: String,
    /// The package's `event_types` set; `None` (not declared) means every event.
    pub event_types: Option<BTreeSet<String>>,
}

impl Rule {
    /// Whether this rule reads events of `event_type`.
    pub fn wants(&self, event_type: &str) -> bool {
        self.event_types
            .as_ref()
            .is_none_or(|types| types.contains(event_type))
    }
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
            .add_data(data.clone())
            .map_err(|e| PolicyError::Rego(e.to_string()))?;
        let timer = ExecutionTimerConfig {
            limit: options.eval_timeout,
            // Reading the clock on every step costs ~10 % of evaluation; every 64 steps is plenty.
            check_interval: NonZeroU32::new(64).unwrap_or(NonZeroU32::MIN),
        };
        engine.set_execution_timer_config(timer);
        let packages = engine
            .get_packages()
            .map_err(|e| PolicyError::Rego(e.to_string()))?;
        let mut policy = Policy {
            engine,
            screen: Screen::interpreter_only(&[]),
            rules: Vec::new(),
            revision: bundle.revision,
            features: Arc::new(features),
        };
        for package in packages
            .iter()
            .filter(|p| p.starts_with(RULES_PREFIX) && !p.ends_with("_test"))
        {
            let rule = policy.load_rule(package)?;
            policy.rules.push(rule);
        }
        policy.check(ENTRYPOINT)?;
        policy.screen = if options.compiled_screen {
            Screen::compile(&mut policy.engine, &policy.rules, data, timer)
        } else {
            Screen::interpreter_only(&policy.rules)
        };
        Ok(policy)
    }

    /// Compile a rule package's `findings` (on an empty input, so an undefined reference or a
    /// missing rule is a load error, not a runtime surprise) and read its `event_types`.
    fn load_rule(&mut self, package: &str) -> Result<Rule, PolicyError> {
        let findings_path = format!("{package}.findings");
        self.check(&findings_path)?;
        let types_path = format!("{package}.event_types");
        let declared = match self.check(&types_path) {
            Ok(value) => value,
            // Not declared at all: the rule is evaluated for every event.
            Err(_) => regorus::Value::Undefined,
        };
        let event_types = if declared == regorus::Value::Undefined {
            None
        } else {
            let json = serde_json::to_value(&declared).unwrap_or_default();
            let items = json.as_array().cloned().unwrap_or_default();
            let types: BTreeSet<String> = items
                .iter()
                .filter_map(|t| t.as_str().map(str::to_owned))
                .collect();
            if !json.is_array() || types.len() != items.len() {
                return Err(PolicyError::Contract(format!(
                    "{types_path} must be a set of event type strings, got {json}"
                )));
            }
            Some(types)
        };
        Ok(Rule {
            name: rule_name(&findings_path),
            findings_path,
            event_types,
        })
    }

    /// Evaluate `path` on an empty input; an error names the file and line.
    fn check(&mut self, path: &str) -> Result<regorus::Value, PolicyError> {
        self.engine.set_input(regorus::Value::new_object());
        self.engine.eval_rule(path.to_owned()).map_err(|e| {
            PolicyError::Contract(format!(
                "{} (while compiling {path})",
                tidy_rego_error(&e.to_string())
            ))
        })
    }

    /// Content hash of the directory this policy was loaded from.
    pub fn revision(&self) -> &str {
        &self.revision
    }

    /// The per-user features the directory declares.
    pub fn features(&self) -> &Arc<Features> {
        &self.features
    }

    /// Every rule package, in package order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Whether any rule reads events of `event_type` (if not, there is nothing to evaluate).
    pub fn wants(&self, event_type: &str) -> bool {
        self.rules.iter().any(|r| r.wants(event_type))
    }

    /// Evaluate one input document of an event of `event_type`. Never fails: errors are
    /// reported per rule.
    ///
    /// The result is that of the entrypoint, computed cheaply: first the rules that declare
    /// `event_type` are screened one by one (compiled to regorus' VM where they compile, else in
    /// the interpreter); only when one of them may find something (or fails) is the entrypoint
    /// evaluated by the interpreter, which adds the graduated response and the guards of
    /// `vigil.main`. This equals evaluating the entrypoint on every event as long as rules only
    /// fire on the types they declare, the response only reacts to findings and the compiled
    /// screen misses nothing the interpreter finds — `vigil policy test` checks all three on
    /// every scenario event ([`Policy::evaluate_exhaustive`]).
    pub fn evaluate(&mut self, event_type: &str, input: regorus::Value) -> Evaluation {
        if !self.wants(event_type) {
            return Evaluation::default();
        }
        self.screen.set_input(input.clone());
        self.engine.set_input(input);
        for i in 0..self.rules.len() {
            if self.rules[i].wants(event_type) && self.may_find(i) {
                return self.evaluate_entrypoint();
            }
        }
        Evaluation::default()
    }

    /// Screen rule `index` on the current input: compiled where it compiled, else interpreted.
    fn may_find(&mut self, index: usize) -> bool {
        if self.screen.covers(index) {
            self.screen.run(&self.rules[index]) == Verdict::Ask
        } else {
            self.interpreter_finds(index)
        }
    }

    /// The rules that read `event_type` and on which the compiled screen says "nothing" while
    /// the interpreter finds something or fails: detections the screen would hide. Empty is
    /// right; `vigil policy test` and the tests check it on every event they replay.
    pub fn screen_misses(&mut self, event_type: &str, input: regorus::Value) -> Vec<String> {
        self.screen.set_input(input.clone());
        self.engine.set_input(input);
        let mut misses = Vec::new();
        for i in 0..self.rules.len() {
            if !self.rules[i].wants(event_type) || !self.screen.covers(i) {
                continue;
            }
            if self.screen.run(&self.rules[i]) == Verdict::Nothing && self.interpreter_finds(i) {
                misses.push(self.rules[i].name.clone());
            }
        }
        misses
    }

    /// Whether rule `index`, evaluated alone by the interpreter on the current input, finds
    /// something or fails.
    fn interpreter_finds(&mut self, index: usize) -> bool {
        let rule = &self.rules[index];
        match self.engine.eval_rule(rule.findings_path.clone()) {
            Ok(value) => {
                let mut found = Evaluation::default();
                collect_findings(value, &rule.name, &mut found);
                !found.findings.is_empty() || !found.errors.is_empty()
            }
            Err(_) => true,
        }
    }

    /// Evaluate the entrypoint itself, whatever the event type (the reference semantics).
    pub fn evaluate_exhaustive(&mut self, input: regorus::Value) -> Evaluation {
        self.engine.set_input(input);
        self.evaluate_entrypoint()
    }

    fn evaluate_entrypoint(&mut self) -> Evaluation {
        match self.engine.eval_rule(ENTRYPOINT.to_owned()) {
            Ok(value) => {
                let mut evaluation = Evaluation::default();
                collect_findings(value, "vigil.main", &mut evaluation);
                evaluation
            }
            Err(e) => self.evaluate_rule_by_rule(e.to_string()),
        }
    }

    /// The entrypoint failed with `entrypoint_error`: find out which rules failed and keep the
    /// findings of the others.
    fn evaluate_rule_by_rule(&mut self, entrypoint_error: String) -> Evaluation {
        let mut evaluation = Evaluation::default();
        let mut paths: Vec<String> = self.rules.iter().map(|r| r.findings_path.clone()).collect();
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
            // Every rule succeeded alone: the failure is in vigil.main itself, or the whole
            // evaluation ran out of time where the parts did not. Keep what the rules found.
            evaluation.errors.push(RuleError {
                rule: "vigil.main".into(),
                message: entrypoint_error,
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
