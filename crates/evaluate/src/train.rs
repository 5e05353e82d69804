//! Fitting Vigil Risk: the features of every stay-hour, grouped cross-validation, and a
//! penalised logistic regression on binned features (DESIGN.md, "Vigil Risk").
//!
//! Everything is deterministic: stays are taken in name order, folds are drawn from the
//! seed, every sum runs in one fixed order on one thread, so the same data and options
//! give the same model file, bit for bit. The steps:
//!
//! 1. [`Table::extract`]: each stay is replayed hour by hour into a
//!    [`vigil_score::Window`], and at the end of every hour each candidate feature is read
//!    with [`vigil_score::risk::feature_value`], the function the `risk` rule uses.
//! 2. For each penalty in the grid and each of the folds (stays split by the seed, so no
//!    stay is in both halves), a model is fitted on the other folds and estimates the
//!    held-out stays' hours.
//! 3. The penalty and the alert threshold (a whole percentage) are the ones with the
//!    highest held-out normalised utility, among thresholds that raise at most the
//!    allowed alert episodes per 100 patient-days.
//! 4. The final model is fitted on every stay with that penalty; its notes carry the data,
//!    the attribution, the options and the held-out figures.
//!
//! The model: each feature's values are cut at quantiles of its training values into at
//! most [`Options::bins`] bins; each bin but the reference one (the most common) gets a
//! weight; a missing feature contributes nothing. The weights and the intercept maximise
//! the log-likelihood minus `lambda / 2` times the sum of squared weights (the intercept
//! is not penalised), by Newton's method.

use std::collections::BTreeMap;
use std::path::Path;

use vigil_score::risk::{Feature, Input, RiskModel, Stat, percent, probability};
use vigil_score::{Config, Param, Window};

use std::sync::Arc;

use vigil_score::alert::PolicyConfig;

use crate::metrics::{Cohort, Figures, StaySummary, figures};
use crate::replay::{reference_policy, replay};
use crate::utility::StayUtility;
use crate::{Counts, Stay, psv};

/// The physiological candidates: for each parameter the challenge data chart (vital
/// signs, blood gas and laboratory values), its current value and its highest and lowest
/// of the last 24 hours. No feature says when or how often something was measured.
pub fn physiological() -> Vec<Input> {
    const PARAMS: [Param; 14] = [
        Param::HeartRate,
        Param::RespRate,
        Param::Temperature,
        Param::Sbp,
        Param::Map,
        Param::Dbp,
        Param::Spo2,
        Param::Fio2,
        Param::Paco2,
        Param::Lactate,
        Param::Wbc,
        Param::Creatinine,
        Param::Platelets,
        Param::Bilirubin,
    ];
    PARAMS
        .iter()
        .flat_map(|&p| [Stat::Now, Stat::Max24h, Stat::Min24h].map(|s| Input::Reading(p, s)))
        .collect()
}

/// The shipped model's candidates: the physiological ones and the hours the patient has
/// been observed (in the training data, hours since ICU admission).
pub fn standard() -> Vec<Input> {
    let mut out = physiological();
    out.push(Input::Observed);
    out
}

/// The vital signs whose 6-hour trend [`with_trends`] offers.
const TREND_PARAMS: [Param; 6] = [
    Param::HeartRate,
    Param::RespRate,
    Param::Temperature,
    Param::Sbp,
    Param::Map,
    Param::Spo2,
];

/// `base` plus each vital sign's change over 6 hours (the current value minus the one in
/// force 6 hours before): how the patient is moving, whatever the charting habit.
pub fn with_trends(mut base: Vec<Input>) -> Vec<Input> {
    base.extend(
        TREND_PARAMS
            .iter()
            .map(|&p| Input::Reading(p, Stat::Change6h)),
    );
    base
}

/// The standard candidates plus, for every parameter, the hours since it was last
/// measured: the charting-habit features, for comparison only.
pub fn with_measurement_times() -> Vec<Input> {
    let mut out = standard();
    let mut params: Vec<Param> = physiological()
        .iter()
        .filter_map(|i| match i {
            Input::Reading(p, _) => Some(*p),
            Input::Observed => None,
        })
        .collect();
    params.dedup();
    out.extend(params.into_iter().map(|p| Input::Reading(p, Stat::Age)));
    out
}

