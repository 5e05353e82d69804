//! Intake: the consumer thread, the first stage of the pipeline. It polls the
//! observations topic, decodes every message with the configured wire format and checks
//! that its key is the patient id of its readings (so this runs beside scoring, on the
//! other core) and hands the processing task
//! chunks of decoded messages in partition order. The consumer group's rebalance
//! callbacks run on this thread too and travel the same channel, at the point in the
//! stream where they happen: an assignment is restored before any message of its
//! partitions, and a revocation waits until the processing task has committed everything
//! taken from the revoked partitions, so a partition changes owner only at a committed
//! boundary (no message is processed by two owners, none is dropped half-done).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use tokio::sync::mpsc;
use vigil_score::Timestamp;
use vigil_wire::{DecodeError, Decoded};

use crate::event::now;
use crate::http::Readiness;
use crate::metrics::Metrics;
use crate::watch::BrokerWatch;

/// How many messages the intake thread hands over at once.
const CHUNK: usize = 512;

/// How many chunks may wait for the processing task (with librdkafka's own prefetch
/// queue behind them).
pub(crate) const QUEUED_CHUNKS: usize = 16;

/// One consumed message, decoded and owned. Its bytes take one allocation and its
/// readings none when it carries one (a native event): the intake makes a million of
/// these a second, and the processing task frees them on the other core.
pub(crate) struct Incoming {
    /// Input partition.
    pub(crate) partition: i32,
    /// Its offset.
    pub(crate) offset: i64,
    /// When it was received: the earlier of its Kafka timestamp (the producer's or
    /// broker's stamp) and the wall clock when it was polled (read at most
    /// [`WALL_EVERY`] messages before, and afresh after the queue ran empty). The earlier one is the same
    /// when the message is redelivered after a crash, so a replay decides as the first
    /// run did; the wall clock bounds a producer whose clock runs ahead.
    pub(crate) received: Timestamp,
    /// The raw payload (for the dead-letter topic) followed by the key.
    raw: Vec<u8>,
    /// Where the key starts in `raw`, if the message has one.
    key_at: Option<usize>,
    /// What the wire format's decoder made of it, with the key checked against each
    /// reading's patient: one result per reading, the first here.
    first: Option<Result<Decoded, DecodeError>>,
    /// The results after the first (a message that carries several readings).
    rest: Vec<Result<Decoded, DecodeError>>,
}

impl Incoming {
    /// The message as consumed from `partition` at `offset`, decoded with `format`, its
    /// bytes kept in `raw`: a buffer handed back by the processing task (emptied first),
    /// so that a message's bytes take no allocation of their own once the service runs.
    pub(crate) fn with_buffer(
        mut raw: Vec<u8>,
        partition: i32,
        offset: i64,
        received: Timestamp,
        payload: &[u8],
        key: Option<&[u8]>,
        format: &vigil_wire::Format,
    ) -> Incoming {
        raw.clear();
        raw.reserve(payload.len() + key.map_or(0, <[u8]>::len));
        raw.extend_from_slice(payload);
        let key_at = key.map(|k| {
            raw.extend_from_slice(k);
            payload.len()
        });
        let mut first = None;
        let mut rest = Vec::new();
        format.decode_each(payload, |r| {
            let r = r.and_then(|d| keyed(d, key));
            match first {
                None => first = Some(r),
                Some(_) => rest.push(r),
            }
        });
        Incoming {
            partition,
            offset,
            received,
            raw,
            key_at,
            first,
            rest,
        }
    }

    /// The message key (the patient id).
    pub(crate) fn key(&self) -> Option<&[u8]> {
        self.key_at.map(|at| &self.raw[at..])
    }

    /// Takes the decoder's results, in order.
    pub(crate) fn take_decoded(
        &mut self,
    ) -> impl Iterator<Item = Result<Decoded, DecodeError>> + use<> {
        self.first
            .take()
            .into_iter()
            .chain(std::mem::take(&mut self.rest))
    }

    /// Takes the key and the payload (for the dead-letter topic); the message keeps
    /// neither.
    pub(crate) fn take_key_and_payload(&mut self) -> (Option<Vec<u8>>, Vec<u8>) {
        let mut payload = std::mem::take(&mut self.raw);
        let key = self.key_at.take().map(|at| payload.split_off(at));
        (key, payload)
    }
}

