//! `vigil demo`: the whole pipeline on one machine with nothing installed.
//!
//! Starts an in-process Kafka-protocol broker ([`MockBroker`]), the simulator feeding a
//! synthetic ward into it, the service, the rapid-response board (with three demo users,
//! and escalation after 3, 2 and 1 minutes so that it shows), and a printer that reads the alerts topic like any
//! downstream consumer and prints one readable line per decision (the events that share a
//! `decision_id`), led by its highest level: what a pager would show. Repeated alert ids,
//! which at-least-once delivery can produce, are dropped.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use tokio_util::sync::CancellationToken;

use crate::simulate::{SimConfig, Ward, produce};
use vigil_stream::config::{Config, Settings};
use vigil_testkit::MockBroker;

/// Demo settings.
#[derive(Clone, Debug)]
pub struct DemoConfig {
    /// Simulated patients.
    pub patients: usize,
    /// Share of them deteriorating.
    pub deteriorating: f64,
    /// Real time between charting rounds (each round is 15 simulated minutes).
    pub round_every: Duration,
    /// Stop after this many rounds (`None`: until interrupted).
    pub rounds: Option<u64>,
    /// HTTP address for the endpoints.
    pub listen: String,
    /// Address of the rapid-response board.
    pub board_listen: String,
}

impl Default for DemoConfig {
    fn default() -> Self {
        DemoConfig {
            patients: 24,
            deteriorating: 0.25,
            round_every: Duration::from_millis(1500),
            rounds: None,
            listen: "127.0.0.1:9898".into(),
            board_listen: "127.0.0.1:8080".into(),
        }
    }
}

/// Runs the demo until `shutdown` is cancelled (or the rounds are done and the last
/// alerts printed), writing one line per decision to `out`. Returns how many decisions
/// and alert events it printed.
///
/// # Errors
///
/// When the mock broker, the service or a client cannot start.
pub async fn run(
    demo: DemoConfig,
    shutdown: CancellationToken,
    out: &mut (dyn Write + Send),
) -> Result<Shown, Box<dyn std::error::Error + Send + Sync>> {
    // A busy port is named by the flag the user typed (the service and the board would
    // name their configuration keys, which the demo sets from these flags).
    for (flag, address) in [
        ("--listen", &demo.listen),
        ("--board-listen", &demo.board_listen),
    ] {
        if let Err(e) = std::net::TcpListener::bind(address.as_str()) {
            return Err(format!(
                "{flag}: cannot listen on {address}: {e}; another program may be using it \
                 (choose another address with {flag}, for example {flag} 127.0.0.1:0)"
            )
            .into());
        }
    }
    // The mock cluster is not Send: it stays in this future, which runs on the caller's
    // thread; everything else talks to it over TCP.
    let broker = MockBroker::start(1)?;
    let brokers = broker.bootstrap_servers();
    let mut raw = Config::default();
    raw.kafka.brokers = brokers.clone();
    raw.kafka.group_id = "vigil-demo".into();
    raw.http.listen = demo.listen.clone();
    broker.create_topic(&raw.kafka.observations_topic, 4)?;
    broker.create_topic(&raw.kafka.alerts_topic, 1)?;
    broker.create_topic(&raw.kafka.dlq_topic, 1)?;
    broker.create_topic(&raw.kafka.state_topic, 4)?;
    broker.create_topic(&raw.board.actions_topic, 1)?;
    raw.board.listen = demo.board_listen.clone();
    raw.board.escalate_minutes = [3, 2, 1];
    // The board signs actions and the service checks them: a key of this run's own, in a
    // file only this user can read, removed when the demo ends.
    let key_file = KeyFile::new()?;
    raw.board.action_key_file = key_file.0.display().to_string();
    for (name, role) in DEMO_USERS {
        raw.board.users.push(vigil_stream::config::BoardUser {
            name: name.into(),
            role: role.into(),
            password_hash: vigil_web::auth::hash_password(name)?,
        });
    }
    let settings: Settings = raw.clone().validate()?;
    let stop = shutdown.child_token();
    let board = vigil_web::app::start(&settings.kafka, &settings.board, stop.clone()).await?;
    writeln!(
        out,
        "Vigil demo: {} simulated patients, {:.0} % deteriorating, broker {brokers}, \
         metrics on http://{}/metrics. Decision support only; not a medical device. Ctrl-C stops.",
        demo.patients,
        demo.deteriorating * 100.0,
        settings.listen
    )?;
    writeln!(
        out,
        "  Rapid-response board: http://{}/ (sign in as nurse, charge or quality; the password \
         is the name; unaccepted alerts escalate after 3, 2 and 1 minutes in the demo)",
        board.addr
    )?;
    let service = tokio::spawn(vigil_stream::run(settings, stop.clone()));

    let printer_stop = stop.clone();
    let alerts_topic = raw.kafka.alerts_topic.clone();
    let printer_brokers = brokers.clone();
    let (lines_tx, mut lines_rx) = tokio::sync::mpsc::unbounded_channel::<Line>();
    let printer = tokio::spawn(async move {
        let consumer: StreamConsumer = ClientConfig::new()
            .set("bootstrap.servers", &printer_brokers)
            .set("group.id", "vigil-demo-printer")
            .set("auto.offset.reset", "earliest")
            .set("isolation.level", "read_committed")
            .create()?;
        consumer.subscribe(&[alerts_topic.as_str()])?;
        let mut printer = Printer::default();
        loop {
            let m = tokio::select! {
                () = printer_stop.cancelled() => break,
                m = consumer.recv() => m,
            };
            let Ok(m) = m else { continue };
            let Some(Ok(text)) = m.payload_view::<str>() else {
                continue;
            };
            if let Some(line) = printer.feed(text) {
                let _ = lines_tx.send(line);
            }
        }
        Ok::<(), rdkafka::error::KafkaError>(())
    });

    let (start, rounds) = crate::simulate::live_start(
        demo.rounds,
        SimConfig::default().interval,
        vigil_stream::event::now(),
    );
    let sim_stop = stop.clone();
    let sim = tokio::spawn(async move {
        let mut ward = Ward::new(SimConfig {
            patients: demo.patients,
            deteriorating: demo.deteriorating,
            start,
            ..SimConfig::default()
        });
        let topic = Config::default().kafka.observations_topic;
        produce(
            (&brokers, &[]),
            &topic,
            &mut ward,
            Some(rounds),
            demo.round_every,
            &sim_stop,
        )
        .await
    });

    let mut shown = Shown::default();
    let mut sim_done = false;
    let mut sim = sim;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            line = lines_rx.recv() => match line {
                Some(line) => {
                    writeln!(out, "{}", line.text)?;
                    shown.decisions += 1;
                    shown.events += line.alert_ids.len();
                }
                None => break,
            },
            r = &mut sim, if !sim_done => {
                sim_done = true;
                match r {
                    Ok(Ok(n)) => tracing::info!(messages = n, "Simulation finished"),
                    Ok(Err(e)) => tracing::error!(error = %e, "Simulator failed"),
                    Err(e) => tracing::error!(error = %e, "Simulator task failed"),
                }
                // Let the last alerts through, then stop.
                let stop = stop.clone();
                tokio::spawn(async move { tokio::time::sleep(Duration::from_secs(3)).await; stop.cancel(); });
            }
        }
        if stop.is_cancelled() && lines_rx.is_empty() {
            break;
        }
    }
    stop.cancel();
    let _ = printer.await;
    match service.await {
        Ok(Err(e)) => return Err(e),
        Err(e) => return Err(e.into()),
        Ok(Ok(())) => {}
    }
    let _ = board.task.await;
    drop(broker);
    Ok(shown)
}

