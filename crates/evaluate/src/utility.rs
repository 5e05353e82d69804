//! The normalised utility of the PhysioNet/Computing in Cardiology Challenge 2019.
//!
//! Implemented from the published definition (Reyna et al., Crit Care Med 2020;48(2):210,
//! "Scoring metric"): hourly predictions of a stay earn utility relative to the clinical
//! onset `t_sepsis` of a septic stay, with the challenge's constants
//!
//! - `dt_early` −12 h, `dt_optimal` −6 h, `dt_late` +3 h;
//! - a true positive earns up to +1 at `t_sepsis − 6`, rising linearly from 0 at
//!   `t_sepsis − 12` (never below the false-positive cost) and falling linearly to 0 at
//!   `t_sepsis + 3`;
//! - a false negative costs nothing up to `t_sepsis − 6`, then linearly down to −2 at
//!   `t_sepsis + 3`;
//! - a positive prediction on a non-septic stay costs 0.05; a negative one is worth 0;
//! - after `t_sepsis + 3` nothing counts.
//!
//! `t_sepsis` is the first hour labelled 1 plus 6 (the challenge labels septic stays from
//! 6 hours before onset); hours are indexed from 0, the first row of the stay. The
//! normalised utility of a cohort is `(observed − inaction) / (best − inaction)`, each
//! term summed over all stays: 0 for predicting nothing, 1 for the best possible
//! predictions (positive from `t_sepsis − 12` to `t_sepsis + 3`).

/// Hours before onset where a positive prediction starts to earn (`dt_early`).
pub const DT_EARLY: f64 = -12.0;
/// Hours before onset where a positive prediction earns most (`dt_optimal`).
pub const DT_OPTIMAL: f64 = -6.0;
/// Hours after onset where predictions stop counting (`dt_late`).
pub const DT_LATE: f64 = 3.0;
const MAX_U_TP: f64 = 1.0;
const MIN_U_FN: f64 = -2.0;
const U_FP: f64 = -0.05;
const U_TN: f64 = 0.0;

/// The challenge's onset hour of a stay: the first hour labelled 1, plus 6; `None` for a
/// stay never labelled (not septic).
pub fn t_sepsis(labels: &[bool]) -> Option<i64> {
    labels
        .iter()
        .position(|&l| l)
        .map(|first| first as i64 - DT_OPTIMAL as i64)
}

/// The unnormalised utility of one stay's hourly predictions against its hourly labels
/// (the shorter of the two decides the hours scored).
pub fn utility(labels: &[bool], predictions: &[bool]) -> f64 {
    let onset = t_sepsis(labels);
    predictions
        .iter()
        .enumerate()
        .take(labels.len())
        .map(|(t, &p)| hour_utility(onset, t, p))
        .sum()
}

/// The utility of one hour `t` of a stay with onset `onset` (`None`: not septic), with or
/// without a positive prediction.
pub fn hour_utility(onset: Option<i64>, t: usize, predicted: bool) -> f64 {
    let m1 = MAX_U_TP / (DT_OPTIMAL - DT_EARLY);
    let b1 = -m1 * DT_EARLY;
    let m2 = -MAX_U_TP / (DT_LATE - DT_OPTIMAL);
    let b2 = -m2 * DT_LATE;
    let m3 = MIN_U_FN / (DT_LATE - DT_OPTIMAL);
    let b3 = -m3 * DT_OPTIMAL;
    let t = t as f64;
    match onset.map(|s| s as f64) {
        None if predicted => U_FP,
        None => U_TN,
        Some(s) if t > s + DT_LATE => 0.0,
        Some(s) if predicted && t <= s + DT_OPTIMAL => (m1 * (t - s) + b1).max(U_FP),
        Some(s) if predicted => m2 * (t - s) + b2,
        Some(s) if t <= s + DT_OPTIMAL => 0.0,
        Some(s) => m3 * (t - s) + b3,
    }
}

/// The best possible predictions for a stay: positive from `t_sepsis − 12` to
/// `t_sepsis + 3` of a septic stay, never otherwise.
pub fn best_predictions(labels: &[bool]) -> Vec<bool> {
    let mut best = vec![false; labels.len()];
    if let Some(s) = t_sepsis(labels) {
        let from = (s + DT_EARLY as i64).max(0) as usize;
        let to = ((s + DT_LATE as i64 + 1).max(0) as usize).min(labels.len());
        for b in best.iter_mut().take(to).skip(from) {
            *b = true;
        }
    }
    best
}

/// One stay's utilities: of the predictions, of the best possible ones and of predicting
/// nothing. Summed over a cohort, they give its normalised utility.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct StayUtility {
    /// Of the predictions.
    pub observed: f64,
    /// Of the best possible predictions.
    pub best: f64,
    /// Of never predicting.
    pub inaction: f64,
}

