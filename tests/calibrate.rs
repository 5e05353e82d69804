//! Going live at a new hospital, as its quality staff run it: a run-in's burden and
//! outcomes from the topics' exports (`vigil runin`), a threshold recommended for a target
//! burden (`vigil evaluate --target-episodes`), a model recalibrated to local stays
//! (`vigil recalibrate`) that a configuration then names by its sha256, and Vigil Risk
//! trained on a hospital's own export (`vigil train --format jsonl`).

use std::fmt::Write as _;
use std::path::PathBuf;

use crate::util::{first_stays, tmp_dir, vigil};

fn tmp(name: &str) -> PathBuf {
    tmp_dir(&format!("calibrate-{name}"))
}

fn alert(id: &str, patient: &str, rule: &str, kind: &str, level: &str, hour: u32) -> String {
    format!(
        r#"{{"alert_id":"{id}","decision_id":"{id}","patient_id":"{patient}","location":"{}/bed-1","rule":"{rule}","kind":"{kind}","level":"{level}","observed_at":"2026-01-01T{hour:02}:00:00Z","silent":true,"suppressed":null}}"#,
        if patient == "P1" { "ward-7" } else { "ward-3" }
    )
}

#[test]
fn a_run_in_reports_pages_episodes_and_time_in_alert_by_ward_and_its_outcomes() {
    let dir = tmp("runin");
    let mut obs = String::new();
    // P1 on ward-7 hourly from 00:00 to 23:00 (one patient-day); P2 on ward-3 to 11:00.
    for (patient, ward, last) in [("P1", "ward-7", 23), ("P2", "ward-3", 11)] {
        for h in 0..=last {
            let _ = writeln!(
                obs,
                r#"{{"patient_id":"{patient}","location":"{ward}/bed-1","code":"heart_rate","value":90,"unit":"/min","effective":"2026-01-01T{h:02}:00:00Z"}}"#
            );
        }
    }
    let mut suppressed = alert("d6", "P2", "risk", "raised", "advisory", 10);
    suppressed = suppressed.replace(
        r#""suppressed":null"#,
        r#""suppressed":{"by":"watch","until":null,"user":"nina"}"#,
    );
    let alerts = [
        alert("d1", "P1", "risk", "raised", "advisory", 2),
        alert("d2", "P1", "risk", "escalated", "urgent", 3),
        alert("d5", "P1", "septic_shock", "raised", "emergency", 4),
        alert("d3", "P1", "risk", "resolved", "urgent", 5),
        alert("d7", "P1", "septic_shock", "resolved", "emergency", 6),
        alert("d4", "P1", "risk", "raised", "advisory", 20),
        suppressed,
        "not an alert".to_owned(),
    ]
    .join("\n");
    let (obs_path, alerts_path, labels_path) = (
        dir.join("obs.jsonl"),
        dir.join("alerts.jsonl"),
        dir.join("labels.csv"),
    );
    std::fs::write(&obs_path, obs).expect("write");
    std::fs::write(&alerts_path, alerts).expect("write");
    std::fs::write(
        &labels_path,
        "patient_id,sepsis_onset\nP1,2026-01-01T10:00:00Z\nP2,\n",
    )
    .expect("write");
    let args = [
        "runin",
        "--alerts",
        alerts_path.to_str().expect("utf-8"),
        "--observations",
        obs_path.to_str().expect("utf-8"),
        "--json",
        "--bootstrap",
        "0",
    ];
    let out = vigil(&args, "");
    assert_eq!(out.status, 0, "{}", out.stderr);
    let j: serde_json::Value = serde_json::from_str(&out.stdout).expect("JSON");
    let ward = |name: &str| {
        j["wards"]
            .as_array()
            .expect("wards")
            .iter()
            .find(|w| w["ward"] == name)
            .cloned()
            .expect(name)
    };
    let close = |v: &serde_json::Value, x: f64| (v.as_f64().expect("a number") - x).abs() < 1e-9;
    // P1: pages d1 advisory, d2 urgent, d5 emergency, d4 advisory; alerted 02-06 (risk and
    // shock overlapping) and 20-23 (still active at the last observation): 2 episodes, 7 h.
    let w7 = ward("ward-7");
    assert_eq!(w7["patients"], 1);
    assert!(close(&w7["patient_days"], 1.0), "{w7}");
    assert_eq!(w7["pages"], serde_json::json!([2, 1, 1]));
    assert!(close(&w7["pages_per_100_patient_days"][0], 200.0), "{w7}");
    assert_eq!(w7["episodes"], 2);
    assert!(close(&w7["time_in_alert"], 7.0 / 24.0), "{w7}");
    // P2: its one alert was suppressed by a watch (no page), active 10-11: 1 episode, 1 h.
    let w3 = ward("ward-3");
    assert_eq!(w3["pages"], serde_json::json!([0, 0, 0]));
    assert_eq!(w3["episodes"], 1);
    assert!(close(&w3["patient_days"], 0.5), "{w3}");
    assert!(close(&w3["episodes_per_100_patient_days"], 200.0), "{w3}");
    let all = ward("all");
    assert_eq!(all["patients"], 2);
    assert!(close(&all["time_in_alert"], 8.0 / 36.0), "{all}");
    assert_eq!(j["silent_events"], 7);
    assert_eq!(j["unreadable"].as_object().map(|o| o.len()), Some(1));
    assert!(j["outcomes"].is_null());

    // With labels: P1 septic at 10:00 (t_sepsis hour 10), alerted from hour 2: detected 8
    // hours ahead; P2 not septic, alerted at hour 10.
    let mut with_labels = args.to_vec();
    with_labels.extend(["--labels", labels_path.to_str().expect("utf-8")]);
    let out = vigil(&with_labels, "");
    assert_eq!(out.status, 0, "{}", out.stderr);
    let j: serde_json::Value = serde_json::from_str(&out.stdout).expect("JSON");
    let (cohort, f) = (&j["outcomes"][0], &j["outcomes"][1]);
    assert_eq!(cohort["stays"], 2);
    assert_eq!(cohort["septic"], 1);
    assert!(close(&f["sensitivity"]["value"], 1.0), "{f}");
    assert!(close(&f["non_septic_alerted"]["value"], 1.0), "{f}");
    assert!(close(&f["lead_time_median"]["value"], 8.0), "{f}");

    // The table a person reads.
    let table = vigil(&args[..args.len() - 3], "");
    assert_eq!(table.status, 0, "{}", table.stderr);
    assert!(table.stdout.contains("ward-7"), "{}", table.stdout);
    assert!(
        table.stdout.contains("left out, unreadable: 1"),
        "{}",
        table.stdout
    );
}

