//! `vigil policy test`: run a policy directory's tests the way OPA does (every `test_*` rule of
//! every `*_test.rego` must be `true`), plus Vigil's scenario tests (`scenarios/*.toml`: sequences
//! of events through the real state and policy path), and report line coverage.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::detect::Detector;
use crate::event::OktaEvent;
use crate::policy::{Bundle, LoadOptions, Policy, PolicySource};
use crate::state::StateLimits;

/// Bound on evaluating one test or one scenario event.
const TEST_EVAL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Arguments of `vigil policy test`.
#[derive(clap::Args, Debug, Clone)]
pub struct PolicyTestArgs {
    /// Policy directory to test; default: the pack built into this binary.
    #[arg(value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Fail when line coverage of the non-test modules is below this percentage.
    #[arg(long, default_value_t = 0.0)]
    pub min_coverage: f64,
    /// Only run tests whose name contains this text.
    #[arg(long)]
    pub filter: Option<String>,
}

/// One test's result.
#[derive(Debug, Clone, PartialEq)]
pub struct TestResult {
    /// `data.pkg.test_name` or `scenarios/x.toml`.
    pub name: String,
    /// `None` when it passed, else why it failed.
    pub failure: Option<String>,
}

/// Everything a test run found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TestReport {
    /// Every test, in run order.
    pub results: Vec<TestResult>,
    /// `(module path, covered lines, coverable lines)` of every non-test module.
    pub coverage: Vec<(String, usize, usize)>,
    /// Rule packages that no unit test file targets (`<pkg>_test`).
    pub untested_rules: Vec<String>,
}

impl TestReport {
    /// Tests that passed.
    pub fn passed(&self) -> usize {
        self.results.iter().filter(|r| r.failure.is_none()).count()
    }

    /// Tests that failed.
    pub fn failed(&self) -> usize {
        self.results.len() - self.passed()
    }

    /// Covered lines / coverable lines over all non-test modules, in percent.
    pub fn coverage_percent(&self) -> f64 {
        let (covered, total) = self
            .coverage
            .iter()
            .fold((0, 0), |(c, t), (_, covered, total)| {
                (c + covered, t + total)
            });
        if total == 0 {
            100.0
        } else {
            100.0 * covered as f64 / total as f64
        }
    }
}

/// Run `vigil policy test` and print the report; `Ok(false)` when anything failed.
pub fn run(args: &PolicyTestArgs) -> anyhow::Result<bool> {
    let report = test_source(
        &PolicySource::from_arg(args.dir.as_deref()),
        args.filter.as_deref(),
    )?;
    for r in &report.results {
        match &r.failure {
            None => println!("PASS {}", r.name),
            Some(why) => println!("FAIL {}\n     {}", r.name, why.replace('\n', "\n     ")),
        }
    }
    println!();
    println!("coverage:");
    for (path, covered, total) in &report.coverage {
        let pct = if *total == 0 {
            100.0
        } else {
            100.0 * *covered as f64 / *total as f64
        };
        println!("  {pct:5.1}%  {path} ({covered}/{total} lines)");
    }
    let pct = report.coverage_percent();
    println!("  {pct:5.1}%  total");
    for rule in &report.untested_rules {
        println!("rule package {rule} has no unit test package ({rule}_test)");
    }
    let coverage_ok = pct + 1e-9 >= args.min_coverage;
    if !coverage_ok {
        println!(
            "coverage {pct:.1}% is below --min-coverage {:.1}%",
            args.min_coverage
        );
    }
    println!("{} passed, {} failed", report.passed(), report.failed());
    Ok(report.failed() == 0 && coverage_ok && report.untested_rules.is_empty())
}

/// Run every unit test and scenario of a policy source.
pub fn test_source(source: &PolicySource, filter: Option<&str>) -> anyhow::Result<TestReport> {
    let options = LoadOptions {
        include_tests: true,
        // Tests run with coverage on, often in debug builds on busy machines: the production
        // bound per event would make them flaky, and a runaway test still ends.
        eval_timeout: TEST_EVAL_TIMEOUT,
        // The production path: the dispatch check then compares the compiled screen too.
        compiled_screen: true,
    };
    let bundle = source
        .read(true)
        .with_context(|| format!("cannot load {source}"))?;
    let dir = bundle.root.clone();
    let dir = dir.as_path();
    let mut policy = Policy::from_bundle(bundle.clone(), options)
        .with_context(|| format!("cannot load {source}"))?;
    policy.set_coverage(true);
    let mut report = TestReport::default();
    let wanted = |name: &str| filter.is_none_or(|f| name.contains(f));

    let mut test_packages = BTreeSet::new();
    for (rel, text) in bundle
        .modules
        .iter()
        .filter(|(rel, _)| rel.ends_with("_test.rego"))
    {
        let Some(package) = package_of(text) else {
            report.results.push(TestResult {
                name: rel.clone(),
                failure: Some("no package declaration".into()),
            });
            continue;
        };
        test_packages.insert(format!("data.{package}"));
        for test in test_rules(text) {
            let name = format!("data.{package}.{test}");
            if !wanted(&name) {
                continue;
            }
            policy.set_input(regorus::Value::Undefined);
            let failure = match policy.eval_path(&name) {
                Ok(v) if v == regorus::Value::from(true) => None,
                Ok(regorus::Value::Undefined) => {
                    Some("undefined (a condition in the test is false)".into())
                }
                Ok(v) => Some(format!("evaluated to {v}, expected true")),
                Err(e) => Some(format!("error: {e}")),
            };
            report.results.push(TestResult { name, failure });
        }
    }

    let mut detector = Detector::new(policy, StateLimits::default()).verify_dispatch(true);
    let scenarios = match source {
        PolicySource::Dir(dir) => scenario_files(dir)?,
        PolicySource::Embedded => Bundle::embedded_scenarios(),
    };
    for (name, text) in scenarios {
        if !wanted(&name) {
            continue;
        }
        detector.reset_state();
        let failure = run_scenario(&text, &mut detector).err();
        report.results.push(TestResult { name, failure });
    }

    let policy = detector.policy();
    for rule in policy.rules() {
        let package = rule.findings_path.trim_end_matches(".findings");
        if !test_packages.contains(&format!("{package}_test")) {
            report.untested_rules.push(package.to_owned());
        }
    }
    let coverage = policy.coverage().map_err(anyhow::Error::msg)?;
    for file in coverage.files {
        if file.path.ends_with("_test.rego") {
            continue;
        }
        let path = Path::new(&file.path)
            .strip_prefix(dir)
            .map(|p| p.display().to_string())
            .unwrap_or(file.path);
        let total = file.covered.len() + file.not_covered.len();
        report.coverage.push((path, file.covered.len(), total));
    }
    report.coverage.sort();
    Ok(report)
}

