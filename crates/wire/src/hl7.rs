//! HL7 v2 input (versions 2.3 to 2.8): ORU^R01 observation results, as bedside monitor
//! gateways and interface engines send them.
//!
//! What is read (HL7 v2.5.1 chapter 7, ORU^R01; ISO/IEEE 11073-10101 nomenclature):
//! - MSH: separators from MSH-1/MSH-2, message type MSH-9 (`ORU^R01`), version MSH-12;
//! - PATIENT_RESULT groups: each opens with its PID, and its PV1, OBR and OBX segments
//!   follow; every reading carries the patient of its own group (a message may report on
//!   several patients), an OBX before any PID is rejected, and a group whose PID-3 names
//!   no patient has its results rejected with that reason ([`per_patient`] splits a
//!   message into one message per group, for forwarding each keyed by its patient);
//! - PID-3: the patient identifier: the repetition whose identifier type (PID-3.5) is one
//!   of the configured ones (`MR` by default), in their order of preference; a PID-3 with
//!   none of them is rejected, naming the types it holds (a patient is never guessed);
//! - PV1-3: the location (point of care `/` room `/` bed, empty parts left out); PV1-19: the visit number (encounter);
//! - OBR-7: the observation time when an OBX has none; OBR-3 (else OBR-2): the order;
//! - OBX: OBX-3 coded in LOINC (`LN`) or in IEEE 11073 MDC (`MDC`, by numeric code or
//!   `MDC_...` name; the map [`MDC_MAP`], extensible), OBX-5 numeric (`NM`)
//!   or coded values (ACVPU by SNOMED CT code), OBX-6 units (UCUM, or the common
//!   `MDC_DIM_...` units), OBX-11 result status, OBX-14 observation time.
//!
//! **Units are never guessed**: an OBX with an empty OBX-6 is rejected for every parameter
//! that has a unit (all numeric ones but GCS and INR, whose scales have none).
//!
//! **Reading ids.** HL7 v2 has no identifier for one result, and MSH-10 is only the
//! message's control id: senders reuse it, and a resend may carry a new one. Each reading's
//! id is therefore made of what identifies the measurement itself:
//! `hl7:<order>:<OBX-3 identifier>:<OBX-4 sub-id>:<observation time>` (order from OBR-3,
//! else OBR-2, else empty; the time in UTC milliseconds). A resend of the same result is a
//! duplicate whatever its MSH-10; a correction (OBX-11 `C`) replaces it; a new measurement
//! at another time is a new reading; the same code and time with another value sent as
//! final is a conflict and is rejected.
//!
//! Segments may end in `\r`, `\n` or `\r\n`; escape sequences (`\F\ \S\ \T\ \R\ \E\`) are
//! decoded; repetitions are honoured where the standard allows them. A time without a UTC
//! offset is ambiguous and is rejected unless a default offset is configured. An ORU with
//! some bad results keeps its good ones and reports the bad ones, each naming the segment
//! and field.

use vigil_score::{Observation, Param, RawValue, Status, Timestamp};

use crate::{DecodeError, Decoded, Limits, PatientNaming};

/// An IANA time zone by name (`Europe/London`), for HL7 times sent without an offset.
#[derive(Clone, PartialEq, Eq)]
pub struct LocalZone {
    name: String,
    zone: jiff::tz::TimeZone,
}

impl LocalZone {
    /// The zone named `name` in the IANA Time Zone Database (the system's copy, else
    /// the one built into Vigil).
    ///
    /// # Errors
    ///
    /// When no such zone exists: the reason says so.
    pub fn named(name: &str) -> Result<LocalZone, String> {
        jiff::tz::TimeZone::get(name)
            .map(|zone| LocalZone {
                name: name.to_owned(),
                zone,
            })
            .map_err(|_| {
                format!("{name:?} is not an IANA time zone name (for example Europe/London)")
            })
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The UTC offset, in minutes, of the local civil time given, or why there is none:
    /// a time skipped when the clocks went forward, or one that happened twice when they
    /// went back (never guessed).
    fn offset_minutes(&self, parts: [i16; 6]) -> Result<i32, String> {
        use jiff::tz::AmbiguousOffset;
        let [y, mo, d, h, mi, sec] = parts;
        let dt = jiff::civil::DateTime::new(
            y,
            i8::try_from(mo).map_err(|_| "month out of range".to_owned())?,
            i8::try_from(d).map_err(|_| "day out of range".to_owned())?,
            i8::try_from(h).map_err(|_| "hour out of range".to_owned())?,
            i8::try_from(mi).map_err(|_| "minute out of range".to_owned())?,
            i8::try_from(sec).map_err(|_| "second out of range".to_owned())?,
            0,
        )
        .map_err(|_| "not a valid date-time".to_owned())?;
        match self.zone.to_ambiguous_timestamp(dt).offset() {
            AmbiguousOffset::Unambiguous { offset } => Ok(offset.seconds() / 60),
            AmbiguousOffset::Gap { .. } => Err(format!(
                "does not exist in {} (the clocks went forward over it)",
                self.name
            )),
            AmbiguousOffset::Fold { .. } => Err(format!(
                "happened twice in {} (the clocks went back over it); send the time with its \
                 UTC offset",
                self.name
            )),
        }
    }
}

impl std::fmt::Debug for LocalZone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("LocalZone").field(&self.name).finish()
    }
}

