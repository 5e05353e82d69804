//! The third-party tools the interoperability tests drive Vigil with, from PyPI:
//! python-hl7 (`MLLPClient`, asyncio `hl7.mllp`), hl7apy (HL7 v2 validation) and
//! `fhir.resources` 6.1.0 (FHIR R4 4.0.1 validation), pinned here and in `.ci/run`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The pinned packages, as `pip install` takes them. `fhir.resources` 6.1.0 is the last
/// release for FHIR R4 (4.0.1) itself and needs pydantic 1.
pub const PACKAGES: [&str; 4] = [
    "hl7==0.4.5",
    "hl7apy==1.3.5",
    "fhir.resources==6.1.0",
    "pydantic<2",
];

/// Where the packages are under the target directory `target` (the `PYTHONPATH` to run
/// the scripts with): installed there now unless `.ci/run` (or an earlier test) did.
///
/// # Panics
///
/// When pip cannot install them (the test cannot run without them).
pub fn packages(target: &Path) -> PathBuf {
    let dir = target.join("tools/interop");
    if !dir.join("hl7apy").exists() || !dir.join("fhir/resources").exists() {
        assert!(
            pip_install(&dir, &PACKAGES),
            "pip could not install {PACKAGES:?}"
        );
    }
    dir
}

/// Installs `packages` from PyPI into `dir` (`pip install --target`), quietly; whether pip
/// succeeded.
///
/// # Panics
///
/// When `python3 -m pip` cannot be run at all.
pub fn pip_install(dir: &Path, packages: &[&str]) -> bool {
    Command::new("python3")
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--root-user-action=ignore",
            // What is installed here is not the machine's own packages' business.
            "--no-warn-conflicts",
            "--target",
        ])
        .arg(dir)
        .args(packages)
        .status()
        .expect("python3 -m pip runs")
        .success()
}
