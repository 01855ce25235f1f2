//! The compiled screen: every rule's `findings` compiled to regorus' register VM (RVM), run on
//! each event to find out cheaply whether any rule finds something.
//!
//! The screen only decides whether the interpreter is asked at all; the decisions themselves
//! always come from the interpreter (the reference semantics, the same as OPA's). That makes the
//! screen safe to use as long as it never misses what the interpreter would find. RVM in regorus
//! 0.14 is not exact: it lets some bodies succeed that should fail (an assignment from an
//! undefined function result, `x := f(y)`, does not stop the body). Such a false alarm only costs
//! an interpreter run. A miss would hide a detection, so `vigil policy test` compares the screened
//! path with the full entrypoint on every scenario event, the test suite compares whole replays
//! with and without the screen, and `LoadOptions::compiled_screen` turns it off.
//!
//! RVM also does not raise the interpreter's runtime conflict errors (a complete rule or function
//! defined twice with different values, or a partial object rule giving one key two values): it
//! picks a value. So a rule is screened by the interpreter when its package defines something
//! that can conflict, and every rule is when a package that is not a rule package does (a shared
//! helper package, say). Likewise a rule that does not compile to RVM (a construct it does not
//! support). Both are logged at load.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use regorus::languages::rego::compiler::Compiler;
use regorus::rvm::{Program, RegoVM};
use regorus::unstable::{Expr, Rule as RegoRule, RuleHead};
use regorus::utils::limits::ExecutionTimerConfig;

use super::{Rule, RULES_PREFIX};

/// Instructions one rule may execute at most; the time bound is the real limit, this only keeps
/// RVM's own default (25,000) from refusing a legitimate rule.
const MAX_INSTRUCTIONS: usize = 50_000_000;

/// What screening one rule said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The rule finds nothing on this input.
    Nothing,
    /// The rule may find something, or failed: ask the interpreter.
    Ask,
}

/// Rules compiled to RVM and a VM to run them. Cloning builds a fresh VM on the same program.
pub struct Screen {
    program: Option<Arc<Program>>,
    /// Per rule (in [`super::Policy::rules`] order): whether it is in the program.
    compiled: Vec<bool>,
    data: regorus::Value,
    timer: ExecutionTimerConfig,
    vm: Option<RegoVM>,
}

impl Screen {
    /// Compile the `findings` of each of `rules` that RVM supports. `engine` holds the modules
    /// and data; `data` is the same data document.
    pub fn compile(
        engine: &mut regorus::Engine,
        rules: &[Rule],
        data: regorus::Value,
        timer: ExecutionTimerConfig,
    ) -> Self {
        let mut compiled = vec![false; rules.len()];
        let mut entry_points = Vec::new();
        let conflicting = packages_that_can_conflict(engine);
        if let Some(shared) = conflicting.iter().find(|p| !p.starts_with(RULES_PREFIX)) {
            tracing::info!(
                package = %shared,
                "every rule screened by the interpreter: this package defines a rule that can conflict at runtime, which RVM does not report"
            );
            return Screen::interpreter_only(rules);
        }
        for (i, rule) in rules.iter().enumerate() {
            let package = rule.findings_path.trim_end_matches(".findings");
            if conflicting.contains(package) {
                tracing::info!(
                    rule = %rule.name,
                    "rule screened by the interpreter: its package defines a rule that can conflict at runtime, which RVM does not report"
                );
                continue;
            }
            match compile_program(engine, &[rule.findings_path.as_str()]) {
                Ok(_) => {
                    compiled[i] = true;
                    entry_points.push(rule.findings_path.as_str());
                }
                Err(e) => tracing::info!(
                    rule = %rule.name,
                    "rule screened by the interpreter (it does not compile to RVM: {e})"
                ),
            }
        }
        let program = if entry_points.is_empty() {
            None
        } else {
            match compile_program(engine, &entry_points) {
                Ok(program) => Some(program),
                Err(e) => {
                    // Each compiled alone; together they should too. If not, screen nothing.
                    tracing::warn!("rules screened by the interpreter: {e}");
                    compiled.iter_mut().for_each(|c| *c = false);
                    None
                }
            }
        };
        let mut screen = Screen {
            program,
            compiled,
            data,
            timer,
            vm: None,
        };
        screen.vm = screen.new_vm();
        screen
    }

    /// A screen that compiles nothing: every rule is screened by the interpreter.
    pub fn interpreter_only(rules: &[Rule]) -> Self {
        Screen {
            program: None,
            compiled: vec![false; rules.len()],
            data: regorus::Value::new_object(),
            timer: ExecutionTimerConfig {
                limit: std::time::Duration::ZERO,
                check_interval: std::num::NonZeroU32::MIN,
            },
            vm: None,
        }
    }

