//! `vigil score`, as the README specifies it.

use crate::util::{repo_file, vigil};

fn path(rel: &str) -> String {
    repo_file(rel).to_string_lossy().into_owned()
}

#[test]
fn scores_the_example_ward() {
    let out = vigil(&["score", &path("examples/ward.jsonl")], "");
    assert_eq!(out.status, 0, "{}", out.stderr);
    assert_eq!(out.stderr, "");
    let ids: Vec<_> = out
        .json_lines()
        .iter()
        .map(|p| p["patient_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        ids,
        ["MRN-1001", "MRN-1002", "MRN-1003", "MRN-1004"],
        "one object per patient, in id order"
    );

    let stable = out.patient("MRN-1001");
    assert_eq!(
        stable["at"], "2026-11-23T12:00:00Z",
        "evaluated at the latest observation"
    );
    assert_eq!(stable["news2"]["score"], 0);
    assert_eq!(stable["news2"]["risk"], "low");
    assert_eq!(stable["news2"]["missing"], serde_json::json!([]));
    assert_eq!(stable["qsofa"]["positive"], false);

    let septic = out.patient("MRN-1002");
    assert_eq!(septic["qsofa"]["score"], 3);
    assert_eq!(septic["sirs"]["score"], 4);
    assert_eq!(septic["news2"]["risk"], "high");
    // 102.6 [degF] is 39.2 Cel: NEWS2 temperature 2.
    assert_eq!(septic["news2"]["components"]["temperature"], 2);
    let temp = septic["sirs"]["criteria"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["code"] == "temperature")
        .unwrap()
        .clone();
    assert_eq!(temp["value"], 39.222222);
    assert_eq!(temp["unit"], "Cel");
    assert_eq!(temp["effective"], "2026-11-23T12:00:00Z");

    let shock = out.patient("MRN-1003");
    assert_eq!(shock["septic_shock"], true);
    assert_eq!(shock["sofa"]["components"]["cardiovascular"], 4);
    assert_eq!(
        shock["sofa"]["components"]["respiration"], 3,
        "11.2 kPa / 0.60 = 140 on a ventilator"
    );
    assert_eq!(
        shock["sofa"]["components"]["liver"], 2,
        "41 umol/L = 2.4 mg/dL"
    );

    let copd = out.patient("MRN-1004");
    assert_eq!(copd["news2"]["spo2_scale"], 2);
    assert_eq!(
        copd["news2"]["components"]["spo2"], 0,
        "90 % is on target on scale 2"
    );
    assert_eq!(
        copd["news2"]["components"]["on_oxygen"], 2,
        "2 L/min of oxygen"
    );
    assert_eq!(
        copd["news2"]["components"]["heart_rate"], 0,
        "the 188 artefact was withdrawn"
    );
    assert_eq!(
        copd["news2"]["components"]["temperature"], 1,
        "amended to 38.2"
    );
}

#[test]
fn reproduces_the_worked_values_of_the_clinical_reference() {
    let out = vigil(&["score", &path("examples/worked-values.jsonl")], "");
    assert_eq!(out.status, 0, "{}", out.stderr);
    let points =
        |id: &str, component: &str| out.patient(id)["news2"]["components"][component].clone();
    assert_eq!(points("W-TEMP-35.04", "temperature"), 3);
    assert_eq!(points("W-TEMP-35.06", "temperature"), 1);
    assert_eq!(points("W-SBP-219.4", "sbp"), 0);
    assert_eq!(points("W-SBP-219.6", "sbp"), 3);
}

#[test]
fn reports_each_rejected_line_and_scores_the_rest() {
    let out = vigil(&["score", &path("examples/bad-feed.jsonl")], "");
    assert_eq!(out.status, 1);
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 14, "{}", out.stderr);
    for (i, line) in lines.iter().enumerate() {
        assert!(line.starts_with(&format!("line {}: ", i + 2)), "{line}");
    }
    assert_eq!(
        lines[0],
        "line 2: field `value`: heart_rate 720 /min is outside the possible range 1-350 /min"
    );
    assert_eq!(
        lines[2],
        "line 4: field `unit`: \"degC\" cannot be converted for temperature; expected one of Cel, [degF]"
    );
    // Body height is a valid LOINC code Vigil does not score: reported as ignored.
    assert_eq!(
        lines[3],
        "line 5: code: \"8302-2\" is a valid LOINC code that Vigil does not score: ignored \
         ([input] reject_unscored_codes = true dead-letters such readings)"
    );
    assert!(
        lines[4].contains("send unit \"%\" for a percentage"),
        "{}",
        lines[4]
    );
    assert!(lines[12].contains("missing field `code`"), "{}", lines[12]);
    // The one good line (heart rate 72) was still scored.
    let p = out.patient("MRN-2001");
    let missing = p["sirs"]["missing"].as_array().unwrap();
    assert!(!missing.iter().any(|m| m == "heart_rate"), "{missing:?}");
    assert!(missing.iter().any(|m| m == "temperature"), "{missing:?}");
}

