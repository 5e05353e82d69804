//! The consumer loop: observations in, scores and alerts out, exactly once by default.
//!
//! Messages are processed in batches. For each message the wire decoder validates it; a
//! rejected message goes to the dead-letter topic unchanged, with its reason and source
//! coordinates in headers. An accepted observation is applied to its patient's window
//! (owned by the partition it arrived on), the patient is re-scored, and the alert policy
//! decides; each decision becomes an alert event keyed by patient. How a batch reaches
//! Kafka is the delivery mode's business (`crate::delivery`): under exactly-once a
//! batch's alerts, dead letters, state records, checkpoints and input offsets are one
//! Kafka transaction, each changelog partition's share of it sealed by a checkpoint written
//! last, and restore (here) applies only sealed shares (DESIGN.md, "What is the delivery
//! guarantee?"); under at-least-once the offsets are committed once the output is
//! acknowledged. Newly assigned partitions are restored from the changelog at the batch
//! boundary, side by side.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Header, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, Producer};
use rdkafka::{Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;

use crate::changelog::{ENCOUNTER, INPUT_OFFSET, LOCATION, restore_partitions};
use crate::config::Settings;
use crate::delivery::Delivery;
use crate::event::now;
use crate::http::Readiness;
use crate::metrics::Metrics;
use crate::ownership::{Rebalances, VigilContext, assigned, epoch, take_revoked};
use crate::processing::{PatientState, process, publish, remind};

/// Why the service stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceError {
    /// A Kafka client could not be created or subscribed.
    #[error("Kafka client: {0}")]
    Kafka(#[from] KafkaError),
    /// A transaction could not begin, commit its offsets or commit; it was aborted and
    /// the batch will be redelivered.
    #[error("transaction failed: {0}")]
    Transaction(KafkaError),
    /// A partition's changelog could not be restored.
    #[error("state restore of partition {partition}: {reason}")]
    Restore {
        /// Input partition.
        partition: i32,
        /// Why.
        reason: &'static str,
    },
    /// The consumer had no group membership to bind a transaction's offsets to.
    #[error("the consumer is not a member of its group; the batch's offsets cannot be committed")]
    NotInGroup,
    /// A produced message was not acknowledged; the batch was not committed and will be
    /// redelivered.
    #[error("broker did not acknowledge a {what} message: {error}")]
    Delivery {
        /// Alert or dead letter.
        what: &'static str,
        /// The broker's error.
        error: KafkaError,
    },
}

/// One message to produce, owned until the broker acknowledges it.
pub(crate) struct Outgoing {
    pub(crate) topic: String,
    /// An explicit partition (state records go to the input's partition number).
    pub(crate) partition: Option<i32>,
    pub(crate) key: Option<Vec<u8>>,
    pub(crate) payload: Vec<u8>,
    pub(crate) headers: Option<OwnedHeaders>,
    /// What it is, for delivery errors.
    pub(crate) what: &'static str,
}

/// Client settings: `defaults` first, then the raw `[kafka.librdkafka]` settings, which
/// may override them (the keys Vigil must own are refused at validation).
pub(crate) fn client_config(settings: &Settings, defaults: &[(&str, &str)]) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &settings.kafka.brokers);
    for (k, v) in defaults {
        c.set(*k, *v);
    }
    for (k, v) in &settings.kafka.librdkafka {
        c.set(k, v);
    }
    c
}

