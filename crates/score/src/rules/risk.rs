//! Vigil Risk as a rule: the shipped model's estimate ([`crate::risk`]) in whole percent,
//! with the readings that raised it most as evidence.
//!
//! Unlike the published scores this is a statistical estimate learned from one hospital
//! system's ICU stays (the model card: CLINICAL.md, "Vigil Risk"). Its evidence lists the
//! features that added most to the log-odds, each with its reading and what it added (in
//! tenths of log-odds as the criterion's points); every parameter the model could not
//! read is listed as missing, never taken as normal.

use super::{Criteria, Inputs};
use crate::param::Param;
use crate::param::ParamSet;
use crate::risk::{Input, RiskModel, Stat, percent, probability};
use crate::time::{Span, Timestamp};
use crate::window::{Extremes, Reading};

/// The span of the 24-hour extremes.
const DAY: Span = Span::hours(24);

const FAR: Timestamp = Timestamp::from_millis(i64::MAX);

/// The most contributions kept as evidence.
pub const EVIDENCE: usize = 5;

/// A Vigil Risk result.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct Risk {
    /// The estimate in whole percent (rounded down).
    pub score: u8,
    /// The estimated log-odds.
    #[serde(skip)]
    pub log_odds: f64,
    /// The readings that raised the estimate most, largest first; points are tenths of
    /// log-odds.
    pub criteria: Criteria<EVIDENCE>,
    /// Since when the patient has been observed, and what the hours since then added to
    /// the log-odds.
    #[serde(skip)]
    pub observed: Option<(crate::time::Timestamp, f64)>,
    /// Parameters the model reads with no current value.
    pub missing: ParamSet,
}

/// Every parameter the shipped model reads.
pub fn inputs() -> ParamSet {
    RiskModel::shipped().params()
}

/// The criterion text of a statistic.
fn criterion(stat: Stat) -> &'static &'static str {
    match stat {
        Stat::Now => &"current value",
        Stat::Max6h => &"highest in 6 h",
        Stat::Min6h => &"lowest in 6 h",
        Stat::Change6h => &"change over 6 h",
        Stat::Max24h => &"highest in 24 h",
        Stat::Min24h => &"lowest in 24 h",
        Stat::Age => &"hours since measured",
    }
}

/// Scores the configured model (`Config::risk`) into `out`; with `Config::score_risk`
/// off, a score of 0 with every input missing.
pub fn score_into(inputs: &Inputs<'_>, out: &mut Risk) {
    let config = inputs.config();
    if config.score_risk {
        score_model_into(&config.risk, inputs, out);
    } else {
        let missing = config.risk.params();
        // The same result every time: written only when the storage holds another.
        if out.missing != missing
            || out.score != 0
            || out.log_odds != 0.0
            || out.observed.is_some()
            || !out.criteria.as_slice().is_empty()
        {
            *out = Risk {
                missing,
                ..Risk::default()
            };
        }
    }
}

/// Scores `model` into `out`, reusing its storage: every feature computed afresh.
pub fn score_model_into(model: &RiskModel, inputs: &Inputs<'_>, out: &mut Risk) {
    let n = model.features.len();
    let groups = model.layout().groups.len();
    // Scratch for the bins and groups: on the stack for a model of the usual size.
    let (mut bins_stack, mut groups_stack) = ([NONE; 64], [GroupState::DUE; 32]);
    let mut heap: (Vec<u8>, Vec<GroupState>);
    let (bins, states): (&mut [u8], &mut [GroupState]) = if n <= 64 && groups <= 32 {
        (&mut bins_stack[..n], &mut groups_stack[..groups])
    } else {
        heap = (vec![NONE; n], vec![GroupState::DUE; groups]);
        (&mut heap.0[..], &mut heap.1[..])
    };
    // Every feature's reading, kept for the evidence (no second pass over a history).
    let mut readings = [None; 64];
    let readings = if n <= 64 { &mut readings[..n] } else { &mut [] };
    let (_, extremes) = rescore(model, inputs, bins, states, readings, |_, _| true);
    assemble(
        model,
        inputs,
        (bins, states, readings),
        (Fresh::All, extremes),
        &[],
        out,
    );
}

/// A bin no value fell in: the feature is missing.
const NONE: u8 = u8::MAX;

/// One group of features ([`crate::risk::Layout::groups`]) as last scored.
#[derive(Clone, Copy, Debug, PartialEq)]
struct GroupState {
    /// The first instant it may change without a new reading.
    until: Timestamp,
    /// What its features added to the log-odds, summed in their order from 0.
    subtotal: f64,
    /// Whether any of its features has a value.
    present: bool,
    /// The most any of them added, rounded up to an `f32` (a bound that lets the
    /// evidence search pass over the group without reading its features).
    best: f32,
}