/// `d` if the message key is its patient id; otherwise why not. The key decides the
/// partition, so a reading keyed otherwise could land beside another copy of its
/// patient's state.
fn keyed(d: Decoded, key: Option<&[u8]>) -> Result<Decoded, DecodeError> {
    match key {
        Some(key) if key == d.patient_id.as_bytes() => Ok(d),
        key => Err(DecodeError::Field {
            field: "key",
            value: key.map_or_else(
                || "none".to_owned(),
                |k| format!("{:?}", String::from_utf8_lossy(k)),
            ),
            expected: "the message key to be the patient_id (so each patient stays on one partition)",
        }),
    }
}

/// What the intake hands the processing task, in stream order.
pub(crate) enum Intake {
    /// Messages, in the order they were consumed.
    Messages(Vec<Incoming>),
    /// Partitions newly assigned to this instance: restore them before their messages.
    Assigned(Vec<i32>),
    /// The intake thread stopped on its own (it panicked): the service cannot go on.
    Stopped(String),
    /// Partitions being revoked: commit everything taken from them, drop their state,
    /// then answer on `done`; the group's rebalance waits for it.
    Revoked {
        /// The partitions.
        partitions: Vec<i32>,
        /// Answered once they are committed and dropped.
        done: std::sync::mpsc::SyncSender<()>,
    },
}

/// Chunks the processing task has emptied, and the buffers that held their messages'
/// bytes, kept for the intake to fill again: a chunk is allocated once at its full size
/// instead of growing from nothing for every [`CHUNK`] messages, and a message's bytes
/// go into a buffer that held an earlier message's instead of a new allocation (freed on
/// the other core).
#[derive(Clone, Default)]
pub(crate) struct Spare(Arc<Mutex<Kept>>);

/// What [`Spare`] holds.
#[derive(Default)]
struct Kept {
    chunks: Vec<Vec<Incoming>>,
    buffers: Vec<Vec<u8>>,
}

impl Spare {
    /// How many emptied chunks are kept (the intake channel holds a few at a time).
    const KEPT: usize = 8;

    /// How many message buffers are kept: two chunks' worth, what the intake fills while
    /// the processing task empties (at most 4 MiB, see [`Spare::LARGEST_KEPT`]).
    const KEPT_BUFFERS: usize = 2 * CHUNK;

    /// A buffer larger than this is freed rather than kept (a rare large message).
    const LARGEST_KEPT: usize = 4096;

    fn kept(&self) -> std::sync::MutexGuard<'_, Kept> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// An empty chunk with room for [`CHUNK`] messages.
    fn take(&self) -> Vec<Incoming> {
        self.kept()
            .chunks
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(CHUNK))
    }

    /// Swaps `buffers` (the intake's, used up) for the buffers handed back so far.
    fn take_buffers(&self, buffers: &mut Vec<Vec<u8>>) {
        std::mem::swap(&mut self.kept().buffers, buffers);
    }

    /// Hands back a chunk whose messages were processed: their bytes' buffers are kept,
    /// what else is left in it is dropped.
    pub(crate) fn give(&self, mut chunk: Vec<Incoming>) {
        let mut kept = self.kept();
        for m in &mut chunk {
            if kept.buffers.len() >= Self::KEPT_BUFFERS {
                break;
            }
            if (1..=Self::LARGEST_KEPT).contains(&m.raw.capacity()) {
                kept.buffers.push(std::mem::take(&mut m.raw));
            }
        }
        let keep = chunk.capacity() >= CHUNK && kept.chunks.len() < Self::KEPT;
        drop(kept);
        chunk.clear();
        if keep {
            self.kept().chunks.push(chunk);
        }
    }
}

