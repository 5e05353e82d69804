//! `vigil load board-attack`: the rapid-response board as an attacker and a crowd would
//! use it, with its memory and its answer time measured at each step (SECURITY.md and
//! BENCHMARKS.md record the figures).
//!
//! One board on an in-process broker (`boardload::start_board`), then, in turn:
//!
//! 1. **idle**: `/healthz` answer times (fresh connection each);
//! 2. **streams**: `streams` signed-in live streams (`/api/stream`) held open;
//! 3. **slow**: `slow` connections that send half a request head and stop, while the
//!    streams stay open; then as many again beyond `[board] max_connections` (refused);
//!    then the time until the board has closed every slow one;
//! 4. **flood**: `floods` parallel sign-in floods for `flood_seconds`, each attempt a new
//!    made-up name with a wrong password from one of 254 loopback addresses
//!    (127.0.1.1-254), so that the per-address backoff lets each address try a few
//!    passwords and the password checks themselves are loaded;
//! 5. **big names**: 40 sign-ins with a 1 MB user name (what grew the process by 90 MB).
//!
//! At each step: `/healthz` p50, p99 and max while the load is on, the process's resident
//! memory (`VmRSS`, the board and every client together: they share this process), and
//! the board's own counters from its `/metrics`. Everything shares this machine's cores.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use crate::boardload::{percentiles, sign_in, start_board};

type Error = Box<dyn std::error::Error + Send + Sync>;

/// One step's figures.
#[derive(Clone, Debug)]
pub struct Step {
    /// What was going on.
    pub name: String,
    /// `/healthz` answer time in milliseconds: p50, p99, max.
    pub healthz_ms: (f64, f64, f64),
    /// `/healthz` requests not answered (the connection closed at once: the board had
    /// its most connections), of those sent.
    pub unanswered: (usize, usize),
    /// Resident memory of the process, MiB.
    pub rss_mib: f64,
    /// The board's connection gauge and counters at the end of the step.
    pub counters: String,
}

/// The process's resident memory in MiB (Linux), or NaN.
fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// One request on a fresh connection; the status code (0 when there was no answer).
async fn status_of(port: u16, request: &[u8]) -> u16 {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)).await else {
        return 0;
    };
    if s.write_all(request).await.is_err() {
        return 0;
    }
    let mut head = [0u8; 12];
    match s.read_exact(&mut head).await {
        Ok(_) => std::str::from_utf8(&head[9..12])
            .ok()
            .and_then(|c| c.parse().ok())
            .unwrap_or(0),
        Err(_) => 0,
    }
}

/// `n` `/healthz` requests one after another: the times in ms of those answered, and how
/// many were sent.
async fn healthz(port: u16, n: usize) -> (Vec<f64>, usize) {
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let code = status_of(
            port,
            b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        )
        .await;
        if code == 200 {
            times.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    (times, n)
}

/// The board's `vigil_board_*` samples, one line.
async fn counters(port: u16) -> String {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)).await else {
        return String::new();
    };
    let _ = s
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await;
    let mut text = String::new();
    let _ = s.read_to_string(&mut text).await;
    text.lines()
        .filter(|l| {
            l.starts_with("vigil_board_")
                && !l.ends_with(" 0")
                && (l.contains("connections") || l.contains("logins"))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The board's open connections, from its gauge.
async fn open_connections(port: u16) -> u64 {
    counters(port)
        .await
        .split(", ")
        .find_map(|l| l.strip_prefix("vigil_board_connections "))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

async fn step(name: &str, port: u16, (samples, sent): (Vec<f64>, usize)) -> Step {
    Step {
        name: name.to_owned(),
        unanswered: (sent - samples.len(), sent),
        healthz_ms: percentiles(samples),
        rss_mib: rss_mib(),
        counters: counters(port).await,
    }
}

/// A live stream held open, reading (and dropping) what it is sent until `stop`.
async fn stream(port: u16, cookie: String, stop: CancellationToken) {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)).await else {
        return;
    };
    let request =
        format!("GET /api/stream HTTP/1.1\r\nHost: localhost\r\nCookie: {cookie}\r\n\r\n");
    if s.write_all(request.as_bytes()).await.is_err() {
        return;
    }
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            r = s.read(&mut buf) => match r {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            },
        }
    }
}

/// A connection that sends half a request head and waits; returns when the board
/// closes it.
async fn slow(port: u16) -> Option<Instant> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
    let _ = s.write_all(b"GET /healthz HTTP/1.1\r\nHost: local").await;
    let mut buf = [0u8; 64];
    loop {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => return Some(Instant::now()),
            Ok(_) => {}
        }
    }
}

