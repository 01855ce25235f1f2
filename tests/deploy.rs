//! The deployment files agree with each other and with the binary: the Grafana dashboard queries
//! only metrics Vigil exports, through the data source Grafana is provisioned with; the compose
//! file mounts files that exist where the programs look for them, Prometheus scrapes the service
//! and port Vigil listens on, the topics service creates every topic Vigil's compose
//! configuration names, and the image is built from files the build context holds. (Docker
//! cannot run here; these checks are what can be proven without it.)

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;
use serde_norway::Value as Yaml;
use vigil::config::Config;

/// A path in the repository.
fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// A repository file as text.
fn text(path: &str) -> String {
    std::fs::read_to_string(repo(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A repository YAML file, parsed.
fn yaml(path: &str) -> Yaml {
    serde_norway::from_str(&text(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The strings of a YAML list (a service's command, ports or volumes); empty when absent.
fn strings(list: &Yaml) -> Vec<&str> {
    list.as_sequence()
        .into_iter()
        .flatten()
        .map(|item| {
            item.as_str()
                .unwrap_or_else(|| panic!("not a string: {item:?}"))
        })
        .collect()
}

fn dashboard() -> Value {
    serde_json::from_str(&text("dashboards/vigil.json")).unwrap()
}

fn compose() -> Yaml {
    yaml("docker-compose.yml")
}

/// The uid of the data source Grafana is provisioned with.
fn provisioned_uid() -> String {
    let datasources = yaml("deploy/grafana/provisioning/datasources/prometheus.yml");
    datasources["datasources"][0]["uid"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// `deploy/vigil.toml` as Vigil reads it.
fn deploy_config() -> Config {
    // The file alone: the test's own environment (VIGIL_…__… variables) must not change it.
    Config::load_with_env(Some(&repo("deploy/vigil.toml")), Vec::new())
        .unwrap_or_else(|e| panic!("deploy/vigil.toml: {e}"))
}

/// Where `service` mounts the repository path `host` (`./host:target[:mode]`), if it does.
fn mount_target(service: &Yaml, host: &str) -> Option<String> {
    strings(&service["volumes"]).into_iter().find_map(|spec| {
        let mut parts = spec.split(':');
        (parts.next() == Some(format!("./{host}").as_str()))
            .then(|| parts.next().unwrap().to_owned())
    })
}

/// The value of `--flag VALUE` or `--flag=VALUE` in a service's command.
fn flag(service: &Yaml, name: &str) -> Option<String> {
    let command = strings(&service["command"]);
    command.iter().enumerate().find_map(|(i, arg)| {
        if *arg == name {
            command.get(i + 1).map(|v| v.to_string())
        } else {
            arg.strip_prefix(&format!("{name}=")).map(str::to_owned)
        }
    })
}

/// Every panel, including those nested in collapsed rows.
fn all_panels(panels: &Value) -> Vec<&Value> {
    let mut all = Vec::new();
    for panel in panels.as_array().unwrap() {
        all.push(panel);
        if let Some(nested) = panel.get("panels") {
            all.extend(all_panels(nested));
        }
    }
    all
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
    let uid = provisioned_uid();
    let dashboard = dashboard();
    let mut used = BTreeSet::new();
    let mut ids = BTreeSet::new();
    for panel in all_panels(&dashboard["panels"]) {
        let title = panel["title"].as_str().unwrap();
        // Grafana keys panel state (links, edits, repeats) by id.
        assert!(
            ids.insert(panel["id"].as_u64().unwrap()),
            "{title}: id reused"
        );
        if panel["type"] == "row" {
            continue;
        }
        assert_eq!(panel["datasource"]["uid"], uid.as_str(), "{title}");
        let targets = panel["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "{title} has no query");
        for target in targets {
            // A target without its own data source uses the panel's; one with it must agree.
            if let Some(own) = target.get("datasource") {
                assert_eq!(own["uid"], uid.as_str(), "{title}: {target}");
            }
            let expr = target["expr"].as_str().unwrap_or_default();
            assert!(!expr.trim().is_empty(), "{title}: empty query");
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
        "vigil_ingested_events_total",
        "vigil_policy_evaluation_seconds_bucket",
        "vigil_decisions_total",
        "vigil_actions_total",
        "vigil_action_duration_seconds_bucket",
        "vigil_consumer_lag_records",
        "vigil_pending_actions",
        "vigil_overrides_active",
        "vigil_circuit_open",
        "vigil_dead_lettered_total",
        "vigil_rule_errors_total",
        "vigil_action_retries_total",
        "vigil_rate_limit_waits_total",
        "vigil_policy_reloads_total",
        "vigil_state_users",
        "vigil_state_bytes",
        "vigil_build_info",
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
fn compose_mounts_existing_files_where_the_programs_read_them() {
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
    for (name, service) in services {
        for spec in strings(&service["volumes"]) {
            if let Some(rest) = spec.strip_prefix("./") {
                let host = rest.split(':').next().unwrap();
                assert!(repo(host).exists(), "{name:?} mounts missing {host}");
            } else {
                // Anything else must be a named volume the file declares.
                let volume = spec.split(':').next().unwrap();
                assert!(
                    compose["volumes"].get(volume).is_some(),
                    "{name:?} mounts undeclared volume {volume}"
                );
            }
        }
    }
    let service = |name: &str| &compose["services"][name];

    // Every Vigil command reads the configuration from where deploy/vigil.toml is mounted.
    for name in ["vigil-topics", "vigil", "vigil-rekey"] {
        let mounted = mount_target(service(name), "deploy/vigil.toml");
        assert!(mounted.is_some(), "{name} does not mount deploy/vigil.toml");
        assert_eq!(flag(service(name), "--config"), mounted, "{name}");
    }
    // Compose builds the image once (for vigil-topics); the others use it by name, which
    // compose resolves to that build rather than pulling.
    assert_eq!(service("vigil-topics")["build"], ".");
    assert!(repo("Dockerfile").exists());
    for name in ["vigil", "vigil-rekey"] {
        assert_eq!(service(name)["image"], service("vigil-topics")["image"]);
    }

    // Kafka keeps its log in the named volume, not in the image's /tmp default.
    let kafka = service("kafka");
    let log_dirs = kafka["environment"]["KAFKA_LOG_DIRS"].as_str().unwrap();
    assert!(
        strings(&kafka["volumes"])
            .iter()
            .any(|spec| spec.split(':').nth(1) == Some(log_dirs)),
        "KAFKA_LOG_DIRS={log_dirs} is not on a volume"
    );

    // Prometheus reads the mounted configuration.
    let prometheus = service("prometheus");
    let config_file = strings(&prometheus["command"])
        .into_iter()
        .find_map(|arg| arg.strip_prefix("--config.file="))
        .unwrap_or("/etc/prometheus/prometheus.yml");
    assert_eq!(
        mount_target(prometheus, "deploy/prometheus/prometheus.yml").as_deref(),
        Some(config_file)
    );

    // Grafana reads provisioning from its default directory (no GF_PATHS_PROVISIONING), loads
    // dashboards from where dashboards/ is mounted, and opens on Vigil's dashboard.
    let grafana = service("grafana");
    assert!(grafana["environment"]
        .get("GF_PATHS_PROVISIONING")
        .is_none());
    assert_eq!(
        mount_target(grafana, "deploy/grafana/provisioning").as_deref(),
        Some("/etc/grafana/provisioning")
    );
    let provider = yaml("deploy/grafana/provisioning/dashboards/vigil.yml");
    let path = provider["providers"][0]["options"]["path"]
        .as_str()
        .unwrap();
    assert_eq!(mount_target(grafana, "dashboards").as_deref(), Some(path));
    let home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
        .as_str()
        .unwrap();
    let file = home.strip_prefix(&format!("{path}/")).unwrap();
    assert!(repo(&format!("dashboards/{file}")).exists(), "{home}");
}

#[test]
fn prometheus_scrapes_vigil_where_it_listens_and_grafana_reads_that_prometheus() {
    let compose = compose();
    let config = deploy_config();

    // Kafka in KRaft mode, single node, with internal topics Vigil's transactions can use, and
    // Vigil connects to the address Kafka advertises.
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
    let brokers = config.kafka.bootstrap_servers.clone().unwrap();
    assert!(
        advertised.contains(&format!("://{brokers}")),
        "vigil connects to {brokers}, kafka advertises {advertised}"
    );
    let broker_host = brokers.split(':').next().unwrap();
    assert!(compose["services"].get(broker_host).is_some(), "{brokers}");

    // Prometheus scrapes the vigil service on the port Vigil listens on, which is reachable from
    // the other containers and published on the host.
    let (host, port) = config.http.listen.rsplit_once(':').unwrap();
    assert_eq!(host, "0.0.0.0", "reachable from the other containers");
    let prometheus = yaml("deploy/prometheus/prometheus.yml");
    let job = &prometheus["scrape_configs"][0];
    assert_eq!(
        strings(&job["static_configs"][0]["targets"]),
        [format!("vigil:{port}")]
    );
    assert!(compose["services"].get("vigil").is_some());
    assert_eq!(job["metrics_path"], "/metrics");
    let vigil = &compose["services"]["vigil"];
    let published = strings(&vigil["ports"]);
    assert!(
        published.contains(&format!("{port}:{port}").as_str()),
        "{published:?}"
    );
    let health = strings(&vigil["healthcheck"]["test"]).join(" ");
    assert!(health.contains(&format!(":{port}/readyz")), "{health}");

    // Grafana's data source is the compose Prometheus, on the port Prometheus publishes.
    let datasource = yaml("deploy/grafana/provisioning/datasources/prometheus.yml");
    assert_eq!(
        datasource["datasources"][0]["url"],
        "http://prometheus:9090"
    );
    assert!(strings(&compose["services"]["prometheus"]["ports"]).contains(&"9090:9090"));
}

#[test]
fn the_topics_service_creates_every_topic_the_compose_configuration_names() {
    let config = deploy_config();
    let compose = compose();
    // The topics service runs `vigil topics` on the file `vigil run` reads (checked above), so
    // it creates `topics::specs` of this configuration; Kafka does not create topics on first
    // use here, so a topic missing from the specs would stop the pipeline.
    let topics_service = &compose["services"]["vigil-topics"];
    assert_eq!(strings(&topics_service["command"])[0], "topics");
    assert_eq!(
        compose["services"]["kafka"]["environment"]["KAFKA_AUTO_CREATE_TOPICS_ENABLE"],
        "false"
    );
    let created: Vec<_> = vigil::topics::specs(&config, 6, 1);
    let created_names: BTreeSet<&str> = created.iter().map(|s| s.name.as_str()).collect();
    // Every topic name in the configuration, read from its Debug form so that a topic added to
    // the configuration later is covered without editing this test.
    let debug = format!("{:?}", config.topics);
    let named: BTreeSet<&str> = debug.split('"').skip(1).step_by(2).collect();
    assert!(named.len() >= 8, "{debug}");
    assert_eq!(created_names, named);
    // Keyed state is compacted: the latest record per key is what a restart reads back.
    for spec in &created {
        let compacted = [
            &config.topics.state,
            &config.topics.ledger,
            &config.topics.overrides,
            &config.topics.ingest_state,
        ]
        .contains(&&spec.name);
        assert_eq!(spec.compacted, compacted, "{}", spec.name);
    }
    // `vigil run` and the topics service start in order: Kafka healthy, topics, then Vigil.
    assert_eq!(
        topics_service["depends_on"]["kafka"]["condition"],
        "service_healthy"
    );
    for name in ["vigil", "vigil-rekey"] {
        assert_eq!(
            compose["services"][name]["depends_on"]["vigil-topics"]["condition"],
            "service_completed_successfully",
            "{name}"
        );
    }
    // The documented feed writes to the rekey service's input.
    let upstream = config
        .topics
        .upstream
        .clone()
        .expect("rekey needs topics.upstream");
    assert_eq!(
        strings(&compose["services"]["vigil-rekey"]["command"])[0],
        "rekey"
    );
    for doc in ["docker-compose.yml", "README.md"] {
        assert!(
            text(doc).contains(&format!("--topic {upstream}")),
            "{doc}: the documented feed does not write to {upstream}"
        );
    }
}

#[test]
fn the_image_is_built_from_files_the_build_context_holds() {
    let dockerfile = text("Dockerfile");
    let ignored: Vec<String> = text(".dockerignore")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.trim_end_matches('/').to_owned())
        .collect();
    // The build context stays small: build output and history are not sent to the daemon.
    for heavy in ["target", ".git"] {
        assert!(ignored.iter().any(|i| i == heavy), "{heavy} not ignored");
    }
    let mut copied = BTreeSet::new();
    for line in dockerfile.lines().map(str::trim) {
        let Some(args) = line.strip_prefix("COPY ") else {
            continue;
        };
        if args.contains("--from=") {
            continue;
        }
        let args: Vec<&str> = args.split_whitespace().collect();
        for source in &args[..args.len() - 1] {
            assert!(repo(source).exists(), "COPY {source}: missing");
            assert!(
                !ignored.iter().any(|i| source.starts_with(i.as_str())),
                "COPY {source}: excluded by .dockerignore"
            );
            copied.insert(source.trim_end_matches('/').to_owned());
        }
    }
    // What `cargo build` reads: the manifest and lock (--locked), the build script, the sources,
    // the bench target the manifest declares, and the policy pack built into the binary.
    for needed in [
        "Cargo.toml",
        "Cargo.lock",
        "build.rs",
        "src",
        "benches",
        "policies",
    ] {
        assert!(copied.contains(needed), "the image build lacks {needed}");
    }
    assert!(dockerfile.contains("cargo build --release --locked"));
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
