//! `vigil_evaluate::run` end to end: a synthetic cohort whose every figure is worked out
//! by hand, and real PhysioNet 2019 stays pinned to their figures (read from
//! `../shared/data`, never copied into the repository).

use std::path::{Path, PathBuf};

use vigil_evaluate::metrics::POLICY;
use vigil_evaluate::{Evaluation, Input, Options, run};
use vigil_score::{Config, Param, PolicyConfig, RuleId};

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("vigil-evaluate-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("mkdir");
    d
}

/// The bedside-score policy (NEWS2 5/7, MEWS 3/5, held an hour): the figures below are
/// worked out by hand from NEWS2, and the real stays' were confirmed independently
/// (tools/challenge_utility.py), on it.
fn options(bootstrap: usize) -> Options {
    Options {
        config: Config::default(),
        policy: PolicyConfig {
            thresholds: vigil_score::alert::Thresholds::bedside(),
            ..PolicyConfig::default()
        },
        bootstrap,
        seed: 7,
        predictions: None,
        progress: false,
    }
}

/// A stay of `n` hours with respiratory rate and systolic pressure each hour: NEWS2 5 (RR
/// 25 scores 3, SBP 95 scores 2) in the hours of `high`, 0 otherwise (RR 16, SBP 130);
/// labelled from hour `label_from`.
fn stay(dir: &Path, name: &str, n: usize, high: std::ops::Range<usize>, label_from: Option<usize>) {
    let mut text = String::from("Resp|SBP|Age|SepsisLabel\n");
    for h in 0..n {
        let (rr, sbp) = if high.contains(&h) {
            (25, 95)
        } else {
            (16, 130)
        };
        let label = label_from.is_some_and(|f| h >= f);
        text.push_str(&format!("{rr}|{sbp}|60|{}\n", u8::from(label)));
    }
    std::fs::write(dir.join(name), text).expect("write");
}

fn close(a: Option<f64>, b: f64) -> bool {
    a.is_some_and(|a| (a - b).abs() < 1e-6)
}

fn value(e: Option<vigil_evaluate::metrics::Estimate>) -> Option<f64> {
    e.map(|e| e.value)
}

/// Four stays, each figure worked out by hand in the comments.
fn synthetic() -> Evaluation {
    let dir = tmp("synthetic");
    // Septic, 30 h, labelled from 14 (t_sepsis 20, onset window 8-23); NEWS2 5 from hour
    // 10: held an hour at 11, alerted 11-29 (one episode, a true one; lead 20 - 11 = 9).
    stay(&dir, "s1.psv", 30, 10..30, Some(14));
    // Non-septic, 24 h, never high.
    stay(&dir, "s2.psv", 24, 0..0, None);
    // Non-septic, 24 h, high 5-8: alerted 6-9 (the all-clear at 9 holds an hour at 10).
    stay(&dir, "s3.psv", 24, 5..9, None);
    // Septic from the first row (t_sepsis 6), 12 h, never high: missed.
    stay(&dir, "s4.psv", 12, 0..0, Some(0));
    run(&Input::Psv(dir), &options(50)).expect("evaluates")
}

#[test]
fn a_synthetic_cohort_gives_every_figure_worked_out_by_hand() {
    let e = synthetic();
    assert_eq!(e.cohort.stays, 4);
    assert_eq!(e.cohort.septic, 2);
    assert_eq!(e.cohort.hours, 90);
    let p = &e.figures[POLICY];
    // Utility: s1 earns 0.5 + 0.667 + 0.833 + 1 (hours 11-14) + 8/9 + ... + 0 (15-23) = 7;
    // s3 costs 4 x 0.05; s4 misses (-10). Best 7.5 + 5, inaction -10 - 10:
    // (7 - 0.2 - 10 + 20) / (12.5 + 20).
    assert!(close(value(p.utility), 16.8 / 32.5), "{:?}", p.utility);
    assert!(close(value(p.sensitivity), 0.5));
    assert!(close(value(p.non_septic_alerted), 0.5));
    // Two episodes in 90 hours.
    assert!(close(
        value(p.episodes_per_100_patient_days),
        2.0 * 100.0 / (90.0 / 24.0)
    ));
    assert!(close(value(p.episode_ppv), 0.5));
    assert!(close(value(p.alerted_hours), (19.0 + 4.0) / 90.0));
    assert!(close(value(p.lead_time_median), 9.0));
    assert_eq!((p.detected, p.episodes), (1, 2));
    // NEWS2's hourly score against the labels: positives 16 at 5 (s1) and 12 at 0 (s4);
    // negatives 8 at 5 and 54 at 0. AUROC (16 x 54 + 0.5 x 16 x 8 + 0.5 x 12 x 54) /
    // (28 x 62); average precision 16/28 x 16/24 + 12/28 x 28/90.
    let news2 = &e.figures[2];
    assert!(
        close(value(news2.auroc), 1252.0 / 1736.0),
        "{:?}",
        news2.auroc
    );
    assert!(close(
        value(news2.auprc),
        16.0 / 28.0 * 16.0 / 24.0 + 12.0 / 28.0 * 28.0 / 90.0
    ));
    // NEWS2 alone alerts at once: s1 from hour 10, lead 10.
    assert!(close(value(news2.lead_time_median), 10.0));
    // Every hour had RR and SBP; nothing had a heart rate.
    let coverage = e.curves.coverage();
    let share = |p: Param| coverage.iter().find(|c| c.0 == p).map(|c| c.1);
    assert!(close(share(Param::RespRate), 1.0));
    assert!(close(share(Param::HeartRate), 0.0));
    // Age is not scored: ignored, 90 cells.
    assert_eq!(e.counts.ignored().get("Age"), Some(&90));
    assert_eq!(e.counts.accepted, 180);
    // Intervals bracket the value.
    for f in &e.figures {
        for est in [f.utility, f.sensitivity, f.episodes_per_100_patient_days]
            .into_iter()
            .flatten()
        {
            if let (Some(lo), Some(hi)) = (est.low, est.high) {
                assert!(lo <= est.value + 1e-9 && est.value <= hi + 1e-9, "{est:?}");
            }
        }
    }
}

