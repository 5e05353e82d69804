//! Property tests of the engine's invariants: worsening a vital never lowers NEWS2 or
//! SOFA, scores stay in range, arrival order and redelivery do not change a result, the
//! window stays bounded, and no input panics.

use proptest::prelude::*;
use vigil_score::window::HISTORY_CAP;
use vigil_score::{
    Assessment, Config, Observation, Param, RawValue, Status, Timestamp, Window, assess,
};

const T0: i64 = 1_795_428_000_000;
const HOUR: i64 = 3_600_000;

fn at(ms: i64) -> Timestamp {
    Timestamp::from_millis(ms)
}

fn num(code: &str, v: f64, t: i64) -> Observation {
    Observation::new(code, RawValue::Number(v), None, at(t), None, Status::Final).unwrap()
}

/// A plausible bedside vital-sign set, all charted at T0.
#[derive(Clone, Debug)]
struct Vitals {
    resp_rate: f64,
    spo2: f64,
    sbp: f64,
    heart_rate: f64,
    temperature: f64,
    on_oxygen: bool,
    scale2: bool,
    acvpu: &'static str,
}

fn vitals() -> impl Strategy<Value = Vitals> {
    (
        (4.0..60.0f64, 60.0..100.0f64, 50.0..260.0f64, 25.0..200.0f64),
        (
            30.0..43.0f64,
            any::<bool>(),
            any::<bool>(),
            prop::sample::select(vec!["A", "C", "V", "P", "U"]),
        ),
    )
        .prop_map(
            |((resp_rate, spo2, sbp, heart_rate), (temperature, on_oxygen, scale2, acvpu))| {
                Vitals {
                    resp_rate,
                    spo2,
                    sbp,
                    heart_rate,
                    temperature,
                    on_oxygen,
                    scale2,
                    acvpu,
                }
            },
        )
}

fn window_of(v: &Vitals) -> Window {
    let config = Config::default();
    let mut w = Window::new();
    let mut add = |o: Observation| {
        w.ingest(&o, &config.staleness);
    };
    add(num("resp_rate", v.resp_rate, T0));
    add(num("spo2", v.spo2, T0));
    add(num("sbp", v.sbp, T0));
    add(num("heart_rate", v.heart_rate, T0));
    add(num("temperature", v.temperature, T0));
    add(Observation::new(
        "on_oxygen",
        RawValue::Bool(v.on_oxygen),
        None,
        at(T0),
        None,
        Status::Final,
    )
    .unwrap());
    add(Observation::new(
        "consciousness",
        RawValue::Text(v.acvpu),
        None,
        at(T0),
        None,
        Status::Final,
    )
    .unwrap());
    if v.scale2 {
        add(num("spo2_scale", 2.0, T0));
    }
    w
}

fn score(w: &Window) -> Assessment {
    assess(w, at(T0), &Config::default())
}

/// Moves `v` `d` further from the middle of the normal (0-point) band, within `[lo, hi]`.
fn away(v: f64, mid: f64, d: f64, lo: f64, hi: f64) -> f64 {
    if v <= mid {
        (v - d).max(lo)
    } else {
        (v + d).min(hi)
    }
}

