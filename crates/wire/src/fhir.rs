//! FHIR R4 input: an `Observation` resource, or a `Bundle` of them (transaction, batch,
//! collection or searchset), as one message.
//!
//! What is read, and how (HL7 FHIR R4, Observation and the vital-signs profile; US Core
//! pulse oximetry):
//! - `code.coding`: the first LOINC coding (`http://loinc.org`) Vigil knows, also when it
//!   is one of several codings. The blood-pressure panel 85354-9 yields its systolic
//!   (8480-6) and diastolic (8462-4) `component`s; SpO2 (59408-5, 2708-6) also yields its
//!   inhaled O2 flow (3151-8) and concentration (3150-0) components.
//! - ACVPU: an Observation whose `valueCodeableConcept` carries one of the SNOMED CT codes
//!   of SNOMED CT (248234008 alert, 300202002 voice, 450847001 pain,
//!   422768004 unresponsive) is a consciousness reading, whatever its `code`.
//! - `valueQuantity`: `value` with the UCUM `code` (falling back to `unit` when no code is
//!   sent; a quantity with neither is rejected for every parameter that has a unit, never
//!   read as the canonical one); `valueBoolean` for flags.
//! - `subject`: `Patient/<id>` (also as an absolute or version-specific URL), the
//!   `fullUrl` of a Patient entry in the same Bundle (a transaction's `urn:uuid:`: that
//!   Patient's identifier typed `MR`, else its only identifier), or an `identifier.value`;
//!   the identifier's `system` is kept ([`PatientNaming`]) for the alerts' FHIR output; `encounter`: `Encounter/<id>` (likewise);
//!   location: an extension whose URL ends in `location` with a `valueReference`
//!   (its `display`, else the referenced id), else, in a Bundle, the `location` of the
//!   Observation's Encounter sent with it (the `active` one, else the last; `display`,
//!   else the Location id).
//! - `dataAbsentReason` instead of a value (on the Observation or a component): counted
//!   as absent with its reason (FHIR R4 DataAbsentReason), never scored, never
//!   dead-lettered ([`DecodeError::Absent`]).
//! - time: `effectiveDateTime`, else `effectivePeriod.start`.
//! - `status`: `final` applies; `amended`/`corrected` replace the reading with the same
//!   `id`; `entered-in-error` withdraws it; `preliminary` is accepted only when configured;
//!   anything else is rejected.
//!
//! Every rejection names the JSON path, the value and the reason. A Bundle keeps its good
//! entries and reports the bad ones.

use serde_json::Value;
use vigil_score::{Observation, RawValue, Status, Timestamp};

use crate::{DecodeError, Decoded, Limits, PatientNaming};

const LOINC: &str = "http://loinc.org";
const SNOMED: &str = "http://snomed.info/sct";
const BP_PANEL: &str = "85354-9";

/// Options of the FHIR decoder.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FhirOptions {
    /// Accept `preliminary` observations as final (default: reject them).
    pub accept_preliminary: bool,
    /// Size and reading-count bounds.
    pub limits: Limits,
}

/// Decodes one FHIR message into the observations it carries.
pub fn decode_fhir(bytes: &[u8], options: FhirOptions) -> Vec<Result<Decoded, DecodeError>> {
    if bytes.len() > options.limits.max_bytes {
        return vec![Err(DecodeError::TooLarge {
            size: bytes.len(),
            limit: options.limits.max_bytes,
        })];
    }
    let root: Value = match serde_json::from_slice(bytes) {
        Ok(v) => v,
        Err(e) => return vec![Err(DecodeError::Json(e.to_string()))],
    };
    match root["resourceType"].as_str() {
        Some("Observation") => observation(&root, "Observation", options, &Index::default()),
        Some("Bundle") => bundle(&root, options),
        other => vec![Err(at(
            "resourceType",
            format!(
                "{} is not supported; expected Observation or Bundle",
                shown(other.map(Value::from).as_ref())
            ),
        ))],
    }
}

