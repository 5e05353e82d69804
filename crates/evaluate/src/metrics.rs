//! The figures of an evaluation, from stay traces.
//!
//! Definitions (EVALUATION.md states them for readers):
//!
//! - a **predictor** is one of the six rules alone (at its published threshold) or the
//!   configured policy as a whole; an hour is a positive prediction while it has an alert
//!   active;
//! - the **onset window** of a septic stay is the hours from `t_sepsis − 12` to
//!   `t_sepsis + 3` (the challenge's window of useful predictions), within the stay;
//! - **sensitivity**: septic stays with a positive hour in their onset window;
//! - **non-septic alerted**: non-septic stays with any positive hour;
//! - an **alert episode** is a run of consecutive positive hours; **episodes per 100
//!   patient-days** counts them over all stays' hours; an episode is a **true** one when
//!   it overlaps its septic stay's onset window, and **PPV** is the share of true episodes;
//! - **lead time** of a detected septic stay: `t_sepsis` minus the first positive hour of
//!   its onset window (−3 to 12 hours; negative is after onset);
//! - **AUROC** and **AUPRC** (average precision) of each rule's score, hour by hour,
//!   against the hour's `SepsisLabel` (the challenge's hourly labels);
//! - **coverage** of a parameter: the share of all hours in which it had a current
//!   reading.
//!
//! Confidence intervals are 95 % percentile intervals of a patient-level bootstrap: stays
//! are resampled with replacement and every figure recomputed.

use serde::Serialize;
use vigil_score::alert::RULES;
use vigil_score::{Param, RuleId};

use crate::replay::Trace;
use crate::utility::{StayUtility, hour_utility, t_sepsis};

/// The six rules and the configured policy.
pub const PREDICTORS: usize = RULES + 1;
/// The index of the configured policy among the predictors.
pub const POLICY: usize = RULES;
/// Score bins: every rule's score lies in 0..=24 (SOFA's maximum).
pub const BINS: usize = 25;
const LEADS: usize = 16; // -3..=12 hours

/// What one stay contributes to every figure that gets a confidence interval.
#[derive(Clone, Debug, Default)]
pub struct StaySummary {
    hours: u32,
    septic: bool,
    best: f64,
    inaction: f64,
    observed: [f64; PREDICTORS],
    alerted: [bool; PREDICTORS],
    detected: [bool; PREDICTORS],
    lead: [Option<i8>; PREDICTORS],
    episodes: [u16; PREDICTORS],
    true_episodes: [u16; PREDICTORS],
    positive_hours: [u32; PREDICTORS],
    /// (rule, score, hours labelled 0, hours labelled 1).
    hist: Vec<(u8, u8, u32, u32)>,
}

/// The onset window of a septic stay of `n` hours: its first and last hour.
pub(crate) fn onset_window(onset: i64, n: usize) -> (usize, usize) {
    let from = (onset - 12).max(0) as usize;
    let to = ((onset + 3).max(0) as usize).min(n.saturating_sub(1));
    (from, to)
}

