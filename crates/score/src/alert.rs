//! The alert policy: when a patient's scores raise, escalate and resolve an alert.
//!
//! Pure logic over successive [`Assessment`]s of one patient. For every rule it keeps
//! whether an alert is active and at which level, and decides:
//!
//! - **raised** when the rule's level is reached (and held, see persistence);
//! - **escalated** when a higher level is reached while the alert is active;
//! - **resolved** when the patient no longer meets any level of the rule (held as well);
//! - nothing otherwise: an active alert is never raised again, and a lower level while
//!   active does not page anyone (the alert stays at its level until resolved).
//!
//! **Persistence** keeps single monitor artefacts from paging: a level (or the all-clear)
//! counts only once it has held for `readings` consecutive assessment instants (readings
//! charted at the same instant count once) or for `duration` of event time, whichever
//! comes first. With the defaults (1 reading) every level acts
//! at once.
//!
//! Default levels follow the RCP NEWS2 clinical response chart (Royal College of
//! Physicians, 2017, chart 4) and Sepsis-3 (Singer et al., JAMA 2016;315(8):801):
//!
//! | rule | advisory | urgent | emergency |
//! |---|---|---|---|
//! | NEWS2 | a single parameter scoring 3 (low-medium: urgent ward-based review) | total 5-6 (medium: urgent response) | total 7 or more (high: emergency assessment) |
//! | qSOFA | | positive (2 or more) | |
//! | SIRS | positive (2 or more) | | |
//! | SOFA | | rise of 2 or more over baseline (Sepsis-3 organ dysfunction) | |
//! | septic shock | | | present |
//! | MEWS | off by default (local variants differ); configurable | | |
//!
//! Every decision carries a deterministic [`AlertId`]: the same input replayed yields the
//! same ids, so a consumer can drop redelivered duplicates.

use std::fmt;

use crate::Assessment;
use crate::rules::RuleId;
use crate::rules::news2::Risk;
use crate::time::{Span, Timestamp};

/// How urgently a rapid-response team should act.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// Review at the next round; inform the nurse in charge.
    Advisory,
    /// Urgent review by the medical team.
    Urgent,
    /// Emergency assessment by a critical-care team.
    Emergency,
}

impl Level {
    const ALL: [Level; 3] = [Level::Advisory, Level::Urgent, Level::Emergency];

    /// The name as in `contracts.md`.
    pub fn name(self) -> &'static str {
        match self {
            Level::Advisory => "advisory",
            Level::Urgent => "urgent",
            Level::Emergency => "emergency",
        }
    }
}

/// What a decision does to the alert.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// A new alert.
    Raised,
    /// A higher level while active.
    Escalated,
    /// The patient no longer meets the rule.
    Resolved,
}

impl AlertKind {
    /// The name as in `contracts.md`.
    pub fn name(self) -> &'static str {
        match self {
            AlertKind::Raised => "raised",
            AlertKind::Escalated => "escalated",
            AlertKind::Resolved => "resolved",
        }
    }
}

/// The level a rule's result reaches, per rule. `None` disables a level.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Thresholds {
    /// NEWS2 risk band for each level (`low_medium`, `medium`, `high` by default).
    pub news2: [Option<Risk>; 3],
    /// qSOFA level when positive (urgent by default).
    pub qsofa: Option<Level>,
    /// SIRS level when positive (advisory by default).
    pub sirs: Option<Level>,
    /// SOFA level on organ dysfunction (urgent by default).
    pub sofa: Option<Level>,
    /// Septic-shock level (emergency by default).
    pub septic_shock: Option<Level>,
    /// Minimum MEWS total for each level (all off by default).
    pub mews: [Option<u8>; 3],
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            news2: [Some(Risk::LowMedium), Some(Risk::Medium), Some(Risk::High)],
            qsofa: Some(Level::Urgent),
            sirs: Some(Level::Advisory),
            sofa: Some(Level::Urgent),
            septic_shock: Some(Level::Emergency),
            mews: [None, None, None],
        }
    }
}