fn at(path: &str, reason: impl Into<String>) -> DecodeError {
    DecodeError::At {
        path: path.to_owned(),
        reason: reason.into(),
    }
}

fn shown(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => "missing".to_owned(),
        Some(v) => {
            let t = v.to_string();
            if t.chars().count() > 64 {
                format!("{}...", t.chars().take(64).collect::<String>())
            } else {
                t
            }
        }
    }
}

fn bundle(root: &Value, options: FhirOptions) -> Vec<Result<Decoded, DecodeError>> {
    let kind = root["type"].as_str().unwrap_or_default();
    if !matches!(kind, "transaction" | "batch" | "collection" | "searchset") {
        return vec![Err(at(
            "Bundle.type",
            format!(
                "{} is not supported; expected transaction, batch, collection or searchset",
                shown(root.get("type"))
            ),
        ))];
    }
    let Some(entries) = root["entry"].as_array() else {
        return vec![Err(at(
            "Bundle.entry",
            "missing; expected an array of entries",
        ))];
    };
    let max = options.limits.max_readings;
    if entries.len() > max {
        return vec![Err(at(
            "Bundle.entry",
            format!("{} entries exceed the limit of {max}", entries.len()),
        ))];
    }
    let index = Index {
        encounters: encounter_locations(entries),
        patients: bundle_patients(entries),
    };
    let mut out = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let path = format!("Bundle.entry[{i}].resource");
        let resource = &entry["resource"];
        match resource["resourceType"].as_str() {
            Some("Observation") => out.extend(observation(resource, &path, options, &index)),
            // Patients, encounters and the like travel in bundles; they are not readings.
            Some(_) => {}
            None => out.push(Err(at(&path, "missing resource or resourceType"))),
        }
    }
    out
}

/// Where each Encounter of a Bundle is, by the references an Observation may use for it
/// (`Encounter/<id>` and the entry's `fullUrl`).
type Encounters = std::collections::HashMap<String, String>;

/// What the other entries of a Bundle tell about an Observation's context.
#[derive(Default)]
struct Index {
    /// Where each Encounter is.
    encounters: Encounters,
    /// The patient each Patient entry names, by its `fullUrl` (a transaction's
    /// `urn:uuid:`), or why it names none.
    patients: BundlePatients,
}

/// The patient each Patient entry of a Bundle names, by the entry's `fullUrl`, or why it
/// names none.
type BundlePatients = std::collections::HashMap<String, Result<(String, PatientNaming), String>>;

/// The Patient entries of `entries`, by `fullUrl`: each one's identifier (the one typed
/// `MR`, medical record number, in HL7's identifier-type table; else its only one).
fn bundle_patients(entries: &[Value]) -> BundlePatients {
    let mut out = BundlePatients::new();
    for entry in entries {
        let r = &entry["resource"];
        if r["resourceType"].as_str() != Some("Patient") {
            continue;
        }
        let Some(url) = entry["fullUrl"].as_str() else {
            continue;
        };
        out.insert(url.to_owned(), patient_identifier(r));
    }
    out
}

/// The identifier of a Patient resource Vigil keys on, with its system.
fn patient_identifier(patient: &Value) -> Result<(String, PatientNaming), String> {
    let ids: Vec<&Value> = patient["identifier"]
        .as_array()
        .map(|ids| ids.iter().filter(|i| i["value"].is_string()).collect())
        .unwrap_or_default();
    let typed_mr = |i: &&&Value| {
        i["type"]["coding"]
            .as_array()
            .is_some_and(|c| c.iter().any(|c| c["code"].as_str() == Some("MR")))
    };
    let chosen = match ids.iter().find(typed_mr) {
        Some(mr) => *mr,
        None if ids.len() == 1 => ids[0],
        None => {
            return Err(format!(
                "the Patient entry has {} identifiers and none typed MR (medical record \
                 number); expected one identifier, or one whose type.coding has code MR",
                ids.len()
            ));
        }
    };
    let value = chosen["value"].as_str().unwrap_or_default();
    let id = crate::valid_id("patient_id", value).map_err(|_| {
        format!(
            "the Patient entry's identifier {value:?} is not a valid patient id; expected \
             1-64 characters of A-Z a-z 0-9 . _ : -"
        )
    })?;
    Ok((id, naming_of(chosen)))
}

