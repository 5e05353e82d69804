//! HL7 v2 ORU^R01 as bedside monitor gateways (IEEE 11073 MDC codes) and laboratory
//! systems (LOINC) send them, and malformed shapes with their reasons.

use vigil_score::{Param, Status, Value};
use vigil_wire::hl7::{per_patient, split_messages};
use vigil_wire::{Decoded, Hl7Options, decode_hl7};

fn sample(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/samples/hl7/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn num(d: &Decoded) -> f64 {
    match d.observation.value() {
        Value::Number(n) => n,
        other => panic!("{other:?}"),
    }
}

const MSH: &str =
    "MSH|^~\\&|GW|ICU|VIGIL|HOSP|20261123101500+0100||ORU^R01|M1|P|2.6\rPID|||P1^^^H^MR\r";

fn one(obx: &str) -> Result<Decoded, String> {
    let r = decode_hl7(format!("{MSH}{obx}\r").as_bytes(), &Hl7Options::default());
    assert_eq!(r.len(), 1, "{r:?}");
    r.into_iter().next().unwrap().map_err(|e| e.to_string())
}

#[test]
fn a_monitor_gateway_message_decodes_to_its_vital_signs() {
    let results = decode_hl7(&sample("monitor-vitals.hl7"), &Hl7Options::default());
    let got: Vec<(Param, f64)> = results
        .iter()
        .map(|r| {
            let d = r.as_ref().unwrap_or_else(|e| panic!("{e}"));
            (d.observation.param(), num(d))
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (Param::Spo2, 91.0),
            (Param::HeartRate, 118.0),
            (Param::RespRate, 24.0),
            (Param::Sbp, 98.0),
            (Param::Dbp, 61.0),
            (Param::Temperature, 38.4),
        ]
    );
    let first = results[0].as_ref().unwrap();
    assert_eq!(first.patient_id, "MRN-4711", "PID-3 repetition of type MR");
    assert_eq!(first.location.as_deref(), Some("ICU-2/03"));
    // The id names the measurement (order, code, sub-id, time), not the message.
    assert_eq!(
        first.id.as_deref(),
        Some("hl7::150456:1.1.1.1:1795425300000")
    );
    assert_eq!(
        first.observation.effective().to_string(),
        "2026-11-23T09:15:00Z"
    );
    let sbp = results[3].as_ref().unwrap();
    assert_eq!(
        sbp.observation.effective().to_string(),
        "2026-11-23T09:14:00Z"
    );
    let temp = results[5].as_ref().unwrap();
    assert_eq!(
        temp.observation.effective().to_string(),
        "2026-11-23T09:15:00Z",
        "OBR-7 when OBX-14 is empty"
    );
}

#[test]
fn a_lab_message_keeps_its_good_results_and_reports_the_bad_ones() {
    let results = decode_hl7(&sample("lab-results.hl7"), &Hl7Options::default());
    assert_eq!(results.len(), 5);
    let lactate = results[0].as_ref().unwrap();
    assert_eq!(
        (lactate.observation.param(), num(lactate)),
        (Param::Lactate, 3.4)
    );
    assert_eq!(lactate.patient_id, "12345");
    assert_eq!(
        lactate.location.as_deref(),
        Some("WARD7/712/B"),
        "PV1-3 as unit/room/bed"
    );
    assert_eq!(lactate.encounter_id.as_deref(), Some("V0099"));
    let creatinine = results[1].as_ref().unwrap();
    assert!(
        (num(creatinine) - 168.0 / 88.4).abs() < 1e-9,
        "umol/L converted"
    );
    assert_eq!(
        creatinine.observation.effective().to_string(),
        "2026-11-23T14:00:00Z",
        "OBR-7, -0500"
    );
    let platelets = results[2].as_ref().unwrap();
    assert_eq!(
        platelets.observation.status(),
        Status::Amended,
        "OBX-11 C corrects"
    );
    assert_eq!(
        results[3].as_ref().unwrap_err().to_string(),
        "OBX[4]-2: value type \"ST\" cannot carry wbc; expected NM"
    );
    // Body height is a valid LOINC code Vigil does not score: ignored, not an error.
    assert_eq!(
        results[4].as_ref().unwrap_err().unscored(),
        Some(vigil_wire::CodeSystem::Loinc)
    );
    assert_eq!(
        results[4].as_ref().unwrap_err().to_string(),
        "OBX[5]-3: \"8302-2\" is a valid LOINC code that Vigil does not score: ignored \
         ([input] reject_unscored_codes = true dead-letters such readings)"
    );
    // A code that is not valid in its system is an error that names the setting for
    // device codes.
    assert_eq!(
        one("OBX|1|NM|8302-3^Body height^LN||170|cm|||||F|||20261123101500+0100").unwrap_err(),
        "OBX[1]-3: \"8302-3^Body height^LN\" is not a LOINC or IEEE 11073 MDC code Vigil knows; \
         a device's MDC code can be mapped to a parameter in [input] hl7_mdc_codes \
         (for example \"150364\" = \"temperature\")"
    );
    // A device code of the MDC nomenclature that Vigil does not score is ignored too.
    let pvc = decode_hl7(
        format!("{MSH}OBX|1|NM|148065^MDC_ECG_V_P_C_CNT^MDC||3|/min|||||F|||20261123101500+0100\r")
            .as_bytes(),
        &Hl7Options::default(),
    );
    assert_eq!(
        pvc[0].as_ref().unwrap_err().unscored(),
        Some(vigil_wire::CodeSystem::Mdc)
    );
    assert!(
        pvc[0]
            .as_ref()
            .unwrap_err()
            .to_string()
            .contains("if it measures a scored parameter, map it in [input] hl7_mdc_codes"),
        "an unknown device code points at the mapping"
    );
}

#[test]
fn separators_escapes_and_statuses() {
    let crlf = String::from_utf8(sample("monitor-vitals.hl7"))
        .unwrap()
        .replace('\r', "\r\n");
    assert_eq!(
        decode_hl7(crlf.as_bytes(), &Hl7Options::default())
            .iter()
            .filter(|r| r.is_ok())
            .count(),
        6
    );
    let lf = String::from_utf8(sample("monitor-vitals.hl7"))
        .unwrap()
        .replace('\r', "\n");
    assert_eq!(
        decode_hl7(lf.as_bytes(), &Hl7Options::default())
            .iter()
            .filter(|r| r.is_ok())
            .count(),
        6
    );
    let escaped = "MSH|^~\\&|GW|ICU|VIGIL|HOSP|20261123101500+0100||ORU^R01|M1|P|2.6\rPID|||P1^^^H^MR\rPV1||I|WARD\\T\\7^^B\\F\\2\rOBX|1|NM|8867-4^HR^LN||80|/min|||||F|||20261123101500+0100\r";
    let d = decode_hl7(escaped.as_bytes(), &Hl7Options::default())
        .remove(0)
        .unwrap();
    assert_eq!(d.location.as_deref(), Some("WARD&7/B|2"));
    // Point of care and room only; a bed with subcomponents keeps its first.
    for (pv1, location) in [
        ("PV1||I|ICU3^Bed07", Some("ICU3/Bed07")),
        ("PV1||I|ICU3^^Bed07&0&0", Some("ICU3/Bed07")),
        ("PV1||I|ICU3^R2^B1^HOSP", Some("ICU3/R2/B1")),
        ("PV1||I|^^B1", None),
    ] {
        let msg = format!(
            "MSH|^~\\&|GW|ICU|VIGIL|HOSP|20261123101500+0100||ORU^R01|M1|P|2.6\rPID|||P1^^^H^MR\r{pv1}\rOBX|1|NM|8867-4^HR^LN||80|/min|||||F|||20261123101500+0100\r"
        );
        let d = decode_hl7(msg.as_bytes(), &Hl7Options::default())
            .remove(0)
            .unwrap();
        assert_eq!(d.location.as_deref(), location, "{pv1}");
    }
    let withdrawn = one("OBX|1|NM|8867-4^HR^LN||80|/min|||||W|||20261123101500+0100").unwrap();
    assert_eq!(withdrawn.observation.status(), Status::EnteredInError);
    // X: the sender says the result could not be obtained, whatever OBX-5 holds.
    assert_eq!(
        one("OBX|1|NM|8867-4^HR^LN||80|/min|||||X|||20261123101500+0100").unwrap_err(),
        "OBX[1]-11: heart_rate has no value (\"X: results cannot be obtained\"): counted as \
         absent, not scored"
    );
    assert_eq!(
        one("OBX|1|NM|8867-4^HR^LN||80|/min|||||Q|||20261123101500+0100").unwrap_err(),
        "OBX[1]-11: result status \"Q\" is not accepted; expected F, C, W or D (or X or N for \
         a result without a value)"
    );
    // A preliminary result names the setting that would accept it.
    for status in ["P", "R", "S"] {
        assert_eq!(
            one(&format!(
                "OBX|1|NM|8867-4^HR^LN||80|/min|||||{status}|||20261123101500+0100"
            ))
            .unwrap_err(),
            format!(
                "OBX[1]-11: result status \"{status}\" (preliminary) is not accepted; expected \
                 F, C, W or D, or set [input] hl7_accept_preliminary = true to score P, R and \
                 S results as final"
            )
        );
    }
    let pre = decode_hl7(
        format!("{MSH}OBX|1|NM|8867-4^HR^LN||80|/min|||||P|||20261123101500+0100\r").as_bytes(),
        &Hl7Options {
            accept_preliminary: true,
            ..Hl7Options::default()
        },
    );
    assert!(pre[0].is_ok(), "preliminary accepted when configured");
    let extra = Hl7Options {
        extra_mdc: vec![("150037".into(), vigil_score::Param::Sbp)],
        ..Hl7Options::default()
    };
    let art = decode_hl7(
        format!("{MSH}OBX|1|NM|150037^MDC_PRESS_BLD_ART_ABP_SYS^MDC||92|mm[Hg]|||||F|||20261123101500+0100\r").as_bytes(),
        &extra,
    );
    assert_eq!(
        art[0].as_ref().unwrap().observation.param(),
        vigil_score::Param::Sbp,
        "MDC map extended by configuration"
    );
    assert!(
        one("OBX|1|NM|150037^MDC_PRESS_BLD_ART_ABP_SYS^MDC||92|mm[Hg]|||||F|||20261123101500+0100")
            .is_err()
    );
    let acvpu = one("OBX|1|CWE|ACVPU^Level of consciousness^L||450847001^Responds to pain^SCT||||||F|||20261123101500+0100").unwrap();
    assert_eq!(
        acvpu.observation.value(),
        Value::Consciousness(vigil_score::Acvpu::P)
    );
}

#[test]
fn times_without_offset_are_ambiguous_unless_configured() {
    let obx = "OBX|1|NM|8867-4^HR^LN||80|/min|||||F|||202611231015";
    assert_eq!(
        one(obx).unwrap_err(),
        "OBX[1]-14: \"202611231015\" has no UTC offset; local times are ambiguous (set \
         [input] hl7_time_zone, for example \"Europe/London\", to read them as local time \
         there, or hl7_default_utc_offset, for example \"+01:00\", for a fixed offset)"
    );
    // A result without OBX-14 takes the order's OBR-7: the error names OBR-7.
    let from_obr = format!(
        "{MSH}OBR|1|||24331-1^Panel^LN|||202611231015\rOBX|1|NM|8867-4^HR^LN||80|/min|||||F\r"
    );
    assert_eq!(
        decode_hl7(from_obr.as_bytes(), &Hl7Options::default())[0]
            .as_ref()
            .unwrap_err()
            .to_string(),
        "OBR-7: \"202611231015\" has no UTC offset; local times are ambiguous (set [input] \
         hl7_time_zone, for example \"Europe/London\", to read them as local time there, or \
         hl7_default_utc_offset, for example \"+01:00\", for a fixed offset)"
    );
    // A named time zone follows daylight saving time; the hour skipped in spring and the
    // hour repeated in autumn are rejected, never guessed.
    let london = Hl7Options {
        time_zone: Some(vigil_wire::LocalZone::named("Europe/London").unwrap()),
        ..Hl7Options::default()
    };
    let at = |time: &str| {
        decode_hl7(
            format!("{MSH}OBX|1|NM|8867-4^HR^LN||80|/min|||||F|||{time}\r").as_bytes(),
            &london,
        )
        .remove(0)
        .map(|d| d.observation.effective().to_string())
        .map_err(|e| e.to_string())
    };
    assert_eq!(
        at("202607011015"),
        Ok("2026-07-01T09:15:00Z".to_owned()),
        "summer: +01:00"
    );
    assert_eq!(
        at("202612011015"),
        Ok("2026-12-01T10:15:00Z".to_owned()),
        "winter: +00:00"
    );
    assert_eq!(
        at("202603290059"),
        Ok("2026-03-29T00:59:00Z".to_owned()),
        "before the gap"
    );
    assert_eq!(
        at("202603290200"),
        Ok("2026-03-29T01:00:00Z".to_owned()),
        "after the gap"
    );
    assert!(
        at("202603290130")
            .unwrap_err()
            .ends_with("has no UTC offset and does not exist in Europe/London (the clocks went forward over it)"),
        "the skipped hour"
    );
    assert!(
        at("202610250130")
            .unwrap_err()
            .contains("happened twice in Europe/London"),
        "the repeated hour"
    );
    assert_eq!(
        at("202610250200"),
        Ok("2026-10-25T02:00:00Z".to_owned()),
        "after the fold"
    );
    assert_eq!(
        at("202607011015+0200"),
        Ok("2026-07-01T08:15:00Z".to_owned()),
        "a sent offset wins"
    );
    assert!(vigil_wire::LocalZone::named("Europe/Londn").is_err());
    let r = decode_hl7(
        format!("{MSH}{obx}\r").as_bytes(),
        &Hl7Options {
            default_offset_minutes: Some(60),
            ..Hl7Options::default()
        },
    );
    assert_eq!(
        r[0].as_ref().unwrap().observation.effective().to_string(),
        "2026-11-23T09:15:00Z"
    );
    assert!(
        one("OBX|1|NM|8867-4^HR^LN||80|/min|||||F|||2026112310")
            .unwrap_err()
            .contains("not an HL7 date-time to the minute")
    );
    assert!(
        one("OBX|1|NM|8867-4^HR^LN||80|/min|||||F|||202613231015+0000")
            .unwrap_err()
            .contains("not a valid date-time")
    );
}

#[test]
fn malformed_messages_name_segment_field_and_reason() {
    let err = |text: &str| {
        decode_hl7(text.as_bytes(), &Hl7Options::default())
            .remove(0)
            .unwrap_err()
            .to_string()
    };
    assert!(err("PID|||P1\r").starts_with("MSH: \"PID|||P1\" does not start with an MSH segment"));
    assert_eq!(
        err("MSH|^~\\&|A|B|C|D|20261123101500+0100||ADT^A01|1|P|2.6\rPID|||P1\r"),
        "MSH-9: \"ADT^A01\" is not supported; expected ORU^R01"
    );
    assert!(
        err("MSH|^~\\&|A|B|C|D|20261123101500+0100||ORU^R01|1|P|2.1\rPID|||P1\r")
            .starts_with("MSH-12: \"2.1\" is not supported")
    );
    assert!(err("MSH|^~\\&|A|B|C|D|20261123101500+0100||ORU^R01|1|P|2.6\rOBX|1|NM|8867-4^HR^LN||80|/min\r").starts_with("PID: missing"));
    assert!(err(MSH).starts_with("OBX: missing"));
    assert!(err("MSH|^~\\&|A|B|C|D|T||ORU^R01|1|P|2.6\rPID|||P 1^^^H^MR\rOBX|1|NM|8867-4^HR^LN||80|/min\r").starts_with("PID-3: \"P 1\" is not a valid patient id"));
    assert_eq!(
        one("OBX|1|NM|8867-4^HR^LN||fast|/min|||||F|||20261123101500+0100").unwrap_err(),
        "OBX[1]-5: \"fast\" is not a number"
    );
    assert_eq!(
        one("OBX|1|NM|8867-4^HR^LN||400|/min|||||F|||20261123101500+0100").unwrap_err(),
        "OBX[1]-5: field `value`: heart_rate 400 /min is outside the possible range 1-350 /min"
    );
    let many = format!(
        "{MSH}{}",
        "OBX|1|NM|8867-4^HR^LN||80|/min|||||F|||20261123101500+0100\r"
            .repeat(vigil_wire::MAX_ENTRIES + 1)
    );
    let r = decode_hl7(many.as_bytes(), &Hl7Options::default());
    assert_eq!(r.len(), vigil_wire::MAX_ENTRIES + 1);
    assert!(
        r.last()
            .unwrap()
            .as_ref()
            .unwrap_err()
            .to_string()
            .contains("more than 1000 OBX segments")
    );
}

#[test]
fn files_split_at_each_msh_and_at_blank_lines() {
    let text = "MSH|a\nPID|b\n\nMSH|c\nMSH|d\r\nOBX|e\r\n";
    let messages = split_messages(text);
    assert_eq!(
        messages,
        vec![
            (1, "MSH|a\rPID|b".to_owned()),
            (4, "MSH|c".to_owned()),
            (5, "MSH|d\rOBX|e".to_owned())
        ]
    );
}

mod hostile {
    use super::*;
    use proptest::prelude::*;
    use vigil_wire::{FhirOptions, decode_fhir};

    proptest! {
        /// Mutated real messages and arbitrary bytes never panic a decoder.
        #[test]
        fn decoders_never_panic(
            cut in 0usize..1000,
            flips in prop::collection::vec((0usize..1000, any::<u8>()), 0..8),
            noise in prop::collection::vec(any::<u8>(), 0..200),
        ) {
            for base in [sample("monitor-vitals.hl7"), sample("lab-results.hl7")] {
                let mut m = base.clone();
                for (i, b) in &flips {
                    let n = m.len();
                    m[i % n] = *b;
                }
                m.truncate(cut.min(m.len()));
                let _ = decode_hl7(&m, &Hl7Options::default());
                let _ = decode_hl7(&noise, &Hl7Options::default());
            }
            let fhir = std::fs::read(format!("{}/tests/samples/fhir/bundle-transaction.json", env!("CARGO_MANIFEST_DIR"))).unwrap();
            let mut m = fhir.clone();
            for (i, b) in &flips {
                let n = m.len();
                m[i % n] = *b;
            }
            let _ = decode_fhir(&m, FhirOptions::default());
            let _ = decode_fhir(&noise, FhirOptions::default());
        }
    }
}

#[test]
fn an_empty_obx_6_is_never_read_as_the_canonical_unit() {
    // Defect 5 of the alert-semantics issue: lactate 18 with an empty OBX-6 was read as
    // 18 mmol/L (it may well be 18 mg/dL, 2 mmol/L).
    let err = one("OBX|1|NM|2524-7^Lactate^LN||18||||||F|||20261123101500+0100").unwrap_err();
    assert_eq!(
        err,
        "OBX[1]-6: empty; lactate needs a unit (expected mmol/L or mg/dL); a unit is never guessed"
    );
    // Unitless scales need none.
    let gcs = one("OBX|1|NM|9269-2^GCS^LN||14||||||F|||20261123101500+0100").expect("GCS");
    assert_eq!(num(&gcs), 14.0);
}

#[test]
fn pid_3_uses_only_the_configured_identifier_types() {
    // Defect 5: a PID-3 carrying only a PI identifier was used as the patient id although
    // the configuration says MR.
    let message = |pid: &str| {
        format!(
            "MSH|^~\\&|GW|ICU|VIGIL|HOSP|20261123101500+0100||ORU^R01|M1|P|2.6\r{pid}\r\
             OBX|1|NM|8867-4^HR^LN||80|/min|||||F|||20261123101500+0100\r"
        )
    };
    let only_pi = message("PID|||998877^^^H^PI");
    let r = decode_hl7(only_pi.as_bytes(), &Hl7Options::default());
    let err = r[0].as_ref().map(|_| ()).unwrap_err().to_string();
    assert_eq!(
        err,
        "PID-3: holds identifier types \"PI\" but none of the configured MR (PID-3.5); \
         set [input] hl7_identifier_type to accept another type"
    );
    // Configured types are taken in order of preference, whatever the repetition order.
    let options = Hl7Options {
        identifier_types: vec!["MR".into(), "PI".into()],
        ..Hl7Options::default()
    };
    let r = decode_hl7(only_pi.as_bytes(), &options);
    assert_eq!(r[0].as_ref().expect("PI accepted").patient_id, "998877");
    let both = message("PID|||998877^^^H^PI~MRN-1^^^H^MR");
    let r = decode_hl7(both.as_bytes(), &options);
    assert_eq!(r[0].as_ref().expect("MR preferred").patient_id, "MRN-1");
}

#[test]
fn reading_ids_name_the_measurement_not_the_message() {
    // Defect 4: a reused MSH-10 on a new vital-sign set 30 minutes later was dropped as a
    // duplicate. Ids now come from the order, code, sub-id and time.
    let set = |control: &str, time: &str| {
        let m = format!(
            "MSH|^~\\&|GW|ICU|VIGIL|HOSP|{time}+0000||ORU^R01|{control}|P|2.6\rPID|||P1^^^H^MR\r\
             OBX|1|NM|8867-4^HR^LN||80|/min|||||F|||{time}+0000\r"
        );
        decode_hl7(m.as_bytes(), &Hl7Options::default())[0]
            .as_ref()
            .expect("decodes")
            .id
            .clone()
    };
    let first = set("CTRL-1", "202611231000");
    assert_ne!(first, set("CTRL-1", "202611231030"), "new set, same MSH-10");
    assert_eq!(
        first,
        set("CTRL-2", "202611231000"),
        "resend under a new MSH-10"
    );
}

#[test]
fn a_unit_that_cannot_be_converted_is_reported_on_obx_6() {
    // The unit is OBX-6; it was reported as OBX-5 (the value).
    let err = one("OBX|1|NM|8867-4^HR^LN||80|mm[Hg]|||||F|||20261123101500+0100").unwrap_err();
    assert!(err.starts_with("OBX[1]-6: "), "{err}");
    assert!(err.contains("mm[Hg]"), "{err}");
    // The value keeps OBX-5.
    let err = one("OBX|1|NM|8867-4^HR^LN||400|/min|||||F|||20261123101500+0100").unwrap_err();
    assert!(err.starts_with("OBX[1]-5: "), "{err}");
}

/// A monitor gateway's ORU^R01 in the IHE PCD-01 style Philips IntelliVue and Mindray
/// gateways send: MDC codes and MDC units, OBX-11 `R`. Every scored parameter in it is
/// recognised by its cited MDC code (transthoracic respiratory rate, body temperature,
/// non-invasive pulse rate); a code Vigil does not score (a PVC count) is ignored.
#[test]
fn a_monitor_gateway_feed_with_mdc_codes_is_recognised() {
    let bytes = sample("monitor-mdc-preliminary.hl7");
    let as_sent = decode_hl7(&bytes, &Hl7Options::default());
    assert!(
        as_sent[0]
            .as_ref()
            .unwrap_err()
            .to_string()
            .contains("hl7_accept_preliminary = true"),
        "R results name the setting that accepts them"
    );
    let results = decode_hl7(
        &bytes,
        &Hl7Options {
            accept_preliminary: true,
            ..Hl7Options::default()
        },
    );
    let read: Vec<(vigil_score::Param, f64)> = results
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .map(|d| match d.observation.value() {
            Value::Number(n) => (d.observation.param(), n),
            other => panic!("{other:?}"),
        })
        .collect();
    use vigil_score::Param::*;
    assert_eq!(
        read,
        vec![
            (Spo2, 93.0),
            (HeartRate, 112.0),
            (RespRate, 24.0),
            (Temperature, 38.4),
            (Sbp, 96.0)
        ]
    );
    assert_eq!(
        results[5].as_ref().unwrap_err().unscored(),
        Some(vigil_wire::CodeSystem::Mdc)
    );
    let first = results[0].as_ref().unwrap();
    assert_eq!(first.location.as_deref(), Some("ICU-7/12"));
    assert_eq!(first.patient_id, "MRN-5150");
}

/// A GE patient monitor's IHE PCD-01 message, shaped as in GE's B40/B20 HL7 reference
/// manual: the monitor, device and channel rows carry no value and result status X, so
/// they are ignored, not rejected; the invasive arterial pressures (150033-150035) are
/// read; the numerics come as R (preliminary), accepted only when configured.
#[test]
fn a_ge_pcd01_message_reads_its_numerics_and_ignores_its_device_rows() {
    let bytes = sample("ge-monitor-pcd01.hl7");
    let results = decode_hl7(
        &bytes,
        &Hl7Options {
            accept_preliminary: true,
            ..Hl7Options::default()
        },
    );
    assert_eq!(results.len(), 10, "{results:?}");
    for (i, r) in results.iter().take(3).enumerate() {
        let e = r.as_ref().expect_err("a device row");
        assert_eq!(
            e.unscored(),
            Some(vigil_wire::CodeSystem::Mdc),
            "OBX[{i}]: {e}"
        );
    }
    use vigil_score::Param::*;
    let read: Vec<(vigil_score::Param, f64)> = results
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .map(|d| (d.observation.param(), num(d)))
        .collect();
    assert_eq!(
        read,
        vec![
            (Sbp, 94.0),
            (Dbp, 52.0),
            (Map, 63.0),
            (HeartRate, 118.0),
            (RespRate, 27.0),
            (Spo2, 91.0),
            (Temperature, 38.9)
        ]
    );
    let first = results[3].as_ref().expect("a reading");
    assert_eq!(first.patient_id, "MRN-7781");
    assert_eq!(first.location.as_deref(), Some("ICU-3/07"));
}

/// OBX-11 X (results cannot be obtained) or N (not asked) on a scored parameter is
/// absent with its reason: never scored, never a rejection.
#[test]
fn a_result_that_cannot_be_obtained_is_absent() {
    let message = |status: &str| {
        format!(
            "MSH|^~\\&|A|B|C|D|20261123101500+0100||ORU^R01|X1|P|2.6\rPID|||P1^^^H^MR\r\
             OBX|1|NM|2524-7^Lactate^LN|||mmol/L|||||{status}|||20261123101500+0100\r"
        )
    };
    for (status, label) in [("X", "unknown"), ("N", "not-asked")] {
        let results = decode_hl7(message(status).as_bytes(), &Hl7Options::default());
        let e = results[0].as_ref().expect_err("no value");
        assert_eq!(e.absent(), Some(label), "{e}");
        assert!(
            e.to_string().starts_with("OBX[1]-11: lactate has no value"),
            "{e}"
        );
    }
    let results = decode_hl7(message("Q").as_bytes(), &Hl7Options::default());
    assert!(
        results[0]
            .as_ref()
            .unwrap_err()
            .to_string()
            .contains("(or X or N for a result without a value)"),
        "{results:?}"
    );
}

/// Non-invasive blood pressure sent as a cuff pressure, by numeric code or by reference id.
#[test]
fn cuff_pressures_are_non_invasive_blood_pressure() {
    let msg = "MSH|^~\\&|GW|ICU|VIGIL|HOSP|20261123101500+0100||ORU^R01|M1|P|2.6\rPID|||P1^^^H^MR\r\
               OBX|1|NM|150301^MDC_PRESS_CUFF_SYS^MDC|1.1.9.150301|147|266016^MDC_DIM_MMHG^MDC|||||F|||20261123101500+0100\r\
               OBX|2|NM|150303^MDC_PRESS_CUFF_MEAN^MDC|1.1.9.150303|109|266016^MDC_DIM_MMHG^MDC|||||F|||20261123101500+0100\r\
               OBX|3|NM|^MDC_PRESS_CUFF_DIA^MDC|1.1.9.150302|90|266016^MDC_DIM_MMHG^MDC|||||F|||20261123101500+0100\r";
    let read: Vec<(vigil_score::Param, f64)> = decode_hl7(msg.as_bytes(), &Hl7Options::default())
        .iter()
        .map(|r| {
            let d = r.as_ref().expect("read");
            (d.observation.param(), num(d))
        })
        .collect();
    use vigil_score::Param::*;
    assert_eq!(read, vec![(Sbp, 147.0), (Map, 109.0), (Dbp, 90.0)]);
}

/// Two PATIENT_RESULT groups: the second patient's HR 150 and RR 35 were credited to the
/// first patient, whose PID came first (issue 29, item 1).
const TWO_PATIENTS: &str = "MSH|^~\\&|GW|ICU|VIGIL|HOSP|20261123101500+0100||ORU^R01|M2|P|2.5.1\r\
     PID|||P1^^^H^MR\rPV1||I|ICU-1^^01||||||||||||||||E1\r\
     OBR|1||ORD-1|VITALS|||20261123101500+0100\r\
     OBX|1|NM|8867-4^HR^LN||72|/min|||||F\r\
     OBX|2|NM|9279-1^RR^LN||14|/min|||||F\r\
     PID|||P2^^^H^MR\rPV1||I|ICU-2^^07||||||||||||||||E2\r\
     OBR|1||ORD-2|VITALS|||20261123101500+0100\r\
     OBX|1|NM|8867-4^HR^LN||150|/min|||||F\r\
     OBX|2|NM|9279-1^RR^LN||35|/min|||||F\r";

#[test]
fn each_reading_carries_the_patient_of_its_own_group() {
    let r = decode_hl7(TWO_PATIENTS.as_bytes(), &Hl7Options::default());
    let got: Vec<(String, f64, Option<String>, Option<String>)> = r
        .iter()
        .map(|d| {
            let d = d.as_ref().expect("every result accepted");
            (
                d.patient_id.to_string(),
                num(d),
                d.encounter_id.clone(),
                d.location.clone(),
            )
        })
        .collect();
    let expect = |p: &str, v: f64, e: &str, l: &str| {
        (p.to_owned(), v, Some(e.to_owned()), Some(l.to_owned()))
    };
    assert_eq!(
        got,
        vec![
            expect("P1", 72.0, "E1", "ICU-1/01"),
            expect("P1", 14.0, "E1", "ICU-1/01"),
            expect("P2", 150.0, "E2", "ICU-2/07"),
            expect("P2", 35.0, "E2", "ICU-2/07"),
        ]
    );
}

#[test]
fn a_group_without_a_readable_patient_loses_only_its_own_results() {
    // The second group's PID-3 holds no MR identifier: its results are rejected with
    // the reason, the first group's are kept, and none goes to the first patient.
    let message = TWO_PATIENTS.replace("P2^^^H^MR", "P2^^^H^PI");
    let r = decode_hl7(message.as_bytes(), &Hl7Options::default());
    assert_eq!(r.len(), 4);
    assert!(
        r[..2]
            .iter()
            .all(|d| d.as_ref().unwrap().patient_id == "P1")
    );
    for d in &r[2..] {
        assert_eq!(
            d.as_ref().map(|_| ()).unwrap_err().to_string(),
            "PID[2]-3: holds identifier types \"PI\" but none of the configured MR (PID-3.5); \
             set [input] hl7_identifier_type to accept another type"
        );
    }
    // A group with no PV1 has no visit of its own: it never inherits the one before.
    let message = TWO_PATIENTS.replace("PV1||I|ICU-2^^07||||||||||||||||E2\r", "");
    let r = decode_hl7(message.as_bytes(), &Hl7Options::default());
    let second = r[2].as_ref().expect("accepted");
    assert_eq!(
        (second.encounter_id.as_deref(), second.location.as_deref()),
        (None, None)
    );
    // A result before any PID names no patient.
    let early = "MSH|^~\\&|GW|ICU|VIGIL|HOSP|20261123101500+0100||ORU^R01|M3|P|2.5.1\r\
                 OBX|1|NM|8867-4^HR^LN||150|/min|||||F|||20261123101500+0100\r\
                 PID|||P1^^^H^MR\r\
                 OBX|2|NM|8867-4^HR^LN||72|/min|||||F|||20261123101500+0100\r";
    let r = decode_hl7(early.as_bytes(), &Hl7Options::default());
    assert_eq!(
        r[0].as_ref().map(|_| ()).unwrap_err().to_string(),
        "OBX[1]: comes before any PID; each PATIENT_RESULT group names its patient in a PID \
         segment before its results"
    );
    assert_eq!(r[1].as_ref().unwrap().patient_id.to_string(), "P1");
}

#[test]
fn a_message_splits_into_one_message_per_patient() {
    let single = sample("monitor-vitals.hl7");
    let parts = per_patient(&single);
    assert_eq!(parts.len(), 1);
    assert_eq!(
        &*parts[0],
        &single[..],
        "one patient: forwarded byte for byte"
    );
    let parts = per_patient(TWO_PATIENTS.as_bytes());
    assert_eq!(parts.len(), 2);
    let header = "MSH|^~\\&|GW|ICU|VIGIL|HOSP|20261123101500+0100||ORU^R01|M2|P|2.5.1\r";
    for (part, patient, values) in [
        (&parts[0], "P1", [72.0, 14.0]),
        (&parts[1], "P2", [150.0, 35.0]),
    ] {
        let text = std::str::from_utf8(part).unwrap();
        assert!(
            text.starts_with(&format!("{header}PID|||{patient}^")),
            "{text}"
        );
        let decoded = decode_hl7(part, &Hl7Options::default());
        let got: Vec<(String, f64)> = decoded
            .iter()
            .map(|d| {
                let d = d.as_ref().unwrap();
                (d.patient_id.to_string(), num(d))
            })
            .collect();
        assert_eq!(got, values.map(|v| (patient.to_owned(), v)).to_vec());
    }
}

mod groups {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Whatever the groups, their visits, orders and results, and whatever segment
        /// endings: no decoded reading names a patient other than its group's PID, each
        /// group keeps all its results, and splitting by patient gives the same readings.
        #[test]
        fn no_reading_names_a_patient_other_than_its_groups(
            groups in prop::collection::vec(
                ("[A-Z]{1,3}[0-9]{1,6}", any::<bool>(), any::<bool>(), prop::collection::vec(40u32..180, 0..5)),
                1..6,
            ),
            ending in prop::sample::select(vec!["\r", "\n", "\r\n"]),
        ) {
            let mut m = format!("MSH|^~\\&|GW|ICU|VIGIL|HOSP|20261123101500+0100||ORU^R01|M|P|2.5.1{ending}");
            let mut expected = Vec::new();
            for (i, (patient, pv1, obr, values)) in groups.iter().enumerate() {
                m.push_str(&format!("PID|||{patient}^^^H^MR{ending}"));
                if *pv1 {
                    m.push_str(&format!("PV1||I|U{i}^^{i}||||||||||||||||V{i}{ending}"));
                }
                if *obr {
                    m.push_str(&format!("OBR|1||O{i}|VITALS|||20261123101500+0100{ending}"));
                }
                for (k, v) in values.iter().enumerate() {
                    m.push_str(&format!("OBX|{k}|NM|8867-4^HR^LN||{v}|/min|||||F|||2026112310{:02}+0100{ending}", k));
                    expected.push((patient.clone(), f64::from(*v), pv1.then(|| format!("V{i}"))));
                }
            }
            let decode = |bytes: &[u8]| -> Vec<(String, f64, Option<String>)> {
                decode_hl7(bytes, &Hl7Options::default())
                    .into_iter()
                    .filter_map(|d| d.ok())
                    .map(|d| (d.patient_id.to_string(), num(&d), d.encounter_id.clone()))
                    .collect()
            };
            if expected.is_empty() {
                prop_assert!(decode_hl7(m.as_bytes(), &Hl7Options::default()).iter().all(|d| d.is_err()));
            } else {
                prop_assert_eq!(&decode(m.as_bytes()), &expected);
                let split: Vec<_> = per_patient(m.as_bytes())
                    .iter()
                    .flat_map(|part| decode(part))
                    .collect();
                prop_assert_eq!(&split, &expected);
            }
        }
    }
}