/// How to train.
#[derive(Clone, Debug)]
pub struct Options {
    /// Engine settings (staleness limits) used to read the features.
    pub config: Config,
    /// The candidate features.
    pub features: Vec<Input>,
    /// Seed of the fold assignment.
    pub seed: u64,
    /// Number of folds (stays grouped).
    pub folds: usize,
    /// Most bins per feature.
    pub bins: usize,
    /// Penalties tried.
    pub lambdas: Vec<f64>,
    /// Most alert episodes per 100 patient-days a threshold may raise (held out).
    pub max_episodes: f64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            config: Config::default(),
            features: standard(),
            seed: 2019,
            folds: 5,
            bins: 8,
            lambdas: vec![100.0, 300.0, 1000.0, 3000.0],
            max_episodes: 100.0,
        }
    }
}

/// Every stay-hour's features and label.
#[derive(Clone, Debug, Default)]
pub struct Table {
    /// Stay names, in order.
    pub names: Vec<String>,
    /// Where each stay's rows start (one more entry than stays: the end).
    pub starts: Vec<usize>,
    /// Each row's label.
    pub labels: Vec<bool>,
    /// Features per row.
    pub width: usize,
    /// Row-major feature values; NaN where missing.
    pub values: Vec<f64>,
    /// What was read.
    pub counts: Counts,
}

impl Table {
    /// Replays each stay of `stays` (see [`read_stays`]) and reads `features`.
    pub fn of(stays: &[Stay], counts: Counts, features: &[Input], config: &Config) -> Table {
        let mut table = Table::extract(stays, features, config);
        table.counts = counts;
        table.counts.stays = stays.len() as u64;
        table.counts.hours = table.labels.len() as u64;
        table
    }

    /// Replays each stay and reads `features` at the end of every hour.
    pub fn extract(stays: &[Stay], features: &[Input], config: &Config) -> Table {
        let mut t = Table {
            width: features.len(),
            ..Table::default()
        };
        for stay in stays {
            t.names.push(stay.name.clone());
            t.starts.push(t.labels.len());
            let mut window = Window::new();
            for (h, readings) in stay.hours.iter().enumerate() {
                for obs in readings {
                    window.ingest(obs, &config.staleness);
                }
                let end = stay.hour_end(h);
                for input in features {
                    t.values.push(
                        input
                            .value(&window, end, &config.staleness)
                            .unwrap_or(f64::NAN),
                    );
                }
                t.labels.push(stay.labels.get(h).copied().unwrap_or(false));
            }
        }
        t.starts.push(t.labels.len());
        t
    }

    pub(crate) fn stays(&self) -> usize {
        self.names.len()
    }

    /// The table of the stays numbered `stays` only, in that order.
    fn subset(&self, stays: &[usize]) -> Table {
        let mut t = Table {
            width: self.width,
            counts: self.counts.clone(),
            ..Table::default()
        };
        for &s in stays {
            t.names.push(self.names[s].clone());
            t.starts.push(t.labels.len());
            let rows = self.starts[s]..self.starts[s + 1];
            t.labels.extend_from_slice(&self.labels[rows.clone()]);
            t.values
                .extend_from_slice(&self.values[rows.start * self.width..rows.end * self.width]);
        }
        t.starts.push(t.labels.len());
        t
    }

    pub(crate) fn row(&self, r: usize) -> &[f64] {
        &self.values[r * self.width..(r + 1) * self.width]
    }
}

/// Reads the PSV stays of `path` (a directory or a `.tar.gz`), in name order.
///
/// # Errors
///
/// A message when the input cannot be read or holds no stay.
pub fn read_stays(path: &Path) -> Result<(Vec<Stay>, Counts), String> {
    let mut counts = Counts::default();
    let mut stays = Vec::new();
    psv::read_stays(path, &mut counts, |stay, _, _| stays.push(stay))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if stays.is_empty() {
        return Err(format!("{}: no stay to train on", path.display()));
    }
    stays.sort_by(|a, b| a.name.cmp(&b.name));
    Ok((stays, counts))
}

