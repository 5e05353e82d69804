//! A validated observation: one parameter's value, in canonical units, at an event time.
//!
//! This is where the edge meets the core. Wire decoders (native JSON now, FHIR and HL7 v2
//! later) hand over the fields they found as borrowed text and numbers ([`RawValue`]); this
//! module resolves the code, converts the unit and checks the value, so every
//! [`Observation`] that exists is in range and in canonical units. Anything else is an
//! [`ObservationError`] that names the field, the value and what was expected.

use std::fmt;

use crate::param::{Param, Shape, UnitError};
use crate::time::{Timestamp, truncate};

/// ACVPU level of consciousness (NEWS2). `C` is new confusion.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub enum Acvpu {
    /// Alert.
    A,
    /// New confusion.
    C,
    /// Responds to voice.
    V,
    /// Responds to pain.
    P,
    /// Unresponsive.
    U,
}

impl Acvpu {
    /// Parses the letter or the word (`alert`, `confusion`, `voice`, `pain`,
    /// `unresponsive`), in any case.
    pub fn parse(text: &str) -> Option<Acvpu> {
        let t = text.trim();
        let is = |w: &str| t.eq_ignore_ascii_case(w);
        Some(if is("a") || is("alert") {
            Acvpu::A
        } else if is("c") || is("confusion") || is("confused") || is("new confusion") {
            Acvpu::C
        } else if is("v") || is("voice") {
            Acvpu::V
        } else if is("p") || is("pain") {
            Acvpu::P
        } else if is("u") || is("unresponsive") {
            Acvpu::U
        } else {
            return None;
        })
    }

    fn from_f64(v: f64) -> Acvpu {
        match v as u8 {
            0 => Acvpu::A,
            1 => Acvpu::C,
            2 => Acvpu::V,
            3 => Acvpu::P,
            _ => Acvpu::U,
        }
    }
}

/// A value as a decoder found it, before validation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RawValue<'a> {
    /// A JSON number (or a numeric HL7/FHIR value).
    Number(f64),
    /// Text (ACVPU letters or words, or a coded value).
    Text(&'a str),
    /// A boolean.
    Bool(bool),
}

impl fmt::Display for RawValue<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RawValue::Number(n) => write!(f, "{n}"),
            RawValue::Text(t) => write!(f, "{:?}", truncate(t, 40)),
            RawValue::Bool(b) => write!(f, "{b}"),
        }
    }
}

/// A validated value in the canonical unit of its parameter.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value {
    /// A number in the canonical unit.
    Number(f64),
    /// A flag (`on_oxygen`, `ventilation`).
    Flag(bool),
    /// ACVPU.
    Consciousness(Acvpu),
    /// NEWS2 SpO2 scale (1 or 2).
    Scale(u8),
}

impl Value {
    /// The compact form the window stores: every value fits an `f64` once its parameter is
    /// known (flags 0/1, ACVPU 0-4, scale 1/2).
    pub(crate) fn to_f64(self) -> f64 {
        match self {
            Value::Number(n) => n,
            Value::Flag(b) => f64::from(u8::from(b)),
            Value::Consciousness(c) => f64::from(c as u8),
            Value::Scale(s) => f64::from(s),
        }
    }

    pub(crate) fn from_f64(param: Param, v: f64) -> Value {
        match param.shape() {
            Shape::Number { .. } => Value::Number(v),
            Shape::Flag => Value::Flag(v != 0.0),
            Shape::Consciousness => Value::Consciousness(Acvpu::from_f64(v)),
            Shape::Scale => Value::Scale(v as u8),
        }
    }
}

impl serde::Serialize for Value {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match *self {
            Value::Number(n) => crate::serialize_number(n, s),
            Value::Flag(b) => s.serialize_bool(b),
            Value::Consciousness(c) => c.serialize(s),
            Value::Scale(v) => s.serialize_u8(v),
        }
    }
}

/// What an observation does to the window.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Status {
    /// A new reading (a second one with the same id is a duplicate).
    #[default]
    Final,
    /// Replaces the reading with the same id.
    Amended,
    /// Withdraws the reading with the same id.
    EnteredInError,
}

impl Status {
    /// Parses `final`, `amended` (also `corrected`) or `entered-in-error`.
    pub fn parse(text: &str) -> Option<Status> {
        match text {
            "final" => Some(Status::Final),
            "amended" | "corrected" => Some(Status::Amended),
            "entered-in-error" => Some(Status::EnteredInError),
            _ => None,
        }
    }
}

