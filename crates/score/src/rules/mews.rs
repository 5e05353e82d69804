//! MEWS (Modified Early Warning Score).
//!
//! Source: Subbe et al., QJM 2001;94:521. Local variants differ, so the bands come from
//! [`MewsBands`](crate::config::MewsBands) (defaults documented there, with the edge
//! closures stated below). As for NEWS2, readings are rounded to the
//! chart's precision first (temperature to 0.1 C, the others to whole numbers).

use super::{Criteria, Inputs, round_chart};
use crate::param::{Param, ParamSet};

/// Every parameter this rule reads: a new reading of any of them can change the result.
pub const INPUTS: ParamSet = ParamSet::of(&[
    Param::Sbp,
    Param::HeartRate,
    Param::RespRate,
    Param::Temperature,
    Param::Consciousness,
]);

/// Points per MEWS parameter.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Components {
    /// Systolic blood pressure.
    pub sbp: u8,
    /// Heart rate.
    pub heart_rate: u8,
    /// Respiratory rate.
    pub resp_rate: u8,
    /// Temperature.
    pub temperature: u8,
    /// AVPU.
    pub consciousness: u8,
}

/// A MEWS result.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct Mews {
    /// The total.
    pub score: u8,
    /// Points per parameter.
    pub components: Components,
    /// The readings that scored points.
    pub criteria: Criteria<5>,
    /// Inputs with no current value (they score 0).
    pub missing: ParamSet,
}

/// Scores MEWS with the configured bands.
#[inline]
pub fn assess(inputs: &Inputs<'_>) -> Mews {
    let mut out = Mews::default();
    score_into(inputs, &mut out);
    out
}

/// Scores into `out`, reusing its storage (the hot-path form of [`assess`]).
#[inline]
pub fn score_into(inputs: &Inputs<'_>, out: &mut Mews) {
    let bands = &inputs.config().mews;
    let mut missing = ParamSet::EMPTY;
    let criteria = &mut out.criteria;
    criteria.clear();
    let mut c = Components::default();
    let mut banded =
        |p: Param, text: &'static &'static str, band: &crate::config::Bands, tenths: bool| {
            let r = inputs.require(p, &mut missing)?;
            // Chart precision: whole numbers, or tenths for temperature. The scale is a
            // literal at each call so rounding compiles without a division for whole numbers.
            let rounded = if tenths {
                round_chart(r.value, 10.0)
            } else {
                round_chart(r.value, 1.0)
            };
            let points = band.points(rounded);
            if points > 0 {
                criteria.push(text, r, points);
            }
            Some(points)
        };
    c.sbp = banded(Param::Sbp, &"sbp", &bands.sbp, false).unwrap_or(0);
    c.heart_rate = banded(Param::HeartRate, &"heart_rate", &bands.heart_rate, false).unwrap_or(0);
    c.resp_rate = banded(Param::RespRate, &"resp_rate", &bands.resp_rate, false).unwrap_or(0);
    c.temperature =
        banded(Param::Temperature, &"temperature", &bands.temperature, true).unwrap_or(0);
    if let Some(r) = inputs.require(Param::Consciousness, &mut missing) {
        let level = r.acvpu().map_or(0, |a| a as usize);
        c.consciousness = bands.consciousness[level];
        if c.consciousness > 0 {
            criteria.push(&"consciousness", r, c.consciousness);
        }
    }
    out.score = c.sbp + c.heart_rate + c.resp_rate + c.temperature + c.consciousness;
    out.components = c;
    out.missing = missing;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Bands, Config};
    use crate::observation::RawValue;
    use crate::rules::test_util::{NOW, n, window};

    fn mews_with(config: &Config, readings: &[(&str, RawValue<'_>)]) -> Mews {
        let w = window(readings);
        assess(&Inputs::new(&w, NOW, config))
    }

    fn table(code: &str, cases: &[(f64, u8)]) {
        let config = Config::default();
        for &(v, p) in cases {
            assert_eq!(mews_with(&config, &[(code, n(v))]).score, p, "{code} {v}");
        }
    }

    #[test]
    fn default_bands_both_edges() {
        table(
            "sbp",
            &[
                (70.0, 3),
                (71.0, 2),
                (80.0, 2),
                (81.0, 1),
                (100.0, 1),
                (101.0, 0),
                (199.0, 0),
                (200.0, 2),
            ],
        );
        table(
            "heart_rate",
            &[
                (39.0, 2),
                (40.0, 2),
                (41.0, 1),
                (50.0, 1),
                (51.0, 0),
                (100.0, 0),
                (101.0, 1),
                (110.0, 1),
                (111.0, 2),
                (129.0, 2),
                (130.0, 3),
            ],
        );
        table(
            "resp_rate",
            &[
                (8.0, 2),
                (9.0, 0),
                (14.0, 0),
                (15.0, 1),
                (20.0, 1),
                (21.0, 2),
                (29.0, 2),
                (30.0, 3),
            ],
        );
        table(
            "temperature",
            &[
                (34.9, 2),
                (35.0, 0),
                (38.4, 0),
                (38.5, 2),
                (38.44, 0),
                (38.45, 2),
            ],
        );
    }

    #[test]
    fn avpu_points() {
        let config = Config::default();
        for (c, p) in [("A", 0), ("C", 1), ("V", 1), ("P", 2), ("U", 3)] {
            assert_eq!(
                mews_with(&config, &[("consciousness", RawValue::Text(c))]).score,
                p,
                "{c}"
            );
        }
    }

    #[test]
    fn bands_are_configurable() {
        let mut config = Config::default();
        config.mews.resp_rate = Bands::new(3, vec![(9.0, 0), (21.0, 2), (25.0, 3)]).unwrap();
        assert_eq!(mews_with(&config, &[("resp_rate", n(8.0))]).score, 3);
        assert_eq!(mews_with(&config, &[("resp_rate", n(20.0))]).score, 0);
        assert_eq!(mews_with(&config, &[("resp_rate", n(25.0))]).score, 3);
    }

    #[test]
    fn totals_and_missing() {
        let config = Config::default();
        let m = mews_with(
            &config,
            &[
                ("sbp", n(75.0)),
                ("heart_rate", n(120.0)),
                ("resp_rate", n(24.0)),
            ],
        );
        assert_eq!(m.score, 2 + 2 + 2);
        assert_eq!(
            m.missing.iter().collect::<Vec<_>>(),
            vec![Param::Temperature, Param::Consciousness]
        );
    }
}