/// How long a level (or the all-clear) must hold before it acts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Persistence {
    /// Consecutive assessments (at least 1).
    pub readings: u32,
    /// Or this much event time since it was first seen (`None`: readings only).
    pub duration: Option<Span>,
}

impl Default for Persistence {
    fn default() -> Self {
        Persistence {
            readings: 1,
            duration: None,
        }
    }
}

/// The alert policy's settings.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PolicyConfig {
    /// Levels per rule.
    pub thresholds: Thresholds,
    /// Debouncing.
    pub persistence: Persistence,
}

impl PolicyConfig {
    /// The level `rule` reaches in `a`, if any.
    pub fn level(&self, rule: RuleId, a: &Assessment) -> Option<Level> {
        let t = &self.thresholds;
        let highest = |reached: [bool; 3]| {
            Level::ALL
                .iter()
                .zip(reached)
                .rev()
                .find_map(|(l, r)| r.then_some(*l))
        };
        match rule {
            RuleId::News2 => highest(t.news2.map(|r| r.is_some_and(|r| a.news2.risk >= r))),
            RuleId::Qsofa => t.qsofa.filter(|_| a.qsofa.positive),
            RuleId::Sirs => t.sirs.filter(|_| a.sirs.positive),
            RuleId::Sofa => t.sofa.filter(|_| a.sofa.organ_dysfunction),
            RuleId::SepticShock => t.septic_shock.filter(|_| a.septic_shock.present),
            RuleId::Mews => highest(t.mews.map(|m| m.is_some_and(|m| a.mews.score >= m))),
        }
    }
}

/// One decision of the policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    /// The rule.
    pub rule: RuleId,
    /// Raised, escalated or resolved.
    pub kind: AlertKind,
    /// The level (for `resolved`, the level that was active).
    pub level: Level,
    /// The rule's score in the assessment that decided.
    pub score: u8,
    /// The evaluation instant of that assessment.
    pub observed_at: Timestamp,
    /// Which alert of this patient and rule this is (1 for the first raised).
    pub episode: u32,
}

impl Decision {
    /// The deterministic id of this decision for `patient_id`.
    pub fn alert_id(&self, patient_id: &str) -> AlertId {
        AlertId::new(patient_id, self)
    }
}

/// A deterministic alert id: 128 bits derived from the patient, the rule, the episode,
/// the kind, the level and the instant of the deciding assessment, written as 32 hex
/// digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AlertId([u64; 2]);

impl AlertId {
    fn new(patient_id: &str, d: &Decision) -> AlertId {
        let key = format!(
            "{patient_id}\u{1f}{}\u{1f}{}\u{1f}{}\u{1f}{}\u{1f}{}",
            d.rule.name(),
            d.episode,
            d.kind.name(),
            d.level.name(),
            d.observed_at.as_millis()
        );
        AlertId([
            crate::observation::digest64(key.as_bytes(), 0x243f_6a88_85a3_08d3),
            crate::observation::digest64(key.as_bytes(), 0x1319_8a2e_0370_7344),
        ])
    }
}

impl fmt::Display for AlertId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}{:016x}", self.0[0], self.0[1])
    }
}

impl serde::Serialize for AlertId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Since when, and at how many distinct assessment instants in a row, a condition has
/// held. Several observations charted at one instant (a vital-sign set arriving one
/// reading at a time) count as one reading, so a level cannot "persist" within a set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Held {
    since: Option<Timestamp>,
    last: Option<Timestamp>,
    count: u32,
}

impl Held {
    fn observe(&mut self, holds: bool, at: Timestamp) {
        if !holds {
            *self = Held::default();
            return;
        }
        self.since.get_or_insert(at);
        if self.last.is_none_or(|last| at > last) {
            self.count = self.count.saturating_add(1);
            self.last = Some(at);
        }
    }

    fn enough(&self, p: &Persistence, at: Timestamp) -> bool {
        let Some(since) = self.since else {
            return false;
        };
        self.count >= p.readings.max(1)
            || p.duration
                .is_some_and(|d| at.as_millis() - since.as_millis() >= d.as_millis())
    }
}

/// The policy state of one rule for one patient.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct RuleState {
    active: Option<Level>,
    episode: u32,
    /// Per level, how long the rule has been at or above it.
    at_least: [Held; 3],
    /// How long the rule has met no level.
    clear: Held,
}