/// Options of the HL7 v2 decoder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hl7Options {
    /// PID-3.5 identifier types to take the patient id from, in order of preference
    /// (`MR`, medical record number, by default).
    pub identifier_types: Vec<String>,
    /// Accept preliminary results (OBX-11 `P`, `R`, `S`) as final.
    pub accept_preliminary: bool,
    /// Minutes east of UTC to assume for times sent without an offset; `None` rejects them
    /// (unless `time_zone` is set).
    pub default_offset_minutes: Option<i32>,
    /// The IANA time zone in which times sent without an offset are local (the offset then
    /// follows daylight saving time); `None`: see `default_offset_minutes`.
    pub time_zone: Option<LocalZone>,
    /// Size and reading-count bounds.
    pub limits: Limits,
    /// MDC codes (numeric or `MDC_...` reference ids) mapped to parameters beyond
    /// [`MDC_MAP`], for devices that send other codes.
    pub extra_mdc: Vec<(String, Param)>,
    /// Further MDC codes the hospital's devices send that Vigil should ignore as valid
    /// but unscored (`[input] hl7_mdc_codes`, `"code" = "unscored"`).
    pub ignored_mdc: Vec<String>,
}

impl Default for Hl7Options {
    fn default() -> Self {
        Hl7Options {
            identifier_types: vec!["MR".to_owned()],
            accept_preliminary: false,
            default_offset_minutes: None,
            time_zone: None,
            limits: Limits::default(),
            extra_mdc: Vec::new(),
            ignored_mdc: Vec::new(),
        }
    }
}

/// IEEE 11073-10101 (MDC) codes Vigil maps to parameters: numeric code, reference id.
///
/// Source of every code but `150344` (Vigil's first map), the cuff pressures and the
/// invasive arterial pressures (cited where they are listed): the ValueSet "Dk Core IEEE Basic
/// Observation" of HL7 Denmark's DK Core FHIR implementation guide
/// (<http://hl7.dk/fhir/core/ValueSet/dk-core-IEEEBasicObservation>), which lists the
/// MDC codes bedside monitors and gateways commonly send for basic observations, each
/// with its reference id and fully specified name. Left out on purpose: arterial oxygen
/// saturation without a method (`150324`, which may be a blood gas, not SpO2), skin and
/// gastro-intestinal temperatures, instantaneous (beat-to-beat) heart rate and exercise
/// equipment codes; a device that sends them can be mapped with `[input] hl7_mdc_codes`.
pub const MDC_MAP: &[(&str, &str, Param)] = &[
    // Oxygen saturation by pulse oximetry.
    ("150456", "MDC_PULS_OXIM_SAT_O2", Param::Spo2),
    // Heart and pulse rate, by method.
    ("147842", "MDC_ECG_HEART_RATE", Param::HeartRate),
    ("149514", "MDC_PULS_RATE", Param::HeartRate),
    ("149522", "MDC_BLD_PULS_RATE_INV", Param::HeartRate),
    ("149530", "MDC_PULS_OXIM_PULS_RATE", Param::HeartRate),
    ("149546", "MDC_PULS_RATE_NON_INV", Param::HeartRate),
    ("149554", "MDC_TTHOR_HEART_RATE", Param::HeartRate),
    ("149562", "MDC_PALPATION_HEART_RATE", Param::HeartRate),
    // Respiratory rate, by method.
    ("151562", "MDC_RESP_RATE", Param::RespRate),
    ("151570", "MDC_AWAY_RESP_RATE", Param::RespRate),
    ("151578", "MDC_TTHOR_RESP_RATE", Param::RespRate),
    ("151594", "MDC_CO2_RESP_RATE", Param::RespRate),
    ("151602", "MDC_PRESS_RESP_RATE", Param::RespRate),
    ("151650", "MDC_ACOUSTIC_RESP_RATE", Param::RespRate),
    ("151658", "MDC_PULS_OXIM_PLETH_RESP_RATE", Param::RespRate),
    // Non-invasive blood pressure.
    ("150021", "MDC_PRESS_BLD_NONINV_SYS", Param::Sbp),
    ("150022", "MDC_PRESS_BLD_NONINV_DIA", Param::Dbp),
    ("150023", "MDC_PRESS_BLD_NONINV_MEAN", Param::Map),
    // Non-invasive blood pressure as a cuff pressure. Source of the reference ids: the
    // MD PnP program's OpenICE Philips IntelliVue adapter, which reports IntelliVue's
    // non-invasive pressures as MDC_PRESS_CUFF_SYS, _DIA and _MEAN (github.com/mdpnp/mdpnp,
    // interop-lab/demo-devices/.../philips/intellivue/AbstractDemoIntellivue.java); Mindray
    // eGateway feeds use the same ids. The numeric codes are those gateways send with them
    // (`150301^MDC_PRESS_CUFF_SYS^MDC`); either one is matched.
    ("150301", "MDC_PRESS_CUFF_SYS", Param::Sbp),
    ("150302", "MDC_PRESS_CUFF_DIA", Param::Dbp),
    ("150303", "MDC_PRESS_CUFF_MEAN", Param::Map),
    // Invasive arterial blood pressure (source: GE Healthcare, B40/B20 Patient Monitor
    // HL7 Reference Manual, 2062665-001 G, 2014, PCD-01 examples).
    ("150033", "MDC_PRESS_BLD_ART_SYS", Param::Sbp),
    ("150034", "MDC_PRESS_BLD_ART_DIA", Param::Dbp),
    ("150035", "MDC_PRESS_BLD_ART_MEAN", Param::Map),
    // Body temperature, by site.
    ("150344", "MDC_TEMP", Param::Temperature),
    ("150364", "MDC_TEMP_BODY", Param::Temperature),
    ("150368", "MDC_TEMP_CORE", Param::Temperature),
    ("150392", "MDC_TEMP_TYMP", Param::Temperature),
    ("188420", "MDC_TEMP_RECT", Param::Temperature),
    ("188424", "MDC_TEMP_ORAL", Param::Temperature),
    ("188428", "MDC_TEMP_EAR", Param::Temperature),
    ("188452", "MDC_TEMP_AXILLA", Param::Temperature),
];

