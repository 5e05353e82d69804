//! The board's Kafka side: following the alert and action topics into the board (every
//! partition from the beginning, `read_committed`, joining no group, folded in a defined
//! order so that every instance, started or restarted whenever, rebuilds the same state;
//! actions only with a valid signature), and publishing accepted actions to the action
//! topic, signed.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use std::collections::HashSet;
use std::sync::atomic::Ordering::Relaxed;

use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use vigil_board::{
    Action, ActionKey, AlertEvent, Event, Folded, Position, SIGNATURE_HEADER, Topic, Unverified,
};
use vigil_stream::watch::WatchedContext;

/// How often the board checks whether it can reach the brokers while it cannot.
const PROBE_EVERY: Duration = Duration::from_secs(2);

use crate::server::{ActionSink, Shared, lock};

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
    key: ActionKey,
}

impl KafkaSink {
    /// A sink writing to `topic` on `brokers`, signing each action with `key`.
    ///
    /// # Errors
    ///
    /// When librdkafka refuses the settings.
    pub fn new(
        brokers: &str,
        librdkafka: &BTreeMap<String, String>,
        topic: &str,
        key: ActionKey,
    ) -> Result<KafkaSink, rdkafka::error::KafkaError> {
        let producer = client(brokers, librdkafka)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("message.timeout.ms", "10000")
            .create()?;
        Ok(KafkaSink {
            producer,
            topic: topic.to_owned(),
            key,
        })
    }
}

impl ActionSink for KafkaSink {
    fn publish(&self, action: &Action) -> Result<(), String> {
        let payload = action.to_json();
        let signature = self.key.sign(payload.as_bytes());
        let record = FutureRecord::to(&self.topic)
            .key(&action.patient_id)
            .payload(&payload)
            .headers(OwnedHeaders::new().insert(Header {
                key: SIGNATURE_HEADER,
                value: Some(&signature),
            }));
        let send = self.producer.send(record, Duration::from_secs(10));
        let handle = tokio::runtime::Handle::try_current().map_err(|e| e.to_string())?;
        // The acknowledgement is awaited on the runtime; only its outcome comes back.
        tokio::task::block_in_place(|| {
            handle.block_on(async { send.await.map(|_| ()).map_err(|(e, _)| e.to_string()) })
        })
    }
}

/// A consumer of one topic, every partition from the beginning, committed transactions
/// only, saying when it reaches a partition's end.
fn consumer(
    brokers: &str,
    librdkafka: &BTreeMap<String, String>,
    topic: &str,
    watch: Arc<vigil_stream::watch::BrokerWatch>,
) -> Result<(StreamConsumer<WatchedContext>, usize), rdkafka::error::KafkaError> {
    let context = WatchedContext {
        watch,
        operation: "following the alert and action topics for the board",
    };
    let consumer: StreamConsumer<WatchedContext> = client(brokers, librdkafka)
        .set("group.id", "vigil-board")
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "true")
        // An alert should reach the screen at once: ask again soon when nothing is new
        // (brokers that answer a fetch only when it times out otherwise hold each alert
        // for up to librdkafka's default half second).
        .set("fetch.wait.max.ms", "10")
        .create_with_context(context)?;
    let mut tpl = TopicPartitionList::new();
    let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
    for t in metadata.topics() {
        for p in t.partitions() {
            tpl.add_partition_offset(topic, p.id(), Offset::Beginning)?;
        }
    }
    consumer.assign(&tpl)?;
    Ok((consumer, tpl.count()))
}

/// One message of either topic, or a partition's end, as read.
enum Read {
    /// A message, checked and parsed (or not).
    Message(Position, Result<Event, Unreadable>),
    /// The end of a partition of the alert topic (`true`) or the action topic.
    End(bool, i32),
}

/// Why a message is not folded.
#[derive(Clone, Copy, Debug)]
enum Unreadable {
    /// Not an event of its topic (unreadable JSON or a missing field).
    Malformed,
    /// An action whose signature is missing or wrong.
    Unverified(Unverified),
}

/// Reads one message of `topic`: an action is verified against `key` before it is
/// parsed.
fn read(m: &BorrowedMessage<'_>, topic: Topic, key: &ActionKey) -> Read {
    let at = Position {
        time_ms: m.timestamp().to_millis().unwrap_or(i64::MIN),
        topic,
        partition: m.partition(),
        offset: m.offset(),
    };
    let payload = m.payload().unwrap_or_default();
    let event = match topic {
        Topic::Alerts => AlertEvent::from_json(payload)
            .map(|e| Event::Alert(Box::new(e)))
            .map_err(|_| Unreadable::Malformed),
        Topic::Actions => {
            let signature = m.headers().and_then(|h| {
                h.iter()
                    .find(|h| h.key == SIGNATURE_HEADER)
                    .and_then(|h| h.value)
            });
            key.verify(payload, signature)
                .map_err(Unreadable::Unverified)
                .and_then(|()| {
                    Action::from_json(payload)
                        .map(Event::Action)
                        .map_err(|_| Unreadable::Malformed)
                })
        }
    };
    Read::Message(at, event)
}

