//! A hospital's own retrospective export: Vigil's native observation events (one JSON
//! object, or an array of them, per line: the service's input format) and a labels file.
//!
//! The labels file is CSV with the header `patient_id,sepsis_onset` and one row per
//! patient: the onset as an RFC 3339 instant with an offset, or empty for a patient who
//! did not develop sepsis. Every patient evaluated must have exactly one row; a patient with
//! observations but no row, or a row but no observations, is reported and left out
//! (never guessed to be non-septic).
//!
//! Each patient is one stay. Hour 0 ends at the patient's first observation; hour `h` ends
//! `h` hours later and is decided on every reading measured by then. The stay lasts until
//! the hour of its last observation, or, for a septic patient, at least until 3 hours after
//! onset. The onset hour `t_sepsis` is the first hour ending at or after the onset; hours
//! from `t_sepsis − 6` on are labelled septic, as in the challenge's files (an onset more
//! than 6 hours before the first observation labels the whole stay).

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use vigil_score::{Observation, Span, Timestamp};

use crate::{Counts, Error, Stay, truncate};

/// Reads the observations and labels into stays, in patient-id order.
///
/// # Errors
///
/// [`Error::Io`] when a file cannot be read, [`Error::Input`] when the labels file is not
/// in the documented format (its line is named).
pub fn read(observations: &Path, labels: &Path, counts: &mut Counts) -> Result<Vec<Stay>, Error> {
    let onsets = read_labels(labels)?;
    let file = File::open(observations).map_err(|e| Error::Io(observations.to_path_buf(), e))?;
    let mut by_patient: HashMap<String, Vec<Observation>> = HashMap::new();
    for line in BufReader::new(file).lines() {
        let line = line.map_err(|e| Error::Io(observations.to_path_buf(), e))?;
        if line.trim().is_empty() {
            continue;
        }
        for decoded in vigil_wire::decode_json_message(line.as_bytes()) {
            match decoded {
                Ok(d) => by_patient
                    .entry(String::from(d.patient_id))
                    .or_default()
                    .push(d.observation),
                Err(e) => counts.reject(generalise(&e.to_string())),
            }
        }
    }
    let mut stays = Vec::new();
    let mut patients: Vec<String> = by_patient.keys().cloned().collect();
    patients.sort();
    for id in patients {
        let Some(mut obs) = by_patient.remove(&id) else {
            continue;
        };
        let Some(onset) = onsets.get(&id) else {
            counts
                .rejected_stays
                .push((id, "has observations but no row in the labels file".into()));
            continue;
        };
        obs.sort_by_key(|o| o.effective());
        stays.push(stay(id, &obs, *onset));
    }
    for id in onsets.keys() {
        if !stays.iter().any(|s| &s.name == id) && !counts.rejected_stays.iter().any(|r| &r.0 == id)
        {
            counts.rejected_stays.push((
                id.clone(),
                "is in the labels file but has no observations".into(),
            ));
        }
    }
    Ok(stays)
}

/// One patient's observations (in time order, at least one) as an hourly stay.
fn stay(name: String, obs: &[Observation], onset: Option<Timestamp>) -> Stay {
    let start = obs[0].effective();
    let hour_of = |t: Timestamp| -> i64 {
        // The first hour ending at or after t.
        let ms = t.as_millis() - start.as_millis();
        ms.div_euclid(HOUR) + i64::from(ms.rem_euclid(HOUR) != 0)
    };
    let last = obs.last().map_or(0, |o| hour_of(o.effective()));
    let onset_hour = onset.map(hour_of);
    let n = (last + 1).max(onset_hour.map_or(0, |s| s + 4)).max(1) as usize;
    let mut hours = vec![Vec::new(); n];
    for o in obs {
        hours[hour_of(o.effective()) as usize].push(*o);
    }
    let labels = (0..n as i64)
        .map(|h| onset_hour.is_some_and(|s| h >= s - 6))
        .collect();
    Stay {
        name,
        start,
        hours,
        labels,
    }
}

const HOUR: i64 = Span::hours(1).as_millis();

