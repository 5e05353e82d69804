//! `vigil-wire`: where external messages become domain observations.
//!
//! Three formats, one output: the native JSON event (REFERENCE.md, "Observation
//! events"), FHIR R4 ([`decode_fhir`]) and HL7 v2 ([`decode_hl7`]) all decode to
//! [`Decoded`] readings or to [`DecodeError`]s that name what is wrong. The scoring core never sees
//! JSON: a decoder extracts fields and hands them to
//! [`vigil_score::Observation::new`], which validates them.

use std::fmt;

use serde::Deserialize;
use vigil_score::{Observation, ObservationError, RawValue, Status, Timestamp};

pub mod fhir;
mod flat;
pub mod hl7;
mod id;

pub use fhir::{FhirOptions, decode_fhir};
pub use hl7::{Hl7Options, LocalZone, decode_hl7};
pub use id::{PatientId, PatientNaming};

/// Bounds on the work one FHIR or HL7 v2 message can cause (configurable in the service).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest message, in bytes.
    pub max_bytes: usize,
    /// Most readings (Bundle entries, OBX segments) per message.
    pub max_readings: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: MAX_DOCUMENT_BYTES,
            max_readings: MAX_ENTRIES,
        }
    }
}

/// The most observations one message may carry (Bundle entries, HL7 OBX segments): a
/// bound on the work any one message can cause.
pub const MAX_ENTRIES: usize = 1000;

/// The largest FHIR or HL7 v2 message accepted, in bytes (a Bundle of 1,000 vital signs
/// is about 400 KiB). With [`KAFKA_HEADROOM`], it fits librdkafka's default
/// `message.max.bytes` (1,000,000): a message Vigil takes can always be forwarded and
/// dead-lettered.
pub const MAX_DOCUMENT_BYTES: usize = 960_000;

/// The bytes a Kafka message needs beside its payload: the key (at most 64 bytes), the
/// dead-letter headers (the reason is cut to [`MAX_REASON_BYTES`]) and the record's own
/// framing.
pub const KAFKA_HEADROOM: usize = 32 * 1024;

/// The longest reason a dead-letter header carries, in bytes: a message with a thousand
/// bad results names the first ones and counts the rest.
pub const MAX_REASON_BYTES: usize = 16 * 1024;

/// The largest native JSON message accepted, in bytes. An observation is ~250 bytes; anything far
/// larger is a framing error or hostile, and is rejected before parsing.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// A decoded observation with the patient context it arrived with.
#[derive(Clone, Debug, PartialEq)]
pub struct Decoded {
    /// The patient (validated: 1-64 characters of `A-Z a-z 0-9 . _ : -`).
    pub patient_id: PatientId,
    /// How the message named the patient (by id alone, in an identifier system, or by a
    /// FHIR server's id), so that FHIR alerts name it the same way.
    pub patient_naming: PatientNaming,
    /// The encounter, if sent.
    pub encounter_id: Option<String>,
    /// The location (`care-unit/bed`), if sent.
    pub location: Option<String>,
    /// The observation id as sent (its digest is in `observation`), if any.
    pub id: Option<String>,
    /// The validated observation.
    pub observation: Observation,
}

impl Decoded {
    /// The native observation event (REFERENCE.md, "Observation events") for this reading: canonical code,
    /// value in the canonical unit, the unit (omitted for flags and ACVPU), RFC 3339 time.
    pub fn to_native_json(&self) -> String {
        use vigil_score::Value as V;
        #[derive(serde::Serialize)]
        struct Native<'a> {
            patient_id: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            encounter_id: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            location: Option<&'a str>,
            code: &'static str,
            value: vigil_score::Value,
            #[serde(skip_serializing_if = "Option::is_none")]
            unit: Option<&'static str>,
            effective: String,
            #[serde(skip_serializing_if = "Option::is_none")]
            id: Option<&'a str>,
            status: &'static str,
        }
        let o = &self.observation;
        let native = Native {
            patient_id: self.patient_id.as_str(),
            encounter_id: self.encounter_id.as_deref(),
            location: self.location.as_deref(),
            code: o.param().code(),
            value: o.value(),
            unit: matches!(o.value(), V::Number(_) | V::Scale(_)).then(|| o.param().unit()),
            effective: o.effective().to_string(),
            id: self.id.as_deref(),
            status: match o.status() {
                Status::Final => "final",
                Status::Amended => "amended",
                Status::EnteredInError => "entered-in-error",
            },
        };
        serde_json::to_string(&native).unwrap_or_default()
    }
}

