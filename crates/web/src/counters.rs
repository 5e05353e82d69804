//! What the board refused, reordered and throttled, counted for operators: served as
//! Prometheus text at `GET /metrics` (no patient data, no user names).

use std::fmt::Write as _;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;

/// The board's counters.
#[derive(Debug, Default)]
pub struct Counters {
    /// Messages of either topic that are not events of it.
    pub unreadable: AtomicU64,
    /// Actions refused for their signature: unsigned, malformed, wrong (in the order of
    /// [`vigil_board::Unverified`]).
    pub unverified: [AtomicU64; 3],
    /// Actions from the topic the board refused (role, ownership, values, no case).
    pub refused: AtomicU64,
    /// Events that arrived out of order and were put in their place.
    pub reordered: AtomicU64,
    /// Events that arrived beyond the reordering horizon.
    pub late: AtomicU64,
    /// Sign-ins answered 429 without a password check (throttled).
    pub logins_throttled: AtomicU64,
    /// Sign-ins answered 503 because the password-check queue was full.
    pub logins_busy: AtomicU64,
    /// Failed sign-ins (a password was checked and was wrong).
    pub logins_failed: AtomicU64,
    /// Connections closed at once because the board had its most.
    pub connections_refused: AtomicU64,
    /// Connections open now.
    pub connections_open: AtomicU64,
}

impl Counters {
    /// The counters as Prometheus text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let mut one = |name: &str, help: &str, kind: &str, samples: &[(&str, u64)]| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (labels, v) in samples {
                let _ = writeln!(out, "{name}{labels} {v}");
            }
        };
        let get = |c: &AtomicU64| c.load(Relaxed);
        one(
            "vigil_board_events_unreadable_total",
            "Messages of the alert or action topic that are not events of it.",
            "counter",
            &[("", get(&self.unreadable))],
        );
        one(
            "vigil_board_actions_unverified_total",
            "Actions refused because their signature is missing, malformed or wrong.",
            "counter",
            &[
                ("{reason=\"unsigned\"}", get(&self.unverified[0])),
                ("{reason=\"malformed_signature\"}", get(&self.unverified[1])),
                ("{reason=\"wrong_signature\"}", get(&self.unverified[2])),
            ],
        );
        one(
            "vigil_board_actions_refused_total",
            "Signed actions the board refused (role, ownership, values, no case).",
            "counter",
            &[("", get(&self.refused))],
        );
        one(
            "vigil_board_events_reordered_total",
            "Events that arrived before an earlier event of their patient and were put in place.",
            "counter",
            &[("", get(&self.reordered))],
        );
        one(
            "vigil_board_events_late_total",
            "Events that arrived beyond the reordering horizon, applied after later ones.",
            "counter",
            &[("", get(&self.late))],
        );
        one(
            "vigil_board_logins_total",
            "Sign-in attempts by outcome (throttled and busy ones check no password).",
            "counter",
            &[
                ("{outcome=\"failed\"}", get(&self.logins_failed)),
                ("{outcome=\"throttled\"}", get(&self.logins_throttled)),
                ("{outcome=\"busy\"}", get(&self.logins_busy)),
            ],
        );
        one(
            "vigil_board_connections_refused_total",
            "Connections closed at once because the board had board.max_connections open.",
            "counter",
            &[("", get(&self.connections_refused))],
        );
        one(
            "vigil_board_connections",
            "Connections open now.",
            "gauge",
            &[("", get(&self.connections_open))],
        );
        out
    }
}
