//! The alert event of `contracts.md`, built from a policy decision and the assessment
//! that caused it.

use serde::Serialize;
use vigil_score::alert::message;
use vigil_score::rules::Evidence;
use vigil_score::{AlertId, Assessment, Decision, RuleId, Timestamp};

/// The alert event's text.
pub const DISCLAIMER: &str = "Decision support only; not a diagnosis.";

/// One alert event, serialised as the contract's JSON.
#[derive(Debug, Serialize)]
pub struct AlertEvent<'a> {
    /// Deterministic id: the same input yields the same id.
    pub alert_id: AlertId,
    /// The patient.
    pub patient_id: &'a str,
    /// The encounter, if known.
    pub encounter_id: Option<&'a str>,
    /// The location, if known.
    pub location: Option<&'a str>,
    /// Rule name.
    pub rule: &'static str,
    /// raised, escalated or resolved.
    pub kind: &'static str,
    /// advisory, urgent or emergency.
    pub level: &'static str,
    /// The rule's score.
    pub score: u8,
    /// What fired: code, value, unit, effective, points (and the criterion text).
    pub criteria: &'a [Evidence],
    /// The instant of the deciding assessment (event time).
    pub observed_at: Timestamp,
    /// When Vigil emitted the event (wall clock).
    pub emitted_at: Timestamp,
    /// One readable line.
    pub message: String,
    /// Always [`DISCLAIMER`].
    pub disclaimer: &'static str,
}

impl<'a> AlertEvent<'a> {
    /// Builds the event for `decision`, taken on `assessment`.
    pub fn new(
        patient_id: &'a str,
        encounter_id: Option<&'a str>,
        location: Option<&'a str>,
        decision: &Decision,
        assessment: &'a Assessment,
        emitted_at: Timestamp,
    ) -> AlertEvent<'a> {
        let criteria: &[Evidence] = match decision.rule {
            RuleId::Qsofa => assessment.qsofa.criteria.as_slice(),
            RuleId::Sirs => assessment.sirs.criteria.as_slice(),
            RuleId::News2 => assessment.news2.criteria.as_slice(),
            RuleId::Sofa => assessment.sofa.criteria.as_slice(),
            RuleId::SepticShock => assessment.septic_shock.criteria.as_slice(),
            RuleId::Mews => assessment.mews.criteria.as_slice(),
        };
        let text = message(decision.rule, decision.kind, decision.level, assessment);
        AlertEvent {
            alert_id: decision.alert_id(patient_id),
            patient_id,
            encounter_id,
            location,
            rule: decision.rule.name(),
            kind: decision.kind.name(),
            level: decision.level.name(),
            score: decision.score,
            criteria,
            observed_at: decision.observed_at,
            emitted_at,
            message: text,
            disclaimer: DISCLAIMER,
        }
    }
}

/// The wall clock as a [`Timestamp`] (the only clock reading in Vigil's scoring path).
pub fn now() -> Timestamp {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    Timestamp::from_millis(ms)
}