/// Why a message was rejected.
#[derive(Debug, PartialEq)]
#[non_exhaustive]
pub enum DecodeError {
    /// Not JSON, or not an object of the observation schema.
    Json(String),
    /// A field is missing or malformed.
    Field {
        /// The field.
        field: &'static str,
        /// The value as sent, shortened.
        value: String,
        /// What was expected.
        expected: &'static str,
    },
    /// The observation itself is invalid.
    Observation(ObservationError),
    /// Larger than the format's size limit.
    TooLarge {
        /// The message's size in bytes.
        size: usize,
        /// The limit in bytes.
        limit: usize,
    },
    /// A valid code of a standard code system that Vigil does not score (sodium, body
    /// height): not an error in the feed, so it is counted as ignored, not dead-lettered,
    /// unless `[input] reject_unscored_codes` asks for that.
    Unscored {
        /// Where the code is: `code`, `Observation.code`, `OBX[2]-3`.
        path: String,
        /// The code system.
        system: CodeSystem,
        /// The code as sent.
        code: String,
    },
    /// A reading that says why it has no value (FHIR `dataAbsentReason`; HL7 v2 OBX-11
    /// `X` or `N`): nothing is wrong and nothing can be scored, so it is counted as absent,
    /// with its reason, and never scored or dead-lettered.
    Absent {
        /// Where: `Observation.dataAbsentReason`, `Observation.component[1].dataAbsentReason`,
        /// `OBX[3]-11`.
        path: String,
        /// The LOINC code of what was not measured.
        code: String,
        /// The reason as sent: its code (`http://terminology.hl7.org/CodeSystem/data-absent-reason`)
        /// or text, or the HL7 v2 status and its meaning.
        reason: String,
        /// The reason as a metric label: a FHIR R4 DataAbsentReason code (the nearest one
        /// for HL7 v2), or `other`.
        label: &'static str,
    },
    /// A structured format's element (JSON path, or HL7 segment and field) is wrong.
    At {
        /// Where: `Bundle.entry[2].resource.valueQuantity`, `OBX[3]-6`.
        path: String,
        /// The value and what was expected.
        reason: String,
    },
}

/// Several problems of one HL7 v2 segment or FHIR entry as one rejection: the first names the element (and
/// so the dead-letter reason kind), the others follow with their own elements.
pub(crate) fn together(mut problems: Vec<DecodeError>) -> DecodeError {
    let first = problems.remove(0);
    if problems.is_empty() {
        return first;
    }
    let more: Vec<String> = problems.iter().map(ToString::to_string).collect();
    match first {
        DecodeError::At { path, reason } => DecodeError::At {
            path,
            reason: format!("{reason}; also {}", more.join("; also ")),
        },
        other => other,
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Json(e) => write!(f, "invalid observation JSON: {e}"),
            DecodeError::Field {
                field,
                value,
                expected,
            } => write!(
                f,
                "field `{field}`: {value} is not valid; expected {expected}"
            ),
            DecodeError::Observation(e) => e.fmt(f),
            DecodeError::At { path, reason } => write!(f, "{path}: {reason}"),
            DecodeError::Unscored { path, system, code } => write!(
                f,
                "{path}: {code:?} is a valid {} code that Vigil does not score: ignored \
                 ({}[input] reject_unscored_codes = true dead-letters such readings)",
                system.name(),
                // A device code Vigil does not know may still measure a scored parameter.
                if *system == CodeSystem::Mdc {
                    "if it measures a scored parameter, map it in [input] hl7_mdc_codes; "
                } else {
                    ""
                }
            ),
            DecodeError::Absent {
                path, code, reason, ..
            } => write!(
                f,
                "{path}: {code} has no value ({reason:?}): counted as absent, not scored"
            ),
            DecodeError::TooLarge { size, limit } => {
                write!(
                    f,
                    "message of {size} bytes exceeds the limit of {limit} bytes"
                )
            }
        }
    }
}

impl std::error::Error for DecodeError {}

impl DecodeError {
    /// The code system of a valid code Vigil does not score (the reading is ignored, not
    /// rejected, unless configured otherwise); `None` for every real error.
    pub fn unscored(&self) -> Option<CodeSystem> {
        match self {
            DecodeError::Unscored { system, .. } => Some(*system),
            _ => None,
        }
    }

    /// For a reading sent without a value and with the reason why (FHIR
    /// `dataAbsentReason`, HL7 v2 OBX-11 `X` or `N`): the reason as a metric label, one of the FHIR R4
    /// DataAbsentReason codes, or `other` for anything else (so the label stays bounded).
    pub fn absent(&self) -> Option<&'static str> {
        match self {
            DecodeError::Absent { label, .. } => Some(label),
            _ => None,
        }
    }

    /// Whether this is no fault of the feed: a valid code Vigil does not score, or a
    /// reading that says why it has no value. Counted, not dead-lettered.
    pub fn is_not_scored(&self) -> bool {
        self.unscored().is_some() || self.absent().is_some()
    }
}

/// The metric label of a FHIR DataAbsentReason code as sent: the code if it is one of
/// [`DATA_ABSENT_REASONS`], else `other` (so the label stays bounded).
pub fn absent_label(code: &str) -> &'static str {
    DATA_ABSENT_REASONS
        .iter()
        .find(|r| **r == code)
        .copied()
        .unwrap_or("other")
}

