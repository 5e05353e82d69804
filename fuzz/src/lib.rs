//! What every fuzz target does with its input: decode it in one format, and push every
//! accepted reading through a window and all six rules.

/// Decodes `data` as `format` and scores whatever it accepts; must never panic.
pub fn exercise(data: &[u8], format: &vigil_wire::Format) {
    let config = vigil_score::Config::default();
    let mut window = vigil_score::Window::new();
    for decoded in format.decode(data).into_iter().flatten() {
        let _ = decoded.to_native_json();
        window.ingest(&decoded.observation, &config.staleness);
        let _ = vigil_score::assess(&window, decoded.observation.effective(), &config);
    }
}
