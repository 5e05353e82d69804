//! The board in headless Chromium with many active alerts (BENCHMARKS.md, "The board"):
//! how long the page takes to draw the whole board, how long after its publication a new
//! alert shows on the page, and how long an accept takes to come back as "owned by".
//! Needs Debian's chromium and chromium-driver. `cargo bench -p vigil-web --bench browser
//! [-- ALERTS]` (1,000 by default).

#[allow(dead_code)] // the benchmark uses part of what the test uses
#[path = "../tests/common/browser.rs"]
mod browser;

use std::time::Duration;

use browser::{browser, chromedriver, click, sign_in, wait_text};
use rdkafka::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};
use tokio_util::sync::CancellationToken;
use vigil_stream::config::{BoardUser, Config};
use vigil_testkit::MockBroker;
use vigil_web::app::wall_clock;

fn alert(seq: usize) -> String {
    let now = wall_clock().to_string();
    serde_json::json!({
        "alert_id": format!("b-{seq}"), "decision_id": format!("d-{seq}"),
        "patient_id": format!("B-{seq:06}"), "encounter_id": format!("E-{seq:06}"),
        "location": format!("ward-{}/bed-{:02}", seq % 20, seq % 30), "rule": "news2",
        "kind": "raised", "level": "urgent", "score": 5,
        "criteria": [
            {"code": "resp_rate", "value": 24, "unit": "/min", "effective": now, "points": 2},
            {"code": "heart_rate", "value": 118, "unit": "/min", "effective": now, "points": 2}],
        "overdue": [], "message": "NEWS2 5 (medium): RR 24/min, HR 118/min",
        "first_raised_at": now, "emitted_at": now,
    })
    .to_string()
}

fn percentiles(mut v: Vec<f64>) -> String {
    v.sort_by(f64::total_cmp);
    let at = |q: f64| v[((v.len() as f64 - 1.0) * q).round() as usize];
    format!(
        "median {:.0} ms, max {:.0} ms ({} runs)",
        at(0.5),
        v[v.len() - 1],
        v.len()
    )
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let alerts: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(1000);
    let broker = MockBroker::start(1).expect("a broker");
    broker.create_topic("alerts", 1).expect("topic");
    broker.create_topic("actions", 1).expect("topic");
    let brokers = broker.bootstrap_servers();
    let mut raw = Config::default();
    raw.kafka.brokers = brokers.clone();
    raw.kafka.alerts_topic = "alerts".into();
    raw.board.actions_topic = "actions".into();
    raw.board.listen = "127.0.0.1:0".into();
    raw.board.escalate_minutes = [0, 0, 0];
    raw.board.action_key_file = vigil_testkit::action_key_file()
        .expect("a key file")
        .display()
        .to_string();
    raw.board.users.push(BoardUser {
        name: "nina".into(),
        role: "nurse".into(),
        password_hash: vigil_web::auth::hash_password("nina-pw").expect("a hash"),
    });
    let s = raw.validate().expect("valid");
    let stop = CancellationToken::new();
    let board = vigil_web::app::start(&s.kafka, &s.board, stop.clone())
        .await
        .expect("the board");
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .create()
        .expect("a producer");
    let send = |seq: usize| {
        let producer = producer.clone();
        async move {
            producer
                .send(
                    FutureRecord::to("alerts").key("k").payload(&alert(seq)),
                    Duration::from_secs(10),
                )
                .await
                .expect("published");
        }
    };
    for seq in 0..alerts {
        send(seq).await;
    }
    let driver = chromedriver();
    let c = browser(&driver).await;
    let base = format!("http://127.0.0.1:{}/", board.addr.port());
    sign_in(&c, &base, "nina").await;
    let last = format!(r#"article[data-patient="B-{:06}"]"#, alerts - 1);
    wait_text(&c, &last, "not accepted").await;
    let cards = c
        .execute(
            "return document.querySelectorAll('article.card').length",
            vec![],
        )
        .await
        .expect("runs");
    println!("board page with {cards} cards");

    // Drawing the whole board (what the page does on every update).
    let mut draws = Vec::new();
    for _ in 0..10 {
        let ms = c
            .execute(
                "const t = performance.now(); render(lastBoard); return performance.now() - t;",
                vec![],
            )
            .await
            .expect("runs");
        draws.push(ms.as_f64().unwrap_or(f64::NAN));
    }
    println!("drawing {cards} cards: {}", percentiles(draws));

    // A new alert: from its publication to its card on the page (the page notes when the
    // card appears; both clocks are this machine's).
    let mut shown = Vec::new();
    for i in 0..10 {
        let seq = alerts + i;
        let script = format!(
            r#"const done = arguments[0];
                   const seen = () => document.querySelector('article[data-patient="B-{seq:06}"]');
                   new MutationObserver((_, o) => {{ if (seen()) {{ o.disconnect(); done(Date.now()); }} }})
                     .observe(document.getElementById("board"), {{childList: true, subtree: true}});"#
        );
        let watch = c.execute_async(&script, vec![]);
        let published = async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let at = wall_clock().as_millis();
            send(seq).await;
            at
        };
        let (seen, published) = tokio::join!(watch, published);
        let seen = seen.expect("runs").as_f64().unwrap_or(f64::NAN);
        shown.push(seen - published as f64);
    }
    println!(
        "a new alert on a board of {}+ cards, publication to card: {}",
        alerts,
        percentiles(shown)
    );

    // Accepting a card: the click, the action topic and back, to "owned by".
    let mut accepts = Vec::new();
    for i in 0..5 {
        let css = format!(r#"article[data-patient="B-{i:06}"]"#);
        let t = std::time::Instant::now();
        click(&c, &format!("{css} button.accept")).await;
        wait_text(&c, &css, "owned by nina").await;
        accepts.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    println!(
        "accept on a board of {}+ cards, click to \"owned by\": {}",
        alerts,
        percentiles(accepts)
    );
    c.close().await.expect("closed");
    stop.cancel();
    let _ = board.task.await;
}
