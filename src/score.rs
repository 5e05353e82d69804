//! `vigil score [PATH|-] [--at RFC3339]`: observation JSONL in, one assessment per patient
//! out (README, "Run it"; REFERENCE.md, "Observation events" and "Command line").
//!
//! This is the tool an integration team runs on a sample of its feed before go-live, so
//! every line that cannot be accepted is reported as `line N: reason` with the reason
//! naming the field, the value and what was expected, and the other lines still count.
//!
//! Offline scoring reads no clock: a file of past readings scores the same whenever it is
//! run. Given `--now`, the service's clock guard applies as if every line had been
//! received at that instant: a reading dated more than `[input] clock_tolerance_seconds`
//! after it is rejected. With `--config` every `[input]` and `[engine]` setting applies as
//! in `vigil run` ([`crate::decode::Offline`]).

use std::collections::BTreeMap;
use std::io::{self, BufRead, Write};

use serde::Serialize;
use vigil_score::rules::{mews, news2, qsofa, risk, septic_shock, sirs, sofa};
use vigil_score::{Assessment, Config, Ingested, Timestamp, Window, assess};

use crate::decode::Offline;

/// What a run saw, line by line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Non-blank lines read (messages).
    pub lines: usize,
    /// Readings applied to a window (new, amended or withdrawn).
    pub accepted: usize,
    /// Readings whose id was already applied.
    pub duplicate: usize,
    /// Readings too old to affect any score.
    pub stale: usize,
    /// Readings of valid LOINC or MDC codes Vigil does not score (reported on the error
    /// stream, not rejections).
    pub ignored: usize,
    /// Readings sent without a value and with the reason why (FHIR `dataAbsentReason`):
    /// never scored, reported on the error stream, not rejections.
    pub absent: usize,
    /// Readings rejected (reported on the error stream): invalid, conflicting with a
    /// reading held under the same id, or dated after `--now`.
    pub rejected: usize,
}

/// The JSON object written per patient.
#[derive(Serialize)]
struct PatientScores<'a> {
    patient_id: &'a str,
    at: Timestamp,
    qsofa: &'a qsofa::Qsofa,
    sirs: &'a sirs::Sirs,
    news2: &'a news2::News2,
    sofa: &'a sofa::Sofa,
    septic_shock: bool,
    septic_shock_detail: &'a septic_shock::SepticShock,
    mews: &'a mews::Mews,
    risk: &'a risk::Risk,
}