/// IEEE 11073-10101 (MDC) codes Vigil knows and does not score: numeric code, reference
/// id. A valid code here is ignored and counted, as a LOINC code Vigil does not score is;
/// any other number is not taken for an MDC code (a mistyped code would otherwise vanish
/// from the feed) and is rejected with its reason, unless `[input] hl7_mdc_codes` maps it
/// to a parameter or to `"unscored"`. Sources: the same DK Core ValueSet as [`MDC_MAP`]
/// (<http://hl7.dk/fhir/core/ValueSet/dk-core-IEEEBasicObservation>): its codes that Vigil
/// does not score; and the GE reference manual cited below.
pub const MDC_UNSCORED: &[(&str, &str)] = &[
    ("150020", "MDC_PRESS_BLD_NONINV"),
    ("150324", "MDC_SAT_O2_ART"),
    ("150388", "MDC_TEMP_SKIN"),
    ("153856", "MDC_CIRCUM_HEAD"),
    ("188456", "MDC_TEMP_GIT"),
    ("188736", "MDC_MASS_BODY_ACTUAL"),
    ("188740", "MDC_LEN_BODY_ACTUAL"),
    ("188752", "MDC_RATIO_MASS_BODY_LEN_SQ"),
    ("8410590", "MDC_ECG_HEART_RATE_INSTANT"),
    ("8410992", "MDC_SABTE_RESP_RATE"),
    ("8454258", "MDC_HF_HR"),
    // The device rows and counts of a GE patient monitor's IHE PCD-01 results (source:
    // GE Healthcare, B40/B20 Patient Monitor HL7 Reference Manual, 2062665-001 G, 2014,
    // PCD-01 examples, as for the invasive pressures in MDC_MAP).
    ("69854", "MDC_DEV_METER_PRESS_BLD_VMD"),
    ("69855", "MDC_DEV_METER_PRESS_BLD_CHAN"),
    ("69965", "MDC_DEV_MON_PHYSIO_MULTI_PARAM_MDS"),
    ("148065", "MDC_ECG_V_P_C_CNT"),
];

/// Whether `id` (a numeric code or a reference id) is an MDC code Vigil knows: mapped to a
/// parameter, or known and unscored ([`MDC_UNSCORED`]).
pub fn known_mdc(id: &str) -> bool {
    MDC_MAP
        .iter()
        .any(|(code, name, _)| id == *code || id == *name)
        || MDC_UNSCORED
            .iter()
            .any(|(code, name)| id == *code || id == *name)
}

/// Whether OBX-3's coding system names IEEE 11073 MDC (as gateways write it).
fn mdc_system(system: &str) -> bool {
    matches!(system, "MDC" | "99MDC" | "ISO11073") || system.contains("11073")
}

/// What a number says as an MDC context-free code: its partition and term code
/// (code = partition × 65536 + term, IEEE 11073-10101).
fn mdc_parts(id: &str) -> Option<(u64, u64)> {
    let n: u64 = id.parse().ok()?;
    Some((n >> 16, n & 0xFFFF))
}

/// MDC unit reference ids and their UCUM equivalents.
const MDC_UNITS: &[(&str, &str)] = &[
    ("MDC_DIM_PERCENT", "%"),
    ("MDC_DIM_BEAT_PER_MIN", "/min"),
    ("MDC_DIM_RESP_PER_MIN", "/min"),
    ("MDC_DIM_MMHG", "mm[Hg]"),
    ("MDC_DIM_KILO_PASCAL", "kPa"),
    ("MDC_DIM_DEGC", "Cel"),
    ("MDC_DIM_FAHR", "[degF]"),
];

struct Separators {
    field: char,
    component: char,
    repetition: char,
    escape: char,
    subcomponent: char,
}

/// One segment's fields, numbered as HL7 numbers them (`field(3)` is SEG-3).
struct Segment<'a> {
    name: &'a str,
    fields: Vec<&'a str>,
    /// MSH numbers its fields from the separator itself.
    is_msh: bool,
}

impl<'a> Segment<'a> {
    fn field(&self, n: usize) -> &'a str {
        let i = if self.is_msh { n - 1 } else { n };
        self.fields.get(i).copied().unwrap_or("")
    }
}

fn at(path: impl Into<String>, reason: impl Into<String>) -> DecodeError {
    DecodeError::At {
        path: path.into(),
        reason: reason.into(),
    }
}

fn shown(s: &str) -> String {
    if s.chars().count() > 64 {
        format!("{:?}...", s.chars().take(64).collect::<String>())
    } else {
        format!("{s:?}")
    }
}

