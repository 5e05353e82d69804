//! The alert event of the project's alert contract (REFERENCE.md, "Alert events"), built from
//! the decisions one assessment made: every event of one decision shares a `decision_id`,
//! says how many of them there are, and carries the patient's other active alerts, so a
//! consumer pages once per decision, at its highest level.

use serde::Serialize;
use vigil_score::alert::{Level, message};
use vigil_score::rules::Evidence;
use vigil_score::{AlertId, AlertState, Outcome, ParamSet, RuleId, Timestamp};

/// The alert event's text.
pub const DISCLAIMER: &str = "Decision support only; not a diagnosis.";

/// One alert event, serialised as the contract's JSON.
#[derive(Debug, Serialize)]
pub struct AlertEvent<'a> {
    /// Deterministic id: the same input yields the same id.
    pub alert_id: AlertId,
    /// Shared by every event of one decision (one assessment of one patient).
    pub decision_id: AlertId,
    /// How many events the decision made (this one included).
    pub decision_events: usize,
    /// The patient.
    pub patient_id: &'a str,
    /// The encounter, if known.
    pub encounter_id: Option<&'a str>,
    /// The location, if known.
    pub location: Option<&'a str>,
    /// Rule name.
    pub rule: &'static str,
    /// raised, escalated, overdue or resolved.
    pub kind: &'static str,
    /// advisory, urgent or emergency.
    pub level: &'static str,
    /// The rule's score.
    pub score: u8,
    /// The alert's level before this event (`null` when raised).
    pub previous_level: Option<&'static str>,
    /// The rule's score at the patient's previous assessment (`null` at the first).
    pub previous_score: Option<u8>,
    /// When this alert episode was raised.
    pub first_raised_at: Timestamp,
    /// What fired: code, value, unit, effective, points (and the criterion text).
    pub criteria: &'a [Evidence],
    /// How much of what the rule measures was current.
    pub coverage: Coverage,
    /// Parameters the alert rests on that have no current reading (re-measure them).
    pub overdue: ParamSet,
    /// Since when the earliest of them has been overdue.
    pub overdue_since: Option<Timestamp>,
    /// The patient's other active alerts after this decision.
    pub other_active: Vec<Active>,
    /// The instant of the deciding assessment (event time).
    pub observed_at: Timestamp,
    /// When Vigil emitted the event (wall clock).
    pub emitted_at: Timestamp,
    /// One readable line.
    pub message: String,
    /// Always [`DISCLAIMER`].
    pub disclaimer: &'static str,
    /// `null`, or what suppresses this alert on the board (a watch or a stop): it is
    /// recorded, and pagers skip it.
    pub suppressed: Option<crate::suppression::Suppressed>,
    /// Published silent (`[alerts] mode = "silent"` or the rule in `silent_rules`):
    /// recorded for a run-in, and nobody is paged.
    pub silent: bool,
}

/// `coverage`: criteria measured of those the rule has, and the missing parameters.
#[derive(Debug, Serialize)]
pub struct Coverage {
    /// Criteria (or organ systems) measured by a current reading.
    pub measured: u8,
    /// Criteria the rule has.
    pub of: u8,
    /// The parameters of the unmeasured ones.
    pub missing: ParamSet,
}

/// One of the patient's other active alerts.
#[derive(Debug, Serialize)]
pub struct Active {
    /// Rule name.
    pub rule: &'static str,
    /// Its level.
    pub level: &'static str,
    /// When its episode was raised.
    pub first_raised_at: Option<Timestamp>,
}

/// Who and where an event is about.
#[derive(Clone, Copy, Debug)]
pub struct Subject<'a> {
    /// The patient.
    pub patient_id: &'a str,
    /// The encounter, if known.
    pub encounter_id: Option<&'a str>,
    /// The location, if known.
    pub location: Option<&'a str>,
}

/// The events of one decision (empty when it decided nothing), highest level first, then
/// in rule order. `alerts` is the patient's alert state after the decision.
pub fn events<'a>(
    subject: Subject<'a>,
    outcome: &'a Outcome,
    alerts: &AlertState,
    emitted_at: Timestamp,
) -> Vec<AlertEvent<'a>> {
    let mut decisions: Vec<_> = outcome.decisions.iter().collect();
    decisions.sort_by_key(|d| std::cmp::Reverse(d.level));
    let Some(first) = decisions.first() else {
        return Vec::new();
    };
    let decision_id = AlertId::of_decision(
        subject.patient_id,
        first.observed_at,
        decisions.iter().copied(),
    );
    let count = decisions.len();
    decisions
        .iter()
        .map(|d| {
            let a = &outcome.assessment;
            let c = d.coverage;
            AlertEvent {
                alert_id: d.alert_id(subject.patient_id),
                decision_id,
                decision_events: count,
                patient_id: subject.patient_id,
                encounter_id: subject.encounter_id,
                location: subject.location,
                rule: d.rule.name(),
                kind: d.kind.name(),
                level: d.level.name(),
                score: d.score,
                previous_level: d.previous_level.map(Level::name),
                previous_score: d.previous_score,
                first_raised_at: d.first_raised_at,
                criteria: a.criteria(d.rule),
                coverage: Coverage {
                    measured: c.measured,
                    of: c.of,
                    missing: c.missing,
                },
                overdue: d.overdue,
                overdue_since: d.overdue_since,
                other_active: RuleId::ALL
                    .iter()
                    .filter(|r| **r != d.rule)
                    .filter_map(|r| {
                        alerts.active(*r).map(|level| Active {
                            rule: r.name(),
                            level: level.name(),
                            first_raised_at: alerts.first_raised_at(*r),
                        })
                    })
                    .collect(),
                observed_at: d.observed_at,
                emitted_at,
                message: message(d, a),
                disclaimer: DISCLAIMER,
                suppressed: None,
                silent: false,
            }
        })
        .collect()
}

/// The wall clock as a [`Timestamp`] (the only clock reading in Vigil's scoring path).
pub fn now() -> Timestamp {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    Timestamp::from_millis(ms)
}
