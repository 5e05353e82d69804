//! `vigil mllp`: receives HL7 v2 over MLLP (the Minimal Lower Layer Protocol bedside
//! monitor gateways speak over TCP) and forwards accepted messages to the observations
//! topic.
//!
//! Each frame (`0x0B` message `0x1C 0x0D`, found by the `frame` module) is answered with one HL7
//! ACK (the `ack` module), written whole in one piece on a socket with Nagle's algorithm off:
//! - `AA` once Kafka has acknowledged the forwarded message (nothing acknowledged is ever
//!   lost), and for a message whose results are all valid LOINC or MDC codes Vigil does not
//!   score (a sodium result: acknowledged, not forwarded, nothing in it is wrong);
//! - `AE` when Kafka did not take it within `[mllp] ack_timeout_ms` (send again), when no
//!   result in it can be accepted, and when some can but others will be dead-lettered for
//!   a reason known at receipt (an unknown code, a value out of range, a time beyond
//!   `[input] clock_tolerance_seconds` in the future): the good results are forwarded and
//!   the sender hears what was refused;
//! - `AR` when it is not an ORU^R01 Vigil can read, when it is larger than `[input]
//!   max_message_bytes` (drained to its end block, then answered: the connection stays
//!   open), and when its frame lacks its end block (it is refused on its own: the message
//!   after it is framed and answered separately, never merged into it).
//!
//! MSA-3 carries the start of the reason, each ERR segment one reason whole. Framing
//! errors are counted (`vigil_mllp_framing_errors_total`) and logged without content.
//! Accepted messages are forwarded unchanged, keyed by the patient id, so the service
//! (format `hl7v2`) decodes them again and dead-letters any bad results with their
//! reasons; a message about several patients (several PATIENT_RESULT groups) is forwarded
//! as one message per patient, each keyed by its own patient.

mod ack;
mod frame;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use prometheus::{Histogram, HistogramOpts, IntCounterVec, IntGauge, Opts, Registry};
use rdkafka::producer::{FutureProducer, FutureRecord};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use vigil_score::Span;
use vigil_wire::{DecodeError, Hl7Options, decode_hl7};

use crate::config::Settings;
use crate::service::client_config;
use ack::{Problem, Sender};
use frame::{Frame, Framer};

/// The MLLP receiver's metrics (served on its `/metrics`). Names start with `vigil_mllp_`;
/// no label carries a patient, a sender or a message id.
#[derive(Clone)]
pub struct MllpMetrics {
    registry: Registry,
    /// Messages answered, by ACK code (`AA`, `AE`, `AR`) and reason kind.
    pub messages: IntCounterVec,
    /// Framing errors, by kind (`unterminated`, `oversize`, `stray`, `truncated`).
    pub framing_errors: IntCounterVec,
    /// Connections open now.
    pub connections: IntGauge,
    /// Seconds from a message's last byte to its ACK being written.
    pub ack_seconds: Histogram,
}

impl MllpMetrics {
    /// Registers the metrics in a fresh registry.
    ///
    /// # Panics
    ///
    /// Never in practice: the names are fixed here and covered by the tests.
    pub fn new() -> MllpMetrics {
        let registry = Registry::new();
        let messages = IntCounterVec::new(
            Opts::new(
                "vigil_mllp_messages_total",
                "HL7 v2 messages answered over MLLP, by ACK code (AA, AE, AR) and reason: \
                 stored, ignored (nothing Vigil scores), partial (stored, some results \
                 refused), rejected (no result accepted), unreadable (not an ORU^R01), \
                 kafka (not stored in time), size (over the limit), framing (no end block).",
            ),
            &["ack", "reason"],
        )
        .expect("valid metric");
        let framing_errors = IntCounterVec::new(
            Opts::new(
                "vigil_mllp_framing_errors_total",
                "MLLP framing errors, by kind: unterminated (a frame without its end block, \
                 answered AR), oversize (answered AR), stray (bytes outside a frame, \
                 skipped), truncated (the connection closed mid-frame).",
            ),
            &["kind"],
        )
        .expect("valid metric");
        let connections = IntGauge::new("vigil_mllp_connections", "MLLP connections open now.")
            .expect("valid metric");
        let ack_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "vigil_mllp_ack_seconds",
                "Seconds from a message's last byte to its ACK being ready to send (AA waits for Kafka).",
            )
            .buckets(vec![
                0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0,
            ]),
        )
        .expect("valid metric");
        for c in [
            Box::new(messages.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(framing_errors.clone()),
            Box::new(connections.clone()),
            Box::new(ack_seconds.clone()),
        ] {
            registry.register(c).expect("unique metric");
        }
        for (ack, reason) in [
            ("AA", "stored"),
            ("AA", "ignored"),
            ("AE", "partial"),
            ("AE", "rejected"),
            ("AE", "kafka"),
            ("AR", "unreadable"),
            ("AR", "size"),
            ("AR", "framing"),
        ] {
            messages.with_label_values(&[ack, reason]);
        }
        for kind in ["unterminated", "oversize", "stray", "truncated"] {
            framing_errors.with_label_values(&[kind]);
        }
        MllpMetrics {
            registry,
            messages,
            framing_errors,
            connections,
            ack_seconds,
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        crate::metrics::render(&self.registry)
    }
}

