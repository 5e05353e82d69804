//! Message processing: one observation message in, its patient's window, assessment and
//! alert decisions updated, and what the batch must produce (alert events, FHIR alerts,
//! dead letters) appended; also the overdue sweep between messages, and each patient's
//! in-memory state ([`PatientState`]).

use std::collections::HashMap;

use rdkafka::message::{Header, OwnedHeaders};
use vigil_score::{Ingested, Timestamp, Tracker};
use vigil_wire::DecodeError;

use crate::config::Settings;
use crate::event::{Subject, events, now};
use crate::intake::Incoming;
use crate::metrics::Metrics;
use crate::service::Outgoing;
use vigil_wire::PatientId;

/// One partition's patients, by patient id (held inline in the entry, [`PatientId`];
/// foldhash: keyed per process, several times faster than the standard SipHash on these
/// short keys).
pub type Patients = HashMap<PatientId, PatientState, foldhash::fast::RandomState>;

/// The patients of every partition held, by input partition (looked up once per
/// message: foldhash too).
pub type Partitions = HashMap<i32, Patients, foldhash::fast::RandomState>;

/// What one patient's state holds.
#[derive(Default)]
pub struct PatientState {
    /// Window, assessment and alert state; decides once per vital-sign set. Boxed: the
    /// patient map moves its entries when it grows, and a tracker is kilobytes.
    pub(crate) tracker: Box<Tracker>,
    /// The latest encounter id.
    pub(crate) encounter_id: Option<String>,
    /// The latest location.
    pub(crate) location: Option<String>,
    /// How the feed names the patient (the latest naming other than by id alone), for
    /// FHIR alerts to name it the same way.
    pub(crate) patient_naming: vigil_wire::PatientNaming,
    /// The ids of the most recent readings, for FHIR alerts to reference the observations
    /// that fired (bounded: the oldest are forgotten); `None` unless FHIR alerts are on.
    pub(crate) recent_ids: Option<Box<RecentIds>>,
    /// The number of the last batch that changed this patient (0: none since it was
    /// created or restored), so a batch lists each patient once without a set.
    pub(crate) batch: u64,
    /// A vital-sign set was applied and not yet decided.
    pub(crate) undecided: bool,
}

/// The ids of a patient's most recent readings, with what they measured and when.
pub(crate) type RecentIds =
    std::collections::VecDeque<(vigil_score::Param, vigil_score::Timestamp, String)>;

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
            DecodeError::Unscored { .. } => "unscored",
            DecodeError::Absent { .. } => "absent",
            DecodeError::At { path, reason } => at_category(path, reason),
            DecodeError::TooLarge { .. } => "size",
            _ => "other",
        };
        Rejection {
            label,
            reason: e.to_string(),
        }
    }
}

/// The reason kind of a FHIR or HL7 v2 rejection, from the element it names: one of a
/// fixed few (`code`, `value`, `unit`, `time`, `status`, `patient`, `structure`), so that
/// quality staff can see which part of a feed is wrong without a label per message.
fn at_category(path: &str, reason: &str) -> &'static str {
    // HL7 v2: `OBX[3]-6`, `OBR-7`, `PID-3`, `MSH-9`.
    let field = path.rsplit_once('-').map(|(_, f)| f);
    if path.starts_with("OBX[") {
        return match field {
            Some("3") => "code",
            Some("2" | "5") => "value",
            Some("6") => "unit",
            Some("11") => "status",
            Some("14") => "time",
            _ => "structure",
        };
    }
    if path == "OBR-7" {
        return "time";
    }
    if path.starts_with("PID") {
        return "patient";
    }
    // FHIR: `Observation.valueQuantity.code`, `Bundle.entry[2].resource.subject`.
    let element = path.rsplit('.').next().unwrap_or(path);
    if reason.starts_with("field `unit`") || path.ends_with("valueQuantity.code") {
        return "unit";
    }
    match element {
        "code" => "code",
        "subject" => "patient",
        "status" => "status",
        "effectiveDateTime" => "time",
        e if e.starts_with("value") || e.starts_with("component") => "value",
        _ => "structure",
    }
}

/// How many readings of a batch ended how, added to `vigil_observations_total` once per
/// batch rather than once per reading.
#[derive(Default)]
pub(crate) struct Tally {
    /// How late the accepted readings arrived, added to the shared histogram with the
    /// counts (a shared histogram costs atomic operations per reading).
    delays: Option<prometheus::local::LocalHistogram>,
    accepted: u64,
    duplicate: u64,
    stale: u64,
    ignored: u64,
    absent: u64,
    rejected: u64,
}

