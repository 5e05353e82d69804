//! The HL7 v2 acknowledgement (ACK) of one received message, as the sender reads it: in
//! the sender's own delimiters, addressed back to its application and facility (MSH-5/6
//! from its MSH-3/4), in its HL7 version, with its control id (MSH-10) returned unaltered
//! in MSA-2, the reason's start in MSA-3 (within the field's 80 characters) and each
//! reason whole in an ERR segment (HL7 v2.5 and later: ERR-2 location, ERR-3 code from
//! HL7 table 0357, ERR-4 severity, ERR-7 diagnostic; v2.3 and v2.4: ERR-1).

use super::frame::{END, START};

/// MSA-3's length in every version from 2.3 (HL7 v2.5.1, chapter 2, MSA segment).
pub(crate) const MSA_3_LENGTH: usize = 80;
/// The most ERR segments one ACK carries (a message can hold many bad results).
const MAX_ERR: usize = 20;
/// ERR-7's length (HL7 v2.5.1: TX, 2048).
const ERR_7_LENGTH: usize = 2048;

/// What the ACK echoes from the message it answers, raw as the sender wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Sender {
    field: char,
    /// MSH-2, the encoding characters.
    encoding: String,
    /// MSH-3 and MSH-4: the sender's application and facility.
    application: String,
    facility: String,
    /// MSH-5 and MSH-6: the receiving application and facility the sender named.
    receiver: String,
    receiver_facility: String,
    /// MSH-9's trigger event (`R01`).
    trigger: String,
    /// MSH-10: the control id.
    pub(crate) control: String,
    /// MSH-11: the processing id (`P`, `T`, `D`).
    processing: String,
    /// MSH-12's version id.
    version: String,
}

impl Sender {
    /// The MSH of `message` (its first segment), or defaults where it has none.
    pub(crate) fn of(message: &[u8]) -> Sender {
        let text = String::from_utf8_lossy(message);
        let msh = text
            .trim_start_matches(['\u{b}', '\u{feff}', '\r', '\n'])
            .split(['\r', '\n'])
            .next()
            .unwrap_or("");
        let mut sender = Sender {
            field: '|',
            encoding: "^~\\&".to_owned(),
            application: String::new(),
            facility: String::new(),
            receiver: String::new(),
            receiver_facility: String::new(),
            trigger: String::new(),
            control: String::new(),
            processing: "P".to_owned(),
            version: "2.5.1".to_owned(),
        };
        let Some(rest) = msh.strip_prefix("MSH") else {
            return sender;
        };
        let Some(field) = rest.chars().next().filter(|c| !c.is_alphanumeric()) else {
            return sender;
        };
        // MSH-1 is the separator itself; fields[1] is MSH-2, fields[n - 1] is MSH-n.
        let fields: Vec<&str> = rest[field.len_utf8()..].split(field).collect();
        let at = |n: usize| fields.get(n - 2).copied().unwrap_or("");
        let encoding = at(2);
        if encoding.chars().count() < 4 || encoding.contains(field) {
            return sender;
        }
        let component = encoding.chars().next().unwrap_or('^');
        sender.field = field;
        sender.encoding = encoding.to_owned();
        sender.application = at(3).to_owned();
        sender.facility = at(4).to_owned();
        sender.receiver = at(5).to_owned();
        sender.receiver_facility = at(6).to_owned();
        sender.trigger = at(9).split(component).nth(1).unwrap_or("").to_owned();
        sender.control = at(10).to_owned();
        if !at(11).is_empty() {
            sender.processing = at(11).to_owned();
        }
        let version = at(12).split(component).next().unwrap_or("");
        if vigil_wire::hl7::is_supported_version(version) {
            version.clone_into(&mut sender.version);
        }
        sender
    }

    fn component(&self) -> char {
        self.encoding.chars().next().unwrap_or('^')
    }

    fn escape_char(&self) -> char {
        self.encoding.chars().nth(2).unwrap_or('\\')
    }

    fn subcomponent(&self) -> char {
        self.encoding.chars().nth(3).unwrap_or('&')
    }

    /// `text` with every delimiter escaped (`\F\ \S\ \T\ \R\ \E\`), line breaks as spaces.
    fn escape(&self, text: &str) -> String {
        let (component, repetition, escape, subcomponent) = (
            self.component(),
            self.encoding.chars().nth(1).unwrap_or('~'),
            self.escape_char(),
            self.subcomponent(),
        );
        let mut out = String::with_capacity(text.len());
        for c in text.chars() {
            let code = match c {
                c if c == self.field => "F",
                c if c == component => "S",
                c if c == subcomponent => "T",
                c if c == repetition => "R",
                c if c == escape => "E",
                '\r' | '\n' => {
                    out.push(' ');
                    continue;
                }
                c => {
                    out.push(c);
                    continue;
                }
            };
            out.push(escape);
            out.push_str(code);
            out.push(escape);
        }
        out
    }

