//! `vigil evaluate` as a user runs it: real PhysioNet 2019 stays (a subset of set A,
//! read from `../shared/data` in place, so that CI stays within its time limit; the full
//! run is in EVALUATION.md), the JSON, the HTML report and the predictions, which an
//! independent implementation of the challenge's utility (tools/challenge_utility.py)
//! must score the same.

use std::path::PathBuf;
use std::process::Command;

use crate::util::{first_stays, repo_file, tmp_dir, vigil};

fn tmp(name: &str) -> PathBuf {
    tmp_dir(&format!("eval-{name}"))
}

fn json(out: &crate::util::Output) -> serde_json::Value {
    assert_eq!(out.status, 0, "{}", out.stderr);
    serde_json::from_str(&out.stdout).expect("one JSON document")
}

#[test]
fn predictions_score_the_same_in_an_independent_implementation() {
    let Some(stays) = first_stays(400, "eval-stays") else {
        return;
    };
    let work = tmp("out");
    let (preds, report) = (work.join("predictions"), work.join("report.html"));
    let out = vigil(
        &[
            "evaluate",
            "--format",
            "psv",
            stays.to_str().expect("utf-8"),
            "--json",
            "--bootstrap",
            "20",
            "--predictions",
            preds.to_str().expect("utf-8"),
            "--report",
            report.to_str().expect("utf-8"),
        ],
        "",
    );
    let j = json(&out);
    assert_eq!(j["cohort"]["stays"], 400);
    let utility = j["policy"]["utility"]
        .as_f64()
        .expect("policy.utility is a number");
    let ci = j["policy"]["utility_ci"].as_array().expect("interval");
    assert!(ci[0].as_f64().expect("low") <= utility && utility <= ci[1].as_f64().expect("high"));
    for rule in ["qsofa", "sirs", "news2", "sofa", "septic_shock", "mews"] {
        assert!(j["rules"][rule]["auroc"].is_number(), "{rule}");
    }
    assert_eq!(std::fs::read_dir(&preds).expect("predictions").count(), 400);

    let checked = Command::new("python3")
        .arg(repo_file("tools/challenge_utility.py"))
        .args([&stays, &preds])
        .output()
        .expect("python3 runs");
    let text = String::from_utf8_lossy(&checked.stdout);
    assert!(
        checked.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&checked.stderr)
    );
    let independent: f64 = text
        .split_whitespace()
        .nth(2)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        (independent - utility).abs() < 5e-7,
        "{independent} vs {utility}"
    );

    let html = std::fs::read_to_string(&report).expect("report");
    assert!(html.matches("<svg").count() >= 3, "three plots");
    for external in ["src=", "<link", "@import", "url("] {
        assert!(
            !html.contains(external),
            "the report loads nothing: {external}"
        );
    }
}

#[test]
fn invalid_values_are_counted_by_reason_and_the_table_is_printed() {
    let dir = tmp("bad");
    std::fs::write(
        dir.join("p1.psv"),
        "HR|Resp|FiO2|SepsisLabel\n80|16|0.4|0\n80|16|10|0\n80|16|-1|0\nabc|16|NaN|0\n",
    )
    .expect("write");
    std::fs::write(dir.join("p2.psv"), "HR|Resp\n80|16\n").expect("write");
    let out = vigil(
        &[
            "evaluate",
            "--format",
            "psv",
            dir.to_str().expect("utf-8"),
            "--json",
            "--bootstrap",
            "0",
        ],
        "",
    );
    let j = json(&out);
    let rejected = &j["input"]["values_rejected"];
    assert_eq!(rejected["fio2: above 1"], 1);
    assert_eq!(rejected["fio2: below 0.21"], 1);
    assert_eq!(rejected["heart_rate: not a number"], 1);
    assert_eq!(j["input"]["stays_rejected"], 1);
    assert!(
        out.stderr.contains("p2.psv: no `SepsisLabel` column"),
        "{}",
        out.stderr
    );

    // The bedside-score profile: this test reads the policy's description.
    let bedside = concat!(env!("CARGO_MANIFEST_DIR"), "/config/profiles/bedside.toml");
    let table = vigil(
        &[
            "evaluate",
            "--format",
            "psv",
            dir.to_str().expect("utf-8"),
            "--config",
            bedside,
            "--bootstrap",
            "0",
        ],
        "",
    );
    assert_eq!(table.status, 0, "{}", table.stderr);
    assert!(
        table.stdout.contains("policy: NEWS2 >= 5 urgent"),
        "{}",
        table.stdout
    );
    assert!(
        table.stdout.contains("rejected       1  fio2: above 1"),
        "{}",
        table.stdout
    );
}

