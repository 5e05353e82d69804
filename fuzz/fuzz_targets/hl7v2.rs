//! HL7 v2 ORU^R01 messages: any bytes decode to readings or precise errors, never a panic; accepted readings
//! survive the window and every rule. And no reading is credited to another group's
//! patient: split into one message per PATIENT_RESULT group (`per_patient`, as `vigil
//! mllp` forwards them), each part's readings name one patient, and together they are
//! the whole message's readings (`crates/wire/tests/corpus.rs` holds the same on the
//! corpus).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let format = vigil_wire::Format::from_name("hl7v2").expect("hl7v2");
    vigil_fuzz::exercise(data, &format);
    let options = vigil_wire::Hl7Options::default();
    let parts = vigil_wire::hl7::per_patient(data);
    if parts.len() < 2 {
        return;
    }
    let mut split = Vec::new();
    for part in &parts {
        let readings: Vec<_> = vigil_wire::decode_hl7(part, &options)
            .into_iter()
            .flatten()
            .collect();
        assert!(
            readings.windows(2).all(|w| w[0].patient_id == w[1].patient_id),
            "one group's readings name more than one patient"
        );
        split.extend(readings);
    }
    let whole = vigil_wire::decode_hl7(data, &options);
    if data.len() <= options.limits.max_bytes && whole.len() < options.limits.max_readings {
        let whole: Vec<_> = whole.into_iter().flatten().collect();
        assert_eq!(whole, split, "splitting by patient changed the readings");
    }
});