/// Held-out figures of one penalty (or of the chosen model).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Heldout {
    /// The penalty.
    pub lambda: f64,
    /// The chosen threshold, percent.
    pub threshold: u8,
    /// Normalised utility of the held-out hours at that threshold.
    pub utility: f64,
    /// Alert episodes per 100 patient-days at that threshold.
    pub episodes: f64,
    /// Septic stays with an alert from 12 h before to 3 h after onset, share.
    pub sensitivity: f64,
    /// Hour-level area under the ROC curve of the held-out estimates.
    pub auroc: f64,
}

/// What training produced.
#[derive(Clone, Debug)]
pub struct Trained {
    /// The final model.
    pub model: RiskModel,
    /// The held-out figures of every penalty tried; the chosen one first.
    pub heldout: Vec<Heldout>,
    /// The fold of each stay.
    pub folds: Vec<usize>,
    /// The chosen penalty's model of each fold (fitted on the other folds), with the
    /// chosen threshold.
    pub fold_models: Vec<RiskModel>,
}

/// Trains on `table`; `source` names the data in the model's notes.
pub fn train(table: &Table, options: &Options, features: &[Input], source: &[String]) -> Trained {
    let folds = assign_folds(table.stays(), options.folds, options.seed);
    let mut heldout = Vec::new();
    let mut models = Vec::new();
    for &lambda in &options.lambdas {
        let mut estimates = vec![0.0; table.labels.len()];
        let mut fold_models = Vec::new();
        for fold in 0..options.folds {
            let train_rows = rows_where(table, &folds, |f| f != fold);
            let model = fit(table, &train_rows, features, options.bins, lambda);
            for s in (0..table.stays()).filter(|&s| folds[s] == fold) {
                let rows = table.starts[s]..table.starts[s + 1];
                for (r, e) in rows.clone().zip(&mut estimates[rows]) {
                    *e = probability(log_odds(&model, table.row(r)));
                }
            }
            fold_models.push(model);
        }
        heldout.push(choose_threshold(
            table,
            &estimates,
            lambda,
            options.max_episodes,
        ));
        models.push(fold_models);
    }
    // The best held-out utility; on a tie, the stronger penalty.
    let best = heldout
        .iter()
        .enumerate()
        .max_by(|(_, a), (_, b)| {
            a.utility
                .total_cmp(&b.utility)
                .then(a.lambda.total_cmp(&b.lambda))
        })
        .map_or(0, |(i, _)| i);
    heldout.swap(0, best);
    let mut fold_models = models.swap_remove(best);
    let chosen = heldout[0];
    let threshold = chosen.threshold.clamp(1, 100);
    for m in &mut fold_models {
        m.threshold_percent = threshold;
    }
    let all = rows_where(table, &folds, |_| true);
    let mut model = fit(table, &all, features, options.bins, chosen.lambda);
    model.threshold_percent = threshold;
    model.notes = notes(table, options, &heldout, source);
    Trained {
        model,
        heldout,
        folds,
        fold_models,
    }
}

/// Every stay replayed through the service's engine and alert semantics with its fold's
/// model (one that never saw it), under `policy` with Vigil Risk alerting at the chosen
/// threshold: the held-out figures `vigil evaluate` would report. The rules' rows are as
/// in `vigil evaluate`; Vigil Risk's row is the held-out one.
pub fn replay_heldout(
    stays: &[Stay],
    trained: &Trained,
    config: &Config,
    policy: &PolicyConfig,
    bootstrap: usize,
    seed: u64,
) -> (Cohort, Vec<Figures>) {
    let configs: Vec<Config> = trained
        .fold_models
        .iter()
        .map(|m| Config {
            risk: Arc::new(m.clone()),
            ..config.clone()
        })
        .collect();
    let summaries: Vec<StaySummary> = stays
        .iter()
        .zip(&trained.folds)
        .map(|(stay, &fold)| {
            let c = &configs[fold];
            let reference = reference_policy(policy, c);
            let trace = replay(stay, c, policy, &reference);
            StaySummary::of(&stay.labels, &trace)
        })
        .collect();
    figures(&summaries, bootstrap, seed)
}

