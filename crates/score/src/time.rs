//! Event time: an instant in UTC with millisecond precision, and RFC 3339 text.
//!
//! The engine never reads a clock. Every instant it sees was carried in by an observation
//! (`effective`) or passed in by the caller (the evaluation instant). Keeping the
//! representation a plain `i64` of milliseconds makes window arithmetic and ordering free
//! on the hot path; parsing and formatting happen only at the edges.

use std::fmt;

/// An instant, as milliseconds since 1970-01-01T00:00:00Z (the default is that epoch).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

/// A span of time in milliseconds. Never negative.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Span(i64);

const MS_PER_SEC: i64 = 1_000;
const MS_PER_MIN: i64 = 60 * MS_PER_SEC;
const MS_PER_HOUR: i64 = 60 * MS_PER_MIN;
const MS_PER_DAY: i64 = 24 * MS_PER_HOUR;

impl Span {
    /// The longest span representable; used for "never stale".
    pub const FOREVER: Span = Span(i64::MAX / 4);

    /// A span of whole hours.
    pub const fn hours(h: i64) -> Span {
        Span(h * MS_PER_HOUR)
    }

    /// A span of whole seconds.
    pub const fn seconds(s: i64) -> Span {
        Span(s * MS_PER_SEC)
    }

    /// A span of whole minutes.
    pub const fn minutes(m: i64) -> Span {
        Span(m * MS_PER_MIN)
    }

    /// A span of milliseconds; negative input is clamped to zero.
    pub const fn millis(ms: i64) -> Span {
        Span(if ms < 0 { 0 } else { ms })
    }

    /// The span in milliseconds.
    pub const fn as_millis(self) -> i64 {
        self.0
    }
}

/// An optional instant in 8 bytes aligned to 4, for state held per patient
/// (`Option<Timestamp>` takes 16 aligned to 8, and per-rule state is mostly instants).
/// The earliest representable instant stands for "none": no input can carry it (the
/// parser takes years 0000 to 9999).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct MaybeTime([u32; 2]);

impl MaybeTime {
    pub(crate) const NONE: MaybeTime = MaybeTime::from_millis(i64::MIN);

    const fn from_millis(ms: i64) -> MaybeTime {
        let bits = ms as u64;
        MaybeTime([bits as u32, (bits >> 32) as u32])
    }

    pub(crate) fn get(self) -> Option<Timestamp> {
        let ms = (u64::from(self.0[0]) | (u64::from(self.0[1]) << 32)) as i64;
        (ms != i64::MIN).then_some(Timestamp(ms))
    }
}

impl Default for MaybeTime {
    fn default() -> Self {
        MaybeTime::NONE
    }
}

impl From<Option<Timestamp>> for MaybeTime {
    fn from(t: Option<Timestamp>) -> Self {
        t.map_or(MaybeTime::NONE, |t| MaybeTime::from_millis(t.0))
    }
}

impl From<Timestamp> for MaybeTime {
    fn from(t: Timestamp) -> Self {
        MaybeTime::from_millis(t.0)
    }
}

impl Timestamp {
    /// The instant `ms` milliseconds after the Unix epoch.
    pub const fn from_millis(ms: i64) -> Timestamp {
        Timestamp(ms)
    }

    /// Milliseconds since the Unix epoch.
    pub const fn as_millis(self) -> i64 {
        self.0
    }

    /// This instant moved back by `span` (saturating).
    pub const fn minus(self, span: Span) -> Timestamp {
        Timestamp(self.0.saturating_sub(span.0))
    }

    /// This instant moved forward by `span` (saturating).
    pub const fn plus(self, span: Span) -> Timestamp {
        Timestamp(self.0.saturating_add(span.0))
    }

    /// Parses an RFC 3339 date-time such as `2026-11-23T10:00:00Z` or
    /// `2026-11-23T11:00:00.250+01:00`. Fractions beyond milliseconds are truncated.
    ///
    /// # Errors
    ///
    /// Returns a [`TimeError`] naming what was wrong when the text is not an RFC 3339
    /// date-time with a time-zone offset (a local time without offset is ambiguous and is
    /// rejected rather than guessed).
    pub fn parse_rfc3339(text: &str) -> Result<Timestamp, TimeError> {
        parse(text.as_bytes()).ok_or_else(|| TimeError {
            text: truncate(text, 64),
        })
    }
}

/// A date-time text that is not RFC 3339.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimeError {
    text: String,
}

impl fmt::Display for TimeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} is not an RFC 3339 date-time with offset (expected e.g. 2026-11-23T10:00:00Z)",
            self.text
        )
    }
}

impl std::error::Error for TimeError {}

pub(crate) fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end])
}

fn digits(b: &[u8], at: usize, n: usize) -> Option<i64> {
    let slice = b.get(at..at + n)?;
    slice.iter().try_fold(0i64, |acc, &c| {
        c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0'))
    })
}

