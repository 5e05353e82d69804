//! Alert semantics through the service: one test per defect of the issue "Alerts a nurse
//! can trust" (each failed on the code before it), driven through the Kafka protocol as a
//! hospital's feed would drive it.

use std::time::Duration;

use serde_json::{Value, json};
use vigil_score::{Span, Timestamp};

use super::{Harness, alerts_of, read_until, send_all};

type Message = (Option<String>, String);

fn event(patient: &str, code: &str, value: Value, at: Timestamp, id: &str) -> Message {
    let e = json!({"patient_id": patient, "location": "ward-3/bed-2", "code": code,
        "value": value, "effective": at.to_string(), "id": id});
    (Some(patient.to_owned()), e.to_string())
}

/// A deteriorating patient's vital-sign set at `at`, one message per reading (five of
/// them, as the issue's monitor feed sent it), ids unique to the set.
fn septic_set(patient: &str, at: Timestamp) -> Vec<Message> {
    [
        ("resp_rate", json!(30)),
        ("spo2", json!(88)),
        ("sbp", json!(85)),
        ("heart_rate", json!(140)),
        ("temperature", json!(39.2)),
    ]
    .into_iter()
    .map(|(code, v)| {
        let id = format!("{patient}-{code}-{}", at.as_millis());
        event(patient, code, v, at, &id)
    })
    .collect()
}

fn t(text: &str) -> Timestamp {
    Timestamp::parse_rfc3339(text).expect("time")
}

/// A harness whose batches wait long enough to take a whole set that was sent before the
/// service started (the set's messages are then fetched together).
fn harness() -> Harness {
    let mut h = Harness::new(1);
    h.config.service.batch_max_wait_ms = 300;
    h
}

async fn alerts_until(
    h: &Harness,
    done: impl Fn(&[(Value, std::collections::HashMap<String, String>)]) -> bool,
) -> Vec<Value> {
    let reader = h.reader(&h.config.kafka.alerts_topic);
    read_until(&reader, Duration::from_secs(120), done)
        .await
        .into_iter()
        .map(|(v, _)| v)
        .collect()
}

async fn dead_letters(h: &Harness, count: usize) -> Vec<String> {
    let reader = h.reader(&h.config.kafka.dlq_topic);
    read_until(&reader, Duration::from_secs(30), |s| s.len() >= count)
        .await
        .into_iter()
        .map(|(_, headers)| headers.get("vigil-error").cloned().unwrap_or_default())
        .collect()
}

fn kinds(alerts: &[Value], patient: &str) -> Vec<(String, String, String)> {
    alerts
        .iter()
        .filter(|a| a["patient_id"] == patient)
        .map(|a| {
            (
                a["rule"].as_str().unwrap_or("?").to_owned(),
                a["kind"].as_str().unwrap_or("?").to_owned(),
                a["level"].as_str().unwrap_or("?").to_owned(),
            )
        })
        .collect()
}

/// Defect 1: emergency alerts from vital signs 8 h old were published as `resolved` when
/// only a normal lactate arrived.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_vital_signs_make_alerts_overdue_never_resolved() {
    let h = harness();
    let mut feed = septic_set("D1", t("2026-11-23T02:00:00Z"));
    feed.push(event(
        "D1",
        "lactate",
        json!(1.0),
        t("2026-11-23T10:00:00Z"),
        "D1-lac",
    ));
    send_all(&h, feed).await;
    let (stop, task) = h.start();
    let alerts = alerts_until(&h, |s| {
        s.iter()
            .filter(|(v, _)| v["patient_id"] == "D1" && v["kind"] == "overdue")
            .count()
            >= 3
    })
    .await;
    stop.cancel();
    task.await.expect("service stops");
    let got = kinds(&alerts, "D1");
    assert!(
        got.iter().all(|(_, kind, _)| kind != "resolved"),
        "a false all-clear: {got:?}"
    );
    let news2 = alerts_of_kind(&alerts, "D1", "news2", "overdue");
    assert_eq!(news2["level"], "emergency", "the alert stays at its level");
    assert_eq!(news2["first_raised_at"], "2026-11-23T02:00:00Z");
    assert_eq!(news2["overdue_since"], "2026-11-23T08:00:00.001Z");
    let overdue: Vec<&str> = news2["overdue"]
        .as_array()
        .expect("overdue list")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for p in ["resp_rate", "spo2", "sbp", "heart_rate", "temperature"] {
        assert!(overdue.contains(&p), "{p} not named overdue: {news2}");
    }
    assert!(
        news2["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("Overdue: NEWS2 emergency alert active since")),
        "{news2}"
    );
    for rule in ["qsofa", "sirs"] {
        alerts_of_kind(&alerts, "D1", rule, "overdue");
    }
}

