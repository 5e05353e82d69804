//! The board's Kafka side: following the alert and action topics into the board (every
//! partition from the beginning, `read_committed`, joining no group, so every instance
//! rebuilds the same state), and publishing accepted actions to the action topic.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use vigil_board::{Action, AlertEvent};
use vigil_stream::watch::WatchedContext;

/// How often the board checks whether it can reach the brokers while it cannot.
const PROBE_EVERY: Duration = Duration::from_secs(2);

use crate::server::{ActionSink, Shared};

/// A client configuration with the raw `[kafka.librdkafka]` settings (TLS, SASL) and the
/// brokers.
fn client(brokers: &str, librdkafka: &BTreeMap<String, String>) -> ClientConfig {
    let mut c = ClientConfig::new();
    for (k, v) in librdkafka {
        c.set(k, v);
    }
    c.set("bootstrap.servers", brokers);
    c
}

/// Publishes accepted actions to the action topic, keyed by patient, acknowledged by
/// every in-sync replica before the user is told it was accepted.
pub struct KafkaSink {
    producer: FutureProducer,
    topic: String,
}

impl KafkaSink {
    /// A sink writing to `topic` on `brokers`.
    ///
    /// # Errors
    ///
    /// When librdkafka refuses the settings.
    pub fn new(
        brokers: &str,
        librdkafka: &BTreeMap<String, String>,
        topic: &str,
    ) -> Result<KafkaSink, rdkafka::error::KafkaError> {
        let producer = client(brokers, librdkafka)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("message.timeout.ms", "10000")
            .create()?;
        Ok(KafkaSink {
            producer,
            topic: topic.to_owned(),
        })
    }
}

impl ActionSink for KafkaSink {
    fn publish(&self, action: &Action) -> Result<(), String> {
        let payload = action.to_json();
        let record = FutureRecord::to(&self.topic)
            .key(&action.patient_id)
            .payload(&payload);
        let send = self.producer.send(record, Duration::from_secs(10));
        let handle = tokio::runtime::Handle::try_current().map_err(|e| e.to_string())?;
        // The acknowledgement is awaited on the runtime; only its outcome comes back.
        tokio::task::block_in_place(|| {
            handle.block_on(async { send.await.map(|_| ()).map_err(|(e, _)| e.to_string()) })
        })
    }
}

/// Follows `alerts` and `actions` on `brokers` into `shared.board` until the task is
/// dropped: every partition from the beginning, committed transactions only. An event
/// that cannot be read, or an action the board refuses, is logged without its content
/// and skipped.
///
/// # Errors
///
/// When the consumer cannot be created or the topics' partitions cannot be learnt.
pub async fn follow(
    brokers: &str,
    librdkafka: &BTreeMap<String, String>,
    alerts: &str,
    actions: &str,
    shared: Arc<Shared>,
) -> Result<(), rdkafka::error::KafkaError> {
    let context = WatchedContext {
        watch: shared.feed.clone(),
        operation: "following the alert and action topics for the board",
    };
    let consumer: StreamConsumer<WatchedContext> = client(brokers, librdkafka)
        .set("group.id", "vigil-board")
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        // An alert should reach the screen at once: ask again soon when nothing is new
        // (brokers that answer a fetch only when it times out otherwise hold each alert
        // for up to librdkafka's default half second).
        .set("fetch.wait.max.ms", "10")
        .create_with_context(context)?;
    let mut tpl = TopicPartitionList::new();
    for topic in [alerts, actions] {
        let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
        for t in metadata.topics() {
            for p in t.partitions() {
                tpl.add_partition_offset(topic, p.id(), Offset::Beginning)?;
            }
        }
    }
    consumer.assign(&tpl)?;
    shared
        .following
        .store(true, std::sync::atomic::Ordering::Relaxed);
    shared.changed();
    let consumer = Arc::new(consumer);
    let mut shown = shared.feed_state();
    let mut probe = tokio::time::interval(PROBE_EVERY);
    loop {
        let m = tokio::select! {
            m = consumer.recv() => m,
            _ = probe.tick() => {
                // While the brokers are unreachable no message arrives to say they are
                // back: ask them.
                if shared.feed.is_down() {
                    let c = consumer.clone();
                    let answered = tokio::task::spawn_blocking(move || {
                        c.fetch_metadata(None, Duration::from_secs(1)).is_ok()
                    })
                    .await
                    .unwrap_or(false);
                    if answered {
                        shared.feed.reachable();
                    }
                }
                if shared.feed_state() != shown {
                    shown = shared.feed_state();
                    shared.changed();
                }
                continue;
            }
        };
        let m = match m {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "Board: consuming failed; retrying");
                continue;
            }
        };
        shared.feed.reachable();
        let payload = m.payload().unwrap_or_default();
        let mut board = shared.board.lock().unwrap_or_else(|p| p.into_inner());
        apply(
            &mut board,
            &shared,
            m.topic() == alerts,
            payload,
            (m.partition(), m.offset()),
        );
        drop(board);
        shared.changed();
    }
}

/// Applies one message of the alert topic (`is_alert`) or the action topic.
fn apply(
    board: &mut vigil_board::Board,
    shared: &Shared,
    is_alert: bool,
    payload: &[u8],
    (partition, offset): (i32, i64),
) {
    if is_alert {
        match AlertEvent::from_json(payload) {
            Ok(event) => {
                board.apply_alert(event);
            }
            Err(_) => {
                tracing::warn!(
                    partition,
                    offset,
                    "Board: not an alert event (unreadable JSON or a missing field); skipped"
                )
            }
        }
    } else {
        match Action::from_json(payload) {
            Ok(action) => {
                if let Err(refusal) = board.apply_action(action, &shared.settings) {
                    tracing::warn!(
                        partition,
                        offset,
                        reason = refusal.kind(),
                        "Board: action refused; skipped"
                    );
                }
            }
            Err(_) => {
                tracing::warn!(
                    partition,
                    offset,
                    "Board: not an action event (unreadable JSON or a missing field); skipped"
                )
            }
        }
    }
}
