//! Criterion benchmarks of the decoders on the service's intake thread (`BENCHMARKS.md`
//! records the figures).
//!
//! - `decode/native_json`: one native JSON observation event, as the side-by-side
//!   benchmark sends them (a vital sign with its unit and a fractional-second time),
//!   decoded and validated into a reading;
//! - `decode/native_json_text`: the same with a text value (ACVPU consciousness).

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const VITAL: &[u8] = br#"{"patient_id": "P004217", "code": "heart_rate", "value": 87, "unit": "/min", "effective": "2026-11-23T10:00:03.140000Z"}"#;
const TEXT: &[u8] = br#"{"patient_id": "P004217", "code": "consciousness", "value": "A", "effective": "2026-11-23T10:00:03.140000Z"}"#;

fn decode(c: &mut Criterion) {
    let mut g = c.benchmark_group("decode");
    g.throughput(Throughput::Elements(1));
    for (name, event) in [("native_json", VITAL), ("native_json_text", TEXT)] {
        assert!(vigil_wire::decode_json(event).is_ok(), "{name} decodes");
        g.bench_function(name, |b| {
            b.iter(|| vigil_wire::decode_json(black_box(event)).is_ok())
        });
    }
    g.finish();
}

criterion_group!(benches, decode);
criterion_main!(benches);
