//! The service through the Kafka wire protocol, against librdkafka's mock cluster
//! (an in-process broker on local TCP ports; see TESTING.md for why this tier uses it).
//! Every test uses its own topics and consumer groups.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use vigil_stream::Config;
use vigil_testkit::{MockBroker, eventually, http_get};

#[path = "service/semantics.rs"]
mod semantics;

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A broker with fresh topics for one test.
struct Harness {
    broker: MockBroker,
    config: Config,
}

impl Harness {
    fn new(partitions: i32) -> Harness {
        let broker = MockBroker::start(1).expect("mock broker starts");
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let mut config = Config::default();
        config.kafka.brokers = broker.bootstrap_servers();
        config.kafka.group_id = format!("vigil-test-{n}");
        config.kafka.observations_topic = format!("obs-{n}");
        config.kafka.alerts_topic = format!("alerts-{n}");
        config.kafka.dlq_topic = format!("dlq-{n}");
        config.http.listen = "127.0.0.1:0".into();
        config.service.batch_max_wait_ms = 5;
        // Every rule alerting at once: these tests are about how the service publishes
        // decisions, so each set of readings should decide something.
        config.alerts = vigil_stream::config::Alerts::every_rule();
        // The mock cluster does not store offsets sent in a transaction, so these tests run
        // the at-least-once mode; exactly-once is tested against tansu (vigil faults).
        config.kafka.delivery = "at-least-once".into();
        config.kafka.state_topic = String::new();
        broker
            .create_topic(&config.kafka.observations_topic, partitions)
            .expect("topic");
        broker
            .create_topic(&config.kafka.alerts_topic, 1)
            .expect("topic");
        broker
            .create_topic(&config.kafka.dlq_topic, 1)
            .expect("topic");
        Harness { broker, config }
    }

    /// Starts one service instance.
    fn start(&self) -> (CancellationToken, JoinHandle<()>) {
        let settings = self.config.clone().validate().expect("valid settings");
        let stop = CancellationToken::new();
        let token = stop.clone();
        let task = tokio::spawn(async move {
            vigil_stream::run(settings, token)
                .await
                .expect("service runs cleanly");
        });
        (stop, task)
    }

    async fn send(&self, messages: &[(Option<&str>, String)]) {
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", &self.config.kafka.brokers)
            .create()
            .expect("producer");
        // All enqueued at once, then every acknowledgement awaited: a burst, as a gateway
        // sends a vital-sign set, and not one message per round trip (whose pauses, longer
        // than a batch's wait, split a set across decisions depending on the machine's load).
        let mut deliveries = Vec::with_capacity(messages.len());
        for (key, payload) in messages {
            let mut record =
                FutureRecord::to(&self.config.kafka.observations_topic).payload(payload);
            if let Some(k) = key {
                record = record.key(*k);
            }
            deliveries.push(
                producer
                    .send_result(record)
                    .map_err(|(e, _)| e)
                    .expect("enqueued"),
            );
        }
        for d in deliveries {
            d.await
                .expect("not cancelled")
                .map_err(|(e, _)| e)
                .expect("delivered");
        }
    }

    /// A harness whose service keeps patient state in a changelog of `partitions`
    /// partitions, under `delivery`, with its HTTP port (for /metrics).
    fn with_changelog(partitions: i32, delivery: &str) -> (Harness, u16) {
        let mut h = Harness::new(partitions);
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        h.config.kafka.delivery = delivery.into();
        h.config.kafka.transactional_id = format!("txn-{n}");
        h.config.kafka.state_topic = format!("state-{n}");
        h.broker
            .create_topic(&h.config.kafka.state_topic, partitions)
            .expect("topic");
        let port = free_port();
        h.config.http.listen = format!("127.0.0.1:{port}");
        (h, port)
    }

    /// Starts an instance, sends `messages`, waits until a batch is committed (`what`
    /// names it in the failure), and stops it.
    async fn process_and_stop(
        &self,
        port: u16,
        messages: Vec<(Option<String>, String)>,
        what: &str,
    ) {
        let (stop, task) = self.start();
        send_all(self, messages).await;
        let committed = eventually(Duration::from_secs(30), || {
            gauge(&http_get(port, "/metrics").1, "vigil_commits_total ") > 0
        })
        .await;
        assert!(committed, "{what}");
        stop.cancel();
        task.await.expect("service stops");
    }

    fn reader(&self, topic: &str) -> StreamConsumer {
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let c: StreamConsumer = ClientConfig::new()
            .set("bootstrap.servers", &self.config.kafka.brokers)
            .set("group.id", format!("reader-{n}"))
            .set("auto.offset.reset", "earliest")
            .create()
            .expect("consumer");
        c.subscribe(&[topic]).expect("subscribe");
        c
    }
}

/// Reads `consumer` until `done` holds for what was read, or `limit` passes. The limit
/// only bounds a failing test; a passing one returns as soon as the condition holds.
async fn read_until(
    consumer: &StreamConsumer,
    limit: Duration,
    done: impl Fn(&[(Value, HashMap<String, String>)]) -> bool,
) -> Vec<(Value, HashMap<String, String>)> {
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + limit;
    while !done(&seen) {
        let Ok(m) = tokio::time::timeout_at(deadline, consumer.recv()).await else {
            break;
        };
        let m = m.expect("message");
        let payload = m.payload().unwrap_or_default();
        let value = serde_json::from_slice(payload)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(payload).into()));
        let mut headers = HashMap::new();
        if let Some(h) = m.headers() {
            for header in h.iter() {
                headers.insert(
                    header.key.to_owned(),
                    String::from_utf8_lossy(header.value.unwrap_or_default()).into_owned(),
                );
            }
        }
        seen.push((value, headers));
    }
    seen
}

fn vitals(patient: &str, minute: u32, rr: u32, sbp: u32, hr: u32) -> Vec<(Option<String>, String)> {
    let t = format!("2026-11-23T{:02}:{:02}:00Z", 8 + minute / 60, minute % 60);
    [
        ("resp_rate", json!(rr)),
        ("sbp", json!(sbp)),
        ("heart_rate", json!(hr)),
        ("spo2", json!(97)),
        ("on_oxygen", json!(false)),
        ("consciousness", json!("A")),
        ("temperature", json!(37.0)),
    ]
    .into_iter()
    .map(|(code, value)| {
        let event = json!({"patient_id": patient, "location": "ward-7/bed-1", "code": code, "value": value,
                           "effective": t, "id": format!("{patient}-{code}-{minute}")});
        (Some(patient.to_owned()), event.to_string())
    })
    .collect()
}

fn keyed(v: Vec<(Option<String>, String)>) -> Vec<(Option<String>, String)> {
    v
}

/// One reading of `patient` at 10:`minute` on 2026-11-23, keyed by patient.
fn reading(patient: &str, code: &str, value: Value, minute: u32) -> (Option<String>, String) {
    let event = json!({"patient_id": patient, "code": code, "value": value,
        "effective": format!("2026-11-23T10:{minute:02}:00Z"), "id": format!("{patient}-{code}-{minute}")});
    (Some(patient.to_owned()), event.to_string())
}

async fn send_all(h: &Harness, messages: Vec<(Option<String>, String)>) {
    let borrowed: Vec<(Option<&str>, String)> = messages
        .iter()
        .map(|(k, p)| (k.as_deref(), p.clone()))
        .collect();
    h.send(&borrowed).await;
}

