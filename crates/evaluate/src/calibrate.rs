//! Local calibration of Vigil Risk to a hospital's own labelled stays.
//!
//! A model trained at one hospital ranks patients at another about as well as at home,
//! but its probabilities drift with the prevalence of sepsis and with charting habits
//! there. Logistic recalibration (Steyerberg, Clinical Prediction Models, 2nd ed. 2019,
//! ch. 15: "recalibration in the large" and of the slope) keeps the model's features and
//! their relative weights and refits two numbers on local stays: `a + b × log-odds`. The
//! new model is the old one with every weight multiplied by `b` and the intercept made
//! `a + b × intercept`, so its explanations stay the same sums, scaled.
//!
//! Everything is held out as `vigil train` holds it out: the stays are dealt into 5 folds
//! from the seed; each fold is estimated by the recalibration fitted on the other four;
//! the alert threshold is the one with the best held-out utility within the allowed
//! alert burden; the final recalibration is fitted on every stay. The model file carries
//! the provenance: the model recalibrated (its sha256), the data, the two numbers and the
//! held-out figures before and after.

use vigil_score::risk::{RiskModel, probability};

use crate::train::{Heldout, Table, assign_folds, at_threshold, auroc, choose_threshold, log_odds};

/// What recalibration produced.
#[derive(Clone, Debug)]
pub struct Recalibrated {
    /// The recalibrated model, with its notes.
    pub model: RiskModel,
    /// The intercept `a` of `a + b × log-odds`.
    pub intercept: f64,
    /// The slope `b`.
    pub slope: f64,
    /// The model as it was, at its own threshold, on the same stays.
    pub before: Heldout,
    /// The recalibration, held out (5-fold by stay), at the chosen threshold.
    pub after: Heldout,
}

/// Folds of the held-out recalibration.
pub const FOLDS: usize = 5;

/// Recalibrates `model` on `table` (its features read for the model's inputs, in order:
/// [`inputs`]). `source` is the provenance written first into the new model's notes;
/// `max_episodes` bounds the alert episodes per 100 patient-days of the chosen threshold.
///
/// # Errors
///
/// Why the stays cannot recalibrate: no hour labelled septic, or none labelled not.
pub fn recalibrate(
    table: &Table,
    model: &RiskModel,
    seed: u64,
    max_episodes: f64,
    source: &[String],
) -> Result<Recalibrated, String> {
    let septic = table.labels.iter().filter(|&&l| l).count();
    if septic == 0 || septic == table.labels.len() {
        return Err(format!(
            "{} of {} hours are labelled septic; recalibration needs hours of both kinds \
             (septic stays with their onset, and stays without sepsis)",
            septic,
            table.labels.len()
        ));
    }
    let lo: Vec<f64> = (0..table.labels.len())
        .map(|r| log_odds(model, table.row(r)))
        .collect();
    let as_is: Vec<f64> = lo.iter().map(|&x| probability(x)).collect();
    let mut before = at_threshold(table, &as_is, f64::NAN, model.threshold_percent);
    before.auroc = auroc(&table.labels, &as_is);
    let folds = assign_folds(table.stays(), FOLDS, seed);
    let mut estimates = vec![0.0; lo.len()];
    for fold in 0..FOLDS {
        let rows: Vec<usize> = (0..table.stays())
            .filter(|&s| folds[s] != fold)
            .flat_map(|s| table.starts[s]..table.starts[s + 1])
            .collect();
        let (a, b) = fit_line(&rows, &lo, &table.labels);
        for s in (0..table.stays()).filter(|&s| folds[s] == fold) {
            for r in table.starts[s]..table.starts[s + 1] {
                estimates[r] = probability(a + b * lo[r]);
            }
        }
    }
    let after = choose_threshold(table, &estimates, f64::NAN, max_episodes);
    let all: Vec<usize> = (0..lo.len()).collect();
    let (a, b) = fit_line(&all, &lo, &table.labels);
    let mut features = model.features.clone();
    for f in &mut features {
        for w in &mut f.weights {
            *w *= b;
        }
    }
    let threshold = after.threshold.clamp(1, 100);
    let mut notes: Vec<String> = vec![
        "Vigil Risk, recalibrated to local stays: every weight of the model below multiplied by"
            .into(),
        "the slope, and the intercept made intercept + slope x its intercept. Decision support:"
            .into(),
        "a statistical estimate (model card: CLINICAL.md, \"Vigil Risk\").".into(),
        String::new(),
    ];
    notes.extend(source.iter().cloned());
    notes.extend([
        format!(
            "Recalibrated by `vigil recalibrate`: intercept {a:.6}, slope {b:.6}; seed {seed}, {FOLDS} folds"
        ),
        format!(
            "grouped by stay, at most {max_episodes} alert episodes per 100 patient-days; {} stays, {} hours.",
            table.stays(),
            table.labels.len()
        ),
        format!(
            "Before, at {} %: utility {:.3}, AUROC {:.3}, {:.1} alert episodes per 100 patient-days, {:.1} % of septic stays alerted.",
            before.threshold,
            before.utility,
            before.auroc,
            before.episodes,
            100.0 * before.sensitivity
        ),
        format!(
            "Held out, at {} %: utility {:.3}, AUROC {:.3}, {:.1} alert episodes per 100 patient-days, {:.1} % of septic stays alerted.",
            threshold,
            after.utility,
            after.auroc,
            after.episodes,
            100.0 * after.sensitivity
        ),
        String::new(),
        "The model recalibrated:".into(),
    ]);
    // A blank note stays "|": the file keeps no trailing space, so it reads back the same.
    notes.extend(model.notes.iter().map(|n| {
        if n.is_empty() {
            "|".to_owned()
        } else {
            format!("| {n}")
        }
    }));
    let recalibrated = RiskModel::new(notes, a + b * model.intercept, threshold, features);
    Ok(Recalibrated {
        model: recalibrated,
        intercept: a,
        slope: b,
        before,
        after,
    })
}

