//! The alert policy: when a patient's scores raise, escalate, report overdue and resolve
//! an alert.
//!
//! Pure logic over successive [`Assessment`]s of one patient. For every rule it keeps
//! whether an alert is active and at which level, and decides:
//!
//! - **raised** when the rule's level is reached (and held, see persistence);
//! - **escalated** when a higher level is reached while the alert is active;
//! - **overdue** when readings an active alert rests on (every parameter that scored while
//!   the alert was at a level) are no longer current: the alert stays active and the event
//!   names the overdue parameters and since when, so that someone re-measures. It is
//!   repeated when a further parameter becomes overdue, and every
//!   [`PolicyConfig::reminder`] of event time while they stay overdue;
//! - **resolved** only on *measured* recovery: the rule meets no level **and** every
//!   parameter the alert rested on has a current reading (held as well). Readings going
//!   stale never resolve an alert: missing is never normal, and absence is never recovery;
//! - nothing otherwise: an active alert is never raised again, and a lower level while
//!   active does not page anyone (the alert stays at its level until resolved).
//!
//! A rule makes at most one decision per assessment. [`crate::Tracker`] assesses once per
//! vital-sign set (every reading with the same effective time), so a set that crosses
//! several levels at once pages once, at its final level.
//!
//! **Persistence** keeps single monitor artefacts from paging: a level (or the measured
//! all-clear) counts only once it has held for `readings` consecutive assessment instants
//! (readings charted at the same instant count once) or for `duration` of event time,
//! whichever comes first. The default is held for one hour of event time
//! ([`Persistence::HELD_ONE_HOUR`]).
//!
//! Levels follow the RCP NEWS2 clinical response chart (Royal College of Physicians, 2017,
//! chart 4) and Sepsis-3 (Singer et al., JAMA 2016;315(8):801). [`Thresholds::every_rule`]
//! has every rule alert at its published threshold; the default
//! ([`Thresholds::default`]) keeps the ones that earned their pages on real ICU data
//! (EVALUATION.md: the others alerted most patients without adding utility):
//!
//! | rule | advisory | urgent | emergency | on by default |
//! |---|---|---|---|---|
//! | NEWS2 | a single parameter scoring 3 (low-medium: urgent ward-based review) | total 5-6 (medium: urgent response) | total 7 or more (high: emergency assessment) | urgent and emergency |
//! | qSOFA | | positive (2 or more) | | no |
//! | SIRS | positive (2 or more) | | | no |
//! | SOFA | | rise of 2 or more over baseline (Sepsis-3 organ dysfunction) | | no |
//! | septic shock | | | present | yes |
//! | MEWS | 3 or more (EVALUATION.md) | 5 or more (Subbe et al. 2001) | | advisory and urgent |
//!
//! Every decision carries a deterministic [`AlertId`]: the same input replayed yields the
//! same ids, so a consumer can drop redelivered duplicates.

use std::fmt;

use crate::Assessment;
use crate::config::Config;
use crate::param::ParamSet;
use crate::rules::news2::Risk;
use crate::rules::{Coverage, RuleId};
use crate::time::{MaybeTime, Span, Timestamp};
use crate::window::Window;

/// How urgently a rapid-response team should act.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
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
    /// Every level, lowest first.
    pub const ALL: [Level; 3] = [Level::Advisory, Level::Urgent, Level::Emergency];

    /// The name as in the alert events (REFERENCE.md).
    pub fn name(self) -> &'static str {
        match self {
            Level::Advisory => "advisory",
            Level::Urgent => "urgent",
            Level::Emergency => "emergency",
        }
    }
}

/// What a decision does to the alert.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// A new alert.
    Raised,
    /// A higher level while active.
    Escalated,
    /// Readings the active alert rests on are no longer current: re-measure. The alert
    /// stays active.
    Overdue,
    /// The patient no longer meets the rule, on current readings.
    Resolved,
}

impl AlertKind {
    /// The name as in the alert events (REFERENCE.md).
    pub fn name(self) -> &'static str {
        match self {
            AlertKind::Raised => "raised",
            AlertKind::Escalated => "escalated",
            AlertKind::Overdue => "overdue",
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
    /// Minimum Vigil Risk estimate, in percent, for each level (by default 3 advisory).
    pub risk: [Option<u8>; 3],
}

impl Default for Thresholds {
    /// Vigil's default alert policy, chosen for what holds up at a hospital Vigil has not
    /// seen (EVALUATION.md, "How the default policy was chosen"): Vigil Risk at its
    /// cross-validated threshold, 3 %, advisory; Sepsis-3 septic shock emergency. The
    /// bedside scores (NEWS2, MEWS, qSOFA, SIRS, SOFA) are scored and shown in every
    /// alert as its explanation but do not page: at another hospital system they kept
    /// little of the utility they had where they were chosen, and none added net benefit
    /// to Vigil Risk there or in any variant of the training data. [`Thresholds::bedside`]
    /// is the earlier, bedside-score default; [`Thresholds::every_rule`] turns every
    /// rule on.
    fn default() -> Self {
        Thresholds {
            news2: [None, None, None],
            qsofa: None,
            sirs: None,
            sofa: None,
            septic_shock: Some(Level::Emergency),
            mews: [None, None, None],
            risk: [Some(3), None, None],
        }
    }
}

impl Thresholds {
    /// The bedside-score policy, Vigil's default until the evidence of another hospital
    /// system: NEWS2 total 5 or more urgent and 7 or more emergency (RCP 2017, chart 4:
    /// urgent response, emergency assessment); MEWS 3 or more advisory (chosen on the
    /// training data: MEWS needs no oxygen reading) and 5 or more urgent (Subbe et al.,
    /// QJM 2001;94:521: 5 or more was associated with death and ICU admission); Sepsis-3
    /// septic shock emergency; Vigil Risk off. For a hospital whose escalation protocol
    /// requires the bedside scores to page.
    pub fn bedside() -> Thresholds {
        Thresholds {
            news2: [None, Some(Risk::Medium), Some(Risk::High)],
            qsofa: None,
            sirs: None,
            sofa: None,
            septic_shock: Some(Level::Emergency),
            mews: [Some(3), Some(5), None],
            risk: [None, None, None],
        }
    }