fn alerts_of<'a>(
    seen: &'a [(Value, HashMap<String, String>)],
    patient: &str,
    rule: &str,
) -> Vec<&'a Value> {
    seen.iter()
        .map(|(v, _)| v)
        .filter(|v| v["patient_id"] == patient && v["rule"] == rule)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deterioration_raises_escalates_and_resolves_while_stable_patients_stay_quiet() {
    let h = Harness::new(4);
    let (stop, task) = h.start();
    let mut feed = Vec::new();
    for (minute, (rr, sbp, hr)) in [(16, 130, 80), (25, 95, 80), (26, 92, 135), (16, 130, 80)]
        .into_iter()
        .enumerate()
    {
        feed.extend(keyed(vitals("SICK-1", minute as u32 * 30, rr, sbp, hr)));
        feed.extend(keyed(vitals("WELL-1", minute as u32 * 30, 16, 128, 76)));
    }
    send_all(&h, feed).await;
    let alerts = h.reader(&h.config.kafka.alerts_topic);
    let seen = read_until(&alerts, Duration::from_secs(60), |seen| {
        alerts_of(seen, "SICK-1", "news2")
            .iter()
            .any(|a| a["kind"] == "resolved")
    })
    .await;
    let news2 = alerts_of(&seen, "SICK-1", "news2");
    let kinds: Vec<(&str, &str)> = news2
        .iter()
        .map(|a| (a["kind"].as_str().unwrap(), a["level"].as_str().unwrap()))
        .collect();
    // RR 25 with SBP 95 in one set: raised once, at its level (NEWS2 5, urgent).
    assert_eq!(kinds.first(), Some(&("raised", "urgent")), "{kinds:?}");
    assert!(kinds.contains(&("escalated", "emergency")), "{kinds:?}");
    assert_eq!(kinds.last(), Some(&("resolved", "emergency")), "{kinds:?}");
    assert_eq!(
        kinds.iter().filter(|k| k.0 == "raised").count(),
        1,
        "never re-raised while active: {kinds:?}"
    );
    let qsofa = alerts_of(&seen, "SICK-1", "qsofa");
    assert!(
        qsofa
            .iter()
            .any(|a| a["kind"] == "raised" && a["level"] == "urgent"),
        "{qsofa:?}"
    );
    assert!(
        seen.iter().all(|(v, _)| v["patient_id"] != "WELL-1"),
        "stable patient alerted: {seen:?}"
    );
    // The contract's fields.
    let emergency = news2.iter().find(|a| a["level"] == "emergency").unwrap();
    assert_eq!(emergency["location"], "ward-7/bed-1");
    assert_eq!(
        emergency["disclaimer"],
        "Decision support only; not a diagnosis."
    );
    assert_eq!(emergency["alert_id"].as_str().unwrap().len(), 32);
    assert!(
        emergency["message"].as_str().unwrap().starts_with("NEWS2 "),
        "{emergency}"
    );
    let hr = emergency["criteria"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["code"] == "heart_rate")
        .unwrap();
    assert_eq!(
        (
            hr["value"].clone(),
            hr["unit"].clone(),
            hr["points"].clone()
        ),
        (json!(135), json!("/min"), json!(3))
    );
    let ids: HashSet<_> = seen
        .iter()
        .map(|(v, _)| v["alert_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), seen.len(), "alert ids are unique");
    stop.cancel();
    task.await.expect("service stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_messages_go_to_the_dead_letter_topic_and_good_ones_keep_flowing() {
    let h = Harness::new(2);
    let (stop, task) = h.start();
    let bad: Vec<(Option<String>, String)> = vec![
        (Some("P9".into()), "{not json".into()),
        (Some("P9".into()), r#"{"patient_id":"P9","code":"8302-3","value":172,"effective":"2026-11-23T08:00:00Z"}"#.into()),
        (Some("P9".into()), r#"{"patient_id":"P9","code":"temperature","value":37,"unit":"degC","effective":"2026-11-23T08:00:00Z"}"#.into()),
        (Some("P9".into()), r#"{"patient_id":"P9","code":"heart_rate","value":400,"effective":"2026-11-23T08:00:00Z"}"#.into()),
        (Some("OTHER".into()), r#"{"patient_id":"P9","code":"heart_rate","value":80,"effective":"2026-11-23T08:00:00Z"}"#.into()),
    ];
    // Body height (LOINC 8302-2) is a valid code Vigil does not score: ignored, not
    // dead-lettered; 8302-3 above has a wrong check digit and is an error.
    let ignored = r#"{"patient_id":"P9","code":"8302-2","value":172,"unit":"cm","effective":"2026-11-23T08:00:00Z"}"#;
    let mut feed = vec![(Some("P9".to_owned()), ignored.to_owned())];
    feed.extend(bad.clone());
    feed.extend(vitals("P9", 0, 27, 88, 130));
    send_all(&h, feed).await;
    let dlq = h.reader(&h.config.kafka.dlq_topic);
    let dead = read_until(&dlq, Duration::from_secs(60), |seen| {
        seen.len() >= bad.len()
    })
    .await;
    assert_eq!(dead.len(), bad.len());
    assert!(
        !dead.iter().any(|(payload, _)| payload["code"] == "8302-2"),
        "an unscored code is not dead-lettered: {dead:?}"
    );
    // Partitions interleave in the dead-letter topic: match each rejection to its input.
    let expected = [
        "invalid observation JSON",
        "field `code`: \"8302-3\" is not a known parameter",
        "field `unit`: \"degC\" cannot be converted for temperature",
        "field `value`: heart_rate 400 /min is outside the possible range 1-350 /min",
        "field `key`: \"OTHER\" is not valid",
    ];
    for (i, (input_key, original)) in bad.iter().enumerate() {
        let found = dead.iter().find(|(payload, _)| {
            let text = match payload {
                Value::String(s) => s.clone(),
                v => v.to_string(),
            };
            &text == original
                || serde_json::from_str::<Value>(original).ok()
                    == serde_json::from_str::<Value>(&text).ok()
        });
        let (_, headers) =
            found.unwrap_or_else(|| panic!("input {i} not in the dead-letter topic: {dead:?}"));
        assert!(
            headers["vigil-error"].starts_with(expected[i]),
            "{i}: {headers:?}"
        );
        assert_eq!(
            headers["vigil-source-topic"],
            h.config.kafka.observations_topic
        );
        assert!(headers["vigil-source-partition"].parse::<i32>().is_ok());
        assert!(headers["vigil-source-offset"].parse::<i64>().is_ok());
        assert!(input_key.is_some());
    }
    let alerts = h.reader(&h.config.kafka.alerts_topic);
    let seen = read_until(&alerts, Duration::from_secs(60), |seen| {
        !alerts_of(seen, "P9", "news2").is_empty()
    })
    .await;
    assert!(
        !alerts_of(&seen, "P9", "news2").is_empty(),
        "good messages still scored"
    );
    stop.cancel();
    task.await.expect("service stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_reject_unscored_codes_an_unscored_code_is_dead_lettered() {
    let mut h = Harness::new(1);
    h.config.input.reject_unscored_codes = true;
    let (stop, task) = h.start();
    let height = r#"{"patient_id":"P8","code":"8302-2","value":172,"unit":"cm","effective":"2026-11-23T08:00:00Z"}"#;
    send_all(&h, vec![(Some("P8".to_owned()), height.to_owned())]).await;
    let dlq = h.reader(&h.config.kafka.dlq_topic);
    let dead = read_until(&dlq, Duration::from_secs(60), |s| !s.is_empty()).await;
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert!(
        dead[0].1["vigil-error"].starts_with("code: \"8302-2\" is a valid LOINC code"),
        "{dead:?}"
    );
    stop.cancel();
    task.await.expect("service stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_after_a_clean_shutdown_does_not_realert() {
    let h = Harness::new(2);
    let (stop, task) = h.start();
    send_all(&h, vitals("R1", 0, 27, 88, 130)).await;
    let alerts = h.reader(&h.config.kafka.alerts_topic);
    let first = read_until(&alerts, Duration::from_secs(60), |s| {
        !alerts_of(s, "R1", "news2").is_empty()
    })
    .await;
    // Let the batch's commit land, then stop cleanly.
    stop.cancel();
    task.await.expect("service stops");
    let before = first.len();
    let restarted_at = vigil_stream::event::now();
    let (stop, task) = h.start();
    // A new, unrelated patient proves the restarted instance is consuming.
    send_all(&h, vitals("R2", 0, 27, 88, 130)).await;
    let after = read_until(&alerts, Duration::from_secs(60), |s| {
        !alerts_of(s, "R2", "news2").is_empty()
    })
    .await;
    // Alerts of R1 still unread from the first run may follow; none may be new.
    for (v, _) in after.iter().filter(|(v, _)| v["patient_id"] == "R1") {
        let emitted =
            vigil_score::Timestamp::parse_rfc3339(v["emitted_at"].as_str().unwrap()).unwrap();
        assert!(emitted < restarted_at, "R1 re-alerted after restart: {v}");
    }
    assert!(before > 0);
    stop.cancel();
    task.await.expect("service stops");
}

/// A free local port (bound and released; the service binds it again right away).
fn free_port() -> u16 {
    vigil_testkit::free_port().expect("a free port")
}

fn gauge(metrics: &str, name: &str) -> i64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
        .unwrap_or(-1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_split_the_partitions_and_do_not_double_alert() {
    let mut h = Harness::new(4);
    let ports = [free_port(), free_port()];
    let mut running = Vec::new();
    for port in ports {
        h.config.http.listen = format!("127.0.0.1:{port}");
        running.push(h.start());
    }
    let split = eventually(Duration::from_secs(30), || {
        let counts: Vec<i64> = ports
            .iter()
            .map(|p| gauge(&http_get(*p, "/metrics").1, "vigil_assigned_partitions "))
            .collect();
        counts.iter().all(|c| *c > 0) && counts.iter().sum::<i64>() == 4
    })
    .await;
    assert!(split, "both instances own partitions");
    for port in ports {
        assert_eq!(http_get(port, "/readyz").0, 200);
        assert_eq!(http_get(port, "/healthz").0, 200);
    }
    let patients: Vec<String> = (0..12).map(|i| format!("TWO-{i}")).collect();
    let mut feed = Vec::new();
    for p in &patients {
        feed.extend(vitals(p, 0, 16, 130, 80));
        feed.extend(vitals(p, 30, 27, 88, 135));
    }
    send_all(&h, feed).await;
    let alerts = h.reader(&h.config.kafka.alerts_topic);
    let seen = read_until(&alerts, Duration::from_secs(60), |seen| {
        patients.iter().all(|p| {
            alerts_of(seen, p, "news2")
                .iter()
                .any(|a| a["level"] == "emergency")
        })
    })
    .await;
    let mut decisions = HashSet::new();
    for (v, _) in &seen {
        let key = (
            v["patient_id"].to_string(),
            v["rule"].to_string(),
            v["kind"].to_string(),
            v["level"].to_string(),
        );
        assert!(
            decisions.insert(key.clone()),
            "decision alerted twice: {key:?}"
        );
    }
    for p in &patients {
        assert!(
            alerts_of(&seen, p, "news2")
                .iter()
                .any(|a| a["level"] == "emergency"),
            "{p} not alerted"
        );
    }
    for (stop, task) in running {
        stop.cancel();
        task.await.expect("service stops");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_broker_going_down_and_up_loses_no_observation_and_duplicates_no_decision() {
    let mut h = Harness::new(2);
    let port = free_port();
    h.config.http.listen = format!("127.0.0.1:{port}");
    let (stop, task) = h.start();
    let patients: Vec<String> = (0..6).map(|i| format!("DOWN-{i}")).collect();
    let mut first = Vec::new();
    let mut second = Vec::new();
    for p in &patients {
        first.extend(vitals(p, 0, 16, 130, 80));
        second.extend(vitals(p, 30, 27, 88, 135));
        second.extend(vitals(p, 60, 16, 130, 80));
    }
    let total = (first.len() + second.len()) as i64;
    send_all(&h, first).await;
    // The broker is unavailable for two seconds while the second half is being sent.
    h.broker.broker_down(1).expect("broker down");
    let sender = {
        let brokers = h.config.kafka.brokers.clone();
        let topic = h.config.kafka.observations_topic.clone();
        tokio::spawn(async move {
            let producer: FutureProducer = ClientConfig::new()
                .set("bootstrap.servers", &brokers)
                .set("message.timeout.ms", "60000")
                .create()
                .expect("producer");
            for (key, payload) in second {
                let record = FutureRecord::to(&topic)
                    .key(key.as_deref().unwrap_or_default())
                    .payload(&payload);
                producer
                    .send(record, Duration::from_secs(60))
                    .await
                    .expect("delivered after recovery");
            }
        })
    };
    // The outage is reported (the log says it once; /readyz says why it is not ready).
    assert!(
        eventually(Duration::from_secs(20), || {
            http_get(port, "/readyz").1
                == "not ready: Kafka brokers unreachable (the log names them and since when)\n"
        })
        .await,
        "readyz during the outage: {:?}",
        http_get(port, "/readyz")
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    h.broker.broker_up(1).expect("broker up");
    sender.await.expect("sender");
    assert!(
        eventually(Duration::from_secs(30), || http_get(port, "/readyz").0
            == 200)
        .await,
        "ready again once the broker answers: {:?}",
        http_get(port, "/readyz")
    );
    let alerts = h.reader(&h.config.kafka.alerts_topic);
    let seen = read_until(&alerts, Duration::from_secs(90), |seen| {
        patients.iter().all(|p| {
            alerts_of(seen, p, "news2")
                .iter()
                .any(|a| a["kind"] == "resolved")
        })
    })
    .await;
    // Redelivery may repeat a message; a repeated alert id carries the same decision, and
    // no decision appears under two ids.
    let mut by_id: HashMap<String, Value> = HashMap::new();
    let mut decisions = HashSet::new();
    for (v, _) in &seen {
        let id = v["alert_id"].as_str().unwrap().to_owned();
        let mut without_time = v.clone();
        without_time["emitted_at"] = Value::Null;
        if let Some(previous) = by_id.get(&id) {
            assert_eq!(previous, &without_time, "one id, two payloads");
            continue;
        }
        by_id.insert(id, without_time);
        let key = (
            v["patient_id"].to_string(),
            v["rule"].to_string(),
            v["kind"].to_string(),
            v["level"].to_string(),
            v["observed_at"].to_string(),
        );
        assert!(
            decisions.insert(key.clone()),
            "decision under two ids: {key:?}"
        );
    }
    for p in &patients {
        let kinds: Vec<_> = alerts_of(&seen, p, "news2")
            .iter()
            .map(|a| a["kind"].clone())
            .collect();
        assert!(
            kinds.contains(&json!("raised")) && kinds.contains(&json!("resolved")),
            "{p}: {kinds:?}"
        );
    }
    // Every observation was consumed and counted.
    let counted = eventually(Duration::from_secs(30), || {
        let m = http_get(port, "/metrics").1;
        ["accepted", "duplicate"]
            .iter()
            .map(|o| gauge(&m, &format!("vigil_observations_total{{outcome=\"{o}\"}} ")))
            .sum::<i64>()
            >= total
    })
    .await;
    assert!(
        counted,
        "observations lost: {}",
        http_get(port, "/metrics").1
    );
    stop.cancel();
    task.await.expect("service stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_are_also_published_as_fhir_resources_referencing_their_observations() {
    let mut h = Harness::new(2);
    let n = NEXT.fetch_add(1, Ordering::SeqCst);
    h.config.alerts.fhir_topic = format!("fhir-{n}");
    h.broker
        .create_topic(&h.config.alerts.fhir_topic, 1)
        .expect("topic");
    let (stop, task) = h.start();
    send_all(&h, vitals("F1", 0, 27, 88, 135)).await;
    let fhir = h.reader(&h.config.alerts.fhir_topic);
    let seen = read_until(&fhir, Duration::from_secs(60), |seen| {
        seen.iter().any(|(v, _)| v["severity"] == "high")
    })
    .await;
    let issue = &seen
        .iter()
        .find(|(v, _)| v["severity"] == "high")
        .expect("an emergency DetectedIssue")
        .0;
    assert_eq!(issue["resourceType"], "DetectedIssue");
    // A native feed names its patients and readings by ids no FHIR server gave:
    // references by identifier (issue 29, item 2), each with a display of the reading.
    assert_eq!(
        issue["patient"],
        json!({"type": "Patient", "identifier": {"value": "F1"}})
    );
    let refs: Vec<&str> = issue["evidence"][0]["detail"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["identifier"]["value"].as_str())
        .collect();
    assert!(refs.contains(&"F1-resp_rate-0"), "{issue}");
    assert!(refs.contains(&"F1-heart_rate-0"), "{issue}");
    stop.cancel();
    task.await.expect("service stops");
}

/// A FHIR feed: the patient named by an identifier with a system keeps it in the alert's
/// FHIR resource (it was `Patient/<value>`, the system lost), and the observations that
/// fired are the server's `Observation/<id>` (issue 29, item 2).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fhir_alerts_name_the_patient_as_the_fhir_feed_did() {
    let mut h = Harness::new(1);
    h.config.kafka.format = "fhir".into();
    let n = NEXT.fetch_add(1, Ordering::SeqCst);
    h.config.alerts.fhir_topic = format!("fhir-{n}");
    h.config.alerts.fhir_resource = "RiskAssessment".into();
    h.broker
        .create_topic(&h.config.alerts.fhir_topic, 1)
        .expect("topic");
    let (stop, task) = h.start();
    let observation = |id: &str, loinc: &str, value: u32, unit: &str| {
        let o = json!({
            "resourceType": "Observation", "id": id, "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": loinc}]},
            "subject": {"identifier": {"system": "https://hospital.example.org/mrn", "value": "MRN-5"}},
            "encounter": {"reference": "Encounter/enc-9"},
            "effectiveDateTime": "2026-11-23T10:00:00Z",
            "valueQuantity": {"value": value, "code": unit},
        });
        (Some("MRN-5".to_owned()), o.to_string())
    };
    send_all(
        &h,
        vec![
            observation("rr-1", "9279-1", 27, "/min"),
            observation("sbp-1", "8480-6", 88, "mm[Hg]"),
            observation("hr-1", "8867-4", 135, "/min"),
        ],
    )
    .await;
    let fhir = h.reader(&h.config.alerts.fhir_topic);
    let seen = read_until(&fhir, Duration::from_secs(60), |seen| {
        seen.iter()
            .any(|(v, _)| v["method"]["text"] == "Vigil news2 alert")
    })
    .await;
    let risk = &seen
        .iter()
        .find(|(v, _)| v["method"]["text"] == "Vigil news2 alert")
        .expect("a NEWS2 RiskAssessment")
        .0;
    assert_eq!(
        risk["subject"],
        json!({"type": "Patient", "identifier": {"system": "https://hospital.example.org/mrn", "value": "MRN-5"}})
    );
    assert_eq!(risk["encounter"], json!({"reference": "Encounter/enc-9"}));
    let refs: Vec<&str> = risk["basis"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["reference"].as_str())
        .collect();
    assert!(refs.contains(&"Observation/rr-1"), "{risk}");
    assert!(refs.contains(&"Observation/hr-1"), "{risk}");
    assert_eq!(
        risk["prediction"][0]["qualitativeRisk"]["coding"][0]["code"],
        "high"
    );
    stop.cancel();
    task.await.expect("service stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_hl7_topic_is_decoded_and_partial_messages_keep_their_good_results() {
    let mut h = Harness::new(2);
    h.config.kafka.format = "hl7v2".into();
    let (stop, task) = h.start();
    let samples = concat!(env!("CARGO_MANIFEST_DIR"), "/../wire/tests/samples/hl7/");
    let monitor = std::fs::read_to_string(format!("{samples}monitor-vitals.hl7")).expect("sample");
    let lab = std::fs::read_to_string(format!("{samples}lab-results.hl7")).expect("sample");
    send_all(
        &h,
        vec![
            (Some("MRN-4711".into()), monitor),
            (Some("12345".into()), lab.clone()),
        ],
    )
    .await;
    let alerts = h.reader(&h.config.kafka.alerts_topic);
    let seen = read_until(&alerts, Duration::from_secs(60), |s| {
        !alerts_of(s, "MRN-4711", "news2").is_empty()
    })
    .await;
    let news2 = alerts_of(&seen, "MRN-4711", "news2");
    assert!(
        !news2.is_empty(),
        "the monitor's vital signs were scored: {seen:?}"
    );
    assert_eq!(news2[0]["location"], "ICU-2/03");
    // The lab message's bad OBX segment goes to the dead-letter topic with its reason;
    // its body height (a valid LOINC code Vigil does not score) is ignored, not named as
    // an error; its good results were applied (no alert expected from labs alone).
    let dlq = h.reader(&h.config.kafka.dlq_topic);
    let dead = read_until(&dlq, Duration::from_secs(60), |s| !s.is_empty()).await;
    let reason = &dead[0].1["vigil-error"];
    assert!(
        reason.contains("OBX[4]-2: value type \"ST\" cannot carry wbc"),
        "{reason}"
    );
    assert!(!reason.contains("OBX[5]"), "{reason}");
    stop.cancel();
    task.await.expect("service stops");
}

/// One MLLP exchange: the framed message out, the ACK's text back.
async fn exchange(conn: &mut tokio::net::TcpStream, message: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut frame = vec![0x0b];
    frame.extend_from_slice(message);
    frame.extend_from_slice(&[0x1c, 0x0d]);
    conn.write_all(&frame).await.expect("send");
    let mut reply = Vec::new();
    let mut byte = [0u8; 1];
    while !reply.ends_with(&[0x1c, 0x0d]) {
        conn.read_exact(&mut byte).await.expect("ACK");
        reply.push(byte[0]);
    }
    String::from_utf8_lossy(&reply[1..reply.len() - 2]).into_owned()
}

/// `vigil mllp` forwarding to the harness's observations topic.
async fn mllp(
    h: &Harness,
    ack_timeout: Duration,
    metrics: &vigil_stream::mllp::MllpMetrics,
    stop: &CancellationToken,
) -> (std::net::SocketAddr, JoinHandle<()>) {
    let mut config = h.config.clone();
    config.mllp.listen = "127.0.0.1:0".into();
    config.mllp.ack_timeout_ms = ack_timeout.as_millis() as u64;
    let settings = config.validate().expect("valid");
    vigil_stream::mllp::serve(&settings, metrics.clone(), stop.clone())
        .await
        .expect("MLLP listens")
}

/// The monitor gateway's ORU^R01 sample.
fn monitor_sample() -> Vec<u8> {
    std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../wire/tests/samples/hl7/monitor-vitals.hl7"
    ))
    .expect("sample")
}

/// With the broker down, a gateway hears AE (send again) within the ACK timeout instead
/// of waiting minutes for librdkafka's own message timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mllp_answers_ae_within_its_timeout_when_kafka_cannot_take_a_message() {
    let h = Harness::new(1);
    let stop = CancellationToken::new();
    let metrics = vigil_stream::mllp::MllpMetrics::new();
    let (addr, task) = mllp(&h, Duration::from_millis(1500), &metrics, &stop).await;
    h.broker.broker_down(1).expect("broker down");
    let mut conn = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let monitor = monitor_sample();
    let ack = tokio::time::timeout(Duration::from_secs(20), exchange(&mut conn, &monitor))
        .await
        .expect("an ACK within the timeout, not minutes later");
    assert!(
        ack.contains("\rMSA|AE|MSG00001|not stored, send again: "),
        "{ack}"
    );
    let text = metrics.render();
    assert!(
        text.contains("vigil_mllp_messages_total{ack=\"AE\",reason=\"kafka\"} 1"),
        "{text}"
    );
    h.broker.broker_up(1).expect("broker up");
    stop.cancel();
    task.await.expect("MLLP stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mllp_acknowledges_only_what_kafka_has_and_rejects_with_reasons() {
    let h = Harness::new(2);
    let stop = CancellationToken::new();
    let metrics = vigil_stream::mllp::MllpMetrics::new();
    let (addr, task) = mllp(&h, Duration::from_secs(10), &metrics, &stop).await;
    let mut conn = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let monitor = monitor_sample();
    let ack = exchange(&mut conn, &monitor).await;
    assert!(ack.contains("\rMSA|AA|MSG00001\r"), "{ack}");
    let ack = exchange(
        &mut conn,
        b"MSH|^~\\&|A|B|C|D|20261123101500+0100||ADT^A01|X9|P|2.6\rPID|||P1\r",
    )
    .await;
    assert!(
        ack.contains("\rMSA|AR|X9|MSH-9: \"ADT\\S\\A01\" is not supported; expected ORU\\S\\R01\r"),
        "{ack}"
    );
    let no_good = b"MSH|^~\\&|A|B|C|D|20261123101500+0100||ORU^R01|X10|P|2.6\rPID|||P1^^^H^MR\rOBX|1|NM|8867-4^HR^LN||900|/min|||||F|||20261123101500+0100\r";
    let ack = exchange(&mut conn, no_good).await;
    assert!(
        ack.contains("\rMSA|AE|X10|OBX[1]-5: field `value`: heart_rate 900 /min is outside"),
        "{ack}"
    );
    assert!(
        ack.contains("\rERR||OBX^1^5|102^Data type error^HL70357|E|||OBX[1]-5: field `value`: heart_rate 900 /min is outside"),
        "{ack}"
    );
    // What was acknowledged is in Kafka, keyed by the patient.
    let reader = h.reader(&h.config.kafka.observations_topic);
    let got = read_until(&reader, Duration::from_secs(30), |s| !s.is_empty()).await;
    assert_eq!(got.len(), 1);
    // Each answer is counted by its code and reason kind, the open connection too.
    let text = metrics.render();
    for line in [
        "vigil_mllp_messages_total{ack=\"AA\",reason=\"stored\"} 1",
        "vigil_mllp_messages_total{ack=\"AR\",reason=\"unreadable\"} 1",
        "vigil_mllp_messages_total{ack=\"AE\",reason=\"rejected\"} 1",
        "vigil_mllp_messages_total{ack=\"AE\",reason=\"kafka\"} 0",
        "vigil_mllp_connections 1",
        "vigil_mllp_ack_seconds_count 3",
    ] {
        assert!(text.contains(line), "{line} in\n{text}");
    }
    drop(conn);
    stop.cancel();
    task.await.expect("MLLP stops");
}

/// Reads one framed ACK from `conn`; its text.
async fn read_ack(conn: &mut tokio::net::TcpStream) -> String {
    use tokio::io::AsyncReadExt;
    let mut reply = Vec::new();
    let mut byte = [0u8; 1];
    while !reply.ends_with(&[0x1c, 0x0d]) {
        tokio::time::timeout(Duration::from_secs(30), conn.read_exact(&mut byte))
            .await
            .expect("an ACK in time")
            .expect("ACK");
        reply.push(byte[0]);
    }
    assert_eq!(reply[0], 0x0b, "an ACK starts with its start block");
    String::from_utf8_lossy(&reply[1..reply.len() - 2]).into_owned()
}

/// The keys and payloads of the first `n` messages of `topic`.
async fn keyed_messages(h: &Harness, topic: &str, n: usize) -> Vec<(String, String)> {
    let reader = h.reader(topic);
    let mut out = Vec::new();
    while out.len() < n {
        let m = tokio::time::timeout(Duration::from_secs(30), reader.recv())
            .await
            .expect("forwarded in time")
            .expect("message");
        out.push((
            String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned(),
            String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned(),
        ));
    }
    out
}

/// Issue 29, item 1: a frame without its end block followed by a good frame was merged
/// into one message: one ACK (the first MSH-10's), and the second message's readings
/// forwarded under the first patient. And a message about two patients was forwarded
/// keyed by the first: now each patient's results travel keyed by that patient.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mllp_never_merges_frames_and_forwards_each_patient_under_its_own_key() {
    use tokio::io::AsyncWriteExt;
    let h = Harness::new(2);
    let stop = CancellationToken::new();
    let metrics = vigil_stream::mllp::MllpMetrics::new();
    let (addr, task) = mllp(&h, Duration::from_secs(10), &metrics, &stop).await;
    let mut conn = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let cut = "MSH|^~\\&|GW|ICU|VIGIL|HOSP|20261123101500+0100||ORU^R01|CUT1|P|2.5.1\r\
               PID|||PA^^^H^MR\rOBX|1|NM|8867-4^HR^LN||80|/min|||||F|||20261123101500+0100\r";
    let two = "MSH|^~\\&|GW|ICU|VIGIL|HOSP|20261123101500+0100||ORU^R01|TWO1|P|2.5.1\r\
               PID|||P1^^^H^MR\rOBR|1||ORD-1|VITALS|||20261123101500+0100\r\
               OBX|1|NM|8867-4^HR^LN||72|/min|||||F\r\
               PID|||P2^^^H^MR\rOBR|1||ORD-2|VITALS|||20261123101500+0100\r\
               OBX|1|NM|8867-4^HR^LN||150|/min|||||F\rOBX|2|NM|9279-1^RR^LN||35|/min|||||F\r";
    let mut bytes = vec![0x0b];
    bytes.extend_from_slice(cut.as_bytes());
    bytes.push(0x0b);
    bytes.extend_from_slice(two.as_bytes());
    bytes.extend_from_slice(&[0x1c, 0x0d]);
    conn.write_all(&bytes).await.expect("send");
    let first = read_ack(&mut conn).await;
    assert!(
        first.contains("\rMSA|AR|CUT1|the frame ended without its end block"),
        "{first}"
    );
    let second = read_ack(&mut conn).await;
    assert!(second.contains("\rMSA|AA|TWO1\r"), "{second}");
    let forwarded = keyed_messages(&h, &h.config.kafka.observations_topic, 2).await;
    let mut keys: Vec<&str> = forwarded.iter().map(|(k, _)| k.as_str()).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["P1", "P2"],
        "nothing forwarded under PA, P2 under its own key"
    );
    for (key, payload) in &forwarded {
        let decoded =
            vigil_wire::decode_hl7(payload.as_bytes(), &vigil_wire::Hl7Options::default());
        assert!(!decoded.is_empty());
        for d in decoded {
            assert_eq!(d.expect("accepted").patient_id.to_string(), *key);
        }
    }
    let text = metrics.render();
    for line in [
        "vigil_mllp_framing_errors_total{kind=\"unterminated\"} 1",
        "vigil_mllp_messages_total{ack=\"AR\",reason=\"framing\"} 1",
        "vigil_mllp_messages_total{ack=\"AA\",reason=\"stored\"} 1",
    ] {
        assert!(text.contains(line), "{line} in\n{text}");
    }
    drop(conn);
    stop.cancel();
    task.await.expect("MLLP stops");
}

/// Issue 29, item 4: an oversize frame is drained and answered (the connection stays
/// open for the next message), and a message whose results the service would dead-letter
/// for a reason known at receipt (an unknown code, a time an hour in the future) is
/// answered AE with that reason, its good results stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mllp_answers_oversize_and_refused_results_with_their_reasons() {
    use tokio::io::AsyncWriteExt;
    let mut h = Harness::new(1);
    h.config.input.max_message_bytes = 4096;
    let stop = CancellationToken::new();
    let metrics = vigil_stream::mllp::MllpMetrics::new();
    let (addr, task) = mllp(&h, Duration::from_secs(10), &metrics, &stop).await;
    let mut conn = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let mut big =
        "MSH|^~\\&|GW|ICU|VIGIL|HOSP|20261123101500+0100||ORU^R01|BIG1|P|2.5.1\rPID|||P1^^^H^MR\r"
            .to_owned();
    while big.len() < 10_000 {
        big.push_str("OBX|1|NM|8867-4^HR^LN||72|/min|||||F|||20261123101500+0100\r");
    }
    let mut bytes = vec![0x0b];
    bytes.extend_from_slice(big.as_bytes());
    bytes.extend_from_slice(&[0x1c, 0x0d]);
    conn.write_all(&bytes).await.expect("send");
    let ack = read_ack(&mut conn).await;
    assert!(ack.contains("\rMSA|AR|BIG1|the message has 10"), "{ack}");
    assert!(
        ack.contains("more than the limit of 4096 ([input] max_message_bytes)"),
        "{ack}"
    );
    // Still open: the next message is read and answered.
    let hour_ahead = {
        let t = std::time::SystemTime::now() + Duration::from_secs(3600);
        let secs = t.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
        vigil_score::Timestamp::from_millis(secs * 1000)
            .to_string()
            .chars()
            .filter(char::is_ascii_digit)
            .take(14)
            .collect::<String>()
    };
    let mixed = format!(
        "MSH|^~\\&|GW|ICU|VIGIL|HOSP|20261123101500+0100||ORU^R01|MIX1|P|2.5.1\r\
         PID|||P1^^^H^MR\r\
         OBX|1|NM|8867-4^HR^LN||72|/min|||||F|||20261123101500+0100\r\
         OBX|2|NM|99999^Mystery^99LOCAL||1|/min|||||F|||20261123101500+0100\r\
         OBX|3|NM|9279-1^RR^LN||18|/min|||||F|||{hour_ahead}+0000\r"
    );
    let ack = exchange(&mut conn, mixed.as_bytes()).await;
    assert!(
        ack.contains("\rMSA|AE|MIX1|stored 1, refused 2: OBX[2]-3: "),
        "{ack}"
    );
    assert!(
        ack.contains("\rERR||OBX^2^3|103^Table value not found^HL70357|E|||OBX[2]-3: "),
        "{ack}"
    );
    assert!(
        ack.contains("is not a LOINC or IEEE 11073 MDC code Vigil knows"),
        "{ack}"
    );
    assert!(
        ack.contains("(resp_rate) is 3600 s after the message was received at")
            || ack.contains("(resp_rate) is 3599 s after the message was received at"),
        "{ack}"
    );
    let forwarded = keyed_messages(&h, &h.config.kafka.observations_topic, 1).await;
    assert_eq!(forwarded[0].0, "P1");
    assert!(
        forwarded[0].1.contains("|MIX1|"),
        "the good result is stored"
    );
    let text = metrics.render();
    for line in [
        "vigil_mllp_framing_errors_total{kind=\"oversize\"} 1",
        "vigil_mllp_messages_total{ack=\"AR\",reason=\"size\"} 1",
        "vigil_mllp_messages_total{ack=\"AE\",reason=\"partial\"} 1",
    ] {
        assert!(text.contains(line), "{line} in\n{text}");
    }
    drop(conn);
    stop.cancel();
    task.await.expect("MLLP stops");
}

/// The third-party Python packages (`vigil_testkit::interop`), installed under the target
/// directory.
fn interop_packages() -> std::path::PathBuf {
    let target = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    vigil_testkit::interop::packages(target.parent().expect("target directory"))
}

/// Issue 29, item 3: python-hl7's MLLPClient reads each ACK with one `recv`; the ACK was
/// written in three pieces with Nagle's algorithm on, so it got a bare 0x0B for over half
/// of them and a median of 48 ms per message. The script (tests/interop/mllp_clients.py)
/// sends 40 messages one after another and 10 pipelined over python-hl7's asyncio
/// streams, and validates every message and every ACK with hl7apy (STRICT).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn third_party_hl7_clients_read_every_ack_whole_and_valid() {
    let packages = interop_packages();
    let h = Harness::new(2);
    let stop = CancellationToken::new();
    let metrics = vigil_stream::mllp::MllpMetrics::new();
    let (addr, task) = mllp(&h, Duration::from_secs(10), &metrics, &stop).await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/mllp_clients.py");
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new("python3")
            .arg(script)
            .arg(addr.ip().to_string())
            .arg(addr.port().to_string())
            .env("PYTHONPATH", &packages)
            .output()
            .expect("python3 runs")
    })
    .await
    .expect("the script ran");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_str(stdout.trim()).expect("the script's report");
    assert_eq!(
        (report["sequential"].as_u64(), report["pipelined"].as_u64()),
        (Some(40), Some(10))
    );
    eprintln!("python-hl7 and hl7apy against vigil mllp: {report}");
    let text = metrics.render();
    for line in [
        "vigil_mllp_messages_total{ack=\"AA\",reason=\"stored\"} 51",
        "vigil_mllp_messages_total{ack=\"AE\",reason=\"rejected\"} 1",
    ] {
        assert!(text.contains(line), "{line} in\n{text}");
    }
    stop.cancel();
    task.await.expect("MLLP stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_state_changelog_a_restart_remembers_windows_and_active_alerts() {
    restart_remembers("at-least-once").await;
}

/// Exactly-once on the mock cluster, which does not store transactional offsets: the
/// restarted consumer reads the topic from its start, and only the changelog's committed
/// checkpoint keeps it from processing the first batch again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_once_restart_resumes_from_the_changelog_checkpoint() {
    restart_remembers("exactly-once").await;
}

async fn restart_remembers(delivery: &str) {
    let (h, port) = Harness::with_changelog(2, delivery);
    let obs = |code: &str, value: Value, minute: u32| reading("S1", code, value, minute);
    let (stop, task) = h.start();
    // RR 26 raises NEWS2 (a single 3: advisory); qSOFA has one point. Only this message
    // carries the patient's location.
    let (key, first_event) = obs("resp_rate", json!(26), 0);
    let mut located: serde_json::Value = serde_json::from_str(&first_event).expect("json");
    located["location"] = json!("ward-3/bed-1");
    send_all(&h, vec![(key, located.to_string())]).await;
    let alerts = h.reader(&h.config.kafka.alerts_topic);
    let first = read_until(&alerts, Duration::from_secs(60), |s| {
        !alerts_of(s, "S1", "news2").is_empty()
    })
    .await;
    assert_eq!(alerts_of(&first, "S1", "news2")[0]["kind"], "raised");
    let written = eventually(Duration::from_secs(30), || {
        gauge(
            &http_get(port, "/metrics").1,
            "vigil_state_bytes_written_total ",
        ) > 0
    })
    .await;
    assert!(written, "state written to the changelog");
    stop.cancel();
    task.await.expect("service stops");

    // A new instance: SBP 95 five minutes later makes qSOFA 2 only if RR 26 is remembered,
    // and NEWS2 escalates (not re-raises) only if the active alert is remembered.
    let (stop, task) = h.start();
    send_all(&h, vec![obs("sbp", json!(95), 5)]).await;
    let after = read_until(&alerts, Duration::from_secs(60), |s| {
        !alerts_of(s, "S1", "qsofa").is_empty() && !alerts_of(s, "S1", "news2").is_empty()
    })
    .await;
    let qsofa = alerts_of(&after, "S1", "qsofa");
    assert_eq!(qsofa.len(), 1, "{after:?}");
    assert_eq!(
        qsofa[0]["score"], 2,
        "the restored window still holds RR 26"
    );
    let news2: Vec<_> = alerts_of(&after, "S1", "news2")
        .iter()
        .map(|a| a["kind"].clone())
        .collect();
    assert_eq!(
        news2,
        vec![json!("escalated")],
        "the restored alert state: no second raise"
    );
    assert_eq!(
        alerts_of(&after, "S1", "news2")[0]["location"],
        "ward-3/bed-1",
        "the location is restored with the patient"
    );
    stop.cancel();
    task.await.expect("service stops");
}

/// Under exactly-once the changelog decides where processing resumes: a group offset past
/// the changelog's checkpoint (as a broker leaves when it commits a fenced transaction
/// instead of aborting it) must not make the restarted instance skip input its restored
/// state lacks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_once_rewinds_a_group_offset_that_is_past_the_changelog() {
    let (mut h, port) = Harness::with_changelog(1, "exactly-once");
    let obs = |code: &str, value: Value, minute: u32| reading("R1", code, value, minute);
    // Offset 0, processed and committed with its checkpoint (1).
    h.process_and_stop(
        port,
        vec![obs("resp_rate", json!(26), 0)],
        "the first batch commits",
    )
    .await;
    // Offset 1 is consumed by an at-least-once instance without the changelog, which
    // moves the group's offset past it (as a broker does when it commits a fenced
    // transaction instead of aborting it): the changelog does not reflect offset 1.
    let exactly_once = h.config.clone();
    h.config.kafka.delivery = "at-least-once".into();
    h.config.kafka.state_topic = String::new();
    h.process_and_stop(
        port,
        vec![obs("sbp", json!(95), 5)],
        "the group offset moves past offset 1",
    )
    .await;
    h.config = exactly_once;
    // The restarted instance starts at offset 2 but must process offset 1 first: SBP 95
    // with the remembered RR 26 makes qSOFA 2.
    let (stop, task) = h.start();
    send_all(&h, vec![obs("heart_rate", json!(80), 10)]).await;
    let alerts = h.reader(&h.config.kafka.alerts_topic);
    let seen = read_until(&alerts, Duration::from_secs(60), |s| {
        !alerts_of(s, "R1", "qsofa").is_empty()
    })
    .await;
    let qsofa = alerts_of(&seen, "R1", "qsofa");
    let metrics = http_get(port, "/metrics").1;
    let state: Vec<&str> = metrics
        .lines()
        .filter(|l| {
            l.starts_with("vigil_observations")
                || l.starts_with("vigil_input")
                || l.starts_with("vigil_state_records")
                || l.starts_with("vigil_commits")
        })
        .collect();
    assert_eq!(qsofa.len(), 1, "{state:?}");
    assert_eq!(qsofa[0]["score"], 2);
    stop.cancel();
    task.await.expect("service stops");
}

/// Restore applies a transaction's changelog records only if the transaction sealed the
/// partition with its checkpoint (the mock cluster, like tansu, shows aborted records): a
/// forged tombstone of the patient is ignored while unsealed, and forgets the patient
/// once a checkpoint of the same session at or past its transaction follows it (only the
/// session's newest checkpoint, as compaction leaves it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_once_restore_skips_an_unsealed_transaction() {
    let news2 = restore_after_forged_tombstone(false).await;
    assert_eq!(news2, vec![json!("escalated")], "the patient is remembered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_once_restore_applies_a_sealed_transaction() {
    let news2 = restore_after_forged_tombstone(true).await;
    assert_eq!(
        news2,
        vec![json!("raised")],
        "the sealed tombstone forgot the patient"
    );
}

/// Processes RR 26 for one patient, appends a tombstone of the patient to the changelog in
/// a forged transaction (sealed or not), restarts, sends RR 26 and SBP 95 five minutes
/// later and returns the kinds of the patient's NEWS2 alerts after the restart.
async fn restore_after_forged_tombstone(sealed: bool) -> Vec<Value> {
    use rdkafka::message::{Header, OwnedHeaders};
    let (h, port) = Harness::with_changelog(1, "exactly-once");
    let obs = |code: &str, value: Value, minute: u32| reading("U1", code, value, minute);
    h.process_and_stop(
        port,
        vec![obs("resp_rate", json!(26), 0)],
        "the first batch commits",
    )
    .await;

    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &h.config.kafka.brokers)
        .create()
        .expect("producer");
    let txn = || {
        OwnedHeaders::new().insert(Header {
            key: "vigil-txn",
            value: Some("forged:0"),
        })
    };
    producer
        .send(
            FutureRecord::to(&h.config.kafka.state_topic)
                .partition(0)
                .key("U1")
                .payload("")
                .headers(txn()),
            Duration::from_secs(10),
        )
        .await
        .expect("tombstone written");
    if sealed {
        producer
            .send(
                FutureRecord::to(&h.config.kafka.state_topic)
                    .partition(0)
                    .key("vigil-checkpoint/forged")
                    .payload("1")
                    .headers(
                        OwnedHeaders::new()
                            .insert(Header {
                                key: "vigil-txn",
                                value: Some("forged:1"),
                            })
                            .insert(Header {
                                key: "vigil-checkpoint",
                                value: Some("1"),
                            }),
                    ),
                Duration::from_secs(10),
            )
            .await
            .expect("seal written");
    }

    let (stop, task) = h.start();
    send_all(
        &h,
        vec![obs("resp_rate", json!(26), 5), obs("sbp", json!(95), 5)],
    )
    .await;
    let alerts = h.reader(&h.config.kafka.alerts_topic);
    // The first NEWS2 alert is the raise before the restart; the set of RR 26 and SBP 95
    // after it escalates a remembered alert, or raises one for a forgotten patient.
    let seen = read_until(&alerts, Duration::from_secs(60), |s| {
        alerts_of(s, "U1", "news2").len() >= 2
    })
    .await;
    stop.cancel();
    task.await.expect("service stops");
    alerts_of(&seen, "U1", "news2")
        .iter()
        .skip(1)
        .map(|a| a["kind"].clone())
        .collect()
}

/// The value of the first series of `metrics` whose line starts with `series`, as a float.
fn value(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok()))
}

