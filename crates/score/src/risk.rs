//! Vigil Risk: the learned, additive sepsis score, and the model file it is read from.
//!
//! The model is a penalised logistic regression on binned features of the patient's
//! window (DESIGN.md, "Vigil Risk"): each feature is one statistic of one parameter
//! ([`Stat`]: the current value, the highest or lowest of the last 6 hours, or the change
//! over 6 hours), cut into bins, and each bin carries a weight in log-odds. The estimate
//! is the intercept plus one weight per measured feature; a feature whose input is
//! missing or stale adds nothing (its reference bin, the most common one in training,
//! also weighs zero) and is listed as missing, never read as normal. So every estimate
//! explains itself as a sum: "Vigil Risk 12 %: resp_rate 28/min +0.91, ...".
//!
//! This module owns the features (what the trainer and the rule both compute, by one
//! function, [`feature_value`]), the model file's format ([`RiskModel::parse`],
//! [`RiskModel::to_text`]: a reviewed text file, every number written so that it reads
//! back to the same bits) and the estimate. The shipped model is `models/vigil-risk.model`
//! at the repository's root ([`RiskModel::shipped`]); `vigil train` writes it. It is
//! decision support: a statistical estimate, trained on one hospital system's ICU stays,
//! to be validated locally before use (the model card in CLINICAL.md).
//!
//! The estimate is summed in fixed point (units of 2^-48 of a log-odds), so that
//! the sum is the same whatever order its terms are added in: an incremental scoring
//! that replaces one parameter's terms gives the bits a full one gives.

use std::fmt::Write as _;
use std::sync::{Arc, OnceLock};

use crate::config::Staleness;
use crate::param::{PARAM_COUNT, Param, ParamSet};
use crate::time::{Span, Timestamp};
use crate::window::Window;

/// The statistic of a parameter a feature reads, over the window at the decision time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Stat {
    /// The current value: the newest reading within the staleness limit.
    Now,
    /// The highest reading of the last 6 hours.
    Max6h,
    /// The lowest reading of the last 6 hours.
    Min6h,
    /// The current value minus the one in force 6 hours before (both within the
    /// staleness limit).
    Change6h,
    /// The highest reading of the last 24 hours.
    Max24h,
    /// The lowest reading of the last 24 hours.
    Min24h,
    /// Hours since the parameter was last measured (any age): how often it is charted.
    /// A charting habit, not physiology; offered to `vigil train --measurement-times`
    /// to show the difference, not used by the shipped model.
    Age,
}

impl Stat {
    /// Every statistic, in the order of their names.
    pub const ALL: [Stat; 7] = [
        Stat::Now,
        Stat::Max6h,
        Stat::Min6h,
        Stat::Change6h,
        Stat::Max24h,
        Stat::Min24h,
        Stat::Age,
    ];

    /// The name in a model file.
    pub fn name(self) -> &'static str {
        match self {
            Stat::Now => "now",
            Stat::Max6h => "max6h",
            Stat::Min6h => "min6h",
            Stat::Change6h => "change6h",
            Stat::Max24h => "max24h",
            Stat::Min24h => "min24h",
            Stat::Age => "age",
        }
    }

    /// The statistic named `name`.
    pub fn from_name(name: &str) -> Option<Stat> {
        Stat::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// What a feature reads: a statistic of one parameter, or how long the patient has been
/// observed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Input {
    /// A statistic of a parameter's readings.
    Reading(Param, Stat),
    /// Hours since the patient's first reading ([`Window::first`]): in the training data,
    /// hours since ICU admission. Not physiology: where monitoring starts elsewhere (a
    /// ward, a transfer), it means something else; validate locally.
    Observed,
}

impl Input {
    /// What it is called in evidence and in the model file: `resp_rate`,
    /// `max6h resp_rate`, `hours observed`.
    pub fn label(self) -> String {
        match self {
            Input::Reading(p, Stat::Now) => p.code().to_owned(),
            Input::Reading(p, s) => format!("{} {}", s.name(), p.code()),
            Input::Observed => "hours observed".to_owned(),
        }
    }

    /// The value of this input in `window` at `at`; `None` when missing or stale.
    pub fn value(self, window: &Window, at: Timestamp, staleness: &Staleness) -> Option<f64> {
        match self {
            Input::Reading(p, s) => feature_value(window, p, s, at, staleness),
            Input::Observed => window
                .first()
                .filter(|f| *f <= at)
                .map(|f| (at.as_millis() - f.as_millis()) as f64 / 3_600_000.0),
        }
    }
}

