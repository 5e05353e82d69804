//! Alerts as FHIR R4 (4.0.1) resources, for EHRs that ingest FHIR: `DetectedIssue` (the
//! default: a clinical issue detected for a patient, with severity and evidence),
//! `RiskAssessment` (a qualitative risk with its basis) or `Communication` (a message to
//! the care team with a priority). Every resource is valid R4: the tests validate each
//! kind with an independent validator (the PyPI package `fhir.resources` 6.1.0, FHIR
//! 4.0.1), and check every id and reference against R4's rules.
//!
//! **References.** Vigil does not know a FHIR server's ids unless the feed was FHIR, so:
//! - the patient is referenced as the feed named it ([`PatientNaming`]): `Patient/<id>`
//!   when the feed gave a server's id, else logically by `identifier` (with the system
//!   the feed gave: a FHIR `identifier.system`, or HL7 PID-3.4's universal id);
//! - the observations that fired are `Observation/<id>` only when the feed was FHIR and
//!   the id is a FHIR id (a component reading, `<id>#<code>`, references its
//!   Observation); otherwise logically by `identifier` (the reading id as sent, or as
//!   Vigil made it for HL7 v2), with a `display` of the reading either way;
//! - the encounter likewise: `Encounter/<id>` from a FHIR feed, else by `identifier`.
//!   DetectedIssue has no `encounter` before R5: it travels in the R5 cross-version
//!   extension `http://hl7.org/fhir/5.0/StructureDefinition/extension-DetectedIssue.encounter`.
//!
//! **Terminology.** Standard codes where they exist, each beside Vigil's own rule code
//! (`urn:vigil:rule`):
//! - the score: qSOFA LOINC 96791-9, SOFA LOINC 96789-3 (the LOINC codes of the German
//!   Medical Informatics Initiative's ICU module, value set `mii-vs-icu-score-loinc`
//!   and profile `mii-pr-icu-score-sofa`); NEWS2 SNOMED CT 1104051000000101 (UK edition,
//!   Royal College of Physicians National Early Warning Score 2 total score); SIRS,
//!   MEWS, septic shock and Vigil Risk have no score code and carry Vigil's only;
//! - the condition the alert is about (DetectedIssue evidence, RiskAssessment outcome):
//!   SNOMED CT 91302008 Sepsis (disorder) for qSOFA, SIRS, SOFA and Vigil Risk; 76571007
//!   Septic shock (disorder) for septic shock; NEWS2 and MEWS screen for deterioration of
//!   any cause and carry text only;
//! - RiskAssessment `qualitativeRisk`: HL7's risk-probability codes (advisory `low`,
//!   urgent `moderate`, emergency `high`; a resolved alert carries text only, never a
//!   claim of low risk); Communication `category`: HL7's communication-category `alert`;
//!   DetectedIssue `severity` and Communication `priority`: their R4 value sets.

use serde_json::{Value, json};
use vigil_wire::{Format, PatientNaming};

use crate::event::{AlertEvent, DISCLAIMER};

const LOINC: &str = "http://loinc.org";
const SNOMED: &str = "http://snomed.info/sct";
const RISK_PROBABILITY: &str = "http://terminology.hl7.org/CodeSystem/risk-probability";
const COMMUNICATION_CATEGORY: &str = "http://terminology.hl7.org/CodeSystem/communication-category";
const DETECTED_ISSUE_ENCOUNTER: &str =
    "http://hl7.org/fhir/5.0/StructureDefinition/extension-DetectedIssue.encounter";

/// Which FHIR resource alerts are published as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FhirResource {
    /// `DetectedIssue`.
    DetectedIssue,
    /// `RiskAssessment`.
    RiskAssessment,
    /// `Communication`.
    Communication,
}

impl FhirResource {
    /// The resource named `name`.
    pub fn from_name(name: &str) -> Option<FhirResource> {
        match name {
            "DetectedIssue" => Some(FhirResource::DetectedIssue),
            "RiskAssessment" => Some(FhirResource::RiskAssessment),
            "Communication" => Some(FhirResource::Communication),
            _ => None,
        }
    }
}

/// What the resource's references are built from, beside the event.
#[derive(Clone, Copy, Debug)]
pub struct Sources<'a> {
    /// How the feed names the patient.
    pub patient: &'a PatientNaming,
    /// The input format: only a FHIR feed's ids are a FHIR server's.
    pub format: &'a Format,
    /// Per criterion, the id of the reading that met it, where known.
    pub evidence: &'a [Option<String>],
}