impl Default for MllpMetrics {
    fn default() -> Self {
        MllpMetrics::new()
    }
}

/// Binds `[mllp] listen` and serves MLLP until `shutdown`, forwarding to `[mllp] topic`
/// with the cluster settings of `[kafka]` (including `[kafka.librdkafka]`: TLS, SASL);
/// returns the bound address and the serving task.
///
/// # Errors
///
/// When the address cannot be bound or the producer cannot be created.
pub async fn serve(
    settings: &Settings,
    metrics: MllpMetrics,
    shutdown: CancellationToken,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>), Box<dyn std::error::Error + Send + Sync>> {
    let listen = settings.mllp_listen;
    let ack_timeout = settings.mllp_ack_timeout;
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|e| crate::http::bind_error(listen, "[mllp] listen (VIGIL_MLLP_LISTEN)", &e))?;
    let bound = listener.local_addr()?;
    // librdkafka fails a message Kafka has not taken within the ACK timeout, so the
    // gateway hears AE (send again) instead of waiting minutes.
    let timeout = ack_timeout.as_millis().clamp(100, 300_000).to_string();
    let producer: FutureProducer = client_config(
        settings,
        &[
            ("enable.idempotence", "true"),
            ("acks", "all"),
            ("message.timeout.ms", &timeout),
        ],
    )
    .create()?;
    let topic = settings.mllp_topic.clone();
    let options = settings.hl7.clone();
    let clock_tolerance = settings.clock_tolerance;
    let task = tokio::spawn(async move {
        loop {
            let (stream, peer) = tokio::select! {
                () = shutdown.cancelled() => break,
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!(error = %e, "MLLP accept failed");
                        continue;
                    }
                },
            };
            tracing::info!(%peer, "MLLP connection");
            // Each ACK is written in one piece; without this, Nagle's algorithm holds a
            // small write back until the sender acknowledges the last one.
            if let Err(e) = stream.set_nodelay(true) {
                tracing::warn!(%peer, error = %e, "MLLP connection: TCP_NODELAY not set");
            }
            let producer = producer.clone();
            let topic = topic.clone();
            let options = options.clone();
            let stop = shutdown.clone();
            let metrics = metrics.clone();
            tokio::spawn(async move {
                metrics.connections.inc();
                let link = Link {
                    producer: &producer,
                    topic: &topic,
                    options: &options,
                    ack_timeout,
                    clock_tolerance,
                    metrics: &metrics,
                };
                if let Err(e) = connection(stream, &link, &stop).await {
                    tracing::info!(%peer, error = %e, "MLLP connection closed");
                }
                metrics.connections.dec();
            });
        }
    });
    Ok((bound, task))
}

/// What one connection forwards with.
struct Link<'a> {
    producer: &'a FutureProducer,
    topic: &'a str,
    options: &'a Hl7Options,
    ack_timeout: Duration,
    clock_tolerance: Span,
    metrics: &'a MllpMetrics,
}

