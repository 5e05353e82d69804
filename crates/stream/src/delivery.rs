//! The delivery guarantee as a type: at-least-once and exactly-once, each with its own
//! way to start, to seal a batch and to commit it. The consumer loop (`service`) asks
//! the mode, never the configuration, what to do.
//!
//! - **Exactly-once**: a transactional producer. A batch's alerts, dead letters and state
//!   records are produced in a transaction and acknowledged. Then every changelog
//!   partition the batch touched gets a checkpoint record, the seal, acknowledged in
//!   turn. Then the input offsets are sent to the transaction and it commits. Restore
//!   applies only sealed shares (DESIGN.md, "What is the delivery guarantee?").
//! - **At-least-once**: an idempotent producer. A batch's output is produced and
//!   acknowledged, then its offsets are committed asynchronously (synchronously on the
//!   way out). A crash before the commit redelivers the batch; deterministic alert ids
//!   let consumers drop the repeats.
//!
//! [`Committer`] is the pipeline's delivery stage: it delivers one closed batch at a time
//! in a task of its own while the processing task builds the next.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureRecord, Producer};

use crate::watch::{BrokerWatch, WatchedProducer};
use rdkafka::{Offset, TopicPartitionList};
use tokio::task::JoinHandle;

use crate::changelog::{CHECKPOINT, TXN};
use crate::config::{DeliveryMode, Settings};
use crate::http::Readiness;
use crate::metrics::Metrics;
use crate::service::{Outgoing, ServiceError};

/// A closed batch, ready to be delivered: everything it produces, its seals (exactly
/// once) and the next input offset of each partition it consumed.
pub(crate) struct Sealed {
    /// Alerts, dead letters and state records.
    pub(crate) outgoing: Vec<Outgoing>,
    /// Checkpoints, sent after `outgoing` is acknowledged.
    pub(crate) seals: Vec<Outgoing>,
    /// `(partition, next offset)` of the input.
    pub(crate) offsets: Vec<(i32, i64)>,
    /// Commit the offsets synchronously: a revocation is waiting for them.
    pub(crate) sync: bool,
    /// When the batch's first message was taken, for the batch-duration histogram.
    pub(crate) started: Instant,
}

/// What a batch's delivery is waiting for, as the stall report names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    /// The output (alerts, dead letters, state records) to be acknowledged.
    Output,
    /// The changelog seals to be acknowledged (exactly-once).
    Seals,
    /// The input offsets to be committed (added to the transaction under exactly-once).
    Offsets,
    /// The transaction to commit (exactly-once).
    Commit,
}

impl Stage {
    fn describe(self) -> &'static str {
        match self {
            Stage::Output => "the brokers to acknowledge the batch's output",
            Stage::Seals => "the brokers to acknowledge the changelog seals",
            Stage::Offsets => "the input offsets to be committed",
            Stage::Commit => "the transaction coordinator to commit the transaction",
        }
    }
}

/// One batch's delivery as its stall watchdog sees it.
pub(crate) struct Progress {
    state: Mutex<ProgressState>,
    started: Instant,
}

struct ProgressState {
    stage: Stage,
    /// The watchdog reported the delivery as stalled.
    stalled: bool,
    /// The delivery finished (the watchdog must not report it any more).
    done: bool,
}