impl StaySummary {
    /// Summarises one stay's trace against its labels.
    pub fn of(labels: &[bool], trace: &Trace) -> StaySummary {
        let onset = t_sepsis(labels);
        let base = StayUtility::of(labels, &[]);
        let mut s = StaySummary {
            hours: trace.hours as u32,
            septic: onset.is_some(),
            best: base.best,
            inaction: base.inaction,
            ..StaySummary::default()
        };
        let policy = trace.policy();
        for k in 0..PREDICTORS {
            let p: &[bool] = if k == POLICY {
                &policy
            } else {
                &trace.rules[k]
            };
            s.observed[k] = crate::utility::utility(labels, p);
            s.alerted[k] = p.iter().any(|&x| x);
            s.positive_hours[k] = p.iter().filter(|&&x| x).count() as u32;
            let window = onset.map(|o| onset_window(o, p.len()));
            let mut h = 0;
            while h < p.len() {
                if !p[h] {
                    h += 1;
                    continue;
                }
                let start = h;
                while h < p.len() && p[h] {
                    h += 1;
                }
                s.episodes[k] += 1;
                if let Some((w0, w1)) = window
                    && start <= w1
                    && h > w0
                {
                    s.true_episodes[k] += 1;
                }
            }
            if let (Some(o), Some((w0, w1))) = (onset, window)
                && let Some(first) = (w0..=w1).find(|&h| p.get(h) == Some(&true))
            {
                s.detected[k] = true;
                s.lead[k] = Some((o - first as i64) as i8);
            }
        }
        let mut hist = [[[0u32; 2]; BINS]; RULES];
        for (r, scores) in trace.scores.iter().enumerate() {
            for (&score, &label) in scores.iter().zip(labels) {
                hist[r][usize::from(score).min(BINS - 1)][usize::from(label)] += 1;
            }
        }
        for (r, bins) in hist.iter().enumerate() {
            for (b, &[neg, pos]) in bins.iter().enumerate() {
                if neg + pos > 0 {
                    s.hist.push((r as u8, b as u8, neg, pos));
                }
            }
        }
        s
    }
}

/// Additive totals over a (re)sampled cohort, from which the figures follow.
#[derive(Clone, Debug)]
struct Sums {
    stays: f64,
    septic: f64,
    hours: f64,
    best: f64,
    inaction: f64,
    observed: [f64; PREDICTORS],
    alerted_non_septic: [f64; PREDICTORS],
    detected: [f64; PREDICTORS],
    episodes: [f64; PREDICTORS],
    true_episodes: [f64; PREDICTORS],
    positive_hours: [f64; PREDICTORS],
    leads: [[f64; LEADS]; PREDICTORS],
    hist: [[[f64; 2]; BINS]; RULES],
}

impl Sums {
    fn new() -> Sums {
        Sums {
            stays: 0.0,
            septic: 0.0,
            hours: 0.0,
            best: 0.0,
            inaction: 0.0,
            observed: [0.0; PREDICTORS],
            alerted_non_septic: [0.0; PREDICTORS],
            detected: [0.0; PREDICTORS],
            episodes: [0.0; PREDICTORS],
            true_episodes: [0.0; PREDICTORS],
            positive_hours: [0.0; PREDICTORS],
            leads: [[0.0; LEADS]; PREDICTORS],
            hist: [[[0.0; 2]; BINS]; RULES],
        }
    }

    fn add(&mut self, s: &StaySummary, w: f64) {
        self.stays += w;
        self.hours += w * f64::from(s.hours);
        self.best += w * s.best;
        self.inaction += w * s.inaction;
        if s.septic {
            self.septic += w;
        }
        for k in 0..PREDICTORS {
            self.observed[k] += w * s.observed[k];
            if !s.septic && s.alerted[k] {
                self.alerted_non_septic[k] += w;
            }
            if s.detected[k] {
                self.detected[k] += w;
            }
            self.episodes[k] += w * f64::from(s.episodes[k]);
            self.true_episodes[k] += w * f64::from(s.true_episodes[k]);
            self.positive_hours[k] += w * f64::from(s.positive_hours[k]);
            if let Some(l) = s.lead[k] {
                self.leads[k][(i64::from(l) + 3).clamp(0, LEADS as i64 - 1) as usize] += w;
            }
        }
        for &(r, b, neg, pos) in &s.hist {
            let bin = &mut self.hist[usize::from(r)][usize::from(b)];
            bin[0] += w * f64::from(neg);
            bin[1] += w * f64::from(pos);
        }
    }