/// How an Identifier names its patient: in its `system`, if it gives one.
fn naming_of(identifier: &Value) -> PatientNaming {
    identifier["system"]
        .as_str()
        .filter(|s| !s.is_empty())
        .map_or(PatientNaming::Id, |s| PatientNaming::System(s.to_owned()))
}

/// The location of every Encounter in `entries`: the `location` entry whose status is
/// `active`, else the last one listed; its `display`, else the Location's id.
fn encounter_locations(entries: &[Value]) -> Encounters {
    let mut out = Encounters::new();
    for entry in entries {
        let r = &entry["resource"];
        if r["resourceType"].as_str() != Some("Encounter") {
            continue;
        }
        let Some(list) = r["location"].as_array() else {
            continue;
        };
        let chosen = list
            .iter()
            .find(|l| l["status"].as_str() == Some("active"))
            .or_else(|| list.last());
        let Some(place) = chosen.and_then(|l| reference_text(&l["location"], "Location/")) else {
            continue;
        };
        if let Some(id) = r["id"].as_str() {
            out.insert(format!("Encounter/{id}"), place.clone());
        }
        if let Some(url) = entry["fullUrl"].as_str() {
            out.insert(url.to_owned(), place);
        }
    }
    out
}

/// A Reference as a person reads it: its `display`, else the referenced id.
fn reference_text(reference: &Value, prefix: &str) -> Option<String> {
    reference["display"]
        .as_str()
        .or_else(|| {
            reference["reference"]
                .as_str()
                .map(|r| r.rsplit_once(prefix).map_or(r, |(_, id)| id))
        })
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
}

/// The context every reading of one Observation shares.
struct Context {
    patient_id: String,
    patient_naming: PatientNaming,
    encounter_id: Option<String>,
    location: Option<String>,
    effective: Timestamp,
    status: Status,
    id: Option<String>,
}

fn observation(
    r: &Value,
    path: &str,
    options: FhirOptions,
    index: &Index,
) -> Vec<Result<Decoded, DecodeError>> {
    let letter = acvpu(&r["valueCodeableConcept"]);
    let loinc = known_loinc(&r["code"]);
    // A valid code Vigil does not score is ignored, whatever else the entry says.
    if letter.is_none()
        && loinc.is_none()
        && let Some((system, code)) = unscored(&r["code"])
    {
        return vec![Err(DecodeError::Unscored {
            path: format!("{path}.code"),
            system,
            code,
        })];
    }
    let unknown_code = || {
        at(
            &format!("{path}.code"),
            format!(
                "{} has no LOINC coding Vigil knows (or ACVPU SNOMED value)",
                codings(&r["code"])
            ),
        )
    };
    let ctx = match context(r, path, options, index) {
        Ok(c) => c,
        Err(mut problems) => {
            // Every problem of the entry, so that one does not hide the next.
            if letter.is_none() && loinc.is_none() {
                problems.push(unknown_code());
            }
            return vec![Err(crate::together(problems))];
        }
    };
    // ACVPU by its SNOMED value, whatever the code.
    if let Some(letter) = letter {
        return vec![reading(
            &ctx,
            "consciousness",
            RawValue::Text(letter),
            None,
            "",
            path,
        )];
    }
    let Some(loinc) = loinc else {
        return vec![Err(unknown_code())];
    };
    if loinc == BP_PANEL {
        return components(r, &ctx, path, &["8480-6", "8462-4"], true);
    }
    let mut out = vec![value(r, &ctx, loinc, path, "")];
    if matches!(loinc, "59408-5" | "2708-6") {
        out.extend(components(r, &ctx, path, &["3151-8", "3150-0"], false));
    }
    out
}