#[test]
fn a_threshold_is_recommended_for_a_target_burden_by_replaying_the_policy() {
    let Some(stays) = first_stays(400, "recommend-stays") else {
        return;
    };
    let out = vigil(
        &[
            "evaluate",
            "--format",
            "psv",
            stays.to_str().expect("utf-8"),
            "--bootstrap",
            "0",
            "--json",
            "--target-episodes",
            "40",
        ],
        "",
    );
    assert_eq!(out.status, 0, "{}", out.stderr);
    let j: serde_json::Value = serde_json::from_str(&out.stdout).expect("JSON");
    let r = &j["recommendation"];
    let t = r["threshold"].as_u64().expect("a threshold");
    let tried = r["tried"].as_array().expect("tried");
    let at = |k: u64| tried.iter().find(|x| x["threshold"] == k);
    let episodes = |x: &serde_json::Value| {
        x["episodes_per_100_patient_days"]
            .as_f64()
            .expect("a number")
    };
    // Within the burden, and the next lower threshold (more sensitive) is not.
    assert!(
        episodes(at(t).expect("the recommended was replayed")) <= 40.0,
        "{r}"
    );
    if t > 1 {
        let below = at(t - 1).expect("the threshold below was replayed");
        assert!(episodes(below) > 40.0, "{r}");
    }
    // The shipped default's own threshold evaluated as the policy is the row at 3 %.
    if let Some(three) = at(3) {
        assert_eq!(three["utility"], j["policy"]["utility"], "{r}");
    }
}

