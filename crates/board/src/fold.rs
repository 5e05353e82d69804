//! The order in which a board applies its two topics, so that every instance, started
//! whenever and restarted however often, folds the same events into the same state.
//!
//! The alert topic and the action topic are read independently, and their messages
//! arrive interleaved as fetches return: an action can arrive before the alert it acts
//! on (from a transaction committed a moment later, or while a restarted board reads
//! the action topic's backlog first). Applied as they arrive, such an action was refused
//! ("no case") and lost, and two boards disagreed.
//!
//! The defined order is each message's [`Position`]: its Kafka timestamp, then the alert
//! topic before the action topic, then partition and offset. Only one patient's events
//! need ordering against each other (a patient's cases depend on nothing else, and both
//! topics are keyed by patient), so a [`Fold`] keeps, for each patient with an event in
//! the last [`Fold::horizon`] of message time, that patient's cases as they were before
//! those events and the events themselves. An event that arrives out of order for its
//! patient rebuilds that patient alone: the cases are put back and the events applied
//! again in order, so an action refused for want of a case is applied once its alert has
//! arrived. An event older than the horizon for a patient with later events is still
//! applied, after them, and counted as late ([`Folded::late`]).
//!
//! A board that reads the topics from the beginning should hand the fold every message
//! up to the topics' ends in [`Position`] order (the web layer sorts that catch-up), so
//! that nothing has to be rebuilt.

use std::collections::{BTreeMap, HashMap, VecDeque};

use crate::action::{Action, Refusal};
use crate::board::{Applied, Board, Case, Settings};
use crate::event::AlertEvent;

/// Which topic a message came from; alerts sort first at equal times.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Topic {
    /// The alert topic.
    Alerts,
    /// The action topic.
    Actions,
}

/// Where a message sits in the defined order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    /// The message's Kafka timestamp, in milliseconds since the epoch.
    pub time_ms: i64,
    /// Its topic.
    pub topic: Topic,
    /// Its partition.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
}

/// One message of either topic, read.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// An alert event.
    Alert(Box<AlertEvent>),
    /// An action.
    Action(Action),
}

impl Event {
    fn patient(&self) -> &str {
        match self {
            Event::Alert(e) => &e.patient_id,
            Event::Action(a) => &a.patient_id,
        }
    }

    fn seen_id(&self) -> String {
        match self {
            Event::Alert(e) => format!("alert:{}", e.alert_id),
            Event::Action(a) => format!("action:{}", a.action_id),
        }
    }
}

/// What folding one message did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Folded {
    /// What applying it did, or why the action was refused (as things stand after it).
    pub outcome: Result<Applied, Refusal>,
    /// It arrived before an event of its patient that it precedes: the patient was
    /// rebuilt in order.
    pub reordered: bool,
    /// It arrived after an event of its patient that it precedes, older than the
    /// horizon: applied after the patient's events already folded past the horizon
    /// (nothing is lost, but the order is not the defined one).
    pub late: bool,
}

/// A patient with events within the horizon: the cases before them, and their positions.
#[derive(Debug)]
struct Recent {
    before: (Option<Case>, Option<Case>),
    positions: VecDeque<Position>,
}

/// A board fed in the defined order; see the module documentation.
#[derive(Debug)]
pub struct Fold {
    board: Board,
    events: BTreeMap<Position, Event>,
    patients: HashMap<String, Recent>,
    /// Each patient's latest position folded.
    latest: HashMap<String, Position>,
    newest_ms: i64,
    horizon_ms: i64,
}

impl Fold {
    /// An empty board; events within `horizon_ms` of the newest are kept for reordering.
    pub fn new(horizon_ms: i64) -> Fold {
        Fold {
            board: Board::new(),
            events: BTreeMap::new(),
            patients: HashMap::new(),
            latest: HashMap::new(),
            newest_ms: i64::MIN,
            horizon_ms,
        }
    }

    /// `board` as it is (events already applied), folded on from here.
    pub fn from_board(board: Board, horizon_ms: i64) -> Fold {
        Fold {
            board,
            ..Fold::new(horizon_ms)
        }
    }

    /// The board.
    pub fn board(&self) -> &Board {
        &self.board
    }

    /// How far back in message time an event can still be put in its place.
    pub fn horizon(&self) -> i64 {
        self.horizon_ms
    }

    /// How many events are kept for reordering.
    pub fn kept(&self) -> usize {
        self.events.len()
    }