    /// Every rule alerting at its published threshold: NEWS2 a single parameter scoring 3
    /// advisory, 5 or more urgent, 7 or more emergency; qSOFA positive urgent; SIRS
    /// positive advisory; SOFA organ dysfunction urgent; septic shock emergency; MEWS off
    /// (local variants differ).
    pub fn every_rule() -> Thresholds {
        Thresholds {
            news2: [Some(Risk::LowMedium), Some(Risk::Medium), Some(Risk::High)],
            qsofa: Some(Level::Urgent),
            sirs: Some(Level::Advisory),
            sofa: Some(Level::Urgent),
            septic_shock: Some(Level::Emergency),
            mews: [None, None, None],
            risk: [None, None, None],
        }
    }
}

/// How long a level (or the all-clear) must hold before it acts: for `readings`
/// consecutive assessments, or for `duration` of event time since it was first seen,
/// whichever comes first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Persistence {
    /// Consecutive assessments; 0: by `duration` only (with no duration, 0 acts as 1).
    pub readings: u32,
    /// Event time since it was first seen (`None`: readings only).
    pub duration: Option<Span>,
}

impl Persistence {
    /// Vigil's default: held for 60 minutes of event time, however many assessments that
    /// spans. Measured in time rather than readings so that it means the same on a feed
    /// charted hourly, every 15 minutes or every minute (EVALUATION.md).
    pub const HELD_ONE_HOUR: Persistence = Persistence {
        readings: 0,
        duration: Some(Span::minutes(60)),
    };
}

impl Default for Persistence {
    /// At once: every level acts on the first assessment that reaches it.
    fn default() -> Self {
        Persistence {
            readings: 1,
            duration: None,
        }
    }
}

/// The alert policy's settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PolicyConfig {
    /// Levels per rule.
    pub thresholds: Thresholds,
    /// Debouncing.
    pub persistence: Persistence,
    /// How long (event time) an `overdue` alert waits before it is reported again while
    /// its readings stay overdue; `None`: only when a further parameter becomes overdue.
    pub reminder: Option<Span>,
}

/// The default overdue reminder interval: one hour, the NEWS2 minimum monitoring
/// frequency for a patient scoring 5 or more (RCP 2017, chart 4).
pub const DEFAULT_REMINDER: Span = Span::minutes(60);

impl Default for PolicyConfig {
    /// Vigil's default policy ([`Thresholds::default`], held one hour).
    fn default() -> Self {
        PolicyConfig {
            thresholds: Thresholds::default(),
            persistence: Persistence::HELD_ONE_HOUR,
            reminder: Some(DEFAULT_REMINDER),
        }
    }
}

impl PolicyConfig {
    /// Every rule at its published threshold ([`Thresholds::every_rule`]), acting at once.
    pub fn every_rule() -> PolicyConfig {
        PolicyConfig {
            thresholds: Thresholds::every_rule(),
            persistence: Persistence::default(),
            reminder: Some(DEFAULT_REMINDER),
        }
    }

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
            RuleId::Risk => highest(t.risk.map(|m| m.is_some_and(|m| a.risk.score >= m))),
        }
    }
}

/// One decision of the policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    /// The rule.
    pub rule: RuleId,
    /// Raised, escalated, overdue or resolved.
    pub kind: AlertKind,
    /// The level (for `overdue` and `resolved`, the level that is or was active).
    pub level: Level,
    /// The rule's score in the assessment that decided.
    pub score: u8,
    /// The evaluation instant of that assessment.
    pub observed_at: Timestamp,
    /// Which alert of this patient and rule this is (1 for the first raised).
    pub episode: u32,
    /// When this episode was raised.
    pub first_raised_at: Timestamp,
    /// The alert's level before this decision (`None` when raised).
    pub previous_level: Option<Level>,
    /// The rule's score at the patient's previous assessment (`None` at the first).
    pub previous_score: Option<u8>,
    /// How much of what the rule measures was current.
    pub coverage: Coverage,
    /// Parameters the alert rests on that have no current reading (empty when none).
    pub overdue: ParamSet,
    /// Since when the earliest of them has been overdue (its last reading turned stale).
    pub overdue_since: Option<Timestamp>,
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
        AlertId::of(&key)
    }

    fn of(key: &str) -> AlertId {
        AlertId([
            crate::observation::digest64(key.as_bytes(), 0x243f_6a88_85a3_08d3),
            crate::observation::digest64(key.as_bytes(), 0x1319_8a2e_0370_7344),
        ])
    }

    /// The id shared by every event of one decision of `patient_id` (the decisions one
    /// assessment made): derived from the patient, the instant and the events' ids, so
    /// it is as deterministic as they are. A consumer pages once per `decision_id`.
    pub fn of_decision<'d>(
        patient_id: &str,
        observed_at: Timestamp,
        decisions: impl IntoIterator<Item = &'d Decision>,
    ) -> AlertId {
        use std::fmt::Write;
        let mut key = format!(
            "decision\u{1f}{patient_id}\u{1f}{}",
            observed_at.as_millis()
        );
        for d in decisions {
            let _ = write!(key, "\u{1f}{}", d.alert_id(patient_id));
        }
        AlertId::of(&key)
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
    since: MaybeTime,
    last: MaybeTime,
    count: u32,
}

impl Held {
    fn observe(&mut self, holds: bool, at: Timestamp) {
        if !holds {
            *self = Held::default();
            return;
        }
        if self.since == MaybeTime::NONE {
            self.since = at.into();
        }
        if self.last.get().is_none_or(|last| at > last) {
            self.count = self.count.saturating_add(1);
            self.last = at.into();
        }
    }

