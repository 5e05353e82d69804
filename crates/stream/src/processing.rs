//! Message processing: one observation message in, its patient's window, assessment and
//! alert decisions updated, and what the batch must produce (alert events, FHIR alerts,
//! dead letters) appended; also the overdue sweep between messages, and each patient's
//! in-memory state ([`PatientState`]).

use std::collections::{HashMap, HashSet};

use rdkafka::message::{BorrowedMessage, Header, Message, OwnedHeaders};
use vigil_score::{Ingested, Timestamp, Tracker};
use vigil_wire::DecodeError;

use crate::config::Settings;
use crate::event::{Subject, events, now};
use crate::metrics::Metrics;
use crate::service::Outgoing;

/// What one patient's state holds.
#[derive(Default)]
pub struct PatientState {
    /// Window, assessment and alert state; decides once per vital-sign set.
    pub(crate) tracker: Tracker,
    /// The latest encounter id.
    pub(crate) encounter_id: Option<String>,
    /// The latest location.
    pub(crate) location: Option<String>,
    /// The ids of the most recent readings, for FHIR alerts to reference the observations
    /// that fired (bounded: the oldest are forgotten).
    pub(crate) recent_ids:
        std::collections::VecDeque<(vigil_score::Param, vigil_score::Timestamp, String)>,
}

/// How many reading ids a patient remembers for FHIR evidence references.
const RECENT_IDS: usize = 128;

/// Why a reading of an accepted message was rejected after decoding: the label of the
/// `vigil_dead_letters_total` metric and the reason for the dead-letter header.
struct Rejection {
    label: &'static str,
    reason: String,
}

impl From<DecodeError> for Rejection {
    fn from(e: DecodeError) -> Rejection {
        let label = match &e {
            DecodeError::Json(_) => "json",
            DecodeError::Field { field: "key", .. } => "key",
            DecodeError::Field { .. } => "field",
            DecodeError::Observation(_) => "observation",
            _ => "other",
        };
        Rejection {
            label,
            reason: e.to_string(),
        }
    }
}

/// The instant a message was received: the earlier of its Kafka timestamp (when the
/// producer or broker stamped it) and `wall`, the wall clock when its batch was read. The
/// earlier one is the same when the message is redelivered after a crash, so a replay
/// decides as the first run did; the wall clock bounds a producer whose clock runs ahead.
fn received_at(m: &BorrowedMessage<'_>, wall: Timestamp) -> Timestamp {
    m.timestamp()
        .to_millis()
        .map_or(wall, |ms| wall.min(Timestamp::from_millis(ms)))
}

/// Handles one observation message; true if it carried an accepted reading.
#[allow(clippy::too_many_arguments)]
pub(crate) fn process(
    m: &BorrowedMessage<'_>,
    wall: Timestamp,
    settings: &Settings,
    metrics: &Metrics,
    partitions: &mut HashMap<i32, HashMap<String, PatientState>>,
    pending: &mut HashSet<(i32, String)>,
    outgoing: &mut Vec<Outgoing>,
) -> bool {
    let payload = m.payload().unwrap_or_default();
    let received = received_at(m, wall);
    let limit = received.plus(settings.clock_tolerance);
    let mut rejections: Vec<Rejection> = Vec::new();
    let mut accepted = Vec::new();
    for decoded in settings.format.decode(payload) {
        let checked = decoded.and_then(|d| match m.key() {
            Some(key) if key == d.patient_id.as_bytes() => Ok(d),
            key => Err(DecodeError::Field {
                field: "key",
                value: key.map_or_else(|| "none".to_owned(), |k| format!("{:?}", String::from_utf8_lossy(k))),
                expected: "the message key to be the patient_id (so each patient stays on one partition)",
            }),
        });
        match checked {
            Ok(d) if d.observation.effective() > limit => rejections.push(Rejection {
                label: "clock",
                reason: vigil_wire::future_reason(
                    &d.observation.reading(),
                    received,
                    settings.clock_tolerance,
                    "[input] clock_tolerance_seconds sets the tolerance",
                ),
            }),
            Ok(d) => accepted.push(d),
            Err(e) => rejections.push(e.into()),
        }
    }
    let any = !accepted.is_empty();
    for d in accepted {
        if let Err(r) = apply(
            d,
            m.partition(),
            received,
            limit,
            settings,
            metrics,
            partitions,
            pending,
            outgoing,
        ) {
            rejections.push(r);
        }
    }
    if !rejections.is_empty() {
        metrics
            .observations
            .with_label_values(&["rejected"])
            .inc_by(rejections.len() as u64);
        for r in &rejections {
            metrics.dead_letters.with_label_values(&[r.label]).inc();
        }
        tracing::debug!(
            partition = m.partition(),
            offset = m.offset(),
            rejected = rejections.len(),
            "Rejected a message"
        );
        let reasons = rejections
            .iter()
            .map(|r| r.reason.as_str())
            .collect::<Vec<_>>()
            .join("; ");
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: "vigil-error",
                value: Some(&reasons),
            })
            .insert(Header {
                key: "vigil-source-topic",
                value: Some(m.topic()),
            })
            .insert(Header {
                key: "vigil-source-partition",
                value: Some(&m.partition().to_string()),
            })
            .insert(Header {
                key: "vigil-source-offset",
                value: Some(&m.offset().to_string()),
            });
        outgoing.push(Outgoing {
            partition: None,
            topic: settings.kafka.dlq_topic.clone(),
            key: m.key().map(<[u8]>::to_vec),
            payload: payload.to_vec(),
            headers: Some(headers),
            what: "dead-letter",
        });
    }
    any
}