impl Progress {
    fn new() -> Progress {
        Progress {
            state: Mutex::new(ProgressState {
                stage: Stage::Output,
                stalled: false,
                done: false,
            }),
            started: Instant::now(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ProgressState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn enter(&self, stage: Stage) {
        self.lock().stage = stage;
    }
}

/// How often a stalled delivery is reported again while it lasts.
const STALL_REMINDER: Duration = Duration::from_secs(60);

/// Who hears about a stalled delivery: the log, `/readyz` and the metrics.
#[derive(Clone)]
pub(crate) struct StallReport {
    /// After how long a delivery counts as stalled.
    pub(crate) after: Duration,
    pub(crate) readiness: Arc<Readiness>,
    pub(crate) metrics: Metrics,
    /// The brokers, named in the log.
    pub(crate) brokers: String,
    /// `exactly-once` or `at-least-once`, named in the log.
    pub(crate) mode: &'static str,
}

impl StallReport {
    /// Watches `progress` until the delivery is done: reports it once it has taken
    /// longer than `after`, then every [`STALL_REMINDER`] while it lasts.
    async fn watch(self, progress: Arc<Progress>) {
        let mut next = self.after;
        loop {
            tokio::time::sleep_until(tokio::time::Instant::from_std(progress.started + next)).await;
            let mut state = progress.lock();
            if state.done {
                return;
            }
            let seconds = progress.started.elapsed().as_secs();
            let waiting_for = state.stage.describe();
            if !state.stalled {
                state.stalled = true;
                self.metrics.delivery_stalled.set(1);
                self.metrics.delivery_stalls.inc();
                tracing::warn!(
                    brokers = %self.brokers,
                    delivery = self.mode,
                    seconds,
                    waiting_for,
                    "Batch delivery stalled: nothing new is committed until it finishes \
                     (logged again every minute while it lasts, and when it ends)"
                );
            } else {
                tracing::warn!(
                    brokers = %self.brokers,
                    delivery = self.mode,
                    seconds,
                    waiting_for,
                    "Batch delivery still stalled"
                );
            }
            self.readiness
                .set_stalled(Some(format!("{seconds} s waiting for {waiting_for}")));
            drop(state);
            next += STALL_REMINDER;
        }
    }

    /// The delivery finished (`ok`: committed): if it had been reported stalled, says so
    /// and clears the report.
    fn finished(&self, progress: &Progress, ok: bool) {
        let mut state = progress.lock();
        state.done = true;
        if state.stalled {
            self.metrics.delivery_stalled.set(0);
            self.readiness.set_stalled(None);
            tracing::info!(
                seconds = progress.started.elapsed().as_secs_f64(),
                outcome = if ok { "committed" } else { "failed" },
                "Stalled batch delivery ended"
            );
        }
    }
}

/// The last stage of the pipeline: delivers one sealed batch at a time in a task of its
/// own, so the processing task builds the next batch meanwhile. Batches are delivered in
/// order, each only after the one before it was committed.
pub(crate) struct Committer<C: ConsumerContext + 'static> {
    /// The mode, lent to the task delivering a batch.
    delivery: Option<Delivery>,
    producer: WatchedProducer,
    consumer: Arc<BaseConsumer<C>>,
    /// The input topic the offsets belong to.
    topic: String,
    metrics: Metrics,
    /// Told when a batch commits: the brokers answer.
    watch: Arc<BrokerWatch>,
    /// Told when a batch's delivery stalls.
    stall: StallReport,
    in_flight: Option<JoinHandle<(Delivery, Result<(), ServiceError>)>>,
}

impl<C: ConsumerContext + 'static> Committer<C> {
    pub(crate) fn new(
        delivery: Delivery,
        producer: WatchedProducer,
        consumer: Arc<BaseConsumer<C>>,
        topic: String,
        metrics: Metrics,
        watch: Arc<BrokerWatch>,
        stall: StallReport,
    ) -> Committer<C> {
        Committer {
            delivery: Some(delivery),
            producer,
            consumer,
            topic,
            metrics,
            watch,
            stall,
            in_flight: None,
        }
    }

    /// Whether a batch is being delivered.
    pub(crate) fn is_busy(&self) -> bool {
        self.in_flight.is_some()
    }

    /// Starts delivering `batch`. The committer must not be busy (wait with
    /// [`Committer::finished`] first).
    pub(crate) fn submit(&mut self, batch: Sealed) {
        let Some(mut delivery) = self.delivery.take() else {
            // Only while busy; the caller waits first.
            tracing::error!("A batch was submitted while another was in flight");
            return;
        };
        let producer = self.producer.clone();
        let consumer = self.consumer.clone();
        let topic = self.topic.clone();
        let metrics = self.metrics.clone();
        let watch = self.watch.clone();
        let stall = self.stall.clone();
        let progress = Arc::new(Progress::new());
        let watchdog = tokio::spawn(stall.clone().watch(progress.clone()));
        self.in_flight = Some(tokio::spawn(async move {
            let mut offsets = TopicPartitionList::new();
            for (partition, next) in batch.offsets.iter().copied() {
                offsets
                    .add_partition_offset(&topic, partition, Offset::Offset(next))
                    .ok();
            }
            let result = delivery
                .commit(&producer, &consumer, &batch, offsets, &progress)
                .await;
            watchdog.abort();
            stall.finished(&progress, result.is_ok());
            match &result {
                Ok(()) => {
                    watch.reachable();
                    metrics.commits.inc();
                    for (partition, next) in &batch.offsets {
                        metrics.set_committed_offset(*partition, *next);
                    }
                    metrics
                        .batch_seconds
                        .observe(batch.started.elapsed().as_secs_f64());
                    let committed_at = crate::event::now();
                    let since = |t: vigil_score::Timestamp| {
                        (committed_at.as_millis() - t.as_millis()).max(0) as f64 / 1000.0
                    };
                    for d in batch.outgoing.iter().filter_map(|o| o.decided) {
                        metrics.alert_latency_seconds.observe(since(d.received));
                        metrics.alert_event_age_seconds.observe(since(d.event));
                    }
                }
                Err(_) if delivery.is_exactly_once() => metrics.aborts.inc(),
                Err(_) => {}
            }
            (delivery, result)
        }));
    }

    /// Waits until the batch in flight, if any, is committed. Cancel-safe: dropped
    /// before it completes, the batch stays in flight.
    ///
    /// # Errors
    ///
    /// The batch's delivery or transaction failure.
    pub(crate) async fn finished(&mut self) -> Result<(), ServiceError> {
        let Some(handle) = self.in_flight.as_mut() else {
            return Ok(());
        };
        let joined = handle.await;
        self.in_flight = None;
        match joined {
            Ok((delivery, result)) => {
                self.delivery = Some(delivery);
                result
            }
            Err(e) => Err(ServiceError::Stage(format!(
                "the delivery task failed: {e}"
            ))),
        }
    }

    /// On the way out after a clean run (see [`Delivery::finish`]).
    pub(crate) fn finish(&self) {
        if let Some(delivery) = &self.delivery {
            delivery.finish(&self.consumer);
        }
    }
}

/// How a batch's output and input offsets reach Kafka.
pub(crate) enum Delivery {
    /// Output acknowledged, then offsets committed.
    AtLeastOnce {
        /// The last batch's offsets, committed again synchronously on the way out.
        last_committed: Option<TopicPartitionList>,
    },
    /// Output, seals and offsets in one transaction.
    ExactlyOnce {
        /// The producer's `transactional.id`.
        transactional_id: String,
        /// Timeout of the transaction calls.
        timeout: Duration,
        /// Fault injection: a pause after each phase of the transaction.
        pause: Option<Duration>,
    },
}

impl Delivery {
    /// The mode `settings` configure.
    pub(crate) fn new(settings: &Settings) -> Delivery {
        match &settings.delivery {
            DeliveryMode::ExactlyOnce { transactional_id } => {
                let pause = settings.service.fault_injection_txn_pause;
                if let Some(p) = pause {
                    tracing::warn!(
                        pause_ms = p.as_millis() as u64,
                        "Fault injection: pausing inside every transaction (service.fault_injection_txn_pause_ms)"
                    );
                }
                Delivery::ExactlyOnce {
                    transactional_id: transactional_id.clone(),
                    timeout: Duration::from_secs(60),
                    pause,
                }
            }
            DeliveryMode::AtLeastOnce => Delivery::AtLeastOnce {
                last_committed: None,
            },
        }
    }