/// The inputs a model reads, in its order: what [`Table::extract`] must read for
/// [`recalibrate`].
pub fn inputs(model: &RiskModel) -> Vec<vigil_score::risk::Input> {
    model.features.iter().map(|f| f.input).collect()
}

/// The logistic regression of `labels` on `x` over `rows` (unpenalised, by Newton's
/// method with step halving, so that every step lowers the negative log-likelihood):
/// `(a, b)` with `P(label) = probability(a + b x)`. Starts at (0, 1), the model as it is,
/// and stays there when the rows cannot move it (none, or of one label only).
fn fit_line(rows: &[usize], x: &[f64], labels: &[bool]) -> (f64, f64) {
    let loss = |a: f64, b: f64| -> f64 {
        rows.iter()
            .map(|&r| {
                let z = a + b * x[r];
                // log(1 + e^z), computed without overflow, minus z for a positive label.
                z.max(0.0) + (-z.abs()).exp().ln_1p() - if labels[r] { z } else { 0.0 }
            })
            .sum()
    };
    let (mut a, mut b) = (0.0, 1.0);
    let mut current = loss(a, b);
    for _ in 0..100 {
        let (mut g0, mut g1, mut h00, mut h01, mut h11) = (0.0, 0.0, 0.0, 0.0, 0.0);
        for &r in rows {
            let p = probability(a + b * x[r]);
            let e = p - f64::from(u8::from(labels[r]));
            let w = p * (1.0 - p);
            g0 += e;
            g1 += e * x[r];
            h00 += w;
            h01 += w * x[r];
            h11 += w * x[r] * x[r];
        }
        let det = h00 * h11 - h01 * h01;
        if !(det.is_finite() && det > 1e-12) {
            break;
        }
        let da = (h11 * g0 - h01 * g1) / det;
        let db = (h00 * g1 - h01 * g0) / det;
        // A full Newton step can overshoot far from the optimum: halve it until it helps.
        let mut t = 1.0;
        let (next_a, next_b, next) = loop {
            let (na, nb) = (a - t * da, b - t * db);
            let l = loss(na, nb);
            if l <= current || t < 1e-8 {
                break (na, nb, l);
            }
            t /= 2.0;
        };
        if next > current {
            break;
        }
        (a, b, current) = (next_a, next_b, next);
        if (t * da).abs().max((t * db).abs()) < 1e-10 {
            break;
        }
    }
    (a, b)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Labels drawn from `probability(a + b x)` are fitted back to about `(a, b)`.
    #[test]
    fn the_line_fitted_is_the_one_the_labels_were_drawn_from() {
        let (a, b) = (-1.5, 0.6);
        let mut state = 7u64;
        let mut uniform = || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        let n = 200_000;
        let x: Vec<f64> = (0..n).map(|i| -4.0 + 8.0 * (i as f64) / n as f64).collect();
        let labels: Vec<bool> = x
            .iter()
            .map(|&x| uniform() < probability(a + b * x))
            .collect();
        let rows: Vec<usize> = (0..n).collect();
        let (fa, fb) = fit_line(&rows, &x, &labels);
        assert!((fa - a).abs() < 0.05, "{fa}");
        assert!((fb - b).abs() < 0.03, "{fb}");
    }

    #[test]
    fn no_rows_leave_the_model_as_it_is_and_one_label_is_refused() {
        let x = [0.0, 1.0, 2.0];
        assert_eq!(fit_line(&[], &x, &[false; 3]), (0.0, 1.0));
        let table = Table {
            names: vec!["a".into()],
            starts: vec![0, 2],
            labels: vec![false, false],
            width: 0,
            values: Vec::new(),
            counts: crate::Counts::default(),
        };
        let e = recalibrate(&table, RiskModel::shipped(), 1, 50.0, &[]).expect_err("refused");
        assert!(e.starts_with("0 of 2 hours are labelled septic"), "{e}");
    }
}

