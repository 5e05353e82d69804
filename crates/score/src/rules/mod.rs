//! The scoring rules, one module each, all of the same shape: a result type and an
//! `assess(&Inputs) -> Result` function that reads current values from [`Inputs`] and
//! says which criteria were met (with the value and time that met them) and which inputs
//! were missing or stale.
//!
//! Rules never allocate: evidence lists are fixed-size and missing inputs are a bit set,
//! so a full assessment stays on the stack.

use crate::config::Config;
use crate::observation::Value;
use crate::param::{Param, ParamSet};
use crate::time::Timestamp;
use std::cell::Cell;

use crate::window::{PfWorst, Reading, Window};

pub mod mews;
pub mod news2;
pub mod qsofa;
pub mod risk;
pub mod septic_shock;
pub mod sirs;
pub mod sofa;

/// The rules, by name (the `rule` of an alert).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleId {
    /// quick SOFA.
    Qsofa,
    /// Systemic inflammatory response syndrome.
    Sirs,
    /// National Early Warning Score 2.
    News2,
    /// Sequential Organ Failure Assessment.
    Sofa,
    /// Sepsis-3 septic shock.
    SepticShock,
    /// Modified Early Warning Score.
    Mews,
    /// Vigil Risk, the learned estimate (a statistical estimate, not a published score).
    Risk,
}

impl RuleId {
    /// Every rule, in the order results and alert states are kept.
    pub const ALL: [RuleId; 7] = [
        RuleId::Qsofa,
        RuleId::Sirs,
        RuleId::News2,
        RuleId::Sofa,
        RuleId::SepticShock,
        RuleId::Mews,
        RuleId::Risk,
    ];

    /// What the rule measures, one entry per criterion or organ system it scores: the
    /// parameters that can measure it, and whether it needs all of them (`true`: SOFA's
    /// PaO2/FiO2 ratio) or any one (`false`: GCS or ACVPU for qSOFA's mentation). This is
    /// what an alert's "3 of 7 measured" counts.
    pub fn measures(self) -> &'static [(ParamSet, bool)] {
        use Param::*;
        const fn one(p: Param) -> (ParamSet, bool) {
            (ParamSet::of(&[p]), false)
        }
        const fn any(ps: &[Param]) -> (ParamSet, bool) {
            (ParamSet::of(ps), false)
        }
        const QSOFA: [(ParamSet, bool); 3] = [one(RespRate), one(Sbp), any(&[Gcs, Consciousness])];
        const SIRS: [(ParamSet, bool); 4] = [
            one(Temperature),
            one(HeartRate),
            any(&[RespRate, Paco2]),
            any(&[Wbc, Bands]),
        ];
        const NEWS2: [(ParamSet, bool); 7] = [
            one(RespRate),
            one(Spo2),
            one(OnOxygen),
            one(Sbp),
            one(HeartRate),
            one(Consciousness),
            one(Temperature),
        ];
        const SOFA: [(ParamSet, bool); 6] = [
            (ParamSet::of(&[Pao2, Fio2]), true),
            one(Platelets),
            one(Bilirubin),
            any(&[Map, Dopamine, Dobutamine, Epinephrine, Norepinephrine]),
            one(Gcs),
            any(&[Creatinine, UrineOutput]),
        ];
        const SHOCK: [(ParamSet, bool); 2] =
            [any(&[Norepinephrine, Epinephrine, Dopamine]), one(Lactate)];
        const MEWS: [(ParamSet, bool); 5] = [
            one(Sbp),
            one(HeartRate),
            one(RespRate),
            one(Temperature),
            one(Consciousness),
        ];
        match self {
            RuleId::Qsofa => &QSOFA,
            RuleId::Sirs => &SIRS,
            RuleId::News2 => &NEWS2,
            RuleId::Sofa => &SOFA,
            RuleId::SepticShock => &SHOCK,
            RuleId::Mews => &MEWS,
            RuleId::Risk => {
                // One criterion per parameter the shipped model reads.
                static RISK: std::sync::OnceLock<Vec<(ParamSet, bool)>> =
                    std::sync::OnceLock::new();
                RISK.get_or_init(|| {
                    risk::inputs()
                        .iter()
                        .map(|p| (ParamSet::of(&[p]), false))
                        .collect()
                })
            }
        }
    }

    /// How much of what the rule measures was current, given the rule's `missing` set:
    /// the number of criteria measured, the number it has, and the parameters of the
    /// unmeasured ones (the missing parameters a person must chart).
    pub fn coverage(self, missing: ParamSet) -> Coverage {
        let mut c = Coverage {
            measured: 0,
            of: 0,
            missing: ParamSet::EMPTY,
        };
        for (members, all) in self.measures() {
            c.of += 1;
            let measured = if *all {
                !members.intersects(missing)
            } else {
                !members.is_subset(missing)
            };
            if measured {
                c.measured += 1;
            } else {
                c.missing = c.missing.union(members.intersection(missing));
            }
        }
        c
    }

    /// The rule with this name, if any.
    pub fn from_name(name: &str) -> Option<RuleId> {
        RuleId::ALL.into_iter().find(|r| r.name() == name)
    }

    /// The rule as clinicians write it (`NEWS2`, `qSOFA`, `Septic shock`).
    pub fn label(self) -> &'static str {
        match self {
            RuleId::Qsofa => "qSOFA",
            RuleId::Sirs => "SIRS",
            RuleId::News2 => "NEWS2",
            RuleId::Sofa => "SOFA",
            RuleId::SepticShock => "Septic shock",
            RuleId::Mews => "MEWS",
            RuleId::Risk => "Vigil Risk",
        }
    }

    /// The rule's name as in the alert events (REFERENCE.md).
    pub fn name(self) -> &'static str {
        match self {
            RuleId::Qsofa => "qsofa",
            RuleId::Sirs => "sirs",
            RuleId::News2 => "news2",
            RuleId::Sofa => "sofa",
            RuleId::SepticShock => "septic_shock",
            RuleId::Mews => "mews",
            RuleId::Risk => "risk",
        }
    }
}