/// Reads observation JSONL from `input`, writes one JSON object per patient (in
/// `patient_id` order) to `out` and a `line N: reason` per rejected line to `errors`.
///
/// Each patient is evaluated at `at`, or by default at the patient's latest `effective`.
/// With `now`, readings dated more than `rules.clock_tolerance` after it are rejected.
///
/// # Errors
///
/// Only I/O errors of the streams; bad lines are reported, counted and skipped.
pub fn run(
    input: impl BufRead,
    at: Option<Timestamp>,
    now: Option<Timestamp>,
    config: &Config,
    rules: &Offline,
    out: &mut impl Write,
    errors: &mut impl Write,
) -> io::Result<Summary> {
    let mut windows: BTreeMap<String, Window> = BTreeMap::new();
    let mut summary = Summary::default();
    let mut all = Vec::new();
    let mut input = input;
    input.read_to_end(&mut all)?;
    let format = &rules.format;
    for (line, message) in format.split(&all) {
        summary.lines += 1;
        for decoded in format.decode(&message) {
            let decoded = match decoded {
                Ok(d) => d,
                Err(e) if e.unscored().is_some() && !rules.reject_unscored => {
                    summary.ignored += 1;
                    writeln!(errors, "line {line}: {e}")?;
                    continue;
                }
                Err(e) if e.absent().is_some() => {
                    summary.absent += 1;
                    writeln!(errors, "line {line}: {e}")?;
                    continue;
                }
                Err(e) => {
                    summary.rejected += 1;
                    writeln!(errors, "line {line}: {e}")?;
                    continue;
                }
            };
            if let Some(now) = now
                && decoded.observation.effective() > now.plus(rules.clock_tolerance)
            {
                summary.rejected += 1;
                let reason = vigil_wire::future_reason(
                    &decoded.observation.reading(),
                    now,
                    rules.clock_tolerance,
                    "--now sets the receive time",
                );
                writeln!(errors, "line {line}: {reason}")?;
                continue;
            }
            let window = windows.entry(String::from(decoded.patient_id)).or_default();
            match window.ingest(&decoded.observation, &config.staleness) {
                Ingested::Accepted | Ingested::Amended | Ingested::Withdrawn => {
                    summary.accepted += 1
                }
                Ingested::Duplicate => summary.duplicate += 1,
                Ingested::Stale => summary.stale += 1,
                Ingested::Conflict { held } => {
                    summary.rejected += 1;
                    let reason = vigil_wire::conflict_reason(
                        decoded.id.as_deref(),
                        &held,
                        &decoded.observation.reading(),
                    );
                    writeln!(errors, "line {line}: {reason}")?;
                }
            }
        }
    }
    for (patient_id, window) in &windows {
        let Some(when) = at.or_else(|| window.newest()) else {
            continue;
        };
        let a: Assessment = assess(window, when, config);
        let row = PatientScores {
            patient_id,
            at: a.at,
            qsofa: &a.qsofa,
            sirs: &a.sirs,
            news2: &a.news2,
            sofa: &a.sofa,
            septic_shock: a.septic_shock.present,
            septic_shock_detail: &a.septic_shock,
            mews: &a.mews,
            risk: &a.risk,
        };
        serde_json::to_writer(&mut *out, &row)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_str(input: &str, at: Option<&str>) -> (Vec<serde_json::Value>, String, Summary) {
        run_now(input, at, None)
    }

    fn run_now(
        input: &str,
        at: Option<&str>,
        now: Option<&str>,
    ) -> (Vec<serde_json::Value>, String, Summary) {
        let at = at.map(|t| Timestamp::parse_rfc3339(t).unwrap());
        let now = now.map(|t| Timestamp::parse_rfc3339(t).unwrap());
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let s = run(
            input.as_bytes(),
            at,
            now,
            &Config::default(),
            &Offline::of(vigil_wire::Format::Json),
            &mut out,
            &mut err,
        )
        .unwrap();
        let rows = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        (rows, String::from_utf8(err).unwrap(), s)
    }

    #[test]
    fn one_object_per_patient_in_id_order_with_line_errors() {
        let input = concat!(
            r#"{"patient_id":"P2","code":"heart_rate","value":120,"effective":"2026-11-23T10:00:00Z"}"#,
            "\n",
            "\n",
            r#"{"patient_id":"P1","code":"resp_rate","value":26,"effective":"2026-11-23T09:00:00Z","id":"a"}"#,
            "\r\n",
            r#"{"patient_id":"P1","code":"heart_rate","value":0,"effective":"2026-11-23T09:00:00Z"}"#,
            "\n",
            r#"{"patient_id":"P1","code":"resp_rate","value":26,"effective":"2026-11-23T09:00:00Z","id":"a"}"#,
            "\n",
        );
        let (rows, err, s) = run_str(input, None);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0]["patient_id"], "P1");
        assert_eq!(rows[0]["at"], "2026-11-23T09:00:00Z");
        assert_eq!(rows[0]["news2"]["components"]["resp_rate"], 3);
        assert_eq!(rows[0]["news2"]["risk"], "low_medium");
        assert_eq!(rows[1]["patient_id"], "P2");
        assert_eq!(rows[1]["sirs"]["criteria"][0]["code"], "heart_rate");
        assert_eq!(rows[1]["sirs"]["criteria"][0]["value"], 120);
        assert_eq!(rows[1]["septic_shock"], false);
        assert_eq!(
            err,
            "line 4: field `value`: heart_rate 0 /min is outside the possible range 1-350 /min\n"
        );
        assert_eq!(
            s,
            Summary {
                lines: 4,
                accepted: 2,
                duplicate: 1,
                stale: 0,
                ignored: 0,
                absent: 0,
                rejected: 1
            }
        );
    }

    #[test]
    fn at_overrides_the_evaluation_instant() {
        let input = r#"{"patient_id":"P1","code":"resp_rate","value":26,"effective":"2026-11-23T09:00:00Z"}"#;
        let (rows, _, _) = run_str(input, Some("2026-11-23T16:00:00Z"));
        assert_eq!(rows[0]["at"], "2026-11-23T16:00:00Z");
        assert_eq!(rows[0]["news2"]["score"], 0, "7 h old: stale");
        assert_eq!(rows[0]["news2"]["missing"][0], "heart_rate");
    }

    #[test]
    fn now_applies_the_clock_guard_and_conflicts_are_rejected() {
        let input = concat!(
            r#"{"patient_id":"P1","code":"heart_rate","value":80,"effective":"2027-11-23T10:00:00Z"}"#,
            "\n",
            r#"{"patient_id":"P1","code":"resp_rate","value":30,"effective":"2026-11-23T10:04:00Z","id":"r1"}"#,
            "\n",
            r#"{"patient_id":"P1","code":"resp_rate","value":12,"effective":"2026-11-23T10:04:00Z","id":"r1"}"#,
            "\n",
        );
        // Without --now, a file scores as it always did: here the year-ahead reading
        // makes the real ones too old to matter.
        let (rows, _, s) = run_str(input, None);
        assert_eq!(rows[0]["at"], "2027-11-23T10:00:00Z");
        assert_eq!((s.stale, s.rejected), (2, 0));
        let (rows, err, s) = run_now(input, None, Some("2026-11-23T10:00:00Z"));
        assert_eq!(rows[0]["at"], "2026-11-23T10:04:00Z");
        assert_eq!(rows[0]["news2"]["components"]["resp_rate"], 3);
        assert_eq!(s.rejected, 2);
        assert_eq!(
            err,
            "line 1: field `effective`: 2027-11-23T10:00:00Z (heart_rate) is 31536000 s after \
             the message was received at 2026-11-23T10:00:00Z; expected at most 300 s after it \
             (the sender's clock may be wrong; --now sets the receive time)\n\
             line 3: field `id`: \"r1\" is already held for this patient as resp_rate 30/min at \
             2026-11-23T10:04:00Z; this message says resp_rate 12/min at 2026-11-23T10:04:00Z \
             with status final; expected the same content for a redelivery, or status amended \
             to replace it\n"
        );
    }
}
