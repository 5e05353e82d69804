//! The `vigil` command: parses arguments and calls the library.

use std::fs::File;
use std::io::{self, BufReader};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use vigil_score::{Config, Timestamp};

/// Vigil: sepsis early-warning scoring. Decision support only; not a medical device.
#[derive(Parser)]
#[command(name = "vigil", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Score observation JSONL: one JSON object per patient on standard output,
    /// `line N: reason` on standard error for each line that cannot be accepted.
    /// Exit status 0 if every line was accepted, 1 if any was rejected, 2 on usage errors.
    Score {
        /// Observation JSONL file; `-` or nothing for standard input.
        path: Option<PathBuf>,
        /// Evaluate every patient at this RFC 3339 instant (default: each patient's
        /// latest observation time).
        #[arg(long, value_parser = parse_time)]
        at: Option<Timestamp>,
        /// Also print a count of accepted, duplicate, stale and rejected lines on
        /// standard error.
        #[arg(long)]
        summary: bool,
    },
}

fn parse_time(s: &str) -> Result<Timestamp, String> {
    Timestamp::parse_rfc3339(s).map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Score { path, at, summary } => score(path, at, summary),
    }
}

fn score(path: Option<PathBuf>, at: Option<Timestamp>, print_summary: bool) -> ExitCode {
    let config = Config::default();
    let stdout = io::stdout();
    let stderr = io::stderr();
    let result = match path.filter(|p| p.as_os_str() != "-") {
        Some(p) => match File::open(&p) {
            Ok(f) => vigil::score::run(
                BufReader::new(f),
                at,
                &config,
                &mut stdout.lock(),
                &mut stderr.lock(),
            ),
            Err(e) => {
                eprintln!("vigil score: cannot open {}: {e}", p.display());
                return ExitCode::from(2);
            }
        },
        None => vigil::score::run(
            io::stdin().lock(),
            at,
            &config,
            &mut stdout.lock(),
            &mut stderr.lock(),
        ),
    };
    match result {
        Ok(s) => {
            if print_summary {
                eprintln!(
                    "summary: {} lines, {} accepted, {} duplicate, {} stale, {} rejected",
                    s.lines, s.accepted, s.duplicate, s.stale, s.rejected
                );
            }
            ExitCode::from(u8::from(s.rejected > 0))
        }
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vigil score: {e}");
            ExitCode::from(2)
        }
    }
}