/// The alert state of one patient: feed it every assessment, in event-time order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AlertState {
    rules: [RuleState; 6],
}

/// The decisions one assessment caused (at most one per rule).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Decisions {
    items: [Option<Decision>; 6],
}

impl Decisions {
    /// The decisions, in rule order.
    pub fn iter(&self) -> impl Iterator<Item = &Decision> {
        self.items.iter().flatten()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.items.iter().all(Option::is_none)
    }
}

impl AlertState {
    pub(crate) fn write_state(&self, w: &mut crate::state::Writer<'_>) {
        for rule in &self.rules {
            w.u8(rule.active.map_or(0, |l| l as u8 + 1));
            w.u32(rule.episode);
            for held in rule.at_least.iter().chain(std::iter::once(&rule.clear)) {
                w.opt_i64(held.since.map(Timestamp::as_millis));
                w.opt_i64(held.last.map(Timestamp::as_millis));
                w.u32(held.count);
            }
        }
    }

    pub(crate) fn read_state(
        r: &mut crate::state::Reader<'_>,
    ) -> Result<AlertState, crate::state::StateError> {
        let mut state = AlertState::default();
        for rule in &mut state.rules {
            rule.active = match r.u8()? {
                0 => None,
                1 => Some(Level::Advisory),
                2 => Some(Level::Urgent),
                3 => Some(Level::Emergency),
                _ => return Err(crate::state::StateError::Corrupt("unknown alert level")),
            };
            rule.episode = r.u32()?;
            for held in rule
                .at_least
                .iter_mut()
                .chain(std::iter::once(&mut rule.clear))
            {
                held.since = r.opt_i64()?.map(Timestamp::from_millis);
                held.last = r.opt_i64()?.map(Timestamp::from_millis);
                held.count = r.u32()?;
            }
        }
        Ok(state)
    }

    /// No alert active.
    pub fn new() -> AlertState {
        AlertState::default()
    }

    /// The active level of `rule`'s alert, if one is active.
    pub fn active(&self, rule: RuleId) -> Option<Level> {
        self.rules[index(rule)].active
    }

    /// Applies one assessment and returns what it decided.
    pub fn decide(&mut self, a: &Assessment, config: &PolicyConfig) -> Decisions {
        let mut out = Decisions::default();
        let at = a.at;
        for (slot, (rule, state)) in out
            .items
            .iter_mut()
            .zip(RuleId::ALL.iter().zip(&mut self.rules))
        {
            let level = config.level(*rule, a);
            for (l, held) in Level::ALL.iter().zip(&mut state.at_least) {
                held.observe(level.is_some_and(|x| x >= *l), at);
            }
            state.clear.observe(level.is_none(), at);
            let p = &config.persistence;
            let held_level = Level::ALL
                .iter()
                .zip(&state.at_least)
                .rev()
                .find_map(|(l, h)| h.enough(p, at).then_some(*l));
            let decision = |kind, level, episode| Decision {
                rule: *rule,
                kind,
                level,
                score: score_of(*rule, a),
                observed_at: at,
                episode,
            };
            *slot = match (state.active, held_level) {
                (None, Some(l)) => {
                    state.active = Some(l);
                    state.episode += 1;
                    Some(decision(AlertKind::Raised, l, state.episode))
                }
                (Some(active), Some(l)) if l > active => {
                    state.active = Some(l);
                    Some(decision(AlertKind::Escalated, l, state.episode))
                }
                (Some(active), _) if state.clear.enough(p, at) => {
                    state.active = None;
                    Some(decision(AlertKind::Resolved, active, state.episode))
                }
                _ => None,
            };
        }
        out
    }
}

fn index(rule: RuleId) -> usize {
    RuleId::ALL.iter().position(|r| *r == rule).unwrap_or(0)
}

fn score_of(rule: RuleId, a: &Assessment) -> u8 {
    match rule {
        RuleId::Qsofa => a.qsofa.score,
        RuleId::Sirs => a.sirs.score,
        RuleId::News2 => a.news2.score,
        RuleId::Sofa => a.sofa.score,
        RuleId::SepticShock => u8::from(a.septic_shock.present),
        RuleId::Mews => a.mews.score,
    }
}