/// The codes of FHIR R4's DataAbsentReason code system
/// (`http://terminology.hl7.org/CodeSystem/data-absent-reason`, v4.0.1: HL7 FHIR R4,
/// section 4.3.14.136).
pub const DATA_ABSENT_REASONS: [&str; 15] = [
    "unknown",
    "asked-unknown",
    "temp-unknown",
    "not-asked",
    "asked-declined",
    "masked",
    "not-applicable",
    "unsupported",
    "as-text",
    "error",
    "not-a-number",
    "negative-infinity",
    "positive-infinity",
    "not-performed",
    "not-permitted",
];

/// A standard code system whose valid codes Vigil recognises even when it does not
/// score them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CodeSystem {
    /// LOINC (`http://loinc.org`, HL7 `LN`).
    Loinc,
    /// IEEE 11073-10101 medical device nomenclature (`urn:iso:std:iso:11073:10101`, HL7
    /// `MDC`).
    Mdc,
}

impl CodeSystem {
    /// The metric label: `loinc` or `mdc`.
    pub fn label(self) -> &'static str {
        match self {
            CodeSystem::Loinc => "loinc",
            CodeSystem::Mdc => "mdc",
        }
    }

    /// The name a person reads.
    pub fn name(self) -> &'static str {
        match self {
            CodeSystem::Loinc => "LOINC",
            CodeSystem::Mdc => "IEEE 11073 MDC",
        }
    }
}

/// Whether `code` is a LOINC code: one to seven digits, a hyphen and the check digit of
/// the LOINC Users' Guide's mod 10 algorithm (Luhn: from the right, every other digit
/// starting with the rightmost is doubled and the digits summed), so that a typing error
/// is rejected rather than ignored.
pub fn is_loinc(code: &str) -> bool {
    let Some((body, check)) = code.split_once('-') else {
        return false;
    };
    if body.is_empty()
        || body.len() > 7
        || check.len() != 1
        || !body
            .bytes()
            .chain(check.bytes())
            .all(|b| b.is_ascii_digit())
    {
        return false;
    }
    let sum: u32 = body
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 0 {
                let twice = 2 * d;
                twice / 10 + twice % 10
            } else {
                d
            }
        })
        .sum();
    u32::from(check.as_bytes()[0] - b'0') == (10 - sum % 10) % 10
}

impl From<ObservationError> for DecodeError {
    fn from(e: ObservationError) -> Self {
        DecodeError::Observation(e)
    }
}

#[derive(Deserialize)]
#[cfg_attr(test, derive(Debug, PartialEq))]
#[serde(deny_unknown_fields)]
struct Wire<'a> {
    #[serde(borrow)]
    patient_id: std::borrow::Cow<'a, str>,
    #[serde(borrow, default)]
    encounter_id: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    location: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    code: std::borrow::Cow<'a, str>,
    value: serde_json::Value,
    #[serde(borrow, default)]
    unit: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    effective: std::borrow::Cow<'a, str>,
    #[serde(borrow, default)]
    id: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    status: Option<std::borrow::Cow<'a, str>>,
}

/// A wire format: how one message becomes observations. Adding FHIR or HL7 v2 means
/// adding a variant and its decoder; the service and `vigil score` go through here.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Format {
    /// The native observation event (REFERENCE.md, "Observation events"): one per message, or an array of them.
    #[default]
    Json,
    /// A FHIR R4 Observation or Bundle of them.
    Fhir(FhirOptions),
    /// An HL7 v2 ORU^R01 message.
    Hl7v2(Hl7Options),
}

impl Format {
    /// The format named `name` (`json`).
    pub fn from_name(name: &str) -> Option<Format> {
        match name {
            "json" => Some(Format::Json),
            "fhir" => Some(Format::Fhir(FhirOptions::default())),
            "hl7v2" => Some(Format::Hl7v2(Hl7Options::default())),
            _ => None,
        }
    }

    /// Its name, as [`Format::from_name`] takes it.
    pub fn name(&self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Fhir(_) => "fhir",
            Format::Hl7v2(_) => "hl7v2",
        }
    }

    /// The names accepted by [`Format::from_name`].
    pub const NAMES: &'static [&'static str] = &["json", "fhir", "hl7v2"];

    /// Decodes one message into the observations it carries. A format whose messages
    /// carry several observations returns each; the good ones are used and the bad ones
    /// reported, so one bad result does not cost the others.
    pub fn decode(&self, bytes: &[u8]) -> Vec<Result<Decoded, DecodeError>> {
        match self {
            Format::Json => decode_json_message(bytes),
            Format::Fhir(options) => decode_fhir(bytes, *options),
            Format::Hl7v2(options) => decode_hl7(bytes, options),
        }
    }

    /// Decodes one message as [`Format::decode`] does, handing each result to `each` in
    /// order; a native event that is not an array is decoded without building a list
    /// (the service's intake decodes every message this way).
    pub fn decode_each(&self, bytes: &[u8], mut each: impl FnMut(Result<Decoded, DecodeError>)) {
        match self {
            Format::Json if !starts_array(bytes) => each(decode_json(bytes)),
            _ => self.decode(bytes).into_iter().for_each(each),
        }
    }
}

