//! The board's Kafka side against a Kafka-protocol broker: two board instances following
//! the same topics show the same state, an action published by one reaches both, an
//! action without the shared key's signature changes nothing, and boards started or
//! restarted at any moment fold the same state.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{now, settings};
use rdkafka::ClientConfig;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use vigil_board::{Action, ActionKey, ActionKind, Board, Role, SIGNATURE_HEADER};
use vigil_testkit::{MockBroker, eventually};
use vigil_web::auth::Users;
use vigil_web::kafka::{KafkaSink, follow};
use vigil_web::server::{ActionSink, Shared};

fn shared(sink: Arc<dyn ActionSink>) -> Arc<Shared> {
    common::shared(
        Board::new(),
        Users::new(vec![]).expect("no users"),
        sink,
        false,
    )
}

fn action(id: &str, kind: ActionKind, user: &str, role: Role) -> Action {
    Action {
        action_id: id.into(),
        patient_id: "P1".into(),
        encounter_id: Some("E1".into()),
        kind,
        user: user.into(),
        role,
        at: now(),
    }
}

fn key() -> ActionKey {
    ActionKey::from_hex(&"5a".repeat(32)).expect("a key")
}

/// Follows the test topics into `board` with the test key, until the task is aborted.
fn following(brokers: &str, board: &Arc<Shared>) -> tokio::task::JoinHandle<()> {
    let (brokers, b) = (brokers.to_owned(), board.clone());
    tokio::spawn(async move {
        let _ = follow(
            &brokers,
            &Default::default(),
            ("alerts", "actions"),
            key(),
            b,
        )
        .await;
    })
}

fn alert_json(id: &str, patient: &str, kind: &str, level: &str, minute: u32) -> String {
    serde_json::json!({
        "alert_id": id, "decision_id": format!("d-{id}"), "patient_id": patient,
        "encounter_id": format!("E-{patient}"), "location": "ward-7/bed-1", "rule": "news2",
        "kind": kind, "level": level, "score": 7, "message": "NEWS2",
        "first_raised_at": format!("2026-11-23T10:{minute:02}:00Z"),
        "emitted_at": format!("2026-11-23T10:{minute:02}:00Z")})
    .to_string()
}

/// Sends `payload` to `topic` keyed by `patient` with the Kafka timestamp `ms`, with
/// `signature` in the signature header if any.
async fn send(
    producer: &FutureProducer,
    topic: &str,
    patient: &str,
    payload: &str,
    ms: i64,
    signature: Option<&str>,
) {
    let mut record = FutureRecord::to(topic)
        .key(patient)
        .payload(payload)
        .timestamp(ms);
    if let Some(sig) = signature {
        record = record.headers(OwnedHeaders::new().insert(Header {
            key: SIGNATURE_HEADER,
            value: Some(sig),
        }));
    }
    producer
        .send(record, Duration::from_secs(10))
        .await
        .expect("sent");
}

fn producer(brokers: &str) -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .expect("a producer")
}

fn shown(b: &Arc<Shared>) -> Vec<(String, Option<String>, bool)> {
    b.fold
        .lock()
        .expect("board")
        .board()
        .cards(now(), &settings())
        .iter()
        .map(|c| {
            (
                c.case.patient_id.clone(),
                c.case.owner.clone(),
                c.case.stopped,
            )
        })
        .collect()
}

