//! The board's Kafka side against a Kafka-protocol broker: two board instances following
//! the same topics show the same state, an action published by one reaches both, and a
//! forged action on the topic changes nothing.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{now, settings};
use rdkafka::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};
use vigil_board::{Action, ActionKind, Board, Role};
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_boards_following_the_topics_agree_and_forged_actions_change_nothing() {
    let broker = MockBroker::start(1).expect("a broker");
    broker.create_topic("alerts", 2).expect("topic");
    broker.create_topic("actions", 2).expect("topic");
    let brokers = broker.bootstrap_servers();
    let sink =
        Arc::new(KafkaSink::new(&brokers, &Default::default(), "actions").expect("a producer"));
    let boards = [shared(sink.clone()), shared(sink.clone())];
    for b in &boards {
        let (brokers, b) = (brokers.clone(), b.clone());
        tokio::spawn(
            async move { follow(&brokers, &Default::default(), "alerts", "actions", b).await },
        );
    }
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .create()
        .expect("a producer");
    let alert = serde_json::json!({
        "alert_id": "a1", "decision_id": "d1", "patient_id": "P1", "encounter_id": "E1",
        "location": "ward-7/bed-1", "rule": "news2", "kind": "raised", "level": "urgent",
        "score": 6, "message": "NEWS2 6 (medium)", "first_raised_at": "2026-11-23T10:00:00Z",
        "emitted_at": "2026-11-23T10:00:00Z"})
    .to_string();
    producer
        .send(
            FutureRecord::to("alerts").key("P1").payload(&alert),
            Duration::from_secs(10),
        )
        .await
        .expect("sent");
    let shown = |b: &Arc<Shared>| {
        b.board
            .lock()
            .expect("board")
            .cards(now(), &settings())
            .iter()
            .map(|c| {
                (
                    c.case.patient_id.clone(),
                    c.case.owner.clone(),
                    c.case.stopped,
                )
            })
            .collect::<Vec<_>>()
    };
    assert!(
        eventually(Duration::from_secs(30), || boards
            .iter()
            .all(|b| shown(b).len() == 1))
        .await,
        "both boards show the alert"
    );
    // A forged action on the topic (a nurse stopping alerts) is refused by every board.
    let forged = action("f1", ActionKind::Stop, "alice", Role::Nurse).to_json();
    producer
        .send(
            FutureRecord::to("actions").key("P1").payload(&forged),
            Duration::from_secs(10),
        )
        .await
        .expect("sent");
    // An accepted action published by one instance reaches both.
    let accept = action("x1", ActionKind::Accept, "alice", Role::Nurse);
    // As the HTTP handler calls it: from a task of the multi-threaded runtime.
    let published = sink.publish(&accept);
    assert_eq!(published, Ok(()));
    let agreed = eventually(Duration::from_secs(30), || {
        boards
            .iter()
            .all(|b| shown(b) == vec![("P1".to_owned(), Some("alice".to_owned()), false)])
    })
    .await;
    assert!(agreed, "{:?} / {:?}", shown(&boards[0]), shown(&boards[1]));
    let history = boards[0]
        .board
        .lock()
        .expect("board")
        .case("P1")
        .expect("a case")
        .history
        .len();
    assert_eq!(
        history, 2,
        "the alert and the accepted action; the forged one is not recorded"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_board_that_cannot_reach_kafka_says_so_instead_of_showing_all_clear() {
    let broker = MockBroker::start(1).expect("a broker");
    broker.create_topic("alerts", 1).expect("topic");
    broker.create_topic("actions", 1).expect("topic");
    let brokers = broker.bootstrap_servers();
    let sink =
        Arc::new(KafkaSink::new(&brokers, &Default::default(), "actions").expect("a producer"));
    let board = shared(sink);
    let json = |b: &Shared| -> serde_json::Value {
        serde_json::from_str(&b.board_json(now(), vigil_board::Role::Nurse)).expect("JSON")
    };
    assert_eq!(json(&board)["feed"], "connecting");
    let (b, servers) = (board.clone(), brokers.clone());
    tokio::spawn(
        async move { follow(&servers, &Default::default(), "alerts", "actions", b).await },
    );
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