impl Tally {
    /// Adds the counts to the metrics and starts again from zero.
    pub(crate) fn flush(&mut self, metrics: &Metrics) {
        for (label, n) in [
            ("accepted", self.accepted),
            ("duplicate", self.duplicate),
            ("stale", self.stale),
            ("ignored", self.ignored),
            ("absent", self.absent),
            ("rejected", self.rejected),
        ] {
            if n > 0 {
                metrics.observations.with_label_values(&[label]).inc_by(n);
            }
        }
        if self.accepted > 0 {
            metrics.set_last_reading(now());
        }
        if let Some(delays) = &self.delays {
            delays.flush();
        }
        let delays = self.delays.take();
        *self = Tally {
            delays,
            ..Tally::default()
        };
    }
}

/// What one batch accumulates while its messages are processed.
pub(crate) struct Work<'a> {
    /// The batch's number (from 1).
    pub(crate) batch: u64,
    /// What the batch must produce.
    pub(crate) outgoing: &'a mut Vec<Outgoing>,
    /// Patients the batch changed, each once: when it closes, their undecided sets are
    /// decided (once every reading of a set in the batch has been applied) and their
    /// state records written.
    pub(crate) touched: &'a mut Vec<(i32, PatientId)>,
    /// Counts of readings by outcome.
    pub(crate) tally: &'a mut Tally,
    /// Watches and stops from the board.
    pub(crate) suppressions: &'a crate::suppression::Suppressions,
    /// Where a reading's decision is written (one for every patient, filled in place).
    pub(crate) outcome: &'a mut vigil_score::Outcome,
}

/// The rejections' reasons, joined, within [`vigil_wire::MAX_REASON_BYTES`]: the first
/// ones whole, then how many more there were.
fn joined_reasons(rejections: &[Rejection]) -> String {
    let mut out = String::new();
    for (i, r) in rejections.iter().enumerate() {
        let sep = if i == 0 { "" } else { "; " };
        // Room is kept for the count of those left out.
        if out.len() + sep.len() + r.reason.len() + 40 > vigil_wire::MAX_REASON_BYTES {
            out.push_str(&format!("{sep}and {} more", rejections.len() - i));
            break;
        }
        out.push_str(sep);
        out.push_str(&r.reason);
    }
    out
}

/// Handles one observation message.
pub(crate) fn process(
    m: &mut Incoming,
    settings: &Settings,
    metrics: &Metrics,
    partitions: &mut Partitions,
    work: &mut Work<'_>,
) {
    let received = m.received;
    let limit = received.plus(settings.clock_tolerance);
    let mut rejections: Vec<Rejection> = Vec::new();
    // Most messages carry one reading: the first accepted one needs no list.
    let mut first: Option<vigil_wire::Decoded> = None;
    let mut more = Vec::new();
    for decoded in m.take_decoded() {
        match decoded {
            Ok(d) if d.observation.effective() > limit => rejections.push(Rejection {
                label: "clock",
                reason: vigil_wire::future_reason(
                    &d.observation.reading(),
                    received,
                    settings.clock_tolerance,
                    "[input] clock_tolerance_seconds sets the tolerance",
                ),
            }),
            Ok(d) if first.is_none() => first = Some(d),
            Ok(d) => more.push(d),
            // A valid code Vigil does not score is not the feed's mistake: counted, not
            // dead-lettered (unless configured).
            Err(e) => match (e.unscored(), e.absent()) {
                (Some(system), _) if !settings.reject_unscored_codes => {
                    metrics.ignored.with_label_values(&[system.label()]).inc();
                    work.tally.ignored += 1;
                }
                // A reading that says why it has no value: nothing to score, nothing
                // wrong; counted with its reason.
                (_, Some(reason)) => {
                    metrics.absent.with_label_values(&[reason]).inc();
                    work.tally.absent += 1;
                }
                _ => rejections.push(e.into()),
            },
        }
    }
    for d in first.iter().chain(&more) {
        if let Err(r) = apply(
            d,
            m.partition,
            received,
            limit,
            settings,
            metrics,
            partitions,
            work,
        ) {
            rejections.push(r);
        }
    }
    if !rejections.is_empty() {
        work.tally.rejected += rejections.len() as u64;
        for r in &rejections {
            metrics.dead_letters.with_label_values(&[r.label]).inc();
        }
        tracing::debug!(
            partition = m.partition,
            offset = m.offset,
            rejected = rejections.len(),
            "Rejected a message"
        );
        let reasons = joined_reasons(&rejections);
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: "vigil-error",
                value: Some(&reasons),
            })
            .insert(Header {
                key: "vigil-source-topic",
                value: Some(&settings.kafka.observations_topic),
            })
            .insert(Header {
                key: "vigil-source-partition",
                value: Some(&m.partition.to_string()),
            })
            .insert(Header {
                key: "vigil-source-offset",
                value: Some(&m.offset.to_string()),
            });
        let (key, payload) = m.take_key_and_payload();
        work.outgoing.push(Outgoing {
            partition: None,
            topic: settings.kafka.dlq_topic.clone(),
            key,
            payload,
            headers: Some(headers),
            what: "dead-letter",
            decided: None,
        });
    }
}

