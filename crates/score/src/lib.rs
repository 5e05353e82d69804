//! `vigil-score`: the pure scoring engine of Vigil, a sepsis early-warning system.
//!
//! Decision support only; not a medical device and not a diagnosis.
//!
//! The crate performs no I/O, reads no clock and spawns nothing: time always comes in,
//! either as an observation's `effective` instant or as the evaluation instant passed to
//! [`assess`]. It owns
//!
//! - the canonical parameters, their units, LOINC codes and conversions ([`param`]);
//! - validated observations that cannot hold an impossible value ([`observation`]);
//! - the per-patient window on event time, with a fixed memory bound ([`window`]), and
//!   [`Patient`], which keeps a window's assessment current, re-scoring only what a new
//!   observation or the passage of time can change;
//! - the alert policy ([`alert`]): when an alert is raised, escalated, reported overdue
//!   or resolved, and [`Tracker`], which decides once per vital-sign set;
//! - [`state`]: a patient's window and alert state as versioned bytes, for changelogs;
//! - the rules, one module each, citing their sources ([`rules`]): qSOFA, SIRS, NEWS2,
//!   SOFA, Sepsis-3 septic shock and MEWS.
//!
//! Thresholds and conventions cite their published sources in each rule module; `DESIGN.md` says why.
//!
//! # Example
//!
//! ```
//! use vigil_score::{Config, Observation, RawValue, Status, Timestamp, Window, assess};
//!
//! let config = Config::default();
//! let t = Timestamp::parse_rfc3339("2026-11-23T10:00:00Z")?;
//! let mut window = Window::new();
//! for (code, value, unit) in [
//!     ("9279-1", 24.0, "/min"),  // respiratory rate, by LOINC code
//!     ("sbp", 95.0, "mm[Hg]"),
//!     ("temperature", 101.3, "[degF]"),
//! ] {
//!     let obs = Observation::new(code, RawValue::Number(value), Some(unit), t, None, Status::Final)?;
//!     window.ingest(&obs, &config.staleness);
//! }
//! let result = assess(&window, t, &config);
//! assert_eq!(result.qsofa.score, 2);
//! assert!(result.qsofa.positive);
//! assert_eq!(result.news2.components.resp_rate, 2);
//! assert!(result.news2.missing.contains(vigil_score::Param::HeartRate));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod alert;
pub mod config;
pub mod observation;
pub mod param;
pub mod patient;
pub mod risk;
pub mod rules;
pub mod state;
pub mod time;
pub mod tracker;
pub mod window;

pub use alert::{AlertId, AlertKind, AlertState, Decision, Level, PolicyConfig};
pub use config::{Bands, Config, ConfigError, MewsBands, Staleness};
pub use observation::{Acvpu, ObsId, Observation, ObservationError, RawValue, Status, Value};
pub use param::{Kind, Param, ParamSet, UnitError};
pub use patient::Patient;
pub use rules::{Coverage, Criteria, Evidence, Inputs, RuleId};
pub use time::{Span, TimeError, Timestamp};
pub use tracker::{Outcome, Tracker};
pub use window::{Changes, Ingested, Reading, Window};

use rules::{mews, news2, qsofa, risk as risk_rule, septic_shock, sirs, sofa};

/// Every rule's result for one patient at one instant.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Assessment {
    /// The evaluation instant.
    pub at: Timestamp,
    /// qSOFA.
    pub qsofa: qsofa::Qsofa,
    /// SIRS.
    pub sirs: sirs::Sirs,
    /// NEWS2.
    pub news2: news2::News2,
    /// SOFA over the last 24 h.
    pub sofa: sofa::Sofa,
    /// Sepsis-3 septic shock.
    pub septic_shock: septic_shock::SepticShock,
    /// MEWS.
    pub mews: mews::Mews,
    /// Vigil Risk.
    pub risk: risk_rule::Risk,
}

/// Scores every rule for `window` at the instant `at`. Readings after `at` are ignored, so
/// an assessment can be replayed at any past instant.
pub fn assess(window: &Window, at: Timestamp, config: &Config) -> Assessment {
    let mut a = Assessment::default();
    a.update(window, at, config);
    a
}