/// What quality staff and operators watch: the latency from a reading to its alert, how
/// late readings arrive, when the last one did, the alerts active now, and consumer lag.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_show_alert_latency_reading_delay_active_alerts_and_lag() {
    let mut h = Harness::new(1);
    let port = free_port();
    h.config.http.listen = format!("127.0.0.1:{port}");
    h.config.service.overdue_check_ms = 100;
    let (stop, task) = h.start();
    // RR 26 raises NEWS2 at advisory (a single 3) with every rule alerting.
    send_all(&h, vec![reading("Q1", "resp_rate", json!(26), 0)]).await;
    let alerts = h.reader(&h.config.kafka.alerts_topic);
    let seen = read_until(&alerts, Duration::from_secs(60), |s| {
        !alerts_of(s, "Q1", "news2").is_empty()
    })
    .await;
    let level = alerts_of(&seen, "Q1", "news2")[0]["level"]
        .as_str()
        .expect("a level")
        .to_owned();
    let active = format!("vigil_active_alerts{{level=\"{level}\",rule=\"news2\"}} ");
    let shown = eventually(Duration::from_secs(30), || {
        let m = http_get(port, "/metrics").1;
        value(&m, &active) == Some(1.0)
            && value(&m, "vigil_consumer_lag_messages{partition=\"0\"} ") == Some(0.0)
    })
    .await;
    let m = http_get(port, "/metrics").1;
    assert!(shown, "{m}");
    // Nothing else is active.
    let others: f64 = m
        .lines()
        .filter(|l| l.starts_with("vigil_active_alerts{"))
        .filter_map(|l| l.rsplit_once(' ').and_then(|(_, v)| v.parse::<f64>().ok()))
        .sum();
    assert_eq!(others, 1.0, "{m}");
    assert_eq!(
        value(&m, "vigil_overdue_alerts{rule=\"news2\"} "),
        Some(0.0),
        "{m}"
    );
    assert_eq!(value(&m, "vigil_overdue_patients "), Some(0.0), "{m}");
    assert!(
        value(&m, "vigil_alert_latency_seconds_count ") >= Some(1.0),
        "{m}"
    );
    // The reading is dated days ago: the alert was published days after its event time.
    assert!(
        value(&m, "vigil_alert_event_age_seconds_sum ") > Some(86_400.0),
        "{m}"
    );
    // The reading is dated 2026-11-23, so it arrived days late.
    assert_eq!(
        value(&m, "vigil_reading_delay_seconds_count "),
        Some(1.0),
        "{m}"
    );
    assert!(
        value(&m, "vigil_reading_delay_seconds_sum ") > Some(86_400.0),
        "{m}"
    );
    let last = value(&m, "vigil_last_reading_timestamp_seconds ").expect("a gauge");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs_f64();
    assert!((now - 120.0..=now + 1.0).contains(&last), "{last} vs {now}");
    // Seven hours later only a heart rate arrives: the respiratory rate the alert rests
    // on is stale, so the alert is overdue (and stays active).
    let later = json!({"patient_id": "Q1", "code": "heart_rate", "value": 80,
        "effective": "2026-11-23T17:00:00Z", "id": "Q1-hr-late"});
    send_all(&h, vec![(Some("Q1".to_owned()), later.to_string())]).await;
    let overdue = eventually(Duration::from_secs(30), || {
        let m = http_get(port, "/metrics").1;
        value(&m, "vigil_overdue_alerts{rule=\"news2\"} ") == Some(1.0)
            && value(&m, "vigil_overdue_patients ") == Some(1.0)
            && value(&m, &active) == Some(1.0)
    })
    .await;
    assert!(overdue, "{}", http_get(port, "/metrics").1);
    stop.cancel();
    task.await.expect("service stops");
}

