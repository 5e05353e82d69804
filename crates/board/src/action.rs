//! What people do with an alert, who may do it, and why a board refuses. Actions are
//! events on the action topic: the board's state is rebuilt from them, and the topic is
//! the audit trail (who, in which role, when, and why).

use serde::{Deserialize, Serialize};
use vigil_score::Timestamp;

/// What a signed-in user is allowed to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A ward or rapid-response nurse: everything but stopping alerts for an encounter.
    Nurse,
    /// A charge nurse: everything a nurse may do, stopping alerts for an encounter and
    /// taking over an alert someone else owns.
    ChargeNurse,
    /// Quality staff: sees the board, acts on nothing.
    Quality,
    /// An administrator: everything.
    Admin,
    /// Vigil itself: escalations of alerts nobody accepted in time.
    System,
}

/// An action on a patient's alerts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ActionKind {
    /// Takes ownership: one owner at a time, shown to everyone.
    Accept,
    /// Dismisses the patient's alerts with a reason from the configured list; they stay
    /// off the board until a new alert is raised or escalated.
    Dismiss {
        /// One of [`crate::Settings::dismiss_reasons`].
        reason: String,
    },
    /// Watches the patient: new alerts in the next `minutes` are recorded, marked
    /// suppressed, and not shown as new; after that they alert again.
    Watch {
        /// How long, 1 to [`crate::Settings::max_watch_minutes`].
        minutes: u32,
    },
    /// Stops alerts for the rest of the encounter (charge nurse or administrator).
    Stop,
    /// Escalates to the next tier.
    Escalate,
    /// Adds a note.
    Note {
        /// The note, 1 to [`NOTE_LIMIT`] characters.
        text: String,
    },
}

/// The longest note, in characters.
pub const NOTE_LIMIT: usize = 2000;

impl ActionKind {
    /// Its name, as in the event's `kind`.
    pub fn name(&self) -> &'static str {
        match self {
            ActionKind::Accept => "accept",
            ActionKind::Dismiss { .. } => "dismiss",
            ActionKind::Watch { .. } => "watch",
            ActionKind::Stop => "stop",
            ActionKind::Escalate => "escalate",
            ActionKind::Note { .. } => "note",
        }
    }
}

impl Role {
    /// Whether this role may take `action` at all (ownership rules aside).
    pub fn may(self, action: &ActionKind) -> bool {
        match self {
            Role::Admin => true,
            Role::Quality => false,
            Role::System => matches!(action, ActionKind::Escalate),
            Role::ChargeNurse => true,
            Role::Nurse => !matches!(action, ActionKind::Stop),
        }
    }
}

/// One action event on the action topic.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Action {
    /// Unique: a redelivered action has the same id and changes nothing.
    pub action_id: String,
    /// The patient whose alerts it acts on.
    pub patient_id: String,
    /// The encounter it was taken in (the case's, when it was taken).
    #[serde(default)]
    pub encounter_id: Option<String>,
    /// What was done.
    #[serde(flatten)]
    pub kind: ActionKind,
    /// Who did it (a user name; `vigil` for escalations).
    pub user: String,
    /// In which role.
    pub role: Role,
    /// When (RFC 3339 on the topic).
    #[serde(with = "crate::rfc3339")]
    pub at: Timestamp,
}

impl Action {
    /// Parses one action event from its JSON.
    ///
    /// # Errors
    ///
    /// When the JSON is not an action event; the reason names the field.
    pub fn from_json(bytes: &[u8]) -> Result<Action, String> {
        serde_json::from_slice(bytes).map_err(|e| e.to_string())
    }

    /// The JSON of the event.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// Why an action was refused: shown to the user who tried it, and never applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The role may not take this action.
    NotAllowed {
        /// The role.
        role: Role,
        /// The action's name.
        action: &'static str,
    },
    /// Someone else owns the alert (only a charge nurse or an administrator may take it
    /// over).
    OwnedByAnother {
        /// The owner.
        owner: String,
    },
    /// The patient has no case on the board.
    NoCase,
    /// A value outside what is allowed: the field, the value and what was expected.
    Invalid {
        /// The field.
        field: &'static str,
        /// The value, shortened.
        value: String,
        /// What is allowed.
        expected: String,
    },
}

impl Refusal {
    /// The kind of refusal, without the values it names (for logs, which carry no
    /// clinical text).
    pub fn kind(&self) -> &'static str {
        match self {
            Refusal::NotAllowed { .. } => "role may not",
            Refusal::OwnedByAnother { .. } => "owned by another",
            Refusal::NoCase => "no case",
            Refusal::Invalid { field, .. } => field,
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::NotAllowed { role, action } => {
                write!(f, "a user in the role {role:?} may not {action}")
            }
            Refusal::OwnedByAnother { owner } => write!(
                f,
                "{owner} owns this alert; only a charge nurse may take it over"
            ),
            Refusal::NoCase => write!(f, "the patient has no alert on the board"),
            Refusal::Invalid {
                field,
                value,
                expected,
            } => write!(f, "{field}: {value:?} is not allowed; expected {expected}"),
        }
    }
}

impl std::error::Error for Refusal {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_may_what_the_board_allows_them() {
        let all = [
            ActionKind::Accept,
            ActionKind::Dismiss {
                reason: "artefact".into(),
            },
            ActionKind::Watch { minutes: 30 },
            ActionKind::Stop,
            ActionKind::Escalate,
            ActionKind::Note { text: "x".into() },
        ];
        for a in &all {
            assert!(Role::Admin.may(a));
            assert!(Role::ChargeNurse.may(a));
            assert!(!Role::Quality.may(a), "{a:?}");
            assert_eq!(Role::Nurse.may(a), *a != ActionKind::Stop, "{a:?}");
            assert_eq!(Role::System.may(a), *a == ActionKind::Escalate, "{a:?}");
        }
    }

    #[test]
    fn an_action_round_trips_through_its_json() {
        let a = Action {
            action_id: "x1".into(),
            patient_id: "P1".into(),
            encounter_id: Some("E1".into()),
            kind: ActionKind::Dismiss {
                reason: "not sepsis".into(),
            },
            user: "alice".into(),
            role: Role::Nurse,
            at: Timestamp::parse_rfc3339("2026-11-23T10:05:00Z").expect("a time"),
        };
        let json = a.to_json();
        assert!(
            json.contains(r#""kind":"dismiss","reason":"not sepsis""#),
            "{json}"
        );
        assert!(json.contains(r#""at":"2026-11-23T10:05:00"#), "{json}");
        assert_eq!(Action::from_json(json.as_bytes()), Ok(a));
    }
}