    /// Whether this is exactly-once delivery.
    pub(crate) fn is_exactly_once(&self) -> bool {
        matches!(self, Delivery::ExactlyOnce { .. })
    }

    /// The producer settings the mode needs.
    pub(crate) fn configure(&self, producer: &mut ClientConfig) {
        if let Delivery::ExactlyOnce {
            transactional_id, ..
        } = self
        {
            producer.set("transactional.id", transactional_id);
        }
    }

    /// Readies the producer. Under exactly-once this fences any earlier incarnation with
    /// the same `transactional.id` and aborts its open transaction, so its half-written
    /// batch never becomes visible to read_committed consumers.
    ///
    /// # Errors
    ///
    /// [`ServiceError::Transaction`] when the transaction coordinator does not answer.
    pub(crate) fn start(&self, producer: &WatchedProducer) -> Result<(), ServiceError> {
        if let Delivery::ExactlyOnce { timeout, .. } = self {
            tokio::task::block_in_place(|| producer.init_transactions(*timeout))
                .map_err(ServiceError::Transaction)?;
        }
        Ok(())
    }

    /// Under exactly-once (`exactly_once`): marks every message of the batch with its transaction `txn`
    /// and returns the seals, a checkpoint record `(partition, next input offset)` for
    /// each changelog partition the batch wrote. Nothing under at-least-once.
    pub(crate) fn seal(
        exactly_once: bool,
        txn: &str,
        session: &str,
        state_topic: Option<&str>,
        sealed_at: &[(i32, i64)],
        outgoing: &mut [Outgoing],
    ) -> Vec<Outgoing> {
        if !exactly_once {
            return Vec::new();
        }
        let mut seals = Vec::new();
        if let Some(topic) = state_topic {
            for (partition, next) in sealed_at {
                seals.push(Outgoing {
                    topic: topic.to_owned(),
                    partition: Some(*partition),
                    key: Some(format!("vigil-checkpoint/{session}").into_bytes()),
                    payload: next.to_string().into_bytes(),
                    headers: Some(OwnedHeaders::new().insert(Header {
                        key: CHECKPOINT,
                        value: Some("1"),
                    })),
                    decided: None,
                    what: "checkpoint",
                });
            }
        }
        for o in outgoing.iter_mut().chain(&mut seals) {
            let headers = o.headers.take().unwrap_or_default();
            o.headers = Some(headers.insert(Header {
                key: TXN,
                value: Some(txn),
            }));
        }
        seals
    }