/// The demo's board users: a nurse, a charge nurse and quality staff, each signing in
/// with their name as the password.
pub const DEMO_USERS: [(&str, &str); 3] = [
    ("nurse", "nurse"),
    ("charge", "charge_nurse"),
    ("quality", "quality"),
];

/// What the demo printed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Shown {
    /// Lines: one per decision (a nurse's page).
    pub decisions: usize,
    /// Alert events those decisions carried.
    pub events: usize,
}

/// Turns alert events into one line per decision.
#[derive(Debug, Default)]
pub struct Printer {
    seen: HashSet<String>,
    /// Events of decisions not complete yet, by `decision_id`.
    open: HashMap<String, Vec<serde_json::Value>>,
}

/// One printed line, and the alert ids it shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// The text.
    pub text: String,
    /// The events it stands for.
    pub alert_ids: Vec<String>,
}

impl Printer {
    /// Takes one alert event (JSON). Returns the decision's line once all its events
    /// (`decision_events`) have arrived; `None` meanwhile, for a repeated alert id, or for
    /// a payload that is not an alert event.
    pub fn feed(&mut self, json: &str) -> Option<Line> {
        let v: serde_json::Value = serde_json::from_str(json).ok()?;
        let id = v["alert_id"].as_str()?.to_owned();
        if !self.seen.insert(id.clone()) {
            return None;
        }
        let Some(decision) = v["decision_id"].as_str().map(str::to_owned) else {
            return Some(decision_line(vec![v]));
        };
        let expected = v["decision_events"].as_u64().unwrap_or(1) as usize;
        let events = self.open.entry(decision.clone()).or_default();
        events.push(v);
        if events.len() < expected {
            return None;
        }
        let events = self.open.remove(&decision).unwrap_or_default();
        Some(decision_line(events))
    }
}

