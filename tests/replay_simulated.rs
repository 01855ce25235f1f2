//! `vigil replay` on simulator output, through the real binary: no decisions on benign traffic,
//! the exact decisions for each attack scenario, byte-identical output across runs and framings,
//! and input documents that reproduce the decisions.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::{run, stderr, stdout};
use serde_json::Value;
use vigil::simulate::{generate, write_events, Attack, OutputFormat, SimConfig};

fn simulate(
    dir: &Path,
    users: usize,
    days: u32,
    attacks: &[Attack],
    format: OutputFormat,
) -> (std::path::PathBuf, vigil::simulate::Simulation) {
    let config = SimConfig {
        users,
        days,
        start: chrono::NaiveDate::from_ymd_opt(2026, 3, 2).unwrap(),
        seed: 11,
        attacks: attacks.to_vec(),
    };
    let simulation = generate(&config);
    let path = dir.join(format!("events-{}.txt", simulation.events.len()));
    let mut file = std::fs::File::create(&path).unwrap();
    write_events(&simulation.events, format, config.seed, &mut file).unwrap();
    (path, simulation)
}

fn replay(path: &Path, extra: &[&str]) -> (Vec<Value>, String, String) {
    let mut args = vec!["replay", "--events", path.to_str().unwrap()];
    args.extend_from_slice(extra);
    let out = run(&args);
    let err = stderr(&out);
    assert!(out.status.success(), "replay failed: {err}");
    let text = stdout(&out);
    let decisions = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (decisions, text, err)
}

/// `(login, rule) → count` of the decisions.
fn tally(decisions: &[Value]) -> BTreeMap<(String, String), usize> {
    let mut counts = BTreeMap::new();
    for d in decisions {
        let login = d["user"]["login"].as_str().unwrap_or("-").to_owned();
        *counts
            .entry((login, d["rule"].as_str().unwrap().to_owned()))
            .or_default() += 1;
    }
    counts
}

#[test]
fn a_benign_working_day_of_1000_users_yields_no_decision() {
    let dir = tempfile::tempdir().unwrap();
    let (path, simulation) = simulate(dir.path(), 1000, 1, &[], OutputFormat::Ndjson);
    let (decisions, _, err) = replay(&path, &[]);
    assert!(decisions.is_empty(), "{decisions:#?}");
    assert!(
        err.contains(&format!("replay: {} events", simulation.events.len())),
        "{err}"
    );
    assert!(err.contains("0 bad records, 0 rule errors"), "{err}");
}

