//! One patient under watch: the window and the alert state, deciding once
//! per vital-sign set.
//!
//! A nurse charts a set of vital signs with one time; a monitor gateway or an interface
//! engine may send it as one message or as one message per reading. If the policy
//! decided after every reading, a set that crosses several levels would page several
//! times in the same instant (NEWS2 advisory, then urgent, then emergency). [`Tracker`]
//! holds the decision back while readings of the same set keep arriving: a reading whose
//! evaluation instant differs from the pending one first decides the pending set, and
//! [`Tracker::flush`] decides the last one (the service calls it at the end of every
//! batch). Every reading of a set is therefore applied before the policy decides, and a
//! rule emits at most one event per set, at its final level.
//!
//! The evaluation instant is the patient's newest reading time, never later than the
//! `limit` the caller passes (the service: receive time plus the clock tolerance), so no
//! reading dated in the future can move a patient's evaluation ahead of real time.
//!
//! A decision scores the six published rules afresh, with one exception on the service's
//! hot path ([`Tracker::ingest_into`], [`Tracker::flush_into`]): while a patient is quiet
//! (no alert active, no rule at any level), the tracker remembers until when each rule's
//! result holds without a new reading of its inputs (64 bytes, not the kilobyte of a
//! cached assessment), and the next decision re-scores only the rules that a new reading
//! or the passage of time can have changed. If they all stay below every level nothing
//! is decided, as the full decision would; otherwise the other rules are scored too and
//! the full decision is taken. A property test holds this equal to scoring every rule
//! every time. Vigil Risk, when it is scored at all
//! (`Config::score_risk`), is scored incrementally from a memo the tracker keeps only
//! then: it reads 43 features of 14 parameters, and afresh it would cost several times
//! the six rules together (BENCHMARKS.md, "Vigil Risk on the hot path").

use crate::Assessment;
use crate::alert::{AlertState, Decisions, PolicyConfig};
use crate::config::Config;
use crate::observation::Observation;
use crate::rules::{Inputs, RuleId, risk};
use crate::time::{MaybeTime, Span, Timestamp};
use crate::window::{Ingested, Window};

/// A patient's window and alert state, with the set awaiting a decision.
#[derive(Clone, Debug, Default)]
pub struct Tracker {
    /// The readings. A decision scores the six published rules afresh: a decision is
    /// taken once per set, not per reading, and a cached assessment would be a kilobyte
    /// per patient held between sets.
    window: Window,
    alerts: AlertState,
    /// The evaluation instant of the set applied but not yet decided.
    pending: MaybeTime,
    /// Vigil Risk's memo and last result, kept only while it is scored.
    risk: Option<Box<RiskState>>,
    /// What the last decision scored, while the patient is quiet (hot path only).
    scored: Option<Scored>,
}

/// How many rules are published scores (the first ones of [`RuleId::ALL`]; Vigil Risk is
/// last).
const PUBLISHED: usize = 6;

/// What a quiet patient's last decision on the hot path scored: the instant, and until
/// when each published rule's result holds without a new reading of its inputs. Every
/// rule was quiet and below every level then.
#[derive(Clone, Copy, Debug)]
struct Scored {
    /// The evaluation instant.
    at: Timestamp,
    /// Per published rule, the first instant at which its result may differ (a reading
    /// it used turns stale or leaves its span). (SOFA's baseline, the other thing a rule
    /// reads, is fixed for a tracker's life: it comes with the restored state.)
    until: [Timestamp; PUBLISHED],
}

/// What a tracker keeps of Vigil Risk between decisions ([`risk::score_incremental`]).
#[derive(Clone, Debug, Default)]
struct RiskState {
    memo: Option<Box<risk::Memo>>,
    last: risk::Risk,
}

/// What one decision produced: the assessment it was taken on and the policy's decisions
/// (often none).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Outcome {
    /// The assessment.
    pub assessment: Assessment,
    /// The decisions, at most one per rule.
    pub decisions: Decisions,
}

impl Tracker {
    /// A patient with no readings and no alert.
    pub fn new() -> Tracker {
        Tracker::default()
    }

    /// A patient restored from a window and an alert state (nothing pending).
    pub fn from_parts(window: Window, alerts: AlertState) -> Tracker {
        Tracker {
            window,
            alerts,
            pending: MaybeTime::NONE,
            risk: None,
            scored: None,
        }
    }