/// A FHIR reading sent without a value and with the reason why is counted as absent, by
/// reason, and neither scored nor dead-lettered; a bad reading beside it still is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fhir_data_absent_reason_is_counted_as_absent_and_not_dead_lettered() {
    let mut h = Harness::new(1);
    let port = free_port();
    h.config.http.listen = format!("127.0.0.1:{port}");
    h.config.kafka.format = "fhir".into();
    let (stop, task) = h.start();
    let observation = |code: &str, rest: &str| {
        format!(
            r#"{{"resource":{{"resourceType":"Observation","status":"final","code":{{"coding":[{{"system":"http://loinc.org","code":"{code}"}}]}},"subject":{{"reference":"Patient/F1"}},"effectiveDateTime":"2026-11-23T10:00:00Z",{rest}}}}}"#
        )
    };
    let bundle = format!(
        r#"{{"resourceType":"Bundle","type":"collection","entry":[{},{},{}]}}"#,
        observation("8480-6", r#""valueQuantity":{"value":120,"code":"mm[Hg]"}"#),
        observation(
            "2524-7",
            r#""dataAbsentReason":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/data-absent-reason","code":"not-performed"}]}"#
        ),
        observation("8867-4", r#""valueQuantity":{"value":80,"code":"mmHg"}"#),
    );
    send_all(&h, vec![(Some("F1".into()), bundle)]).await;
    let dlq = h.reader(&h.config.kafka.dlq_topic);
    let dead = read_until(&dlq, Duration::from_secs(60), |s| !s.is_empty()).await;
    let reason = &dead[0].1["vigil-error"];
    assert!(reason.contains("entry[2]"), "{reason}");
    assert!(!reason.contains("entry[1]"), "{reason}");
    assert!(!reason.contains("dataAbsentReason"), "{reason}");
    let counted = eventually(Duration::from_secs(30), || {
        let m = http_get(port, "/metrics").1;
        value(&m, "vigil_absent_total{reason=\"not-performed\"} ") == Some(1.0)
            && value(&m, "vigil_observations_total{outcome=\"absent\"} ") == Some(1.0)
            && value(&m, "vigil_observations_total{outcome=\"accepted\"} ") == Some(1.0)
            && value(&m, "vigil_observations_total{outcome=\"rejected\"} ") == Some(1.0)
    })
    .await;
    assert!(counted, "{}", http_get(port, "/metrics").1);
    stop.cancel();
    task.await.expect("service stops");
}

/// A transaction that does not finish is reported at once, with what it waits for:
/// `/readyz` says so and `vigil_delivery_stalled` is 1 until it ends. (The fault-injection
/// pause holds each transaction open for seconds; the warning threshold is 200 ms.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_transaction_is_reported_at_once_and_when_it_ends() {
    let (mut h, port) = Harness::with_changelog(1, "exactly-once");
    h.config.service.fault_injection_txn_pause_ms = 1500;
    h.config.service.stall_warning_ms = 200;
    let (stop, task) = h.start();
    send_all(&h, vec![reading("T1", "resp_rate", json!(26), 0)]).await;
    let reported = eventually(Duration::from_secs(30), || {
        let (code, body) = http_get(port, "/readyz");
        code == 503 && body.starts_with("not ready: batch delivery stalled: ")
    })
    .await;
    let (_, body) = http_get(port, "/readyz");
    assert!(reported, "{body}");
    assert!(body.contains(" s waiting for the "), "{body}");
    let m = http_get(port, "/metrics").1;
    assert_eq!(gauge(&m, "vigil_delivery_stalled "), 1, "{m}");
    // The transaction commits after its pauses: the report clears.
    let ended = eventually(Duration::from_secs(30), || {
        let m = http_get(port, "/metrics").1;
        gauge(&m, "vigil_delivery_stalled ") == 0
            && gauge(&m, "vigil_commits_total ") >= 1
            && gauge(&m, "vigil_delivery_stalls_total ") >= 1
            && http_get(port, "/readyz").0 == 200
    })
    .await;
    assert!(ended, "{}", http_get(port, "/metrics").1);
    stop.cancel();
    task.await.expect("service stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watches_and_stops_from_the_board_mark_alerts_suppressed_and_forged_ones_do_not() {
    let mut h = Harness::new(2);
    let n = NEXT.fetch_add(1, Ordering::SeqCst);
    let port = free_port();
    h.config.http.listen = format!("127.0.0.1:{port}");
    h.config.board.actions_topic = format!("actions-{n}");
    h.config.board.action_key_file = vigil_testkit::action_key_file()
        .expect("a key file")
        .display()
        .to_string();
    let key = vigil_board::ActionKey::from_hex(vigil_testkit::TEST_ACTION_KEY).expect("a key");
    h.broker
        .create_topic(&h.config.board.actions_topic, 2)
        .expect("topic");
    let now = vigil_stream::event::now();
    let ago = |minutes: i64| now.minus(vigil_score::Span::minutes(minutes)).to_string();
    let actions = [
        // Watched for an hour ten minutes ago: suppressed.
        (
            "WATCHED",
            json!({"kind": "watch", "minutes": 60}),
            "nina",
            "nurse",
            ago(10),
        ),
        // Watched for an hour two hours ago: over.
        (
            "EXPIRED",
            json!({"kind": "watch", "minutes": 60}),
            "nina",
            "nurse",
            ago(120),
        ),
        // Stopped by a charge nurse: suppressed for the encounter.
        (
            "STOPPED",
            json!({"kind": "stop"}),
            "carl",
            "charge_nurse",
            ago(5),
        ),
        // A nurse may not stop: a forged stop changes nothing.
        (
            "FORGED",
            json!({"kind": "stop"}),
            "mallory",
            "nurse",
            ago(5),
        ),
        // A stop taken where the feed named no encounter would never end: not honoured
        // (issue 31), so this patient's alerts page.
        (
            "NO-ENC",
            json!({"kind": "stop"}),
            "carl",
            "charge_nurse",
            ago(5),
        ),
        // An administrator's stop written straight to the topic, without the boards' key:
        // not honoured (issue 31).
        (
            "UNSIGNED",
            json!({"kind": "stop"}),
            "ghost",
            "admin",
            ago(5),
        ),
    ];
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &h.config.kafka.brokers)
        .create()
        .expect("producer");
    for (i, (patient, kind, user, role, at)) in actions.iter().enumerate() {
        // The stopped patient's stop is taken in its encounter, as the board takes it.
        let encounter = match *patient {
            "STOPPED" => Some("ENC-S"),
            "UNSIGNED" => Some("ENC-U"),
            _ => None,
        };
        let mut a = json!({"action_id": format!("x{i}"), "patient_id": patient,
            "encounter_id": encounter, "user": user, "role": role, "at": at});
        for (k, v) in kind.as_object().expect("an object") {
            a[k] = v.clone();
        }
        let payload = a.to_string();
        let signature = key.sign(payload.as_bytes());
        let mut record = FutureRecord::to(&h.config.board.actions_topic)
            .key(*patient)
            .payload(&payload);
        if *patient != "UNSIGNED" {
            record = record.headers(rdkafka::message::OwnedHeaders::new().insert(
                rdkafka::message::Header {
                    key: vigil_board::SIGNATURE_HEADER,
                    value: Some(&signature),
                },
            ));
        }
        producer
            .send(record, Duration::from_secs(10))
            .await
            .expect("delivered");
    }
    let (stop, task) = h.start();
    let patients = [
        "WATCHED", "EXPIRED", "STOPPED", "FORGED", "NO-ENC", "UNSIGNED",
    ];
    let mut feed = Vec::new();
    for p in patients {
        feed.extend(vitals(p, 0, 16, 130, 80));
        feed.extend(vitals(p, 30, 26, 92, 135));
    }
    // The stopped patient's feed names the encounter the stop was taken in.
    for (_, event) in &mut feed {
        for (patient, encounter) in [("STOPPED", "ENC-S"), ("UNSIGNED", "ENC-U")] {
            if event.contains(&format!("\"{patient}\"")) {
                let mut v: Value = serde_json::from_str(event).expect("JSON");
                v["encounter_id"] = json!(encounter);
                *event = v.to_string();
            }
        }
    }
    send_all(&h, feed).await;
    let alerts = h.reader(&h.config.kafka.alerts_topic);
    let seen = read_until(&alerts, Duration::from_secs(60), |seen| {
        patients
            .iter()
            .all(|p| !alerts_of(seen, p, "news2").is_empty())
    })
    .await;
    let suppressed = |p: &str| alerts_of(&seen, p, "news2")[0]["suppressed"].clone();
    let watched = suppressed("WATCHED");
    assert_eq!(watched["by"], "watch", "{watched}");
    assert_eq!(watched["user"], "nina");
    assert!(watched["until"].is_string(), "{watched}");
    assert_eq!(
        suppressed("STOPPED"),
        json!({"by": "stop", "until": null, "user": "carl"})
    );
    assert_eq!(suppressed("EXPIRED"), Value::Null);
    assert_eq!(suppressed("NO-ENC"), Value::Null);
    assert_eq!(suppressed("FORGED"), Value::Null);
    assert_eq!(suppressed("UNSIGNED"), Value::Null);
    let metrics = http_get(port, "/metrics").1;
    assert!(
        metrics.contains("vigil_actions_refused_total{reason=\"unsigned\"} 1"),
        "{metrics}"
    );
    // A suppressed decision is still published in full.
    let w = &alerts_of(&seen, "WATCHED", "news2")[0];
    assert_eq!(
        (w["kind"].as_str(), w["level"].as_str()),
        (Some("raised"), Some("emergency"))
    );
    stop.cancel();
    task.await.expect("service stops");
}

