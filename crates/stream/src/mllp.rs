//! `vigil mllp`: receives HL7 v2 over MLLP (the Minimal Lower Layer Protocol bedside
//! monitor gateways speak over TCP) and forwards accepted messages to the observations
//! topic.
//!
//! Each frame (`0x0B` message `0x1C 0x0D`) is answered with an HL7 ACK: `AA` once Kafka has
//! acknowledged the forwarded message (so nothing acknowledged is ever lost), `AE` when no
//! reading in it could be accepted or Kafka did not take it within `[mllp]
//! ack_timeout_ms` (the gateway should resend after fixing or later), `AR` when it is not an ORU^R01 Vigil can read. `MSA-3` carries
//! the reason. A message whose results are all valid LOINC or MDC codes Vigil does not
//! score (a sodium result) is acknowledged `AA` and not forwarded: nothing in it is
//! wrong, and nothing in it can be scored. Accepted messages are forwarded unchanged, keyed by the patient id, so the
//! service (format `hl7v2`) decodes them again and dead-letters any bad results with
//! their reasons.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use prometheus::{Histogram, HistogramOpts, IntCounterVec, IntGauge, Opts, Registry};
use rdkafka::producer::{FutureProducer, FutureRecord};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use vigil_wire::{DecodeError, Hl7Options, decode_hl7};

use crate::config::Settings;
use crate::service::client_config;

const START: u8 = 0x0b;
const END: [u8; 2] = [0x1c, 0x0d];

/// The MLLP receiver's metrics (served on its `/metrics`). Names start with `vigil_mllp_`;
/// no label carries a patient, a sender or a message id.
#[derive(Clone)]
pub struct MllpMetrics {
    registry: Registry,
    /// Messages answered, by ACK code (`AA`, `AE`, `AR`) and reason kind.
    pub messages: IntCounterVec,
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
                 stored, ignored (nothing Vigil scores), rejected (no result accepted), \
                 unreadable (not an ORU^R01), kafka (not stored in time), size.",
            ),
            &["ack", "reason"],
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
            Box::new(connections.clone()),
            Box::new(ack_seconds.clone()),
        ] {
            registry.register(c).expect("unique metric");
        }
        for (ack, reason) in [
            ("AA", "stored"),
            ("AA", "ignored"),
            ("AE", "rejected"),
            ("AE", "kafka"),
            ("AR", "unreadable"),
            ("AR", "size"),
        ] {
            messages.with_label_values(&[ack, reason]);
        }
        MllpMetrics {
            registry,
            messages,
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
    metrics: &'a MllpMetrics,
}

async fn connection(
    mut stream: TcpStream,
    link: &Link<'_>,
    stop: &CancellationToken,
) -> std::io::Result<()> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let n = tokio::select! {
            () = stop.cancelled() => return Ok(()),
            n = stream.read(&mut chunk) => n?,
        };
        if n == 0 {
            return Ok(());
        }
        buffer.extend_from_slice(&chunk[..n]);
        while let Some(end) = buffer.windows(2).position(|w| w == END) {
            let arrived = Instant::now();
            let frame: Vec<u8> = buffer.drain(..end + 2).collect();
            let body = &frame[..end];
            let body = match body.iter().position(|b| *b == START) {
                Some(start) => &body[start + 1..],
                None => body,
            };
            let (ack, reason) = handle(body, link).await;
            // Counted before it is sent: a sender holding its ACK sees it counted.
            link.metrics
                .messages
                .with_label_values(&[ack_code(&ack), reason])
                .inc();
            link.metrics
                .ack_seconds
                .observe(arrived.elapsed().as_secs_f64());
            stream.write_all(&[START]).await?;
            stream.write_all(ack.as_bytes()).await?;
            stream.write_all(&END).await?;
        }
        if buffer.len() > link.options.limits.max_bytes + 16 {
            let ack = ack_message(
                "",
                "AR",
                &format!(
                    "frame exceeds the limit of {} bytes",
                    link.options.limits.max_bytes
                ),
            );
            link.metrics
                .messages
                .with_label_values(&["AR", "size"])
                .inc();
            stream.write_all(&[START]).await?;
            stream.write_all(ack.as_bytes()).await?;
            stream.write_all(&END).await?;
            return Ok(());
        }
    }
}

/// The acknowledgement code (MSA-1) of an ACK made by [`ack_message`].
fn ack_code(ack: &str) -> &'static str {
    match ack.split("\rMSA|").nth(1).and_then(|m| m.get(..2)) {
        Some("AA") => "AA",
        Some("AR") => "AR",
        _ => "AE",
    }
}