/// The consumer's context: sends rebalances down the intake channel, after the messages
/// polled before them.
pub(crate) struct IntakeContext {
    tx: mpsc::Sender<Intake>,
    /// Messages polled but not yet sent (a rebalance sends them first).
    pending: Mutex<Vec<Incoming>>,
    /// Emptied chunks handed back by the processing task, reused for the next ones.
    spare: Spare,
    /// The partitions assigned now, for the partition gauge.
    assigned: Mutex<std::collections::BTreeSet<i32>>,
    readiness: Arc<Readiness>,
    metrics: Metrics,
    /// Whether the brokers can be reached; the consumer reports failures and recovery.
    watch: Arc<BrokerWatch>,
}

/// What the consumer does, in the broker watch's lines.
const CONSUMING: &str = "consuming observations";

/// While the brokers are unreachable, how often the intake thread asks them for metadata
/// to learn that they are back (no message may arrive to say so).
const PROBE_EVERY: Duration = Duration::from_secs(2);

impl IntakeContext {
    pub(crate) fn new(
        tx: mpsc::Sender<Intake>,
        spare: Spare,
        readiness: Arc<Readiness>,
        metrics: Metrics,
        watch: Arc<BrokerWatch>,
    ) -> IntakeContext {
        IntakeContext {
            tx,
            pending: Mutex::new(Vec::with_capacity(CHUNK)),
            spare,
            assigned: Mutex::default(),
            readiness,
            metrics,
            watch,
        }
    }

    /// Sends `item`, blocking while the channel is full, unless this runs inside the async
    /// runtime (the consumer being closed on a runtime thread), where it is sent only if
    /// there is room. False if it was not sent.
    fn send(&self, item: Intake) -> bool {
        if self.tx.is_closed() {
            return false;
        }
        if tokio::runtime::Handle::try_current().is_ok() {
            self.tx.try_send(item).is_ok()
        } else {
            self.tx.blocking_send(item).is_ok()
        }
    }

    /// Sends the messages polled so far.
    fn flush(&self) -> bool {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        if pending.is_empty() {
            return true;
        }
        let chunk = std::mem::replace(&mut *pending, self.spare.take());
        drop(pending);
        self.send(Intake::Messages(chunk))
    }

    fn set_assigned(&self, change: impl FnOnce(&mut std::collections::BTreeSet<i32>)) {
        let mut assigned = self.assigned.lock().unwrap_or_else(|p| p.into_inner());
        change(&mut assigned);
        self.metrics
            .partitions
            .set(i64::try_from(assigned.len()).unwrap_or(i64::MAX));
        self.readiness.set_assigned(!assigned.is_empty());
    }
}

impl ClientContext for IntakeContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        self.watch.client_log(CONSUMING, level, fac, log_message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.watch.client_error(CONSUMING, &error, reason);
    }
}

impl ConsumerContext for IntakeContext {
    fn pre_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Rebalance::Revoke(tpl) = rebalance else {
            return;
        };
        let partitions: Vec<i32> = tpl.elements().iter().map(|e| e.partition()).collect();
        tracing::info!(partitions = partitions.len(), "Partitions revoked");
        self.set_assigned(|a| {
            for p in &partitions {
                a.remove(p);
            }
        });
        for p in &partitions {
            let _ = self
                .metrics
                .consumer_lag
                .remove_label_values(&[&p.to_string()]);
        }
        // Whatever was polled before the revocation goes first; then the revocation, and
        // the group waits until the processing task has committed and dropped them. (Not
        // when the processing task has stopped: its channel is closed.)
        let (done, committed) = std::sync::mpsc::sync_channel(1);
        if self.flush() && self.send(Intake::Revoked { partitions, done }) {
            let _ = committed.recv();
        }
    }

    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        // Asking the consumer (`assignment()`) from inside this callback deadlocks when
        // the callback runs while the consumer is being closed (librdkafka's group thread
        // waits for the callback, the callback for the group thread): the assignment is
        // kept here instead. Cooperative assignors report only the change.
        let Rebalance::Assign(tpl) = rebalance else {
            return;
        };
        let partitions: Vec<i32> = tpl.elements().iter().map(|e| e.partition()).collect();
        tracing::info!(partitions = partitions.len(), "Partitions assigned");
        self.set_assigned(|a| a.extend(partitions.iter().copied()));
        if self.flush() {
            self.send(Intake::Assigned(partitions));
        }
    }
}