#[test]
fn the_assigning_authority_gives_the_patient_identifiers_system() {
    use vigil_wire::PatientNaming;
    let naming = |pid3: &str| {
        let m = format!(
            "MSH|^~\\&|GW|ICU|VIGIL|HOSP|20261123101500+0100||ORU^R01|M1|P|2.6\rPID|||{pid3}\r\
             OBX|1|NM|8867-4^HR^LN||80|/min|||||F|||20261123101500+0100\r"
        );
        let r = decode_hl7(m.as_bytes(), &Hl7Options::default());
        r[0].as_ref().expect("accepted").patient_naming.clone()
    };
    assert_eq!(
        naming("P1^^^HOSP&2.16.840.1.113883.19.5&ISO^MR"),
        PatientNaming::System("urn:oid:2.16.840.1.113883.19.5".into())
    );
    assert_eq!(
        naming("P1^^^HOSP&https://hospital.example.org/mrn&URI^MR"),
        PatientNaming::System("https://hospital.example.org/mrn".into())
    );
    // A namespace alone is local to the sender: no system is made up for it.
    assert_eq!(naming("P1^^^HOSP^MR"), PatientNaming::Id);
}

/// Issue 32: only the first problem of an OBX was reported, so a missing UTC offset hid
/// behind a status error and a missing unit behind both.
#[test]
fn every_problem_of_a_result_is_reported_each_with_its_setting() {
    // A preliminary heart rate, its time without an offset, and no unit.
    let e = one("OBX|1|NM|8867-4^Heart rate^LN||112||||||P|||20261123101500")
        .expect_err("three problems");
    let status = e
        .find("OBX[1]-11: result status \"P\" (preliminary)")
        .expect("the status");
    let time = e
        .find("also OBX[1]-14: \"20261123101500\" has no UTC offset")
        .expect("the time");
    let unit = e
        .find("also OBX[1]-6: empty; heart_rate needs a unit")
        .expect("the unit");
    assert!(status == 0 && status < time && status < unit, "{e}");
    for setting in ["hl7_accept_preliminary", "hl7_time_zone"] {
        assert!(e.contains(setting), "{setting} in {e}");
    }
    // Fixed one by one, each problem goes and the others stay.
    let accepted = Hl7Options {
        accept_preliminary: true,
        ..Hl7Options::default()
    };
    let r = decode_hl7(
        format!("{MSH}OBX|1|NM|8867-4^Heart rate^LN||112||||||P|||20261123101500\r").as_bytes(),
        &accepted,
    );
    let e = r[0].as_ref().expect_err("two problems").to_string();
    assert!(
        e.starts_with("OBX[1]-6:") && e.contains("also OBX[1]-14:"),
        "{e}"
    );
    assert!(!e.contains("OBX[1]-11"), "{e}");
}

