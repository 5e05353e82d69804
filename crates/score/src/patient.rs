//! One patient: the window and a current assessment kept up to date incrementally.
//!
//! Re-scoring after every observation is the engine's hot path. A new reading can only
//! change the rules that read its parameter ([`crate::rules::qsofa::INPUTS`] and its siblings),
//! and the passage of time can only change a rule when one of its current readings turns
//! stale, a worst-of-24 h reading leaves the span, or a reading measured later than the
//! last evaluation comes into view. [`Patient`] records, per rule, the instant from which
//! its result may differ, and re-scores only the rules that a change or that instant
//! touches; evaluating at an earlier instant than before re-scores everything. A property
//! test checks that the result always equals a full [`assess`](crate::assess).

use crate::Assessment;
use crate::config::Config;
use crate::observation::Observation;
use crate::rules::{Inputs, RuleId, mews, news2, qsofa, risk, septic_shock, sirs, sofa};
use crate::time::Timestamp;
use crate::window::{Ingested, Window};

/// A patient's window with its current assessment.
#[derive(Clone, Debug, Default)]
pub struct Patient {
    window: Window,
    current: Assessment,
    /// Per rule (in [`RuleId::ALL`] order), the first instant its result may change without a
    /// new reading; `None` before the first assessment.
    valid_until: Option<[Timestamp; 7]>,
    /// What Vigil Risk remembers between two scorings (only while it is scored), so that
    /// a reading re-scores only its own parameter's features.
    risk: Option<Box<risk::Memo>>,
}

impl Patient {
    /// A patient with an empty window.
    pub fn new() -> Patient {
        Patient::default()
    }

    /// Applies one observation to the window.
    pub fn ingest(&mut self, obs: &Observation, config: &Config) -> Ingested {
        match &mut self.risk {
            // Vigil Risk updates a parameter's extremes from what the window dropped.
            Some(memo) => self
                .window
                .ingest_noting(obs, &config.staleness, memo.dropped()),
            None => self.window.ingest(obs, &config.staleness),
        }
    }

    /// The window.
    pub fn window(&self) -> &Window {
        &self.window
    }

    /// The window, for changes made directly (they are tracked like ingested ones).
    pub fn window_mut(&mut self) -> &mut Window {
        &mut self.window
    }

    /// The assessment at `at`, re-scoring only the rules that changed readings or the
    /// passage of time since the previous assessment can have changed. `config` must be
    /// the same on every call.
    pub fn assess(&mut self, at: Timestamp, config: &Config) -> &Assessment {
        let changes = self.window.take_changes();
        let changed = changes.params;
        let inputs = Inputs::new(&self.window, at, config);
        let previous = self.valid_until.filter(|_| at >= self.current.at);
        let mut valid_until = previous.unwrap_or([Timestamp::from_millis(i64::MIN); 7]);
        let baseline_moved = self.current.sofa.baseline != self.window.sofa_baseline();
        // Vigil Risk reads the hours since the first reading, which a reading of any
        // parameter can move back.
        let first_moved =
            config.score_risk && self.risk.as_ref().map(|m| m.first()) != Some(self.window.first());
        for (rule, until) in RuleId::ALL.iter().zip(valid_until.iter_mut()) {
            let stale = at >= *until
                || changed.intersects(rule_inputs(*rule, config))
                || (*rule == RuleId::Sofa && baseline_moved)
                || (*rule == RuleId::Risk && first_moved);
            if !stale {
                continue;
            }
            let c = &mut self.current;
            inputs.take_horizon();
            match rule {
                RuleId::Risk => {
                    risk::score_incremental(&inputs, changes, &mut self.risk, &mut c.risk)
                }
                published => c.update_rule(*published, &inputs),
            }
            *until = inputs.take_horizon();
        }
        self.current.at = at;
        self.valid_until = Some(valid_until);
        &self.current
    }
}

