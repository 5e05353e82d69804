//! Native JSON observations: any bytes decode to readings or precise errors, never a panic; accepted readings
//! survive the window and every rule.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    vigil_fuzz::exercise(data, &vigil_wire::Format::Json);
});
