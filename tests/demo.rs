//! `vigil demo`, the README's first command, run as a user would: no configuration, and every
//! injected attack reported as detected.

mod common;

use common::{run, stderr, stdout};

#[test]
fn the_demo_detects_every_injected_attack() {
    // Fewer users than the default keep the debug build quick; 15 days let baselines learn.
    let out = run(&["demo", "--users", "40", "--days", "15"]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}\n{}", stderr(&out));
    for attack in [
        "credential-stuffing",
        "mfa-fatigue",
        "session-theft",
        "user-reported",
        "admin-backdoor",
    ] {
        let line = text
            .lines()
            .find(|l| l.trim_start().starts_with(attack))
            .unwrap_or_else(|| panic!("no summary line for {attack}:\n{text}"));
        assert!(line.contains("detected by"), "{line}");
    }
    assert!(text.contains(", 0 rule errors"), "{text}");
    assert!(
        text.contains("nothing was sent to Okta, Slack or PagerDuty"),
        "{text}"
    );
}