/// `package a.b` → `a.b`.
fn package_of(text: &str) -> Option<String> {
    text.lines()
        .map(str::trim)
        .find_map(|l| l.strip_prefix("package "))
        .map(|p| p.trim().to_owned())
}

/// Names of the `test_*` rules defined at the start of a line (OPA's convention), once each.
fn test_rules(text: &str) -> Vec<String> {
    let mut seen = BTreeSet::new();
    let mut names = Vec::new();
    for line in text.lines() {
        if !line.starts_with("test_") {
            continue;
        }
        let name: String = line
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if seen.insert(name.clone()) {
            names.push(name);
        }
    }
    names
}

/// `(scenarios/NAME.toml, text)` of every scenario file in `dir`, sorted.
fn scenario_files(dir: &Path) -> anyhow::Result<Vec<(String, String)>> {
    let scenarios = dir.join("scenarios");
    if !scenarios.is_dir() {
        return Ok(Vec::new());
    }
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&scenarios)
        .with_context(|| format!("cannot read {}", scenarios.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p)
                .with_context(|| format!("cannot read {}", p.display()))?;
            let name = p.strip_prefix(dir).unwrap_or(&p).display().to_string();
            Ok((name, text))
        })
        .collect()
}

/// A scenario file: events deep-merged over `defaults`, each with the rules it must fire.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Scenario {
    #[allow(dead_code)] // documentation for people reading the file
    description: Option<String>,
    #[serde(default)]
    defaults: Map<String, Value>,
    #[serde(rename = "event", default)]
    events: Vec<Map<String, Value>>,
}

/// Run one scenario; `Err` describes every mismatch.
fn run_scenario(text: &str, detector: &mut Detector) -> Result<(), String> {
    let scenario: Scenario = toml::from_str(text).map_err(|e| e.to_string())?;
    if scenario.events.is_empty() {
        return Err("no [[event]] in the scenario".into());
    }
    let mut problems = Vec::new();
    for (i, mut fields) in scenario.events.into_iter().enumerate() {
        let expected: BTreeSet<String> = match fields.remove("expect") {
            None => BTreeSet::new(),
            Some(Value::Array(rules)) => rules
                .iter()
                .filter_map(|r| r.as_str().map(str::to_owned))
                .collect(),
            Some(_) => {
                return Err(format!(
                    "event {}: `expect` must be a list of rule names",
                    i + 1
                ))
            }
        };
        let mut event = Value::Object(scenario.defaults.clone());
        deep_merge(&mut event, Value::Object(fields));
        let event = OktaEvent::from_value(event).map_err(|e| format!("event {}: {e}", i + 1))?;
        let outcome = detector.process(&event, false);
        for error in &outcome.rule_errors {
            problems.push(format!(
                "event {} ({}): rule {} failed: {}",
                i + 1,
                event.uuid,
                error.rule,
                error.message
            ));
        }
        let fired: BTreeSet<String> = outcome.decisions.iter().map(|d| d.rule.clone()).collect();
        if fired != expected {
            problems.push(format!(
                "event {} ({}): expected {:?}, fired {:?}",
                i + 1,
                event.uuid,
                expected,
                fired
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

/// Merge `overlay` into `base`: objects key by key, anything else replaced.
fn deep_merge(base: &mut Value, overlay: Value) {
    match (base, overlay) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(existing) => deep_merge(existing, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (b, o) => *b = o,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_test_rules_and_package() {
        let text = "package vigil.rules.x_test\n\ntest_fires if {\n true\n}\ntest_fires if { false }\n  test_indented := true\ntest_two := true\n";
        assert_eq!(package_of(text).as_deref(), Some("vigil.rules.x_test"));
        assert_eq!(test_rules(text), vec!["test_fires", "test_two"]);
    }

    #[test]
    fn deep_merge_overlays_nested_objects() {
        let mut base = serde_json::json!({"actor": {"id": "1", "type": "User"}, "a": 1});
        deep_merge(
            &mut base,
            serde_json::json!({"actor": {"id": "2"}, "a": [1]}),
        );
        assert_eq!(
            base,
            serde_json::json!({"actor": {"id": "2", "type": "User"}, "a": [1]})
        );
    }
}