    fn enough(&self, p: &Persistence, at: Timestamp) -> bool {
        let Some(since) = self.since.get() else {
            return false;
        };
        let readings = if p.duration.is_none() {
            p.readings.max(1)
        } else {
            p.readings
        };
        (readings > 0 && self.count >= readings)
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
    /// How long the rule has met no level on current readings.
    clear: Held,
    /// When the active episode was raised.
    first_raised_at: MaybeTime,
    /// Every parameter that scored while the active alert's rule met a level.
    rests_on: ParamSet,
    /// The overdue parameters last reported, and when.
    overdue: ParamSet,
    overdue_reported: MaybeTime,
    /// The rule's score at the previous assessment.
    last_score: Option<u8>,
}

impl RuleState {
    /// Whether overdue readings are due to be reported again at `at`: never reported in
    /// this overdue spell, or the reminder interval has passed since.
    fn reminder_due(&self, at: Timestamp, config: &PolicyConfig) -> bool {
        self.overdue_reported.get().is_none_or(|last| {
            config
                .reminder
                .is_some_and(|r| at.as_millis() - last.as_millis() >= r.as_millis())
        })
    }
}

/// Since when the earliest of `overdue` has had no current reading at `at`: its last
/// reading's time plus its staleness limit (`None` when nothing is overdue).
fn overdue_since(
    overdue: ParamSet,
    window: &Window,
    engine: &Config,
    at: Timestamp,
) -> Option<Timestamp> {
    overdue
        .iter()
        .map(|param| {
            window.last_seen(param, at).map_or(at, |t| {
                t.plus(engine.staleness.of(param.kind()))
                    .plus(Span::millis(1))
                    .min(at)
            })
        })
        .min()
}

/// The state of a rule that is quiet: no alert active and no level met, so nothing but
/// how long it has been clear, its episode count and its last score to remember. Most
/// rules of most patients are quiet, and a service holds every patient's state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct QuietRule {
    clear: Held,
    episode: u32,
    last_score: Option<u8>,
}

impl QuietRule {
    /// `state` as a quiet rule, if it is one.
    fn of(state: &RuleState) -> Option<QuietRule> {
        let quiet = RuleState {
            clear: state.clear,
            episode: state.episode,
            last_score: state.last_score,
            ..RuleState::default()
        };
        (quiet == *state).then_some(QuietRule {
            clear: state.clear,
            episode: state.episode,
            last_score: state.last_score,
        })
    }

    fn expand(self) -> RuleState {
        RuleState {
            clear: self.clear,
            episode: self.episode,
            last_score: self.last_score,
            ..RuleState::default()
        }
    }
}

/// The alert state of one patient: feed it every assessment, in event-time order.
///
/// Held compactly: while every rule is quiet (about 30 bytes each) the
/// full per-rule state is not stored; once any rule meets a level or has an alert
/// active, all six rules' full state is kept on the heap until they are all quiet again.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AlertState {
    quiet: [QuietRule; RULES],
    /// Every rule's full state, while any rule is not quiet (then `quiet` is unused).
    busy: Option<Box<[RuleState; RULES]>>,
    /// When the patient's latest reading was received (the service's receive time), for
    /// reminders between readings ([`crate::Tracker::remind`]).
    last_received: MaybeTime,
}

/// The decisions one assessment caused (at most one per rule).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Decisions {
    items: [Option<Decision>; RULES],
}

impl Decisions {
    /// The decisions, in rule order.
    pub fn iter(&self) -> impl Iterator<Item = &Decision> {
        self.items.iter().flatten()
    }

    /// Forgets every decision (in place: no whole new value is written).
    pub(crate) fn clear(&mut self) {
        self.items.fill(None);
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.items.iter().all(Option::is_none)
    }
}

impl AlertState {
    /// Every rule's state, in [`RuleId::ALL`] order.
    fn rules(&self) -> [RuleState; RULES] {
        match &self.busy {
            Some(full) => **full,
            None => self.quiet.map(QuietRule::expand),
        }
    }

    /// Stores every rule's state, compactly when every rule is quiet.
    fn set_rules(&mut self, rules: [RuleState; RULES]) {
        let mut quiet = [QuietRule::default(); RULES];
        let all_quiet = rules
            .iter()
            .zip(&mut quiet)
            .all(|(r, q)| QuietRule::of(r).map(|of| *q = of).is_some());
        if all_quiet {
            self.quiet = quiet;
            self.busy = None;
        } else {
            // One representation per state, so that equal states compare equal.
            self.quiet = [QuietRule::default(); RULES];
            match &mut self.busy {
                Some(full) => **full = rules,
                None => self.busy = Some(Box::new(rules)),
            }
        }
    }

    pub(crate) fn write_state(&self, w: &mut crate::state::Writer<'_>) {
        let rules = self.rules();
        let (before, risk) = rules.split_at(RULES_BEFORE_RISK);
        write_levels(w, before);
        // Version 2: what the episode rests on, its overdue reports and the last score.
        write_episodes(w, before);
        w.opt_i64(self.last_received.get().map(Timestamp::as_millis));
        // Version 4: Vigil Risk's state, in the same two parts.
        write_levels(w, risk);
        write_episodes(w, risk);
    }

    pub(crate) fn read_state(
        r: &mut crate::state::Reader<'_>,
        version: u8,
    ) -> Result<AlertState, crate::state::StateError> {
        let mut state = AlertState::default();
        let mut rules = [RuleState::default(); RULES];
        let (before, risk) = rules.split_at_mut(RULES_BEFORE_RISK);
        read_levels(r, before)?;
        if version >= 2 {
            read_episodes(r, before)?;
            state.last_received = r.opt_i64()?.map(Timestamp::from_millis).into();
        }
        if version >= 4 {
            read_levels(r, risk)?;
            read_episodes(r, risk)?;
        }
        state.set_rules(rules);
        Ok(state)
    }

    /// No alert active.
    pub fn new() -> AlertState {
        AlertState::default()
    }

    /// The active level of `rule`'s alert, if one is active.
    pub fn active(&self, rule: RuleId) -> Option<Level> {
        self.rules()[index(rule)].active
    }

