//! SOFA (Sequential Organ Failure Assessment), worst value of each system over 24 h.
//!
//! Source: Vincent et al., Intensive Care Med 1996;22:707, as tabled in Singer et al.
//! (Sepsis-3), JAMA 2016;315(8):801, Table 1.
//!
//! | System | 0 | 1 | 2 | 3 | 4 |
//! |---|---|---|---|---|---|
//! | Respiration PaO2/FiO2 mmHg | >= 400 | < 400 | < 300 | < 200 with support | < 100 with support |
//! | Coagulation platelets x10^3/uL | >= 150 | < 150 | < 100 | < 50 | < 20 |
//! | Liver bilirubin mg/dL | < 1.2 | 1.2-1.9 | 2.0-5.9 | 6.0-11.9 | >= 12.0 |
//! | Cardiovascular | MAP >= 70 | MAP < 70 | dopamine <= 5 or dobutamine any | dopamine > 5, epinephrine <= 0.1 or norepinephrine <= 0.1 | dopamine > 15, epinephrine > 0.1 or norepinephrine > 0.1 |
//! | CNS GCS | 15 | 13-14 | 10-12 | 6-9 | < 6 |
//! | Renal creatinine mg/dL | < 1.2 | 1.2-1.9 | 2.0-3.4 | 3.5-4.9 | >= 5.0 |
//! | Renal urine output mL/24 h | | | | < 500 | < 200 |
//!
//! Conventions (the sources above, and where they are silent the MIT-LCP mimic-code
//! convention named):
//! - catecholamine doses in ug/kg/min; a dose of 0 is an infusion that is not running;
//! - respiratory support is invasive or non-invasive ventilation (`ventilation`); without
//!   it a P/F below 200 scores 2 (the MIT-LCP mimic-code convention);
//! - bilirubin and creatinine bands are closed on their lower edge (bilirubin 12.0 and
//!   creatinine 5.0 score 4), and values between printed decimals fall in the band whose
//!   lower edge they have reached (creatinine 1.95 scores 1);
//! - renal is the worse of creatinine and urine output;
//! - each system takes its worst value over the 24 h up to the evaluation instant;
//!   for respiration, each PaO2 is paired with the FiO2 and ventilation status in force
//!   when it was drawn (charted within the vital-sign staleness limit before it), and
//!   with FiO2 0.21 when the patient was explicitly on room air;
//! - Sepsis-3 organ dysfunction is an acute rise of 2 points or more over the patient's
//!   baseline, 0 when no baseline is known.

use super::{Chart, Criteria, Inputs, band};
use crate::param::{Param, ParamSet};

/// Every parameter this rule reads: a new reading of any of them can change the result.
pub const INPUTS: ParamSet = ParamSet::of(&[
    Param::Pao2,
    Param::Fio2,
    Param::OnOxygen,
    Param::Ventilation,
    Param::Platelets,
    Param::Bilirubin,
    Param::Map,
    Param::Dopamine,
    Param::Dobutamine,
    Param::Epinephrine,
    Param::Norepinephrine,
    Param::Gcs,
    Param::Creatinine,
    Param::UrineOutput,
]);
use crate::window::Reading;

/// Points per SOFA system.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Components {
    /// PaO2/FiO2.
    pub respiration: u8,
    /// Platelets.
    pub coagulation: u8,
    /// Bilirubin.
    pub liver: u8,
    /// MAP and vasopressors.
    pub cardiovascular: u8,
    /// GCS.
    pub cns: u8,
    /// Creatinine and urine output.
    pub renal: u8,
}

/// A SOFA result.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct Sofa {
    /// 0-24.
    pub score: u8,
    /// Points per system.
    pub components: Components,
    /// The patient's baseline SOFA (0 unless known).
    pub baseline: u8,
    /// `score - baseline`, at least 0.
    pub rise: u8,
    /// `rise >= 2`: Sepsis-3 organ dysfunction.
    pub organ_dysfunction: bool,
    /// The worst readings that scored points.
    pub criteria: Criteria<6>,
    /// Inputs with no reading in the last 24 h.
    pub missing: ParamSet,
}