/// Sign-in attempts with made-up names and wrong passwords from rotating loopback
/// addresses until `stop`; the count of each answer (401, 429, 503, other).
async fn flood(port: u16, seed: u32, stop: CancellationToken) -> [u64; 4] {
    let mut counts = [0u64; 4];
    let mut i = seed;
    while !stop.is_cancelled() {
        i = i.wrapping_add(1);
        let source = std::net::Ipv4Addr::new(127, 0, 1, (i % 254 + 1) as u8);
        let body = format!("user=nobody{seed}x{i}&password=guess{i}");
        let request = format!(
            "POST /login HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let code = async {
            let socket = tokio::net::TcpSocket::new_v4().ok()?;
            socket.bind((source, 0).into()).ok()?;
            let to = std::net::SocketAddr::from(([127, 0, 0, 1], port));
            let mut s = socket.connect(to).await.ok()?;
            s.write_all(request.as_bytes()).await.ok()?;
            let mut head = [0u8; 12];
            s.read_exact(&mut head).await.ok()?;
            std::str::from_utf8(&head[9..12]).ok()?.parse::<u16>().ok()
        }
        .await;
        let slot = match code {
            Some(401) => 0,
            Some(429) => 1,
            Some(503) => 2,
            _ => 3,
        };
        counts[slot] += 1;
    }
    counts
}

/// Runs the attack; one [`Step`] per stage, and the flood's answers (401, 429, 503,
/// other).
///
/// # Errors
///
/// When the broker or the board cannot start or the sign-in fails.
pub async fn run(
    streams: usize,
    slow_clients: usize,
    floods: usize,
    flood_seconds: u64,
) -> Result<(Vec<Step>, [u64; 4]), Error> {
    let (broker, board, stop) = start_board().await?;
    let port = board.addr.port();
    let cookie = sign_in(port).await?;
    let mut steps = Vec::new();
    steps.push(step("idle", port, healthz(port, 200).await).await);

    let clients = stop.child_token();
    for _ in 0..streams {
        tokio::spawn(stream(port, cookie.clone(), clients.clone()));
    }
    let opened = Instant::now();
    while open_connections(port).await < streams as u64
        && opened.elapsed() < Duration::from_secs(30)
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    steps.push(
        step(
            &format!("{streams} live streams"),
            port,
            healthz(port, 200).await,
        )
        .await,
    );

    let started = Instant::now();
    let slow_tasks: Vec<_> = (0..slow_clients)
        .map(|_| tokio::spawn(slow(port)))
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let during = healthz(port, 100).await;
    steps.push(step(&format!("+ {slow_clients} slow clients"), port, during).await);
    let mut closed = Vec::new();
    for t in slow_tasks {
        if let Ok(Some(at)) = t.await {
            closed.push(at.duration_since(started).as_secs_f64());
        }
    }
    let last_closed = closed.iter().copied().fold(0.0, f64::max);
    steps.push(
        step(
            &format!("slow clients all closed after {last_closed:.1} s"),
            port,
            healthz(port, 100).await,
        )
        .await,
    );

    let flooding = stop.child_token();
    let flooders: Vec<_> = (0..floods)
        .map(|k| tokio::spawn(flood(port, k as u32 * 1000, flooding.clone())))
        .collect();
    let flood_start = Instant::now();
    let mut during = (Vec::new(), 0);
    while flood_start.elapsed() < Duration::from_secs(flood_seconds) {
        let (times, sent) = healthz(port, 20).await;
        during.0.extend(times);
        during.1 += sent;
    }
    flooding.cancel();
    let mut answers = [0u64; 4];
    for f in flooders {
        if let Ok(c) = f.await {
            for (a, b) in answers.iter_mut().zip(c) {
                *a += b;
            }
        }
    }
    steps.push(step(&format!("{floods} sign-in floods"), port, during).await);

    let big = "x".repeat(1 << 20);
    let body = format!("user={big}&password=guess");
    let request = format!(
        "POST /login HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    for _ in 0..40 {
        let _ = status_of(port, request.as_bytes()).await;
    }
    steps.push(
        step(
            "+ 40 sign-ins with 1 MB names",
            port,
            healthz(port, 100).await,
        )
        .await,
    );

    clients.cancel();
    stop.cancel();
    let _ = board.task.await;
    drop(broker);
    Ok((steps, answers))
}