/// How much of what a rule measures was current at an assessment ([`RuleId::coverage`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Coverage {
    /// Criteria (or organ systems) measured by a current reading.
    pub measured: u8,
    /// Criteria the rule has.
    pub of: u8,
    /// The parameters of the unmeasured criteria.
    pub missing: ParamSet,
}

/// What rules read: the window, the evaluation instant and the settings. Current values
/// are looked up on demand; the window keeps each parameter's newest reading in one
/// contiguous block, so a lookup at or after it is a load and a comparison.
///
/// Every lookup also lowers a *horizon*: the first instant from which one of the values
/// read may differ without a new reading (a reading turning stale, a worst reading
/// leaving the 24 h span, a reading measured after `at` coming into view). A rule's
/// result cannot change before its horizon unless one of its inputs gets a new reading,
/// which is what lets [`crate::Patient`] re-score only what can have changed.
pub struct Inputs<'a> {
    window: &'a Window,
    at: Timestamp,
    config: &'a Config,
    horizon: Cell<Timestamp>,
}

impl<'a> Inputs<'a> {
    /// Inputs for evaluating `window` at `at`.
    pub fn new(window: &'a Window, at: Timestamp, config: &'a Config) -> Inputs<'a> {
        Inputs {
            window,
            at,
            config,
            horizon: Cell::new(Timestamp::from_millis(i64::MAX)),
        }
    }

    #[inline]
    pub(crate) fn lower_horizon(&self, until: Timestamp) {
        if until < self.horizon.get() {
            self.horizon.set(until);
        }
    }

    /// The horizon of the lookups since the last call, and a fresh start.
    pub(crate) fn take_horizon(&self) -> Timestamp {
        self.horizon.replace(Timestamp::from_millis(i64::MAX))
    }

    /// The current (latest, non-stale) reading of `p`, if any.
    #[inline]
    pub fn latest(&self, p: Param) -> Option<Reading> {
        let (reading, until) = self.window.latest_until(p, self.at, &self.config.staleness);
        self.lower_horizon(until);
        reading
    }

    /// The current reading of `p`, adding `p` to `missing` if there is none.
    #[inline]
    pub fn require(&self, p: Param, missing: &mut ParamSet) -> Option<Reading> {
        let r = self.latest(p);
        if r.is_none() {
            missing.insert(p);
        }
        r
    }

    /// The worst reading of `p` in the 24 h up to the evaluation instant (SOFA).
    #[inline]
    pub fn worst_24h(&self, p: Param) -> Option<Reading> {
        let (reading, until) = self.window.worst_24h_until(p, self.at);
        self.lower_horizon(until);
        reading
    }

    /// The worst PaO2/FiO2 pair of the 24 h up to the evaluation instant (SOFA).
    pub fn worst_pf(&self) -> PfWorst {
        let (pf, until) = self
            .window
            .worst_pf_until(self.at, self.config.staleness.vital);
        self.lower_horizon(until);
        pf
    }

    /// The evaluation instant.
    pub fn at(&self) -> Timestamp {
        self.at
    }

    /// The window.
    pub fn window(&self) -> &'a Window {
        self.window
    }

    /// The settings.
    pub fn config(&self) -> &'a Config {
        self.config
    }
}