/// A one-line human summary of what fired, for the alert `message`: the rule, its score,
/// the readings that scored (in canonical units) and the response the level calls for
/// (or, when resolved, that the patient no longer meets it).
pub fn message(rule: RuleId, kind: AlertKind, level: Level, a: &Assessment) -> String {
    use std::fmt::Write;
    let (head, criteria) = match rule {
        RuleId::News2 => (
            format!("NEWS2 {} ({})", a.news2.score, risk_name(a.news2.risk)),
            a.news2.criteria.as_slice(),
        ),
        RuleId::Qsofa => (
            format!("qSOFA {}", a.qsofa.score),
            a.qsofa.criteria.as_slice(),
        ),
        RuleId::Sirs => (format!("SIRS {}", a.sirs.score), a.sirs.criteria.as_slice()),
        RuleId::Sofa => (
            format!(
                "SOFA {} (rise {} over baseline {})",
                a.sofa.score, a.sofa.rise, a.sofa.baseline
            ),
            a.sofa.criteria.as_slice(),
        ),
        RuleId::SepticShock => (
            "Septic shock".to_owned(),
            a.septic_shock.criteria.as_slice(),
        ),
        RuleId::Mews => (format!("MEWS {}", a.mews.score), a.mews.criteria.as_slice()),
    };
    let mut text = head;
    for (i, e) in criteria.iter().filter(|e| e.points() > 0).enumerate() {
        let r = e.reading();
        let sep = if i == 0 { ": " } else { ", " };
        let _ = write!(text, "{sep}{} {}", r.param.label(), r.display());
    }
    let response = match (kind, level) {
        (AlertKind::Resolved, level) => {
            return format!("Resolved: {text} - no longer meets {}", level.name());
        }
        (_, Level::Advisory) => "review and increase monitoring",
        (_, Level::Urgent) => "urgent review",
        (_, Level::Emergency) => "emergency assessment",
    };
    let _ = write!(text, " - {response}");
    text
}

