//! FHIR R4 samples shaped like the specification's vital-signs examples and US Core, and
//! malformed shapes with the reasons they must be rejected for.

use vigil_score::{Param, Status, Value};
use vigil_wire::{Decoded, FhirOptions, PatientNaming, decode_fhir};

fn sample(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/samples/fhir/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn ok(bytes: &[u8]) -> Vec<Decoded> {
    decode_fhir(bytes, FhirOptions::default())
        .into_iter()
        .map(|r| r.unwrap_or_else(|e| panic!("{e}")))
        .collect()
}

fn num(d: &Decoded) -> f64 {
    match d.observation.value() {
        Value::Number(n) => n,
        other => panic!("{other:?}"),
    }
}

fn err(json: &str) -> String {
    let results = decode_fhir(json.as_bytes(), FhirOptions::default());
    assert_eq!(results.len(), 1, "{results:?}");
    results
        .into_iter()
        .next()
        .unwrap()
        .expect_err("rejected")
        .to_string()
}

#[test]
fn vital_sign_examples_decode_to_their_observations() {
    let hr = ok(&sample("heart-rate.json"));
    assert_eq!(hr.len(), 1);
    assert_eq!(
        (hr[0].observation.param(), num(&hr[0])),
        (Param::HeartRate, 44.0)
    );
    assert_eq!(hr[0].patient_id, "example");
    assert_eq!(hr[0].encounter_id.as_deref(), Some("enc-17"));
    assert_eq!(
        hr[0].observation.effective().to_string(),
        "2026-11-23T09:15:00Z"
    );
    assert_eq!(hr[0].id.as_deref(), Some("heart-rate"));

    let rr = ok(&sample("respiratory-rate.json"));
    assert_eq!(
        (rr[0].observation.param(), num(&rr[0])),
        (Param::RespRate, 26.0)
    );

    let bp = ok(&sample("blood-pressure.json"));
    let got: Vec<_> = bp
        .iter()
        .map(|d| (d.observation.param(), num(d), d.id.clone()))
        .collect();
    assert_eq!(
        got,
        vec![
            (Param::Sbp, 107.0, Some("blood-pressure#8480-6".into())),
            (Param::Dbp, 60.0, Some("blood-pressure#8462-4".into())),
        ]
    );

    let temp = ok(&sample("body-temperature.json"));
    assert_eq!(temp[0].observation.param(), Param::Temperature);
    assert!(
        (num(&temp[0]) - 37.5).abs() < 1e-9,
        "99.5 [degF] is 37.5 Cel"
    );

    let spo2 = ok(&sample("pulse-oximetry-us-core.json"));
    let got: Vec<_> = spo2
        .iter()
        .map(|d| (d.observation.param(), num(d)))
        .collect();
    assert_eq!(
        got,
        vec![
            (Param::Spo2, 95.0),
            (Param::O2Flow, 6.0),
            (Param::Fio2, 0.4)
        ]
    );
    assert_eq!(
        spo2[0].observation.effective().to_string(),
        "2026-11-23T10:15:00Z",
        "effectivePeriod.start"
    );
}

#[test]
fn acvpu_by_snomed_value_with_identifier_and_location() {
    let d = ok(&sample("acvpu.json"));
    assert_eq!(d[0].observation.param(), Param::Consciousness);
    assert_eq!(
        d[0].observation.value(),
        Value::Consciousness(vigil_score::Acvpu::V)
    );
    assert_eq!(d[0].patient_id, "MRN-12345");
    assert_eq!(d[0].location.as_deref(), Some("ward-7/bed-12"));
}

#[test]
fn a_bundle_keeps_its_good_entries_and_reports_the_bad_ones() {
    let results = decode_fhir(&sample("bundle-transaction.json"), FhirOptions::default());
    assert_eq!(
        results.len(),
        4,
        "the Patient entry is not a reading: {results:?}"
    );
    let hr = results[0].as_ref().expect("heart rate");
    assert_eq!(
        (hr.observation.param(), num(hr), hr.patient_id.as_str()),
        (Param::HeartRate, 118.0, "MRN-777")
    );
    let lactate = results[1].as_ref().expect("lactate");
    assert!(
        (num(lactate) - 36.0 / 9.01).abs() < 1e-9,
        "mg/dL converted to mmol/L"
    );
    let weight = results[2].as_ref().expect_err("weight is not a parameter");
    assert_eq!(
        weight.unscored(),
        Some(vigil_wire::CodeSystem::Loinc),
        "ignored, not an error"
    );
    assert_eq!(
        weight.to_string(),
        "Bundle.entry[3].resource.code: \"29463-7\" is a valid LOINC code that Vigil does not \
         score: ignored ([input] reject_unscored_codes = true dead-letters such readings)"
    );
    let withdrawn = results[3].as_ref().expect("entered-in-error");
    assert_eq!(withdrawn.observation.status(), Status::EnteredInError);
}

#[test]
fn malformed_shapes_are_rejected_with_path_value_and_reason() {
    let base = |extra: &str| {
        format!(
            r#"{{"resourceType":"Observation","id":"x","status":"final","code":{{"coding":[{{"system":"http://loinc.org","code":"8867-4"}}]}},"subject":{{"reference":"Patient/P1"}},"effectiveDateTime":"2026-11-23T10:00:00Z"{extra}}}"#
        )
    };
    assert_eq!(
        err(&base("")),
        "Observation.value[x]: missing; expected valueQuantity with a UCUM code (or valueBoolean, or an ACVPU valueCodeableConcept, or dataAbsentReason)"
    );
    assert_eq!(
        err(&base(r#","valueQuantity":{"value":"80","code":"/min"}"#)),
        "Observation.valueQuantity.value: \"80\" is not a number"
    );
    assert_eq!(
        err(&base(r#","valueQuantity":{"value":80,"code":"mm[Hg]"}"#)),
        "Observation.valueQuantity: field `unit`: \"mm[Hg]\" cannot be converted for heart_rate; expected one of /min, {beats}/min"
    );
    assert_eq!(
        err(&base(r#","valueQuantity":{"value":400,"code":"/min"}"#)),
        "Observation.valueQuantity: field `value`: heart_rate 400 /min is outside the possible range 1-350 /min"
    );
    let v = r#","valueQuantity":{"value":80,"code":"/min"}"#;
    assert!(
        err(&base(v).replace(r#""status":"final""#, r#""status":"preliminary""#)).ends_with(
            "; set [input] fhir_accept_preliminary = true to score preliminary results as final"
        ),
        "the error names the setting that accepts it"
    );
    let ok_pre = decode_fhir(
        base(v)
            .replace(r#""status":"final""#, r#""status":"preliminary""#)
            .as_bytes(),
        FhirOptions {
            accept_preliminary: true,
            ..FhirOptions::default()
        },
    );
    assert!(ok_pre[0].is_ok(), "preliminary accepted when configured");
    assert_eq!(
        err(&base(v).replace(r#""status":"final""#, r#""status":"cancelled""#)),
        "Observation.status: \"cancelled\" is not accepted; expected final, amended, corrected or entered-in-error"
    );
    assert!(
        err(&base(v).replace(r#""subject":{"reference":"Patient/P1"},"#, ""))
            .starts_with("Observation.subject: missing names no patient")
    );
    assert!(
        err(&base(v).replace("Patient/P1", "Group/G1"))
            .starts_with("Observation.subject: {\"reference\":\"Group/G1\"} names no patient")
    );
    // EHRs send absolute and version-specific references: the patient id is the same.
    for reference in [
        "https://ehr.example.org/fhir/R4/Patient/P1",
        "http://ehr.example.org/Patient/P1/_history/3",
        "Patient/P1/_history/12",
    ] {
        let r = decode_fhir(
            base(v).replace("Patient/P1", reference).as_bytes(),
            FhirOptions::default(),
        );
        assert_eq!(
            r[0].as_ref().map(|d| d.patient_id.as_str()),
            Ok("P1"),
            "{reference}"
        );
    }
    for reference in [
        "https://ehr.example.org/fhir/Group/G1",
        "https://ehr.example.org/fhir/Patient/",
        "Patient/",
    ] {
        assert!(
            err(&base(v).replace("Patient/P1", reference)).contains("names no patient"),
            "{reference}"
        );
    }
    // A bundle-internal reference outside a Bundle that holds its Patient names nobody.
    assert_eq!(
        err(&base(v).replace(
            "Patient/P1",
            "urn:uuid:0c3151bd-1cbf-4d64-b04d-cd9187a4c6e0"
        )),
        "Observation.subject: \"urn:uuid:0c3151bd-1cbf-4d64-b04d-cd9187a4c6e0\" names no \
         Patient entry of the Bundle; expected the fullUrl of a Patient entry sent with it"
    );
    assert!(
        err(&base(v).replace("2026-11-23T10:00:00Z", "2026-11-23")).starts_with(
            "Observation.effectiveDateTime: \"2026-11-23\" is not a date-time with offset"
        )
    );
    assert!(err(&base(v).replace("8867-4", "1234-5")).contains("has no LOINC coding Vigil knows"));
    assert!(
        err(r#"{"resourceType":"Patient","id":"p"}"#)
            .starts_with("resourceType: \"Patient\" is not supported")
    );
    assert!(
        err(r#"{"resourceType":"Bundle","type":"document","entry":[]}"#)
            .starts_with("Bundle.type: \"document\" is not supported")
    );
    assert!(err("{not json").starts_with("invalid observation JSON"));
    assert!(err(r#"[1,2]"#).starts_with("resourceType: missing is not supported"));
}

#[test]
fn limits_are_configurable() {
    let small = FhirOptions {
        limits: vigil_wire::Limits {
            max_bytes: 100,
            max_readings: 1,
        },
        ..FhirOptions::default()
    };
    let big = decode_fhir(&sample("heart-rate.json"), small);
    assert!(
        big[0]
            .as_ref()
            .unwrap_err()
            .to_string()
            .starts_with("message of "),
        "{big:?}"
    );
    let bundle = decode_fhir(
        &sample("bundle-transaction.json"),
        FhirOptions {
            limits: vigil_wire::Limits {
                max_bytes: 1 << 20,
                max_readings: 2,
            },
            ..FhirOptions::default()
        },
    );
    assert!(
        bundle[0]
            .as_ref()
            .unwrap_err()
            .to_string()
            .contains("5 entries exceed the limit of 2"),
        "{bundle:?}"
    );
}

#[test]
fn bundle_entries_are_bounded() {
    let entry = r#"{"resource":{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"8867-4"}]},"subject":{"reference":"Patient/P1"},"effectiveDateTime":"2026-11-23T10:00:00Z","valueQuantity":{"value":80,"code":"/min"}}}"#;
    let many = format!(
        r#"{{"resourceType":"Bundle","type":"batch","entry":[{}]}}"#,
        vec![entry; vigil_wire::MAX_ENTRIES + 1].join(",")
    );
    let r = decode_fhir(many.as_bytes(), FhirOptions::default());
    assert_eq!(r.len(), 1);
    let e = r[0].as_ref().unwrap_err().to_string();
    assert!(e.contains("1001 entries exceed the limit of 1000"), "{e}");
}

#[test]
fn a_quantity_without_a_unit_is_never_read_as_the_canonical_one() {
    let obs = |quantity: &str| {
        format!(
            r#"{{"resourceType":"Observation","status":"final","code":{{"coding":[{{"system":"http://loinc.org","code":"2524-7"}}]}},"subject":{{"reference":"Patient/P1"}},"effectiveDateTime":"2026-11-23T10:00:00Z","valueQuantity":{quantity}}}"#
        )
    };
    assert_eq!(
        err(&obs(r#"{"value":18}"#)),
        "Observation.valueQuantity.code: empty; lactate needs a unit (expected mmol/L or mg/dL); a unit is never guessed"
    );
    assert_eq!(
        err(&obs(r#"{"value":18,"code":""}"#)),
        "Observation.valueQuantity.code: empty; lactate needs a unit (expected mmol/L or mg/dL); a unit is never guessed"
    );
    let with_unit = ok(obs(r#"{"value":18,"unit":"mg/dL"}"#).as_bytes());
    assert!(
        (num(&with_unit[0]) - 2.0).abs() < 0.01,
        "18 mg/dL is 2.0 mmol/L"
    );
}

/// Some devices send SpO2 as a fraction of one (UCUM `1`): read as the percentage it is,
/// and a percentage sent with unit `1` is out of range, never rescaled by guess.
#[test]
fn spo2_as_a_fraction_is_a_percentage() {
    let spo2 = |quantity: &str| {
        format!(
            r#"{{"resourceType":"Observation","status":"final","code":{{"coding":[{{"system":"http://loinc.org","code":"59408-5"}}]}},"subject":{{"reference":"Patient/P1"}},"effectiveDateTime":"2026-11-23T10:00:00Z","valueQuantity":{quantity}}}"#
        )
    };
    let r = decode_fhir(
        spo2(r#"{"value":0.91,"system":"http://unitsofmeasure.org","code":"1"}"#).as_bytes(),
        FhirOptions::default(),
    );
    assert_eq!(
        r[0].as_ref().map(|d| d.observation.value()),
        Ok(vigil_score::Value::Number(91.0))
    );
    assert!(
        err(&spo2(
            r#"{"value":91,"system":"http://unitsofmeasure.org","code":"1"}"#
        ))
        .contains("outside the possible range"),
    );
}

/// A reading that says why it has no value (`dataAbsentReason`, on the Observation or on
/// one component of a panel) is absent with its reason: never scored, never a rejection,
/// and the panel's other component is still read.
#[test]
fn data_absent_reason_is_counted_as_absent_with_its_reason() {
    let lactate = |absent: &str| {
        format!(
            r#"{{"resourceType":"Observation","status":"final","code":{{"coding":[{{"system":"http://loinc.org","code":"2524-7"}}]}},"subject":{{"reference":"Patient/P1"}},"effectiveDateTime":"2026-11-23T10:00:00Z","dataAbsentReason":{absent}}}"#
        )
    };
    let coded = lactate(
        r#"{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/data-absent-reason","code":"not-performed"}]}"#,
    );
    let r = decode_fhir(coded.as_bytes(), FhirOptions::default());
    assert_eq!(r.len(), 1);
    let e = r[0].as_ref().expect_err("no reading");
    assert_eq!(e.absent(), Some("not-performed"));
    assert!(e.is_not_scored());
    assert_eq!(e.unscored(), None);
    assert_eq!(
        e.to_string(),
        "Observation.dataAbsentReason: 2524-7 has no value (\"not-performed\"): counted as absent, not scored"
    );
    // A reason given only as text keeps its text in the message; its label is bounded.
    let text = lactate(r#"{"text":"sample haemolysed"}"#);
    let r = decode_fhir(text.as_bytes(), FhirOptions::default());
    let e = r[0].as_ref().expect_err("no reading");
    assert_eq!(e.absent(), Some("other"));
    assert!(e.to_string().contains("\"sample haemolysed\""), "{e}");
    // Blood pressure with the diastolic not obtained: the systolic is read.
    let bp = r#"{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"85354-9"}]},"subject":{"reference":"Patient/P1"},"effectiveDateTime":"2026-11-23T10:00:00Z","component":[{"code":{"coding":[{"system":"http://loinc.org","code":"8480-6"}]},"valueQuantity":{"value":88,"code":"mm[Hg]"}},{"code":{"coding":[{"system":"http://loinc.org","code":"8462-4"}]},"dataAbsentReason":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/data-absent-reason","code":"error"}]}}]}"#;
    let r = decode_fhir(bp.as_bytes(), FhirOptions::default());
    assert_eq!(r.len(), 2, "{r:?}");
    let sbp = r[0].as_ref().expect("systolic");
    assert_eq!(sbp.observation.param(), Param::Sbp);
    assert_eq!(num(sbp), 88.0);
    let e = r[1].as_ref().expect_err("no diastolic");
    assert_eq!(e.absent(), Some("error"));
    assert!(
        e.to_string()
            .starts_with("Observation.component[1].dataAbsentReason: 8462-4 has no value"),
        "{e}"
    );
}

/// A valid LOINC code Vigil does not score (serum sodium) is ignored with its system;
/// a LOINC coding with a wrong check digit is still an error.
#[test]
fn an_unscored_loinc_code_is_ignored() {
    let sodium = |code: &str| {
        format!(
            r#"{{"resourceType":"Observation","status":"final","code":{{"coding":[{{"system":"http://loinc.org","code":"{code}","display":"Sodium"}}]}},"subject":{{"reference":"Patient/P1"}},"effectiveDateTime":"2026-11-23T10:00:00Z","valueQuantity":{{"value":140,"code":"mmol/L"}}}}"#
        )
    };
    let r = decode_fhir(sodium("2951-2").as_bytes(), FhirOptions::default());
    assert_eq!(
        r[0].as_ref().unwrap_err().unscored(),
        Some(vigil_wire::CodeSystem::Loinc)
    );
    assert!(
        err(&sodium("2951-2")).starts_with("Observation.code: \"2951-2\" is a valid LOINC code")
    );
    let r = decode_fhir(sodium("2951-3").as_bytes(), FhirOptions::default());
    assert_eq!(r[0].as_ref().unwrap_err().unscored(), None);
}

/// An EHR bundle places the patient through the Encounter: the Observation's location is
/// its Encounter's active location (by `Encounter/<id>` or by the entry's `fullUrl`).
#[test]
fn a_bundled_encounter_gives_the_location() {
    let bundle = r#"{"resourceType":"Bundle","type":"transaction","entry":[
        {"fullUrl":"urn:uuid:6f1c0a3e-1111-4d3a-9c1e-000000000001","resource":{"resourceType":"Encounter","id":"E1","status":"in-progress",
         "location":[{"location":{"reference":"Location/ED-4","display":"ED/4"},"status":"completed"},
                     {"location":{"reference":"Location/W7-712-B","display":"WARD7/712/B"},"status":"active"}]}},
        {"resource":{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"8867-4"}]},"subject":{"reference":"Patient/P1"},"encounter":{"reference":"Encounter/E1"},"effectiveDateTime":"2026-11-23T10:00:00Z","valueQuantity":{"value":80,"code":"/min"}}},
        {"resource":{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"9279-1"}]},"subject":{"reference":"Patient/P1"},"encounter":{"reference":"urn:uuid:6f1c0a3e-1111-4d3a-9c1e-000000000001"},"effectiveDateTime":"2026-11-23T10:00:00Z","valueQuantity":{"value":18,"code":"/min"}}},
        {"resource":{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"8310-5"}]},"subject":{"reference":"Patient/P1"},"encounter":{"reference":"Encounter/E9"},"effectiveDateTime":"2026-11-23T10:00:00Z","valueQuantity":{"value":37,"code":"Cel"}}}
    ]}"#;
    let r = decode_fhir(bundle.as_bytes(), FhirOptions::default());
    let locations: Vec<Option<&str>> = r
        .iter()
        .map(|d| d.as_ref().expect("decoded").location.as_deref())
        .collect();
    assert_eq!(
        locations,
        vec![Some("WARD7/712/B"), Some("WARD7/712/B"), None],
        "an unknown encounter gives no location, never a guess"
    );
}

/// LOINC variants of a scored quantity (an oral temperature, a sitting heart rate) are
/// read as that quantity, with the unit conversion of the primary code.
#[test]
fn loinc_variants_of_a_scored_quantity_are_read() {
    let obs = |code: &str, value: &str| {
        format!(
            r#"{{"resourceType":"Observation","status":"final","code":{{"coding":[{{"system":"http://loinc.org","code":"{code}"}}]}},"subject":{{"reference":"Patient/P1"}},"effectiveDateTime":"2026-11-23T10:00:00Z","valueQuantity":{value}}}"#
        )
    };
    let oral = ok(obs("8331-1", r#"{"value":101.3,"code":"[degF]"}"#).as_bytes());
    assert_eq!(oral[0].observation.param(), Param::Temperature);
    assert!((num(&oral[0]) - 38.5).abs() < 1e-9, "{}", num(&oral[0]));
    let sitting = ok(obs("69000-8", r#"{"value":112,"code":"/min"}"#).as_bytes());
    assert_eq!(sitting[0].observation.param(), Param::HeartRate);
    let nibp = ok(obs("76534-7", r#"{"value":12,"code":"kPa"}"#).as_bytes());
    assert_eq!(nibp[0].observation.param(), Param::Sbp);
    let venous = ok(obs("2519-7", r#"{"value":4.1,"code":"mmol/L"}"#).as_bytes());
    assert_eq!(venous[0].observation.param(), Param::Lactate);
}

/// A search result as an EHR's FHIR API returns it: absolute references, the Encounter
/// included for its location, vital signs and laboratory results in mixed units, a
/// result Vigil does not score and one sent without a value.
#[test]
fn an_ehr_searchset_decodes_with_its_encounter_location() {
    let results = decode_fhir(&sample("ehr-searchset.json"), FhirOptions::default());
    let read: Vec<&Decoded> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    let params: Vec<Param> = read.iter().map(|d| d.observation.param()).collect();
    assert_eq!(
        params,
        [
            Param::HeartRate,
            Param::RespRate,
            Param::Temperature,
            Param::Sbp,
            Param::Dbp,
            Param::Lactate,
            Param::Wbc,
            Param::Creatinine
        ]
    );
    for d in &read {
        assert_eq!(d.patient_id, "MRN-4411");
        assert_eq!(d.encounter_id.as_deref(), Some("ENC-88"));
        assert_eq!(d.location.as_deref(), Some("ward-7/bed-12"));
    }
    // Oral 101.8 [degF] is 38.8 Cel; creatinine 168 umol/L is 1.90 mg/dL.
    assert!((num(read[2]) - 38.777_777).abs() < 1e-3, "{}", num(read[2]));
    assert!((num(read[7]) - 1.900_452).abs() < 1e-3, "{}", num(read[7]));
    let others: Vec<&vigil_wire::DecodeError> =
        results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert_eq!(others.len(), 2, "{others:?}");
    assert_eq!(others[0].unscored(), Some(vigil_wire::CodeSystem::Loinc));
    assert_eq!(others[1].absent(), Some("error"));
}

/// Issue 29, item 5: a transaction Bundle whose Observations name their patient by the
/// `urn:uuid:` fullUrl of a Patient entry in the same Bundle was rejected ("names no
/// patient"): the reference resolves to that Patient's identifier, system kept.
#[test]
fn a_transaction_names_its_patient_by_the_fullurl_of_its_patient_entry() {
    let bundle = |identifiers: &str| {
        format!(
            r#"{{"resourceType":"Bundle","type":"transaction","entry":[
            {{"fullUrl":"urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a","resource":{{"resourceType":"Patient","identifier":{identifiers}}},"request":{{"method":"POST","url":"Patient"}}}},
            {{"fullUrl":"urn:uuid:88f151c0-a954-468a-88bd-5ae15c08e059","resource":{{"resourceType":"Observation","status":"final","code":{{"coding":[{{"system":"http://loinc.org","code":"8867-4"}}]}},"subject":{{"reference":"urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a"}},"effectiveDateTime":"2026-11-23T10:00:00Z","valueQuantity":{{"value":96,"code":"/min"}}}},"request":{{"method":"POST","url":"Observation"}}}}]}}"#
        )
    };
    let mr = r#"[{"system":"urn:oid:2.16.840.1.113883.19.5","value":"SSN-1"},
                {"type":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v2-0203","code":"MR"}]},"system":"https://hospital.example.org/mrn","value":"MRN-77"}]"#;
    let d = ok(bundle(mr).as_bytes());
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].patient_id.as_str(), "MRN-77");
    assert_eq!(
        d[0].patient_naming,
        PatientNaming::System("https://hospital.example.org/mrn".into())
    );
    assert_eq!(num(&d[0]), 96.0);
    // Its only identifier, when none is typed MR.
    let only = r#"[{"system":"https://hospital.example.org/mrn","value":"MRN-78"}]"#;
    assert_eq!(ok(bundle(only).as_bytes())[0].patient_id.as_str(), "MRN-78");
    // Two identifiers and none typed MR: which one is the patient is never guessed.
    let two = r#"[{"system":"a:b","value":"X1"},{"system":"c:d","value":"X2"}]"#;
    let r = decode_fhir(bundle(two).as_bytes(), FhirOptions::default());
    assert_eq!(
        r[0].as_ref().map(|_| ()).unwrap_err().to_string(),
        "Bundle.entry[1].resource.subject: \"urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a\" \
         names a Patient entry of the Bundle, but the Patient entry has 2 identifiers and none \
         typed MR (medical record number); expected one identifier, or one whose type.coding \
         has code MR"
    );
    // A literal reference is a server's id; an identifier keeps its system.
    let v = ok(sample("heart-rate.json").as_slice());
    assert_eq!(v[0].patient_naming, PatientNaming::Resource);
}

/// Issue 32: only the first problem of an entry was reported.
#[test]
fn every_problem_of_an_entry_is_reported() {
    let e = err(r#"{"resourceType":"Observation","status":"preliminary",
        "code":{"coding":[{"system":"http://example.org","code":"hr"}]},
        "subject":{"reference":"Patient/P1"},"effectiveDateTime":"2026-11-23T10:00:00",
        "valueQuantity":{"value":112,"unit":"/min","system":"http://unitsofmeasure.org","code":"/min"}}"#);
    let status = e
        .find("Observation.status: \"preliminary\"")
        .expect("the status");
    let time = e
        .find("also Observation.effectiveDateTime: \"2026-11-23T10:00:00\" is not a date-time with offset")
        .expect("the time");
    let code = e.find("also Observation.code:").expect("the code");
    assert!(status == 0 && status < time && time < code, "{e}");
    assert!(e.contains("fhir_accept_preliminary"), "{e}");
}