    fn figures(&self, k: usize) -> Point {
        let ratio = |a: f64, b: f64| if b > 0.0 { Some(a / b) } else { None };
        let utility = StayUtility {
            observed: self.observed[k],
            best: self.best,
            inaction: self.inaction,
        }
        .normalised();
        let (auroc, auprc) = if k < RULES {
            (auroc(&self.hist[k]), auprc(&self.hist[k]))
        } else {
            (None, None)
        };
        let leads = &self.leads[k];
        Point {
            utility: Some(utility),
            auroc,
            auprc,
            sensitivity: ratio(self.detected[k], self.septic),
            non_septic_alerted: ratio(self.alerted_non_septic[k], self.stays - self.septic),
            episodes_per_100_patient_days: ratio(100.0 * self.episodes[k], self.hours / 24.0),
            episode_ppv: ratio(self.true_episodes[k], self.episodes[k]),
            alerted_hours: ratio(self.positive_hours[k], self.hours),
            lead_median: quantile(leads, 0.5),
            lead_q1: quantile(leads, 0.25),
            lead_q3: quantile(leads, 0.75),
        }
    }
}

/// One value of every figure (`None` where undefined: no septic stay, no episode...).
#[derive(Clone, Copy, Debug, Default)]
struct Point {
    utility: Option<f64>,
    auroc: Option<f64>,
    auprc: Option<f64>,
    sensitivity: Option<f64>,
    non_septic_alerted: Option<f64>,
    episodes_per_100_patient_days: Option<f64>,
    episode_ppv: Option<f64>,
    alerted_hours: Option<f64>,
    lead_median: Option<f64>,
    lead_q1: Option<f64>,
    lead_q3: Option<f64>,
}

impl Point {
    fn fields(&self) -> [Option<f64>; 11] {
        [
            self.utility,
            self.auroc,
            self.auprc,
            self.sensitivity,
            self.non_septic_alerted,
            self.episodes_per_100_patient_days,
            self.episode_ppv,
            self.alerted_hours,
            self.lead_median,
            self.lead_q1,
            self.lead_q3,
        ]
    }
}

/// A figure with its 95 % bootstrap interval.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Estimate {
    /// On the whole cohort.
    pub value: f64,
    /// 2.5th percentile of the bootstrap replicates (absent without a bootstrap).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub low: Option<f64>,
    /// 97.5th percentile.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub high: Option<f64>,
}

/// Every figure of one predictor.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Figures {
    /// The challenge's normalised utility.
    pub utility: Option<Estimate>,
    /// AUROC of the rule's hourly score (rules only).
    pub auroc: Option<Estimate>,
    /// AUPRC (average precision) of the rule's hourly score (rules only).
    pub auprc: Option<Estimate>,
    /// Share of septic stays alerted within their onset window.
    pub sensitivity: Option<Estimate>,
    /// Share of non-septic stays ever alerted.
    pub non_septic_alerted: Option<Estimate>,
    /// Alert episodes per 100 patient-days.
    pub episodes_per_100_patient_days: Option<Estimate>,
    /// Share of alert episodes overlapping a septic stay's onset window.
    pub episode_ppv: Option<Estimate>,
    /// Share of all hours with an alert active.
    pub alerted_hours: Option<Estimate>,
    /// Median lead time before `t_sepsis`, hours.
    pub lead_time_median: Option<Estimate>,
    /// First quartile of the lead time, hours.
    pub lead_time_q1: Option<Estimate>,
    /// Third quartile of the lead time, hours.
    pub lead_time_q3: Option<Estimate>,
    /// Septic stays detected (count, whole cohort).
    pub detected: u64,
    /// Alert episodes (count, whole cohort).
    pub episodes: u64,
}

/// The cohort's totals.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Cohort {
    /// Stays evaluated.
    pub stays: u64,
    /// Of which septic.
    pub septic: u64,
    /// Hours (rows).
    pub hours: u64,
    /// Patient-days (hours / 24).
    pub patient_days: f64,
}

