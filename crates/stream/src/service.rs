//! The service as a pipeline of three stages, each with one owner:
//!
//! 1. **Intake** (`crate::intake`, a thread): polls the observations topic and decodes
//!    each message; rebalances travel in the same stream.
//! 2. **Processing** (here, [`run`]): applies each decoded message to its patient's
//!    window (owned by the partition it arrived on, `crate::ownership`), re-scores the
//!    patient and lets the alert policy decide (`crate::processing`); collects the
//!    alert events, dead letters and, when a batch closes, the state records of the
//!    patients it changed. Newly assigned partitions are restored from the changelog
//!    before their first message, side by side (`crate::changelog`).
//! 3. **Delivery** (`crate::delivery`, a task): delivers one closed batch at a time:
//!    under exactly-once a batch's alerts, dead letters, state records, seals and input
//!    offsets are one Kafka transaction, each changelog partition's share of it sealed by
//!    a checkpoint written last, and restore applies only sealed shares (DESIGN.md, "What
//!    is the delivery guarantee?"); under at-least-once the offsets are committed once the
//!    output is acknowledged.
//!
//! While one batch is delivered the next is processed. A batch closes when delivery is
//! free and either `batch_max_messages` is reached (at a change of patient, so that a
//! vital-sign set sent as a burst is decided once) or nothing more has arrived for
//! `batch_max_wait_ms`: under load batches grow, and a quiet feed is delivered at once.
//! A revocation waits for every batch holding the revoked partitions' messages to be
//! committed before the partitions go.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::Producer;
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use vigil_score::Timestamp;

use crate::changelog::{ENCOUNTER, INPUT_OFFSET, LOCATION, NAMING, restore_partitions};
use crate::config::Settings;
use crate::delivery::{Committer, Delivery, Sealed, StallReport};
use crate::event::now;
use crate::http::Readiness;
use crate::intake::{Incoming, Intake, IntakeContext, IntakeThread, QUEUED_CHUNKS, Spare};
use crate::metrics::Metrics;
use crate::ownership::{Admit, Owned};
use crate::processing::{Tally, Work, process, publish, remind};
use crate::watch::{BrokerWatch, WatchedContext, WatchedProducer};

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
    /// A pipeline stage could not start or failed unexpectedly.
    #[error("pipeline: {0}")]
    Stage(String),
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
    /// An alert event decided on readings: their event time and when they were received
    /// (for the latency histograms, observed once the event is committed).
    pub(crate) decided: Option<Decided>,
}

