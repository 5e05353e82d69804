//! `vigil demo`: the whole pipeline on one machine with nothing installed.
//!
//! Starts an in-process Kafka-protocol broker ([`MockBroker`]), the simulator feeding a
//! synthetic ward into it, the service, and a printer that reads the alerts topic like any
//! downstream consumer and prints each alert once as a readable line (repeated alert ids,
//! which at-least-once delivery can produce, are dropped).

use std::collections::HashSet;
use std::io::Write;
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, Settings};
use crate::mock::MockBroker;
use crate::simulate::{SimConfig, Ward, produce};

/// Demo settings.
#[derive(Clone, Debug)]
pub struct DemoConfig {
    /// Simulated patients.
    pub patients: usize,
    /// Share of them deteriorating.
    pub deteriorating: f64,
    /// Real time between charting rounds (each round is 15 simulated minutes).
    pub round_every: Duration,
    /// Stop after this many rounds (`None`: until interrupted).
    pub rounds: Option<u64>,
    /// HTTP address for the endpoints.
    pub listen: String,
}

impl Default for DemoConfig {
    fn default() -> Self {
        DemoConfig {
            patients: 24,
            deteriorating: 0.25,
            round_every: Duration::from_millis(1500),
            rounds: None,
            listen: "127.0.0.1:9898".into(),
        }
    }
}

/// Runs the demo until `shutdown` is cancelled (or the rounds are done and the last
/// alerts printed), writing alert lines to `out`. Returns the number of distinct alerts
/// printed.
///
/// # Errors
///
/// When the mock broker, the service or a client cannot start.
pub async fn run(
    demo: DemoConfig,
    shutdown: CancellationToken,
    out: &mut (dyn Write + Send),
) -> Result<usize, Box<dyn std::error::Error + Send + Sync>> {
    // The mock cluster is not Send: it stays in this future, which runs on the caller's
    // thread; everything else talks to it over TCP.
    let broker = MockBroker::start(1)?;
    let brokers = broker.bootstrap_servers();
    let mut raw = Config::default();
    raw.kafka.brokers = brokers.clone();
    raw.kafka.group_id = "vigil-demo".into();
    raw.http.listen = demo.listen.clone();
    // A level must hold at two charting times: single monitor artefacts do not page.
    raw.alerts.persistence_readings = 2;
    broker.create_topic(&raw.kafka.observations_topic, 4)?;
    broker.create_topic(&raw.kafka.alerts_topic, 1)?;
    broker.create_topic(&raw.kafka.dlq_topic, 1)?;
    broker.create_topic(&raw.kafka.state_topic, 4)?;
    let settings: Settings = raw.clone().validate()?;
    writeln!(
        out,
        "Vigil demo: {} simulated patients, {:.0} % deteriorating, broker {brokers}, \
         metrics on http://{}/metrics. Decision support only; not a medical device. Ctrl-C stops.",
        demo.patients,
        demo.deteriorating * 100.0,
        settings.listen
    )?;

    let stop = shutdown.child_token();
    let service = tokio::spawn(crate::run(settings, stop.clone()));

    let printer_stop = stop.clone();
    let alerts_topic = raw.kafka.alerts_topic.clone();
    let printer_brokers = brokers.clone();
    let (lines_tx, mut lines_rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let printer = tokio::spawn(async move {
        let consumer: StreamConsumer = ClientConfig::new()
            .set("bootstrap.servers", &printer_brokers)
            .set("group.id", "vigil-demo-printer")
            .set("auto.offset.reset", "earliest")
            .set("isolation.level", "read_committed")
            .create()?;
        consumer.subscribe(&[alerts_topic.as_str()])?;
        let mut seen = HashSet::new();
        loop {
            let m = tokio::select! {
                () = printer_stop.cancelled() => break,
                m = consumer.recv() => m,
            };
            let Ok(m) = m else { continue };
            let Some(Ok(text)) = m.payload_view::<str>() else {
                continue;
            };
            if let Some(line) = alert_line(text, &mut seen) {
                let _ = lines_tx.send(line);
            }
        }
        Ok::<(), rdkafka::error::KafkaError>(())
    });

    let sim_stop = stop.clone();
    let sim = tokio::spawn(async move {
        let mut ward = Ward::new(SimConfig {
            patients: demo.patients,
            deteriorating: demo.deteriorating,
            ..SimConfig::default()
        });
        let topic = Config::default().kafka.observations_topic;
        produce(
            &brokers,
            &topic,
            &mut ward,
            demo.rounds,
            demo.round_every,
            &sim_stop,
        )
        .await
    });

    let mut printed = 0;
    let mut sim_done = false;
    let mut sim = sim;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            line = lines_rx.recv() => match line {
                Some(line) => { writeln!(out, "{line}")?; printed += 1; }
                None => break,
            },
            r = &mut sim, if !sim_done => {
                sim_done = true;
                match r {
                    Ok(Ok(n)) => tracing::info!(messages = n, "Simulation finished"),
                    Ok(Err(e)) => tracing::error!(error = %e, "Simulator failed"),
                    Err(e) => tracing::error!(error = %e, "Simulator task failed"),
                }
                // Let the last alerts through, then stop.
                let stop = stop.clone();
                tokio::spawn(async move { tokio::time::sleep(Duration::from_secs(3)).await; stop.cancel(); });
            }
        }
        if stop.is_cancelled() && lines_rx.is_empty() {
            break;
        }
    }
    stop.cancel();
    let _ = printer.await;
    match service.await {
        Ok(Err(e)) => return Err(e),
        Err(e) => return Err(e.into()),
        Ok(Ok(())) => {}
    }
    drop(broker);
    Ok(printed)
}

/// One readable line for an alert event, or `None` for a repeated alert id or a payload
/// that is not an alert: `10:45:00 EMERGENCY ward-1/bed-04 SIM-00004 news2 raised: NEWS2 7 ...`.
pub fn alert_line(json: &str, seen: &mut HashSet<String>) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(json).ok()?;
    let id = v["alert_id"].as_str()?;
    if !seen.insert(id.to_owned()) {
        return None;
    }
    let at = v["observed_at"].as_str().unwrap_or("?");
    let time = at
        .split_once('T')
        .map_or(at, |(_, t)| t)
        .get(..8)
        .unwrap_or(at);
    Some(format!(
        "{time} {:<9} {:<14} {:<10} {:<12} {:<9} {}",
        v["level"].as_str().unwrap_or("?").to_uppercase(),
        v["location"].as_str().unwrap_or("-"),
        v["patient_id"].as_str().unwrap_or("?"),
        v["rule"].as_str().unwrap_or("?"),
        v["kind"].as_str().unwrap_or("?"),
        v["message"].as_str().unwrap_or(""),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alert_lines_are_readable_and_printed_once() {
        let json = r#"{"alert_id":"ab","patient_id":"P1","location":"ward-7/bed-12","rule":"news2","kind":"raised","level":"emergency","observed_at":"2026-11-23T10:00:00Z","message":"NEWS2 7 (high): RR 26/min - emergency assessment"}"#;
        let mut seen = HashSet::new();
        let line = alert_line(json, &mut seen).expect("a line");
        assert!(
            line.starts_with("10:00:00 EMERGENCY ward-7/bed-12"),
            "{line}"
        );
        assert!(
            line.contains("P1") && line.contains("news2") && line.ends_with("emergency assessment"),
            "{line}"
        );
        assert_eq!(
            alert_line(json, &mut seen),
            None,
            "a repeated alert id is dropped"
        );
        assert_eq!(alert_line("not json", &mut seen), None);
    }
}