/// A stable 64-bit digest of an observation id. The window keeps digests, not strings,
/// so its memory does not grow with id length. It compares 62 of the 64 bits (the other
/// two hold an entry's flags): two distinct ids of one patient collide with probability
/// about 2^-62 per pair.
///
/// The digest reads the id eight bytes at a time (a multiply-rotate chain seeded with the
/// length, then the splitmix64 finaliser), several times faster than a byte-serial hash on
/// typical ids. It is not collision-resistant against someone choosing ids on purpose;
/// whoever can choose a patient's observation ids can already send that patient any
/// reading, so it guards against accidents, not against the feed. It is part of stored
/// state: changing it is a format change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ObsId(u64);

impl ObsId {
    /// The digest of `id`.
    pub fn of(id: &str) -> ObsId {
        ObsId(digest64(id.as_bytes(), 0))
    }

    /// The digest as a number.
    pub fn get(self) -> u64 {
        self.0
    }
}

/// The 64-bit digest behind [`ObsId`] (and, with other seeds, alert ids): bytes read eight
/// at a time in a multiply-rotate chain seeded with `seed` and the length, then the
/// splitmix64 finaliser.
pub(crate) fn digest64(bytes: &[u8], seed: u64) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut h = seed ^ (bytes.len() as u64).wrapping_mul(K);
    for chunk in bytes.chunks(8) {
        let mut word = [0u8; 8];
        word[..chunk.len()].copy_from_slice(chunk);
        h = (h ^ u64::from_le_bytes(word))
            .wrapping_mul(K)
            .rotate_left(31);
    }
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// One validated observation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Observation {
    param: Param,
    value: Value,
    effective: Timestamp,
    id: Option<ObsId>,
    status: Status,
}

impl Observation {
    /// Validates a decoded observation.
    ///
    /// `code` is a canonical name or a LOINC code; `unit` is UCUM, `None` meaning the
    /// canonical unit. An `amended` or `entered-in-error` status needs an `id`.
    ///
    /// # Errors
    ///
    /// An [`ObservationError`] for an unknown code, a unit that cannot be converted, a
    /// value of the wrong type, a value outside the parameter's plausible range
    /// ([`Param::range`]), a non-integer GCS, or a status that needs an id without one.
    pub fn new(
        code: &str,
        value: RawValue<'_>,
        unit: Option<&str>,
        effective: Timestamp,
        id: Option<&str>,
        status: Status,
    ) -> Result<Observation, ObservationError> {
        let param = Param::from_code(code).ok_or_else(|| ObservationError::UnknownCode {
            code: truncate(code, 40),
        })?;
        let value = validate(param, value, unit)?;
        if id.is_none() && status != Status::Final {
            return Err(ObservationError::StatusNeedsId { status });
        }
        Ok(Observation {
            param,
            value,
            effective,
            id: id.map(ObsId::of),
            status,
        })
    }

    /// Builds an observation from an already canonical value, checking it the same way.
    ///
    /// # Errors
    ///
    /// As [`Observation::new`].
    pub fn canonical(
        param: Param,
        value: Value,
        effective: Timestamp,
    ) -> Result<Observation, ObservationError> {
        let raw = match value {
            Value::Number(n) => RawValue::Number(n),
            Value::Flag(b) => RawValue::Bool(b),
            Value::Consciousness(c) => RawValue::Number(f64::from(c as u8)),
            Value::Scale(s) => RawValue::Number(f64::from(s)),
        };
        let value = match value {
            Value::Consciousness(_) => value,
            _ => validate(param, raw, None)?,
        };
        if matches!(value, Value::Consciousness(_)) != (param == Param::Consciousness) {
            return Err(ObservationError::WrongType {
                param,
                value: format!("{value:?}"),
                expected: expected_type(param),
            });
        }
        Ok(Observation {
            param,
            value,
            effective,
            id: None,
            status: Status::Final,
        })
    }

    /// Sets the observation id (builder style, for canonical observations).
    #[must_use]
    pub fn with_id(mut self, id: &str, status: Status) -> Observation {
        self.id = Some(ObsId::of(id));
        self.status = status;
        self
    }

    /// The parameter.
    pub fn param(&self) -> Param {
        self.param
    }

    /// The observation as the window holds it.
    pub fn reading(&self) -> crate::window::Reading {
        crate::window::Reading {
            param: self.param(),
            value: self.value().to_f64(),
            effective: self.effective(),
        }
    }

    /// The value, in the parameter's canonical unit.
    pub fn value(&self) -> Value {
        self.value
    }

    /// The event time.
    pub fn effective(&self) -> Timestamp {
        self.effective
    }

    /// The id digest, if the observation had an id.
    pub fn id(&self) -> Option<ObsId> {
        self.id
    }

    /// The status.
    pub fn status(&self) -> Status {
        self.status
    }
}

