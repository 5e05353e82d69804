//! Replays one stay hour by hour through the service's own code path: a
//! [`vigil_score::Tracker`] per policy, fed every reading in time order, deciding once per
//! vital-sign set, and between readings checked for overdue alerts as the service's
//! periodic sweep does ([`Tracker::remind`], with each reading received when it was
//! measured, as on a live feed).
//!
//! Two trackers run side by side on the same readings: one with the configured alert
//! policy (the figures the nurses would get) and one with every rule alone at its
//! published threshold ([`reference_policy`]), for the per-rule figures. At the end of
//! every hour the trace records whether an alert is active, each rule's score and which
//! mapped parameters were current.

use vigil_score::alert::{PolicyConfig, RULES};
use vigil_score::{Assessment, Config, Param, RuleId, Tracker, assess};

use crate::Stay;

/// The policy for the per-rule figures: [`PolicyConfig::every_rule`] (every rule alerting
/// at its published threshold, at once, with Vigil's alert semantics) with MEWS added at
/// 5 or more (Subbe et al., QJM 2001;94:521: a score of 5 or more was associated with
/// death and ICU admission), Vigil Risk at its model's cross-validated threshold, and the
/// configured overdue reminder.
pub fn reference_policy(base: &PolicyConfig, config: &Config) -> PolicyConfig {
    let mut reference = PolicyConfig::every_rule();
    reference.thresholds.mews = [Some(5), None, None];
    reference.thresholds.risk = [Some(config.risk.threshold_percent), None, None];
    reference.reminder = base.reminder;
    reference
}

/// One stay's hourly record.
#[derive(Clone, Debug, Default)]
pub struct Trace {
    /// Hours (rows) of the stay.
    pub hours: usize,
    /// The highest active level of the configured policy at the end of each hour (0 none,
    /// 1 advisory, 2 urgent, 3 emergency).
    pub level: Vec<u8>,
    /// Per rule (in [`RuleId::ALL`] order): whether the rule alone has an active alert.
    pub rules: [Vec<bool>; RULES],
    /// Per rule: its score at the end of each hour.
    pub scores: [Vec<u8>; RULES],
    /// Per parameter ([`Param::index`]): hours in which it had a current reading.
    pub current: Vec<u32>,
}

impl Trace {
    /// Whether the configured policy had an alert active at each hour.
    pub fn policy(&self) -> Vec<bool> {
        self.level.iter().map(|&l| l > 0).collect()
    }
}

/// Replays `stay` under `policy` (and the reference policy) and records its trace.
pub fn replay(
    stay: &Stay,
    config: &Config,
    policy: &PolicyConfig,
    reference: &PolicyConfig,
) -> Trace {
    let n = stay.hours.len();
    let mut trace = Trace {
        hours: n,
        level: Vec::with_capacity(n),
        rules: Default::default(),
        scores: Default::default(),
        current: vec![0; Param::ALL.len()],
    };
    for r in &mut trace.rules {
        r.reserve(n);
    }
    for s in &mut trace.scores {
        s.reserve(n);
    }
    let mut configured = Tracker::new();
    let mut alone = Tracker::new();
    for (h, readings) in stay.hours.iter().enumerate() {
        let end = stay.hour_end(h);
        for obs in readings {
            for (tracker, p) in [(&mut configured, policy), (&mut alone, reference)] {
                tracker.note_received(obs.effective());
                let _ = tracker.ingest(obs, None, config, p);
            }
        }
        let mut assessment: Option<Assessment> = None;
        for (tracker, p) in [(&mut configured, policy), (&mut alone, reference)] {
            let flushed = tracker.flush(config, p);
            // Between readings the service's sweep reports overdue alerts; with no time
            // elapsed since the last reading this does nothing.
            let reminded = tracker.remind(end, config, p);
            if let Some(o) = reminded.or(flushed).filter(|o| o.assessment.at == end) {
                assessment.get_or_insert(o.assessment);
            }
        }
        let a = assessment.unwrap_or_else(|| assess(configured.window(), end, config));
        let level = RuleId::ALL
            .iter()
            .filter_map(|&r| configured.alerts().active(r))
            .max()
            .map_or(0, |l| l as u8 + 1);
        trace.level.push(level);
        for (i, &rule) in RuleId::ALL.iter().enumerate() {
            trace.rules[i].push(alone.alerts().active(rule).is_some());
            trace.scores[i].push(a.score(rule));
        }
        for &p in Param::ALL {
            if configured
                .window()
                .latest(p, end, &config.staleness)
                .is_some()
            {
                trace.current[p.index()] += 1;
            }
        }
    }
    trace
}