fn expect(b: &[u8], at: usize, want: &[u8]) -> Option<()> {
    want.contains(b.get(at)?).then_some(())
}

fn parse(b: &[u8]) -> Option<Timestamp> {
    let year = digits(b, 0, 4)?;
    expect(b, 4, b"-")?;
    let month = digits(b, 5, 2)?;
    expect(b, 7, b"-")?;
    let day = digits(b, 8, 2)?;
    expect(b, 10, b"Tt ")?;
    let hour = digits(b, 11, 2)?;
    expect(b, 13, b":")?;
    let minute = digits(b, 14, 2)?;
    expect(b, 16, b":")?;
    let second = digits(b, 17, 2)?;
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut pos = 19;
    let mut millis = 0i64;
    if b.get(pos) == Some(&b'.') {
        pos += 1;
        let start = pos;
        while b.get(pos).is_some_and(u8::is_ascii_digit) {
            if pos - start < 3 {
                millis = millis * 10 + i64::from(b[pos] - b'0');
            }
            pos += 1;
        }
        let n = pos - start;
        if n == 0 {
            return None;
        }
        for _ in n..3 {
            millis *= 10;
        }
    }
    let offset_min = match *b.get(pos)? {
        b'Z' | b'z' => {
            pos += 1;
            0
        }
        sign @ (b'+' | b'-') => {
            let oh = digits(b, pos + 1, 2)?;
            expect(b, pos + 3, b":")?;
            let om = digits(b, pos + 4, 2)?;
            if oh > 23 || om > 59 {
                return None;
            }
            pos += 6;
            let m = oh * 60 + om;
            if sign == b'-' { -m } else { m }
        }
        _ => return None,
    };
    if pos != b.len() {
        return None;
    }
    // A leap second is folded onto the following instant's second 59 + 1 = next minute.
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3_600 + minute * 60 + second - offset_min * 60;
    Some(Timestamp(secs * MS_PER_SEC + millis))
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (the "days from civil" algorithm,
/// counting in 400-year eras so the arithmetic stays exact).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

impl fmt::Display for Timestamp {
    /// RFC 3339 in UTC, with milliseconds only when they are not zero.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days = self.0.div_euclid(MS_PER_DAY);
        let rem = self.0.rem_euclid(MS_PER_DAY);
        let (y, m, d) = civil_from_days(days);
        let (h, mi, s, ms) = (
            rem / MS_PER_HOUR,
            rem % MS_PER_HOUR / MS_PER_MIN,
            rem % MS_PER_MIN / MS_PER_SEC,
            rem % MS_PER_SEC,
        );
        write!(f, "{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}")?;
        if ms != 0 {
            write!(f, ".{ms:03}")?;
        }
        f.write_str("Z")
    }
}

impl serde::Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_utc_and_offsets() {
        let z = Timestamp::parse_rfc3339("2026-11-23T10:00:00Z").unwrap();
        assert_eq!(z.as_millis(), 1_795_428_000_000);
        let plus = Timestamp::parse_rfc3339("2026-11-23T11:00:00+01:00").unwrap();
        assert_eq!(plus, z);
        let minus = Timestamp::parse_rfc3339("2026-11-23T05:30:00-04:30").unwrap();
        assert_eq!(minus, z);
        let frac = Timestamp::parse_rfc3339("2026-11-23T10:00:00.1234Z").unwrap();
        assert_eq!(frac.as_millis(), z.as_millis() + 123);
        assert_eq!(
            Timestamp::parse_rfc3339("1970-01-01T00:00:00Z")
                .unwrap()
                .as_millis(),
            0
        );
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "2026-11-23",
            "2026-11-23T10:00:00",
            "2026-13-01T00:00:00Z",
            "2026-02-29T00:00:00Z",
            "2026-11-23T24:00:00Z",
            "2026-11-23T10:00:00.Z",
            "2026-11-23T10:00:00Zjunk",
            "2026-11-23T10:00:00+0100",
            "２026-11-23T10:00:00Z",
        ] {
            assert!(Timestamp::parse_rfc3339(bad).is_err(), "{bad}");
        }
        assert!(Timestamp::parse_rfc3339("2024-02-29T00:00:00Z").is_ok());
    }

    #[test]
    fn formats_rfc3339() {
        let t = Timestamp::parse_rfc3339("2026-11-23T10:00:00.120Z").unwrap();
        assert_eq!(t.to_string(), "2026-11-23T10:00:00.120Z");
        let t = Timestamp::parse_rfc3339("1969-12-31T23:59:59Z").unwrap();
        assert_eq!(t.to_string(), "1969-12-31T23:59:59Z");
    }

    proptest! {
        #[test]
        fn format_then_parse_round_trips(ms in -62_135_596_800_000i64..253_402_300_799_999) {
            let t = Timestamp::from_millis(ms);
            prop_assert_eq!(Timestamp::parse_rfc3339(&t.to_string()).unwrap(), t);
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,40}") {
            let _ = Timestamp::parse_rfc3339(&s);
        }
    }
}