    fn new_vm(&self) -> Option<RegoVM> {
        let program = self.program.clone()?;
        let mut vm = RegoVM::new();
        vm.load_program(program);
        if let Err(e) = vm.set_data(self.data.clone()) {
            tracing::warn!("rules screened by the interpreter: RVM refused the data: {e}");
            return None;
        }
        vm.set_max_instructions(MAX_INSTRUCTIONS);
        vm.set_execution_timer_config(Some(self.timer));
        // Type errors in builtins are errors, as in the interpreter (not silently undefined).
        vm.set_strict_builtin_errors(true);
        Some(vm)
    }

    /// Whether rule `index` is screened here (else the caller asks the interpreter).
    pub fn covers(&self, index: usize) -> bool {
        self.vm.is_some() && self.compiled.get(index).copied().unwrap_or(false)
    }

    /// Set the input for the following [`Screen::run`] calls.
    pub fn set_input(&mut self, input: regorus::Value) {
        if let Some(vm) = &mut self.vm {
            vm.set_input(input);
        }
    }

    /// Screen `rule` (one [`Screen::covers`]) on the current input.
    pub fn run(&mut self, rule: &Rule) -> Verdict {
        let Some(vm) = &mut self.vm else {
            return Verdict::Ask;
        };
        match vm.execute_entry_point_by_name(&rule.findings_path) {
            Ok(value) if finds_nothing(&value) => Verdict::Nothing,
            _ => Verdict::Ask,
        }
    }
}

impl Clone for Screen {
    fn clone(&self) -> Self {
        let mut screen = Screen {
            program: self.program.clone(),
            compiled: self.compiled.clone(),
            data: self.data.clone(),
            timer: self.timer,
            vm: None,
        };
        screen.vm = screen.new_vm();
        screen
    }
}

/// Packages (`data.a.b`, test packages left out) with a definition that can fail at runtime
/// with a conflict: a complete rule or function defined more than once with a value other than
/// `true` (except functions whose definitions take distinct literal arguments, like
/// `level("page") := …`), or a partial object rule (`x[k] := v`: two values for one key).
fn packages_that_can_conflict(engine: &mut regorus::Engine) -> BTreeSet<String> {
    let mut definitions: BTreeMap<(String, String), Definitions> = BTreeMap::new();
    let mut partial_objects = BTreeSet::new();
    for module in engine.get_modules() {
        let package = format!("data.{}", module.package.refr.span().text());
        if package.ends_with("_test") {
            continue;
        }
        for rule in &module.policy {
            let RegoRule::Spec { head, .. } = rule.as_ref() else {
                continue;
            };
            let (name, assign, args) = match head {
                RuleHead::Compr { refr, assign, .. } => (refr.span().text(), assign, None),
                RuleHead::Func {
                    refr, assign, args, ..
                } => {
                    let literals: Option<Vec<String>> = args.iter().map(|a| literal(a)).collect();
                    (refr.span().text(), assign, literals.map(|l| l.join(",")))
                }
                RuleHead::Set { .. } => continue,
            };
            if name.contains('[') {
                partial_objects.insert(package.clone());
                continue;
            }
            let valued = assign
                .as_ref()
                .is_some_and(|a| literal(&a.value).as_deref() != Some("true"));
            let entry = definitions
                .entry((package.clone(), name.to_owned()))
                .or_default();
            entry.count += 1;
            entry.valued |= valued;
            match args {
                Some(args) => {
                    entry.distinct_literal_args &= entry.literal_args.insert(args);
                }
                None => entry.distinct_literal_args = false,
            }
        }
    }
    definitions
        .into_iter()
        .filter(|(_, d)| d.count > 1 && d.valued && !d.distinct_literal_args)
        .map(|((package, _), _)| package)
        .chain(partial_objects)
        .collect()
}

/// The definitions of one rule or function name in one package.
struct Definitions {
    count: usize,
    /// One has a value other than `true`.
    valued: bool,
    /// Every definition is a function taking literal arguments, no two the same.
    distinct_literal_args: bool,
    literal_args: BTreeSet<String>,
}

impl Default for Definitions {
    fn default() -> Self {
        Definitions {
            count: 0,
            valued: false,
            distinct_literal_args: true,
            literal_args: BTreeSet::new(),
        }
    }
}

