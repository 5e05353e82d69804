//! The PhysioNet/CinC Challenge 2019 stay files: one pipe-separated file per ICU stay, one
//! row per hour, read from a directory or streamed from a `.tar.gz` (nothing unpacked).
//!
//! Columns are found by their header names. The mapping to Vigil's parameters, in the
//! units the challenge data hold (for FiO2 and lactate, the units observed in the data:
//! FiO2 a fraction, lactate mmol/L):
//!
//! | column | parameter | unit |
//! |---|---|---|
//! | `HR` | `heart_rate` | /min |
//! | `O2Sat` | `spo2` | % |
//! | `Temp` | `temperature` | Cel |
//! | `SBP`, `MAP`, `DBP` | `sbp`, `map`, `dbp` | `mm[Hg]` |
//! | `Resp` | `resp_rate` | /min |
//! | `FiO2` | `fio2` | 1 (fraction) |
//! | `PaCO2` | `paco2` | `mm[Hg]` |
//! | `Lactate` | `lactate` | mmol/L |
//! | `Creatinine` | `creatinine` | mg/dL |
//! | `Bilirubin_total` | `bilirubin` | mg/dL |
//! | `WBC`, `Platelets` | `wbc`, `platelets` | 10*3/uL |
//!
//! `SepsisLabel` is the label. Every other column (EtCO2, SaO2, the other laboratory
//! values, demographics, `ICULOS`) is not scored by Vigil: its non-missing cells are
//! counted as ignored, per column. `NaN` or an empty cell is missing and stays missing.
//! A cell that is not a number, or whose value the engine rejects (FiO2 above 1 or below
//! 0.21, say), is counted by reason and never scored. A file without a `SepsisLabel`
//! column, with a row of the wrong width or a label other than 0 or 1 is rejected whole,
//! with its reason counted.
//!
//! Hour `h` of a stay (its `h`-th row, from 0; not `ICULOS`) is dated [`crate::ORIGIN`]
//! plus `h` hours.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

use vigil_score::{Observation, Param, Value};

use crate::{Counts, Stay, hour_time};

/// Challenge columns and the parameters they map to.
pub const MAPPING: &[(&str, Param)] = &[
    ("HR", Param::HeartRate),
    ("O2Sat", Param::Spo2),
    ("Temp", Param::Temperature),
    ("SBP", Param::Sbp),
    ("MAP", Param::Map),
    ("DBP", Param::Dbp),
    ("Resp", Param::RespRate),
    ("FiO2", Param::Fio2),
    ("PaCO2", Param::Paco2),
    ("Lactate", Param::Lactate),
    ("Creatinine", Param::Creatinine),
    ("Bilirubin_total", Param::Bilirubin),
    ("WBC", Param::Wbc),
    ("Platelets", Param::Platelets),
];

/// The label column.
pub const LABEL: &str = "SepsisLabel";

/// What a column of the file is used for.
#[derive(Clone, Copy)]
enum Use {
    Param(Param),
    Label,
    Ignored(usize),
}

/// Reads every stay file of `path` (a directory or a `.tar.gz`), handing each parsed
/// stay to `each` with the share of the input read so far; a stay that cannot be parsed is
/// recorded in `counts.rejected_stays` with its reason.
///
/// # Errors
///
/// The input cannot be read.
pub fn read_stays(
    path: &Path,
    counts: &mut Counts,
    mut each: impl FnMut(Stay, f64, &mut Counts),
) -> io::Result<()> {
    Source::open(path)?.for_each(|name, text, done| {
        match text.and_then(|t| parse(name, t, counts)) {
            Ok(stay) => each(stay, done, counts),
            Err(reason) => counts.rejected_stays.push((name.to_owned(), reason)),
        }
    })
}

