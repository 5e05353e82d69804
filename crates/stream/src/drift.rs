//! Drift: what quality staff watch to see a feed change move the model's inputs. Per ward,
//! recounted over every patient held at every tenth periodic sweep (every 5 minutes by
//! default) and when partitions move:
//!
//! - `vigil_ward_patients{ward}`: patients held;
//! - `vigil_input_coverage_ratio{ward,parameter}`: the share of them with a current
//!   reading of the parameter at their latest reading (the staleness limits of
//!   `[engine]`), for every parameter Vigil Risk or NEWS2 reads. A feed that stops sending
//!   lactate, or a ward that charts FiO2 less often, shows as a drop here;
//! - `vigil_risk_patients{ward,band}`: how many of them have a latest Vigil Risk estimate
//!   in each band of percent (`0-1` ... `20-100`), when Vigil Risk is computed: the score
//!   distribution, which shifts when the inputs do.
//!
//! A ward is the part of the location before the first `/` (`unassigned` without one),
//! as the board groups cards. Locations come from foreign messages, so the label is
//! bounded: at most [`MAX_WARDS`] wards (those with the most patients; the rest count
//! as `other`), each name at most [`MAX_WARD_CHARS`] characters. No label carries a
//! patient identifier.

use std::collections::HashMap;

use prometheus::{IntGaugeVec, Opts, Registry};
use vigil_score::{ParamSet, RuleId, Staleness};

use crate::processing::PatientState;

/// Most wards given their own label; the others are counted as `other`.
pub const MAX_WARDS: usize = 64;

/// Longest ward name kept in a label (longer ones are cut).
pub const MAX_WARD_CHARS: usize = 64;

/// The bands of `vigil_risk_patients`, in percent: `[from, to)`, the last closed.
pub const RISK_BANDS: [(u8, u8, &str); 7] = [
    (0, 1, "0-1"),
    (1, 2, "1-2"),
    (2, 3, "2-3"),
    (3, 5, "3-5"),
    (5, 10, "5-10"),
    (10, 20, "10-20"),
    (20, 101, "20-100"),
];

/// The drift gauges.
#[derive(Clone)]
pub struct DriftMetrics {
    patients: IntGaugeVec,
    coverage: prometheus::GaugeVec,
    risk: IntGaugeVec,
}

/// One ward's counts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WardCount {
    /// Patients held.
    pub patients: i64,
    /// Patients with a current reading, by parameter index.
    pub current: [i64; vigil_score::param::PARAM_COUNT],
    /// Patients by Vigil Risk band (of [`RISK_BANDS`]).
    pub risk: [i64; RISK_BANDS.len()],
}

/// Every ward's counts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Drift {
    /// By ward name (bounded when set on the gauges).
    pub wards: HashMap<String, WardCount>,
}

/// The parameters whose coverage is shown: those Vigil Risk's model and NEWS2 read.
pub fn watched(model: &vigil_score::risk::RiskModel) -> ParamSet {
    let mut set = model.params();
    for (params, _) in RuleId::News2.measures() {
        for p in params.iter() {
            set.insert(p);
        }
    }
    set
}

impl Drift {
    /// Adds one patient: its ward, what was current at its latest reading, and its latest
    /// Vigil Risk estimate (when `risk` is computed).
    pub fn add(
        &mut self,
        state: &PatientState,
        params: ParamSet,
        staleness: &Staleness,
        risk: bool,
    ) {
        let ward = ward_of(state.location.as_deref());
        let count = self.wards.entry(ward).or_default();
        count.patients += 1;
        let window = state.tracker.window();
        if let Some(at) = window.newest() {
            for p in params.iter() {
                if window.latest(p, at, staleness).is_some() {
                    count.current[p.index()] += 1;
                }
            }
        }
        if risk
            && let Some(score) = state.tracker.alerts().last_score(RuleId::Risk)
            && let Some(b) = RISK_BANDS
                .iter()
                .position(|(from, to, _)| (*from..*to).contains(&score))
        {
            count.risk[b] += 1;
        }
    }
}

/// The ward of a location ([`vigil_board::ward_of`]), cut to [`MAX_WARD_CHARS`].
pub fn ward_of(location: Option<&str>) -> String {
    vigil_board::ward_of(location)
        .chars()
        .take(MAX_WARD_CHARS)
        .collect()
}