impl Input {
    /// [`Input::value`], and the first instant from which it may differ without a new
    /// reading (a reading turning stale or leaving a span, a later reading coming into
    /// view, the hours observed reaching the next of `cuts`): what lets the engine
    /// re-score the rule only when it can have changed.
    pub fn value_until(
        self,
        window: &Window,
        at: Timestamp,
        staleness: &Staleness,
        cuts: &[f64],
    ) -> (Option<f64>, Timestamp) {
        let soon = at.plus(Span::millis(1));
        match self {
            Input::Observed => {
                let v = self.value(window, at, staleness);
                let until = match (v, window.first()) {
                    (Some(h), Some(first)) => cuts.iter().find(|c| **c > h).map_or(FAR, |c| {
                        first.plus(Span::millis((c * 3_600_000.0).ceil() as i64))
                    }),
                    _ => window
                        .first()
                        .map_or(FAR, |f| if f > at { soon } else { FAR }),
                };
                (v, until.max(soon))
            }
            Input::Reading(p, Stat::Now) => {
                let (r, until) = window.latest_until(p, at, staleness);
                (r.map(|r| r.value), until)
            }
            Input::Reading(p, stat) => {
                let v = self.value(window, at, staleness);
                let span = match stat {
                    Stat::Max24h | Stat::Min24h => Span::hours(24),
                    Stat::Max6h | Stat::Min6h | Stat::Change6h => {
                        SIX_HOURS.max(staleness.of(p.kind()))
                    }
                    // The age grows with time: it may differ at once.
                    _ => return (v, soon),
                };
                let mut until = FAR;
                if window.any_after(p, at) {
                    until = soon;
                }
                if let Some(oldest) = window.readings(p, at, span).next() {
                    until = until.min(oldest.effective.plus(span));
                }
                if stat == Stat::Change6h {
                    until = soon;
                }
                (v, until.max(soon))
            }
        }
    }
}

const FAR: Timestamp = Timestamp::from_millis(i64::MAX);

/// The look-back of the 6-hour statistics.
pub const SIX_HOURS: Span = Span::hours(6);

/// The value of `stat` of `param` in `window` at `at`; `None` when its inputs are
/// missing or stale. The trainer and the rule both read features through this function.
pub fn feature_value(
    window: &Window,
    param: Param,
    stat: Stat,
    at: Timestamp,
    staleness: &Staleness,
) -> Option<f64> {
    match stat {
        Stat::Now => window.latest(param, at, staleness).map(|r| r.value),
        Stat::Max6h => window
            .readings(param, at, SIX_HOURS)
            .map(|r| r.value)
            .reduce(f64::max),
        Stat::Min6h => window
            .readings(param, at, SIX_HOURS)
            .map(|r| r.value)
            .reduce(f64::min),
        Stat::Max24h => window
            .readings(param, at, Span::hours(24))
            .map(|r| r.value)
            .reduce(f64::max),
        Stat::Min24h => window
            .readings(param, at, Span::hours(24))
            .map(|r| r.value)
            .reduce(f64::min),
        Stat::Change6h => {
            let now = window.latest(param, at, staleness)?;
            let before = window.at_time(param, at.minus(SIX_HOURS), staleness.of(param.kind()))?;
            // The same reading at both ends is no change measured.
            (before.effective < now.effective).then_some(now.value - before.value)
        }
        Stat::Age => window
            .last_seen(param, at)
            .map(|t| (at.as_millis() - t.as_millis()) as f64 / 3_600_000.0),
    }
}

/// One feature of a model: a statistic of a parameter, its bin edges and their weights.
#[derive(Clone, Debug, PartialEq)]
pub struct Feature {
    /// What it reads.
    pub input: Input,
    /// Bin edges, ascending: bin `i` holds values from `cuts[i - 1]` (inclusive) to
    /// `cuts[i]` (exclusive); the first and last bins are open.
    pub cuts: Vec<f64>,
    /// One weight (log-odds) per bin: `cuts.len() + 1` of them; the reference bin's is 0.
    pub weights: Vec<f64>,
}

impl Feature {
    /// The bin `value` falls in: how many cuts are at or below it (a handful of
    /// comparisons without branches).
    #[inline]
    pub fn bin(&self, value: f64) -> usize {
        self.cuts.iter().map(|c| usize::from(*c <= value)).sum()
    }

