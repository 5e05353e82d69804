//! The board in a real browser: headless Chromium driven through chromedriver (Debian's
//! `chromium` and `chromium-driver`, which `.ci/run` installs), against two board
//! instances following one Kafka-protocol broker. A nurse signs in, watches alerts arrive
//! live, accepts one, dismisses another with a reason, sees an unaccepted one escalate,
//! and is refused when she tries to stop alerts for an encounter; a charge nurse on the
//! second instance sees the same state and may stop them. Screenshots of the board and of
//! a patient page are written to `target/tmp/screenshots/` (the documentation shows them).

#[path = "common/browser.rs"]
mod browser;

use std::time::Duration;

use browser::{browser, chromedriver, click, sign_in, wait_gone, wait_text};
use fantoccini::Locator;
use rdkafka::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};
use tokio_util::sync::CancellationToken;
use vigil_score::Span;
use vigil_stream::config::{BoardUser, Config, Settings};
use vigil_testkit::MockBroker;
use vigil_web::auth::hash_password;

fn settings(brokers: &str) -> Settings {
    let mut raw = Config::default();
    raw.kafka.brokers = brokers.into();
    raw.kafka.alerts_topic = "alerts".into();
    raw.board.actions_topic = "actions".into();
    raw.board.listen = "127.0.0.1:0".into();
    raw.board.action_key_file = vigil_testkit::action_key_file()
        .expect("a key file")
        .display()
        .to_string();
    // Times in the hospital's zone; the ward as the hospital names it.
    raw.board.time_zone = "Europe/London".into();
    raw.board
        .ward_names
        .insert("ward-3".into(), "Ward 3, acute medicine".into());
    for (name, role) in [
        ("nina", "nurse"),
        ("carl", "charge_nurse"),
        ("quinn", "quality"),
    ] {
        raw.board.users.push(BoardUser {
            name: name.into(),
            role: role.into(),
            password_hash: hash_password(&format!("{name}-pw")).expect("a hash"),
        });
    }
    let mut s = raw.validate().expect("valid settings");
    // Emergency alerts nobody accepts escalate after 3 s here.
    s.board.rules.escalate_after = [None, None, Some(Span::seconds(3))];
    s
}

fn alert(id: &str, patient: &str, bed: &str, level: &str, rule: &str, score: u32) -> String {
    let now = vigil_web::app::wall_clock().to_string();
    serde_json::json!({
        "alert_id": id, "decision_id": format!("d-{id}"), "decision_events": 1,
        "patient_id": patient, "encounter_id": format!("E-{patient}"),
        "location": format!("ward-3/{bed}"), "rule": rule, "kind": "raised", "level": level,
        "score": score, "previous_level": null, "previous_score": null,
        "criteria": [{"code": "resp_rate", "criterion": "resp_rate >= 25", "value": 28,
                      "unit": "/min", "effective": now, "points": 3},
                     {"code": "sbp", "value": 95, "unit": "mm[Hg]", "effective": now, "points": 2},
                     {"code": "temperature", "value": 38.6, "unit": "Cel", "effective": now, "points": 1},
                     {"code": "on_oxygen", "value": true, "unit": "boolean", "effective": now, "points": 2},
                     {"code": "consciousness", "value": "C", "unit": "ACVPU", "effective": now, "points": 3}],
        "overdue": [], "message": format!("{rule} {score}: RR 28/min"),
        "first_raised_at": now, "observed_at": now, "emitted_at": now,
    })
    .to_string()
}

async fn publish(producer: &FutureProducer, json: &str) {
    producer
        .send(
            FutureRecord::to("alerts").key("k").payload(json),
            Duration::from_secs(10),
        )
        .await
        .expect("published");
}