fn notes(table: &Table, options: &Options, heldout: &[Heldout], source: &[String]) -> Vec<String> {
    let c = heldout[0];
    let septic = (0..table.stays())
        .filter(|&s| {
            table.labels[table.starts[s]..table.starts[s + 1]]
                .iter()
                .any(|&l| l)
        })
        .count();
    let mut n = vec![
        "Vigil Risk: a penalised logistic regression on binned features of the patient's window."
            .to_owned(),
        "Decision support: a statistical estimate. Validate it on your own patients with"
            .to_owned(),
        "`vigil evaluate` before use (model card: CLINICAL.md, \"Vigil Risk\").".to_owned(),
        String::new(),
    ];
    let (what, attribution) = match source.iter().position(|l| l == PHYSIONET_ATTRIBUTION[1]) {
        // The attribution's opening blank line is the one the counts line gets below.
        Some(i) => (&source[..i.saturating_sub(1)], &source[i..]),
        None => (source, &[][..]),
    };
    n.extend(what.iter().cloned());
    n.extend([
        format!(
            "{} stays, {} hours, {} stays labelled septic; {} stays left out.",
            table.stays(),
            table.labels.len(),
            septic,
            table.counts.rejected_stays.len()
        ),
        String::new(),
        format!(
            "Trained by `vigil train`: seed {}, {} folds grouped by stay, at most {} bins per feature,",
            options.seed, options.folds, options.bins
        ),
        format!(
            "penalties tried {:?}, at most {} alert episodes per 100 patient-days.",
            options.lambdas, options.max_episodes
        ),
        format!(
            "Held out ({}-fold, by stay): penalty {}, threshold {} %, normalised utility {:.3},",
            options.folds, c.lambda, c.threshold, c.utility
        ),
        format!(
            "hour-level AUROC {:.3}, {:.1} alert episodes per 100 patient-days, {:.1} % of septic stays alerted.",
            c.auroc,
            c.episodes,
            100.0 * c.sensitivity
        ),
    ]);
    // Where the data came from comes before how the model was trained, as it always has.
    if !attribution.is_empty() {
        let at = n
            .iter()
            .position(|l| l.starts_with("Trained by `vigil train`"))
            .unwrap_or(n.len());
        n.splice(at..at, attribution.iter().cloned());
    }
    n
}

/// The attribution the PhysioNet 2019 data's license asks of a model trained on them:
/// `vigil train --format psv` puts it in the model's notes (a blank line, then it, then a
/// blank line).
pub const PHYSIONET_ATTRIBUTION: [&str; 8] = [
    "",
    "Data: PhysioNet/CinC Challenge 2019, training set A, used under CC BY 4.0",
    "(https://physionet.org/content/challenge-2019/view-license/1.0.0/). Cite:",
    "Reyna MA, Josef CS, Jeter R, et al. Early Prediction of Sepsis From Clinical Data:",
    "the PhysioNet/Computing in Cardiology Challenge 2019. Crit Care Med 2020;48(2):210-217.",
    "Reyna M, et al. PhysioNet (2019), version 1.0.0, https://doi.org/10.13026/v64v-d857.",
    "Goldberger A, et al. PhysioBank, PhysioToolkit, and PhysioNet. Circulation 2000;101(23):e215-e220.",
    "",
];

/// Reads labelled stays: PSV stay files (`labels` `None`), or native observation events
/// with a labels file (`vigil evaluate --format jsonl`), in name order.
///
/// # Errors
///
/// A message when the input cannot be read or holds no stay.
pub fn read_labelled(path: &Path, labels: Option<&Path>) -> Result<(Vec<Stay>, Counts), String> {
    let Some(labels) = labels else {
        return read_stays(path);
    };
    let mut counts = Counts::default();
    let mut stays = crate::jsonl::read(path, labels, &mut counts).map_err(|e| e.to_string())?;
    if stays.is_empty() {
        return Err(format!("{}: no labelled stay to train on", path.display()));
    }
    stays.sort_by(|a, b| a.name.cmp(&b.name));
    Ok((stays, counts))
}

