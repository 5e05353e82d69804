//! `vigil load board`: how fast an alert reaches every open board, and how the board
//! answers with many active alerts (BENCHMARKS.md records the figures).
//!
//! Starts an in-process Kafka-protocol broker and one board instance (`vigil-web`), opens
//! `clients` live streams (`/api/stream`, as each browser tab does) and publishes
//! `alerts` alert events at `rate` per second, each a new patient at the same level, so
//! that every alert stays active and the newest is the last card. Each client notes when
//! every alert first appears in its stream; latency is that instant minus the instant
//! the alert was handed to the producer, over every (client, alert) pair. Then, with all
//! the alerts active, it times `GET /api/board` (the whole board as JSON) and records its
//! size. Everything (broker, board and clients) shares this machine's cores.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio_util::sync::CancellationToken;
use vigil_stream::config::{BoardUser, Config};
use vigil_testkit::MockBroker;

type Error = Box<dyn std::error::Error + Send + Sync>;

/// The figures of a run.
#[derive(Clone, Debug)]
pub struct BoardReport {
    /// Connected streams.
    pub clients: usize,
    /// Alerts published.
    pub alerts: usize,
    /// (client, alert) pairs seen.
    pub seen: usize,
    /// Publish-to-screen latency in milliseconds: p50, p99, max.
    pub latency_ms: (f64, f64, f64),
    /// The same, for the alerts published after `alerts / 2` were already active.
    pub latency_full_ms: (f64, f64, f64),
    /// `GET /api/board` with every alert active, in milliseconds: p50, p99, max.
    pub board_get_ms: (f64, f64, f64),
    /// Size of the board's JSON with every alert active.
    pub board_bytes: usize,
}