    /// The version's ERR segment has ERR-2 to ERR-12 (2.5 and later), not only ERR-1.
    fn err_fields(&self) -> bool {
        !matches!(self.version.as_str(), "2.3" | "2.3.1" | "2.4")
    }
}

/// One reason an ACK gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Problem {
    /// The reason, as the decoder or the receiver wrote it (`OBX[2]-5: ...`).
    pub(crate) text: String,
}

impl Problem {
    /// A reason.
    pub(crate) fn new(text: impl Into<String>) -> Problem {
        Problem { text: text.into() }
    }

    /// Where in the message it is: segment, its sequence (from 1) and field, from the
    /// path the reason starts with (`OBX[2]-5:`, `PID-3:`, `PID[2]-3:`).
    fn location(&self) -> Option<(&str, usize, usize)> {
        let (path, _) = self.text.split_once(": ")?;
        let (segment, field) = path.split_once('-')?;
        let field: usize = field.parse().ok()?;
        let (name, sequence) = match segment.split_once('[') {
            Some((name, n)) => (name, n.strip_suffix(']')?.parse().ok()?),
            None => (segment, 1),
        };
        (name.len() == 3 && name.bytes().all(|b| b.is_ascii_alphanumeric()))
            .then_some((name, sequence, field))
    }

    /// Its HL7 error code (table 0357) and that code's name.
    fn code(&self) -> (&'static str, &'static str) {
        let text = self.text.as_str();
        match self.location() {
            Some(("MSH", _, 9)) => ("200", "Unsupported message type"),
            Some(("MSH", _, 12)) => ("203", "Unsupported version id"),
            _ if text.contains(": missing") || text.contains(": empty") => {
                ("101", "Required field missing")
            }
            Some((_, _, 3 | 6 | 11)) => ("103", "Table value not found"),
            Some(_) => ("102", "Data type error"),
            None => ("207", "Application internal error"),
        }
    }
}

/// The ACK of the message from `sender`, with code `code` (`AA`, `AE`, `AR`), framed and
/// ready to be written in one piece; `stamp` is the ACK's time (`YYYYMMDDHHMMSS+0000`)
/// and `id` its own control id (MSH-10, at most 20 characters).
/// MSA-3 is `lead` followed by the reasons.
pub(crate) fn ack(
    sender: &Sender,
    code: &str,
    lead: &str,
    problems: &[Problem],
    stamp: &str,
    id: &str,
) -> Vec<u8> {
    let f = sender.field;
    let c = sender.component();
    let s = sender.subcomponent();
    let application = if sender.receiver.is_empty() {
        "VIGIL"
    } else {
        &sender.receiver
    };
    let facility = if sender.receiver_facility.is_empty() {
        "VIGIL"
    } else {
        &sender.receiver_facility
    };
    let trigger = if sender.trigger.is_empty() {
        "R01"
    } else {
        &sender.trigger
    };
    // MSH-9's third component, the message structure, exists from v2.3.1.
    let kind = if sender.version == "2.3" {
        format!("ACK{c}{trigger}")
    } else {
        format!("ACK{c}{trigger}{c}ACK")
    };
    let mut text = format!(
        "MSH{f}{}{f}{application}{f}{facility}{f}{}{f}{}{f}{stamp}{f}{f}{kind}{f}{id}{f}{}{f}{}\r",
        sender.encoding, sender.application, sender.facility, sender.processing, sender.version,
    );
    let summary = format!(
        "{lead}{}",
        problems
            .iter()
            .map(|p| p.text.as_str())
            .collect::<Vec<_>>()
            .join("; ")
    );
    text.push_str(&format!("MSA{f}{code}{f}{}", sender.control));
    if !summary.is_empty() {
        text.push(f);
        text.push_str(&within(
            &sender.escape(&summary),
            MSA_3_LENGTH,
            sender.escape_char(),
        ));
    }
    text.push('\r');
    let severity = if code == "AA" { "W" } else { "E" };
    for p in problems.iter().take(MAX_ERR) {
        let (number, name) = p.code();
        let location = p
            .location()
            .map(|(segment, sequence, field)| format!("{segment}{c}{sequence}{c}{field}"))
            .unwrap_or_default();
        if sender.err_fields() {
            text.push_str(&format!(
                "ERR{f}{f}{location}{f}{number}{c}{name}{c}HL70357{f}{severity}{f}{f}{f}{}\r",
                within(&sender.escape(&p.text), ERR_7_LENGTH, sender.escape_char())
            ));
        } else {
            text.push_str(&format!("ERR{f}{location}{c}{number}{s}{name}{s}HL70357\r"));
        }
    }
    let mut frame = Vec::with_capacity(text.len() + 3);
    frame.push(START);
    frame.extend_from_slice(text.as_bytes());
    frame.extend_from_slice(&END);
    frame
}