/// Fold of each stay: a seeded shuffle dealt round-robin.
pub(crate) fn assign_folds(stays: usize, folds: usize, seed: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..stays).collect();
    let mut state = seed;
    for i in (1..stays).rev() {
        let j = (splitmix(&mut state) % (i as u64 + 1)) as usize;
        order.swap(i, j);
    }
    let mut fold = vec![0; stays];
    for (k, &s) in order.iter().enumerate() {
        fold[s] = k % folds.max(1);
    }
    fold
}

fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn rows_where(table: &Table, folds: &[usize], keep: impl Fn(usize) -> bool) -> Vec<usize> {
    (0..table.stays())
        .filter(|&s| keep(folds[s]))
        .flat_map(|s| table.starts[s]..table.starts[s + 1])
        .collect()
}

/// The model's log-odds for one row of feature values, summed as
/// [`RiskModel::log_odds`] sums them (same order, same bits).
pub(crate) fn log_odds(model: &RiskModel, row: &[f64]) -> f64 {
    let mut sum = model.intercept;
    for (f, &v) in model.features.iter().zip(row) {
        if !v.is_nan() {
            sum += f.weights[f.bin(v)];
        }
    }
    sum
}

/// Quantile cuts of a feature's values over `rows`.
fn cuts(table: &Table, rows: &[usize], column: usize, bins: usize) -> Vec<f64> {
    let mut v: Vec<f64> = rows
        .iter()
        .map(|&r| table.values[r * table.width + column])
        .filter(|v| !v.is_nan())
        .collect();
    if v.is_empty() {
        return Vec::new();
    }
    v.sort_by(f64::total_cmp);
    // A model file holds at most MAX_CUTS cuts per feature.
    let bins = bins.clamp(1, vigil_score::risk::MAX_CUTS + 1);
    let mut out: Vec<f64> = (1..bins).map(|k| v[k * v.len() / bins]).collect();
    out.dedup();
    // A cut at the smallest value leaves its lower bin empty.
    out.retain(|c| *c > v[0]);
    out
}

/// Fits the model on `rows`.
fn fit(table: &Table, rows: &[usize], features: &[Input], bins: usize, lambda: f64) -> RiskModel {
    // Bins, reference bins and columns.
    let mut model_features = Vec::with_capacity(features.len());
    let mut columns: Vec<Vec<Option<usize>>> = Vec::with_capacity(features.len());
    let mut dim = 1; // column 0: the intercept
    for (j, &input) in features.iter().enumerate() {
        let c = cuts(table, rows, j, bins);
        let f = Feature {
            input,
            weights: vec![0.0; c.len() + 1],
            cuts: c,
        };
        let mut count = vec![0usize; f.weights.len()];
        for &r in rows {
            let v = table.values[r * table.width + j];
            if !v.is_nan() {
                count[f.bin(v)] += 1;
            }
        }
        let reference = (0..count.len())
            .max_by(|&a, &b| count[a].cmp(&count[b]).then(b.cmp(&a)))
            .unwrap_or(0);
        let cols = (0..count.len())
            .map(|b| {
                (b != reference && count[b] > 0).then(|| {
                    dim += 1;
                    dim - 1
                })
            })
            .collect();
        columns.push(cols);
        model_features.push(f);
    }
    // Each row's active columns.
    let mut active: Vec<u32> = Vec::new();
    let mut starts = Vec::with_capacity(rows.len() + 1);
    let mut y = Vec::with_capacity(rows.len());
    for &r in rows {
        starts.push(active.len());
        for (j, f) in model_features.iter().enumerate() {
            let v = table.values[r * table.width + j];
            if !v.is_nan()
                && let Some(c) = columns[j][f.bin(v)]
            {
                active.push(c as u32);
            }
        }
        y.push(if table.labels[r] { 1.0 } else { 0.0 });
    }
    starts.push(active.len());
    let beta = newton(&active, &starts, &y, dim, lambda);
    for (j, f) in model_features.iter_mut().enumerate() {
        for (b, w) in f.weights.iter_mut().enumerate() {
            *w = columns[j][b].map_or(0.0, |c| beta[c]);
        }
    }
    RiskModel::new(Vec::new(), beta[0], 1, model_features)
}

