//! `vigil-testkit`: what Vigil's tests, demo, load tool and fault-injection harness share,
//! kept out of the production crates.
//!
//! - [`MockBroker`]: an in-process Kafka-protocol broker (librdkafka's mock cluster);
//! - [`free_port`] and [`http_get`]: a free local TCP port, and a plain `GET`;
//! - [`data::physionet_set_a`]: the real ICU data some tests read in place, or a skip
//!   that says where to get it;
//! - [`action_key_file`]: the key tests sign board actions with, in a file;
//! - [`eventually`]: waiting for a condition that another task or process makes true;
//! - [`Rng`]: a small seeded generator (xorshift64*), so that a seed gives the same feed
//!   and the same fault timing on every machine;
//! - [`interop::packages`]: the third-party HL7 v2 and FHIR tools (PyPI) the
//!   interoperability tests drive Vigil with.

pub mod data;
pub mod interop;
pub mod mock;

pub use mock::MockBroker;

/// A free local TCP port (bound and released: whoever binds it next gets it, unless
/// another process is quicker).
///
/// # Errors
///
/// When no port can be bound.
pub fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Waits until `check` holds, looking every 50 ms; `limit` only bounds a failing test.
/// Returns whether it held.
pub async fn eventually(limit: std::time::Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        if check() {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    check()
}

/// `GET path` on a local port: (status code, body); status 0 if nothing answers yet.
pub fn http_get(port: u16, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return (0, String::new());
    };
    let mut text = String::new();
    let sent = write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    );
    if sent.and_then(|()| s.read_to_string(&mut text)).is_err() {
        return (0, String::new());
    }
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map_or(String::new(), |(_, b)| b.to_owned());
    (status, body)
}

/// xorshift64*: small, fast, deterministic; plenty for synthetic data and fault timing.
#[derive(Clone, Debug)]
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// In `0..n` (0 for `n` 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Roughly normal (sum of uniforms), mean 0, standard deviation `sd`.
    pub fn noise(&mut self, sd: f64) -> f64 {
        let s: f64 = (0..4).map(|_| self.unit()).sum::<f64>() - 2.0;
        s * sd * 1.732
    }
}

/// The key the tests sign board actions with (hex, as in a key file).
pub const TEST_ACTION_KEY: &str =
    "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a";

/// A key file holding [`TEST_ACTION_KEY`], for `[board] action_key_file`.
///
/// # Errors
///
/// When the file cannot be written.
pub fn action_key_file() -> std::io::Result<std::path::PathBuf> {
    let path = std::env::temp_dir().join(format!("vigil-test-{}.key", std::process::id()));
    std::fs::write(&path, TEST_ACTION_KEY)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generator_is_deterministic_and_in_range() {
        let (mut a, mut b) = (Rng(7), Rng(7));
        for _ in 0..1000 {
            assert_eq!(a.next_u64(), b.next_u64());
            assert!(a.below(10) < 10);
            let u = a.unit();
            assert!((0.0..1.0).contains(&u));
            b.below(10);
            b.unit();
        }
        assert_eq!(Rng(1).below(0), 0);
    }
}