#[test]
fn benign_traffic_past_the_learning_period_yields_no_decision() {
    // 15 days: baselines (14 days) and hour profiles have learnt, so the "new …" and
    // "unusual hours" rules are live — and must stay quiet for users doing what they always do.
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = simulate(dir.path(), 120, 15, &[], OutputFormat::Ndjson);
    let (decisions, _, err) = replay(&path, &[]);
    assert!(
        decisions.is_empty(),
        "{}",
        tally(&decisions)
            .keys()
            .map(|k| format!("{k:?}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(err.contains("0 rule errors"), "{err}");
}

/// Each attack, alone, on 60 users with 15 days of history: exactly these decisions.
#[test]
fn each_attack_yields_exactly_its_decisions() {
    let dir = tempfile::tempdir().unwrap();
    let expected: &[(Attack, &[(&str, usize)])] = &[
        // Four failures in six minutes from a proxy flagged by Okta: the sign-in attempt is
        // risky (first failure), the third failure is brute force; the risk score crosses
        // notify (30) and then step-up (50).
        (
            Attack::CredentialStuffing,
            &[("risky_network", 1), ("failed_signins", 1), ("response", 2)],
        ),
        // Push bombing, then a sign-in from Romania: fatigue, the new country/ASN/device, the
        // trip there, and a response that climbs to a delayed suspend.
        (
            Attack::MfaFatigue,
            &[
                ("mfa_push_fatigue", 1),
                ("risky_network", 1),
                ("new_country", 1),
                ("new_asn", 1),
                ("new_device", 1),
                ("impossible_travel", 1),
                ("response", 2),
            ],
        ),
        // A stolen session used from Lagos 40 minutes after a sign-in at home.
        (
            Attack::SessionTheft,
            &[
                ("risky_network", 1),
                ("new_country", 1),
                ("new_asn", 1),
                ("new_device", 1),
                ("impossible_travel", 1),
                ("response", 1),
            ],
        ),
        (
            Attack::UserReported,
            &[("user_reported", 1), ("response", 1)],
        ),
        // A compromised admin: every backdoor step is its own finding.
        (
            Attack::AdminBackdoor,
            &[
                ("admin_privilege_granted", 1),
                ("api_token_created", 1),
                ("support_impersonation", 1),
                ("security_weakened", 3),
                ("new_idp", 1),
                ("mfa_factor_reset", 1),
                ("response", 3),
            ],
        ),
    ];
    for (attack, rules) in expected {
        let (path, simulation) = simulate(dir.path(), 60, 15, &[*attack], OutputFormat::Ndjson);
        let (decisions, _, err) = replay(&path, &[]);
        assert!(err.contains("0 rule errors"), "{attack:?}: {err}");
        let injected = &simulation.injected[0];
        let attack_events: std::collections::BTreeSet<&str> = injected
            .event_uuids
            .iter()
            .chain(&injected.related_uuids)
            .map(String::as_str)
            .collect();
        let (on_attack, after): (Vec<Value>, Vec<Value>) = decisions
            .iter()
            .cloned()
            .partition(|d| attack_events.contains(d["event"]["uuid"].as_str().unwrap()));
        let mut got = tally(&on_attack);
        let on_target: BTreeMap<&str, usize> = got
            .iter()
            .filter(|((login, _), _)| *login == injected.user_login)
            .map(|((_, rule), n)| (rule.as_str(), *n))
            .collect();
        let want: BTreeMap<&str, usize> = rules.iter().copied().collect();
        assert_eq!(on_target, want, "{attack:?} on {}", injected.user_login);
        got.retain(|(login, _), _| *login != injected.user_login);
        if *attack == Attack::CredentialStuffing {
            // Each of the 20 sprayed users: one risky attempt flagged by Okta, and a notify.
            assert_eq!(got.len(), 40, "{got:?}");
            assert!(
                got.iter().all(
                    |((_, rule), n)| *n == 1 && (rule == "risky_network" || rule == "response")
                ),
                "{got:?}"
            );
        } else {
            assert!(
                got.is_empty(),
                "{attack:?}: decisions about bystanders: {got:?}"
            );
        }
        // After a foreign sign-in, the victim's next sign-in at home is itself an impossible
        // trip back (when the simulated day has one); nothing else may follow the attack.
        for d in &after {
            assert_eq!(
                d["user"]["login"].as_str(),
                Some(injected.user_login.as_str()),
                "{d}"
            );
            assert_eq!(
                d["rule"], "impossible_travel",
                "{attack:?}: unexpected decision after the attack: {d}"
            );
            assert!(
                matches!(attack, Attack::MfaFatigue | Attack::SessionTheft),
                "{d}"
            );
        }
        // Every decision of the attack points at one of the attack's events or its user.
        for d in &decisions {
            assert_eq!(d["schema"], 1);
            assert!(d["decision_id"].as_str().unwrap().starts_with("d-"));
            assert!(d["policy_revision"]
                .as_str()
                .unwrap()
                .starts_with("sha256:"));
            for a in d["actions"].as_array().unwrap() {
                assert!(a["action_id"].as_str().unwrap().starts_with("a-"));
            }
        }
    }
}

#[test]
fn replay_is_byte_identical_across_runs_and_framings() {
    let dir = tempfile::tempdir().unwrap();
    let (ndjson, _) = simulate(dir.path(), 40, 2, &Attack::ALL, OutputFormat::Ndjson);
    let (first, first_text, _) = replay(&ndjson, &[]);
    assert!(first.len() > 10, "the attacks produce decisions");
    let (_, second_text, _) = replay(&ndjson, &[]);
    assert_eq!(first_text, second_text);
    let hook_dir = tempfile::tempdir().unwrap();
    let (hook, _) = simulate(hook_dir.path(), 40, 2, &Attack::ALL, OutputFormat::Hook);
    let (_, hook_text, _) = replay(&hook, &[]);
    assert_eq!(
        first_text, hook_text,
        "Event Hook envelopes give the same decisions"
    );
    let page_dir = tempfile::tempdir().unwrap();
    let (page, _) = simulate(page_dir.path(), 40, 2, &Attack::ALL, OutputFormat::Array);
    let (_, page_text, _) = replay(&page, &[]);
    assert_eq!(
        first_text, page_text,
        "a System Log page gives the same decisions"
    );
    // Standard input works too.
    let out = common::vigil()
        .args(["replay", "--events", "-"])
        .stdin(std::fs::File::open(&ndjson).unwrap())
        .output()
        .unwrap();
    assert_eq!(String::from_utf8(out.stdout).unwrap(), first_text);
}

#[test]
fn the_recorded_inputs_reproduce_every_decision() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = simulate(dir.path(), 40, 2, &Attack::ALL, OutputFormat::Ndjson);
    let inputs = dir.path().join("inputs.jsonl");
    let (decisions, _, err) = replay(&path, &["--inputs-out", inputs.to_str().unwrap()]);
    let evaluated: usize = err
        .split("events (")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("summary has the evaluated count");
    let text = std::fs::read_to_string(&inputs).unwrap();
    assert_eq!(text.lines().count(), evaluated);
    // Evaluate the entrypoint on each recorded input, independently of replay's state and
    // dispatch: the findings are exactly the decisions replay emitted for that event.
    let mut policy =
        vigil::policy::Policy::load(&vigil::policy::PolicySource::Embedded, Default::default())
            .unwrap();
    let mut reproduced = Vec::new();
    for line in text.lines() {
        let input: Value = serde_json::from_str(line).unwrap();
        let uuid = input["event"]["uuid"].as_str().unwrap().to_owned();
        let evaluation = policy.evaluate_exhaustive(regorus::Value::from(input));
        assert!(evaluation.errors.is_empty(), "{:?}", evaluation.errors);
        let mut rules: Vec<String> = evaluation.findings.into_iter().map(|f| f.rule).collect();
        rules.sort();
        reproduced.extend(rules.into_iter().map(|r| (uuid.clone(), r)));
    }
    let mut emitted: Vec<(String, String)> = decisions
        .iter()
        .map(|d| {
            (
                d["event"]["uuid"].as_str().unwrap().to_owned(),
                d["rule"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    emitted.sort();
    reproduced.sort();
    assert_eq!(emitted, reproduced);
}

#[test]
fn every_event_delivered_twice_decides_exactly_as_once() {
    // Okta retries an Event Hook delivery it did not see acknowledged, the hook and the poller may
    // both deliver an event, a poller re-reads a page after a restart: the same event arrives
    // twice, re-serialized, some way after the original. Counting it twice would double the risk
    // score and a new decision (a new id) could ask for a lockout.
    use rand::{Rng, SeedableRng};
    let dir = tempfile::tempdir().unwrap();
    let (path, simulation) = simulate(dir.path(), 60, 14, &Attack::ALL, OutputFormat::Ndjson);
    let (once, once_text, once_err) = replay(&path, &[]);
    let rules: std::collections::BTreeSet<&str> =
        once.iter().map(|d| d["rule"].as_str().unwrap()).collect();
    assert!(
        rules.contains("user_reported") && rules.contains("admin_privilege_granted"),
        "the fortnight has the attacks whose repeat once suspended a user: {rules:?}"
    );

    let text = std::fs::read_to_string(&path).unwrap();
    let seed: u64 = rand::rng().random();
    eprintln!("placement seed {seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut placed: Vec<(usize, u8, String)> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        placed.push((i, 0, line.to_owned()));
        // The copy, re-serialized (another key order and spacing), up to 300 lines later.
        let copy: Value = serde_json::from_str(line).unwrap();
        placed.push((i + rng.random_range(1..=300), 1, copy.to_string()));
    }
    placed.sort_by_key(|(at, copy, _)| (*at, *copy));
    let twice = dir.path().join("twice.ndjson");
    let doubled: Vec<String> = placed.into_iter().map(|(_, _, line)| line).collect();
    std::fs::write(&twice, doubled.join("\n") + "\n").unwrap();

    let (_, twice_text, twice_err) = replay(&twice, &[]);
    assert!(
        twice_text == once_text,
        "decisions differ with every event delivered twice (seed {seed}):\nonce:\n{once_text}\ntwice:\n{twice_text}"
    );
    let events = simulation.events.len();
    let evaluated = |err: &str| {
        let (_, rest) = err.split_once(" events (").unwrap();
        rest.split_once(" evaluated").unwrap().0.to_owned()
    };
    assert!(
        once_err.contains(&format!("replay: {events} events ("))
            && once_err.contains(", 0 repeats ignored)"),
        "{once_err}"
    );
    assert!(
        twice_err.contains(&format!(
            "replay: {} events ({} evaluated, {events} repeats ignored)",
            2 * events,
            evaluated(&once_err)
        )),
        "each copy is counted as a repeat and evaluated nowhere: {twice_err}"
    );
}
