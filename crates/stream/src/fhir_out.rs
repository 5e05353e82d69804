//! Alerts as FHIR R4 resources, for EHRs that ingest FHIR: `DetectedIssue` (the default:
//! a clinical issue detected for a patient, with severity and evidence), `RiskAssessment`
//! (a qualitative risk with its basis) or `Communication` (a message to the care team with
//! a priority). Each references the observations that fired (`Observation/<id>` when the
//! feed gave ids, a display text otherwise) and carries the disclaimer.

use serde_json::{Value, json};

use crate::event::{AlertEvent, DISCLAIMER};

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

/// The resource for `event`; `evidence_ids` gives, per criterion, the id of the
/// observation that met it, where known.
pub fn resource(
    kind: FhirResource,
    event: &AlertEvent<'_>,
    evidence_ids: &[Option<String>],
) -> Value {
    let patient = json!({"reference": format!("Patient/{}", event.patient_id)});
    let evidence: Vec<Value> = event
        .criteria
        .iter()
        .zip(evidence_ids.iter().chain(std::iter::repeat(&None)))
        .map(|(e, id)| {
            let r = e.reading();
            let display = format!("{} {} at {}", r.param.label(), r.display(), r.effective);
            match id {
                Some(id) => json!({"reference": format!("Observation/{id}"), "display": display}),
                None => json!({"type": "Observation", "display": display}),
            }
        })
        .collect();
    let kind_extension = json!([{
        "url": "urn:vigil:alert-kind",
        "valueCode": event.kind,
    }]);
    let rule = json!({"coding": [{"system": "urn:vigil:rule", "code": event.rule}], "text": format!("Vigil {} alert", event.rule)});
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
                "evidence": [{"detail": evidence}],
            });
            if event.kind == "resolved" {
                issue["mitigation"] = json!([{
                    "action": {"text": "Resolved: the patient no longer meets the rule"},
                    "date": event.observed_at.to_string(),
                }]);
            }
            issue
        }
        FhirResource::RiskAssessment => json!({
            "resourceType": "RiskAssessment",
            "id": event.alert_id.to_string(),
            "status": "final",
            "method": rule,
            "subject": patient,
            "occurrenceDateTime": event.observed_at.to_string(),
            "basis": evidence,
            "prediction": [{
                "outcome": {"text": "Clinical deterioration / sepsis"},
                "qualitativeRisk": {"text": if event.kind == "resolved" { "resolved" } else { event.level }},
                "rationale": event.message,
            }],
            "note": [{"text": DISCLAIMER}],
        }),
        FhirResource::Communication => json!({
            "resourceType": "Communication",
            "id": event.alert_id.to_string(),
            "status": "completed",
            "category": [{"text": "Vigil alert"}],
            "priority": match event.level { "emergency" => "stat", "urgent" => "asap", _ => "routine" },
            "subject": patient,
            "sent": event.emitted_at.to_string(),
            "about": evidence,
            "payload": [{"contentString": event.message}, {"contentString": DISCLAIMER}],
        }),
    };
    r["extension"] = kind_extension;
    if let Some(e) = event.encounter_id {
        r["encounter"] = json!({"reference": format!("Encounter/{e}")});
    }
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

    #[test]
    fn detected_issue_references_the_observations_that_fired() {
        event_for(|event| {
            let ids: Vec<Option<String>> = event
                .criteria
                .iter()
                .map(|e| Some(format!("obs-{}", e.reading().param.code())))
                .collect();
            let r = resource(FhirResource::DetectedIssue, event, &ids);
            assert_eq!(r["resourceType"], "DetectedIssue");
            assert_eq!(r["id"], event.alert_id.to_string());
            assert_eq!(r["severity"], "high", "NEWS2 7 raises an emergency");
            assert_eq!(r["patient"]["reference"], "Patient/P1");
            assert_eq!(r["encounter"]["reference"], "Encounter/E1");
            let refs: Vec<&str> = r["evidence"][0]["detail"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d["reference"].as_str().unwrap())
                .collect();
            assert_eq!(
                refs,
                [
                    "Observation/obs-resp_rate",
                    "Observation/obs-sbp",
                    "Observation/obs-heart_rate"
                ]
            );
            assert!(
                r["author"]["display"]
                    .as_str()
                    .unwrap()
                    .contains("not a diagnosis")
            );
        });
    }

    #[test]
    fn risk_assessment_and_communication_shapes() {
        event_for(|event| {
            let r = resource(FhirResource::RiskAssessment, event, &[]);
            assert_eq!(r["resourceType"], "RiskAssessment");
            assert_eq!(r["prediction"][0]["qualitativeRisk"]["text"], "emergency");
            assert_eq!(
                r["basis"][0]["type"], "Observation",
                "no id known: a display reference"
            );
            let c = resource(FhirResource::Communication, event, &[]);
            assert_eq!(
                (c["resourceType"].as_str(), c["priority"].as_str()),
                (Some("Communication"), Some("stat"))
            );
            assert!(
                c["payload"][0]["contentString"]
                    .as_str()
                    .unwrap()
                    .starts_with("NEWS2 7")
            );
        });
        assert_eq!(
            FhirResource::from_name("DetectedIssue"),
            Some(FhirResource::DetectedIssue)
        );
        assert_eq!(FhirResource::from_name("Flag"), None);
    }
}