/// Whether `version` (MSH-12's version id) is one Vigil reads: 2.3 to 2.8.
pub fn is_supported_version(version: &str) -> bool {
    matches!(
        version,
        "2.3"
            | "2.3.1"
            | "2.4"
            | "2.5"
            | "2.5.1"
            | "2.6"
            | "2.7"
            | "2.7.1"
            | "2.8"
            | "2.8.1"
            | "2.8.2"
    )
}

/// Decodes one HL7 v2 message into the observations it carries.
pub fn decode_hl7(bytes: &[u8], options: &Hl7Options) -> Vec<Result<Decoded, DecodeError>> {
    if bytes.len() > options.limits.max_bytes {
        return vec![Err(DecodeError::TooLarge {
            size: bytes.len(),
            limit: options.limits.max_bytes,
        })];
    }
    let text = String::from_utf8_lossy(bytes);
    match message(&text, options) {
        Ok(results) => results,
        Err(e) => vec![Err(e)],
    }
}

fn message(
    text: &str,
    options: &Hl7Options,
) -> Result<Vec<Result<Decoded, DecodeError>>, DecodeError> {
    let text = text.trim_start_matches(['\u{b}', '\u{feff}']);
    if !text.starts_with("MSH") || text.len() < 8 {
        return Err(at(
            "MSH",
            format!(
                "{} does not start with an MSH segment",
                shown(text.split(['\r', '\n']).next().unwrap_or(""))
            ),
        ));
    }
    let mut chars = text[3..].chars();
    let field = chars.next().unwrap_or('|');
    let enc: Vec<char> = chars.take_while(|c| *c != field).collect();
    if enc.len() < 3 {
        return Err(at(
            "MSH-2",
            "encoding characters missing; expected e.g. ^~\\&",
        ));
    }
    let sep = Separators {
        field,
        component: enc[0],
        repetition: enc[1],
        escape: enc[2],
        subcomponent: enc.get(3).copied().unwrap_or('&'),
    };
    let segments: Vec<Segment<'_>> = text
        .split(['\r', '\n'])
        .map(|s| s.trim_end_matches('\u{1c}').trim())
        .filter(|s| !s.is_empty())
        .map(|s| {
            let fields: Vec<&str> = s.split(sep.field).collect();
            Segment {
                name: fields[0],
                is_msh: fields[0] == "MSH",
                fields,
            }
        })
        .collect();
    let msh = &segments[0];
    let kind = components(msh.field(9), &sep);
    if kind.first().copied() != Some("ORU") || kind.get(1).copied() != Some("R01") {
        return Err(at(
            "MSH-9",
            format!("{} is not supported; expected ORU^R01", shown(msh.field(9))),
        ));
    }
    let version = msh.field(12).split(sep.component).next().unwrap_or("");
    if !is_supported_version(version) {
        return Err(at(
            "MSH-12",
            format!(
                "{} is not supported; expected a version from 2.3 to 2.8",
                shown(version)
            ),
        ));
    }
    // Each PATIENT_RESULT group opens with its PID; its PV1 and its orders follow. A
    // reading belongs to the patient of the group it is in, never to another group's.
    let pids = segments.iter().filter(|s| s.name == "PID").count();
    if pids == 0 {
        return Err(at("PID", "missing; an ORU^R01 names its patient in PID-3"));
    }
    let mut group: Option<Group> = None;
    let mut obr_time: Option<&str> = None;
    let mut order = String::new();
    let mut out = Vec::new();
    let mut obx_count = 0;
    for segment in &segments {
        match segment.name {
            "PID" => {
                let number = group.as_ref().map_or(1, |g| g.number + 1);
                let label = if pids == 1 {
                    "PID-3".to_owned()
                } else {
                    format!("PID[{number}]-3")
                };
                let patient = patient(segment.field(3), &sep, options);
                // A message about one patient whose PID-3 cannot be read is refused whole,
                // as it always was; in a message about several, only that group's results.
                if pids == 1
                    && let Err(reason) = &patient
                {
                    return Err(at(label, reason.clone()));
                }
                group = Some(Group {
                    number,
                    patient: patient.map_err(|reason| (label, reason)),
                    encounter_id: None,
                    location: None,
                });
                obr_time = None;
                order.clear();
            }
            "PV1" => {
                if let Some(g) = &mut group {
                    g.location = location(segment.field(3), &sep);
                    g.encounter_id = Some(unescape(
                        components(segment.field(19), &sep)
                            .first()
                            .copied()
                            .unwrap_or(""),
                        &sep,
                    ))
                    .filter(|e| !e.is_empty());
                }
            }
            "OBR" => {
                obr_time = Some(segment.field(7)).filter(|t| !t.is_empty());
                let number = |f: usize| {
                    unescape(
                        components(segment.field(f), &sep)
                            .first()
                            .copied()
                            .unwrap_or(""),
                        &sep,
                    )
                };
                order = Some(number(3))
                    .filter(|o| !o.is_empty())
                    .unwrap_or_else(|| number(2));
            }
            "OBX" => {
                obx_count += 1;
                let max = options.limits.max_readings;
                if obx_count > max {
                    out.push(Err(at(
                        "OBX",
                        format!("more than {max} OBX segments; the rest are ignored"),
                    )));
                    break;
                }
                let label = format!("OBX[{obx_count}]");
                let result = match &group {
                    None => Err(at(
                        label,
                        "comes before any PID; each PATIENT_RESULT group names its patient \
                         in a PID segment before its results",
                    )),
                    Some(Group {
                        patient: Err((path, reason)),
                        ..
                    }) => Err(at(path.clone(), reason.clone())),
                    Some(Group {
                        patient: Ok((patient_id, naming)),
                        encounter_id,
                        location,
                        ..
                    }) => {
                        let ctx = ObxContext {
                            sep: &sep,
                            options,
                            patient_id,
                            naming,
                            encounter_id: encounter_id.as_deref(),
                            location: location.as_deref(),
                            order: &order,
                            obr_time,
                            label,
                        };
                        obx(segment, &ctx)
                    }
                };
                out.push(result);
            }
            _ => {}
        }
    }
    if obx_count == 0 {
        return Err(at("OBX", "missing; the message carries no result"));
    }
    Ok(out)
}

