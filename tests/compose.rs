//! No Docker engine runs here, so `docker-compose.yml` is checked by reading it: service
//! names, ports, topics and config paths must agree with the code's defaults.

use std::collections::BTreeMap;

use serde_yaml::Value;
use vigil_stream::Config;

use crate::util::repo_file;

fn read_yaml(rel: &str) -> Value {
    let text = std::fs::read_to_string(repo_file(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn strings(v: &Value) -> Vec<String> {
    v.as_sequence().map_or_else(Vec::new, |s| {
        s.iter()
            .filter_map(|x| x.as_str().map(str::to_owned))
            .collect()
    })
}

fn env(service: &Value) -> BTreeMap<String, String> {
    service["environment"]
        .as_mapping()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.as_str()?.to_owned(), v.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn docker_compose_wiring_matches_the_code() {
    let compose = read_yaml("docker-compose.yml");
    let services = &compose["services"];
    for name in [
        "kafka",
        "topics",
        "keys",
        "vigil",
        "board",
        "simulate",
        "prometheus",
        "grafana",
    ] {
        assert!(services[name].is_mapping(), "service {name} missing");
    }
    let defaults = Config::default();

    // Kafka advertises the address Vigil and the simulator are given.
    let kafka_env = env(&services["kafka"]);
    let advertised = kafka_env["KAFKA_ADVERTISED_LISTENERS"]
        .trim_start_matches("CLIENTS://")
        .to_owned();
    assert_eq!(advertised, "kafka:9092");
    let vigil = &services["vigil"];
    let vigil_env = env(vigil);
    assert_eq!(vigil_env["VIGIL_KAFKA_BROKERS"], advertised);
    let simulate = strings(&services["simulate"]["command"]);
    assert_eq!(simulate[0], "simulate");
    let arg = |name: &str| {
        simulate
            .iter()
            .position(|a| a == name)
            .map(|i| simulate[i + 1].clone())
    };
    assert_eq!(arg("--brokers").as_deref(), Some(advertised.as_str()));
    let simulator_options: BTreeMap<String, String> = simulate
        .windows(2)
        .filter(|w| w[0] == "--kafka-option")
        .filter_map(|w| {
            w[1].split_once('=')
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
        })
        .collect();
    assert_eq!(
        arg("--topic"),
        Some(defaults.kafka.observations_topic.clone())
    );

    // The topics created are the code's default topics.
    let create = strings(&services["topics"]["command"]).join(" ");
    for topic in [
        &defaults.kafka.observations_topic,
        &defaults.kafka.alerts_topic,
        &defaults.kafka.dlq_topic,
    ] {
        assert!(
            create.contains(&format!("{topic}:")),
            "topic {topic} not created: {create}"
        );
    }

    assert!(
        create.contains(&format!("{}:", defaults.board.actions_topic)),
        "the board's action topic not created: {create}"
    );

    // The board: the same broker and config file, its users from the environment (the
    // config with them parses, validates, and they can sign in), its port published.
    let board = &services["board"];
    let board_env = env(board);
    assert_eq!(board_env["VIGIL_KAFKA_BROKERS"], advertised);
    let board_command = strings(&board["command"]);
    assert_eq!(board_command[..2], ["board", "--config"]);
    assert_eq!(
        strings(&board["volumes"]),
        strings(&services["vigil"]["volumes"])
    );
    // Compose turns "$$" into "$".
    let board_env: BTreeMap<String, String> = board_env
        .into_iter()
        .map(|(k, v)| (k, v.replace("$$", "$")))
        .collect();
    let board_settings = Config::parse(
        &std::fs::read_to_string(repo_file("config/vigil.toml")).unwrap(),
        board_env.clone(),
    )
    .expect("the board's overrides parse")
    .validate()
    .expect("and validate");
    let users = vigil_web::auth::Users::new(
        board_settings
            .board
            .users
            .iter()
            .map(|(name, role, hash)| vigil_web::auth::User {
                name: name.clone(),
                role: *role,
                password_hash: hash.clone(),
            })
            .collect(),
    )
    .expect("users");
    assert!(
        users.verify("nurse", "nurse").is_some(),
        "the documented sign-in"
    );
    assert!(
        users.verify("charge", "charge").is_some(),
        "the documented sign-in"
    );
    let board_port = defaults.board.listen.rsplit(':').next().unwrap().to_owned();
    assert_eq!(
        board_env["VIGIL_BOARD_LISTEN"],
        format!("0.0.0.0:{board_port}")
    );
    assert!(strings(&board["ports"]).contains(&format!("{board_port}:{board_port}")));

    // Every client signs in as its own principal, with the password the broker knows, and
    // the ACLs give each only its topics: only the board writes the action topic.
    let jaas = kafka_env["KAFKA_LISTENER_NAME_CLIENTS_PLAIN_SASL_JAAS_CONFIG"].clone();
    assert_eq!(kafka_env["KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND"], "false");
    assert!(kafka_env["KAFKA_AUTHORIZER_CLASS_NAME"].ends_with("StandardAuthorizer"));
    let client = |settings: &vigil_stream::Settings| -> (String, String) {
        let l = &settings.kafka.librdkafka;
        assert_eq!(l["security.protocol"], "SASL_PLAINTEXT");
        (l["sasl.username"].clone(), l["sasl.password"].clone())
    };
    let service_settings = Config::parse(
        &std::fs::read_to_string(repo_file("config/vigil.toml")).unwrap(),
        env(vigil),
    )
    .expect("the service's overrides parse")
    .validate()
    .expect("and validate");
    let principals = [
        ("vigil", client(&service_settings)),
        ("board", client(&board_settings)),
        (
            "feeds",
            (
                simulator_options["sasl.username"].clone(),
                simulator_options["sasl.password"].clone(),
            ),
        ),
    ];
    for (principal, (user, password)) in &principals {
        assert_eq!(principal, user);
        assert!(
            jaas.contains(&format!("user_{user}=\"{password}\"")),
            "{user} unknown to the broker: {jaas}"
        );
    }
    let acls: Vec<String> = create
        .split("&&")
        .filter(|c| c.contains("$acl "))
        .map(|c| c.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    let granted = |principal: &str, operation: &str, topic: &str| {
        acls.iter().any(|a| {
            a.contains(&format!("--allow-principal User:{principal} "))
                && a.contains(&format!("--operation {operation} "))
                && a.ends_with(&format!("--topic {topic}"))
        })
    };
    let actions = &defaults.board.actions_topic;
    assert!(granted("board", "Write", actions), "{acls:#?}");
    assert!(granted("vigil", "Read", actions), "{acls:#?}");
    for p in ["vigil", "feeds"] {
        assert!(!granted(p, "Write", actions), "{p} may write {actions}");
    }
    assert!(granted(
        "feeds",
        "Write",
        &defaults.kafka.observations_topic
    ));
    assert!(!granted("feeds", "Read", &defaults.kafka.alerts_topic));
    for topic in [&defaults.kafka.alerts_topic, &defaults.kafka.dlq_topic] {
        assert!(granted("vigil", "Write", topic), "{topic}");
        assert!(!granted("board", "Write", topic), "{topic}");
    }

    // The service and the board share the action key the keys service makes.
    let keys = &services["keys"];
    let key_path = service_settings
        .board
        .action_key_file
        .clone()
        .expect("the service checks actions");
    assert_eq!(
        board_settings.board.action_key_file.as_ref(),
        Some(&key_path)
    );
    let key_volume = strings(&keys["volumes"])[0]
        .split(':')
        .next()
        .unwrap()
        .to_owned();
    for service in [vigil, board] {
        let dir = key_path.parent().unwrap().display().to_string();
        assert!(
            strings(&service["volumes"]).contains(&format!("{key_volume}:{dir}:ro")),
            "the key volume mounted read-only at {dir}"
        );
    }
    assert!(
        strings(&keys["command"])
            .join(" ")
            .contains("vigil action-key > /keys/")
    );

    // The state changelog Vigil is pointed at is created compacted and co-partitioned
    // with the observations topic.
    let state = &vigil_env["VIGIL_KAFKA_STATE_TOPIC"];
    let observations_partitions = create
        .split_whitespace()
        .find_map(|t| t.strip_prefix(&format!("{}:", defaults.kafka.observations_topic)))
        .expect("observations topic created")
        .to_owned();
    assert!(
        create.contains(&format!("--topic {state} --partitions {observations_partitions} --replication-factor 1 --config cleanup.policy=compact")),
        "{create}"
    );

    // Vigil runs with the shipped config file, mounted where the command reads it.
    let command = strings(&vigil["command"]);
    assert_eq!(command[..2], ["run", "--config"]);
    let mounted = strings(&vigil["volumes"]);
    let mount = mounted
        .iter()
        .find(|v| v.split(':').nth(1) == Some(command[2].as_str()))
        .unwrap_or_else(|| panic!("{} not mounted: {mounted:?}", command[2]));
    let host_path = mount.split(':').next().unwrap().trim_start_matches("./");
    assert!(repo_file(host_path).is_file(), "{host_path} missing");
    let shipped = std::fs::read_to_string(repo_file(host_path)).unwrap();
    Config::parse(&shipped, vigil_env.clone())
        .expect("config with the compose overrides parses")
        .validate()
        .expect("and validates");

    // The HTTP port: the default port, listened on all interfaces inside the container,
    // published, and scraped by Prometheus.
    let port = defaults.http.listen.rsplit(':').next().unwrap().to_owned();
    assert_eq!(vigil_env["VIGIL_HTTP_LISTEN"], format!("0.0.0.0:{port}"));
    assert!(strings(&vigil["ports"]).contains(&format!("{port}:{port}")));
    let prometheus = read_yaml("config/prometheus.yml");
    let job = &prometheus["scrape_configs"][0];
    assert_eq!(job["metrics_path"].as_str(), Some("/metrics"));
    assert_eq!(
        strings(&job["static_configs"][0]["targets"]),
        [format!("vigil:{port}")]
    );
    let prom_mount = strings(&services["prometheus"]["volumes"]).join(" ");
    assert!(
        prom_mount.contains("./config/prometheus.yml:/etc/prometheus/prometheus.yml"),
        "{prom_mount}"
    );
    let grafana = read_yaml("config/grafana/datasources.yml");
    assert_eq!(
        grafana["datasources"][0]["url"].as_str(),
        Some("http://prometheus:9090")
    );
}

/// Every series the service and `vigil mllp` export, with the labels each carries (the
/// label vectors given one value each, so that they are rendered).
fn exported_series() -> BTreeMap<String, std::collections::BTreeSet<String>> {
    let m = vigil_stream::Metrics::new();
    m.alerts
        .with_label_values(&["news2", "raised", "urgent", "live"])
        .inc();
    m.dead_letters.with_label_values(&["unit"]).inc();
    m.actions_refused.with_label_values(&["unsigned"]).inc();
    m.ignored.with_label_values(&["loinc"]).inc();
    m.absent.with_label_values(&["not-performed"]).inc();
    m.set_committed_offset(0, 1);
    m.consumer_lag.with_label_values(&["0"]).set(0);
    let mut drift = vigil_stream::drift::Drift::default();
    drift.wards.entry("ward-7".into()).or_default().patients = 1;
    m.drift.set(
        &drift,
        vigil_score::ParamSet::of(&[vigil_score::Param::Lactate]),
        true,
    );
    let text = m.render()
        + &vigil_stream::mllp::MllpMetrics::new().render()
        + &vigil_web::counters::Counters::default().render();
    let mut series: BTreeMap<String, std::collections::BTreeSet<String>> = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let name_end = line.find(['{', ' ']).expect("a sample line");
        let labels = series.entry(line[..name_end].to_owned()).or_default();
        if let Some(rest) = line[name_end..].strip_prefix('{') {
            for pair in rest.split('}').next().unwrap_or("").split(',') {
                if let Some((label, _)) = pair.split_once('=') {
                    labels.insert(label.to_owned());
                }
            }
        }
    }
    series
}

/// The metric names and grouping labels a PromQL expression uses.
#[derive(Default)]
struct Uses {
    metrics: Vec<String>,
    grouped_by: Vec<String>,
}

impl promql_parser::util::ExprVisitor for Uses {
    type Error = String;

    fn pre_visit(&mut self, e: &promql_parser::parser::Expr) -> Result<bool, String> {
        use promql_parser::parser::{Expr, LabelModifier};
        match e {
            Expr::VectorSelector(v) => self.metrics.extend(v.name.clone()),
            Expr::MatrixSelector(m) => self.metrics.extend(m.vs.name.clone()),
            Expr::Aggregate(a) => {
                if let Some(LabelModifier::Include(labels)) = &a.modifier {
                    self.grouped_by.extend(labels.labels.iter().cloned());
                }
            }
            _ => {}
        }
        Ok(true)
    }
}

/// The Grafana dashboard quality staff and operators open: provisioned by the compose
/// file; every query valid PromQL over metrics Vigil exports, grouped only by labels those
/// metrics carry; and every exported metric shown on some panel.
#[test]
fn the_grafana_dashboard_queries_what_vigil_exports() {
    // Provisioned: the provider's path is where compose mounts the dashboards folder.
    let compose = read_yaml("docker-compose.yml");
    let mounts = strings(&compose["services"]["grafana"]["volumes"]);
    let provider = read_yaml("config/grafana/dashboards.yml");
    let path = provider["providers"][0]["options"]["path"]
        .as_str()
        .expect("a provider path");
    assert!(
        mounts.contains(&format!("./config/grafana/dashboards:{path}:ro")),
        "{mounts:?}"
    );
    assert!(
        mounts.contains(
            &"./config/grafana/dashboards.yml:/etc/grafana/provisioning/dashboards/vigil.yml:ro"
                .to_owned()
        ),
        "{mounts:?}"
    );
    let datasource = read_yaml("config/grafana/datasources.yml");
    let uid = datasource["datasources"][0]["uid"]
        .as_str()
        .expect("a datasource uid");

    let text = std::fs::read_to_string(repo_file("config/grafana/dashboards/vigil.json"))
        .expect("the dashboard");
    let dashboard: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    let exported = exported_series();
    let mut shown = std::collections::BTreeSet::new();
    let panels = dashboard["panels"].as_array().expect("panels");
    let mut queries = 0;
    for panel in panels.iter().filter(|p| p["type"] != "row") {
        let title = panel["title"].as_str().expect("a title");
        assert!(
            panel["description"].as_str().is_some_and(|d| d.len() > 20),
            "{title}: say what it shows"
        );
        assert_eq!(panel["datasource"]["uid"], uid, "{title}");
        for target in panel["targets"].as_array().expect("targets") {
            let expr = target["expr"].as_str().expect("an expression");
            // Grafana substitutes its interval variable before Prometheus sees the query.
            let query = expr.replace("$__rate_interval", "5m");
            let ast = promql_parser::parser::parse(&query)
                .unwrap_or_else(|e| panic!("{title}: {expr}: {e}"));
            let mut uses = Uses::default();
            promql_parser::util::walk_expr(&mut uses, &ast).expect("walks");
            assert!(!uses.metrics.is_empty(), "{title}: {expr}");
            for name in &uses.metrics {
                let labels = exported
                    .get(name)
                    .unwrap_or_else(|| panic!("{title}: {name} is not exported"));
                for label in &uses.grouped_by {
                    assert!(
                        labels.contains(label)
                            || uses
                                .metrics
                                .iter()
                                .any(|m| exported.get(m).is_some_and(|l| l.contains(label))),
                        "{title}: grouped by {label}, which {name} does not carry"
                    );
                }
                shown.insert(
                    ["_bucket", "_sum", "_count"]
                        .iter()
                        .find_map(|s| name.strip_suffix(s))
                        .unwrap_or(name)
                        .to_owned(),
                );
            }
            queries += 1;
        }
    }
    assert!(queries >= 15, "{queries} queries");
    let missing: Vec<&String> = exported
        .keys()
        .filter(|name| {
            let base = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s))
                .unwrap_or(name);
            !shown.contains(base)
        })
        .collect();
    assert!(missing.is_empty(), "not on the dashboard: {missing:?}");
}

/// REFERENCE.md lists every metric the service and `vigil mllp` export, and no other.
#[test]
fn the_reference_lists_every_exported_metric() {
    let reference = std::fs::read_to_string(repo_file("REFERENCE.md")).expect("REFERENCE.md");
    let section = reference
        .split("\n## Metrics\n")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("a Metrics section");
    let listed: std::collections::BTreeSet<String> = section
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|t| t.starts_with("vigil_") && t.len() > "vigil_".len())
        .map(|t| t.split('{').next().unwrap_or(t).to_owned())
        .collect();
    let exported: std::collections::BTreeSet<String> = exported_series()
        .keys()
        .map(|name| {
            ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s))
                .unwrap_or(name)
                .to_owned()
        })
        .collect();
    assert_eq!(listed, exported);
}