fn alerts_of_kind<'a>(alerts: &'a [Value], patient: &str, rule: &str, kind: &str) -> &'a Value {
    alerts
        .iter()
        .find(|a| a["patient_id"] == patient && a["rule"] == rule && a["kind"] == kind)
        .unwrap_or_else(|| panic!("no {rule} {kind} for {patient}: {alerts:?}"))
}

/// Defect 2: a heart rate dated a year ahead was accepted, and the patient's next real
/// vital-sign set was counted as stale: no alert, no log line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reading_dated_in_the_future_is_rejected_and_blinds_no_one() {
    let h = harness();
    let now = vigil_stream::event::now();
    let year_ahead = now.plus(Span::hours(24 * 365));
    let mut feed = vec![event(
        "C1",
        "heart_rate",
        json!(72),
        year_ahead,
        "C1-future",
    )];
    // The real set, charted a minute ago.
    let charted = Timestamp::from_millis((now.as_millis() - 60_000) / 1000 * 1000);
    feed.extend(septic_set("C1", charted));
    send_all(&h, feed).await;
    let (stop, task) = h.start();
    let dead = dead_letters(&h, 1).await;
    let alerts = alerts_until(&h, |s| !alerts_of(s, "C1", "news2").is_empty()).await;
    stop.cancel();
    task.await.expect("service stops");
    assert_eq!(dead.len(), 1, "{dead:?}");
    let reason = &dead[0];
    assert!(
        reason.starts_with(&format!(
            "field `effective`: {year_ahead} (heart_rate) is 3153"
        )),
        "{reason}"
    );
    assert!(
        reason.contains("after the message was received at"),
        "{reason}"
    );
    assert!(
        reason.contains("[input] clock_tolerance_seconds"),
        "{reason}"
    );
    let news2 = alerts_of_kind(&alerts, "C1", "news2", "raised");
    assert_eq!(news2["level"], "emergency", "{news2}");
    assert_eq!(news2["observed_at"], charted.to_string());
}

/// Defect 3: five vital signs with one effective time, back to back, paged five times
/// (NEWS2 advisory, urgent and emergency in the same millisecond, plus SIRS and qSOFA).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vital_sign_set_is_one_decision_at_its_final_level() {
    let h = harness();
    send_all(&h, septic_set("S1", t("2026-11-23T10:00:00Z"))).await;
    let (stop, task) = h.start();
    let alerts = alerts_until(&h, |s| {
        s.iter().filter(|(v, _)| v["patient_id"] == "S1").count() >= 3
    })
    .await;
    stop.cancel();
    task.await.expect("service stops");
    let got = kinds(&alerts, "S1");
    let news2: Vec<_> = got.iter().filter(|(r, _, _)| r == "news2").collect();
    assert_eq!(
        news2,
        vec![&("news2".into(), "raised".into(), "emergency".into())],
        "{got:?}"
    );
    assert_eq!(got.len(), 3, "NEWS2, qSOFA and SIRS once each: {got:?}");
    // One decision: one id, its size, led by the highest level, each naming the others.
    let decision = &alerts[0]["decision_id"];
    assert!(
        decision.as_str().is_some_and(|d| d.len() == 32),
        "{decision}"
    );
    assert!(
        alerts
            .iter()
            .all(|a| a["decision_id"] == *decision && a["decision_events"] == 3)
    );
    assert_eq!(alerts[0]["rule"], "news2", "highest level first");
    let others: Vec<&str> = alerts[0]["other_active"]
        .as_array()
        .expect("other_active")
        .iter()
        .filter_map(|a| a["rule"].as_str())
        .collect();
    assert_eq!(others, ["qsofa", "sirs"]);
}