/// Penalised logistic regression by Newton's method on sparse binary rows.
fn newton(active: &[u32], starts: &[usize], y: &[f64], dim: usize, lambda: f64) -> Vec<f64> {
    let n = y.len();
    let mean = y.iter().sum::<f64>() / n.max(1) as f64;
    let mut beta = vec![0.0; dim];
    beta[0] = (mean.clamp(1e-6, 1.0 - 1e-6) / (1.0 - mean.clamp(1e-6, 1.0 - 1e-6))).ln();
    let mut grad = vec![0.0; dim];
    let mut hess = vec![0.0; dim * dim];
    for _ in 0..50 {
        grad.iter_mut().for_each(|g| *g = 0.0);
        hess.iter_mut().for_each(|h| *h = 0.0);
        for i in 0..n {
            let cols = &active[starts[i]..starts[i + 1]];
            let mut z = beta[0];
            for &c in cols {
                z += beta[c as usize];
            }
            let p = probability(z);
            let r = p - y[i];
            let w = p * (1.0 - p);
            grad[0] += r;
            hess[0] += w;
            for (k, &a) in cols.iter().enumerate() {
                let a = a as usize;
                grad[a] += r;
                hess[a] += w; // row 0, column a (upper triangle)
                for &b in &cols[k..] {
                    let b = b as usize;
                    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
                    hess[lo * dim + hi] += w;
                }
            }
        }
        for c in 1..dim {
            grad[c] += lambda * beta[c];
            hess[c * dim + c] += lambda;
        }
        // Mirror the upper triangle.
        for a in 0..dim {
            for b in 0..a {
                hess[a * dim + b] = hess[b * dim + a];
            }
        }
        let Some(step) = solve_cholesky(&hess, &grad, dim) else {
            break;
        };
        let mut largest: f64 = 0.0;
        for c in 0..dim {
            beta[c] -= step[c];
            largest = largest.max(step[c].abs());
        }
        if largest < 1e-10 {
            break;
        }
    }
    beta
}

/// Solves `a x = b` for a symmetric positive definite `a`; `None` if it is not.
fn solve_cholesky(a: &[f64], b: &[f64], n: usize) -> Option<Vec<f64>> {
    let mut l = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..=i {
            let mut s = a[i * n + j];
            for k in 0..j {
                s -= l[i * n + k] * l[j * n + k];
            }
            if i == j {
                if s <= 0.0 {
                    return None;
                }
                l[i * n + i] = s.sqrt();
            } else {
                l[i * n + j] = s / l[j * n + j];
            }
        }
    }
    let mut x = b.to_vec();
    for i in 0..n {
        let mut s = x[i];
        for k in 0..i {
            s -= l[i * n + k] * x[k];
        }
        x[i] = s / l[i * n + i];
    }
    for i in (0..n).rev() {
        let mut s = x[i];
        for k in i + 1..n {
            s -= l[k * n + i] * x[k];
        }
        x[i] = s / l[i * n + i];
    }
    Some(x)
}

/// The threshold (whole percent) with the best held-out utility within the episode limit.
pub(crate) fn choose_threshold(
    table: &Table,
    estimates: &[f64],
    lambda: f64,
    max_episodes: f64,
) -> Heldout {
    let mut best: Option<Heldout> = None;
    for t in 1..=99u8 {
        let candidate = at_threshold(table, estimates, lambda, t);
        if candidate.episodes > max_episodes {
            continue;
        }
        if best.is_none_or(|b| candidate.utility > b.utility) {
            best = Some(candidate);
        }
    }
    let mut chosen = best.unwrap_or(Heldout {
        lambda,
        threshold: 100,
        utility: 0.0,
        episodes: 0.0,
        sensitivity: 0.0,
        auroc: 0.0,
    });
    chosen.auroc = auroc(&table.labels, estimates);
    chosen
}

