//! The state changelog's protocol, owned here: the record headers, the seals of
//! exactly-once transactions, and restore.
//!
//! The changelog topic is keyed by patient and co-partitioned with the observations
//! topic. Each record is a patient's state (`vigil_score::state` bytes; an empty payload
//! deletes the patient) with headers:
//!
//! - `vigil-input-offset` ([`INPUT_OFFSET`]): the input partition's next offset after the
//!   batch that wrote it (at-least-once restore skips records past the committed offset);
//! - `vigil-txn` ([`TXN`]): `session:seq`, the transaction that wrote it (exactly-once);
//! - `vigil-encounter`, `vigil-location`: the patient's latest encounter and location.
//!
//! A checkpoint record (header `vigil-checkpoint`, [`CHECKPOINT`]; key
//! `vigil-checkpoint/<session>`; payload the next input offset) is written last in its
//! transaction on every changelog partition the transaction touched, after everything
//! else was acknowledged: it seals that partition's share. Restore applies only sealed
//! shares ([`record_seal`], [`is_sealed`]); the fault-injection harness classifies alert
//! copies by the same documented rule (DESIGN.md, "What is the delivery guarantee?").

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::{Offset, TopicPartitionList};
use vigil_score::Tracker;

use crate::config::Settings;
use crate::metrics::Metrics;
use crate::processing::{PatientState, Patients};
use crate::service::{ServiceError, client_config};

/// Header of a state record: the input partition's next offset after the batch that wrote
/// it. Restore ignores records whose offset is past the committed one.
pub const INPUT_OFFSET: &str = "vigil-input-offset";
/// Header of every record written in a transaction: `session:seq`, the writing
/// instance's session (one per process start) and the transaction's sequence number.
pub const TXN: &str = "vigil-txn";
/// Header marking a checkpoint record: its payload is the next input offset of the
/// partition after the transaction. Written last in its transaction, after everything
/// else the transaction wrote was acknowledged, it seals the transaction's share of its
/// changelog partition (and of the input partition's output).
pub const CHECKPOINT: &str = "vigil-checkpoint";
/// Header of a state record: the patient's latest encounter id.
pub(crate) const ENCOUNTER: &str = "vigil-encounter";
/// Header of a state record: the patient's latest location.
pub(crate) const LOCATION: &str = "vigil-location";
/// Header of a state record: how the feed names the patient
/// ([`vigil_wire::PatientNaming::to_text`]), when not by its id alone.
pub(crate) const NAMING: &str = "vigil-patient-naming";

/// What a partition's changelog restores: its patients, and (under exactly-once) the
/// input offset up to which the restored state has already processed the input.
#[derive(Default)]
pub struct Restored {
    /// Patients by id.
    pub patients: Patients,
    /// The next input offset of the newest sealed transaction's checkpoint.
    pub checkpoint: Option<i64>,
    /// Whether records of unsealed transactions (cut short) were skipped.
    pub unsealed: bool,
}

/// A changelog record kept in log order until the whole partition has been read.
struct Pending {
    /// `session:seq`, for records written in a transaction.
    txn: Option<String>,
    key: String,
    kind: PendingKind,
}

enum PendingKind {
    /// The state's bytes, the encounter, the location and how the patient is named.
    State(Vec<u8>, Option<String>, Option<String>, Option<String>),
    Checkpoint(i64),
}

/// Restores several partitions at once, each as [`restore`] does, on up to
/// [`RESTORE_THREADS`] threads: most of a partition's restore is waiting for the broker,
/// so partitions restore side by side. `parts` pairs each partition with its committed
/// input offset. The first error wins.
pub fn restore_partitions(
    settings: &Settings,
    topic: &str,
    parts: &[(i32, Option<i64>)],
    metrics: &Metrics,
) -> Result<HashMap<i32, Restored>, ServiceError> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let next = AtomicUsize::new(0);
    let results = Mutex::new(Vec::with_capacity(parts.len()));
    std::thread::scope(|scope| {
        for _ in 0..parts.len().min(RESTORE_THREADS) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&(partition, committed)) = parts.get(i) else {
                        break;
                    };
                    let r = restore(settings, topic, partition, committed, metrics);
                    let failed = r.is_err();
                    if let Ok(mut all) = results.lock() {
                        all.push((partition, r));
                    }
                    if failed {
                        // Stop taking work: the caller fails anyway.
                        next.store(parts.len(), Ordering::Relaxed);
                        break;
                    }
                }
            });
        }
    });
    let mut restored = HashMap::with_capacity(parts.len());
    for (partition, r) in results.into_inner().unwrap_or_default() {
        restored.insert(partition, r?);
    }
    Ok(restored)
}

/// How many partitions restore at once.
pub const RESTORE_THREADS: usize = 16;