/// The intake thread: running until `stop` is set or the processing task goes away.
pub(crate) struct IntakeThread {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl IntakeThread {
    /// Starts polling `consumer` (already subscribed), decoding with `format`.
    pub(crate) fn spawn(
        consumer: Arc<BaseConsumer<IntakeContext>>,
        format: vigil_wire::Format,
    ) -> std::io::Result<IntakeThread> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("vigil-intake".into())
            .spawn(move || {
                let polled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    poll_loop(&consumer, &format, &flag);
                }));
                if let Err(panic) = polled {
                    let why = panic
                        .downcast_ref::<&str>()
                        .map(|s| (*s).to_owned())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "a panic".to_owned());
                    tracing::error!(reason = %why, "The intake thread failed");
                    consumer.context().send(Intake::Stopped(why));
                }
            })?;
        Ok(IntakeThread { stop, thread })
    }

    /// Stops polling and waits for the thread to finish (within one poll timeout).
    pub(crate) async fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        let thread = self.thread;
        let _ = tokio::task::spawn_blocking(move || thread.join()).await;
    }
}

/// How often the intake thread updates `vigil_consumer_lag_messages`.
const LAG_EVERY: Duration = Duration::from_secs(2);

/// Sets each assigned partition's lag: the broker's end offset as the latest fetch
/// reported it, minus the next offset to consume (no request is made). A partition
/// nothing was consumed from yet keeps no figure.
fn record_lag(consumer: &BaseConsumer<IntakeContext>) {
    let Ok(positions) = consumer.position() else {
        return;
    };
    let metrics = &consumer.context().metrics;
    for e in positions.elements() {
        let rdkafka::Offset::Offset(position) = e.offset() else {
            continue;
        };
        if let Some(high) =
            crate::changelog::cached_high_watermark(consumer, e.topic(), e.partition())
        {
            metrics
                .consumer_lag
                .with_label_values(&[&e.partition().to_string()])
                .set((high - position).max(0));
        }
    }
}

/// How many messages share one reading of the wall clock (about 0.2 ms of messages at
/// full speed; it is read again at once whenever the queue runs empty).
const WALL_EVERY: usize = 64;

/// How long one idle poll waits; bounds how long stopping takes.
const IDLE_POLL: Duration = Duration::from_millis(50);

