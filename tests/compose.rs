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
        "vigil",
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
        .trim_start_matches("PLAINTEXT://")
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