const PLATELETS: Chart = (
    4,
    &"platelets < 20",
    &[
        (20.0, 3, &"platelets < 50"),
        (50.0, 2, &"platelets < 100"),
        (100.0, 1, &"platelets < 150"),
        (150.0, 0, &""),
    ],
);
const BILIRUBIN: Chart = (
    0,
    &"",
    &[
        (1.2, 1, &"bilirubin 1.2-1.9"),
        (2.0, 2, &"bilirubin 2.0-5.9"),
        (6.0, 3, &"bilirubin 6.0-11.9"),
        (12.0, 4, &"bilirubin >= 12.0"),
    ],
);
const CREATININE: Chart = (
    0,
    &"",
    &[
        (1.2, 1, &"creatinine 1.2-1.9"),
        (2.0, 2, &"creatinine 2.0-3.4"),
        (3.5, 3, &"creatinine 3.5-4.9"),
        (5.0, 4, &"creatinine >= 5.0"),
    ],
);
const URINE_OUTPUT: Chart = (
    4,
    &"urine_output < 200",
    &[(200.0, 3, &"urine_output < 500"), (500.0, 0, &"")],
);
const GCS: Chart = (
    4,
    &"gcs < 6",
    &[
        (6.0, 3, &"gcs 6-9"),
        (10.0, 2, &"gcs 10-12"),
        (13.0, 1, &"gcs 13-14"),
        (15.0, 0, &""),
    ],
);

/// Scores SOFA.
#[inline]
pub fn assess(inputs: &Inputs<'_>) -> Sofa {
    let mut out = Sofa::default();
    score_into(inputs, &mut out);
    out
}

/// Scores into `out`, reusing its storage (the hot-path form of [`assess`]).
#[inline]
pub fn score_into(inputs: &Inputs<'_>, out: &mut Sofa) {
    let w = inputs.window();
    let mut missing = ParamSet::EMPTY;
    let criteria = &mut out.criteria;
    criteria.clear();
    let mut c = Components::default();
    let worst = |p: Param, missing: &mut ParamSet| {
        let r = inputs.worst_24h(p);
        if r.is_none() {
            missing.insert(p);
        }
        r
    };

    c.respiration = respiration(inputs, criteria, &mut missing);

    if let Some(r) = worst(Param::Platelets, &mut missing) {
        c.coagulation = push(criteria, r, band(r.value, PLATELETS));
    }
    if let Some(r) = worst(Param::Bilirubin, &mut missing) {
        c.liver = push(criteria, r, band(r.value, BILIRUBIN));
    }

    let map = worst(Param::Map, &mut missing);
    let mut cv: (u8, Option<Reading>, &'static &'static str) = (0, None, &"");
    if let Some(r) = map.filter(|r| r.value < 70.0) {
        cv = (1, Some(r), &"map < 70");
    }
    for p in [
        Param::Dopamine,
        Param::Dobutamine,
        Param::Epinephrine,
        Param::Norepinephrine,
    ] {
        let Some(r) = worst(p, &mut missing).filter(|r| r.value > 0.0) else {
            continue;
        };
        let (points, text) = match p {
            Param::Dopamine if r.value > 15.0 => (4, &"dopamine > 15"),
            Param::Dopamine if r.value > 5.0 => (3, &"dopamine > 5"),
            Param::Dopamine => (2, &"dopamine <= 5"),
            Param::Dobutamine => (2, &"dobutamine any dose"),
            Param::Epinephrine if r.value > 0.1 => (4, &"epinephrine > 0.1"),
            Param::Epinephrine => (3, &"epinephrine <= 0.1"),
            Param::Norepinephrine if r.value > 0.1 => (4, &"norepinephrine > 0.1"),
            _ => (3, &"norepinephrine <= 0.1"),
        };
        if points > cv.0 {
            cv = (points, Some(r), text);
        }
    }
    if let (points, Some(r), text) = cv {
        c.cardiovascular = points;
        criteria.push(text, r, points);
    }

    if let Some(r) = worst(Param::Gcs, &mut missing) {
        c.cns = push(criteria, r, band(r.value, GCS));
    }

    let creatinine = worst(Param::Creatinine, &mut missing);
    let urine = worst(Param::UrineOutput, &mut missing);
    let by_creatinine = creatinine.map(|r| (r, band(r.value, CREATININE)));
    let by_urine = urine.map(|r| (r, band(r.value, URINE_OUTPUT)));
    let renal = match (by_creatinine, by_urine) {
        (Some(c), Some(u)) => Some(if u.1.0 > c.1.0 { u } else { c }),
        (c, u) => c.or(u),
    };
    if let Some((r, hit)) = renal {
        c.renal = push(criteria, r, hit);
    }

    let score = c.respiration + c.coagulation + c.liver + c.cardiovascular + c.cns + c.renal;
    let baseline = w.sofa_baseline();
    let rise = score.saturating_sub(baseline);
    out.score = score;
    out.components = c;
    out.baseline = baseline;
    out.rise = rise;
    out.organ_dysfunction = rise >= 2;
    out.missing = missing;
}

/// Records a scoring band's reading and returns its points.
fn push(criteria: &mut Criteria<6>, r: Reading, (points, text): (u8, &'static &'static str)) -> u8 {
    if points > 0 {
        criteria.push(text, r, points);
    }
    points
}

