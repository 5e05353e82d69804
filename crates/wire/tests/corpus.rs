//! Replays the fuzzing corpus (`fuzz/corpus/<format>/`, grown by `cargo fuzz`; see
//! RELIABILITY.md) through the decoders and the engine on every test run, so an input that
//! once crashed a decoder stays fixed.

use std::path::Path;

use vigil_wire::Format;

fn replay(dir: &str, format: &Format) -> usize {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(dir);
    let mut n = 0;
    let config = vigil_score::Config::default();
    let policy = vigil_score::PolicyConfig::every_rule();
    for entry in std::fs::read_dir(&root).unwrap_or_else(|e| panic!("{}: {e}", root.display())) {
        let path = entry.expect("corpus entry").path();
        let bytes = std::fs::read(&path).expect("corpus file");
        // As the fuzz targets do (fuzz/src/lib.rs): tracker, rules, alert policy, reminders.
        let mut tracker = vigil_score::Tracker::new();
        for decoded in format.decode(&bytes).into_iter().flatten() {
            let _ = decoded.to_native_json();
            let effective = decoded.observation.effective();
            let _ = tracker.ingest(&decoded.observation, Some(effective), &config, &policy);
            tracker.note_received(effective);
        }
        let _ = tracker.flush(&config, &policy);
        if let Some(newest) = tracker.window().newest() {
            let _ = tracker.remind(newest.plus(vigil_score::Span::hours(7)), &config, &policy);
        }
        n += 1;
    }
    n
}

#[test]
fn the_fuzzing_corpus_decodes_without_panics() {
    for (dir, format) in [
        ("json", Format::Json),
        ("fhir", Format::from_name("fhir").unwrap()),
        ("hl7v2", Format::from_name("hl7v2").unwrap()),
    ] {
        assert!(replay(dir, &format) > 0, "{dir} corpus is empty");
    }
}

/// What the HL7 v2 fuzz target also holds (fuzz/fuzz_targets/hl7v2.rs): split into one
/// message per PATIENT_RESULT group, each part's readings name one patient, and together
/// they are the whole message's readings (when the whole is within the decoder's bounds).
fn per_patient_holds(bytes: &[u8]) -> bool {
    let options = vigil_wire::Hl7Options::default();
    let parts = vigil_wire::hl7::per_patient(bytes);
    if parts.len() < 2 {
        return false;
    }
    let mut split = Vec::new();
    for part in &parts {
        let readings: Vec<_> = vigil_wire::decode_hl7(part, &options)
            .into_iter()
            .flatten()
            .collect();
        assert!(
            readings
                .windows(2)
                .all(|w| w[0].patient_id == w[1].patient_id),
            "one group's readings name more than one patient: {:?}",
            String::from_utf8_lossy(part)
        );
        split.extend(readings);
    }
    let whole = vigil_wire::decode_hl7(bytes, &options);
    if bytes.len() <= options.limits.max_bytes && whole.len() < options.limits.max_readings {
        let whole: Vec<_> = whole.into_iter().flatten().collect();
        assert_eq!(whole, split, "{:?}", String::from_utf8_lossy(bytes));
    }
    true
}

#[test]
fn no_corpus_message_credits_a_reading_to_another_groups_patient() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/hl7v2");
    let mut several = 0;
    for entry in std::fs::read_dir(&root).expect("the HL7 v2 corpus") {
        let bytes = std::fs::read(entry.expect("corpus entry").path()).expect("corpus file");
        several += usize::from(per_patient_holds(&bytes));
    }
    assert!(several > 0, "no corpus message reports on several patients");
}