/// Runs the service until `shutdown` is cancelled, then stops in order: stop consuming,
/// finish the batch in flight (commit its transaction, or deliver and commit its
/// offsets), flush the producer, return.
///
/// # Errors
///
/// A [`ServiceError`] when a client cannot be created, a produced message is not
/// acknowledged or a transaction fails (the batch is then not committed, so it is
/// redelivered, and its state records are ignored on restore).
pub async fn run(
    settings: Settings,
    metrics: Metrics,
    readiness: Arc<Readiness>,
    shutdown: CancellationToken,
) -> Result<(), ServiceError> {
    let k = &settings.kafka;
    let rebalances = Arc::new(Mutex::new(Rebalances::default()));
    let session = session_id();
    let context = VigilContext {
        rebalances: rebalances.clone(),
        readiness: readiness.clone(),
        metrics: metrics.clone(),
    };
    let consumer: StreamConsumer<VigilContext> = client_config(
        &settings,
        &[
            ("auto.offset.reset", "earliest"),
            ("session.timeout.ms", "6000"),
            // Alert latency matters more than fetch efficiency when the feed is quiet.
            ("fetch.wait.max.ms", "2"),
        ],
    )
    .set("group.id", &k.group_id)
    .set("enable.auto.commit", "false")
    .set("enable.auto.offset.store", "false")
    .set("isolation.level", "read_committed")
    .create_with_context(context)?;
    let mut producer_config = client_config(
        &settings,
        &[
            ("enable.idempotence", "true"),
            ("acks", "all"),
            ("linger.ms", "1"),
        ],
    );
    let mut delivery = Delivery::new(&settings);
    delivery.configure(&mut producer_config);
    let producer: FutureProducer = producer_config.create()?;
    delivery.start(&producer)?;
    consumer.subscribe(&[k.observations_topic.as_str()])?;
    readiness.set_consuming(true);
    tracing::info!(
        topic = %k.observations_topic,
        group = %k.group_id,
        exactly_once = delivery.is_exactly_once(),
        "Consuming"
    );

    let mut partitions: HashMap<i32, HashMap<String, PatientState>> = HashMap::new();
    let state_topic = k.state_topic.clone();
    // Partitions restored from the changelog, each with its checkpoint: input below it was
    // already processed by the restored state.
    let mut restored: HashMap<i32, Option<i64>> = HashMap::new();
    // Partitions restored whose first message has not been seen yet: their checkpoint and
    // whether unsealed records were skipped, to check the consumer's position against.
    let mut first_check: HashMap<i32, (Option<i64>, bool)> = HashMap::new();
    let mut seq = 0u64;
    let max_messages = settings.service.batch_max_messages;
    let max_wait = settings.service.batch_max_wait;
    let mut result = Ok(());
    // A message received to see where a full batch may end, kept for the next batch.
    let mut carried = None;
    // Each input partition's next offset after the last committed batch, for sealing a
    // transaction that only reports overdue alerts (it consumed nothing).
    let mut positions: HashMap<i32, i64> = HashMap::new();
    let overdue_every = settings.service.overdue_check;
    let mut next_overdue_check = tokio::time::Instant::now() + overdue_every;
    'consume: loop {
        let first = match carried.take() {
            Some(first) => Some(first),
            None => tokio::select! {
                () = shutdown.cancelled() => break 'consume,
                m = consumer.recv() => Some((m, epoch(&rebalances))),
                () = tokio::time::sleep_until(next_overdue_check) => None,
            },
        };
        let started = Instant::now();
        let mut batch = Vec::from_iter(first);
        let deadline = tokio::time::Instant::now() + max_wait;
        while !batch.is_empty() && batch.len() < max_messages {
            match tokio::time::timeout_at(deadline, consumer.recv()).await {
                Ok(m) => batch.push((m, epoch(&rebalances))),
                Err(_) => break,
            }
        }
        // A vital-sign set is decided once, after all its readings in the batch: a batch
        // should not end in the middle of a set sent as a burst of messages. So take what
        // has already been fetched, and let a full batch end only where the key changes
        // (the message that shows it starts the next batch).
        let mut lookahead = None;
        while !batch.is_empty() && batch.len() < max_messages + MAX_SET_MESSAGES {
            match tokio::time::timeout(Duration::from_millis(1), consumer.recv()).await {
                Ok(m) => {
                    let full = batch.len() >= max_messages;
                    let next = (m, epoch(&rebalances));
                    let continues =
                        batch.last().map(|b| batch_key(&b.0)) == Some(batch_key(&next.0));
                    if full && !continues {
                        lookahead = Some(next);
                        break;
                    }
                    batch.push(next);
                }
                Err(_) => break,
            }
        }
        // Rebalance callbacks run only inside `recv`, and every transaction is committed
        // before the next `recv`, so a revocation never finds a transaction open: the
        // partitions' committed offsets and changelog are complete, and the instance that
        // gains them restores from there. A revocation inside one of those `recv`s: the
        // state of the revoked partitions is dropped (their patients now belong elsewhere,
        // or are restored afresh if they come back), and the messages taken from them
        // before it are not ours to process any more (their new owner, which may be this
        // instance again, starts from the committed position); messages received after it
        // come from the new assignment.
        let revoked = take_revoked(&rebalances);
        if !revoked.is_empty() {
            let mut latest: HashMap<i32, u64> = HashMap::new();
            for (p, e) in &revoked {
                let l = latest.entry(*p).or_insert(0);
                *l = (*l).max(*e);
                partitions.remove(p);
                restored.remove(p);
                first_check.remove(p);
                positions.remove(p);
            }
            let keep = |(m, e): &(Result<BorrowedMessage<'_>, KafkaError>, u64)| {
                m.as_ref()
                    .map_or(true, |m| latest.get(&m.partition()).is_none_or(|r| e >= r))
            };
            batch.retain(keep);
            lookahead = lookahead.filter(keep);
        }
        // The lookahead starts the next batch, whose revocation checks see it too (its
        // epoch is older than any later revocation).
        carried = lookahead;
        // The wall clock once per batch (every message of it was received by now).
        let wall = now();
        let mut outgoing = Vec::new();
        // Patients with a vital-sign set applied but not yet decided: decided at the end
        // of the batch, once every reading of the set in the batch has been applied.
        let mut pending: HashSet<(i32, String)> = HashSet::new();
        let mut next_offsets: HashMap<i32, i64> = HashMap::new();
        let mut touched: HashSet<(i32, Vec<u8>)> = HashSet::new();
        // Partitions rewound to their changelog checkpoint in this batch: the rest of the
        // batch's messages from them are read again from there.
        let mut rewound: HashSet<i32> = HashSet::new();
        // Newly assigned partitions are restored here, at the batch boundary, side by
        // side, before any of their messages is processed. Whether the consumer starts past
        // a partition's checkpoint is checked at its first message (`first_check`).
        if let Some(topic) = &state_topic {
            let mut new_parts: Vec<i32> = assigned(&rebalances)
                .into_iter()
                .filter(|p| !restored.contains_key(p))
                .collect();
            // A message can arrive before its assignment is seen (a callback racing the
            // batch): its partition is restored too.
            new_parts.extend(
                batch
                    .iter()
                    .filter_map(|(m, _)| m.as_ref().ok().map(Message::partition))
                    .filter(|p| !restored.contains_key(p)),
            );
            new_parts.sort_unstable();
            new_parts.dedup();
            if !new_parts.is_empty() {
                readiness.set_consuming(false);
                let started = Instant::now();
                let fresh = tokio::task::block_in_place(|| {
                    let committed =
                        committed_offsets(&consumer, &k.observations_topic, &new_parts)?;
                    restore_partitions(&settings, topic, &committed, &metrics)
                })?;
                metrics
                    .restore_seconds
                    .observe(started.elapsed().as_secs_f64());
                for (partition, state) in fresh {
                    tracing::info!(
                        partition,
                        patients = state.patients.len(),
                        checkpoint = state.checkpoint,
                        "Patient state restored"
                    );
                    partitions.insert(partition, state.patients);
                    restored.insert(partition, state.checkpoint);
                    if let Some(c) = state.checkpoint {
                        positions.insert(partition, c);
                    }
                    first_check.insert(partition, (state.checkpoint, state.unsealed));
                }
                readiness.set_consuming(true);
            }
        }
        for (m, _) in batch {
            let m = match m {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(error = %e, "Consumer error");
                    continue;
                }
            };
            if rewound.contains(&m.partition()) {
                continue;
            }
            if let Some((checkpoint, unsealed)) = first_check.remove(&m.partition()) {
                // Under exactly-once the changelog decides where processing resumes. A
                // consumer that starts past its checkpoint (offsets that a broker stored for
                // a transaction whose share restore found unsealed, e.g. a fenced one that
                // a broker committed instead of aborting) would skip input the restored
                // state lacks: go back to the checkpoint.
                // Without a checkpoint, only if the changelog shows exactly-once batches that
                // never sealed (a deployment moving from at-least-once has none, and its
                // group offset is right).
                let behind = match checkpoint {
                    Some(c) => m.offset() > c,
                    None => unsealed && m.offset() > 0,
                };
                if delivery.is_exactly_once() && behind {
                    let to = checkpoint.map_or(Offset::Beginning, Offset::Offset);
                    tracing::warn!(
                        partition = m.partition(),
                        position = m.offset(),
                        checkpoint,
                        "Consumer position past the changelog checkpoint; rewinding"
                    );
                    tokio::task::block_in_place(|| {
                        consumer.seek(m.topic(), m.partition(), to, Duration::from_secs(30))
                    })?;
                    rewound.insert(m.partition());
                    continue;
                }
            }
            let next = next_offsets.entry(m.partition()).or_insert(0);
            *next = (*next).max(m.offset() + 1);
            if restored
                .get(&m.partition())
                .copied()
                .flatten()
                .is_some_and(|c| m.offset() < c)
            {
                // Already in the restored state (a broker that did not keep the
                // transaction's offsets redelivers it): not processed again.
                continue;
            }
            let accepted = process(
                &m,
                wall,
                &settings,
                &metrics,
                &mut partitions,
                &mut pending,
                &mut outgoing,
            );
            if accepted {
                touched.insert((
                    m.partition(),
                    m.key().map(<[u8]>::to_vec).unwrap_or_default(),
                ));
            }
        }
        if carried
            .as_ref()
            .is_some_and(|(m, _)| m.as_ref().is_ok_and(|m| rewound.contains(&m.partition())))
        {
            // Read again from the checkpoint.
            carried = None;
        }
        let emitted = wall;
        for (partition, patient_id) in pending {
            let Some(state) = partitions
                .get_mut(&partition)
                .and_then(|p| p.get_mut(&patient_id))
            else {
                continue;
            };
            if let Some(outcome) = state.tracker.flush(&settings.engine, &settings.policy) {
                publish(
                    &patient_id,
                    state,
                    &outcome,
                    emitted,
                    &settings,
                    &metrics,
                    &mut outgoing,
                );
            }
        }
        if tokio::time::Instant::now() >= next_overdue_check {
            next_overdue_check = tokio::time::Instant::now() + overdue_every;
            remind(
                emitted,
                &settings,
                &metrics,
                &mut partitions,
                &mut touched,
                &mut outgoing,
            );
        }
        // The state of every patient this batch changed, in the same transaction as its
        // alerts and offsets, marked with the input offset it reflects.
        if let Some(topic) = &state_topic {
            for (partition, key) in &touched {
                let (partition, key) = (*partition, key.clone());
                let patient = std::str::from_utf8(&key).ok();
                let Some(state) = patient.and_then(|id| partitions.get(&partition)?.get(id)) else {
                    continue;
                };
                let bytes =
                    vigil_score::state::encode(state.tracker.window(), state.tracker.alerts());
                metrics.state_bytes.inc_by(bytes.len() as u64);
                let input_offset = next_offsets
                    .get(&partition)
                    .or_else(|| positions.get(&partition))
                    .copied()
                    .unwrap_or(0)
                    .to_string();
                let mut headers = OwnedHeaders::new().insert(Header {
                    key: INPUT_OFFSET,
                    value: Some(&input_offset),
                });
                for (key, value) in [
                    (ENCOUNTER, &state.encounter_id),
                    (LOCATION, &state.location),
                ] {
                    if let Some(v) = value {
                        headers = headers.insert(Header {
                            key,
                            value: Some(v),
                        });
                    }
                }
                outgoing.push(Outgoing {
                    topic: topic.clone(),
                    partition: Some(partition),
                    key: Some(key),
                    payload: bytes,
                    headers: Some(headers),
                    what: "state",
                });
            }
        }
        let batch_offsets: Vec<(i32, i64)> = next_offsets.drain().collect();
        // Partitions whose changelog this transaction writes without consuming from them
        // (overdue reminders) are sealed at their current position.
        let mut sealed_at = batch_offsets.clone();
        for (partition, _) in &touched {
            if !sealed_at.iter().any(|(p, _)| p == partition)
                && let Some(position) = positions.get(partition)
            {
                sealed_at.push((*partition, *position));
            }
        }
        let txn = format!("{session}:{seq}");
        // Under exactly-once each changelog partition the batch touched gets a checkpoint,
        // sent only after everything else of the transaction was acknowledged: it seals
        // that partition's share of the transaction (see `restore`).
        let seals = delivery.seal(
            &txn,
            &session,
            state_topic.as_deref(),
            &sealed_at,
            &mut outgoing,
        );
        let mut offsets = TopicPartitionList::new();
        for (partition, next) in batch_offsets.iter().copied() {
            offsets
                .add_partition_offset(&k.observations_topic, partition, Offset::Offset(next))
                .ok();
        }
        metrics.patients.set(
            i64::try_from(partitions.values().map(HashMap::len).sum::<usize>()).unwrap_or(i64::MAX),
        );
        if offsets.count() == 0 && outgoing.is_empty() {
            continue;
        }
        let committed = delivery
            .commit(&producer, &consumer, &outgoing, &seals, offsets)
            .await;
        if let Err(e) = committed {
            if delivery.is_exactly_once() {
                metrics.aborts.inc();
            }
            result = Err(e);
            break 'consume;
        }
        metrics.commits.inc();
        for (partition, next) in &batch_offsets {
            metrics.set_committed_offset(*partition, *next);
            positions.insert(*partition, *next);
        }
        seq += 1;
        metrics
            .batch_seconds
            .observe(started.elapsed().as_secs_f64());
    }
    readiness.set_consuming(false);
    tracing::info!("Stopping: flushing the producer and committing");
    let deadline = settings.service.shutdown_deadline;
    if let Err(e) = producer.flush(deadline) {
        tracing::warn!(error = %e, "Producer flush did not complete");
    }
    if result.is_ok() {
        delivery.finish(&consumer);
    }
    consumer.unsubscribe();
    result
}