/// Vigil Risk runs in the service like the published rules: off by default, and with
/// `[alerts] risk` set it raises an alert that says it is a statistical estimate and
/// carries the readings that raised it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vigil_risk_alerts_through_the_service_when_configured() {
    let mut h = Harness::new(2);
    h.config.alerts.risk = [2, 0, 0];
    let (stop, task) = h.start();
    // A febrile, tachypnoeic, tachycardic set: well above the model's baseline of 1 %.
    send_all(&h, vitals("RISK-1", 0, 30, 88, 140)).await;
    let alerts = h.reader(&h.config.kafka.alerts_topic);
    let seen = read_until(&alerts, Duration::from_secs(60), |seen| {
        !alerts_of(seen, "RISK-1", "risk").is_empty()
    })
    .await;
    let risk = alerts_of(&seen, "RISK-1", "risk");
    let raised = risk.first().expect("a Vigil Risk alert");
    assert_eq!(raised["kind"], "raised");
    assert_eq!(raised["level"], "advisory");
    assert!(
        raised["score"].as_u64().expect("a percentage") >= 2,
        "{raised}"
    );
    let message = raised["message"].as_str().expect("message");
    assert!(
        message.starts_with("Vigil Risk ") && message.contains("(a statistical estimate)"),
        "{message}"
    );
    let criteria = raised["criteria"].as_array().expect("criteria");
    assert!(!criteria.is_empty(), "{raised}");
    assert!(
        criteria.iter().all(|c| c["points"].as_u64() > Some(0)),
        "{raised}"
    );
    // The laboratory values the model reads were never sent: listed as missing.
    let missing = raised["coverage"]["missing"].as_array().expect("missing");
    assert!(missing.iter().any(|m| m == "lactate"), "{raised}");
    stop.cancel();
    task.await.expect("service stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_rule_is_published_marked_silent_and_never_reaches_the_ehr() {
    let mut h = Harness::new(1);
    // NEWS2 live, qSOFA run in silently beside it, FHIR alerts to the EHR on.
    h.config.alerts.silent_rules = vec!["qsofa".into()];
    h.config.alerts.fhir_topic = format!("{}-fhir", h.config.kafka.alerts_topic);
    h.broker
        .create_topic(&h.config.alerts.fhir_topic, 1)
        .expect("topic");
    let (stop, task) = h.start();
    let mut feed = Vec::new();
    for (minute, (rr, sbp, hr)) in [(16, 130, 80), (25, 95, 80), (26, 92, 135), (16, 130, 80)]
        .into_iter()
        .enumerate()
    {
        feed.extend(keyed(vitals("SICK-1", minute as u32 * 30, rr, sbp, hr)));
    }
    send_all(&h, feed).await;
    let alerts = h.reader(&h.config.kafka.alerts_topic);
    let seen = read_until(&alerts, Duration::from_secs(60), |seen| {
        alerts_of(seen, "SICK-1", "news2")
            .iter()
            .any(|a| a["kind"] == "resolved")
            && alerts_of(seen, "SICK-1", "qsofa")
                .iter()
                .any(|a| a["kind"] == "resolved")
    })
    .await;
    // A clean stop delivers everything the service decided: read all of it.
    stop.cancel();
    task.await.expect("service stops");
    let (_, published) = alerts
        .fetch_watermarks(&h.config.kafka.alerts_topic, 0, Duration::from_secs(10))
        .expect("watermarks");
    let rest = read_until(&alerts, Duration::from_secs(30), |more| {
        seen.len() + more.len() >= published as usize
    })
    .await;
    let all: Vec<&Value> = seen.iter().chain(&rest).map(|(v, _)| v).collect();
    assert_eq!(all.len(), published as usize);
    let (silent, live): (Vec<&Value>, Vec<&Value>) = all.iter().partition(|a| a["rule"] == "qsofa");
    assert!(!silent.is_empty() && !live.is_empty(), "{all:?}");
    assert!(live.iter().any(|a| a["rule"] == "news2"), "{live:?}");
    assert!(live.iter().all(|a| a["silent"] == false), "{live:?}");
    assert!(silent.iter().all(|a| a["silent"] == true), "{silent:?}");
    // The EHR receives the live alerts only: one FHIR resource per live event.
    let fhir = h.reader(&h.config.alerts.fhir_topic);
    let resources = read_until(&fhir, Duration::from_secs(30), |seen| {
        seen.len() >= live.len()
    })
    .await;
    let (_, high) = fhir
        .fetch_watermarks(&h.config.alerts.fhir_topic, 0, Duration::from_secs(10))
        .expect("watermarks");
    assert_eq!(resources.len(), live.len(), "{resources:?}");
    assert_eq!(high as usize, live.len(), "nothing more on the FHIR topic");
}