    /// The window.
    pub fn window(&self) -> &Window {
        &self.window
    }

    /// The alert state.
    pub fn alerts(&self) -> &AlertState {
        &self.alerts
    }

    /// Whether a set awaits its decision.
    pub fn is_pending(&self) -> bool {
        self.pending.get().is_some()
    }

    /// Applies one observation. If it belongs to another set than the pending one (its
    /// evaluation instant differs), the pending set is decided first and returned.
    /// `limit` caps the evaluation instant (`None`: no cap, for offline replays).
    pub fn ingest(
        &mut self,
        obs: &Observation,
        limit: Option<Timestamp>,
        config: &Config,
        policy: &PolicyConfig,
    ) -> (Ingested, Option<Outcome>) {
        let mut out = Outcome::default();
        let (ingested, decided) = self.apply(obs, limit, config, policy, &mut out, Scoring::Full);
        (ingested, decided.then_some(out))
    }

    /// [`Tracker::ingest`] writing the decision, if the reading caused one, into `out`
    /// (returning whether it did) instead of returning it: the form for a hot loop that
    /// keeps one [`Outcome`] for every patient, so no assessment is moved per reading.
    /// A decision that decides nothing may score only the rules that can have changed
    /// (see the module's documentation): then `out`'s assessment holds only those, and
    /// whatever else it held before. When something is decided it is a full assessment.
    pub fn ingest_into(
        &mut self,
        obs: &Observation,
        limit: Option<Timestamp>,
        config: &Config,
        policy: &PolicyConfig,
        out: &mut Outcome,
    ) -> (Ingested, bool) {
        self.apply(obs, limit, config, policy, out, Scoring::Changed)
    }

    fn apply(
        &mut self,
        obs: &Observation,
        limit: Option<Timestamp>,
        config: &Config,
        policy: &PolicyConfig,
        out: &mut Outcome,
        scoring: Scoring,
    ) -> (Ingested, bool) {
        let newest = self
            .window()
            .newest()
            .map_or_else(|| obs.effective(), |n| n.max(obs.effective()));
        let next = cap(newest, limit);
        let decided = match self.pending.get() {
            Some(p) if p != next => self.decide_pending(config, policy, out, scoring),
            _ => false,
        };
        let memo = self.risk.as_mut().and_then(|r| r.memo.as_mut());
        let outcome = match memo {
            // Vigil Risk updates a parameter's extremes from what the window dropped.
            Some(memo) => self
                .window
                .ingest_noting(obs, &config.staleness, memo.dropped()),
            None => self.window.ingest(obs, &config.staleness),
        };
        if matches!(
            outcome,
            Ingested::Accepted | Ingested::Amended | Ingested::Withdrawn
        ) && let Some(n) = self.window().newest()
        {
            self.pending = cap(n, limit).into();
        }
        (outcome, decided)
    }

    /// Records when the service received a reading of the patient (for [`Self::remind`]).
    pub fn note_received(&mut self, at: Timestamp) {
        self.alerts.note_received(at);
    }

    /// Between readings: with the wall clock at `now`, reports active alerts whose
    /// readings have become overdue. The patient's event time is taken to have advanced
    /// as much as the wall clock since its latest reading was received (`newest + (now -
    /// received)`), so a replay of past data is judged by the time elapsed since it was
    /// replayed, not by the years since it was measured. Nothing when a set is pending,
    /// no alert is active, or no time has passed; an [`Outcome`] (perhaps without
    /// decisions) otherwise.
    pub fn remind(
        &mut self,
        now: Timestamp,
        config: &Config,
        policy: &PolicyConfig,
    ) -> Option<Outcome> {
        if self.pending.get().is_some() || !self.alerts.any_active() {
            return None;
        }
        let newest = self.window().newest()?;
        let received = self.alerts.last_received()?;
        let elapsed = now.as_millis() - received.as_millis();
        if elapsed <= 0 {
            return None;
        }
        let at = newest.plus(Span::millis(elapsed));
        Some(self.assess_and(at, config, policy, AlertState::remind))
    }

    /// Decides the pending set, if any.
    pub fn flush(&mut self, config: &Config, policy: &PolicyConfig) -> Option<Outcome> {
        let mut out = Outcome::default();
        self.decide_pending(config, policy, &mut out, Scoring::Full)
            .then_some(out)
    }

