//! NEWS2 (National Early Warning Score 2).
//!
//! Source: Royal College of Physicians, *National Early Warning Score (NEWS) 2*, 2017,
//! chart 1 (scoring) and chart 4 (clinical response).
//!
//! | Parameter | 3 | 2 | 1 | 0 | 1 | 2 | 3 |
//! |---|---|---|---|---|---|---|---|
//! | Respiration rate /min | <= 8 | | 9-11 | 12-20 | | 21-24 | >= 25 |
//! | SpO2 Scale 1 % | <= 91 | 92-93 | 94-95 | >= 96 | | | |
//! | SpO2 Scale 2 % | <= 83 | 84-85 | 86-87 | 88-92, >= 93 on air | 93-94 on O2 | 95-96 on O2 | >= 97 on O2 |
//! | Air or oxygen | | oxygen | | air | | | |
//! | Systolic BP mmHg | <= 90 | 91-100 | 101-110 | 111-219 | | | >= 220 |
//! | Pulse /min | <= 40 | | 41-50 | 51-90 | 91-110 | 111-130 | >= 131 |
//! | Consciousness | | | | Alert | | | new Confusion, V, P, U |
//! | Temperature C | <= 35.0 | | 35.1-36.0 | 36.1-38.0 | 38.1-39.0 | >= 39.1 | |
//!
//! Readings are first rounded to the chart's printed precision (temperature to 0.1 C,
//! everything else to a whole number, half away from zero), then banded: 35.04 C scores 3,
//! 35.06 C scores 1, SBP 219.4 scores 0 and 219.6 scores 3.
//!
//! Scale 2 applies only when the patient's `spo2_scale` setting is 2 (hypercapnic
//! respiratory failure with a prescribed 88-92 % target); it is never inferred. Air or
//! oxygen comes from `on_oxygen`; without it, from a current `o2_flow` (above 0 means
//! oxygen) or `fio2` (above 0.21 means oxygen), which are facts about the same thing.
//!
//! Risk: total 0-4 low; a single parameter scoring 3 with a total below 5 low-medium;
//! 5-6 medium; 7 or more high.

use super::{Band, Chart, Criteria, Inputs, band, round_chart};
use crate::observation::Acvpu;
use crate::param::{Param, ParamSet};

/// Every parameter this rule reads: a new reading of any of them can change the result.
pub const INPUTS: ParamSet = ParamSet::of(&[
    Param::RespRate,
    Param::OnOxygen,
    Param::O2Flow,
    Param::Fio2,
    Param::Spo2Scale,
    Param::Spo2,
    Param::Sbp,
    Param::HeartRate,
    Param::Consciousness,
    Param::Temperature,
]);
use crate::window::Reading;

/// NEWS2 clinical risk (RCP chart 4).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Risk {
    /// Total 0-4 and no single 3.
    #[default]
    Low,
    /// A single parameter scoring 3, total below 5.
    LowMedium,
    /// Total 5-6.
    Medium,
    /// Total 7 or more.
    High,
}

/// Points per NEWS2 parameter.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Components {
    /// Respiration rate.
    pub resp_rate: u8,
    /// SpO2 on the patient's scale.
    pub spo2: u8,
    /// Air (0) or oxygen (2).
    pub on_oxygen: u8,
    /// Systolic blood pressure.
    pub sbp: u8,
    /// Pulse.
    pub heart_rate: u8,
    /// Consciousness (ACVPU).
    pub consciousness: u8,
    /// Temperature.
    pub temperature: u8,
}

/// A NEWS2 result.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct News2 {
    /// 0-20.
    pub score: u8,
    /// Clinical risk.
    pub risk: Risk,
    /// Points per parameter.
    pub components: Components,
    /// The SpO2 scale used (1 unless the patient's setting is 2).
    pub spo2_scale: u8,
    /// The readings that scored points.
    pub criteria: Criteria<7>,
    /// Inputs with no current value (they score 0).
    pub missing: ParamSet,
}

