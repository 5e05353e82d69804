//! SIRS (systemic inflammatory response syndrome) criteria.
//!
//! Source: Bone et al., Chest 1992;101:1644 (ACCP/SCCM consensus). One point each, total
//! 0-4, positive at >= 2; all inequalities strict:
//! - temperature > 38.0 C or < 36.0 C
//! - heart rate > 90 /min
//! - respiratory rate > 20 /min, or PaCO2 < 32 mmHg (4.3 kPa)
//! - WBC > 12 x10^3/uL or < 4 x10^3/uL, or band forms > 10 %
//!
//! Values are compared as received (after unit conversion). The CMS SEP-1 fever threshold
//! (38.3 C) belongs to SEP-1, not here.

use super::{Criteria, Inputs};
use crate::param::{Param, ParamSet};

/// Every parameter this rule reads: a new reading of any of them can change the result.
pub const INPUTS: ParamSet = ParamSet::of(&[
    Param::Temperature,
    Param::HeartRate,
    Param::RespRate,
    Param::Paco2,
    Param::Wbc,
    Param::Bands,
]);

/// A SIRS result.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct Sirs {
    /// 0-4.
    pub score: u8,
    /// `score >= 2`.
    pub positive: bool,
    /// The criteria met; where both alternatives of one criterion are met, both are shown
    /// and the criterion still counts once.
    pub criteria: Criteria<6>,
    /// Inputs with no current value.
    pub missing: ParamSet,
}

/// Scores SIRS.
#[inline]
pub fn assess(inputs: &Inputs<'_>) -> Sirs {
    let mut out = Sirs::default();
    score_into(inputs, &mut out);
    out
}

/// Scores into `out`, reusing its storage (the hot-path form of [`assess`]).
#[inline]
pub fn score_into(inputs: &Inputs<'_>, out: &mut Sirs) {
    let mut missing = ParamSet::EMPTY;
    let criteria = &mut out.criteria;
    criteria.clear();
    let mut score = 0;
    let mut criterion = |hits: &[Option<(&'static &'static str, crate::window::Reading)>]| {
        let mut met = false;
        for (text, r) in hits.iter().flatten() {
            criteria.push(text, *r, u8::from(!met));
            met = true;
        }
        score += u8::from(met);
    };
    let temp = inputs
        .require(Param::Temperature, &mut missing)
        .and_then(|r| {
            if r.value > 38.0 {
                Some((&"temperature > 38.0", r))
            } else if r.value < 36.0 {
                Some((&"temperature < 36.0", r))
            } else {
                None
            }
        });
    criterion(&[temp]);
    let hr = inputs.require(Param::HeartRate, &mut missing);
    criterion(&[hr
        .filter(|r| r.value > 90.0)
        .map(|r| (&"heart_rate > 90", r))]);
    let rr = inputs.require(Param::RespRate, &mut missing);
    let paco2 = inputs.require(Param::Paco2, &mut missing);
    criterion(&[
        rr.filter(|r| r.value > 20.0)
            .map(|r| (&"resp_rate > 20", r)),
        paco2.filter(|r| r.value < 32.0).map(|r| (&"paco2 < 32", r)),
    ]);
    let wbc = inputs.require(Param::Wbc, &mut missing).and_then(|r| {
        if r.value > 12.0 {
            Some((&"wbc > 12", r))
        } else if r.value < 4.0 {
            Some((&"wbc < 4", r))
        } else {
            None
        }
    });
    let bands = inputs.require(Param::Bands, &mut missing);
    criterion(&[
        wbc,
        bands.filter(|r| r.value > 10.0).map(|r| (&"bands > 10", r)),
    ]);
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

    fn score(readings: &[(&str, RawValue<'_>)]) -> Sirs {
        let w = window(readings);
        let config = Config::default();
        assess(&Inputs::new(&w, NOW, &config))
    }

    fn one(code: &str, v: f64) -> u8 {
        score(&[(code, n(v))]).score
    }

    #[test]
    fn temperature_edges_are_strict() {
        assert_eq!(one("temperature", 38.0), 0);
        assert_eq!(one("temperature", 38.01), 1);
        assert_eq!(one("temperature", 36.0), 0);
        assert_eq!(one("temperature", 35.99), 1);
    }

    #[test]
    fn heart_rate_edge_is_strict() {
        assert_eq!(one("heart_rate", 90.0), 0);
        assert_eq!(one("heart_rate", 90.5), 1);
    }

    #[test]
    fn respiratory_edges_are_strict() {
        assert_eq!(one("resp_rate", 20.0), 0);
        assert_eq!(one("resp_rate", 21.0), 1);
        assert_eq!(one("paco2", 32.0), 0);
        assert_eq!(one("paco2", 31.9), 1);
        // 4.3 kPa is 32.25 mmHg with the reference factor 7.50: not below 32.
        let kpa = |v: f64| {
            let config = Config::default();
            let mut w = crate::window::Window::new();
            let o = crate::observation::Observation::new(
                "paco2",
                n(v),
                Some("kPa"),
                NOW,
                None,
                crate::observation::Status::Final,
            )
            .unwrap();
            w.ingest(&o, &config.staleness);
            assess(&Inputs::new(&w, NOW, &config)).score
        };
        assert_eq!(kpa(4.3), 0);
        assert_eq!(kpa(4.2), 1);
    }

    #[test]
    fn white_cell_edges_are_strict() {
        assert_eq!(one("wbc", 12.0), 0);
        assert_eq!(one("wbc", 12.1), 1);
        assert_eq!(one("wbc", 4.0), 0);
        assert_eq!(one("wbc", 3.9), 1);
        assert_eq!(one("bands", 10.0), 0);
        assert_eq!(one("bands", 10.5), 1);
    }

    #[test]
    fn alternatives_count_once_but_are_both_shown() {
        let s = score(&[
            ("resp_rate", n(28.0)),
            ("paco2", n(28.0)),
            ("wbc", n(15.0)),
            ("bands", n(12.0)),
        ]);
        assert_eq!(s.score, 2);
        assert!(s.positive);
        assert_eq!(s.criteria.as_slice().len(), 4);
        let points: u8 = s.criteria.as_slice().iter().map(|e| e.points()).sum();
        assert_eq!(points, 2);
        assert_eq!(
            s.missing.iter().collect::<Vec<_>>(),
            vec![Param::HeartRate, Param::Temperature]
        );
    }

    #[test]
    fn full_house() {
        let s = score(&[
            ("temperature", n(39.0)),
            ("heart_rate", n(120.0)),
            ("resp_rate", n(25.0)),
            ("wbc", n(2.0)),
        ]);
        assert_eq!(s.score, 4);
    }
}