impl Assessment {
    /// The criteria `rule` met, with the readings that met them.
    pub fn criteria(&self, rule: RuleId) -> &[Evidence] {
        match rule {
            RuleId::Qsofa => self.qsofa.criteria.as_slice(),
            RuleId::Sirs => self.sirs.criteria.as_slice(),
            RuleId::News2 => self.news2.criteria.as_slice(),
            RuleId::Sofa => self.sofa.criteria.as_slice(),
            RuleId::SepticShock => self.septic_shock.criteria.as_slice(),
            RuleId::Mews => self.mews.criteria.as_slice(),
            RuleId::Risk => self.risk.criteria.as_slice(),
        }
    }

    /// The inputs of `rule` that were missing or stale.
    pub fn missing(&self, rule: RuleId) -> ParamSet {
        match rule {
            RuleId::Qsofa => self.qsofa.missing,
            RuleId::Sirs => self.sirs.missing,
            RuleId::News2 => self.news2.missing,
            RuleId::Sofa => self.sofa.missing,
            RuleId::SepticShock => self.septic_shock.missing,
            RuleId::Mews => self.mews.missing,
            RuleId::Risk => self.risk.missing,
        }
    }

    /// The score of `rule` (septic shock: 1 when present).
    pub fn score(&self, rule: RuleId) -> u8 {
        match rule {
            RuleId::Qsofa => self.qsofa.score,
            RuleId::Sirs => self.sirs.score,
            RuleId::News2 => self.news2.score,
            RuleId::Sofa => self.sofa.score,
            RuleId::SepticShock => u8::from(self.septic_shock.present),
            RuleId::Mews => self.mews.score,
            RuleId::Risk => self.risk.score,
        }
    }

    /// How much of what `rule` measures was current.
    pub fn coverage(&self, rule: RuleId) -> Coverage {
        rule.coverage(self.missing(rule))
    }

    /// Re-scores every rule into this assessment, as [`assess`] does, without moving a
    /// whole new result: the form for a hot loop that keeps one assessment per patient.
    pub fn update(&mut self, window: &Window, at: Timestamp, config: &Config) {
        let inputs = Inputs::new(window, at, config);
        self.update_published(&inputs);
        risk_rule::score_into(&inputs, &mut self.risk);
    }

    /// Re-scores one published rule from `inputs` (Vigil Risk is scored apart).
    pub(crate) fn update_rule(&mut self, rule: RuleId, inputs: &Inputs<'_>) {
        match rule {
            RuleId::Qsofa => qsofa::score_into(inputs, &mut self.qsofa),
            RuleId::Sirs => sirs::score_into(inputs, &mut self.sirs),
            RuleId::News2 => news2::score_into(inputs, &mut self.news2),
            RuleId::Sofa => sofa::score_into(inputs, &mut self.sofa),
            RuleId::SepticShock => septic_shock::score_into(inputs, &mut self.septic_shock),
            RuleId::Mews => mews::score_into(inputs, &mut self.mews),
            RuleId::Risk => {}
        }
    }

    /// Re-scores the six published rules (not Vigil Risk) from `inputs`.
    pub(crate) fn update_published(&mut self, inputs: &Inputs<'_>) {
        self.at = inputs.at();
        qsofa::score_into(inputs, &mut self.qsofa);
        sirs::score_into(inputs, &mut self.sirs);
        news2::score_into(inputs, &mut self.news2);
        sofa::score_into(inputs, &mut self.sofa);
        septic_shock::score_into(inputs, &mut self.septic_shock);
        mews::score_into(inputs, &mut self.mews);
    }
}

/// Writes a number as JSON the way a person wrote it: whole numbers without a fraction,
/// and conversion noise beyond six decimals removed (101.3 F is 38.5 C, not
/// 38.50000000000001).
pub(crate) fn serialize_number<S: serde::Serializer>(n: f64, s: S) -> Result<S::Ok, S::Error> {
    let r = (n * 1e6).round() / 1e6;
    if r.fract() == 0.0 && r.abs() < 9.0e15 {
        s.serialize_i64(r as i64)
    } else {
        s.serialize_f64(r)
    }
}
