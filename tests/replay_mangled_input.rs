//! Mangled input never panics and never loses a record silently: every line of a corrupted file
//! is either decoded or reported, and replay goes on to the end.

use std::io::Cursor;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use vigil::detect::Detector;
use vigil::policy::{LoadOptions, Policy, PolicySource};
use vigil::replay::replay;
use vigil::simulate::{generate, Attack, SimConfig};
use vigil::state::StateLimits;

/// Corrupt one serialised event the ways real pipelines do: truncation, a flipped byte, a field
/// of the wrong type, a null where an object belongs, deep nesting, a lone brace, or nothing.
fn mangle(rng: &mut ChaCha8Rng, line: &str) -> String {
    let mut event: serde_json::Value = serde_json::from_str(line).unwrap();
    match rng.random_range(0..8) {
        0 => line[..rng.random_range(0..line.len())].to_owned(),
        1 => {
            let mut bytes = line.as_bytes().to_vec();
            let i = rng.random_range(0..bytes.len());
            bytes[i] = rng.random();
            String::from_utf8_lossy(&bytes).into_owned()
        }
        2 => {
            let field = [
                "uuid",
                "published",
                "eventType",
                "actor",
                "client",
                "outcome",
            ][rng.random_range(0..6)];
            event[field] = serde_json::json!(rng.random::<u32>());
            event.to_string()
        }
        3 => {
            let field = [
                "actor",
                "client",
                "securityContext",
                "debugContext",
                "target",
                "outcome",
            ][rng.random_range(0..6)];
            event[field] = serde_json::Value::Null;
            event.to_string()
        }
        4 => {
            event["client"]["geographicalContext"] = serde_json::json!("Paris");
            event.to_string()
        }
        5 => format!(
            "{}{}",
            "{\"a\":".repeat(200),
            "1".to_owned() + &"}".repeat(200)
        ),
        // A line cut to its first byte: must not make the reader take the rest as one document.
        6 => ["", "{", "["][rng.random_range(0..3)].to_owned(),
        _ => line.to_owned(),
    }
}

#[test]
fn every_line_of_a_mangled_file_is_decoded_or_reported() {
    let config = SimConfig {
        users: 30,
        days: 2,
        start: chrono::NaiveDate::from_ymd_opt(2026, 3, 2).unwrap(),
        seed: 5,
        attacks: Attack::ALL.to_vec(),
    };
    let lines: Vec<String> = generate(&config)
        .events
        .iter()
        .map(|e| e.to_string())
        .collect();
    let mut rng = ChaCha8Rng::seed_from_u64(99);
    let mangled: Vec<String> = lines.iter().map(|l| mangle(&mut rng, l)).collect();
    let non_empty = mangled.iter().filter(|l| !l.trim().is_empty()).count() as u64;

    let policy = Policy::load(&PolicySource::Embedded, LoadOptions::default()).unwrap();
    let mut detector = Detector::new(policy, StateLimits::default());
    let mut out = Vec::new();
    let mut reported = Vec::new();
    let summary = replay(
        Cursor::new(mangled.join("\n")),
        &mut detector,
        &mut out,
        None,
        1 << 20,
        &mut |line| reported.push(line),
    )
    .unwrap();

    // Nothing vanished: every non-empty line is an event or a bad record.
    assert_eq!(
        summary.events + summary.bad_record_count(),
        non_empty,
        "{summary:?}"
    );
    assert!(
        summary.bad_record_count() > 100,
        "the mangling produced bad records: {summary:?}"
    );
    assert!(summary.events > 100, "and left good ones: {summary:?}");
    assert_eq!(summary.rule_errors.values().sum::<u64>(), 0, "{reported:?}");
    // Every reported problem names its line.
    assert!(
        reported.iter().take(100).all(|r| r.contains("line ")),
        "{reported:?}"
    );
}
