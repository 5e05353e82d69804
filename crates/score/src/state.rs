//! A patient's durable state as bytes: the window's readings and the alert policy's
//! state, in a versioned, fixed little-endian layout, so a service can keep them in a
//! changelog and restore them after a restart or rebalance.
//!
//! Only what cannot be derived is written (readings with their id digests and flags, the
//! newest event time, the SOFA baseline, each rule's alert state); caches are rebuilt on
//! restore. The first byte is the format version: a newer Vigil reads every older version
//! it knows; an older Vigil refuses a newer one rather than misreading it.
//!
//! Version 1 layout: `u8 version`, window (`opt i64 newest`, `u8 baseline`, then per
//! parameter in `Param::ALL` order `u16 n` and `n` entries of `i64 effective, f64 value,
//! u64 id digest, u8 flags`), then per rule in `RuleId::ALL` order `u8 active level
//! (0 none)`, `u32 episode` and four `Held` records (`opt i64 since, opt i64 last, u32
//! count`). `opt i64` is a `u8` presence flag followed by the value when present.
//!
//! Version 2 appends, per rule in `RuleId::ALL` order, what the alert episode rests on:
//! `opt i64 first raised at`, `u32 rests-on parameter bits`, `u32 overdue parameter bits
//! reported`, `opt i64 overdue reported at`, `opt i64 last score`; then `opt i64` when the
//! patient's latest reading was received. Version 1 bytes read as an episode with nothing
//! recorded there (the next assessment fills it in).
//!
//! Version 3 has the layout of version 2; each entry's id digest is written with its two
//! lowest bits zero, because a window keeps 62 bits of each digest and uses the other two
//! for the entry's flags (two ids are the same reading when the 62 bits agree). Versions
//! 1 and 2 read with those two bits ignored. An older Vigil refuses version 3 rather than
//! compare full digests against shortened ones.
//!
//! Version 4 appends Vigil Risk's alert state (the seventh rule, in the version 1 and
//! version 2 layouts of one rule) and then `opt i64` since when the patient has been
//! observed (the earliest reading ever applied, [`Window::first`]; Vigil Risk reads it).
//! Versions 1 to 3 read with Vigil Risk's alert state empty and the oldest reading still
//! held as the first.

use std::fmt;

use crate::alert::AlertState;
use crate::config::Staleness;
use crate::window::Window;

/// The version this build writes.
pub const VERSION: u8 = 4;

/// Why stored state could not be restored.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StateError {
    /// Written by a newer Vigil.
    NewerVersion(u8),
    /// Truncated or inconsistent bytes.
    Corrupt(&'static str),
}

impl fmt::Display for StateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StateError::NewerVersion(v) => write!(
                f,
                "state version {v} was written by a newer Vigil (this one reads up to {VERSION})"
            ),
            StateError::Corrupt(what) => write!(f, "state is corrupt: {what}"),
        }
    }
}

impl std::error::Error for StateError {}

/// Writes fixed-width little-endian values.
pub(crate) struct Writer<'a>(pub(crate) &'a mut Vec<u8>);

impl Writer<'_> {
    pub(crate) fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    pub(crate) fn u16(&mut self, v: u16) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub(crate) fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub(crate) fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub(crate) fn i64(&mut self, v: i64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub(crate) fn f64(&mut self, v: f64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub(crate) fn opt_i64(&mut self, v: Option<i64>) {
        match v {
            Some(v) => {
                self.u8(1);
                self.i64(v);
            }
            None => self.u8(0),
        }
    }
}

/// Reads what [`Writer`] wrote, never past the end.
pub(crate) struct Reader<'a>(pub(crate) &'a [u8]);