/// Validates, forwards and acknowledges one message; returns the ACK text. Every `AE`
/// and `AR` is logged with its reason's kind and the elements it names, never the values
/// (logs carry no clinical data; the sender has the full reason in MSA-3).
/// Returns the ACK and the kind of its reason (the label of `vigil_mllp_messages_total`).
async fn handle(body: &[u8], link: &Link<'_>) -> (String, &'static str) {
    let Link {
        producer,
        topic,
        options,
        ack_timeout,
        ..
    } = *link;
    let text = String::from_utf8_lossy(body);
    let control = text
        .split(['\r', '\n'])
        .next()
        .and_then(|msh| msh.split('|').nth(9))
        .unwrap_or("")
        .to_owned();
    let results = decode_hl7(body, options);
    let good: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    let reasons: Vec<String> = results
        .iter()
        .filter_map(|r| r.as_ref().err())
        .filter(|e| !e.is_not_scored())
        .map(DecodeError::to_string)
        .collect();
    if good.is_empty() && reasons.is_empty() && !results.is_empty() {
        // Only valid codes Vigil does not score (a sodium result, say): nothing to score
        // and nothing wrong with the message, so it is acknowledged and not forwarded.
        let ignored: Vec<String> = results
            .iter()
            .filter_map(|r| r.as_ref().err())
            .map(DecodeError::to_string)
            .collect();
        return (
            ack_message(
                &control,
                "AA",
                &format!("nothing Vigil scores: {}", ignored.join("; ")),
            ),
            "ignored",
        );
    }
    let Some(first) = good.first() else {
        let structural = results.len() == 1
            && results[0].as_ref().is_err_and(|e| match e {
                DecodeError::At { path, .. } => {
                    path.starts_with("MSH") || path.starts_with("PID") || path == "OBX"
                }
                _ => true,
            });
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
            control = %control,
            elements = %elements.join(","),
            reason = if structural {
                "not an ORU^R01 Vigil can read"
            } else {
                "no result in the message could be accepted"
            },
            "MLLP message refused"
        );
        let kind = if structural { "unreadable" } else { "rejected" };
        return (ack_message(&control, code, &reasons.join("; ")), kind);
    };
    let key = first.patient_id.as_bytes().to_vec();
    let send = producer.send(FutureRecord::to(topic).key(&key).payload(body), ack_timeout);
    // The producer's own message timeout is the ACK timeout; this bounds the wait even if
    // librdkafka were slower to give up.
    let sent = match tokio::time::timeout(ack_timeout + Duration::from_secs(1), send).await {
        Ok(sent) => sent.map_err(|(e, _)| e.to_string()),
        Err(_) => Err(format!(
            "no answer from Kafka within {} ms",
            ack_timeout.as_millis()
        )),
    };
    if let Err(e) = &sent {
        tracing::warn!(
            code = "AE",
            control = %control,
            error = %e,
            reason = "Kafka did not take the message in time",
            "MLLP message not stored; the sender should send it again"
        );
    }
    match sent {
        Ok(_) if reasons.is_empty() => (ack_message(&control, "AA", ""), "stored"),
        // Accepted: the good readings will be scored; the bad ones are named here and
        // dead-lettered by the service.
        Ok(_) => (
            ack_message(
                &control,
                "AA",
                &format!("accepted with rejected results: {}", reasons.join("; ")),
            ),
            "stored",
        ),
        Err(e) => (
            ack_message(&control, "AE", &format!("not stored, send again: {e}")),
            "kafka",
        ),
    }
}

/// An HL7 v2.5.1 ACK for the message with control id `control`.
pub fn ack_message(control: &str, code: &str, text: &str) -> String {
    let clean = |s: &str| s.replace(['|', '^', '~', '\\', '&', '\r', '\n'], " ");
    let now = crate::event::now();
    let stamp: String = now
        .to_string()
        .chars()
        .filter(char::is_ascii_digit)
        .take(14)
        .collect();
    format!(
        "MSH|^~\\&|VIGIL|VIGIL|||{stamp}+0000||ACK^R01^ACK|ACK-{}|P|2.5.1\rMSA|{code}|{}|{}\r",
        clean(control),
        clean(control),
        clean(text)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ack_code_is_read_back_from_msa_1() {
        for code in ["AA", "AE", "AR"] {
            assert_eq!(ack_code(&ack_message("M1", code, "why")), code);
        }
    }

    #[test]
    fn acks_carry_code_control_id_and_a_clean_reason() {
        let ack = ack_message("MSG1", "AE", "OBX[1]-5: bad|value^here");
        let segments: Vec<&str> = ack.split('\r').collect();
        assert!(segments[0].starts_with("MSH|^~\\&|VIGIL|VIGIL|||"), "{ack}");
        assert!(
            segments[0].contains("|ACK^R01^ACK|ACK-MSG1|P|2.5.1"),
            "{ack}"
        );
        assert_eq!(segments[1], "MSA|AE|MSG1|OBX[1]-5: bad value here");
    }
}
