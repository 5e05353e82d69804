//! The run-in report: the alert burden a configuration produced on a hospital's own
//! patients, read from what the service published (its alert topic) and what it was fed
//! (its observations topic), as `vigil tail alerts|observations --json` writes them; and,
//! once outcome labels are added, how those alerts performed.
//!
//! A run-in runs the configuration with `[alerts] mode = "silent"`: every decision is
//! published, marked silent, and nobody is paged. This report says what going live would
//! have meant:
//!
//! - **patients and patient-days** per ward: each patient from their first to their last
//!   observation (whole hours, as `vigil evaluate` counts a stay), in the ward of the last
//!   location the feed or an alert gave (the part before the first `/`; `unassigned`
//!   without one);
//! - **pages** per 100 patient-days by ward and level: each decision (`decision_id`)
//!   that raised or escalated an alert not suppressed by the board, at its highest level:
//!   what a pager following REFERENCE.md ("Alert events") would have sent;
//! - **alert episodes** per 100 patient-days: runs of time in which the patient had any
//!   alert active (raised to measured recovery; an alert still active at the end of the
//!   data ends at the patient's last observation), and the **share of time in alert**;
//! - with labels (the `patient_id,sepsis_onset` file of `vigil evaluate`), every figure of
//!   `vigil evaluate`'s policy row (utility, sensitivity, lead time, episodes), on the
//!   alerts the service published: each patient's stay is the hourly grid of
//!   `vigil evaluate --format jsonl`, and an hour is alerted when an alert was active at
//!   its end.
//!
//! Silent and live events count alike (the report is of what was decided); an alert line
//! that cannot be read is counted by reason and left out, never guessed.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use serde::{Deserialize, Serialize};
use vigil_score::{AlertKind, Level, Span, Timestamp};

use crate::metrics::{Cohort, Figures, StaySummary, figures};
use crate::replay::Trace;
use crate::{Counts, Error, truncate};

/// The part of an alert event the report reads.
#[derive(Clone, Debug, Deserialize)]
struct AlertRecord {
    patient_id: String,
    decision_id: String,
    #[serde(default)]
    location: Option<String>,
    rule: String,
    kind: AlertKind,
    level: Level,
    #[serde(deserialize_with = "vigil_board::rfc3339::deserialize")]
    observed_at: Timestamp,
    #[serde(default)]
    suppressed: Option<serde_json::Value>,
    #[serde(default)]
    silent: bool,
}

/// One ward's burden.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Ward {
    /// The ward (`unassigned` when no location was given).
    pub ward: String,
    /// Patients observed.
    pub patients: u64,
    /// Patient-days observed.
    pub patient_days: f64,
    /// Pages (decisions raising or escalating an alert), by level: advisory, urgent,
    /// emergency.
    pub pages: [u64; 3],
    /// Pages per 100 patient-days, by level.
    pub pages_per_100_patient_days: [f64; 3],
    /// Alert episodes (any alert active), and per 100 patient-days.
    pub episodes: u64,
    /// Alert episodes per 100 patient-days.
    pub episodes_per_100_patient_days: f64,
    /// Share of observed time with an alert active.
    pub time_in_alert: f64,
    /// Patients ever alerted.
    pub patients_alerted: u64,
}

/// The report.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// Every ward, in name order, then `all` for the whole hospital.
    pub wards: Vec<Ward>,
    /// Alert events read (silent ones among them), by rule.
    pub events_by_rule: BTreeMap<String, u64>,
    /// Alert events marked silent.
    pub silent_events: u64,
    /// Alert lines left out, by reason.
    pub unreadable: BTreeMap<String, u64>,
    /// Alerted patients with no observation (their time is unknown: not counted in a ward).
    pub patients_without_observations: u64,
    /// With labels: the cohort and the figures of the published alerts.
    pub outcomes: Option<(Cohort, Figures)>,
    /// With labels: what was read (patients left out, and why).
    #[serde(skip)]
    pub counts: Counts,
}