/// `patient_id -> onset` from the labels file.
fn read_labels(path: &Path) -> Result<BTreeMap<String, Option<Timestamp>>, Error> {
    let file = File::open(path).map_err(|e| Error::Io(path.to_path_buf(), e))?;
    let mut onsets = BTreeMap::new();
    let bad = |n: usize, why: String| Error::Input(format!("{} line {n}: {why}", path.display()));
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let n = i + 1;
        let line = line.map_err(|e| Error::Io(path.to_path_buf(), e))?;
        let line = line.trim();
        if n == 1 {
            if line.replace(' ', "") != "patient_id,sepsis_onset" {
                return Err(bad(
                    n,
                    format!(
                        "header {:?}; expected `patient_id,sepsis_onset`",
                        truncate(line, 60)
                    ),
                ));
            }
            continue;
        }
        if line.is_empty() {
            continue;
        }
        let Some((id, onset)) = line.split_once(',') else {
            return Err(bad(n, "expected `patient_id,sepsis_onset`".into()));
        };
        let (id, onset) = (id.trim(), onset.trim());
        if id.is_empty() {
            return Err(bad(n, "empty patient_id".into()));
        }
        let onset = if onset.is_empty() {
            None
        } else {
            Some(
                Timestamp::parse_rfc3339(onset)
                    .map_err(|e| bad(n, format!("sepsis_onset {:?}: {e}", truncate(onset, 40))))?,
            )
        };
        if onsets.insert(id.to_string(), onset).is_some() {
            return Err(bad(
                n,
                format!("patient_id {:?} appears twice", truncate(id, 64)),
            ));
        }
    }
    Ok(onsets)
}

/// A reason with its numbers replaced by `N`, so that rejections count by kind rather
/// than by value.
fn generalise(reason: &str) -> String {
    let mut out = String::with_capacity(reason.len());
    let mut in_number = false;
    for c in reason.chars() {
        if c.is_ascii_digit() || (in_number && c == '.') {
            if !in_number {
                out.push('N');
                in_number = true;
            }
        } else {
            in_number = false;
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).expect("write");
        p
    }

    fn tmp(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("vigil-eval-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&d).expect("mkdir");
        d
    }

    #[test]
    fn builds_hourly_stays_with_challenge_labels() {
        let d = tmp("jsonl");
        let obs = write(
            &d,
            "o.jsonl",
            concat!(
                r#"{"patient_id":"a","code":"heart_rate","value":80,"unit":"/min","effective":"2026-01-01T00:00:00Z"}"#,
                "\n",
                r#"[{"patient_id":"a","code":"resp_rate","value":30,"unit":"/min","effective":"2026-01-01T01:30:00Z"},{"patient_id":"a","code":"heart_rate","value":90,"unit":"/min","effective":"2026-01-01T01:30:00Z"}]"#,
                "\n",
                r#"{"patient_id":"b","code":"heart_rate","value":9999,"unit":"/min","effective":"2026-01-01T00:00:00Z"}"#,
                "\n",
                r#"{"patient_id":"b","code":"heart_rate","value":70,"unit":"/min","effective":"2026-01-01T00:00:00Z"}"#,
                "\n",
                r#"{"patient_id":"c","code":"heart_rate","value":70,"unit":"/min","effective":"2026-01-01T00:00:00Z"}"#,
                "\n",
            ),
        );
        let labels = write(
            &d,
            "l.csv",
            "patient_id,sepsis_onset\na,2026-01-01T08:00:00Z\nb,\nd,\n",
        );
        let mut counts = Counts::default();
        let stays = read(&obs, &labels, &mut counts).expect("read");
        assert_eq!(stays.len(), 2);
        let a = &stays[0];
        assert_eq!(a.name, "a");
        // Onset at hour 8: labelled from hour 2, the stay lasting to hour 11.
        assert_eq!(a.hours.len(), 12);
        assert_eq!(a.labels.iter().position(|&l| l), Some(2));
        assert_eq!(crate::utility::t_sepsis(&a.labels), Some(8));
        assert_eq!(a.hours[0].len(), 1);
        // 01:30 is decided with hour 2 (ending 02:00).
        assert_eq!(a.hours[2].len(), 2);
        assert!(stays[1].labels.iter().all(|&l| !l));
        assert_eq!(counts.rejected_total(), 1);
        let mut rejected: Vec<&str> = counts.rejected_stays.iter().map(|r| r.0.as_str()).collect();
        rejected.sort_unstable();
        assert_eq!(rejected, ["c", "d"]);
    }

    #[test]
    fn a_bad_labels_file_names_its_line() {
        let d = tmp("labels");
        let obs = write(&d, "o.jsonl", "");
        let cases = [
            ("id,onset\n", "line 1: header"),
            (
                "patient_id,sepsis_onset\na,yesterday\n",
                "line 2: sepsis_onset \"yesterday\"",
            ),
            (
                "patient_id,sepsis_onset\na,\na,\n",
                "line 3: patient_id \"a\" appears twice",
            ),
            ("patient_id,sepsis_onset\nab\n", "line 2: expected"),
        ];
        for (text, want) in cases {
            let labels = write(&d, "l.csv", text);
            let err = read(&obs, &labels, &mut Counts::default())
                .unwrap_err()
                .to_string();
            assert!(err.contains(want), "{err}");
        }
    }

    #[test]
    fn reasons_count_by_kind() {
        assert_eq!(
            generalise("field `value`: 9999 is not valid; expected 1-350.5"),
            "field `value`: N is not valid; expected N-N"
        );
    }
}