async fn connection(
    mut stream: TcpStream,
    link: &Link<'_>,
    stop: &CancellationToken,
) -> std::io::Result<()> {
    let limit = link.options.limits.max_bytes;
    let mut framer = Framer::new(limit);
    let mut frames = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let n = tokio::select! {
            () = stop.cancelled() => return Ok(()),
            n = stream.read(&mut chunk) => n?,
        };
        if n == 0 {
            if framer.mid_frame() {
                framing_error(link.metrics, "truncated");
            }
            return Ok(());
        }
        framer.push(&chunk[..n], &mut frames);
        for frame in frames.drain(..) {
            let arrived = Instant::now();
            let (answer, code, reason) = match frame {
                Frame::Message(body) => handle(&body, link).await,
                Frame::Unterminated(body) => {
                    framing_error(link.metrics, "unterminated");
                    refuse(
                        &body,
                        "framing",
                        "the frame ended without its end block (0x1C 0x0D) before the next \
                         start block (0x0B); this message was not taken: send it again, \
                         framed 0x0B message 0x1C 0x0D",
                    )
                }
                Frame::Oversize { head, size } => {
                    framing_error(link.metrics, "oversize");
                    refuse(
                        &head,
                        "size",
                        &format!(
                            "the message has {size} bytes, more than the limit of {limit} \
                             ([input] max_message_bytes); it was not taken"
                        ),
                    )
                }
                Frame::Stray(count) => {
                    framing_error(link.metrics, "stray");
                    tracing::warn!(bytes = count, "MLLP bytes outside a frame skipped");
                    continue;
                }
            };
            // Counted before it is sent: a sender holding its ACK sees it counted.
            link.metrics
                .messages
                .with_label_values(&[code, reason])
                .inc();
            link.metrics
                .ack_seconds
                .observe(arrived.elapsed().as_secs_f64());
            stream.write_all(&answer).await?;
        }
    }
}

fn framing_error(metrics: &MllpMetrics, kind: &str) {
    metrics.framing_errors.with_label_values(&[kind]).inc();
    tracing::warn!(kind, "MLLP framing error");
}

/// The AR answering a message refused for its framing or size (`reason` is the metric's
/// label, `why` the sender's reason).
fn refuse(body: &[u8], reason: &'static str, why: &str) -> (Vec<u8>, &'static str, &'static str) {
    let sender = Sender::of(body);
    tracing::warn!(code = "AR", control = %sender.control, reason, "MLLP message refused");
    (
        answer(&sender, "AR", "", &[Problem::new(why)]),
        "AR",
        reason,
    )
}

/// The framed ACK, stamped now.
fn answer(sender: &Sender, code: &str, lead: &str, problems: &[Problem]) -> Vec<u8> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let digits: String = crate::event::now()
        .to_string()
        .chars()
        .filter(char::is_ascii_digit)
        .take(14)
        .collect();
    // The ACK's own control id: its time and a sequence number, 19 characters (MSH-10
    // holds 20).
    let id = format!(
        "{digits}{:05}",
        NEXT.fetch_add(1, Ordering::Relaxed) % 100_000
    );
    ack::ack(sender, code, lead, problems, &format!("{digits}+0000"), &id)
}