impl Reader<'_> {
    /// Skips `n` bytes.
    pub(crate) fn skip(&mut self, n: usize) -> Result<(), StateError> {
        self.0 = self.0.get(n..).ok_or(StateError::Corrupt("truncated"))?;
        Ok(())
    }

    fn take<const N: usize>(&mut self) -> Result<[u8; N], StateError> {
        let (head, rest) = self
            .0
            .split_at_checked(N)
            .ok_or(StateError::Corrupt("truncated"))?;
        self.0 = rest;
        let mut out = [0u8; N];
        out.copy_from_slice(head);
        Ok(out)
    }
    pub(crate) fn u8(&mut self) -> Result<u8, StateError> {
        Ok(self.take::<1>()?[0])
    }
    pub(crate) fn u16(&mut self) -> Result<u16, StateError> {
        Ok(u16::from_le_bytes(self.take()?))
    }
    pub(crate) fn u32(&mut self) -> Result<u32, StateError> {
        Ok(u32::from_le_bytes(self.take()?))
    }
    pub(crate) fn u64(&mut self) -> Result<u64, StateError> {
        Ok(u64::from_le_bytes(self.take()?))
    }
    pub(crate) fn i64(&mut self) -> Result<i64, StateError> {
        Ok(i64::from_le_bytes(self.take()?))
    }
    pub(crate) fn f64(&mut self) -> Result<f64, StateError> {
        Ok(f64::from_le_bytes(self.take()?))
    }
    pub(crate) fn opt_i64(&mut self) -> Result<Option<i64>, StateError> {
        match self.u8()? {
            0 => Ok(None),
            1 => Ok(Some(self.i64()?)),
            _ => Err(StateError::Corrupt("bad presence flag")),
        }
    }
}

/// Encodes one patient's window and alert state.
pub fn encode(window: &Window, alerts: &AlertState) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + 32 * window.entry_count());
    let mut w = Writer(&mut out);
    w.u8(VERSION);
    window.write_state(&mut w);
    alerts.write_state(&mut w);
    w.opt_i64(window.first().map(crate::time::Timestamp::as_millis));
    out
}