/// Where a message belongs: its partition and key.
fn batch_key<'a>(
    m: &'a Result<BorrowedMessage<'_>, KafkaError>,
) -> Option<(i32, Option<&'a [u8]>)> {
    m.as_ref().ok().map(|m| (m.partition(), m.key()))
}

/// How many messages past `batch_max_messages` a batch may take to end where the key
/// changes rather than in the middle of a patient's burst of readings.
const MAX_SET_MESSAGES: usize = 1000;

/// One process start's identity in transaction headers (`session:seq`).
fn session_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    format!("{:016x}", nanos ^ (u64::from(std::process::id()) << 40))
}

/// The group's committed offsets of `partitions` of `topic`, in one request.
fn committed_offsets(
    consumer: &StreamConsumer<VigilContext>,
    topic: &str,
    partitions: &[i32],
) -> Result<Vec<(i32, Option<i64>)>, ServiceError> {
    let mut tpl = TopicPartitionList::new();
    for &p in partitions {
        tpl.add_partition(topic, p);
    }
    let committed = consumer.committed_offsets(tpl, Duration::from_secs(30))?;
    Ok(partitions
        .iter()
        .map(|&p| {
            let offset = committed
                .find_partition(topic, p)
                .and_then(|e| match e.offset() {
                    Offset::Offset(o) => Some(o),
                    _ => None,
                });
            (p, offset)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn tls_and_sasl_settings_pass_through_to_librdkafka() {
        let mut raw = Config::default();
        for (k, v) in [
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanisms", "SCRAM-SHA-512"),
            ("sasl.username", "vigil"),
            ("sasl.password", "secret"),
            ("ssl.endpoint.identification.algorithm", "https"),
        ] {
            raw.kafka.librdkafka.insert(k.into(), v.into());
        }
        let settings = raw.validate().expect("valid");
        let consumer: Result<rdkafka::consumer::BaseConsumer, _> = client_config(&settings, &[])
            .set("group.id", "tls-check")
            .create();
        assert!(
            consumer.is_ok(),
            "librdkafka refused TLS/SASL settings: {:?}",
            consumer.err()
        );
    }
}
