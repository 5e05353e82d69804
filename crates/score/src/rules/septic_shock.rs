//! Septic shock (Sepsis-3).
//!
//! Source: Singer et al., JAMA 2016;315(8):801: septic shock is identified by a
//! vasopressor requirement to hold MAP >= 65 mmHg AND serum lactate > 2 mmol/L.
//!
//! Conventions: a vasopressor is running when a current (non-stale, 2 h by default)
//! norepinephrine, epinephrine or dopamine rate is above 0. Dobutamine is an inotrope,
//! not a vasopressor, and does not count. Lactate must be current (24 h by default) and
//! strictly above 2 mmol/L. The engine cannot see the clinical intent or the volume
//! resuscitation the definition presumes; the result says what the data show.

use super::{Criteria, Inputs};
use crate::param::{Param, ParamSet};

/// Every parameter this rule reads: a new reading of any of them can change the result.
pub const INPUTS: ParamSet = ParamSet::of(&[
    Param::Norepinephrine,
    Param::Epinephrine,
    Param::Dopamine,
    Param::Lactate,
]);

const VASOPRESSORS: [Param; 3] = [Param::Norepinephrine, Param::Epinephrine, Param::Dopamine];

/// A septic-shock result.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct SepticShock {
    /// Both criteria met.
    pub present: bool,
    /// The criteria met (a running vasopressor, a lactate above 2).
    pub criteria: Criteria<2>,
    /// Inputs with no current value.
    pub missing: ParamSet,
}

/// Assesses Sepsis-3 septic shock.
#[inline]
pub fn assess(inputs: &Inputs<'_>) -> SepticShock {
    let mut out = SepticShock::default();
    score_into(inputs, &mut out);
    out
}

/// Scores into `out`, reusing its storage (the hot-path form of [`assess`]).
#[inline]
pub fn score_into(inputs: &Inputs<'_>, out: &mut SepticShock) {
    let mut missing = ParamSet::EMPTY;
    let criteria = &mut out.criteria;
    criteria.clear();
    let mut pressor = false;
    let mut any_pressor_data = false;
    for p in VASOPRESSORS {
        if let Some(r) = inputs.latest(p) {
            any_pressor_data = true;
            if r.value > 0.0 && !pressor {
                pressor = true;
                criteria.push(
                    match p {
                        Param::Norepinephrine => &"norepinephrine running",
                        Param::Epinephrine => &"epinephrine running",
                        _ => &"dopamine running",
                    },
                    r,
                    1,
                );
            }
        }
    }
    if !any_pressor_data {
        for p in VASOPRESSORS {
            missing.insert(p);
        }
    }
    let lactate = inputs
        .require(Param::Lactate, &mut missing)
        .filter(|r| r.value > 2.0);
    if let Some(r) = lactate {
        criteria.push(&"lactate > 2", r, 1);
    }
    out.present = pressor && lactate.is_some();
    out.missing = missing;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::observation::RawValue;
    use crate::rules::test_util::{NOW, n, window};

    fn shock(readings: &[(&str, RawValue<'_>)]) -> SepticShock {
        let w = window(readings);
        let config = Config::default();
        assess(&Inputs::new(&w, NOW, &config))
    }

    #[test]
    fn needs_both_a_vasopressor_and_lactate_above_2() {
        assert!(shock(&[("norepinephrine", n(0.05)), ("lactate", n(2.1))]).present);
        assert!(shock(&[("epinephrine", n(0.05)), ("lactate", n(4.0))]).present);
        assert!(shock(&[("dopamine", n(3.0)), ("lactate", n(4.0))]).present);
        assert!(
            !shock(&[("norepinephrine", n(0.05)), ("lactate", n(2.0))]).present,
            "lactate edge is strict"
        );
        assert!(
            !shock(&[("norepinephrine", n(0.0)), ("lactate", n(5.0))]).present,
            "a stopped infusion"
        );
        assert!(
            !shock(&[("dobutamine", n(5.0)), ("lactate", n(5.0))]).present,
            "an inotrope"
        );
        assert!(!shock(&[("lactate", n(5.0))]).present);
    }

    #[test]
    fn explains_and_lists_missing() {
        let s = shock(&[("norepinephrine", n(0.2)), ("lactate", n(3.0))]);
        let texts: Vec<_> = s
            .criteria
            .as_slice()
            .iter()
            .map(|e| e.criterion())
            .collect();
        assert_eq!(texts, vec!["norepinephrine running", "lactate > 2"]);
        assert!(s.missing.is_empty());
        let none = shock(&[]);
        assert_eq!(
            none.missing.iter().collect::<Vec<_>>(),
            vec![
                Param::Lactate,
                Param::Norepinephrine,
                Param::Epinephrine,
                Param::Dopamine
            ]
        );
    }
}
