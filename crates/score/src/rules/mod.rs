//! The scoring rules, one module each, all of the same shape: a result type and an
//! `assess(&Inputs) -> Result` function that reads current values from [`Inputs`] and
//! says which criteria were met (with the value and time that met them) and which inputs
//! were missing or stale.
//!
//! Rules never allocate: evidence lists are fixed-size and missing inputs are a bit set,
//! so a full assessment stays on the stack.

use crate::config::Config;
use crate::observation::Value;
use crate::param::{PARAM_COUNT, Param, ParamSet};
use crate::time::Timestamp;
use crate::window::{Reading, Window};

pub mod mews;
pub mod news2;
pub mod qsofa;
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
}

impl RuleId {
    /// The rule's name as in `contracts.md`.
    pub fn name(self) -> &'static str {
        match self {
            RuleId::Qsofa => "qsofa",
            RuleId::Sirs => "sirs",
            RuleId::News2 => "news2",
            RuleId::Sofa => "sofa",
            RuleId::SepticShock => "septic_shock",
            RuleId::Mews => "mews",
        }
    }
}

/// What rules read: the window, the evaluation instant, the settings, and the current
/// (latest, non-stale) value of every parameter, looked up once.
pub struct Inputs<'a> {
    window: &'a Window,
    at: Timestamp,
    config: &'a Config,
    latest: [Option<Reading>; PARAM_COUNT],
}

impl<'a> Inputs<'a> {
    /// Looks up the current value of every parameter at `at`.
    pub fn new(window: &'a Window, at: Timestamp, config: &'a Config) -> Inputs<'a> {
        let mut latest = [None; PARAM_COUNT];
        for (slot, &p) in latest.iter_mut().zip(Param::ALL) {
            *slot = window.latest(p, at, &config.staleness);
        }
        Inputs {
            window,
            at,
            config,
            latest,
        }
    }

    /// The current reading of `p`, if any.
    #[inline]
    pub fn latest(&self, p: Param) -> Option<Reading> {
        self.latest[p.index()]
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
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Evidence {
    /// The criterion as a short text, e.g. `resp_rate >= 22`.
    pub criterion: &'static str,
    /// The reading that met it.
    pub reading: Reading,
    /// The points it scored.
    pub points: u8,
}

impl Evidence {
    const EMPTY: Evidence = Evidence {
        criterion: "",
        reading: Reading {
            param: Param::HeartRate,
            value: 0.0,
            effective: Timestamp::from_millis(0),
        },
        points: 0,
    };
}

impl serde::Serialize for Evidence {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("Evidence", 6)?;
        st.serialize_field("criterion", self.criterion)?;
        st.serialize_field("code", &self.reading.param)?;
        st.serialize_field("value", &self.reading.value())?;
        st.serialize_field("unit", self.reading.param.unit())?;
        st.serialize_field("effective", &self.reading.effective)?;
        st.serialize_field("points", &self.points)?;
        st.end()
    }
}

/// The criteria a rule found met, in the rule's order (at most [`Criteria::CAPACITY`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Criteria {
    items: [Evidence; Criteria::CAPACITY],
    len: u8,
}

impl Default for Criteria {
    fn default() -> Self {
        Criteria {
            items: [Evidence::EMPTY; Criteria::CAPACITY],
            len: 0,
        }
    }
}

impl Criteria {
    /// More than any rule has criteria.
    pub const CAPACITY: usize = 8;

    pub(crate) fn push(&mut self, criterion: &'static str, reading: Reading, points: u8) {
        if let Some(slot) = self.items.get_mut(usize::from(self.len)) {
            *slot = Evidence {
                criterion,
                reading,
                points,
            };
            self.len += 1;
        }
    }

    /// The criteria met.
    pub fn as_slice(&self) -> &[Evidence] {
        &self.items[..usize::from(self.len)]
    }

    /// Whether a criterion on `param` was met.
    pub fn has(&self, param: Param) -> bool {
        self.as_slice().iter().any(|e| e.reading.param == param)
    }
}

impl serde::Serialize for Criteria {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.as_slice())
    }
}

/// Rounds to a chart's printed precision, half away from zero, as a person reading the
/// chart would round the decimal number sent: `scale` is 1 for whole numbers and 10 for
/// tenths. A value sent as 35.05 is stored in binary as 35.04999..., so the product is
/// nudged by far less than any real reading's precision before rounding.
#[inline]
pub fn round_chart(value: f64, scale: f64) -> f64 {
    let scaled = value * scale;
    (scaled + scaled.signum() * 1e-9).round() / scale
}

/// Points from banded edges: values below the first edge score `below`; at or above an
/// edge, that edge's points.
#[inline]
pub(crate) fn banded(value: f64, below: u8, steps: &[(f64, u8)]) -> u8 {
    let mut p = below;
    for &(edge, points) in steps {
        if value >= edge {
            p = points;
        } else {
            break;
        }
    }
    p
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
        assert_eq!(round_chart(35.05, 10.0), 35.1, "half away from zero on the decimal");
        assert_eq!(round_chart(219.4, 1.0), 219.0);
        assert_eq!(round_chart(219.5, 1.0), 220.0);
        assert_eq!(round_chart(219.6, 1.0), 220.0);
        assert_eq!(round_chart(90.5, 1.0), 91.0);
    }

    #[test]
    fn criteria_are_bounded() {
        let mut c = Criteria::default();
        let r = Evidence::EMPTY.reading;
        for _ in 0..20 {
            c.push("x", r, 1);
        }
        assert_eq!(c.as_slice().len(), Criteria::CAPACITY);
    }
}