const RESP_RATE: Chart = (
    3,
    &"resp_rate <= 8",
    &[
        (9.0, 1, &"resp_rate 9-11"),
        (12.0, 0, &""),
        (21.0, 2, &"resp_rate 21-24"),
        (25.0, 3, &"resp_rate >= 25"),
    ],
);
const SPO2_SCALE1: Chart = (
    3,
    &"spo2 <= 91 (scale 1)",
    &[
        (92.0, 2, &"spo2 92-93 (scale 1)"),
        (94.0, 1, &"spo2 94-95 (scale 1)"),
        (96.0, 0, &""),
    ],
);
const SPO2_SCALE2_AIR: Chart = (
    3,
    &"spo2 <= 83 (scale 2)",
    &[
        (84.0, 2, &"spo2 84-85 (scale 2)"),
        (86.0, 1, &"spo2 86-87 (scale 2)"),
        (88.0, 0, &""),
    ],
);
const SPO2_SCALE2_OXYGEN: &[Band] = &[
    (93.0, 1, &"spo2 93-94 on oxygen (scale 2)"),
    (95.0, 2, &"spo2 95-96 on oxygen (scale 2)"),
    (97.0, 3, &"spo2 >= 97 on oxygen (scale 2)"),
];
const SBP: Chart = (
    3,
    &"sbp <= 90",
    &[
        (91.0, 2, &"sbp 91-100"),
        (101.0, 1, &"sbp 101-110"),
        (111.0, 0, &""),
        (220.0, 3, &"sbp >= 220"),
    ],
);
const PULSE: Chart = (
    3,
    &"heart_rate <= 40",
    &[
        (41.0, 1, &"heart_rate 41-50"),
        (51.0, 0, &""),
        (91.0, 1, &"heart_rate 91-110"),
        (111.0, 2, &"heart_rate 111-130"),
        (131.0, 3, &"heart_rate >= 131"),
    ],
);
const TEMPERATURE: Chart = (
    3,
    &"temperature <= 35.0",
    &[
        (35.1, 1, &"temperature 35.1-36.0"),
        (36.1, 0, &""),
        (38.1, 1, &"temperature 38.1-39.0"),
        (39.1, 2, &"temperature >= 39.1"),
    ],
);

/// Scores NEWS2.
#[inline]
pub fn assess(inputs: &Inputs<'_>) -> News2 {
    let mut out = News2::default();
    score_into(inputs, &mut out);
    out
}

/// Scores into `out`, reusing its storage (the hot-path form of [`assess`]).
#[inline]
pub fn score_into(inputs: &Inputs<'_>, out: &mut News2) {
    let mut missing = ParamSet::EMPTY;
    let criteria = &mut out.criteria;
    criteria.clear();
    let mut c = Components::default();
    let mut score =
        |slot: &mut u8, reading: Reading, (points, text): (u8, &'static &'static str)| {
            *slot = points;
            if points > 0 {
                criteria.push(text, reading, points);
            }
        };

    if let Some(r) = inputs.require(Param::RespRate, &mut missing) {
        score(
            &mut c.resp_rate,
            r,
            band(round_chart(r.value, 1.0), RESP_RATE),
        );
    }

    let oxygen = on_oxygen(inputs, &mut missing);
    let on_o2 = oxygen.is_some_and(|(on, _)| on);
    if let Some((true, r)) = oxygen {
        score(&mut c.on_oxygen, r, (2, &"on oxygen"));
    }

    let scale = inputs
        .latest(Param::Spo2Scale)
        .map_or(1, |r| if r.value == 2.0 { 2 } else { 1 });
    if let Some(r) = inputs.require(Param::Spo2, &mut missing) {
        let v = round_chart(r.value, 1.0);
        let hit = match scale {
            2 if v >= 93.0 && on_o2 => band(v, (0, &"", SPO2_SCALE2_OXYGEN)),
            2 => band(v, SPO2_SCALE2_AIR),
            _ => band(v, SPO2_SCALE1),
        };
        score(&mut c.spo2, r, hit);
    }

    if let Some(r) = inputs.require(Param::Sbp, &mut missing) {
        score(&mut c.sbp, r, band(round_chart(r.value, 1.0), SBP));
    }
    if let Some(r) = inputs.require(Param::HeartRate, &mut missing) {
        score(&mut c.heart_rate, r, band(round_chart(r.value, 1.0), PULSE));
    }
    if let Some(r) = inputs.require(Param::Consciousness, &mut missing)
        && r.acvpu() != Some(Acvpu::A)
    {
        score(&mut c.consciousness, r, (3, &"consciousness C, V, P or U"));
    }
    if let Some(r) = inputs.require(Param::Temperature, &mut missing) {
        score(
            &mut c.temperature,
            r,
            band(round_chart(r.value, 10.0), TEMPERATURE),
        );
    }

    let parts = [
        c.resp_rate,
        c.spo2,
        c.on_oxygen,
        c.sbp,
        c.heart_rate,
        c.consciousness,
        c.temperature,
    ];
    let total: u8 = parts.iter().sum();
    out.score = total;
    out.risk = risk(total, parts.contains(&3));
    out.components = c;
    out.spo2_scale = scale;
    out.missing = missing;
}