/// A valid LOINC or MDC coding of `code` that Vigil does not score.
fn unscored(code: &Value) -> Option<(crate::CodeSystem, String)> {
    code["coding"].as_array()?.iter().find_map(|c| {
        let id = c["code"].as_str()?;
        match c["system"].as_str()? {
            "http://loinc.org" if crate::is_loinc(id) => {
                Some((crate::CodeSystem::Loinc, id.to_owned()))
            }
            "urn:iso:std:iso:11073:10101" if crate::hl7::known_mdc(id) => {
                Some((crate::CodeSystem::Mdc, id.to_owned()))
            }
            _ => None,
        }
    })
}

/// The entry's status, patient and time, or every problem among them.
fn context(
    r: &Value,
    path: &str,
    options: FhirOptions,
    index: &Index,
) -> Result<Context, Vec<DecodeError>> {
    let mut problems = Vec::new();
    let status = match r["status"].as_str() {
        Some("final") => Status::Final,
        Some("amended" | "corrected") => Status::Amended,
        Some("entered-in-error") => Status::EnteredInError,
        Some("preliminary") if options.accept_preliminary => Status::Final,
        other => {
            problems.push(at(
                &format!("{path}.status"),
                format!(
                    "{} is not accepted; expected final, amended, corrected or entered-in-error{}",
                    shown(other.map(Value::from).as_ref()),
                    if other == Some("preliminary") {
                        "; set [input] fhir_accept_preliminary = true to score preliminary results as final"
                    } else {
                        ""
                    }
                ),
            ));
            Status::Final
        }
    };
    let patient = subject(r, path, index).map_err(|e| problems.push(e)).ok();
    let time = r["effectiveDateTime"]
        .as_str()
        .or_else(|| r["effectivePeriod"]["start"].as_str());
    let effective = time.and_then(|t| Timestamp::parse_rfc3339(t).ok());
    if effective.is_none() {
        problems.push(at(
            &format!("{path}.effectiveDateTime"),
            format!(
                "{} is not a date-time with offset; expected effectiveDateTime or effectivePeriod.start such as 2026-11-23T10:00:00Z",
                shown(time.map(Value::from).as_ref())
            ),
        ));
    }
    let (Some((patient_id, patient_naming)), Some(effective), true) =
        (patient, effective, problems.is_empty())
    else {
        return Err(problems);
    };
    // `Encounter/<id>` or a server's absolute URL for it gives the id; any other form
    // (a bundle-internal `urn:uuid:`) is kept as sent.
    let encounter_id = r["encounter"]["reference"]
        .as_str()
        .map(|e| resource_id(e, "Encounter").unwrap_or(e).to_owned());
    let location = r["extension"]
        .as_array()
        .and_then(|exts| {
            exts.iter().find_map(|x| {
                let url = x["url"].as_str()?;
                if !url.to_ascii_lowercase().ends_with("location") {
                    return None;
                }
                reference_text(&x["valueReference"], "Location/")
            })
        })
        // Else where the Observation's Encounter, sent in the same Bundle, is.
        .or_else(|| {
            r["encounter"]["reference"]
                .as_str()
                .and_then(|e| index.encounters.get(e))
                .cloned()
        });
    Ok(Context {
        patient_id,
        patient_naming,
        encounter_id,
        location,
        effective,
        status,
        id: r["id"].as_str().map(str::to_owned),
    })
}

