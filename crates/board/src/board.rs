//! The board: alert and action events folded into one case per patient, the cards it
//! shows, and the escalations that are due.
//!
//! A case follows one patient through one encounter: a new encounter id starts a new
//! case (ownership, watch, stop, dismissal and escalation tier reset; the history goes
//! on). Its active alerts are the rules raised, escalated or overdue and not yet resolved;
//! the case is on the board while it has one, unless dismissed. What a case shows:
//! - its level, the highest of its active alerts, and since when it has been at that
//!   level (the instant that escalates it if nobody accepts it);
//! - who owns it; whether it is dismissed (until a new alert is raised or escalated),
//!   watched (new alerts until then are recorded as suppressed and do not re-show a
//!   dismissed case) or stopped (the same, for the rest of the encounter);
//! - its history: every alert event and action, newest last (bounded).
//!
//! Silent alerts (the service's run-in mode) fold into cases of their own: quality staff
//! see them, nobody acts on them, and they never page, escalate or change a live case.
//!
//! Everything is a function of the events applied, in the order of each topic: two boards
//! that applied the same events show the same cards. Redelivered events (the same
//! `alert_id` or `action_id`) change nothing.

use std::collections::{BTreeMap, HashSet, VecDeque};

use vigil_score::{Span, Timestamp};

use crate::action::{Action, ActionKind, NOTE_LIMIT, Refusal, Role};
use crate::event::AlertEvent;
use vigil_score::{AlertKind as EventKind, Level};

/// How many history entries a case keeps (the oldest are dropped first).
pub const HISTORY_LIMIT: usize = 500;

/// The board's settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// The reasons a dismissal may give.
    pub dismiss_reasons: Vec<String>,
    /// The longest watch, in minutes.
    pub max_watch_minutes: u32,
    /// How long an alert may wait for someone to accept it before it escalates, by level
    /// (advisory, urgent, emergency); `None` never escalates. Tier `n` falls due `n` times
    /// this after the case reached its level.
    pub escalate_after: [Option<Span>; 3],
    /// The highest tier escalations go to.
    pub max_tier: u8,
}

/// An active alert of a case: the latest event of its rule.
#[derive(Clone, Debug, PartialEq)]
pub struct ActiveAlert {
    /// The latest event.
    pub event: AlertEvent,
}

/// One entry of a case's history.
#[derive(Clone, Debug, PartialEq)]
pub enum Entry {
    /// An alert event; `suppressed` when it arrived while the case was watched or
    /// stopped.
    Alert {
        /// The event.
        event: Box<AlertEvent>,
        /// Whether it was suppressed.
        suppressed: bool,
    },
    /// An action.
    Action(Action),
}

/// One patient's case.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Case {
    /// The patient.
    pub patient_id: String,
    /// The encounter of the case.
    pub encounter_id: Option<String>,
    /// Where the patient is.
    pub location: Option<String>,
    /// Active alerts by rule.
    pub alerts: BTreeMap<String, ActiveAlert>,
    /// The highest active level.
    pub level: Option<Level>,
    /// Since when the case has been at `level`.
    pub level_since: Option<Timestamp>,
    /// Who accepted it.
    pub owner: Option<String>,
    /// Dismissed, with the reason: off the board until a new alert is raised or
    /// escalated.
    pub dismissed: Option<String>,
    /// Watched until then.
    pub watch_until: Option<Timestamp>,
    /// Alerts stopped for the rest of the encounter.
    pub stopped: bool,
    /// The escalation tier reached (0: none).
    pub tier: u8,
    /// Every event and action, newest last.
    pub history: VecDeque<Entry>,
}

impl Case {
    fn push(&mut self, entry: Entry) {
        if self.history.len() == HISTORY_LIMIT {
            self.history.pop_front();
        }
        self.history.push_back(entry);
    }

    fn suppressing(&self, at: Timestamp) -> bool {
        self.stopped || self.watch_until.is_some_and(|until| at < until)
    }

    /// Whether the case is on the board: an active alert, and not dismissed.
    pub fn is_shown(&self) -> bool {
        !self.alerts.is_empty() && self.dismissed.is_none()
    }
}