/// Drift for quality staff: per ward, the patients held, the share with a current reading
/// of each parameter the model reads, and the distribution of Vigil Risk estimates.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_metrics_show_each_wards_input_coverage_and_risk_distribution() {
    let mut h = Harness::new(1);
    let port = free_port();
    h.config.http.listen = format!("127.0.0.1:{port}");
    h.config.service.overdue_check_ms = 100;
    // Vigil Risk computed (and alerting at 99 %, so that nothing is published for it).
    h.config.alerts.risk = [99, 0, 0];
    let (stop, task) = h.start();
    // Two patients on ward-7 (the vitals location); one with a lactate, one without.
    let mut feed = keyed(vitals("D1", 0, 16, 130, 80));
    feed.extend(keyed(vitals("D2", 0, 16, 130, 80)));
    feed.push(reading("D1", "lactate", json!(1.2), 0));
    send_all(&h, feed).await;
    let coverage =
        |p: &str| format!("vigil_input_coverage_ratio{{parameter=\"{p}\",ward=\"ward-7\"}} ");
    let shown = eventually(Duration::from_secs(30), || {
        let m = http_get(port, "/metrics").1;
        value(&m, "vigil_ward_patients{ward=\"ward-7\"} ") == Some(2.0)
            && value(&m, &coverage("lactate")) == Some(0.5)
    })
    .await;
    let m = http_get(port, "/metrics").1;
    stop.cancel();
    task.await.expect("service stops");
    assert!(shown, "{m}");
    assert_eq!(value(&m, &coverage("resp_rate")), Some(1.0), "{m}");
    assert_eq!(value(&m, &coverage("creatinine")), Some(0.0), "{m}");
    // Every patient's estimate is in one band.
    let banded: f64 = m
        .lines()
        .filter(|l| l.starts_with("vigil_risk_patients{") && l.contains("ward=\"ward-7\""))
        .filter_map(|l| l.rsplit_once(' ').and_then(|(_, v)| v.parse::<f64>().ok()))
        .sum();
    assert_eq!(banded, 2.0, "{m}");
    // No patient identifier in any label.
    assert!(!m.contains("D1") && !m.contains("D2"), "{m}");
}
