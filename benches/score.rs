//! Criterion benchmarks of the scoring hot path (`BENCHMARKS.md` records the figures).
//!
//! - `score/all_rules`: a full assessment (all six rules) of a populated window;
//! - `ingest/observation`: one observation (with an id, checked for redelivery) validated
//!   and ingested into a populated window, then all rules re-scored;
//! - `ingest/decision`: the service's path: one observation ingested by a [`Tracker`] and
//!   its set decided (six rules afresh, Vigil Risk from the tracker's memo);
//! - `ingest/10k_patients`: a stream of observations spread over 10,000 patients, each
//!   looked up by patient id, ingested and re-scored.
//!
//! The ingest benches use [`Patient`], which re-scores only the rules an observation or
//! the passage of time can change (a property test holds it equal to a full assessment).

use std::collections::HashMap;
use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use vigil_score::{
    AlertState, Config, Ingested, Observation, Outcome, Patient, PolicyConfig, RawValue, Status,
    Timestamp, Tracker, Window, assess,
};

const T0: i64 = 1_795_428_000_000;
const MIN: i64 = 60_000;

fn obs(code: &str, value: RawValue<'_>, t: i64) -> Observation {
    Observation::new(
        code,
        value,
        None,
        Timestamp::from_millis(t),
        None,
        Status::Final,
    )
    .expect("bench observations are valid")
}

/// 24 h of a deteriorating ward patient: vitals every 15 minutes, labs every 6 h, a
/// blood gas every 4 h, and a vasopressor started in the last hours.
fn populated_window(config: &Config) -> (Window, i64) {
    let mut w = Window::new();
    let mut t = T0;
    for step in 0..96 {
        t = T0 + step * 15 * MIN;
        let f = step as f64 / 96.0;
        for (code, v) in [
            ("heart_rate", 80.0 + 45.0 * f),
            ("resp_rate", 16.0 + 10.0 * f),
            ("sbp", 130.0 - 40.0 * f),
            ("dbp", 75.0 - 25.0 * f),
            ("map", 93.0 - 30.0 * f),
            ("temperature", 37.0 + 2.2 * f),
            ("spo2", 97.0 - 6.0 * f),
        ] {
            w.ingest(&obs(code, RawValue::Number(v), t), &config.staleness);
        }
        w.ingest(
            &obs("on_oxygen", RawValue::Bool(f > 0.5), t),
            &config.staleness,
        );
        let avpu = if f > 0.8 { "C" } else { "A" };
        w.ingest(
            &obs("consciousness", RawValue::Text(avpu), t),
            &config.staleness,
        );
        if step % 24 == 0 {
            for (code, v) in [
                ("wbc", 9.0 + 8.0 * f),
                ("lactate", 1.2 + 3.0 * f),
                ("creatinine", 0.9 + 1.5 * f),
                ("bilirubin", 0.8 + 1.0 * f),
                ("platelets", 220.0 - 120.0 * f),
                ("gcs", (15.0 - 4.0 * f).round()),
            ] {
                w.ingest(&obs(code, RawValue::Number(v), t), &config.staleness);
            }
        }
        if step % 16 == 0 {
            w.ingest(
                &obs("fio2", RawValue::Number(0.21 + 0.3 * f), t),
                &config.staleness,
            );
            w.ingest(
                &obs("pao2", RawValue::Number(95.0 - 30.0 * f), t),
                &config.staleness,
            );
            w.ingest(
                &obs("paco2", RawValue::Number(38.0 - 8.0 * f), t),
                &config.staleness,
            );
        }
        if step > 84 {
            w.ingest(
                &obs("norepinephrine", RawValue::Number(0.08), t),
                &config.staleness,
            );
        }
    }
    (w, t)
}

/// Adds one to the decimal number at the end of `id`.
fn increment_decimal(id: &mut [u8]) {
    for digit in id.iter_mut().rev() {
        if *digit == b'9' {
            *digit = b'0';
        } else {
            *digit += 1;
            return;
        }
    }
}

/// A monitor's heart-rate feed: a sawtooth from 100 to 141 /min, one reading per
/// millisecond, so even 10^7 readings stay within the hours over which the window's other
/// readings are current (the window stays populated). Feeds carry observation ids, each
/// checked for redelivery; the id is a decimal counter incremented in place so the bench
/// does not time formatting.
struct HeartRate {
    t: i64,
    hr: f64,
    id: [u8; 23],
}

impl HeartRate {
    fn after(last: i64) -> HeartRate {
        HeartRate {
            t: last,
            hr: 100.0,
            id: *b"monitor-7/hr/0000000000",
        }
    }

    fn next(&mut self) -> Observation {
        self.t += 1;
        self.hr = if self.hr > 140.0 {
            100.0
        } else {
            self.hr + 1.0
        };
        increment_decimal(&mut self.id);
        let id = std::str::from_utf8(&self.id).expect("ASCII id");
        obs("heart_rate", RawValue::Number(self.hr), self.t).with_id(id, Status::Final)
    }
}