/// Computes every predictor's figures, with `replicates` bootstrap replicates (0: no
/// intervals) drawn with `seed`.
pub fn figures(stays: &[StaySummary], replicates: usize, seed: u64) -> (Cohort, Vec<Figures>) {
    let mut all = Sums::new();
    for s in stays {
        all.add(s, 1.0);
    }
    let points: Vec<Point> = (0..PREDICTORS).map(|k| all.figures(k)).collect();
    // samples[k][field] = replicate values
    let mut samples: Vec<Vec<Vec<f64>>> = (0..PREDICTORS)
        .map(|_| (0..11).map(|_| Vec::with_capacity(replicates)).collect())
        .collect();
    let mut rng = SplitMix(seed);
    let mut weights = vec![0u32; stays.len()];
    for _ in 0..replicates {
        if stays.is_empty() {
            break;
        }
        weights.iter_mut().for_each(|w| *w = 0);
        for _ in 0..stays.len() {
            weights[rng.below(stays.len() as u64) as usize] += 1;
        }
        let mut sums = Sums::new();
        for (s, &w) in stays.iter().zip(&weights) {
            if w > 0 {
                sums.add(s, f64::from(w));
            }
        }
        for (k, sample) in samples.iter_mut().enumerate() {
            for (f, v) in sums.figures(k).fields().into_iter().enumerate() {
                if let Some(v) = v {
                    sample[f].push(v);
                }
            }
        }
    }
    let figures = points
        .iter()
        .zip(&mut samples)
        .enumerate()
        .map(|(k, (p, sample))| {
            let mut est = |f: usize| {
                p.fields()[f].map(|value| {
                    let s = &mut sample[f];
                    s.sort_by(f64::total_cmp);
                    Estimate {
                        value,
                        low: sorted_quantile(s, 0.025),
                        high: sorted_quantile(s, 0.975),
                    }
                })
            };
            Figures {
                utility: est(0),
                auroc: est(1),
                auprc: est(2),
                sensitivity: est(3),
                non_septic_alerted: est(4),
                episodes_per_100_patient_days: est(5),
                episode_ppv: est(6),
                alerted_hours: est(7),
                lead_time_median: est(8),
                lead_time_q1: est(9),
                lead_time_q3: est(10),
                detected: all.detected[k] as u64,
                episodes: all.episodes[k] as u64,
            }
        })
        .collect();
    let cohort = Cohort {
        stays: all.stays as u64,
        septic: all.septic as u64,
        hours: all.hours as u64,
        patient_days: all.hours / 24.0,
    };
    (cohort, figures)
}

/// AUROC from score bins of `[negatives, positives]` (ties count half).
pub fn auroc(bins: &[[f64; 2]; BINS]) -> Option<f64> {
    let (n, p): (f64, f64) = bins
        .iter()
        .fold((0.0, 0.0), |(n, p), b| (n + b[0], p + b[1]));
    if n == 0.0 || p == 0.0 {
        return None;
    }
    let mut above = 0.0; // positives with a higher score than the current bin
    let mut area = 0.0;
    for b in bins.iter().rev() {
        area += b[0] * (above + 0.5 * b[1]);
        above += b[1];
    }
    Some(area / (n * p))
}

/// Average precision (area under the precision-recall curve, step-wise, each distinct
/// score one threshold) from score bins of `[negatives, positives]`.
pub fn auprc(bins: &[[f64; 2]; BINS]) -> Option<f64> {
    let p: f64 = bins.iter().map(|b| b[1]).sum();
    if p == 0.0 {
        return None;
    }
    let (mut tp, mut all, mut ap) = (0.0, 0.0, 0.0);
    for b in bins.iter().rev() {
        if b[0] + b[1] == 0.0 {
            continue;
        }
        tp += b[1];
        all += b[0] + b[1];
        ap += (b[1] / p) * (tp / all);
    }
    Some(ap)
}

/// The `q` quantile (linear interpolation between order statistics) of integer lead
/// times held as a histogram from −3 h.
fn quantile(hist: &[f64; LEADS], q: f64) -> Option<f64> {
    let n: f64 = hist.iter().sum();
    if n < 1.0 {
        return None;
    }
    let value_at = |rank: f64| {
        let mut seen = 0.0;
        for (i, &c) in hist.iter().enumerate() {
            seen += c;
            if seen > rank {
                return i as f64 - 3.0;
            }
        }
        (LEADS - 1) as f64 - 3.0
    };
    let pos = q * (n - 1.0);
    let (lo, hi) = (value_at(pos.floor()), value_at(pos.ceil()));
    Some(lo + (hi - lo) * (pos - pos.floor()))
}