/// One criterion that contributed: which, the reading that met it, and its points.
///
/// Kept to 32 bytes (the criterion text is a thin pointer to a static) so that results
/// with their evidence stay small enough to move around freely on the scoring path.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Evidence {
    criterion: &'static &'static str,
    value: f64,
    effective: Timestamp,
    param: Param,
    points: u8,
}

impl Evidence {
    const EMPTY: Evidence = Evidence {
        criterion: &"",
        value: 0.0,
        effective: Timestamp::from_millis(0),
        param: Param::HeartRate,
        points: 0,
    };

    /// The criterion as a short text, e.g. `resp_rate >= 22`.
    pub fn criterion(&self) -> &'static str {
        self.criterion
    }

    /// The reading that met it.
    pub fn reading(&self) -> Reading {
        Reading {
            param: self.param,
            value: self.value,
            effective: self.effective,
        }
    }

    /// The points it scored.
    pub fn points(&self) -> u8 {
        self.points
    }
}

impl serde::Serialize for Evidence {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let reading = self.reading();
        let mut st = s.serialize_struct("Evidence", 6)?;
        st.serialize_field("criterion", self.criterion)?;
        st.serialize_field("code", &self.param)?;
        st.serialize_field("value", &reading.value())?;
        st.serialize_field("unit", self.param.unit())?;
        st.serialize_field("effective", &self.effective)?;
        st.serialize_field("points", &self.points)?;
        st.end()
    }
}

/// The criteria a rule found met, in the rule's order; `N` is the most the rule can meet.
/// Two lists are equal when they hold the same criteria (slots beyond the length are
/// storage, not content).
#[derive(Clone, Copy)]
pub struct Criteria<const N: usize> {
    items: [Evidence; N],
    len: u8,
}

impl<const N: usize> Default for Criteria<N> {
    fn default() -> Self {
        Criteria {
            items: [Evidence::EMPTY; N],
            len: 0,
        }
    }
}

impl<const N: usize> Criteria<N> {
    /// Records a met criterion. `criterion` is a `&"text"` literal (promoted to a static).
    /// Beyond `N` items further ones are ignored; every rule sizes `N` to its criteria.
    #[inline]
    pub(crate) fn push(&mut self, criterion: &'static &'static str, reading: Reading, points: u8) {
        debug_assert!(usize::from(self.len) < N, "criteria capacity {N} exceeded");
        if let Some(slot) = self.items.get_mut(usize::from(self.len)) {
            *slot = Evidence {
                criterion,
                value: reading.value,
                effective: reading.effective,
                param: reading.param,
                points,
            };
            self.len += 1;
        }
    }

    /// Replaces the criterion at `index` (one already recorded).
    #[inline]
    pub(crate) fn set(
        &mut self,
        index: usize,
        criterion: &'static &'static str,
        reading: Reading,
        points: u8,
    ) {
        if let Some(slot) = self.items[..usize::from(self.len)].get_mut(index) {
            *slot = Evidence {
                criterion,
                value: reading.value,
                effective: reading.effective,
                param: reading.param,
                points,
            };
        }
    }

    /// Forgets every criterion (keeps the storage).
    #[inline]
    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// The criteria met.
    pub fn as_slice(&self) -> &[Evidence] {
        &self.items[..usize::from(self.len)]
    }

    /// Whether a criterion on `param` was met.
    pub fn has(&self, param: Param) -> bool {
        self.as_slice().iter().any(|e| e.param == param)
    }
}