/// Validates, forwards and acknowledges one message; returns the framed ACK, its code and
/// the kind of its reason (the labels of `vigil_mllp_messages_total`). Every `AE` and `AR`
/// is logged with its reason's kind and the elements it names, never the values (logs
/// carry no clinical data; the sender has the full reason in MSA-3 and ERR).
async fn handle(body: &[u8], link: &Link<'_>) -> (Vec<u8>, &'static str, &'static str) {
    let Link {
        producer,
        topic,
        options,
        ack_timeout,
        clock_tolerance,
        ..
    } = *link;
    let sender = Sender::of(body);
    let received = crate::event::now();
    let limit = received.plus(clock_tolerance);
    let results = decode_hl7(body, options);
    let structural = results.len() == 1
        && results[0].as_ref().is_err_and(|e| match e {
            DecodeError::At { path, .. } => {
                path.starts_with("MSH") || path.starts_with("PID") || path == "OBX"
            }
            _ => true,
        });
    let mut good = 0usize;
    let mut problems: Vec<Problem> = Vec::new();
    let mut ignored: Vec<Problem> = Vec::new();
    for r in &results {
        match r {
            // A reading the service would dead-letter for its time is refused here too.
            Ok(d) if d.observation.effective() > limit => {
                let reading = d.observation.reading();
                problems.push(Problem::new(vigil_wire::future_reason(
                    &reading,
                    received,
                    clock_tolerance,
                    "[input] clock_tolerance_seconds sets the tolerance",
                )));
            }
            Ok(_) => good += 1,
            Err(e) if e.is_not_scored() => ignored.push(Problem::new(e.to_string())),
            Err(e) => problems.push(Problem::new(e.to_string())),
        }
    }
    if good == 0 && problems.is_empty() && !ignored.is_empty() {
        // Only valid codes Vigil does not score (a sodium result, say): nothing to score
        // and nothing wrong with the message, so it is acknowledged and not forwarded.
        return (
            answer(&sender, "AA", "nothing Vigil scores: ", &ignored),
            "AA",
            "ignored",
        );
    }
    if good == 0 {
        let code = if structural { "AR" } else { "AE" };
        let elements: Vec<&str> = results
            .iter()
            .filter_map(|r| match r {
                Err(DecodeError::At { path, .. }) => Some(path.as_str()),
                _ => None,
            })
            .collect();
        tracing::warn!(
            code,
            control = %sender.control,
            elements = %elements.join(","),
            reason = if structural {
                "not an ORU^R01 Vigil can read"
            } else {
                "no result in the message could be accepted"
            },
            "MLLP message refused"
        );
        let kind = if structural { "unreadable" } else { "rejected" };
        return (answer(&sender, code, "", &problems), code, kind);
    }
    // One message per patient, each keyed by its patient, so that each patient's
    // readings reach the partition that holds its state.
    let mut sent = Ok(());
    for part in vigil_wire::hl7::per_patient(body) {
        // A part of a message about several patients is decoded for its own key; a
        // message about one patient is its only part.
        let decoded = (part.len() != body.len()).then(|| decode_hl7(&part, options));
        let key = decoded
            .as_ref()
            .unwrap_or(&results)
            .iter()
            .find_map(|r| r.as_ref().ok())
            .map(|d| d.patient_id.as_bytes().to_vec());
        let Some(key) = key else {
            // A group none of whose results can be accepted: its reasons are in the ACK.
            continue;
        };
        sent = forward(producer, topic, &key, &part, ack_timeout).await;
        if sent.is_err() {
            break;
        }
    }
    if let Err(e) = sent {
        tracing::warn!(
            code = "AE",
            control = %sender.control,
            error = %e,
            reason = "Kafka did not take the message in time",
            "MLLP message not stored; the sender should send it again"
        );
        return (
            answer(
                &sender,
                "AE",
                "not stored, send again: ",
                &[Problem::new(e)],
            ),
            "AE",
            "kafka",
        );
    }
    if problems.is_empty() {
        return (answer(&sender, "AA", "", &[]), "AA", "stored");
    }
    // The good results are stored and will be scored; the sender hears what the service
    // will refuse, with each reason.
    tracing::warn!(
        code = "AE",
        control = %sender.control,
        refused = problems.len(),
        stored = good,
        "MLLP message stored with results refused"
    );
    (
        answer(
            &sender,
            "AE",
            &format!("stored {good}, refused {}: ", problems.len()),
            &problems,
        ),
        "AE",
        "partial",
    )
}

/// Sends `payload` keyed `key`, waiting at most the ACK timeout for Kafka's answer.
async fn forward(
    producer: &FutureProducer,
    topic: &str,
    key: &[u8],
    payload: &[u8],
    ack_timeout: Duration,
) -> Result<(), String> {
    let send = producer.send(
        FutureRecord::to(topic).key(key).payload(payload),
        ack_timeout,
    );
    // The producer's own message timeout is the ACK timeout; this bounds the wait even if
    // librdkafka were slower to give up.
    match tokio::time::timeout(ack_timeout + Duration::from_secs(1), send).await {
        Ok(sent) => sent.map(|_| ()).map_err(|(e, _)| e.to_string()),
        Err(_) => Err(format!(
            "no answer from Kafka within {} ms",
            ack_timeout.as_millis()
        )),
    }
}
