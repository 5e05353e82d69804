//! `vigil train` as a user runs it: on real PhysioNet 2019 stays (read in place where
//! the machine has them, `vigil_testkit::data`; skipped with where to get them where it
//! does not), deterministic to the bit, with `--check` failing on any
//! difference, and reproducing the shipped model from all of set A.

use std::path::PathBuf;

use crate::util::{first_stays, repo_file, tmp_dir, vigil};

fn tmp(name: &str) -> PathBuf {
    tmp_dir(&format!("train-{name}"))
}

#[test]
fn training_is_deterministic_and_check_fails_on_any_difference() {
    let Some(stays) = first_stays(400, "train-stays") else {
        return;
    };
    let work = tmp("out");
    let model = work.join("risk.model");
    let (stays, model_path) = (
        stays.to_str().expect("utf-8"),
        model.to_str().expect("utf-8"),
    );
    let out = vigil(
        &["train", "--format", "psv", stays, "--out", model_path],
        "",
    );
    assert_eq!(out.status, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains("held out (5-fold by stay)"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("replayed through the alert semantics"),
        "{}",
        out.stdout
    );
    let text = std::fs::read_to_string(&model).expect("model written");
    let parsed = vigil_score::risk::RiskModel::parse(&text).expect("the model reads back");
    assert_eq!(parsed.to_text(), text);
    assert!(
        text.contains("CC BY 4.0") && text.contains("Reyna"),
        "attribution: {text}"
    );
    assert!(text.contains("400 stays"), "{text}");
    assert_eq!(parsed.features.len(), 43);

    // Trained again: the same bytes.
    let again = vigil(
        &["train", "--format", "psv", stays, "--check", model_path],
        "",
    );
    assert_eq!(again.status, 0, "{}", again.stderr);
    assert!(
        again.stdout.contains("reproduced bit for bit"),
        "{}",
        again.stdout
    );

    // One weight changed in its last digit: --check fails and says which file.
    let i = text.find("weights ").expect("weights") + "weights ".len();
    let end = i + text[i..].find(' ').expect("a second weight");
    let last = text[..end].chars().last().expect("digit");
    let other = if last == '1' { '2' } else { '1' };
    let changed = format!("{}{other}{}", &text[..end - 1], &text[end..]);
    std::fs::write(&model, changed).expect("write");
    let differs = vigil(
        &["train", "--format", "psv", stays, "--check", model_path],
        "",
    );
    assert_eq!(differs.status, 1);
    assert!(
        differs
            .stderr
            .contains("differs from the model trained now"),
        "{}",
        differs.stderr
    );

    // A seed is a different fold assignment.
    let seeded = vigil(
        &[
            "train", "--format", "psv", stays, "--seed", "7", "--out", model_path,
        ],
        "",
    );
    assert_eq!(seeded.status, 0, "{}", seeded.stderr);
    assert_ne!(std::fs::read_to_string(&model).expect("model"), text);
}

#[test]
fn bad_invocations_say_what_is_wrong() {
    let empty = tmp("empty");
    let out = vigil(
        &[
            "train",
            "--format",
            "psv",
            empty.to_str().expect("utf-8"),
            "--out",
            "/dev/null",
        ],
        "",
    );
    assert_eq!(out.status, 1);
    assert!(out.stderr.contains("no stay to train on"), "{}", out.stderr);
    let neither = vigil(
        &["train", "--format", "psv", empty.to_str().expect("utf-8")],
        "",
    );
    assert_eq!(neither.status, 2, "--out or --check is required");
    let jsonl = vigil(&["train", "--format", "jsonl", "x", "--out", "y"], "");
    assert_eq!(jsonl.status, 2);
    assert!(jsonl.stderr.contains("needs --labels"), "{}", jsonl.stderr);
    let psv_labels = vigil(
        &[
            "train", "--format", "psv", "x", "--labels", "l.csv", "--out", "y",
        ],
        "",
    );
    assert_eq!(psv_labels.status, 2);
    let without = vigil(
        &[
            "train",
            "--format",
            "psv",
            "x",
            "--without",
            "oxygen",
            "--out",
            "y",
        ],
        "",
    );
    assert_eq!(without.status, 2);
    assert!(
        without.stderr.contains("\"oxygen\" is not a parameter"),
        "{}",
        without.stderr
    );
}

/// The shipped model is what `vigil train` makes of set A, bit for bit.
#[test]
fn the_shipped_model_is_reproduced_from_set_a() {
    let Some(set_a) =
        vigil_testkit::data::physionet_set_a("the_shipped_model_is_reproduced_from_set_a")
    else {
        return;
    };
    let shipped = repo_file("models/vigil-risk.model");
    let out = vigil(
        &[
            "train",
            "--format",
            "psv",
            set_a.to_str().expect("utf-8"),
            "--check",
            shipped.to_str().expect("utf-8"),
        ],
        "",
    );
    assert_eq!(out.status, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("reproduced bit for bit"),
        "{}",
        out.stdout
    );
}