impl Report {
    /// The report as a table a person reads.
    pub fn table(&self) -> String {
        use std::fmt::Write as _;
        let mut t = String::new();
        let _ = writeln!(
            t,
            "{:<16} {:>8} {:>12} {:>28} {:>10} {:>9} {:>9}",
            "ward",
            "patients",
            "patient-days",
            "pages /100 pd (adv/urg/emg)",
            "episodes",
            "/100 pd",
            "in alert"
        );
        for w in &self.wards {
            let p = w.pages_per_100_patient_days;
            let _ = writeln!(
                t,
                "{:<16} {:>8} {:>12.1} {:>28} {:>10} {:>9.1} {:>8.1}%",
                truncate(&w.ward, 16),
                w.patients,
                w.patient_days,
                format!("{:.1} / {:.1} / {:.1}", p[0], p[1], p[2]),
                w.episodes,
                w.episodes_per_100_patient_days,
                100.0 * w.time_in_alert
            );
        }
        let _ = writeln!(
            t,
            "\n{} alert events read ({} silent): {}",
            self.events_by_rule.values().sum::<u64>(),
            self.silent_events,
            self.events_by_rule
                .iter()
                .map(|(r, n)| format!("{r} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        for (reason, n) in &self.unreadable {
            let _ = writeln!(t, "left out, unreadable: {n} ({reason})");
        }
        if self.patients_without_observations > 0 {
            let _ = writeln!(
                t,
                "{} alerted patients have no observation in the export: not counted in a ward",
                self.patients_without_observations
            );
        }
        if let Some((cohort, f)) = &self.outcomes {
            let v = |e: &Option<crate::metrics::Estimate>, scale: f64| {
                e.as_ref().map_or_else(
                    || "-".to_owned(),
                    |e| match (e.low, e.high) {
                        (Some(l), Some(h)) => {
                            format!("{:.3} ({:.3}-{:.3})", e.value * scale, l * scale, h * scale)
                        }
                        _ => format!("{:.3}", e.value * scale),
                    },
                )
            };
            let _ = writeln!(
                t,
                "\nOn {} labelled patients ({} septic, {:.1} patient-days):",
                cohort.stays, cohort.septic, cohort.patient_days
            );
            let _ = writeln!(t, "  normalised utility      {}", v(&f.utility, 1.0));
            let _ = writeln!(t, "  sensitivity %           {}", v(&f.sensitivity, 100.0));
            let _ = writeln!(
                t,
                "  non-septic alerted %    {}",
                v(&f.non_septic_alerted, 100.0)
            );
            let _ = writeln!(
                t,
                "  episodes / 100 pd       {}",
                v(&f.episodes_per_100_patient_days, 1.0)
            );
            let _ = writeln!(t, "  episode PPV %           {}", v(&f.episode_ppv, 100.0));
            let _ = writeln!(
                t,
                "  lead time h, median     {}",
                v(&f.lead_time_median, 1.0)
            );
            for (name, reason) in &self.counts.rejected_stays {
                let _ = writeln!(t, "  left out: {name} {reason}");
            }
        }
        t
    }
}

/// Where each patient was watched: first and last observation, last location.
#[derive(Clone, Debug)]
struct Watched {
    first: Timestamp,
    last: Timestamp,
    location: Option<String>,
}

const HOUR: i64 = Span::hours(1).as_millis();

/// Builds the report from an alert export and an observation export (JSONL), with
/// outcome labels if given. `bootstrap` and `seed` are as in `vigil evaluate`.
///
/// # Errors
///
/// [`Error::Io`] when a file cannot be read, [`Error::Input`] when the labels are not in
/// the documented format or no patient was observed.
pub fn report(
    alerts: &Path,
    observations: &Path,
    labels: Option<&Path>,
    bootstrap: usize,
    seed: u64,
) -> Result<Report, Error> {
    let (records, unreadable) = read_alerts(alerts)?;
    let watched = read_watched(observations)?;
    if watched.is_empty() {
        return Err(Error::Input(format!(
            "{}: no observation read; expected Vigil's native observation events, one per line \
             (`vigil tail observations --json`)",
            observations.display()
        )));
    }
    let mut by_patient: HashMap<&str, Vec<&AlertRecord>> = HashMap::new();
    let mut events_by_rule = BTreeMap::new();
    let mut silent_events = 0;
    for r in &records {
        by_patient.entry(&r.patient_id).or_default().push(r);
        *events_by_rule.entry(r.rule.clone()).or_insert(0) += 1;
        silent_events += u64::from(r.silent);
    }
    let patients_without_observations = by_patient
        .keys()
        .filter(|p| !watched.contains_key(**p))
        .count() as u64;
    let mut wards: BTreeMap<String, Ward> = BTreeMap::new();
    let mut all = Ward {
        ward: "all".into(),
        ..Ward::default()
    };
    let mut intervals_of: HashMap<&str, Vec<(Timestamp, Timestamp)>> = HashMap::new();
    for (patient, w) in &watched {
        let events = by_patient.get(patient.as_str()).map_or(&[][..], |v| &v[..]);
        let location = events
            .iter()
            .rev()
            .find_map(|e| e.location.clone())
            .or_else(|| w.location.clone());
        let ward_name = vigil_board::ward_of(location.as_deref()).to_owned();
        let hours = ((w.last.as_millis() - w.first.as_millis()).div_euclid(HOUR) + 1) as f64;
        let intervals = active_intervals(events, w.last);
        let in_alert: i64 = intervals
            .iter()
            .map(|(a, b)| (b.as_millis() - a.as_millis()).max(0))
            .sum();
        let pages = pages(events);
        for ward in [
            wards.entry(ward_name.clone()).or_insert_with(|| Ward {
                ward: ward_name.clone(),
                ..Ward::default()
            }),
            &mut all,
        ] {
            ward.patients += 1;
            ward.patient_days += hours / 24.0;
            for (k, n) in pages.iter().enumerate() {
                ward.pages[k] += n;
            }
            ward.episodes += intervals.len() as u64;
            ward.patients_alerted += u64::from(!intervals.is_empty());
            // Summed in hours here; made a share below.
            ward.time_in_alert += in_alert as f64 / HOUR as f64;
        }
        intervals_of.insert(patient.as_str(), intervals);
    }
    let mut out: Vec<Ward> = wards.into_values().collect();
    out.push(all);
    for w in &mut out {
        let per = |n: u64| 100.0 * n as f64 / w.patient_days.max(f64::MIN_POSITIVE);
        w.pages_per_100_patient_days = w.pages.map(per);
        w.episodes_per_100_patient_days = per(w.episodes);
        w.time_in_alert /= (24.0 * w.patient_days).max(f64::MIN_POSITIVE);
    }
    let mut counts = Counts::default();
    let outcomes = match labels {
        None => None,
        Some(labels) => {
            let stays = crate::jsonl::read(observations, labels, &mut counts)?;
            let summaries: Vec<StaySummary> = stays
                .iter()
                .map(|stay| {
                    let intervals = intervals_of
                        .get(stay.name.as_str())
                        .map_or(&[][..], |v| &v[..]);
                    let n = stay.labels.len();
                    let trace = Trace {
                        hours: n,
                        level: (0..n)
                            .map(|h| {
                                let end = stay.hour_end(h);
                                u8::from(intervals.iter().any(|(a, b)| *a <= end && end < *b))
                            })
                            .collect(),
                        rules: std::array::from_fn(|_| vec![false; n]),
                        scores: std::array::from_fn(|_| vec![0; n]),
                        current: Vec::new(),
                    };
                    StaySummary::of(&stay.labels, &trace)
                })
                .collect();
            counts.stays = stays.len() as u64;
            let (cohort, mut figures) = figures(&summaries, bootstrap, seed);
            Some((cohort, figures.swap_remove(crate::metrics::POLICY)))
        }
    };
    Ok(Report {
        wards: out,
        events_by_rule,
        silent_events,
        unreadable,
        patients_without_observations,
        outcomes,
        counts,
    })
}

/// A patient's pages by level: one per decision raising or escalating an alert the board
/// did not suppress, at the decision's highest such level.
fn pages(events: &[&AlertRecord]) -> [u64; 3] {
    let mut decisions: BTreeMap<&str, Level> = BTreeMap::new();
    for e in events {
        if matches!(e.kind, AlertKind::Raised | AlertKind::Escalated) && e.suppressed.is_none() {
            let level = decisions.entry(&e.decision_id).or_insert(e.level);
            *level = (*level).max(e.level);
        }
    }
    let mut out = [0; 3];
    for level in decisions.values() {
        out[*level as usize] += 1;
    }
    out
}

/// The runs of time with any alert active: each rule's alert from its raise to its
/// resolution (or to `end`, the patient's last observation, if still active), merged.
fn active_intervals(events: &[&AlertRecord], end: Timestamp) -> Vec<(Timestamp, Timestamp)> {
    let mut sorted: Vec<&&AlertRecord> = events.iter().collect();
    sorted.sort_by_key(|e| e.observed_at);
    let mut open: BTreeMap<&str, Timestamp> = BTreeMap::new();
    let mut spans = Vec::new();
    for e in sorted {
        match e.kind {
            AlertKind::Raised => {
                open.entry(&e.rule).or_insert(e.observed_at);
            }
            AlertKind::Resolved => {
                if let Some(from) = open.remove(e.rule.as_str()) {
                    spans.push((from, e.observed_at));
                }
            }
            // Escalated and overdue keep an alert active; one seen without its raise (an
            // export that starts mid-episode) opens it there.
            _ => {
                open.entry(&e.rule).or_insert(e.observed_at);
            }
        }
    }
    spans.extend(open.into_values().map(|from| (from, end.max(from))));
    spans.sort();
    let mut merged: Vec<(Timestamp, Timestamp)> = Vec::new();
    for (a, b) in spans {
        match merged.last_mut() {
            Some(last) if a <= last.1 => last.1 = last.1.max(b),
            _ => merged.push((a, b)),
        }
    }
    merged
}

/// Reads alert events, one JSON object per line; lines that cannot be read are counted by
/// reason.
fn read_alerts(path: &Path) -> Result<(Vec<AlertRecord>, BTreeMap<String, u64>), Error> {
    let file = File::open(path).map_err(|e| Error::Io(path.to_path_buf(), e))?;
    let mut records = Vec::new();
    let mut unreadable = BTreeMap::new();
    for line in BufReader::new(file).lines() {
        let line = line.map_err(|e| Error::Io(path.to_path_buf(), e))?;
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<AlertRecord>(&line) {
            Ok(r) => records.push(r),
            Err(e) => {
                let reason = truncate(&e.to_string(), 120);
                // Cut the position off so that equal reasons count together.
                let reason = reason
                    .split(" at line ")
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                *unreadable.entry(reason).or_insert(0) += 1;
            }
        }
    }
    Ok((records, unreadable))
}

/// Each patient's first and last observation and last location given.
fn read_watched(path: &Path) -> Result<BTreeMap<String, Watched>, Error> {
    let file = File::open(path).map_err(|e| Error::Io(path.to_path_buf(), e))?;
    let mut watched: BTreeMap<String, Watched> = BTreeMap::new();
    for line in BufReader::new(file).lines() {
        let line = line.map_err(|e| Error::Io(path.to_path_buf(), e))?;
        if line.trim().is_empty() {
            continue;
        }
        for d in vigil_wire::decode_json_message(line.as_bytes())
            .into_iter()
            .flatten()
        {
            let t = d.observation.effective();
            let w = watched
                .entry(String::from(d.patient_id))
                .or_insert(Watched {
                    first: t,
                    last: t,
                    location: None,
                });
            w.first = w.first.min(t);
            if t >= w.last {
                w.last = t;
                if d.location.is_some() {
                    w.location = d.location;
                }
            }
        }
    }
    Ok(watched)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(rule: &str, kind: AlertKind, level: Level, hour: i64, decision: &str) -> AlertRecord {
        AlertRecord {
            patient_id: "P1".into(),
            decision_id: decision.into(),
            location: Some("ward-7/bed-1".into()),
            rule: rule.into(),
            kind,
            level,
            observed_at: Timestamp::from_millis(hour * HOUR),
            suppressed: None,
            silent: true,
        }
    }

    #[test]
    fn an_alert_is_active_from_raise_to_measured_recovery_and_overlaps_merge() {
        let a = record("risk", AlertKind::Raised, Level::Advisory, 1, "d1");
        let b = record("septic_shock", AlertKind::Raised, Level::Emergency, 2, "d2");
        let c = record("risk", AlertKind::Resolved, Level::Advisory, 3, "d3");
        let d = record(
            "septic_shock",
            AlertKind::Resolved,
            Level::Emergency,
            5,
            "d4",
        );
        let e = record("risk", AlertKind::Raised, Level::Advisory, 8, "d5");
        let at = |h: i64| Timestamp::from_millis(h * HOUR);
        let spans = active_intervals(&[&a, &b, &c, &d, &e], at(10));
        // Two runs: 1-5 (two rules overlapping), and 8 to the last observation.
        assert_eq!(spans, vec![(at(1), at(5)), (at(8), at(10))]);
    }

    #[test]
    fn a_page_is_one_per_decision_at_its_highest_level_and_never_a_suppressed_one() {
        let a = record("risk", AlertKind::Raised, Level::Advisory, 1, "d1");
        let b = record("septic_shock", AlertKind::Raised, Level::Emergency, 1, "d1");
        let c = record("risk", AlertKind::Escalated, Level::Urgent, 2, "d2");
        let d = record("risk", AlertKind::Overdue, Level::Urgent, 3, "d3");
        let e = record("risk", AlertKind::Resolved, Level::Urgent, 4, "d4");
        let mut f = record("risk", AlertKind::Raised, Level::Advisory, 5, "d5");
        f.suppressed = Some(serde_json::json!({"by": "watch"}));
        assert_eq!(pages(&[&a, &b, &c, &d, &e, &f]), [0, 1, 1]);
    }
}