    /// `rule`'s score at the patient's latest decision (`None` before the first).
    pub fn last_score(&self, rule: RuleId) -> Option<u8> {
        self.rules()[index(rule)].last_score
    }

    /// When the active alert of `rule` was raised, if one is active.
    pub fn first_raised_at(&self, rule: RuleId) -> Option<Timestamp> {
        let r = &self.rules()[index(rule)];
        r.active.and_then(|_| r.first_raised_at.get())
    }

    /// Every rule's active alert, in [`RuleId::ALL`] order: its level, and whether
    /// readings it rests on were reported overdue (until they are measured again or the
    /// alert resolves). `None` where no alert is active.
    pub fn active_alerts(&self) -> [Option<(Level, bool)>; RULES] {
        match &self.busy {
            None => [None; RULES],
            Some(full) => full.map(|r| r.active.map(|l| (l, !r.overdue.is_empty()))),
        }
    }

    /// Whether any rule's alert is active.
    pub fn any_active(&self) -> bool {
        self.busy
            .as_ref()
            .is_some_and(|full| full.iter().any(|r| r.active.is_some()))
    }

    /// When the patient's latest reading was received, if recorded.
    pub fn last_received(&self) -> Option<Timestamp> {
        self.last_received.get()
    }

    /// Records when a reading of the patient was received.
    pub fn note_received(&mut self, at: Timestamp) {
        self.last_received = self.last_received.get().map_or(at, |l| l.max(at)).into();
    }

    /// Between readings, the only decision the passage of time may make: report active
    /// alerts whose readings are overdue (when a further parameter became overdue, or the
    /// reminder interval passed). Levels, persistence and resolution are untouched: with
    /// no new reading nothing can be measured, so nothing is raised, escalated or
    /// resolved.
    pub fn remind(
        &mut self,
        a: &Assessment,
        window: &Window,
        engine: &Config,
        config: &PolicyConfig,
    ) -> Decisions {
        let basis = Basis { a, window, engine };
        self.each_rule(|rule, state| {
            let at = a.at;
            state.active?;
            let overdue = state.rests_on.intersection(a.missing(rule));
            if overdue.is_empty()
                || (overdue.is_subset(state.overdue) && !state.reminder_due(at, config))
            {
                return None;
            }
            state.overdue = overdue;
            state.overdue_reported = at.into();
            let previous = (state.active, state.last_score);
            basis.decision(rule, AlertKind::Overdue, state, previous, overdue)
        })
    }

    /// Runs `decide` for every rule with its state, collecting the decisions.
    fn each_rule(
        &mut self,
        mut decide: impl FnMut(RuleId, &mut RuleState) -> Option<Decision>,
    ) -> Decisions {
        let mut out = Decisions::default();
        let mut rules = self.rules();
        for (slot, (rule, state)) in out.items.iter_mut().zip(RuleId::ALL.iter().zip(&mut rules)) {
            *slot = decide(*rule, state);
        }
        self.set_rules(rules);
        out
    }

    /// Applies one assessment of `window` (made with `engine`) and returns what it
    /// decided. The window is read only to say since when overdue readings are overdue.
    pub fn decide(
        &mut self,
        a: &Assessment,
        window: &Window,
        engine: &Config,
        config: &PolicyConfig,
    ) -> Decisions {
        if self.stays_quiet(a, config) {
            return Decisions::default();
        }
        self.decide_each(a, window, engine, config)
    }

    /// The common case of [`AlertState::decide`], taken without expanding the state:
    /// every rule is quiet and meets no level at `a`, so each stays quiet, clear once
    /// more, with its new score, and nothing is decided. False (nothing changed) when
    /// the full decision must be taken. It gives exactly what the full decision gives
    /// (a property test holds them equal).
    fn stays_quiet(&mut self, a: &Assessment, config: &PolicyConfig) -> bool {
        self.stays_quiet_scored(a, &[true; RULES], config)
    }

    /// [`AlertState::stays_quiet`] on an assessment that holds only the rules marked
    /// `scored`; the others are known to be unchanged since the last decision, which
    /// took this shortcut (so they are quiet, below every level, with their score kept).
    pub(crate) fn stays_quiet_scored(
        &mut self,
        a: &Assessment,
        scored: &[bool; RULES],
        config: &PolicyConfig,
    ) -> bool {
        if self.busy.is_some()
            || RuleId::ALL
                .iter()
                .zip(scored)
                .any(|(r, s)| *s && config.level(*r, a).is_some())
        {
            return false;
        }
        for ((rule, quiet), s) in RuleId::ALL.iter().zip(&mut self.quiet).zip(scored) {
            quiet.clear.observe(true, a.at);
            if *s {
                quiet.last_score = Some(a.score(*rule));
            }
        }
        true
    }