/// When the readings an alert event was decided on were measured and received.
#[derive(Clone, Copy)]
pub(crate) struct Decided {
    /// The event time of the deciding assessment (the alert's `observed_at`).
    pub(crate) event: Timestamp,
    /// When the latest reading of the set was received.
    pub(crate) received: Timestamp,
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
/// close and commit the batch in progress, flush the producer, return.
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
    let (tx, mut intake) = mpsc::channel(QUEUED_CHUNKS);
    let watch = Arc::new(BrokerWatch::new(&k.brokers, Some(readiness.clone())));
    let spare = Spare::default();
    let context = IntakeContext::new(
        tx,
        spare.clone(),
        readiness.clone(),
        metrics.clone(),
        watch.clone(),
    );
    let consumer: Arc<BaseConsumer<IntakeContext>> = Arc::new(
        client_config(
            &settings,
            &[
                ("auto.offset.reset", "earliest"),
                ("session.timeout.ms", "6000"),
                // Alert latency matters more than fetch efficiency when the feed is quiet.
                ("fetch.wait.max.ms", "2"),
                // When the local queue is full, fetch again soon after it drains rather
                // than after librdkafka's default second (a backlog stalled for about
                // half a second in every 200,000 messages).
                ("fetch.queue.backoff.ms", "5"),
                // Incremental rebalancing: an instance joining or leaving moves only the
                // partitions that change owner; the others keep being processed.
                ("partition.assignment.strategy", "cooperative-sticky"),
            ],
        )
        .set("group.id", &k.group_id)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("isolation.level", "read_committed")
        .create_with_context(context)?,
    );
    let mut producer_config = client_config(
        &settings,
        &[
            ("enable.idempotence", "true"),
            ("acks", "all"),
            ("linger.ms", "1"),
            // A refused request (a transactional step, say, that the coordinator refuses
            // until the previous commit has completed) is retried after 5 ms, doubling to
            // 100 ms, not librdkafka's 100 ms doubling to 1 s, which can hold alerts back
            // for up to a second (BENCHMARKS.md, latency).
            ("retry.backoff.ms", "5"),
            ("retry.backoff.max.ms", "100"),
        ],
    );
    let delivery = Delivery::new(&settings);
    delivery.configure(&mut producer_config);
    let producer: WatchedProducer = producer_config.create_with_context(WatchedContext {
        watch: watch.clone(),
        operation: "publishing alerts and committing",
    })?;
    delivery.start(&producer)?;
    let exactly_once = delivery.is_exactly_once();
    let (suppressions, follower) = follow_board_actions(&settings, &metrics).await?;
    consumer.subscribe(&[k.observations_topic.as_str()])?;
    let thread = IntakeThread::spawn(consumer.clone(), settings.format.clone())
        .map_err(|e| ServiceError::Stage(format!("the intake thread could not start: {e}")))?;
    readiness.set_consuming(true);
    tracing::info!(
        topic = %k.observations_topic,
        group = %k.group_id,
        exactly_once,
        "Consuming"
    );
    let mut committer = Committer::new(
        delivery,
        producer.clone(),
        consumer.clone(),
        k.observations_topic.clone(),
        metrics.clone(),
        watch.clone(),
        StallReport {
            after: settings.service.stall_warning,
            readiness: readiness.clone(),
            metrics: metrics.clone(),
            brokers: k.brokers.clone(),
            mode: if exactly_once {
                "exactly-once"
            } else {
                "at-least-once"
            },
        },
    );
    let mut core = Core {
        settings: &settings,
        metrics: &metrics,
        consumer: &consumer,
        readiness: &readiness,
        exactly_once,
        owned: Owned::default(),
        batch: Batch::default(),
        carried: Vec::new(),
        spare,
        session: session_id(),
        seq: 0,
        batches: 1,
        suppressions,
        outcome: Box::default(),
        sweeps: 0,
    };
    let mut result = pipeline(&mut core, &mut intake, &mut committer, &shutdown).await;
    if result.is_ok() {
        // The batch in progress.
        result = core.deliver(&mut committer, false).await;
    }
    let result = result.and(committer.finished().await);
    readiness.set_consuming(false);
    tracing::info!("Stopping: flushing the producer and committing");
    // Closing the channel first: a revocation during the consumer's close does not wait
    // for a processing task that has stopped.
    drop(intake);
    thread.stop().await;
    if let Err(e) = producer.flush(settings.service.shutdown_deadline) {
        tracing::warn!(error = %e, "Producer flush did not complete");
    }
    if result.is_ok() {
        committer.finish();
    }
    consumer.unsubscribe();
    if let Some(f) = follower {
        f.abort();
    }
    result
}

/// Starts following the board's action topic when `[alerts] board_actions` is on, and
/// waits (up to 10 s) until what it held at start is applied, so that a restart honours
/// every watch and stop before the first decision.
///
/// # Errors
///
/// When the key actions are signed with cannot be read (`[board] action_key_file`). Without
/// one configured nothing is followed and nothing suppressed (a warning says so).
async fn follow_board_actions(
    settings: &Settings,
    metrics: &Metrics,
) -> Result<
    (
        crate::suppression::Suppressions,
        Option<tokio::task::JoinHandle<()>>,
    ),
    ServiceError,
> {
    let suppressions = crate::suppression::Suppressions::new();
    let Some(topic) = settings.suppress_from.clone() else {
        return Ok((suppressions, None));
    };
    let Some(path) = settings.board.action_key_file.clone() else {
        // Fail closed: without the key no action can be trusted, so none suppresses.
        tracing::warn!(
            "Board actions: board.action_key_file is not set, so no watch or stop from the \
             board can be verified; none is honoured and every alert pages (set it to the \
             boards' key file, or alerts.board_actions = false to say so)"
        );
        return Ok((suppressions, None));
    };
    let key = crate::config::read_action_key(&path, "board.action_key_file")
        .map_err(ServiceError::Stage)?;
    let refused = metrics.actions_refused.clone();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let config = client_config(settings, &[]);
    let following = suppressions.clone();
    let task = tokio::spawn(async move {
        if let Err(e) =
            crate::suppression::follow(config, topic, (key, refused), following, tx).await
        {
            tracing::error!(error = %e, "Board actions: cannot follow the action topic; no alert is suppressed");
        }
    });
    if tokio::time::timeout(std::time::Duration::from_secs(10), rx)
        .await
        .is_err()
    {
        tracing::warn!(
            "Board actions: the action topic was not read to its end within 10 s; \
             consuming starts, and watches and stops apply as they are read"
        );
    }
    Ok((suppressions, Some(task)))
}

