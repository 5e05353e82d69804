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

/// Scores `model` into `out`, reusing its storage.
pub fn score_model_into(model: &RiskModel, inputs: &Inputs<'_>, out: &mut Risk) {
    let window = inputs.window();
    let at = inputs.at();
    let staleness = &inputs.config().staleness;
    let mut sum = model.intercept;
    let mut missing = ParamSet::EMPTY;
    let mut present = ParamSet::EMPTY;
    // The largest positive contributions, largest first.
    let mut top = [(0.0, Stat::Now, Reading::EMPTY); EVIDENCE];
    let mut kept = 0;
    out.observed = None;
    // Features come grouped by parameter: a parameter's current reading and 24-hour
    // extremes are found in one pass over its history and shared by its features.
    let mut extremes: Option<(Param, Extremes)> = None;
    let slots = model.slots();
    for (f, slot) in model.features.iter().zip(slots) {
        let (param, stat) = match f.input {
            Input::Reading(p, s) => (p, s),
            Input::Observed => {
                let (value, until) = f.input.value_until(window, at, staleness, &f.cuts);
                inputs.lower_horizon(until);
                if let (Some(v), Some(first)) = (value, window.first()) {
                    let w = f.weights[f.bin(v)];
                    sum += w;
                    out.observed = Some((first, w));
                }
                continue;
            }
        };
        let (reading, until) = match stat {
            Stat::Now | Stat::Max24h | Stat::Min24h => {
                let max_age = staleness.of(param.kind());
                let x = match extremes {
                    Some((q, x)) if q == param => x,
                    _ => {
                        let x = window.extremes(param, at, max_age, DAY);
                        extremes = Some((param, x));
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
                let (value, until) = f.input.value_until(window, at, staleness, &f.cuts);
                let reading = value.map(|value| Reading {
                    param,
                    value,
                    effective: window.last_seen(param, at).unwrap_or(at),
                });
                (reading, until)
            }
        };
        inputs.lower_horizon(until);
        let Some(reading) = reading else {
            missing.insert(param);
            continue;
        };
        present.insert(param);
        let w = match slot {
            Some(slot) => slot.weight(reading.value),
            None => f.weights[f.bin(reading.value)],
        };
        sum += w;
        // Evidence is what added at least 0.05 (one tenth, rounded) to the log-odds.
        if w >= 0.05 && (kept < EVIDENCE || w > top[EVIDENCE - 1].0) {
            // Insert in descending order, dropping the smallest beyond EVIDENCE.
            let mut i = kept.min(EVIDENCE - 1);
            while i > 0 && top[i - 1].0 < w {
                top[i] = top[i - 1];
                i -= 1;
            }
            top[i] = (w, stat, reading);
            kept = (kept + 1).min(EVIDENCE);
        }
    }
    out.log_odds = sum;
    out.score = percent(probability(sum));
    // A parameter read by one feature and missing for another (a 24 h extreme without a
    // current value) is measured: only parameters with no value at all are missing.
    out.missing = missing.difference(present);
    out.criteria.clear();
    for &(w, stat, reading) in &top[..kept] {
        let points = (w * 10.0).round().clamp(0.0, 255.0) as u8;
        out.criteria.push(criterion(stat), reading, points);
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

    fn window(readings: &[(usize, f64, i64)]) -> Window {
        let config = Config::default();
        let mut w = Window::new();
        for &(code, f, minute) in readings {
            let (name, lo, hi) = CODES[code];
            let v = lo + (hi - lo) * f;
            let v = if name == "gcs" { v.round() } else { v };
            let obs = Observation::new(
                name,
                RawValue::Number(v),
                None,
                Timestamp::from_millis(T0 + minute * 60_000),
                None,
                Status::Final,
            )
            .unwrap_or_else(|e| panic!("{e}"));
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