fn expected_type(param: Param) -> &'static str {
    match param.shape() {
        Shape::Number { integer: true, .. } => "a whole number",
        Shape::Number { .. } => "a number",
        Shape::Flag => "a boolean (true or false)",
        Shape::Consciousness => {
            "one of A, C, V, P, U (or alert, confusion, voice, pain, unresponsive)"
        }
        Shape::Scale => "1 or 2",
    }
}

fn validate(
    param: Param,
    raw: RawValue<'_>,
    unit: Option<&str>,
) -> Result<Value, ObservationError> {
    let wrong = || ObservationError::WrongType {
        param,
        value: raw.to_string(),
        expected: expected_type(param),
    };
    match (param.shape(), raw) {
        (Shape::Number { min, max, integer }, RawValue::Number(n)) => {
            if !n.is_finite() {
                return Err(wrong());
            }
            let v = param.to_canonical(n, unit)?;
            // Ranges are checked after conversion, with a tolerance of a part in 10^9 so
            // that a value exactly at a limit in another unit is not rejected by rounding.
            let tol = 1e-9 * max.abs().max(1.0);
            if !(v >= min - tol && v <= max + tol) {
                return Err(ObservationError::OutOfRange {
                    param,
                    value: n,
                    unit: unit.map_or_else(|| param.unit().to_owned(), |u| truncate(u, 40)),
                    min,
                    max,
                });
            }
            if integer && v.fract() != 0.0 {
                return Err(wrong());
            }
            Ok(Value::Number(v.clamp(min, max)))
        }
        (Shape::Flag, RawValue::Bool(b)) => {
            check_no_unit(param, unit)?;
            Ok(Value::Flag(b))
        }
        (Shape::Consciousness, RawValue::Text(t)) => {
            check_no_unit(param, unit)?;
            Acvpu::parse(t).map(Value::Consciousness).ok_or_else(wrong)
        }
        (Shape::Scale, RawValue::Number(n)) => {
            param.to_canonical(n, unit)?;
            if n == 1.0 || n == 2.0 {
                Ok(Value::Scale(n as u8))
            } else {
                Err(wrong())
            }
        }
        _ => Err(wrong()),
    }
}

fn check_no_unit(param: Param, unit: Option<&str>) -> Result<(), UnitError> {
    match unit {
        None => Ok(()),
        Some(u) if u == param.unit() || u.is_empty() => Ok(()),
        Some(u) => Err(UnitError {
            param,
            unit: truncate(u, 40),
        }),
    }
}

/// Why an observation was rejected.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum ObservationError {
    /// The code is neither a canonical name nor a known LOINC code.
    UnknownCode {
        /// The code as sent.
        code: String,
    },
    /// The unit cannot be converted to the canonical one.
    Unit(UnitError),
    /// The value has the wrong JSON type, or is not one of the allowed values.
    WrongType {
        /// The parameter.
        param: Param,
        /// The value as sent.
        value: String,
        /// What was expected.
        expected: &'static str,
    },
    /// A number outside the parameter's plausible range.
    OutOfRange {
        /// The parameter.
        param: Param,
        /// The value as sent (before conversion).
        value: f64,
        /// The unit as sent.
        unit: String,
        /// The lowest plausible value, in the canonical unit.
        min: f64,
        /// The highest plausible value, in the canonical unit.
        max: f64,
    },
    /// `amended` or `entered-in-error` without an `id` to apply to.
    StatusNeedsId {
        /// The status.
        status: Status,
    },
}

impl From<UnitError> for ObservationError {
    fn from(e: UnitError) -> Self {
        ObservationError::Unit(e)
    }
}

impl fmt::Display for ObservationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ObservationError::UnknownCode { code } => write!(
                f,
                "field `code`: {code:?} is not a known parameter; expected a canonical code \
                 (heart_rate, resp_rate, sbp, ...) or a supported LOINC code (8867-4, ...)"
            ),
            ObservationError::Unit(e) => e.fmt(f),
            ObservationError::WrongType {
                param,
                value,
                expected,
            } => write!(
                f,
                "field `value`: {value} is not valid for {param}; expected {expected}"
            ),
            ObservationError::OutOfRange {
                param,
                value,
                unit,
                min,
                max,
            } => {
                if *param == Param::Fio2 && unit == "1" {
                    return write!(
                        f,
                        "field `value`: fio2 {value} is outside the possible range {min}-{max} \
                         (a fraction without a unit; send unit \"%\" for a percentage)"
                    );
                }
                write!(
                    f,
                    "field `value`: {param} {value} {unit} is outside the possible range \
                     {min}-{max} {}",
                    param.unit()
                )
            }
            ObservationError::StatusNeedsId { status } => write!(
                f,
                "field `id`: missing; status {} must name the observation it applies to",
                match status {
                    Status::Amended => "amended",
                    Status::EnteredInError => "entered-in-error",
                    Status::Final => "final",
                }
            ),
        }
    }
}

