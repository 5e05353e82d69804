//! What a board page shows of a card, as plain data a page can render: the ward it
//! belongs to, its level and how long it has waited, who owns it, each active alert with
//! what fired and what changed since the previous decision, and the scores of the last
//! 24 hours for a small trend chart. The view carries no patient identifier of its own
//! beyond what the card shows on screen; pages ask for a patient in request bodies, never
//! in a URL.

use serde::Serialize;
use vigil_score::{Span, Timestamp};

use crate::board::{Card, Entry};
use vigil_score::{AlertKind as EventKind, Level};

/// One card, ready to render.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CardView {
    /// The ward: the part of the location before the first `/` (`unassigned` without one).
    pub ward: String,
    /// The patient, as shown on screen.
    pub patient_id: String,
    /// Where the patient is.
    pub location: Option<String>,
    /// The card's level.
    pub level: Level,
    /// The level in words and as a symbol, so that it is never shown by colour alone.
    pub level_text: &'static str,
    /// Minutes since the case reached its level.
    pub waiting_minutes: i64,
    /// Who accepted it.
    pub owner: Option<String>,
    /// The escalation tier reached.
    pub tier: u8,
    /// An escalation is due: nobody accepted it in time.
    pub escalation_due: bool,
    /// Watched until then (RFC 3339).
    pub watch_until: Option<String>,
    /// Each active alert.
    pub alerts: Vec<AlertView>,
    /// Scores of the last 24 hours, by rule, oldest first.
    pub trend: Vec<TrendView>,
}

/// One active alert of a card.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AlertView {
    /// The rule.
    pub rule: String,
    /// Its level.
    pub level: Level,
    /// Its score, when it has one.
    pub score: Option<f64>,
    /// What changed since the previous decision, in words (`urgent → emergency`,
    /// `score 5 → 7`), empty when nothing did.
    pub changed: String,
    /// The service's one-line message (the values that fired, with their units).
    pub message: String,
    /// The readings that fired, as the service sent them (code, value, unit, time, points).
    pub criteria: Vec<serde_json::Value>,
    /// Parameters to re-measure.
    pub overdue: Vec<String>,
    /// When the episode was raised (RFC 3339).
    pub first_raised_at: String,
}

/// The scores of one rule over the last 24 hours.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TrendView {
    /// The rule.
    pub rule: String,
    /// `(minutes before now, score)`, oldest first.
    pub points: Vec<(i64, f64)>,
}

/// The ward of a location (`unit/room/bed`): the part before the first `/`, trimmed, or
/// `unassigned` when there is none. The board groups cards by it, the drift metrics label
/// by it and `vigil runin` reports by it.
pub fn ward_of(location: Option<&str>) -> &str {
    location
        .and_then(|l| l.split('/').next())
        .map(str::trim)
        .filter(|w| !w.is_empty())
        .unwrap_or("unassigned")
}

/// The level in words with a symbol (IEC 60601-1-8 alarm priorities: high, medium, low).
pub fn level_text(level: Level) -> &'static str {
    match level {
        Level::Emergency => "!!! emergency (high priority)",
        Level::Urgent => "!! urgent (medium priority)",
        Level::Advisory => "! advisory (low priority)",
    }
}

impl CardView {
    /// The view of `card` at `now`.
    pub fn of(card: &Card<'_>, now: Timestamp) -> CardView {
        let case = card.case;
        let ward = ward_of(case.location.as_deref()).to_owned();
        let alerts = case
            .alerts
            .values()
            .map(|a| {
                let e = &a.event;
                let mut changed = Vec::new();
                if let Some(previous) = e.previous_level
                    && previous != e.level
                {
                    changed.push(format!("{previous:?} → {:?}", e.level).to_lowercase());
                }
                if let (Some(before), Some(after)) = (e.previous_score, e.score)
                    && (before - after).abs() > f64::EPSILON
                {
                    changed.push(format!("score {before} → {after}"));
                }
                if e.kind == EventKind::Raised && e.previous_level.is_none() {
                    changed.push("new".to_owned());
                }
                AlertView {
                    rule: e.rule.clone(),
                    level: e.level,
                    score: e.score,
                    changed: changed.join(", "),
                    message: e.message.clone(),
                    criteria: e.criteria.clone(),
                    overdue: e.overdue.clone(),
                    first_raised_at: e.first_raised_at.to_string(),
                }
            })
            .collect();
        let since = now.minus(Span::hours(24));
        let mut trend: Vec<TrendView> = Vec::new();
        for entry in &case.history {
            let Entry::Alert { event, .. } = entry else {
                continue;
            };
            let (Some(score), true) = (event.score, event.emitted_at >= since) else {
                continue;
            };
            let minutes = (now.as_millis() - event.emitted_at.as_millis()) / 60_000;
            match trend.iter_mut().find(|t| t.rule == event.rule) {
                Some(t) => t.points.push((minutes, score)),
                None => trend.push(TrendView {
                    rule: event.rule.clone(),
                    points: vec![(minutes, score)],
                }),
            }
        }
        CardView {
            ward,
            patient_id: case.patient_id.clone(),
            location: case.location.clone(),
            level: card.level,
            level_text: level_text(card.level),
            waiting_minutes: (now.as_millis() - card.since.as_millis()).max(0) / 60_000,
            owner: case.owner.clone(),
            tier: case.tier,
            escalation_due: card.overdue_escalation,
            watch_until: case.watch_until.filter(|w| *w > now).map(|w| w.to_string()),
            alerts,
            trend,
        }
    }
}