/// The RCP chart 4 risk band of a total.
pub fn risk(total: u8, any_single_three: bool) -> Risk {
    match total {
        7.. => Risk::High,
        5..=6 => Risk::Medium,
        _ if any_single_three => Risk::LowMedium,
        _ => Risk::Low,
    }
}

/// Air or oxygen, with the reading that says so; `None` (and `on_oxygen` missing) when
/// nothing current says.
fn on_oxygen(inputs: &Inputs<'_>, missing: &mut ParamSet) -> Option<(bool, Reading)> {
    if let Some(r) = inputs.latest(Param::OnOxygen) {
        return Some((r.is_true(), r));
    }
    if let Some(r) = inputs.latest(Param::O2Flow) {
        return Some((r.value > 0.0, r));
    }
    if let Some(r) = inputs.latest(Param::Fio2) {
        return Some((r.value > 0.21, r));
    }
    missing.insert(Param::OnOxygen);
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::observation::RawValue;
    use crate::rules::test_util::{NOW, n, window};

    fn news(readings: &[(&str, RawValue<'_>)]) -> News2 {
        let w = window(readings);
        let config = Config::default();
        assess(&Inputs::new(&w, NOW, &config))
    }

    fn points(code: &str, v: f64) -> u8 {
        news(&[(code, n(v))]).score
    }

    /// Asserts `(value, points)` pairs: both edges of every band.
    fn table(code: &str, cases: &[(f64, u8)]) {
        for &(v, p) in cases {
            assert_eq!(points(code, v), p, "{code} {v}");
        }
    }

    #[test]
    fn respiration_rate_bands() {
        table(
            "resp_rate",
            &[
                (8.0, 3),
                (9.0, 1),
                (11.0, 1),
                (12.0, 0),
                (20.0, 0),
                (21.0, 2),
                (24.0, 2),
                (25.0, 3),
            ],
        );
        table(
            "resp_rate",
            &[(8.4, 3), (8.5, 1), (20.4, 0), (20.5, 2), (24.5, 3)],
        );
    }

    #[test]
    fn spo2_scale1_bands() {
        table(
            "spo2",
            &[
                (91.0, 3),
                (92.0, 2),
                (93.0, 2),
                (94.0, 1),
                (95.0, 1),
                (96.0, 0),
                (100.0, 0),
            ],
        );
        table("spo2", &[(91.4, 3), (91.5, 2), (95.5, 0)]);
    }

    #[test]
    fn spo2_scale2_bands_on_air_and_oxygen() {
        let s2 = |spo2: f64, oxygen: bool| {
            news(&[
                ("spo2_scale", n(2.0)),
                ("on_oxygen", RawValue::Bool(oxygen)),
                ("spo2", n(spo2)),
            ])
            .components
            .spo2
        };
        for oxygen in [false, true] {
            for (v, p) in [
                (83.0, 3),
                (84.0, 2),
                (85.0, 2),
                (86.0, 1),
                (87.0, 1),
                (88.0, 0),
                (92.0, 0),
            ] {
                assert_eq!(s2(v, oxygen), p, "{v} oxygen={oxygen}");
            }
        }
        for v in [93.0, 97.0, 100.0] {
            assert_eq!(s2(v, false), 0, "{v} on air");
        }
        for (v, p) in [
            (93.0, 1),
            (94.0, 1),
            (95.0, 2),
            (96.0, 2),
            (97.0, 3),
            (100.0, 3),
        ] {
            assert_eq!(s2(v, true), p, "{v} on oxygen");
        }
        let r = news(&[("spo2_scale", n(2.0)), ("spo2", n(90.0))]);
        assert_eq!(r.spo2_scale, 2);
        assert_eq!(r.components.spo2, 0);
        assert_eq!(
            news(&[("spo2", n(90.0))]).spo2_scale,
            1,
            "scale 1 unless set"
        );
    }

    #[test]
    fn air_or_oxygen() {
        assert_eq!(
            news(&[("on_oxygen", RawValue::Bool(true))])
                .components
                .on_oxygen,
            2
        );
        assert_eq!(
            news(&[("on_oxygen", RawValue::Bool(false))])
                .components
                .on_oxygen,
            0
        );
        assert_eq!(news(&[("o2_flow", n(2.0))]).components.on_oxygen, 2);
        assert_eq!(news(&[("o2_flow", n(0.0))]).components.on_oxygen, 0);
        assert_eq!(news(&[("fio2", n(0.21))]).components.on_oxygen, 0);
        assert_eq!(news(&[("fio2", n(0.28))]).components.on_oxygen, 2);
        assert!(news(&[]).missing.contains(Param::OnOxygen));
        assert!(
            !news(&[("o2_flow", n(2.0))])
                .missing
                .contains(Param::OnOxygen)
        );
        // The explicit flag wins over the device values.
        let r = news(&[("on_oxygen", RawValue::Bool(false)), ("o2_flow", n(2.0))]);
        assert_eq!(r.components.on_oxygen, 0);
    }

    #[test]
    fn systolic_bands() {
        table(
            "sbp",
            &[
                (90.0, 3),
                (91.0, 2),
                (100.0, 2),
                (101.0, 1),
                (110.0, 1),
                (111.0, 0),
                (219.0, 0),
                (220.0, 3),
            ],
        );
        // The reference's worked values.
        table("sbp", &[(219.4, 0), (219.6, 3), (90.4, 3), (90.5, 2)]);
    }

    #[test]
    fn pulse_bands() {
        table(
            "heart_rate",
            &[
                (40.0, 3),
                (41.0, 1),
                (50.0, 1),
                (51.0, 0),
                (90.0, 0),
                (91.0, 1),
                (110.0, 1),
                (111.0, 2),
                (130.0, 2),
                (131.0, 3),
            ],
        );
    }

    #[test]
    fn consciousness_bands() {
        assert_eq!(news(&[("consciousness", RawValue::Text("A"))]).score, 0);
        for c in ["C", "V", "P", "U"] {
            assert_eq!(
                news(&[("consciousness", RawValue::Text(c))]).score,
                3,
                "{c}"
            );
        }
    }

    #[test]
    fn temperature_bands() {
        table(
            "temperature",
            &[
                (35.0, 3),
                (35.1, 1),
                (36.0, 1),
                (36.1, 0),
                (38.0, 0),
                (38.1, 1),
                (39.0, 1),
                (39.1, 2),
                (42.0, 2),
            ],
        );
        // The reference's worked values, and the decimal half.
        table(
            "temperature",
            &[
                (35.04, 3),
                (35.06, 1),
                (35.05, 1),
                (36.04, 1),
                (36.05, 0),
                (39.05, 2),
            ],
        );
    }

    #[test]
    fn risk_bands() {
        assert_eq!(risk(0, false), Risk::Low);
        assert_eq!(risk(4, false), Risk::Low);
        assert_eq!(risk(3, true), Risk::LowMedium);
        assert_eq!(risk(4, true), Risk::LowMedium);
        assert_eq!(risk(5, false), Risk::Medium);
        assert_eq!(risk(5, true), Risk::Medium);
        assert_eq!(risk(6, true), Risk::Medium);
        assert_eq!(risk(7, false), Risk::High);
        assert_eq!(risk(20, true), Risk::High);
    }

    #[test]
    fn totals_components_and_evidence() {
        let r = news(&[
            ("resp_rate", n(26.0)),
            ("spo2", n(95.0)),
            ("on_oxygen", RawValue::Bool(false)),
            ("sbp", n(95.0)),
            ("heart_rate", n(115.0)),
            ("consciousness", RawValue::Text("A")),
            ("temperature", n(37.0)),
        ]);
        assert_eq!(r.score, 3 + 1 + 2 + 2);
        assert_eq!(r.risk, Risk::High);
        assert_eq!(
            r.components,
            Components {
                resp_rate: 3,
                spo2: 1,
                on_oxygen: 0,
                sbp: 2,
                heart_rate: 2,
                consciousness: 0,
                temperature: 0
            }
        );
        assert!(r.missing.is_empty());
        let texts: Vec<_> = r
            .criteria
            .as_slice()
            .iter()
            .map(|e| (e.criterion(), e.points()))
            .collect();
        assert_eq!(
            texts,
            vec![
                ("resp_rate >= 25", 3),
                ("spo2 94-95 (scale 1)", 1),
                ("sbp 91-100", 2),
                ("heart_rate 111-130", 2)
            ]
        );
        let single = news(&[("resp_rate", n(7.0))]);
        assert_eq!((single.score, single.risk), (3, Risk::LowMedium));
    }
}
