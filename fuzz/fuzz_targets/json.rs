//! Native JSON observations: any bytes decode to observations or precise errors, never a
//! panic; accepted ones survive the window and every rule.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    vigil_fuzz_common(data, &vigil_wire::Format::Json);
});

fn vigil_fuzz_common(data: &[u8], format: &vigil_wire::Format) {
    let config = vigil_score::Config::default();
    let mut window = vigil_score::Window::new();
    for decoded in format.decode(data).into_iter().flatten() {
        let _ = decoded.to_native_json();
        window.ingest(&decoded.observation, &config.staleness);
        let _ = vigil_score::assess(&window, decoded.observation.effective(), &config);
    }
}