impl GroupState {
    /// Never scored: due at once.
    const DUE: GroupState = GroupState {
        until: Timestamp::from_millis(i64::MIN),
        subtotal: 0.0,
        present: false,
        best: f32::NEG_INFINITY,
    };
}

/// Evidence is what added at least this much (one tenth, rounded) to the log-odds.
const EVIDENCE_FROM: f64 = 0.05;

/// What Vigil Risk remembers of one patient between two scorings, so that a new reading
/// re-scores only the features of its parameter ([`crate::Patient`] keeps one while
/// Vigil Risk is scored): each feature's bin, and each group's horizon and sum. About
/// 470 bytes for the shipped model.
#[derive(Clone, Debug, PartialEq)]
pub struct Memo {
    /// When it was last scored.
    at: Timestamp,
    /// The window's first reading then (the hours observed count from it).
    first: Option<Timestamp>,
    /// Per feature, the bin its value fell in ([`NONE`]: missing).
    bins: Box<[u8]>,
    /// Per group.
    groups: Box<[GroupState]>,
    /// The features behind the result's criteria, in their order.
    top: [u8; EVIDENCE],
    /// How many of `top` are in use.
    kept: u8,
}

impl Memo {
    /// The window's first reading when it was last scored.
    pub(crate) fn first(&self) -> Option<Timestamp> {
        self.first
    }
}

/// Scores the configured model into `out` as [`score_into`] does, but re-scores only the
/// groups of features whose parameter is in `changed` (changed since the last scoring),
/// whose horizon has passed, or (the hours observed) whose first reading moved;
/// everything when `memo` is empty, was made for another model or was scored later than
/// `inputs.at()`. A property test holds it equal to [`score_into`].
pub(crate) fn score_incremental(
    inputs: &Inputs<'_>,
    changed: ParamSet,
    memo: &mut Option<Box<Memo>>,
    out: &mut Risk,
) {
    let config = inputs.config();
    let model = &*config.risk;
    let (n, groups) = (model.features.len(), model.layout().groups.len());
    // Evidence is remembered by a feature's index in a byte.
    if !config.score_risk || n > usize::from(NONE) {
        *memo = None;
        score_into(inputs, out);
        return;
    }
    let (at, first) = (inputs.at(), inputs.window().first());
    let reusable = memo
        .as_ref()
        .is_some_and(|m| m.bins.len() == n && m.groups.len() == groups && m.at <= at);
    let m = match memo {
        Some(m) if reusable => m,
        _ => memo.insert(Box::new(Memo {
            at,
            first,
            bins: vec![NONE; n].into_boxed_slice(),
            groups: vec![GroupState::DUE; groups].into_boxed_slice(),
            top: [0; EVIDENCE],
            kept: 0,
        })),
    };
    let first_moved = m.first != first;
    let (fresh, extremes) = rescore(
        model,
        inputs,
        &mut m.bins,
        &mut m.groups,
        &mut [],
        |group, until| {
            at >= until
                || match group.param {
                    Some(p) => changed.contains(p),
                    None => first_moved,
                }
        },
    );
    let previous = &m.top[..usize::from(m.kept)];
    let (top, kept) = assemble(
        model,
        inputs,
        (&m.bins, &m.groups, &[]),
        (Fresh::Mask(fresh), extremes),
        previous,
        out,
    );
    m.top = top;
    m.kept = kept;
    m.at = at;
    m.first = first;
}

/// Which groups a scoring computed afresh.
#[derive(Clone, Copy)]
enum Fresh {
    All,
    /// Bit `g` for group `g` (groups from 128 on count as fresh).
    Mask(u128),
}

impl Fresh {
    fn contains(self, group: usize) -> bool {
        match self {
            Fresh::All => true,
            Fresh::Mask(mask) => group >= 128 || mask & (1 << group) != 0,
        }
    }
}