    /// [`AlertState::decide`] rule by rule on the full state.
    fn decide_each(
        &mut self,
        a: &Assessment,
        window: &Window,
        engine: &Config,
        config: &PolicyConfig,
    ) -> Decisions {
        let basis = Basis { a, window, engine };
        let at = a.at;
        self.each_rule(|rule, state| {
            let level = config.level(rule, a);
            let score = a.score(rule);
            let scoring = a.criteria(rule).iter().filter(|e| e.points() > 0).fold(
                ParamSet::EMPTY,
                |mut set, e| {
                    set.insert(e.reading().param);
                    set
                },
            );
            let overdue = if state.active.is_some() {
                state.rests_on.intersection(a.missing(rule))
            } else {
                ParamSet::EMPTY
            };
            for (l, held) in Level::ALL.iter().zip(&mut state.at_least) {
                held.observe(level.is_some_and(|x| x >= *l), at);
            }
            // The all-clear is measured: no level, and nothing the alert rests on unmeasured.
            state
                .clear
                .observe(level.is_none() && overdue.is_empty(), at);
            let p = &config.persistence;
            let held_level = Level::ALL
                .iter()
                .zip(&state.at_least)
                .rev()
                .find_map(|(l, h)| h.enough(p, at).then_some(*l));
            let previous_score = state.last_score.replace(score);
            let previous_level = state.active;
            let reminder_due = state.reminder_due(at, config);
            let kind = match (state.active, held_level) {
                (None, Some(l)) => {
                    state.active = Some(l);
                    state.episode += 1;
                    state.first_raised_at = at.into();
                    state.rests_on = ParamSet::EMPTY;
                    state.overdue = ParamSet::EMPTY;
                    state.overdue_reported = MaybeTime::NONE;
                    Some(AlertKind::Raised)
                }
                (Some(active), Some(l)) if l > active => {
                    state.active = Some(l);
                    Some(AlertKind::Escalated)
                }
                (Some(_), _) if state.clear.enough(p, at) => Some(AlertKind::Resolved),
                (Some(_), _)
                    if !overdue.is_empty()
                        && (!overdue.is_subset(state.overdue) || reminder_due) =>
                {
                    Some(AlertKind::Overdue)
                }
                _ => None,
            };
            if state.active.is_some() && level.is_some() {
                state.rests_on = state.rests_on.union(scoring);
            }
            if overdue.is_empty() {
                state.overdue = ParamSet::EMPTY;
                state.overdue_reported = MaybeTime::NONE;
            } else if kind.is_some() {
                // Every event of an episode names what is overdue, so once one is sent
                // the nurse has been told.
                state.overdue = overdue;
                state.overdue_reported = at.into();
            }
            let decision = basis.decision(
                rule,
                kind?,
                state,
                (previous_level, previous_score),
                overdue,
            );
            if kind == Some(AlertKind::Resolved) {
                state.active = None;
                state.first_raised_at = MaybeTime::NONE;
                state.rests_on = ParamSet::EMPTY;
                state.overdue = ParamSet::EMPTY;
                state.overdue_reported = MaybeTime::NONE;
            }
            decision
        })
    }
}

/// What a decision is taken on: the assessment, the window it was made of and the engine
/// settings (for since when overdue readings are overdue).
struct Basis<'a> {
    a: &'a Assessment,
    window: &'a Window,
    engine: &'a Config,
}

impl Basis<'_> {
    /// The decision of `kind` for `rule`, whose state holds the active level and episode
    /// (read before a resolution clears them); `previous` is the level and score before.
    fn decision(
        &self,
        rule: RuleId,
        kind: AlertKind,
        state: &RuleState,
        previous: (Option<Level>, Option<u8>),
        overdue: ParamSet,
    ) -> Option<Decision> {
        let at = self.a.at;
        Some(Decision {
            rule,
            kind,
            level: state.active?,
            score: self.a.score(rule),
            observed_at: at,
            episode: state.episode,
            first_raised_at: state.first_raised_at.get().unwrap_or(at),
            previous_level: previous.0,
            previous_score: previous.1,
            coverage: self.a.coverage(rule),
            overdue,
            overdue_since: overdue_since(overdue, self.window, self.engine, at),
        })
    }
}

fn write_levels(w: &mut crate::state::Writer<'_>, rules: &[RuleState]) {
    for rule in rules {
        w.u8(rule.active.map_or(0, |l| l as u8 + 1));
        w.u32(rule.episode);
        for held in rule.at_least.iter().chain(std::iter::once(&rule.clear)) {
            w.opt_i64(held.since.get().map(Timestamp::as_millis));
            w.opt_i64(held.last.get().map(Timestamp::as_millis));
            w.u32(held.count);
        }
    }
}

fn write_episodes(w: &mut crate::state::Writer<'_>, rules: &[RuleState]) {
    for rule in rules {
        w.opt_i64(rule.first_raised_at.get().map(Timestamp::as_millis));
        w.u32(rule.rests_on.bits());
        w.u32(rule.overdue.bits());
        w.opt_i64(rule.overdue_reported.get().map(Timestamp::as_millis));
        w.opt_i64(rule.last_score.map(i64::from));
    }
}

fn read_levels(
    r: &mut crate::state::Reader<'_>,
    rules: &mut [RuleState],
) -> Result<(), crate::state::StateError> {
    for rule in rules {
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
            held.since = r.opt_i64()?.map(Timestamp::from_millis).into();
            held.last = r.opt_i64()?.map(Timestamp::from_millis).into();
            held.count = r.u32()?;
        }
    }
    Ok(())
}

fn read_episodes(
    r: &mut crate::state::Reader<'_>,
    rules: &mut [RuleState],
) -> Result<(), crate::state::StateError> {
    for rule in rules {
        rule.first_raised_at = r.opt_i64()?.map(Timestamp::from_millis).into();
        rule.rests_on = ParamSet::from_bits(r.u32()?);
        rule.overdue = ParamSet::from_bits(r.u32()?);
        rule.overdue_reported = r.opt_i64()?.map(Timestamp::from_millis).into();
        rule.last_score = match r.opt_i64()? {
            None => None,
            Some(v) => Some(
                u8::try_from(v)
                    .map_err(|_| crate::state::StateError::Corrupt("score out of range"))?,
            ),
        };
    }
    Ok(())
}

/// How many rules the policy keeps state for ([`RuleId::ALL`]).
pub const RULES: usize = RuleId::ALL.len();

/// The rules whose state versions 1-3 of the stored state hold (every rule before Vigil
/// Risk); version 4 appends Vigil Risk's.
const RULES_BEFORE_RISK: usize = 6;

fn index(rule: RuleId) -> usize {
    RuleId::ALL.iter().position(|r| *r == rule).unwrap_or(0)
}

