//! `vigil-evaluate`: how Vigil's rules and alert policy perform on labelled patient data.
//!
//! Decision support only; not a medical device.
//!
//! An evaluation reads stays (one patient's hourly record with sepsis labels), replays
//! each through the same [`vigil_score::Tracker`] and alert policy the service runs
//! ([`replay`]), and computes the challenge's utility and the figures a quality team asks
//! for ([`metrics`], [`utility`]), printed as a table, JSON or an HTML report
//! ([`report`]). Inputs:
//!
//! - [`psv`]: the PhysioNet/CinC Challenge 2019 files, a directory or a `.tar.gz`;
//! - [`jsonl`]: Vigil's native observation events with a labels file, for a hospital's
//!   own retrospective export.
//!
//! Everything is deterministic: the same input and seed give the same figures.

pub mod calibrate;
pub mod jsonl;
pub mod metrics;
pub mod psv;
pub mod replay;
pub mod report;
pub mod runin;
pub mod train;
pub mod utility;

use std::collections::BTreeMap;
use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Instant;

use vigil_score::alert::PolicyConfig;
use vigil_score::{Config, Observation, Span, Timestamp};

use metrics::{Cohort, Curves, Figures, StaySummary};

/// The instant hour 0 of every stay is dated at (stays are independent: any fixed origin
/// gives the same figures): 2019-01-01T00:00:00Z.
pub const ORIGIN: Timestamp = Timestamp::from_millis(1_546_300_800_000);

/// The evaluation instant of hour `h` of a stay.
pub fn hour_time(h: usize) -> Timestamp {
    ORIGIN.plus(Span::hours(h as i64))
}

/// One stay: hourly readings and hourly labels.
#[derive(Clone, Debug, PartialEq)]
pub struct Stay {
    /// The stay's name: the file name of a PSV stay, the patient id of a JSONL one.
    pub name: String,
    /// When hour 0 ends ([`ORIGIN`] for PSV stays).
    pub start: Timestamp,
    /// The readings of each hour, in time order; hour `h` holds those measured after hour
    /// `h − 1` ended and no later than [`Stay::hour_end`]`(h)`.
    pub hours: Vec<Vec<Observation>>,
    /// Whether each hour is labelled septic (the challenge's `SepsisLabel`: 1 from 6 hours
    /// before onset).
    pub labels: Vec<bool>,
}

impl Stay {
    /// When hour `h` ends: the instant its decision is taken.
    pub fn hour_end(&self, h: usize) -> Timestamp {
        self.start.plus(Span::hours(h as i64))
    }
}

/// What was read: every cell or message is accounted for.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Counts {
    /// Stays evaluated.
    pub stays: u64,
    /// Hours evaluated.
    pub hours: u64,
    /// Readings scored.
    pub accepted: u64,
    /// Cells of scored columns that were empty or `NaN` (PSV).
    pub missing: u64,
    /// Values rejected, by reason.
    pub rejected: BTreeMap<String, u64>,
    /// Stays rejected whole: (name, reason).
    pub rejected_stays: Vec<(String, String)>,
    /// Non-missing cells of columns Vigil does not score, per column (PSV).
    ignored_names: Vec<String>,
    ignored_cells: Vec<u64>,
}

impl Counts {
    /// Counts a rejected value.
    pub fn reject(&mut self, reason: String) {
        *self.rejected.entry(reason).or_default() += 1;
    }

    /// The index of an ignored column, registering it on first sight.
    pub(crate) fn ignored_column(&mut self, name: &str) -> usize {
        match self.ignored_names.iter().position(|n| n == name) {
            Some(i) => i,
            None => {
                self.ignored_names.push(truncate(name, 40));
                self.ignored_cells.push(0);
                self.ignored_names.len() - 1
            }
        }
    }

    pub(crate) fn ignored_columns(&self) -> usize {
        self.ignored_names.len()
    }

    pub(crate) fn add_ignored(&mut self, cells: &[u64]) {
        for (total, c) in self.ignored_cells.iter_mut().zip(cells) {
            *total += c;
        }
    }

    /// Non-missing cells of each column Vigil does not score.
    pub fn ignored(&self) -> BTreeMap<&str, u64> {
        self.ignored_names
            .iter()
            .map(String::as_str)
            .zip(self.ignored_cells.iter().copied())
            .collect()
    }