/// A scalar literal (string, number, boolean, null) as JSON text; `None` for anything else.
fn literal(expr: &Expr) -> Option<String> {
    match expr {
        Expr::String { value, .. }
        | Expr::RawString { value, .. }
        | Expr::Number { value, .. }
        | Expr::Bool { value, .. }
        | Expr::Null { value, .. } => value.to_json_str().ok(),
        _ => None,
    }
}

fn compile_program(
    engine: &mut regorus::Engine,
    entry_points: &[&str],
) -> anyhow::Result<Arc<Program>> {
    let first = entry_points.first().copied().unwrap_or_default();
    let policy = engine.compile_with_entrypoint(&regorus::Rc::from(first))?;
    Compiler::compile_from_policy(&policy, entry_points).map_err(|e| anyhow::anyhow!("{e}"))
}

/// An empty set (or nothing at all) is "no finding"; anything else is for the interpreter to
/// judge, including values a `findings` rule should never have.
fn finds_nothing(value: &regorus::Value) -> bool {
    match value {
        regorus::Value::Undefined => true,
        regorus::Value::Set(items) => items.is_empty(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine(modules: &[&str]) -> regorus::Engine {
        let mut engine = regorus::Engine::new();
        engine.set_rego_v0(false);
        for (i, text) in modules.iter().enumerate() {
            engine
                .add_policy(format!("m{i}.rego"), (*text).into())
                .unwrap();
        }
        engine
    }

    fn conflicting(modules: &[&str]) -> Vec<String> {
        packages_that_can_conflict(&mut engine(modules))
            .into_iter()
            .collect()
    }

    #[test]
    fn definitions_that_can_conflict_are_found_per_package() {
        let found = conflicting(&[
            // Two values for one complete rule.
            "package a\nx := 1 if input.p\nx := 2 if input.q\n",
            // Two values for one function with variable arguments.
            "package b\nf(v) := 1 if v > 0\nf(v) := 2 if v < 10\n",
            // A partial object rule, even defined once.
            "package c\nparts[k] := v if { some k, v in input.m }\n",
            // Boolean rules and functions defined twice, an else chain, distinct literal
            // arguments, a partial set: none can conflict.
            "package d\nok if input.p\nok if input.q\none_of(v) if v == 1\none_of(v) if v == 2\n\
             y := 1 if input.p else := 2\nlevel(\"page\") := [1]\nlevel(\"notify\") := []\n\
             s contains 1 if input.p\ns contains 2 if input.q\n",
            // Test packages are never referenced by rules.
            "package e_test\nx := 1 if input.p\nx := 2 if input.q\n",
        ]);
        assert_eq!(found, ["data.a", "data.b", "data.c"]);
    }

    #[test]
    fn a_rule_whose_package_can_conflict_is_screened_by_the_interpreter() {
        let mut engine = engine(&[
            "package vigil.rules.calm\nfindings contains 1 if input.p\n",
            "package vigil.rules.torn\nv := 1 if input.p\nv := 2 if input.p\nfindings contains v if input.q\n",
        ]);
        let rule = |name: &str| Rule {
            name: name.into(),
            findings_path: format!("data.vigil.rules.{name}.findings"),
            event_types: None,
        };
        let rules = [rule("calm"), rule("torn")];
        let timer = ExecutionTimerConfig {
            limit: std::time::Duration::from_secs(1),
            check_interval: std::num::NonZeroU32::MIN,
        };
        let mut screen = Screen::compile(&mut engine, &rules, regorus::Value::new_object(), timer);
        assert!(screen.covers(0));
        assert!(!screen.covers(1), "the interpreter reports torn's conflict");
        screen.set_input(regorus::Value::from_json_str(r#"{"p": false}"#).unwrap());
        assert_eq!(screen.run(&rules[0]), Verdict::Nothing);
        screen.set_input(regorus::Value::from_json_str(r#"{"p": true}"#).unwrap());
        assert_eq!(screen.run(&rules[0]), Verdict::Ask);
        let mut clone = screen.clone();
        clone.set_input(regorus::Value::from_json_str(r#"{"p": false}"#).unwrap());
        assert_eq!(
            clone.run(&rules[0]),
            Verdict::Nothing,
            "a clone screens alike"
        );
    }

    #[test]
    fn only_an_empty_result_is_nothing() {
        assert!(finds_nothing(&regorus::Value::Undefined));
        assert!(finds_nothing(&regorus::Value::new_set()));
        assert!(!finds_nothing(
            &regorus::Value::from_json_str("[1]").unwrap()
        ));
        assert!(!finds_nothing(&regorus::Value::from(true)));
        assert!(!finds_nothing(&regorus::Value::new_object()));
    }
}
