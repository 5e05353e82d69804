//! Running the `vigil` binary and reading what it printed.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// What one run of the binary produced.
pub struct Output {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// Standard output as one JSON value per line.
    pub fn json_lines(&self) -> Vec<serde_json::Value> {
        self.stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }

    /// The object for one patient.
    pub fn patient(&self, id: &str) -> serde_json::Value {
        self.json_lines()
            .into_iter()
            .find(|p| p["patient_id"] == id)
            .unwrap_or_else(|| panic!("no output for {id}:\n{}", self.stdout))
    }
}

/// A file shipped in the repository.
pub fn repo_file(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// Runs `vigil ARGS` with `stdin` as standard input.
pub fn vigil(args: &[&str], stdin: &str) -> Output {
    vigil_env(args, stdin, &[])
}

/// As [`vigil`], with environment variables added.
pub fn vigil_env(args: &[&str], stdin: &str, env: &[(&str, &str)]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the vigil binary runs");
    let mut input = child.stdin.take().expect("stdin is piped");
    input
        .write_all(stdin.as_bytes())
        .expect("stdin accepts input");
    drop(input);
    let out = child.wait_with_output().expect("vigil exits");
    Output {
        status: out.status.code().expect("vigil exits with a status"),
        stdout: String::from_utf8(out.stdout).expect("stdout is UTF-8"),
        stderr: String::from_utf8(out.stderr).expect("stderr is UTF-8"),
    }
}

/// A fresh, empty directory for one test's files: `name` must be unique among the tests
/// (they run in one process, side by side).
pub fn tmp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("vigil-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("mkdir");
    d
}

/// The first `n` stays of PhysioNet 2019 set A, read in place
/// ([`vigil_testkit::data::physionet_set_a`]) and copied out into the fresh directory
/// `name`; `None` (the test skips, saying where to get the data) on a machine without it.
pub fn first_stays(n: usize, name: &str) -> Option<PathBuf> {
    let archive = vigil_testkit::data::physionet_set_a(name)?;
    let dir = tmp_dir(name);
    let mut left = n;
    vigil_evaluate::psv::Source::open(&archive)
        .expect("archive")
        .for_each(|name, text, _| {
            if left > 0 {
                std::fs::write(dir.join(name), text.expect("text")).expect("write");
                left -= 1;
            }
        })
        .expect("read");
    Some(dir)
}