/// The worst-scoring PaO2 of the last 24 h, each paired with the FiO2 and ventilation in
/// force when it was drawn.
fn respiration(inputs: &Inputs<'_>, criteria: &mut Criteria<6>, missing: &mut ParamSet) -> u8 {
    let pf = inputs.worst_pf();
    if !pf.any_pao2 {
        missing.insert(Param::Pao2);
    } else if !pf.any_fio2 {
        missing.insert(Param::Fio2);
    }
    match pf.pao2 {
        Some(r) if pf.points > 0 => {
            criteria.push(
                match pf.points {
                    4 => &"pao2/fio2 < 100 with respiratory support",
                    3 => &"pao2/fio2 < 200 with respiratory support",
                    2 => &"pao2/fio2 < 300",
                    _ => &"pao2/fio2 < 400",
                },
                r,
                pf.points,
            );
            pf.points
        }
        _ => 0,
    }
}

/// SOFA respiration points of one PaO2/FiO2 ratio, with or without ventilatory support.
pub(crate) fn respiration_points(ratio: f64, support: bool) -> u8 {
    match ratio {
        r if r < 100.0 && support => 4,
        r if r < 200.0 && support => 3,
        r if r < 300.0 => 2,
        r if r < 400.0 => 1,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::observation::{Observation, RawValue, Status};
    use crate::rules::test_util::{NOW, n, window};
    use crate::time::Span;
    use crate::window::Window;

    fn sofa_of(w: &Window) -> Sofa {
        let config = Config::default();
        assess(&Inputs::new(w, NOW, &config))
    }

    fn sofa(readings: &[(&str, RawValue<'_>)]) -> Sofa {
        sofa_of(&window(readings))
    }

    fn table(code: &str, pick: fn(&Components) -> u8, cases: &[(f64, u8)]) {
        for &(v, p) in cases {
            assert_eq!(pick(&sofa(&[(code, n(v))]).components), p, "{code} {v}");
        }
    }

    #[test]
    fn coagulation_bands() {
        table(
            "platelets",
            |c| c.coagulation,
            &[
                (150.0, 0),
                (149.9, 1),
                (100.0, 1),
                (99.9, 2),
                (50.0, 2),
                (49.9, 3),
                (20.0, 3),
                (19.9, 4),
            ],
        );
    }

    #[test]
    fn liver_bands() {
        table(
            "bilirubin",
            |c| c.liver,
            &[
                (1.19, 0),
                (1.2, 1),
                (1.99, 1),
                (2.0, 2),
                (5.99, 2),
                (6.0, 3),
                (11.99, 3),
                (12.0, 4),
            ],
        );
    }

    #[test]
    fn renal_bands() {
        table(
            "creatinine",
            |c| c.renal,
            &[
                (1.19, 0),
                (1.2, 1),
                (1.95, 1),
                (2.0, 2),
                (3.49, 2),
                (3.5, 3),
                (4.99, 3),
                (5.0, 4),
            ],
        );
        table(
            "urine_output",
            |c| c.renal,
            &[(500.0, 0), (499.0, 3), (200.0, 3), (199.0, 4)],
        );
        let both = sofa(&[("creatinine", n(2.5)), ("urine_output", n(150.0))]);
        assert_eq!(both.components.renal, 4, "the worse of the two");
        assert_eq!(
            both.criteria.as_slice()[0].reading().param,
            Param::UrineOutput
        );
    }

    #[test]
    fn cns_bands() {
        table(
            "gcs",
            |c| c.cns,
            &[
                (15.0, 0),
                (14.0, 1),
                (13.0, 1),
                (12.0, 2),
                (10.0, 2),
                (9.0, 3),
                (6.0, 3),
                (5.0, 4),
                (3.0, 4),
            ],
        );
    }

    #[test]
    fn cardiovascular_bands() {
        table("map", |c| c.cardiovascular, &[(70.0, 0), (69.9, 1)]);
        table(
            "dopamine",
            |c| c.cardiovascular,
            &[(0.0, 0), (0.5, 2), (5.0, 2), (5.1, 3), (15.0, 3), (15.1, 4)],
        );
        table("dobutamine", |c| c.cardiovascular, &[(0.0, 0), (2.0, 2)]);
        table(
            "epinephrine",
            |c| c.cardiovascular,
            &[(0.05, 3), (0.1, 3), (0.11, 4)],
        );
        table(
            "norepinephrine",
            |c| c.cardiovascular,
            &[(0.05, 3), (0.1, 3), (0.11, 4)],
        );
        let r = sofa(&[
            ("map", n(60.0)),
            ("norepinephrine", n(0.2)),
            ("dobutamine", n(5.0)),
        ]);
        assert_eq!(r.components.cardiovascular, 4);
        assert_eq!(r.criteria.as_slice()[0].criterion(), "norepinephrine > 0.1");
    }

    fn resp(pao2: f64, fio2: Option<f64>, vent: Option<bool>) -> u8 {
        let mut rs = vec![("pao2", n(pao2))];
        if let Some(f) = fio2 {
            rs.push(("fio2", n(f)));
        }
        if let Some(v) = vent {
            rs.push(("ventilation", RawValue::Bool(v)));
        }
        sofa(&rs).components.respiration
    }

    #[test]
    fn respiration_bands_with_and_without_support() {
        for vent in [None, Some(false), Some(true)] {
            assert_eq!(resp(400.0, Some(1.0), vent), 0);
            assert_eq!(resp(399.0, Some(1.0), vent), 1);
            assert_eq!(resp(300.0, Some(1.0), vent), 1);
            assert_eq!(resp(299.0, Some(1.0), vent), 2);
            assert_eq!(resp(200.0, Some(1.0), vent), 2);
        }
        assert_eq!(resp(199.0, Some(1.0), Some(true)), 3);
        assert_eq!(resp(100.0, Some(1.0), Some(true)), 3);
        assert_eq!(resp(99.0, Some(1.0), Some(true)), 4);
        // Without support the score is capped at 2.
        assert_eq!(resp(199.0, Some(1.0), Some(false)), 2);
        assert_eq!(resp(60.0, Some(1.0), None), 2);
        // 80 mmHg on FiO2 0.4 is 200: not below 200.
        assert_eq!(resp(80.0, Some(0.4), Some(true)), 2);
        assert_eq!(resp(79.0, Some(0.4), Some(true)), 3);
    }

    #[test]
    fn respiration_needs_fio2_or_room_air() {
        let r = sofa(&[("pao2", n(70.0))]);
        assert_eq!(r.components.respiration, 0);
        assert!(r.missing.contains(Param::Fio2));
        let air = sofa(&[("pao2", n(70.0)), ("on_oxygen", RawValue::Bool(false))]);
        assert_eq!(air.components.respiration, 1, "70 / 0.21 = 333");
        assert_eq!(
            sofa(&[("pao2", n(62.0)), ("on_oxygen", RawValue::Bool(false))])
                .components
                .respiration,
            2
        );
        assert_eq!(
            sofa(&[("pao2", n(90.0)), ("on_oxygen", RawValue::Bool(false))])
                .components
                .respiration,
            0
        );
    }

    #[test]
    fn worst_in_24h_and_pairing_by_time() {
        let config = Config::default();
        let mut w = Window::new();
        let h = |k: i64| NOW.minus(Span::hours(k));
        let add = |w: &mut Window, code: &str, v: RawValue<'_>, t| {
            let o = Observation::new(code, v, None, t, None, Status::Final).unwrap();
            w.ingest(&o, &config.staleness);
        };
        add(&mut w, "platelets", n(30.0), h(25));
        add(&mut w, "platelets", n(90.0), h(20));
        add(&mut w, "platelets", n(160.0), h(1));
        // FiO2 1.0 with PaO2 120 twelve hours ago (P/F 120), then FiO2 0.3 with PaO2 120 now (400).
        add(&mut w, "ventilation", RawValue::Bool(true), h(12));
        add(&mut w, "fio2", n(1.0), h(12));
        add(&mut w, "pao2", n(120.0), h(12));
        add(&mut w, "fio2", n(0.3), h(0));
        add(&mut w, "pao2", n(120.0), h(0));
        let r = sofa_of(&w);
        assert_eq!(
            r.components.coagulation, 2,
            "platelets 90 within 24 h; 30 is older"
        );
        assert_eq!(r.components.respiration, 3, "P/F 120 with support 12 h ago");
        assert_eq!(r.score, 5);
        assert!(r.organ_dysfunction);
        w.set_sofa_baseline(4);
        let r = sofa_of(&w);
        assert_eq!((r.baseline, r.rise, r.organ_dysfunction), (4, 1, false));
    }

    #[test]
    fn total_missing_and_organ_dysfunction_edge() {
        let r = sofa(&[]);
        assert_eq!(r.score, 0);
        assert!(!r.organ_dysfunction);
        for p in [
            Param::Pao2,
            Param::Platelets,
            Param::Bilirubin,
            Param::Map,
            Param::Gcs,
            Param::Creatinine,
            Param::UrineOutput,
            Param::Norepinephrine,
        ] {
            assert!(r.missing.contains(p), "{p}");
        }
        assert!(!sofa(&[("gcs", n(14.0))]).organ_dysfunction);
        assert!(sofa(&[("gcs", n(12.0))]).organ_dysfunction);
    }
}