/// Whether `id` matches FHIR's id rule: 1-64 of `A-Z a-z 0-9 - .`.
pub fn is_fhir_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// A reference to a resource of type `kind`: literal when `id` is a server's FHIR id,
/// else logical by identifier.
fn reference(kind: &str, id: &str, server_id: bool, system: Option<&str>) -> Value {
    if server_id && is_fhir_id(id) {
        return json!({"reference": format!("{kind}/{id}")});
    }
    let mut identifier = json!({"value": id});
    if let Some(system) = system {
        identifier["system"] = json!(system);
    }
    json!({"type": kind, "identifier": identifier})
}

/// The subject: as the feed named the patient.
fn subject(patient_id: &str, naming: &PatientNaming) -> Value {
    match naming {
        PatientNaming::Resource => reference("Patient", patient_id, true, None),
        PatientNaming::System(system) => {
            reference("Patient", patient_id, false, Some(system.as_str()))
        }
        PatientNaming::Id => reference("Patient", patient_id, false, None),
    }
}

/// The standard code of the rule's score, where one exists, with its system and display.
fn score_code(rule: &str) -> Option<(&'static str, &'static str, &'static str)> {
    match rule {
        "qsofa" => Some((LOINC, "96791-9", "Quick SOFA score")),
        "sofa" => Some((LOINC, "96789-3", "Sequential Organ Failure Assessment SOFA")),
        "news2" => Some((
            SNOMED,
            "1104051000000101",
            "Royal College of Physicians National Early Warning Score 2 - total score",
        )),
        _ => None,
    }
}

/// The condition the rule screens for, coded where it is one condition.
fn condition(rule: &str) -> Value {
    match rule {
        "qsofa" | "sirs" | "sofa" | "risk" => json!({
            "coding": [{"system": SNOMED, "code": "91302008", "display": "Sepsis (disorder)"}],
            "text": "Sepsis",
        }),
        "septic_shock" => json!({
            "coding": [{"system": SNOMED, "code": "76571007", "display": "Septic shock (disorder)"}],
            "text": "Septic shock",
        }),
        _ => json!({"text": "Clinical deterioration"}),
    }
}

/// The rule as a concept: its standard score code where one exists, and Vigil's.
fn rule_concept(rule: &str) -> Value {
    let mut coding = Vec::new();
    if let Some((system, code, display)) = score_code(rule) {
        coding.push(json!({"system": system, "code": code, "display": display}));
    }
    coding.push(json!({"system": "urn:vigil:rule", "code": rule}));
    json!({"coding": coding, "text": format!("Vigil {rule} alert")})
}