/// What a hospital asks of the paging threshold.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Target {
    /// At most this many alert episodes per 100 patient-days: the most sensitive
    /// threshold within that burden.
    Episodes(f64),
    /// At least this share of septic stays alerted in their onset window: the least
    /// burdensome threshold that reaches it.
    Sensitivity(f64),
}

/// One threshold tried: the configured policy with Vigil Risk advisory at it.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Tried {
    /// Vigil Risk's threshold, percent.
    pub threshold: u8,
    /// The policy's normalised utility.
    pub utility: f64,
    /// Its alert episodes per 100 patient-days.
    pub episodes_per_100_patient_days: f64,
    /// Its share of septic stays alerted in their onset window.
    pub sensitivity: f64,
}

/// The recommendation: the threshold, and every threshold tried on the way.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Recommendation {
    /// The threshold recommended, if any meets the target.
    pub threshold: Option<u8>,
    /// Each threshold replayed, in the order tried.
    pub tried: Vec<Tried>,
}

/// Recommends Vigil Risk's paging threshold for `target` on the stays of `input`:
/// starting from `evaluation`'s hourly curve of Vigil Risk (an hour positive at or above
/// the threshold, acting at once), each candidate is replayed through the configured
/// policy with Vigil Risk advisory at it (its other levels kept where above it), since
/// persistence and measured recovery change the burden; then the neighbouring thresholds
/// are replayed until the target's edge is found.
///
/// # Errors
///
/// As [`crate::run`].
pub fn recommend(
    input: &crate::Input,
    options: &crate::Options,
    evaluation: &crate::Evaluation,
    target: Target,
) -> Result<Recommendation, crate::Error> {
    let curve = evaluation.curves.thresholds(vigil_score::RuleId::Risk, 99);
    let start = match target {
        Target::Episodes(n) => curve
            .iter()
            .find(|p| p.episodes_per_100_patient_days <= n)
            .map_or(99, |p| p.threshold),
        Target::Sensitivity(s) => curve
            .iter()
            .rev()
            .find(|p| p.sensitivity >= s)
            .map_or(1, |p| p.threshold),
    };
    let mut tried: Vec<Tried> = Vec::new();
    let at = |t: u8, tried: &mut Vec<Tried>| -> Result<Tried, crate::Error> {
        if let Some(x) = tried.iter().find(|x| x.threshold == t) {
            return Ok(*x);
        }
        let mut policy = options.policy;
        let mut levels = policy.thresholds.risk;
        levels[0] = Some(t);
        for l in &mut levels[1..] {
            *l = l.filter(|m| *m > t);
        }
        policy.thresholds.risk = levels;
        let o = crate::Options {
            policy,
            bootstrap: 0,
            predictions: None,
            progress: false,
            ..options.clone()
        };
        let e = crate::run(input, &o)?;
        let f = &e.figures[crate::metrics::POLICY];
        let v = |x: &Option<crate::metrics::Estimate>| x.map_or(0.0, |x| x.value);
        let x = Tried {
            threshold: t,
            utility: v(&f.utility),
            episodes_per_100_patient_days: v(&f.episodes_per_100_patient_days),
            sensitivity: v(&f.sensitivity),
        };
        tried.push(x);
        Ok(x)
    };
    let meets = |x: &Tried| match target {
        Target::Episodes(n) => x.episodes_per_100_patient_days <= n,
        Target::Sensitivity(s) => x.sensitivity >= s,
    };
    // Burden falls and sensitivity with it as the threshold rises: a target of episodes
    // is met from some threshold up (the lowest such is the most sensitive), a target of
    // sensitivity up to some threshold (the highest such is the least burdensome).
    let toward_meeting: i16 = match target {
        Target::Episodes(_) => 1,
        Target::Sensitivity(_) => -1,
    };
    let mut t = start;
    let first = at(t, &mut tried)?;
    let mut best = meets(&first).then_some(t);
    if best.is_none() {
        // Step toward the target until it is met.
        while best.is_none() {
            let next = i16::from(t) + toward_meeting;
            if !(1..=99).contains(&next) {
                break;
            }
            t = next as u8;
            if meets(&at(t, &mut tried)?) {
                best = Some(t);
            }
        }
    } else {
        // Step away from it while it stays met.
        loop {
            let next = i16::from(t) - toward_meeting;
            if !(1..=99).contains(&next) || !meets(&at(next as u8, &mut tried)?) {
                break;
            }
            t = next as u8;
            best = Some(t);
        }
    }
    Ok(Recommendation {
        threshold: best,
        tried,
    })
}
