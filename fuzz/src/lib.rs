//! What every fuzz target does with its input: decode it in one format, and push every
//! accepted reading through a patient's tracker: window, all six rules, the alert policy
//! (one decision per vital-sign set) and its reminders between readings.

/// Decodes `data` as `format` and scores and decides whatever it accepts; must never
/// panic.
pub fn exercise(data: &[u8], format: &vigil_wire::Format) {
    let config = vigil_score::Config::default();
    let policy = vigil_score::PolicyConfig::every_rule();
    let mut tracker = vigil_score::Tracker::new();
    for decoded in format.decode(data).into_iter().flatten() {
        let _ = decoded.to_native_json();
        let effective = decoded.observation.effective();
        let _ = tracker.ingest(&decoded.observation, Some(effective), &config, &policy);
        tracker.note_received(effective);
    }
    let _ = tracker.flush(&config, &policy);
    if let Some(newest) = tracker.window().newest() {
        let _ = tracker.remind(newest.plus(vigil_score::Span::hours(7)), &config, &policy);
    }
}
