//! `vigil decode --format json|fhir|hl7v2 [PATH|-]`: prints the native observation events each
//! input message decodes to, one JSON object per line, and `line N: reason` on standard
//! error for what it rejects, so an integration team sees exactly what Vigil understood
//! from a sample export before go-live (README, "Pointing a feed at Vigil").

use std::io::{self, BufRead, Write};

use vigil_score::Span;
use vigil_wire::Format;

/// What `vigil decode` and `vigil score` apply to a sample, from the configuration's
/// `[input]` as `vigil run` applies it (`--config`, the environment's overrides).
#[derive(Clone, Debug)]
pub struct Offline {
    /// The format, with its decoder options.
    pub format: Format,
    /// `[input] reject_unscored_codes`: a valid code Vigil does not score is a rejection.
    pub reject_unscored: bool,
    /// `[input] clock_tolerance_seconds`: how far after the receive time (`vigil score
    /// --now`) a reading may be dated.
    pub clock_tolerance: Span,
}

impl Offline {
    /// `format` with the defaults of `[input]`.
    pub fn of(format: Format) -> Offline {
        Offline {
            format,
            reject_unscored: false,
            clock_tolerance: Span::seconds(300),
        }
    }
}

/// Counts of a decode run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Messages read.
    pub messages: usize,
    /// Observations printed.
    pub observations: usize,
    /// Readings of valid codes Vigil does not score, reported as ignored.
    pub ignored: usize,
    /// Readings sent without a value and with the reason why (FHIR
    /// `dataAbsentReason`), reported as absent.
    pub absent: usize,
    /// Rejections reported.
    pub rejected: usize,
}

/// Decodes one message per non-blank line of `input`.
///
/// # Errors
///
/// Only I/O errors of the streams.
pub fn run(
    mut input: impl BufRead,
    rules: &Offline,
    out: &mut impl Write,
    errors: &mut impl Write,
) -> io::Result<Counts> {
    let format = &rules.format;
    let mut counts = Counts::default();
    let mut all = Vec::new();
    input.read_to_end(&mut all)?;
    for (line, message) in format.split(&all) {
        counts.messages += 1;
        for decoded in format.decode(&message) {
            match decoded {
                Ok(d) => {
                    counts.observations += 1;
                    writeln!(out, "{}", d.to_native_json())?;
                }
                Err(e) => {
                    if e.unscored().is_some() && !rules.reject_unscored {
                        counts.ignored += 1;
                    } else if e.absent().is_some() {
                        counts.absent += 1;
                    } else {
                        counts.rejected += 1;
                    }
                    writeln!(errors, "line {line}: {e}")?;
                }
            }
        }
    }
    out.flush()?;
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_native_events_and_line_reasons() {
        let input = concat!(
            r#"{"resourceType":"Observation","id":"bp","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"85354-9"}]},"subject":{"reference":"Patient/P1"},"effectiveDateTime":"2026-11-23T10:00:00Z","component":[{"code":{"coding":[{"system":"http://loinc.org","code":"8480-6"}]},"valueQuantity":{"value":12,"code":"kPa"}},{"code":{"coding":[{"system":"http://loinc.org","code":"8462-4"}]},"valueQuantity":{"value":900,"code":"mm[Hg]"}}]}"#,
            "\n\n",
            "not json\n",
        );
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let counts = run(
            input.as_bytes(),
            &Offline::of(Format::from_name("fhir").unwrap()),
            &mut out,
            &mut err,
        )
        .unwrap();
        assert_eq!(
            counts,
            Counts {
                messages: 2,
                observations: 1,
                ignored: 0,
                absent: 0,
                rejected: 2
            }
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"patient_id\":\"P1\",\"code\":\"sbp\",\"value\":90,\"unit\":\"mm[Hg]\",\"effective\":\"2026-11-23T10:00:00Z\",\"id\":\"bp#8480-6\",\"status\":\"final\"}\n"
        );
        let err = String::from_utf8(err).unwrap();
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(
            lines[0],
            "line 1: Observation.component[1].valueQuantity: field `value`: dbp 900 mm[Hg] is outside the possible range 5-250 mm[Hg]"
        );
        assert!(
            lines[1].starts_with("line 3: invalid observation JSON"),
            "{err}"
        );
    }

    /// Issue 29, item 5: a file of pretty-printed FHIR resources (as servers and
    /// validators write them) gave one "invalid observation JSON" line per line of JSON.
    #[test]
    fn pretty_printed_fhir_resources_are_read_whole() {
        let read = |name: &str| -> serde_json::Value {
            let path = format!(
                "{}/crates/wire/tests/samples/fhir/{name}",
                env!("CARGO_MANIFEST_DIR")
            );
            serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
        };
        let input = format!(
            "{}\n\n{}\nnot json\n{}\n",
            serde_json::to_string_pretty(&read("heart-rate.json")).unwrap(),
            serde_json::to_string_pretty(&read("respiratory-rate.json")).unwrap(),
            serde_json::to_string(&read("body-temperature.json")).unwrap(),
        );
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let counts = run(
            input.as_bytes(),
            &Offline::of(Format::from_name("fhir").unwrap()),
            &mut out,
            &mut err,
        )
        .unwrap();
        let err = String::from_utf8(err).unwrap();
        assert_eq!(
            (counts.messages, counts.observations, counts.rejected),
            (4, 3, 1),
            "{err}"
        );
        let bad_line = input.lines().position(|l| l == "not json").unwrap() + 1;
        assert!(
            err.starts_with(&format!("line {bad_line}: invalid observation JSON")),
            "{err}"
        );
        let codes: Vec<serde_json::Value> = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["code"].clone())
            .collect();
        assert_eq!(codes, ["heart_rate", "resp_rate", "temperature"]);
    }
}