/// One PATIENT_RESULT group: its patient (or why PID-3 names none, with the field's
/// path) and its visit.
struct Group {
    /// The group's number in the message, from 1.
    number: usize,
    patient: Result<(String, PatientNaming), (String, String)>,
    encounter_id: Option<String>,
    location: Option<String>,
}

struct ObxContext<'a> {
    sep: &'a Separators,
    options: &'a Hl7Options,
    patient_id: &'a str,
    naming: &'a PatientNaming,
    encounter_id: Option<&'a str>,
    location: Option<&'a str>,
    order: &'a str,
    obr_time: Option<&'a str>,
    label: String,
}

fn components<'a>(field: &'a str, sep: &Separators) -> Vec<&'a str> {
    field.split(sep.component).collect()
}

fn unescape(s: &str, sep: &Separators) -> String {
    if !s.contains(sep.escape) {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find(sep.escape) {
        out.push_str(&rest[..start]);
        let after = &rest[start + sep.escape.len_utf8()..];
        let Some(end) = after.find(sep.escape) else {
            out.push_str(&rest[start..]);
            return out;
        };
        match &after[..end] {
            "F" => out.push(sep.field),
            "S" => out.push(sep.component),
            "T" => out.push(sep.subcomponent),
            "R" => out.push(sep.repetition),
            "E" => out.push(sep.escape),
            code if code.starts_with('X') => {
                let hex = &code[1..];
                let bytes: Vec<u8> = (0..hex.len() / 2)
                    .filter_map(|i| u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok())
                    .collect();
                out.push_str(&String::from_utf8_lossy(&bytes));
            }
            // Formatting escapes (\H\, \N\, \.br\ ...) carry no data.
            _ => {}
        }
        rest = &after[end + sep.escape.len_utf8()..];
    }
    out.push_str(rest);
    out
}

/// The patient id PID-3 gives, and the system its assigning authority (PID-3.4, HD:
/// namespace & universal id & universal id type) names: `urn:oid:<id>` for an ISO OID,
/// the id itself for a URI, `urn:uuid:<id>` for a UUID; or why PID-3 gives no patient.
fn patient(
    field: &str,
    sep: &Separators,
    options: &Hl7Options,
) -> Result<(String, PatientNaming), String> {
    let ids: Vec<Vec<&str>> = field
        .split(sep.repetition)
        .map(|rep| components(rep, sep))
        .filter(|c| c.first().is_some_and(|id| !id.is_empty()))
        .collect();
    if ids.is_empty() {
        return Err("empty; expected the patient identifier list".to_owned());
    }
    let chosen = options
        .identifier_types
        .iter()
        .find_map(|wanted| {
            ids.iter()
                .find(|c| c.get(4).copied() == Some(wanted.as_str()))
        })
        .ok_or_else(|| {
            let found: Vec<String> = ids
                .iter()
                .map(|c| match c.get(4).copied().filter(|t| !t.is_empty()) {
                    Some(t) => shown(t),
                    None => "none".to_owned(),
                })
                .collect();
            format!(
                "holds identifier types {} but none of the configured {} \
                 (PID-3.5); set [input] hl7_identifier_type to accept another type",
                found.join(", "),
                options.identifier_types.join(", ")
            )
        })?;
    let id = unescape(chosen[0], sep);
    let authority: Vec<String> = chosen
        .get(3)
        .map(|hd| {
            hd.split(sep.subcomponent)
                .map(|p| unescape(p, sep))
                .collect()
        })
        .unwrap_or_default();
    let universal = authority.get(1).map_or("", String::as_str);
    let naming = match authority.get(2).map(String::as_str) {
        _ if universal.is_empty() => PatientNaming::Id,
        Some("ISO") => PatientNaming::System(format!("urn:oid:{universal}")),
        Some("UUID") => PatientNaming::System(format!("urn:uuid:{universal}")),
        Some("URI") => PatientNaming::System(universal.to_owned()),
        _ => PatientNaming::Id,
    };
    crate::valid_id("patient_id", &id)
        .map(|id| (id, naming))
        .map_err(|_| {
            format!(
                "{} is not a valid patient id; expected 1-64 characters of A-Z a-z 0-9 . _ : -",
                shown(&id)
            )
        })
}

/// The parameter an OBX-3 names, and a description of the code for errors.
fn parameter(field: &str, sep: &Separators, extra: &[(String, Param)]) -> Option<&'static str> {
    let c = components(field, sep);
    // CE/CWE: identifier^text^system, then alternate identifier^text^system.
    for triple in [0usize, 3] {
        let id = c.get(triple).copied().unwrap_or("");
        let text = c.get(triple + 1).copied().unwrap_or("");
        let system = c.get(triple + 2).copied().unwrap_or("");
        if matches!(system, "LN" | "LOINC" | "http://loinc.org")
            && id.contains('-')
            && let Some(p) = Param::from_code(id)
        {
            return Some(p.code());
        }
        if let Some((_, p)) = extra.iter().find(|(code, _)| id == code || text == code) {
            return Some(p.code());
        }
        let mdc_system = system.is_empty() || mdc_system(system);
        for (code, name, p) in MDC_MAP {
            if (mdc_system && (id == *code || id == *name)) || text == *name {
                return Some(p.code());
            }
        }
    }
    None
}