    /// [`Tracker::flush`] into `out` (see [`Tracker::ingest_into`], also for what `out`
    /// holds when nothing is decided); whether a set was pending and decided.
    pub fn flush_into(
        &mut self,
        config: &Config,
        policy: &PolicyConfig,
        out: &mut Outcome,
    ) -> bool {
        self.decide_pending(config, policy, out, Scoring::Changed)
    }

    /// Decides the pending set, if any, into `out`; whether there was one.
    fn decide_pending(
        &mut self,
        config: &Config,
        policy: &PolicyConfig,
        out: &mut Outcome,
        scoring: Scoring,
    ) -> bool {
        let Some(at) = std::mem::take(&mut self.pending).get() else {
            return false;
        };
        match scoring {
            Scoring::Changed => {
                let Some(kept) = self.decides_quietly(at, config, policy, out) else {
                    return true;
                };
                // The rules left as they were are scored too: nothing of the outcome's
                // previous patient stays.
                let inputs = Inputs::new(&self.window, at, config);
                for (rule, kept) in RuleId::ALL[..PUBLISHED].iter().zip(kept) {
                    if kept {
                        out.assessment.update_rule(*rule, &inputs);
                    }
                }
            }
            // Every rule is re-scored: nothing of the outcome's previous patient stays.
            Scoring::Full => self.assess_into(at, config, &mut out.assessment),
        }
        out.decisions = AlertState::decide(
            &mut self.alerts,
            &out.assessment,
            &self.window,
            config,
            policy,
        );
        true
    }

    /// The hot path's decision at `at`: re-scores the published rules that can have
    /// changed since the last quiet decision (all of them if there was none) and Vigil
    /// Risk into `out`. `None` when they all stay quiet and below every level, so nothing
    /// is decided (`out` then holds the re-scored rules only); otherwise the full
    /// decision must be taken, and the published rules not re-scored are named (`true`).
    fn decides_quietly(
        &mut self,
        at: Timestamp,
        config: &Config,
        policy: &PolicyConfig,
        out: &mut Outcome,
    ) -> Option<[bool; PUBLISHED]> {
        let previous = self.scored.take().filter(|s| at >= s.at);
        let changes = self.window.take_changes();
        let inputs = Inputs::new(&self.window, at, config);
        let a = &mut out.assessment;
        let mut until = [Timestamp::from_millis(i64::MIN); PUBLISHED];
        let mut fresh = [true; RuleId::ALL.len()];
        for (i, rule) in RuleId::ALL[..PUBLISHED].iter().enumerate() {
            if let Some(s) = &previous
                && at < s.until[i]
                && !changes
                    .params
                    .intersects(crate::patient::rule_inputs(*rule, config))
            {
                until[i] = s.until[i];
                fresh[i] = false;
                continue;
            }
            inputs.take_horizon();
            a.update_rule(*rule, &inputs);
            until[i] = inputs.take_horizon();
        }
        a.at = at;
        score_risk(&mut self.risk, &inputs, changes, config, a);
        if !self.alerts.stays_quiet_scored(a, &fresh, policy) {
            return Some(std::array::from_fn(|i| !fresh[i]));
        }
        out.decisions.clear();
        self.scored = Some(Scored { at, until });
        None
    }

    /// Assesses the patient at `at` and lets the alert policy's `step` (a decision on
    /// new readings, or a reminder between them) decide on the assessment.
    fn assess_and(
        &mut self,
        at: Timestamp,
        config: &Config,
        policy: &PolicyConfig,
        step: fn(&mut AlertState, &Assessment, &Window, &Config, &PolicyConfig) -> Decisions,
    ) -> Outcome {
        let mut assessment = Assessment::default();
        self.assess_into(at, config, &mut assessment);
        let decisions = step(&mut self.alerts, &assessment, &self.window, config, policy);
        Outcome {
            assessment,
            decisions,
        }
    }

    /// Scores every rule at `at` into `a`: the six published ones afresh, Vigil Risk (if
    /// scored) from its memo.
    fn assess_into(&mut self, at: Timestamp, config: &Config, a: &mut Assessment) {
        // Whatever the hot path remembered no longer follows from the last decision.
        self.scored = None;
        let changes = self.window.take_changes();
        let inputs = Inputs::new(&self.window, at, config);
        a.update_published(&inputs);
        score_risk(&mut self.risk, &inputs, changes, config, a);
    }
}