fn hl7(control: &str, pid: &str, time: &str, obx: &[&str]) -> String {
    let mut m = format!(
        "MSH|^~\\&|GW|ICU|VIGIL|HOSP|{time}+0000||ORU^R01|{control}|P|2.6\rPID|||{pid}\r\
         PV1||I|ICU^^07\rOBR|1||ORD-{time}|VITALS|||{time}+0000\r"
    );
    for (i, o) in obx.iter().enumerate() {
        m.push_str(&format!("OBX|{}|NM|{o}|||||F|||{time}+0000\r", i + 1));
    }
    m
}

/// Defect 3 (HL7): an ORU^R01 with four vital signs paged once per reading.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_hl7_result_with_four_vital_signs_is_one_decision() {
    let mut h = harness();
    h.config.kafka.format = "hl7v2".into();
    let oru = hl7(
        "M1",
        "H1^^^H^MR",
        "202611231000",
        &[
            "9279-1^RR^LN||30|/min",
            "8480-6^SBP^LN||85|mm[Hg]",
            "8867-4^HR^LN||140|/min",
            "59408-5^SpO2^LN||88|%",
        ],
    );
    send_all(&h, vec![(Some("H1".into()), oru)]).await;
    let (stop, task) = h.start();
    let alerts = alerts_until(&h, |s| !alerts_of(s, "H1", "news2").is_empty()).await;
    // Anything else of this decision is published with it.
    stop.cancel();
    task.await.expect("service stops");
    let news2 = alerts_of(
        &alerts
            .iter()
            .map(|a| (a.clone(), Default::default()))
            .collect::<Vec<_>>(),
        "H1",
        "news2",
    )
    .into_iter()
    .cloned()
    .collect::<Vec<_>>();
    assert_eq!(news2.len(), 1, "{news2:?}");
    assert_eq!(news2[0]["level"], "emergency");
}

/// Defect 4: the same observation id sent again with another value was dropped as a
/// duplicate without trace; a reused HL7 MSH-10 on a new set 30 minutes later was too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conflicting_correction_is_dead_lettered_and_a_reused_control_id_is_not_a_duplicate() {
    let h = harness();
    let at = t("2026-11-23T10:00:00Z");
    send_all(
        &h,
        vec![
            event("K1", "heart_rate", json!(80), at, "K1-hr"),
            event("K1", "heart_rate", json!(150), at, "K1-hr"),
            // A true redelivery stays a silent duplicate.
            event("K1", "heart_rate", json!(80), at, "K1-hr"),
        ],
    )
    .await;
    let (stop, task) = h.start();
    let dead = dead_letters(&h, 1).await;
    stop.cancel();
    task.await.expect("service stops");
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(
        dead[0],
        "field `id`: \"K1-hr\" is already held for this patient as heart_rate 80/min at \
         2026-11-23T10:00:00Z; this message says heart_rate 150/min at 2026-11-23T10:00:00Z \
         with status final; expected the same content for a redelivery, or status amended to \
         replace it"
    );

    let mut h = harness();
    h.config.kafka.format = "hl7v2".into();
    let normal = hl7(
        "CTRL-7",
        "H2^^^H^MR",
        "202611231000",
        &["9279-1^RR^LN||16|/min", "8867-4^HR^LN||80|/min"],
    );
    let worse = hl7(
        "CTRL-7",
        "H2^^^H^MR",
        "202611231030",
        &["9279-1^RR^LN||30|/min", "8867-4^HR^LN||140|/min"],
    );
    send_all(
        &h,
        vec![(Some("H2".into()), normal), (Some("H2".into()), worse)],
    )
    .await;
    let (stop, task) = h.start();
    let alerts = alerts_until(&h, |s| !alerts_of(s, "H2", "news2").is_empty()).await;
    stop.cancel();
    task.await.expect("service stops");
    let news2 = alerts_of_kind(&alerts, "H2", "news2", "raised");
    assert_eq!(news2["observed_at"], "2026-11-23T10:30:00Z", "{news2}");
}