/// Computes the bin of every feature, and the horizon and sum of every group, that `due`
/// selects (given the group and its horizon so far), keeping each feature's reading in
/// `readings` if it has room. Returns which groups it computed, and the history pass of
/// the last parameter it read.
fn rescore(
    model: &RiskModel,
    inputs: &Inputs<'_>,
    bins: &mut [u8],
    states: &mut [GroupState],
    readings: &mut [Option<Reading>],
    due: impl Fn(&crate::risk::Group, Timestamp) -> bool,
) -> (u128, Option<(Param, Extremes)>) {
    let (window, at) = (inputs.window(), inputs.at());
    let staleness = &inputs.config().staleness;
    let (slots, layout) = (model.slots(), model.layout());
    let mut fresh = 0u128;
    // A parameter's current reading and 24-hour extremes are found in one pass over its
    // history and shared by its features.
    let mut extremes = None;
    for (g, (group, state)) in layout.groups.iter().zip(states.iter_mut()).enumerate() {
        if !due(group, state.until) {
            continue;
        }
        if g < 128 {
            fresh |= 1 << g;
        }
        let mut until = FAR;
        let mut subtotal = 0.0;
        let (mut present, mut best) = (false, f64::NEG_INFINITY);
        for i in group.features.clone() {
            let f = &model.features[i];
            let (value, feature_until) = match f.input {
                Input::Reading(param, stat) => {
                    let (reading, until) =
                        reading_until(inputs, param, stat, &f.cuts, &mut extremes);
                    if let Some(kept) = readings.get_mut(i) {
                        *kept = reading;
                    }
                    (reading.map(|r| r.value), until)
                }
                Input::Observed => f.input.value_until(window, at, staleness, &f.cuts),
            };
            until = until.min(feature_until);
            bins[i] = match value {
                Some(v) => {
                    let bin = match &slots[i] {
                        Some(slot) => slot.bin(v),
                        None => f.bin(v),
                    };
                    let w = layout.weights[layout.offsets[i] + bin];
                    subtotal += w;
                    present = true;
                    best = best.max(w);
                    // A feature has at most MAX_CUTS cuts (checked where a model is read,
                    // and `vigil train` makes no more), so its bin fits below NONE.
                    u8::try_from(bin).unwrap_or(NONE - 1)
                }
                None => NONE,
            };
        }
        *state = GroupState {
            until,
            subtotal,
            present,
            best: round_up(best),
        };
    }
    (fresh, extremes)
}

/// `x` as an `f32` no smaller than it.
fn round_up(x: f64) -> f32 {
    let y = x as f32;
    if f64::from(y) < x { y.next_up() } else { y }
}

/// Sums the groups into `out` with the evidence and the missing parameters, and lowers
/// the horizon to the earliest group's. The readings of criteria are taken from
/// `readings` (kept by [`rescore`]), or from `out`'s criteria when `previous` (the
/// features behind them) held them and their group is not fresh, or else found again
/// (`extremes` is the last history pass of the scoring). Returns the features behind the
/// new criteria.
fn assemble(
    model: &RiskModel,
    inputs: &Inputs<'_>,
    (bins, states, readings): (&[u8], &[GroupState], &[Option<Reading>]),
    (fresh, mut extremes): (Fresh, Option<(Param, Extremes)>),
    previous: &[u8],
    out: &mut Risk,
) -> ([u8; EVIDENCE], u8) {
    let layout = model.layout();
    let mut sum = model.intercept;
    let (mut missing, mut present) = (ParamSet::EMPTY, ParamSet::EMPTY);
    // The largest positive contributions, largest first: (weight, feature, group).
    let mut top = [(0.0, 0, 0); EVIDENCE];
    let mut kept = 0;
    let mut horizon = FAR;
    out.observed = None;
    for (g, (group, state)) in layout.groups.iter().zip(states).enumerate() {
        sum += state.subtotal;
        horizon = horizon.min(state.until);
        let Some(param) = group.param else {
            // The hours observed: not evidence of illness, shown apart.
            if state.present {
                out.observed = inputs.window().first().map(|first| (first, state.subtotal));
            }
            continue;
        };
        if state.present {
            present.insert(param);
        } else {
            missing.insert(param);
        }
        // Nothing of the group can enter the evidence.
        let floor = if kept < EVIDENCE {
            EVIDENCE_FROM
        } else {
            top[EVIDENCE - 1].0
        };
        if f64::from(state.best) < floor {
            continue;
        }
        for i in group.features.clone() {
            let bin = bins[i];
            if bin == NONE {
                continue;
            }
            let w = layout.weights[layout.offsets[i] + usize::from(bin)];
            if w >= EVIDENCE_FROM && (kept < EVIDENCE || w > top[EVIDENCE - 1].0) {
                // Insert in descending order, dropping the smallest beyond EVIDENCE.
                let mut k = kept.min(EVIDENCE - 1);
                while k > 0 && top[k - 1].0 < w {
                    top[k] = top[k - 1];
                    k -= 1;
                }
                top[k] = (w, i, g);
                kept = (kept + 1).min(EVIDENCE);
            }
        }
    }
    inputs.lower_horizon(horizon);
    out.log_odds = sum;
    out.score = percent(probability(sum));
    out.missing = missing.difference(present);
    let mut features = [0u8; EVIDENCE];
    for (f, &(_, i, _)) in features.iter_mut().zip(&top[..kept]) {
        *f = u8::try_from(i).unwrap_or(NONE);
    }
    let shown = kept as u8;
    let points = |w: f64| (w * 10.0).round().clamp(0.0, 255.0) as u8;
    if previous == &features[..kept] && out.criteria.as_slice().len() == kept {
        // The same features as before: only those of groups computed afresh can show
        // another reading or weight.
        for (k, &(w, i, g)) in top[..kept].iter().enumerate() {
            if !fresh.contains(g) {
                continue;
            }
            if let Input::Reading(param, stat) = model.features[i].input
                && let (Some(reading), _) =
                    reading_until(inputs, param, stat, &model.features[i].cuts, &mut extremes)
            {
                out.criteria.set(k, criterion(stat), reading, points(w));
            }
        }
        return (features, shown);
    }
    let before = out.criteria;
    out.criteria.clear();
    for &(w, i, g) in &top[..kept] {
        let Input::Reading(param, stat) = model.features[i].input else {
            continue;
        };
        let kept_reading = readings.get(i).copied().flatten();
        let held = kept_reading.or_else(|| {
            previous
                .iter()
                .position(|&f| usize::from(f) == i)
                .filter(|_| !fresh.contains(g))
                .and_then(|k| before.as_slice().get(k))
                .map(|e| Reading {
                    param: e.param,
                    value: e.value,
                    effective: e.effective,
                })
        });
        let reading = held.or_else(|| {
            reading_until(inputs, param, stat, &model.features[i].cuts, &mut extremes).0
        });
        if let Some(reading) = reading {
            out.criteria.push(criterion(stat), reading, points(w));
        }
    }
    (features, shown)
}