fn score(c: &mut Criterion) {
    let config = Config::default();
    let (window, last) = populated_window(&config);
    let at = Timestamp::from_millis(last);
    let expected = assess(&window, at, &config);
    assert!(expected.news2.score >= 7 && expected.septic_shock.present);
    let mut g = c.benchmark_group("score");
    g.throughput(Throughput::Elements(1));
    g.bench_function("all_rules", |b| {
        b.iter(|| {
            let a = assess(black_box(&window), black_box(at), &config);
            assert_eq!(a.news2.score, expected.news2.score);
            black_box(&a);
        })
    });
    // The service's default: the six published rules, Vigil Risk not computed (no alert
    // level of it configured).
    let published = Config {
        score_risk: false,
        ..config.clone()
    };
    g.bench_function("published_rules", |b| {
        b.iter(|| {
            let a = assess(black_box(&window), black_box(at), &published);
            assert_eq!(a.news2.score, expected.news2.score);
            black_box(&a);
        })
    });
    // Vigil Risk alone: 43 features of 14 parameters, evidence and horizon.
    let mut risk = vigil_score::rules::risk::Risk::default();
    g.bench_function("risk", |b| {
        b.iter(|| {
            let inputs =
                vigil_score::rules::Inputs::new(black_box(&window), black_box(at), &config);
            vigil_score::rules::risk::score_into(&inputs, &mut risk);
            assert_eq!(risk.score, expected.risk.score);
            black_box(&risk);
        })
    });
    g.finish();
}

fn ingest(c: &mut Criterion) {
    let config = Config::default();
    let mut g = c.benchmark_group("ingest");
    g.throughput(Throughput::Elements(1));
    // The hot path three ways: ingest with all seven rules re-scored (the default
    // engine), with the six published ones only (the service without a Vigil Risk alert
    // level), and ingest alone: the differences are what each part of scoring costs per
    // observation.
    let published = Config {
        score_risk: false,
        ..config.clone()
    };
    for (name, config, scored) in [
        ("observation", &config, true),
        ("observation_published_rules", &published, true),
        ("observation_unscored", &config, false),
    ] {
        g.bench_function(name, |b| {
            let (window, last) = populated_window(config);
            let mut patient = Patient::new();
            *patient.window_mut() = window;
            patient.assess(Timestamp::from_millis(last), config);
            let mut feed = HeartRate::after(last);
            b.iter(|| {
                let o = feed.next();
                let outcome = patient.ingest(black_box(&o), config);
                assert_eq!(outcome, Ingested::Accepted);
                if scored {
                    let a = patient.assess(o.effective(), config);
                    assert!(a.news2.components.heart_rate >= 1);
                    black_box(a);
                }
            })
        });
    }

    // The service's path: a tracker decides once per set (here each reading is its own
    // set), scoring the six published rules afresh and Vigil Risk, when it is scored,
    // from the tracker's memo; with the service's default alert policy.
    let policy = PolicyConfig::default();
    for (name, config) in [
        ("decision", &config),
        ("decision_published_rules", &published),
    ] {
        g.bench_function(name, |b| {
            let (window, last) = populated_window(config);
            let mut tracker = Tracker::from_parts(window, AlertState::new());
            let mut feed = HeartRate::after(last);
            let mut outcome = Outcome::default();
            b.iter(|| {
                let o = feed.next();
                let (ingested, _) =
                    tracker.ingest_into(black_box(&o), None, config, &policy, &mut outcome);
                assert_eq!(ingested, Ingested::Accepted);
                assert!(tracker.flush_into(config, &policy, &mut outcome));
                assert!(outcome.assessment.news2.components.heart_rate >= 1);
                black_box(&outcome);
            })
        });
    }

    const PATIENTS: usize = 10_000;
    const BATCH: usize = 50_000;
    let ids: Vec<String> = (0..PATIENTS).map(|i| format!("MRN-{i:06}")).collect();
    let codes = ["heart_rate", "resp_rate", "sbp", "temperature", "spo2"];
    let values = [88.0, 18.0, 118.0, 37.4, 96.0];
    let mut patients: HashMap<String, Patient> = HashMap::with_capacity(PATIENTS);
    // An endless feed in arrival order: message `n` is a vital sign of patient
    // `n x 7919 mod 10,000` (every patient in turn, in a scattered order), 20 ms after
    // message `n - 1`. Each message is validated as a decoder would, so event time only
    // moves forward however many iterations criterion runs.
    let mut n: u64 = 0;
    g.throughput(Throughput::Elements(BATCH as u64));
    g.bench_function("10k_patients", |b| {
        b.iter(|| {
            let mut alerts = 0u32;
            for _ in 0..BATCH {
                n += 1;
                let patient = (n as usize * 7919) % PATIENTS;
                // Each visit to a patient brings the next of its five vital signs.
                let k = (n as usize / PATIENTS) % codes.len();
                let value = values[k] + (n % 5) as f64;
                let o = obs(codes[k], RawValue::Number(value), T0 + n as i64 * 20);
                let id = ids[patient].as_str();
                let p = match patients.get_mut(id) {
                    Some(p) => p,
                    None => patients.entry(id.to_owned()).or_default(),
                };
                assert_eq!(p.ingest(&o, &config), Ingested::Accepted);
                let a = p.assess(o.effective(), &config);
                alerts += u32::from(a.news2.score >= 5);
            }
            black_box(alerts)
        });
        assert_eq!(patients.len(), PATIENTS);
    });
    g.finish();
}

criterion_group!(benches, score, ingest);
criterion_main!(benches);