/// Applies one accepted observation to its patient. A reading that starts a new
/// vital-sign set first has the patient's pending set decided (and its alerts published);
/// the new set is decided when the next set starts or the batch ends. A reading whose id
/// is held with other content is a conflict: returned as a rejection, nothing changed.
#[allow(clippy::too_many_arguments)]
fn apply(
    d: &vigil_wire::Decoded,
    partition: i32,
    received: Timestamp,
    limit: Timestamp,
    settings: &Settings,
    metrics: &Metrics,
    partitions: &mut Partitions,
    work: &mut Work<'_>,
) -> Result<(), Rejection> {
    let patients = partitions.entry(partition).or_default();
    let state = match patients.get_mut(d.patient_id.as_bytes()) {
        Some(state) => state,
        None => patients.entry(d.patient_id.clone()).or_default(),
    };
    // Replaced only when they change: most messages repeat them.
    if d.encounter_id.is_some() && state.encounter_id != d.encounter_id {
        state.encounter_id = d.encounter_id.clone();
    }
    if d.location.is_some() && state.location != d.location {
        state.location = d.location.clone();
    }
    if d.patient_naming != vigil_wire::PatientNaming::Id && state.patient_naming != d.patient_naming
    {
        state.patient_naming = d.patient_naming.clone();
    }
    let (outcome, decided) = state.tracker.ingest_into(
        &d.observation,
        Some(limit),
        &settings.engine,
        &settings.policy,
        work.outcome,
    );
    // The decision this reading may trigger is of the set before it, received then.
    let set_received = state.tracker.alerts().last_received();
    state.tracker.note_received(received);
    if state.batch != work.batch {
        state.batch = work.batch;
        work.touched.push((partition, d.patient_id.clone()));
    }
    // Most decisions change no alert: they need no event, no clock and no lookup.
    if decided && work.outcome.decisions.iter().next().is_some() {
        publish(
            &d.patient_id,
            state,
            work.outcome,
            now(),
            set_received,
            settings,
            metrics,
            work.suppressions,
            work.outgoing,
        );
    }
    match outcome {
        Ingested::Accepted | Ingested::Amended | Ingested::Withdrawn => {}
        Ingested::Duplicate => {
            work.tally.duplicate += 1;
            return Ok(());
        }
        Ingested::Stale => {
            work.tally.stale += 1;
            return Ok(());
        }
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
    }
    work.tally.accepted += 1;
    work.tally
        .delays
        .get_or_insert_with(|| metrics.reading_delay_seconds.local())
        .observe(
            (received.as_millis() - d.observation.effective().as_millis()).max(0) as f64 / 1000.0,
        );
    if settings.fhir_out.is_some()
        && let Some(id) = &d.id
    {
        let recent = state.recent_ids.get_or_insert_with(Box::default);
        if recent.len() == RECENT_IDS {
            recent.pop_front();
        }
        recent.push_back((d.observation.param(), d.observation.effective(), id.clone()));
    }
    state.undecided = true;
    Ok(())
}

/// Between messages: every patient with an active alert is checked for readings gone
/// overdue with the wall clock at `now` ([`Tracker::remind`]); what it reports is
/// published, and the patient's state written, in the current transaction.
pub(crate) fn remind(
    now: Timestamp,
    settings: &Settings,
    metrics: &Metrics,
    partitions: &mut Partitions,
    work: &mut Work<'_>,
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
                patient_id.as_str(),
                state,
                &outcome,
                now,
                None,
                settings,
                metrics,
                work.suppressions,
                work.outgoing,
            );
            if state.batch != work.batch {
                state.batch = work.batch;
                work.touched.push((*partition, patient_id.clone()));
            }
        }
    }
}