/// Applies one accepted observation to its patient. A reading that starts a new
/// vital-sign set first has the patient's pending set decided (and its alerts published);
/// the new set is decided when the next set starts or the batch ends. A reading whose id
/// is held with other content is a conflict: returned as a rejection, nothing changed.
#[allow(clippy::too_many_arguments)]
fn apply(
    d: vigil_wire::Decoded,
    partition: i32,
    received: Timestamp,
    limit: Timestamp,
    settings: &Settings,
    metrics: &Metrics,
    partitions: &mut HashMap<i32, HashMap<String, PatientState>>,
    pending: &mut HashSet<(i32, String)>,
    outgoing: &mut Vec<Outgoing>,
) -> Result<(), Rejection> {
    let patients = partitions.entry(partition).or_default();
    let state = patients.entry(d.patient_id.clone()).or_default();
    if d.encounter_id.is_some() {
        state.encounter_id = d.encounter_id.clone();
    }
    if d.location.is_some() {
        state.location = d.location.clone();
    }
    let (outcome, decided) = state.tracker.ingest(
        &d.observation,
        Some(limit),
        &settings.engine,
        &settings.policy,
    );
    state.tracker.note_received(received);
    if let Some(decided) = decided {
        publish(
            &d.patient_id,
            state,
            &decided,
            now(),
            settings,
            metrics,
            outgoing,
        );
    }
    let label = match outcome {
        Ingested::Accepted | Ingested::Amended | Ingested::Withdrawn => "accepted",
        Ingested::Duplicate => "duplicate",
        Ingested::Stale => "stale",
        Ingested::Conflict { held } => {
            return Err(Rejection {
                label: "conflict",
                reason: vigil_wire::conflict_reason(
                    d.id.as_deref(),
                    &held,
                    &d.observation.reading(),
                ),
            });
        }
    };
    metrics.observations.with_label_values(&[label]).inc();
    if label == "accepted" {
        if settings.fhir_out.is_some()
            && let Some(id) = &d.id
        {
            if state.recent_ids.len() == RECENT_IDS {
                state.recent_ids.pop_front();
            }
            state.recent_ids.push_back((
                d.observation.param(),
                d.observation.effective(),
                id.clone(),
            ));
        }
        pending.insert((partition, d.patient_id));
    }
    Ok(())
}

/// Between messages: every patient with an active alert is checked for readings gone
/// overdue with the wall clock at `now` ([`Tracker::remind`]); what it reports is
/// published, and the patient's state written, in the current transaction.
pub(crate) fn remind(
    now: Timestamp,
    settings: &Settings,
    metrics: &Metrics,
    partitions: &mut HashMap<i32, HashMap<String, PatientState>>,
    touched: &mut HashSet<(i32, Vec<u8>)>,
    outgoing: &mut Vec<Outgoing>,
) {
    for (partition, patients) in partitions.iter_mut() {
        for (patient_id, state) in patients.iter_mut() {
            let Some(outcome) = state
                .tracker
                .remind(now, &settings.engine, &settings.policy)
            else {
                continue;
            };
            if outcome.decisions.is_empty() {
                continue;
            }
            publish(
                patient_id, state, &outcome, now, settings, metrics, outgoing,
            );
            touched.insert((*partition, patient_id.as_bytes().to_vec()));
        }
    }
}

/// Turns one decision's outcome into alert events (and FHIR alerts) for `patient_id`.
pub(crate) fn publish(
    patient_id: &str,
    state: &PatientState,
    outcome: &vigil_score::Outcome,
    emitted: Timestamp,
    settings: &Settings,
    metrics: &Metrics,
    outgoing: &mut Vec<Outgoing>,
) {
    let subject = Subject {
        patient_id,
        encounter_id: state.encounter_id.as_deref(),
        location: state.location.as_deref(),
    };
    for event in events(subject, outcome, state.tracker.alerts(), emitted) {
        metrics
            .alerts
            .with_label_values(&[event.rule, event.kind, event.level])
            .inc();
        if let Some((resource, topic)) = &settings.fhir_out {
            let ids: Vec<Option<String>> = event
                .criteria
                .iter()
                .map(|e| {
                    let r = e.reading();
                    state
                        .recent_ids
                        .iter()
                        .rev()
                        .find(|(p, t, _)| *p == r.param && *t == r.effective)
                        .map(|(_, _, id)| id.clone())
                })
                .collect();
            let fhir = crate::fhir_out::resource(*resource, &event, &ids);
            outgoing.push(Outgoing {
                partition: None,
                topic: topic.clone(),
                key: Some(patient_id.as_bytes().to_vec()),
                payload: fhir.to_string().into_bytes(),
                headers: None,
                what: "FHIR alert",
            });
        }
        match serde_json::to_vec(&event) {
            Ok(payload) => outgoing.push(Outgoing {
                partition: None,
                topic: settings.kafka.alerts_topic.clone(),
                key: Some(patient_id.as_bytes().to_vec()),
                payload,
                headers: None,
                what: "alert",
            }),
            Err(e) => tracing::error!(error = %e, "Alert event could not be serialised"),
        }
    }
}
