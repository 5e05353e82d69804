//! The alert events the board reads: the part of the service's alert event (REFERENCE.md,
//! "Alert events") a card shows, with the scoring crate's own `Level` and `AlertKind`.
//! Unknown fields are ignored, so the service may add some.

use serde::Deserialize;
use vigil_score::{AlertKind as EventKind, Level, Timestamp};

/// One alert event, as the board needs it.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct AlertEvent {
    /// Deterministic id: a redelivered event has the same one.
    pub alert_id: String,
    /// The decision it belongs to.
    pub decision_id: String,
    /// The patient.
    pub patient_id: String,
    /// The encounter, if the feed sends one.
    #[serde(default)]
    pub encounter_id: Option<String>,
    /// Where the patient is (`unit/room/bed`).
    #[serde(default)]
    pub location: Option<String>,
    /// The rule (`news2`, `mews`, `septic_shock`, ...).
    pub rule: String,
    /// What the event does.
    pub kind: EventKind,
    /// The alert's level (for `resolved`, the level that was active).
    pub level: Level,
    /// The rule's score, when it has one.
    #[serde(default)]
    pub score: Option<f64>,
    /// The rule's score at the patient's previous assessment.
    #[serde(default)]
    pub previous_score: Option<f64>,
    /// The alert's level before this event.
    #[serde(default)]
    pub previous_level: Option<Level>,
    /// The readings that fired, as the service sent them.
    #[serde(default)]
    pub criteria: Vec<serde_json::Value>,
    /// Parameters to re-measure.
    #[serde(default)]
    pub overdue: Vec<String>,
    /// One line a person reads.
    pub message: String,
    /// When the alert episode was raised.
    #[serde(deserialize_with = "crate::rfc3339::deserialize")]
    pub first_raised_at: Timestamp,
    /// When Vigil published it (its wall clock).
    #[serde(deserialize_with = "crate::rfc3339::deserialize")]
    pub emitted_at: Timestamp,
    /// What suppressed it in the service (a watch or a stop it had read from the action
    /// topic), if anything.
    #[serde(default)]
    pub suppressed: Option<serde_json::Value>,
    /// Published silent (the service's run-in mode): shown to quality staff only, never
    /// paged, escalated or acted on.
    #[serde(default)]
    pub silent: bool,
}

impl AlertEvent {
    /// Parses one alert event from its JSON.
    ///
    /// # Errors
    ///
    /// When the JSON is not an alert event; the reason names the field.
    pub fn from_json(bytes: &[u8]) -> Result<AlertEvent, String> {
        serde_json::from_slice(bytes).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_service_alert_event_and_ignores_fields_it_does_not_show() {
        let json = br#"{"alert_id": "a1", "decision_id": "d1", "decision_events": 1,
            "patient_id": "P1", "encounter_id": "E1", "location": "ward-7/bed-12",
            "rule": "news2", "kind": "raised", "level": "emergency", "score": 9,
            "previous_level": null, "previous_score": 2, "first_raised_at": "2026-11-23T10:00:00Z",
            "criteria": [{"code": "resp_rate", "value": 30}], "coverage": {"measured": 5, "of": 7},
            "overdue": [], "overdue_since": null, "other_active": [],
            "observed_at": "2026-11-23T10:00:00Z", "emitted_at": "2026-11-23T10:00:00.120Z",
            "message": "NEWS2 9 (high)", "disclaimer": "Decision support only; not a diagnosis."}"#;
        let e = AlertEvent::from_json(json).expect("an alert event");
        assert_eq!(e.kind, EventKind::Raised);
        assert_eq!(e.level, Level::Emergency);
        assert_eq!(e.score, Some(9.0));
        assert_eq!(e.previous_level, None);
        assert_eq!(
            e.emitted_at.as_millis() - e.first_raised_at.as_millis(),
            120
        );
        let bad = AlertEvent::from_json(br#"{"alert_id": "a1"}"#).expect_err("incomplete");
        assert!(bad.contains("missing field"), "{bad}");
    }
}