fn sorted_quantile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let pos = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (sorted[pos.floor() as usize], sorted[pos.ceil() as usize]);
    Some(lo + (hi - lo) * (pos - pos.floor()))
}

/// splitmix64: a small, seeded, reproducible generator for the bootstrap.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (Lemire's multiply-shift; the bias is below 2^-40 here).
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(n)) >> 64) as u64
    }
}

/// Figures across thresholds of each rule's score, hour by hour (an hour positive when
/// the score is at or above the threshold, without persistence or alert semantics), and
/// input coverage: accumulated stay by stay, on the whole cohort only.
#[derive(Clone, Debug)]
pub struct Curves {
    hours: f64,
    septic: f64,
    non_septic: f64,
    /// [rule][threshold]: septic stays reaching it in their onset window.
    detected: [[f64; BINS]; RULES],
    /// [rule][threshold]: non-septic stays ever reaching it.
    alerted: [[f64; BINS]; RULES],
    /// [rule][threshold]: runs of hours at or above it.
    episodes: [[f64; BINS]; RULES],
    /// [rule][threshold]: utility of predicting at or above it.
    observed: [[f64; BINS]; RULES],
    best: f64,
    inaction: f64,
    current: Vec<f64>,
    /// [predictor][lead + 3]: detected septic stays by lead time.
    leads: [[f64; LEADS]; PREDICTORS],
    /// [rule][score]: hours labelled [0, 1].
    hist: [[[f64; 2]; BINS]; RULES],
}

impl Default for Curves {
    fn default() -> Self {
        Curves {
            hours: 0.0,
            septic: 0.0,
            non_septic: 0.0,
            detected: [[0.0; BINS]; RULES],
            alerted: [[0.0; BINS]; RULES],
            episodes: [[0.0; BINS]; RULES],
            observed: [[0.0; BINS]; RULES],
            best: 0.0,
            inaction: 0.0,
            current: vec![0.0; Param::ALL.len()],
            leads: [[0.0; LEADS]; PREDICTORS],
            hist: [[[0.0; 2]; BINS]; RULES],
        }
    }
}

/// One point of a rule's threshold curve.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct ThresholdPoint {
    /// The score at or above which an hour is positive.
    pub threshold: u8,
    /// Normalised utility.
    pub utility: f64,
    /// Share of septic stays reaching it in their onset window.
    pub sensitivity: f64,
    /// Share of non-septic stays ever reaching it.
    pub non_septic_alerted: f64,
    /// Runs of hours at or above it per 100 patient-days.
    pub episodes_per_100_patient_days: f64,
}

impl Curves {
    /// Adds one stay.
    pub fn add(&mut self, labels: &[bool], trace: &Trace, summary: &StaySummary) {
        let onset = t_sepsis(labels);
        let n = trace.hours;
        self.hours += n as f64;
        self.best += summary.best;
        self.inaction += summary.inaction;
        match onset {
            Some(_) => self.septic += 1.0,
            None => self.non_septic += 1.0,
        }
        for (c, &hours) in self.current.iter_mut().zip(&trace.current) {
            *c += f64::from(hours);
        }
        for (k, lead) in summary.lead.iter().enumerate() {
            if let Some(l) = lead {
                self.leads[k][(i64::from(*l) + 3).clamp(0, LEADS as i64 - 1) as usize] += 1.0;
            }
        }
        let window = onset.map(|o| onset_window(o, n));
        for (r, scores) in trace.scores.iter().enumerate() {
            let mut stay_max = 0u8;
            let mut window_max = 0u8;
            let mut previous = 0u8;
            for (h, &s) in scores.iter().enumerate() {
                let s = s.min(BINS as u8 - 1);
                stay_max = stay_max.max(s);
                if window.is_some_and(|(w0, w1)| (w0..=w1).contains(&h)) {
                    window_max = window_max.max(s);
                }
                // A run of "at or above k" starts here for every k in (previous, s].
                for k in previous + 1..=s {
                    self.episodes[r][usize::from(k)] += 1.0;
                }
                previous = s;
                self.hist[r][usize::from(s)][usize::from(labels[h])] += 1.0;
                let yes = hour_utility(onset, h, true);
                let no = hour_utility(onset, h, false);
                for k in 1..=usize::from(s) {
                    self.observed[r][k] += yes;
                }
                for k in usize::from(s) + 1..BINS {
                    self.observed[r][k] += no;
                }
            }
            for k in 1..=usize::from(stay_max) {
                if onset.is_none() {
                    self.alerted[r][k] += 1.0;
                }
            }
            if onset.is_some() {
                for k in 1..=usize::from(window_max) {
                    self.detected[r][k] += 1.0;
                }
            }
        }
    }