    /// What it is called in evidence: `resp_rate`, `max6h resp_rate`.
    pub fn label(&self) -> String {
        self.input.label()
    }
}

/// The most cuts a feature may have (its bin is remembered in one byte between two
/// scorings of a patient).
pub const MAX_CUTS: usize = 254;

/// The most cuts a feature may have for the fixed-width bin search of the hot path
/// (more are allowed, and searched one by one).
pub const LANES: usize = 8;

/// One feature laid out for the hot path: its cuts padded with +infinity to [`LANES`],
/// so that finding the bin is [`LANES`] comparisons without branches.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Slot {
    /// Padded cuts.
    pub(crate) cuts: [f64; LANES],
}

impl Slot {
    /// The bin `value` falls in (as [`Feature::bin`] finds it).
    #[inline]
    pub(crate) fn bin(&self, value: f64) -> usize {
        self.cuts.iter().map(|c| usize::from(*c <= value)).sum()
    }
}

/// A trained model.
#[derive(Clone, Debug)]
pub struct RiskModel {
    /// Free-text header lines (`#` comments): what it was trained on, the attribution
    /// the data's license requires, and its cross-validated figures.
    pub notes: Vec<String>,
    /// The log-odds with every feature at its reference bin or missing.
    pub intercept: f64,
    /// The alert threshold: an estimate at or above this probability, in percent, is an
    /// alert (chosen by cross-validation).
    pub threshold_percent: u8,
    /// The features.
    pub features: Vec<Feature>,
    /// The features laid out for the hot path, built on first use (a model is not
    /// changed once it is scored).
    slots: OnceLock<Vec<Option<Slot>>>,
    /// [`RiskModel::params`], found on first use.
    params: OnceLock<ParamSet>,
    /// [`RiskModel::layout`], found on first use.
    layout: OnceLock<Layout>,
}

/// A model laid out for incremental scoring (`crate::rules::risk`), found once.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Layout {
    /// The features in groups of consecutive ones reading the same input.
    pub(crate) groups: Vec<Group>,
    /// Every feature's weights end to end: feature `i`'s bin `b` weighs
    /// `weights[offsets[i] + b]`.
    pub(crate) weights: Vec<f64>,
    /// Where each feature's weights start in `weights`.
    pub(crate) offsets: Vec<usize>,
    /// `weights` in fixed point.
    pub(crate) fixed: Vec<Fixed>,
    /// The intercept in fixed point.
    pub(crate) intercept: Fixed,
    /// Per parameter (by [`Param::index`]), the groups reading it, as bits (groups from
    /// [`MASK_GROUPS`] on are left out).
    pub(crate) by_param: [GroupMask; PARAM_COUNT],
    /// The groups of the hours observed, as bits.
    pub(crate) observed: GroupMask,
}

/// A set of groups, bit `g` for group `g`.
pub(crate) type GroupMask = u64;

/// The most groups a [`GroupMask`] holds: a model with more is scored in full every time.
pub(crate) const MASK_GROUPS: usize = 64;

/// A log-odds in fixed point: units of 2^-48. Integer sums are exact, so the estimate
/// does not depend on the order its terms are added in; the quantum (3.6e-15) is below
/// the rounding of a double's sum of the same terms.
pub(crate) type Fixed = i64;

/// Fixed-point units per log-odds unit.
const FIXED_ONE: f64 = (1u64 << 48) as f64;

/// `x` in fixed point (saturating far beyond any trained weight).
pub(crate) fn to_fixed(x: f64) -> Fixed {
    (x * FIXED_ONE).round() as Fixed
}

/// A fixed-point log-odds as a double.
pub(crate) fn from_fixed(x: Fixed) -> f64 {
    x as f64 / FIXED_ONE
}

/// Consecutive features of a model that read the same input (one parameter's statistics,
/// or the hours observed): what an incremental scoring re-scores together when that input
/// changes (`crate::rules::risk::Memo`).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Group {
    /// The features, as indices into [`RiskModel::features`].
    pub(crate) features: std::ops::Range<usize>,
    /// The parameter they read (`None`: the hours observed).
    pub(crate) param: Option<Param>,
}

impl PartialEq for RiskModel {
    fn eq(&self, other: &Self) -> bool {
        self.notes == other.notes
            && self.intercept.to_bits() == other.intercept.to_bits()
            && self.threshold_percent == other.threshold_percent
            && self.features == other.features
    }
}