impl DriftMetrics {
    /// Registers the gauges in `registry`.
    ///
    /// # Panics
    ///
    /// Never in practice: the names are fixed here and unique (the metrics tests register
    /// them).
    pub fn register(registry: &Registry) -> DriftMetrics {
        let patients = IntGaugeVec::new(
            Opts::new("vigil_ward_patients", "Patients held, by ward."),
            &["ward"],
        )
        .expect("valid metric");
        let coverage = prometheus::GaugeVec::new(
            Opts::new(
                "vigil_input_coverage_ratio",
                "Share of a ward's patients with a current reading of the parameter at their latest reading.",
            ),
            &["ward", "parameter"],
        )
        .expect("valid metric");
        let risk = IntGaugeVec::new(
            Opts::new(
                "vigil_risk_patients",
                "Patients whose latest Vigil Risk estimate is in the band (percent), by ward.",
            ),
            &["ward", "band"],
        )
        .expect("valid metric");
        for c in [
            Box::new(patients.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(coverage.clone()),
            Box::new(risk.clone()),
        ] {
            registry.register(c).expect("unique metric");
        }
        DriftMetrics {
            patients,
            coverage,
            risk,
        }
    }

    /// Sets the gauges to `drift`: the [`MAX_WARDS`] wards with the most patients by name,
    /// the rest summed as `other`. Wards no longer held disappear.
    pub fn set(&self, drift: &Drift, params: ParamSet, risk: bool) {
        let mut wards: Vec<(&String, &WardCount)> = drift.wards.iter().collect();
        wards.sort_by(|a, b| b.1.patients.cmp(&a.1.patients).then(a.0.cmp(b.0)));
        let mut shown: Vec<(String, WardCount)> = Vec::new();
        let mut other = WardCount::default();
        for (i, (name, count)) in wards.into_iter().enumerate() {
            if i < MAX_WARDS {
                shown.push((name.clone(), count.clone()));
            } else {
                other.patients += count.patients;
                for (o, c) in other.current.iter_mut().zip(count.current) {
                    *o += c;
                }
                for (o, c) in other.risk.iter_mut().zip(count.risk) {
                    *o += c;
                }
            }
        }
        if other.patients > 0 {
            shown.push(("other".into(), other));
        }
        self.patients.reset();
        self.coverage.reset();
        self.risk.reset();
        for (ward, count) in &shown {
            self.patients
                .with_label_values(&[ward.as_str()])
                .set(count.patients);
            for p in params.iter() {
                let share = count.current[p.index()] as f64 / count.patients.max(1) as f64;
                self.coverage
                    .with_label_values(&[ward.as_str(), p.code()])
                    .set(share);
            }
            if risk {
                for (b, (_, _, band)) in RISK_BANDS.iter().enumerate() {
                    self.risk
                        .with_label_values(&[ward.as_str(), band])
                        .set(count.risk[b]);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_score::Param;

    #[test]
    fn wards_are_bounded_and_the_rest_counted_as_other() {
        let registry = Registry::new();
        let m = DriftMetrics::register(&registry);
        let mut drift = Drift::default();
        for w in 0..(MAX_WARDS + 10) {
            let count = drift.wards.entry(format!("w{w:03}")).or_default();
            // Ward w has w + 1 patients: the ten smallest become "other".
            count.patients = w as i64 + 1;
            count.current[Param::Lactate.index()] = (w as i64 + 1) / 2;
        }
        let params = ParamSet::of(&[Param::Lactate]);
        m.set(&drift, params, false);
        let families = registry.gather();
        let wards = families
            .iter()
            .find(|f| f.name() == "vigil_ward_patients")
            .expect("patients");
        assert_eq!(wards.get_metric().len(), MAX_WARDS + 1);
        let other = wards
            .get_metric()
            .iter()
            .find(|m| m.get_label()[0].value() == "other")
            .expect("other");
        // Wards 0-9 have 1 + ... + 10 = 55 patients.
        assert_eq!(other.get_gauge().get_value(), 55.0);
        let coverage = families
            .iter()
            .find(|f| f.name() == "vigil_input_coverage_ratio")
            .expect("coverage");
        let w073 = coverage
            .get_metric()
            .iter()
            .find(|m| m.get_label().iter().any(|l| l.value() == "w073"))
            .expect("w073");
        assert_eq!(w073.get_gauge().get_value(), 37.0 / 74.0);
        // A ward that leaves disappears at the next count.
        drift.wards.remove("w073");
        m.set(&drift, params, false);
        let again = registry.gather();
        let coverage = again
            .iter()
            .find(|f| f.name() == "vigil_input_coverage_ratio")
            .expect("coverage");
        assert!(
            coverage
                .get_metric()
                .iter()
                .all(|m| m.get_label().iter().all(|l| l.value() != "w073"))
        );
    }

    #[test]
    fn a_ward_is_the_location_before_its_first_slash_cut_short() {
        assert_eq!(ward_of(Some("ward-7/bed-1")), "ward-7");
        assert_eq!(ward_of(Some(" /bed-1")), "unassigned");
        assert_eq!(ward_of(None), "unassigned");
        let long = "x".repeat(500);
        assert_eq!(ward_of(Some(&long)).len(), MAX_WARD_CHARS);
    }

    #[test]
    fn risk_bands_cover_every_percent_once() {
        for score in 0..=100u8 {
            let n = RISK_BANDS
                .iter()
                .filter(|(from, to, _)| (*from..*to).contains(&score))
                .count();
            assert_eq!(n, 1, "{score}");
        }
    }
}