/// The processing stage's loop: takes what the intake sends, closes batches and hands
/// them to delivery, until `shutdown` or a failure.
async fn pipeline(
    core: &mut Core<'_>,
    intake: &mut mpsc::Receiver<Intake>,
    committer: &mut Committer<IntakeContext>,
    shutdown: &CancellationToken,
) -> Result<(), ServiceError> {
    let service = &core.settings.service;
    let (max_messages, max_wait) = (service.batch_max_messages, service.batch_max_wait);
    let overdue_every = service.overdue_check;
    let mut next_overdue_check = tokio::time::Instant::now() + overdue_every;
    loop {
        let full =
            !core.carried.is_empty() || core.batch.messages >= max_messages + MAX_SET_MESSAGES;
        if !committer.is_busy()
            && (full || (intake.is_empty() && core.batch.waited(max_messages, max_wait)))
            && !core.batch.is_empty()
        {
            core.deliver(committer, false).await?;
            continue;
        }
        if !core.carried.is_empty() && core.batch.messages < max_messages {
            let carried = std::mem::take(&mut core.carried);
            core.take(carried, max_messages)?;
            continue;
        }
        let wait_until = core
            .batch
            .started
            .map_or_else(tokio::time::Instant::now, |s| {
                tokio::time::Instant::from_std(s + max_wait)
            });
        tokio::select! {
            biased;
            () = shutdown.cancelled() => return Ok(()),
            r = committer.finished(), if committer.is_busy() => r?,
            item = intake.recv(), if !full => match item {
                Some(Intake::Messages(chunk)) => core.take(chunk, max_messages)?,
                Some(Intake::Assigned(partitions)) => core.restore(&partitions)?,
                Some(Intake::Revoked { partitions, done }) => {
                    // Everything taken from them is committed before they go, including
                    // messages carried over from a full batch (they came before the
                    // revocation).
                    while !core.carried.is_empty() {
                        core.deliver(committer, true).await?;
                        let carried = std::mem::take(&mut core.carried);
                        core.take(carried, max_messages)?;
                    }
                    core.deliver(committer, true).await?;
                    committer.finished().await?;
                    core.owned.release(&partitions);
                    core.count_alerts(true);
                    let _ = done.send(());
                }
                Some(Intake::Stopped(why)) => {
                    return Err(ServiceError::Stage(format!("the intake thread stopped: {why}")));
                }
                // The intake stops only when told to.
                None => return Err(ServiceError::Stage("the intake thread stopped".into())),
            },
            () = tokio::time::sleep_until(wait_until), if !core.batch.is_empty() && !committer.is_busy() => {}
            () = tokio::time::sleep_until(next_overdue_check) => {
                next_overdue_check = tokio::time::Instant::now() + overdue_every;
                core.remind();
            }
        }
    }
}

/// What one batch accumulates between its first message and its delivery.
#[derive(Default)]
struct Batch {
    /// How many messages it took.
    messages: usize,
    /// When its first message (or reminder) was taken.
    started: Option<Instant>,
    outgoing: Vec<Outgoing>,
    /// Patients it changed, each once, in the order it first changed them.
    touched: Vec<(i32, vigil_wire::PatientId)>,
    /// Each input partition's next offset.
    next_offsets: HashMap<i32, i64, foldhash::fast::RandomState>,
    tally: Tally,
    /// The last message's partition and key, to end a full batch between patients.
    last_key: Option<(i32, Option<Vec<u8>>)>,
}

impl Batch {
    fn is_empty(&self) -> bool {
        self.started.is_none()
    }