/// The figures of `estimates` with an hour alerted when its estimate is at or above
/// `threshold` percent (AUROC left 0).
pub fn at_threshold(table: &Table, estimates: &[f64], lambda: f64, threshold: u8) -> Heldout {
    let days = table.labels.len() as f64 / 24.0;
    let mut u = StayUtility::default();
    let mut episodes = 0usize;
    let mut septic = 0usize;
    let mut detected = 0usize;
    let mut alerts = Vec::new();
    for s in 0..table.stays() {
        let range = table.starts[s]..table.starts[s + 1];
        let labels = &table.labels[range.clone()];
        alerts.clear();
        alerts.extend(estimates[range].iter().map(|&p| percent(p) >= threshold));
        u.add(StayUtility::of(labels, &alerts));
        episodes += alerts
            .iter()
            .enumerate()
            .filter(|&(h, &a)| a && (h == 0 || !alerts[h - 1]))
            .count();
        if let Some(onset) = crate::utility::t_sepsis(labels) {
            septic += 1;
            let (from, to) = crate::metrics::onset_window(onset, alerts.len());
            if alerts
                .iter()
                .enumerate()
                .any(|(h, &a)| a && h >= from && h <= to)
            {
                detected += 1;
            }
        }
    }
    Heldout {
        lambda,
        threshold,
        utility: u.normalised(),
        episodes: 100.0 * episodes as f64 / days.max(f64::MIN_POSITIVE),
        sensitivity: detected as f64 / septic.max(1) as f64,
        auroc: 0.0,
    }
}

/// Each fold's model (of [`Trained::fold_models`]) estimating the stays of `other`, a
/// variant of the training data (the same stays charted otherwise): each stay by the
/// model of its fold, one that never saw it, matched by name; stays of `other` not in
/// training are left out. The figures at the chosen threshold, with the AUROC.
pub fn heldout_on(trained: &Trained, training: &Table, other: &Table) -> Heldout {
    let fold_of: std::collections::HashMap<&str, usize> = training
        .names
        .iter()
        .zip(&trained.folds)
        .map(|(n, f)| (n.as_str(), *f))
        .collect();
    let mut kept = Table {
        width: other.width,
        ..Table::default()
    };
    let mut estimates = Vec::new();
    for s in 0..other.stays() {
        let Some(&fold) = fold_of.get(other.names[s].as_str()) else {
            continue;
        };
        let model = &trained.fold_models[fold];
        kept.names.push(other.names[s].clone());
        kept.starts.push(kept.labels.len());
        for r in other.starts[s]..other.starts[s + 1] {
            kept.labels.push(other.labels[r]);
            estimates.push(probability(log_odds(model, other.row(r))));
        }
    }
    kept.starts.push(kept.labels.len());
    let chosen = trained.heldout[0];
    let mut h = at_threshold(&kept, &estimates, chosen.lambda, chosen.threshold);
    h.auroc = auroc(&kept.labels, &estimates);
    h
}

