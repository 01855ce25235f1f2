//! `vigil run` as a user starts it: no brokers configured (the embedded broker), a hook secret,
//! connectors pointed at the vendor fakes. An Okta Event Hook delivery of a user's "report
//! suspicious activity" becomes Okta, Slack actions at the fakes, then SIGTERM stops it cleanly.
//! Live credentials on the embedded broker are refused unless accepted (`--volatile`); the
//! ledger and the overrides are reachable over the HTTP API (`vigil actions`, `vigil override`).

mod common;

use std::path::Path;
use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use common::fakes::Fakes;
use common::free_port;
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
    // Live credentials on the in-memory broker: accepted explicitly.
    let stage = Stage::start("run --volatile --log-format json", &config, &log);

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

/// `vigil ARGS` with `env` added, its stderr appended to `log`.
fn start_vigil(args: &[&str], env: &[(&str, &str)], log: &Path) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    common::vigil()
        .args(args)
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .expect("vigil starts")
}

/// Wait for `child` to exit within 60 s (killed and failed otherwise).
fn exit_of(child: &mut Child, log: &Path) -> ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!(
                "vigil did not exit: {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Wait until `log` has a line containing `needle` while `child` keeps running.
fn wait_for_line(child: &mut Child, log: &Path, needle: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if text.contains(needle) {
            return;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("vigil exited ({status}) before `{needle}`: {text}");
        }
        assert!(Instant::now() < deadline, "no `{needle}` in: {text}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// SIGTERM, then the exit status.
fn terminate(mut child: Child, log: &Path) -> ExitStatus {
    std::process::Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    exit_of(&mut child, log)
}

#[test]
fn vigil_run_without_brokers_refuses_live_credentials_unless_told_it_is_volatile() {
    let fakes = Fakes::start();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("vigil.toml");
    std::fs::write(
        &config,
        format!(
            "[http]\nlisten = \"\"\n[okta]\nbase_url = \"{}\"\n[ingest]\npoll_interval_ms = 200\n",
            fakes.okta_base()
        ),
    )
    .unwrap();
    let config = config.to_str().unwrap();
    let slack = ("VIGIL_SLACK_TOKEN", "xoxb-test-token");

    let log = dir.path().join("refused.log");
    let mut refused = start_vigil(&["run", "--config", config], &[slack], &log);
    let status = exit_of(&mut refused, &log);
    let message = std::fs::read_to_string(&log).unwrap();
    assert_eq!(status.code(), Some(2), "{message}");
    for needle in [
        "embedded in-memory broker",
        "slack",
        "ledger",
        "delayed actions",
        "cursor",
        "state",
        "--volatile",
        "respond.dry_run",
    ] {
        assert!(message.contains(needle), "`{needle}` missing: {message}");
    }
    assert!(!message.contains("xoxb-test-token"), "{message}");

    // Accepted by the flag, or by the configuration (here its environment override).
    for (name, args, env) in [
        (
            "flag",
            vec!["run", "--volatile", "--config", config],
            vec![slack],
        ),
        (
            "config",
            vec!["run", "--config", config],
            vec![slack, ("VIGIL_RUN__VOLATILE", "true")],
        ),
    ] {
        let log = dir.path().join(format!("{name}.log"));
        let mut run = start_vigil(&args, &env, &log);
        wait_for_line(&mut run, &log, "respond starting");
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(
            text.contains("live vendor actions accepted by --volatile or run.volatile: slack")
                && text.contains("a restart forgets the ledger"),
            "{name}: {text}"
        );
        assert!(terminate(run, &log).success(), "{name}");
    }

    // Polling the System Log with the Okta token while every action stays dry needs no flag.
    let log = dir.path().join("dry.log");
    let mut run = start_vigil(
        &["run", "--config", config],
        &[
            ("VIGIL_OKTA_TOKEN", "okta-test-token"),
            ("VIGIL_RESPOND__DRY_RUN", "true"),
            ("VIGIL_INGEST__POLL", "true"),
        ],
        &log,
    );
    wait_for_line(&mut run, &log, "respond starting");
    let deadline = Instant::now() + Duration::from_secs(60);
    while fakes.count("GET", "/okta/api/v1/logs") == 0 {
        assert!(
            Instant::now() < deadline,
            "the poller never read the System Log"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(terminate(run, &log).success());
    assert_eq!(fakes.violations(), Vec::<String>::new());
}

#[test]
fn the_ledger_and_overrides_of_a_running_vigil_run_are_reachable_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let (hook_port, http_port) = (free_port(), free_port());
    let file = |name: &str, value: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, value).unwrap();
        path.display().to_string()
    };
    let config = dir.path().join("vigil.toml");
    // No vendor credentials: the connectors run dry, so the embedded broker needs no flag.
    std::fs::write(
        &config,
        format!(
            r#"[ingest]
hook_listen = "127.0.0.1:{hook_port}"
hook_secret_file = "{hook}"
[http]
listen = "127.0.0.1:{http_port}"
token_file = "{token}"
[okta]
base_url = "https://acme.okta.com"
[slack]
channel = "C0SECURITY"
"#,
            hook = file("hook", "hook-secret"),
            token = file("api-token", "api-secret\n"),
        ),
    )
    .unwrap();
    let config = config.to_str().unwrap();
    let log = dir.path().join("run.log");
    let mut run = start_vigil(&["run", "--config", config], &[], &log);
    wait_for_line(&mut run, &log, "respond starting");

    let client = reqwest::blocking::Client::new();
    let actions_url = format!("http://127.0.0.1:{http_port}/v1/actions");
    let get = |query: &str, token: Option<&str>| {
        let mut request = client.get(format!("{actions_url}{query}"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().unwrap()
    };
    assert_eq!(get("?user=00uX", None).status(), 401);
    assert_eq!(get("?user=00uX", Some("api-secreT")).status(), 401);
    assert_eq!(get("", Some("api-secret")).status(), 400);
    assert_eq!(get("?user=00uX&action=a", Some("api-secret")).status(), 400);

    // An analyst spares one user through the running process (no brokers to reach otherwise).
    let vigil_cli = |args: &[&str]| {
        let out = common::vigil().args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", common::stderr(&out));
        common::stdout(&out)
    };
    let set = vigil_cli(&[
        "override",
        "set",
        "--config",
        config,
        "--user",
        "00uSPARED",
        "--for",
        "1h",
        "--reason",
        "pen test",
        "--by",
        "ana",
    ]);
    let set: Value = serde_json::from_str(set.trim()).unwrap();
    assert_eq!(set["scope"], "all");
    let api = format!("http://127.0.0.1:{http_port}");
    let listed = vigil_cli(&["override", "list", "--config", config, "--api", &api]);
    let listed: Value = serde_json::from_str(listed.trim()).unwrap();
    assert_eq!(listed, set);

    let reports: Vec<Value> = ["00uSPARED", "00uREPORTED"]
        .iter()
        .map(|user| {
            common::event(
                &format!("report-{user}"),
                &chrono::Utc::now().to_rfc3339(),
                "user.account.report_suspicious_activity_by_enduser",
                user,
                "SUCCESS",
            )
        })
        .collect();
    let envelope = json!({"eventType": "com.okta.event_hook", "eventTypeVersion": "1.0", "data": {"events": reports}});
    // The receiver runs on a thread of its own: it may still be starting.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let delivered = client
            .post(format!("http://127.0.0.1:{hook_port}/okta/event-hook"))
            .header("Authorization", "hook-secret")
            .json(&envelope)
            .send();
        match delivered {
            Ok(r) if r.status() == 200 => break,
            other => assert!(Instant::now() < deadline, "delivery not taken: {other:?}"),
        }
        std::thread::sleep(Duration::from_millis(200));
    }

    // Both users' actions, once every one is final and the answer stays the same for a second.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut previous = None;
    let (spared, reported, partitions) = loop {
        let answer = |user: &str| -> Value {
            get(&format!("?user={user}"), Some("api-secret"))
                .json()
                .unwrap()
        };
        let (spared, reported) = (answer("00uSPARED"), answer("00uREPORTED"));
        let list = |a: &Value| a["actions"].as_array().unwrap().clone();
        let done = |a: &[Value]| {
            !a.is_empty()
                && a.iter()
                    .all(|e| !matches!(e["status"].as_str(), Some("scheduled" | "started")))
        };
        let (s, r) = (list(&spared), list(&reported));
        if done(&s) && done(&r) && previous.as_ref() == Some(&(s.clone(), r.clone())) {
            break (s, r, reported["partitions"].clone());
        }
        previous = Some((s, r));
        assert!(
            Instant::now() < deadline,
            "actions not final: {spared} {reported}; log: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(1000));
    };
    assert_eq!(
        partitions,
        json!([0, 1, 2, 3, 4, 5, 6, 7]),
        "every partition is this instance's"
    );
    for e in &reported {
        assert_eq!(e["user_id"], "00uREPORTED");
        let expected = if e["type"] == "audit.record" {
            "succeeded"
        } else {
            "dry_run"
        };
        assert_eq!(e["status"], expected, "{e}");
    }
    assert!(
        reported.iter().any(|e| e["type"] == "okta.reset_password"),
        "{reported:?}"
    );
    for e in spared.iter().filter(|e| e["type"] != "audit.record") {
        assert_eq!(e["status"], "cancelled", "{e}");
        assert!(e["reason"].as_str().unwrap().contains("pen test"), "{e}");
    }

    // `vigil actions` prints the same records, by user, decision or action.
    let lines = |text: String| -> Vec<Value> {
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let by_user = lines(vigil_cli(&[
        "actions",
        "--config",
        config,
        "--user",
        "00uREPORTED",
    ]));
    assert_eq!(by_user, reported);
    let decision = reported[0]["decision_id"].as_str().unwrap();
    let by_decision = lines(vigil_cli(&[
        "actions",
        "--config",
        config,
        "--api",
        &api,
        "--decision",
        decision,
    ]));
    assert!(!by_decision.is_empty());
    assert!(by_decision.iter().all(|e| e["decision_id"] == decision));
    assert!(by_decision.iter().all(|e| reported.contains(e)));
    let action = reported[0]["action_id"].as_str().unwrap();
    let by_action = lines(vigil_cli(&[
        "actions", "--config", config, "--action", action,
    ]));
    assert_eq!(by_action, [reported[0].clone()]);
    // Without a query it is a usage error, not a dump of the ledger.
    let bare = common::vigil()
        .args(["actions", "--config", config])
        .output()
        .unwrap();
    assert!(!bare.status.success());

    let cleared = vigil_cli(&[
        "override",
        "clear",
        "--config",
        config,
        "--user",
        "00uSPARED",
        "--reason",
        "test over",
    ]);
    let cleared: Value = serde_json::from_str(cleared.trim()).unwrap();
    assert_eq!(cleared["until"], cleared["created_at"]);
    // A CLI without the token is refused by the API, with its message.
    let no_token = common::vigil()
        .args(["actions", "--api", &api, "--user", "00uREPORTED"])
        .output()
        .unwrap();
    assert!(!no_token.status.success());
    assert!(
        common::stderr(&no_token).contains("VIGIL_API_TOKEN"),
        "{}",
        common::stderr(&no_token)
    );
    assert!(terminate(run, &log).success());
}
