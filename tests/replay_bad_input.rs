//! `vigil replay` on bad input: every bad record is reported with its line and counted, the rest
//! of the file is processed, and a broken policy is refused at load with file and line.

mod common;

use common::{copy_dir, event, policies_dir, replay_with, run, stderr, stdout};

#[test]
fn bad_records_are_reported_by_line_and_the_rest_is_processed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.ndjson");
    let user = "00ubadinput000000001";
    let fail =
        |uuid: &str, at: &str| event(uuid, at, "user.session.start", user, "FAILURE").to_string();
    let mut missing_uuid = event(
        "x",
        "2026-03-02T09:00:30Z",
        "user.session.start",
        user,
        "FAILURE",
    );
    missing_uuid.as_object_mut().unwrap().remove("uuid");
    let mut wrong_type = event(
        "y",
        "2026-03-02T09:00:40Z",
        "user.session.start",
        user,
        "FAILURE",
    );
    wrong_type["eventType"] = serde_json::json!(42);
    let mut huge = event(
        "z",
        "2026-03-02T09:00:50Z",
        "user.session.start",
        user,
        "FAILURE",
    );
    huge["debugContext"] = serde_json::json!({"debugData": {"blob": "x".repeat(10 << 20)}});
    let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    let lines = [
        fail("f1", "2026-03-02T09:00:00Z"), // line 1
        "{\"uuid\": \"broken".to_owned(),   // line 2: not JSON
        missing_uuid.to_string(),           // line 3
        wrong_type.to_string(),             // line 4
        huge.to_string(),                   // line 5: 10 MB
        deep,                               // line 6: deep nesting
        fail("f2", "2026-03-02T09:01:00Z"), // line 7
        fail("f3", "2026-03-02T09:02:00Z"), // line 8: third failure in 10 min
    ];
    std::fs::write(&path, lines.join("\n")).unwrap();

    let out = run(&["replay", "--events", path.to_str().unwrap()]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    for expected in [
        "line 2: not valid JSON",
        "line 3: missing required field `uuid`",
        "line 4: field `eventType` must be a string, got a number",
        "line 5: event is 10486",
        "line 6, event 1: not valid JSON: recursion limit exceeded",
    ] {
        assert!(err.contains(expected), "stderr lacks {expected:?}:\n{err}");
    }
    assert!(
        err.contains("replay: 3 events (3 evaluated, 0 repeats ignored)"),
        "{err}"
    );
    assert!(err.contains("5 bad records"), "{err}");
    // The valid events around the bad ones still produce the brute-force decision.
    let decisions: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let rules: Vec<&str> = decisions
        .iter()
        .map(|d| d["rule"].as_str().unwrap())
        .collect();
    assert_eq!(rules, ["failed_signins"], "{decisions:?}");
    assert_eq!(decisions[0]["event"]["uuid"], "f3");
}

#[test]
fn a_broken_policy_is_refused_at_load_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&policies_dir(), dir.path());
    let broken = dir.path().join("vigil/rules/broken.rego");
    std::fs::write(
        &broken,
        "package vigil.rules.broken\n\nfindings contains f if {\n\tf := {\"rule\": \n}\n",
    )
    .unwrap();
    let events = dir.path().join("e.ndjson");
    std::fs::write(&events, "").unwrap();
    let out = replay_with(&events, dir.path(), &[]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!("{}:5:1:", broken.display()))
            || err.contains(&format!("{}:4:", broken.display())),
        "{err}"
    );

    // An unsafe variable compiles to nothing in some engines; here it is a load error too.
    std::fs::write(
        &broken,
        "package vigil.rules.broken\n\nfindings contains f if {\n\tf := nowhere\n}\n",
    )
    .unwrap();
    let out = replay_with(&events, dir.path(), &[]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains(&format!("{}:4:", broken.display())), "{err}");
    assert!(err.contains("var nowhere is unsafe"), "{err}");
}
