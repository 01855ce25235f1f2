//! A rule that fails at runtime (an error, or too slow) is reported for that event and counted;
//! the other rules still decide and the stream goes on.

mod common;

use common::{copy_dir, event, policies_dir, replay_with, stderr, stdout};

/// The shipped pack plus one extra rule.
fn pack_with(rule: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&policies_dir(), dir.path());
    std::fs::write(dir.path().join("vigil/rules/extra.rego"), rule).unwrap();
    dir
}

fn three_failures(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("events.ndjson");
    let user = "00urulerrors00000001";
    let lines: Vec<String> = ["09:00:00", "09:01:00", "09:02:00"]
        .iter()
        .enumerate()
        .map(|(i, t)| {
            event(
                &format!("f{i}"),
                &format!("2026-03-02T{t}Z"),
                "user.session.start",
                user,
                "FAILURE",
            )
            .to_string()
        })
        .collect();
    std::fs::write(&path, lines.join("\n")).unwrap();
    path
}

#[test]
fn a_rule_error_is_reported_per_event_and_the_other_rules_still_decide() {
    // Two complete-rule definitions that disagree: a runtime conflict on every sign-in.
    let pack = pack_with(
        "package vigil.rules.extra\n\nevent_types := {\"user.session.start\"}\n\n\
         verdict = 1 if input.event.eventType == \"user.session.start\"\n\n\
         verdict = 2 if input.event.eventType == \"user.session.start\"\n\n\
         findings contains f if {\n\tverdict == 3\n\tf := {}\n}\n",
    );
    let events = three_failures(pack.path());
    let out = replay_with(&events, pack.path(), &[]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    for line in 1..=3 {
        assert!(
            err.contains(&format!(
                "rule error at line {line} (event f{}): rule extra:",
                line - 1
            )),
            "{err}"
        );
    }
    // vigil.response reads every rule's findings, so it fails along with the broken rule.
    assert!(
        err.contains("rule errors by rule: extra 3, response 3"),
        "{err}"
    );
    let rules: Vec<String> = stdout(&out)
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["rule"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        rules,
        ["failed_signins"],
        "the brute force is still detected"
    );
}

#[test]
fn evaluation_of_one_event_is_bounded_in_time() {
    let pack = pack_with(
        "package vigil.rules.extra\n\nevent_types := {\"user.session.start\"}\n\n\
         n := 3000 if input.event.eventType == \"user.session.start\"\n\n\
         findings contains f if {\n\tcount([1 | some i in numbers.range(1, n); some j in numbers.range(1, n)]) == 0\n\tf := {}\n}\n",
    );
    let events = three_failures(pack.path());
    let out = replay_with(&events, pack.path(), &["--eval-timeout-ms", "20"]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("rule errors by rule: extra 3"), "{err}");
    assert!(err.contains("execution exceeded time limit"), "{err}");
    // The other rules still decided: the third failure is a brute force.
    assert!(
        stdout(&out).contains("\"rule\":\"failed_signins\""),
        "{err}"
    );
}