/// Scores Vigil Risk into `a`: from the tracker's memo (`state`), or (when it is not
/// scored, `Config::score_risk` off) as a full assessment would, without keeping a memo.
fn score_risk(
    state: &mut Option<Box<RiskState>>,
    inputs: &Inputs<'_>,
    changes: crate::window::Changes,
    config: &Config,
    a: &mut Assessment,
) {
    if !config.score_risk {
        *state = None;
        risk::score_into(inputs, &mut a.risk);
        return;
    }
    let state = state.get_or_insert_with(Box::default);
    risk::score_incremental(inputs, changes, &mut state.memo, &mut state.last);
    a.risk = state.last;
}

/// How a decision scores the published rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scoring {
    /// All of them (what callers given the assessment need).
    Full,
    /// Only those that can have changed while the patient stays quiet (the hot path).
    Changed,
}

fn cap(t: Timestamp, limit: Option<Timestamp>) -> Timestamp {
    limit.map_or(t, |l| t.min(l))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::{AlertKind, Level};
    use crate::observation::{RawValue, Status};
    use crate::rules::RuleId;

    const T0: i64 = 1_795_428_000_000;

    fn obs(code: &str, v: f64, minute: i64) -> Observation {
        let value = match code {
            "consciousness" => RawValue::Text("A"),
            "on_oxygen" => RawValue::Bool(v > 0.0),
            _ => RawValue::Number(v),
        };
        Observation::new(
            code,
            value,
            None,
            Timestamp::from_millis(T0 + minute * 60_000),
            None,
            Status::Final,
        )
        .expect("valid")
    }

    /// What a service holds per patient besides the readings themselves: the window's
    /// fixed part, the alert state (seven rules, with Vigil Risk), a pointer to Vigil
    /// Risk's memo (held only while Vigil Risk is scored) and, for a quiet patient, until
    /// when each published rule's result holds (64 bytes); no cached assessment.
    #[test]
    fn a_tracker_is_small() {
        assert!(size_of::<Tracker>() <= 424, "{}", size_of::<Tracker>());
    }

    #[test]
    fn a_set_sent_reading_by_reading_decides_once_at_its_final_level() {
        let (config, policy) = (Config::default(), PolicyConfig::every_rule());
        let mut t = Tracker::new();
        let set = [
            ("resp_rate", 30.0),
            ("spo2", 88.0),
            ("sbp", 85.0),
            ("heart_rate", 140.0),
            ("temperature", 39.2),
        ];
        for (code, v) in set {
            let (ingested, decided) = t.ingest(&obs(code, v, 0), None, &config, &policy);
            assert_eq!(ingested, Ingested::Accepted);
            assert!(decided.is_none(), "decided mid-set after {code}");
        }
        let out = t.flush(&config, &policy).expect("a decision");
        let news2: Vec<_> = out
            .decisions
            .iter()
            .filter(|d| d.rule == RuleId::News2)
            .map(|d| (d.kind, d.level))
            .collect();
        assert_eq!(news2, vec![(AlertKind::Raised, Level::Emergency)]);
        assert!(t.flush(&config, &policy).is_none(), "nothing left pending");
        // The next set's first reading does not decide anything new by itself.
        let (_, decided) = t.ingest(&obs("resp_rate", 31.0, 60), None, &config, &policy);
        assert!(decided.is_none());
    }

    #[test]
    fn the_evaluation_instant_never_passes_the_limit() {
        let (config, policy) = (Config::default(), PolicyConfig::every_rule());
        let mut t = Tracker::new();
        let limit = Timestamp::from_millis(T0 + 5 * 60_000);
        t.ingest(
            &obs("heart_rate", 150.0, 60 * 24 * 365),
            Some(limit),
            &config,
            &policy,
        );
        let out = t.flush(&config, &policy).expect("decided");
        assert_eq!(out.assessment.at, limit);
        assert_eq!(
            out.assessment.news2.components.heart_rate, 0,
            "not in view yet"
        );
    }

    #[test]
    fn time_alone_reports_overdue_readings_and_never_resolves() {
        let (config, policy) = (Config::default(), PolicyConfig::every_rule());
        let mut t = Tracker::new();
        let received = Timestamp::from_millis(T0 + 60_000);
        for (code, v) in [("resp_rate", 30.0), ("sbp", 85.0), ("heart_rate", 140.0)] {
            t.ingest(&obs(code, v, 0), None, &config, &policy);
            t.note_received(received);
        }
        t.flush(&config, &policy).expect("raised");
        let at = |hours: i64| Timestamp::from_millis(received.as_millis() + hours * 3_600_000);
        let five = t.remind(at(5), &config, &policy).expect("assessed");
        assert!(five.decisions.is_empty(), "still current after 5 h");
        let seven = t.remind(at(7), &config, &policy).expect("assessed");
        let kinds: Vec<_> = seven.decisions.iter().map(|d| (d.rule, d.kind)).collect();
        assert!(
            kinds.contains(&(RuleId::News2, AlertKind::Overdue)),
            "{kinds:?}"
        );
        assert!(
            kinds.contains(&(RuleId::Qsofa, AlertKind::Overdue)),
            "{kinds:?}"
        );
        assert!(
            kinds.iter().all(|(_, k)| *k == AlertKind::Overdue),
            "{kinds:?}"
        );
        assert_eq!(
            seven.assessment.at,
            Timestamp::from_millis(T0 + 7 * 3_600_000)
        );
        // Not again until the reminder interval has passed; then again.
        let later = t
            .remind(at(7).plus(Span::minutes(30)), &config, &policy)
            .expect("assessed");
        assert!(later.decisions.is_empty());
        let reminder = t.remind(at(8), &config, &policy).expect("assessed");
        assert!(!reminder.decisions.is_empty());
        assert_eq!(t.alerts().active(RuleId::News2), Some(Level::Emergency));
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        const CODES: [(&str, f64, f64); 7] = [
            ("resp_rate", 4.0, 40.0),
            ("spo2", 80.0, 100.0),
            ("sbp", 60.0, 200.0),
            ("heart_rate", 30.0, 180.0),
            ("temperature", 34.0, 41.0),
            ("on_oxygen", 0.0, 1.0),
            ("consciousness", 0.0, 1.0),
        ];

        type Set = (i64, Vec<(usize, f64)>);

        fn run(sets: &[Set], order: &[u64], flush_each: &[bool]) -> Vec<String> {
            let (config, policy) = (Config::default(), PolicyConfig::every_rule());
            let mut t = Tracker::new();
            let mut out = Vec::new();
            let mut record = |o: Option<Outcome>| {
                for d in o.iter().flat_map(|o| o.decisions.iter()) {
                    out.push(format!("{:?}", d));
                }
            };
            for (i, (minute, readings)) in sets.iter().enumerate() {
                let mut readings = readings.clone();
                // A permutation of the set's readings from the order seed.
                let seed = order.get(i).copied().unwrap_or(0);
                readings.sort_by_key(|(code, _)| (*code as u64).wrapping_mul(seed | 1) % 7919);
                for (code, f) in readings {
                    let (name, lo, hi) = CODES[code];
                    let o = obs(name, lo + (hi - lo) * f, *minute);
                    let (_, decided) = t.ingest(&o, None, &config, &policy);
                    record(decided);
                }
                if flush_each.get(i).copied().unwrap_or(true) {
                    record(t.flush(&config, &policy));
                }
            }
            record(t.flush(&config, &policy));
            out
        }

        /// Vital signs, labs, a vasopressor and flags: every published rule's inputs.
        const MANY: [(&str, f64, f64); 16] = [
            ("heart_rate", 30.0, 180.0),
            ("resp_rate", 5.0, 40.0),
            ("sbp", 60.0, 230.0),
            ("temperature", 33.0, 41.0),
            ("spo2", 70.0, 100.0),
            ("gcs", 3.0, 15.0),
            ("lactate", 0.5, 10.0),
            ("norepinephrine", 0.0, 0.5),
            ("platelets", 5.0, 400.0),
            ("map", 40.0, 110.0),
            ("pao2", 40.0, 300.0),
            ("fio2", 0.21, 1.0),
            ("creatinine", 0.5, 6.0),
            ("wbc", 1.0, 30.0),
            ("on_oxygen", 0.0, 1.0),
            ("consciousness", 0.0, 1.0),
        ];

        /// Reading `code` of [`MANY`] at fraction `f` of its range, with id `id` (0: none)
        /// and status final, amended or entered in error.
        fn any_obs(code: usize, f: f64, minute: i64, id: u8, status: u8) -> Observation {
            let (name, lo, hi) = MANY[code];
            let value = match name {
                "on_oxygen" => RawValue::Bool(f > 0.5),
                "consciousness" => RawValue::Text(if f > 0.7 { "V" } else { "A" }),
                "gcs" => RawValue::Number((lo + (hi - lo) * f).round()),
                _ => RawValue::Number(lo + (hi - lo) * f),
            };
            let id = format!("{name}-{id}");
            let status = match status {
                _ if id.ends_with("-0") => Status::Final,
                0..=5 => Status::Final,
                6 => Status::Amended,
                _ => Status::EnteredInError,
            };
            Observation::new(
                name,
                value,
                None,
                Timestamp::from_millis(T0 + minute * 60_000),
                (!id.ends_with("-0")).then_some(id.as_str()),
                status,
            )
            .expect("valid")
        }

        proptest! {
            /// The decisions for a vital-sign set do not depend on the order of its
            /// readings, nor on whether sets arrive in one batch or several.
            #[test]
            fn decisions_do_not_depend_on_order_or_grouping(
                sets in prop::collection::vec(
                    (1..240i64, prop::collection::btree_map(0..CODES.len(), 0.0..1.0f64, 1..=CODES.len())),
                    1..12),
                order in prop::collection::vec(any::<u64>(), 12),
                flush_each in prop::collection::vec(any::<bool>(), 12),
            ) {
                let mut minute = 0;
                let sets: Vec<Set> = sets
                    .into_iter()
                    .map(|(gap, readings)| {
                        minute += gap;
                        (minute, readings.into_iter().collect())
                    })
                    .collect();
                let reference = run(&sets, &[], &[]);
                prop_assert_eq!(run(&sets, &order, &flush_each), reference);
            }

            /// Every decision's assessment is a full assessment of the window at its instant,
            /// Vigil Risk's (scored from the tracker's memo) included, over long feeds of
            /// sets and readings out of order, and with time passing between them.
            #[test]
            fn a_decision_assesses_as_a_full_assessment(
                sets in prop::collection::vec(
                    (0..30i64, prop::collection::vec((0..CODES.len(), 0..9u8), 1..4), 0..8u8),
                    1..120),
            ) {
                let (config, policy) = (Config::default(), PolicyConfig::every_rule());
                prop_assert!(config.score_risk);
                let mut t = Tracker::new();
                let mut minute = 0;
                for (gap, readings, late) in sets {
                    minute += gap;
                    // Now and then a set measured hours before the last.
                    let when = if late == 7 { minute - 180 } else { minute };
                    for (code, f) in readings {
                        let (name, lo, hi) = CODES[code];
                        let o = obs(name, lo + (hi - lo) * f64::from(f) / 8.0, when);
                        let _ = t.ingest(&o, None, &config, &policy);
                    }
                    t.note_received(Timestamp::from_millis(T0 + minute * 60_000));
                    if let Some(o) = t.flush(&config, &policy) {
                        let full = crate::assess(t.window(), o.assessment.at, &config);
                        prop_assert_eq!(&o.assessment, &full);
                    }
                    // Time passing alone (a reminder) assesses later instants.
                    let now = Timestamp::from_millis(T0 + (minute + 45) * 60_000);
                    if let Some(o) = t.remind(now, &config, &policy) {
                        let full = crate::assess(t.window(), o.assessment.at, &config);
                        prop_assert_eq!(&o.assessment, &full);
                    }
                }
            }

            /// The hot path, which re-scores only the rules that can have changed while a
            /// patient is quiet, decides exactly as scoring every rule every time, and
            /// leaves the same alert state: over long feeds with time passing (readings
            /// turning stale), sets measured hours late, labs that move SOFA's baseline,
            /// reminders between sets, and an outcome shared with another patient.
            #[test]
            fn scoring_only_the_changed_rules_decides_as_scoring_every_rule(
                sets in prop::collection::vec(
                    (0..400i64, prop::collection::vec((0..MANY.len(), 0..9u8, 0..6u8, 0..8u8), 1..5), 0..10u8),
                    1..100),
                risk in any::<bool>(),
            ) {
                let config = Config { score_risk: risk, ..Config::default() };
                let policy = PolicyConfig::every_rule();
                let (mut full, mut hot, mut other) = (Tracker::new(), Tracker::new(), Tracker::new());
                let mut shared = Outcome::default();
                let mut minute = 0;
                for (gap, readings, late) in sets {
                    minute += gap;
                    // Now and then a set measured hours before the last.
                    let when = if late == 9 { minute - 300 } else { minute };
                    for (code, f, id, status) in readings {
                        let o = any_obs(code, f64::from(f) / 8.0, when, id, status);
                        let (_, expected) = full.ingest(&o, None, &config, &policy);
                        let (_, decided) = hot.ingest_into(&o, None, &config, &policy, &mut shared);
                        prop_assert_eq!(decided, expected.is_some());
                        if let Some(expected) = expected {
                            prop_assert_eq!(&shared.decisions, &expected.decisions);
                            if !expected.decisions.is_empty() {
                                prop_assert_eq!(&shared.assessment, &expected.assessment);
                            }
                        }
                        prop_assert_eq!(hot.alerts(), full.alerts());
                        // Another patient's decision written into the same outcome.
                        let o = any_obs((code + 5) % MANY.len(), 1.0 - f64::from(f) / 8.0, when, 0, 0);
                        let _ = other.ingest_into(&o, None, &config, &policy, &mut shared);
                    }
                    let expected = full.flush(&config, &policy);
                    let decided = hot.flush_into(&config, &policy, &mut shared);
                    prop_assert_eq!(decided, expected.is_some());
                    if let Some(expected) = expected {
                        prop_assert_eq!(&shared.decisions, &expected.decisions);
                    }
                    prop_assert_eq!(hot.alerts(), full.alerts());
                    let received = Timestamp::from_millis(T0 + minute * 60_000);
                    full.note_received(received);
                    hot.note_received(received);
                    if late == 3 {
                        // Time passing alone: a reminder between sets.
                        let now = Timestamp::from_millis(T0 + (minute + 90) * 60_000);
                        prop_assert_eq!(
                            hot.remind(now, &config, &policy),
                            full.remind(now, &config, &policy)
                        );
                        prop_assert_eq!(hot.alerts(), full.alerts());
                    }
                }
            }

            /// Decisions written into one outcome shared by two patients (as the service
            /// keeps one) are the ones each patient's own fresh outcome gets: nothing of
            /// the other patient's assessment stays in it.
            #[test]
            fn an_outcome_shared_by_patients_decides_as_a_fresh_one(
                a in prop::collection::vec((0..CODES.len(), 0.0..1.0f64), 1..40),
                b in prop::collection::vec((0..CODES.len(), 0.0..1.0f64), 1..40),
            ) {
                let (config, policy) = (Config::default(), PolicyConfig::every_rule());
                let (mut fresh_a, mut fresh_b) = (Tracker::new(), Tracker::new());
                let (mut shared_a, mut shared_b) = (Tracker::new(), Tracker::new());
                let mut shared = Outcome::default();
                for (i, ((ca, fa), (cb, fb))) in a.iter().zip(b.iter()).enumerate() {
                    let minute = i as i64 * 10;
                    for (code, f, fresh, tracker) in [
                        (*ca, *fa, &mut fresh_a, &mut shared_a),
                        (*cb, *fb, &mut fresh_b, &mut shared_b),
                    ] {
                        let (name, lo, hi) = CODES[code];
                        let o = obs(name, lo + (hi - lo) * f, minute);
                        let (_, expected) = fresh.ingest(&o, None, &config, &policy);
                        let (_, decided) = tracker.ingest_into(&o, None, &config, &policy, &mut shared);
                        prop_assert_eq!(decided, expected.is_some());
                        if let Some(expected) = expected {
                            prop_assert_eq!(&shared.decisions, &expected.decisions);
                            // A decision that decides something comes with its full
                            // assessment (one that decides nothing may hold only the
                            // rules it re-scored).
                            if !expected.decisions.is_empty() {
                                prop_assert_eq!(&shared, &expected);
                            }
                        }
                    }
                }
            }
        }
    }
}
