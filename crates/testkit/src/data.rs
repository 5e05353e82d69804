//! The real data some tests read, where it is, and what happens when it is not there.
//!
//! Tests that pin figures on real ICU stays read the PhysioNet/CinC Challenge 2019
//! training set A archive (`training_setA.tar.gz`, CC BY 4.0) in place, never a copy in
//! the repository. It is looked for in `$VIGIL_PHYSIONET_SET_A` (the archive or the
//! directory of `.psv` files), then beside the repository at
//! `../shared/data/physionet2019/training_setA.tar.gz`. Without it such a test says where
//! to get it and returns: it skips, so that the README's test command passes on a machine
//! that has only what the README lists. With `VIGIL_REQUIRE_DATA=1` (set by `.ci/run`,
//! which has the data) a missing archive fails the test instead.

use std::path::PathBuf;

/// The environment variable naming the set A archive or directory.
pub const SET_A_ENV: &str = "VIGIL_PHYSIONET_SET_A";

/// The environment variable that makes missing data a failure rather than a skip.
pub const REQUIRE_ENV: &str = "VIGIL_REQUIRE_DATA";

/// Where set A comes from, for the skip message and the docs.
pub const SET_A_SOURCE: &str = "PhysioNet/CinC Challenge 2019, training set A \
    (https://physionet.org/content/challenge-2019/1.0.0/, DOI 10.13026/v64v-d857, CC BY 4.0): \
    download training_setA (or the whole training set) and set VIGIL_PHYSIONET_SET_A to the \
    .tar.gz or to the directory of .psv files";

/// The set A archive or directory, if this machine has it; otherwise a message on
/// standard error saying that the calling test (named by its thread, else `test`) skips and where to get the data,
/// or, with [`REQUIRE_ENV`] set to 1, a panic.
///
/// # Panics
///
/// When the data is missing and [`REQUIRE_ENV`] is `1`.
pub fn physionet_set_a(test: &str) -> Option<PathBuf> {
    let named = std::env::var_os(SET_A_ENV).map(PathBuf::from);
    let beside = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/physionet2019/training_setA.tar.gz");
    let candidate = named.clone().unwrap_or_else(|| beside.clone());
    if candidate.exists() {
        return Some(candidate);
    }
    let looked = named.unwrap_or(beside);
    // The test harness names each test's thread after the test.
    let current = std::thread::current();
    let test = current.name().filter(|n| *n != "main").unwrap_or(test);
    let message = format!(
        "{test}: skipped: needs real ICU data not found at {}. {SET_A_SOURCE}",
        looked.display()
    );
    if std::env::var(REQUIRE_ENV).is_ok_and(|v| v == "1") {
        panic!("{message} ({REQUIRE_ENV}=1: the data is required here)");
    }
    // Written to the process's standard error itself, not through `eprintln!`, which the
    // test harness captures and shows only for a failing test.
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "{message}");
    None
}