/// A one-line human summary of a decision, for the alert `message`: the rule, its score,
/// the readings that scored (in canonical units), how much of the rule was measured, and
/// the response the level calls for (or, when overdue, what to re-measure; when resolved,
/// that the patient no longer meets it).
pub fn message(d: &Decision, a: &Assessment) -> String {
    use std::fmt::Write;
    let rule = d.rule;
    let mut text = match rule {
        RuleId::News2 => format!("NEWS2 {} ({})", a.news2.score, risk_name(a.news2.risk)),
        RuleId::Qsofa => format!("qSOFA {}", a.qsofa.score),
        RuleId::Sirs => format!("SIRS {}", a.sirs.score),
        RuleId::Sofa => format!(
            "SOFA {} (rise {} over baseline {})",
            a.sofa.score, a.sofa.rise, a.sofa.baseline
        ),
        RuleId::SepticShock => "Septic shock".to_owned(),
        RuleId::Mews => format!("MEWS {}", a.mews.score),
        RuleId::Risk => format!("Vigil Risk {} % (a statistical estimate)", a.risk.score),
    };
    for (i, e) in a
        .criteria(rule)
        .iter()
        .filter(|e| e.points() > 0)
        .enumerate()
    {
        let r = e.reading();
        let sep = if i == 0 { ": " } else { ", " };
        if rule == RuleId::Risk {
            let _ = write!(
                text,
                "{sep}{} {} ({}) +{:.1}",
                r.param.label(),
                r.display(),
                e.criterion(),
                f64::from(e.points()) / 10.0
            );
        } else {
            let _ = write!(text, "{sep}{} {}", r.param.label(), r.display());
        }
    }
    if rule == RuleId::Risk
        && let Some((first, w)) = a.risk.observed
        && w > 0.0
    {
        let hours = (a.at.as_millis() - first.as_millis()) / 3_600_000;
        let _ = write!(text, ", observed {hours} h +{w:.1}");
    }
    let c = d.coverage;
    let _ = write!(text, "; {} of {} measured", c.measured, c.of);
    if !c.missing.is_empty() {
        let _ = write!(text, ", missing: {}", names(c.missing));
    }
    match d.kind {
        AlertKind::Resolved => format!("Resolved: {text} - no longer meets {}", d.level.name()),
        AlertKind::Overdue => {
            let since = d
                .overdue_since
                .map_or_else(String::new, |t| format!(" (no current reading since {t})"));
            format!(
                "Overdue: {} {} alert active since {} rests on readings no longer current: \
                 re-measure {}{since}. Now {text}",
                rule.label(),
                d.level.name(),
                d.first_raised_at,
                names(d.overdue)
            )
        }
        kind => {
            let response = match d.level {
                Level::Advisory => "review and increase monitoring",
                Level::Urgent => "urgent review",
                Level::Emergency => "emergency assessment",
            };
            let _ = write!(text, " - {response}");
            if kind != AlertKind::Raised && !d.overdue.is_empty() {
                let _ = write!(text, "; re-measure {}", names(d.overdue));
            }
            text
        }
    }
}