#[test]
fn threshold_curves_count_runs_and_stays_at_each_threshold() {
    let e = synthetic();
    let curve = e.curves.thresholds(RuleId::News2, 20);
    // NEWS2 reaches 5 in s1's onset window and in s3: every threshold up to 5 alike.
    for p in &curve[..5] {
        assert!((p.sensitivity - 0.5).abs() < 1e-9, "{p:?}");
        assert!((p.non_septic_alerted - 0.5).abs() < 1e-9);
        assert!((p.episodes_per_100_patient_days - 2.0 * 100.0 / 3.75).abs() < 1e-9);
    }
    assert_eq!(curve[5].sensitivity, 0.0);
    assert_eq!(curve[5].episodes_per_100_patient_days, 0.0);
}

#[test]
fn the_bootstrap_is_reproducible_from_its_seed() {
    let a = synthetic();
    let b = synthetic();
    assert_eq!(a.figures, b.figures);
}

/// Copies the named stays out of PhysioNet 2019 set A into a fresh directory; `None` (the
/// test skips, saying where to get the data) on a machine without it (README, "Test
/// it").
fn real_stays(test: &str, names: &[&str]) -> Option<PathBuf> {
    let set_a = vigil_testkit::data::physionet_set_a(test)?;
    let dir = tmp("real");
    let source = vigil_evaluate::psv::Source::open(&set_a).expect("archive");
    source
        .for_each(|name, text, _| {
            if names.contains(&name) {
                std::fs::write(dir.join(name), text.expect("text")).expect("write");
            }
        })
        .expect("read");
    Some(dir)
}

#[test]
fn real_stays_of_set_a_give_their_pinned_figures() {
    // p000011 septic (t_sepsis 30), alerted from hour 21: lead 9. p000015 septic from
    // its first row, never alerted. p000006 not septic, alerted 15 of its 17 hours.
    // p000002 not septic, never alerted.
    let names = ["p000002.psv", "p000006.psv", "p000011.psv", "p000015.psv"];
    let Some(dir) = real_stays("real_stays_of_set_a_give_their_pinned_figures", &names) else {
        return;
    };
    let preds = dir.join("predictions");
    let e = run(
        &Input::Psv(dir.clone()),
        &Options {
            predictions: Some(preds.clone()),
            ..options(0)
        },
    )
    .expect("evaluates");
    assert_eq!((e.cohort.stays, e.cohort.septic), (4, 2));
    let p = &e.figures[POLICY];
    assert!(close(value(p.sensitivity), 0.5));
    assert!(close(value(p.non_septic_alerted), 0.5));
    assert!(close(value(p.lead_time_median), 9.0));
    let alerted = |name: &str| -> Vec<usize> {
        std::fs::read_to_string(preds.join(name))
            .expect("predictions")
            .lines()
            .skip(1)
            .enumerate()
            .filter(|(_, l)| l.ends_with("|1"))
            .map(|(h, _)| h)
            .collect()
    };
    assert_eq!(alerted("p000002.psv"), Vec::<usize>::new());
    assert_eq!(alerted("p000006.psv").len(), 15);
    assert_eq!(alerted("p000006.psv")[0], 2);
    assert_eq!(alerted("p000011.psv")[0], 21);
    assert_eq!(alerted("p000015.psv"), Vec::<usize>::new());
    let pinned = value(p.utility).expect("utility");
    assert!((pinned - PINNED_UTILITY).abs() < 1e-6, "{pinned}");
}

/// The policy's normalised utility on the four stays above, as Vigil first computed it
/// and tools/challenge_utility.py (an independent implementation) confirmed from the
/// predictions written (0.130952).
const PINNED_UTILITY: f64 = 0.130_952_380_952_380_93;