    /// Delivers a batch: its output, its seals (exactly-once) and its input offsets.
    ///
    /// # Errors
    ///
    /// The delivery or transaction failure. Under exactly-once the transaction has been
    /// aborted: the batch will be redelivered.
    pub(crate) async fn commit<C: ConsumerContext + 'static>(
        &mut self,
        producer: &WatchedProducer,
        consumer: &BaseConsumer<C>,
        batch: &Sealed,
        offsets: TopicPartitionList,
        progress: &Progress,
    ) -> Result<(), ServiceError> {
        let (outgoing, seals, sync) = (&batch.outgoing, &batch.seals, batch.sync);
        match self {
            Delivery::ExactlyOnce { timeout, pause, .. } => {
                commit_transaction(
                    producer,
                    consumer,
                    [outgoing, seals],
                    &offsets,
                    (*timeout, *pause),
                    progress,
                )
                .await
            }
            Delivery::AtLeastOnce { last_committed } => {
                deliver(producer, outgoing).await?;
                progress.enter(Stage::Offsets);
                if offsets.count() > 0 {
                    let mode = if sync {
                        CommitMode::Sync
                    } else {
                        CommitMode::Async
                    };
                    if let Err(e) = tokio::task::block_in_place(|| consumer.commit(&offsets, mode))
                    {
                        tracing::warn!(error = %e, "Offset commit failed; the batch may be redelivered");
                    }
                    *last_committed = Some(offsets);
                }
                Ok(())
            }
        }
    }

    /// On the way out after a clean run: under at-least-once the last batch was committed
    /// asynchronously; make sure it landed. (Under exactly-once every batch's transaction
    /// is already committed.)
    pub(crate) fn finish<C: ConsumerContext + 'static>(&self, consumer: &BaseConsumer<C>) {
        if let Delivery::AtLeastOnce {
            last_committed: Some(offsets),
        } = self
            && let Err(e) = consumer.commit(offsets, CommitMode::Sync)
        {
            tracing::warn!(error = %e, "Final commit failed; the last batch may be redelivered");
        }
    }
}

/// One batch in one transaction: its output in two phases (everything, then the seals,
/// each phase acknowledged before the next), then its input offsets (bound to the consumer
/// group's generation, so a fenced instance cannot commit), then the commit. On failure
/// the transaction is aborted and the error returned: on a broker that honours aborts
/// nothing of the batch becomes visible to read_committed consumers, and the batch is
/// redelivered (elsewhere, its sealed shares count as done: see `changelog::restore`).
async fn commit_transaction<C: ConsumerContext + 'static>(
    producer: &WatchedProducer,
    consumer: &BaseConsumer<C>,
    phases: [&[Outgoing]; 2],
    offsets: &TopicPartitionList,
    (timeout, pause): (Duration, Option<Duration>),
    progress: &Progress,
) -> Result<(), ServiceError> {
    producer
        .begin_transaction()
        .map_err(ServiceError::Transaction)?;
    let mut produced = Ok(());
    for (phase, stage) in phases.into_iter().zip([Stage::Output, Stage::Seals]) {
        progress.enter(stage);
        produced = deliver(producer, phase).await;
        if produced.is_err() {
            break;
        }
        if let Some(p) = pause {
            tokio::time::sleep(p).await;
        }
    }
    let committed = produced.and_then(|()| {
        tokio::task::block_in_place(|| {
            progress.enter(Stage::Offsets);
            if offsets.count() > 0 {
                let group = consumer.group_metadata().ok_or(ServiceError::NotInGroup)?;
                producer
                    .send_offsets_to_transaction(offsets, &group, timeout)
                    .map_err(ServiceError::Transaction)?;
            }
            progress.enter(Stage::Commit);
            producer
                .commit_transaction(timeout)
                .map_err(ServiceError::Transaction)
        })
    });
    if let Err(e) = &committed {
        tracing::warn!(error = %e, "Transaction failed; aborting (the batch will be redelivered)");
        if let Err(abort) = tokio::task::block_in_place(|| producer.abort_transaction(timeout)) {
            tracing::warn!(error = %abort, "Abort failed; the broker aborts the transaction at its timeout");
        }
    }
    committed
}

/// Sends every message of a batch and waits until the broker acknowledged all of them.
pub(crate) async fn deliver(
    producer: &WatchedProducer,
    outgoing: &[Outgoing],
) -> Result<(), ServiceError> {
    let sends = outgoing.iter().map(|o| {
        let mut record = FutureRecord::to(&o.topic).payload(&o.payload);
        if let Some(p) = o.partition {
            record = record.partition(p);
        }
        if let Some(key) = &o.key {
            record = record.key(key);
        }
        if let Some(h) = &o.headers {
            record = record.headers(h.clone());
        }
        async move { (o.what, producer.send(record, Duration::from_secs(30)).await) }
    });
    for (what, sent) in join_all(sends).await {
        if let Err((error, _)) = sent {
            return Err(ServiceError::Delivery { what, error });
        }
    }
    Ok(())
}
