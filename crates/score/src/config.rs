//! Engine settings: staleness limits and the configurable MEWS bands.
//!
//! Defaults: staleness as documented in REFERENCE.md ("Observation events"); MEWS bands from Subbe et
//! al., QJM 2001;94:521, with the edge closures tested in `rules/mews.rs`.

use std::fmt;

use crate::param::Kind;
use crate::time::Span;

/// How long a reading of each kind stays usable after its `effective` time. A stale
/// reading counts as missing and is listed as missing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Staleness {
    /// Vital signs and flags charted with them (default 6 h).
    pub vital: Span,
    /// Laboratory and blood-gas results (default 24 h).
    pub lab: Span,
    /// Infusion rates (default 2 h).
    pub infusion: Span,
    /// Per-patient settings such as `spo2_scale` (default: indefinitely).
    pub setting: Span,
}

impl Default for Staleness {
    fn default() -> Self {
        Staleness {
            vital: Span::hours(6),
            lab: Span::hours(24),
            infusion: Span::hours(2),
            setting: Span::FOREVER,
        }
    }
}

impl Staleness {
    /// The limit for a kind of parameter.
    #[inline]
    pub fn of(&self, kind: Kind) -> Span {
        match kind {
            Kind::Vital => self.vital,
            Kind::Lab => self.lab,
            Kind::Infusion => self.infusion,
            Kind::Setting => self.setting,
        }
    }
}

/// A banded score for one parameter: values below the first edge score `below`; a value
/// at or above an edge scores that edge's points (the last edge it reaches wins).
/// Values are compared after rounding to the chart's precision.
#[derive(Clone, Debug, PartialEq)]
pub struct Bands {
    below: u8,
    steps: Vec<(f64, u8)>,
}

impl Bands {
    /// Builds bands from the points below the first edge and `(edge, points)` steps.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] when edges are not finite and strictly ascending, or points exceed 3.
    pub fn new(below: u8, steps: Vec<(f64, u8)>) -> Result<Bands, ConfigError> {
        if below > 3 || steps.iter().any(|&(_, p)| p > 3) {
            return Err(ConfigError("band points must be 0-3".into()));
        }
        if steps.iter().any(|(e, _)| !e.is_finite()) || steps.windows(2).any(|w| w[0].0 >= w[1].0) {
            return Err(ConfigError(format!(
                "band edges must be finite and strictly ascending, got {:?}",
                steps.iter().map(|s| s.0).collect::<Vec<_>>()
            )));
        }
        Ok(Bands { below, steps })
    }

    /// The points for a (rounded) value.
    #[inline]
    pub fn points(&self, value: f64) -> u8 {
        let mut p = self.below;
        for &(edge, points) in &self.steps {
            if value >= edge {
                p = points;
            } else {
                break;
            }
        }
        p
    }
}

/// The MEWS bands. Local variants differ, so every band is configurable.
#[derive(Clone, Debug, PartialEq)]
pub struct MewsBands {
    /// Systolic blood pressure, mmHg (whole numbers).
    pub sbp: Bands,
    /// Heart rate, /min (whole numbers).
    pub heart_rate: Bands,
    /// Respiratory rate, /min (whole numbers).
    pub resp_rate: Bands,
    /// Temperature, Cel (to 0.1).
    pub temperature: Bands,
    /// Points for A, C, V, P, U. MEWS charts AVPU; new confusion (C) is scored as Voice
    /// by default, never as Alert.
    pub consciousness: [u8; 5],
}

impl Default for MewsBands {
    /// Subbe 2001: SBP <=70 3, 71-80 2, 81-100 1, 101-199 0, >=200 2; HR <=40 2 (the
    /// printed "<40" and "41-50" leave 40 open: closed on the worse side), 41-50 1,
    /// 51-100 0, 101-110 1, 111-129 2, >=130 3; RR <9 2, 9-14 0, 15-20 1, 21-29 2, >=30 3;
    /// temperature <35 2, 35.0-38.4 0, >=38.5 2; A 0, V 1, P 2, U 3.
    fn default() -> Self {
        let b = |below, steps| Bands { below, steps };
        MewsBands {
            sbp: b(3, vec![(71.0, 2), (81.0, 1), (101.0, 0), (200.0, 2)]),
            heart_rate: b(
                2,
                vec![(41.0, 1), (51.0, 0), (101.0, 1), (111.0, 2), (130.0, 3)],
            ),
            resp_rate: b(2, vec![(9.0, 0), (15.0, 1), (21.0, 2), (30.0, 3)]),
            temperature: b(2, vec![(35.0, 0), (38.5, 2)]),
            consciousness: [0, 1, 1, 2, 3],
        }
    }
}

/// Everything the engine can be told.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// Staleness limits.
    pub staleness: Staleness,
    /// MEWS bands.
    pub mews: MewsBands,
    /// The Vigil Risk model (default: the one shipped with Vigil; `vigil train` evaluates
    /// its cross-validation models through this).
    pub risk: std::sync::Arc<crate::risk::RiskModel>,
    /// Whether Vigil Risk is computed (default: yes). The service turns it off when no
    /// alert level of it is configured, since nothing else there shows it; a result not
    /// computed scores 0 with every input missing.
    pub score_risk: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            staleness: Staleness::default(),
            mews: MewsBands::default(),
            risk: crate::risk::RiskModel::shipped_shared(),
            score_risk: true,
        }
    }
}

/// An invalid setting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bands_apply_edges_inclusively() {
        let b = Bands::new(2, vec![(9.0, 0), (15.0, 1)]).unwrap();
        assert_eq!(b.points(8.0), 2);
        assert_eq!(b.points(9.0), 0);
        assert_eq!(b.points(14.0), 0);
        assert_eq!(b.points(15.0), 1);
        assert_eq!(b.points(1000.0), 1);
    }

    #[test]
    fn bands_are_validated() {
        assert!(Bands::new(2, vec![(9.0, 0), (9.0, 1)]).is_err());
        assert!(Bands::new(2, vec![(9.0, 0), (8.0, 1)]).is_err());
        assert!(Bands::new(4, vec![]).is_err());
        assert!(Bands::new(0, vec![(f64::NAN, 1)]).is_err());
        let d = MewsBands::default();
        for b in [&d.sbp, &d.heart_rate, &d.resp_rate, &d.temperature] {
            assert_eq!(Bands::new(b.below, b.steps.clone()).as_ref(), Ok(b));
        }
    }
}