impl<const N: usize> PartialEq for Criteria<N> {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl<const N: usize> std::fmt::Debug for Criteria<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.as_slice()).finish()
    }
}

impl<const N: usize> serde::Serialize for Criteria<N> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.as_slice())
    }
}

/// Rounds to a chart's printed precision, half away from zero, as a person reading the
/// chart would round the decimal number sent: `scale` is 1 for whole numbers and 10 for
/// tenths. A value sent as 35.05 is stored in binary as 35.04999..., so the product is
/// nudged by far less than any real reading's precision before rounding.
///
/// Readings are validated to physiological ranges, far inside `i64`, so rounding is done
/// by truncating `|x| + 0.5` (one instruction) rather than a call to libm's `round`.
#[inline]
pub fn round_chart(value: f64, scale: f64) -> f64 {
    let scaled = value * scale;
    let magnitude = (scaled.abs() + 1e-9 + 0.5) as i64 as f64;
    magnitude.copysign(scaled) / scale
}

/// One band of a chart: from `edge` up (to the next band's edge), `points`, and the text
/// that explains it.
pub(crate) type Band = (f64, u8, &'static &'static str);

/// A banded chart: the points and text below the first edge, then ascending bands.
pub(crate) type Chart = (u8, &'static &'static str, &'static [Band]);

/// The points and text of the band `value` falls in: at or above an edge is that band.
#[inline]
pub(crate) fn band(value: f64, (below, below_text, steps): Chart) -> (u8, &'static &'static str) {
    let mut hit = (below, below_text);
    for &(edge, points, text) in steps {
        if value >= edge {
            hit = (points, text);
        } else {
            break;
        }
    }
    hit
}

impl Reading {
    /// Whether this reading is a flag that is set.
    pub(crate) fn is_true(&self) -> bool {
        self.value != 0.0
    }

    pub(crate) fn acvpu(&self) -> Option<crate::observation::Acvpu> {
        match self.value() {
            Value::Consciousness(c) => Some(c),
            _ => None,
        }
    }
}

#[cfg(test)]
pub(crate) mod test_util {
    use crate::config::Config;
    use crate::observation::{Observation, RawValue, Status};
    use crate::time::Timestamp;
    use crate::window::Window;

    pub const NOW: Timestamp = Timestamp::from_millis(1_795_428_000_000);

    /// A window holding the given canonical readings, all measured at [`NOW`].
    pub fn window(readings: &[(&str, RawValue<'_>)]) -> Window {
        let config = Config::default();
        let mut w = Window::new();
        for (code, v) in readings {
            let o = Observation::new(code, *v, None, NOW, None, Status::Final).unwrap();
            w.ingest(&o, &config.staleness);
        }
        w
    }

    pub fn n(v: f64) -> RawValue<'static> {
        RawValue::Number(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_follows_the_reference_examples() {
        assert_eq!(round_chart(35.04, 10.0), 35.0);
        assert_eq!(round_chart(35.06, 10.0), 35.1);
        assert_eq!(
            round_chart(35.05, 10.0),
            35.1,
            "half away from zero on the decimal"
        );
        assert_eq!(round_chart(219.4, 1.0), 219.0);
        assert_eq!(round_chart(219.5, 1.0), 220.0);
        assert_eq!(round_chart(219.6, 1.0), 220.0);
        assert_eq!(round_chart(90.5, 1.0), 91.0);
        assert_eq!(round_chart(-2.5, 1.0), -3.0, "half away from zero");
        assert_eq!(round_chart(-2.4, 1.0), -2.0);
        assert_eq!(round_chart(0.0, 10.0), 0.0);
        for i in 0..4000 {
            let x = f64::from(i) / 40.0;
            assert_eq!(round_chart(x, 1.0), (x + 1e-9).round(), "{x}");
        }
    }

    #[test]
    fn evidence_stays_small() {
        assert_eq!(size_of::<Evidence>(), 32);
        let mut c = Criteria::<2>::default();
        c.push(&"x", Evidence::EMPTY.reading(), 1);
        assert_eq!(c.as_slice()[0].criterion(), "x");
        assert!(c.has(Param::HeartRate) && !c.has(Param::Sbp));
    }
}