/// PV1-3 (PL: point of care ^ room ^ bed ^ facility ...) as `unit/room/bed`, the parts a
/// feed leaves empty omitted (`ICU-2^^03` is `ICU-2/03`) and only the first subcomponent
/// of each kept (`Bed07&0&0` is `Bed07`); `None` without a point of care.
fn location(field: &str, sep: &Separators) -> Option<String> {
    let pl = components(field, sep);
    let part = |i: usize| {
        pl.get(i)
            .map(|p| unescape(p.split(sep.subcomponent).next().unwrap_or(""), sep))
            .filter(|p| !p.is_empty())
    };
    let unit = part(0)?;
    let mut out = unit;
    for p in [part(1), part(2)].into_iter().flatten() {
        out.push('/');
        out.push_str(&p);
    }
    Some(out)
}

/// A valid LOINC or MDC code in OBX-3 (identifier or alternate identifier, with its
/// coding system) that Vigil does not score.
fn unscored(
    field: &str,
    sep: &Separators,
    options: &Hl7Options,
) -> Option<(crate::CodeSystem, String)> {
    let c = components(field, sep);
    [0usize, 3].iter().find_map(|&triple| {
        let id = c.get(triple).copied().unwrap_or("");
        let system = c.get(triple + 2).copied().unwrap_or("");
        if matches!(system, "LN" | "LOINC" | "http://loinc.org") && crate::is_loinc(id) {
            Some((crate::CodeSystem::Loinc, id.to_owned()))
        } else if mdc_system(system)
            && (known_mdc(id) || options.ignored_mdc.iter().any(|c| c == id))
        {
            Some((crate::CodeSystem::Mdc, id.to_owned()))
        } else {
            None
        }
    })
}

fn unit(field: &str, sep: &Separators) -> Option<String> {
    let c = components(field, sep);
    let first = unescape(c.first().copied().unwrap_or(""), sep);
    for part in c.iter().take(3) {
        if let Some((_, ucum)) = MDC_UNITS.iter().find(|(name, _)| part == name) {
            return Some((*ucum).to_owned());
        }
    }
    if first.is_empty() { None } else { Some(first) }
}

/// HL7 DTM: YYYY[MM[DD[HH[MM[SS[.S[S[S[S]]]]]]]]][+/-ZZZZ].
fn hl7_time(
    text: &str,
    default_offset: Option<i32>,
    zone: Option<&LocalZone>,
) -> Result<Timestamp, String> {
    let (body, offset) = match text.find(['+', '-']) {
        Some(i) => (&text[..i], Some(&text[i..])),
        None => (text, None),
    };
    let (main, fraction) = body.split_once('.').unwrap_or((body, ""));
    if main.len() < 12
        || main.len() > 14
        || !main.bytes().all(|b| b.is_ascii_digit())
        || !fraction.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(format!(
            "{} is not an HL7 date-time to the minute (YYYYMMDDHHMM[SS][.S][+ZZZZ])",
            shown(text)
        ));
    }
    let offset_minutes = match offset {
        Some(o) if o.len() == 5 && o[1..].bytes().all(|b| b.is_ascii_digit()) => {
            let h: i32 = o[1..3].parse().unwrap_or(0);
            let m: i32 = o[3..5].parse().unwrap_or(0);
            if o.starts_with('-') {
                -(h * 60 + m)
            } else {
                h * 60 + m
            }
        }
        Some(o) => return Err(format!("{} is not a UTC offset (+ZZZZ)", shown(o))),
        None => match zone {
            Some(zone) => {
                // `main` is 12 or 14 ASCII digits (checked above).
                let num = |a: usize, b: usize| {
                    main.get(a..b)
                        .and_then(|d| d.parse::<i16>().ok())
                        .unwrap_or(0)
                };
                let parts = [
                    num(0, 4),
                    num(4, 6),
                    num(6, 8),
                    num(8, 10),
                    num(10, 12),
                    num(12, 14),
                ];
                zone.offset_minutes(parts)
                    .map_err(|why| format!("{} has no UTC offset and {why}", shown(text)))?
            }
            None => default_offset.ok_or_else(|| {
                format!(
                    "{} has no UTC offset; local times are ambiguous (set [input] hl7_time_zone, \
                     for example \"Europe/London\", to read them as local time there, or \
                     hl7_default_utc_offset, for example \"+01:00\", for a fixed offset)",
                    shown(text)
                )
            })?,
        },
    };
    let sign = if offset_minutes < 0 { '-' } else { '+' };
    let abs = offset_minutes.unsigned_abs();
    let seconds = main.get(12..14).unwrap_or("00");
    let millis: String = fraction.chars().chain("000".chars()).take(3).collect();
    let rfc = format!(
        "{}-{}-{}T{}:{}:{seconds}.{millis}{sign}{:02}:{:02}",
        &main[0..4],
        &main[4..6],
        &main[6..8],
        &main[8..10],
        &main[10..12],
        abs / 60,
        abs % 60
    );
    Timestamp::parse_rfc3339(&rfc).map_err(|_| format!("{} is not a valid date-time", shown(text)))
}

