//! `vigil-board`: the state of the rapid-response board, as pure logic (no I/O, no clock:
//! every instant is an argument).
//!
//! The board is rebuilt from two topics, so that every board instance that reads them
//! agrees and a restart loses nothing: the alert topic ([`AlertEvent`], as the service
//! publishes it) and the action topic ([`Action`]: what nurses did, with who, in which role,
//! when and why). [`Board`] folds both into one case per patient and shows the active ones
//! as [`Card`]s, ordered by level and then by how long they have waited. It checks who may
//! do what ([`Role::may`]) and says when an alert nobody accepted is due to escalate
//! ([`Board::escalations_due`]); the escalation itself is an action on the topic, so every
//! instance sees the same tier. [`Fold`] feeds the board both topics in one defined order
//! ([`Position`]), so that instances started or restarted whenever agree; [`ActionKey`]
//! signs and verifies actions, so that only a board holding the shared key changes who is
//! paged. [`CardView`] is what a page renders of a card. The web
//! layer, the Kafka clients and the login live elsewhere.

mod action;
mod board;
mod event;
mod fold;
pub mod rfc3339;
mod signing;
mod view;

pub use action::{Action, ActionKind, NOTE_LIMIT, Refusal, Role};
pub use board::{
    ActiveAlert, Applied, Board, Card, Case, Entry, EscalationDue, HISTORY_LIMIT, Settings,
};
pub use event::AlertEvent;
pub use fold::{Event, Fold, Folded, Position, Topic};
pub use signing::{ActionKey, MIN_KEY_BYTES, SIGNATURE_HEADER, Unverified};
pub use view::{AlertView, CardView, TrendView, level_text, ward_of};
/// What an alert event does to its alert (the scoring crate's `AlertKind`).
pub use vigil_score::AlertKind as EventKind;
pub use vigil_score::Level;