/// The resource for `event`.
pub fn resource(kind: FhirResource, event: &AlertEvent<'_>, sources: &Sources<'_>) -> Value {
    let fhir_feed = matches!(sources.format, Format::Fhir(_));
    let patient = subject(event.patient_id, sources.patient);
    let evidence: Vec<Value> = event
        .criteria
        .iter()
        .zip(sources.evidence.iter().chain(std::iter::repeat(&None)))
        .map(|(e, id)| {
            let r = e.reading();
            let display = format!("{} {} at {}", r.param.label(), r.display(), r.effective);
            let mut item = match id {
                // A component reading (`<id>#<code>`) is part of its Observation.
                Some(id) if fhir_feed => {
                    let resource = id.split_once('#').map_or(id.as_str(), |(r, _)| r);
                    if is_fhir_id(resource) {
                        reference("Observation", resource, true, None)
                    } else {
                        reference("Observation", id, false, None)
                    }
                }
                Some(id) => reference("Observation", id, false, None),
                None => json!({"type": "Observation"}),
            };
            item["display"] = json!(display);
            item
        })
        .collect();
    let encounter = event
        .encounter_id
        .map(|e| reference("Encounter", e, fhir_feed, None));
    let mut extension = vec![json!({
        "url": "urn:vigil:alert-kind",
        "valueCode": event.kind,
    })];
    let rule = rule_concept(event.rule);
    let resolved = event.kind == "resolved";
    let mut r = match kind {
        FhirResource::DetectedIssue => {
            let mut issue = json!({
                "resourceType": "DetectedIssue",
                "id": event.alert_id.to_string(),
                "status": "final",
                "code": rule,
                "severity": match event.level { "emergency" => "high", "urgent" => "moderate", _ => "low" },
                "patient": patient,
                "identifiedDateTime": event.observed_at.to_string(),
                "author": {"display": format!("Vigil ({DISCLAIMER})")},
                "detail": event.message,
                "evidence": [{"code": [condition(event.rule)], "detail": evidence}],
            });
            if resolved {
                issue["mitigation"] = json!([{
                    "action": {"text": "Resolved: the patient no longer meets the rule"},
                    "date": event.observed_at.to_string(),
                }]);
            }
            if let Some(e) = encounter {
                // R4 has no DetectedIssue.encounter: R5's, as a cross-version extension.
                extension.push(json!({"url": DETECTED_ISSUE_ENCOUNTER, "valueReference": e}));
            }
            issue
        }
        FhirResource::RiskAssessment => {
            let risk = if resolved {
                json!({"text": "resolved: the patient no longer meets the rule"})
            } else {
                let code = match event.level {
                    "emergency" => "high",
                    "urgent" => "moderate",
                    _ => "low",
                };
                json!({
                    "coding": [{"system": RISK_PROBABILITY, "code": code}],
                    "text": event.level,
                })
            };
            let mut assessment = json!({
                "resourceType": "RiskAssessment",
                "id": event.alert_id.to_string(),
                "status": "final",
                "method": rule,
                "subject": patient,
                "occurrenceDateTime": event.observed_at.to_string(),
                "basis": evidence,
                "prediction": [{
                    "outcome": condition(event.rule),
                    "qualitativeRisk": risk,
                    "rationale": event.message,
                }],
                "note": [{"text": DISCLAIMER}],
            });
            if let Some(e) = encounter {
                assessment["encounter"] = e;
            }
            assessment
        }
        FhirResource::Communication => {
            let mut message = json!({
                "resourceType": "Communication",
                "id": event.alert_id.to_string(),
                "status": "completed",
                "category": [{
                    "coding": [{"system": COMMUNICATION_CATEGORY, "code": "alert"}],
                    "text": "Vigil alert",
                }],
                "priority": match event.level { "emergency" => "stat", "urgent" => "asap", _ => "routine" },
                "subject": patient,
                "sent": event.emitted_at.to_string(),
                "about": evidence,
                "payload": [{"contentString": event.message}, {"contentString": DISCLAIMER}],
            });
            if let Some(e) = encounter {
                message["encounter"] = e;
            }
            message
        }
    };
    r["extension"] = Value::Array(extension);
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Subject, events};
    use vigil_score::{Config, Observation, PolicyConfig, RawValue, Status, Timestamp, Tracker};

    fn event_for(f: impl Fn(&AlertEvent<'_>)) {
        let (config, policy) = (Config::default(), PolicyConfig::every_rule());
        let mut p = Tracker::new();
        let t = Timestamp::parse_rfc3339("2026-11-23T10:00:00Z").unwrap();
        for (code, v) in [("resp_rate", 26.0), ("sbp", 95.0), ("heart_rate", 115.0)] {
            let o = Observation::new(
                code,
                RawValue::Number(v),
                None,
                t,
                Some(&format!("obs-{code}")),
                Status::Final,
            )
            .unwrap();
            p.ingest(&o, None, &config, &policy);
        }
        let outcome = p.flush(&config, &policy).expect("decided");
        let subject = Subject {
            patient_id: "P1",
            encounter_id: Some("E1"),
            location: None,
        };
        let all = events(subject, &outcome, p.alerts(), t);
        let event = all.iter().find(|e| e.rule == "news2").expect("NEWS2 event");
        f(event);
    }

    fn fhir() -> Format {
        Format::from_name("fhir").unwrap()
    }

    fn references(list: &Value) -> Vec<Value> {
        list.as_array()
            .unwrap()
            .iter()
            .map(|d| {
                let mut d = d.clone();
                d.as_object_mut().unwrap().remove("display");
                d
            })
            .collect()
    }

    #[test]
    fn a_fhir_feeds_ids_are_literal_references() {
        event_for(|event| {
            // A FHIR feed: its ids are the server's; a component reading points at its
            // Observation.
            let ids = [
                Some("rr-1".to_owned()),
                Some("bp-2#8480-6".to_owned()),
                Some("hr-3".to_owned()),
            ];
            let sources = Sources {
                patient: &PatientNaming::Resource,
                format: &fhir(),
                evidence: &ids,
            };
            let r = resource(FhirResource::DetectedIssue, event, &sources);
            assert_eq!(r["resourceType"], "DetectedIssue");
            assert_eq!(r["id"], event.alert_id.to_string());
            assert_eq!(r["severity"], "high", "NEWS2 7 raises an emergency");
            assert_eq!(r["patient"], json!({"reference": "Patient/P1"}));
            assert!(
                r.get("encounter").is_none(),
                "no DetectedIssue.encounter in R4"
            );
            assert_eq!(
                r["extension"][1],
                json!({"url": DETECTED_ISSUE_ENCOUNTER, "valueReference": {"reference": "Encounter/E1"}})
            );
            assert_eq!(
                references(&r["evidence"][0]["detail"]),
                [
                    json!({"reference": "Observation/rr-1"}),
                    json!({"reference": "Observation/bp-2"}),
                    json!({"reference": "Observation/hr-3"}),
                ]
            );
            assert!(
                r["author"]["display"]
                    .as_str()
                    .unwrap()
                    .contains("not a diagnosis")
            );
            assert_eq!(r["code"]["coding"][0]["system"], SNOMED);
            assert_eq!(r["code"]["coding"][0]["code"], "1104051000000101");
        });
    }

    /// Issue 29, item 2: `Observation/hl7:ORD-G3:151562:...`, `Observation/bp-2#8480-6`
    /// and `Patient/<id>` for a patient named by an identifier with a system were not
    /// valid R4 references, and the system was lost.
    #[test]
    fn ids_vigil_did_not_get_from_a_server_are_logical_references() {
        event_for(|event| {
            let ids = [
                Some("hl7:ORD-G3:151562:1.3.1.1:1795428000000".to_owned()),
                None,
                None,
            ];
            let hl7 = Format::from_name("hl7v2").unwrap();
            let naming = PatientNaming::System("urn:oid:2.16.840.1.113883.19.5".into());
            let sources = Sources {
                patient: &naming,
                format: &hl7,
                evidence: &ids,
            };
            for kind in [
                FhirResource::DetectedIssue,
                FhirResource::RiskAssessment,
                FhirResource::Communication,
            ] {
                let r = resource(kind, event, &sources);
                let (subject, refs) = match kind {
                    FhirResource::DetectedIssue => (&r["patient"], &r["evidence"][0]["detail"]),
                    FhirResource::RiskAssessment => (&r["subject"], &r["basis"]),
                    FhirResource::Communication => (&r["subject"], &r["about"]),
                };
                assert_eq!(
                    *subject,
                    json!({"type": "Patient", "identifier": {"system": "urn:oid:2.16.840.1.113883.19.5", "value": "P1"}})
                );
                assert_eq!(
                    references(refs),
                    [
                        json!({"type": "Observation", "identifier": {"value": "hl7:ORD-G3:151562:1.3.1.1:1795428000000"}}),
                        json!({"type": "Observation"}),
                        json!({"type": "Observation"}),
                    ]
                );
                if kind != FhirResource::DetectedIssue {
                    assert_eq!(
                        r["encounter"],
                        json!({"type": "Encounter", "identifier": {"value": "E1"}})
                    );
                }
            }
            // A patient named by its id alone: an identifier without a system.
            let plain = Sources {
                patient: &PatientNaming::Id,
                format: &hl7,
                evidence: &[],
            };
            let r = resource(FhirResource::Communication, event, &plain);
            assert_eq!(
                r["subject"],
                json!({"type": "Patient", "identifier": {"value": "P1"}})
            );
        });
    }

    #[test]
    fn risk_assessment_and_communication_use_standard_codes() {
        event_for(|event| {
            let sources = Sources {
                patient: &PatientNaming::Id,
                format: &fhir(),
                evidence: &[],
            };
            let r = resource(FhirResource::RiskAssessment, event, &sources);
            assert_eq!(r["resourceType"], "RiskAssessment");
            assert_eq!(
                r["prediction"][0]["qualitativeRisk"],
                json!({"coding": [{"system": RISK_PROBABILITY, "code": "high"}], "text": "emergency"})
            );
            assert_eq!(
                r["prediction"][0]["outcome"],
                json!({"text": "Clinical deterioration"})
            );
            assert_eq!(
                r["basis"][0]["type"], "Observation",
                "no id known: a display reference"
            );
            let c = resource(FhirResource::Communication, event, &sources);
            assert_eq!(
                (c["resourceType"].as_str(), c["priority"].as_str()),
                (Some("Communication"), Some("stat"))
            );
            assert_eq!(c["category"][0]["coding"][0]["code"], "alert");
            assert!(
                c["payload"][0]["contentString"]
                    .as_str()
                    .unwrap()
                    .starts_with("NEWS2 7")
            );
        });
        assert_eq!(condition("qsofa")["coding"][0]["code"], "91302008");
        assert_eq!(condition("septic_shock")["coding"][0]["code"], "76571007");
        assert_eq!(rule_concept("sofa")["coding"][0]["code"], "96789-3");
        assert_eq!(rule_concept("sirs")["coding"].as_array().unwrap().len(), 1);
        assert_eq!(
            FhirResource::from_name("DetectedIssue"),
            Some(FhirResource::DetectedIssue)
        );
        assert_eq!(FhirResource::from_name("Flag"), None);
    }

    #[test]
    fn the_fhir_id_rule() {
        for ok in ["a", "A-1.b", &"x".repeat(64)] {
            assert!(is_fhir_id(ok), "{ok}");
        }
        for bad in ["", "a:b", "a#b", "a_b", "a/b", &"x".repeat(65)] {
            assert!(!is_fhir_id(bad), "{bad}");
        }
    }
}