impl Format {
    /// Splits a file of messages as `vigil decode` and `vigil score` read them: one
    /// message per line for JSON; for FHIR, one JSON resource after another, each on one
    /// line or pretty-printed over several (as servers and validators write them); for
    /// HL7 v2, a message starts at each `MSH` segment and blank lines separate messages.
    /// Each message comes with the line it starts on.
    pub fn split(&self, input: &[u8]) -> Vec<(usize, Vec<u8>)> {
        match self {
            Format::Hl7v2(_) => hl7::split_messages(&String::from_utf8_lossy(input))
                .into_iter()
                .map(|(n, m)| (n, m.into_bytes()))
                .collect(),
            Format::Fhir(_) => json_values(input),
            Format::Json => input
                .split(|b| *b == b'\n')
                .enumerate()
                .map(|(n, line)| (n + 1, line.strip_suffix(b"\r").unwrap_or(line)))
                .filter(|(_, line)| !line.iter().all(u8::is_ascii_whitespace))
                .map(|(n, line)| (n, line.to_vec()))
                .collect(),
        }
    }
}

/// The JSON values of `input`, one after another, with the line each starts on. A value
/// must end its line: what follows it on the same line, and text that is not JSON, is
/// taken up to the end of its line as one message (whose decoding then names the JSON
/// error), and the values after it are still found.
fn json_values(input: &[u8]) -> Vec<(usize, Vec<u8>)> {
    let mut out = Vec::new();
    let (mut at, mut line) = (0usize, 1usize);
    let line_end = |from: usize| {
        input[from..]
            .iter()
            .position(|b| *b == b'\n')
            .map_or(input.len(), |i| from + i)
    };
    loop {
        while let Some(b) = input.get(at).filter(|b| b.is_ascii_whitespace()) {
            line += usize::from(*b == b'\n');
            at += 1;
        }
        if at >= input.len() {
            return out;
        }
        let mut values =
            serde_json::Deserializer::from_slice(&input[at..]).into_iter::<serde::de::IgnoredAny>();
        let parsed = match values.next() {
            Some(Ok(_)) => Some(at + values.byte_offset()),
            _ => None,
        };
        let end = match parsed {
            // Only white space may follow the value on its line.
            Some(end)
                if input[end..line_end(end)]
                    .iter()
                    .all(u8::is_ascii_whitespace) =>
            {
                end
            }
            Some(end) => line_end(end),
            None => line_end(at),
        };
        let message = &input[at..end];
        let message = message.strip_suffix(b"\r").unwrap_or(message);
        out.push((line, message.to_vec()));
        line += message.iter().filter(|b| **b == b'\n').count();
        at = end;
    }
}

/// Decodes one native JSON message: an observation event, or an array of them (a
/// vital-sign set sent as one message, at most [`MAX_ENTRIES`] events, 64 KiB in all).
/// Each element is decoded as [`decode_json`] decodes an event; a bad element is reported
/// with its index (`[2]: ...`) and the others are kept.
pub fn decode_json_message(bytes: &[u8]) -> Vec<Result<Decoded, DecodeError>> {
    if !starts_array(bytes) {
        return vec![decode_json(bytes)];
    }
    if bytes.len() > MAX_MESSAGE_BYTES {
        return vec![Err(DecodeError::TooLarge {
            size: bytes.len(),
            limit: MAX_MESSAGE_BYTES,
        })];
    }
    let items: Vec<serde_json::Value> = match serde_json::from_slice(bytes) {
        Ok(items) => items,
        Err(e) => return vec![Err(DecodeError::Json(json_reason(&e)))],
    };
    if items.is_empty() || items.len() > MAX_ENTRIES {
        return vec![Err(DecodeError::Json(format!(
            "an array of {} events; expected 1-{MAX_ENTRIES} observation events",
            items.len()
        )))];
    }
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let one = serde_json::to_vec(item).unwrap_or_default();
            decode_json(&one).map_err(|e| DecodeError::At {
                path: format!("[{i}]"),
                reason: e.to_string(),
            })
        })
        .collect()
}