/// One feature's part in an estimate.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Contribution {
    /// Index into [`RiskModel::features`].
    pub feature: usize,
    /// The feature's value.
    pub value: f64,
    /// What it added to the log-odds.
    pub log_odds: f64,
}

/// An estimate with its explanation.
#[derive(Clone, Debug, PartialEq)]
pub struct Explained {
    /// The estimated probability, 0-1.
    pub probability: f64,
    /// Every measured feature's contribution, largest magnitude first.
    pub contributions: Vec<Contribution>,
    /// Features whose inputs are missing or stale (indices into the model's features).
    pub missing: Vec<usize>,
}

static SHIPPED: OnceLock<Arc<RiskModel>> = OnceLock::new();

fn read_shipped() -> Arc<RiskModel> {
    Arc::new(
        RiskModel::parse(include_str!("../../../models/vigil-risk.model"))
            // The shipped file is checked by a unit test; a broken one fails the tests.
            .unwrap_or_else(|e| panic!("the shipped model file is invalid: {e}")),
    )
}

/// The version line every model file starts with.
const MAGIC: &str = "vigil-risk 1";

impl RiskModel {
    /// A model of these parts.
    pub fn new(
        notes: Vec<String>,
        intercept: f64,
        threshold_percent: u8,
        features: Vec<Feature>,
    ) -> RiskModel {
        RiskModel {
            notes,
            intercept,
            threshold_percent,
            features,
            slots: OnceLock::new(),
            params: OnceLock::new(),
            layout: OnceLock::new(),
        }
    }

    /// The features in groups of consecutive ones reading the same input, and their
    /// weights end to end, found once.
    pub(crate) fn layout(&self) -> &Layout {
        self.layout.get_or_init(|| {
            let mut groups: Vec<Group> = Vec::new();
            let (mut weights, mut offsets) = (Vec::new(), Vec::new());
            for (i, f) in self.features.iter().enumerate() {
                let param = match f.input {
                    Input::Reading(p, _) => Some(p),
                    Input::Observed => None,
                };
                match groups.last_mut() {
                    Some(g) if g.param == param => g.features.end = i + 1,
                    _ => groups.push(Group {
                        features: i..i + 1,
                        param,
                    }),
                }
                offsets.push(weights.len());
                weights.extend_from_slice(&f.weights);
            }
            let mut by_param = [0; PARAM_COUNT];
            let mut observed = 0;
            for (g, group) in groups.iter().enumerate().take(MASK_GROUPS) {
                match group.param {
                    Some(p) => by_param[p.index()] |= 1 << g,
                    None => observed |= 1 << g,
                }
            }
            Layout {
                groups,
                fixed: weights.iter().map(|&w| to_fixed(w)).collect(),
                weights,
                offsets,
                intercept: to_fixed(self.intercept),
                by_param,
                observed,
            }
        })
    }

    /// Each feature's hot-path layout (`None` for one with more than [`LANES`] cuts).
    pub(crate) fn slots(&self) -> &[Option<Slot>] {
        self.slots.get_or_init(|| {
            self.features
                .iter()
                .map(|f| {
                    (f.cuts.len() <= LANES).then(|| {
                        let mut slot = Slot {
                            cuts: [f64::INFINITY; LANES],
                        };
                        slot.cuts[..f.cuts.len()].copy_from_slice(&f.cuts);
                        slot
                    })
                })
                .collect()
        })
    }