/// Parses one stay file. `Err` gives the reason the whole file is rejected.
pub fn parse(name: &str, text: &str, counts: &mut Counts) -> Result<Stay, String> {
    let mut lines = text.lines();
    let header = lines.next().ok_or("empty file")?;
    let columns: Vec<Use> = header
        .split('|')
        .map(|c| {
            let c = c.trim();
            if c == LABEL {
                Use::Label
            } else if let Some(&(_, p)) = MAPPING.iter().find(|(n, _)| *n == c) {
                Use::Param(p)
            } else {
                Use::Ignored(counts.ignored_column(c))
            }
        })
        .collect();
    if !columns.iter().any(|c| matches!(c, Use::Label)) {
        return Err(format!("no `{LABEL}` column in the header"));
    }
    let mut stay = Stay {
        name: name.to_string(),
        start: crate::ORIGIN,
        hours: Vec::new(),
        labels: Vec::new(),
    };
    let mut ignored = vec![0u64; counts.ignored_columns()];
    for (h, line) in lines.enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let at = hour_time(stay.hours.len());
        let mut readings = Vec::new();
        let mut label = None;
        for (cell, &column) in line.split('|').zip(&columns) {
            let cell = cell.trim();
            let missing = cell.is_empty() || cell == "NaN";
            match column {
                Use::Label => {
                    label = Some(match cell {
                        "0" => false,
                        "1" => true,
                        other => {
                            return Err(format!(
                                "row {}: {LABEL} {:?}; expected 0 or 1",
                                h + 2,
                                crate::truncate(other, 20)
                            ));
                        }
                    });
                }
                Use::Ignored(i) if !missing => ignored[i] += 1,
                Use::Ignored(_) => {}
                Use::Param(_) if missing => counts.missing += 1,
                Use::Param(p) => match reading(p, cell, at) {
                    Ok(o) => readings.push(o),
                    Err(reason) => counts.reject(reason),
                },
            }
        }
        let width = line.split('|').count();
        if width != columns.len() {
            return Err(format!(
                "row {}: {width} fields; expected {} as in the header",
                h + 2,
                columns.len()
            ));
        }
        stay.labels.push(label.unwrap_or(false));
        stay.hours.push(readings);
    }
    if stay.hours.is_empty() {
        return Err("no rows".into());
    }
    counts.add_ignored(&ignored);
    Ok(stay)
}

/// One cell as an observation, or the reason it is rejected (the counting key).
fn reading(param: Param, cell: &str, at: vigil_score::Timestamp) -> Result<Observation, String> {
    let value: f64 = cell
        .parse()
        .ok()
        .filter(|v: &f64| v.is_finite())
        .ok_or_else(|| format!("{}: not a number", param.code()))?;
    // Already in the canonical unit (the column mapping above): no code or unit lookup.
    Observation::canonical(param, Value::Number(value), at).map_err(|e| match e {
        vigil_score::ObservationError::OutOfRange { max, .. } if value > max => {
            format!("{}: above {max}{}", param.code(), unit_suffix(param))
        }
        vigil_score::ObservationError::OutOfRange { min, .. } => {
            format!("{}: below {min}{}", param.code(), unit_suffix(param))
        }
        other => format!("{}: {other}", param.code()),
    })
}

/// The unit after a number in a reason (nothing for a fraction).
fn unit_suffix(param: Param) -> String {
    match param.unit() {
        "1" => String::new(),
        u => format!(" {u}"),
    }
}

/// Where stay files come from: a directory of `.psv` files or a `.tar.gz` of them.
pub enum Source {
    /// A directory; the files in name order.
    Dir(Vec<PathBuf>),
    /// A gzip-compressed tar archive, streamed.
    TarGz(PathBuf),
}

impl Source {
    /// Opens `path`.
    ///
    /// # Errors
    ///
    /// When it is neither a readable directory nor a file.
    pub fn open(path: &Path) -> io::Result<Source> {
        if path.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(path)?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "psv"))
                .collect();
            files.sort();
            Ok(Source::Dir(files))
        } else {
            let mut magic = [0u8; 2];
            File::open(path)?.read_exact(&mut magic).ok();
            if magic != [0x1f, 0x8b] {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "neither a directory of .psv files nor a gzip-compressed tar archive (.tar.gz) of them",
                ));
            }
            Ok(Source::TarGz(path.to_path_buf()))
        }
    }

    /// Calls `each(name, text, done)` for every `.psv` file in order, `done` being the
    /// share of the input read so far (for a progress bar); `text` is the reason instead
    /// for a file that cannot be read as UTF-8 text.
    ///
    /// # Errors
    ///
    /// When the directory or archive cannot be read.
    pub fn for_each(self, mut each: impl FnMut(&str, Result<&str, String>, f64)) -> io::Result<()> {
        let mut text = String::new();
        match self {
            Source::Dir(files) => {
                let n = files.len().max(1) as f64;
                for (i, path) in files.iter().enumerate() {
                    let name = file_name(&path.to_string_lossy());
                    text.clear();
                    match File::open(path).and_then(|mut f| f.read_to_string(&mut text)) {
                        Ok(_) => each(&name, Ok(&text), (i + 1) as f64 / n),
                        Err(e) => each(&name, Err(format!("cannot read: {e}")), (i + 1) as f64 / n),
                    }
                }
            }
            Source::TarGz(path) => {
                let file = File::open(&path)?;
                let total = file.metadata()?.len().max(1) as f64;
                let counted = Counted {
                    inner: BufReader::with_capacity(1 << 20, file),
                    read: std::rc::Rc::new(std::cell::Cell::new(0)),
                };
                let read = counted.read.clone();
                let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(counted));
                for entry in archive.entries()? {
                    let mut entry = entry?;
                    if !entry.header().entry_type().is_file() {
                        continue;
                    }
                    let name = file_name(&entry.path()?.to_string_lossy());
                    if !name.ends_with(".psv") {
                        continue;
                    }
                    text.clear();
                    match entry.read_to_string(&mut text) {
                        Ok(_) => each(&name, Ok(&text), read.get() as f64 / total),
                        Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                            each(
                                &name,
                                Err("not UTF-8 text".into()),
                                read.get() as f64 / total,
                            );
                        }
                        Err(e) => return Err(e),
                    }
                }
            }
        }
        Ok(())
    }
}