/// Whether a native message is an array of events (its first non-blank byte is `[`).
fn starts_array(bytes: &[u8]) -> bool {
    bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[')
}

/// Decodes one native JSON observation event.
///
/// # Errors
///
/// A [`DecodeError`] naming the field, the value and what was expected.
pub fn decode_json(bytes: &[u8]) -> Result<Decoded, DecodeError> {
    if bytes.len() > MAX_MESSAGE_BYTES {
        return Err(DecodeError::TooLarge {
            size: bytes.len(),
            limit: MAX_MESSAGE_BYTES,
        });
    }
    let wire: Wire<'_> = match flat::read(bytes) {
        Some(wire) => wire,
        None => serde_json::from_slice(bytes).map_err(|e| DecodeError::Json(json_reason(&e)))?,
    };
    let patient_id = PatientId::new(checked_id("patient_id", &wire.patient_id)?);
    let encounter_id = wire
        .encounter_id
        .as_deref()
        .map(|e| bounded_text("encounter_id", e))
        .transpose()?;
    let location = wire
        .location
        .as_deref()
        .map(|l| bounded_text("location", l))
        .transpose()?;
    let effective = Timestamp::parse_rfc3339(&wire.effective).map_err(|_| DecodeError::Field {
        field: "effective",
        value: quote(&wire.effective),
        expected: "an RFC 3339 date-time with offset, e.g. 2026-11-23T10:00:00Z",
    })?;
    let status = match wire.status.as_deref() {
        None => Status::Final,
        Some(s) => Status::parse(s).ok_or_else(|| DecodeError::Field {
            field: "status",
            value: quote(s),
            expected: "final, amended or entered-in-error",
        })?,
    };
    let id = wire
        .id
        .as_deref()
        .map(|i| bounded_text("id", i))
        .transpose()?;
    let value = match &wire.value {
        serde_json::Value::Number(n) => RawValue::Number(n.as_f64().unwrap_or(f64::NAN)),
        serde_json::Value::String(s) => RawValue::Text(s),
        serde_json::Value::Bool(b) => RawValue::Bool(*b),
        other => {
            return Err(DecodeError::Field {
                field: "value",
                value: shorten(&other.to_string()),
                expected: "a number, a string (consciousness) or a boolean (flags)",
            });
        }
    };
    let unit = wire.unit.as_deref().filter(|u| !u.is_empty());
    let observation = Observation::new(&wire.code, value, unit, effective, id.as_deref(), status)
        .map_err(|e| match e {
        // A LOINC code Vigil does not score is ignored; any other unknown code (a
        // misspelt canonical code, a LOINC code with a wrong check digit) is an error.
        ObservationError::UnknownCode { .. } if is_loinc(&wire.code) => DecodeError::Unscored {
            path: "code".into(),
            system: CodeSystem::Loinc,
            code: wire.code.to_string(),
        },
        e => e.into(),
    })?;
    Ok(Decoded {
        patient_id,
        patient_naming: PatientNaming::Id,
        encounter_id,
        location,
        id,
        observation,
    })
}

fn json_reason(e: &serde_json::Error) -> String {
    // serde_json's message names the field for schema errors ("missing field `code`");
    // the column helps find the spot in a long line.
    let msg = e.to_string();
    match msg.rfind(" at line ") {
        Some(i) => format!("{} (column {})", &msg[..i], e.column()),
        None => msg,
    }
}

fn quote(s: &str) -> String {
    format!("{:?}", shorten(s))
}

fn shorten(s: &str) -> String {
    if s.chars().count() <= 64 {
        s.to_owned()
    } else {
        format!("{}...", s.chars().take(64).collect::<String>())
    }
}

fn valid_id(field: &'static str, s: &str) -> Result<String, DecodeError> {
    checked_id(field, s).map(str::to_owned)
}