    /// All ignored cells.
    pub fn ignored_total(&self) -> u64 {
        self.ignored_cells.iter().sum()
    }

    /// All rejected values.
    pub fn rejected_total(&self) -> u64 {
        self.rejected.values().sum()
    }
}

/// Where the stays come from.
#[derive(Clone, Debug)]
pub enum Input {
    /// PhysioNet 2019 PSV files: a directory or a `.tar.gz`.
    Psv(PathBuf),
    /// Native observation JSONL with a labels CSV.
    Jsonl {
        /// The observations.
        path: PathBuf,
        /// `patient_id,sepsis_onset` per patient.
        labels: PathBuf,
    },
}

/// How to evaluate.
#[derive(Clone, Debug)]
pub struct Options {
    /// Engine settings (staleness).
    pub config: Config,
    /// The alert policy evaluated as a whole.
    pub policy: PolicyConfig,
    /// Bootstrap replicates for the confidence intervals (0: none).
    pub bootstrap: usize,
    /// Seed of the bootstrap.
    pub seed: u64,
    /// Where to write each stay's hourly predictions in the challenge's format.
    pub predictions: Option<PathBuf>,
    /// Draw a progress bar on standard error (when it is a terminal).
    pub progress: bool,
}

/// The result of an evaluation.
#[derive(Clone, Debug)]
pub struct Evaluation {
    /// What was read.
    pub counts: Counts,
    /// The cohort's size.
    pub cohort: Cohort,
    /// Per predictor: the six rules (in [`vigil_score::RuleId::ALL`] order), then the
    /// configured policy.
    pub figures: Vec<Figures>,
    /// Threshold curves, lead times and coverage.
    pub curves: Curves,
    /// The policy evaluated.
    pub policy: PolicyConfig,
    /// Wall-clock seconds the evaluation took.
    pub seconds: f64,
}

/// An evaluation that could not run.
#[derive(Debug)]
pub enum Error {
    /// Reading the input or writing predictions failed.
    Io(PathBuf, io::Error),
    /// The input holds nothing to evaluate, or its labels are unusable.
    Input(String),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Io(path, e) => write!(f, "{}: {e}", path.display()),
            Error::Input(reason) => f.write_str(reason),
        }
    }
}

impl std::error::Error for Error {}

