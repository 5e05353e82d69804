//! qSOFA (quick Sequential Organ Failure Assessment).
//!
//! Source: Seymour et al., JAMA 2016;315(8):762; Singer et al. (Sepsis-3), JAMA
//! 2016;315(8):801. One point each, total 0-3, positive at >= 2:
//! - respiratory rate >= 22 /min
//! - altered mentation: GCS < 15, or ACVPU other than Alert (C, V, P or U)
//! - systolic blood pressure <= 100 mmHg
//!
//! Values are compared as received (after unit conversion), without rounding.

use super::{Criteria, Inputs};
use crate::observation::Acvpu;
use crate::param::{Param, ParamSet};

/// Every parameter this rule reads: a new reading of any of them can change the result.
pub const INPUTS: ParamSet = ParamSet::of(&[
    Param::RespRate,
    Param::Gcs,
    Param::Consciousness,
    Param::Sbp,
]);

/// A qSOFA result.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct Qsofa {
    /// 0-3.
    pub score: u8,
    /// `score >= 2`.
    pub positive: bool,
    /// The criteria met.
    pub criteria: Criteria<3>,
    /// Inputs with no current value.
    pub missing: ParamSet,
}

/// Scores qSOFA.
#[inline]
pub fn assess(inputs: &Inputs<'_>) -> Qsofa {
    let mut out = Qsofa::default();
    score_into(inputs, &mut out);
    out
}

/// Scores into `out`, reusing its storage (the hot-path form of [`assess`]).
#[inline]
pub fn score_into(inputs: &Inputs<'_>, out: &mut Qsofa) {
    let mut missing = ParamSet::EMPTY;
    let criteria = &mut out.criteria;
    criteria.clear();
    if let Some(r) = inputs.require(Param::RespRate, &mut missing)
        && r.value >= 22.0
    {
        criteria.push(&"resp_rate >= 22", r, 1);
    }
    let gcs = inputs.require(Param::Gcs, &mut missing);
    let avpu = inputs.require(Param::Consciousness, &mut missing);
    if let Some(r) = gcs.filter(|r| r.value < 15.0) {
        criteria.push(&"gcs < 15", r, 1);
    } else if let Some(r) = avpu.filter(|r| r.acvpu() != Some(Acvpu::A)) {
        criteria.push(&"consciousness not alert", r, 1);
    }
    if let Some(r) = inputs.require(Param::Sbp, &mut missing)
        && r.value <= 100.0
    {
        criteria.push(&"sbp <= 100", r, 1);
    }
    let score = criteria.as_slice().len() as u8;
    out.score = score;
    out.positive = score >= 2;
    out.missing = missing;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::observation::RawValue;
    use crate::rules::test_util::{NOW, n, window};

    fn score(readings: &[(&str, RawValue<'_>)]) -> Qsofa {
        let w = window(readings);
        let config = Config::default();
        assess(&Inputs::new(&w, NOW, &config))
    }

    #[test]
    fn resp_rate_edge_at_22() {
        assert_eq!(score(&[("resp_rate", n(21.99))]).score, 0);
        assert_eq!(score(&[("resp_rate", n(22.0))]).score, 1);
    }

    #[test]
    fn sbp_edge_at_100() {
        assert_eq!(score(&[("sbp", n(100.0))]).score, 1);
        assert_eq!(score(&[("sbp", n(100.01))]).score, 0);
    }

    #[test]
    fn mentation_by_gcs_or_acvpu() {
        assert_eq!(score(&[("gcs", n(15.0))]).score, 0);
        assert_eq!(score(&[("gcs", n(14.0))]).score, 1);
        assert_eq!(score(&[("consciousness", RawValue::Text("A"))]).score, 0);
        for c in ["C", "V", "P", "U"] {
            assert_eq!(
                score(&[("consciousness", RawValue::Text(c))]).score,
                1,
                "{c}"
            );
        }
        // Either sign of altered mentation counts once.
        let both = score(&[("gcs", n(9.0)), ("consciousness", RawValue::Text("P"))]);
        assert_eq!(both.score, 1);
        assert_eq!(both.criteria.as_slice()[0].criterion(), "gcs < 15");
        let gcs_normal_but_confused =
            score(&[("gcs", n(15.0)), ("consciousness", RawValue::Text("C"))]);
        assert_eq!(gcs_normal_but_confused.score, 1);
    }

    #[test]
    fn positive_at_two_with_evidence_and_missing() {
        let q = score(&[
            ("resp_rate", n(24.0)),
            ("sbp", n(95.0)),
            ("consciousness", RawValue::Text("A")),
        ]);
        assert_eq!(q.score, 2);
        assert!(q.positive);
        assert_eq!(q.missing.iter().collect::<Vec<_>>(), vec![Param::Gcs]);
        let e = q.criteria.as_slice();
        assert_eq!(
            (
                e[0].reading().param,
                e[0].reading().value,
                e[0].reading().effective
            ),
            (Param::RespRate, 24.0, NOW)
        );
        assert_eq!(
            (e[1].reading().param, e[1].reading().value),
            (Param::Sbp, 95.0)
        );
        let one = score(&[("resp_rate", n(24.0))]);
        assert!(!one.positive);
        assert_eq!(one.missing.iter().count(), 3);
    }

    #[test]
    fn nothing_measured_scores_zero_and_lists_everything() {
        let q = score(&[]);
        assert_eq!(q.score, 0);
        assert_eq!(
            q.missing.iter().collect::<Vec<_>>(),
            vec![
                Param::RespRate,
                Param::Sbp,
                Param::Gcs,
                Param::Consciousness
            ]
        );
    }
}
