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