/// A feature's reading (its value, and when the reading it comes from was measured) and
/// the first instant it may differ without a new reading. `extremes` carries one pass
/// over a parameter's history from one statistic of it to the next.
fn reading_until(
    inputs: &Inputs<'_>,
    param: Param,
    stat: Stat,
    cuts: &[f64],
    extremes: &mut Option<(Param, Extremes)>,
) -> (Option<Reading>, Timestamp) {
    let (window, at) = (inputs.window(), inputs.at());
    let staleness = &inputs.config().staleness;
    match stat {
        Stat::Now | Stat::Max24h | Stat::Min24h => {
            let max_age = staleness.of(param.kind());
            let x = match *extremes {
                Some((q, x)) if q == param => x,
                _ => {
                    let x = window.extremes(param, at, max_age, DAY);
                    *extremes = Some((param, x));
                    x
                }
            };
            let soon = at.plus(Span::millis(1));
            if stat == Stat::Now {
                // As `Window::latest_until` bounds it.
                let until = match (x.latest, x.later) {
                    (_, true) => soon,
                    (Some(r), false) => r.effective.plus(max_age).plus(Span::millis(1)),
                    (None, false) => FAR,
                };
                (x.latest, until)
            } else {
                let until = if x.later {
                    soon
                } else {
                    x.oldest.map_or(FAR, |o| o.plus(DAY))
                };
                let (value, effective) = if stat == Stat::Max24h {
                    (x.max, x.max_at)
                } else {
                    (x.min, x.min_at)
                };
                let reading = x.oldest.map(|_| Reading {
                    param,
                    value,
                    effective,
                });
                (reading, until)
            }
        }
        _ => {
            let (value, until) =
                Input::Reading(param, stat).value_until(window, at, staleness, cuts);
            let reading = value.map(|value| Reading {
                param,
                value,
                effective: window.last_seen(param, at).unwrap_or(at),
            });
            (reading, until)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::observation::{Observation, RawValue, Status};
    use crate::window::Window;
    use proptest::prelude::*;

    const T0: i64 = 1_795_428_000_000;
    const CODES: [(&str, f64, f64); 8] = [
        ("heart_rate", 30.0, 180.0),
        ("resp_rate", 5.0, 40.0),
        ("temperature", 34.0, 41.0),
        ("sbp", 60.0, 200.0),
        ("lactate", 0.5, 10.0),
        ("wbc", 1.0, 30.0),
        ("platelets", 5.0, 400.0),
        ("gcs", 3.0, 15.0),
    ];

    /// A reading of `CODES[code]` at fraction `f` of its range, `minute` minutes after T0.
    fn observation(code: usize, f: f64, minute: i64) -> Observation {
        let (name, lo, hi) = CODES[code];
        let v = lo + (hi - lo) * f;
        let v = if name == "gcs" { v.round() } else { v };
        Observation::new(
            name,
            RawValue::Number(v),
            None,
            Timestamp::from_millis(T0 + minute * 60_000),
            None,
            Status::Final,
        )
        .unwrap_or_else(|e| panic!("{e}"))
    }

    fn window(readings: &[(usize, f64, i64)]) -> Window {
        let config = Config::default();
        let mut w = Window::new();
        for &(code, f, minute) in readings {
            let obs = observation(code, f, minute);
            w.ingest(&obs, &config.staleness);
        }
        w
    }

    proptest! {
        /// The rule's estimate is the model's, feature by feature as `vigil train` reads
        /// them; its evidence holds only readings that raised it, largest first; a
        /// parameter with no value is missing.
        #[test]
        fn the_rule_scores_what_training_reads(
            readings in prop::collection::vec((0..CODES.len(), 0.0..1.0f64, 0..3000i64), 0..40),
            at_minute in 0..4000i64,
        ) {
            let config = Config::default();
            let w = window(&readings);
            let at = Timestamp::from_millis(T0 + at_minute * 60_000);
            let mut out = Risk::default();
            score_into(&Inputs::new(&w, at, &config), &mut out);
            let model = RiskModel::shipped();
            let expected = model.log_odds(&w, at, &config.staleness);
            prop_assert_eq!(out.log_odds, expected);
            prop_assert_eq!(out.score, percent(probability(expected)));
            let explained = model.explain(&w, at, &config.staleness);
            prop_assert_eq!(explained.probability, probability(expected));
            let points: Vec<u8> = out.criteria.as_slice().iter().map(|e| e.points()).collect();
            prop_assert!(points.windows(2).all(|p| p[0] >= p[1]), "{:?}", points);
            for p in model.params().iter() {
                let any = model.features.iter().any(|f| {
                    matches!(f.input, Input::Reading(q, _) if q == p)
                        && f.input.value(&w, at, &config.staleness).is_some()
                });
                prop_assert_eq!(out.missing.contains(p), !any, "{:?}", p);
            }
        }
    }

    proptest! {
        /// Re-scoring only the changed parameters' features, and the groups whose horizon
        /// passed, always gives what scoring everything gives: estimate, evidence with its
        /// readings, missing parameters, hours observed and horizon.
        #[test]
        fn incremental_scoring_equals_scoring_everything(
            steps in prop::collection::vec(
                (0..CODES.len(), 0.0..1.0f64, -600i64..120, 0..4u8, -30i64..600),
                1..50),
        ) {
            let config = Config::default();
            let mut w = Window::new();
            let mut memo = None;
            let mut incremental = Risk::default();
            let mut clock = 3000i64;
            for (code, f, dt, op, advance) in steps {
                clock += advance;
                if op > 0 {
                    let obs = observation(code, f, clock + dt);
                    w.ingest(&obs, &config.staleness);
                }
                let changed = w.take_changes();
                let at = Timestamp::from_millis(T0 + clock * 60_000);
                let inputs = Inputs::new(&w, at, &config);
                score_incremental(&inputs, changed, &mut memo, &mut incremental);
                let incremental_until = inputs.take_horizon();
                let mut full = Risk::default();
                score_into(&inputs, &mut full);
                let full_until = inputs.take_horizon();
                prop_assert_eq!(incremental, full);
                prop_assert_eq!(incremental_until, full_until);
            }
        }
    }

    #[test]
    fn an_alert_message_says_it_is_a_statistical_estimate() {
        let config = Config::default();
        let w = window(&[(1, 1.0, 0), (2, 1.0, 0), (0, 1.0, 0)]);
        let at = Timestamp::from_millis(T0);
        let a = crate::assess(&w, at, &config);
        // Acting at once; Vigil Risk advisory from 1 %.
        let mut policy = crate::alert::PolicyConfig::every_rule();
        policy.thresholds.risk = [Some(1), None, None];
        let mut state = crate::alert::AlertState::new();
        let d = state.decide(&a, &w, &config, &policy);
        let risk = d
            .iter()
            .find(|d| d.rule == crate::RuleId::Risk)
            .unwrap_or_else(|| panic!("a risk alert: {d:?}"));
        let text = crate::alert::message(risk, &a);
        assert!(text.starts_with("Vigil Risk "), "{text}");
        assert!(text.contains("(a statistical estimate)"), "{text}");
        assert!(text.contains("missing:"), "{text}");
    }
}