fn file_name(path: &str) -> String {
    path.rsplit('/').next().unwrap_or(path).to_string()
}

/// A reader that counts the bytes read through it.
struct Counted<R> {
    inner: R,
    read: std::rc::Rc<std::cell::Cell<u64>>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.set(self.read.get() + n as u64);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "HR|O2Sat|Temp|SBP|MAP|DBP|Resp|EtCO2|FiO2|Age|ICULOS|SepsisLabel";

    #[test]
    fn maps_columns_and_keeps_missing_cells_missing() {
        let text = format!(
            "{HEADER}\nNaN|NaN|NaN|NaN|NaN|NaN|NaN|NaN|NaN|70|1|0\n97|95|38.2|98|75|NaN|19|30|0.5|70|2|1\n"
        );
        let mut counts = Counts::default();
        let stay = parse("p1.psv", &text, &mut counts).expect("valid");
        assert_eq!(stay.labels, vec![false, true]);
        assert!(stay.hours[0].is_empty());
        let params: Vec<Param> = stay.hours[1].iter().map(|o| o.param()).collect();
        assert_eq!(
            params,
            [
                Param::HeartRate,
                Param::Spo2,
                Param::Temperature,
                Param::Sbp,
                Param::Map,
                Param::RespRate,
                Param::Fio2
            ]
        );
        assert!(stay.hours[1].iter().all(|o| o.effective() == hour_time(1)));
        // EtCO2 once, Age twice, ICULOS twice.
        assert_eq!(counts.ignored_total(), 5);
        assert_eq!(counts.missing, 8 + 1);
    }

    #[test]
    fn invalid_values_are_counted_by_reason_and_never_scored() {
        let text = format!(
            "{HEADER}\n97|95|NaN|NaN|NaN|NaN|NaN|NaN|10|70|1|0\n97|95|NaN|NaN|NaN|NaN|NaN|NaN|0.1|70|1|0\nabc|95|NaN|NaN|NaN|NaN|NaN|NaN|NaN|70|1|0\n"
        );
        let mut counts = Counts::default();
        let stay = parse("p1.psv", &text, &mut counts).expect("valid");
        assert!(
            stay.hours
                .iter()
                .flatten()
                .all(|o| o.param() != Param::Fio2)
        );
        assert_eq!(counts.rejected.get("fio2: above 1"), Some(&1));
        assert_eq!(counts.rejected.get("fio2: below 0.21"), Some(&1));
        assert_eq!(counts.rejected.get("heart_rate: not a number"), Some(&1));
        assert_eq!(stay.hours[2].len(), 1);
    }

    #[test]
    fn malformed_files_are_rejected_with_a_reason() {
        let mut counts = Counts::default();
        let no_label = "HR|O2Sat\n1|2\n";
        assert!(
            parse("a", no_label, &mut counts)
                .unwrap_err()
                .contains("SepsisLabel")
        );
        let short = format!("{HEADER}\n97|95\n");
        assert!(
            parse("a", &short, &mut counts)
                .unwrap_err()
                .contains("2 fields; expected 12")
        );
        let long = format!("{HEADER}\n97|95|NaN|NaN|NaN|NaN|NaN|NaN|NaN|70|1|0|7\n");
        assert!(
            parse("a", &long, &mut counts)
                .unwrap_err()
                .contains("13 fields")
        );
        let label = format!("{HEADER}\n97|95|NaN|NaN|NaN|NaN|NaN|NaN|NaN|70|1|2\n");
        assert!(
            parse("a", &label, &mut counts)
                .unwrap_err()
                .contains("expected 0 or 1")
        );
        assert!(
            parse("a", HEADER, &mut counts)
                .unwrap_err()
                .contains("no rows")
        );
    }
}