/// Reads one partition of the state changelog from its start to its end and rebuilds its
/// patients.
///
/// Under exactly-once delivery every record carries its transaction (`vigil-txn`:
/// session and sequence number), and each transaction ends, on every changelog partition
/// it touched, with a checkpoint record sent only after all its other records were
/// acknowledged: the seal (a seal also covers the session's earlier transactions, see
/// [`is_sealed`]). Records are kept in log order until the whole partition has been read,
/// then those of sealed transactions are applied in that order; the newest sealed
/// checkpoint says where the input resumes.
///
/// A broker that hides aborted transactions from read_committed readers (Apache Kafka)
/// shows restore only committed transactions, all of them sealed, so the seal adds
/// nothing there. A broker that shows aborted records (tansu, librdkafka's mock cluster)
/// shows them to every consumer, so what its consumers have seen is what was written, and
/// the seal tells a complete share of a transaction from one cut short: a sealed share is
/// applied (its alerts are out and complete, so its input is not processed again), an
/// unsealed one is skipped (its input is processed again, its partial alerts repeated
/// under the same ids). This needs no record written after the commit, so no crash
/// window lies between a commit and the evidence of it.
///
/// Records without a transaction (at-least-once delivery, older versions) are applied
/// unless written past `committed`, the group's committed offset of the same input
/// partition: such a batch is redelivered and processed again from the older state. A
/// record that cannot be decoded is skipped with a warning (the patient then starts
/// afresh) rather than stopping the partition.
pub fn restore(
    settings: &Settings,
    topic: &str,
    partition: i32,
    committed: Option<i64>,
    metrics: &Metrics,
) -> Result<Restored, ServiceError> {
    use rdkafka::consumer::BaseConsumer;
    let reader: BaseConsumer = client_config(
        settings,
        &[
            ("enable.partition.eof", "true"),
            ("fetch.wait.max.ms", "10"),
            ("fetch.error.backoff.ms", "10"),
            ("fetch.queue.backoff.ms", "0"),
            ("topic.metadata.refresh.interval.ms", "100"),
        ],
    )
    .set("group.id", format!("{}-restore", settings.kafka.group_id))
    .set("enable.auto.commit", "false")
    .set("isolation.level", "read_committed")
    .create()?;
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, Offset::Beginning)?;
    // Connects and learns the partition's leader before the first fetch (without it the
    // first fetch waits for a metadata refresh). The answer itself is not used: some
    // brokers answer it wrongly; the fetch responses' own end offsets are used below.
    let _ = reader.fetch_watermarks(topic, partition, Duration::from_secs(10));
    reader.assign(&tpl)?;
    let mut restored = Restored::default();
    let mut log: Vec<Pending> = Vec::new();
    // Per session, the highest sequence number sealed in this partition.
    let mut sealed: HashMap<String, u64> = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut last = false;
    loop {
        if last {
            break;
        }
        if Instant::now() > deadline {
            return Err(ServiceError::Restore {
                partition,
                reason: "the changelog was not read to its end within 300 s",
            });
        }
        let Some(message) = reader.poll(Duration::from_millis(100)) else {
            continue;
        };
        let m = match message {
            Ok(m) => m,
            Err(KafkaError::PartitionEOF(_)) => break,
            Err(e) => return Err(e.into()),
        };
        // The end as the last fetch response reported it (cached, no request): reaching it
        // ends the restore without waiting for the end-of-partition event.
        last =
            cached_high_watermark(&reader, topic, partition).is_some_and(|h| m.offset() + 1 >= h);
        let header = |name: &str| header_text(&m, name);
        let Some(key) = m.key().and_then(|k| std::str::from_utf8(k).ok()) else {
            continue;
        };
        let kind = if header(CHECKPOINT).is_some() {
            match m
                .payload()
                .and_then(|p| std::str::from_utf8(p).ok())
                .and_then(|p| p.parse::<i64>().ok())
            {
                Some(o) => PendingKind::Checkpoint(o),
                None => continue,
            }
        } else {
            PendingKind::State(
                m.payload().unwrap_or_default().to_vec(),
                header(ENCOUNTER),
                header(LOCATION),
                header(NAMING),
            )
        };
        let txn = header(TXN);
        match &txn {
            Some(t) if matches!(kind, PendingKind::Checkpoint(_)) => record_seal(&mut sealed, t),
            Some(_) => {}
            None => {
                // At-least-once delivery or older versions: the committed offset decides.
                let input_offset = header(INPUT_OFFSET).and_then(|v| v.parse::<i64>().ok());
                if input_offset.is_some_and(|o| committed.is_none_or(|c| o > c)) {
                    metrics.state_records_skipped.inc();
                    continue;
                }
            }
        }
        log.push(Pending {
            txn,
            key: key.to_owned(),
            kind,
        });
    }
    // Applied in log order: a later snapshot of a patient wins.
    for p in log {
        let applies = p.txn.as_deref().is_none_or(|t| is_sealed(t, &sealed));
        if applies {
            apply_restored(&mut restored, p.key, p.kind, settings, metrics, partition);
        } else {
            restored.unsealed = true;
            metrics.state_records_skipped.inc();
        }
    }
    Ok(restored)
}

