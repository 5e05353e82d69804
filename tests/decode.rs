//! `vigil decode`, as the README specifies it, for each format.

use crate::util::{repo_file, tmp_dir, vigil, vigil_env};

fn path(rel: &str) -> String {
    repo_file(rel).to_string_lossy().into_owned()
}

#[test]
fn decodes_each_format_to_native_events() {
    let hl7 = vigil(
        &[
            "decode",
            "--format",
            "hl7v2",
            &path("crates/wire/tests/samples/hl7/monitor-vitals.hl7"),
        ],
        "",
    );
    assert_eq!(hl7.status, 0, "{}", hl7.stderr);
    let codes: Vec<String> = hl7
        .json_lines()
        .iter()
        .map(|v| v["code"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        codes,
        [
            "spo2",
            "heart_rate",
            "resp_rate",
            "sbp",
            "dbp",
            "temperature"
        ]
    );

    let fhir = vigil(
        &[
            "decode",
            "--format",
            "fhir",
            &path("crates/wire/tests/samples/fhir/pulse-oximetry-us-core.json"),
        ],
        "",
    );
    assert_eq!(fhir.status, 0, "{}", fhir.stderr);
    let lines = fhir.json_lines();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[2]["code"], "fio2");
    assert_eq!(lines[2]["value"], 0.4);

    // Native JSON in, the same events out (canonical codes and units).
    let json = vigil(
        &["decode", "--format", "json", "-"],
        r#"{"patient_id":"P1","code":"8310-5","value":100.4,"unit":"[degF]","effective":"2026-11-23T10:00:00Z"}"#,
    );
    assert_eq!(json.status, 0, "{}", json.stderr);
    assert_eq!(
        json.stdout,
        "{\"patient_id\":\"P1\",\"code\":\"temperature\",\"value\":38,\"unit\":\"Cel\",\"effective\":\"2026-11-23T10:00:00Z\",\"status\":\"final\"}\n"
    );
}

#[test]
fn rejections_are_line_reasons_with_exit_status_1() {
    let out = vigil(
        &[
            "decode",
            "--format",
            "hl7v2",
            &path("crates/wire/tests/samples/hl7/lab-results.hl7"),
        ],
        "",
    );
    assert_eq!(out.status, 1);
    assert_eq!(
        out.json_lines().len(),
        3,
        "the good results are still printed"
    );
    assert_eq!(
        out.stderr,
        "line 1: OBX[4]-2: value type \"ST\" cannot carry wbc; expected NM\n\
         line 1: OBX[5]-3: \"8302-2\" is a valid LOINC code that Vigil does not score: ignored \
         ([input] reject_unscored_codes = true dead-letters such readings)\n"
    );
    assert_eq!(vigil(&["decode", "--format", "xml", "-"], "").status, 2);
    assert_eq!(
        vigil(&["decode", "-"], "").status,
        2,
        "--format is required"
    );
}

/// The reference's table of codes and units is the decoder's: every parameter with its
/// canonical unit, the units converted from and every LOINC code read, in the order the
/// code keeps them.
#[test]
fn the_reference_lists_every_code_and_unit_vigil_reads() {
    let readme =
        std::fs::read_to_string(crate::util::repo_file("REFERENCE.md")).expect("REFERENCE.md");
    let mut expected = String::from(
        "| code | canonical unit | units accepted | LOINC codes |\n|---|---|---|---|\n",
    );
    for p in vigil_score::Param::ALL {
        let loinc: Vec<&str> = p.loinc_codes().collect();
        expected.push_str(&format!(
            "| `{}` | {} | {} | {} |\n",
            p.code(),
            p.unit(),
            p.accepted_units().join(", "),
            if loinc.is_empty() {
                "none".to_owned()
            } else {
                loinc.join(", ")
            }
        ));
    }
    assert!(
        readme.contains(&expected),
        "REFERENCE.md must hold this table:\n{expected}"
    );
}

/// Issue 32: `vigil decode` and `vigil score` took no `--config` and ignored
/// `VIGIL_INPUT_*`, so an integration engineer could not check on a sample that the
/// setting an error names fixes it.
#[test]
fn the_settings_an_error_names_fix_the_sample_offline() {
    // A preliminary heart rate whose time has no UTC offset.
    let message = "MSH|^~\\&|GW|ICU|VIGIL|HOSP|20261123101500||ORU^R01|M1|P|2.6\r\
                   PID|||P1^^^H^MR\r\
                   OBX|1|NM|8867-4^Heart rate^LN||112|/min^^UCUM|||||P|||20261123101500\r";
    for command in ["decode", "score"] {
        let refused = vigil(&[command, "--format", "hl7v2", "-"], message);
        assert_eq!(refused.status, 1, "{command}: {}", refused.stderr);
        for setting in ["hl7_accept_preliminary", "hl7_time_zone"] {
            assert!(
                refused.stderr.contains(setting),
                "{command}: {}",
                refused.stderr
            );
        }
    }
    let dir = tmp_dir("decode-config");
    let config = dir.join("vigil.toml");
    std::fs::write(
        &config,
        "[input]\nhl7_accept_preliminary = true\nhl7_time_zone = \"Europe/London\"\n",
    )
    .expect("written");
    let config = config.to_string_lossy().into_owned();
    let decoded = vigil(
        &["decode", "--format", "hl7v2", "--config", &config, "-"],
        message,
    );
    assert_eq!(decoded.status, 0, "{}", decoded.stderr);
    let events = decoded.json_lines();
    assert_eq!(
        events[0]["effective"], "2026-11-23T10:15:00Z",
        "London in November is UTC"
    );
    let scored = vigil(
        &["score", "--format", "hl7v2", "--config", &config, "-"],
        message,
    );
    assert_eq!(scored.status, 0, "{}", scored.stderr);
    assert_eq!(scored.json_lines()[0]["patient_id"], "P1");
    // The environment's overrides apply, with a file or without one.
    let env = [
        ("VIGIL_INPUT_HL7_ACCEPT_PRELIMINARY", "true"),
        ("VIGIL_INPUT_HL7_DEFAULT_UTC_OFFSET", "+01:00"),
    ];
    let decoded = vigil_env(&["decode", "--format", "hl7v2", "-"], message, &env);
    assert_eq!(decoded.status, 0, "{}", decoded.stderr);
    assert_eq!(decoded.json_lines()[0]["effective"], "2026-11-23T09:15:00Z");
    // A setting that is wrong is named, and nothing is decoded.
    let wrong = vigil_env(
        &["decode", "--format", "hl7v2", "-"],
        message,
        &[("VIGIL_INPUT_HL7_TIME_ZONE", "Mars/Olympus")],
    );
    assert_eq!(wrong.status, 2, "{}", wrong.stderr);
    assert!(
        wrong.stderr.contains("VIGIL_INPUT_HL7_TIME_ZONE"),
        "{}",
        wrong.stderr
    );
}
