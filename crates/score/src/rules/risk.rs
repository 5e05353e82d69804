//! Vigil Risk as a rule: the shipped model's estimate ([`crate::risk`]) in whole percent,
//! with the readings that raised it most as evidence.
//!
//! Unlike the published scores this is a statistical estimate learned from one hospital
//! system's ICU stays (the model card: CLINICAL.md, "Vigil Risk"). Its evidence lists the
//! features that added most to the log-odds, each with its reading and what it added (in
//! tenths of log-odds as the criterion's points); every parameter the model could not
//! read is listed as missing, never taken as normal.

use super::{Criteria, Inputs};
use crate::param::ParamSet;
use crate::risk::{Input, RiskModel, Stat, percent, probability};
use crate::window::Reading;

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

/// Scores the configured model (`Config::risk`) into `out`.
pub fn score_into(inputs: &Inputs<'_>, out: &mut Risk) {
    score_model_into(&inputs.config().risk, inputs, out);
}

/// Scores `model` into `out`, reusing its storage.
pub fn score_model_into(model: &RiskModel, inputs: &Inputs<'_>, out: &mut Risk) {
    let window = inputs.window();
    let at = inputs.at();
    let staleness = &inputs.config().staleness;
    let mut sum = model.intercept;
    let mut missing = ParamSet::EMPTY;
    let mut present = ParamSet::EMPTY;
    // The largest positive contributions: (log-odds, input, value).
    let mut top: [(f64, Input, f64); EVIDENCE] = [(0.0, Input::Observed, 0.0); EVIDENCE];
    let mut kept = 0;
    out.observed = None;
    for f in &model.features {
        let (value, until) = f.input.value_until(window, at, staleness, &f.cuts);
        inputs.lower_horizon(until);
        let Some(value) = value else {
            if let Input::Reading(p, _) = f.input {
                missing.insert(p);
            }
            continue;
        };
        if let Input::Reading(p, _) = f.input {
            present.insert(p);
        }
        let w = f.weights[f.bin(value)];
        sum += w;
        if f.input == Input::Observed
            && let Some(first) = window.first()
        {
            out.observed = Some((first, w));
        }
        if w > 0.0 && matches!(f.input, Input::Reading(..)) {
            // Insert in descending order, dropping the smallest beyond EVIDENCE.
            let mut i = kept.min(EVIDENCE);
            while i > 0 && top[i - 1].0 < w {
                if i < EVIDENCE {
                    top[i] = top[i - 1];
                }
                i -= 1;
            }
            if i < EVIDENCE {
                top[i] = (w, f.input, value);
                kept = (kept + 1).min(EVIDENCE);
            }
        }
    }
    out.log_odds = sum;
    out.score = percent(probability(sum));
    // A parameter read by one feature and missing for another (a 24 h extreme without a
    // current value) is measured: only parameters with no value at all are missing.
    out.missing = missing.difference(present);
    out.criteria.clear();
    for &(w, input, value) in &top[..kept] {
        if let Input::Reading(param, stat) = input {
            let effective = window.newest().unwrap_or(at).min(at);
            let reading = match stat {
                Stat::Now => window.latest(param, at, staleness).unwrap_or(Reading {
                    param,
                    value,
                    effective,
                }),
                _ => Reading {
                    param,
                    value,
                    effective: window
                        .readings(param, at, crate::time::Span::hours(24))
                        .filter(|r| r.value == value)
                        .last()
                        .map_or(effective, |r| r.effective),
                },
            };
            let points = (w * 10.0).round().clamp(0.0, 255.0) as u8;
            out.criteria.push(criterion(stat), reading, points);
        }
    }
}