#[test]
fn reads_standard_input_and_honours_at() {
    let feed = concat!(
        r#"{"patient_id":"P1","code":"resp_rate","value":23,"effective":"2026-11-23T10:00:00Z"}"#,
        "\n",
        r#"{"patient_id":"P1","code":"sbp","value":100,"effective":"2026-11-23T10:00:00+00:00"}"#,
        "\n",
    );
    for args in [&["score"][..], &["score", "-"][..]] {
        let out = vigil(args, feed);
        assert_eq!(out.status, 0, "{}", out.stderr);
        let p = out.patient("P1");
        assert_eq!(p["qsofa"]["score"], 2);
        assert_eq!(p["qsofa"]["positive"], true);
        assert_eq!(
            p["qsofa"]["missing"],
            serde_json::json!(["gcs", "consciousness"])
        );
        assert_eq!(p["qsofa"]["criteria"][0]["code"], "resp_rate");
        assert_eq!(p["qsofa"]["criteria"][0]["value"], 23);
    }
    let later = vigil(&["score", "--at", "2026-11-23T16:00:01Z"], feed);
    let p = later.patient("P1");
    assert_eq!(p["at"], "2026-11-23T16:00:01Z");
    assert_eq!(
        p["qsofa"]["score"], 0,
        "6 h and 1 s later both vitals are stale"
    );
    assert_eq!(
        p["qsofa"]["missing"],
        serde_json::json!(["resp_rate", "sbp", "gcs", "consciousness"])
    );
}

#[test]
fn usage_errors_exit_2() {
    let bad_at = vigil(&["score", "--at", "tomorrow"], "");
    assert_eq!(bad_at.status, 2);
    assert!(bad_at.stderr.contains("RFC 3339"), "{}", bad_at.stderr);
    let missing = vigil(&["score", "/nonexistent/feed.jsonl"], "");
    assert_eq!(missing.status, 2);
    assert!(
        missing
            .stderr
            .contains("cannot open /nonexistent/feed.jsonl"),
        "{}",
        missing.stderr
    );
    assert_eq!(vigil(&["score", "--bogus"], "").status, 2);
    assert_eq!(vigil(&[], "").status, 2);
}

#[test]
fn empty_input_prints_nothing() {
    let out = vigil(&["score"], "\n\n");
    assert_eq!(
        (out.status, out.stdout.as_str(), out.stderr.as_str()),
        (0, "", "")
    );
}

/// CLINICAL.md carries the same score tables as the rule modules' documentation (which
/// the rules' boundary tests pin), and cites each rule's source.
#[test]
fn the_clinical_reference_matches_the_rule_modules() {
    let clinical = std::fs::read_to_string(repo_file("CLINICAL.md")).expect("CLINICAL.md");
    for (module, source) in [
        ("news2", "Royal College of Physicians"),
        ("sofa", "Vincent JL"),
        ("qsofa", "Seymour CW"),
        ("sirs", "Bone RC"),
        ("septic_shock", "Singer M"),
        ("mews", "Subbe CP"),
    ] {
        let path = repo_file(&format!("crates/score/src/rules/{module}.rs"));
        let text = std::fs::read_to_string(&path).expect("rule module");
        for row in text
            .lines()
            .take_while(|l| l.starts_with("//!"))
            .filter_map(|l| l.strip_prefix("//! "))
            .filter(|l| l.starts_with('|'))
        {
            assert!(clinical.contains(row), "{module}: {row}");
        }
        assert!(clinical.contains(source), "{module}: {source}");
    }
}
