//! `vigil tail` against a broker on a local TCP port (librdkafka's mock cluster): each of
//! the service's topics shown as readable lines, and a missing topic named with its
//! setting.

use std::process::{Command, Output};
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use vigil_testkit::MockBroker;

fn tail(config: &std::path::Path, brokers: &str, topic: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args([
            "tail",
            topic,
            "--from-beginning",
            "--exit-at-end",
            "--config",
        ])
        .arg(config)
        .env("VIGIL_KAFKA_BROKERS", brokers)
        .output()
        .expect("vigil runs")
}

fn event(id: &str, rule: &str, kind: &str, level: &str) -> String {
    serde_json::json!({"alert_id": id, "decision_id": "d1", "decision_events": 2,
        "patient_id": "TAIL-1", "location": "ward-7/bed-12", "rule": rule, "kind": kind,
        "level": level, "observed_at": "2026-11-23T10:00:00Z",
        "message": format!("{rule} message")})
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vigil_tail_shows_alerts_dead_letters_and_observations() {
    let broker = MockBroker::start(1).expect("mock broker");
    let brokers = broker.bootstrap_servers();
    for topic in ["t.observations", "t.alerts", "t.dlq"] {
        broker.create_topic(topic, 2).expect("topic");
    }
    let dir = std::env::temp_dir().join(format!("vigil-tail-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let config = dir.join("vigil.toml");
    std::fs::write(
        &config,
        "[kafka]\nbrokers = \"placeholder:1\"\nobservations_topic = \"t.observations\"\n\
         alerts_topic = \"t.alerts\"\ndlq_topic = \"t.dlq\"\n",
    )
    .expect("config written");
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .create()
        .expect("producer");
    let send = |topic: &'static str, payload: String, headers: Option<OwnedHeaders>| {
        let producer = producer.clone();
        async move {
            let mut record = FutureRecord::to(topic)
                .key("TAIL-1")
                .partition(1)
                .payload(&payload);
            if let Some(h) = headers {
                record = record.headers(h);
            }
            producer
                .send(record, Duration::from_secs(10))
                .await
                .expect("delivered");
        }
    };
    send("t.alerts", event("a", "qsofa", "raised", "urgent"), None).await;
    send("t.alerts", event("b", "news2", "raised", "emergency"), None).await;
    let headers = OwnedHeaders::new()
        .insert(Header {
            key: "vigil-error",
            value: Some("OBX[1]-11: result status \"X\" is not accepted"),
        })
        .insert(Header {
            key: "vigil-source-topic",
            value: Some("t.observations"),
        })
        .insert(Header {
            key: "vigil-source-partition",
            value: Some("1"),
        })
        .insert(Header {
            key: "vigil-source-offset",
            value: Some("7"),
        });
    send("t.dlq", "MSH|...".to_owned(), Some(headers)).await;
    send(
        "t.observations",
        r#"{"patient_id":"TAIL-1","code":"heart_rate","value":88,"effective":"2026-11-23T10:00:00Z"}"#
            .to_owned(),
        None,
    )
    .await;
    send(
        "t.observations",
        r#"{"patient_id":"TAIL-1","code":"heart_rate","value":88}"#.to_owned(),
        None,
    )
    .await;

    let out = tail(&config, &brokers, "alerts");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "2026-11-23 10:00:00 UTC EMERGENCY ward-7/bed-12  TAIL-1     NEWS2 raised: news2 message \
         | also: qSOFA raised urgent\n",
        "one line per decision, led by its highest level"
    );

    let out = tail(&config, &brokers, "dlq");
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.trim_end()
            .ends_with(" from t.observations[1]@7: OBX[1]-11: result status \"X\" is not accepted"),
        "{text}"
    );
    assert_eq!(text.lines().count(), 1);

    let out = tail(&config, &brokers, "observations");
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    let first: serde_json::Value = serde_json::from_str(lines[0]).expect("a native event");
    assert_eq!(first["code"], "heart_rate");
    assert_eq!(first["patient_id"], "TAIL-1");
    assert!(lines[1].starts_with("rejected: "), "{text}");
    assert!(
        lines[1].contains("effective"),
        "the reason names the field: {text}"
    );

    // A topic that does not exist is named with the setting that chose it.
    std::fs::write(
        &config,
        "[kafka]\nbrokers = \"placeholder:1\"\nalerts_topic = \"t.nowhere\"\n",
    )
    .expect("config written");
    let out = tail(&config, &brokers, "alerts");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("topic \"t.nowhere\" does not exist") && err.contains("kafka.alerts_topic"),
        "{err}"
    );
    // Issue 32: with no broker to reach it printed librdkafka's raw
    // BrokerTransportFailure; now it names the brokers and the setting.
    let free = vigil_testkit::free_port().expect("a port");
    let nobody = format!("127.0.0.1:{free}");
    let out = tail(&config, &nobody, "dlq");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("cannot reach the Kafka brokers {nobody}"))
            && err.contains("[kafka] brokers (VIGIL_KAFKA_BROKERS)"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Issue 32: every command that talks to Kafka names the brokers, and the setting or flag
/// that chose them, when none answers (the simulator waited out librdkafka's five-minute
/// message timeout).
#[test]
fn vigil_simulate_names_the_brokers_it_cannot_reach() {
    let free = vigil_testkit::free_port().expect("a port");
    let nobody = format!("127.0.0.1:{free}");
    let out = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(["simulate", "--brokers", &nobody, "--rounds", "1"])
        .output()
        .expect("vigil runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "cannot reach the Kafka brokers {nobody} (--brokers)"
        )),
        "{err}"
    );
}
