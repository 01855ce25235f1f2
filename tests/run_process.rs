//! `vigil run` as a user starts it: no brokers configured (the embedded broker), a hook secret,
//! connectors pointed at the vendor fakes. An Okta Event Hook delivery of a user's "report
//! suspicious activity" becomes Okta, Slack actions at the fakes, then SIGTERM stops it cleanly.

mod common;

use std::time::{Duration, Instant};

use serde_json::json;

use common::fakes::Fakes;
use common::tansu::Stage;

#[test]
fn vigil_run_on_the_embedded_broker_takes_a_hook_delivery_to_the_vendors() {
    let fakes = Fakes::start();
    fakes.add_user("00uREPORTER", "ACTIVE");
    let dir = tempfile::tempdir().unwrap();
    let secret = |name: &str, value: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, value).unwrap();
        path.display().to_string()
    };
    let free_port = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    };
    let (port, http_port) = (free_port(), free_port());
    let config = dir.path().join("vigil.toml");
    std::fs::write(
        &config,
        format!(
            r#"[ingest]
hook_listen = "127.0.0.1:{port}"
hook_secret_file = "{hook}"
[http]
listen = "127.0.0.1:{http_port}"
[okta]
base_url = "{okta}"
token_file = "{okta_token}"
[slack]
base_url = "{slack}"
channel = "C0SECURITY"
token_file = "{slack_token}"
"#,
            hook = secret("hook", "hook-secret"),
            okta = fakes.okta_base(),
            okta_token = secret("okta", "okta-test-token"),
            slack = fakes.slack_base(),
            slack_token = secret("slack", "xoxb-test-token"),
        ),
    )
    .unwrap();
    let log = dir.path().join("run.log");
    let stage = Stage::start("run --log-format json", &config, &log);

    let report = common::event(
        "report-1",
        &chrono::Utc::now().to_rfc3339(),
        "user.account.report_suspicious_activity_by_enduser",
        "00uREPORTER",
        "SUCCESS",
    );
    let envelope = json!({"eventType": "com.okta.event_hook", "eventTypeVersion": "1.0", "data": {"events": [report]}});
    let client = reqwest::blocking::Client::new();
    let url = format!("http://127.0.0.1:{port}/okta/event-hook");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let sent = client
            .post(&url)
            .header("Authorization", "hook-secret")
            .json(&envelope)
            .send();
        match sent {
            Ok(r) if r.status() == 200 => break,
            _ if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(200)),
            other => panic!(
                "the hook never took the delivery: {other:?}; log: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            ),
        }
    }
    let done = || {
        fakes.count("DELETE", "/okta/api/v1/users/00uREPORTER/sessions") == 1
            && fakes.count(
                "POST",
                "/okta/api/v1/users/00uREPORTER/lifecycle/reset_password",
            ) == 1
            && fakes
                .slack_messages()
                .iter()
                .any(|m| m["text"].as_str().unwrap_or("").contains("user_reported"))
    };
    while !done() {
        assert!(
            Instant::now() < deadline,
            "actions missing at the fakes; requests {:?}; log: {}",
            fakes
                .requests()
                .iter()
                .map(|r| format!("{} {}", r.method, r.path))
                .collect::<Vec<_>>(),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let scrape = || {
        client
            .get(format!("http://127.0.0.1:{http_port}/metrics"))
            .send()
            .unwrap()
            .text()
            .unwrap()
    };
    // The metrics say what happened, in Prometheus' text format.
    let metrics = scrape();
    let value = |series: &str| -> f64 {
        metrics
            .lines()
            .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {series} in\n{metrics}"))
    };
    assert_eq!(value("vigil_hook_deliveries_total{result=\"stored\"}"), 1.0);
    assert_eq!(value("vigil_ingested_events_total{source=\"hook\"}"), 1.0);
    assert_eq!(
        value("vigil_events_total{event_type=\"user.account.report_suspicious_activity_by_enduser\",outcome=\"SUCCESS\"}"),
        1.0
    );
    assert_eq!(
        value("vigil_decisions_total{rule=\"user_reported\",severity=\"high\"}"),
        1.0
    );
    assert_eq!(
        value("vigil_actions_total{outcome=\"succeeded\",type=\"okta.clear_sessions\"}"),
        1.0
    );
    assert_eq!(
        value("vigil_actions_total{outcome=\"succeeded\",type=\"okta.reset_password\"}"),
        1.0
    );
    assert!(value("vigil_policy_evaluation_seconds_count") >= 1.0);
    assert!(
        metrics.contains("vigil_build_info{policy_revision=\"sha256:"),
        "{metrics}"
    );
    promtool_check(&metrics);
    // Ready: both groups joined, the broker answers, a policy revision is loaded.
    let ready = client
        .get(format!("http://127.0.0.1:{http_port}/readyz"))
        .send()
        .unwrap();
    assert_eq!(ready.status(), 200);
    let ready: serde_json::Value = ready.json().unwrap();
    for stage in ["detect", "respond"] {
        assert_eq!(ready["stages"][stage]["group_joined"], true, "{ready}");
        assert_eq!(ready["stages"][stage]["broker"], "reachable", "{ready}");
    }
    assert!(
        ready["policy_revision"]
            .as_str()
            .unwrap()
            .starts_with("sha256:"),
        "{ready}"
    );
    // Lag per partition of both groups, published every few seconds: everything is consumed.
    let lag = |metrics: &str, topic: &str| -> Option<f64> {
        let series: Vec<f64> = metrics
            .lines()
            .filter(|l| {
                l.starts_with("vigil_consumer_lag_records{")
                    && l.contains(&format!("topic=\"{topic}\""))
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
            .collect();
        (series.len() == 8).then(|| series.iter().sum())
    };
    loop {
        let metrics = scrape();
        if lag(&metrics, "okta.events") == Some(0.0)
            && lag(&metrics, "vigil.decisions") == Some(0.0)
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no lag of 0 on every partition:\n{metrics}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(stage.terminate().success(), "a clean stop on SIGTERM");
    // JSON logs, one object per line; the first says the broker is the embedded one.
    let log = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(
        lines[0]["fields"]["message"]
            .as_str()
            .unwrap()
            .contains("embedded in-memory Kafka-protocol broker"),
        "{}",
        lines[0]
    );
    // The ids join event → decision → action → result across the stages' lines.
    let decision = lines
        .iter()
        .find(|l| l["fields"]["message"] == "decision" && l["fields"]["rule"] == "user_reported")
        .unwrap_or_else(|| panic!("no decision line: {log}"));
    assert_eq!(decision["fields"]["event"], "report-1");
    let decision_id = decision["fields"]["decision_id"].as_str().unwrap();
    for kind in ["okta.clear_sessions", "okta.reset_password"] {
        let done = lines
            .iter()
            .find(|l| l["fields"]["message"] == "action done" && l["fields"]["kind"] == kind)
            .unwrap_or_else(|| panic!("no result line for {kind}: {log}"));
        assert_eq!(done["fields"]["decision"], decision_id, "{done}");
        assert_eq!(done["fields"]["event"], "report-1", "{done}");
        assert_eq!(done["fields"]["status"], "succeeded", "{done}");
        assert!(done["fields"]["action"].as_str().unwrap().starts_with("a-"));
    }
    assert_eq!(fakes.violations(), Vec::<String>::new());
}

/// `promtool check metrics` (Prometheus' own linter: names, types, help, units) accepts the
/// exposition.
fn promtool_check(metrics: &str) {
    use std::io::Write;
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool (Debian package `prometheus`; scripts/test installs it)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(metrics.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool: {}{}\n{metrics}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