fn acvpu(field: &str, sep: &Separators) -> Option<&'static str> {
    let c = components(field, sep);
    match c.first().copied()? {
        "248234008" => Some("A"),
        "300202002" => Some("V"),
        "450847001" => Some("P"),
        "422768004" => Some("U"),
        _ => None,
    }
}

/// The parameter OBX-3 names; else the code ignored as valid but unscored, or rejected.
fn scored_code(s: &Segment<'_>, ctx: &ObxContext<'_>) -> Result<&'static str, DecodeError> {
    let (sep, label) = (ctx.sep, &ctx.label);
    parameter(s.field(3), sep, &ctx.options.extra_mdc).ok_or_else(|| {
        if let Some((system, code)) = unscored(s.field(3), sep, ctx.options) {
            return DecodeError::Unscored {
                path: format!("{label}-3"),
                system,
                code,
            };
        }
        // A number sent as MDC that is no code Vigil knows: say what it would be.
        let c = components(s.field(3), sep);
        let mdc_number = [0usize, 3].iter().find_map(|&t| {
            let system = c.get(t + 2).copied().unwrap_or("");
            let id = c.get(t).copied().unwrap_or("");
            (mdc_system(system) && !id.is_empty() && id.len() <= 10)
                .then(|| mdc_parts(id).map(|(p, t)| (id, p, t)))
                .flatten()
        });
        let reason = match mdc_number {
            Some((id, partition, term)) => format!(
                "{} is not an IEEE 11073 MDC code Vigil knows (as a context-free code: \
                 partition {partition}, term {term}); check it against the device's \
                 documentation, then map it in [input] hl7_mdc_codes to a parameter \
                 (\"{id}\" = \"temperature\") or, if Vigil should ignore it, to \
                 \"unscored\"",
                shown(s.field(3))
            ),
            None => format!(
                "{} is not a LOINC or IEEE 11073 MDC code Vigil knows; a device's MDC \
                 code can be mapped to a parameter in [input] hl7_mdc_codes \
                 (for example \"150364\" = \"temperature\")",
                shown(s.field(3))
            ),
        };
        at(format!("{label}-3"), reason)
    })
}

fn obx(s: &Segment<'_>, ctx: &ObxContext<'_>) -> Result<Decoded, DecodeError> {
    let sep = ctx.sep;
    let label = &ctx.label;
    let value_type = s.field(2);
    let raw_value = s.field(5).split(sep.repetition).next().unwrap_or("");
    let letter = acvpu(raw_value, sep);
    // The parameter first: a valid code Vigil does not score is ignored whatever else
    // the segment says, and one it cannot read is a problem among the others.
    let code = match letter {
        Some(_) => Ok("consciousness"),
        None => match scored_code(s, ctx) {
            Err(e @ DecodeError::Unscored { .. }) => return Err(e),
            other => other,
        },
    };
    // Every problem of the segment, in the order of its fields, so that one error does
    // not hide the next (a status that is not accepted and a time without an offset).
    let mut problems: Vec<DecodeError> = Vec::new();
    let status = match s.field(11) {
        // No value, and the sender says why (HL7 table 0085): X, results cannot be
        // obtained (also IHE PCD-01's device, channel and monitor rows, which carry no
        // value); N, not asked. Absent for a scored parameter; never a rejection.
        status @ ("X" | "N") => {
            let (reason, absent) = if status == "X" {
                ("X: results cannot be obtained", "unknown")
            } else {
                ("N: not asked", "not-asked")
            };
            return Err(match code {
                Ok(code) => DecodeError::Absent {
                    path: format!("{label}-11"),
                    code: code.to_owned(),
                    reason: reason.to_owned(),
                    label: absent,
                },
                Err(e) => e,
            });
        }
        "F" | "" => Status::Final,
        "C" => Status::Amended,
        "W" | "D" => Status::EnteredInError,
        "P" | "R" | "S" if ctx.options.accept_preliminary => Status::Final,
        other @ ("P" | "R" | "S") => {
            problems.push(at(
                format!("{label}-11"),
                format!(
                    "result status {} (preliminary) is not accepted; expected F, C, W or D, \
                     or set [input] hl7_accept_preliminary = true to score P, R and S \
                     results as final",
                    shown(other)
                ),
            ));
            Status::Final
        }
        other => {
            problems.push(at(
                format!("{label}-11"),
                format!(
                    "result status {} is not accepted; expected F, C, W or D (or X or N \
                     for a result without a value)",
                    shown(other)
                ),
            ));
            Status::Final
        }
    };
    let code = match code {
        Ok(c) => Some(c),
        Err(e) => {
            problems.push(e);
            None
        }
    };
    let mut value = None;
    let mut unit_text = None;
    if let (Some(code), None) = (code, letter)
        && !matches!(value_type, "NM" | "SN" | "")
    {
        // A text result's value and unit follow from its type: not reported again.
        problems.push(at(
            format!("{label}-2"),
            format!(
                "value type {} cannot carry {code}; expected NM",
                shown(value_type)
            ),
        ));
    } else if let (Some(code), None) = (code, letter) {
        let text = unescape(raw_value, sep);
        // SN (structured numeric) puts the number after an optional comparator.
        let number = text.rsplit(sep.component).next().unwrap_or("").trim();
        match number.parse::<f64>() {
            Ok(n) => value = Some(n),
            Err(_) => problems.push(at(
                format!("{label}-5"),
                format!("{} is not a number", shown(&text)),
            )),
        }
        unit_text = unit(s.field(6), sep);
        if let Err(reason) = crate::require_unit(code, unit_text.as_deref()) {
            problems.push(at(format!("{label}-6"), reason));
        }
    }
    // OBX-14, or the order's OBR-7 when the result has no time of its own: an error
    // names the field the time came from.
    let (time_text, time_field) = match Some(s.field(14)).filter(|t| !t.is_empty()) {
        Some(t) => (t, format!("{label}-14")),
        None => (ctx.obr_time.unwrap_or(""), "OBR-7".to_owned()),
    };
    let effective = hl7_time(
        time_text.split(sep.component).next().unwrap_or(""),
        ctx.options.default_offset_minutes,
        ctx.options.time_zone.as_ref(),
    );
    let effective = match effective {
        Ok(t) => Some(t),
        Err(reason) => {
            problems.push(at(time_field, reason));
            None
        }
    };
    if !problems.is_empty() {
        return Err(crate::together(problems));
    }
    let (Some(code), Some(effective)) = (code, effective) else {
        return Err(at(label.clone(), "unreadable"));
    };
    let value = match (letter, value) {
        (Some(letter), _) => RawValue::Text(letter),
        (None, Some(n)) => RawValue::Number(n),
        (None, None) => return Err(at(format!("{label}-5"), "no value")),
    };
    let id = Some(format!(
        "hl7:{}:{}:{}:{}",
        ctx.order,
        unescape(
            components(s.field(3), sep).first().copied().unwrap_or(""),
            sep
        ),
        unescape(s.field(4), sep),
        effective.as_millis()
    ));
    let observation = Observation::new(
        code,
        value,
        unit_text.as_deref(),
        effective,
        id.as_deref(),
        status,
    )
    .map_err(|e| {
        // A unit that cannot be converted is OBX-6's fault, anything else the value's.
        let field = match e {
            vigil_score::ObservationError::Unit(_) => 6,
            _ => 5,
        };
        at(format!("{label}-{field}"), e.to_string())
    })?;
    Ok(Decoded {
        patient_id: crate::PatientId::new(ctx.patient_id),
        patient_naming: ctx.naming.clone(),
        encounter_id: ctx.encounter_id.map(str::to_owned),
        location: ctx.location.map(str::to_owned),
        id,
        observation,
    })
}

