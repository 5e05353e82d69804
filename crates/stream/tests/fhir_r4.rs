//! Every FHIR resource kind Vigil publishes alerts as, for every kind of alert event and
//! every way a feed names its patients and readings, validated as FHIR R4 (4.0.1) by an
//! independent validator: `fhir.resources` 6.1.0 from PyPI, run by
//! `tests/interop/fhir_validate.py` (issue 29, item 2: DetectedIssue carried
//! `encounter`, an R5 element; references were built from ids FHIR does not allow).

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::Value;
use vigil_score::{Config, Observation, PolicyConfig, RawValue, Status, Timestamp, Tracker};
use vigil_stream::event::{Subject, events};
use vigil_stream::fhir_out::{FhirResource, Sources, resource};
use vigil_wire::{Format, PatientNaming};

/// A septic patient who then recovers: every rule raises (with escalations on the way)
/// and resolves on measured recovery. Returns each decision's events as JSON-ready
/// resources of every kind, for every feed format and patient naming.
fn resources() -> Vec<Value> {
    let config = Config::default();
    let mut policy = PolicyConfig::every_rule();
    // MEWS and Vigil Risk alert too (off by default).
    policy.thresholds.mews = [Some(3), Some(5), Some(7)];
    policy.thresholds.risk = [Some(5), Some(10), Some(20)];
    let mut tracker = Tracker::new();
    let at = |minute: i64| {
        Timestamp::from_millis(
            Timestamp::parse_rfc3339("2026-11-23T10:00:00Z")
                .unwrap()
                .as_millis()
                + minute * 60_000,
        )
    };
    let sick: &[(&str, f64)] = &[
        ("resp_rate", 30.0),
        ("sbp", 85.0),
        ("map", 60.0),
        ("heart_rate", 130.0),
        ("temperature", 39.5),
        ("spo2", 90.0),
        ("wbc", 16.0),
        ("gcs", 13.0),
        ("lactate", 4.5),
        ("norepinephrine", 0.2),
        ("platelets", 80.0),
        ("bilirubin", 3.0),
        ("creatinine", 3.0),
    ];
    let well: &[(&str, f64)] = &[
        ("resp_rate", 14.0),
        ("sbp", 125.0),
        ("map", 85.0),
        ("heart_rate", 72.0),
        ("temperature", 37.0),
        ("spo2", 98.0),
        ("wbc", 8.0),
        ("gcs", 15.0),
        ("lactate", 1.0),
        ("norepinephrine", 0.0),
        ("platelets", 250.0),
        ("bilirubin", 0.5),
        ("creatinine", 0.8),
    ];
    let id_styles = [
        ("fhir", "bp-2"),
        ("hl7v2", "hl7:ORD-G3:151562:1.3.1.1:1795428000000"),
        ("json", "SIM-00002-heart_rate-7"),
    ];
    let namings = [
        PatientNaming::Id,
        PatientNaming::Resource,
        PatientNaming::System("urn:oid:2.16.840.1.113883.19.5".into()),
    ];
    let mut out = Vec::new();
    for (minute, set) in [(0, sick), (24 * 60, well), (24 * 60 + 60, well)] {
        let consciousness = if minute == 0 { "V" } else { "A" };
        let readings = set
            .iter()
            .map(|(code, value)| (*code, RawValue::Number(*value)))
            .chain([("consciousness", RawValue::Text(consciousness))]);
        for (code, value) in readings {
            let o = Observation::new(
                code,
                value,
                None,
                at(minute),
                Some(&format!("obs-{code}-{minute}")),
                Status::Final,
            )
            .unwrap();
            tracker.ingest(&o, None, &config, &policy);
        }
        let Some(outcome) = tracker.flush(&config, &policy) else {
            continue;
        };
        let subject = Subject {
            patient_id: "MRN_77:a",
            encounter_id: Some("VISIT:2026/11"),
            location: Some("ICU-2/03"),
        };
        for event in events(subject, &outcome, tracker.alerts(), at(minute)) {
            for (format, id) in id_styles {
                let format = Format::from_name(format).unwrap();
                let ids: Vec<Option<String>> = event
                    .criteria
                    .iter()
                    .enumerate()
                    .map(|(i, _)| (i % 3 != 2).then(|| format!("{id}#{i}")))
                    .collect();
                for naming in &namings {
                    for kind in [
                        FhirResource::DetectedIssue,
                        FhirResource::RiskAssessment,
                        FhirResource::Communication,
                    ] {
                        let sources = Sources {
                            patient: naming,
                            format: &format,
                            evidence: &ids,
                        };
                        out.push(resource(kind, &event, &sources));
                    }
                }
            }
        }
    }
    out
}

#[test]
fn every_alert_resource_is_valid_fhir_r4() {
    let resources = resources();
    let kinds: std::collections::BTreeSet<(String, String)> = resources
        .iter()
        .filter(|r| r["resourceType"] != "Communication")
        .map(|r| {
            let kind = r["extension"][0]["valueCode"].as_str().unwrap().to_owned();
            let rule = r["code"]["coding"]
                .as_array()
                .or_else(|| r["method"]["coding"].as_array())
                .and_then(|c| c.last())
                .map_or_else(|| "?".into(), |c| c["code"].as_str().unwrap().to_owned());
            (rule, kind)
        })
        .collect();
    // The feed reaches every alert kind of every published rule.
    for rule in [
        "qsofa",
        "sirs",
        "news2",
        "sofa",
        "septic_shock",
        "mews",
        "risk",
    ] {
        for kind in ["raised", "resolved"] {
            assert!(
                kinds.contains(&(rule.to_owned(), kind.to_owned())),
                "{rule} {kind} not produced: {kinds:?}"
            );
        }
    }
    let target = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let packages = vigil_testkit::interop::packages(target.parent().expect("target directory"));
    let mut child = Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/interop/fhir_validate.py"
        ))
        .env("PYTHONPATH", &packages)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    {
        let mut stdin = child.stdin.take().expect("stdin");
        for r in &resources {
            writeln!(stdin, "{r}").expect("written");
        }
    }
    let output = child.wait_with_output().expect("the validator ran");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{} problems:\n{}",
        stderr.lines().count(),
        stderr.lines().take(30).collect::<Vec<_>>().join("\n")
    );
    let counts: Value = serde_json::from_slice(&output.stdout).expect("the validator's counts");
    eprintln!("valid FHIR R4 resources: {counts}");
    let third = resources.len() / 3;
    for kind in ["DetectedIssue", "RiskAssessment", "Communication"] {
        assert_eq!(counts[kind].as_u64(), Some(third as u64), "{counts}");
    }
}