    /// Folds one message at `at`.
    pub fn apply(&mut self, at: Position, event: Event, settings: &Settings) -> Folded {
        let patient = event.patient().to_owned();
        if self.board.has_seen(&event.seen_id()) {
            // A redelivery changes nothing, wherever it falls.
            return Folded {
                outcome: Ok(Applied::Duplicate),
                reordered: false,
                late: false,
            };
        }
        let cutoff = self.newest_ms.saturating_sub(self.horizon_ms);
        let latest = self.latest.entry(patient.clone()).or_insert(at);
        let late = at.time_ms < cutoff && *latest > at;
        *latest = (*latest).max(at);
        if at.time_ms < cutoff && !self.patients.contains_key(&patient) {
            // Too old to keep, and nothing of the patient kept: applied as it comes.
            let outcome = apply(&mut self.board, event, settings);
            return Folded {
                outcome,
                reordered: false,
                late,
            };
        }
        let board = &self.board;
        let recent = self
            .patients
            .entry(patient.clone())
            .or_insert_with(|| Recent {
                before: board.patient(&patient),
                positions: VecDeque::new(),
            });
        let reordered = recent.positions.back().is_some_and(|last| *last > at);
        let outcome = if reordered {
            let i = recent.positions.partition_point(|p| *p < at);
            recent.positions.insert(i, at);
            self.events.insert(at, event);
            self.rebuild(&patient, at, settings)
        } else {
            recent.positions.push_back(at);
            self.events.insert(at, event.clone());
            apply(&mut self.board, event, settings)
        };
        self.newest_ms = self.newest_ms.max(at.time_ms);
        self.expire(settings);
        Folded {
            outcome,
            reordered: reordered && !late,
            late,
        }
    }

    /// Puts `patient`'s cases back as they were before their kept events and applies
    /// those again in order; the outcome of the one at `at`.
    fn rebuild(
        &mut self,
        patient: &str,
        at: Position,
        settings: &Settings,
    ) -> Result<Applied, Refusal> {
        let Some(recent) = self.patients.get(patient) else {
            return Ok(Applied::Duplicate);
        };
        let events: Vec<(Position, Event)> = recent
            .positions
            .iter()
            .filter_map(|p| self.events.get(p).map(|e| (*p, e.clone())))
            .collect();
        self.board.restore(
            patient,
            recent.before.clone(),
            events.iter().map(|(_, e)| e.seen_id()),
        );
        let mut outcome = Ok(Applied::Duplicate);
        for (p, e) in events {
            let o = apply(&mut self.board, e, settings);
            if p == at {
                outcome = o;
            }
        }
        outcome
    }

    /// Drops the events older than the horizon: each patient's cases "before" move past
    /// them (rebuilt from the old "before" with the dropped events, then the remaining
    /// ones applied again).
    fn expire(&mut self, settings: &Settings) {
        let cutoff = self.newest_ms.saturating_sub(self.horizon_ms);
        let mut dropped: BTreeMap<String, Vec<Event>> = BTreeMap::new();
        while let Some(entry) = self.events.first_entry() {
            if entry.key().time_ms >= cutoff {
                break;
            }
            let (_, event) = entry.remove_entry();
            let patient = event.patient().to_owned();
            if let Some(recent) = self.patients.get_mut(&patient) {
                recent.positions.pop_front();
            }
            dropped.entry(patient).or_default().push(event);
        }
        for (patient, gone) in dropped {
            let Some(recent) = self.patients.get_mut(&patient) else {
                continue;
            };
            if recent.positions.is_empty() {
                // Nothing left to reorder: the cases as they are stay.
                self.patients.remove(&patient);
                continue;
            }
            let remaining: Vec<Event> = recent
                .positions
                .iter()
                .filter_map(|p| self.events.get(p).cloned())
                .collect();
            let ids = gone.iter().chain(&remaining).map(Event::seen_id);
            self.board.restore(&patient, recent.before.clone(), ids);
            for e in gone {
                let _ = apply(&mut self.board, e, settings);
            }
            recent.before = self.board.patient(&patient);
            for e in remaining {
                let _ = apply(&mut self.board, e, settings);
            }
        }
    }
}

fn apply(board: &mut Board, event: Event, settings: &Settings) -> Result<Applied, Refusal> {
    match event {
        Event::Alert(e) => Ok(board.apply_alert(*e)),
        Event::Action(a) => board.apply_action(a, settings),
    }
}