/// The patient `subject` names: `Patient/<id>` (a server's id), a Patient entry of the
/// same Bundle by its `fullUrl` (a transaction's `urn:uuid:`; its identifier), or an
/// `identifier` (its `value`, with its `system`).
fn subject(r: &Value, path: &str, index: &Index) -> Result<(String, PatientNaming), DecodeError> {
    let subject = &r["subject"];
    let path = format!("{path}.subject");
    let invalid = |patient: &str| {
        at(
            &path,
            format!(
                "{patient:?} is not a valid patient id; expected 1-64 characters of A-Z a-z 0-9 . _ : -"
            ),
        )
    };
    let reference = subject["reference"].as_str();
    if let Some(id) = reference.and_then(patient_reference) {
        let id = crate::valid_id("patient_id", id).map_err(|_| invalid(id))?;
        return Ok((id, PatientNaming::Resource));
    }
    if let Some(reference) = reference {
        match index.patients.get(reference) {
            Some(Ok(found)) => return Ok(found.clone()),
            Some(Err(reason)) => {
                return Err(at(
                    &path,
                    format!("{reference:?} names a Patient entry of the Bundle, but {reason}"),
                ));
            }
            None if reference.starts_with("urn:uuid:") || reference.starts_with("urn:oid:") => {
                return Err(at(
                    &path,
                    format!(
                        "{reference:?} names no Patient entry of the Bundle; expected the \
                         fullUrl of a Patient entry sent with it"
                    ),
                ));
            }
            None => {}
        }
    }
    let identifier = &subject["identifier"];
    let Some(value) = identifier["value"].as_str() else {
        return Err(at(
            &path,
            format!(
                "{} names no patient; expected reference Patient/<id> (or an absolute URL \
                 ending in Patient/<id>, or the fullUrl of a Patient entry in the same \
                 Bundle) or identifier.value",
                shown(r.get("subject"))
            ),
        ));
    };
    let id = crate::valid_id("patient_id", value).map_err(|_| invalid(value))?;
    Ok((id, naming_of(identifier)))
}