/// What applying an event did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applied {
    /// A redelivery: nothing changed.
    Duplicate,
    /// Applied.
    Applied,
    /// Applied and recorded, but suppressed by a watch or a stop: it does not re-show
    /// the case.
    Suppressed,
}

/// A card on the board.
#[derive(Clone, Debug, PartialEq)]
pub struct Card<'a> {
    /// The case.
    pub case: &'a Case,
    /// Its level.
    pub level: Level,
    /// Since when.
    pub since: Timestamp,
    /// The escalation that is due, if nobody accepted it in time.
    pub overdue_escalation: bool,
}

/// An escalation that has fallen due: publish it as an [`ActionKind::Escalate`] action
/// (role [`Role::System`]) with `action_id` = [`EscalationDue::id`], so that every board
/// instance publishing it writes the same event and readers drop the copies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EscalationDue {
    /// Deterministic id: the patient, encounter, level, the instant it was reached and
    /// the tier.
    pub id: String,
    /// The patient.
    pub patient_id: String,
    /// The encounter.
    pub encounter_id: Option<String>,
    /// The level that waited.
    pub level: Level,
    /// The tier it escalates to.
    pub tier: u8,
    /// When it fell due.
    pub due_at: Timestamp,
}

impl EscalationDue {
    /// The action that records it.
    pub fn action(&self) -> Action {
        Action {
            action_id: self.id.clone(),
            patient_id: self.patient_id.clone(),
            encounter_id: self.encounter_id.clone(),
            kind: ActionKind::Escalate,
            user: "vigil".into(),
            role: Role::System,
            at: self.due_at,
        }
    }
}

/// The board's state.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Board {
    cases: BTreeMap<String, Case>,
    /// Silent alerts (the service's run-in): cases of their own, which quality staff see
    /// and nobody acts on; they never page, escalate or touch a live case.
    silent: BTreeMap<String, Case>,
    /// Alert and action ids applied (redeliveries change nothing).
    seen: HashSet<String>,
}

impl Board {
    /// An empty board.
    pub fn new() -> Board {
        Board::default()
    }

    /// The case of `patient_id`, if any.
    pub fn case(&self, patient_id: &str) -> Option<&Case> {
        self.cases.get(patient_id)
    }

    /// The silent case of `patient_id`, if any.
    pub fn silent_case(&self, patient_id: &str) -> Option<&Case> {
        self.silent.get(patient_id)
    }

    /// Applies one alert event: a silent one to the silent cases.
    pub fn apply_alert(&mut self, e: AlertEvent) -> Applied {
        if !self.seen.insert(format!("alert:{}", e.alert_id)) {
            return Applied::Duplicate;
        }
        let cases = if e.silent {
            &mut self.silent
        } else {
            &mut self.cases
        };
        let case = cases.entry(e.patient_id.clone()).or_insert_with(|| Case {
            patient_id: e.patient_id.clone(),
            ..Case::default()
        });
        if e.encounter_id.is_some() && case.encounter_id != e.encounter_id {
            // A new encounter: a new case, with the history kept.
            let history = std::mem::take(&mut case.history);
            *case = Case {
                patient_id: e.patient_id.clone(),
                encounter_id: e.encounter_id.clone(),
                history,
                ..Case::default()
            };
        }
        if e.location.is_some() {
            case.location.clone_from(&e.location);
        }
        let new_alert = matches!(e.kind, EventKind::Raised | EventKind::Escalated);
        // Suppressed by this board's own record of watches and stops, or by the service,
        // which read them from the same topic.
        let suppressed = new_alert && (case.suppressing(e.emitted_at) || e.suppressed.is_some());
        match e.kind {
            EventKind::Resolved => {
                case.alerts.remove(&e.rule);
            }
            _ => {
                case.alerts
                    .insert(e.rule.clone(), ActiveAlert { event: e.clone() });
            }
        }
        if new_alert && !suppressed {
            case.dismissed = None;
        }
        let level = case.alerts.values().map(|a| a.event.level).max();
        if level != case.level {
            case.level = level;
            case.level_since = level.map(|_| e.emitted_at);
            case.tier = 0;
            if level.is_none() {
                // Nothing active: the next alert starts over.
                case.owner = None;
            }
        }
        case.push(Entry::Alert {
            event: Box::new(e),
            suppressed,
        });
        if suppressed {
            Applied::Suppressed
        } else {
            Applied::Applied
        }
    }