impl StayUtility {
    /// Scores one stay.
    pub fn of(labels: &[bool], predictions: &[bool]) -> StayUtility {
        StayUtility {
            observed: utility(labels, predictions),
            best: utility(labels, &best_predictions(labels)),
            inaction: utility(labels, &vec![false; labels.len()]),
        }
    }

    /// Adds another stay.
    pub fn add(&mut self, other: StayUtility) {
        self.observed += other.observed;
        self.best += other.best;
        self.inaction += other.inaction;
    }

    /// The normalised utility of the stays summed here (0 when the best possible
    /// predictions are worth no more than inaction, as for a cohort without septic stays).
    pub fn normalised(&self) -> f64 {
        let span = self.best - self.inaction;
        if span.abs() < f64::EPSILON {
            0.0
        } else {
            (self.observed - self.inaction) / span
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn bits(v: &[u8]) -> Vec<bool> {
        v.iter().map(|&b| b == 1).collect()
    }

    /// The septic stay of the worked values: 60 h, labelled from hour 44 (t_sepsis 50).
    fn septic_60h() -> Vec<bool> {
        (0..60).map(|h| h >= 44).collect()
    }

    fn from(n: usize, first: usize) -> Vec<bool> {
        (0..n).map(|h| h >= first).collect()
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 5e-7
    }

    #[test]
    fn worked_value_short_stay() {
        let u = utility(&bits(&[0, 0, 0, 0, 1, 1]), &bits(&[0, 0, 1, 1, 1, 1]));
        assert!(close(u, 3.388889), "{u}");
    }

    #[test]
    fn worked_value_non_septic_always_predicting() {
        assert!(close(utility(&[false; 10], &[true; 10]), -0.5));
    }

    #[test]
    fn worked_values_septic_stay() {
        let labels = septic_60h();
        assert_eq!(t_sepsis(&labels), Some(50));
        assert!(close(utility(&labels, &[false; 60]), -10.0));
        assert!(close(utility(&labels, &from(60, 44)), 5.0));
        let best = best_predictions(&labels);
        assert_eq!(
            best,
            (0..60).map(|h| (38..=53).contains(&h)).collect::<Vec<_>>()
        );
        assert!(close(utility(&labels, &best), 7.5));
    }

    #[test]
    fn worked_value_normalised_cohort() {
        let mut cohort = StayUtility::of(&septic_60h(), &from(60, 44));
        let mut alerted = [false; 10];
        alerted[0] = true;
        alerted[1] = true;
        cohort.add(StayUtility::of(&[false; 10], &alerted));
        assert!(
            close(cohort.normalised(), 0.851429),
            "{}",
            cohort.normalised()
        );
    }

    #[test]
    fn each_edge_of_the_utility_function() {
        let labels = septic_60h();
        let one = |h: usize| {
            let mut p = vec![false; 60];
            p[h] = true;
            utility(&labels, &p) - utility(&labels, &[false; 60])
        };
        // Earlier than t_sepsis - 12: a false positive's cost.
        assert!(close(one(20), -0.05));
        assert!(close(one(37), -0.05));
        // t_sepsis - 12 earns 0 (not below the false-positive cost either side).
        assert!(close(one(38), 0.0));
        assert!(close(one(41), 0.5));
        // The optimum at t_sepsis - 6.
        assert!(close(one(44), 1.0));
        // Past it, the gain falls; a miss there would have cost, so the difference adds both.
        assert!(close(one(45), 8.0 / 9.0 + 2.0 / 9.0));
        assert!(close(one(53), 0.0 + 2.0));
        // After t_sepsis + 3 nothing counts.
        assert!(close(one(54), 0.0));
        assert!(close(one(59), 0.0));
    }

    #[test]
    fn a_stay_labelled_from_its_first_row_has_onset_at_hour_6() {
        let labels = vec![true; 12];
        assert_eq!(t_sepsis(&labels), Some(6));
        assert_eq!(
            best_predictions(&labels),
            (0..12).map(|h| h <= 9).collect::<Vec<_>>()
        );
    }

    #[test]
    fn a_cohort_without_septic_stays_normalises_to_zero() {
        let u = StayUtility::of(&[false; 5], &[true; 5]);
        assert_eq!(u.normalised(), 0.0);
    }

    proptest! {
        /// Best possible predictions are never beaten, and predicting nothing scores 0.
        #[test]
        fn best_bounds_every_prediction(n in 1usize..80, first in 0usize..90, preds in proptest::collection::vec(any::<bool>(), 80)) {
            let labels: Vec<bool> = (0..n).map(|h| h >= first).collect();
            let u = StayUtility::of(&labels, &preds[..n]);
            prop_assert!(u.observed <= u.best + 1e-9);
            let mut none = StayUtility::of(&labels, &vec![false; n]);
            none.best += 1.0; // keep the span non-zero for non-septic stays
            prop_assert!(none.normalised().abs() < 1e-12);
        }
    }
}