/// `text` cut to at most `length` characters, ending in `...` when cut, and never inside
/// an escape sequence (which starts and ends with `escape`).
fn within(text: &str, length: usize, escape: char) -> String {
    if text.chars().count() <= length {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(length - 3).collect();
    // An escape sequence cut in half would corrupt the field: drop its start.
    let escapes = out.matches(escape).count();
    if escapes % 2 == 1
        && let Some(i) = out.rfind(escape)
    {
        out.truncate(i);
    }
    out.push_str("...");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segments(frame: &[u8]) -> Vec<String> {
        assert_eq!(frame[0], START);
        assert!(frame.ends_with(&END));
        String::from_utf8(frame[1..frame.len() - 2].to_vec())
            .unwrap()
            .split('\r')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn the_ack_echoes_the_sender_and_returns_msh_10_unaltered() {
        let sender = Sender::of(
            b"MSH|^~\\&|GW|ICU-FAC|LAB|HOSP|20261123101500+0100||ORU^R01^ORU_R01|A\\S\\1&2|T|2.3.1\rPID|||P1",
        );
        let s = segments(&ack(
            &sender,
            "AA",
            "",
            &[],
            "20261207180000+0000",
            "2026120718000000001",
        ));
        assert_eq!(
            s,
            [
                "MSH|^~\\&|LAB|HOSP|GW|ICU-FAC|20261207180000+0000||ACK^R01^ACK|2026120718000000001|T|2.3.1",
                "MSA|AA|A\\S\\1&2",
            ]
        );
    }

    #[test]
    fn reasons_are_escaped_cut_to_msa_3_and_given_whole_in_err() {
        let sender = Sender::of(b"MSH|^~\\&|GW|ICU|||20261123101500+0100||ORU^R01|M9|P|2.5.1\r");
        let long = format!(
            "OBX[2]-5: value {} is not a number | or ^ here",
            "9".repeat(100)
        );
        let problems = [
            Problem::new(long.clone()),
            Problem::new("PID-3: empty; expected the patient identifier list"),
        ];
        let s = segments(&ack(
            &sender,
            "AE",
            "",
            &problems,
            "20261207180000+0000",
            "2026120718000000001",
        ));
        assert_eq!(
            s[0],
            "MSH|^~\\&|VIGIL|VIGIL|GW|ICU|20261207180000+0000||ACK^R01^ACK|2026120718000000001|P|2.5.1"
        );
        let msa: Vec<&str> = s[1].split('|').collect();
        assert_eq!(&msa[..3], ["MSA", "AE", "M9"]);
        assert_eq!(msa[3].chars().count(), 80);
        assert!(msa[3].ends_with("..."));
        assert_eq!(
            s[2],
            format!(
                "ERR||OBX^2^5|102^Data type error^HL70357|E|||{}",
                long.replace('|', "\\F\\").replace('^', "\\S\\")
            )
        );
        assert_eq!(
            s[3],
            "ERR||PID^1^3|101^Required field missing^HL70357|E|||PID-3: empty; expected the patient identifier list"
        );
        // Version 2.4 has ERR-1 only.
        let old = Sender::of(b"MSH|^~\\&|GW|ICU|||20261123101500+0100||ORU^R01|M9|P|2.4\r");
        let s = segments(&ack(
            &old,
            "AR",
            "",
            &[Problem::new("MSH-9: \"ADT^A01\" is not supported")],
            "20261207180000+0000",
            "2026120718000000001",
        ));
        assert_eq!(s[2], "ERR|MSH^1^9^200&Unsupported message type&HL70357");
    }

    #[test]
    fn other_delimiters_are_used_for_the_answer() {
        let sender = Sender::of(b"MSH#$%!*#GW#ICU###20261123101500+0100##ORU$R01#M1#P#2.6\r");
        let s = segments(&ack(
            &sender,
            "AE",
            "",
            &[Problem::new("OBX[1]-5: a#b")],
            "20261207180000+0000",
            "2026120718000000001",
        ));
        assert!(s[0].starts_with("MSH#$%!*#VIGIL#VIGIL#GW#ICU#"), "{}", s[0]);
        assert!(
            s[0].ends_with("#ACK$R01$ACK#2026120718000000001#P#2.6"),
            "{}",
            s[0]
        );
        assert_eq!(s[1], "MSA#AE#M1#OBX[1]-5: a!F!b");
    }

    #[test]
    fn a_message_without_an_msh_gets_a_default_ack() {
        let s = segments(&ack(
            &Sender::of(b"garbage"),
            "AR",
            "",
            &[Problem::new("no MSH")],
            "20261207180000+0000",
            "2026120718000000001",
        ));
        assert_eq!(
            s[0],
            "MSH|^~\\&|VIGIL|VIGIL|||20261207180000+0000||ACK^R01^ACK|2026120718000000001|P|2.5.1"
        );
        assert_eq!(s[1], "MSA|AR||no MSH");
        assert_eq!(
            s[2],
            "ERR|||207^Application internal error^HL70357|E|||no MSH"
        );
    }

    #[test]
    fn a_cut_never_splits_the_senders_escape_sequence() {
        let text = format!("{}!F!yyyy", "x".repeat(76));
        assert_eq!(within(&text, 80, '!'), format!("{}...", "x".repeat(76)));
        assert_eq!(within("short", 80, '!'), "short");
    }
}