    /// Checks and applies one action. Actions from the action topic were checked when
    /// they were taken; applying them again checks again, so a forged event changes
    /// nothing either.
    ///
    /// # Errors
    ///
    /// Why the action is refused: the role may not take it, someone else owns the alert,
    /// the patient has no case, or a value is not allowed.
    pub fn apply_action(&mut self, a: Action, settings: &Settings) -> Result<Applied, Refusal> {
        if self.seen.contains(&format!("action:{}", a.action_id)) {
            return Ok(Applied::Duplicate);
        }
        self.check(&a, settings)?;
        self.seen.insert(format!("action:{}", a.action_id));
        let Some(case) = self.cases.get_mut(&a.patient_id) else {
            return Err(Refusal::NoCase);
        };
        match &a.kind {
            ActionKind::Accept => case.owner = Some(a.user.clone()),
            ActionKind::Dismiss { reason } => case.dismissed = Some(reason.clone()),
            ActionKind::Watch { minutes } => {
                case.watch_until = Some(a.at.plus(Span::minutes(i64::from(*minutes))));
            }
            ActionKind::Stop => case.stopped = true,
            ActionKind::Escalate => case.tier = case.tier.saturating_add(1),
            ActionKind::Note { .. } => {}
        }
        case.push(Entry::Action(a));
        Ok(Applied::Applied)
    }

    /// Whether `a` may be applied now, without applying it.
    ///
    /// # Errors
    ///
    /// As [`Board::apply_action`].
    pub fn check(&self, a: &Action, settings: &Settings) -> Result<(), Refusal> {
        if !a.role.may(&a.kind) {
            return Err(Refusal::NotAllowed {
                role: a.role,
                action: a.kind.name(),
            });
        }
        let case = self.cases.get(&a.patient_id).ok_or(Refusal::NoCase)?;
        match &a.kind {
            ActionKind::Accept => {
                if let Some(owner) = &case.owner
                    && owner != &a.user
                    && !matches!(a.role, Role::ChargeNurse | Role::Admin)
                {
                    return Err(Refusal::OwnedByAnother {
                        owner: owner.clone(),
                    });
                }
            }
            ActionKind::Dismiss { reason } if !settings.dismiss_reasons.contains(reason) => {
                return Err(Refusal::Invalid {
                    field: "reason",
                    value: shorten(reason),
                    expected: format!("one of {}", settings.dismiss_reasons.join(", ")),
                });
            }
            ActionKind::Watch { minutes }
                if *minutes == 0 || *minutes > settings.max_watch_minutes =>
            {
                return Err(Refusal::Invalid {
                    field: "minutes",
                    value: minutes.to_string(),
                    expected: format!("1-{}", settings.max_watch_minutes),
                });
            }
            ActionKind::Note { text }
                if text.trim().is_empty()
                    || text.chars().count() > NOTE_LIMIT
                    || text.chars().any(hidden) =>
            {
                return Err(Refusal::Invalid {
                    field: "text",
                    value: shorten(&text.chars().filter(|c| !hidden(*c)).collect::<String>()),
                    expected: format!(
                        "1-{NOTE_LIMIT} characters, none of them a control character (NUL, \
                         escape) or a bidirectional override"
                    ),
                });
            }
            // A stop lasts the encounter it is taken in; without one it would never end
            // (a later encounter's alerts would be silenced), so it is refused.
            ActionKind::Stop if case.encounter_id.is_none() => {
                return Err(Refusal::Invalid {
                    field: "encounter_id",
                    value: "none".into(),
                    expected: "a case whose feed names its encounter: a stop lasts the \
                               encounter it is taken in, and this patient's feed sends none \
                               (watch the patient instead)"
                        .into(),
                });
            }
            ActionKind::Escalate if case.tier >= settings.max_tier => {
                return Err(Refusal::Invalid {
                    field: "tier",
                    value: case.tier.to_string(),
                    expected: format!(
                        "below the highest tier, {}: the case is already there",
                        settings.max_tier
                    ),
                });
            }
            _ => {}
        }
        Ok(())
    }

