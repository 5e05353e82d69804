//! The alert events the board reads: the part of the service's alert event (REFERENCE.md,
//! "Alert events") a card shows. Unknown fields are ignored, so the service may add some.

use serde::Deserialize;
use vigil_score::Timestamp;

/// How urgently the team should act, lowest first.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, serde::Serialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// Review at the next round.
    Advisory,
    /// Urgent review.
    Urgent,
    /// Emergency assessment.
    Emergency,
}

impl Level {
    /// Every level, lowest first.
    pub const ALL: [Level; 3] = [Level::Advisory, Level::Urgent, Level::Emergency];

    /// Its position in [`Level::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

/// What an alert event does to its alert.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A new alert.
    Raised,
    /// A higher level.
    Escalated,
    /// Readings it rests on are overdue; still active.
    Overdue,
    /// Measured recovery: no longer active.
    Resolved,
}

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
    #[serde(deserialize_with = "rfc3339")]
    pub first_raised_at: Timestamp,
    /// When Vigil published it (its wall clock).
    #[serde(deserialize_with = "rfc3339")]
    pub emitted_at: Timestamp,
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

fn rfc3339<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
    let text = String::deserialize(d)?;
    Timestamp::parse_rfc3339(&text).map_err(|e| {
        serde::de::Error::custom(format!("{text:?} is not an RFC 3339 date-time: {e}"))
    })
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