fn codings(code: &Value) -> String {
    let list: Vec<String> = code["coding"]
        .as_array()
        .map(|c| {
            c.iter()
                .map(|c| {
                    format!(
                        "{}|{}",
                        c["system"].as_str().unwrap_or("?"),
                        c["code"].as_str().unwrap_or("?")
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    if list.is_empty() {
        "code".to_owned()
    } else {
        format!("[{}]", list.join(", "))
    }
}

fn known_loinc(code: &Value) -> Option<&str> {
    code["coding"].as_array()?.iter().find_map(|c| {
        let code = c["code"].as_str()?;
        (c["system"].as_str() == Some(LOINC)
            && (code == BP_PANEL
                || (code.contains('-') && vigil_score::Param::from_code(code).is_some())))
        .then_some(code)
    })
}

fn acvpu(concept: &Value) -> Option<&'static str> {
    concept["coding"].as_array()?.iter().find_map(|c| {
        if c["system"].as_str() != Some(SNOMED) {
            return None;
        }
        match c["code"].as_str()? {
            "248234008" => Some("A"),
            "300202002" => Some("V"),
            "450847001" => Some("P"),
            "422768004" => Some("U"),
            _ => None,
        }
    })
}

/// The reading carried by `holder` (the resource or one of its components).
fn value(
    holder: &Value,
    ctx: &Context,
    loinc: &str,
    path: &str,
    suffix: &str,
) -> Result<Decoded, DecodeError> {
    if let Some(q) = holder.get("valueQuantity") {
        let Some(v) = q["value"].as_f64() else {
            return Err(at(
                &format!("{path}.valueQuantity.value"),
                format!("{} is not a number", shown(q.get("value"))),
            ));
        };
        let unit = q["code"]
            .as_str()
            .or_else(|| q["unit"].as_str())
            .filter(|u| !u.is_empty());
        crate::require_unit(loinc, unit)
            .map_err(|reason| at(&format!("{path}.valueQuantity.code"), reason))?;
        return reading(
            ctx,
            loinc,
            RawValue::Number(v),
            unit,
            suffix,
            &format!("{path}.valueQuantity"),
        );
    }
    if let Some(b) = holder["valueBoolean"].as_bool() {
        return reading(
            ctx,
            loinc,
            RawValue::Bool(b),
            None,
            suffix,
            &format!("{path}.valueBoolean"),
        );
    }
    if let Some(absent) = holder.get("dataAbsentReason") {
        let reason = absent["coding"]
            .as_array()
            .and_then(|c| c.iter().find_map(|c| c["code"].as_str()))
            .or_else(|| absent["text"].as_str())
            .unwrap_or("unstated");
        return Err(DecodeError::Absent {
            path: format!("{path}.dataAbsentReason"),
            code: loinc.to_owned(),
            reason: reason.to_owned(),
            label: crate::absent_label(reason),
        });
    }
    Err(at(
        &format!("{path}.value[x]"),
        "missing; expected valueQuantity with a UCUM code (or valueBoolean, or an ACVPU valueCodeableConcept, or dataAbsentReason)",
    ))
}

fn components(
    r: &Value,
    ctx: &Context,
    path: &str,
    wanted: &[&str],
    required: bool,
) -> Vec<Result<Decoded, DecodeError>> {
    let mut out = Vec::new();
    let list = r["component"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    for code in wanted {
        let found = list
            .iter()
            .enumerate()
            .find(|(_, c)| known_loinc(&c["code"]) == Some(code));
        match found {
            Some((i, c)) => out.push(value(c, ctx, code, &format!("{path}.component[{i}]"), code)),
            None if required => out.push(Err(at(
                &format!("{path}.component"),
                format!("no component coded LOINC {code}"),
            ))),
            None => {}
        }
    }
    out
}

fn reading(
    ctx: &Context,
    code: &str,
    value: RawValue<'_>,
    unit: Option<&str>,
    suffix: &str,
    path: &str,
) -> Result<Decoded, DecodeError> {
    // Readings taken from components get ids of their own, derived from the resource's.
    let id = ctx.id.as_ref().map(|id| {
        if suffix.is_empty() {
            id.clone()
        } else {
            format!("{id}#{suffix}")
        }
    });
    let observation = Observation::new(code, value, unit, ctx.effective, id.as_deref(), ctx.status)
        .map_err(|e| at(path, e.to_string()))?;
    Ok(Decoded {
        patient_id: crate::PatientId::new(&ctx.patient_id),
        patient_naming: ctx.patient_naming.clone(),
        encounter_id: ctx.encounter_id.clone(),
        location: ctx.location.clone(),
        id,
        observation,
    })
}

/// The patient id of a FHIR reference: `Patient/<id>`, or an absolute URL of a FHIR
/// server ending in `Patient/<id>` (as EHRs that send full URLs write it), either one
/// optionally version-specific (`.../_history/<version>`). Anything else (another resource
/// type, a bundle-internal `urn:uuid:` reference) names no patient Vigil can use.
fn patient_reference(reference: &str) -> Option<&str> {
    resource_id(reference, "Patient")
}

/// The id a reference gives a resource of type `kind`: `<kind>/<id>`, or an absolute URL
/// ending in `<kind>/<id>`, either optionally version-specific (`.../_history/<version>`).
fn resource_id<'a>(reference: &'a str, kind: &str) -> Option<&'a str> {
    let unversioned = match reference.rsplit_once("/_history/") {
        Some((base, version)) if !version.is_empty() && !version.contains('/') => base,
        _ => reference,
    };
    let id = if unversioned.starts_with("http://") || unversioned.starts_with("https://") {
        unversioned.rsplit_once(&format!("/{kind}/"))?.1
    } else {
        unversioned.strip_prefix(kind)?.strip_prefix('/')?
    };
    (!id.is_empty() && !id.contains('/')).then_some(id)
}