fn screenshot(name: &str, png: &[u8]) {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
    std::fs::create_dir_all(&dir).expect("a directory");
    std::fs::write(dir.join(name), png).expect("written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nurses_see_own_dismiss_and_escalate_alerts_in_a_real_browser() {
    let broker = MockBroker::start(1).expect("a broker");
    broker.create_topic("alerts", 1).expect("topic");
    broker.create_topic("actions", 1).expect("topic");
    let brokers = broker.bootstrap_servers();
    let s = settings(&brokers);
    let stop = CancellationToken::new();
    let a = vigil_web::app::start(&s.kafka, &s.board, stop.clone())
        .await
        .expect("board A");
    let b = vigil_web::app::start(&s.kafka, &s.board, stop.clone())
        .await
        .expect("board B");
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .create()
        .expect("a producer");

    let driver = chromedriver();
    let c = browser(&driver).await;
    // Board A at 127.0.0.1, board B at localhost: the browser keeps their cookies apart.
    let base_a = format!("http://127.0.0.1:{}/", a.addr.port());
    let base_b = format!("http://localhost:{}/", b.addr.port());
    sign_in(&c, &base_a, "nina").await;
    wait_text(&c, "#who", "nina (nurse)").await;

    // An alert arrives live, without reloading the page.
    publish(
        &producer,
        &alert("a1", "P-ACC", "bed-1", "advisory", "mews", 5),
    )
    .await;
    let card = wait_text(&c, r#"article[data-patient="P-ACC"]"#, "not accepted").await;
    assert!(card.contains("! advisory (low priority)"), "{card}");
    assert!(
        card.contains("MEWS 5") && card.contains("ward-3/bed-1"),
        "{card}"
    );
    // Details on demand, in clinical names and units, each reading with when it was
    // taken on the same clock as the card's waiting time.
    click(&c, r#"article[data-patient="P-ACC"] button.more"#).await;
    let details = wait_text(
        &c,
        r#"article[data-patient="P-ACC"] .details"#,
        "RR 28 /min",
    )
    .await;
    for shown in [
        "SBP 95 mmHg",
        "Temp 38.6°C",
        "on oxygen",
        "ACVPU C",
        "taken ",
        "just now",
        "-24 h",
    ] {
        assert!(details.contains(shown), "{shown} in {details}");
    }
    for code in ["resp_rate", "mm[Hg]", "Cel", "boolean", " AM", " PM"] {
        assert!(!details.contains(code), "{code} in {details}");
    }
    click(&c, r#"article[data-patient="P-ACC"] button.more"#).await;
    let heading = wait_text(&c, "section.ward h2", "Ward 3, acute medicine").await;
    assert!(!heading.contains("Ward ward-3"), "{heading}");
    // Accept it: everyone sees the owner.
    click(&c, r#"article[data-patient="P-ACC"] button.accept"#).await;
    wait_text(&c, r#"article[data-patient="P-ACC"]"#, "owner nina").await;

    // Dismiss another with a reason from the list, on its patient page.
    publish(
        &producer,
        &alert("a2", "P-DIS", "bed-2", "urgent", "news2", 6),
    )
    .await;
    wait_text(&c, r#"article[data-patient="P-DIS"]"#, "!! urgent").await;
    click(&c, r#"article[data-patient="P-DIS"] button.open"#).await;
    wait_text(&c, "#patient-title", "P-DIS").await;
    c.find(Locator::Css(
        r#"#dismiss-reason option[value="artefact or measurement error"]"#,
    ))
    .await
    .expect("the reason")
    .click()
    .await
    .expect("chosen");
    click(&c, "#act-dismiss button").await;
    wait_gone(&c, r#"article[data-patient="P-DIS"]"#).await;
    let state = wait_text(&c, "#patient-state", "dismissed").await;
    assert!(state.contains("artefact or measurement error"), "{state}");
    wait_text(&c, "#history", "dismiss by nina (nurse)").await;
    click(&c, "#patient-close").await;

    // An emergency nobody accepts escalates (after 3 s here). It was urgent before: the
    // card says what changed, and the trend has both scores.
    publish(
        &producer,
        &alert("a3u", "P-ESC", "bed-3", "urgent", "news2", 6),
    )
    .await;
    wait_text(&c, r#"article[data-patient="P-ESC"]"#, "!! urgent").await;
    let mut escalated: serde_json::Value =
        serde_json::from_str(&alert("a3", "P-ESC", "bed-3", "emergency", "news2", 9))
            .expect("JSON");
    escalated["kind"] = "escalated".into();
    escalated["previous_level"] = "urgent".into();
    escalated["previous_score"] = 6.into();
    publish(&producer, &escalated.to_string()).await;
    wait_text(&c, r#"article[data-patient="P-ESC"]"#, "!!! emergency").await;
    wait_text(&c, r#"article[data-patient="P-ESC"]"#, "tier 1").await;
    click(&c, r#"article[data-patient="P-ESC"] button.more"#).await;
    wait_text(
        &c,
        r#"article[data-patient="P-ESC"]"#,
        "urgent → emergency, score 6 → 9",
    )
    .await;
    click(&c, r#"article[data-patient="P-ESC"] button.more"#).await;
    // A busy ward reads at a glance: at least 12 patients on a 1920x1080 screen.
    for i in 0..12 {
        let level = ["advisory", "urgent"][i % 2];
        let id = format!("busy-{i}");
        let json = alert(
            &id,
            &format!("P-B{i:02}"),
            &format!("bed-{:02}", i + 10),
            level,
            "news2",
            5,
        );
        publish(&producer, &json).await;
    }
    wait_text(&c, r#"article[data-patient="P-B11"]"#, "NEWS2 5").await;
    let fit = c
        .execute(
            "return [...document.querySelectorAll('article.card')]
               .filter((a) => a.getBoundingClientRect().bottom <= window.innerHeight).length",
            vec![],
        )
        .await
        .expect("runs");
    screenshot("board.png", &c.screenshot().await.expect("a screenshot"));
    assert!(
        fit.as_u64().unwrap_or(0) >= 12,
        "{fit} patients fit on the screen"
    );

    // A nurse is not offered "stop", and the server refuses it when she asks anyway.
    click(&c, r#"article[data-patient="P-ESC"] button.open"#).await;
    wait_text(&c, "#history", "escalate by vigil (system)").await;
    let stop_shown = c
        .execute("return !document.getElementById('act-stop').hidden", vec![])
        .await
        .expect("runs");
    assert_eq!(stop_shown, serde_json::json!(false));
    let refused = c
        .execute_async(
            r#"const done = arguments[0];
               fetch("/api/actions", {method: "POST", credentials: "same-origin",
                 headers: {"Content-Type": "application/json", "x-csrf-token": session.csrf},
                 body: JSON.stringify({patient_id: "P-ESC", kind: "stop"})})
               .then(async (r) => done([r.status, await r.text()]));"#,
            vec![],
        )
        .await
        .expect("runs");
    assert_eq!(
        refused,
        serde_json::json!([403, "a user in the role Nurse may not stop"])
    );
    screenshot("patient.png", &c.screenshot().await.expect("a screenshot"));

    // The second instance shows the same state to a charge nurse, who may stop alerts.
    sign_in(&c, &base_b, "carl").await;
    wait_text(&c, r#"article[data-patient="P-ACC"]"#, "owner nina").await;
    wait_text(&c, r#"article[data-patient="P-ESC"]"#, "tier 1").await;
    wait_gone(&c, r#"article[data-patient="P-DIS"]"#).await;
    click(&c, r#"article[data-patient="P-ESC"] button.open"#).await;
    wait_text(&c, "#patient-title", "P-ESC").await;
    click(&c, "#act-stop").await;
    wait_text(&c, "#patient-state", "alerts stopped for this encounter").await;
    wait_text(&c, "#history", "stop by carl (charge_nurse)").await;

    // Back on the first instance, the nurse sees the stop too.
    c.goto(&base_a).await.expect("board A");
    wait_text(&c, "#live", "live").await;
    click(&c, r#"article[data-patient="P-ESC"] button.open"#).await;
    wait_text(&c, "#patient-state", "alerts stopped for this encounter").await;

    c.close().await.expect("closed");
    stop.cancel();
    a.task.await.expect("A stopped").expect("A served");
    b.task.await.expect("B stopped").expect("B served");
}

/// A run-in's silent alerts in a real browser: quality staff see them apart, marked as
/// not paged and with nothing to act on; a nurse on the same broker sees only the live
/// alert.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quality_staff_see_a_run_ins_silent_alerts_and_nurses_never_do() {
    let broker = MockBroker::start(1).expect("a broker");
    broker.create_topic("alerts", 1).expect("topic");
    broker.create_topic("actions", 1).expect("topic");
    let brokers = broker.bootstrap_servers();
    let s = settings(&brokers);
    let stop = CancellationToken::new();
    let a = vigil_web::app::start(&s.kafka, &s.board, stop.clone())
        .await
        .expect("board A");
    let b = vigil_web::app::start(&s.kafka, &s.board, stop.clone())
        .await
        .expect("board B");
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .create()
        .expect("a producer");
    let mut silent: serde_json::Value =
        serde_json::from_str(&alert("s1", "P-RUN", "bed-4", "advisory", "risk", 4)).expect("JSON");
    silent["silent"] = true.into();
    publish(&producer, &silent.to_string()).await;
    publish(
        &producer,
        &alert("l1", "P-LIVE", "bed-5", "urgent", "news2", 6),
    )
    .await;

    let driver = chromedriver();
    let c = browser(&driver).await;
    let base_a = format!("http://127.0.0.1:{}/", a.addr.port());
    let base_b = format!("http://localhost:{}/", b.addr.port());
    sign_in(&c, &base_a, "quinn").await;
    wait_text(&c, "#who", "quinn (quality)").await;
    let section = wait_text(&c, "section.silent-run", "Silent run-in: 1 (not paged)").await;
    assert!(
        section.contains("SILENT RUN-IN: nobody was paged"),
        "{section}"
    );
    assert!(section.contains("P-RUN"), "{section}");
    // Nothing on a silent card can be acted on.
    let accept = c
        .find_all(Locator::Css(r#"section.silent-run button.accept"#))
        .await
        .expect("a query");
    assert!(accept.is_empty());
    wait_text(&c, r#"article[data-patient="P-LIVE"]"#, "!! urgent").await;

    // A nurse sees the live alert and nothing of the run-in.
    sign_in(&c, &base_b, "nina").await;
    wait_text(&c, r#"article[data-patient="P-LIVE"]"#, "!! urgent").await;
    let page = c
        .find(Locator::Css("#board"))
        .await
        .expect("the board")
        .text()
        .await
        .expect("its text");
    assert!(
        !page.contains("P-RUN") && !page.contains("Silent"),
        "{page}"
    );
    c.close().await.expect("closed");
    stop.cancel();
}