/// Turns one decision's outcome into alert events (and FHIR alerts) for `patient_id`.
/// `received`: when the readings decided on were received (for the alert-latency
/// histogram; `None` for the overdue sweep, which no reading triggered).
#[allow(clippy::too_many_arguments)]
pub(crate) fn publish(
    patient_id: &str,
    state: &PatientState,
    outcome: &vigil_score::Outcome,
    emitted: Timestamp,
    received: Option<Timestamp>,
    settings: &Settings,
    metrics: &Metrics,
    suppressions: &crate::suppression::Suppressions,
    outgoing: &mut Vec<Outgoing>,
) {
    let suppressed = suppressions.lookup(patient_id, state.encounter_id.as_deref(), emitted);
    let subject = Subject {
        patient_id,
        encounter_id: state.encounter_id.as_deref(),
        location: state.location.as_deref(),
    };
    for mut event in events(subject, outcome, state.tracker.alerts(), emitted) {
        if event.kind != "resolved" {
            event.suppressed.clone_from(&suppressed);
        }
        event.silent = settings.silent.iter().any(|r| r.name() == event.rule);
        let mode = if event.silent { "silent" } else { "live" };
        metrics
            .alerts
            .with_label_values(&[event.rule, event.kind, event.level, mode])
            .inc();
        // A silent alert is for the run-in's record, not for a clinician: the EHR does not
        // receive it.
        if let Some((resource, topic)) = settings.fhir_out.as_ref().filter(|_| !event.silent) {
            let ids: Vec<Option<String>> = event
                .criteria
                .iter()
                .map(|e| {
                    let r = e.reading();
                    state
                        .recent_ids
                        .iter()
                        .flat_map(|r| r.iter())
                        .rev()
                        .find(|(p, t, _)| *p == r.param && *t == r.effective)
                        .map(|(_, _, id)| id.clone())
                })
                .collect();
            let fhir = crate::fhir_out::resource(
                *resource,
                &event,
                &crate::fhir_out::Sources {
                    patient: &state.patient_naming,
                    format: &settings.format,
                    evidence: &ids,
                },
            );
            outgoing.push(Outgoing {
                partition: None,
                topic: topic.clone(),
                key: Some(patient_id.as_bytes().to_vec()),
                payload: fhir.to_string().into_bytes(),
                headers: None,
                what: "FHIR alert",
                decided: None,
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
                decided: received.map(|received| crate::service::Decided {
                    event: outcome.assessment.at,
                    received,
                }),
            }),
            Err(e) => tracing::error!(error = %e, "Alert event could not be serialised"),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_dead_letter_reason_is_bounded() {
        let many: Vec<super::Rejection> = (0..1000)
            .map(|i| super::Rejection {
                label: "observation",
                reason: format!("OBX[{i}]-5: {}", "x".repeat(200)),
            })
            .collect();
        let joined = super::joined_reasons(&many);
        assert!(
            joined.len() <= vigil_wire::MAX_REASON_BYTES,
            "{}",
            joined.len()
        );
        assert!(joined.starts_with("OBX[0]-5: "));
        assert!(
            joined.ends_with(" more"),
            "{}",
            &joined[joined.len() - 40..]
        );
        let few = &many[..2];
        assert_eq!(
            super::joined_reasons(few),
            format!("{}; {}", few[0].reason, few[1].reason)
        );
    }

    use super::*;

    #[test]
    fn fhir_and_hl7_rejections_fall_into_a_few_named_kinds() {
        for (path, reason, kind) in [
            (
                "OBX[3]-3",
                "\"1234-5\" is not a LOINC or IEEE 11073 MDC code",
                "code",
            ),
            ("OBX[1]-5", "\"abc\" is not a number", "value"),
            ("OBX[2]-2", "value type \"ST\" cannot carry wbc", "value"),
            ("OBX[3]-6", "\"mmHg\" cannot be converted", "unit"),
            ("OBX[1]-11", "result status \"X\" is not accepted", "status"),
            ("OBX[1]-14", "has no UTC offset", "time"),
            ("OBR-7", "has no UTC offset", "time"),
            ("PID-3", "empty", "patient"),
            ("MSH-9", "not ORU^R01", "structure"),
            ("OBX", "missing", "structure"),
            ("Observation.code", "has no LOINC coding", "code"),
            (
                "Bundle.entry[2].resource.subject",
                "names no patient",
                "patient",
            ),
            (
                "Observation.status",
                "\"cancelled\" is not accepted",
                "status",
            ),
            ("Observation.effectiveDateTime", "not a date-time", "time"),
            (
                "Observation.valueQuantity.value",
                "\"80\" is not a number",
                "value",
            ),
            (
                "Observation.valueQuantity",
                "field `unit`: \"mm[Hg]\" cannot be converted",
                "unit",
            ),
            (
                "Observation.valueQuantity",
                "field `value`: outside the possible range",
                "value",
            ),
            ("Observation.value[x]", "missing", "value"),
            ("Bundle", "5 entries exceed the limit", "structure"),
        ] {
            assert_eq!(at_category(path, reason), kind, "{path}: {reason}");
        }
    }
}
