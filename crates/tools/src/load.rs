//! `vigil load`: the service's own load tool (BENCHMARKS.md records its figures).
//!
//! Both modes run the real service (consumer, scoring, alert policy, producer, commits)
//! against an in-process Kafka-protocol broker (librdkafka's mock cluster) on local TCP.
//!
//! - **throughput**: preloads N observations, then starts the service and measures how
//!   fast it drains them (observations counted by the service's own metrics).
//! - **latency**: sends observations at a steady rate for a while, with event time set to
//!   the moment of sending, so an alert's `observed_at` is when the observation that
//!   caused it left the producer; the alert's arrival at an ordinary consumer minus that
//!   instant is the end-to-end latency. Every heart-rate reading alternates a patient
//!   between NEWS2 0 and 3, so every observation raises or resolves an alert.

use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use tokio_util::sync::CancellationToken;

use vigil_stream::config::{Config, Settings};
use vigil_stream::event::now;
use vigil_stream::http::Readiness;
use vigil_stream::metrics::Metrics;
use vigil_testkit::MockBroker;

/// A load run's figures.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Observations the service counted.
    pub observations: u64,
    /// Alerts received by the reading consumer.
    pub alerts: u64,
    /// Seconds measured.
    pub seconds: f64,
    /// Observations per second through the service.
    pub per_second: f64,
    /// Steady-state latency percentiles in milliseconds (p50, p99, max), latency mode
    /// only: the alerts of the observations sent at the measured rate, after the service
    /// had joined its group, restored its partitions and processed a first observation.
    pub latency_ms: Option<(f64, f64, f64)>,
    /// The same observations by quarter of the sending period, in sending order: (p50,
    /// p99) in milliseconds of each quarter, latency mode only. A steady state shows four
    /// similar quarters; a p99 that climbs quarter by quarter is a cost that grows with
    /// the run (such as the in-process broker's log walks, BENCHMARKS.md).
    pub quarters_ms: Vec<(f64, f64)>,
    /// Milliseconds from starting the service to the first alert received (joining the
    /// group, restoring, the first batch), latency mode only.
    pub first_alert_ms: Option<f64>,
}

/// The load tool's service configuration: group `vigil-load`, every rule alerting, HTTP
/// on a free port.
fn config(brokers: &str, delivery: &str, transactional_id: &str) -> Config {
    let mut raw = Config::default();
    raw.kafka.brokers = brokers.into();
    raw.kafka.group_id = "vigil-load".into();
    // The most alerts a feed can produce: the service's worst case.
    raw.alerts = vigil_stream::config::Alerts::every_rule();
    raw.kafka.delivery = delivery.into();
    raw.kafka.transactional_id = transactional_id.into();
    raw.http.listen = "127.0.0.1:0".into();
    raw
}

/// The observations, changelog, alerts and dead-letter topics on `broker`, and the
/// settings of a service using them.
fn settings(
    broker: &MockBroker,
    partitions: i32,
    delivery: &str,
) -> Result<Settings, Box<dyn std::error::Error + Send + Sync>> {
    let raw = config(&broker.bootstrap_servers(), delivery, "vigil-load");
    broker.create_topic(&raw.kafka.observations_topic, partitions)?;
    broker.create_topic(&raw.kafka.state_topic, partitions)?;
    broker.create_topic(&raw.kafka.alerts_topic, partitions)?;
    broker.create_topic(&raw.kafka.dlq_topic, 1)?;
    Ok(raw.validate()?)
}

fn observation(patient: usize, visit: u64, effective: vigil_score::Timestamp) -> (String, String) {
    let id = format!("LOAD-{patient:06}");
    let hr = if visit % 2 == 1 { 135 } else { 80 };
    let payload = format!(
        r#"{{"patient_id":"{id}","location":"load/bed-{patient}","code":"heart_rate","value":{hr},"unit":"/min","effective":"{effective}","id":"{id}-{visit}"}}"#
    );
    (id, payload)
}