    /// The model shipped with Vigil (`models/vigil-risk.model`), read once.
    pub fn shipped() -> &'static RiskModel {
        SHIPPED.get_or_init(read_shipped)
    }

    /// [`RiskModel::shipped`], shared (what [`crate::Config`] holds by default).
    pub fn shipped_shared() -> Arc<RiskModel> {
        SHIPPED.get_or_init(read_shipped).clone()
    }

    /// Every parameter the model reads.
    pub fn params(&self) -> ParamSet {
        *self.params.get_or_init(|| {
            let mut set = ParamSet::EMPTY;
            for f in &self.features {
                if let Input::Reading(p, _) = f.input {
                    set.insert(p);
                }
            }
            set
        })
    }

    /// The log-odds at `at`: the intercept plus each measured feature's bin weight. No
    /// allocation (the service computes it for every decision).
    pub fn log_odds(&self, window: &Window, at: Timestamp, staleness: &Staleness) -> f64 {
        // In fixed point, as the rule sums them (the same bits).
        let layout = self.layout();
        let mut sum = layout.intercept;
        for (i, f) in self.features.iter().enumerate() {
            if let Some(v) = f.input.value(window, at, staleness) {
                sum += layout.fixed[layout.offsets[i] + f.bin(v)];
            }
        }
        from_fixed(sum)
    }

    /// The estimate in whole percent (0-100), as the rule scores it.
    pub fn percent(&self, window: &Window, at: Timestamp, staleness: &Staleness) -> u8 {
        percent(probability(self.log_odds(window, at, staleness)))
    }

    /// The estimate with every feature's contribution and the missing features.
    pub fn explain(&self, window: &Window, at: Timestamp, staleness: &Staleness) -> Explained {
        let mut contributions = Vec::new();
        let mut missing = Vec::new();
        for (i, f) in self.features.iter().enumerate() {
            match f.input.value(window, at, staleness) {
                Some(value) => {
                    let log_odds = f.weights[f.bin(value)];
                    contributions.push(Contribution {
                        feature: i,
                        value,
                        log_odds,
                    });
                }
                None => missing.push(i),
            }
        }
        contributions.sort_by(|a, b| b.log_odds.abs().total_cmp(&a.log_odds.abs()));
        Explained {
            probability: probability(self.log_odds(window, at, staleness)),
            contributions,
            missing,
        }
    }

    /// Reads a model file.
    ///
    /// # Errors
    ///
    /// A message naming the line and what is wrong with it.
    pub fn parse(text: &str) -> Result<RiskModel, String> {
        let mut lines = text.lines().enumerate().map(|(n, l)| (n + 1, l.trim_end()));
        let mut notes = Vec::new();
        let mut model = RiskModel::new(Vec::new(), f64::NAN, 0, Vec::new());
        let mut seen_magic = false;
        for (n, line) in lines.by_ref() {
            if let Some(note) = line.strip_prefix('#') {
                notes.push(note.strip_prefix(' ').unwrap_or(note).to_owned());
                continue;
            }
            if line.is_empty() {
                continue;
            }
            let mut words = line.split_whitespace();
            let key = words.next().unwrap_or_default();
            let rest: Vec<&str> = words.collect();
            let err = |what: &str| format!("line {n}: {what} (`{line}`)");
            if !seen_magic {
                if line != MAGIC {
                    return Err(err(&format!("expected `{MAGIC}` first")));
                }
                seen_magic = true;
                continue;
            }
            match key {
                "intercept" => {
                    model.intercept =
                        one_number(&rest).ok_or_else(|| err("expected one number"))?;
                }
                "threshold_percent" => {
                    model.threshold_percent = match rest.as_slice() {
                        [t] => t.parse().ok().filter(|t| (1..=100).contains(t)),
                        _ => None,
                    }
                    .ok_or_else(|| err("expected a whole percentage from 1 to 100"))?;
                }
                "feature" => {
                    let [code, stat, cuts @ ..] = rest.as_slice() else {
                        return Err(err("expected `feature PARAM STAT CUTS...`"));
                    };
                    let input = if (*code, *stat) == ("hours", "observed") {
                        Input::Observed
                    } else {
                        let param = Param::from_code(code)
                            .ok_or_else(|| err(&format!("unknown parameter `{code}`")))?;
                        let stat = Stat::from_name(stat)
                            .ok_or_else(|| err(&format!("unknown statistic `{stat}`")))?;
                        Input::Reading(param, stat)
                    };
                    let cuts = numbers(cuts).ok_or_else(|| err("expected numbers as cuts"))?;
                    if cuts.windows(2).any(|w| w[0] >= w[1]) {
                        return Err(err("cuts must be strictly ascending"));
                    }
                    if cuts.len() > MAX_CUTS {
                        return Err(err(&format!(
                            "{} cuts; a feature has at most {MAX_CUTS}",
                            cuts.len()
                        )));
                    }
                    model.features.push(Feature {
                        input,
                        cuts,
                        weights: Vec::new(),
                    });
                }
                "weights" => {
                    let f = model
                        .features
                        .last_mut()
                        .filter(|f| f.weights.is_empty())
                        .ok_or_else(|| err("`weights` must follow its `feature` line"))?;
                    let w = numbers(&rest).ok_or_else(|| err("expected numbers as weights"))?;
                    if w.len() != f.cuts.len() + 1 {
                        return Err(err(&format!(
                            "expected {} weights (one per bin), found {}",
                            f.cuts.len() + 1,
                            w.len()
                        )));
                    }
                    f.weights = w;
                }
                other => return Err(err(&format!("unknown key `{other}`"))),
            }
        }
        if !seen_magic {
            return Err(format!("an empty model file; expected `{MAGIC}` first"));
        }
        if !model.intercept.is_finite() {
            return Err("no `intercept` line".into());
        }
        if model.threshold_percent == 0 {
            return Err("no `threshold_percent` line".into());
        }
        if let Some(f) = model.features.iter().find(|f| f.weights.is_empty()) {
            return Err(format!("feature `{}` has no `weights` line", f.label()));
        }
        model.notes = notes;
        Ok(model)
    }

    /// The model file: [`RiskModel::parse`] reads it back to an equal model, every
    /// number to the same bits.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for note in &self.notes {
            if note.is_empty() {
                out.push_str("#\n");
            } else {
                let _ = writeln!(out, "# {note}");
            }
        }
        let _ = writeln!(out, "{MAGIC}");
        let _ = writeln!(out, "intercept {}", self.intercept);
        let _ = writeln!(out, "threshold_percent {}", self.threshold_percent);
        for f in &self.features {
            match f.input {
                Input::Reading(p, s) => {
                    let _ = write!(out, "feature {} {}", p.code(), s.name());
                }
                Input::Observed => out.push_str("feature hours observed"),
            }
            for c in &f.cuts {
                let _ = write!(out, " {c}");
            }
            out.push_str("\nweights");
            for w in &f.weights {
                let _ = write!(out, " {w}");
            }
            out.push('\n');
        }
        out
    }
}