fn check_bounds(a: &Assessment) -> Result<(), TestCaseError> {
    prop_assert!(a.qsofa.score <= 3);
    prop_assert_eq!(a.qsofa.positive, a.qsofa.score >= 2);
    prop_assert!(a.sirs.score <= 4);
    prop_assert_eq!(a.sirs.positive, a.sirs.score >= 2);
    prop_assert!(a.news2.score <= 20);
    let c = a.news2.components;
    prop_assert_eq!(
        a.news2.score,
        c.resp_rate + c.spo2 + c.on_oxygen + c.sbp + c.heart_rate + c.consciousness + c.temperature
    );
    prop_assert!(a.sofa.score <= 24);
    prop_assert!(a.mews.score <= 15);
    // Every criterion's reading is no later than the evaluation instant.
    for e in a
        .news2
        .criteria
        .as_slice()
        .iter()
        .chain(a.sofa.criteria.as_slice())
    {
        prop_assert!(e.reading().effective <= a.at);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn worsening_one_vital_never_lowers_news2(v in vitals(), which in 0..7usize, d in 0.0..40.0f64) {
        let before = score(&window_of(&v));
        check_bounds(&before)?;
        let mut worse = v.clone();
        match which {
            0 => worse.resp_rate = away(v.resp_rate, 16.0, d, 1.0, 120.0),
            1 => worse.spo2 = (v.spo2 - d).max(1.0),
            2 => worse.sbp = away(v.sbp, 165.0, d, 20.0, 300.0),
            3 => worse.heart_rate = away(v.heart_rate, 70.0, d, 1.0, 350.0),
            4 => worse.temperature = away(v.temperature, 37.0, d / 10.0, 25.0, 45.0),
            5 => worse.on_oxygen = true,
            _ => worse.acvpu = if v.acvpu == "A" { "C" } else { v.acvpu },
        }
        // On scale 2 a higher SpO2 on oxygen is worse; only test scale 1 for SpO2 falls.
        prop_assume!(!(which == 1 && v.scale2));
        let after = score(&window_of(&worse));
        check_bounds(&after)?;
        prop_assert!(after.news2.score >= before.news2.score,
            "{:?} -> {:?}: {} -> {}", v, worse, before.news2.score, after.news2.score);
        prop_assert!(after.news2.risk >= before.news2.risk || after.news2.score > before.news2.score);
    }

    #[test]
    fn worsening_one_sofa_input_never_lowers_sofa(
        base in (10.0..500.0f64, 0.25..1.0f64, 1.0..400.0f64, 0.1..20.0f64, 20.0..110.0f64,
                 3u8..=15, 0.1..10.0f64, 0.0..2000.0f64, 0.0..0.5f64, 0.0..25.0f64),
        vent in any::<bool>(),
        which in 0..10usize,
        factor in 0.0..1.0f64,
    ) {
        let (pao2, fio2, platelets, bilirubin, map, gcs, creatinine, urine, norepi, dopamine) = base;
        let build = |pao2: f64, fio2: f64, platelets: f64, bilirubin: f64, map: f64, gcs: u8,
                     creatinine: f64, urine: f64, norepi: f64, dopamine: f64, vent: bool| {
            let config = Config::default();
            let mut w = Window::new();
            for (code, v) in [("pao2", pao2), ("fio2", fio2), ("platelets", platelets),
                              ("bilirubin", bilirubin), ("map", map), ("gcs", f64::from(gcs)),
                              ("creatinine", creatinine), ("urine_output", urine),
                              ("norepinephrine", norepi), ("dopamine", dopamine)] {
                w.ingest(&num(code, v, T0), &config.staleness);
            }
            let o = Observation::new("ventilation", RawValue::Bool(vent), None, at(T0), None, Status::Final).unwrap();
            w.ingest(&o, &config.staleness);
            score(&w)
        };
        let before = build(pao2, fio2, platelets, bilirubin, map, gcs, creatinine, urine, norepi, dopamine, vent);
        check_bounds(&before)?;
        let lower = |v: f64, lo: f64| lo + (v - lo) * factor;
        let higher = |v: f64, hi: f64| v + (hi - v) * factor;
        let mut w = (pao2, fio2, platelets, bilirubin, map, gcs, creatinine, urine, norepi, dopamine, vent);
        match which {
            0 => w.0 = lower(pao2, 10.0),
            1 => w.1 = higher(fio2, 1.0),
            2 => w.2 = lower(platelets, 0.0),
            3 => w.3 = higher(bilirubin, 100.0),
            4 => w.4 = lower(map, 10.0),
            5 => w.5 = 3 + ((f64::from(gcs - 3)) * factor) as u8,
            6 => w.6 = higher(creatinine, 40.0),
            7 => w.7 = lower(urine, 0.0),
            8 => w.8 = higher(norepi, 100.0),
            _ => w.10 = true,
        }
        let after = build(w.0, w.1, w.2, w.3, w.4, w.5, w.6, w.7, w.8, w.9, w.10);
        prop_assert!(after.sofa.score >= before.sofa.score,
            "case {which}: {} -> {}", before.sofa.score, after.sofa.score);
    }

    #[test]
    fn arrival_order_and_redelivery_do_not_change_the_result(
        readings in prop::collection::vec((0..8usize, 0.0..1.0f64, 0..(20 * HOUR)), 1..24),
        seed in any::<u64>(),
    ) {
        let codes = [("heart_rate", 30.0, 180.0), ("resp_rate", 5.0, 40.0), ("sbp", 60.0, 230.0),
                     ("temperature", 33.0, 41.0), ("spo2", 70.0, 100.0), ("platelets", 5.0, 400.0),
                     ("lactate", 0.5, 10.0), ("gcs", 3.0, 15.0)];
        let obs: Vec<Observation> = readings.iter().enumerate().map(|(i, &(c, f, dt))| {
            let (code, lo, hi) = codes[c];
            let v = if code == "gcs" { (lo + (hi - lo) * f).round() } else { lo + (hi - lo) * f };
            num(code, v, T0 + dt).with_id(&format!("obs-{i}"), Status::Final)
        }).collect();
        let config = Config::default();
        let mut in_order = Window::new();
        for o in &obs {
            in_order.ingest(o, &config.staleness);
        }
        // A deterministic shuffle, then every observation delivered twice.
        let mut shuffled = obs.clone();
        let mut s = seed | 1;
        for i in (1..shuffled.len()).rev() {
            s ^= s << 13; s ^= s >> 7; s ^= s << 17;
            shuffled.swap(i, (s % (i as u64 + 1)) as usize);
        }
        let mut replayed = Window::new();
        for o in shuffled.iter().chain(&shuffled) {
            replayed.ingest(o, &config.staleness);
        }
        let when = at(T0 + 20 * HOUR);
        prop_assert_eq!(assess(&in_order, when, &config), assess(&replayed, when, &config));
    }

    #[test]
    fn no_input_panics_and_the_window_stays_bounded(
        events in prop::collection::vec(
            ("\\PC{0,12}|heart_rate|map|gcs|consciousness|fio2|spo2_scale|8867-4|2160-0",
             prop_oneof![any::<f64>().prop_map(Raw::N), "\\PC{0,8}".prop_map(Raw::T), any::<bool>().prop_map(Raw::B)],
             prop::option::of("\\PC{0,8}|Cel|\\[degF\\]|umol/L|%|kPa"),
             -100i64..(100 * HOUR),
             prop::option::of(0u8..6),
             0..3u8),
            0..200),
        eval_offsets in prop::collection::vec(-200i64..(200 * HOUR), 1..4),
    ) {
        let config = Config::default();
        let mut w = Window::new();
        for (code, value, unit, dt, id, status) in &events {
            let raw = match value {
                Raw::N(n) => RawValue::Number(*n),
                Raw::T(t) => RawValue::Text(t),
                Raw::B(b) => RawValue::Bool(*b),
            };
            let status = [Status::Final, Status::Amended, Status::EnteredInError][usize::from(*status)];
            let id = id.map(|i| format!("id-{i}"));
            if let Ok(o) = Observation::new(code, raw, unit.as_deref(), at(T0 + dt), id.as_deref(), status) {
                w.ingest(&o, &config.staleness);
            }
        }
        for p in Param::ALL {
            prop_assert!(w.entries(*p) <= HISTORY_CAP);
        }
        for dt in eval_offsets {
            check_bounds(&assess(&w, at(T0 + dt), &config))?;
        }
    }
}

#[derive(Clone, Debug)]
enum Raw {
    N(f64),
    T(String),
    B(bool),
}