    /// The curve of `rule` at every threshold from 1 to `max`.
    pub fn thresholds(&self, rule: RuleId, max: u8) -> Vec<ThresholdPoint> {
        let r = RuleId::ALL.iter().position(|&x| x == rule).unwrap_or(0);
        let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
        (1..=max.min(BINS as u8 - 1))
            .map(|k| {
                let i = usize::from(k);
                ThresholdPoint {
                    threshold: k,
                    utility: StayUtility {
                        observed: self.observed[r][i],
                        best: self.best,
                        inaction: self.inaction,
                    }
                    .normalised(),
                    sensitivity: ratio(self.detected[r][i], self.septic),
                    non_septic_alerted: ratio(self.alerted[r][i], self.non_septic),
                    episodes_per_100_patient_days: ratio(
                        100.0 * self.episodes[r][i],
                        self.hours / 24.0,
                    ),
                }
            })
            .collect()
    }

    /// The ROC curve of `rule`'s hourly score: (1 − specificity, sensitivity) at every
    /// threshold, from the highest to "always".
    pub fn roc(&self, rule: RuleId) -> Vec<(f64, f64)> {
        let r = RuleId::ALL.iter().position(|&x| x == rule).unwrap_or(0);
        let bins = &self.hist[r];
        let (n, p) = bins
            .iter()
            .fold((0.0, 0.0), |(n, p), b| (n + b[0], p + b[1]));
        let mut points = vec![(0.0, 0.0)];
        let (mut fp, mut tp) = (0.0, 0.0);
        for b in bins.iter().rev() {
            if b[0] + b[1] == 0.0 {
                continue;
            }
            fp += b[0];
            tp += b[1];
            points.push((
                if n > 0.0 { fp / n } else { 0.0 },
                if p > 0.0 { tp / p } else { 0.0 },
            ));
        }
        points
    }

    /// Per parameter: the share of hours it had a current reading.
    pub fn coverage(&self) -> Vec<(Param, f64)> {
        Param::ALL
            .iter()
            .map(|&p| {
                let share = if self.hours > 0.0 {
                    self.current[p.index()] / self.hours
                } else {
                    0.0
                };
                (p, share)
            })
            .collect()
    }

    /// Detected septic stays of `predictor` by lead time, from −3 to 12 hours.
    pub fn lead_histogram(&self, predictor: usize) -> Vec<(i64, u64)> {
        self.leads[predictor]
            .iter()
            .enumerate()
            .map(|(i, &c)| (i as i64 - 3, c as u64))
            .collect()
    }
}

/// The highest score each rule can reach, for its threshold curve.
pub fn max_score(rule: RuleId) -> u8 {
    match rule {
        RuleId::Qsofa => 3,
        RuleId::Sirs => 4,
        RuleId::News2 => 20,
        RuleId::Sofa => 24,
        RuleId::SepticShock => 1,
        RuleId::Mews => 14,
        RuleId::Risk => 100,
    }
}