    /// Whether it may be delivered once nothing more is waiting: it reached
    /// `max_messages`, or it has waited `max_wait` for more.
    fn waited(&self, max_messages: usize, max_wait: Duration) -> bool {
        self.started
            .is_some_and(|s| self.messages >= max_messages || s.elapsed() >= max_wait)
    }

    /// What processing adds to, for batch number `number`.
    fn work<'a>(
        &'a mut self,
        number: u64,
        suppressions: &'a crate::suppression::Suppressions,
        outcome: &'a mut vigil_score::Outcome,
    ) -> Work<'a> {
        Work {
            batch: number,
            outgoing: &mut self.outgoing,
            touched: &mut self.touched,
            tally: &mut self.tally,
            suppressions,
            outcome,
        }
    }

    fn start(&mut self) {
        if self.started.is_none() {
            self.started = Some(Instant::now());
        }
    }
}

/// The processing stage's state.
struct Core<'a> {
    settings: &'a Settings,
    metrics: &'a Metrics,
    consumer: &'a BaseConsumer<IntakeContext>,
    readiness: &'a Readiness,
    exactly_once: bool,
    owned: Owned,
    batch: Batch,
    /// Messages of a chunk that did not fit the full batch: they start the next one.
    carried: Vec<Incoming>,
    /// Where emptied chunks go back to the intake.
    spare: Spare,
    /// This process start's identity in transaction headers.
    session: String,
    /// The next transaction's number.
    seq: u64,
    /// The number of the batch in progress (from 1): patients remember the last batch
    /// that changed them.
    batches: u64,
    /// Watches and stops from the board (`[alerts] board_actions`).
    suppressions: crate::suppression::Suppressions,
    /// Where decisions are written, in place (no assessment moved per reading).
    outcome: Box<vigil_score::Outcome>,
    /// Overdue sweeps made: the drift gauges are recounted every
    /// [`DRIFT_EVERY_SWEEPS`]th, from the first.
    sweeps: u64,
}

/// Sweeps between two counts of the drift gauges (every 5 minutes at the default
/// `[service] overdue_check_ms` of 30 s): coverage and the score distribution move over
/// hours, and their pass reads about 20 parameters per patient.
const DRIFT_EVERY_SWEEPS: u64 = 10;