/// The logistic function.
pub fn probability(log_odds: f64) -> f64 {
    1.0 / (1.0 + (-log_odds).exp())
}

/// A probability in whole percent, rounded down (so a threshold of 5 % means at least
/// 5 %), 0-100.
pub fn percent(p: f64) -> u8 {
    (p * 100.0).floor().clamp(0.0, 100.0) as u8
}

fn one_number(words: &[&str]) -> Option<f64> {
    match words {
        [w] => w.parse().ok().filter(|v: &f64| v.is_finite()),
        _ => None,
    }
}

fn numbers(words: &[&str]) -> Option<Vec<f64>> {
    words
        .iter()
        .map(|w| w.parse().ok().filter(|v: &f64| v.is_finite()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observation::{Observation, RawValue, Status};

    fn toy() -> RiskModel {
        RiskModel::new(
            vec!["a toy".into(), String::new()],
            -3.5,
            5,
            vec![
                Feature {
                    input: Input::Reading(Param::RespRate, Stat::Now),
                    cuts: vec![12.0, 21.0, 25.0],
                    weights: vec![0.25, 0.0, 0.5, 0.9],
                },
                Feature {
                    input: Input::Reading(Param::Lactate, Stat::Max6h),
                    cuts: vec![2.0],
                    weights: vec![0.0, 0.75],
                },
            ],
        )
    }

    fn at(h: i64) -> Timestamp {
        Timestamp::from_millis(1_700_000_000_000 + h * 3_600_000)
    }

    fn window(readings: &[(&str, f64, i64)]) -> Window {
        let mut w = Window::new();
        for &(code, v, h) in readings {
            let obs = Observation::new(code, RawValue::Number(v), None, at(h), None, Status::Final)
                .unwrap_or_else(|e| panic!("{e}"));
            w.ingest(&obs, &Staleness::default());
        }
        w
    }

    #[test]
    fn the_model_file_reads_back_to_the_same_bits() {
        let mut m = toy();
        m.intercept = 0.1 + 0.2; // not a short decimal
        m.features[0].weights[2] = -1.0 / 3.0;
        let back = RiskModel::parse(&m.to_text()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back, m);
        assert_eq!(back.to_text(), m.to_text());
    }

    #[test]
    fn the_shipped_model_reads() {
        let m = RiskModel::shipped();
        assert!(!m.features.is_empty());
        assert!(m.notes.iter().any(|n| n.contains("CC BY 4.0")));
        // No charting-habit feature in the shipped model.
        assert!(
            m.features
                .iter()
                .all(|f| !matches!(f.input, Input::Reading(_, Stat::Age)))
        );
    }

    #[test]
    fn bins_include_their_lower_edge() {
        let f = &toy().features[0];
        assert_eq!(f.bin(11.99), 0);
        assert_eq!(f.bin(12.0), 1);
        assert_eq!(f.bin(20.99), 1);
        assert_eq!(f.bin(21.0), 2);
        assert_eq!(f.bin(25.0), 3);
    }

    #[test]
    fn an_estimate_is_the_sum_of_its_contributions_and_missing_adds_nothing() {
        let m = toy();
        let s = Staleness::default();
        let w = window(&[
            ("resp_rate", 28.0, 0),
            ("lactate", 3.1, -2),
            ("lactate", 1.0, 0),
        ]);
        let e = m.explain(&w, at(0), &s);
        // resp_rate 28 → +0.9; lactate max over 6 h 3.1 → +0.75.
        // Summed in fixed point: within its quantum of the sum in doubles.
        let expected = probability(-3.5 + 0.9 + 0.75);
        assert!(
            (e.probability - expected).abs() < 1e-12,
            "{}",
            e.probability
        );
        let log_odds = m.log_odds(&w, at(0), &s);
        assert!((log_odds - (-3.5 + 0.9 + 0.75)).abs() < 1e-12, "{log_odds}");
        assert_eq!(e.contributions[0].feature, 0);
        assert_eq!(e.contributions[0].log_odds, 0.9);
        assert!(e.missing.is_empty());
        // Nothing measured: the intercept alone, both features listed as missing.
        let empty = m.explain(&Window::new(), at(0), &s);
        assert_eq!(empty.probability, probability(-3.5));
        assert_eq!(empty.missing, vec![0, 1]);
        // A stale reading is missing (vital signs go stale after 6 h).
        let old = window(&[("resp_rate", 28.0, 0)]);
        assert_eq!(m.explain(&old, at(7), &s).missing, vec![0, 1]);
    }

    #[test]
    fn six_hour_statistics_look_back_six_hours_only() {
        let s = Staleness::default();
        let w = window(&[
            ("heart_rate", 140.0, -7),
            ("heart_rate", 90.0, -5),
            ("heart_rate", 110.0, 0),
        ]);
        let v = |stat| feature_value(&w, Param::HeartRate, stat, at(0), &s);
        assert_eq!(v(Stat::Now), Some(110.0));
        assert_eq!(v(Stat::Max6h), Some(110.0));
        assert_eq!(v(Stat::Min6h), Some(90.0));
        // In force 6 h before: the reading of hour -7 (within the 6 h vital staleness).
        assert_eq!(v(Stat::Change6h), Some(-30.0));
        assert_eq!(v(Stat::Age), Some(0.0));
        // One reading alone is no change.
        let one = window(&[("heart_rate", 90.0, 0)]);
        assert_eq!(
            feature_value(&one, Param::HeartRate, Stat::Change6h, at(0), &s),
            None
        );
    }

    #[test]
    fn bad_model_files_say_which_line_and_why() {
        let good = toy().to_text();
        for (bad, says) in [
            (String::new(), "empty"),
            (
                good.replace("vigil-risk 1", "vigil-risk 9"),
                "expected `vigil-risk 1` first",
            ),
            (
                good.replace("intercept -3.5", "intercept x"),
                "expected one number",
            ),
            (
                good.replace("threshold_percent 5", "threshold_percent 0"),
                "whole percentage",
            ),
            (
                good.replace("resp_rate now", "resp_rat now"),
                "unknown parameter `resp_rat`",
            ),
            (good.replace("12 21 25", "21 12 25"), "strictly ascending"),
            (
                good.replace("weights 0.25 0 0.5 0.9", "weights 0.25 0"),
                "expected 4 weights",
            ),
            (
                good.replace("lactate max6h", "lactate max7h"),
                "unknown statistic",
            ),
            (
                good.replace(
                    "12 21 25",
                    &(0..255)
                        .map(|c| c.to_string())
                        .collect::<Vec<_>>()
                        .join(" "),
                ),
                "255 cuts; a feature has at most 254",
            ),
        ] {
            let e = RiskModel::parse(&bad).map(|_| ()).unwrap_err();
            assert!(e.contains(says), "{e}");
        }
    }

    #[test]
    fn percent_rounds_down_and_stays_in_range() {
        assert_eq!(percent(0.0499999), 4);
        assert_eq!(percent(0.05), 5);
        assert_eq!(percent(1.0), 100);
        assert_eq!(percent(0.0), 0);
    }
}
