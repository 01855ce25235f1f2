//! `vigil policy test`: the shipped pack passes with every rule tested and covered, and the runner
//! fails when a test fails, when a rule has no tests, or when a rule fires on an event type it
//! does not declare.

mod common;

use common::{copy_dir, policies_dir, run, stdout};

#[test]
fn the_shipped_pack_passes_with_every_rule_covered() {
    let out = run(&[
        "policy",
        "test",
        policies_dir().to_str().unwrap(),
        "--min-coverage",
        "95",
    ]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}");
    let last = text.lines().last().unwrap();
    assert!(last.ends_with(" passed, 0 failed"), "{last}");
    let passed: usize = last.split(' ').next().unwrap().parse().unwrap();
    assert!(passed > 100, "{last}");
    assert!(!text.contains("has no unit test package"), "{text}");
    // Every rule module is exercised by its tests.
    for line in text.lines().filter(|l| l.contains("vigil/rules/")) {
        assert!(
            line.trim_start().starts_with("100.0%"),
            "not fully covered: {line}"
        );
    }
    // Scenarios ran too (sequences through the real state).
    assert!(
        text.contains("PASS scenarios/failed_signins_window.toml"),
        "{text}"
    );
}

#[test]
fn the_built_in_pack_is_the_same_as_the_directory() {
    let embedded = stdout(&run(&["policy", "test"]));
    let dir = stdout(&run(&["policy", "test", policies_dir().to_str().unwrap()]));
    assert_eq!(embedded.lines().last(), dir.lines().last());
}

fn pack() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&policies_dir(), dir.path());
    dir
}

#[test]
fn a_failing_test_fails_the_run() {
    let dir = pack();
    let test = dir.path().join("vigil/rules/user_reported_test.rego");
    let mut text = std::fs::read_to_string(&test).unwrap();
    text.push_str("\ntest_deliberately_wrong if {\n\tcount(user_reported.findings) == 42 with input as reported\n}\n");
    std::fs::write(&test, text).unwrap();
    let out = run(&["policy", "test", dir.path().to_str().unwrap()]);
    let text = stdout(&out);
    assert!(!out.status.success());
    assert!(
        text.contains("FAIL data.vigil.rules.user_reported_test.test_deliberately_wrong"),
        "{text}"
    );
    assert!(
        text.lines().last().unwrap().ends_with(" passed, 1 failed"),
        "{text}"
    );
}

#[test]
fn a_rule_without_tests_fails_the_run() {
    let dir = pack();
    std::fs::write(
        dir.path().join("vigil/rules/untested.rego"),
        "package vigil.rules.untested\n\nevent_types := {\"user.session.end\"}\n\nfindings := set()\n",
    )
    .unwrap();
    let out = run(&["policy", "test", dir.path().to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        stdout(&out).contains("rule package data.vigil.rules.untested has no unit test package")
    );
}

#[test]
fn a_rule_firing_on_an_undeclared_event_type_fails_its_scenarios() {
    // failed_signins declares user.session.start and user.authentication.verify; claim only the
    // latter and the failed-sign-in scenario, where the rule fires on user.session.start, fails.
    let dir = pack();
    let rule = dir.path().join("vigil/rules/failed_signins.rego");
    let text = std::fs::read_to_string(&rule).unwrap();
    let narrowed = text.replace(
        "event_types := {\"user.session.start\", \"user.authentication.verify\"}",
        "event_types := {\"user.authentication.verify\"}",
    );
    assert_ne!(
        text, narrowed,
        "the declaration is where the test expects it"
    );
    std::fs::write(&rule, narrowed).unwrap();
    let out = run(&["policy", "test", dir.path().to_str().unwrap()]);
    let text = stdout(&out);
    assert!(!out.status.success());
    assert!(
        text.contains("FAIL scenarios/failed_signins_window.toml"),
        "{text}"
    );
    assert!(text.contains("rule vigil.dispatch failed"), "{text}");
}