#[test]
fn a_recalibrated_model_runs_only_under_the_sha256_its_configuration_names() {
    let Some(stays) = first_stays(400, "recalibrate-stays") else {
        return;
    };
    let dir = tmp("recalibrate");
    let model = dir.join("local.model");
    let out = vigil(
        &[
            "recalibrate",
            stays.to_str().expect("utf-8"),
            "--out",
            model.to_str().expect("utf-8"),
        ],
        "",
    );
    assert_eq!(out.status, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains("recalibration: log-odds x"),
        "{}",
        out.stdout
    );
    let text = std::fs::read_to_string(&model).expect("written");
    let parsed = vigil_score::risk::RiskModel::parse(&text).expect("the model reads back");
    assert_eq!(parsed.to_text(), text);
    // Its provenance: the model it came from, the data, and the held-out figures.
    let shipped =
        std::fs::read(crate::util::repo_file("models/vigil-risk.model")).expect("shipped");
    let shipped_sha = vigil_stream::config::sha256_hex(&shipped);
    assert!(text.contains(&shipped_sha), "{text}");
    assert!(text.contains("Held out, at"), "{text}");
    assert!(text.contains("400 stays"), "{text}");
    // The sha256 printed is the file's.
    let sha = vigil_stream::config::sha256_hex(text.as_bytes());
    assert!(
        out.stdout
            .contains(&format!("risk_model_sha256 = \"{sha}\"")),
        "{}",
        out.stdout
    );
    // A configuration naming it is valid; changed by one byte, the file is refused.
    let config = dir.join("vigil.toml");
    std::fs::write(
        &config,
        format!(
            "[alerts]\nrisk_model = {:?}\nrisk_model_sha256 = \"{sha}\"\nrisk = [{}, 0, 0]\n",
            model.display().to_string(),
            parsed.threshold_percent
        ),
    )
    .expect("write");
    let ok = vigil(&["check-config", config.to_str().expect("utf-8")], "");
    assert_eq!(ok.status, 0, "{}{}", ok.stdout, ok.stderr);
    std::fs::write(&model, text.replacen("intercept ", "intercept  ", 1)).expect("write");
    let refused = vigil(&["check-config", config.to_str().expect("utf-8")], "");
    assert_eq!(refused.status, 1);
    let said = refused.stdout + &refused.stderr;
    assert!(
        said.contains("alerts.risk_model") && said.contains(&sha),
        "{said}"
    );
}

#[test]
fn vigil_risk_trains_on_a_hospitals_own_export_without_physionets_attribution() {
    let dir = tmp("train-jsonl");
    let mut obs = String::new();
    let mut labels = String::from("patient_id,sepsis_onset\n");
    // 30 patients over 30 hours; every third develops sepsis at hour 20, breathing fast
    // and febrile from hour 12.
    for p in 0..30 {
        let septic = p % 3 == 0;
        for h in 0..30u32 {
            let sick = septic && h >= 12;
            let (rr, temp) = if sick { (28, 38.9) } else { (16, 37.0) };
            let t = format!("2026-01-{:02}T{:02}:00:00Z", 1 + h / 24, h % 24);
            let _ = writeln!(
                obs,
                r#"[{{"patient_id":"H{p}","code":"resp_rate","value":{rr},"unit":"/min","effective":"{t}"}},{{"patient_id":"H{p}","code":"temperature","value":{temp},"unit":"Cel","effective":"{t}"}}]"#
            );
        }
        let _ = writeln!(
            labels,
            "H{p},{}",
            if septic { "2026-01-01T20:00:00Z" } else { "" }
        );
    }
    let (obs_path, labels_path, model) = (
        dir.join("obs.jsonl"),
        dir.join("labels.csv"),
        dir.join("local.model"),
    );
    std::fs::write(&obs_path, obs).expect("write");
    std::fs::write(&labels_path, labels).expect("write");
    let out = vigil(
        &[
            "train",
            "--format",
            "jsonl",
            obs_path.to_str().expect("utf-8"),
            "--labels",
            labels_path.to_str().expect("utf-8"),
            "--out",
            model.to_str().expect("utf-8"),
        ],
        "",
    );
    assert_eq!(out.status, 0, "{}", out.stderr);
    let text = std::fs::read_to_string(&model).expect("written");
    assert!(text.contains("by `vigil train --format jsonl`"), "{text}");
    assert!(text.contains("30 stays"), "{text}");
    assert!(!text.contains("PhysioNet"), "{text}");
    let sha = vigil_stream::config::sha256_hex(text.as_bytes());
    assert!(
        out.stdout.contains(&format!("model sha256 {sha}")),
        "{}",
        out.stdout
    );
}
