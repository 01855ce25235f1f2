//! Helpers shared by the integration tests: run the real `vigil` binary, write fixtures.

#![allow(dead_code)] // each test binary uses a different subset

pub mod fakes;
pub mod kafka;
pub mod respond;
pub mod tansu;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The built `vigil` binary.
pub fn vigil() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vigil"));
    cmd.stdin(Stdio::null());
    cmd
}

/// Run `vigil` with `args`, returning its output; panics with stderr if it could not start.
pub fn run(args: &[&str]) -> Output {
    vigil().args(args).output().expect("vigil runs")
}

/// `vigil replay --events EVENTS --policies POLICIES EXTRA…`.
pub fn replay_with(events: &Path, policies: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "replay",
        "--events",
        events.to_str().expect("utf-8 path"),
        "--policies",
        policies.to_str().expect("utf-8 path"),
    ];
    args.extend_from_slice(extra);
    run(&args)
}

/// Stdout as text.
pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Stderr as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The repository's policy pack.
pub fn policies_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("policies")
}

/// A minimal valid LogEvent for user `user` (`00u…`) at `published`.
pub fn event(
    uuid: &str,
    published: &str,
    event_type: &str,
    user: &str,
    result: &str,
) -> serde_json::Value {
    serde_json::json!({
        "uuid": uuid, "published": published, "eventType": event_type, "version": "0",
        "severity": "INFO", "displayMessage": "test",
        "actor": {"id": user, "type": "User", "alternateId": format!("{user}@example.com"), "displayName": user},
        "outcome": {"result": result, "reason": if result == "FAILURE" { "INVALID_CREDENTIALS" } else { "" }},
        "client": {"ipAddress": "198.51.100.7",
                   "userAgent": {"rawUserAgent": "Mozilla/5.0", "os": "Mac OS X", "browser": "CHROME"},
                   "geographicalContext": {"city": "Seattle", "state": "Washington", "country": "United States",
                                           "postalCode": "98101", "geolocation": {"lat": 47.6062, "lon": -122.3321}}},
        "securityContext": {"asNumber": 7922, "asOrg": "comcast", "isp": "comcast", "domain": "comcast.net", "isProxy": false}
    })
}

/// Copy a directory tree (a policy pack to modify in a test).
pub fn copy_dir(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// A TCP port free on 127.0.0.1 right now (for a server the test starts).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// An Okta Event Hook delivery carrying `events`, as Okta sends it.
pub fn hook_envelope(events: &[serde_json::Value]) -> serde_json::Value {
    serde_json::json!({
        "eventType": "com.okta.event_hook",
        "eventTypeVersion": "1.0",
        "cloudEventsVersion": "0.1",
        "source": "https://acme.okta.com/api/v1/eventHooks/who8",
        "eventId": "b5a188b9-5ece-4636-b041-482ffda96311",
        "eventTime": "2026-11-22T10:00:00.000Z",
        "contentType": "application/json",
        "data": {"events": events},
    })
}