    /// One patient's live and silent cases, as they are (for a rebuild of that patient).
    pub(crate) fn patient(&self, patient_id: &str) -> (Option<Case>, Option<Case>) {
        (
            self.cases.get(patient_id).cloned(),
            self.silent.get(patient_id).cloned(),
        )
    }

    /// Puts back one patient's cases as [`Board::patient`] returned them, and forgets the
    /// ids of `reapplied` (the events about to be applied again), so that they apply.
    pub(crate) fn restore(
        &mut self,
        patient_id: &str,
        (live, silent): (Option<Case>, Option<Case>),
        reapplied: impl IntoIterator<Item = String>,
    ) {
        for (cases, case) in [(&mut self.cases, live), (&mut self.silent, silent)] {
            match case {
                Some(c) => {
                    cases.insert(patient_id.to_owned(), c);
                }
                None => {
                    cases.remove(patient_id);
                }
            }
        }
        for id in reapplied {
            self.seen.remove(&id);
        }
    }

    /// Whether an event with this id (`alert:…` or `action:…`) was applied.
    pub(crate) fn has_seen(&self, id: &str) -> bool {
        self.seen.contains(id)
    }

    /// The cards on the board at `now`: highest level first, then the longest waiting.
    pub fn cards(&self, now: Timestamp, settings: &Settings) -> Vec<Card<'_>> {
        Board::cards_of(&self.cases, now, settings)
    }

    /// The silent cards (a run-in's alerts), ordered as [`Board::cards`]; none is ever
    /// due to escalate.
    pub fn silent_cards(&self, now: Timestamp, settings: &Settings) -> Vec<Card<'_>> {
        let mut cards = Board::cards_of(&self.silent, now, settings);
        for c in &mut cards {
            c.overdue_escalation = false;
        }
        cards
    }

    fn cards_of<'a>(
        cases: &'a BTreeMap<String, Case>,
        now: Timestamp,
        settings: &Settings,
    ) -> Vec<Card<'a>> {
        let mut cards: Vec<Card<'a>> = cases
            .values()
            .filter(|c| c.is_shown())
            .filter_map(|case| {
                let level = case.level?;
                let since = case.level_since?;
                Some(Card {
                    case,
                    level,
                    since,
                    overdue_escalation: due(case, level, since, settings)
                        .is_some_and(|at| at <= now),
                })
            })
            .collect();
        cards.sort_by(|a, b| {
            b.level
                .cmp(&a.level)
                .then(a.since.cmp(&b.since))
                .then(a.case.patient_id.cmp(&b.case.patient_id))
        });
        cards
    }

    /// The escalations due at `now`: cases on the board that nobody accepted within the
    /// time their level allows, each at its next tier (up to [`Settings::max_tier`]).
    pub fn escalations_due(&self, now: Timestamp, settings: &Settings) -> Vec<EscalationDue> {
        self.cases
            .values()
            .filter(|c| c.is_shown() && c.owner.is_none() && c.tier < settings.max_tier)
            .filter_map(|case| {
                let level = case.level?;
                let since = case.level_since?;
                let due_at = due(case, level, since, settings)?;
                (due_at <= now).then(|| EscalationDue {
                    id: format!(
                        "escalation:{}:{}:{:?}:{}:{}",
                        case.patient_id,
                        case.encounter_id.as_deref().unwrap_or(""),
                        level,
                        since.as_millis(),
                        case.tier + 1
                    ),
                    patient_id: case.patient_id.clone(),
                    encounter_id: case.encounter_id.clone(),
                    level,
                    tier: case.tier + 1,
                    due_at,
                })
            })
            .collect()
    }
}

/// When the case's next tier falls due, if its level escalates.
fn due(case: &Case, level: Level, since: Timestamp, settings: &Settings) -> Option<Timestamp> {
    if case.owner.is_some() || case.tier >= settings.max_tier {
        return None;
    }
    let after = settings.escalate_after[level as usize]?;
    Some(since.plus(Span::millis(after.as_millis() * i64::from(case.tier + 1))))
}

/// A character that must not reach a screen from a note: a control character (NUL,
/// escape, line breaks aside) or a bidirectional override or isolate, which can make
/// text read otherwise than it is.
fn hidden(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t')
        || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}')
}

fn shorten(s: &str) -> String {
    s.chars().take(60).collect()
}