/// Restores what [`encode`] wrote (any version up to [`VERSION`]), rebuilding the
/// window's caches with `staleness`.
///
/// # Errors
///
/// [`StateError`] for a newer version or corrupt bytes; never a panic.
pub fn decode(bytes: &[u8], staleness: &Staleness) -> Result<(Window, AlertState), StateError> {
    let mut r = Reader(bytes);
    let version = match r.u8()? {
        v @ 1..=VERSION => v,
        v if v > VERSION => return Err(StateError::NewerVersion(v)),
        _ => return Err(StateError::Corrupt("unknown version")),
    };
    let mut window = Window::read_state(&mut r, staleness)?;
    let alerts = AlertState::read_state(&mut r, version)?;
    let first = if version >= 4 {
        r.opt_i64()?.map(crate::time::Timestamp::from_millis)
    } else {
        window.oldest_held()
    };
    window.set_first(first);
    if !r.0.is_empty() {
        return Err(StateError::Corrupt("trailing bytes"));
    }
    Ok((window, alerts))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::PolicyConfig;
    use crate::config::Config;
    use crate::observation::{Observation, RawValue, Status};
    use crate::time::Timestamp;
    use crate::{Ingested, assess};
    use proptest::prelude::*;

    const T0: i64 = 1_795_428_000_000;
    const CODES: [(&str, f64, f64); 8] = [
        ("heart_rate", 30.0, 180.0),
        ("resp_rate", 5.0, 40.0),
        ("sbp", 60.0, 230.0),
        ("platelets", 5.0, 300.0),
        ("pao2", 40.0, 300.0),
        ("fio2", 0.21, 1.0),
        ("lactate", 0.5, 9.0),
        ("norepinephrine", 0.0, 0.5),
    ];

    fn obs(i: usize, code: usize, f: f64, minute: i64, status: u8) -> Observation {
        let (name, lo, hi) = CODES[code];
        let status = [Status::Final, Status::Amended, Status::EnteredInError][usize::from(status)];
        Observation::new(
            name,
            RawValue::Number(lo + (hi - lo) * f),
            None,
            Timestamp::from_millis(T0 + minute * 60_000),
            Some(&format!("o{i}")),
            status,
        )
        .expect("valid")
    }

    proptest! {
        /// Restored state scores, alerts and deduplicates exactly like the original.
        #[test]
        fn encode_then_decode_restores_behaviour(
            steps in prop::collection::vec((0..CODES.len(), 0.0..1.0f64, 0..600i64, 0..3u8), 1..80),
            baseline in 0..4u8,
        ) {
            let config = Config::default();
            let policy = PolicyConfig::every_rule();
            let mut window = Window::new();
            window.set_sofa_baseline(baseline);
            let mut alerts = AlertState::new();
            let mut sent = Vec::new();
            for (i, &(code, f, minute, status)) in steps.iter().enumerate() {
                let o = obs(i % 20, code, f, minute, status);
                window.ingest(&o, &config.staleness);
                let at = window.newest().unwrap_or(Timestamp::from_millis(T0));
                alerts.decide(&assess(&window, at, &config), &window, &config, &policy);
                sent.push(o);
            }
            let bytes = encode(&window, &alerts);
            let (restored, restored_alerts) = decode(&bytes, &config.staleness).expect("restores");
            prop_assert_eq!(restored_alerts, alerts);
            prop_assert_eq!(restored.newest(), window.newest());
            prop_assert_eq!(restored.first(), window.first());
            for minute in [0i64, 300, 600, 1500, 3000] {
                let at = Timestamp::from_millis(T0 + minute * 60_000);
                prop_assert_eq!(assess(&restored, at, &config), assess(&window, at, &config));
            }
            // Redelivered input is recognised after a restore as before it.
            let (mut a, mut b) = (window.clone(), restored);
            for o in &sent {
                prop_assert_eq!(a.ingest(o, &config.staleness), b.ingest(o, &config.staleness));
            }
            let at = a.newest().unwrap_or(Timestamp::from_millis(T0));
            prop_assert_eq!(assess(&a, at, &config), assess(&b, at, &config));
        }

        /// Arbitrary bytes are refused with an error, never a panic (issue 33: this test
        /// only checked for no panic): bytes that do not start with a version this build
        /// reads are always refused, and whatever is accepted is a state, which encodes
        /// and decodes back to itself.
        #[test]
        fn corrupt_bytes_are_refused(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
            let staleness = Staleness::default();
            match decode(&bytes, &staleness) {
                Err(_) => {}
                Ok((window, alerts)) => {
                    prop_assert!(matches!(bytes.first(), Some(1..=VERSION)), "{bytes:?}");
                    let again = encode(&window, &alerts);
                    let (w, a) = decode(&again, &staleness).expect("an accepted state re-encodes");
                    prop_assert_eq!(&a, &alerts);
                    prop_assert_eq!(w.newest(), window.newest());
                    prop_assert_eq!(encode(&w, &a), again);
                }
            }
            if !matches!(bytes.first(), Some(1..=VERSION)) {
                prop_assert!(decode(&bytes, &staleness).is_err());
            }
        }

        /// Every cut of a valid state is refused: nothing half-written is taken for a
        /// patient.
        #[test]
        fn every_truncated_state_is_refused(cut in 0usize..10_000) {
            let config = Config::default();
            let mut w = Window::new();
            for m in 0..6 {
                w.ingest(&obs(m, m % CODES.len(), 0.5, (m * 30) as i64, 0), &config.staleness);
            }
            let bytes = encode(&w, &AlertState::new());
            let cut = cut % bytes.len();
            prop_assert!(decode(&bytes[..cut], &config.staleness).is_err(), "cut at {}", cut);
        }
    }

    #[test]
    fn versions_and_truncation() {
        let config = Config::default();
        let mut w = Window::new();
        w.ingest(&obs(1, 0, 0.5, 0, 0), &config.staleness);
        let bytes = encode(&w, &AlertState::new());
        assert_eq!(bytes[0], VERSION);
        let mut newer = bytes.clone();
        newer[0] = VERSION + 1;
        assert_eq!(
            decode(&newer, &config.staleness).unwrap_err(),
            StateError::NewerVersion(VERSION + 1)
        );
        for cut in 0..bytes.len() {
            assert!(
                decode(&bytes[..cut], &config.staleness).is_err(),
                "cut at {cut}"
            );
        }
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert_eq!(
            decode(&trailing, &config.staleness).unwrap_err(),
            StateError::Corrupt("trailing bytes")
        );
        assert_eq!(
            w.ingest(&obs(1, 0, 0.5, 0, 0), &config.staleness),
            Ingested::Duplicate
        );
    }

    #[test]
    fn version_4_layout_is_pinned_and_older_versions_still_read() {
        // One heart rate of 80 at T0 with id "o1"; no alert. Changing the layout breaks
        // stored changelogs: bump VERSION and keep reading the older ones instead.
        let config = Config::default();
        let mut w = Window::new();
        let o = Observation::new(
            "heart_rate",
            RawValue::Number(80.0),
            None,
            Timestamp::from_millis(T0),
            Some("o1"),
            Status::Final,
        )
        .unwrap();
        w.ingest(&o, &config.staleness);
        let bytes = encode(&w, &AlertState::new());
        // version + newest (1+8) + baseline + 28 counts (2 each) + one entry (8+8+8+1)
        // + 6 rules x (level 1 + episode 4 + 4 Held x (absent 1 + absent 1 + count 4))
        let v1_len = 1 + 9 + 1 + 56 + 25 + 6 * (5 + 4 * 6);
        // + 6 rules x (first raised 1 + rests on 4 + overdue 4 + reported 1 + score 1)
        // + last received 1
        let v3_len = v1_len + 6 * 11 + 1;
        // Version 4: + Vigil Risk's state (5 + 4 x 6, then 11) + first reading (1 + 8).
        assert_eq!(bytes.len(), v3_len + (5 + 4 * 6) + 11 + 9);
        assert_eq!(
            &bytes[..10],
            &[4, 1, 0, 33, 217, 7, 162, 1, 0, 0][..],
            "version, newest = T0"
        );
        assert_eq!(
            &bytes[bytes.len() - 9..],
            &[&[1u8][..], &T0.to_le_bytes()].concat()[..],
            "first = T0"
        );
        // Version 3 (no Vigil Risk state, no first reading): the oldest reading is the first.
        let mut v3 = bytes[..v3_len].to_vec();
        v3[0] = 3;
        let (window, alerts) = decode(&v3, &config.staleness).expect("version 3 reads");
        assert_eq!(alerts, AlertState::new());
        assert_eq!(window.first(), Some(Timestamp::from_millis(T0)));
        let entry = &bytes[11 + 2..11 + 2 + 25];
        assert_eq!(&entry[..8], &T0.to_le_bytes());
        assert_eq!(&entry[8..16], &80.0f64.to_le_bytes());
        let digest = crate::ObsId::of("o1").get();
        assert_eq!(&entry[16..24], &(digest & !3).to_le_bytes());
        assert_eq!(entry[24], 1, "flags: has id");
        // Version 2 wrote the full digest: it reads, and the reading is still recognised.
        let mut v2 = bytes[..v3_len].to_vec();
        v2[0] = 2;
        v2[11 + 2 + 16..11 + 2 + 24].copy_from_slice(&(digest | 3).to_le_bytes());
        let (mut window, _) = decode(&v2, &config.staleness).expect("version 2 reads");
        assert_eq!(window.ingest(&o, &config.staleness), Ingested::Duplicate);
        // The same state as version 1 wrote it.
        let mut v1 = bytes[..v1_len].to_vec();
        v1[0] = 1;
        let (window, alerts) = decode(&v1, &config.staleness).expect("version 1 reads");
        assert_eq!(alerts, AlertState::new());
        assert_eq!(window.newest(), w.newest());
    }
}