/// `s` if it is a valid id (as [`valid_id`] checks), without copying it.
pub(crate) fn checked_id<'a>(field: &'static str, s: &'a str) -> Result<&'a str, DecodeError> {
    let ok = (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'));
    if ok {
        Ok(s)
    } else {
        Err(DecodeError::Field {
            field,
            value: quote(s),
            expected: "1-64 characters of A-Z a-z 0-9 . _ : -",
        })
    }
}

/// The rejection of a reading whose id is already held for the patient with other
/// content while the new one says `final` (only `amended` replaces): both values, so the
/// sender can tell which is right.
pub fn conflict_reason(
    id: Option<&str>,
    held: &vigil_score::Reading,
    offered: &vigil_score::Reading,
) -> String {
    format!(
        "field `id`: {} is already held for this patient as {} {} at {}; this message says \
         {} {} at {} with status final; expected the same content for a redelivery, or \
         status amended to replace it",
        id.map_or_else(|| "the id".to_owned(), quote),
        held.param.code(),
        held.display(),
        held.effective,
        offered.param.code(),
        offered.display(),
        offered.effective,
    )
}

/// The rejection of a reading dated more than `tolerance` after `received`, the instant
/// its message was received: a wrong clock must not move a patient's evaluation into the
/// future. `setting` names what would accept it.
pub fn future_reason(
    reading: &vigil_score::Reading,
    received: Timestamp,
    tolerance: vigil_score::Span,
    setting: &str,
) -> String {
    format!(
        "field `effective`: {} ({}) is {} s after the message was received at {}; expected \
         at most {} s after it (the sender's clock may be wrong; {setting})",
        reading.effective,
        reading.param.code(),
        (reading.effective.as_millis() - received.as_millis()) / 1000,
        received,
        tolerance.as_millis() / 1000,
    )
}

/// Formats that carry units explicitly (FHIR, HL7 v2) must send one for every parameter
/// that has one: an empty unit is never read as the canonical one (lactate 18 could be
/// mg/dL or mmol/L). Parameters without a unit (flags, ACVPU, the SpO2 scale, GCS and INR)
/// need none. Native JSON keeps its documented rule that an omitted unit means the
/// canonical one.
pub(crate) fn require_unit(code: &str, unit: Option<&str>) -> Result<(), String> {
    let Some(param) = vigil_score::Param::from_code(code) else {
        return Ok(());
    };
    if unit.is_some_and(|u| !u.is_empty()) || !param.has_unit() {
        return Ok(());
    }
    Err(format!(
        "empty; {} needs a unit (expected {}); a unit is never guessed",
        param.code(),
        param.accepted_units().join(" or ")
    ))
}

fn bounded_text(field: &'static str, s: &str) -> Result<String, DecodeError> {
    if (1..=256).contains(&s.len()) && !s.chars().any(char::is_control) {
        Ok(s.to_owned())
    } else {
        Err(DecodeError::Field {
            field,
            value: quote(s),
            expected: "1-256 printable characters",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_score::{Param, Value};

    fn err(s: &str) -> String {
        decode_json(s.as_bytes()).unwrap_err().to_string()
    }

    /// Every LOINC code Vigil maps passes the check digit (a typo in the table fails
    /// here), and the check digit catches single-digit errors.
    #[test]
    fn loinc_check_digits() {
        let mapped = [
            "8867-4", "9279-1", "8480-6", "8462-4", "8478-0", "8310-5", "59408-5", "2708-6",
            "3151-8", "3150-0", "9269-2", "6690-2", "764-1", "26508-2", "2524-7", "32693-4",
            "2160-0", "14682-9", "1975-2", "14631-6", "777-3", "2703-7", "2019-8", "9187-6",
            "6301-6",
        ];
        for code in mapped {
            assert!(is_loinc(code), "{code}");
            assert!(Param::from_code(code).is_some(), "{code}");
        }
        // Sodium, potassium, body height, body weight: valid, not scored.
        for code in ["2951-2", "2823-3", "8302-2", "29463-7"] {
            assert!(is_loinc(code), "{code}");
        }
        for bad in [
            "8867-5",
            "2951-3",
            "88674",
            "-4",
            "8867-",
            "12345678-0",
            "8867-44",
            "88a7-4",
            "",
        ] {
            assert!(!is_loinc(bad), "{bad}");
        }
        // MDC codes are known by table, not by form (issue 32).
        assert!(hl7::known_mdc("150364") && hl7::known_mdc("MDC_TEMP_SKIN"));
        assert!(!hl7::known_mdc("190001") && !hl7::known_mdc("MDC_"));
    }

    #[test]
    fn a_valid_loinc_code_vigil_does_not_score_is_ignored_not_rejected() {
        let sodium = br#"{"patient_id":"P1","code":"2951-2","value":140,"unit":"mmol/L","effective":"2026-11-23T10:00:00Z"}"#;
        let e = decode_json(sodium).unwrap_err();
        assert_eq!(e.unscored(), Some(CodeSystem::Loinc));
        assert_eq!(
            e.to_string(),
            "code: \"2951-2\" is a valid LOINC code that Vigil does not score: ignored \
             ([input] reject_unscored_codes = true dead-letters such readings)"
        );
        let typo = br#"{"patient_id":"P1","code":"2951-3","value":140,"effective":"2026-11-23T10:00:00Z"}"#;
        let e = decode_json(typo).unwrap_err();
        assert_eq!(e.unscored(), None, "a wrong check digit is an error");
        assert!(e.to_string().contains("is not a known parameter"));
        let name = br#"{"patient_id":"P1","code":"sodium","value":140,"effective":"2026-11-23T10:00:00Z"}"#;
        assert_eq!(decode_json(name).unwrap_err().unscored(), None);
    }

    #[test]
    fn native_json_round_trips() {
        let text = r#"{"patient_id":"P1","encounter_id":"E1","location":"w/b","code":"8310-5","value":101.3,"unit":"[degF]","effective":"2026-11-23T10:00:00+01:00","id":"t1","status":"amended"}"#;
        let d = decode_json(text.as_bytes()).unwrap();
        let native = d.to_native_json();
        assert_eq!(
            native,
            r#"{"patient_id":"P1","encounter_id":"E1","location":"w/b","code":"temperature","value":38.5,"unit":"Cel","effective":"2026-11-23T09:00:00Z","id":"t1","status":"amended"}"#
        );
        let again = decode_json(native.as_bytes()).unwrap();
        assert_eq!(again, d);
        let flag = decode_json(br#"{"patient_id":"P1","code":"on_oxygen","value":true,"effective":"2026-11-23T10:00:00Z"}"#).unwrap();
        assert!(!flag.to_native_json().contains("unit"));
        let c = decode_json(br#"{"patient_id":"P1","code":"consciousness","value":"voice","effective":"2026-11-23T10:00:00Z"}"#).unwrap();
        assert!(c.to_native_json().contains(r#""value":"V""#));
    }

    #[test]
    fn formats_are_named_and_dispatch() {
        assert_eq!(Format::from_name("json"), Some(Format::Json));
        assert_eq!(Format::from_name("xml"), None);
        let one = Format::Json.decode(br#"{"patient_id":"P1","code":"heart_rate","value":80,"effective":"2026-11-23T10:00:00Z"}"#);
        assert_eq!(one.len(), 1);
        assert!(one[0].is_ok());
    }

    #[test]
    fn decodes_the_contract_example() {
        let d = decode_json(
            br#"{"patient_id": "MRN-000123", "encounter_id": "ENC-9", "location": "ward-7/bed-12",
                "code": "resp_rate", "value": 24, "unit": "/min",
                "effective": "2026-11-23T10:00:00Z", "id": "obs-abc", "status": "final"}"#,
        )
        .unwrap();
        assert_eq!(d.patient_id, "MRN-000123");
        assert_eq!(d.encounter_id.as_deref(), Some("ENC-9"));
        assert_eq!(d.location.as_deref(), Some("ward-7/bed-12"));
        assert_eq!(d.observation.param(), Param::RespRate);
        assert_eq!(d.observation.value(), Value::Number(24.0));
        assert_eq!(
            d.observation.effective().to_string(),
            "2026-11-23T10:00:00Z"
        );
    }

    #[test]
    fn rejections_name_field_value_and_expectation() {
        let base = r#""patient_id":"P1","effective":"2026-11-23T10:00:00Z""#;
        assert_eq!(
            err(&format!(r#"{{{base},"code":"heart_rate","value":400}}"#)),
            "field `value`: heart_rate 400 /min is outside the possible range 1-350 /min"
        );
        assert_eq!(
            err(&format!(
                r#"{{{base},"code":"8310-5","value":37,"unit":"K"}}"#
            )),
            "field `unit`: \"K\" cannot be converted for temperature; expected one of Cel, [degF]"
        );
        assert!(
            err(&format!(r#"{{{base},"code":"bogus","value":1}}"#))
                .starts_with("field `code`: \"bogus\"")
        );
        assert_eq!(
            err(&format!(r#"{{{base},"code":"heart_rate","value":null}}"#)),
            "field `value`: null is not valid; expected a number, a string (consciousness) or a boolean (flags)"
        );
        assert_eq!(
            err(&format!(
                r#"{{{base},"code":"heart_rate","value":80,"status":"prelim"}}"#
            )),
            "field `status`: \"prelim\" is not valid; expected final, amended or entered-in-error"
        );
        assert_eq!(
            err(
                r#"{"patient_id":"P 1","code":"heart_rate","value":80,"effective":"2026-11-23T10:00:00Z"}"#
            ),
            "field `patient_id`: \"P 1\" is not valid; expected 1-64 characters of A-Z a-z 0-9 . _ : -"
        );
        assert_eq!(
            err(r#"{"patient_id":"P1","code":"heart_rate","value":80,"effective":"yesterday"}"#),
            "field `effective`: \"yesterday\" is not valid; expected an RFC 3339 date-time with offset, e.g. 2026-11-23T10:00:00Z"
        );
        assert!(
            err(r#"{"patient_id":"P1","value":80,"effective":"2026-11-23T10:00:00Z"}"#)
                .contains("missing field `code`")
        );
        assert!(err(r#"{"patient_id":"P1","code":"heart_rate","value":80,"effective":"2026-11-23T10:00:00Z","efective":1}"#)
            .contains("unknown field `efective`"));
        assert!(err("{not json").starts_with("invalid observation JSON: "));
        assert!(err("[]").starts_with("invalid observation JSON: "));
        let long = format!(r#"{{"patient_id":"{}"}}"#, "x".repeat(MAX_MESSAGE_BYTES));
        assert!(err(&long).contains("exceeds the limit"));
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        fn field() -> impl Strategy<Value = String> {
            prop_oneof![
                Just(r#""patient_id":"P1""#.to_owned()),
                Just(r#""code":"heart_rate""#.to_owned()),
                Just(r#""code":"8310-5""#.to_owned()),
                Just(r#""effective":"2026-11-23T10:00:00Z""#.to_owned()),
                Just(r#""unit":"[degF]""#.to_owned()),
                Just(r#""status":"amended""#.to_owned()),
                Just(r#""id":"x""#.to_owned()),
                any::<f64>().prop_map(|v| format!(r#""value":{v}"#)),
                "\\PC{0,12}".prop_map(|v| format!(r#""value":{v:?}"#)),
                "[a-z_]{1,10}".prop_map(|k| format!(r#""{k}":1"#)),
            ]
        }

        const KEYS: [&str; 10] = [
            "patient_id",
            "encounter_id",
            "location",
            "code",
            "value",
            "unit",
            "effective",
            "id",
            "status",
            "other",
        ];

        /// A value as a feed might write it, including what the fast reader leaves to
        /// serde: escapes, `null`, nesting, numbers in every notation.
        fn value() -> impl Strategy<Value = String> {
            prop_oneof![
                4 => "[A-Za-z0-9 _:/.\\-]{0,12}".prop_map(|v| format!("\"{v}\"")),
                1 => "\\PC{0,6}".prop_map(|v| format!("{v:?}")),
                2 => any::<f64>().prop_map(|v| format!("{v}")),
                2 => any::<f64>().prop_map(|v| format!("{v:e}")),
                1 => any::<i64>().prop_map(|v| v.to_string()),
                1 => any::<u64>().prop_map(|v| v.to_string()),
                3 => "-?[0-9]{1,20}(\\.[0-9]{0,20})?([eE][+-]?[0-9]{1,3})?",
                1 => Just("true".to_owned()),
                1 => Just("false".to_owned()),
                1 => Just("null".to_owned()),
                1 => Just("[1]".to_owned()),
                1 => Just("\"a\\\"b\"".to_owned()),
            ]
        }

        /// An object: distinct keys in any order (sometimes one repeated), odd spacing.
        fn object() -> impl Strategy<Value = String> {
            (
                prop::sample::subsequence(KEYS.to_vec(), 0..=KEYS.len()).prop_shuffle(),
                prop::collection::vec((value(), "[ \t\n]{0,2}"), KEYS.len() + 1),
                prop::option::weighted(0.1, prop::sample::select(KEYS.to_vec())),
            )
                .prop_map(|(keys, values, repeated)| {
                    let members: Vec<String> = keys
                        .into_iter()
                        .chain(repeated)
                        .zip(values)
                        .map(|(k, (v, ws))| format!("{ws}\"{k}\"{ws}:{ws}{v}{ws}"))
                        .collect();
                    format!("{{{}}}", members.join(","))
                })
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2000))]
            #[test]
            fn the_fast_reader_reads_what_serde_reads(msg in object()) {
                let slow: Result<Wire<'_>, _> = serde_json::from_slice(msg.as_bytes());
                match flat::read(msg.as_bytes()) {
                    Some(fast) => prop_assert_eq!(Some(fast), slow.ok(), "{}", msg),
                    // Only what the fast reader does not take: never a plain event.
                    None => prop_assert!(
                        slow.is_err() || msg.contains('\\') || msg.contains("null") || msg.contains('['),
                        "{}", msg
                    ),
                }
            }
        }

        proptest! {
            #[test]
            fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
                let _ = decode_json(&bytes);
            }

            #[test]
            fn shuffled_fields_never_panic_and_errors_name_a_field(
                fields in prop::collection::vec(field(), 0..9)
            ) {
                let msg = format!("{{{}}}", fields.join(","));
                match decode_json(msg.as_bytes()) {
                    Ok(d) => prop_assert_eq!(d.patient_id, "P1"),
                    Err(e) => {
                        let text = e.to_string();
                        prop_assert!(text.starts_with("field `") || text.starts_with("invalid observation JSON: "), "{}", text);
                    }
                }
            }
        }
    }

    #[test]
    fn a_plain_event_takes_the_fast_reader_and_anything_unusual_goes_to_serde() {
        let plain = br#"{"patient_id":"P000123","code":"heart_rate","value":88.5,"unit":"/min","effective":"2026-11-23T10:00:00.020000Z"}"#;
        assert!(flat::read(plain).is_some());
        for unusual in [
            &br#"{"patient_id":"P1","code":"heart_rate","value":88,"effective":"2026-11-23T10:00:00Z","unit":null}"#[..],
            br#"{"patient_id":"P\u0031","code":"heart_rate","value":88,"effective":"2026-11-23T10:00:00Z"}"#,
            br#"{"patient_id":"P1","code":"heart_rate","value":88,"effective":"2026-11-23T10:00:00Z","code":"sbp"}"#,
            br#"{"patient_id":"P1","code":"heart_rate","value":88,"effective":"2026-11-23T10:00:00Z"} x"#,
            br#"{"patient_id":"P1","code":"heart_rate","value":088,"effective":"2026-11-23T10:00:00Z"}"#,
            br#"{"patient_id":"P1","code":"heart_rate","effective":"2026-11-23T10:00:00Z"}"#,
        ] {
            assert!(flat::read(unusual).is_none(), "{}", String::from_utf8_lossy(unusual));
        }
        // The escaped patient id still decodes, through serde.
        let escaped = decode_json(br#"{"patient_id":"P\u0031","code":"heart_rate","value":88,"effective":"2026-11-23T10:00:00Z"}"#);
        assert_eq!(escaped.map(|d| d.patient_id).ok().as_deref(), Some("P1"));
    }

    #[test]
    fn an_array_is_a_set_of_events_each_checked() {
        let set = br#" [{"patient_id":"P1","code":"heart_rate","value":120,"effective":"2026-11-23T10:00:00Z"},
                     {"patient_id":"P1","code":"resp_rate","value":0,"effective":"2026-11-23T10:00:00Z"},
                     {"patient_id":"P1","code":"sbp","value":90,"effective":"2026-11-23T10:00:00Z"}]"#;
        let out = Format::Json.decode(set);
        assert_eq!(out.len(), 3);
        assert_eq!(
            out[0].as_ref().map(|d| d.observation.param()).ok(),
            Some(Param::HeartRate)
        );
        assert_eq!(
            out[1].as_ref().map(|_| ()).unwrap_err().to_string(),
            "[1]: field `value`: resp_rate 0 /min is outside the possible range 1-120 /min"
        );
        assert!(out[2].is_ok());
        for bad in [&b"[]"[..], b"[1, 2", b"[{\"patient_id\":1}]"] {
            let out = Format::Json.decode(bad);
            assert!(out.iter().all(Result::is_err), "{out:?}");
        }
    }
}