/// Parameter codes, comma-separated.
fn names(set: ParamSet) -> String {
    set.iter().map(|p| p.code()).collect::<Vec<_>>().join(", ")
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
    use crate::param::Param;
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
            self.decide_at(minute, readings)
                .iter()
                .map(|d| (d.rule, d.kind, d.level))
                .collect()
        }

        fn decide_at(&mut self, minute: i64, readings: &[(&str, f64)]) -> Vec<Decision> {
            let t = self.chart(minute, readings);
            self.decide(t)
        }

        /// Charts `readings` at `minute` without deciding; returns their time.
        fn chart(&mut self, minute: i64, readings: &[(&str, f64)]) -> Timestamp {
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
            t
        }

        /// Assesses at `t` (no new reading) and decides.
        fn decide(&mut self, t: Timestamp) -> Vec<Decision> {
            let a = *self.patient.assess(t, &self.config);
            self.state
                .decide(&a, self.patient.window(), &self.config, &self.policy)
                .iter()
                .copied()
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
        let mut w = Ward::new(PolicyConfig::every_rule());
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
            ..PolicyConfig::every_rule()
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
    fn the_bedside_policy_pages_news2_5_and_7_after_an_hour_held() {
        let bedside = PolicyConfig {
            thresholds: Thresholds::bedside(),
            ..PolicyConfig::default()
        };
        let mut w = Ward::new(bedside);
        // RR 25 (3) + SBP 95 (2) = NEWS2 5; MEWS 3 (RR 2, SBP 1); qSOFA positive too,
        // but qSOFA does not page.
        let high = vitals(25.0, 95.0, 80.0);
        assert_eq!(w.at(0, &high), vec![]);
        // 59 minutes held: not yet (edge below).
        assert_eq!(w.at(59, &high), vec![]);
        // 60 minutes held: NEWS2 urgent and MEWS advisory (edge at); nothing else.
        let mut d = w.at(60, &high);
        d.sort_by_key(|x| x.0 as u8);
        assert_eq!(
            d,
            vec![
                (RuleId::News2, AlertKind::Raised, Level::Urgent),
                (RuleId::Mews, AlertKind::Raised, Level::Advisory)
            ]
        );
        // A single parameter scoring 3 alone (NEWS2 low-medium) never pages.
        let mut w = Ward::new(bedside);
        for minute in [0, 60, 120] {
            assert_eq!(w.at(minute, &vitals(25.0, 130.0, 80.0)), vec![]);
        }
        // The all-clear must hold an hour too.
        let mut w = Ward::new(bedside);
        w.at(0, &high);
        w.at(60, &high);
        // RR 12 scores nothing in NEWS2 (12-20) nor MEWS (9-14).
        let normal = vitals(12.0, 130.0, 80.0);
        assert_eq!(w.at(61, &normal), vec![]);
        assert_eq!(w.at(120, &normal), vec![]);
        let mut d = w.at(121, &normal);
        d.sort_by_key(|x| x.0 as u8);
        assert_eq!(
            d,
            vec![
                (RuleId::News2, AlertKind::Resolved, Level::Urgent),
                (RuleId::Mews, AlertKind::Resolved, Level::Advisory)
            ]
        );
    }

    #[test]
    fn persistence_by_time_only_ignores_how_many_readings_arrive() {
        let policy = PolicyConfig {
            persistence: Persistence::HELD_ONE_HOUR,
            ..PolicyConfig::every_rule()
        };
        let mut w = Ward::new(policy);
        // A monitor sending every minute: 59 readings in a row are not an hour.
        for minute in 0..60 {
            assert_eq!(
                w.at(minute, &[("heart_rate", 150.0)]),
                vec![],
                "minute {minute}"
            );
        }
        let d = w.at(60, &[("heart_rate", 150.0)]);
        assert!(
            d.contains(&(RuleId::News2, AlertKind::Raised, Level::Advisory)),
            "{d:?}"
        );
        // With neither a count nor a duration, 0 readings acts as 1: never "never".
        let at_once = PolicyConfig {
            persistence: Persistence {
                readings: 0,
                duration: None,
            },
            ..PolicyConfig::every_rule()
        };
        let mut w = Ward::new(at_once);
        let d = w.at(0, &[("heart_rate", 150.0)]);
        assert!(
            d.contains(&(RuleId::News2, AlertKind::Raised, Level::Advisory)),
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
            ..PolicyConfig::every_rule()
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
            let mut w = Ward::new(PolicyConfig::every_rule());
            w.at(0, &[("norepinephrine", 0.2), ("lactate", 4.0)]);
            let a = *w.patient.assess(Timestamp::from_millis(T0), &w.config);
            let mut fresh = AlertState::new();
            let d: Vec<Decision> = fresh
                .decide(&a, w.patient.window(), &w.config, &w.policy)
                .iter()
                .copied()
                .collect();
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
        let mut policy = PolicyConfig::every_rule();
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
    fn messages_name_the_readings_the_coverage_and_the_response() {
        let mut w = Ward::new(PolicyConfig::every_rule());
        let d = w.decide_at(0, &vitals(26.0, 95.0, 115.0));
        let news2 = d.iter().find(|d| d.rule == RuleId::News2).expect("raised");
        let a = *w.patient.assess(Timestamp::from_millis(T0), &w.config);
        assert_eq!(
            message(news2, &a),
            "NEWS2 7 (high): RR 26/min, SBP 95 mm[Hg], HR 115/min; 7 of 7 measured - emergency assessment"
        );
        // A partial set says what it rests on.
        let mut w = Ward::new(PolicyConfig::every_rule());
        let d = w.decide_at(
            0,
            &[("resp_rate", 26.0), ("heart_rate", 135.0), ("spo2", 97.0)],
        );
        let news2 = d.iter().find(|d| d.rule == RuleId::News2).expect("raised");
        assert_eq!((news2.coverage.measured, news2.coverage.of), (3, 7));
        let a = *w.patient.assess(Timestamp::from_millis(T0), &w.config);
        assert_eq!(
            message(news2, &a),
            "NEWS2 6 (medium): RR 26/min, HR 135/min; 3 of 7 measured, missing: sbp, \
             temperature, on_oxygen, consciousness - urgent review"
        );
    }

    #[test]
    fn stale_vitals_make_an_alert_overdue_never_resolved() {
        // Defect 1 of the alert-semantics issue: emergency alerts from a vital-sign set
        // taken 8 h earlier were resolved when a normal lactate arrived.
        let mut w = Ward::new(PolicyConfig::every_rule());
        let raised = w.at(0, &vitals(30.0, 85.0, 140.0));
        assert!(raised.contains(&(RuleId::News2, AlertKind::Raised, Level::Emergency)));
        assert!(raised.contains(&(RuleId::Qsofa, AlertKind::Raised, Level::Urgent)));
        let later = w.decide_at(8 * 60, &[("lactate", 1.0)]);
        assert!(
            later.iter().all(|d| d.kind != AlertKind::Resolved),
            "{later:?}"
        );
        let news2 = later
            .iter()
            .find(|d| d.rule == RuleId::News2)
            .expect("NEWS2 overdue");
        assert_eq!(
            (news2.kind, news2.level),
            (AlertKind::Overdue, Level::Emergency)
        );
        assert!(news2.overdue.contains(Param::RespRate), "{news2:?}");
        assert!(news2.overdue.contains(Param::Sbp), "{news2:?}");
        // The vitals of minute 0 turned stale 6 h later.
        assert_eq!(
            news2.overdue_since,
            Some(Timestamp::from_millis(T0 + 6 * 60 * MIN + 1))
        );
        assert_eq!(news2.first_raised_at, Timestamp::from_millis(T0));
        assert_eq!(news2.previous_level, Some(Level::Emergency));
        assert_eq!(w.state.active(RuleId::News2), Some(Level::Emergency));
        // Not repeated within the reminder interval; repeated after it.
        assert!(w.decide_at(8 * 60 + 30, &[("lactate", 1.1)]).is_empty());
        let reminder = w.decide_at(9 * 60, &[("lactate", 1.2)]);
        assert!(
            reminder
                .iter()
                .any(|d| d.rule == RuleId::News2 && d.kind == AlertKind::Overdue),
            "{reminder:?}"
        );
        // A partial re-measurement that is normal does not resolve NEWS2 or qSOFA: SBP is
        // still unmeasured. (SIRS rested on RR and HR only, both now measured normal: that
        // is its measured recovery.)
        let partial = w.at(9 * 60 + 10, &[("resp_rate", 16.0), ("heart_rate", 80.0)]);
        assert!(
            partial
                .iter()
                .all(|d| d.1 != AlertKind::Resolved || d.0 == RuleId::Sirs),
            "{partial:?}"
        );
        assert_eq!(w.state.active(RuleId::News2), Some(Level::Emergency));
        // A full normal set is measured recovery.
        let recovered = w.at(9 * 60 + 20, &vitals(16.0, 130.0, 80.0));
        assert!(
            recovered.contains(&(RuleId::News2, AlertKind::Resolved, Level::Emergency)),
            "{recovered:?}"
        );
        assert!(
            recovered.contains(&(RuleId::Qsofa, AlertKind::Resolved, Level::Urgent)),
            "{recovered:?}"
        );
    }

    #[test]
    fn events_carry_the_previous_level_and_score() {
        let mut w = Ward::new(PolicyConfig::every_rule());
        w.at(0, &vitals(16.0, 130.0, 80.0));
        let raised = w.decide_at(10, &vitals(25.0, 130.0, 80.0));
        let r = raised
            .iter()
            .find(|d| d.rule == RuleId::News2)
            .expect("raised");
        assert_eq!(
            (r.previous_level, r.previous_score, r.score),
            (None, Some(0), 3)
        );
        let up = w.decide_at(20, &vitals(25.0, 95.0, 80.0));
        let e = up
            .iter()
            .find(|d| d.rule == RuleId::News2)
            .expect("escalated");
        assert_eq!(e.kind, AlertKind::Escalated);
        assert_eq!(
            (e.previous_level, e.previous_score, e.score),
            (Some(Level::Advisory), Some(3), 5)
        );
        assert_eq!(e.first_raised_at, Timestamp::from_millis(T0 + 10 * MIN));
    }

    #[test]
    fn the_quiet_shortcut_is_taken_only_while_every_rule_is_quiet() {
        let mut w = Ward::new(PolicyConfig::every_rule());
        let t = |minute: i64| Timestamp::from_millis(T0 + minute * MIN);
        w.decide_at(0, &vitals(16.0, 130.0, 80.0));
        let well = *w.patient.assess(t(0), &w.config);
        assert!(w.state.clone().stays_quiet(&well, &w.policy));
        // A level met: the full decision raises it.
        w.decide_at(10, &vitals(25.0, 95.0, 80.0));
        let ill = *w.patient.assess(t(10), &w.config);
        assert!(!w.state.clone().stays_quiet(&ill, &w.policy));
        // Active alerts: the full decision, even on a well assessment.
        assert!(w.state.any_active());
        assert!(!w.state.clone().stays_quiet(&well, &w.policy));
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            /// The quiet shortcut of `decide` changes nothing: on every assessment, with
            /// alerts raised, held and resolved between quiet spells, it gives the same
            /// decisions and the same state as the full decision rule by rule.
            #[test]
            fn the_quiet_shortcut_decides_as_the_full_rule(
                steps in prop::collection::vec(
                    (4.0..40.0f64, 60.0..200.0f64, 30.0..180.0f64, 0..128u8, 1..240i64),
                    1..40),
                readings in 0..4u32,
                every_rule in any::<bool>(),
            ) {
                let policy = PolicyConfig {
                    persistence: Persistence { readings, duration: Some(Span::minutes(30)) },
                    ..if every_rule { PolicyConfig::every_rule() } else { PolicyConfig::default() }
                };
                let mut w = Ward::new(policy);
                let mut full = AlertState::new();
                let mut minute = 0;
                for (rr, sbp, hr, mask, gap) in steps {
                    minute += gap;
                    let set: Vec<_> = vitals(rr, sbp, hr)
                        .into_iter()
                        .enumerate()
                        .filter(|(i, _)| mask & (1 << i) == 0)
                        .map(|(_, r)| r)
                        .collect();
                    let t = w.chart(minute, &set);
                    let a = *w.patient.assess(t, &w.config);
                    let window = w.patient.window();
                    let shortcut = w.state.decide(&a, window, &w.config, &w.policy);
                    let each = full.decide_each(&a, window, &w.config, &w.policy);
                    prop_assert_eq!(shortcut, each);
                    prop_assert_eq!(&w.state, &full);
                }
            }

            /// Per rule, decisions always form episodes: raised, then only strictly higher
            /// escalations, then resolved; never a second raise while active.
            #[test]
            fn decisions_form_well_ordered_episodes(
                steps in prop::collection::vec((4.0..40.0f64, 60.0..200.0f64, 30.0..180.0f64, 1..4u32), 1..40),
                readings in 1..4u32,
            ) {
                let policy = PolicyConfig {
                    persistence: Persistence { readings, duration: Some(Span::minutes(20)) },
                    ..PolicyConfig::every_rule()
                };
                let mut w = Ward::new(policy);
                let mut active: [Option<Level>; RULES] = [None; RULES];
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
                            AlertKind::Overdue => {
                                prop_assert_eq!(*slot, Some(level), "{:?} overdue while not active", rule);
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

            /// Readings going stale never produce a `resolved`: evaluations at later
            /// instants with no new reading (time passing, inputs turning stale) may report
            /// an alert overdue but never resolve it, and every `resolved` comes with every
            /// parameter its episode rested on measured.
            #[test]
            fn readings_going_stale_never_resolve(
                steps in prop::collection::vec(
                    (4.0..40.0f64, 60.0..200.0f64, 30.0..180.0f64, 0..128u8, 0..3u8, 1..600i64),
                    1..30),
                reminder in prop::option::of(30..240i64),
            ) {
                let policy = PolicyConfig {
                    reminder: reminder.map(Span::minutes),
                    ..PolicyConfig::every_rule()
                };
                let mut w = Ward::new(policy);
                let mut minute = 0;
                for (rr, sbp, hr, mask, op, gap) in steps {
                    minute += gap;
                    if op == 0 {
                        // Time passes with no new reading.
                        let t = Timestamp::from_millis(T0 + minute * MIN);
                        for d in w.decide(t) {
                            prop_assert!(d.kind != AlertKind::Resolved, "resolved by time alone: {d:?}");
                        }
                        continue;
                    }
                    // A vital-sign set, some of it not taken.
                    let set: Vec<_> = vitals(rr, sbp, hr)
                        .into_iter()
                        .enumerate()
                        .filter(|(i, _)| mask & (1 << i) == 0)
                        .map(|(_, r)| r)
                        .collect();
                    for d in w.decide_at(minute, &set) {
                        if d.kind == AlertKind::Resolved {
                            prop_assert!(d.overdue.is_empty(), "{d:?}");
                        }
                    }
                }
            }
        }
    }
}