/// Sends `messages` observations over `patients` patients to `topic` and waits until the
/// broker has all of them.
async fn preload(
    brokers: &str,
    topic: &str,
    messages: u64,
    patients: usize,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let p = producer(brokers)?;
    let start = vigil_score::Timestamp::from_millis(1_795_428_000_000);
    let chunk = 50_000u64;
    let mut sent = 0u64;
    while sent < messages {
        let batch: Vec<(String, String)> = (sent..(sent + chunk).min(messages))
            .map(|i| {
                let patient = (i % patients as u64) as usize;
                let visit = i / patients as u64;
                observation(
                    patient,
                    visit,
                    start.plus(vigil_score::Span::millis(i as i64)),
                )
            })
            .collect();
        let sends = batch.iter().map(|(k, v)| {
            p.send(
                FutureRecord::to(topic).key(k).payload(v),
                Duration::from_secs(60),
            )
        });
        for r in futures_util::future::join_all(sends).await {
            r.map_err(|(e, _)| e)?;
        }
        sent += batch.len() as u64;
    }
    Ok(())
}

/// Every observation the service counted, whatever its outcome.
fn counted(m: &Metrics) -> u64 {
    ["accepted", "duplicate", "stale", "rejected"]
        .iter()
        .map(|o| m.observations.with_label_values(&[o]).get())
        .sum()
}

fn producer(brokers: &str) -> Result<FutureProducer, rdkafka::error::KafkaError> {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "1")
        .set("queue.buffering.max.messages", "1000000")
        .create()
}