/// Issue 31: anyone who could write to the action topic could dismiss any patient's
/// alerts (`"role":"admin"` removed an emergency from every board).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_boards_agree_and_only_actions_signed_with_the_shared_key_are_obeyed() {
    let broker = MockBroker::start(1).expect("a broker");
    broker.create_topic("alerts", 2).expect("topic");
    broker.create_topic("actions", 2).expect("topic");
    let brokers = broker.bootstrap_servers();
    let sink = Arc::new(
        KafkaSink::new(&brokers, &Default::default(), "actions", key()).expect("a producer"),
    );
    let boards = [shared(sink.clone()), shared(sink.clone())];
    let _tasks: Vec<_> = boards.iter().map(|b| following(&brokers, b)).collect();
    let producer = producer(&brokers);
    let t0 = common::now().as_millis();
    let alert = alert_json("a1", "P1", "raised", "emergency", 0);
    send(&producer, "alerts", "P1", &alert, t0, None).await;
    assert!(
        eventually(Duration::from_secs(30), || boards
            .iter()
            .all(|b| shown(b).len() == 1))
        .await,
        "both boards show the alert"
    );
    // Forged: an administrator's dismissal without a signature, one signed with another
    // key, and one whose bytes were changed after signing.
    let forged = action(
        "f1",
        ActionKind::Dismiss {
            reason: "not sepsis".into(),
        },
        "ghost",
        Role::Admin,
    );
    let forged_json = forged.to_json();
    send(&producer, "actions", "P1", &forged_json, t0 + 1, None).await;
    let other = ActionKey::from_hex(&"77".repeat(32)).expect("a key");
    let f2 = action(
        "f2",
        ActionKind::Dismiss {
            reason: "not sepsis".into(),
        },
        "ghost",
        Role::Admin,
    )
    .to_json();
    send(
        &producer,
        "actions",
        "P1",
        &f2,
        t0 + 2,
        Some(&other.sign(f2.as_bytes())),
    )
    .await;
    let genuine = action("f3", ActionKind::Accept, "alice", Role::Nurse).to_json();
    let tampered = genuine.replace("alice", "ghost");
    send(
        &producer,
        "actions",
        "P1",
        &tampered,
        t0 + 3,
        Some(&key().sign(genuine.as_bytes())),
    )
    .await;
    // An accepted action published by one instance (signed by its sink) reaches both.
    let accept = action("x1", ActionKind::Accept, "alice", Role::Nurse);
    // As the HTTP handler calls it: from a task of the multi-threaded runtime.
    assert_eq!(sink.publish(&accept), Ok(()));
    let agreed = eventually(Duration::from_secs(30), || {
        boards
            .iter()
            .all(|b| shown(b) == vec![("P1".to_owned(), Some("alice".to_owned()), false)])
    })
    .await;
    assert!(agreed, "{:?} / {:?}", shown(&boards[0]), shown(&boards[1]));
    for b in &boards {
        let history = b
            .fold
            .lock()
            .expect("board")
            .board()
            .case("P1")
            .expect("a case")
            .history
            .len();
        assert_eq!(history, 2, "the alert and the signed action; no forged one");
        let metrics = b.counters.render();
        for line in [
            "vigil_board_actions_unverified_total{reason=\"unsigned\"} 1",
            "vigil_board_actions_unverified_total{reason=\"wrong_signature\"} 2",
        ] {
            assert!(metrics.contains(line), "{line} in {metrics}");
        }
    }
}