fn risk_name(r: Risk) -> &'static str {
    match r {
        Risk::Low => "low",
        Risk::LowMedium => "low-medium",
        Risk::Medium => "medium",
        Risk::High => "high",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::observation::{Observation, RawValue, Status};
    use crate::patient::Patient;

    const T0: i64 = 1_795_428_000_000;
    const MIN: i64 = 60_000;

    /// A patient fed readings at minute offsets, assessed after each minute's batch.
    struct Ward {
        patient: Patient,
        state: AlertState,
        config: Config,
        policy: PolicyConfig,
    }

    impl Ward {
        fn new(policy: PolicyConfig) -> Ward {
            Ward {
                patient: Patient::new(),
                state: AlertState::new(),
                config: Config::default(),
                policy,
            }
        }

        fn at(&mut self, minute: i64, readings: &[(&str, f64)]) -> Vec<(RuleId, AlertKind, Level)> {
            let t = Timestamp::from_millis(T0 + minute * MIN);
            for (code, v) in readings {
                let value = match *code {
                    "consciousness" => RawValue::Text(if *v > 0.0 { "C" } else { "A" }),
                    "on_oxygen" => RawValue::Bool(*v > 0.0),
                    _ => RawValue::Number(*v),
                };
                let o = Observation::new(code, value, None, t, None, Status::Final).expect("valid");
                self.patient.ingest(&o, &self.config);
            }
            let a = *self.patient.assess(t, &self.config);
            self.state
                .decide(&a, &self.policy)
                .iter()
                .map(|d| (d.rule, d.kind, d.level))
                .collect()
        }
    }

    fn vitals(rr: f64, sbp: f64, hr: f64) -> Vec<(&'static str, f64)> {
        vec![
            ("resp_rate", rr),
            ("sbp", sbp),
            ("heart_rate", hr),
            ("spo2", 97.0),
            ("on_oxygen", 0.0),
            ("consciousness", 0.0),
            ("temperature", 37.0),
        ]
    }

    #[test]
    fn news2_raises_escalates_never_reraises_and_resolves() {
        let mut w = Ward::new(PolicyConfig::default());
        assert_eq!(
            w.at(0, &vitals(16.0, 130.0, 80.0)),
            vec![],
            "stable: nothing"
        );
        // RR 25 scores 3 alone: low-medium -> advisory.
        assert_eq!(
            w.at(10, &vitals(25.0, 130.0, 80.0)),
            vec![(RuleId::News2, AlertKind::Raised, Level::Advisory)]
        );
        assert_eq!(
            w.at(20, &vitals(25.0, 130.0, 80.0)),
            vec![],
            "still advisory: no repeat"
        );
        // RR 25 (3) + SBP 95 (2) = 5: medium -> urgent; qSOFA 2 -> urgent.
        assert_eq!(
            w.at(30, &vitals(25.0, 95.0, 80.0)),
            vec![
                (RuleId::Qsofa, AlertKind::Raised, Level::Urgent),
                (RuleId::News2, AlertKind::Escalated, Level::Urgent)
            ]
        );
        // HR 135 (3) on top: 8 -> high -> emergency.
        let d = w.at(40, &vitals(25.0, 95.0, 135.0));
        assert!(
            d.contains(&(RuleId::News2, AlertKind::Escalated, Level::Emergency)),
            "{d:?}"
        );
        // Improving to medium does not de-escalate or re-raise.
        assert_eq!(
            w.at(50, &vitals(25.0, 95.0, 80.0))
                .iter()
                .filter(|d| d.0 == RuleId::News2)
                .count(),
            0
        );
        // Back to normal: resolved at the level that was active.
        let d = w.at(60, &vitals(16.0, 130.0, 80.0));
        assert!(
            d.contains(&(RuleId::News2, AlertKind::Resolved, Level::Emergency)),
            "{d:?}"
        );
        assert!(
            d.contains(&(RuleId::Qsofa, AlertKind::Resolved, Level::Urgent)),
            "{d:?}"
        );
        assert_eq!(w.state.active(RuleId::News2), None);
    }

    #[test]
    fn a_single_artefact_does_not_page_with_persistence() {
        let policy = PolicyConfig {
            persistence: Persistence {
                readings: 2,
                duration: None,
            },
            ..PolicyConfig::default()
        };
        let mut w = Ward::new(policy);
        w.at(0, &vitals(16.0, 130.0, 80.0));
        // One artefactual heart rate of 150 (NEWS2 3: low-medium), then normal again.
        assert_eq!(w.at(1, &[("heart_rate", 150.0)]), vec![]);
        assert_eq!(w.at(2, &[("heart_rate", 80.0)]), vec![]);
        // Held for two readings: raised on the second.
        assert_eq!(w.at(3, &[("heart_rate", 150.0)]), vec![]);
        let d = w.at(4, &[("heart_rate", 150.0)]);
        assert!(
            d.contains(&(RuleId::News2, AlertKind::Raised, Level::Advisory)),
            "{d:?}"
        );
        // Resolution is debounced the same way.
        assert!(
            w.at(5, &[("heart_rate", 80.0)])
                .iter()
                .all(|d| d.1 != AlertKind::Resolved)
        );
        let d = w.at(6, &[("heart_rate", 80.0)]);
        assert!(
            d.contains(&(RuleId::News2, AlertKind::Resolved, Level::Advisory)),
            "{d:?}"
        );
    }

    #[test]
    fn persistence_by_duration() {
        let policy = PolicyConfig {
            persistence: Persistence {
                readings: 100,
                duration: Some(Span::minutes(5)),
            },
            ..PolicyConfig::default()
        };
        let mut w = Ward::new(policy);
        w.at(0, &vitals(16.0, 130.0, 80.0));
        assert_eq!(w.at(1, &[("resp_rate", 26.0)]), vec![]);
        assert_eq!(w.at(5, &[("resp_rate", 26.0)]), vec![], "4 minutes held");
        let d = w.at(6, &[("resp_rate", 26.0)]);
        assert!(
            d.contains(&(RuleId::News2, AlertKind::Raised, Level::Advisory)),
            "{d:?}"
        );
    }

    #[test]
    fn septic_shock_is_an_emergency_and_ids_are_deterministic() {
        let run = || {
            let mut w = Ward::new(PolicyConfig::default());
            w.at(0, &[("norepinephrine", 0.2), ("lactate", 4.0)]);
            let a = *w.patient.assess(Timestamp::from_millis(T0), &w.config);
            let mut fresh = AlertState::new();
            let d: Vec<Decision> = fresh.decide(&a, &w.policy).iter().copied().collect();
            d
        };
        let first = run();
        let shock = first
            .iter()
            .find(|d| d.rule == RuleId::SepticShock)
            .expect("shock alert");
        assert_eq!(
            (shock.kind, shock.level, shock.episode),
            (AlertKind::Raised, Level::Emergency, 1)
        );
        let again = run();
        assert_eq!(first, again);
        let id = shock.alert_id("MRN-1");
        let replayed = again
            .iter()
            .find(|d| d.rule == RuleId::SepticShock)
            .expect("shock alert");
        assert_eq!(id, replayed.alert_id("MRN-1"));
        assert_eq!(id.to_string().len(), 32);
        assert_ne!(id, shock.alert_id("MRN-2"));
        let later = Decision {
            observed_at: Timestamp::from_millis(T0 + 1),
            ..*shock
        };
        assert_ne!(id, later.alert_id("MRN-1"));
    }

    #[test]
    fn levels_follow_the_configured_thresholds() {
        let mut policy = PolicyConfig::default();
        policy.thresholds.sirs = None;
        policy.thresholds.mews = [Some(3), Some(5), None];
        let mut w = Ward::new(policy);
        let d = w.at(0, &vitals(24.0, 130.0, 120.0));
        assert!(
            d.iter().all(|d| d.0 != RuleId::Sirs),
            "SIRS disabled: {d:?}"
        );
        assert!(
            d.contains(&(RuleId::Mews, AlertKind::Raised, Level::Advisory)),
            "MEWS 4: {d:?}"
        );
    }

    #[test]
    fn messages_name_the_readings_and_the_response() {
        let mut w = Ward::new(PolicyConfig::default());
        w.at(0, &vitals(26.0, 95.0, 115.0));
        let a = *w.patient.assess(Timestamp::from_millis(T0), &w.config);
        assert_eq!(
            message(RuleId::News2, AlertKind::Raised, Level::Emergency, &a),
            "NEWS2 7 (high): RR 26/min, SBP 95 mm[Hg], HR 115/min - emergency assessment"
        );
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            /// Per rule, decisions always form episodes: raised, then only strictly higher
            /// escalations, then resolved; never a second raise while active.
            #[test]
            fn decisions_form_well_ordered_episodes(
                steps in prop::collection::vec((4.0..40.0f64, 60.0..200.0f64, 30.0..180.0f64, 1..4u32), 1..40),
                readings in 1..4u32,
            ) {
                let policy = PolicyConfig {
                    persistence: Persistence { readings, duration: Some(Span::minutes(20)) },
                    ..PolicyConfig::default()
                };
                let mut w = Ward::new(policy);
                let mut active: [Option<Level>; 6] = [None; 6];
                let mut minute = 0;
                for (rr, sbp, hr, gap) in steps {
                    minute += i64::from(gap) * 5;
                    for (rule, kind, level) in w.at(minute, &vitals(rr, sbp, hr)) {
                        let slot = &mut active[index(rule)];
                        match kind {
                            AlertKind::Raised => {
                                prop_assert!(slot.is_none(), "{rule:?} raised while active");
                                *slot = Some(level);
                            }
                            AlertKind::Escalated => {
                                prop_assert!(slot.is_some_and(|a| level > a), "{rule:?} escalation not higher");
                                *slot = Some(level);
                            }
                            AlertKind::Resolved => {
                                prop_assert_eq!(*slot, Some(level), "{:?} resolved what was not active", rule);
                                *slot = None;
                            }
                        }
                        prop_assert_eq!(w.state.active(rule), *slot);
                    }
                }
            }
        }
    }
}