pub(crate) fn percentiles(mut v: Vec<f64>) -> (f64, f64, f64) {
    if v.is_empty() {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    v.sort_by(f64::total_cmp);
    let at = |q: f64| v[((v.len() as f64 - 1.0) * q).round() as usize];
    (at(0.5), at(0.99), v[v.len() - 1])
}

fn alert(seq: usize) -> String {
    let now = vigil_web::app::wall_clock().to_string();
    serde_json::json!({
        "alert_id": format!("load-{seq}"), "decision_id": format!("d-{seq}"),
        "decision_events": 1, "patient_id": format!("L-{seq:06}"),
        "encounter_id": format!("E-{seq:06}"),
        "location": format!("ward-{}/bed-{:02}", seq % 20, seq % 30), "rule": "news2",
        "kind": "raised", "level": "urgent", "score": 5, "previous_level": null,
        "previous_score": null,
        "criteria": [
            {"code": "resp_rate", "criterion": "resp_rate", "value": 24, "unit": "/min",
             "effective": now, "points": 2},
            {"code": "heart_rate", "criterion": "heart_rate", "value": 118, "unit": "/min",
             "effective": now, "points": 2},
            {"code": "temperature", "criterion": "temperature", "value": 38.6, "unit": "Cel",
             "effective": now, "points": 1}],
        "overdue": [], "message": "NEWS2 5 (medium): RR 24/min, HR 118/min, Temp 38.6 Cel",
        "first_raised_at": now, "observed_at": now, "emitted_at": now,
    })
    .to_string()
}

/// Signs in as the load user; returns the cookie.
pub(crate) async fn sign_in(port: u16) -> Result<String, Error> {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    let body = "user=load&password=load";
    s.write_all(
        format!(
            "POST /login HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )
    .await?;
    let mut reply = String::new();
    s.read_to_string(&mut reply).await?;
    reply
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .and_then(|c| c.split(';').next())
        .map(str::to_owned)
        .ok_or_else(|| format!("sign-in refused: {}", reply.lines().next().unwrap_or("")).into())
}

/// One stream: for each alert, when it first appeared (the newest card is the last one).
async fn client(
    port: u16,
    cookie: String,
    alerts: usize,
    stop: CancellationToken,
) -> Result<Vec<Option<Instant>>, Error> {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    s.write_all(
        format!("GET /api/stream HTTP/1.1\r\nHost: localhost\r\nCookie: {cookie}\r\n\r\n")
            .as_bytes(),
    )
    .await?;
    let mut lines = BufReader::with_capacity(1 << 20, s).lines();
    let mut seen = vec![None; alerts];
    let mut newest: Option<usize> = None;
    loop {
        let line = tokio::select! {
            () = stop.cancelled() => break,
            l = lines.next_line() => l?,
        };
        let Some(line) = line else { break };
        let Some(data) = line.strip_prefix("data: ") else {
            continue;
        };
        let at = Instant::now();
        let marker = "\"patient_id\":\"L-";
        let Some(i) = data.rfind(marker) else {
            continue;
        };
        let digits = &data[i + marker.len()..];
        let Some(seq) = digits.get(..6).and_then(|d| d.parse::<usize>().ok()) else {
            continue;
        };
        let from = newest.map_or(0, |n| n + 1);
        for slot in seen.iter_mut().take(seq + 1).skip(from) {
            *slot = Some(at);
        }
        newest = Some(newest.map_or(seq, |n| n.max(seq)));
        if seq + 1 == alerts {
            break;
        }
    }
    Ok(seen)
}

/// An in-process broker and a board on it with the user `load` (password `load`, role
/// quality) and no escalations, until the token is cancelled.
///
/// # Errors
///
/// When the broker or the board cannot start.
pub(crate) async fn start_board()
-> Result<(MockBroker, vigil_web::app::Running, CancellationToken), Error> {
    let broker = MockBroker::start(1)?;
    broker.create_topic("alerts", 1)?;
    broker.create_topic("actions", 1)?;
    let brokers = broker.bootstrap_servers();
    let mut raw = Config::default();
    raw.kafka.brokers = brokers.clone();
    raw.kafka.alerts_topic = "alerts".into();
    raw.board.actions_topic = "actions".into();
    raw.board.listen = "127.0.0.1:0".into();
    raw.board.escalate_minutes = [0, 0, 0];
    raw.board.action_key_file = vigil_testkit::action_key_file()?.display().to_string();
    raw.board.users.push(BoardUser {
        name: "load".into(),
        role: "quality".into(),
        password_hash: vigil_web::auth::hash_password("load")?,
    });
    let settings = raw.validate()?;
    let stop = CancellationToken::new();
    let board = vigil_web::app::start(&settings.kafka, &settings.board, stop.clone()).await?;
    Ok((broker, board, stop))
}

/// Runs the board load: `clients` streams, `alerts` alerts at `rate` per second.
///
/// # Errors
///
/// When the broker, the board or a client cannot start.
pub async fn run(clients: usize, alerts: usize, rate: f64) -> Result<BoardReport, Error> {
    let (broker, board, stop) = start_board().await?;
    let brokers = broker.bootstrap_servers();
    let port = board.addr.port();
    let cookie = sign_in(port).await?;

    let client_stop = stop.child_token();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        tasks.push(tokio::spawn(client(
            port,
            cookie.clone(),
            alerts,
            client_stop.clone(),
        )));
    }
    // Let every stream receive its first (empty) board.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("linger.ms", "0")
        .create()?;
    let published: Arc<Mutex<Vec<Option<Instant>>>> = Arc::new(Mutex::new(vec![None; alerts]));
    let start = Instant::now();
    for seq in 0..alerts {
        let due = start + Duration::from_secs_f64(seq as f64 / rate);
        tokio::time::sleep_until(due.into()).await;
        let json = alert(seq);
        let key = format!("L-{seq:06}");
        if let Ok(mut p) = published.lock() {
            p[seq] = Some(Instant::now());
        }
        producer
            .send(
                FutureRecord::to("alerts").key(&key).payload(&json),
                Duration::from_secs(10),
            )
            .await
            .map_err(|(e, _)| e)?;
    }
    // Wait for the clients to see the last alert (at most 30 s).
    let deadline = tokio::time::sleep(Duration::from_secs(30));
    tokio::pin!(deadline);
    let mut results = Vec::new();
    for t in tasks {
        tokio::select! {
            r = t => results.push(r??),
            () = &mut deadline => { client_stop.cancel(); }
        }
    }
    let published = published.lock().map(|p| p.clone()).unwrap_or_default();
    let (mut all, mut full, mut seen) = (Vec::new(), Vec::new(), 0);
    for r in &results {
        for (seq, at) in r.iter().enumerate() {
            if let (Some(at), Some(sent)) = (at, published[seq]) {
                let ms = at.saturating_duration_since(sent).as_secs_f64() * 1000.0;
                all.push(ms);
                if seq >= alerts / 2 {
                    full.push(ms);
                }
                seen += 1;
            }
        }
    }

    // The whole board with every alert active.
    let mut gets = Vec::new();
    let mut bytes = 0;
    for _ in 0..50 {
        let t = Instant::now();
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
        s.write_all(
            format!(
                "GET /api/board HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nCookie: {cookie}\r\n\r\n"
            )
            .as_bytes(),
        )
        .await?;
        let mut reply = Vec::new();
        s.read_to_end(&mut reply).await?;
        gets.push(t.elapsed().as_secs_f64() * 1000.0);
        bytes = reply
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map_or(0, |h| reply.len() - h - 4);
    }
    stop.cancel();
    let _ = board.task.await;
    drop(broker);
    Ok(BoardReport {
        clients,
        alerts,
        seen,
        latency_ms: percentiles(all),
        latency_full_ms: percentiles(full),
        board_get_ms: percentiles(gets),
        board_bytes: bytes,
    })
}