/// Preloads `messages` observations over `patients` patients, then measures the service
/// draining them.
///
/// # Errors
///
/// When the broker or a client cannot start.
pub async fn throughput(
    messages: u64,
    patients: usize,
    partitions: i32,
    delivery: &str,
) -> Result<Report, Box<dyn std::error::Error + Send + Sync>> {
    let broker = MockBroker::start(1)?;
    let settings = settings(&broker, partitions, delivery)?;
    let topic = settings.kafka.observations_topic.clone();
    preload(&settings.kafka.brokers, &topic, messages, patients).await?;
    let metrics = Metrics::new();
    let stop = CancellationToken::new();
    let began = Instant::now();
    let service = tokio::spawn(vigil_stream::service::run(
        settings,
        metrics.clone(),
        std::sync::Arc::new(Readiness::default()),
        stop.clone(),
    ));
    let mut first_seen: Option<Instant> = None;
    while counted(&metrics) < messages {
        if first_seen.is_none() && counted(&metrics) > 0 {
            first_seen = Some(Instant::now());
        }
        if service.is_finished() {
            service.await??;
            return Err("the service stopped before draining the load".into());
        }
        if began.elapsed() > Duration::from_secs(600) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let done = Instant::now();
    stop.cancel();
    service.await??;
    let from = first_seen.unwrap_or(began);
    let seconds = done.duration_since(from).as_secs_f64();
    let observations = counted(&metrics);
    drop(broker);
    Ok(Report {
        observations,
        alerts: metrics
            .alerts
            .with_label_values(&["news2", "raised", "advisory", "live"])
            .get(),
        seconds,
        per_second: observations as f64 / seconds.max(1e-9),
        latency_ms: None,
        quarters_ms: Vec::new(),
        first_alert_ms: None,
    })
}

/// Sends `rate` observations per second for `seconds` seconds over `patients` patients and
/// measures the time from each observation's sending to its alert's arrival.
///
/// # Errors
///
/// When the broker or a client cannot start.
pub async fn latency(
    rate: u64,
    seconds: u64,
    patients: usize,
    partitions: i32,
    delivery: &str,
) -> Result<Report, Box<dyn std::error::Error + Send + Sync>> {
    let broker = MockBroker::start(1)?;
    let settings = settings(&broker, partitions, delivery)?;
    let brokers = settings.kafka.brokers.clone();
    let topic = settings.kafka.observations_topic.clone();
    let alerts_topic = settings.kafka.alerts_topic.clone();
    let metrics = Metrics::new();
    let stop = CancellationToken::new();
    let started = now();
    let service = tokio::spawn(vigil_stream::service::run(
        settings,
        metrics.clone(),
        std::sync::Arc::new(Readiness::default()),
        stop.clone(),
    ));
    let reader: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("group.id", "vigil-load-reader")
        .set("auto.offset.reset", "earliest")
        .set("fetch.wait.max.ms", "1")
        .create()?;
    reader.subscribe(&[alerts_topic.as_str()])?;
    let read_stop = stop.clone();
    let reading = tokio::spawn(async move {
        // (observed_at, received) of every alert.
        let mut latencies = Vec::new();
        loop {
            let m = tokio::select! {
                () = read_stop.cancelled() => break,
                m = reader.recv() => m,
            };
            let received = now();
            let Ok(m) = m else { continue };
            let Some(Ok(v)) = m.payload().map(serde_json::from_slice::<serde_json::Value>) else {
                continue;
            };
            if let Some(at) = v["observed_at"]
                .as_str()
                .and_then(|t| vigil_score::Timestamp::parse_rfc3339(t).ok())
            {
                latencies.push((at.as_millis(), received.as_millis()));
            }
        }
        latencies
    });
    // Warm up: wait until the service has joined its group and consumes.
    let p = producer(&brokers)?;
    let warm = now();
    let (k, v) = observation(patients, 0, warm);
    p.send(
        FutureRecord::to(&topic).key(&k).payload(&v),
        Duration::from_secs(30),
    )
    .await
    .map_err(|(e, _)| e)?;
    while metrics.observations.with_label_values(&["accepted"]).get() == 0 {
        if service.is_finished() {
            // The service stopped before its first observation: report why.
            service.await??;
            return Err("the service stopped before its first observation".into());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let total = rate * seconds;
    let measured_from = now();
    let tick = Duration::from_millis(10);
    let per_tick = (rate / 100).max(1);
    let mut next = tokio::time::Instant::now();
    let began = Instant::now();
    let mut i = 0u64;
    let mut pending = Vec::new();
    while i < total {
        let t = now();
        for _ in 0..per_tick.min(total - i) {
            let patient = (i % patients as u64) as usize;
            let visit = i / patients as u64 + 1;
            let (k, v) = observation(patient, visit, t);
            match p.send_result(FutureRecord::to(&topic).key(&k).payload(&v)) {
                Ok(f) => pending.push(f),
                Err((e, _)) => return Err(e.into()),
            }
            i += 1;
        }
        next += tick;
        tokio::time::sleep_until(next).await;
    }
    for f in pending {
        let _ = f.await;
    }
    let sending = began.elapsed().as_secs_f64();
    // Drain: until every observation was counted and alerts stop arriving.
    let expected = total + 1;
    let drain_deadline = Instant::now() + Duration::from_secs(60);
    while metrics.observations.with_label_values(&["accepted"]).get() < expected
        && Instant::now() < drain_deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.cancel();
    service.await??;
    let alerts = reading.await?;
    let first_alert_ms = alerts
        .iter()
        .map(|&(_, received)| received)
        .min()
        .map(|r| (r - started.as_millis()) as f64);
    let mut measured: Vec<(i64, f64)> = alerts
        .iter()
        .filter(|&&(at, _)| at >= measured_from.as_millis())
        .map(|&(at, received)| (at, (received - at) as f64))
        .collect();
    measured.sort_by_key(|&(at, _)| at);
    let quarters_ms = measured
        .chunks(measured.len().div_ceil(4).max(1))
        .map(|q| {
            let mut q: Vec<f64> = q.iter().map(|&(_, l)| l).collect();
            q.sort_by(f64::total_cmp);
            (percentile(&q, 0.5), percentile(&q, 0.99))
        })
        .collect();
    let mut latencies: Vec<f64> = measured.into_iter().map(|(_, l)| l).collect();
    latencies.sort_by(f64::total_cmp);
    let pick = |q: f64| percentile(&latencies, q);
    let observations = metrics.observations.with_label_values(&["accepted"]).get();
    drop(broker);
    Ok(Report {
        observations,
        alerts: latencies.len() as u64,
        seconds: sending,
        per_second: total as f64 / sending.max(1e-9),
        latency_ms: Some((
            pick(0.5),
            pick(0.99),
            latencies.last().copied().unwrap_or(f64::NAN),
        )),
        first_alert_ms,
        quarters_ms,
    })
}

/// The `q` quantile of `sorted` (nearest rank), NaN when it is empty.
fn percentile(sorted: &[f64], q: f64) -> f64 {
    sorted
        .get(((sorted.len() as f64 - 1.0) * q).round() as usize)
        .copied()
        .unwrap_or(f64::NAN)
}

/// The process's resident set size in bytes (Linux `/proc/self/status`), if known.
fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// What `vigil load restore` measured.
#[derive(Clone, Debug)]
pub struct RestoreReport {
    /// Patients restored and the time it took.
    pub report: Report,
    /// Changelog bytes per patient.
    pub changelog_bytes: f64,
    /// Resident memory the restored patients occupy, bytes per patient, measured on a
    /// second restore with the allocators' caches warm (Linux only).
    pub resident_bytes: Option<f64>,
    /// The first restore's growth of resident memory per patient, which also holds what
    /// the allocators kept of the restore's transient buffers (Linux only).
    pub cold_resident_bytes: Option<f64>,
}

/// Writes `patients` ward patients' state (24 h of vital-sign sets, one every
/// `vitals_every_hours`, and a lab panel each) to a changelog topic of `partitions`
/// partitions, then restores every partition
/// the way the service does on assignment, all partitions side by side. Reports the bytes
/// per patient, the restore time and the resident memory the restored patients hold.
///
/// # Errors
///
/// When the broker or a client cannot start.
pub async fn restore(
    patients: usize,
    partitions: i32,
    vitals_every_hours: i64,
) -> Result<RestoreReport, Box<dyn std::error::Error + Send + Sync>> {
    let every = usize::try_from(vitals_every_hours.clamp(1, 24)).unwrap_or(1);
    use vigil_score::{AlertState, Observation, RawValue, Status, Window};
    let broker = MockBroker::start(1)?;
    let mut raw = Config::default();
    raw.kafka.brokers = broker.bootstrap_servers();
    raw.kafka.state_topic = "vigil.state".into();
    broker.create_topic(&raw.kafka.state_topic, partitions)?;
    let state_topic = raw.kafka.state_topic.clone();
    let settings = raw.validate()?;
    let engine = &settings.engine;
    let p = producer(&settings.kafka.brokers)?;
    let t0 = 1_795_428_000_000i64;
    let mut bytes_total = 0usize;
    let chunk = 5_000usize;
    let mut done = 0usize;
    while done < patients {
        let batch: Vec<(String, i32, Vec<u8>)> = (done..(done + chunk).min(patients))
            .map(|i| {
                let mut w = Window::new();
                for h in (0..24i64).step_by(every) {
                    let t = vigil_score::Timestamp::from_millis(t0 + h * 3_600_000);
                    for (code, v) in [
                        ("heart_rate", 80.0),
                        ("resp_rate", 16.0),
                        ("sbp", 120.0),
                        ("dbp", 70.0),
                        ("map", 85.0),
                        ("temperature", 37.0),
                        ("spo2", 97.0),
                    ] {
                        if let Ok(o) = Observation::new(
                            code,
                            RawValue::Number(v + (h % 3) as f64),
                            None,
                            t,
                            Some(&format!("{i}-{code}-{h}")),
                            Status::Final,
                        ) {
                            w.ingest(&o, &engine.staleness);
                        }
                    }
                }
                let labs = vigil_score::Timestamp::from_millis(t0 + 6 * 3_600_000);
                for (code, v) in [
                    ("wbc", 8.0),
                    ("lactate", 1.0),
                    ("creatinine", 0.9),
                    ("bilirubin", 0.5),
                    ("platelets", 200.0),
                ] {
                    if let Ok(o) = Observation::new(
                        code,
                        RawValue::Number(v),
                        None,
                        labs,
                        Some(&format!("{i}-{code}")),
                        Status::Final,
                    ) {
                        w.ingest(&o, &engine.staleness);
                    }
                }
                let bytes = vigil_score::state::encode(&w, &AlertState::new());
                (
                    format!("LOAD-{i:06}"),
                    (i % partitions as usize) as i32,
                    bytes,
                )
            })
            .collect();
        let sends = batch.iter().map(|(k, part, v)| {
            p.send(
                FutureRecord::to(&state_topic)
                    .partition(*part)
                    .key(k)
                    .payload(v),
                Duration::from_secs(60),
            )
        });
        for r in futures_util::future::join_all(sends).await {
            r.map_err(|(e, _)| e)?;
        }
        bytes_total += batch.iter().map(|(_, _, v)| v.len()).sum::<usize>();
        done += batch.len();
    }
    let metrics = Metrics::new();
    let began = Instant::now();
    let topic = state_topic.clone();
    let parts: Vec<(i32, Option<i64>)> = (0..partitions).map(|p| (p, None)).collect();
    let rss_before = resident_bytes();
    let state = tokio::task::block_in_place(|| {
        vigil_stream::changelog::restore_partitions(&settings, &topic, &parts, &metrics)
    })?;
    let restored: usize = state.values().map(|r| r.patients.len()).sum();
    // The restored patients are still held here, as the service holds them.
    let rss_after = resident_bytes();
    let seconds = began.elapsed().as_secs_f64();
    // The first restore's growth also holds what the allocators kept of its transient
    // buffers (every record is kept until its partition is read to the end). A second
    // restore, held beside the first, reuses those: its growth is what the patients hold
    // with the allocators' caches warm, as in a service at steady state.
    let again = tokio::task::block_in_place(|| {
        vigil_stream::changelog::restore_partitions(&settings, &topic, &parts, &metrics)
    })?;
    let rss_again = resident_bytes();
    let restored_again: usize = again.values().map(|r| r.patients.len()).sum();
    drop(again);
    drop(state);
    drop(broker);
    let per_patient = |before: Option<u64>, after: Option<u64>, n: usize| {
        before
            .zip(after)
            .map(|(b, a)| a.saturating_sub(b) as f64 / n.max(1) as f64)
    };
    let cold = per_patient(rss_before, rss_after, restored);
    let held = per_patient(rss_after, rss_again, restored_again);
    Ok(RestoreReport {
        report: Report {
            observations: restored as u64,
            alerts: 0,
            seconds,
            per_second: restored as f64 / seconds.max(1e-9),
            latency_ms: None,
            quarters_ms: Vec::new(),
            first_alert_ms: None,
        },
        changelog_bytes: bytes_total as f64 / patients.max(1) as f64,
        resident_bytes: held,
        cold_resident_bytes: cold,
    })
}

/// One service instance's share of a scale-out run.
#[derive(Clone, Debug, Default)]
pub struct InstanceShare {
    /// Observations it counted.
    pub observations: u64,
    /// Partitions it held when the last observation was counted.
    pub partitions: i64,
}

/// A scale-out run's figures.
#[derive(Clone, Debug, Default)]
pub struct ScaleReport {
    /// From the first observation counted to the last, all instances together.
    pub report: Report,
    /// Each instance's share, in the order they started.
    pub instances: Vec<InstanceShare>,
    /// For each instance after the first: the longest time, from its start until it
    /// counted its first observation, in which no instance counted any observation (how
    /// long the group stopped to rebalance), in milliseconds.
    pub stalls_ms: Vec<f64>,
}

/// Preloads `messages` observations, starts one instance, and another each time a
/// further `1/(instances + 1)` of the messages has been counted, all in one consumer
/// group with the partition assignment strategy `assignor`; measures the drain, each
/// instance's share and how long each join stopped the group.
///
/// # Errors
///
/// When the broker or a client cannot start, or an instance fails.
pub async fn scale(
    instances: usize,
    messages: u64,
    patients: usize,
    partitions: i32,
    delivery: &str,
    assignor: &str,
) -> Result<ScaleReport, Box<dyn std::error::Error + Send + Sync>> {
    let broker = MockBroker::start(1)?;
    let base = settings(&broker, partitions, delivery)?;
    let topic = base.kafka.observations_topic.clone();
    preload(&base.kafka.brokers, &topic, messages, patients).await?;
    let stop = CancellationToken::new();
    let mut running: Vec<(Metrics, tokio::task::JoinHandle<_>)> = Vec::new();
    let launch = |n: usize| -> Result<_, Box<dyn std::error::Error + Send + Sync>> {
        // Each instance needs its own transactional id, or they fence each other.
        let mut raw = config(&base.kafka.brokers, delivery, &format!("vigil-load-{n}"));
        raw.kafka
            .librdkafka
            .insert("partition.assignment.strategy".into(), assignor.into());
        let settings = raw.validate()?;
        let metrics = Metrics::new();
        let task = tokio::spawn(vigil_stream::service::run(
            settings,
            metrics.clone(),
            std::sync::Arc::new(Readiness::default()),
            stop.clone(),
        ));
        Ok((metrics, task))
    };
    running.push(launch(0)?);
    let total = |running: &[(Metrics, tokio::task::JoinHandle<_>)]| {
        running.iter().map(|(m, _)| counted(m)).sum::<u64>()
    };
    let began = Instant::now();
    let mut first_seen: Option<Instant> = None;
    let mut stalls_ms = Vec::new();
    // (joined at, last progress, longest stall, count at last progress) of the newest
    // instance until it counts its first observation.
    let mut joining: Option<(Instant, Instant, Duration, u64)> = None;
    let (mut progress_at, mut progress) = (Instant::now(), 0);
    loop {
        let now_count = total(&running);
        if first_seen.is_none() && now_count > 0 {
            first_seen = Some(Instant::now());
        }
        if now_count > progress {
            (progress_at, progress) = (Instant::now(), now_count);
        }
        if now_count >= messages {
            break;
        }
        if progress_at.elapsed() > Duration::from_secs(60) {
            stop.cancel();
            let states: Vec<String> = running
                .iter()
                .map(|(m, _)| {
                    format!(
                        "{} counted, {} commits, {} aborts, {} partitions",
                        counted(m),
                        m.commits.get(),
                        m.aborts.get(),
                        m.partitions.get()
                    )
                })
                .collect();
            return Err(format!(
                "no progress for 60 s at {now_count} of {messages} observations; instances: {}",
                states.join("; ")
            )
            .into());
        }
        if let Some(i) = running.iter().position(|(_, task)| task.is_finished()) {
            stop.cancel();
            let (_, task) = running.swap_remove(i);
            task.await??;
            return Err(format!("instance {} stopped early", i + 1).into());
        }
        if let Some((_, last, longest, at)) = &mut joining {
            if now_count > *at {
                *longest = (*longest).max(last.elapsed());
                *last = Instant::now();
                *at = now_count;
            }
            let newest = running.last().map_or(0, |(m, _)| counted(m));
            if newest > 0 {
                stalls_ms.push((*longest).max(last.elapsed()).as_secs_f64() * 1000.0);
                joining = None;
            }
        }
        let due = running.len() as u64 * messages / (instances as u64 + 1);
        if joining.is_none() && running.len() < instances && now_count >= due {
            running.push(launch(running.len())?);
            let now = Instant::now();
            joining = Some((now, now, Duration::ZERO, now_count));
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let done = Instant::now();
    let held: Vec<i64> = running.iter().map(|(m, _)| m.partitions.get()).collect();
    stop.cancel();
    let mut shares = Vec::new();
    let mut observations = 0;
    for ((metrics, task), partitions) in running.into_iter().zip(held) {
        task.await??;
        let n = counted(&metrics);
        observations += n;
        shares.push(InstanceShare {
            observations: n,
            partitions,
        });
    }
    let seconds = done
        .duration_since(first_seen.unwrap_or(began))
        .as_secs_f64();
    drop(broker);
    Ok(ScaleReport {
        report: Report {
            observations,
            alerts: 0,
            seconds,
            per_second: observations as f64 / seconds.max(1e-9),
            latency_ms: None,
            quarters_ms: Vec::new(),
            first_alert_ms: None,
        },
        instances: shares,
        stalls_ms,
    })
}