/// Follows `alerts` and `actions` on `brokers` into `shared`'s board until the task is
/// dropped. First it reads both topics to their ends and folds what they held in the
/// defined order ([`vigil_board::Position`]), then it folds each message as it arrives
/// (a patient whose events arrive out of order is rebuilt in order). An action whose
/// signature is missing or does not match under `key`, an event that cannot be read and
/// an action the board refuses are counted and logged without their content, and never
/// applied.
///
/// # Errors
///
/// When a consumer cannot be created or the topics' partitions cannot be learnt.
pub async fn follow(
    brokers: &str,
    librdkafka: &BTreeMap<String, String>,
    (alerts, actions): (&str, &str),
    key: ActionKey,
    shared: Arc<Shared>,
) -> Result<(), rdkafka::error::KafkaError> {
    let (alert_consumer, alert_partitions) =
        consumer(brokers, librdkafka, alerts, shared.feed.clone())?;
    let (action_consumer, action_partitions) =
        consumer(brokers, librdkafka, actions, shared.feed.clone())?;
    let alert_consumer = Arc::new(alert_consumer);
    let action_consumer = Arc::new(action_consumer);
    let mut shown = shared.feed_state();
    let mut probe = tokio::time::interval(PROBE_EVERY);
    // Catching up: everything up to each partition's end, then folded in order.
    let mut ended: HashSet<(bool, i32)> = HashSet::new();
    let mut held: Vec<(Position, Event)> = Vec::new();
    let mut caught_up = alert_partitions + action_partitions == 0;
    loop {
        if !caught_up && ended.len() >= alert_partitions + action_partitions {
            held.sort_by_key(|(at, _)| *at);
            let mut fold = lock(&shared.fold);
            for (at, event) in held.drain(..) {
                let folded = fold.apply(at, event, &shared.settings);
                count(&shared, &folded, at);
            }
            drop(fold);
            caught_up = true;
            shared
                .following
                .store(true, std::sync::atomic::Ordering::Relaxed);
            shared.changed();
        }
        let read = tokio::select! {
            m = alert_consumer.recv() => match m {
                Ok(m) => read(&m, Topic::Alerts, &key),
                Err(KafkaError::PartitionEOF(p)) => Read::End(true, p),
                Err(e) => {
                    tracing::warn!(error = %e, "Board: consuming the alert topic failed; retrying");
                    continue;
                }
            },
            m = action_consumer.recv() => match m {
                Ok(m) => read(&m, Topic::Actions, &key),
                Err(KafkaError::PartitionEOF(p)) => Read::End(false, p),
                Err(e) => {
                    tracing::warn!(error = %e, "Board: consuming the action topic failed; retrying");
                    continue;
                }
            },
            _ = probe.tick() => {
                // While the brokers are unreachable no message arrives to say they are
                // back: ask them.
                if shared.feed.is_down() {
                    let c = alert_consumer.clone();
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
        shared.feed.reachable();
        let (at, event) = match read {
            Read::End(topic, partition) => {
                ended.insert((topic, partition));
                continue;
            }
            Read::Message(at, Ok(event)) => (at, event),
            Read::Message(at, Err(why)) => {
                not_folded(&shared, at, why);
                continue;
            }
        };
        if caught_up {
            let folded = lock(&shared.fold).apply(at, event, &shared.settings);
            count(&shared, &folded, at);
            shared.changed();
        } else {
            held.push((at, event));
        }
    }
}

/// Counts and logs (without content) a message that is not folded.
fn not_folded(shared: &Shared, at: Position, why: Unreadable) {
    let (partition, offset) = (at.partition, at.offset);
    match why {
        Unreadable::Malformed => {
            shared.counters.unreadable.fetch_add(1, Relaxed);
            tracing::warn!(
                topic = ?at.topic,
                partition,
                offset,
                "Board: not an event of its topic (unreadable JSON or a missing field); skipped"
            );
        }
        Unreadable::Unverified(u) => {
            shared.counters.unverified[u as usize].fetch_add(1, Relaxed);
            tracing::warn!(
                partition,
                offset,
                reason = u.name(),
                "Board: an action without a valid signature refused (not taken on a board \
                 holding the shared key); not applied"
            );
        }
    }
}

/// Counts what folding a message did, and logs a refusal without content.
fn count(shared: &Shared, folded: &Folded, at: Position) {
    if folded.reordered {
        shared.counters.reordered.fetch_add(1, Relaxed);
    }
    if folded.late {
        shared.counters.late.fetch_add(1, Relaxed);
        tracing::warn!(
            partition = at.partition,
            offset = at.offset,
            "Board: an event arrived after its patient's later events, beyond the reordering \
             horizon; applied after them"
        );
    }
    if let Err(refusal) = &folded.outcome {
        shared.counters.refused.fetch_add(1, Relaxed);
        tracing::warn!(
            partition = at.partition,
            offset = at.offset,
            reason = refusal.kind(),
            "Board: action refused; skipped"
        );
    }
}