#[test]
fn a_hospital_export_in_native_jsonl_with_labels() {
    let dir = tmp("jsonl");
    let mut lines = String::new();
    // Patient a: NEWS2 5 (RR 25, SBP 95) every 30 minutes from 02:00; sepsis at 08:00.
    for half_hour in 0..24 {
        let (rr, sbp) = if half_hour >= 4 { (25, 95) } else { (16, 130) };
        let t = format!(
            "2026-01-01T{:02}:{:02}:00Z",
            half_hour / 2,
            (half_hour % 2) * 30
        );
        lines.push_str(&format!(
            r#"[{{"patient_id":"a","code":"resp_rate","value":{rr},"unit":"/min","effective":"{t}"}},{{"patient_id":"a","code":"sbp","value":{sbp},"unit":"mm[Hg]","effective":"{t}"}}]"#
        ));
        lines.push('\n');
        lines.push_str(&format!(
            r#"{{"patient_id":"b","code":"resp_rate","value":16,"unit":"/min","effective":"{t}"}}"#
        ));
        lines.push('\n');
    }
    let obs = dir.join("obs.jsonl");
    std::fs::write(&obs, lines).expect("write");
    let labels = dir.join("labels.csv");
    std::fs::write(
        &labels,
        "patient_id,sepsis_onset\na,2026-01-01T08:00:00Z\nb,\n",
    )
    .expect("write");
    let out = vigil(
        &[
            "evaluate",
            "--format",
            "jsonl",
            obs.to_str().expect("utf-8"),
            "--labels",
            labels.to_str().expect("utf-8"),
            "--config",
            concat!(env!("CARGO_MANIFEST_DIR"), "/config/profiles/bedside.toml"),
            "--json",
            "--bootstrap",
            "0",
        ],
        "",
    );
    let j = json(&out);
    assert_eq!(j["cohort"]["stays"], 2);
    assert_eq!(j["cohort"]["septic"], 1);
    // High from 02:00, held an hour at 03:00: hour 3, 5 hours before onset.
    assert_eq!(j["policy"]["sensitivity"], 1.0);
    assert_eq!(j["policy"]["lead_time_median_hours"], 5.0);
    assert_eq!(j["policy"]["non_septic_alerted"], 0.0);

    let missing = vigil(
        &[
            "evaluate",
            "--format",
            "jsonl",
            obs.to_str().expect("utf-8"),
        ],
        "",
    );
    assert_eq!(missing.status, 2);
    assert!(missing.stderr.contains("--labels"), "{}", missing.stderr);
}

#[test]
fn unusable_input_says_why_and_exits_1() {
    let dir = tmp("unusable");
    let not_tar = dir.join("stays.tar.gz");
    std::fs::write(&not_tar, "HR|SepsisLabel\n80|0\n").expect("write");
    let out = vigil(
        &[
            "evaluate",
            "--format",
            "psv",
            not_tar.to_str().expect("utf-8"),
        ],
        "",
    );
    assert_eq!(out.status, 1);
    assert!(
        out.stderr
            .contains("neither a directory of .psv files nor a gzip-compressed tar"),
        "{}",
        out.stderr
    );

    let empty = dir.join("empty");
    std::fs::create_dir_all(&empty).expect("mkdir");
    let out = vigil(
        &[
            "evaluate",
            "--format",
            "psv",
            empty.to_str().expect("utf-8"),
        ],
        "",
    );
    assert_eq!(out.status, 1);
    assert!(out.stderr.contains("no stay to evaluate"), "{}", out.stderr);

    let bad = dir.join("bad");
    std::fs::create_dir_all(&bad).expect("mkdir");
    std::fs::write(bad.join("a.psv"), b"HR|SepsisLabel\n\xff|0\n").expect("write");
    let out = vigil(
        &["evaluate", "--format", "psv", bad.to_str().expect("utf-8")],
        "",
    );
    assert_eq!(out.status, 1);
    assert!(out.stderr.contains("a.psv: cannot read"), "{}", out.stderr);
}