/// Issue 31: the alert and action topics were read independently, so an action read
/// before its patient's alert was refused ("no case") and lost, and a second board on the
/// same broker differed from the first. Boards started at different moments, one
/// restarted mid-stream, now fold the same state, card by card and case by case.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boards_started_and_restarted_at_any_moment_fold_the_same_state() {
    let broker = MockBroker::start(1).expect("a broker");
    broker.create_topic("alerts", 3).expect("topic");
    broker.create_topic("actions", 2).expect("topic");
    let brokers = broker.bootstrap_servers();
    let sink = Arc::new(
        KafkaSink::new(&brokers, &Default::default(), "actions", key()).expect("a producer"),
    );
    let producer = producer(&brokers);
    let first = shared(sink.clone());
    let _first_task = following(&brokers, &first);
    assert!(eventually(Duration::from_secs(30), || first.feed_state() == "live").await);
    let t0 = common::now().as_millis();
    let mut sent = 0usize;
    let mut second: Option<Arc<Shared>> = None;
    let mut second_task = None;
    let mut restarted = None;
    for i in 0..8u32 {
        let patient = format!("P{i}");
        let ms = t0 + i64::from(i) * 60_000;
        // Each patient's actions reach the topic before their alert does (as when the
        // service's transaction commits after a board has already acted on an earlier
        // alert of the same patient), with later timestamps.
        let actions = [
            (ActionKind::Escalate, "vigil", Role::System),
            (ActionKind::Escalate, "vigil", Role::System),
            (ActionKind::Accept, "alice", Role::Nurse),
            (
                ActionKind::Note {
                    text: format!("seen {i}"),
                },
                "alice",
                Role::Nurse,
            ),
        ];
        for (k, (kind, user, role)) in actions.into_iter().enumerate() {
            let mut a = action(&format!("act-{i}-{k}"), kind, user, role);
            a.patient_id.clone_from(&patient);
            a.encounter_id = Some(format!("E-{patient}"));
            let json = a.to_json();
            let sig = key().sign(json.as_bytes());
            send(
                &producer,
                "actions",
                &patient,
                &json,
                ms + 1000 + k as i64,
                Some(&sig),
            )
            .await;
            sent += 1;
        }
        // The first board has read (and, for want of a case, refused) the patient's
        // actions before the alert is sent: the alert arrives after them.
        let refused = u64::from(4 * (i + 1));
        assert!(
            eventually(Duration::from_secs(30), || {
                first
                    .counters
                    .refused
                    .load(std::sync::atomic::Ordering::Relaxed)
                    >= refused
            })
            .await,
            "the first board read P{i}'s actions"
        );
        let level = ["urgent", "emergency"][i as usize % 2];
        let alert = alert_json(&format!("al-{i}"), &patient, "raised", level, i);
        send(&producer, "alerts", &patient, &alert, ms, None).await;
        sent += 1;
        if i == 2 {
            // A second board starts mid-stream ...
            let b = shared(sink.clone());
            second_task = Some(following(&brokers, &b));
            second = Some(b);
        }
        if i == 5
            && let Some(task) = second_task.take()
        {
            // ... and restarts: a new instance reads everything again.
            task.abort();
            let again = shared(sink.clone());
            drop(following(&brokers, &again));
            restarted = Some(again);
        }
    }
    let second = second.expect("started");
    let restarted = restarted.expect("restarted");
    // The instance that was restarted stopped mid-stream: it is not compared.
    let _ = second;
    let late = shared(sink.clone());
    let _late_task = following(&brokers, &late);
    let complete = |b: &Arc<Shared>| {
        let fold = b.fold.lock().expect("board");
        let entries: usize = (0..8)
            .filter_map(|i| fold.board().case(&format!("P{i}")))
            .map(|c| c.history.len())
            .sum();
        entries == sent
    };
    let all = [&first, &restarted, &late];
    assert!(
        eventually(Duration::from_secs(60), || all.iter().all(|b| complete(b))).await,
        "every board folded every alert and action: {:?}",
        all.iter().map(|b| complete(b)).collect::<Vec<_>>()
    );
    let reference = first.fold.lock().expect("board").board().clone();
    for (i, case) in (0..8).filter_map(|i| reference.case(&format!("P{i}")).map(|c| (i, c))) {
        assert_eq!(case.tier, 2, "P{i}: two escalations");
        assert_eq!(case.owner.as_deref(), Some("alice"), "P{i}");
    }
    for b in [&restarted, &late] {
        let board = b.fold.lock().expect("board").board().clone();
        for i in 0..8 {
            let p = format!("P{i}");
            assert_eq!(board.case(&p), reference.case(&p), "case {p}");
        }
        assert_eq!(board, reference);
        assert_eq!(
            b.board_json(now(), Role::Admin),
            first.board_json(now(), Role::Admin),
            "card by card"
        );
    }
    assert!(
        first
            .counters
            .render()
            .contains("vigil_board_events_reordered_total 8"),
        "the live board put each patient's alert before its actions: {}",
        first.counters.render()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_board_that_cannot_reach_kafka_says_so_instead_of_showing_all_clear() {
    let broker = MockBroker::start(1).expect("a broker");
    broker.create_topic("alerts", 1).expect("topic");
    broker.create_topic("actions", 1).expect("topic");
    let brokers = broker.bootstrap_servers();
    let sink = Arc::new(
        KafkaSink::new(&brokers, &Default::default(), "actions", key()).expect("a producer"),
    );
    let board = shared(sink);
    let json = |b: &Shared| -> serde_json::Value {
        serde_json::from_str(&b.board_json(now(), vigil_board::Role::Nurse)).expect("JSON")
    };
    assert_eq!(json(&board)["feed"], "connecting");
    let _task = following(&brokers, &board);
    assert!(eventually(Duration::from_secs(30), || board.feed_state() == "live").await);
    assert_eq!(json(&board)["feed"], "live");
    broker.broker_down(1).expect("down");
    assert!(
        eventually(Duration::from_secs(60), || board.feed_state()
            == "unreachable")
        .await,
        "the board never noticed the broker was gone"
    );
    let v = json(&board);
    assert_eq!(v["feed"], "unreachable");
    assert_eq!(v["cards"], serde_json::json!([]));
    broker.broker_up(1).expect("up");
    assert!(
        eventually(Duration::from_secs(60), || board.feed_state() == "live").await,
        "the board never noticed the broker was back"
    );
}

/// A board that cannot sign what it publishes must not start: the error names the setting
/// (and a file that holds no key is refused without quoting it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_board_without_the_action_key_does_not_start_and_names_the_setting() {
    let mut raw = vigil_stream::config::Config::default();
    raw.board.listen = "127.0.0.1:0".into();
    let settings = raw.clone().validate().expect("valid settings");
    let stop = tokio_util::sync::CancellationToken::new();
    let refused = vigil_web::app::start(&settings.kafka, &settings.board, stop.clone())
        .await
        .err()
        .expect("refused without a key");
    assert!(
        refused
            .to_string()
            .contains("board.action_key_file: not set"),
        "{refused}"
    );
    let bad = std::env::temp_dir().join(format!("vigil-bad-{}.key", std::process::id()));
    std::fs::write(&bad, "hunter2-not-a-key").expect("written");
    raw.board.action_key_file = bad.display().to_string();
    let settings = raw.validate().expect("valid settings");
    let refused = vigil_web::app::start(&settings.kafka, &settings.board, stop)
        .await
        .err()
        .expect("refused with a bad key");
    let text = refused.to_string();
    assert!(
        text.contains("board.action_key_file") && text.contains("hex"),
        "{text}"
    );
    assert!(!text.contains("hunter2"), "{text}");
    let _ = std::fs::remove_file(bad);
}