/// Runs an evaluation.
///
/// # Errors
///
/// [`Error`] when the input cannot be read, predictions cannot be written, or no stay
/// could be evaluated.
pub fn run(input: &Input, options: &Options) -> Result<Evaluation, Error> {
    let started = Instant::now();
    if let Some(dir) = &options.predictions {
        std::fs::create_dir_all(dir).map_err(|e| Error::Io(dir.clone(), e))?;
    }
    let reference = replay::reference_policy(&options.policy, &options.config);
    let mut progress = Progress::new(options.progress);
    let (tx, rx) = mpsc::sync_channel::<(Stay, f64)>(256);
    let (counts, summaries, curves) = std::thread::scope(|scope| {
        // One thread reads and parses, this one replays: two cores, two stages.
        let reader = scope.spawn(move || read(input, &tx));
        let mut summaries = Vec::new();
        let mut curves = Curves::default();
        let mut names = Vec::new();
        let mut failed = None;
        for (stay, done) in rx.iter() {
            let trace = replay::replay(&stay, &options.config, &options.policy, &reference);
            let summary = StaySummary::of(&stay.labels, &trace);
            curves.add(&stay.labels, &trace, &summary);
            if let Some(dir) = &options.predictions
                && failed.is_none()
                && let Err(e) = write_predictions(dir, &stay.name, &trace)
            {
                failed = Some(e);
            }
            names.push(stay.name);
            summaries.push(summary);
            progress.show(done, summaries.len());
        }
        progress.finish();
        let counts = reader
            .join()
            .unwrap_or_else(|_| Err(Error::Input("the input reader stopped unexpectedly".into())));
        match failed {
            Some(e) => Err(e),
            None => counts.map(|c| (c, order(names, summaries), curves)),
        }
    })?;
    if summaries.is_empty() {
        let why: Vec<String> = counts
            .rejected_stays
            .iter()
            .take(5)
            .map(|(name, reason)| format!("{name}: {reason}"))
            .collect();
        return Err(Error::Input(if why.is_empty() {
            "no stay to evaluate: the input holds no stay files (.psv) or no observations".into()
        } else {
            format!("no stay could be evaluated; {}", why.join("; "))
        }));
    }
    let (cohort, figures) = metrics::figures(&summaries, options.bootstrap, options.seed);
    Ok(Evaluation {
        counts,
        cohort,
        figures,
        curves,
        policy: options.policy,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Summaries in stay-name order, so that the bootstrap does not depend on reading order.
fn order(names: Vec<String>, summaries: Vec<StaySummary>) -> Vec<StaySummary> {
    let mut pairs: Vec<(String, StaySummary)> = names.into_iter().zip(summaries).collect();
    pairs.sort_by(|a, b| a.0.cmp(&b.0));
    pairs.into_iter().map(|(_, s)| s).collect()
}

/// Reads every stay of `input` into `tx`, returning the counts.
fn read(input: &Input, tx: &mpsc::SyncSender<(Stay, f64)>) -> Result<Counts, Error> {
    let mut counts = Counts::default();
    let send = |stay: Stay, done: f64, counts: &mut Counts| {
        counts.stays += 1;
        counts.hours += stay.hours.len() as u64;
        counts.accepted += stay.hours.iter().map(|h| h.len() as u64).sum::<u64>();
        // The receiver only stops early on a write failure, reported there.
        let _ = tx.send((stay, done));
    };
    match input {
        Input::Psv(path) => {
            psv::read_stays(path, &mut counts, send).map_err(|e| Error::Io(path.clone(), e))?;
        }
        Input::Jsonl { path, labels } => {
            let stays = jsonl::read(path, labels, &mut counts)?;
            let n = stays.len().max(1) as f64;
            for (i, stay) in stays.into_iter().enumerate() {
                send(stay, (i + 1) as f64 / n, &mut counts);
            }
        }
    }
    Ok(counts)
}

/// Writes one stay's predictions in the challenge's format: `PredictedProbability|
/// PredictedLabel`, one row per hour; the label is whether the policy had an alert active,
/// the probability the highest active level scaled to 0-1 (none 0, advisory 0.333,
/// urgent 0.667, emergency 1).
fn write_predictions(dir: &Path, name: &str, trace: &replay::Trace) -> Result<(), Error> {
    let file = if name.ends_with(".psv") {
        name.to_string()
    } else {
        format!("{name}.psv")
    };
    let path = dir.join(file);
    let mut out = String::with_capacity(32 + 8 * trace.hours);
    out.push_str("PredictedProbability|PredictedLabel\n");
    for &level in &trace.level {
        let p = ["0", "0.333", "0.667", "1"][usize::from(level.min(3))];
        out.push_str(p);
        out.push('|');
        out.push(if level > 0 { '1' } else { '0' });
        out.push('\n');
    }
    std::fs::write(&path, out).map_err(|e| Error::Io(path, e))
}

/// A progress bar on standard error, drawn only when it is a terminal.
struct Progress {
    on: bool,
    last: Option<Instant>,
}

impl Progress {
    fn new(wanted: bool) -> Progress {
        Progress {
            on: wanted && io::stderr().is_terminal(),
            last: None,
        }
    }

    fn show(&mut self, done: f64, stays: usize) {
        if !self.on || self.last.is_some_and(|l| l.elapsed().as_millis() < 100) {
            return;
        }
        self.last = Some(Instant::now());
        let width = 40;
        let filled = ((done.clamp(0.0, 1.0)) * width as f64) as usize;
        let _ = write!(
            io::stderr(),
            "\r[{}{}] {:>3.0} % {stays} stays",
            "#".repeat(filled),
            " ".repeat(width - filled),
            done * 100.0
        );
    }

    fn finish(&mut self) {
        if self.on && self.last.is_some() {
            let _ = write!(io::stderr(), "\r{}\r", " ".repeat(70));
        }
    }
}

/// At most `max` characters of `s`, for echoing input in a reason.
pub(crate) fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_string(),
    }
}