/// Nested cross-validation: for each outer fold, the feature set (one of `candidates`,
/// each a table of the same stays with the features it reads), the penalty and the
/// threshold are chosen by an inner cross-validation on the other folds' stays only (the
/// best inner held-out utility; on a tie, the earlier candidate), and the model fitted
/// on them estimates the outer fold's stays. Returns the figures of those estimates, each
/// at its own fold's chosen threshold (a held-out figure no choice has seen), and the
/// candidate chosen in each fold.
pub fn nested(candidates: &[(&Table, &[Input])], options: &Options) -> (Heldout, Vec<usize>) {
    let Some(&(first, _)) = candidates.first() else {
        return (Heldout::default(), Vec::new());
    };
    let outer = assign_folds(first.stays(), options.folds, options.seed);
    let mut estimates = vec![0.0; first.labels.len()];
    let mut alerted = vec![false; first.labels.len()];
    let mut chosen_sets = Vec::with_capacity(options.folds);
    for fold in 0..options.folds {
        let inner_stays: Vec<usize> = (0..first.stays()).filter(|&s| outer[s] != fold).collect();
        let inner_options = Options {
            seed: options.seed.wrapping_add(1 + fold as u64),
            ..options.clone()
        };
        let mut best: Option<(usize, Heldout)> = None;
        for (k, (table, features)) in candidates.iter().enumerate() {
            let inner = table.subset(&inner_stays);
            let h = train(&inner, &inner_options, features, &[]).heldout[0];
            if best.is_none_or(|(_, b)| h.utility > b.utility) {
                best = Some((k, h));
            }
        }
        let Some((k, chosen)) = best else {
            continue;
        };
        chosen_sets.push(k);
        let (table, features) = candidates[k];
        let train_rows = rows_where(table, &outer, |f| f != fold);
        let model = fit(table, &train_rows, features, options.bins, chosen.lambda);
        for s in (0..table.stays()).filter(|&s| outer[s] == fold) {
            for r in table.starts[s]..table.starts[s + 1] {
                estimates[r] = probability(log_odds(&model, table.row(r)));
                alerted[r] = percent(estimates[r]) >= chosen.threshold;
            }
        }
    }
    // Alerted hours as estimates of 1 or 0 at a threshold of 50 %: each fold's own
    // threshold already applied.
    let as_alerts: Vec<f64> = alerted.iter().map(|&a| f64::from(u8::from(a))).collect();
    let mut h = at_threshold(first, &as_alerts, f64::NAN, 50);
    h.threshold = 0;
    h.auroc = auroc(&first.labels, &estimates);
    (h, chosen_sets)
}

/// Area under the ROC curve of `scores` for `labels` (ties count half).
pub fn auroc(labels: &[bool], scores: &[f64]) -> f64 {
    let mut by: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
    for (&l, &s) in labels.iter().zip(scores) {
        let e = by.entry(s.to_bits()).or_default();
        if l {
            e.1 += 1;
        } else {
            e.0 += 1;
        }
    }
    // Probabilities are non-negative, so their bits sort as the values do.
    let (neg, pos) = by.values().fold((0, 0), |(n, p), &(a, b)| (n + a, p + b));
    if neg == 0 || pos == 0 {
        return f64::NAN;
    }
    let mut below = 0u64;
    let mut area = 0.0;
    for &(n, p) in by.values() {
        area += p as f64 * (below as f64 + n as f64 / 2.0);
        below += n;
    }
    area / (neg as f64 * pos as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `stays` stays of 30 hours, a third septic from hour 20; the one feature is 1 in the
    /// hours labelled septic and 0 otherwise when `informative`, else the same for every
    /// stay (it says nothing).
    fn table(stays: usize, informative: bool) -> Table {
        let mut t = Table {
            width: 1,
            ..Table::default()
        };
        for s in 0..stays {
            t.names.push(format!("s{s:03}"));
            t.starts.push(t.labels.len());
            for h in 0..30 {
                let label = s % 3 == 0 && h >= 14;
                t.labels.push(label);
                t.values.push(if informative {
                    f64::from(u8::from(label))
                } else {
                    f64::from(u8::from(h % 2 == 0))
                });
            }
        }
        t.starts.push(t.labels.len());
        t
    }

    #[test]
    fn nested_cross_validation_chooses_the_informative_features_in_every_fold() {
        let input = [Input::Reading(Param::HeartRate, Stat::Now)];
        let (good, noise) = (table(60, true), table(60, false));
        let options = Options {
            lambdas: vec![1.0],
            ..Options::default()
        };
        // The informative set second: chosen on its merit, not by its place.
        let (h, chosen) = nested(&[(&noise, &input), (&good, &input)], &options);
        assert_eq!(chosen, vec![1; options.folds]);
        assert!(h.utility > 0.5, "{h:?}");
        assert!(h.auroc > 0.99, "{h:?}");
        // Noise alone is chosen when it is the only candidate, and does worse.
        let (alone, chosen) = nested(&[(&noise, &input)], &options);
        assert_eq!(chosen, vec![0; options.folds]);
        assert!(alone.utility < h.utility, "{alone:?} {h:?}");
        assert!(alone.auroc < 0.6, "{alone:?}");
    }
}