/// The message as one message per PATIENT_RESULT group: the segments before the first
/// PID (MSH and any SFT) followed by that group's segments, each segment as sent. A
/// message with at most one PID is returned whole, byte for byte. Each part decodes to
/// exactly the readings the whole message gives its group's patient.
pub fn per_patient(bytes: &[u8]) -> Vec<std::borrow::Cow<'_, [u8]>> {
    use std::borrow::Cow;
    // Segments are found as the decoder finds them: MSH-1 (the field separator) after any
    // start block or byte-order mark, segments ending at CR or LF, each trimmed.
    let text = String::from_utf8_lossy(bytes);
    let message = text.trim_start_matches(['\u{b}', '\u{feff}']);
    let Some(field) = message
        .strip_prefix("MSH")
        .and_then(|rest| rest.chars().next())
    else {
        return vec![Cow::Borrowed(bytes)];
    };
    let is_pid = |line: &[u8]| {
        let line = String::from_utf8_lossy(line);
        let segment = line.trim_end_matches('\u{1c}').trim();
        segment.split(field).next() == Some("PID")
    };
    // Where each PID segment's line starts, in the bytes as sent.
    let mut pids = Vec::new();
    let mut start = 0;
    for (i, b) in bytes.iter().enumerate().chain([(bytes.len(), &b'\n')]) {
        if matches!(b, b'\r' | b'\n') {
            if is_pid(&bytes[start..i]) {
                pids.push(start);
            }
            start = i + 1;
        }
    }
    if pids.len() < 2 {
        return vec![Cow::Borrowed(bytes)];
    }
    let header = &bytes[..pids[0]];
    pids.iter()
        .enumerate()
        .map(|(n, &from)| {
            let to = pids.get(n + 1).copied().unwrap_or(bytes.len());
            let mut part = Vec::with_capacity(header.len() + to - from);
            part.extend_from_slice(header);
            part.extend_from_slice(&bytes[from..to]);
            Cow::Owned(part)
        })
        .collect()
}

/// Splits a file of HL7 v2 messages: a message starts at each `MSH` segment, and blank
/// lines separate messages. Returns each message with the line number it starts on.
pub fn split_messages(text: &str) -> Vec<(usize, String)> {
    let normalised = text.replace("\r\n", "\n").replace('\r', "\n");
    let mut out: Vec<(usize, String)> = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (n, line) in normalised.split('\n').enumerate() {
        let line = line.trim_end();
        if line.trim().is_empty() {
            out.extend(current.take());
            continue;
        }
        if line.starts_with("MSH") {
            out.extend(current.take());
        }
        match &mut current {
            Some((_, m)) => {
                m.push('\r');
                m.push_str(line);
            }
            None => current = Some((n + 1, line.to_owned())),
        }
    }
    out.extend(current);
    out
}