/// Issue 32: any number of up to ten digits passed as a valid MDC code and was ignored
/// (190001 was "a valid IEEE 11073 MDC code"), so a mistyped code vanished from the feed.
#[test]
fn only_mdc_codes_vigil_knows_are_ignored_and_any_other_number_is_rejected() {
    let obx = |code: &str| {
        format!(
            "OBX|1|NM|{code}^MDC_SOMETHING^MDC||36.9|268192^MDC_DIM_DEGC^MDC|||||F|||20261123101500+0100"
        )
    };
    // A mistyped code: rejected, with what the number would be and what to do.
    let e = one(&obx("190001")).expect_err("not a code Vigil knows");
    assert!(
        e.contains("190001")
            && e.contains("partition 2, term 58929")
            && e.contains("hl7_mdc_codes"),
        "{e}"
    );
    // A known code Vigil does not score (skin temperature): ignored and counted.
    let r = decode_hl7(
        format!("{MSH}{}\r", obx("150388")).as_bytes(),
        &Hl7Options::default(),
    );
    let e = r[0].as_ref().expect_err("not scored");
    assert!(e.is_not_scored(), "{e}");
    // A hospital's own: mapped to a parameter, or declared unscored.
    let options = Hl7Options {
        extra_mdc: vec![("190001".into(), Param::Temperature)],
        ignored_mdc: vec!["190002".into()],
        ..Hl7Options::default()
    };
    let r = decode_hl7(
        format!(
            "{MSH}{}\r{}\r",
            obx("190001"),
            obx("190002").replace("OBX|1|", "OBX|2|")
        )
        .as_bytes(),
        &options,
    );
    assert_eq!(
        r[0].as_ref().map(|d| d.observation.param()).ok(),
        Some(Param::Temperature)
    );
    assert!(
        r[1].as_ref().is_err_and(|e| e.is_not_scored()),
        "{:?}",
        r[1]
    );
}