/// The partition's end offset as the consumer's last fetch response reported it (no
/// request; rdkafka exposes only the querying variant).
#[allow(unsafe_code)]
pub(crate) fn cached_high_watermark<C: rdkafka::consumer::ConsumerContext>(
    reader: &BaseConsumer<C>,
    topic: &str,
    partition: i32,
) -> Option<i64> {
    let topic = std::ffi::CString::new(topic).ok()?;
    let (mut low, mut high) = (-1i64, -1i64);
    // SAFETY: the client pointer is valid while `reader` lives, `topic` is a valid C
    // string, and the out-pointers are valid locals.
    let err = unsafe {
        rdkafka_sys::rd_kafka_get_watermark_offsets(
            reader.client().native_ptr(),
            topic.as_ptr(),
            partition,
            &mut low,
            &mut high,
        )
    };
    (err == rdkafka_sys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR && high >= 0)
        .then_some(high)
}

fn apply_restored(
    restored: &mut Restored,
    key: String,
    kind: PendingKind,
    settings: &Settings,
    metrics: &Metrics,
    partition: i32,
) {
    match kind {
        PendingKind::Checkpoint(o) => restored.checkpoint = Some(o),
        PendingKind::State(bytes, _, _, _) if bytes.is_empty() => {
            restored.patients.remove(key.as_bytes());
        }
        PendingKind::State(bytes, encounter_id, location, naming) => {
            match vigil_score::state::decode(&bytes, &settings.engine.staleness) {
                Ok((window, alerts)) => {
                    metrics.state_bytes_restored.inc_by(bytes.len() as u64);
                    restored.patients.insert(
                        vigil_wire::PatientId::new(&key),
                        PatientState {
                            tracker: Box::new(Tracker::from_parts(window, alerts)),
                            encounter_id,
                            location,
                            patient_naming: vigil_wire::PatientNaming::from_text(naming.as_deref()),
                            ..PatientState::default()
                        },
                    );
                }
                Err(e) => {
                    metrics.state_records_skipped.inc();
                    tracing::warn!(partition, error = %e, "State record skipped");
                }
            }
        }
    }
}

/// A message header's value as text, if present and UTF-8.
pub fn header_text(m: &BorrowedMessage<'_>, name: &str) -> Option<String> {
    use rdkafka::message::Headers;
    m.headers()?
        .iter()
        .find(|h| h.key == name)
        .and_then(|h| h.value)
        .and_then(|v| std::str::from_utf8(v).ok())
        .map(str::to_owned)
}

/// `session:seq`.
fn parse_txn(text: &str) -> Option<(&str, u64)> {
    let (session, seq) = text.split_once(':')?;
    Some((session, seq.parse().ok()?))
}

/// Notes the seal of transaction `txn` (`session:seq`): per session, the highest sealed
/// sequence number.
pub fn record_seal(sealed: &mut HashMap<String, u64>, txn: &str) {
    if let Some((session, seq)) = parse_txn(txn) {
        let s = sealed.entry(session.to_owned()).or_insert(seq);
        *s = (*s).max(seq);
    }
}

/// Whether transaction `txn` (`session:seq`) is sealed, given the highest sealed sequence
/// number of each session in the partition. A session's transactions run one after the
/// other, each committed before the next begins (a failure ends the session), so a seal
/// of `seq` proves every earlier share of the session complete: only the newest
/// checkpoint per session is needed, and compaction (which keeps only that one, keyed
/// `vigil-checkpoint/<session>`) loses nothing.
pub fn is_sealed(txn: &str, sealed: &HashMap<String, u64>) -> bool {
    parse_txn(txn).is_some_and(|(session, seq)| sealed.get(session).is_some_and(|s| seq <= *s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seal_covers_its_sessions_earlier_transactions_only() {
        let sealed: HashMap<String, u64> = [("a".to_owned(), 3), ("b".to_owned(), 0)].into();
        for (txn, expected) in [
            ("a:0", true),
            ("a:3", true),
            ("a:4", false),
            ("b:0", true),
            ("b:1", false),
            ("c:0", false),
            ("a", false),
            ("a:x", false),
            ("", false),
        ] {
            assert_eq!(is_sealed(txn, &sealed), expected, "{txn}");
        }
    }
}
