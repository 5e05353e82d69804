//! `vigil tail alerts|dlq|observations --config FILE`: one of the service's topics shown
//! to a person, one readable line per record, so an operator or an integration engineer
//! can watch what the service publishes and what it rejects without a Kafka tool.
//!
//! - `alerts`: one line per decision, as the demo prints it (time, level, location,
//!   patient, rule, kind, message; the decision's other events after `also:`).
//! - `dlq`: each dead letter's source (topic, partition, offset) and the reason the
//!   service gave (`vigil-error` header).
//! - `observations`: each input message decoded with the configured wire format: the
//!   native event it yields, or `rejected:` and the reason.
//!
//! With `--json` the lines are for tools (`vigil runin`): alert events as published,
//! observations as native events.
//!
//! It reads as the service's own alert consumers should (`read_committed`), joins no
//! consumer group and commits nothing, so it never moves anyone's offsets.

use std::io::Write;
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use vigil_stream::Settings;

use crate::demo::Printer;

/// Which topic to show.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Topic {
    /// The alert topic.
    Alerts,
    /// The dead-letter topic.
    Dlq,
    /// The observations topic.
    Observations,
}

/// Where to start and when to stop.
#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    /// Start at the oldest record kept instead of the end.
    pub from_beginning: bool,
    /// Stop once every partition has been read to its end (otherwise wait for more).
    pub exit_at_end: bool,
    /// Stop after this many lines.
    pub max: Option<u64>,
    /// Machine-readable lines, for `vigil runin` and other tools: each alert event as
    /// published (one JSON object per line), each observation as its native events (a
    /// reading that cannot be decoded is left out: the service dead-lettered it).
    pub json: bool,
}

/// Shows `topic` on `out` until the options say to stop; returns the lines printed.
///
/// # Errors
///
/// When the consumer cannot be created, the topic does not exist or the broker fails, or
/// `out` cannot be written.
pub fn tail(
    settings: &Settings,
    topic: Topic,
    options: Options,
    out: &mut impl Write,
) -> Result<u64, Box<dyn std::error::Error + Send + Sync>> {
    let name = match topic {
        Topic::Alerts => settings.kafka.alerts_topic.as_str(),
        Topic::Dlq => settings.kafka.dlq_topic.as_str(),
        Topic::Observations => settings.kafka.observations_topic.as_str(),
    };
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", &settings.kafka.brokers);
    for (k, v) in &settings.kafka.librdkafka {
        config.set(k, v);
    }
    let consumer: BaseConsumer = config
        .set("group.id", format!("{}-tail", settings.kafka.group_id))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .set("isolation.level", "read_committed")
        .create()?;
    let metadata = consumer
        .fetch_metadata(Some(name), Duration::from_secs(10))
        .map_err(|e| {
            format!(
                "cannot reach the Kafka brokers {} ({}): {e}",
                settings.kafka.brokers,
                vigil_stream::watch::BROKERS_SETTING
            )
        })?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .filter(|t| t.name() == name && t.error().is_none())
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    if partitions.is_empty() {
        return Err(format!(
            "topic {name:?} does not exist on {} (kafka.{} in the configuration)",
            settings.kafka.brokers,
            match topic {
                Topic::Alerts => "alerts_topic",
                Topic::Dlq => "dlq_topic",
                Topic::Observations => "observations_topic",
            }
        )
        .into());
    }
    let start = if options.from_beginning {
        Offset::Beginning
    } else {
        Offset::End
    };
    let mut tpl = TopicPartitionList::new();
    for &p in &partitions {
        tpl.add_partition_offset(name, p, start)?;
    }
    consumer.assign(&tpl)?;
    let mut at_end = std::collections::HashSet::new();
    let mut printer = Printer::default();
    let mut printed = 0u64;
    while options.max.is_none_or(|m| printed < m) {
        if options.exit_at_end && at_end.len() == partitions.len() {
            break;
        }
        let Some(polled) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let m = match polled {
            Ok(m) => m,
            Err(KafkaError::PartitionEOF(p)) => {
                at_end.insert(p);
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        at_end.remove(&m.partition());
        let payload = m.payload().unwrap_or_default();
        let lines = match (topic, options.json) {
            (Topic::Alerts, true) => String::from_utf8(payload.to_vec()).into_iter().collect(),
            (Topic::Alerts, false) => alert_line(&mut printer, payload, m.offset()),
            (Topic::Dlq, _) => vec![dead_letter_line(&m)],
            (Topic::Observations, json) => observation_lines(settings, payload, json),
        };
        for line in lines {
            writeln!(out, "{line}")?;
            printed += 1;
        }
        out.flush()?;
    }
    Ok(printed)
}

fn alert_line(printer: &mut Printer, payload: &[u8], offset: i64) -> Vec<String> {
    match std::str::from_utf8(payload) {
        Ok(json) => printer.feed(json).map(|l| l.text).into_iter().collect(),
        Err(_) => vec![format!("offset {offset}: not an alert event (not UTF-8)")],
    }
}

/// `2026-11-30T17:02:11.000Z from vigil.observations[3]@1042: OBX[1]-11: ...`.
fn dead_letter_line(m: &impl Message) -> String {
    let header = |key: &str| {
        m.headers().and_then(|h| {
            h.iter()
                .find(|h| h.key == key)
                .and_then(|h| h.value)
                .map(|v| String::from_utf8_lossy(v).into_owned())
        })
    };
    let when = m.timestamp().to_millis().map_or_else(
        || "-".to_owned(),
        |ms| vigil_score::Timestamp::from_millis(ms).to_string(),
    );
    let source = match (
        header("vigil-source-topic"),
        header("vigil-source-partition"),
        header("vigil-source-offset"),
    ) {
        (Some(t), Some(p), Some(o)) => format!("{t}[{p}]@{o}"),
        _ => "an unknown source".to_owned(),
    };
    let reason = header("vigil-error").unwrap_or_else(|| "(no vigil-error header)".to_owned());
    format!("{when} from {source}: {reason}")
}

fn observation_lines(settings: &Settings, payload: &[u8], json: bool) -> Vec<String> {
    settings
        .format
        .decode(payload)
        .into_iter()
        .filter_map(|d| match d {
            Ok(d) => Some(d.to_native_json()),
            Err(_) if json => None,
            Err(e) => Some(format!("rejected: {e}")),
        })
        .collect()
}
