//! The deployment files agree with each other and with the binary: the Grafana dashboard queries
//! only metrics Vigil exports, through the data source Grafana is provisioned with; the compose
//! file mounts files that exist, Prometheus scrapes the service and port Vigil listens on, and
//! Vigil's compose configuration loads and points at the compose broker. (Docker cannot run
//! here; these checks are what can be proven without it.)

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;
use serde_norway::Value as Yaml;
use vigil::config::Config;

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn yaml(path: &str) -> Yaml {
    let text = std::fs::read_to_string(repo(path)).unwrap();
    serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The strings of a YAML list (a service's ports or volumes).
fn strings(list: &Yaml) -> Vec<&str> {
    list.as_sequence()
        .unwrap()
        .iter()
        .filter_map(Yaml::as_str)
        .collect()
}

fn dashboard() -> Value {
    serde_json::from_slice(&std::fs::read(repo("dashboards/vigil.json")).unwrap()).unwrap()
}

fn compose() -> Yaml {
    yaml("docker-compose.yml")
}

fn deploy_config() -> Config {
    // The file alone: the test's own environment must not change what it says.
    Config::load_with_env(Some(&repo("deploy/vigil.toml")), Vec::new()).unwrap()
}

/// Every `vigil_…` identifier in a PromQL expression.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let bytes = expr.as_bytes();
    let mut i = 0;
    while let Some(found) = expr[i..].find("vigil_") {
        let start = i + found;
        let boundary =
            start == 0 || !(bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_');
        let end = expr[start..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .map_or(expr.len(), |n| start + n);
        if boundary {
            names.insert(expr[start..end].to_owned());
        }
        i = end;
    }
    names
}

#[test]
fn the_dashboard_queries_only_exported_metrics_through_the_provisioned_data_source() {
    let exported: BTreeSet<String> = vigil::metrics::metrics()
        .series_names()
        .into_iter()
        .collect();
    let datasources = yaml("deploy/grafana/provisioning/datasources/prometheus.yml");
    let uid = datasources["datasources"][0]["uid"]
        .as_str()
        .unwrap()
        .to_owned();
    let dashboard = dashboard();
    let panels = dashboard["panels"].as_array().unwrap();
    let mut used = BTreeSet::new();
    for panel in panels {
        let title = panel["title"].as_str().unwrap();
        assert_eq!(panel["datasource"]["uid"], uid.as_str(), "{title}");
        let targets = panel["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "{title} has no query");
        for target in targets {
            let expr = target["expr"].as_str().unwrap();
            let names = metric_names(expr);
            assert!(!names.is_empty(), "{title}: `{expr}` reads no Vigil metric");
            for name in names {
                assert!(
                    exported.contains(&name),
                    "{title}: {name} is not exported ({expr})"
                );
                used.insert(name);
            }
        }
    }
    // What the issue asks the dashboard to show.
    for wanted in [
        "vigil_events_total",
        "vigil_policy_evaluation_seconds_bucket",
        "vigil_decisions_total",
        "vigil_actions_total",
        "vigil_action_duration_seconds_bucket",
        "vigil_consumer_lag_records",
        "vigil_pending_actions",
        "vigil_dead_lettered_total",
        "vigil_rule_errors_total",
    ] {
        assert!(used.contains(wanted), "no panel shows {wanted}");
    }
}

#[test]
fn the_metric_name_scanner_finds_names_and_only_names() {
    assert_eq!(
        metric_names(
            "sum by (le) (rate(vigil_a_bucket{x=\"vigil_no\"}[5m])) / my_vigil_b + vigil_c"
        ),
        ["vigil_a_bucket", "vigil_c", "vigil_no"]
            .map(str::to_owned)
            .into(),
        "a label value that looks like a name is reported too: better a false alarm than a miss"
    );
}

#[test]
fn compose_wires_kafka_vigil_prometheus_and_grafana_together() {
    let compose = compose();
    let services = compose["services"].as_mapping().unwrap();
    for name in [
        "kafka",
        "vigil-topics",
        "vigil",
        "vigil-rekey",
        "prometheus",
        "grafana",
    ] {
        assert!(services.contains_key(name), "no service {name}");
    }
    // Every file or directory mounted from the repository exists.
    for (name, service) in services {
        for volume in service["volumes"].as_sequence().into_iter().flatten() {
            let spec = volume.as_str().unwrap();
            if let Some(rest) = spec.strip_prefix("./") {
                let host = rest.split(':').next().unwrap();
                assert!(repo(host).exists(), "{name:?} mounts missing {host}");
            }
        }
    }
    // Kafka in KRaft mode, single node, with internal topics Vigil's transactions can use.
    let kafka = &compose["services"]["kafka"]["environment"];
    assert_eq!(kafka["KAFKA_PROCESS_ROLES"], "broker,controller");
    for key in [
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR",
    ] {
        assert_eq!(kafka[key].as_u64(), Some(1), "{key}");
    }
    let advertised = kafka["KAFKA_ADVERTISED_LISTENERS"].as_str().unwrap();
    let config = deploy_config();
    let brokers = config.kafka.bootstrap_servers.clone().unwrap();
    assert!(
        advertised.contains(&format!("://{brokers}")),
        "vigil connects to {brokers}, kafka advertises {advertised}"
    );

    // Prometheus scrapes the vigil service on the port Vigil listens on, and Vigil publishes it.
    let port = config.http.listen.rsplit(':').next().unwrap().to_owned();
    assert!(
        config.http.listen.starts_with("0.0.0.0:"),
        "reachable from the other containers"
    );
    let prometheus = yaml("deploy/prometheus/prometheus.yml");
    let targets = &prometheus["scrape_configs"][0]["static_configs"][0]["targets"];
    assert_eq!(targets[0].as_str().unwrap(), format!("vigil:{port}"));
    assert_eq!(prometheus["scrape_configs"][0]["metrics_path"], "/metrics");
    let published = strings(&compose["services"]["vigil"]["ports"]);
    assert!(
        published.contains(&format!("{port}:{port}").as_str()),
        "{published:?}"
    );
    assert!(compose["services"]["prometheus"]["volumes"][0]
        .as_str()
        .unwrap()
        .starts_with("./deploy/prometheus/prometheus.yml:"));

    // Grafana loads the dashboards from where the repository's dashboards/ is mounted, and the
    // data source it is provisioned with is the compose Prometheus.
    let provider = yaml("deploy/grafana/provisioning/dashboards/vigil.yml");
    let path = provider["providers"][0]["options"]["path"]
        .as_str()
        .unwrap();
    let grafana_volumes = strings(&compose["services"]["grafana"]["volumes"]);
    assert!(
        grafana_volumes.contains(&format!("./dashboards:{path}:ro").as_str()),
        "{grafana_volumes:?}"
    );
    let datasource = yaml("deploy/grafana/provisioning/datasources/prometheus.yml");
    assert_eq!(
        datasource["datasources"][0]["url"],
        "http://prometheus:9090"
    );
}

#[test]
fn the_compose_configuration_names_the_topics_its_services_use() {
    let config = deploy_config();
    // `vigil topics` creates what the configuration names, including the rekey service's input.
    let created: Vec<String> = vigil::topics::specs(&config, 6, 1)
        .into_iter()
        .map(|s| s.name)
        .collect();
    let upstream = config
        .topics
        .upstream
        .clone()
        .expect("rekey needs topics.upstream");
    assert!(created.contains(&upstream));
    let compose = compose();
    let usage = std::fs::read_to_string(repo("docker-compose.yml")).unwrap();
    assert!(
        usage.contains(&format!("--topic {upstream}")),
        "the documented feed writes to {upstream}"
    );
    assert_eq!(
        compose["services"]["vigil-rekey"]["command"][0].as_str(),
        Some("rekey")
    );
}

#[test]
fn promtool_accepts_the_prometheus_configuration() {
    let out = std::process::Command::new("promtool")
        .args(["check", "config", "--syntax-only"])
        .arg(repo("deploy/prometheus/prometheus.yml"))
        .output()
        .expect("promtool (Debian package `prometheus`; scripts/test installs it)");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