/// `2026-11-23 10:45:00 UTC EMERGENCY ward-1/bed-04 SIM-00004 NEWS2 raised: NEWS2 7 ...
/// | also: qSOFA raised urgent, SIRS raised advisory`.
fn decision_line(mut events: Vec<serde_json::Value>) -> Line {
    let rank = |v: &serde_json::Value| match v["level"].as_str() {
        Some("emergency") => 3,
        Some("urgent") => 2,
        Some("advisory") => 1,
        _ => 0,
    };
    events.sort_by_key(|v| std::cmp::Reverse(rank(v)));
    let lead = &events[0];
    let at = lead["observed_at"].as_str().unwrap_or("?");
    let when = match at.split_once('T') {
        Some((date, time)) => format!("{date} {} UTC", time.get(..8).unwrap_or(time)),
        None => at.to_owned(),
    };
    // One word per field: "Septic shock" prints as "Septic-shock".
    let rule = |v: &serde_json::Value| {
        let r = v["rule"].as_str().unwrap_or("?");
        vigil_score::RuleId::from_name(r)
            .map_or_else(|| r.to_owned(), |r| r.label().replace(' ', "-"))
    };
    let mut text = format!(
        "{when} {:<9} {:<14} {:<10} {} {}: {}",
        lead["level"].as_str().unwrap_or("?").to_uppercase(),
        lead["location"].as_str().unwrap_or("-"),
        lead["patient_id"].as_str().unwrap_or("?"),
        rule(lead),
        lead["kind"].as_str().unwrap_or("?"),
        lead["message"].as_str().unwrap_or(""),
    );
    let others: Vec<String> = events[1..]
        .iter()
        .map(|v| {
            format!(
                "{} {} {}",
                rule(v),
                v["kind"].as_str().unwrap_or("?"),
                v["level"].as_str().unwrap_or("?")
            )
        })
        .collect();
    if !others.is_empty() {
        text.push_str(" | also: ");
        text.push_str(&others.join(", "));
    }
    // Suppressed on the board (a watch or a stop): recorded, not a page.
    if let Some(by) = lead["suppressed"]["by"].as_str() {
        let user = lead["suppressed"]["user"].as_str().unwrap_or("?");
        text.push_str(&format!(" | suppressed ({by} by {user}): not paged"));
    }
    Line {
        text,
        alert_ids: events
            .iter()
            .filter_map(|v| v["alert_id"].as_str().map(str::to_owned))
            .collect(),
    }
}

/// The demo's action key file: made with a fresh key, removed when dropped.
struct KeyFile(std::path::PathBuf);

impl KeyFile {
    fn new() -> Result<KeyFile, Box<dyn std::error::Error + Send + Sync>> {
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        let path = std::env::temp_dir().join(format!("vigil-demo-{}.key", std::process::id()));
        let key = vigil_web::auth::new_action_key()?;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)?;
        file.write_all(key.as_bytes())?;
        Ok(KeyFile(path))
    }
}

impl Drop for KeyFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: &str, rule: &str, kind: &str, level: &str) -> String {
        serde_json::json!({"alert_id": id, "decision_id": "d1", "decision_events": 3,
            "patient_id": "P1", "location": "ward-7/bed-12", "rule": rule, "kind": kind,
            "level": level, "observed_at": "2026-11-23T10:00:00Z",
            "message": format!("{rule} message")})
        .to_string()
    }

    #[test]
    fn a_suppressed_decision_says_so_and_by_whom() {
        let mut v: serde_json::Value =
            serde_json::from_str(&event("a", "news2", "raised", "urgent")).expect("JSON");
        v["decision_events"] = 1.into();
        v["suppressed"] = serde_json::json!({"by": "watch", "until": "x", "user": "nina"});
        let line = Printer::default().feed(&v.to_string()).expect("a line");
        assert!(
            line.text
                .ends_with(" | suppressed (watch by nina): not paged"),
            "{}",
            line.text
        );
    }

    #[test]
    fn one_line_per_decision_led_by_its_highest_level() {
        let mut p = Printer::default();
        assert_eq!(p.feed(&event("a", "sirs", "raised", "advisory")), None);
        assert_eq!(p.feed(&event("b", "news2", "raised", "emergency")), None);
        assert_eq!(
            p.feed(&event("a", "sirs", "raised", "advisory")),
            None,
            "repeat"
        );
        let line = p
            .feed(&event("c", "qsofa", "raised", "urgent"))
            .expect("complete");
        assert_eq!(
            line.text,
            "2026-11-23 10:00:00 UTC EMERGENCY ward-7/bed-12  P1         NEWS2 raised: \
             news2 message | also: qSOFA raised urgent, SIRS raised advisory"
        );
        assert_eq!(line.alert_ids, vec!["b", "c", "a"]);
        assert_eq!(
            p.feed(&event("c", "qsofa", "raised", "urgent")),
            None,
            "printed once"
        );
        assert_eq!(p.feed("not json"), None);
    }
}