pub(crate) fn rule_inputs(rule: RuleId, config: &Config) -> crate::ParamSet {
    match rule {
        RuleId::Qsofa => qsofa::INPUTS,
        RuleId::Sirs => sirs::INPUTS,
        RuleId::News2 => news2::INPUTS,
        RuleId::Sofa => sofa::INPUTS,
        RuleId::SepticShock => septic_shock::INPUTS,
        RuleId::Mews => mews::INPUTS,
        RuleId::Risk => config.risk.params(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assess;
    use crate::observation::{RawValue, Status};
    use crate::param::Param;
    use proptest::prelude::*;

    const T0: i64 = 1_795_428_000_000;
    const MIN: i64 = 60_000;

    const CODES: [(&str, f64, f64); 16] = [
        ("heart_rate", 30.0, 180.0),
        ("resp_rate", 5.0, 40.0),
        ("sbp", 60.0, 230.0),
        ("temperature", 33.0, 41.0),
        ("spo2", 70.0, 100.0),
        ("gcs", 3.0, 15.0),
        ("lactate", 0.5, 10.0),
        ("norepinephrine", 0.0, 0.5),
        ("platelets", 5.0, 400.0),
        ("map", 40.0, 110.0),
        ("pao2", 40.0, 300.0),
        ("fio2", 0.21, 1.0),
        ("creatinine", 0.5, 6.0),
        ("wbc", 1.0, 30.0),
        ("on_oxygen", 0.0, 1.0),
        ("ventilation", 0.0, 1.0),
    ];

    fn observation(code: usize, f: f64, t: i64, id: u8, status: u8) -> Observation {
        let (name, lo, hi) = CODES[code];
        let value = match name {
            "on_oxygen" | "ventilation" => RawValue::Bool(f > 0.5),
            "gcs" => RawValue::Number((lo + (hi - lo) * f).round()),
            _ => RawValue::Number(lo + (hi - lo) * f),
        };
        let status = [Status::Final, Status::Amended, Status::EnteredInError][usize::from(status)];
        let id = format!("id-{id}");
        Observation::new(
            name,
            value,
            None,
            Timestamp::from_millis(t),
            Some(&id),
            status,
        )
        .expect("generated observations are valid")
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        /// Incremental re-scoring always equals a full assessment, whatever the order of
        /// readings, evaluation instants (forward, backward, far ahead) and corrections.
        #[test]
        fn incremental_equals_full(
            steps in prop::collection::vec(
                (0..CODES.len(), 0.0..1.0f64, -120i64..600, 0..12u8, 0..3u8, 0..4u8, -60i64..3000),
                1..60),
        ) {
            let config = Config::default();
            let mut p = Patient::new();
            let mut clock = T0;
            for (code, f, dt, id, status, op, advance) in steps {
                clock += advance * MIN / 10;
                if op > 0 {
                    let _ = p.ingest(&observation(code, f, clock + dt * MIN, id, status), &config);
                }
                if op == 3 {
                    p.window_mut().set_sofa_baseline(id % 5);
                }
                let at = Timestamp::from_millis(clock);
                let full = assess(p.window(), at, &config);
                prop_assert_eq!(p.assess(at, &config), &full);
            }
        }
    }

    #[test]
    fn staleness_alone_updates_a_rule() {
        let config = Config::default();
        let mut p = Patient::new();
        let t = Timestamp::from_millis(T0);
        let rr = Observation::new(
            "resp_rate",
            RawValue::Number(30.0),
            None,
            t,
            None,
            Status::Final,
        )
        .expect("valid");
        p.ingest(&rr, &config);
        assert_eq!(p.assess(t, &config).qsofa.score, 1);
        let later = t.plus(crate::time::Span::hours(6));
        assert_eq!(
            p.assess(later, &config).qsofa.score,
            1,
            "6 h old is still current"
        );
        let stale = later.plus(crate::time::Span::millis(1));
        let a = p.assess(stale, &config);
        assert_eq!(a.qsofa.score, 0);
        assert!(a.qsofa.missing.contains(Param::RespRate));
    }
}