impl Core<'_> {
    /// Processes a chunk of messages into the batch; what does not fit a full batch is
    /// carried to the next. The emptied chunk goes back to the intake to be filled again.
    fn take(&mut self, mut chunk: Vec<Incoming>, max_messages: usize) -> Result<(), ServiceError> {
        let taken = self.take_from(&mut chunk, max_messages);
        self.spare.give(chunk);
        taken
    }

    /// [`Core::take`]'s work: each message is processed where it lies in the chunk.
    fn take_from(
        &mut self,
        chunk: &mut Vec<Incoming>,
        max_messages: usize,
    ) -> Result<(), ServiceError> {
        for i in 0..chunk.len() {
            let m = &mut chunk[i];
            let batch = &mut self.batch;
            if batch.messages >= max_messages {
                let continues = batch
                    .last_key
                    .as_ref()
                    .is_some_and(|(p, k)| *p == m.partition && k.as_deref() == m.key());
                if !continues || batch.messages >= max_messages + MAX_SET_MESSAGES {
                    self.carried.extend(chunk.drain(i..));
                    break;
                }
            }
            if self.settings.kafka.state_topic.is_some() && self.owned.needs_restore(m.partition) {
                // A message whose assignment was not announced (it cannot happen with
                // the rebalance callbacks in the stream; kept as a guard).
                self.restore(&[m.partition])?;
            }
            self.batch.start();
            self.batch.messages += 1;
            let admit = self.owned.admit(m, self.exactly_once);
            match admit {
                Admit::Skip => continue,
                Admit::Rewind(to) => {
                    let topic = self.settings.kafka.observations_topic.as_str();
                    tokio::task::block_in_place(|| {
                        self.consumer
                            .seek(topic, m.partition, to, Duration::from_secs(30))
                    })?;
                    continue;
                }
                Admit::AlreadyApplied | Admit::Process => {}
            }
            let next = self.batch.next_offsets.entry(m.partition).or_insert(0);
            *next = (*next).max(m.offset + 1);
            if admit == Admit::AlreadyApplied {
                continue;
            }
            if self.batch.messages >= max_messages {
                self.batch.last_key = Some((m.partition, m.key().map(<[u8]>::to_vec)));
            }
            let mut work = self
                .batch
                .work(self.batches, &self.suppressions, &mut self.outcome);
            process(
                m,
                self.settings,
                self.metrics,
                &mut self.owned.partitions,
                &mut work,
            );
        }
        // Counted per chunk, not per batch: the counters stay live under load.
        self.batch.tally.flush(self.metrics);
        Ok(())
    }

    /// Restores `partitions` from the changelog (if there is one), side by side, before
    /// any of their messages is processed.
    fn restore(&mut self, partitions: &[i32]) -> Result<(), ServiceError> {
        let Some(topic) = &self.settings.kafka.state_topic else {
            return Ok(());
        };
        let mut fresh: Vec<i32> = partitions
            .iter()
            .copied()
            .filter(|p| self.owned.needs_restore(*p))
            .collect();
        fresh.sort_unstable();
        fresh.dedup();
        if fresh.is_empty() {
            return Ok(());
        }
        self.readiness.set_restoring(fresh.len());
        let started = Instant::now();
        let input = &self.settings.kafka.observations_topic;
        let restored = tokio::task::block_in_place(|| {
            let committed = committed_offsets(self.consumer, input, &fresh)?;
            restore_partitions(self.settings, topic, &committed, self.metrics)
        })?;
        self.metrics
            .restore_seconds
            .observe(started.elapsed().as_secs_f64());
        for (partition, state) in restored {
            self.owned.install(partition, state);
        }
        self.count_alerts(true);
        self.readiness.set_restoring(0);
        Ok(())
    }

    /// The overdue sweep: reminders join the batch in progress.
    fn remind(&mut self) {
        let before = self.batch.outgoing.len();
        let mut work = self
            .batch
            .work(self.batches, &self.suppressions, &mut self.outcome);
        remind(
            now(),
            self.settings,
            self.metrics,
            &mut self.owned.partitions,
            &mut work,
        );
        if self.batch.outgoing.len() > before {
            self.batch.start();
        }
        self.sweeps += 1;
        self.count_alerts(self.sweeps % DRIFT_EVERY_SWEEPS == 1);
    }

    /// Recounts the active- and overdue-alert gauges (a pass over every patient held:
    /// done by the overdue sweep and after partitions move, not per batch), and with
    /// `drift` the drift gauges (a longer pass: every [`DRIFT_EVERY_SWEEPS`]th sweep).
    fn count_alerts(&self, drift: bool) {
        self.metrics.set_alert_count(&self.owned.alert_count());
        if !drift {
            return;
        }
        let engine = &self.settings.engine;
        let params = crate::drift::watched(&engine.risk);
        let drift = self
            .owned
            .drift(params, &engine.staleness, engine.score_risk);
        self.metrics.drift.set(&drift, params, engine.score_risk);
    }

    /// Closes the batch in progress and hands it to delivery (after the batch before it
    /// was committed). `sync`: its offsets are committed synchronously.
    async fn deliver(
        &mut self,
        committer: &mut Committer<IntakeContext>,
        sync: bool,
    ) -> Result<(), ServiceError> {
        committer.finished().await?;
        if let Some(sealed) = self.close(sync) {
            committer.submit(sealed);
        }
        Ok(())
    }

    /// Closes the batch: decides the vital-sign sets it applied, adds the state record of
    /// every patient it changed and the seals. None if there is nothing to deliver.
    fn close(&mut self, sync: bool) -> Option<Sealed> {
        let mut batch = std::mem::take(&mut self.batch);
        let started = batch.started?;
        self.batches += 1;
        let (settings, metrics) = (self.settings, self.metrics);
        let emitted = now();
        for (partition, patient_id) in &batch.touched {
            let Some(state) = self
                .owned
                .partitions
                .get_mut(partition)
                .and_then(|p| p.get_mut(patient_id))
            else {
                continue;
            };
            if std::mem::take(&mut state.undecided)
                && state
                    .tracker
                    .flush_into(&settings.engine, &settings.policy, &mut self.outcome)
                && self.outcome.decisions.iter().next().is_some()
            {
                let received = state.tracker.alerts().last_received();
                publish(
                    patient_id.as_str(),
                    state,
                    &self.outcome,
                    emitted,
                    received,
                    settings,
                    metrics,
                    &self.suppressions,
                    &mut batch.outgoing,
                );
            }
            // The state of every patient this batch changed, in the same transaction as
            // its alerts and offsets, marked with the input offset it reflects.
            let Some(topic) = &settings.kafka.state_topic else {
                continue;
            };
            let bytes = vigil_score::state::encode(state.tracker.window(), state.tracker.alerts());
            metrics.state_bytes.inc_by(bytes.len() as u64);
            let input_offset = batch
                .next_offsets
                .get(partition)
                .or_else(|| self.owned.positions.get(partition))
                .copied()
                .unwrap_or(0)
                .to_string();
            let mut headers = OwnedHeaders::new().insert(Header {
                key: INPUT_OFFSET,
                value: Some(&input_offset),
            });
            let naming = state.patient_naming.to_text();
            for (key, value) in [
                (ENCOUNTER, &state.encounter_id),
                (LOCATION, &state.location),
                (NAMING, &naming),
            ] {
                if let Some(v) = value {
                    headers = headers.insert(Header {
                        key,
                        value: Some(v),
                    });
                }
            }
            batch.outgoing.push(Outgoing {
                topic: topic.clone(),
                partition: Some(*partition),
                key: Some(patient_id.as_bytes().to_vec()),
                payload: bytes,
                headers: Some(headers),
                what: "state",
                decided: None,
            });
        }
        let offsets: Vec<(i32, i64)> = batch.next_offsets.drain().collect();
        // Partitions whose changelog this transaction writes without consuming from them
        // (overdue reminders) are sealed at their current position.
        let mut sealed_at = offsets.clone();
        for (partition, _) in &batch.touched {
            if !sealed_at.iter().any(|(p, _)| p == partition)
                && let Some(position) = self.owned.positions.get(partition)
            {
                sealed_at.push((*partition, *position));
            }
        }
        // Batches are committed in order, and a failed one stops the service: the next
        // batch may seal at these positions.
        for (partition, next) in &offsets {
            self.owned.positions.insert(*partition, *next);
        }
        // The next batch lists the patients it changes in this one's storage: a batch
        // under a backlog changes thousands, and a list grown afresh each time costs
        // copies and new memory.
        batch.touched.clear();
        self.batch.touched = std::mem::take(&mut batch.touched);
        metrics
            .patients
            .set(i64::try_from(self.owned.patient_count()).unwrap_or(i64::MAX));
        if offsets.is_empty() && batch.outgoing.is_empty() {
            return None;
        }
        let txn = format!("{}:{}", self.session, self.seq);
        self.seq += 1;
        // Under exactly-once each changelog partition the batch touched gets a checkpoint,
        // sent only after everything else of the transaction was acknowledged: it seals
        // that partition's share of the transaction (see `restore`).
        let seals = Delivery::seal(
            self.exactly_once,
            &txn,
            &self.session,
            settings.kafka.state_topic.as_deref(),
            &sealed_at,
            &mut batch.outgoing,
        );
        Some(Sealed {
            outgoing: batch.outgoing,
            seals,
            offsets,
            sync,
            started,
        })
    }
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
    consumer: &BaseConsumer<IntakeContext>,
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
        let set = [
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanisms", "SCRAM-SHA-512"),
            ("sasl.username", "vigil"),
            ("sasl.password", "secret"),
            ("ssl.endpoint.identification.algorithm", "https"),
        ];
        let mut raw = Config::default();
        for (k, v) in set {
            raw.kafka.librdkafka.insert(k.into(), v.into());
        }
        let settings = raw.validate().expect("valid");
        // Issue 33: the test passed with the pass-through deleted. Every setting reaches
        // the client configuration, over Vigil's own defaults for the same key.
        let config = client_config(&settings, &[("sasl.username", "a default")]);
        for (k, v) in set {
            assert_eq!(config.get(k), Some(v), "{k}");
        }
        assert_eq!(
            config.get("bootstrap.servers"),
            Some(settings.kafka.brokers.as_str())
        );
        // And librdkafka takes them.
        let consumer: Result<rdkafka::consumer::BaseConsumer, _> =
            config.clone().set("group.id", "tls-check").create();
        assert!(
            consumer.is_ok(),
            "librdkafka refused TLS/SASL settings: {:?}",
            consumer.err()
        );
    }
}