fn poll_loop(
    consumer: &BaseConsumer<IntakeContext>,
    format: &vigil_wire::Format,
    stop: &AtomicBool,
) {
    let context = consumer.context();
    let mut held = 0usize;
    let mut probed = std::time::Instant::now();
    let mut lag_recorded = std::time::Instant::now();
    // The wall clock, read again every WALL_EVERY messages and whenever the queue is
    // empty: a clock read costs about as much as decoding a field here.
    let mut wall = now();
    let mut since_wall = 0usize;
    // Buffers for the messages' bytes, handed back by the processing task.
    let mut buffers: Vec<Vec<u8>> = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        if since_wall == 0 && lag_recorded.elapsed() >= LAG_EVERY {
            lag_recorded = std::time::Instant::now();
            record_lag(consumer);
        }
        if context.watch.is_down() && probed.elapsed() >= PROBE_EVERY {
            probed = std::time::Instant::now();
            if consumer
                .fetch_metadata(None, Duration::from_secs(1))
                .is_ok()
            {
                context.watch.reachable();
            }
        }
        // Block only when nothing is held back; otherwise take what is already fetched
        // and hand it over as soon as the queue is empty.
        let timeout = if held == 0 { IDLE_POLL } else { Duration::ZERO };
        match consumer.poll(timeout) {
            Some(Ok(m)) => {
                context.watch.reachable();
                if since_wall == 0 {
                    wall = now();
                }
                since_wall = (since_wall + 1) % WALL_EVERY;
                let received = m
                    .timestamp()
                    .to_millis()
                    .map_or(wall, |ms| wall.min(Timestamp::from_millis(ms)));
                // Out of buffers: ask for those handed back, at most every 64 messages
                // (none may be there yet).
                if buffers.is_empty() && held.is_multiple_of(64) {
                    context.spare.take_buffers(&mut buffers);
                }
                let incoming = Incoming::with_buffer(
                    buffers.pop().unwrap_or_default(),
                    m.partition(),
                    m.offset(),
                    received,
                    m.payload().unwrap_or_default(),
                    m.key(),
                    format,
                );
                let mut pending = context.pending.lock().unwrap_or_else(|p| p.into_inner());
                pending.push(incoming);
                held = pending.len();
                drop(pending);
                if held >= CHUNK {
                    if !context.flush() {
                        return;
                    }
                    held = 0;
                }
            }
            Some(Err(e)) => context.watch.client_error(CONSUMING, &e, ""),
            None => {
                since_wall = 0;
                if held > 0 {
                    if !context.flush() {
                        return;
                    }
                    held = 0;
                } else if context.tx.is_closed() {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(offset: i64) -> Incoming {
        Incoming::with_buffer(
            Vec::new(),
            0,
            offset,
            Timestamp::from_millis(0),
            br#"{"patient_id":"P1","code":"heart_rate","value":80,"effective":"2026-11-23T10:00:00Z"}"#,
            Some(b"P1"),
            &vigil_wire::Format::Json,
        )
    }

    #[test]
    fn a_chunk_handed_back_is_filled_again_empty_and_full_size() {
        let spare = Spare::default();
        let fresh = spare.take();
        assert!(fresh.is_empty());
        assert!(fresh.capacity() >= CHUNK);
        let mut chunk = fresh;
        chunk.extend((0..3).map(message));
        let at = chunk.as_ptr();
        spare.give(chunk);
        let again = spare.take();
        assert!(again.is_empty(), "what was left in it is dropped");
        assert_eq!(again.as_ptr(), at, "the same allocation is reused");
        // A chunk smaller than a full one (carried messages) is not kept.
        spare.give(Vec::with_capacity(1));
        assert!(spare.take().capacity() >= CHUNK);
    }

    #[test]
    fn no_more_chunks_are_kept_than_the_limit() {
        let spare = Spare::default();
        for _ in 0..Spare::KEPT + 3 {
            spare.give(Vec::with_capacity(CHUNK));
        }
        assert_eq!(spare.kept().chunks.len(), Spare::KEPT);
    }

    #[test]
    fn the_bytes_of_processed_messages_are_kept_for_the_next_ones() {
        let spare = Spare::default();
        let mut chunk = spare.take();
        chunk.extend((0..3).map(message));
        // The dead-letter path took the second message's bytes: nothing to keep there.
        let _ = chunk[1].take_key_and_payload();
        let held: Vec<*const u8> = [0, 2].iter().map(|&i| chunk[i].raw.as_ptr()).collect();
        spare.give(chunk);
        let mut buffers = Vec::new();
        spare.take_buffers(&mut buffers);
        let kept: Vec<*const u8> = buffers.iter().map(|b| b.as_ptr()).collect();
        assert_eq!(kept, held, "the two buffers with bytes, in order");
        // A buffer is filled again from empty: the message holds its own bytes only.
        let at = buffers[1].as_ptr();
        let again = Incoming::with_buffer(
            buffers.pop().unwrap_or_default(),
            0,
            7,
            Timestamp::from_millis(0),
            br#"{"patient_id":"P2","code":"spo2","value":97,"effective":"2026-11-23T10:00:00Z"}"#,
            Some(b"P2"),
            &vigil_wire::Format::Json,
        );
        assert_eq!(again.raw.as_ptr(), at, "the same allocation is reused");
        assert_eq!(again.key(), Some(&b"P2"[..]));
        assert!(again.raw.starts_with(br#"{"patient_id":"P2""#));
        // Handing the buffers over leaves none behind.
        let mut more = Vec::new();
        spare.take_buffers(&mut more);
        assert!(more.is_empty());
    }

    #[test]
    fn no_more_buffers_are_kept_than_the_limit() {
        let spare = Spare::default();
        for _ in 0..Spare::KEPT + 3 {
            let mut chunk = Vec::with_capacity(CHUNK);
            chunk.extend((0..CHUNK as i64).map(message));
            spare.give(chunk);
        }
        assert_eq!(spare.kept().buffers.len(), Spare::KEPT_BUFFERS);
    }
}
