//! The policy figures quoted across the documentation and `config/vigil.toml` are the
//! ones EVALUATION.md measured (issue 32: `config/vigil.toml` said 71 % at 70 episodes
//! while EVALUATION.md said 76 % at 80).

use std::collections::BTreeSet;

use crate::util::repo_file;

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo_file(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// Every "utility at episodes" pair a text quotes (`0.254 at 26`), bold and line breaks
/// aside.
fn pairs(text: &str) -> Vec<(String, String)> {
    let flat: String = text
        .replace("**", "")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let words: Vec<&str> = flat.split(' ').collect();
    words
        .windows(3)
        .filter(|w| {
            w[1] == "at"
                && w[0].len() == 5
                && w[0].starts_with("0.")
                && w[0][2..].bytes().all(|b| b.is_ascii_digit())
        })
        .filter_map(|w| {
            let n: String = w[2].chars().take_while(char::is_ascii_digit).collect();
            (!n.is_empty()).then(|| (w[0].to_owned(), n))
        })
        .collect()
}

/// The figures of EVALUATION.md's "The short answer": each row's utility and episodes,
/// and the replaced policy's.
fn measured() -> BTreeSet<(String, String)> {
    let evaluation = read("EVALUATION.md");
    let short = evaluation
        .split("## The short answer")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("a short answer");
    let mut figures: BTreeSet<(String, String)> = pairs(short).into_iter().collect();
    for row in short
        .lines()
        .filter(|l| l.starts_with('|') && l.contains("**"))
    {
        let cells: Vec<String> = row
            .split('|')
            .map(|c| c.replace("**", "").trim().to_owned())
            .collect();
        // | where | utility (interval) | sensitivity | non-septic | episodes |
        let utility = cells[2].split_whitespace().next().unwrap_or("").to_owned();
        let episodes = cells[5].clone();
        figures.insert((utility, episodes));
    }
    figures
}

#[test]
fn every_policy_figure_quoted_is_the_one_evaluation_measured() {
    let measured = measured();
    assert!(
        measured.contains(&("0.355".into(), "36".into())) && measured.len() >= 4,
        "{measured:?}"
    );
    for doc in [
        "README.md",
        "CLINICAL.md",
        "DESIGN.md",
        "config/vigil.toml",
        "config/profiles/bedside.toml",
        "config/profiles/icu.toml",
        "config/profiles/ward.toml",
    ] {
        for pair in pairs(&read(doc)) {
            assert!(
                measured.contains(&pair),
                "{doc} quotes utility {} at {} episodes, which EVALUATION.md's short answer \
                 does not: {measured:?}",
                pair.0,
                pair.1
            );
        }
    }
    // The README's headline figures are the held-out row's.
    let readme = read("README.md").replace('\n', " ");
    for figure in [
        "utility 0.355",
        "70 % of septic patients",
        "36 alert episodes",
    ] {
        assert!(readme.contains(figure), "README.md: {figure}");
    }
}