/// Defect 5: an HL7 lactate with an empty OBX-6 was read as mmol/L, and a PID-3 with only
/// a `PI` identifier was taken as the patient although the configuration says `MR`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hl7_units_and_patients_are_never_guessed() {
    let mut h = harness();
    h.config.kafka.format = "hl7v2".into();
    let no_unit = hl7(
        "L1",
        "G1^^^H^MR",
        "202611231000",
        &["2524-7^Lactate^LN||18|"],
    );
    let pi_only = hl7(
        "L2",
        "998877^^^H^PI",
        "202611231000",
        &["8867-4^HR^LN||80|/min"],
    );
    send_all(
        &h,
        vec![
            (Some("G1".into()), no_unit),
            (Some("998877".into()), pi_only),
        ],
    )
    .await;
    let (stop, task) = h.start();
    let dead = dead_letters(&h, 2).await;
    stop.cancel();
    task.await.expect("service stops");
    assert!(
        dead.contains(
            &"OBX[1]-6: empty; lactate needs a unit (expected mmol/L or mg/dL); a unit is never guessed"
                .to_owned()
        ),
        "{dead:?}"
    );
    assert!(
        dead.contains(
            &"PID-3: holds identifier types \"PI\" but none of the configured MR (PID-3.5); \
              set [input] hl7_identifier_type to accept another type"
                .to_owned()
        ),
        "{dead:?}"
    );
}

/// Defect 6: an alert for NEWS2 computed with 4 of its 7 parameters missing read like any
/// other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_says_what_its_score_rests_on() {
    let h = harness();
    let at = t("2026-11-23T10:00:00Z");
    send_all(
        &h,
        vec![
            event("M1", "resp_rate", json!(26), at, "M1-rr"),
            event("M1", "heart_rate", json!(135), at, "M1-hr"),
            event("M1", "spo2", json!(97), at, "M1-spo2"),
        ],
    )
    .await;
    let (stop, task) = h.start();
    let alerts = alerts_until(&h, |s| !alerts_of(s, "M1", "news2").is_empty()).await;
    stop.cancel();
    task.await.expect("service stops");
    let news2 = alerts_of_kind(&alerts, "M1", "news2", "raised");
    assert_eq!(
        news2["coverage"],
        json!({"measured": 3, "of": 7,
               "missing": ["sbp", "temperature", "on_oxygen", "consciousness"]})
    );
    assert!(
        news2["message"].as_str().is_some_and(|m| m
            .contains("; 3 of 7 measured, missing: sbp, temperature, on_oxygen, consciousness")),
        "{news2}"
    );
    assert_eq!(news2["previous_level"], Value::Null);
    assert_eq!(news2["first_raised_at"], "2026-11-23T10:00:00Z");
}

/// Defect 1, when the feed stops altogether: an active alert whose vital signs go stale
/// is published as `overdue` without any further message, and never resolved. (Vital
/// signs are set to go stale after one minute here; the patient's event time advances
/// with the wall clock from the moment its last reading was received.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_feed_stops_an_alert_becomes_overdue_not_resolved() {
    let mut h = harness();
    h.config.engine.stale_vital_minutes = 1;
    h.config.service.overdue_check_ms = 500;
    let now = vigil_stream::event::now();
    let charted = Timestamp::from_millis((now.as_millis() - 5_000) / 1000 * 1000);
    send_all(&h, septic_set("Q1", charted)).await;
    let (stop, task) = h.start();
    let alerts = alerts_until(&h, |s| {
        s.iter()
            .any(|(v, _)| v["patient_id"] == "Q1" && v["kind"] == "overdue")
    })
    .await;
    stop.cancel();
    task.await.expect("service stops");
    let got = kinds(&alerts, "Q1");
    assert!(got.iter().all(|(_, kind, _)| kind != "resolved"), "{got:?}");
    let news2 = alerts_of_kind(&alerts, "Q1", "news2", "overdue");
    assert_eq!(news2["level"], "emergency");
    assert_eq!(news2["first_raised_at"], charted.to_string());
    assert!(
        news2["overdue"]
            .as_array()
            .is_some_and(|o| o.iter().any(|p| p == "resp_rate")),
        "{news2}"
    );
}