impl std::error::Error for ObservationError {}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Timestamp = Timestamp::from_millis(0);

    fn obs(
        code: &str,
        v: RawValue<'_>,
        unit: Option<&str>,
    ) -> Result<Observation, ObservationError> {
        Observation::new(code, v, unit, T, None, Status::Final)
    }

    #[test]
    fn accepts_and_converts() {
        let o = obs("8310-5", RawValue::Number(101.3), Some("[degF]")).unwrap();
        assert_eq!(o.param(), Param::Temperature);
        let Value::Number(c) = o.value() else {
            panic!()
        };
        assert!((c - 38.5).abs() < 1e-9);
        let o = obs("consciousness", RawValue::Text("Voice"), None).unwrap();
        assert_eq!(o.value(), Value::Consciousness(Acvpu::V));
        let o = obs("on_oxygen", RawValue::Bool(true), None).unwrap();
        assert_eq!(o.value(), Value::Flag(true));
        let o = obs("spo2_scale", RawValue::Number(2.0), None).unwrap();
        assert_eq!(o.value(), Value::Scale(2));
        let o = obs("fio2", RawValue::Number(1.0), None).unwrap();
        assert_eq!(o.value(), Value::Number(1.0));
        let o = obs("fio2", RawValue::Number(21.0), Some("%")).unwrap();
        assert_eq!(o.value(), Value::Number(0.21));
    }

    #[test]
    fn rejects_impossible_values_naming_field_value_and_range() {
        let e = obs("heart_rate", RawValue::Number(400.0), None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "field `value`: heart_rate 400 /min is outside the possible range 1-350 /min"
        );
        let e = obs("heart_rate", RawValue::Number(0.0), None).unwrap_err();
        assert!(matches!(e, ObservationError::OutOfRange { .. }));
        let e = obs("temperature", RawValue::Number(60.0), Some("Cel")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "field `value`: temperature 60 Cel is outside the possible range 25-45 Cel"
        );
        let e = obs("spo2", RawValue::Number(120.0), None).unwrap_err();
        assert!(e.to_string().contains("spo2 120"), "{e}");
        // A fraction is expected without a unit: 40 is not guessed to mean 40 %.
        let e = obs("fio2", RawValue::Number(40.0), None).unwrap_err();
        assert!(e.to_string().contains("0.21-1"), "{e}");
        let e = obs("gcs", RawValue::Number(14.5), None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "field `value`: 14.5 is not valid for gcs; expected a whole number"
        );
        assert!(obs("gcs", RawValue::Number(2.0), None).is_err());
        assert!(obs("heart_rate", RawValue::Number(f64::NAN), None).is_err());
        assert!(obs("heart_rate", RawValue::Number(f64::INFINITY), None).is_err());
    }

    #[test]
    fn rejects_wrong_types_and_codes() {
        let e = obs("consciousness", RawValue::Text("sleepy"), None).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("field `value`: \"sleepy\" is not valid for consciousness")
        );
        assert!(obs("heart_rate", RawValue::Text("80"), None).is_err());
        assert!(obs("on_oxygen", RawValue::Number(1.0), None).is_err());
        assert!(obs("spo2_scale", RawValue::Number(3.0), None).is_err());
        let e = obs("hr", RawValue::Number(80.0), None).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("field `code`: \"hr\" is not a known parameter")
        );
        let e = Observation::new(
            "heart_rate",
            RawValue::Number(80.0),
            None,
            T,
            None,
            Status::Amended,
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "field `id`: missing; status amended must name the observation it applies to"
        );
    }

    #[test]
    fn range_edges_are_inclusive() {
        assert!(obs("heart_rate", RawValue::Number(1.0), None).is_ok());
        assert!(obs("heart_rate", RawValue::Number(350.0), None).is_ok());
        assert!(obs("heart_rate", RawValue::Number(350.01), None).is_err());
        assert!(obs("fio2", RawValue::Number(0.21), None).is_ok());
        assert!(obs("fio2", RawValue::Number(0.2), None).is_err());
    }

    #[test]
    fn ids_digest_stably() {
        assert_eq!(ObsId::of("obs-abc"), ObsId::of("obs-abc"));
        assert_ne!(ObsId::of("obs-abc"), ObsId::of("obs-abd"));
        // Pinned: the digest is part of stored state.
        assert_eq!(ObsId::of("obs-abc").get(), 10_977_694_462_529_201_217);
        assert_ne!(
            ObsId::of("12345678"),
            ObsId::of("123456780"),
            "length is mixed in"
        );
        let mut seen = std::collections::HashSet::new();
        for i in 0..100_000 {
            assert!(seen.insert(ObsId::of(&format!("obs-{i}"))));
        }
    }
}
